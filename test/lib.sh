# test/lib.sh: what the test run and the demo share.  Installs what a fresh
# Debian 12 machine lacks, builds and installs the extension, and starts a
# throwaway PostgreSQL cluster and the Close API emulator, both stopped and
# removed on exit.  Sourced, not run.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the packages the build and the tests need, if any is missing.
ensure_packages() {
	local pkgs="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libcurl4-openssl-dev libjson-c-dev python3 curl make gcc openssl"
	local missing=""
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "installing with apt-get (a minute or two on a fresh machine):$missing"
		as_root apt-get update -qq
		# one line per package as it is set up, so a long install shows progress
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			-o Dpkg::Use-Pty=0 $missing 2>&1 |
			grep --line-buffered -E '^(Setting up|E:)' | sed -u 's/^/  /'
		[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "apt-get install failed" >&2; return 1; }
	fi
	export PATH="/usr/lib/postgresql/$PG_MAJOR/bin:$PATH"
	PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
	[ -x "$PG_CONFIG" ] || PG_CONFIG=/usr/bin/pg_config
	export PG_CONFIG
}

build_and_install() {
	make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" COPT=-Werror >/dev/null
	as_root make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# The directory for the cluster, the sockets, the logs and the emulator's
# port file; readable by the postgres OS user that runs the server.
make_workdir() {
	WORKDIR=$(mktemp -d /tmp/close_fdw_test.XXXXXX)
	chmod 755 "$WORKDIR"
	trap cleanup EXIT
}

cleanup() {
	local rc=$?
	if [ -n "${PGDATA_DIR:-}" ] && [ -f "$PGDATA_DIR/postmaster.pid" ]; then
		run_as_pg pg_ctl -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1 || true
	fi
	if [ -n "${TLS_FRONT_PID:-}" ]; then
		kill "$TLS_FRONT_PID" 2>/dev/null || true
		wait "$TLS_FRONT_PID" 2>/dev/null || true
	fi
	if [ -n "${EMULATOR_PID:-}" ]; then
		kill "$EMULATOR_PID" 2>/dev/null || true
		wait "$EMULATOR_PID" 2>/dev/null || true
	fi
	if [ -n "${WORKDIR:-}" ] && [ -z "${KEEP_WORKDIR:-}" ]; then
		rm -rf "$WORKDIR"
	fi
	exit $rc
}

# initdb and postgres refuse to run as root: run them as "postgres" then.
run_as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- env PATH="$PATH" "$@"
	else
		"$@"
	fi
}

# A cluster reachable only through a socket under WORKDIR.  The server's
# environment has no proxy settings, so requests to the emulator on
# loopback never go anywhere else.
# close_fdw is in shared_preload_libraries (shared pacing and statistics)
# unless CLOSE_FDW_PRELOAD=0; sessions can still pace alone
# (close_fdw.shared_pacing), which is how the tests cover both.  The answer
# cache is small (1 MB), so that sql/cache.sql can fill it.
start_cluster() {
	local preload="-c shared_preload_libraries=close_fdw -c close_fdw.cache_size_mb=1"
	[ "${CLOSE_FDW_PRELOAD:-1}" = 0 ] && preload="-c close_fdw.cache_size_mb=1"
	PGDATA_DIR=$WORKDIR/data
	PGSOCKET_DIR=$WORKDIR/socket
	if [ "$(id -u)" -eq 0 ]; then
		install -d -o postgres -g postgres "$PGDATA_DIR" "$PGSOCKET_DIR"
	else
		mkdir -p "$PGDATA_DIR" "$PGSOCKET_DIR"
	fi
	run_as_pg initdb -D "$PGDATA_DIR" -A trust -U postgres -E UTF8 \
		--locale=C.UTF-8 --no-sync >"$WORKDIR/initdb.log" 2>&1 ||
		{ cat "$WORKDIR/initdb.log"; return 1; }
	run_as_pg env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY \
		-u all_proxy -u ALL_PROXY \
		pg_ctl -D "$PGDATA_DIR" -w -l "$PGDATA_DIR/server.log" \
		-o "-k $PGSOCKET_DIR -c listen_addresses= -c port=5432 -c fsync=off $preload" \
		start >/dev/null || { tail -n 20 "$PGDATA_DIR/server.log"; return 1; }
	export PGHOST=$PGSOCKET_DIR PGPORT=5432 PGUSER=postgres
}

start_emulator() {
	python3 "$REPO/test/close_emulator.py" --port 0 \
		--port-file "$WORKDIR/emulator.port" --quiet "$@" \
		>"$WORKDIR/emulator.log" 2>&1 &
	EMULATOR_PID=$!
	local i
	for i in $(seq 1 100); do
		[ -s "$WORKDIR/emulator.port" ] && break
		sleep 0.1
	done
	[ -s "$WORKDIR/emulator.port" ] || { cat "$WORKDIR/emulator.log"; return 1; }
	export CLOSE_EMULATOR_URL="http://127.0.0.1:$(cat "$WORKDIR/emulator.port")"
	export CLOSE_API_URL="$CLOSE_EMULATOR_URL/api/v1"
}

# A TLS front for the emulator (test/tls_front.py) whose handshakes are slow,
# as the real API's are: a certificate for localhost made now by openssl,
# the front on a free loopback port.  Exports CLOSE_TLS_API_URL and
# CLOSE_TLS_CA_FILE (readable by the server).  After start_emulator.
start_tls_front() {
	local dir=$WORKDIR/tls i
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" >"$dir/openssl.log" 2>&1 ||
		{ cat "$dir/openssl.log"; return 1; }
	chmod 755 "$dir"
	chmod 644 "$dir/cert.pem"
	python3 "$REPO/test/tls_front.py" --cert "$dir/cert.pem" --key "$dir/key.pem" \
		--target-port "$(cat "$WORKDIR/emulator.port")" \
		--port-file "$dir/front.port" --delay-ms "${TLS_FRONT_DELAY_MS:-100}" \
		>"$WORKDIR/tls_front.log" 2>&1 &
	TLS_FRONT_PID=$!
	for i in $(seq 1 100); do
		[ -s "$dir/front.port" ] && break
		sleep 0.1
	done
	[ -s "$dir/front.port" ] || { cat "$WORKDIR/tls_front.log"; return 1; }
	export CLOSE_TLS_API_URL="https://localhost:$(cat "$dir/front.port")/api/v1"
	export CLOSE_TLS_CA_FILE="$dir/cert.pem"
}
