#!/usr/bin/env python3
"""bench/user_script.py: baseline (b), what a user writes instead of an FDW.

Sends the given requests one after another over one kept-alive connection
(Python's http.client), parses each answer, and COPYs the records it got
into a local table with psql, as a nightly sync script would.
Usage: user_script.py API_BASE REQUESTS.json
"""
import base64
import http.client
import json
import subprocess
import sys
import urllib.parse


def main():
    base = urllib.parse.urlsplit(sys.argv[1])
    with open(sys.argv[2]) as f:
        requests = json.load(f)
    conn = http.client.HTTPConnection(base.hostname, base.port)
    auth = "Basic " + base64.b64encode(b"api_test_key:").decode()
    rows = []
    for r in requests:
        body = json.dumps(r["body"]).encode() if r["body"] is not None else None
        headers = {"Authorization": auth, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(r["method"], base.path + r["path"], body=body, headers=headers)
        answer = conn.getresponse().read()
        if r["method"] == "GET" or r["path"].startswith("/data/search/"):
            for record in json.loads(answer).get("data", []):
                custom = {k[7:]: v for k, v in record.items() if k.startswith("custom.")}
                rows.append("\t".join(
                    (str(record.get(k)) if record.get(k) is not None else "\\N")
                    .replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                    for k in ("id", "lead_id", "name", "date_created")) +
                    "\t" + json.dumps(custom).replace("\\", "\\\\"))
    subprocess.run(["psql", "-X", "-q", "-d", "bench", "-v", "ON_ERROR_STOP=1", "-c",
                    "CREATE TEMP TABLE synced (id text, lead_id text, name text, "
                    "date_created timestamptz, custom jsonb); COPY synced FROM STDIN"],
                   input="\n".join(rows) + ("\n" if rows else ""), text=True, check=True)


if __name__ == "__main__":
    main()
