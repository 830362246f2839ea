# test/roots.sh: Debian roots for tests, shared by test/run-major and
# test/package.  A root is debootstrapped once from the Debian mirror this
# machine's apt uses, with the packages a caller names, and kept under
# $ROOTS; commands run in it chrooted, in a mount namespace of their own.
# Sourced, not run.

# The Debian mirror this machine's apt is set up with.
host_mirror() {
	local uri
	uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
		grep -v -- '-security' | grep -oE 'https?://[^ ]*/debian/?' | head -n 1)
	[ -n "$uri" ] || { echo "roots: no Debian mirror in this machine's apt sources" >&2; return 1; }
	echo "${uri%/}"
}

# .ci/run prepares several roots at once: one of them installs the host's
# tools while the others wait on the lock (apt-get would refuse them).
ensure_tools() {
	exec 9>/var/lock/close_fdw-host-apt.lock
	flock 9
	local missing=""
	command -v debootstrap >/dev/null || missing="$missing debootstrap"
	command -v unshare >/dev/null || missing="$missing util-linux"
	if [ -n "$missing" ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	fi
	flock -u 9
	exec 9>&-
}

# make_root RELEASE DIR STAMP PACKAGES: a root of RELEASE in DIR with
# PACKAGES installed, unless DIR/STAMP already says it is ready.  The root
# is built beside its final place and moved there only once everything is
# installed, so an interrupted run never leaves a root that looks ready.
make_root() {
	local release=$1 root=$2 stamp=$3 packages=$4
	[ -f "$root/$stamp" ] && return 0
	ensure_tools
	local mirror tmp
	mirror=$(host_mirror)
	tmp=$root.partial
	rm -rf "$tmp"
	mkdir -p "$(dirname "$root")"
	echo "roots: debootstrapping $release into $tmp"
	debootstrap --variant=minbase "$release" "$tmp" "$mirror" >"$(dirname "$root")/$(basename "$root").debootstrap.log" 2>&1 ||
		{ tail -n 30 "$(dirname "$root")/$(basename "$root").debootstrap.log"; return 1; }
	# No service may start inside the root, and installing PostgreSQL must
	# not create a cluster: the tests make their own.
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 755 "$tmp/usr/sbin/policy-rc.d"
	# The archive reached here may be a dated copy whose Release files
	# have expired (sid's did); the packages are still signed.
	echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99close-fdw"
	mkdir -p "$tmp/etc/postgresql-common"
	echo "create_main_cluster = false" >"$tmp/etc/postgresql-common/createcluster.conf"
	echo "roots: installing $packages into $release"
	in_root "$tmp" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages" \
		>"$(dirname "$root")/$(basename "$root").install.log" 2>&1 ||
		{ tail -n 30 "$(dirname "$root")/$(basename "$root").install.log"; return 1; }
	in_root "$tmp" apt-get clean
	touch "$tmp/$stamp"
	rm -rf "$root"
	mv "$tmp" "$root"
}

# Run a command chrooted in a root, with /proc, /dev and /dev/shm mounted
# in a mount namespace of its own: the mounts vanish with the command.
in_root() {
	local dir=$1
	shift
	cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
	unshare --mount --propagation private -- sh -c '
		dir=$1; shift
		mount -t proc proc "$dir/proc" &&
		mount --rbind /dev "$dir/dev" &&
		mount -t sysfs sysfs "$dir/sys" &&
		exec chroot "$dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
	' sh "$dir" "$@"
}

