#!/usr/bin/env python3
"""Tests of the Close API emulator itself (test/close_emulator.py).

Starts the emulator as a subprocess on a free port (via --port-file) and
checks its behaviour over HTTP.  Standard library only.

    cd /work/main && python3 -m unittest test.test_emulator -v
    python3 test/test_emulator.py
"""

import base64
import http.client
import json
import os
import re
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "close_emulator.py")
sys.path.insert(0, HERE)
import close_emulator as emu  # noqa: E402  (constants only; the server runs as a subprocess)
import close_emulator_crm as crm  # noqa: E402

S = emu.TYPE_SUBSCRIPTION
R = emu.TYPE_RESOURCE
D = emu.TYPE_DEVICE
CF_AMOUNT = emu.CF[S, "number"]
CF_BALANCE = emu.CF[S, "number2"]
CF_RENEWED = emu.CF[S, "datetime"]
CF_START = emu.CF[S, "date"]
CF_LABELS = emu.CF[S, "multi_text"]
CF_CHANNELS = emu.CF[S, "multi_choices"]
CF_PLAN = emu.CF[S, "text"]
CF_STATUS = emu.CF_SUBSCRIPTION_STATUS


def basic(key, password=""):
    return "Basic " + base64.b64encode(("%s:%s" % (key, password)).encode()).decode()


AUTH_TEST = basic("api_test_key")
SECRETS = ["api_test_key", "api_alice_key", "api_bob_key", "oauth_test_token",
           base64.b64encode(b"api_test_key:").decode(), base64.b64encode(b"api_alice_key:").decode(),
           base64.b64encode(b"api_test_key:secret").decode(), "Basic ", "Bearer "]


def start_emulator(*args):
    """Start an emulator subprocess; returns (process, port, port file path)."""
    tmpdir = tempfile.mkdtemp(prefix="close_emu_")
    port_file = os.path.join(tmpdir, "port")
    proc = subprocess.Popen([sys.executable, EMULATOR, "--port", "0", "--port-file", port_file,
                             "--quiet", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.tmpdir = tmpdir  # removed by stop_emulator
    deadline = time.monotonic() + 10
    while not os.path.exists(port_file):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_emulator(proc)
            raise RuntimeError("emulator did not start")
        time.sleep(0.02)
    with open(port_file) as f:
        port = int(f.read())
    return proc, port, port_file


def stop_emulator(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shutil.rmtree(proc.tmpdir, ignore_errors=True)


PROC = PORT = None


def setUpModule():
    global PROC, PORT
    PROC, PORT, _ = start_emulator()


def tearDownModule():
    stop_emulator(PROC)


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body, parse_float=Decimal)

    def header(self, name):
        return self.headers.get(name)


def request(method, path, body=None, auth=AUTH_TEST, headers=None, raw=None, timeout=10, port=None):
    """One request on a fresh connection.  body: JSON value; raw: bytes sent as is."""
    conn = http.client.HTTPConnection("127.0.0.1", port or PORT, timeout=timeout)
    hdrs = {}
    if auth:
        hdrs["Authorization"] = auth
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        payload = r.read()
        return Resp(r.status, r.headers, payload)
    finally:
        conn.close()


def control(method, path, body=None):
    r = request(method, "/_emulator/" + path, body=body, auth=None)
    assert r.status in (200, 204), (path, r.status, r.body)
    return r


def api_log():
    return control("GET", "log").body.decode()


def api_log_json():
    return control("GET", "log?format=json").json()


def objects_path(lead, **params):
    q = "&".join("%s=%s" % kv for kv in params.items())
    return "/api/v1/custom_object/?lead_id=%s%s" % (lead, "&" + q if q else "")


class EmulatorTest(unittest.TestCase):
    def setUp(self):
        control("POST", "reset")

    def assertStatus(self, r, status):
        self.assertEqual(r.status, status, r.body[:500])

    def new_subscription(self, **custom):
        body = {"custom_object_type_id": S, "lead_id": emu.LEAD_ONE, "name": "New"}
        body.update(custom)
        r = request("POST", "/api/v1/custom_object/", body)
        self.assertStatus(r, 201)
        return r.json()


class AuthTests(EmulatorTest):
    PATH = objects_path(emu.LEAD_ONE)

    def test_basic_with_empty_password(self):
        for key in ("api_test_key", "api_alice_key", "api_bob_key"):
            self.assertStatus(request("GET", self.PATH, auth=basic(key)), 200)

    def test_bearer(self):
        self.assertStatus(request("GET", self.PATH, auth="Bearer oauth_test_token"), 200)

    def test_rejections(self):
        for auth in (None, basic("wrong_key"), basic("api_test_key", "secret"), "Basic !!!notbase64",
                     "Bearer wrong", "Bearer api_test_key", "Token api_test_key", basic("api_test_key")[:-2],
                     "Basic " + base64.b64encode(b"api_test_key").decode()):
            r = request("GET", self.PATH, auth=auth)
            self.assertStatus(r, 401)
            self.assertEqual(r.json(), {"error": "Unauthorized"})
            self.assertTrue(r.header("RateLimit"))

    def test_labels_in_log_and_created_by(self):
        control("POST", "log/clear")
        request("GET", self.PATH, auth=basic("api_alice_key"))
        request("GET", self.PATH, auth="Bearer oauth_test_token")
        request("GET", self.PATH, auth=None)
        request("GET", self.PATH, auth=basic("nope"))
        self.assertEqual([e["auth"] for e in api_log_json()], ["alice", "oauth", "none", "invalid"])
        r = request("POST", "/api/v1/custom_object/",
                    {"custom_object_type_id": S, "lead_id": emu.LEAD_ONE, "name": "x"}, auth=basic("api_bob_key"))
        self.assertEqual(r.json()["created_by"], emu.USERS["bob"])


class ListTests(EmulatorTest):
    def test_big_lead_pages(self):
        names, flags = [], []
        for skip in (0, 100, 200):
            r = request("GET", objects_path(emu.LEAD_BIG, _skip=skip, _limit=100))
            self.assertStatus(r, 200)
            doc = r.json()
            self.assertEqual(set(doc), {"data", "has_more"})
            names += [o["name"] for o in doc["data"]]
            flags.append(doc["has_more"])
        self.assertEqual(flags, [True, True, False])
        self.assertEqual(names, ["Item %03d" % n for n in range(1, 251)])
        r = request("GET", objects_path(emu.LEAD_BIG, _skip=250)).json()
        self.assertEqual(r, {"data": [], "has_more": False})

    def test_default_limit_and_order(self):
        doc = request("GET", objects_path(emu.LEAD_BIG)).json()
        self.assertEqual(len(doc["data"]), 100)
        self.assertTrue(doc["has_more"])
        keys = [(o["date_created"], o["id"]) for o in doc["data"]]
        self.assertEqual(keys, sorted(keys))

    def test_lead_id_required(self):
        for path in ("/api/v1/custom_object/", "/api/v1/custom_object/?lead_id=",
                     "/api/v1/custom_object/?_limit=5"):
            r = request("GET", path)
            self.assertStatus(r, 400)
            self.assertEqual(r.json(), {"errors": [], "field-errors": {"lead_id": "This field is required."}})

    def test_unknown_and_empty_leads(self):
        for lead in ("lead_" + "x" * 43, emu.LEAD_EMPTY, "garbage"):
            self.assertEqual(request("GET", objects_path(lead)).json(), {"data": [], "has_more": False})
        self.assertEqual(len(request("GET", objects_path(emu.LEAD_ONE)).json()["data"]), 1)

    def test_limit_and_skip_caps(self):
        for bad in ("101", "0", "-1", "abc", "1.5", ""):
            r = request("GET", objects_path(emu.LEAD_BIG, _limit=bad))
            self.assertStatus(r, 400)
            self.assertIn("_limit", r.json()["field-errors"])
        self.assertIn("less than or equal to 100",
                      request("GET", objects_path(emu.LEAD_BIG, _limit=101)).json()["field-errors"]["_limit"])
        self.assertStatus(request("GET", objects_path(emu.LEAD_BIG, _limit=100)), 200)
        self.assertStatus(request("GET", objects_path(emu.LEAD_BIG, _skip=10000)), 200)
        r = request("GET", objects_path(emu.LEAD_BIG, _skip=10001))
        self.assertStatus(r, 400)
        self.assertIn("less than or equal to", r.body.decode())
        self.assertStatus(request("GET", objects_path(emu.LEAD_BIG, _skip=-1)), 400)
        control("POST", "config", {"max_limit": 10, "max_skip": 20})
        self.assertStatus(request("GET", objects_path(emu.LEAD_BIG, _limit=11)), 400)
        self.assertStatus(request("GET", objects_path(emu.LEAD_BIG, _skip=21)), 400)
        self.assertEqual(len(request("GET", objects_path(emu.LEAD_BIG)).json()["data"]), 10)

    def test_short_pages(self):
        control("POST", "config", {"short_pages": 30})
        page = request("GET", objects_path(emu.LEAD_BIG, _skip=0, _limit=40)).json()
        self.assertEqual((len(page["data"]), page["has_more"]), (30, True))
        page = request("GET", objects_path(emu.LEAD_BIG, _skip=240, _limit=40)).json()
        self.assertEqual((len(page["data"]), page["has_more"]), (10, False))

    def test_list_by_date_updated(self):
        first = request("GET", objects_path(emu.LEAD_BIG, _limit=1)).json()["data"][0]
        control("POST", "config", {"list_by_date_updated": 1})
        self.assertStatus(request("PUT", "/api/v1/custom_object/%s/" % first["id"], {"name": "Moved"}), 200)
        data = request("GET", objects_path(emu.LEAD_BIG, _skip=249, _limit=1)).json()["data"]
        self.assertEqual(data[0]["id"], first["id"])
        control("POST", "config", {"list_by_date_updated": 0})
        data = request("GET", objects_path(emu.LEAD_BIG, _limit=1)).json()["data"]
        self.assertEqual(data[0]["id"], first["id"])

    def test_fields(self):
        path = objects_path(emu.LEAD_MIXED, _fields="id,name,custom.%s,nonexistent" % CF_AMOUNT)
        data = request("GET", path).json()["data"]
        self.assertEqual([list(o) for o in data],
                         [["id", "name", "custom." + CF_AMOUNT]] * 2 + [["id", "name"]])
        self.assertEqual(data[1]["custom." + CF_AMOUNT], Decimal("12.50"))

    def test_type_filter(self):
        data = request("GET", objects_path(emu.LEAD_MIXED, custom_object_type_id=S)).json()["data"]
        self.assertEqual([o["id"] for o in data], [emu.OBJ_MIXED_ALPHA, emu.OBJ_MIXED_BETA])
        data = request("GET", objects_path(emu.LEAD_MIXED, custom_object_type_id=R)).json()["data"]
        self.assertEqual([o["id"] for o in data], [emu.OBJ_MIXED_GAMMA])
        self.assertEqual(request("GET", objects_path(emu.LEAD_MIXED, custom_object_type_id=D)).json()["data"], [])

    def test_mixed_values_verbatim(self):
        r = request("GET", objects_path(emu.LEAD_MIXED))
        text = r.body.decode()
        self.assertIn('"custom.%s":12.50' % CF_AMOUNT, text)
        self.assertIn('"custom.%s":12345678901234.5678' % CF_BALANCE, text)
        self.assertIn('"custom.%s":-17.25' % CF_BALANCE, text)
        alpha, beta, gamma = r.json()["data"]
        self.assertEqual(alpha["custom." + CF_LABELS], ["alpha", "Zürich ✓", 'say "hi"'])
        self.assertIs(alpha["custom." + emu.CF[S, "hidden"]], True)
        self.assertEqual(alpha["custom." + CF_STATUS], "active")
        self.assertEqual(alpha["custom." + CF_RENEWED], "2021-03-15T10:30:00.000000+00:00")
        self.assertEqual([k for k in gamma if k.startswith("custom.")], [])
        self.assertEqual(len(gamma), 9)

    def test_sheet_record(self):
        r = request("GET", "/api/v1/custom_object/%s/" % emu.OBJ_SHEET)
        self.assertStatus(r, 200)
        rec = r.json()
        self.assertEqual(rec["custom_object_type_id"], "cotype_1h5m6uHM9BZOpwVhyRJb4Y")
        self.assertEqual(rec["lead_id"], "lead_hwnL36A2iEMSLIlmGhsdrcmOJzTUzqEHwr66wrA1K2T")
        self.assertEqual(rec["name"], "Resource")
        self.assertEqual(rec["date_created"], "2020-08-04T16:45:35.367000+00:00")
        self.assertEqual(rec["date_updated"], "2020-08-04T17:37:56.439000+00:00")
        self.assertEqual(rec["custom.cf_jnxTQDKnSxCEBtD5dvZdNgTzC3CqeyWUyU349PBA9Wf"],
                         "custobj_v0VS1AZAg8LjnpBm1hZz83UZ3yWK0n9SdVV5i8yC6he")
        self.assertRegex(rec["organization_id"], r"^orga_\w+$")
        self.assertRegex(rec["created_by"], r"^user_\w+$")
        r = request("GET", "/api/v1/custom_object/%s/?_fields=id,lead_id" % emu.OBJ_SHEET)
        self.assertEqual(list(r.json()), ["id", "lead_id"])

    def test_retrieve_404(self):
        for oid in ("custobj_" + "Z" * 43, "custobj_bad-id", "lead_" + "a" * 43, "x", "custobj_%2E%2E"):
            r = request("GET", "/api/v1/custom_object/%s/" % oid)
            self.assertStatus(r, 404)
            self.assertIn("error", r.json())

    def test_sample_counts(self):
        counts = control("GET", "data/leads").json()
        for key, lead in emu.SAMPLE_LEADS.items():
            self.assertEqual(counts[lead], emu.SAMPLE_LEAD_COUNTS[key], key)
        for lead in counts:
            self.assertRegex(lead, r"^lead_[0-9A-Za-z]{43}$")
        for lead in emu.LEAD_PLAIN:
            self.assertTrue(2 <= counts[lead] <= 4)

    def test_method_override(self):
        r = request("POST", "/api/v1/custom_object/", {"_params": {"lead_id": emu.LEAD_BIG, "_limit": 5,
                                                                   "_fields": ["id", "name"]}},
                    headers={"x-http-method-override": "GET"})
        self.assertStatus(r, 200)
        doc = r.json()
        self.assertEqual([o["name"] for o in doc["data"]], ["Item 00%d" % i for i in range(1, 6)])
        self.assertEqual(list(doc["data"][0]), ["id", "name"])


class WriteTests(EmulatorTest):
    def test_create(self):
        rec = self.new_subscription(**{
            "custom." + CF_AMOUNT: 12.50, "custom." + CF_RENEWED: "2021-01-01T10:00:00+02:00",
            "custom." + CF_LABELS: ["a", "Zürich ✓"], "custom." + CF_STATUS: None,
            "custom." + CF_START: "2024-02-29"})
        self.assertRegex(rec["id"], r"^custobj_[0-9A-Za-z]{43}$")
        self.assertEqual(rec["custom." + CF_RENEWED], "2021-01-01T08:00:00.000000+00:00")
        self.assertNotIn("custom." + CF_STATUS, rec)
        self.assertEqual(rec["created_by"], emu.USERS["test"])
        self.assertEqual(rec["date_created"], rec["date_updated"])
        self.assertRegex(rec["date_created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
        got = request("GET", "/api/v1/custom_object/%s/" % rec["id"]).json()
        self.assertEqual(got, rec)
        last = request("GET", objects_path(emu.LEAD_ONE)).json()["data"][-1]
        self.assertEqual(last["id"], rec["id"])

    def test_number_text_preserved(self):
        raw = ('{"custom_object_type_id": "%s", "lead_id": "%s", "name": "n", "custom.%s": 12345678901234.5678}'
               % (S, emu.LEAD_ONE, CF_AMOUNT)).encode()
        r = request("POST", "/api/v1/custom_object/", raw=raw, headers={"Content-Type": "application/json"})
        self.assertStatus(r, 201)
        self.assertIn(b'12345678901234.5678', r.body)

    def test_create_required(self):
        r = request("POST", "/api/v1/custom_object/", {})
        self.assertStatus(r, 400)
        self.assertEqual(set(r.json()["field-errors"]), {"custom_object_type_id", "lead_id", "name"})
        r = request("POST", "/api/v1/custom_object/",
                    {"custom_object_type_id": "cotype_" + "N" * 22, "lead_id": "lead_" + "N" * 43, "name": ""})
        self.assertEqual(set(r.json()["field-errors"]), {"custom_object_type_id", "lead_id", "name"})

    def test_create_strict_keys(self):
        base = {"custom_object_type_id": S, "lead_id": emu.LEAD_ONE, "name": "N"}
        for key in emu.READ_ONLY_KEYS + ("foo", "custom", "custom." + emu.CF[R, "text"], "custom.cf_nope"):
            r = request("POST", "/api/v1/custom_object/", dict(base, **{key: "x"}))
            self.assertStatus(r, 400)
            self.assertEqual(list(r.json()["field-errors"]), [key])
        self.assertEqual(control("GET", "data/leads").json()[emu.LEAD_ONE], 1)

    def test_create_value_validation(self):
        bad = {
            CF_AMOUNT: ["12", True, "x", [1]],
            CF_START: ["2021-13-01", "2021-1-1", 20210101, "2021-01-01T00:00:00+00:00"],
            CF_RENEWED: ["2021-01-01", "2021-01-01T10:00:00", "yesterday"],
            CF_STATUS: ["ACTIVE", "unknown", 1, ["active"]],
            CF_LABELS: ["single", [1], [None]],
            CF_CHANNELS: ["email", ["fax"]],
            CF_PLAN: [1, ["a"]],
            emu.CF[S, "user"]: ["alice", "cont_abc"],
            emu.CF[S, "custom_object"]: ["custobj_short"],
            emu.CF[S, "hidden"]: [[1], {"a": 1}],
        }
        for fid, values in bad.items():
            for value in values:
                r = request("POST", "/api/v1/custom_object/",
                            {"custom_object_type_id": S, "lead_id": emu.LEAD_ONE, "name": "N",
                             "custom." + fid: value})
                self.assertStatus(r, 400)
                self.assertIn("custom." + fid, r.json()["field-errors"], (fid, value))

    def test_update(self):
        rec = self.new_subscription(**{"custom." + CF_AMOUNT: 1, "custom." + CF_PLAN: "p"})
        path = "/api/v1/custom_object/%s/" % rec["id"]
        r = request("PUT", path, {"name": "Renamed", "custom." + CF_AMOUNT: None,
                                  "custom." + CF_STATUS: "cancelled", "lead_id": emu.LEAD_ONE},
                    auth=basic("api_alice_key"))
        self.assertStatus(r, 200)
        new = r.json()
        self.assertEqual(new["name"], "Renamed")
        self.assertNotIn("custom." + CF_AMOUNT, new)
        self.assertEqual(new["custom." + CF_PLAN], "p")
        self.assertEqual(new["custom." + CF_STATUS], "cancelled")
        self.assertGreater(new["date_updated"], rec["date_updated"])
        self.assertEqual(new["date_created"], rec["date_created"])
        self.assertEqual(new["updated_by"], emu.USERS["alice"])
        self.assertEqual(new["created_by"], emu.USERS["test"])
        self.assertEqual(request("GET", path).json(), new)

    def test_update_strict(self):
        path = "/api/v1/custom_object/%s/" % emu.OBJ_MIXED_ALPHA
        before = request("GET", path).json()
        for body in ({"lead_id": emu.LEAD_BIG}, {"custom_object_type_id": R}, {"id": emu.OBJ_MIXED_ALPHA},
                     {"date_updated": before["date_updated"]}, {"foo": 1}, {"name": None},
                     {"custom." + emu.CF[R, "text"]: "x"}, {"custom." + CF_STATUS: "nope"}):
            r = request("PUT", path, body)
            self.assertStatus(r, 400)
            self.assertEqual(list(r.json()["field-errors"]), list(body))
        self.assertEqual(request("GET", path).json(), before)
        self.assertStatus(request("PUT", "/api/v1/custom_object/custobj_%s/" % ("Q" * 43), {"name": "x"}), 404)
        self.assertStatus(request("PATCH", path, {"name": "x"}), 405)

    def test_delete(self):
        path = "/api/v1/custom_object/%s/" % emu.OBJ_MIXED_BETA
        r = request("DELETE", path)
        self.assertStatus(r, 204)
        self.assertEqual(r.body, b"")
        self.assertIsNone(r.header("Content-Length"))
        self.assertStatus(request("GET", path), 404)
        self.assertStatus(request("DELETE", path), 404)
        ids = [o["id"] for o in request("GET", objects_path(emu.LEAD_MIXED)).json()["data"]]
        self.assertEqual(ids, [emu.OBJ_MIXED_ALPHA, emu.OBJ_MIXED_GAMMA])
        ids = [o["id"] for o in request("GET", objects_path(emu.LEAD_MIXED, custom_object_type_id=S)).json()["data"]]
        self.assertEqual(ids, [emu.OBJ_MIXED_ALPHA])

    def test_deterministic_ids_after_reset(self):
        first = self.new_subscription()
        control("POST", "reset")
        second = self.new_subscription()
        self.assertEqual((first["id"], first["date_created"]), (second["id"], second["date_created"]))
        self.assertStatus(request("GET", "/api/v1/custom_object/%s/" % first["id"]), 200)


class TypeAndLeadTests(EmulatorTest):
    def test_types(self):
        r = request("GET", "/api/v1/custom_object_type/")
        self.assertStatus(r, 200)
        doc = r.json()
        self.assertEqual(list(doc), ["data"])
        types = {t["id"]: t for t in doc["data"]}
        self.assertEqual(types[R]["name"], "Resource")
        self.assertEqual(types[emu.TYPE_EMPTY]["fields"], [])
        for t in doc["data"]:
            self.assertRegex(t["id"], r"^cotype_[0-9A-Za-z]{22}$")
            for k in ("date_created", "date_updated"):
                self.assertRegex(t[k], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")
            for k in ("name_plural", "description", "api_create_only", "back_reference_fields"):
                self.assertIn(k, t)
            for f in t["fields"]:
                self.assertRegex(f["id"], r"^cf_[0-9A-Za-z]{43}$")
        fields = {f["id"]: f for t in doc["data"] for f in t["fields"]}
        self.assertEqual(fields[emu.CF_RESOURCE_PARENT]["type"], "custom_object")
        self.assertEqual(fields[emu.CF_RESOURCE_PARENT]["referenced_custom_type_id"], R)
        self.assertEqual(fields[CF_STATUS]["choices"], ["active", "paused", "cancelled"])
        self.assertNotIn("choices", fields[emu.CF[R, "choices"]])
        kinds = {(f["type"], f["accepts_multiple_values"]) for f in types[S]["fields"]}
        for kind in ("text", "textarea", "number", "date", "datetime", "choices", "user", "contact",
                     "custom_object", "hidden", "future_type"):
            self.assertIn((kind, False), kinds)
        self.assertIn(("text", True), kinds)
        self.assertIn(("choices", True), kinds)
        self.assertIn(emu.AWKWARD_NAME, [f["name"] for f in types[S]["fields"]])
        back = [f["id"] for f in types[R]["back_reference_fields"]]
        self.assertIn(emu.CF[S, "custom_object"], back)

    def test_fields_endpoints(self):
        collected, skip = [], 0
        while True:
            doc = request("GET", "/api/v1/custom_field/custom_object_type/?_limit=10&_skip=%d" % skip).json()
            collected += doc["data"]
            skip += 10
            if not doc["has_more"]:
                break
        self.assertEqual([f["id"] for f in collected], [spec[2] for spec in emu.FIELD_SPECS])
        fid = emu.CF[R, "choices"]
        r = request("GET", "/api/v1/custom_field/custom_object_type/%s/" % fid)
        self.assertEqual(r.json()["choices"], ["low", "medium", "high"])
        self.assertStatus(request("GET", "/api/v1/custom_field/custom_object_type/cf_%s/" % ("n" * 43)), 404)
        self.assertStatus(request("GET", "/api/v1/custom_field/custom_object_type/?_limit=1000"), 400)

    def test_leads(self):
        doc = request("GET", "/api/v1/lead/?_limit=4").json()
        self.assertEqual(doc["total_results"], len(emu.SAMPLE_LEADS))
        self.assertTrue(doc["has_more"])
        self.assertEqual(len(doc["data"]), 4)
        lead = request("GET", "/api/v1/lead/%s/" % emu.LEAD_BIG).json()
        for k in ("id", "name", "display_name", "status_id", "status_label", "date_created", "date_updated"):
            self.assertIn(k, lead)
        # most recently updated first (as recorded from Close), ties by id
        doc = request("GET", "/api/v1/lead/?_skip=8&_fields=id").json()
        self.assertEqual(doc["data"], [{"id": emu.LEAD_MIXED}, {"id": emu.LEAD_SHEET}])
        self.assertFalse(doc["has_more"])
        self.assertStatus(request("GET", "/api/v1/lead/lead_%s/" % ("n" * 43)), 404)


class HttpTests(EmulatorTest):
    def test_ratelimit_header_everywhere(self):
        cases = [("GET", objects_path(emu.LEAD_ONE), None, 200),
                 ("GET", "/api/v1/custom_object/", None, 400),
                 ("GET", "/api/v1/nothing/", None, 404),
                 ("PATCH", "/api/v1/custom_object/", None, 405),
                 ("POST", "/api/v1/custom_object/", {"custom_object_type_id": S, "lead_id": emu.LEAD_ONE,
                                                     "name": "x"}, 201)]
        for method, path, body, status in cases:
            r = request(method, path, body)
            self.assertStatus(r, status)
            self.assertRegex(r.header("RateLimit"), r"^limit=\d+, remaining=\d+, reset=[\d.]+$")
            self.assertEqual(r.header("Content-Type"), "application/json")
        new_id = json.loads(r.body)["id"]
        r = request("DELETE", "/api/v1/custom_object/%s/" % new_id)
        self.assertStatus(r, 204)
        self.assertTrue(r.header("RateLimit"))
        r = request("GET", objects_path(emu.LEAD_ONE), auth=None)
        self.assertStatus(r, 401)
        self.assertTrue(r.header("RateLimit"))

    def test_remaining_counts_down(self):
        rem = [int(re.search(r"remaining=(\d+)", request("GET", "/api/v1/custom_object_type/")
                             .header("RateLimit")).group(1)) for _ in range(3)]
        self.assertEqual(rem[0] - rem[2], 2)

    def test_rate_limit_429(self):
        control("POST", "config", {"rate_limit_per_sec": 3})
        path = objects_path(emu.LEAD_ONE)
        codes = [request("GET", path).status for _ in range(3)]
        self.assertEqual(codes, [200, 200, 200])
        r = request("GET", path)
        self.assertStatus(r, 429)
        self.assertEqual(r.json()["error"]["message"], "API rate limit exceeded")
        self.assertGreater(r.json()["error"]["rate_reset"], 0)
        self.assertGreaterEqual(int(r.header("Retry-After")), 1)
        self.assertRegex(r.header("RateLimit"), r"^limit=3, remaining=0, reset=")
        # other endpoint group and other key are separate
        self.assertStatus(request("GET", "/api/v1/custom_object_type/"), 200)
        self.assertStatus(request("GET", "/api/v1/custom_object/%s/" % emu.OBJ_ONE), 200)
        self.assertStatus(request("GET", path, auth=basic("api_alice_key")), 200)
        time.sleep(float(r.json()["error"]["rate_reset"]) + 0.05)
        self.assertStatus(request("GET", path), 200)

    def test_rate_limit_window(self):
        # a short window: the limit is per window, and slots free after it
        control("POST", "config", {"rate_limit_per_sec": 2, "rate_limit_window_ms": 100})
        path = objects_path(emu.LEAD_ONE)
        codes = [request("GET", path).status for _ in range(3)]
        self.assertEqual(codes, [200, 200, 429])
        r = request("GET", path)
        reset = float(re.search(r"reset=([\d.]+)", r.header("RateLimit")).group(1))
        self.assertLessEqual(reset, 0.1)
        time.sleep(0.12)
        self.assertStatus(request("GET", path), 200)

    def test_keep_alive(self):
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        try:
            for _ in range(3):
                conn.request("GET", objects_path(emu.LEAD_ONE), headers={"Authorization": AUTH_TEST})
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.version, 11)
            conn.request("DELETE", "/api/v1/custom_object/%s/" % emu.OBJ_ONE, headers={"Authorization": AUTH_TEST})
            r = conn.getresponse()
            self.assertEqual((r.status, r.read()), (204, b""))
            conn.request("GET", "/_emulator/health")
            r = conn.getresponse()
            self.assertEqual(json.loads(r.read()), {"ok": True})
        finally:
            conn.close()

    def test_bad_input(self):
        hdr = {"Content-Type": "application/json"}
        r = request("POST", "/api/v1/custom_object/", raw=b"{not json", headers=hdr)
        self.assertStatus(r, 400)
        self.assertIn("error", r.json())
        self.assertStatus(request("POST", "/api/v1/custom_object/", raw=b"[1,2]", headers=hdr), 400)
        self.assertStatus(request("POST", "/api/v1/custom_object/", raw=b'{"a": NaN}', headers=hdr), 400)
        self.assertStatus(request("POST", "/api/v1/custom_object/", raw=b"\xff\xfe", headers=hdr), 400)
        self.assertStatus(request("POST", "/api/v1/custom_object/", raw=b"", headers=hdr), 400)
        self.assertStatus(request("POST", "/api/v1/custom_object/", raw=b"{}",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
        self.assertStatus(request("GET", "/api/v1/custom_object/?lead_id=%zz"), 400)
        self.assertStatus(request("GET", "/api/v1/custom_object/%ff/"), 400)
        self.assertStatus(request("GET", "/api/v1/custom_object"), 404)
        self.assertStatus(request("GET", "/api/v1/"), 404)
        self.assertStatus(request("GET", "/elsewhere"), 404)
        self.assertStatus(request("HEAD", objects_path(emu.LEAD_ONE)), 405)
        self.assertStatus(request("FOO", objects_path(emu.LEAD_ONE)), 405)
        self.assertStatus(request("DELETE", "/api/v1/custom_object/"), 405)
        self.assertStatus(request("HEAD", "/_emulator/log", auth=None), 405)
        self.assertStatus(request("GET", "/_emulator/nothing", auth=None), 404)
        self.assertStatus(request("POST", "/_emulator/config", {"bogus": 1}, auth=None), 400)
        self.assertStatus(request("POST", "/_emulator/faults", {"action": "explode"}, auth=None), 400)
        # a broken request line gets an answer, and the server lives on
        with socket.create_connection(("127.0.0.1", PORT), timeout=5) as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400"))
        self.assertStatus(request("GET", objects_path(emu.LEAD_ONE)), 200)

    def test_chunked_body(self):
        body = json.dumps({"custom_object_type_id": S, "lead_id": emu.LEAD_ONE, "name": "chunky"}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        try:
            conn.request("POST", "/api/v1/custom_object/", body=iter([body[:10], body[10:]]),
                         headers={"Authorization": AUTH_TEST, "Content-Type": "application/json"},
                         encode_chunked=True)
            r = conn.getresponse()
            self.assertEqual(r.status, 201)
            self.assertEqual(json.loads(r.read())["name"], "chunky")
        finally:
            conn.close()


class LogTests(EmulatorTest):
    def test_text_log(self):
        control("POST", "log/clear")
        raw_path = "/api/v1/custom_object/?_fields=id,name&lead_id=%s&z=%%41+b&z=1" % emu.LEAD_ONE
        request("GET", raw_path)
        body = ('{ "name" : "N",  "lead_id": "%s", "custom_object_type_id": "%s", "custom.%s": 12.50,'
                ' "custom.%s": ["Zürich ✓", "q\\"x"] }' % (emu.LEAD_ONE, S, CF_AMOUNT, CF_LABELS))
        request("POST", "/api/v1/custom_object/", raw=body.encode(), headers={"Content-Type": "application/json"})
        request("PUT", "/api/v1/custom_object/%s/" % emu.OBJ_ONE, raw=b"not\njson",
                headers={"Content-Type": "text/plain"})
        request("GET", "/_emulator/data/leads", auth=None)   # control calls are not logged
        request("GET", "/api/v1/lead/", auth="Bearer oauth_test_token")
        expected = [
            "GET " + raw_path,
            'POST /api/v1/custom_object/ {"custom.%s":12.50,"custom.%s":["Zürich ✓","q\\"x"],'
            '"custom_object_type_id":"%s","lead_id":"%s","name":"N"}' % (CF_AMOUNT, CF_LABELS, S, emu.LEAD_ONE),
            "PUT /api/v1/custom_object/%s/ not\\njson" % emu.OBJ_ONE,
            "GET /api/v1/lead/",
        ]
        self.assertEqual(api_log(), "\n".join(expected) + "\n")

    def test_json_log_and_no_credentials(self):
        control("POST", "log/clear")
        request("GET", objects_path(emu.LEAD_ONE, _fields="id%2Cname"), headers={"X-Custom": "v"})
        request("POST", "/api/v1/custom_object/", {"custom_object_type_id": S, "lead_id": emu.LEAD_ONE,
                                                   "name": "N"}, auth=basic("api_alice_key"))
        request("GET", "/api/v1/lead/", auth="Bearer oauth_test_token")
        request("GET", "/api/v1/lead/", auth=basic("api_test_key", "secret"))
        request("GET", "/api/v1/lead/", auth="Bearer oauth_test_token_wrong")
        entries = api_log_json()
        self.assertEqual(len(entries), 5)
        e = entries[0]
        self.assertEqual(set(e), {"method", "raw_path", "path", "query", "body", "status", "auth",
                                  "client_port", "headers", "time"})
        self.assertIsInstance(e["client_port"], int)
        self.assertEqual(e["raw_path"], objects_path(emu.LEAD_ONE, _fields="id%2Cname"))
        self.assertEqual(e["path"], "/api/v1/custom_object/")
        self.assertEqual(e["query"], {"lead_id": [emu.LEAD_ONE], "_fields": ["id,name"]})
        self.assertIsNone(e["body"])
        self.assertEqual((e["status"], e["auth"]), (200, "test"))
        self.assertEqual(e["headers"]["x-custom"], "v")
        for entry in entries:
            self.assertNotIn("authorization", entry["headers"])
            self.assertEqual(entry["headers"], {k.lower(): v for k, v in entry["headers"].items()})
        self.assertEqual(entries[1]["body"]["name"], "N")
        self.assertEqual([x["status"] for x in entries], [200, 201, 200, 401, 401])
        self.assertEqual([x["auth"] for x in entries], ["test", "alice", "oauth", "invalid", "invalid"])
        everything = control("GET", "log?format=json").body.decode() + api_log()
        for secret in SECRETS:
            self.assertNotIn(secret, everything)
        control("POST", "log/clear")
        self.assertEqual(api_log(), "")


class FaultTests(EmulatorTest):
    PATH = objects_path(emu.LEAD_ONE)

    def add(self, **rule):
        return control("POST", "faults", rule).json()

    def test_status_times_and_matching(self):
        self.add(path_prefix="/api/v1/custom_object/", action="status", status=503, times=2,
                 headers={"Retry-After": "0"})
        self.assertStatus(request("GET", "/api/v1/lead/"), 200)   # prefix does not match
        r = request("GET", self.PATH)
        self.assertStatus(r, 503)
        self.assertEqual(r.json(), {"error": "injected"})
        self.assertEqual(r.header("Retry-After"), "0")
        self.assertTrue(r.header("RateLimit"))
        self.assertStatus(request("GET", self.PATH), 503)
        self.assertStatus(request("GET", self.PATH), 200)
        self.add(method="POST", action="status", status=502, body="plain text", times=-1,
                 headers={"Content-Type": "text/plain", "RateLimit": None})
        self.assertStatus(request("GET", self.PATH), 200)
        for _ in range(3):
            r = request("POST", "/api/v1/custom_object/", {"name": "x"})
            self.assertEqual((r.status, r.body), (502, b"plain text"))
            self.assertIsNone(r.header("RateLimit"))
        self.assertEqual(len(control("GET", "faults").json()["rules"]), 1)
        control("DELETE", "faults")
        self.assertStatus(request("POST", "/api/v1/custom_object/", {"name": "x"}), 400)
        statuses = [e["status"] for e in api_log_json()]
        self.assertEqual(statuses, [200, 503, 503, 200, 200, 502, 502, 502, 400])

    def test_query_contains(self):
        self.add(path_prefix="/api/v1/custom_object/", query_contains="&_skip=99&",
                 action="status", status=503)
        self.assertStatus(request("GET", objects_path(emu.LEAD_ONE, _skip=0, _limit=99)), 200)
        self.assertStatus(request("GET", objects_path(emu.LEAD_ONE, _skip=99, _limit=99)), 503)
        self.assertStatus(request("GET", objects_path(emu.LEAD_ONE, _skip=99, _limit=99)), 200)
        r = request("POST", "/_emulator/faults", body={"action": "drop", "query_contains": 1},
                    auth=None)
        self.assertStatus(r, 400)

    def test_drop(self):
        self.add(action="drop")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            request("GET", self.PATH)
        self.assertStatus(request("GET", self.PATH), 200)
        self.assertEqual([e["status"] for e in api_log_json()], [0, 200])

    def test_hang(self):
        self.add(action="hang", seconds=5)
        t0 = time.monotonic()
        with self.assertRaises((TimeoutError, socket.timeout)):
            request("GET", self.PATH, timeout=0.3)
        self.assertLess(time.monotonic() - t0, 2)
        self.add(action="hang", seconds=0.2)
        t0 = time.monotonic()
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            request("GET", self.PATH)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertEqual([e["status"] for e in api_log_json()], [0, 0])

    def test_garbage(self):
        self.add(action="garbage")
        r = request("GET", self.PATH)
        self.assertEqual((r.status, r.body), (200, b"<html>oops</html>"))
        self.assertTrue(r.header("Content-Type").startswith("text/html"))

    def test_truncate(self):
        self.add(action="truncate", method="POST")
        body = {"custom_object_type_id": S, "lead_id": emu.LEAD_ONE, "name": "half"}
        with self.assertRaises(http.client.IncompleteRead):
            request("POST", "/api/v1/custom_object/", body)
        # the request was processed: the object exists
        self.assertEqual(control("GET", "data/leads").json()[emu.LEAD_ONE], 2)
        self.assertEqual(api_log_json()[-1]["status"], 201)

    def test_truncate_without_body(self):
        obj = control("GET", "data/objects?lead_id=" + emu.LEAD_ONE).json()[0]["id"]
        self.add(action="truncate", method="DELETE")
        with self.assertRaises(http.client.IncompleteRead):
            request("DELETE", "/api/v1/custom_object/%s/" % obj)
        # the request was processed: the object is gone
        self.assertStatus(request("DELETE", "/api/v1/custom_object/%s/" % obj), 404)

    def test_replace_body(self):
        self.add(action="replace_body", method="POST", body="{\"id\": ")
        body = {"custom_object_type_id": S, "lead_id": emu.LEAD_ONE, "name": "cut"}
        r = request("POST", "/api/v1/custom_object/", body)
        self.assertEqual((r.status, r.body), (201, b'{"id": '))
        # the request was processed: the object exists
        self.assertEqual(control("GET", "data/leads").json()[emu.LEAD_ONE], 2)

    def test_delay_and_latency(self):
        self.add(action="delay", seconds=0.3)
        t0 = time.monotonic()
        self.assertStatus(request("GET", self.PATH), 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        control("POST", "config", {"latency_ms": 200})
        t0 = time.monotonic()
        self.assertStatus(request("GET", self.PATH), 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        t0 = time.monotonic()
        control("GET", "health")
        self.assertLess(time.monotonic() - t0, 0.15)   # latency is for the API only


class ControlTests(EmulatorTest):
    def test_max_url(self):
        # a request target over max_url is 414; the same GET as a POST with
        # x-http-method-override: GET and {"_params": {...}} goes through
        control("POST", "config", {"max_url": 200})
        path = "/api/v1/custom_object/?lead_id=%s&_fields=%s" % (emu.LEAD_MIXED, ",".join(["name"] * 30))
        self.assertStatus(request("GET", path), 414)
        r = request("POST", "/api/v1/custom_object/",
                    {"_params": {"lead_id": emu.LEAD_MIXED, "_limit": "2"}},
                    headers={"x-http-method-override": "GET"})
        self.assertStatus(r, 200)
        self.assertEqual(len(r.json()["data"]), 2)
        control("POST", "reset")

    def test_reset(self):
        control("POST", "config", {"latency_ms": 5, "max_limit": 7})
        control("POST", "faults", {"action": "status", "times": -1, "path_prefix": "/api/v1/lead/"})
        request("DELETE", "/api/v1/custom_object/%s/" % emu.OBJ_SHEET)
        self.new_subscription()
        control("POST", "reset")
        self.assertEqual(control("GET", "config").json(),
                         {"latency_ms": 0, "max_limit": 100, "max_skip": 10000, "rate_limit_per_sec": 0,
                          "cursor_ttl": 30, "search_max_results": 10000, "search_rate_limit_per_sec": 0,
                          "short_pages": 0, "list_by_date_updated": 0, "crm_max_limit": 200,
                          "lead_max_skip": 35000, "crm_max_skip": 0, "crm_search_day_granular": 0,
                          "stale_reads": 0, "max_url": 0, "stale_lists": 0})
        self.assertEqual(control("GET", "faults").json()["rules"], [])
        self.assertEqual(api_log(), "")
        self.assertStatus(request("GET", "/api/v1/custom_object/%s/" % emu.OBJ_SHEET), 200)
        self.assertEqual(control("GET", "data/leads").json()[emu.LEAD_ONE], 1)

    def test_data_objects(self):
        objs = control("GET", "data/objects?lead_id=%s" % emu.LEAD_MIXED).json()
        self.assertEqual([o["id"] for o in objs], [emu.OBJ_MIXED_ALPHA, emu.OBJ_MIXED_BETA, emu.OBJ_MIXED_GAMMA])

    def test_bulk_objects_fast(self):
        lead = emu.pad_id("lead_", "Bench", 43)
        t0 = time.monotonic()
        r = control("POST", "objects", {"lead_id": lead, "custom_object_type_id": D, "count": 50000,
                                        "name_prefix": "Bulk"})
        self.assertEqual(r.json(), {"created": 50000})
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(control("GET", "data/leads").json()[lead], 50000)
        control("POST", "config", {"max_skip": 100000})
        t0 = time.monotonic()
        doc = request("GET", objects_path(lead, _skip=49950, _limit=100)).json()
        self.assertLess(time.monotonic() - t0, 0.5)
        self.assertEqual(len(doc["data"]), 50)
        self.assertFalse(doc["has_more"])
        self.assertEqual(doc["data"][-1]["name"], "Bulk 50000")
        self.assertEqual(request("GET", "/api/v1/lead/%s/" % lead).json()["id"], lead)
        self.assertStatus(request("POST", "/_emulator/objects", {"lead_id": "lead_x", "custom_object_type_id": D,
                                                                 "count": 1}, auth=None), 400)

    def test_bulk_objects_date_created(self):
        lead = emu.pad_id("lead_", "Ties", 43)
        r = control("POST", "objects", {"lead_id": lead, "custom_object_type_id": D, "count": 3,
                                        "date_created": "2019-01-01T01:00:00+01:00"})
        self.assertEqual(r.json(), {"created": 3})
        objs = control("GET", "data/objects?lead_id=%s" % lead).json()
        self.assertEqual({o["date_created"] for o in objs}, {"2019-01-01T00:00:00.000000+00:00"})
        self.assertStatus(request("POST", "/_emulator/objects", {"lead_id": lead, "custom_object_type_id": D,
                                                                 "count": 1, "date_created": "yesterday"},
                                  auth=None), 400)


# ---------------------------------------------------------------------------
# Advanced Filtering: POST /api/v1/data/search/
# ---------------------------------------------------------------------------

SEARCH = "/api/v1/data/search/"
CF_CAPACITY = emu.CF[R, "number"]
CF_PRIORITY = emu.CF[R, "choices"]
CF_HIDDEN = emu.CF[S, "hidden"]
ALL_SAMPLE_OBJECTS = sum(emu.SAMPLE_LEAD_COUNTS.values())   # 270


def rf(name):
    return {"type": "regular_field", "object_type": "custom_object", "field_name": name}


def cfield(fid):
    return {"type": "custom_field", "custom_field_id": fid}


def fc(field, condition, negate=False):
    node = {"type": "field_condition", "field": field, "condition": condition}
    if negate:
        node["negate"] = True
    return node


def term(field, *values, negate=False):
    return fc(field, {"type": "term", "values": list(values)}, negate)


def text(field, value, mode="exact_value", negate=False):
    return fc(field, {"type": "text", "mode": mode, "value": value}, negate)


def nrange(field, negate=False, **bounds):
    return fc(field, dict(type="number_range", **bounds), negate)


def utc(value):
    return {"type": "fixed_utc", "value": value}


def local(value, which):
    return {"type": "fixed_local_date", "value": value, "which": which}


def mrange(field, on_or_after=None, before=None):
    cond = {"type": "moment_range"}
    if on_or_after is not None:
        cond["on_or_after"] = on_or_after
    if before is not None:
        cond["before"] = before
    return fc(field, cond)


def AND(*queries, negate=False):
    node = {"type": "and", "queries": list(queries)}
    if negate:
        node["negate"] = True
    return node


def OR(*queries):
    return {"type": "or", "queries": list(queries)}


def in_lead(lead, *queries):
    return AND({"type": "object_type", "object_type": "custom_object"}, term(rf("lead_id"), lead), *queries)


class SearchTests(EmulatorTest):
    def search(self, body, status=200, **kw):
        r = request("POST", SEARCH, body, **kw)
        self.assertStatus(r, status)
        return r.json()

    def names(self, query, **extra):
        """Names of every match (all pages), in answer order."""
        body = dict({"query": query, "_fields": {"custom_object": ["name"]}, "_limit": 200}, **extra)
        out, doc = [], self.search(body)
        while True:
            out += [o["name"] for o in doc["data"]]
            if doc["cursor"] is None:
                return out
            doc = self.search(dict(body, cursor=doc["cursor"]))

    def total(self, query):
        return self.search({"query": query, "include_counts": True, "_limit": 1})["count"]["total"]

    def test_default_item_shape_and_descending_order(self):
        doc = self.search({"query": in_lead(emu.LEAD_MIXED), "cursor": None})
        self.assertEqual(set(doc), {"data", "cursor"})
        self.assertIsNone(doc["cursor"])
        self.assertEqual(doc["data"], [{"__object_type": "custom_object", "id": oid} for oid in
                                       (emu.OBJ_MIXED_GAMMA, emu.OBJ_MIXED_BETA, emu.OBJ_MIXED_ALPHA)])
        doc = self.search({"query": {"type": "match_all"}, "_fields": {"custom_object": ["name"]}})
        self.assertEqual(len(doc["data"]), 100)              # default _limit
        self.assertIsInstance(doc["cursor"], str)
        self.assertEqual(doc["data"][0]["name"], "Item 250")  # newest first

    def test_fields(self):
        r = request("POST", SEARCH, {"query": in_lead(emu.LEAD_MIXED), "_fields": {
            "custom_object": ["name", "id", "custom." + CF_AMOUNT, "custom." + CF_LABELS, "nonexistent"],
            "lead": ["id"]}})
        self.assertStatus(r, 200)
        self.assertIn(('"custom.%s":12.50' % CF_AMOUNT).encode(), r.body)   # numbers verbatim
        gamma, beta, alpha = r.json()["data"]
        self.assertEqual(list(alpha), ["__object_type", "id", "name", "custom." + CF_AMOUNT, "custom." + CF_LABELS])
        self.assertEqual(alpha["custom." + CF_LABELS], ["alpha", "Zürich ✓", 'say "hi"'])
        self.assertEqual(list(beta), ["__object_type", "id", "name", "custom." + CF_AMOUNT, "custom." + CF_LABELS])
        self.assertEqual(gamma, {"__object_type": "custom_object", "id": emu.OBJ_MIXED_GAMMA, "name": "Mixed Gamma"})

    def test_nodes_and_negate(self):
        everything = {"type": "match_all"}
        self.assertEqual(self.total(everything), ALL_SAMPLE_OBJECTS)
        self.assertEqual(self.total(dict(everything, negate=True)), 0)
        self.assertEqual(self.total({"type": "object_type", "object_type": "custom_object"}), ALL_SAMPLE_OBJECTS)
        self.assertEqual(self.total({"type": "object_type", "object_type": "lead"}), len(emu.SAMPLE_LEADS))
        self.assertEqual(self.total({"type": "object_type", "object_type": "activity"}), 0)
        self.assertEqual(self.total({"type": "object_type", "object_type": "lead", "negate": True}),
                         ALL_SAMPLE_OBJECTS)
        self.assertEqual(self.total(AND()), ALL_SAMPLE_OBJECTS)
        self.assertEqual(self.total(OR()), 0)
        self.assertEqual(self.total(OR(term(rf("lead_id"), emu.LEAD_MIXED), term(rf("lead_id"), emu.LEAD_ONE))), 4)
        self.assertEqual(self.total(AND(term(rf("lead_id"), emu.LEAD_MIXED), term(rf("custom_object_type_id"), S))),
                         2)
        self.assertEqual(self.total(AND(term(rf("lead_id"), emu.LEAD_MIXED), term(rf("custom_object_type_id"), S),
                                        negate=True)), ALL_SAMPLE_OBJECTS - 2)
        self.assertEqual(self.names(in_lead(emu.LEAD_MIXED, term(rf("custom_object_type_id"), S, negate=True))),
                         ["Mixed Gamma"])
        self.assertEqual(self.names(in_lead(emu.LEAD_MIXED, {"type": "object_type", "object_type": "lead"})), [])

    def test_term(self):
        self.assertEqual(self.total(term(rf("lead_id"), emu.LEAD_MIXED, emu.LEAD_ONE, "lead_nope")), 4)
        self.assertEqual(self.names(term(rf("name"), "Mixed Alpha")), ["Mixed Alpha"])
        self.assertEqual(self.names(term(rf("name"), "mixed alpha")), [])          # case-sensitive
        self.assertEqual(self.names(term(rf("id"), emu.OBJ_ONE)), ["Only Device"])
        self.assertEqual(self.names(term(cfield(CF_LABELS), "Zürich ✓")), ["Mixed Alpha"])   # array element
        self.assertEqual(self.names(term(cfield(CF_LABELS), "ZÜRICH ✓")), [])
        self.assertEqual(self.names(term(cfield(CF_CHANNELS), "phone", "sms")), ["Mixed Beta", "Mixed Alpha"])
        self.assertEqual(self.names(term(cfield(CF_AMOUNT), 12.5)), ["Mixed Beta"])   # 12.50 stored
        self.assertEqual(self.names(term(cfield(CF_AMOUNT), "42")), [])               # types are strict
        self.assertEqual(self.names(term(cfield(CF_HIDDEN), True)), ["Mixed Alpha"])
        self.assertEqual(self.names(term(cfield(CF_HIDDEN), 1)), [])
        self.assertEqual(self.names(term(cfield(CF_HIDDEN), "legacy-7")), ["Mixed Beta"])
        self.assertEqual(self.names(term(cfield(CF_HIDDEN))), [])                     # no values
        # missing fields: false, negated true
        self.assertEqual(self.names(in_lead(emu.LEAD_MIXED, term(cfield(CF_PLAN), "Gold", "Silver"))),
                         ["Mixed Beta", "Mixed Alpha"])
        self.assertEqual(self.names(in_lead(emu.LEAD_MIXED, term(cfield(CF_PLAN), "Gold", negate=True))),
                         ["Mixed Gamma", "Mixed Beta"])

    def test_text(self):
        self.new_subscription(name="Straße")
        self.assertEqual(self.names(text(rf("name"), "mixed ALPHA")), ["Mixed Alpha"])   # looser than SQL =
        self.assertEqual(self.names(text(rf("name"), "STRASSE")), ["Straße"])            # casefold
        self.assertEqual(self.names(text(rf("name"), "Mixed")), [])                      # whole value
        self.assertEqual(self.names(text(rf("name"), "mixed", mode="phrase")),
                         ["Mixed Gamma", "Mixed Beta", "Mixed Alpha"])
        self.assertEqual(self.names(text(rf("name"), "ALPH", mode="full_words")), ["Mixed Alpha"])
        self.assertEqual(self.names(text(cfield(CF_LABELS), "ZÜRICH ✓")), ["Mixed Alpha"])   # array element
        self.assertEqual(self.names(text(cfield(CF_AMOUNT), "42")), [])                      # not a string
        self.assertEqual(self.names(in_lead(emu.LEAD_MIXED, text(cfield(CF_PLAN), "gold", negate=True))),
                         ["Mixed Gamma", "Mixed Beta"])

    def test_number_range_boundaries(self):
        cap = cfield(CF_CAPACITY)
        self.assertEqual(self.total(AND(term(rf("lead_id"), emu.LEAD_BIG), nrange(cap, gte=10, lte=20))), 11)
        self.assertEqual(self.total(AND(term(rf("lead_id"), emu.LEAD_BIG), nrange(cap, gt=10, lt=20))), 9)
        self.assertEqual(self.names(nrange(cap, gt=249)), ["Item 250"])
        self.assertEqual(self.names(nrange(cap, lte=1)), ["Item 001"])
        self.assertEqual(self.names(nrange(cap, gt=1, lt=2)), [])
        self.assertEqual(self.names(nrange(cap, gte=1.5, lte=2.5)), ["Item 002"])
        self.assertEqual(self.names(nrange(cfield(CF_BALANCE), lt=0)), ["Mixed Alpha"])
        for bound, expected in (("12345678901234.5677", 1), ("12345678901234.5678", 0)):   # exact decimals
            raw = json.dumps({"query": nrange(cfield(CF_BALANCE), gt=0.5), "include_counts": True})
            raw = raw.replace("0.5", bound).encode()
            r = request("POST", SEARCH, raw=raw, headers={"Content-Type": "application/json"})
            self.assertEqual(r.json()["count"]["total"], expected, bound)
        self.assertEqual(self.names(nrange(cfield(CF_AMOUNT), gte=12.5, lte=12.5)), ["Mixed Beta"])
        self.assertEqual(self.names(nrange(rf("name"), gte=0)), [])                    # not numbers
        self.assertEqual(self.names(nrange(cfield(CF_HIDDEN), gte=0)), [])             # True is no number
        self.assertEqual(self.names(in_lead(emu.LEAD_MIXED, nrange(cfield(CF_AMOUNT), gte=0, negate=True))),
                         ["Mixed Gamma"])

    def test_moment_range(self):
        renewed, start, created = cfield(CF_RENEWED), cfield(CF_START), rf("date_created")
        # datetime custom field: Alpha 2021-03-15T10:30:00Z, Beta 2022-01-01T23:59:59.999Z
        self.assertEqual(self.names(mrange(renewed, on_or_after=utc("2021-03-15T10:30:00Z"))),
                         ["Mixed Beta", "Mixed Alpha"])
        self.assertEqual(self.names(mrange(renewed, on_or_after=utc("2021-03-15T10:30:00.000001+00:00"))),
                         ["Mixed Beta"])
        self.assertEqual(self.names(mrange(renewed, before=utc("2021-03-15T12:30:00+02:00"))), [])  # same instant
        self.assertEqual(self.names(mrange(renewed, before=utc("2021-03-15T12:30:00.001+02:00"))), ["Mixed Alpha"])
        self.assertEqual(self.names(mrange(renewed, before=local("2022-01-01", "end"))),
                         ["Mixed Beta", "Mixed Alpha"])
        self.assertEqual(self.names(mrange(renewed, before=local("2022-01-01", "start"))), ["Mixed Alpha"])
        self.assertEqual(self.names(mrange(renewed, on_or_after=local("2022-01-02", "start"))), [])
        self.assertEqual(self.names(mrange(renewed, on_or_after=local("2021-03-15", "start"),
                                           before=local("2021-03-15", "end"))), ["Mixed Alpha"])
        # date custom field: Alpha 2021-03-15, Beta 2019-12-31 (each that day's 00:00 UTC)
        self.assertEqual(self.names(mrange(start, on_or_after=local("2021-03-15", "start"))), ["Mixed Alpha"])
        self.assertEqual(self.names(mrange(start, before=utc("2021-03-15T00:00:00Z"))), ["Mixed Beta"])
        self.assertEqual(self.names(mrange(start, on_or_after=utc("2021-03-15T00:00:00.000001Z"))), [])
        self.assertEqual(self.names(mrange(start, on_or_after=local("2019-12-31", "end"),
                                           before=local("2021-03-14", "end"))), [])
        # regular date fields: the sheet lead's objects were created 16:40:12.102 and 16:45:35.367
        sheet = term(rf("lead_id"), emu.LEAD_SHEET)
        self.assertEqual(self.names(AND(sheet, mrange(created, on_or_after=utc("2020-08-04T16:45:35.367+00:00")))),
                         ["Resource"])
        self.assertEqual(self.names(AND(sheet, mrange(created, on_or_after=local("2020-08-04", "start"),
                                                      before=local("2020-08-04", "end")))),
                         ["Resource", "Referenced resource"])
        self.assertEqual(self.names(AND(sheet, mrange(created, on_or_after=local("2020-08-04", "end")))), [])
        self.assertEqual(self.names(mrange(rf("name"), on_or_after=local("2000-01-01", "start"))), [])
        self.assertEqual(self.total(mrange(start, before=local("9999-01-01", "start"))),
                         self.total(fc(start, {"type": "moment_range", "on_or_after": local("1900-01-01", "start")})))

    def test_limit_bounds(self):
        for bad in (0, 201, -1, "5", True, 1.5, None):
            doc = self.search({"query": {"type": "match_all"}, "_limit": bad}, status=400)
            self.assertIn("_limit", doc["field-errors"], bad)
        self.assertIn("less than or equal to 200",
                      self.search({"query": {"type": "match_all"}, "_limit": 201}, 400)["field-errors"]["_limit"])
        self.assertEqual(len(self.search({"query": {"type": "match_all"}, "_limit": 200})["data"]), 200)
        self.assertEqual(len(self.search({"query": {"type": "match_all"}, "_limit": 1})["data"]), 1)

    def test_sort(self):
        big = term(rf("lead_id"), emu.LEAD_BIG)
        cap = cfield(CF_CAPACITY)
        names = self.names(big, sort=[{"field": cap, "direction": "desc"}])
        self.assertEqual(names, ["Item %03d" % n for n in range(250, 0, -1)])
        names = self.names(big, sort=[{"field": rf("date_created"), "direction": "asc"}])
        self.assertEqual(names, ["Item %03d" % n for n in range(1, 251)])
        self.assertEqual(self.names(big), names[::-1])                           # default: newest first
        # two keys: priority (high < low < medium as text) asc, then capacity desc
        names = self.names(big, sort=[{"field": cfield(CF_PRIORITY), "direction": "asc"},
                                      {"field": cap, "direction": "desc"}])
        self.assertEqual(names[:3] + names[83:85], ["Item 249", "Item 246", "Item 243", "Item 250", "Item 247"])
        # missing values last in both directions; ties by id ascending
        mixed = term(rf("lead_id"), emu.LEAD_MIXED)
        self.assertEqual(self.names(mixed, sort=[{"field": cfield(CF_AMOUNT), "direction": "asc"}]),
                         ["Mixed Beta", "Mixed Alpha", "Mixed Gamma"])
        self.assertEqual(self.names(mixed, sort=[{"field": cfield(CF_AMOUNT), "direction": "desc"}]),
                         ["Mixed Alpha", "Mixed Beta", "Mixed Gamma"])
        for direction in ("asc", "desc"):
            self.assertEqual(self.names(mixed, sort=[{"field": rf("lead_id"), "direction": direction}]),
                             ["Mixed Alpha", "Mixed Beta", "Mixed Gamma"])
        self.assertEqual(self.names(mixed, sort=[{"field": rf("name"), "direction": "desc"}]),
                         ["Mixed Gamma", "Mixed Beta", "Mixed Alpha"])
        self.assertEqual(self.names(mixed, sort=[]), ["Mixed Alpha", "Mixed Beta", "Mixed Gamma"])  # only ids

    def test_cursor_paging_big_lead(self):
        body = {"query": in_lead(emu.LEAD_BIG), "_limit": 100, "include_counts": True,
                "_fields": {"custom_object": ["id", "name", "lead_id"]}, "cursor": None}
        names, cursors = [], []
        doc = self.search(body)
        while True:
            self.assertEqual(doc["count"], {"total": 250})
            names += [o["name"] for o in doc["data"]]
            cursors.append(doc["cursor"])
            self.assertTrue(all(o["lead_id"] == emu.LEAD_BIG for o in doc["data"]))
            if doc["cursor"] is None:
                break
            doc = self.search(dict(body, cursor=doc["cursor"]))
        self.assertEqual(names, ["Item %03d" % n for n in range(250, 0, -1)])
        self.assertEqual([c is None for c in cursors], [False, False, True])
        self.assertNotEqual(cursors[0], cursors[1])
        # a cursor may be replayed while it lives; _limit and include_counts may change
        again = self.search(dict(body, cursor=cursors[0], _limit=3, include_counts=False))
        self.assertEqual([o["name"] for o in again["data"]], ["Item 150", "Item 149", "Item 148"])
        self.assertNotIn("count", again)
        self.assertEqual(control("GET", "data/search_state").json(), {"live_cursors": 3})

    def test_results_limit_and_counts(self):
        body = {"query": in_lead(emu.LEAD_BIG), "_limit": 100, "results_limit": 150, "include_counts": True}
        first = self.search(body)
        second = self.search(dict(body, cursor=first["cursor"]))
        self.assertEqual((len(first["data"]), len(second["data"])), (100, 50))
        self.assertIsNone(second["cursor"])
        self.assertEqual(second["count"], {"total": 250})
        doc = self.search(dict(body, results_limit=50))
        self.assertEqual((len(doc["data"]), doc["cursor"], doc["count"]["total"]), (50, None, 250))
        doc = self.search(dict(body, results_limit=300))
        self.assertIsNotNone(doc["cursor"])
        for bad in (-1, "10", True, 2.5):
            self.assertIn("results_limit", self.search(dict(body, results_limit=bad), 400)["field-errors"])
        # results_limit 0 with include_counts: the count alone, the way scripts count
        doc = self.search(dict(body, results_limit=0, _limit=1))
        self.assertEqual(doc, {"data": [], "cursor": None, "count": {"total": 250}})
        # sorted by date_updated, newest first, capped: the newest three, in order
        doc = self.search({"query": {"type": "match_all"}, "_limit": 200, "results_limit": 3,
                           "_fields": {"custom_object": ["date_updated"]},
                           "sort": [{"field": rf("date_updated"), "direction": "desc"}]})
        dates = [item["date_updated"] for item in doc["data"]]
        self.assertEqual((len(dates), doc["cursor"]), (3, None))
        self.assertEqual(dates, sorted(dates, reverse=True))
        newest = max(r["date_updated"] for lead in emu.SAMPLE_LEADS.values()
                     for r in control("GET", "data/objects?lead_id=%s" % lead).json())
        self.assertEqual(dates[0], newest)
        self.assertIn("include_counts", self.search(dict(body, include_counts="yes"), 400)["field-errors"])
        self.assertNotIn("count", self.search({"query": in_lead(emu.LEAD_BIG)}))

    def test_max_results_cap(self):
        control("POST", "config", {"search_max_results": 120})
        body = {"query": in_lead(emu.LEAD_BIG), "_limit": 100, "include_counts": True}
        first = self.search(body)
        second = self.search(dict(body, cursor=first["cursor"]))
        self.assertEqual((len(first["data"]), len(second["data"])), (100, 20))
        self.assertIsNone(second["cursor"])                  # silently capped ...
        self.assertEqual(second["count"], {"total": 250})    # ... while the true total is larger
        self.assertEqual(len(self.names(in_lead(emu.LEAD_BIG))), 120)
        self.assertStatus(request("POST", "/_emulator/config", {"search_max_results": 0}, auth=None), 400)

    def test_cursor_expiry_and_gc(self):
        control("POST", "config", {"cursor_ttl": 1})
        body = {"query": in_lead(emu.LEAD_BIG), "_limit": 10}
        first = self.search(body)
        other = self.search(dict(body, query={"type": "match_all"}))["cursor"]
        self.assertEqual(control("GET", "data/search_state").json(), {"live_cursors": 2})
        time.sleep(0.6)
        second = self.search(dict(body, cursor=first["cursor"]))   # a new cursor, issued now
        time.sleep(0.6)
        # 1.2 s after the first answer: its cursor is gone; the second answer's still lives
        for cursor in (first["cursor"], other):
            self.assertEqual(self.search(dict(body, cursor=cursor), 400), {"field-errors": {"cursor": "Expired cursor"}})
        self.assertEqual(control("GET", "data/search_state").json(), {"live_cursors": 1})
        third = self.search(dict(body, cursor=second["cursor"]))
        self.assertEqual([o["id"] for o in third["data"]][:1], [self.search(dict(body, _limit=21))["data"][20]["id"]])
        time.sleep(1.1)
        self.assertEqual(control("GET", "data/search_state").json(), {"live_cursors": 0})
        for cursor in ("nope", "", third["cursor"]):
            self.assertEqual(self.search(dict(body, cursor=cursor), 400), {"field-errors": {"cursor": "Expired cursor"}})

    def test_cursor_with_other_body(self):
        body = {"query": in_lead(emu.LEAD_BIG), "_limit": 100, "_fields": {"custom_object": ["name"]},
                "sort": [{"field": rf("name"), "direction": "asc"}]}
        cursor = self.search(body)["cursor"]
        for change in ({"query": in_lead(emu.LEAD_MIXED)}, {"sort": None}, {"_fields": {"custom_object": ["id"]}},
                       {"results_limit": 120}):
            doc = self.search(dict(body, cursor=cursor, **change), 400)
            self.assertIn("cursor", doc["error"])
        doc = self.search(dict(body, cursor=cursor, _limit=5))
        self.assertEqual([o["name"] for o in doc["data"]], ["Item %03d" % n for n in range(101, 106)])

    def test_bad_bodies(self):
        match_all = {"type": "match_all"}
        cases = [
            ({"type": "xor", "queries": []}, "unknown query node type"),
            ({"queries": []}, "missing node \"type\""),
            ([match_all], "query node must be a JSON object"),
            ({"type": "and", "queries": match_all}, "query.queries"),
            ({"type": "and", "queries": [match_all, {"type": "nope"}]}, "query.queries[1].type"),
            (dict(match_all, negate="yes"), "negate"),
            (dict(match_all, extra=1), "unknown key \"extra\""),
            ({"type": "object_type"}, "object_type"),
            ({"type": "field_condition", "field": rf("lead_id")}, "needs \"field\" and \"condition\""),
            (term(rf("nope"), "x"), "unknown custom_object field \"nope\""),
            (term({"type": "regular_field", "object_type": "lead", "field_name": "id"}, "x"), "object_type"),
            (term(cfield("cf_" + "N" * 43), "x"), "unknown custom field"),
            (term({"type": "magic_field"}, "x"), "unknown field type"),
            (fc(rf("name"), {"type": "fuzzy"}), "unknown condition type \"fuzzy\""),
            (fc(rf("name"), {"type": "term", "values": "x"}), "values"),
            (fc(rf("name"), {"type": "term", "values": [["x"]]}), "values"),
            (fc(rf("name"), {"type": "text", "mode": "sounds_like", "value": "x"}), "unknown text mode"),
            (fc(rf("name"), {"type": "text", "mode": "exact_value", "value": 1}), "value"),
            (fc(rf("name"), {"type": "number_range"}), "at least one of"),
            (fc(rf("name"), {"type": "number_range", "gt": "1"}), "gt: must be a number"),
            (fc(rf("name"), {"type": "number_range", "lt": True}), "lt: must be a number"),
            (fc(rf("name"), {"type": "moment_range"}), "on_or_after, before or both"),
            (mrange(rf("date_created"), before=utc("2020-01-01T00:00:00")), "UTC offset"),
            (mrange(rf("date_created"), before=utc("2020-01-01")), "UTC offset"),
            (mrange(rf("date_created"), before=local("2020-02-30", "start")), "YYYY-MM-DD"),
            (mrange(rf("date_created"), before=local("2020-02-03", "middle")), "which"),
            (mrange(rf("date_created"), before={"type": "relative", "value": "now"}), "unknown moment type"),
        ]
        for query, message in cases:
            doc = self.search({"query": query}, 400)
            self.assertEqual(list(doc), ["error"], query)
            self.assertIn(message, doc["error"], query)
        for body, message in (
                ({"query": match_all, "sort": {"field": rf("name")}}, "sort"),
                ({"query": match_all, "sort": [{"field": rf("name"), "direction": "up"}]}, "sort[0].direction"),
                ({"query": match_all, "sort": [{"field": rf("nope"), "direction": "asc"}]}, "sort[0].field"),
                ({"query": match_all, "_fields": ["id"]}, "_fields"),
                ({"query": match_all, "_fields": {"custom_object": "id,name"}}, "_fields.custom_object")):
            self.assertIn(message, self.search(body, 400)["error"])
        self.assertEqual(self.search({}, 400)["field-errors"], {"query": "This field is required."})
        self.assertEqual(set(self.search({"query": match_all, "limit": 5, "cursor": 7}, 400)["field-errors"]),
                         {"limit", "cursor"})
        hdr = {"Content-Type": "application/json"}
        self.assertStatus(request("POST", SEARCH, raw=b"[]", headers=hdr), 400)
        self.assertStatus(request("POST", SEARCH, raw=b"{bad", headers=hdr), 400)
        self.assertStatus(request("POST", SEARCH, raw=b"", headers=hdr), 400)
        self.assertStatus(request("POST", SEARCH, raw=b"{}", headers={"Content-Type": "text/plain"}), 415)
        self.assertStatus(request("GET", SEARCH), 405)
        self.assertStatus(request("POST", "/api/v1/data/search"), 404)

    def test_auth_headers_and_log(self):
        body = {"query": in_lead(emu.LEAD_ONE), "_fields": {"custom_object": ["name"]}, "_limit": 200}
        control("POST", "log/clear")
        r = request("POST", SEARCH, body, auth=None)
        self.assertStatus(r, 401)
        self.assertEqual(r.json(), {"error": "Unauthorized"})
        self.assertTrue(r.header("RateLimit"))
        self.assertStatus(request("POST", SEARCH, body, auth=basic("wrong_key")), 401)
        r = request("POST", SEARCH, body, auth="Bearer oauth_test_token")
        self.assertStatus(r, 200)
        self.assertRegex(r.header("RateLimit"), r"^limit=10000, remaining=\d+, reset=[\d.]+$")
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.json()["data"], [{"__object_type": "custom_object", "id": emu.OBJ_ONE,
                                             "name": "Only Device"}])
        entries = api_log_json()
        self.assertEqual([(e["method"], e["path"], e["status"], e["auth"]) for e in entries],
                         [("POST", SEARCH, 401, "none"), ("POST", SEARCH, 401, "invalid"),
                          ("POST", SEARCH, 200, "oauth")])
        self.assertEqual(entries[2]["body"], body)
        self.assertEqual(api_log().splitlines()[2],
                         "POST %s %s" % (SEARCH, json.dumps(body, sort_keys=True, separators=(",", ":"),
                                                           ensure_ascii=False)))

    def test_search_rate_limit_and_faults(self):
        body = {"query": in_lead(emu.LEAD_ONE)}
        control("POST", "config", {"search_rate_limit_per_sec": 2})
        self.assertEqual([request("POST", SEARCH, body).status for _ in range(2)], [200, 200])
        r = request("POST", SEARCH, body)
        self.assertStatus(r, 429)
        self.assertEqual(r.json()["error"]["message"], "API rate limit exceeded")
        self.assertGreaterEqual(int(r.header("Retry-After")), 1)
        self.assertRegex(r.header("RateLimit"), r"^limit=2, remaining=0, reset=")
        for _ in range(4):   # other endpoints keep rate_limit_per_sec (0: unlimited)
            self.assertStatus(request("GET", objects_path(emu.LEAD_ONE)), 200)
        self.assertStatus(request("POST", SEARCH, body, auth=basic("api_alice_key")), 200)   # per key
        control("POST", "config", {"search_rate_limit_per_sec": 0, "rate_limit_per_sec": 1})
        self.assertEqual([request("POST", SEARCH, body).status for _ in range(3)], [200] * 3)
        control("POST", "config", {"rate_limit_per_sec": 0})
        control("POST", "faults", {"path_prefix": SEARCH, "action": "status", "status": 503})
        self.assertStatus(request("POST", SEARCH, body), 503)
        self.assertStatus(request("POST", SEARCH, body), 200)
        control("POST", "faults", {"path_prefix": "/api/v1/data/", "action": "drop"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            request("POST", SEARCH, body)

    def test_50000_objects_fast_pages(self):
        lead = emu.pad_id("lead_", "Search", 43)
        control("POST", "objects", {"lead_id": lead, "custom_object_type_id": D, "count": 50000,
                                    "name_prefix": "S"})
        body = {"query": in_lead(lead), "_limit": 200, "include_counts": True,
                "_fields": {"custom_object": ["id", "name", "date_created"]},
                "sort": [{"field": rf("date_created"), "direction": "asc"}]}
        t0 = time.monotonic()
        doc = self.search(body)
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(doc["count"], {"total": 50000})
        names, slowest = [o["name"] for o in doc["data"]], 0
        while doc["cursor"]:
            t0 = time.monotonic()
            doc = self.search(dict(body, cursor=doc["cursor"]))
            slowest = max(slowest, time.monotonic() - t0)
            names += [o["name"] for o in doc["data"]]
        self.assertLess(slowest, 0.1)
        self.assertEqual(len(names), 10000)                  # the cap, though 50000 match
        self.assertEqual((names[0], names[-1]), ("S 00001", "S 10000"))
        self.assertEqual(control("GET", "data/search_state").json(), {"live_cursors": 49})


class CrmReadTests(EmulatorTest):
    """Leads, contacts, opportunities, users, statuses, pipelines: reads."""

    def get(self, path, status=200, **kw):
        r = request("GET", "/api/v1/" + path, **kw)
        self.assertStatus(r, status)
        return r.json()

    def test_lead_record(self):
        lead = self.get("lead/%s/" % emu.LEAD_MIXED)
        for k in ("id", "name", "display_name", "description", "url", "status_id", "status_label", "html_url",
                  "organization_id", "created_by", "created_by_name", "updated_by", "updated_by_name",
                  "date_created", "date_updated", "addresses", "contacts", "opportunities", "tasks",
                  "integration_links", "custom"):
            self.assertIn(k, lead)
        self.assertEqual(lead["status_label"], "Qualified")
        self.assertEqual(lead["html_url"], "https://app.close.com/lead/%s/" % emu.LEAD_MIXED)
        self.assertEqual(lead["updated_by_name"], "Alice Anders")
        self.assertEqual(lead["addresses"][0]["city"], "Zürich")
        self.assertEqual([c["id"] for c in lead["contacts"]], [crm.CONTACT_MIXED, crm.CONT["MixedBilling"]])
        self.assertEqual([o["id"] for o in lead["opportunities"]], [crm.OPPO["MixedWon"], crm.OPPO["MixedRenewal"]])
        # the deprecated object keyed by name, and the flat custom.cf_ keys
        self.assertEqual(lead["custom"]["Industry"], "Software")
        self.assertEqual(lead["custom"]["Region"], "EMEA")
        self.assertEqual(lead["custom." + crm.CRM_CF["lead", "text"]], "Software")
        self.assertEqual(lead["custom." + crm.CRM_CF["lead", "multi_choices"]], ["SMB", "Enterprise"])
        self.assertNotIn("custom." + crm.CRM_CF["lead", "date"], self.get("lead/%s/" % emu.LEAD_EMPTY))
        # _fields: "custom" is every custom field, custom.cf_X one of them
        doc = self.get("lead/%s/?_fields=id,custom" % emu.LEAD_MIXED)
        self.assertEqual(set(doc) - {"id", "custom"}, {k for k in lead if k.startswith("custom.")})
        doc = self.get("lead/%s/?_fields=id,custom.%s,nothing" % (emu.LEAD_MIXED, crm.CRM_CF["lead", "number"]))
        self.assertEqual(doc, {"id": emu.LEAD_MIXED, "custom." + crm.CRM_CF["lead", "number"]: 120})
        self.get("lead/lead_%s/" % ("Q" * 43), 404)

    def test_lead_listing_caps(self):
        doc = self.get("lead/?_limit=200")
        self.assertEqual(doc["total_results"], len(emu.SAMPLE_LEADS))
        self.assertFalse(doc["has_more"])
        for q, key in (("_limit=201", "_limit"), ("_skip=35001", "_skip"), ("_limit=-1", "_limit")):
            r = request("GET", "/api/v1/lead/?" + q)
            self.assertStatus(r, 400)
            self.assertEqual(list(r.json()["field-errors"]), [key])
        self.assertIn("less than or equal to 200", request("GET", "/api/v1/lead/?_limit=201").json()
                      ["field-errors"]["_limit"])
        self.assertIn("less than or equal to 35000", request("GET", "/api/v1/lead/?_skip=35001").json()
                      ["field-errors"]["_skip"])
        self.get("lead/?_skip=35000")
        # count only
        self.assertEqual(self.get("lead/?_limit=0"), {"data": [], "has_more": True, "total_results": 10})
        # id__in
        doc = self.get("lead/?_fields=id&id__in=%s,%s,lead_%s" % (emu.LEAD_ONE, emu.LEAD_BIG, "Q" * 43))
        self.assertEqual(doc["data"], [{"id": emu.LEAD_BIG}, {"id": emu.LEAD_ONE}])
        # configurable caps
        control("POST", "config", {"lead_max_skip": 3, "crm_max_skip": 2, "crm_max_limit": 5})
        self.get("lead/?_skip=3&_limit=5")
        self.assertStatus(request("GET", "/api/v1/lead/?_skip=4"), 400)
        self.assertStatus(request("GET", "/api/v1/lead/?_limit=6"), 400)
        self.get("contact/?_skip=2")
        for path in ("contact/", "opportunity/", "user/", "pipeline/", "status/lead/"):
            r = request("GET", "/api/v1/%s?_skip=3" % path)
            self.assertStatus(r, 400)
            self.assertIn("less than or equal to 2", r.json()["field-errors"]["_skip"])
        # long filters through the method override
        r = request("POST", "/api/v1/lead/", {"_params": {"id__in": emu.LEAD_ONE, "_fields": "id"}},
                    headers={"x-http-method-override": "GET"})
        self.assertEqual(r.json()["data"], [{"id": emu.LEAD_ONE}])

    def test_contacts(self):
        doc = self.get("contact/?lead_id=%s" % emu.LEAD_MIXED)
        self.assertEqual(set(doc), {"data", "has_more"})
        # newest first
        self.assertEqual([c["id"] for c in doc["data"]], [crm.CONT["MixedBilling"], crm.CONTACT_MIXED])
        c = self.get("contact/%s/" % crm.CONTACT_MIXED)
        self.assertEqual(c["lead_id"], emu.LEAD_MIXED)
        self.assertEqual(c["emails"][0], {"email": "mia@mixed.example.com", "type": "office", "is_unsubscribed": False})
        self.assertEqual(c["phones"][0]["phone"], "+41441234567")
        self.assertEqual(c["custom." + crm.CRM_CF["contact", "shared"]], "EMEA")
        jane = self.get("contact/%s/" % crm.CONT["SheetJane"])
        self.assertEqual(jane["phones"][0], {"phone": "+18004445555", "phone_formatted": "+1 800-444-5555",
                                             "type": "office", "country": "US"})
        self.assertEqual(self.get("contact/%s/" % crm.CONT["OneOnly"])["display_name"], "nobody@one.example.com")
        self.assertEqual(self.get("contact/?lead_id=%s" % emu.LEAD_EMPTY), {"data": [], "has_more": False})
        doc = self.get("contact/?_limit=200&_fields=id")
        self.assertEqual(len(doc["data"]), len(crm.CONT))
        self.get("contact/cont_%s/" % ("Q" * 43), 404)

    def test_opportunities(self):
        o = self.get("opportunity/%s/" % crm.OPPO["MixedRenewal"])
        self.assertEqual((o["value"], o["value_period"], o["value_formatted"], o["confidence"]),
                         (5000, "monthly", "$50 monthly", 80))
        self.assertEqual((o["expected_value"], o["annualized_value"], o["annualized_expected_value"]),
                         (4000, 60000, 48000))
        self.assertEqual((o["status_type"], o["date_won"], o["pipeline_id"], o["pipeline_name"]),
                         ("active", "2021-07-16", crm.PIPE_RENEWALS, "Renewals"))
        self.assertEqual((o["lead_name"], o["user_name"]), ("Mixed Lead", "Bob Brown"))
        o = self.get("opportunity/%s/" % crm.OPPO["Plain4Former"])
        self.assertEqual((o["user_id"], o["user_name"]), (crm.USER_FORMER, "Former Member"))
        self.assertNotIn(crm.USER_FORMER, [u["id"] for u in self.get("user/")["data"]])
        o = self.get("opportunity/%s/" % crm.OPPO["Plain3NoValue"])
        self.assertEqual((o["value"], o["value_formatted"], o["expected_value"]), (None, None, None))
        doc = self.get("opportunity/?lead_id=%s&_fields=id" % emu.LEAD_MIXED)
        self.assertEqual(doc["total_results"], 2)
        self.assertEqual(doc["total_value_one_time"], 300000)
        self.assertEqual(doc["total_value_monthly"], 5000)
        self.assertEqual(doc["total_value_annualized"], 360000)
        self.assertEqual(doc["total_value_annual_formatted"], None)
        self.assertEqual(doc["count_by_value_period"], {"one_time": 1, "monthly": 1, "annual": 0})
        self.get("opportunity/oppo_%s/" % ("Q" * 43), 404)

    def test_opportunity_filters(self):
        def ids(q):
            doc = self.get("opportunity/?_limit=200&_fields=id&" + q)
            self.assertEqual(doc["total_results"], len(doc["data"]))
            return {o["id"] for o in doc["data"]}
        every = ids("")
        self.assertEqual(len(every), len(crm.OPPO))
        O = crm.OPPO
        self.assertEqual(ids("status_type=won"), {O["MixedWon"], O["Plain4Former"]})
        self.assertEqual(ids("status_type__in=won,lost"), {O["MixedWon"], O["Plain4Former"], O["Plain1Lost"],
                                                          O["Plain5Churned"]})
        self.assertEqual(ids("status_id=" + crm.STAT_DEMO), {O["OneMonthly"], O["Plain3Demo"]})
        self.assertEqual(ids("status_id__in=%s,%s" % (crm.STAT_WON, crm.STAT_RENEWED)), {O["MixedWon"],
                                                                                       O["Plain4Former"]})
        self.assertEqual(ids("user_id=" + crm.USER_IDS["bob"]), {O["MixedWon"], O["MixedRenewal"]})
        self.assertEqual(ids("user_id__in=%s,%s" % (crm.USER_IDS["test"], crm.USER_FORMER)),
                         {O["Plain2Annual"], O["Plain3NoValue"], O["Plain4Former"]})
        self.assertEqual(ids("lead_id=%s&status_type=active" % emu.LEAD_PLAIN[2]), {O["Plain3Demo"],
                                                                                   O["Plain3NoValue"]})
        self.assertEqual(ids("date_won=2020-09-15"), {O["MixedWon"]})
        self.assertEqual(ids("date_won__gt=2020-09-15"), {O["MixedRenewal"], O["Plain4Former"]})
        self.assertEqual(ids("date_won__gte=2020-09-15&date_won__lt=2021-07-16"), {O["MixedWon"], O["Plain4Former"]})
        self.assertEqual(ids("date_won__lte=2020-09-15"), {O["MixedWon"]})
        first = self.get("opportunity/%s/" % O["SheetDeal"])["date_created"]
        self.assertEqual(ids("date_created__lte=" + first.replace("+", "%2B")), {O["SheetDeal"]})
        self.assertEqual(ids("date_created__lt=" + first.replace("+", "%2B")), set())
        self.assertEqual(len(ids("date_created__gt=" + first.replace("+", "%2B"))), len(O) - 1)
        self.assertEqual(ids("date_created__gte=2020-09-02"), set())
        self.assertEqual(ids("date_created=2020-09-01"), every)
        self.assertEqual(ids("date_updated__gte=2020-09-01&date_updated__lt=2020-09-02"), every)
        # x-tz-offset moves a date's day
        self.assertEqual(len(ids("date_created__gte=2020-09-01")), len(O))
        doc = request("GET", "/api/v1/opportunity/?_fields=id&date_created__lt=2020-09-01",
                      headers={"x-tz-offset": "-13"}).json()
        self.assertTrue(0 < doc["total_results"] < len(O), doc["total_results"])
        # ordering
        doc = self.get("opportunity/?_order_by=-value&_fields=id,value")
        values = [o["value"] for o in doc["data"]]
        self.assertEqual(values[0], 300000)
        self.assertIsNone(values[-1])            # missing values last
        doc = self.get("opportunity/?_order_by=date_created&_fields=id")
        self.assertEqual(doc["data"][0]["id"], O["SheetDeal"])
        for q in ("_order_by=name", "date_won__gt=soon", "_group_by=user_id", "query=note:x"):
            self.assertStatus(request("GET", "/api/v1/opportunity/?" + q), 400)
        self.assertStatus(request("GET", "/api/v1/opportunity/", headers={"x-tz-offset": "abc"}), 400)

    def test_users_statuses_pipelines(self):
        doc = self.get("user/")
        self.assertEqual(set(doc), {"data", "has_more"})
        self.assertEqual(len(doc["data"]), 4)
        u = self.get("user/%s/" % crm.USER_IDS["alice"])
        self.assertEqual((u["first_name"], u["last_name"], u["organizations"]), ("Alice", "Anders", [crm.ORG_ID]))
        self.assertNotIn("name", u)
        doc = self.get("user/?_order_by=first_name,last_name&_fields=first_name")
        self.assertEqual([x["first_name"] for x in doc["data"]], ["Alice", "Bob", "OAuth", "Test"])
        self.get("user/user_%s/" % ("Q" * 43), 404)
        doc = self.get("status/lead/")
        self.assertEqual([(s["id"], s["label"]) for s in doc["data"]], emu.STATUSES)
        self.assertEqual(self.get("status/lead/%s/" % emu.STATUSES[0][0])["color"], "blue")
        doc = self.get("status/opportunity/")
        self.assertEqual(len(doc["data"]), 7)
        self.assertEqual(doc["data"][2], {"id": crm.STAT_WON, "label": "Won", "type": "won",
                                          "pipeline_id": crm.PIPE_SALES, "organization_id": crm.ORG_ID})
        self.get("status/opportunity/%s/" % crm.STAT_CHURNED)
        doc = self.get("pipeline/")
        self.assertEqual([p["id"] for p in doc["data"]], [crm.PIPE_SALES, crm.PIPE_RENEWALS])
        p = self.get("pipeline/%s/" % crm.PIPE_RENEWALS)
        self.assertRegex(p["id"], r"^pipe_[0-9A-Za-z]{22}$")
        self.assertRegex(p["date_created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")   # naive
        self.assertEqual([s["type"] for s in p["statuses"]], ["active", "won", "lost"])
        self.get("pipeline/pipe_%s/" % ("Q" * 22), 404)

    def test_custom_field_schema(self):
        for otype in crm.CRM_TYPES:
            schema = self.get("custom_field_schema/%s/" % otype)
            self.assertEqual((schema["object_type"], schema["organization_id"]), (otype, crm.ORG_ID))
            listed = []
            doc = {"has_more": True}
            while doc["has_more"]:
                doc = self.get("custom_field/%s/?_limit=2&_skip=%d" % (otype, len(listed)))
                listed += doc["data"]
            schema_ids = [f["id"] for f in schema["fields"]]
            # the listing leaves shared fields out; the schema has them
            self.assertEqual([f["id"] for f in listed], [f["id"] for f in schema["fields"] if not f["is_shared"]])
            self.assertEqual(schema_ids, [s[2] for s in crm.CRM_FIELD_SPECS if otype in s[0]])
            for f in schema["fields"]:
                self.assertRegex(f["id"], r"^cf_[0-9A-Za-z]{43}$")
                self.assertEqual(f["choices"] is not None, f["type"] == "choices")
            self.get("custom_field/%s/%s/" % (otype, schema_ids[0]))
        self.get("custom_field_schema/custom_object/", 404)
        self.get("custom_field/lead/%s/" % crm.CRM_CF["contact", "text"], 404)


class CrmWriteTests(EmulatorTest):
    """POST (200 + object), PUT (a PATCH), DELETE (200 {}) of leads, contacts, opportunities."""

    def call(self, method, path, body=None, status=200, **kw):
        r = request(method, "/api/v1/" + path, body, **kw)
        self.assertStatus(r, status)
        return r.json()

    def test_lead_create_update_delete(self):
        cf = crm.CRM_CF
        lead = self.call("POST", "lead/", {"name": "New Co", "url": "https://new.example.com",
                                           "custom.%s" % cf["lead", "number"]: 12.5,
                                           "custom.%s" % cf["lead", "multi_choices"]: ["SMB"],
                                           "status": "Customer", "bogus_key": 1, "custom.cf_Nope": 2,
                                           "contacts": [{"name": "Nested", "phones": [{"phone": "8004445555"}]}]})
        self.assertRegex(lead["id"], r"^lead_[0-9A-Za-z]{43}$")
        self.assertEqual((lead["status_label"], lead["status_id"]), ("Customer", emu.STATUSES[2][0]))
        self.assertEqual(lead["custom." + cf["lead", "number"]], Decimal("12.5"))
        self.assertNotIn("bogus_key", lead)          # unknown keys: accepted and dropped
        self.assertNotIn("custom.cf_Nope", lead)
        self.assertEqual(lead["contacts"][0]["phones"][0]["phone"], "+18004445555")
        self.assertEqual(lead["created_by"], crm.USER_IDS["test"])
        self.assertEqual(self.call("GET", "lead/%s/" % lead["id"]), lead)
        # default status: the first; status and status_id together: 400
        self.assertEqual(self.call("POST", "lead/", {})["status_id"], emu.STATUSES[0][0])
        self.assertEqual(self.call("POST", "lead/", {})["display_name"], "Untitled")
        r = request("POST", "/api/v1/lead/", {"status": "Customer", "status_id": emu.STATUSES[0][0]})
        self.assertStatus(r, 400)
        self.assertStatus(request("POST", "/api/v1/lead/", {"status_id": "stat_nope"}), 400)
        self.assertStatus(request("POST", "/api/v1/lead/", {"name": 5}), 400)
        # PUT is a PATCH; read-only keys are ignored; .add/.remove on multi-value fields
        upd = self.call("PUT", "lead/%s/" % lead["id"], {"description": "d", "id": "lead_x", "html_url": "x",
                                                         "custom.%s.add" % cf["lead", "multi_choices"]: "Enterprise",
                                                         "custom.%s" % cf["lead", "number"]: None},
                        auth=basic("api_alice_key"))
        self.assertEqual((upd["name"], upd["description"], upd["id"]), ("New Co", "d", lead["id"]))
        self.assertEqual(upd["custom." + cf["lead", "multi_choices"]], ["SMB", "Enterprise"])
        self.assertNotIn("custom." + cf["lead", "number"], upd)
        self.assertEqual((upd["updated_by"], upd["updated_by_name"]), (crm.USER_IDS["alice"], "Alice Anders"))
        self.assertGreater(upd["date_updated"], lead["date_updated"])
        upd = self.call("PUT", "lead/%s/" % lead["id"], {"custom.%s.remove" % cf["lead", "multi_choices"]: "SMB",
                                                         "status_id": emu.STATUSES[1][0]})
        self.assertEqual(upd["custom." + cf["lead", "multi_choices"]], ["Enterprise"])
        self.assertEqual(upd["status_label"], "Qualified")
        # an update moves the lead to the front of /lead/
        self.assertEqual(self.call("GET", "lead/?_limit=1&_fields=id")["data"], [{"id": lead["id"]}])
        self.call("PUT", "lead/lead_%s/" % ("Q" * 43), {}, 404)
        # delete: 200 {}, cascades, then 404
        self.assertEqual(self.call("DELETE", "lead/%s/" % emu.LEAD_MIXED), {})
        self.call("GET", "lead/%s/" % emu.LEAD_MIXED, status=404)
        self.call("DELETE", "lead/%s/" % emu.LEAD_MIXED, status=404)
        self.call("GET", "contact/%s/" % crm.CONTACT_MIXED, status=404)
        self.call("GET", "opportunity/%s/" % crm.OPPO["MixedWon"], status=404)
        self.call("GET", "custom_object/%s/" % emu.OBJ_MIXED_ALPHA, status=404)
        self.assertEqual(self.call("GET", "contact/?lead_id=%s" % emu.LEAD_MIXED)["data"], [])
        self.assertEqual(self.call("GET", "opportunity/?lead_id=%s" % emu.LEAD_MIXED)["total_results"], 0)
        self.assertNotIn(emu.LEAD_MIXED, control("GET", "data/leads").json())
        self.assertEqual(self.call("GET", "lead/?_limit=0")["total_results"], 10 + 3 - 1)
        r = request("POST", "/api/v1/custom_object/", {"custom_object_type_id": S, "lead_id": emu.LEAD_MIXED,
                                                       "name": "x"})
        self.assertStatus(r, 400)

    def test_stale_reads_after_delete(self):
        control("POST", "config", {"stale_reads": 1})
        self.call("DELETE", "contact/%s/" % crm.CONT["SheetJane"])
        self.assertEqual(self.call("GET", "contact/%s/?_fields=id" % crm.CONT["SheetJane"]),
                         {"id": crm.CONT["SheetJane"]})
        self.call("GET", "contact/%s/" % crm.CONT["SheetJane"], status=404)
        self.call("DELETE", "contact/%s/" % crm.CONT["SheetJane"], status=404)
        self.assertNotIn(crm.CONT["SheetJane"], [c["id"] for c in self.call("GET", "contact/?_limit=200")["data"]])
        # the opportunity that named it loses it
        self.assertIsNone(self.call("GET", "opportunity/%s/" % crm.OPPO["SheetDeal"])["contact_id"])

    def test_contacts(self):
        cf = crm.CRM_CF
        c = self.call("POST", "contact/", {"lead_id": emu.LEAD_ONE, "name": "Ann", "title": "CTO",
                                           "emails": [{"email": "ann@one.example.com", "type": "office"}],
                                           "phones": [{"phone": "8004445555", "type": "mobile"},
                                                      {"phone": "+44 20 7946 0958"}],
                                           "urls": [{"url": "https://ann.example.com"}],
                                           "custom.%s" % cf["contact", "date"]: "1990-01-31",
                                           "custom.%s" % cf["contact", "shared"]: "AMER",
                                           "unknown": "dropped", "display_name": "ignored"})
        self.assertRegex(c["id"], r"^cont_[0-9A-Za-z]{43}$")
        self.assertEqual(c["phones"], [{"phone": "+18004445555", "phone_formatted": "+1 800-444-5555",
                                        "type": "mobile", "country": "US"},
                                       {"phone": "+442079460958", "phone_formatted": "+442079460958",
                                        "type": "office", "country": None}])
        self.assertEqual(c["emails"], [{"email": "ann@one.example.com", "type": "office", "is_unsubscribed": False}])
        self.assertEqual((c["display_name"], c["lead_id"]), ("Ann", emu.LEAD_ONE))
        self.assertNotIn("unknown", c)
        self.assertEqual(c["custom." + cf["contact", "shared"]], "AMER")
        self.assertEqual(self.call("GET", "contact/?lead_id=%s&_fields=id" % emu.LEAD_ONE)["data"][0], {"id": c["id"]})
        # PUT: only what is sent; lead_id is ignored (the sheet: unconfirmed)
        u = self.call("PUT", "contact/%s/" % c["id"], {"title": "CEO", "lead_id": emu.LEAD_BIG, "phones": []})
        self.assertEqual((u["title"], u["name"], u["lead_id"], u["phones"]), ("CEO", "Ann", emu.LEAD_ONE, []))
        for bad in ({"lead_id": "lead_%s" % ("Q" * 43)}, {"emails": [{"email": "nope"}]}, {"phones": [{"phone": "x"}]},
                    {"emails": "a@b.c"}, {"custom.%s" % cf["contact", "number"]: "7"}):
            self.assertStatus(request("POST", "/api/v1/contact/", dict({"lead_id": emu.LEAD_ONE}, **bad)), 400)
        # without lead_id Close makes a new, unnamed lead
        before = self.call("GET", "lead/?_limit=0")["total_results"]
        orphan = self.call("POST", "contact/", {"name": "Orphan"})
        self.assertEqual(self.call("GET", "lead/?_limit=0")["total_results"], before + 1)
        lead = self.call("GET", "lead/%s/" % orphan["lead_id"])
        self.assertEqual((lead["name"], lead["display_name"]), (None, "Untitled"))
        self.assertEqual(self.call("DELETE", "contact/%s/" % c["id"]), {})
        r = request("DELETE", "/api/v1/contact/%s/" % orphan["id"])
        self.assertEqual((r.status, r.body), (200, b"{}"))

    def test_opportunities(self):
        cf = crm.CRM_CF
        o = self.call("POST", "opportunity/", {"lead_id": emu.LEAD_ONE, "value": 50000, "note": "n",
                                               "custom.%s" % cf["opportunity", "number"]: 3, "whatever": 1,
                                               "expected_value": 1})
        self.assertRegex(o["id"], r"^oppo_[0-9A-Za-z]{43}$")
        self.assertEqual((o["value"], o["value_formatted"], o["confidence"], o["expected_value"]),
                         (50000, "$500", 50, 25000))
        self.assertEqual((o["status_id"], o["status_type"], o["pipeline_id"], o["value_period"]),
                         (crm.STAT_ACTIVE, "active", crm.PIPE_SALES, "one_time"))
        self.assertEqual((o["user_id"], o["lead_name"], o["date_won"]), (crm.USER_IDS["test"], "One Object Lead", None))
        self.assertNotIn("whatever", o)
        # pipeline_id without a status: its first status; a status of another pipeline: 400
        o2 = self.call("POST", "opportunity/", {"lead_id": emu.LEAD_ONE, "pipeline_id": crm.PIPE_RENEWALS,
                                                "value": 1234, "value_period": "annual", "confidence": 0})
        self.assertEqual((o2["status_id"], o2["value_formatted"], o2["expected_value"]),
                         (crm.STAT_RENEWAL, "$12.34 annual", 0))
        for bad in ({"pipeline_id": crm.PIPE_RENEWALS, "status_id": crm.STAT_WON}, {"pipeline_id": "pipe_nope"},
                    {"value": 12.5}, {"value": "500"}, {"confidence": 101}, {"value_period": "weekly"},
                    {"status_id": emu.STATUSES[0][0]}, {"date_won": "soon"}, {"user_id": "bob"}):
            self.assertStatus(request("POST", "/api/v1/opportunity/", dict({"lead_id": emu.LEAD_ONE}, **bad)), 400)
        # a won status sets date_won (x-tz-offset's today), kept when moved back
        w = self.call("PUT", "opportunity/%s/" % o["id"], {"status_id": crm.STAT_WON},
                      headers={"x-tz-offset": "-5"})
        self.assertEqual((w["status_type"], w["date_won"]), ("won", "2023-12-31"))
        a = self.call("PUT", "opportunity/%s/" % o["id"], {"status": "Active", "value": 300, "confidence": 80})
        self.assertEqual((a["status_type"], a["date_won"], a["value_formatted"], a["expected_value"]),
                         ("active", "2023-12-31", "$3", 240))
        self.assertEqual(a["note"], "n")
        w = self.call("PUT", "opportunity/%s/" % o2["id"], {"status_id": crm.STAT_RENEWED, "date_won": "2022-02-02"})
        self.assertEqual(w["date_won"], "2022-02-02")
        lost = self.call("PUT", "opportunity/%s/" % o2["id"], {"status_id": crm.STAT_CHURNED})
        self.assertIsNotNone(lost["date_lost"])
        # lead_id and pipeline_id on PUT: ignored without error
        m = self.call("PUT", "opportunity/%s/" % o["id"], {"lead_id": emu.LEAD_BIG, "pipeline_id": crm.PIPE_RENEWALS})
        self.assertEqual((m["lead_id"], m["pipeline_id"]), (emu.LEAD_ONE, crm.PIPE_SALES))
        # monthly: annualized x 12
        m = self.call("PUT", "opportunity/%s/" % o["id"], {"value_period": "monthly", "value": 5000})
        self.assertEqual((m["annualized_value"], m["annualized_expected_value"], m["value_formatted"]),
                         (60000, 48000, "$50 monthly"))
        # note_html rewrites note; null clears both
        m = self.call("PUT", "opportunity/%s/" % o["id"], {"note_html": "<body><p>Hi</p></body>"})
        self.assertEqual((m["note"], m["note_html"]), ("Hi", "<body><p>Hi</p></body>"))
        # without lead_id: a new lead
        orphan = self.call("POST", "opportunity/", {"value": 1})
        self.assertEqual(self.call("GET", "lead/%s/" % orphan["lead_id"])["display_name"], "Untitled")
        self.assertEqual(self.call("DELETE", "opportunity/%s/" % o["id"]), {})
        self.call("GET", "opportunity/%s/" % o["id"], status=404)
        self.call("DELETE", "opportunity/%s/" % o["id"], status=404)
        # the lead's nested list follows
        self.assertEqual([x["id"] for x in self.call("GET", "lead/%s/" % emu.LEAD_ONE)["opportunities"]],
                         [crm.OPPO["OneMonthly"], o2["id"]])


def crf(otype, name):
    return {"type": "regular_field", "object_type": otype, "field_name": name}


def otype_node(otype):
    return {"type": "object_type", "object_type": otype}


class CrmSearchTests(EmulatorTest):
    """Advanced Filtering of leads, contacts and opportunities."""

    def search(self, body, status=200, **kw):
        r = request("POST", SEARCH, body, **kw)
        self.assertStatus(r, status)
        return r.json()

    def ids(self, otype, *queries, sort=None, headers=None, fields=None, limit=200):
        body = {"query": AND(otype_node(otype), *queries), "_limit": limit}
        if sort is not None:
            body["sort"] = sort
        if fields is not None:
            body["_fields"] = {otype: fields}
        out, doc = [], self.search(body, headers=headers)
        while True:
            out += doc["data"]
            if doc["cursor"] is None:
                return out
            doc = self.search(dict(body, cursor=doc["cursor"]), headers=headers)

    def test_object_types_fields_and_sort(self):
        leads = self.ids("lead", fields=["name", "status_id", "custom." + crm.CRM_CF["lead", "text"], "contacts"])
        self.assertEqual(len(leads), len(emu.SAMPLE_LEADS))
        self.assertEqual(leads[0]["__object_type"], "lead")
        self.assertEqual(leads[0]["id"], emu.LEAD_BIG)                     # date_created descending by default
        mixed = [x for x in leads if x["id"] == emu.LEAD_MIXED][0]
        self.assertEqual(mixed, {"__object_type": "lead", "id": emu.LEAD_MIXED, "name": "Mixed Lead",
                                 "status_id": emu.STATUSES[1][0], "custom." + crm.CRM_CF["lead", "text"]: "Software"})
        self.assertEqual(len(self.ids("contact")), len(crm.CONT))
        self.assertEqual(len(self.ids("opportunity")), len(crm.OPPO))
        # without _fields: __object_type and id only
        self.assertEqual(self.ids("contact", term(crf("contact", "id"), crm.CONTACT_MIXED)),
                         [{"__object_type": "contact", "id": crm.CONTACT_MIXED}])
        asc = self.ids("lead", sort=[{"field": crf("lead", "date_created"), "direction": "asc"}])
        self.assertEqual(asc[0]["id"], emu.LEAD_SHEET)
        by_upd = self.ids("opportunity", sort=[{"field": crf("opportunity", "date_updated"), "direction": "desc"}])
        self.assertEqual(by_upd[0]["id"], crm.OPPO["Plain5Churned"])
        # a regular field of another type, or an unknown one: 400
        for q in (term(crf("contact", "name"), "x"), term(crf("lead", "title"), "x"),
                  term(cfield(crm.CRM_CF["contact", "text"]), "x")):
            r = request("POST", SEARCH, {"query": AND(otype_node("lead"), q)})
            self.assertStatus(r, 400)

    def test_conditions(self):
        C = crm.CONT
        O = crm.OPPO
        words = {"type": "text", "mode": "full_words", "value": "plain"}
        self.assertEqual([x["id"] for x in self.ids("lead", fc(crf("lead", "name"), words))],
                         list(reversed(emu.LEAD_PLAIN)))
        self.assertEqual({x["id"] for x in self.ids("lead", fc(crf("lead", "status_id"), {
            "type": "reference", "reference_type": "status.lead", "object_ids": [emu.STATUSES[2][0]]}))},
            {emu.LEAD_SHEET, emu.LEAD_BIG, emu.LEAD_PLAIN[1], emu.LEAD_PLAIN[4]})
        self.assertEqual({x["id"] for x in self.ids("contact", term(crf("contact", "lead_id"), emu.LEAD_MIXED))},
                         {C["Mixed"], C["MixedBilling"]})
        self.assertEqual({x["id"] for x in self.ids("opportunity", term(crf("opportunity", "status_type"), "won"))},
                         {O["MixedWon"], O["Plain4Former"]})
        self.assertEqual({x["id"] for x in self.ids("opportunity", nrange(crf("opportunity", "value"), gte=100000))},
                         {O["MixedWon"], O["Plain1Lost"]})
        self.assertEqual({x["id"] for x in self.ids("opportunity", mrange(crf("opportunity", "date_won"),
                                                                          local("2020-11-30", "start")))},
                         {O["MixedRenewal"], O["Plain4Former"]})
        # custom fields (shared ones too), exists, negate
        cf = crm.CRM_CF
        self.assertEqual({x["id"] for x in self.ids("contact", term(cfield(cf["contact", "shared"]), "EMEA"))},
                         {C["Mixed"]})
        self.assertEqual({x["id"] for x in self.ids("lead", term(cfield(cf["lead", "shared"]), "EMEA", "APAC"))},
                         {emu.LEAD_MIXED, emu.LEAD_ONE})
        self.assertEqual({x["id"] for x in self.ids("lead", term(cfield(cf["lead", "multi_choices"]), "Enterprise"))},
                         {emu.LEAD_MIXED, emu.LEAD_BIG})
        has = self.ids("contact", fc(cfield(cf["contact", "number"]), {"type": "exists"}))
        lacks = self.ids("contact", fc(cfield(cf["contact", "number"]), {"type": "exists"}, negate=True))
        self.assertEqual(len(has), 5)
        self.assertEqual(len(has) + len(lacks), len(C))

    def test_moment_ranges_and_day_granular(self):
        opps = self.ids("opportunity", fields=["date_created"],
                        sort=[{"field": crf("opportunity", "date_created"), "direction": "asc"}])
        third = opps[2]["date_created"]
        upper = opps[3]["date_created"]
        window = [mrange(crf("opportunity", "date_created"), utc(third), utc(upper))]
        # exact: exactly the third
        self.assertEqual([x["id"] for x in self.ids("opportunity", *window)], [opps[2]["id"]])
        # day-granular: both bounds fall on 2020-09-01, the window is empty
        control("POST", "config", {"crm_search_day_granular": 1})
        self.assertEqual(self.ids("opportunity", *window), [])
        everything = self.ids("opportunity", mrange(crf("opportunity", "date_created"), utc(third)))
        self.assertEqual(len(everything), len(crm.OPPO))      # on_or_after from that day's start
        # mode 2: a "before" inside a day reaches to the next day's start
        control("POST", "config", {"crm_search_day_granular": 2})
        self.assertEqual(len(self.ids("opportunity", *window)), len(crm.OPPO))
        at_midnight = [mrange(crf("opportunity", "date_created"), utc(third), utc("2020-09-01T00:00:00Z"))]
        self.assertEqual(self.ids("opportunity", *at_midnight), [])
        # and with x-tz-offset the day is the local one: [2020-09-01 13:00Z, 2020-09-02 13:00Z)
        part = self.ids("opportunity", mrange(crf("opportunity", "date_created"), utc(upper)),
                        headers={"x-tz-offset": "-13"})
        self.assertTrue(0 < len(part) < len(crm.OPPO))
        # custom objects keep exact bounds
        doc = self.search({"query": mrange(rf("date_created"), utc("2020-08-04T16:45:35.367000+00:00"),
                                           utc("2020-08-04T16:45:35.368000+00:00")), "include_counts": True})
        self.assertEqual(doc["count"]["total"], 1)
        control("POST", "config", {"crm_search_day_granular": 0})
        # fixed_local_date at x-tz-offset: opportunities were created 2020-09-01 ~12:00-15:00 UTC
        day = [mrange(crf("opportunity", "date_created"), local("2020-09-01", "start"), local("2020-09-01", "end"))]
        self.assertEqual(len(self.ids("opportunity", *day)), len(crm.OPPO))
        self.assertEqual(len(self.ids("opportunity", *day, headers={"x-tz-offset": "14"})), 0)
        part = self.ids("opportunity", *day, headers={"x-tz-offset": "-13"})
        self.assertTrue(0 < len(part) < len(crm.OPPO))

    def test_counts_paging_and_cap(self):
        doc = self.search({"query": AND(otype_node("lead")), "include_counts": True, "results_limit": 0})
        self.assertEqual(doc, {"data": [], "cursor": None, "count": {"total": len(emu.SAMPLE_LEADS)}})
        body = {"query": AND(otype_node("contact")), "_limit": 5}
        doc = self.search(body)
        self.assertEqual(len(doc["data"]), 5)
        second = self.search(dict(body, cursor=doc["cursor"]))
        self.assertEqual(len(second["data"]), 5)
        self.assertFalse({x["id"] for x in doc["data"]} & {x["id"] for x in second["data"]})
        control("POST", "config", {"search_max_results": 4})
        doc = self.search({"query": AND(otype_node("opportunity")), "_limit": 3, "include_counts": True})
        doc2 = self.search({"query": AND(otype_node("opportunity")), "_limit": 3, "include_counts": True,
                            "cursor": doc["cursor"]})
        self.assertEqual((len(doc2["data"]), doc2["cursor"], doc2["count"]["total"]), (1, None, len(crm.OPPO)))
        # a deleted record drops out of later pages
        control("POST", "config", {"search_max_results": 10000})
        doc = self.search({"query": AND(otype_node("contact")), "_limit": 1})
        gone = self.search({"query": AND(otype_node("contact")), "_limit": 1, "cursor": doc["cursor"]})["data"][0]
        request("DELETE", "/api/v1/contact/%s/" % gone["id"])
        doc = self.search({"query": AND(otype_node("contact")), "_limit": 1, "cursor": doc["cursor"]})
        self.assertEqual(doc["data"], [])


class CrmGenerateTests(EmulatorTest):
    def test_generate_and_page_past_the_caps(self):
        r = control("POST", "crm/generate", {"leads": 450, "contacts_per_lead": 2, "opportunities_per_lead": 1})
        self.assertEqual(r.json(), {"created": {"leads": 450, "contacts": 900, "opportunities": 450}})
        total = len(emu.SAMPLE_LEADS) + 450
        seen, skip = set(), 0
        while True:
            doc = request("GET", "/api/v1/lead/?_fields=id&_limit=200&_skip=%d" % skip).json()
            self.assertEqual(doc["total_results"], total)
            seen |= {x["id"] for x in doc["data"]}
            skip += 200
            if not doc["has_more"]:
                break
        self.assertEqual(len(seen), total)
        # a lowered cap: /lead/ refuses to page past it; search reads everything
        control("POST", "config", {"lead_max_skip": 300})
        r = request("GET", "/api/v1/lead/?_skip=400&_limit=200")
        self.assertStatus(r, 400)
        self.assertIn("less than or equal to 300", r.json()["field-errors"]["_skip"])
        doc = request("POST", SEARCH, {"query": AND(otype_node("lead")), "include_counts": True,
                                       "results_limit": 0}).json()
        self.assertEqual(doc["count"]["total"], total)
        doc = request("GET", "/api/v1/contact/?_limit=0").json()
        self.assertTrue(doc["has_more"])
        doc = request("GET", "/api/v1/opportunity/?_limit=1&_fields=id").json()
        self.assertEqual(doc["total_results"], len(crm.OPPO) + 450)
        self.assertEqual(sum(doc["count_by_value_period"].values()), len(crm.OPPO) + 450)

    def test_generate_on_one_lead_with_ties_and_steps(self):
        control("POST", "crm/generate", {"lead_id": emu.LEAD_EMPTY, "contacts_per_lead": 250,
                                         "date_created": "2022-02-02T00:00:00Z"})
        recs = control("GET", "data/crm?type=contact&lead_id=" + emu.LEAD_EMPTY).json()
        self.assertEqual(len(recs), 250)
        self.assertEqual({r["date_created"] for r in recs}, {"2022-02-02T00:00:00.000000+00:00"})
        self.assertEqual([r["id"] for r in recs], sorted(r["id"] for r in recs))
        ids = []
        for skip in (0, 200):
            doc = request("GET", "/api/v1/contact/?lead_id=%s&_limit=200&_skip=%d&_fields=id" %
                          (emu.LEAD_EMPTY, skip)).json()
            ids += [x["id"] for x in doc["data"]]
        self.assertEqual(sorted(ids), sorted(r["id"] for r in recs))
        control("POST", "crm/generate", {"leads": 3, "opportunities_per_lead": 2, "name_prefix": "Step",
                                         "start": "2023-05-01T23:59:59+00:00", "step_ms": 500})
        leads = [r for r in control("GET", "data/crm?type=lead").json() if r["name"].startswith("Step")]
        self.assertEqual([r["name"] for r in leads], ["Step Lead 1", "Step Lead 2", "Step Lead 3"])
        self.assertEqual(leads[1]["date_created"], "2023-05-01T23:59:59.500000+00:00")
        opps = control("GET", "data/crm?type=opportunity&lead_id=" + leads[0]["id"]).json()
        self.assertEqual(len(opps), 2)
        self.assertEqual(opps[0]["date_created"], "2023-05-02T00:00:00.500000+00:00")
        for bad in ({"leads": -1}, {"lead_id": "lead_nope"}, {"start": "yesterday"}, {"bogus": 1}):
            self.assertStatus(request("POST", "/_emulator/crm/generate", bad, auth=None), 400)
        self.assertStatus(request("GET", "/_emulator/data/crm?type=user", auth=None), 400)

    def test_generate_many_leads_fast(self):
        t0 = time.monotonic()
        control("POST", "crm/generate", {"leads": 36000})
        doc = request("GET", "/api/v1/lead/?_skip=35000&_limit=200&_fields=id").json()
        self.assertEqual(len(doc["data"]), 200)
        self.assertStatus(request("GET", "/api/v1/lead/?_skip=35001"), 400)
        self.assertLess(time.monotonic() - t0, 20)


class ProcessTests(unittest.TestCase):
    def test_sigterm_and_sigint_exit_cleanly(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            proc, port, port_file = start_emulator("--data", "empty")
            try:
                self.assertEqual(request("GET", "/api/v1/lead/", port=port).json()["total_results"], 0)
                # a hung request and an idle keep-alive connection must not block shutdown
                request("POST", "/_emulator/faults", {"action": "hang"}, auth=None, port=port)
                idle = socket.create_connection(("127.0.0.1", port))
                hung = socket.create_connection(("127.0.0.1", port))
                hung.sendall(b"GET /api/v1/lead/ HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.1)
                t0 = time.monotonic()
                proc.send_signal(sig)
                self.assertEqual(proc.wait(5), 0)
                self.assertLess(time.monotonic() - t0, 3)
                self.assertFalse(os.path.exists(port_file))
                idle.close()
                hung.close()
            finally:
                stop_emulator(proc)

    def test_command_line_options(self):
        proc, port, _ = start_emulator("--max-limit", "5", "--rate-limit-per-sec", "2", "--latency-ms", "1",
                                       "--cursor-ttl", "7", "--search-max-results", "50",
                                       "--search-rate-limit-per-sec", "3")
        try:
            cfg = request("GET", "/_emulator/config", auth=None, port=port).json()
            self.assertEqual(cfg, {"latency_ms": 1, "max_limit": 5, "max_skip": 10000, "rate_limit_per_sec": 2,
                                   "cursor_ttl": 7, "search_max_results": 50, "search_rate_limit_per_sec": 3,
                                   "short_pages": 0, "list_by_date_updated": 0, "crm_max_limit": 200,
                                   "lead_max_skip": 35000, "crm_max_skip": 0, "crm_search_day_granular": 0,
                          "stale_reads": 0, "max_url": 0, "stale_lists": 0})
            path = objects_path(emu.LEAD_BIG, _limit=6)
            self.assertEqual(request("GET", path, port=port).status, 400)
            self.assertEqual(request("GET", path, port=port).status, 400)
            self.assertEqual(request("GET", path, port=port).status, 429)
        finally:
            stop_emulator(proc)


if __name__ == "__main__":
    unittest.main()
