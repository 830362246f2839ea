#!/usr/bin/env python3
"""bench/bench.py: close_fdw against its baselines, side by side, in one run.

Run by bench/run (which starts PostgreSQL and the emulator).  For each
scenario the FDW runs first; the emulator's request log then says exactly
which requests it made, and the same requests are replayed by

  (a) curl, one after another over one kept-alive connection, plus
      bench/parse_bodies (json-c) parsing the bodies: the floor for any
      sequential client built on json-c;
  (b) bench/user_script.py: what a user writes instead (fetch the pages,
      COPY the rows into a local table);
  (c) for the scenarios that list one lead: pgsql-http in a PL/pgSQL loop
      that pages the listing and returns jsonb_array_elements(body->'data')
      (its own requests: pages of 100 without overlap), when the "http"
      extension can be created; else "skipped".

The FDW's queries convert every column but send little to the client
(sum(length(t::text))), so the time is the FDW's, not psql's.  Prints a
Markdown table; ratios below 1 mean the FDW was faster.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TYPE = "cotype_Device0000000000000000"


def lead(i):
    return "lead_" + ("Bench%05d" % i).ljust(43, "x")


BIG = "lead_" + "BenchBig".ljust(43, "x")
WIDE_LEAD = "lead_" + "BenchWide".ljust(43, "x")
WIDE_TYPE = "cotype_Wide000000000000000000"


def wide_values():
    """One value for each of the emulator's 30 "Wide" fields (--data bench):
    text (some non-ASCII), numbers (one beyond 64 bits), dates, datetimes,
    choices, user, contact and object ids, a hidden flag, multi-values."""
    cf = lambda n: "custom.cf_Wide%02d" % n + "0" * 37
    v = {}
    for n in range(1, 7):
        v[cf(n)] = "Text value %d of a wide record, Zürich ✓ \"quoted\"" % n
    for n in range(7, 10):
        v[cf(n)] = "Line one of note %d\nLine two, with a tab\tand more words" % n
    for n, num in zip(range(10, 15), [42, -17.25, 12345678901234.5678, 98765432109876543210987654321, 0.001]):
        v[cf(n)] = num
    for n in range(15, 18):
        v[cf(n)] = "2021-0%d-15" % (n - 14)
    for n in range(18, 21):
        v[cf(n)] = "2021-03-15T10:%02d:00.123456+00:00" % n
    v[cf(21)] = "red"
    v[cf(22)] = "blue"
    v[cf(23)] = "user_" + "Alice".ljust(43, "0")
    v[cf(24)] = "user_" + "Bob".ljust(43, "0")
    v[cf(25)] = "cont_" + "Wide1".ljust(43, "0")
    v[cf(26)] = "cont_" + "Wide2".ljust(43, "0")
    v[cf(27)] = "custobj_" + "Wide".ljust(43, "0")
    v[cf(28)] = True
    v[cf(29)] = ["alpha", "beta", "gamma ✓"]
    v[cf(30)] = ["red", "green"]
    return v


class Emulator:
    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return r.read()

    def log(self):
        return json.loads(self.call("GET", "/_emulator/log?format=json"))

    def clear(self):
        self.call("POST", "/_emulator/log/clear")


def psql(*commands, db="bench"):
    args = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db]
    for c in commands:
        args += ["-c", c]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
    return done.stdout


def backend_status(field, path):
    """A DO statement that writes a line of the backend's /proc status to path.
    The program reads what COPY writes to it first: a program that exits
    before COPY has written fails the statement ("Broken pipe")."""
    return ("DO $$ BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %%L', "
            "'cat > /dev/null; grep %s /proc/' || pg_backend_pid() || '/status > %s'); END $$"
            % (field, path))


def read_kb(path):
    with open(path) as f:
        kb = int(f.read().split()[1])
    os.unlink(path)
    return kb


def run_fdw(sql, prepare=()):
    """Time the statement alone (psql's \\timing), after the prepare
    statements (same session); read the backend's resident memory before it
    and its peak after it."""
    rss_file = tempfile.mktemp(prefix="bench_rss_")
    hwm_file = tempfile.mktemp(prefix="bench_hwm_")
    out = psql("SELECT 1", *prepare, backend_status("VmRSS", rss_file), "\\timing on", sql,
               backend_status("VmHWM", hwm_file))
    ms = float(re.findall(r"Time: ([0-9.]+) ms", out)[0])
    return ms / 1000.0, read_kb(hwm_file), read_kb(rss_file)


def replay_curl(requests, api_base):
    """Baseline (a): curl, one connection, then json-c parsing of every body."""
    with tempfile.TemporaryDirectory() as d:
        lines = []
        for n, r in enumerate(requests):
            if n:
                lines.append("next")
            lines.append('url = "%s%s"' % (api_base, r["raw_path"][len("/api/v1"):]))
            lines.append('user = "api_test_key:"')
            lines.append('output = "%s/%06d.json"' % (d, n))
            lines.append('silent')
            if r["method"] != "GET":
                lines.append('request = "%s"' % r["method"])
            if r["body"] is not None:
                body_file = "%s/body%06d" % (d, n)
                with open(body_file, "w") as f:
                    json.dump(r["body"], f)
                lines.append('header = "Content-Type: application/json"')
                lines.append('data-binary = "@%s"' % body_file)
        with open(d + "/config", "w") as f:
            f.write("\n".join(lines) + "\n")
        start = time.perf_counter()
        subprocess.run(["curl", "-K", d + "/config"], check=True)
        outputs = sorted(os.path.join(d, p) for p in os.listdir(d) if p.endswith(".json"))
        for i in range(0, len(outputs), 2000):
            subprocess.run([os.path.join(HERE, "parse_bodies")] + outputs[i:i + 2000],
                           check=True, capture_output=True)
        return time.perf_counter() - start


HTTP_FUNCTION = r"""
CREATE FUNCTION http_lead_objects(api text, lead text, type text) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
  skip int := 0;
  body jsonb;
BEGIN
  LOOP
    SELECT content::jsonb INTO body
      FROM http(('GET', api || '/custom_object/?lead_id=' || lead ||
                 coalesce('&custom_object_type_id=' || type, '') ||
                 '&_skip=' || skip || '&_limit=100',
                 ARRAY[http_header('Authorization', 'Basic ' || encode('api_test_key:', 'base64'))],
                 NULL, NULL)::http_request);
    RETURN QUERY SELECT jsonb_array_elements(body->'data');
    EXIT WHEN NOT (body->>'has_more')::boolean;
    skip := skip + 100;
  END LOOP;
END $$;
"""


def setup_http():
    """Baseline (c)'s function, if pgsql-http is installed."""
    try:
        psql("CREATE EXTENSION http", HTTP_FUNCTION)
        return True
    except subprocess.CalledProcessError:
        return False


def run_http(api_base, lead_id, type_id):
    """Baseline (c): pgsql-http + PL/pgSQL paging + jsonb, timed as the FDW is."""
    sql = "SELECT sum(length(r::text)) FROM http_lead_objects('%s', '%s', %s) r" % (
        api_base, lead_id, "'%s'" % type_id if type_id else "NULL")
    return run_fdw(sql)[0]


def replay_user_script(requests, api_base):
    """Baseline (b): the script a user writes instead."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"method": r["method"], "path": r["raw_path"][len("/api/v1"):],
                    "body": r["body"]} for r in requests], f)
    start = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(HERE, "user_script.py"), api_base, f.name],
                   check=True)
    elapsed = time.perf_counter() - start
    os.unlink(f.name)
    return elapsed


SCENARIOS = [
    ("1. one lead, 5,000 objects",
     "SELECT sum(length(t::text)) FROM objects t WHERE lead_id = '%s'" % BIG),
    ("2. lead_id = ANY (500 leads)",
     "SELECT sum(length(t::text)) FROM objects t WHERE lead_id = ANY (ARRAY(SELECT id FROM leads_500))"),
    ("3. join with 500 local leads",
     "SELECT sum(length(t::text)) FROM leads_500 l JOIN objects t ON t.lead_id = l.id"),
    ("4. search, every object",
     "SELECT sum(length(t::text)) FROM objects t"),
    ("5. INSERT 1,000 rows",
     "INSERT INTO objects (lead_id, name, custom_object_type_id, weight) "
     "SELECT '%s', 'New ' || i, '%s', i FROM generate_series(1, 1000) i" % (lead(1), TYPE)),
    ("6. UPDATE 1,000 rows by id",
     "UPDATE objects SET name = 'Updated', weight = 1 WHERE id = ANY (ARRAY(SELECT id FROM inserted))"),
]

# the wide-record scenario ("--only W"), run last: its objects are created
# just before it, so that the other scenarios see the same data as before
WIDE_SQL = "SELECT sum(length(t::text)) FROM wide t WHERE lead_id = '%s'" % WIDE_LEAD

# the listings (c) can replay: (lead, custom_object_type_id)
HTTP_LEADS = {"1": (BIG, None), "W": (WIDE_LEAD, WIDE_TYPE)}


def setup(emu, api_base, n_leads, big):
    subprocess.run(["dropdb", "--if-exists", "bench"], check=True)
    subprocess.run(["createdb", "bench"], check=True)
    psql("CREATE EXTENSION close_fdw",
         "CREATE SERVER close FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url '%s')" % api_base,
         "CREATE USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (api_key 'api_test_key')",
         "CREATE FOREIGN TABLE objects (id text, custom_object_type_id text, lead_id text, name text, "
         "organization_id text, created_by text, updated_by text, date_created timestamptz, "
         "date_updated timestamptz, weight numeric OPTIONS (field 'custom.cf_DeviceWeight0000000000000000000000000000000'), "
         "custom jsonb) SERVER close OPTIONS (batch_size '100')",
         "CREATE FOREIGN TABLE wide (id text, custom_object_type_id text, lead_id text, name text, "
         "organization_id text, created_by text, updated_by text, date_created timestamptz, "
         "date_updated timestamptz, custom jsonb) SERVER close "
         "OPTIONS (custom_object_type_id '%s')" % WIDE_TYPE,
         "CREATE TABLE leads_500 AS SELECT id FROM unnest(ARRAY[%s]) id" %
         ", ".join("'%s'" % lead(i) for i in range(1, 501)),
         "ANALYZE leads_500",
         "CREATE TABLE inserted (id text)")
    emu.call("POST", "/_emulator/reset")
    emu.call("POST", "/_emulator/objects", {"lead_id": BIG, "custom_object_type_id": TYPE,
                                            "count": big, "name_prefix": "Big"})
    per_lead = 7
    for i in range(1, n_leads):
        emu.call("POST", "/_emulator/objects", {"lead_id": lead(i), "custom_object_type_id": TYPE,
                                                "count": per_lead, "name_prefix": "Obj"})
    counts = json.loads(emu.call("GET", "/_emulator/data/leads"))
    return sum(counts.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--leads", type=int, default=2000)
    ap.add_argument("--big", type=int, default=5000)
    ap.add_argument("--only", default="")
    ap.add_argument("--memory-rows", type=int, default=200000)
    args = ap.parse_args()
    emu = Emulator(args.emulator)
    api_base = args.emulator + "/api/v1"
    total = setup(emu, api_base, args.leads, args.big)
    emu.call("POST", "/_emulator/config", {"latency_ms": args.latency_ms})
    have_http = setup_http()

    if any(name.startswith(args.only) for name, _ in SCENARIOS):
        print("\nLatency %d ms per request; %d objects in the emulator.\n" % (args.latency_ms, total))
        table_header()
    for name, sql in SCENARIOS:
        if args.only and not name.startswith(args.only):
            continue
        run_scenario(emu, api_base, args, name, sql, have_http, total)

    # what a BI tool sends ("--only B")
    if args.only in ("", "B"):
        bi_scenarios(emu, args.latency_ms, total)

    # at 0 ms only: scenario 2 under a rate limit ("--only R"), many
    # backends through one key ("--only C"), and the backend's memory through
    # a large search ("--only M")
    if args.latency_ms == 0 and args.only in ("", "R"):
        rate_limited(emu)
    if args.latency_ms == 0 and args.only in ("", "C"):
        many_backends(emu)
    if args.latency_ms == 0 and args.only in ("", "M"):
        memory_at_scale(emu, args.memory_rows)

    # wide records, last ("--only W")
    if args.only in ("", "W"):
        emu.call("POST", "/_emulator/config", {"latency_ms": 0})
        emu.call("POST", "/_emulator/objects", {"lead_id": WIDE_LEAD, "custom_object_type_id": WIDE_TYPE,
                                                "count": args.big, "name_prefix": "Wide",
                                                "values": wide_values()})
        emu.call("POST", "/_emulator/config", {"latency_ms": args.latency_ms})
        wide = json.loads(emu.call("GET", "/_emulator/data/objects?lead_id=" + WIDE_LEAD))
        size = sum(len(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode())
                   for r in wide) // len(wide)
        print("\nWide records, latency %d ms per request: %d objects of one lead, each of 30 custom "
              "fields of every kind (%d bytes of JSON on average).\n" % (args.latency_ms, len(wide), size))
        table_header()
        run_scenario(emu, api_base, args, "W. wide records, one lead", WIDE_SQL, have_http, total)
        if args.latency_ms == 0:
            wide_memory(emu)


def table_header():
    print("| scenario | requests | FDW s | (a) curl+json-c s | (b) user script s | (c) pgsql-http s "
          "| FDW/(a) | FDW/(b) | FDW/(c) | rows/s | backend peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")


# the scenarios whose ratios have targets and move with the machine: each
# side runs three times, interleaved, and the medians are reported
REPEATED = ("1", "W")


def run_scenario(emu, api_base, args, name, sql, have_http, total):
    reps = 3 if name[0] in REPEATED else 1
    fdw, a, b, c = [], [], [], []
    for rep in range(reps):
        emu.clear()
        fdw_s, hwm_kb, _ = run_fdw(sql)
        fdw.append(fdw_s)
        log = emu.log()
        if rep == 0:
            requests = log
        elif len(log) != len(requests):
            sys.exit("scenario %s: %d requests, then %d" % (name, len(requests), len(log)))
        emu.clear()
        if name.startswith("5."):
            # the FDW's new rows, for scenario 6 (before the baselines add theirs)
            psql("INSERT INTO inserted SELECT id FROM objects WHERE lead_id = '%s' AND name LIKE 'New %%'"
                 % lead(1))
            emu.clear()
        a.append(replay_curl(requests, api_base))
        b.append(replay_user_script(requests, api_base))
        if name[0] in HTTP_LEADS and have_http:
            c.append(run_http(api_base, *HTTP_LEADS[name[0]]))
            emu.clear()
    median = lambda xs: sorted(xs)[len(xs) // 2]
    fdw_s, a_s, b_s = median(fdw), median(a), median(b)
    c_s = median(c) if c else None
    c_text = "%.2f" % c_s if c_s else ("skipped" if name[0] in HTTP_LEADS else "")
    c_ratio = "%.2f" % (fdw_s / c_s) if c_s else ""
    n = len(requests)
    objects = {"1": args.big, "2": 500 * 7, "3": 500 * 7, "4": total,
               "5": 1000, "6": 1000, "W": args.big}[name[0]]
    print("| %s | %d | %.2f | %.2f | %.2f | %s | %.2f | %.2f | %s | %d | %d MB |" % (
        name, n, fdw_s, a_s, b_s, c_text, fdw_s / a_s, fdw_s / b_s, c_ratio,
        objects / fdw_s, hwm_kb // 1024))
    sys.stdout.flush()


# What BI tools (Metabase, Tableau, DBeaver, Grafana) send first: a preview,
# a count, the latest rows, a join with a small local table nobody analyzed
# (a temp table: autovacuum never analyzes those).  (prepare, query)
BI_SCENARIOS = [
    ("B1. preview: SELECT * LIMIT 100", (),
     "SELECT * FROM objects LIMIT 100"),
    ("B2. SELECT count(*)", (),
     "SELECT count(*) FROM objects"),
    ("B3. latest 10: ORDER BY date_created DESC LIMIT 10", (),
     "SELECT * FROM objects ORDER BY date_created DESC LIMIT 10"),
    ("B4. join with an unanalyzed temp table of 5 leads",
     ("CREATE TEMP TABLE few_leads AS SELECT id FROM leads_500 ORDER BY id LIMIT 5",),
     "SELECT count(*) FROM few_leads l JOIN objects o ON o.lead_id = l.id"),
]


def bi_scenarios(emu, latency_ms, total):
    """The BI scenario set: requests and time of each statement, and the
    plan's top node (what the planner chose)."""
    print("\nBI scenarios, latency %d ms per request, %d objects:\n" % (latency_ms, total))
    print("| scenario | requests | FDW s | plan |")
    print("|---|---|---|---|")
    for name, prepare, sql in BI_SCENARIOS:
        plan = psql(*prepare, "EXPLAIN (COSTS OFF) " + sql).splitlines()
        top = " / ".join(l.strip().lstrip("-> ").strip() for l in plan
                         if re.match(r"^\s*(->\s*)?[A-Z][a-zA-Z ]+( on \S+)?( \S+)?$", l))
        emu.clear()
        try:
            fdw_s, _, _ = run_fdw(sql, prepare)
            took = "%.2f" % fdw_s
        except subprocess.CalledProcessError as e:
            took = "error: " + e.stderr.strip().splitlines()[0]
        n = len(emu.log())
        emu.clear()
        print("| %s | %d | %s | %s |" % (name, n, took, top))
        sys.stdout.flush()


def rate_limited(emu, per_sec=20):
    """Scenario 2 while the emulator allows per_sec requests a second (a
    sliding one-second window): N requests cannot take less than
    (N - per_sec) / per_sec seconds."""
    emu.call("POST", "/_emulator/config", {"rate_limit_per_sec": per_sec})
    emu.clear()
    fdw_s, _, _ = run_fdw(SCENARIOS[1][1])
    log = emu.log()
    emu.clear()
    emu.call("POST", "/_emulator/config", {"rate_limit_per_sec": 0})
    n = len(log)
    refused = sum(1 for r in log if r["status"] == 429)
    allowed = (n - per_sec) / float(per_sec)
    print("\nScenario 2 with the emulator allowing %d requests/s:\n" % per_sec)
    print("| requests | 429s | FDW s | least time the limit allows s | FDW / that |")
    print("|---|---|---|---|---|")
    print("| %d | %d | %.2f | %.2f | %.2f |" % (n, refused, fdw_s, allowed, fdw_s / allowed))
    sys.stdout.flush()


def many_backends(emu, per_sec=20, backends=6, leads=20):
    """Six backends, each listing 20 leads at once (lead_id = ANY), through
    one key while the emulator allows per_sec requests a second: paced
    together (close_fdw preloaded, the default of bench/run) and each alone
    (close_fdw.shared_pacing off, as without preloading); with the
    emulator's one-second sliding window, and with a 100 ms one whose slots
    free nearly continuously.  The budget is known (one listing before)."""
    print("\n%d backends, %d leads each at once, one key, the emulator allowing %d requests/s:\n"
          % (backends, leads, per_sec))
    print("| window | pacing | requests | 429s | share | s | least time the limit allows s | s / that | failed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for window_ms in (1000, 100):
        per_window = per_sec * window_ms // 1000
        for shared in (True, False):
            emu.call("POST", "/_emulator/config", {"rate_limit_per_sec": per_window,
                                                   "rate_limit_window_ms": window_ms})
            psql("SELECT count(name) FROM objects WHERE lead_id = '%s'" % lead(1))
            time.sleep(1.2)
            emu.clear()
            env = dict(os.environ, PGOPTIONS="-c close_fdw.shared_pacing=%s" % ("on" if shared else "off"))
            procs = []
            start = time.monotonic()
            for b in range(backends):
                ids = ",".join("'%s'" % lead(1 + b * leads + i) for i in range(leads))
                procs.append(subprocess.Popen(
                    ["psql", "-X", "-q", "-At", "-d", "bench", "-c",
                     "SELECT count(name) FROM objects WHERE lead_id = ANY (ARRAY[%s])" % ids],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            failed = sum(1 for p in procs if p.wait() != 0)
            took = time.monotonic() - start
            log = emu.log()
            emu.clear()
            n = len(log)
            refused = sum(1 for r in log if r["status"] == 429)
            answered = n - refused
            least = (answered - per_window) / float(per_sec)
            print("| %d ms | %s | %d | %d | %.1f %% | %.2f | %.2f | %.2f | %d of %d |" % (
                window_ms, "shared" if shared else "per backend", n, refused,
                100.0 * refused / max(n, 1), took, least, took / least, failed, backends))
            sys.stdout.flush()
    emu.call("POST", "/_emulator/config", {"rate_limit_per_sec": 0, "rate_limit_window_ms": 1000})


def wide_memory(emu, scans=10):
    """The wide scenario run `scans` times in one session: how much the
    backend's memory grows."""
    rss_file = tempfile.mktemp(prefix="bench_rss_")
    hwm_file = tempfile.mktemp(prefix="bench_hwm_")
    sql = WIDE_SQL
    psql("SELECT 1", sql, backend_status("VmRSS", rss_file), *([sql] * scans),
         backend_status("VmHWM", hwm_file))
    rss_kb, hwm_kb = read_kb(rss_file), read_kb(hwm_file)
    emu.clear()
    print("\nScenario W run %d times more in one session (after a first run):\n" % scans)
    print("| backend RSS before | peak during | growth |")
    print("|---|---|---|")
    print("| %d MB | %d MB | %.1f MB |" % (rss_kb // 1024, hwm_kb // 1024, (hwm_kb - rss_kb) / 1024.0))
    sys.stdout.flush()


def memory_at_scale(emu, rows):
    """A search through at least `rows` objects: how much the backend's
    memory grows."""
    per_lead = 5000
    have = sum(json.loads(emu.call("GET", "/_emulator/data/leads")).values())
    for i in range(max(0, rows - have + per_lead - 1) // per_lead):
        emu.call("POST", "/_emulator/objects", {"lead_id": "lead_" + ("Memory%05d" % i).ljust(43, "x"),
                                                "custom_object_type_id": TYPE,
                                                "count": per_lead, "name_prefix": "Mem"})
    total = sum(json.loads(emu.call("GET", "/_emulator/data/leads")).values())
    emu.clear()
    fdw_s, hwm_kb, rss_kb = run_fdw(SCENARIOS[3][1])
    n = len(emu.log())
    emu.clear()
    print("\nScenario 4 through %d objects (%d requests):\n" % (total, n))
    print("| rows | FDW s | rows/s | backend RSS before | peak during | growth |")
    print("|---|---|---|---|---|---|")
    print("| %d | %.2f | %d | %d MB | %d MB | %.1f MB |" % (
        total, fdw_s, total / fdw_s, rss_kb // 1024, hwm_kb // 1024, (hwm_kb - rss_kb) / 1024.0))
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        sys.exit("%s\n%s" % (e, e.stderr or ""))
