#!/usr/bin/env python3
"""Close CRM REST API emulator for the close_fdw tests.

This file owns a small, strict, deterministic stand-in for the parts of the
Close REST API (https://api.close.com/api/v1) that close_fdw talks to, written
to the API sheet /work/shared/close-api.md.  Standard library only; it binds
127.0.0.1 only and is never meant to face a network.

What it emulates (all under /api/v1/, every path ends with a slash):

  GET    /custom_object/?lead_id=L[&custom_object_type_id=T][&_skip][&_limit][&_fields]
  POST   /custom_object/                       create (201, strict validation)
  GET    /custom_object/{id}/                  retrieve (404 unknown)
  PUT    /custom_object/{id}/                  partial update (PATCH semantics)
  DELETE /custom_object/{id}/                  204, empty body
  GET    /custom_object_type/                  {"data": [...]}, no paging
  GET    /custom_object_type/{id}/             one type (extra, 404 unknown)
  GET    /custom_field/custom_object_type/     paged list of fields
  GET    /custom_field/custom_object_type/{cf_id}/
  POST   /data/search/                         Advanced Filtering of custom objects (below)
  and the CRM resources (close_emulator_crm.py; section "CRM resources" below):
  GET    /lead/  /lead/{id}/  /contact/  /contact/{id}/  /opportunity/  /opportunity/{id}/
  GET    /user/  /user/{id}/  /status/lead/[{id}/]  /status/opportunity/[{id}/]  /pipeline/[{id}/]
  GET    /custom_field_schema/{lead|contact|opportunity}/  /custom_field/{lead|contact|opportunity}/[{id}/]
  POST   /lead/  /contact/  /opportunity/      200 with the whole object
  PUT    /lead/{id}/  /contact/{id}/  /opportunity/{id}/     a PATCH, 200 with the whole object
  DELETE /lead/{id}/  /contact/{id}/  /opportunity/{id}/     200 {}

  plus: HTTP Basic (API key as user name, empty password) and Bearer auth,
  "RateLimit" headers on every API answer, optional 429 rate limiting,
  "POST + x-http-method-override: GET" with {"_params": {...}} bodies,
  per-request latency, fault injection and a request log.

What it does NOT emulate: webhooks, the 402 plan limit, activities, tasks,
events, lead merges, the deprecated lead "query" parameter.

Behaviour notes (where the sheet leaves room, the strict reading is taken):
  * Order of checks on an API request: fault rule, latency, malformed URL (400),
    auth (401), rate limit (429), method override body (400), unknown path
    (404), wrong method (405: HEAD and unknown methods too), Content-Type of a
    POST/PUT body must be application/json (415), body must be a JSON object
    (400), then the endpoint's own validation.
  * Create/update: read-only keys, unknown keys (including a nested "custom"
    object and custom.cf_... keys of another type) -> 400 field-errors naming
    each key.  PUT may repeat the current lead_id / custom_object_type_id but
    not change them.  "custom.X": null (or an empty array on a multi-value
    field) removes the value.  Values are checked by field type: text/textarea
    strings; number a JSON number (not a string, not a bool); date YYYY-MM-DD;
    datetime ISO 8601 with an offset or Z (stored as UTC, microseconds,
    +00:00); choices one of the field's choices; user/contact/custom_object
    ids of the right prefix (custobj_ + 43 base62; existence not checked);
    hidden any scalar; unknown field types any JSON value; multi-value fields
    arrays of such values.
  * created_by / updated_by are the user behind the credential (USERS).
  * RateLimit: "limit=L, remaining=R, reset=S" per (credential label, method +
    path template), sliding 1 s window.  Without --rate-limit-per-sec, L is 100
    and nothing is refused.  A 429 carries Retry-After (whole seconds, >= 1) and
    {"error": {"message": "API rate limit exceeded", "rate_reset": S}}; refused
    requests do not use up a slot.
  * Faults apply to API requests only and are checked first (before auth).
    A rule matches by "method", "path_prefix" (of the decoded path) and
    "query_contains" (a substring of the raw query string), each optional.
    `status`, `garbage`, `drop` and `hang` do not run the request; `delay`,
    `truncate` and `replace_body` do (a truncated POST did create its object;
    `replace_body` answers the request's own status with the rule's "body"
    instead of its own, e.g. a 201 that is not JSON or has no "id"; a
    truncated 204, such as a DELETE's, is sent as a 200 "{}" cut short).  `status`
    answers get Content-Type application/json and the RateLimit header
    unless "headers" overrides them; a header given as null is left out.
    "body_hex" gives the body as raw bytes instead (hex digits), e.g. text
    that is not UTF-8.
    `delay` defaults to 1 s, `hang` to 3600 s; hung requests are released
    (connection closed, no answer) by DELETE /_emulator/faults, reset and
    shutdown.
  * Log text lines: METHOD RAWPATH[ BODY], BODY as compact JSON with sorted
    keys, non-ASCII written as UTF-8 (not \\u escapes) and numbers as sent.
    JSON log entries: method, raw_path, path, query, body, status, auth, client_port,
    headers (lower-cased, no Authorization / Proxy-Authorization), time (Unix
    seconds, float).  Control requests are never logged.

Advanced Filtering, POST /api/v1/data/search/ (same pipeline as every API
request: fault rules, latency, auth, RateLimit header and 429, JSON body, log).
Body keys (anything else -> 400 field-errors "Unknown key."):
  * query (required): a tree of nodes, each may carry "negate": true --
      {"type": "and"|"or", "queries": [node, ...]}   (empty and: true, empty or: false)
      {"type": "object_type", "object_type": T}   true for the type searched, false otherwise.
         The type searched is lead, contact or opportunity when the first non-negated
         object_type node at the top or directly under a top-level "and" names one; otherwise
         custom_object (any other type then matches nothing).
      {"type": "match_all"}
      {"type": "field_condition", "field": F, "condition": C}
    F: {"type": "regular_field", "object_type": <the type searched>, "field_name": N}, N one of
       custom_object: id, lead_id, custom_object_type_id, name, date_created, date_updated,
       organization_id, created_by, updated_by;  lead, contact, opportunity: see
       close_emulator_crm.SEARCH_FIELDS (e.g. lead name/status_id/date_created/date_updated,
       contact lead_id/name/title, opportunity lead_id/status_id/status_type/user_id/value/
       date_won);  or {"type": "custom_field", "custom_field_id": "cf_..."} (a field of the
       type searched, shared ones included; reads "custom.cf_...").
    C: {"type": "term", "values": [...]}             exact, case-sensitive, type-strict equality
       {"type": "reference", "reference_type": "status.lead", "object_ids": [...]}   id in the list
       {"type": "exists"}                              the field has a (non-null) value
       {"type": "text", "mode": M, "value": "..."}   M exact_value: casefold equality of the whole
                                                     value (looser than SQL =); phrase, full_words,
                                                     beginning_of_words: casefold substring
       {"type": "number_range", "gt"/"gte"/"lt"/"lte": number, ...}   numbers only
       {"type": "moment_range", "on_or_after": T, "before": T}   (one or both), T either
           {"type": "fixed_utc", "value": ISO 8601 with offset} or {"type": "fixed_local_date",
           "value": "YYYY-MM-DD", "which": "start"|"end"} (that day's / the next day's 00:00 at
           the x-tz-offset header's UTC offset in hours, 0 when absent).  A "YYYY-MM-DD" value is
           its 00:00 UTC.  With config crm_search_day_granular (a reading the sheets leave
           open), a fixed_utc bound on a lead, contact or opportunity search counts by day:
           1: each bound is taken as the start of its (x-tz-offset local) day (a window inside
           one day is empty); 2: on_or_after is its day's start and a "before" that is not a
           midnight is the NEXT day's start (a window inside one day is that whole day).
    A multi-value (array) field matches when any element does.  A missing or null value never
    matches a condition, so a negated condition matches records lacking the field.
    Unknown node/field/condition types, unknown keys in a node, bad values -> 400
    {"error": "<where>: <what is wrong>"}, e.g. "query.queries[1].condition.type: ...".
  * _fields: {"custom_object": ["id", "name", "custom.cf_...", ...]}; items are
    {"__object_type": <the type searched>, "id": ..., <each requested key the record has>};
    without _fields only __object_type and id.  Other object types' lists are ignored.
  * _limit: 1..200, default 100 (else 400 field-errors "_limit").
  * sort: [{"field": F, "direction": "asc"|"desc"}, ...], ties by id ascending, records
    lacking the value last in either direction, arrays by their first element.  Without
    sort: date_created DESCENDING, then id.
  * results_limit (integer >= 0): caps the objects the whole query returns; 0 returns
    no objects (with include_counts, the count alone: data [], cursor null).
  * include_counts: true adds "count": {"total": N}, N the true number of matches
    (not capped by search_max_results or results_limit).
  * cursor: null/absent for the first page, then the previous answer's cursor.
Answer: {"data": [...], "cursor": "<opaque>" | null[, "count": {"total": N}]}; the cursor is
null once no more objects will be returned.  The first page evaluates and sorts the query
once and keeps the matching ids (at most min(search_max_results, results_limit)) server-side;
later pages only slice that list (objects deleted meanwhile are skipped, so a page may be
short; values are read when the page is served).  One query (first page plus its cursor
chain) returns at most search_max_results objects (default 10000, Close's silent cap): then
the cursor is null although count.total is larger.  Every answer issues a new cursor that
expires cursor_ttl seconds (default 30; the value when it was issued) after that answer; a
cursor may be replayed (same page again) until then.  An expired/unknown cursor -> 400
{"field-errors": {"cursor": "Expired cursor"}} (as the sheet saw live); a cursor with a different query, sort, _fields or
results_limit -> 400 (_limit and include_counts may change between pages).  Expired cursor
states are dropped on every search request and on GET /_emulator/data/search_state.
The search endpoint's rate-limit groups use search_rate_limit_per_sec (0: never 429, header
limit 100) instead of rate_limit_per_sec.

CRM resources (close_emulator_crm.py; /work/shared/close-crm-api.md):
  * Listings answer {"data", "has_more"}; /lead/ adds "total_results", /opportunity/ adds
    total_results, count_by_value_period and total_value_* / expected_value_* (one_time, monthly,
    annual, annualized, each with a *_formatted string, null when 0) over every match.
  * Paging: _limit default 100, 0 allowed (count only), at most crm_max_limit (200); _skip at most
    lead_max_skip (35000) on /lead/ and crm_max_skip (0: no cap; Close's is unknown) on the other
    CRM listings.  Over a cap: 400 {"errors": [], "field-errors": {"_limit": "Input should be less
    than or equal to 200"}} (the _skip message adds where to go instead).
  * Orders: /lead/ by date_updated descending (an update moves a lead to the front), /contact/ and
    /opportunity/ by date_created descending, ties by id; /user/, statuses, pipelines as created.
  * Filters: /lead/ id__in; /contact/ lead_id (nothing else: other parameters are ignored, as
    Close ignores _sort there; id__in too: unconfirmed there); /opportunity/ lead_id,
    user_id, status_id, status_type,
    status_label (= status), value_period, organization_id, each also as X__in=a,b;
    date_won / date_created / date_updated as X, X__gt, X__gte, X__lt, X__lte (a date is that
    local day, x-tz-offset hours, default 0; a date-time with an offset is one instant; a naive
    one is local); _order_by one of date_won, date_updated, date_created, confidence, user_name,
    value, annualized_value, annualized_expected_value, "-" for descending, missing values last.
    query, lead_query, lead_saved_search_id, is_stalled and _group_by -> 400 (not emulated).
  * _fields on every CRM GET; on leads (and, permissively, contacts and opportunities) "custom"
    selects the deprecated object and every custom.cf_ key.
  * Records: leads carry the sheet's keys (display_name, status_label, html_url,
    created_by_name, addresses, nested contacts and opportunities, tasks, the deprecated
    name-keyed "custom" object) and custom.cf_ keys only when set; contacts' phones are E.164
    with phone_formatted and country; opportunities' money is integer cents with
    value_formatted ("$500", "$50 monthly"), expected_value = value * confidence / 100,
    annualized_value (monthly x 12); date_won is a date, date_lost a date-time; pipelines'
    dates are naive (no offset).  Sample: users Test, Alice, Bob, OAuth (an opportunity belongs
    to a former member /user/ does not list), the 3 lead statuses, pipelines Sales and
    Renewals with 7 opportunity statuses, contacts and opportunities on the sample leads (ids
    in close_emulator_crm.py: CONT, OPPO), custom fields per type (text, number, date,
    multi-value choices; a lead "user" field; a "Region" field shared by leads and contacts:
    in both schemas, in neither /custom_field/{type}/ listing).
  * Writes (the permissive reading where the sheet is unsure): unknown keys, unknown custom
    fields and read-only keys are accepted and DROPPED on create, IGNORED on update (lead_id on
    a contact or opportunity PUT and pipeline_id on an opportunity PUT included: nothing moves);
    date_created / created_by are taken on contact and opportunity creates (import use).  Values
    are checked: strings, integer cents for value (12.5 or "500" -> 400), confidence 0..100
    (default 50), value_period one_time|monthly|annual (default one_time), user_id user_...,
    date_won YYYY-MM-DD (a date-time gives its date), emails need an address, phones must be
    phone numbers (stored E.164: 10 digits get +1), custom.cf_ values by field type (as for
    custom objects), "custom.cf_X.add" / ".remove" on PUT for multi-value fields; a bad value ->
    400 field-errors.  Leads: status (label) or status_id, not both; default the first status;
    nested "contacts" on POST are created; no name -> display_name "Untitled".  A contact or
    opportunity POSTed without lead_id gets a NEW unnamed lead (Close's quirk).  Opportunities:
    pipeline_id on POST picks that pipeline's first status, a status of another pipeline -> 400;
    entering a won status sets date_won to today (runtime clock, x-tz-offset) unless it is set or
    sent, and never clears it; entering a lost status sets date_lost.  Deleting a lead deletes
    its contacts, opportunities and custom objects; deleting a contact clears contact_id on its
    opportunities.  With config stale_reads N, the first N GETs by id of a deleted lead,
    contact or opportunity still answer its last copy (Close's reads lag deletes); listings
    never show it, but with config stale_lists 1 too the whole contact listing (no lead_id)
    and searches of contacts and opportunities still show those copies (Close's list and
    search index lags its deletes by 30-60 s).

Numbers in request bodies are kept exactly as written (12.50 stays 12.50,
12345678901234.5678 keeps every digit): JSON is parsed with Decimal and
written back verbatim.  Timestamps come from a deterministic clock (sample
data in 2020, runtime writes from 2024-01-01T00:00:00.001000+00:00 on, one
millisecond per write), and new ids from a seeded generator, so a given
sequence of requests after a reset always yields the same ids and dates.

Control API (no auth, never logged), under /_emulator/:
  GET    /_emulator/health                     {"ok": true}
  GET    /_emulator/log[?format=json]          request log (text or JSON)
  POST   /_emulator/log/clear                  204
  GET    /_emulator/faults                     current fault rules
  POST   /_emulator/faults                     add a rule -> 200 {"rule": ..., "rules": N}
  DELETE /_emulator/faults                     204 (also releases hung requests)
  POST   /_emulator/reset                      data, log, faults, config reset; 204
  GET    /_emulator/config                     current config
  POST   /_emulator/config                     {"latency_ms", "max_limit", "max_skip",
                                                "rate_limit_per_sec", "cursor_ttl",
                                                "search_max_results" (>= 1),
                                                "search_rate_limit_per_sec",
                                                "short_pages" (custom object listings
                                                answer at most this many records a
                                                page, whatever _limit says; 0: off),
                                                "list_by_date_updated" (1: custom object
                                                listings in date_updated order, then id,
                                                so that an update moves an object: Close
                                                does not document a listing's order; 0:
                                                date_created order),
                                                "rate_limit_window_ms" (the rate limit's
                                                sliding window, default 1000: the
                                                *_per_sec limits are per window),
                                                "crm_max_limit" (200), "lead_max_skip"
                                                (35000), "crm_max_skip" (0: none),
                                                "crm_search_day_granular" (0, 1, 2),
                                                "stale_reads" (0), "stale_lists" (0),
                                                "max_url" (0: none;
                                                else a longer request target is 414, as
                                                Close takes URLs of about 2000
                                                characters)} (any subset,
                                                integers); 204
  POST   /_emulator/objects                    bulk create -> 200 {"created": N}; body
                                                {"lead_id", "custom_object_type_id", "count",
                                                "name_prefix", "values" (custom.cf_... keys),
                                                "date_created" (one instant for all: ties)}
  GET    /_emulator/data/leads                 {lead_id: object count, ...}
  GET    /_emulator/data/objects?lead_id=L     [records exactly as stored]
  GET    /_emulator/data/search_state          {"live_cursors": N} (after dropping expired ones)
  POST   /_emulator/crm/generate               many CRM records -> 200 {"created": {"leads": N,
                                                "contacts": N, "opportunities": N}}; body (all
                                                optional) {"leads": new leads "<prefix> Lead
                                                0001"..., "contacts_per_lead",
                                                "opportunities_per_lead" (on each new lead, and
                                                on "lead_id", an existing lead), "name_prefix"
                                                ("Generated"), "date_created" (one instant for
                                                all: ties) or "start" + "step_ms" (1000: one
                                                record every step), else the runtime clock}.
                                                Leads cycle the lead statuses, opportunities the
                                                opportunity statuses, periods and users (value
                                                100, 200, ... cents); each record's number
                                                custom field holds its position.
  GET    /_emulator/data/crm?type=lead|contact|opportunity[&lead_id=L]
                                                records as stored (leads as GET shows them)

Sample data (--data sample; --data empty keeps the types and fields but has
no leads and no objects).  Lead ids (see SAMPLE_LEADS):

  key     lead id                                           objects
  sheet   lead_hwnL36A2iEMSLIlmGhsdrcmOJzTUzqEHwr66wrA1K2T  2 Resource (the sheet's record
                                                              and the object it points at)
  mixed   lead_Mixed00000000000000000000000000000000000000  3 (2 Subscription, 1 Resource)
  one     lead_One0000000000000000000000000000000000000000  1 Device
  plain1  lead_Plain10000000000000000000000000000000000000  2 (mixed types)
  plain2  lead_Plain20000000000000000000000000000000000000  3
  plain3  lead_Plain30000000000000000000000000000000000000  4
  plain4  lead_Plain40000000000000000000000000000000000000  2
  plain5  lead_Plain50000000000000000000000000000000000000  3
  empty   lead_Empty00000000000000000000000000000000000000  0
  big     lead_Big0000000000000000000000000000000000000000  250 Resource, "Item 001".."Item 250",
                                                              Capacity = 1..250,
                                                              Priority = low/medium/high cycling

Mixed lead objects, in list order (custom keys shown by field name; see FIELD_SPECS):
  custobj_MixedAlpha000000000000000000000000000000000  Subscription "Mixed Alpha"
      Plan "Gold", Terms "Line one\\nLine two", Amount 42, Balance -17.25,
      Start date "2021-03-15", Renewed at "2021-03-15T10:30:00.000000+00:00",
      Status "active", Account manager user_Alice..., Billing contact cont_Mixed...,
      Resource custobj_MixedGamma..., Legacy flag (hidden) true,
      Labels ["alpha", "Zürich ✓", "say \\"hi\\""], Channels ["email", "sms"],
      Future thing (type "future_type") "opaque-v2", Weird... (awkward name) "awkward ✓"
  custobj_MixedBeta0000000000000000000000000000000000  Subscription "Mixed Beta"
      Plan "Silver", Amount 12.50, Balance 12345678901234.5678, Start date "2019-12-31",
      Renewed at "2022-01-01T23:59:59.999000+00:00", Status "paused",
      Legacy flag "legacy-7", Labels ["solo"], Channels ["phone"]
  custobj_MixedGamma000000000000000000000000000000000  Resource "Mixed Gamma", no custom values

Run: python3 test/close_emulator.py [--port 0] [--port-file PATH] [--latency-ms 0]
     [--data sample|empty|bench] [--max-limit 100] [--max-skip 10000]
     [--rate-limit-per-sec 0] [--cursor-ttl 30] [--search-max-results 10000]
     [--search-rate-limit-per-sec 0] [--crm-max-limit 200] [--lead-max-skip 35000]
     [--crm-max-skip 0] [--crm-search-day-granular 0|1|2] [--quiet]
"""

import argparse
import base64
import binascii
import bisect
import collections
import datetime as dt
import functools
import heapq
import json
import json.encoder
import math
import operator
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import string
import sys
import threading
import time
import traceback
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

import close_emulator_crm as crm

crm.E = sys.modules[__name__]     # the CRM half reads this module's helpers at call time

# ---------------------------------------------------------------------------
# Identifiers and credentials
# ---------------------------------------------------------------------------

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
BASE62_SET = frozenset(BASE62)


def pad_id(prefix, word, length):
    """A readable but valid id: prefix + word padded with zeros to length chars."""
    body = word + "0" * (length - len(word))
    assert len(body) == length and set(body) <= BASE62_SET, (prefix, word)
    return prefix + body


# Fixed credentials -> label.  Only the label ever reaches the request log.
API_KEYS = {"api_test_key": "test", "api_alice_key": "alice", "api_bob_key": "bob"}
BEARER_TOKENS = {"oauth_test_token": "oauth"}
VALID_LABELS = frozenset(API_KEYS.values()) | frozenset(BEARER_TOKENS.values())

ORG_ID = pad_id("orga_", "Emulator", 43)
# The user behind each credential; written to created_by / updated_by.
USERS = {
    "test": pad_id("user_", "Test", 43),
    "alice": pad_id("user_", "Alice", 43),
    "bob": pad_id("user_", "Bob", 43),
    "oauth": pad_id("user_", "OAuth", 43),
}

# Object types.
TYPE_RESOURCE = "cotype_1h5m6uHM9BZOpwVhyRJb4Y"
TYPE_SUBSCRIPTION = pad_id("cotype_", "Subscription", 22)
TYPE_DEVICE = pad_id("cotype_", "Device", 22)
TYPE_EMPTY = pad_id("cotype_", "Empty", 22)

# Leads.
LEAD_SHEET = "lead_hwnL36A2iEMSLIlmGhsdrcmOJzTUzqEHwr66wrA1K2T"
LEAD_BIG = pad_id("lead_", "Big", 43)
LEAD_MIXED = pad_id("lead_", "Mixed", 43)
LEAD_ONE = pad_id("lead_", "One", 43)
LEAD_EMPTY = pad_id("lead_", "Empty", 43)
LEAD_PLAIN = [pad_id("lead_", "Plain%d" % i, 43) for i in range(1, 6)]
SAMPLE_LEADS = {
    "sheet": LEAD_SHEET, "mixed": LEAD_MIXED, "one": LEAD_ONE,
    "plain1": LEAD_PLAIN[0], "plain2": LEAD_PLAIN[1], "plain3": LEAD_PLAIN[2],
    "plain4": LEAD_PLAIN[3], "plain5": LEAD_PLAIN[4],
    "empty": LEAD_EMPTY, "big": LEAD_BIG,
}
SAMPLE_LEAD_COUNTS = {
    "sheet": 2, "mixed": 3, "one": 1, "plain1": 2, "plain2": 3, "plain3": 4,
    "plain4": 2, "plain5": 3, "empty": 0, "big": 250,
}

# Objects with fixed ids (everything else gets a seeded, generated id).
OBJ_SHEET = "custobj_5J7mimiIKB1tQ3gVduP0c4UhXbNj5ptMLteAWRJu7Sf"
OBJ_SHEET_REF = "custobj_v0VS1AZAg8LjnpBm1hZz83UZ3yWK0n9SdVV5i8yC6he"
OBJ_MIXED_ALPHA = pad_id("custobj_", "MixedAlpha", 43)
OBJ_MIXED_BETA = pad_id("custobj_", "MixedBeta", 43)
OBJ_MIXED_GAMMA = pad_id("custobj_", "MixedGamma", 43)
OBJ_ONE = pad_id("custobj_", "OnlyOne", 43)
CONTACT_MIXED = pad_id("cont_", "Mixed", 43)

STATUSES = [
    (pad_id("stat_", "Potential", 43), "Potential"),
    (pad_id("stat_", "Qualified", 43), "Qualified"),
    (pad_id("stat_", "Customer", 43), "Customer"),
]

# Seed for every generated id; reset() re-seeds, so ids repeat run after run.
ID_SEED = 20200804

# ---------------------------------------------------------------------------
# Types and fields
# ---------------------------------------------------------------------------

CF_RESOURCE_PARENT = "cf_jnxTQDKnSxCEBtD5dvZdNgTzC3CqeyWUyU349PBA9Wf"
CF_SUBSCRIPTION_STATUS = "cf_cSh3fWT3rEJ1BFSezme2YAG6bPrZV5wUWKKrW4iN19g"
AWKWARD_NAME = "Weird \"name\" it's Zürich ✓ (spaces)"

# (type id, role, field id, name, field type, multi, choices, referenced type,
#  choices shown in the type's `fields` list?)
# `role` is only used to build the sample data; the API never shows it.
FIELD_SPECS = [
    (TYPE_RESOURCE, "text", pad_id("cf_", "ResourceSerial", 43), "Serial number", "text", False, None, None, True),
    (TYPE_RESOURCE, "textarea", pad_id("cf_", "ResourceNotes", 43), "Notes", "textarea", False, None, None, True),
    (TYPE_RESOURCE, "number", pad_id("cf_", "ResourceCapacity", 43), "Capacity", "number", False, None, None, True),
    (TYPE_RESOURCE, "date", pad_id("cf_", "ResourcePurchased", 43), "Purchase date", "date", False, None, None, True),
    (TYPE_RESOURCE, "datetime", pad_id("cf_", "ResourceChecked", 43), "Last checked", "datetime", False, None, None, True),
    (TYPE_RESOURCE, "choices", pad_id("cf_", "ResourcePriority", 43), "Priority", "choices", False,
     ["low", "medium", "high"], None, False),
    (TYPE_RESOURCE, "user", pad_id("cf_", "ResourceOwner", 43), "Owner", "user", False, None, None, True),
    (TYPE_RESOURCE, "contact", pad_id("cf_", "ResourceContact", 43), "Contact", "contact", False, None, None, True),
    (TYPE_RESOURCE, "custom_object", CF_RESOURCE_PARENT, "Parent resource", "custom_object", False, None,
     TYPE_RESOURCE, True),
    (TYPE_RESOURCE, "hidden", pad_id("cf_", "ResourceInternal", 43), "Internal flag", "hidden", False, None, None, True),
    (TYPE_RESOURCE, "multi_text", pad_id("cf_", "ResourceTags", 43), "Tags", "text", True, None, None, True),
    (TYPE_RESOURCE, "multi_choices", pad_id("cf_", "ResourceRegions", 43), "Regions", "choices", True,
     ["EU", "US", "APAC"], None, True),

    (TYPE_SUBSCRIPTION, "text", pad_id("cf_", "SubscriptionPlan", 43), "Plan", "text", False, None, None, True),
    (TYPE_SUBSCRIPTION, "textarea", pad_id("cf_", "SubscriptionTerms", 43), "Terms", "textarea", False, None, None, True),
    (TYPE_SUBSCRIPTION, "number", pad_id("cf_", "SubscriptionAmount", 43), "Amount", "number", False, None, None, True),
    (TYPE_SUBSCRIPTION, "number2", pad_id("cf_", "SubscriptionBalance", 43), "Balance", "number", False, None, None, True),
    (TYPE_SUBSCRIPTION, "date", pad_id("cf_", "SubscriptionStart", 43), "Start date", "date", False, None, None, True),
    (TYPE_SUBSCRIPTION, "datetime", pad_id("cf_", "SubscriptionRenewed", 43), "Renewed at", "datetime", False, None, None, True),
    (TYPE_SUBSCRIPTION, "choices", CF_SUBSCRIPTION_STATUS, "Status", "choices", False,
     ["active", "paused", "cancelled"], None, True),
    (TYPE_SUBSCRIPTION, "user", pad_id("cf_", "SubscriptionManager", 43), "Account manager", "user", False, None, None, True),
    (TYPE_SUBSCRIPTION, "contact", pad_id("cf_", "SubscriptionBilling", 43), "Billing contact", "contact", False, None, None, True),
    (TYPE_SUBSCRIPTION, "custom_object", pad_id("cf_", "SubscriptionResource", 43), "Resource", "custom_object", False,
     None, TYPE_RESOURCE, True),
    (TYPE_SUBSCRIPTION, "hidden", pad_id("cf_", "SubscriptionLegacy", 43), "Legacy flag", "hidden", False, None, None, True),
    (TYPE_SUBSCRIPTION, "multi_text", pad_id("cf_", "SubscriptionLabels", 43), "Labels", "text", True, None, None, True),
    (TYPE_SUBSCRIPTION, "multi_choices", pad_id("cf_", "SubscriptionChannels", 43), "Channels", "choices", True,
     ["email", "phone", "sms"], None, True),
    (TYPE_SUBSCRIPTION, "future", pad_id("cf_", "SubscriptionFuture", 43), "Future thing", "future_type", False, None, None, True),
    (TYPE_SUBSCRIPTION, "awkward", pad_id("cf_", "SubscriptionWeird", 43), AWKWARD_NAME, "text", False, None, None, True),

    (TYPE_DEVICE, "text", pad_id("cf_", "DeviceModel", 43), "Model", "text", False, None, None, True),
    (TYPE_DEVICE, "textarea", pad_id("cf_", "DeviceDescription", 43), "Description", "textarea", False, None, None, True),
    (TYPE_DEVICE, "number", pad_id("cf_", "DeviceWeight", 43), "Weight", "number", False, None, None, True),
    (TYPE_DEVICE, "date", pad_id("cf_", "DeviceWarranty", 43), "Warranty until", "date", False, None, None, True),
    (TYPE_DEVICE, "datetime", pad_id("cf_", "DeviceSeen", 43), "Seen at", "datetime", False, None, None, True),
    (TYPE_DEVICE, "choices", pad_id("cf_", "DeviceCondition", 43), "Condition", "choices", False,
     ["new", "used", "broken"], None, True),
    (TYPE_DEVICE, "user", pad_id("cf_", "DeviceAssignee", 43), "Assignee", "user", False, None, None, True),
    (TYPE_DEVICE, "contact", pad_id("cf_", "DeviceContact", 43), "User contact", "contact", False, None, None, True),
    (TYPE_DEVICE, "custom_object", pad_id("cf_", "DeviceSubscription", 43), "Subscription", "custom_object", False,
     None, TYPE_SUBSCRIPTION, True),
    (TYPE_DEVICE, "hidden", pad_id("cf_", "DeviceCode", 43), "Hidden code", "hidden", False, None, None, True),
    (TYPE_DEVICE, "multi_text", pad_id("cf_", "DeviceAliases", 43), "Aliases", "text", True, None, None, True),
    (TYPE_DEVICE, "multi_choices", pad_id("cf_", "DeviceFeatures", 43), "Features", "choices", True,
     ["wifi", "bluetooth", "gps"], None, False),
]

# (id, name, name_plural, description, api_create_only, date_created) -- no UTC offset.
TYPE_SPECS = [
    (TYPE_RESOURCE, "Resource", "Resources", "Things a lead owns.", False, "2020-07-27T21:28:39.765523"),
    (TYPE_SUBSCRIPTION, "Subscription", "Subscriptions", "Recurring contracts.", False, "2020-07-28T08:01:02.000100"),
    (TYPE_DEVICE, "Device", "Devices", "Hardware, created by integrations only.", True, "2020-07-29T12:00:00.500000"),
    (TYPE_EMPTY, "Empty", "Empties", "A type without any field.", False, "2020-07-30T00:00:00"),
]

# --data bench: the sample data plus "Wide", a type of 30 fields of every
# kind, for bench/ (wide records); never in the tests' data.
TYPE_WIDE = pad_id("cotype_", "Wide", 22)
WIDE_TYPE_SPECS = [(TYPE_WIDE, "Wide", "Wides", "Thirty fields of every kind.", False,
                    "2020-07-31T00:00:00")]
WIDE_KINDS = ([("text", "text", False)] * 6 + [("textarea", "textarea", False)] * 3 +
              [("number", "number", False)] * 5 + [("date", "date", False)] * 3 +
              [("datetime", "datetime", False)] * 3 + [("choices", "choices", False)] * 2 +
              [("user", "user", False)] * 2 + [("contact", "contact", False)] * 2 +
              [("custom_object", "custom_object", False), ("hidden", "hidden", False),
               ("multi_text", "text", True), ("multi_choices", "choices", True)])
WIDE_FIELD_SPECS = [
    (TYPE_WIDE, "%s%02d" % (role, n), pad_id("cf_", "Wide%02d" % n, 43), "Wide %02d" % n, ftype, multi,
     ["red", "green", "blue"] if ftype == "choices" else None,
     TYPE_RESOURCE if ftype == "custom_object" else None, True)
    for n, (role, ftype, multi) in enumerate(WIDE_KINDS, 1)]

# field id lookup by (type, role), for sample data and tests
CF = {(spec[0], spec[1]): spec[2] for spec in FIELD_SPECS}

# Keys of a record that a client must never send.
READ_ONLY_KEYS = ("id", "organization_id", "created_by", "updated_by", "date_created", "date_updated")

for _spec in FIELD_SPECS:
    assert re.fullmatch(r"cf_[0-9A-Za-z]{43}", _spec[2]), _spec
for _spec in TYPE_SPECS:
    assert re.fullmatch(r"cotype_[0-9A-Za-z]{22}", _spec[0]), _spec

# ---------------------------------------------------------------------------
# JSON helpers: Decimal-preserving parse and a small writer that emits
# Decimals verbatim (the json module cannot write raw number text).
# ---------------------------------------------------------------------------

_encode_str = json.encoder.encode_basestring  # keeps non-ASCII, escapes " \ and controls


def _reject_constant(name):
    raise ValueError("invalid JSON constant %s" % name)


def parse_json(text):
    """Parse JSON text, keeping non-integer numbers as exact Decimals."""
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def to_json(value, sort_keys=False):
    """Compact JSON text (", " and ":" without spaces), non-ASCII left as is."""
    out = []
    _emit(value, out.append, sort_keys)
    return "".join(out)


def _emit(v, w, sort_keys):
    if isinstance(v, str):
        w(_encode_str(v))
    elif v is None:
        w("null")
    elif v is True:
        w("true")
    elif v is False:
        w("false")
    elif isinstance(v, int):
        w(int.__repr__(v))
    elif isinstance(v, Decimal):
        w(str(v))
    elif isinstance(v, float):
        w(float.__repr__(v) if math.isfinite(v) else "null")
    elif isinstance(v, dict):
        items = sorted(v.items()) if sort_keys else v.items()
        w("{")
        first = True
        for k, item in items:
            if not first:
                w(",")
            first = False
            w(_encode_str(str(k)))
            w(":")
            _emit(item, w, sort_keys)
        w("}")
    elif isinstance(v, (list, tuple)):
        w("[")
        for i, item in enumerate(v):
            if i:
                w(",")
            _emit(item, w, sort_keys)
        w("]")
    else:
        w(_encode_str(str(v)))


def json_bytes(value):
    return to_json(value).encode("utf-8", "backslashreplace")


# ---------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------

UTC = dt.timezone.utc


def fmt_ts(t):
    """Record timestamp: 2020-08-04T16:45:35.367000+00:00."""
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00" % (
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond)


class Clock:
    """Deterministic clock: every tick moves `step` forward."""

    def __init__(self, start, step):
        self.t = start
        self.step = step

    def tick(self):
        self.t += self.step
        return fmt_ts(self.t)


SAMPLE_CLOCK_START = dt.datetime(2020, 8, 5, 9, 0, 0, tzinfo=UTC)
SAMPLE_CLOCK_STEP = dt.timedelta(seconds=37, milliseconds=123)
RUNTIME_CLOCK_START = dt.datetime(2024, 1, 1, tzinfo=UTC)
RUNTIME_CLOCK_STEP = dt.timedelta(milliseconds=1)

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})")
_DATETIME_PARTS_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})")


def parse_datetime(text):
    """dt.datetime.fromisoformat of a DATETIME_RE text, read as Python 3.11
    reads it: Python 3.9 (Debian 11, with PostgreSQL 13) takes neither "Z",
    an offset without a colon, nor a fraction of other than 3 or 6 digits."""
    m = _DATETIME_PARTS_RE.fullmatch(text)
    if not m:
        return dt.datetime.fromisoformat(text)
    head, sec, frac, off = m.groups()
    if off == "Z":
        off = "+00:00"
    elif ":" not in off:
        off = off[:3] + ":" + off[3:]
    return dt.datetime.fromisoformat("%s:%s.%s%s" % (head, sec or "00", (frac or "").ljust(6, "0"), off))


def _bisect(lst, k, key, right):
    lo, hi = 0, len(lst)
    while lo < hi:
        mid = (lo + hi) // 2
        if (k < key(lst[mid])) if right else not (key(lst[mid]) < k):
            hi = mid
        else:
            lo = mid + 1
    return lo


def bisect_left_by(lst, k, key):
    """bisect.bisect_left(lst, k, key=key): the key argument is Python 3.10's."""
    return _bisect(lst, k, key, False)


def insort_by(lst, item, key):
    """bisect.insort(lst, item, key=key), for Python 3.9 as well."""
    lst.insert(_bisect(lst, key(item), key, True), item)


ID_RES = {
    "custobj": re.compile(r"custobj_[0-9A-Za-z]{43}"),
    "lead": re.compile(r"lead_[0-9A-Za-z]{43}"),
    "cotype": re.compile(r"cotype_[0-9A-Za-z]{22}"),
    "cf": re.compile(r"cf_[0-9A-Za-z]{43}"),
    "user": re.compile(r"user_[0-9A-Za-z]+"),
    "cont": re.compile(r"cont_[0-9A-Za-z]+"),
}


# ---------------------------------------------------------------------------
# Custom value validation
# ---------------------------------------------------------------------------

def check_scalar(field, value):
    """Validate one (non-null) value for `field`; return it normalised or raise ValueError."""
    ftype = field["type"]
    if ftype in ("text", "textarea"):
        if not isinstance(value, str):
            raise ValueError("Not a valid string.")
        return value
    if ftype == "number":
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise ValueError("A valid number is required.")
        return value
    if ftype == "date":
        if not isinstance(value, str) or not DATE_RE.fullmatch(value):
            raise ValueError("Date has wrong format. Use YYYY-MM-DD.")
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("Date has wrong format. Use YYYY-MM-DD.") from None
        return value
    if ftype == "datetime":
        if not isinstance(value, str) or not DATETIME_RE.fullmatch(value):
            raise ValueError("Datetime has wrong format. Use ISO 8601 with a UTC offset.")
        try:
            parsed = parse_datetime(value)
        except ValueError:
            raise ValueError("Datetime has wrong format. Use ISO 8601 with a UTC offset.") from None
        return fmt_ts(parsed.astimezone(UTC))
    if ftype == "choices":
        if not isinstance(value, str) or value not in field["choices"]:
            raise ValueError("\"%s\" is not a valid choice." % (value,))
        return value
    if ftype in ("user", "contact", "custom_object"):
        kind = {"user": "user", "contact": "cont", "custom_object": "custobj"}[ftype]
        if not isinstance(value, str) or not ID_RES[kind].fullmatch(value):
            raise ValueError("Not a valid %s id." % kind)
        return value
    if ftype == "hidden":
        if isinstance(value, (list, dict)):
            raise ValueError("A scalar value is required.")
        return value
    # Unknown ("future") field types take any JSON value.
    return value


def check_value(field, value):
    """Validate a non-null value for a field; multi-value fields take JSON arrays."""
    if field["accepts_multiple_values"]:
        if not isinstance(value, list):
            raise ValueError("Expected a list of items.")
        out = []
        for item in value:
            if item is None:
                raise ValueError("This list may not contain null.")
            out.append(check_scalar(field, item))
        return out
    if isinstance(value, list):
        raise ValueError("This field does not accept multiple values.")
    return check_scalar(field, value)


def field_errors(errors):
    return {"errors": [], "field-errors": errors}


# ---------------------------------------------------------------------------
# The store: data, log, faults, config and rate-limit windows, one lock.
# ---------------------------------------------------------------------------

def sort_key(rec):
    return (rec["date_created"], rec["id"])


class Store:
    """All mutable emulator state.  Every access holds self.lock."""

    def __init__(self, cli_config, dataset):
        self.lock = threading.RLock()
        self.cli_config = dict(cli_config)
        self.dataset = dataset
        wide = dataset == "bench"
        self.type_specs = TYPE_SPECS + (WIDE_TYPE_SPECS if wide else [])
        self.field_specs = FIELD_SPECS + (WIDE_FIELD_SPECS if wide else [])
        self.hang_release = threading.Event()
        self.reset()

    # -- lifecycle ---------------------------------------------------------

    def reset(self):
        with self.lock:
            self.config = dict(self.cli_config)
            self.log = []
            self.faults = []
            self.windows = {}
            self.cursors = {}             # search cursor token -> (query state, position, expiry)
            self.cursor_heap = []         # (expiry, token), for garbage collection
            self.release_hangs()
            self.rng = random.Random(ID_SEED)
            self.clock = Clock(RUNTIME_CLOCK_START, RUNTIME_CLOCK_STEP)
            self._build_types()
            self.leads = {}
            self.lead_order = []          # leads in date_created order
            self.objects = {}             # id -> record
            self.version = 0              # bumped by every insert and remove
            self.by_date = None           # (version, asc list, desc list): see by_date_created
            self.by_lead = {}             # lead id -> records, ordered by (date_created, id)
            self.by_lead_type = {}        # (lead id, type id) -> records, same order
            self.crm = crm.Crm(self)      # users, statuses, pipelines, contacts, opportunities
            if self.dataset in ("sample", "bench"):
                build_sample(self)
                crm.build_crm_sample(self)

    def gc_cursors(self, now):
        """Drop every search cursor whose expiry (time.monotonic()) has passed."""
        heap = self.cursor_heap
        while heap and heap[0][0] <= now:
            _expiry, token = heapq.heappop(heap)
            self.cursors.pop(token, None)

    def issue_cursor(self, state, position):
        token = secrets.token_urlsafe(24)
        expiry = time.monotonic() + self.config["cursor_ttl"]
        self.cursors[token] = (state, position, expiry)
        heapq.heappush(self.cursor_heap, (expiry, token))
        return token

    def release_hangs(self):
        """Wake every request held by a `hang` fault (they then close without answer)."""
        with self.lock:
            self.hang_release.set()
            self.hang_release = threading.Event()

    def _build_types(self):
        self.types = {}
        self.fields = {}
        self.field_order = {}   # type id -> {field id: position}
        self.type_fields = {}   # type id -> [field ids]
        for type_id, name, plural, desc, create_only, created in self.type_specs:
            self.types[type_id] = {
                "id": type_id, "name": name, "name_plural": plural, "description": desc,
                "api_create_only": create_only, "editable_with_roles": [],
                "organization_id": ORG_ID, "created_by": USERS["test"], "updated_by": USERS["test"],
                "date_created": created, "date_updated": created,
            }
            self.type_fields[type_id] = []
        self.choices_in_type = {}
        for n, (type_id, _role, fid, name, ftype, multi, choices, ref, shown) in enumerate(self.field_specs):
            created = "2020-07-27T21:30:%02d.%06d" % (n % 60, 1000 * n)
            field = {
                "id": fid, "name": name, "description": "%s of a %s." % (name, self.types[type_id]["name"]),
                "type": ftype, "required": False, "accepts_multiple_values": multi,
                "custom_object_type_id": type_id, "is_shared": False, "editable_with_roles": [],
                "organization_id": ORG_ID, "created_by": USERS["test"], "updated_by": USERS["test"],
                "date_created": created, "date_updated": created,
            }
            if choices is not None:
                field["choices"] = list(choices)
            if ref is not None:
                field["referenced_custom_type_id"] = ref
            self.fields[fid] = field
            self.choices_in_type[fid] = shown
            self.type_fields[type_id].append(fid)
        for type_id, fids in self.type_fields.items():
            self.field_order[type_id] = {fid: i for i, fid in enumerate(fids)}

    # -- views -------------------------------------------------------------

    def type_view(self, type_id):
        """A type as GET /custom_object_type/ shows it (choices left out on some fields)."""
        t = dict(self.types[type_id])

        def short(fid):
            f = dict(self.fields[fid])
            if not self.choices_in_type[fid]:
                f.pop("choices", None)
            return f
        t["fields"] = [short(fid) for fid in self.type_fields[type_id]]
        t["back_reference_fields"] = [
            short(fid) for fid in self.fields
            if self.fields[fid].get("referenced_custom_type_id") == type_id]
        # keep the dates last, like the other keys of Close answers
        for k in ("date_created", "date_updated"):
            t[k] = t.pop(k)
        return t

    def all_fields(self):
        """Every custom-object field, ordered by type then position."""
        return [self.fields[fid] for type_id, *_ in self.type_specs for fid in self.type_fields[type_id]]

    # -- leads -------------------------------------------------------------

    def add_lead(self, lead_id, name, created, status=0):
        stat_id, _stat_label = STATUSES[status % len(STATUSES)]
        lead = self.crm.make_lead(lead_id, name, created, stat_id, USERS["test"])
        self.leads[lead_id] = lead
        self.crm.bump()
        if not self.lead_order or sort_key(self.lead_order[-1]) < sort_key(lead):
            self.lead_order.append(lead)
        else:
            insort_by(self.lead_order, lead, sort_key)
        self.by_lead.setdefault(lead_id, [])
        return lead

    # -- objects -----------------------------------------------------------

    def new_id(self, prefix, length):
        while True:
            oid = prefix + "".join(self.rng.choices(BASE62, k=length))
            if oid not in self.objects:
                return oid

    def make_record(self, oid, type_id, lead_id, name, user, created, updated, custom):
        """A record with Close's key order; custom keys follow the type's field order."""
        rec = {
            "id": oid, "custom_object_type_id": type_id, "lead_id": lead_id, "name": name,
            "organization_id": ORG_ID, "created_by": user, "updated_by": user,
            "date_created": created, "date_updated": updated,
        }
        order = self.field_order[type_id]
        for key in sorted(custom, key=lambda k: order.get(k[7:], 1 << 30)):
            rec[key] = custom[key]
        return rec

    def insert(self, rec):
        self.version += 1
        self.objects[rec["id"]] = rec
        for key in (rec["lead_id"], (rec["lead_id"], rec["custom_object_type_id"])):
            index = self.by_lead if isinstance(key, str) else self.by_lead_type
            lst = index.setdefault(key, [])
            if not lst or sort_key(lst[-1]) < sort_key(rec):
                lst.append(rec)           # the usual case: newest last
            else:
                insort_by(lst, rec, sort_key)

    def remove(self, rec):
        self.version += 1
        del self.objects[rec["id"]]
        for index, key in ((self.by_lead, rec["lead_id"]),
                           (self.by_lead_type, (rec["lead_id"], rec["custom_object_type_id"]))):
            lst = index[key]
            i = bisect_left_by(lst, sort_key(rec), sort_key)
            assert lst[i] is rec
            del lst[i]

    def by_date_created(self, descending):
        """Every object in search order by date_created (ties by id ascending),
        kept until the next insert or remove (a date_created never changes),
        as a search index would: searches then filter instead of sorting."""
        if self.by_date is None or self.by_date[0] != self.version:
            records = sorted(self.objects.values(), key=operator.itemgetter("id"))
            asc = sorted(records, key=operator.itemgetter("date_created"))
            desc = sorted(records, key=operator.itemgetter("date_created"), reverse=True)
            self.by_date = (self.version, asc, desc, [r["date_created"] for r in asc])
        return self.by_date[2] if descending else self.by_date[1]

    def date_created_span(self, lower, upper):
        """The slice of by_date_created(False) with lower <= date_created < upper
        (canonical strings; None: unbounded)."""
        asc = self.by_date_created(False)
        dates = self.by_date[3]
        lo = bisect.bisect_left(dates, lower) if lower is not None else 0
        hi = bisect.bisect_left(dates, upper) if upper is not None else len(asc)
        return asc[lo:hi]

    def replace_custom(self, rec, custom):
        """Rebuild the custom keys of rec in place (lists keep referencing it)."""
        base = {k: v for k, v in rec.items() if not k.startswith("custom.")}
        order = self.field_order[rec["custom_object_type_id"]]
        rec.clear()
        rec.update(base)
        for key in sorted(custom, key=lambda k: order.get(k[7:], 1 << 30)):
            rec[key] = custom[key]


def build_sample(store):
    """The deterministic sample data set (see the module docstring)."""
    clock = Clock(SAMPLE_CLOCK_START, SAMPLE_CLOCK_STEP)
    user = USERS["test"]

    def obj(lead_id, type_id, name, custom, oid=None, created=None, updated=None):
        created = created or clock.tick()
        rec = store.make_record(oid or store.new_id("custobj_", 43), type_id, lead_id, name,
                                user, created, updated or created,
                                {"custom." + k: v for k, v in custom.items()})
        store.insert(rec)
        return rec

    # The sheet's lead and record (plus the object the record points at).
    store.add_lead(LEAD_SHEET, "Sheet Example Lead", "2020-08-04T16:30:00.000000+00:00", 2)
    obj(LEAD_SHEET, TYPE_RESOURCE, "Referenced resource",
        {CF[TYPE_RESOURCE, "text"]: "SN-0001"}, oid=OBJ_SHEET_REF,
        created="2020-08-04T16:40:12.102000+00:00")
    obj(LEAD_SHEET, TYPE_RESOURCE, "Resource", {CF_RESOURCE_PARENT: OBJ_SHEET_REF}, oid=OBJ_SHEET,
        created="2020-08-04T16:45:35.367000+00:00", updated="2020-08-04T17:37:56.439000+00:00")

    # Mixed lead: 2 Subscriptions with varied values, 1 Resource without any.
    S = TYPE_SUBSCRIPTION
    store.add_lead(LEAD_MIXED, "Mixed Lead", clock.tick(), 1)
    obj(LEAD_MIXED, S, "Mixed Alpha", {
        CF[S, "text"]: "Gold",
        CF[S, "textarea"]: "Line one\nLine two",
        CF[S, "number"]: 42,
        CF[S, "number2"]: Decimal("-17.25"),
        CF[S, "date"]: "2021-03-15",
        CF[S, "datetime"]: "2021-03-15T10:30:00.000000+00:00",
        CF[S, "choices"]: "active",
        CF[S, "user"]: USERS["alice"],
        CF[S, "contact"]: CONTACT_MIXED,
        CF[S, "custom_object"]: OBJ_MIXED_GAMMA,
        CF[S, "hidden"]: True,
        CF[S, "multi_text"]: ["alpha", "Zürich ✓", "say \"hi\""],
        CF[S, "multi_choices"]: ["email", "sms"],
        CF[S, "future"]: "opaque-v2",
        CF[S, "awkward"]: "awkward ✓",
    }, oid=OBJ_MIXED_ALPHA, updated="2020-08-06T10:00:00.250000+00:00")
    obj(LEAD_MIXED, S, "Mixed Beta", {
        CF[S, "text"]: "Silver",
        CF[S, "number"]: Decimal("12.50"),
        CF[S, "number2"]: Decimal("12345678901234.5678"),
        CF[S, "date"]: "2019-12-31",
        CF[S, "datetime"]: "2022-01-01T23:59:59.999000+00:00",
        CF[S, "choices"]: "paused",
        CF[S, "hidden"]: "legacy-7",
        CF[S, "multi_text"]: ["solo"],
        CF[S, "multi_choices"]: ["phone"],
    }, oid=OBJ_MIXED_BETA)
    obj(LEAD_MIXED, TYPE_RESOURCE, "Mixed Gamma", {}, oid=OBJ_MIXED_GAMMA)

    # One lead with exactly one object.
    D = TYPE_DEVICE
    store.add_lead(LEAD_ONE, "One Object Lead", clock.tick(), 0)
    obj(LEAD_ONE, D, "Only Device", {
        CF[D, "text"]: "X1", CF[D, "number"]: Decimal("1.25"), CF[D, "choices"]: "new",
        CF[D, "multi_choices"]: ["wifi", "gps"], CF[D, "date"]: "2025-06-30",
    }, oid=OBJ_ONE)

    # Five ordinary leads with 2-4 objects each, types rotating.
    kinds = [TYPE_RESOURCE, TYPE_SUBSCRIPTION, TYPE_DEVICE]
    statuses = ["active", "paused", "cancelled"]
    for i, (lead_id, count) in enumerate(zip(LEAD_PLAIN, (2, 3, 4, 2, 3)), start=1):
        store.add_lead(lead_id, "Plain Lead %d" % i, clock.tick(), i)
        for j in range(1, count + 1):
            type_id = kinds[(i + j) % 3]
            custom = {CF[type_id, "text"]: "plain-%d-%d" % (i, j), CF[type_id, "number"]: 10 * i + j}
            if type_id == TYPE_SUBSCRIPTION:
                custom[CF_SUBSCRIPTION_STATUS] = statuses[(i + j) % 3]
            obj(lead_id, type_id, "Plain %d.%d" % (i, j), custom)

    # A lead without objects.
    store.add_lead(LEAD_EMPTY, "Empty Lead", clock.tick(), 0)

    # The big lead: 250 Resources.
    store.add_lead(LEAD_BIG, "Big Lead", clock.tick(), 2)
    priorities = ["low", "medium", "high"]
    for n in range(1, 251):
        obj(LEAD_BIG, TYPE_RESOURCE, "Item %03d" % n, {
            CF[TYPE_RESOURCE, "number"]: n,
            CF[TYPE_RESOURCE, "choices"]: priorities[(n - 1) % 3],
        })


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------

MAX_BODY = 16 * 1024 * 1024
KNOWN_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# API routes: (pattern on the decoded path, template used as rate-limit group, {method: handler name})
API_ROUTES = [
    (re.compile(r"/api/v1/custom_object/"), "/api/v1/custom_object/",
     {"GET": "api_list_objects", "POST": "api_create_object"}),
    (re.compile(r"/api/v1/custom_object/([^/]+)/"), "/api/v1/custom_object/{id}/",
     {"GET": "api_get_object", "PUT": "api_update_object", "DELETE": "api_delete_object"}),
    (re.compile(r"/api/v1/custom_object_type/"), "/api/v1/custom_object_type/",
     {"GET": "api_list_types"}),
    (re.compile(r"/api/v1/custom_object_type/([^/]+)/"), "/api/v1/custom_object_type/{id}/",
     {"GET": "api_get_type"}),
    (re.compile(r"/api/v1/custom_field/custom_object_type/"), "/api/v1/custom_field/custom_object_type/",
     {"GET": "api_list_fields"}),
    (re.compile(r"/api/v1/custom_field/custom_object_type/([^/]+)/"),
     "/api/v1/custom_field/custom_object_type/{id}/", {"GET": "api_get_field"}),
    # CRM resources (close_emulator_crm.py)
    (re.compile(r"/api/v1/lead/"), "/api/v1/lead/",
     {"GET": "api_crm_list_leads", "POST": "api_crm_create_lead"}),
    (re.compile(r"/api/v1/lead/([^/]+)/"), "/api/v1/lead/{id}/",
     {"GET": "api_crm_get_lead", "PUT": "api_crm_update_lead", "DELETE": "api_crm_delete_lead"}),
    (re.compile(r"/api/v1/contact/"), "/api/v1/contact/",
     {"GET": "api_crm_list_contacts", "POST": "api_crm_create_contact"}),
    (re.compile(r"/api/v1/contact/([^/]+)/"), "/api/v1/contact/{id}/",
     {"GET": "api_crm_get_contact", "PUT": "api_crm_update_contact", "DELETE": "api_crm_delete_contact"}),
    (re.compile(r"/api/v1/opportunity/"), "/api/v1/opportunity/",
     {"GET": "api_crm_list_opportunities", "POST": "api_crm_create_opportunity"}),
    (re.compile(r"/api/v1/opportunity/([^/]+)/"), "/api/v1/opportunity/{id}/",
     {"GET": "api_crm_get_opportunity", "PUT": "api_crm_update_opportunity",
      "DELETE": "api_crm_delete_opportunity"}),
    (re.compile(r"/api/v1/user/"), "/api/v1/user/", {"GET": "api_crm_list_users"}),
    (re.compile(r"/api/v1/user/([^/]+)/"), "/api/v1/user/{id}/", {"GET": "api_crm_get_user"}),
    (re.compile(r"/api/v1/status/lead/"), "/api/v1/status/lead/", {"GET": "api_crm_list_lead_statuses"}),
    (re.compile(r"/api/v1/status/lead/([^/]+)/"), "/api/v1/status/lead/{id}/",
     {"GET": "api_crm_get_lead_status"}),
    (re.compile(r"/api/v1/status/opportunity/"), "/api/v1/status/opportunity/",
     {"GET": "api_crm_list_opp_statuses"}),
    (re.compile(r"/api/v1/status/opportunity/([^/]+)/"), "/api/v1/status/opportunity/{id}/",
     {"GET": "api_crm_get_opp_status"}),
    (re.compile(r"/api/v1/pipeline/"), "/api/v1/pipeline/", {"GET": "api_crm_list_pipelines"}),
    (re.compile(r"/api/v1/pipeline/([^/]+)/"), "/api/v1/pipeline/{id}/", {"GET": "api_crm_get_pipeline"}),
    (re.compile(r"/api/v1/custom_field_schema/([^/]+)/"), "/api/v1/custom_field_schema/{type}/",
     {"GET": "api_crm_field_schema"}),
    (re.compile(r"/api/v1/custom_field/(lead|contact|opportunity)/"), "/api/v1/custom_field/{type}/",
     {"GET": "api_crm_list_fields"}),
    (re.compile(r"/api/v1/custom_field/(lead|contact|opportunity)/([^/]+)/"),
     "/api/v1/custom_field/{type}/{id}/", {"GET": "api_crm_get_field"}),
    (re.compile(r"/api/v1/data/search/"), "/api/v1/data/search/", {"POST": "api_search"}),
]
SEARCH_TEMPLATE = "/api/v1/data/search/"   # its rate-limit groups use search_rate_limit_per_sec

CONTROL_ROUTES = {
    "/_emulator/health": {"GET": "ctl_health"},
    "/_emulator/log": {"GET": "ctl_log"},
    "/_emulator/log/clear": {"POST": "ctl_log_clear"},
    "/_emulator/faults": {"GET": "ctl_faults_get", "POST": "ctl_faults_add", "DELETE": "ctl_faults_clear"},
    "/_emulator/reset": {"POST": "ctl_reset"},
    "/_emulator/config": {"GET": "ctl_config_get", "POST": "ctl_config_set"},
    "/_emulator/objects": {"POST": "ctl_bulk_objects"},
    "/_emulator/data/leads": {"GET": "ctl_data_leads"},
    "/_emulator/data/objects": {"GET": "ctl_data_objects"},
    "/_emulator/data/search_state": {"GET": "ctl_search_state"},
    "/_emulator/crm/generate": {"POST": "ctl_crm_generate"},
    "/_emulator/data/crm": {"GET": "ctl_crm_data"},
}

FAULT_ACTIONS = ("status", "hang", "drop", "garbage", "truncate", "delay", "random",
                 "replace_body")
CONFIG_KEYS = ("latency_ms", "max_limit", "max_skip", "rate_limit_per_sec",
               "cursor_ttl", "search_max_results", "search_rate_limit_per_sec",
               "short_pages", "list_by_date_updated", "rate_limit_window_ms",
               "crm_max_limit", "lead_max_skip", "crm_max_skip", "crm_search_day_granular",
               "stale_reads", "max_url", "stale_lists")
CONFIG_MINIMUM = {"max_limit": 1, "search_max_results": 1, "rate_limit_window_ms": 1,
                  "crm_max_limit": 1}   # others: 0


class ApiError(Exception):
    """Raised by handlers: answered as `status` with JSON `payload`."""

    def __init__(self, status, payload):
        super().__init__(status)
        self.status = status
        self.payload = payload


class BodyError(Exception):
    """The request body could not be read; answer `status` and close."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def fmt_seconds(x):
    s = ("%.3f" % max(0.0, x)).rstrip("0").rstrip(".")
    return s or "0"


# ---------------------------------------------------------------------------
def crm_search_pool(store, otype):
    """A CRM type's records a search sees: with config stale_lists, also the
    stale copies of deleted ones (Close's index lags its deletes)."""
    records = store.crm.records(otype)
    prefix = {"contact": "cont_", "opportunity": "oppo_"}.get(otype)
    if not store.config.get("stale_lists", 0) or prefix is None:
        return records
    pool = {oid: t[0] for oid, t in store.crm.tombstones.items() if oid.startswith(prefix)}
    pool.update(records)
    return pool


# Advanced Filtering (POST /data/search/): query compiler and sorting
# ---------------------------------------------------------------------------

SEARCH_DEFAULT_LIMIT = 100
SEARCH_MAX_LIMIT = 200
SEARCH_BODY_KEYS = ("query", "_fields", "_limit", "sort", "results_limit", "include_counts", "cursor")
SEARCH_REGULAR_FIELDS = ("id", "lead_id", "custom_object_type_id", "name", "date_created", "date_updated",
                         "organization_id", "created_by", "updated_by")
SEARCH_TEXT_MODES = ("exact_value", "phrase", "full_words", "beginning_of_words")
SEARCH_BAD_CURSOR = "Expired cursor"      # the sheet's live answer: field-errors on "cursor"


def _search_bad(where, message):
    raise ApiError(400, {"error": "%s: %s" % (where, message)})


def _search_keys(node, where, allowed):
    """node must be a JSON object whose keys are all in `allowed`."""
    if not isinstance(node, dict):
        _search_bad(where, "must be a JSON object")
    extra = [k for k in node if k not in allowed]
    if extra:
        _search_bad(where, "unknown key%s %s (allowed: %s)" % (
            "s" if len(extra) > 1 else "", ", ".join(to_json(k) for k in extra), ", ".join(allowed)))


def _is_number(v):
    return isinstance(v, (int, Decimal)) and not isinstance(v, bool)


CANONICAL_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00")


@functools.lru_cache(maxsize=1 << 16)
def _parse_instant(text):
    try:
        if DATE_RE.fullmatch(text):
            return fmt_ts(dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), UTC))
        if DATETIME_RE.fullmatch(text):
            return fmt_ts(parse_datetime(text).astimezone(UTC))
    except (ValueError, OverflowError):
        pass
    return None


def _value_instant(text):
    """A record value as a canonical UTC timestamp string (fmt_ts form, so
    instants compare as strings): "YYYY-MM-DD" is that date's 00:00 UTC, an
    ISO 8601 date-time needs an offset; anything else: None."""
    if CANONICAL_TS_RE.fullmatch(text):      # how the emulator stores every date-time
        return text
    if len(text) == 10 and DATE_RE.fullmatch(text):
        return text + "T00:00:00.000000+00:00"
    return _parse_instant(text)


def compile_search_field(store, field, where, otype="custom_object"):
    """A field reference -> the record key it reads (otype: the object type searched)."""
    if not isinstance(field, dict):
        _search_bad(where, "must be a JSON object")
    ftype = field.get("type")
    known = SEARCH_REGULAR_FIELDS if otype == "custom_object" else crm.SEARCH_FIELDS[otype]
    if ftype == "regular_field":
        _search_keys(field, where, ("type", "object_type", "field_name"))
        if field.get("object_type") != otype:
            _search_bad(where + ".object_type", "only \"%s\" fields can be used here" % otype)
        name = field.get("field_name")
        if not isinstance(name, str) or name not in known:
            _search_bad(where + ".field_name", "unknown %s field %s (known: %s)" % (
                otype, to_json(name), ", ".join(known)))
        return name
    if ftype == "custom_field":
        _search_keys(field, where, ("type", "custom_field_id", "object_type"))
        if field.get("object_type", otype) != otype:
            _search_bad(where + ".object_type", "only \"%s\" fields can be used here" % otype)
        fid = field.get("custom_field_id")
        if otype == "custom_object":
            found = isinstance(fid, str) and fid in store.fields
        else:
            found = isinstance(fid, str) and store.crm.field_def(otype, fid) is not None
        if not found:
            _search_bad(where + ".custom_field_id", "unknown custom field %s" % to_json(fid))
        return "custom." + fid
    _search_bad(where + ".type", "unknown field type %s (use \"regular_field\" or \"custom_field\")"
                % to_json(ftype))


class MomentContext:
    """How a search reads its moments: x-tz-offset hours (fixed_local_date
    days are local days), and whether fixed_utc counts by (local) day, the
    crm_search_day_granular reading (0, 1, 2) for leads, contacts and
    opportunities."""

    def __init__(self, hours=0.0, day_granular=0):
        self.hours = hours
        self.day_granular = day_granular


DEFAULT_MOMENTS = MomentContext()


def compile_search_moment(m, where, ctx=DEFAULT_MOMENTS):
    """A moment -> canonical UTC timestamp string (see _value_instant)."""
    if not isinstance(m, dict):
        _search_bad(where, "must be a JSON object")
    mtype = m.get("type")
    if mtype == "fixed_utc":
        _search_keys(m, where, ("type", "value"))
        v = m.get("value")
        if isinstance(v, str) and DATETIME_RE.fullmatch(v):
            try:
                t = fmt_ts(parse_datetime(v).astimezone(UTC))
                if ctx.day_granular:
                    # only the day counts: the bound is that (local) day's start;
                    # mode 2 widens a "before" to the next day's start instead
                    day = crm.local_date(t, ctx.hours)
                    start = crm.local_midnight(day, ctx.hours)
                    if ctx.day_granular == 2 and where.endswith(".before") and start != t:
                        return crm.local_midnight(day + dt.timedelta(days=1), ctx.hours)
                    return start
                return t
            except (ValueError, OverflowError):
                pass
        _search_bad(where + ".value", "must be an ISO 8601 date-time with a UTC offset, got %s" % to_json(v))
    if mtype == "fixed_local_date":
        _search_keys(m, where, ("type", "value", "which"))
        v = m.get("value")
        day = None
        if isinstance(v, str) and DATE_RE.fullmatch(v):
            try:
                day = dt.date.fromisoformat(v)
            except ValueError:
                pass
        if day is None:
            _search_bad(where + ".value", "must be a date YYYY-MM-DD, got %s" % to_json(v))
        which = m.get("which")
        if which not in ("start", "end"):
            _search_bad(where + ".which", "must be \"start\" or \"end\"")
        # local dates: the x-tz-offset's (0 when absent)
        if which == "end":
            if day == dt.date.max:
                _search_bad(where + ".value", "the day after %s cannot be represented" % v)
            day += dt.timedelta(days=1)
        try:
            return crm.local_midnight(day, ctx.hours)
        except OverflowError:
            _search_bad(where + ".value", "%s cannot be represented at this x-tz-offset" % v)
    _search_bad(where + ".type", "unknown moment type %s (use \"fixed_utc\" or \"fixed_local_date\")"
                % to_json(mtype))


def compile_search_condition(cond, where, ctx=DEFAULT_MOMENTS):
    """A condition -> test(value) for one non-null scalar value."""
    if not isinstance(cond, dict):
        _search_bad(where, "must be a JSON object")
    ctype = cond.get("type")
    if ctype == "term":
        _search_keys(cond, where, ("type", "values"))
        values = cond.get("values")
        if not isinstance(values, list) or any(isinstance(v, (list, dict)) or v is None for v in values):
            _search_bad(where + ".values", "must be a list of strings, numbers or booleans")
        strings = frozenset(v for v in values if isinstance(v, str))
        numbers = frozenset(v for v in values if _is_number(v))   # equal numbers hash alike
        bools = tuple(v for v in values if isinstance(v, bool))

        def test(x):
            if isinstance(x, str):
                return x in strings
            if isinstance(x, bool):
                return any(x is b for b in bools)
            if _is_number(x):
                return x in numbers
            return False
        return test
    if ctype == "reference":
        _search_keys(cond, where, ("type", "reference_type", "object_ids"))
        if not isinstance(cond.get("reference_type"), str):
            _search_bad(where + ".reference_type", "must be a string such as \"status.lead\"")
        ids = cond.get("object_ids")
        if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
            _search_bad(where + ".object_ids", "must be a list of ids")
        wanted = frozenset(ids)
        return lambda x: isinstance(x, str) and x in wanted
    if ctype == "exists":
        _search_keys(cond, where, ("type",))
        return lambda x: True
    if ctype == "text":
        _search_keys(cond, where, ("type", "mode", "value"))
        mode = cond.get("mode")
        if mode not in SEARCH_TEXT_MODES:
            _search_bad(where + ".mode", "unknown text mode %s (known: %s)" % (to_json(mode), ", ".join(SEARCH_TEXT_MODES)))
        value = cond.get("value")
        if not isinstance(value, str):
            _search_bad(where + ".value", "must be a string")
        target = value.casefold()
        if mode == "exact_value":
            return lambda x: isinstance(x, str) and x.casefold() == target
        return lambda x: isinstance(x, str) and target in x.casefold()
    if ctype == "number_range":
        _search_keys(cond, where, ("type", "gt", "gte", "lt", "lte"))
        bounds = {k: cond[k] for k in ("gt", "gte", "lt", "lte") if k in cond}
        if not bounds:
            _search_bad(where, "a number_range needs at least one of gt, gte, lt, lte")
        for k, v in bounds.items():
            if not _is_number(v):
                _search_bad(where + "." + k, "must be a number")
        gt, gte, lt, lte = (bounds.get(k) for k in ("gt", "gte", "lt", "lte"))

        def test(x):
            return (_is_number(x) and (gt is None or x > gt) and (gte is None or x >= gte)
                    and (lt is None or x < lt) and (lte is None or x <= lte))
        return test
    if ctype == "moment_range":
        _search_keys(cond, where, ("type", "on_or_after", "before"))
        if "on_or_after" not in cond and "before" not in cond:
            _search_bad(where, "a moment_range needs on_or_after, before or both")
        low = (compile_search_moment(cond["on_or_after"], where + ".on_or_after", ctx)
               if "on_or_after" in cond else None)
        high = compile_search_moment(cond["before"], where + ".before", ctx) if "before" in cond else None

        def test(x):
            if not isinstance(x, str):
                return False
            t = _value_instant(x)
            return t is not None and (low is None or t >= low) and (high is None or t < high)
        return test
    _search_bad(where + ".type", "unknown condition type %s (known: term, reference, exists, text, "
                "number_range, moment_range)" % to_json(ctype))


def compile_search_query(store, node, where="query", otype="custom_object", ctx=DEFAULT_MOMENTS):
    """A query node -> predicate(record) -> bool; 400 {"error"} naming what is wrong.
    otype: the object type searched (see search_object_type)."""
    if not isinstance(node, dict):
        _search_bad(where, "a query node must be a JSON object")
    ntype = node.get("type")
    negate = node.get("negate", False)
    if not isinstance(negate, bool):
        _search_bad(where + ".negate", "must be true or false")
    if ntype in ("and", "or"):
        _search_keys(node, where, ("type", "queries", "negate"))
        subs = node.get("queries")
        if not isinstance(subs, list):
            _search_bad(where + ".queries", "must be a list of query nodes")
        preds = tuple(compile_search_query(store, q, "%s.queries[%d]" % (where, i), otype, ctx)
                      for i, q in enumerate(subs))
        if ntype == "and":
            def pred(rec):
                return all(p(rec) for p in preds)
        else:
            def pred(rec):
                return any(p(rec) for p in preds)
    elif ntype == "object_type":
        _search_keys(node, where, ("type", "object_type", "negate"))
        if not isinstance(node.get("object_type"), str):
            _search_bad(where + ".object_type", "must be a string")
        result = node["object_type"] == otype     # the one kind of object searched

        def pred(rec):
            return result
    elif ntype == "match_all":
        _search_keys(node, where, ("type", "negate"))

        def pred(rec):
            return True
    elif ntype == "field_condition":
        _search_keys(node, where, ("type", "field", "condition", "negate"))
        if "field" not in node or "condition" not in node:
            _search_bad(where, "a field_condition needs \"field\" and \"condition\"")
        key = compile_search_field(store, node["field"], where + ".field", otype)
        test = compile_search_condition(node["condition"], where + ".condition", ctx)

        def pred(rec):
            v = rec.get(key)
            if v is None:
                return False
            if isinstance(v, list):
                return any(x is not None and test(x) for x in v)
            return test(v)
    elif ntype is None:
        _search_bad(where, "missing node \"type\"")
    else:
        _search_bad(where + ".type", "unknown query node type %s (known: and, or, object_type, match_all, "
                    "field_condition)" % to_json(ntype))
    if negate:
        inner = pred

        def pred(rec):
            return not inner(rec)
    return pred


def search_object_type(query):
    """The object type a query searches: lead, contact or opportunity when
    an object_type node (not negated) names one at the top or directly under
    a top-level "and" (the first such node); otherwise custom_object."""
    nodes = [query]
    if isinstance(query, dict) and query.get("type") == "and" and not query.get("negate") \
            and isinstance(query.get("queries"), list):
        nodes += query["queries"]
    for n in nodes:
        if isinstance(n, dict) and n.get("type") == "object_type" and not n.get("negate"):
            otype = n.get("object_type")
            return otype if otype in crm.CRM_TYPES else "custom_object"
    return "custom_object"


def top_level_date_created_range(query, ctx=DEFAULT_MOMENTS):
    """The [on_or_after, before) bounds (canonical strings, None: unbounded)
    that a fixed_utc moment_range on date_created directly under a top-level
    "and" puts on every match: only a narrowing, the query is still
    evaluated on what is left.  Anything it does not understand: no bound."""
    lower = upper = None
    if not isinstance(query, dict) or query.get("type") != "and" or query.get("negate"):
        return None, None
    for q in query.get("queries") or []:
        if not (isinstance(q, dict) and q.get("type") == "field_condition" and not q.get("negate")):
            continue
        field = q.get("field") or {}
        cond = q.get("condition") or {}
        if not (isinstance(field, dict) and field.get("type") == "regular_field"
                and field.get("field_name") == "date_created"
                and isinstance(cond, dict) and cond.get("type") == "moment_range"):
            continue
        for key in ("on_or_after", "before"):
            m = cond.get(key)
            if not (isinstance(m, dict) and m.get("type") == "fixed_utc" and isinstance(m.get("value"), str)):
                continue
            try:
                value = compile_search_moment(m, "query", ctx)
            except ApiError:
                continue
            if value is None:
                continue
            if key == "on_or_after":
                lower = value if lower is None else max(lower, value)
            else:
                upper = value if upper is None else min(upper, value)
    return lower, upper


def compile_search_sort(store, sort, otype="custom_object"):
    """The sort list -> [(record key, descending?)]; default date_created descending."""
    if sort is None:
        return [("date_created", True)]
    if not isinstance(sort, list):
        _search_bad("sort", "must be a list of {\"field\": ..., \"direction\": \"asc\"|\"desc\"}")
    out = []
    for i, item in enumerate(sort):
        where = "sort[%d]" % i
        _search_keys(item, where, ("field", "direction"))
        if "field" not in item:
            _search_bad(where, "missing \"field\"")
        key = compile_search_field(store, item["field"], where + ".field", otype)
        direction = item.get("direction")
        if direction not in ("asc", "desc"):
            _search_bad(where + ".direction", "must be \"asc\" or \"desc\"")
        out.append((key, direction == "desc"))
    return out


def _sort_value(v):
    """Comparable form of a value (None: missing).  Arrays sort by their first element."""
    if isinstance(v, list):
        v = v[0] if v else None
    if v is None:
        return None
    if isinstance(v, bool):
        return (0, v)
    if _is_number(v):
        return (1, v)
    if isinstance(v, str):
        return (2, v)
    return (3, to_json(v, sort_keys=True))


def sort_search_results(records, spec):
    """Sort in place by spec, ties by id ascending; missing values last in both directions."""
    records.sort(key=operator.itemgetter("id"))
    for key, desc in reversed(spec):
        values = [r.get(key) for r in records]
        if all(type(v) is str for v in values) or all(_is_number(v) for v in values):
            records.sort(key=operator.itemgetter(key), reverse=desc)    # fast path, nothing missing
            continue
        present, missing = ((1,), (0,)) if desc else ((0,), (1,))

        def sort_key_of(rec, key=key, present=present, missing=missing):
            sv = _sort_value(rec.get(key))
            return missing if sv is None else present + (sv,)
        records.sort(key=sort_key_of, reverse=desc)   # stable, also with reverse=True


def parse_search_fields(value, otype="custom_object"):
    """_fields -> the list of keys to return for the type searched (other object types ignored)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        _search_bad("_fields", "must be an object such as {\"custom_object\": [\"id\", \"name\"]}")
    for name, names in value.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            _search_bad("_fields." + name, "must be a list of field names")
    return value.get(otype, [])


class Request:
    """One parsed request: paths, query, body and the effective method."""

    def __init__(self, method, raw_path, body):
        self.method = method
        self.raw_path = raw_path
        raw_p, _, raw_q = raw_path.partition("?")
        self.raw_query = raw_q
        self.body = body            # bytes or None
        self.bad_url = False
        try:
            if BAD_PERCENT_RE.search(raw_p) or BAD_PERCENT_RE.search(raw_q):
                raise ValueError("bad percent-encoding")
            # http.server hands us the request line decoded as latin-1
            self.path = unquote(raw_p.encode("latin-1").decode("utf-8"), errors="strict")
            self.query = parse_qs(raw_q.encode("latin-1").decode("utf-8"),
                                  keep_blank_values=True, errors="strict")
        except (ValueError, UnicodeError):
            self.bad_url = True
            self.path = raw_p
            self.query = {}
        self.params = {k: list(v) for k, v in self.query.items()}

    def param(self, name):
        """Last value of a query parameter, None if absent."""
        values = self.params.get(name)
        return values[-1] if values else None


class Handler(crm.CrmHandlers, crm.CrmWrites, crm.CrmControl, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CloseEmulator/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after this

    # -- connection handling ------------------------------------------------

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    @property
    def store(self):
        return self.server.store

    def handle_one_request(self):
        """Like BaseHTTPRequestHandler's, but every method goes to _dispatch."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._dispatch()
            self.wfile.flush()
        except (TimeoutError, ConnectionError, BrokenPipeError):
            self.close_connection = True

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (bad request line, ...) as JSON, then close."""
        self.close_connection = True
        text = message or self.responses.get(code, ("error",))[0]
        self._send(code, json_bytes({"error": text}), [("Content-Type", "application/json")])

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write("close_emulator: %s\n" % (format % args))

    def _send(self, status, body, headers, truncate=False):
        """Write the whole answer in one go (status line, headers, body)."""
        if truncate and status == 204:
            status, body = 200, b"{}"        # older resources' "200 {}", cut short below
        reason = self.responses.get(status, ("",))[0]
        lines = ["HTTP/1.1 %d %s" % (status, reason),
                 "Server: " + self.server_version,
                 "Date: " + self.date_time_string()]
        for name, value in headers:
            lines.append("%s: %s" % (name, value))
        if status == 204 or status == 304 or status < 200:
            body = b""
        else:
            lines.append("Content-Length: %d" % len(body))
        if self.close_connection and not truncate:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if self.command != "HEAD":
            data += body[:len(body) // 2] if truncate else body
        if truncate:
            self.close_connection = True
        self.wfile.write(data)
        self.log_message('"%s" %d', getattr(self, "requestline", ""), status)

    def _read_body(self):
        """The request body as bytes, or None when there is none."""
        te = self.headers.get("Transfer-Encoding", "")
        if te:
            if te.strip().lower() != "chunked":
                raise BodyError(501, "Unsupported Transfer-Encoding")
            data = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BodyError(400, "Malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(data) if data else None
                if len(data) + size > MAX_BODY:
                    raise BodyError(413, "Request body too large")
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise BodyError(400, "Truncated chunked body")
                data += chunk
                self.rfile.readline()
        cl = self.headers.get_all("Content-Length") or []
        if not cl:
            return None
        if len(set(v.strip() for v in cl)) != 1 or not cl[0].strip().isdigit():
            raise BodyError(400, "Invalid Content-Length")
        length = int(cl[0])
        if length > MAX_BODY:
            raise BodyError(413, "Request body too large")
        if length == 0:
            return None
        data = self.rfile.read(length)
        if len(data) < length:
            raise BodyError(400, "Truncated body")
        return data

    def _dispatch(self):
        try:
            body = self._read_body()
        except BodyError as e:
            self.close_connection = True
            self._send(e.status, json_bytes({"error": e.message}), [("Content-Type", "application/json")])
            return
        req = Request(self.command, self.path, body)
        try:
            if req.path == "/_emulator" or req.path.startswith("/_emulator/"):
                self._control(req)
            else:
                self._api(req)
        except (ConnectionError, TimeoutError):
            raise
        except Exception as e:  # never crash the server on bad input
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            self._send(500, json_bytes({"error": "internal emulator error: %s" % e}),
                       [("Content-Type", "application/json")])

    # -- API pipeline ---------------------------------------------------------

    def _api(self, req):
        store = self.store
        label = auth_label(self.headers)
        entry = make_log_entry(req, label, self.headers, self.client_address[1])
        effective = req.method
        override = self.headers.get("x-http-method-override")
        if req.method == "POST" and override is not None:
            effective = override.strip().upper()
        route, template, match = find_route(req.path, effective)
        group = "%s %s" % (effective, template or "*")
        with store.lock:
            store.log.append(entry)
            rule = take_fault(store, req.method, req.path, req.raw_query)
            latency = store.config["latency_ms"]
            hang_event = store.hang_release

        if rule and rule["action"] in ("drop", "hang"):
            if rule["action"] == "hang":
                hang_event.wait(rule["seconds"] if rule["seconds"] is not None else 3600)
            self.close_connection = True     # no answer at all; status stays 0
            return
        if latency:
            time.sleep(latency / 1000.0)
        if rule and rule["action"] == "delay":
            time.sleep(rule["seconds"] if rule["seconds"] is not None else 1)
        if rule and rule["action"] == "garbage":
            entry["status"] = 200
            self._send(200, b"<html>oops</html>", [("Content-Type", "text/html")])
            return
        if rule and rule["action"] == "random":
            with store.lock:
                store.fuzz_count = getattr(store, "fuzz_count", 0) + 1
                rng = random.Random("%s:%d" % (rule["seed"], store.fuzz_count))
            entry["status"] = 200
            self._send(200, fuzz_page(rng), [("Content-Type", "application/json")])
            return

        # Rate-limit accounting happens for every API request (401s included).
        with store.lock:
            allowed, rl_header, reset = rate_limit_hit(store, label, group)
        headers = [("RateLimit", rl_header)]

        if rule and rule["action"] == "status":
            status = rule["status"]
            body = rule["body"]
            hdrs = {"Content-Type": "application/json", "RateLimit": rl_header}
            for k, v in rule["headers"].items():
                for existing in list(hdrs):
                    if existing.lower() == k.lower():
                        del hdrs[existing]
                if v is not None:
                    hdrs[k] = v
            entry["status"] = status
            self._send(status, body, list(hdrs.items()))
            return

        try:
            status, payload, extra = self._api_answer(req, label, effective, route, template, match,
                                                      allowed, reset)
        except ApiError as e:
            status, payload, extra = e.status, e.payload, []
        headers.extend(extra)
        headers.append(("Content-Type", "application/json"))
        body = b"" if status == 204 else json_bytes(payload)
        if rule and rule["action"] == "replace_body":
            body = rule["body"]          # the request did run: only its answer is broken
        entry["status"] = status
        self._send(status, body, headers, truncate=bool(rule and rule["action"] == "truncate"))

    def _api_answer(self, req, label, effective, route, template, match, allowed, reset):
        """Auth, limits, routing and body checks; returns (status, payload, headers)."""
        if req.bad_url:
            raise ApiError(400, {"error": "Malformed percent-encoding in URL"})
        max_url = self.store.config.get("max_url", 0)
        if max_url and len(self.path) > max_url:
            # the sheet: longer URLs go as POST + x-http-method-override: GET
            raise ApiError(414, {"error": "Request-URI Too Long"})
        if label not in VALID_LABELS:
            raise ApiError(401, {"error": "Unauthorized"})
        if not allowed:
            rate_reset = round(max(reset, 0.001), 3)
            return 429, {"error": {"message": "API rate limit exceeded", "rate_reset": rate_reset}}, \
                [("Retry-After", str(max(1, math.ceil(reset))))]
        if effective != req.method:
            # POST + x-http-method-override: GET, parameters in {"_params": {...}}
            if effective != "GET":
                raise ApiError(400, {"error": "x-http-method-override only supports GET"})
            data = self._json_body(req, required=True)
            params = data.get("_params") if isinstance(data, dict) else None
            if not isinstance(params, dict) or set(data) - {"_params"}:
                raise ApiError(400, {"error": "Body must be {\"_params\": {...}} with x-http-method-override"})
            for k, v in params.items():
                values = v if isinstance(v, list) else [v]
                req.params.setdefault(k, []).extend(param_text(x) for x in values)
            req.body = None
        if effective not in KNOWN_METHODS:
            raise ApiError(405, {"error": "Method not allowed"})
        if route is None:
            raise ApiError(404, {"error": "Not found: %s" % req.path})
        handler_name = route.get(effective)
        if handler_name is None:
            return 405, {"error": "Method not allowed"}, [("Allow", ", ".join(route))]
        body = None
        if effective in ("POST", "PUT"):
            body = self._json_body(req, required=True)
            if not isinstance(body, dict):
                raise ApiError(400, {"error": "Request body must be a JSON object"})
        return getattr(self, handler_name)(req, label, match, body)

    def _json_body(self, req, required):
        if req.body is None:
            if required:
                raise ApiError(400, {"error": "A JSON request body is required"})
            return None
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, {"error": "Unsupported media type \"%s\"; send application/json" % ctype})
        try:
            data = parse_json(req.body.decode("utf-8"))
            to_json(data).encode("utf-8")   # rejects lone surrogates
        except (ValueError, UnicodeError, RecursionError) as e:
            raise ApiError(400, {"error": "Invalid JSON body: %s" % e}) from None
        return data

    # -- API handlers: each returns (status, payload, extra headers) -------

    def _paging(self, req):
        """Validated (_skip, _limit); 400 with field-errors otherwise."""
        cfg = self.store.config
        errors = {}
        limit = min(100, cfg["max_limit"])
        skip = 0
        raw = req.param("_limit")
        if raw is not None:
            if not re.fullmatch(r"-?\d+", raw.strip()):
                errors["_limit"] = "A valid integer is required."
            else:
                limit = int(raw)
                if limit < 1:
                    errors["_limit"] = "Ensure this value is greater than or equal to 1."
                elif limit > cfg["max_limit"]:
                    errors["_limit"] = "Ensure this value is less than or equal to %d." % cfg["max_limit"]
        raw = req.param("_skip")
        if raw is not None:
            if not re.fullmatch(r"-?\d+", raw.strip()):
                errors["_skip"] = "A valid integer is required."
            else:
                skip = int(raw)
                if skip < 0:
                    errors["_skip"] = "Ensure this value is greater than or equal to 0."
                elif skip > cfg["max_skip"]:
                    errors["_skip"] = "Ensure this value is less than or equal to %d." % cfg["max_skip"]
        if errors:
            raise ApiError(400, field_errors(errors))
        return skip, limit

    @staticmethod
    def _fields(req):
        """The _fields list (None: all keys).  Repeated _fields parameters are joined."""
        values = req.params.get("_fields")
        if not values:
            return None
        names = [n.strip() for v in values for n in v.split(",") if n.strip()]
        return names or None

    @staticmethod
    def _project(rec, fields):
        if fields is None:
            return dict(rec)
        return {k: rec[k] for k in fields if k in rec}

    def api_list_objects(self, req, label, match, body):
        lead_id = req.param("lead_id")
        if not lead_id:
            raise ApiError(400, field_errors({"lead_id": "This field is required."}))
        type_id = req.param("custom_object_type_id") or None
        with self.store.lock:
            skip, limit = self._paging(req)
            if self.store.config["short_pages"]:
                limit = min(limit, self.store.config["short_pages"])
            fields = self._fields(req)
            index = self.store.by_lead_type.get((lead_id, type_id)) if type_id else self.store.by_lead.get(lead_id)
            index = index or []
            if self.store.config.get("list_by_date_updated"):
                index = sorted(index, key=operator.itemgetter("date_updated", "id"))
            page = [self._project(r, fields) for r in index[skip:skip + limit]]   # O(page)
            has_more = len(index) > skip + limit
        return 200, {"data": page, "has_more": has_more}, []

    def api_get_object(self, req, label, match, body):
        oid = match.group(1)
        with self.store.lock:
            rec = self.store.objects.get(oid) if ID_RES["custobj"].fullmatch(oid) else None
            if rec is None:
                raise ApiError(404, {"error": "Object not found"})
            return 200, self._project(rec, self._fields(req)), []

    def api_create_object(self, req, label, match, body):
        store = self.store
        with store.lock:
            errors = {}
            for key in body:
                if key in READ_ONLY_KEYS:
                    errors[key] = "This field is read-only."
                elif key not in ("custom_object_type_id", "lead_id", "name") and not key.startswith("custom."):
                    errors[key] = "Unknown field."
            type_id = self._required_str(body, "custom_object_type_id", errors)
            if type_id is not None and type_id not in store.types:
                errors["custom_object_type_id"] = "Custom object type \"%s\" not found." % type_id
                type_id = None
            lead_id = self._required_str(body, "lead_id", errors)
            if lead_id is not None and lead_id not in store.leads:
                errors["lead_id"] = "Lead \"%s\" not found." % lead_id
            name = self._required_str(body, "name", errors)
            custom = {}
            for key, value in body.items():
                if not key.startswith("custom."):
                    continue
                if type_id is None:
                    continue  # the type is missing or wrong: its fields cannot be judged
                field = store.fields.get(key[7:])
                if field is None or field["custom_object_type_id"] != type_id:
                    errors[key] = "Unknown custom field for this custom object type."
                    continue
                if value is None:
                    continue  # null means "no value": the key is left out
                try:
                    normalised = check_value(field, value)
                except ValueError as e:
                    errors[key] = str(e)
                    continue
                if normalised != []:
                    custom[key] = normalised
            if errors:
                raise ApiError(400, field_errors(errors))
            now = store.clock.tick()
            user = USERS[label]
            rec = store.make_record(store.new_id("custobj_", 43), type_id, lead_id, name, user, now, now, custom)
            store.insert(rec)
            return 201, dict(rec), []

    @staticmethod
    def _required_str(body, key, errors):
        if key not in body:
            errors.setdefault(key, "This field is required.")
            return None
        value = body[key]
        if value is None:
            errors.setdefault(key, "This field may not be null.")
        elif not isinstance(value, str):
            errors.setdefault(key, "Not a valid string.")
        elif not value.strip():
            errors.setdefault(key, "This field may not be blank.")
        else:
            return value
        return None

    def api_update_object(self, req, label, match, body):
        store = self.store
        oid = match.group(1)
        with store.lock:
            rec = store.objects.get(oid) if ID_RES["custobj"].fullmatch(oid) else None
            if rec is None:
                raise ApiError(404, {"error": "Object not found"})
            type_id = rec["custom_object_type_id"]
            errors = {}
            custom = {k: v for k, v in rec.items() if k.startswith("custom.")}
            name = rec["name"]
            for key, value in body.items():
                if key in READ_ONLY_KEYS:
                    errors[key] = "This field is read-only."
                elif key in ("lead_id", "custom_object_type_id"):
                    if value != rec[key]:
                        errors[key] = "This field cannot be changed."
                elif key == "name":
                    name = self._required_str(body, "name", errors)
                elif key.startswith("custom."):
                    field = store.fields.get(key[7:])
                    if field is None or field["custom_object_type_id"] != type_id:
                        errors[key] = "Unknown custom field for this custom object type."
                    elif value is None:
                        custom.pop(key, None)
                    else:
                        try:
                            normalised = check_value(field, value)
                        except ValueError as e:
                            errors[key] = str(e)
                            continue
                        if normalised == []:
                            custom.pop(key, None)
                        else:
                            custom[key] = normalised
                else:
                    errors[key] = "Unknown field."
            if errors:
                raise ApiError(400, field_errors(errors))
            rec["name"] = name
            rec["updated_by"] = USERS[label]
            rec["date_updated"] = store.clock.tick()
            store.replace_custom(rec, custom)
            return 200, dict(rec), []

    def api_delete_object(self, req, label, match, body):
        oid = match.group(1)
        with self.store.lock:
            rec = self.store.objects.get(oid) if ID_RES["custobj"].fullmatch(oid) else None
            if rec is None:
                raise ApiError(404, {"error": "Object not found"})
            self.store.remove(rec)
        return 204, None, []

    def api_list_types(self, req, label, match, body):
        with self.store.lock:
            return 200, {"data": [self.store.type_view(spec[0]) for spec in self.store.type_specs]}, []

    def api_get_type(self, req, label, match, body):
        type_id = match.group(1)
        with self.store.lock:
            if type_id not in self.store.types:
                raise ApiError(404, {"error": "Custom object type not found"})
            return 200, self.store.type_view(type_id), []

    def api_list_fields(self, req, label, match, body):
        with self.store.lock:
            skip, limit = self._paging(req)
            fields = self._fields(req)
            everything = self.store.all_fields()
            page = [self._project(f, fields) for f in everything[skip:skip + limit]]
            return 200, {"data": page, "has_more": len(everything) > skip + limit}, []

    def api_get_field(self, req, label, match, body):
        fid = match.group(1)
        with self.store.lock:
            field = self.store.fields.get(fid)
            if field is None:
                raise ApiError(404, {"error": "Custom field not found"})
            return 200, self._project(field, self._fields(req)), []

    def api_search(self, req, label, match, body):
        """Advanced Filtering: see the module docstring."""
        store = self.store
        errors = {}
        for k in body:
            if k not in SEARCH_BODY_KEYS:
                errors[k] = "Unknown key."
        if "query" not in body:
            errors["query"] = "This field is required."
        limit = body.get("_limit", SEARCH_DEFAULT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int):
            errors["_limit"] = "A valid integer is required."
        elif limit < 1:
            errors["_limit"] = "Ensure this value is greater than or equal to 1."
        elif limit > SEARCH_MAX_LIMIT:
            errors["_limit"] = "Ensure this value is less than or equal to %d." % SEARCH_MAX_LIMIT
        results_limit = body.get("results_limit")
        if results_limit is not None and (isinstance(results_limit, bool) or not isinstance(results_limit, int)
                                          or results_limit < 0):
            errors["results_limit"] = "Must be an integer >= 0."
        include_counts = body.get("include_counts", False)
        if not isinstance(include_counts, bool):
            errors["include_counts"] = "Must be a boolean."
        cursor = body.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            errors["cursor"] = "Must be a string or null."
        if errors:
            raise ApiError(400, field_errors(errors))
        otype = search_object_type(body["query"])
        fields = parse_search_fields(body.get("_fields"), otype)
        ctx = MomentContext(crm.tz_offset(self.headers),
                            store.config.get("crm_search_day_granular", 0) if otype != "custom_object" else 0)
        with store.lock:
            pred = compile_search_query(store, body["query"], otype=otype, ctx=ctx)
            sort_spec = compile_search_sort(store, body.get("sort"), otype)
            signature = to_json([body["query"], body.get("sort"), body.get("_fields"), results_limit],
                                sort_keys=True)
            store.gc_cursors(time.monotonic())
            if cursor is None:
                # Evaluate once; later pages only slice the kept id list.
                # Sorted by date_created alone (what clients ask for), the
                # date index gives the order, and a date_created range in the
                # top-level "and" narrows what is evaluated.
                if otype != "custom_object":
                    matched = [r for r in crm_search_pool(store, otype).values() if pred(r)]
                    sort_search_results(matched, sort_spec)
                elif len(sort_spec) == 1 and sort_spec[0][0] == "date_created":
                    lower, upper = top_level_date_created_range(body["query"], ctx)
                    if sort_spec[0][1]:
                        base = store.by_date_created(True)
                    else:
                        base = store.date_created_span(lower, upper)
                    matched = [r for r in base if pred(r)]
                else:
                    matched = [r for r in store.objects.values() if pred(r)]
                    sort_search_results(matched, sort_spec)
                cap = store.config["search_max_results"]
                if results_limit is not None:
                    cap = min(cap, results_limit)
                state = {"signature": signature, "ids": [r["id"] for r in matched[:cap]],
                         "total": len(matched), "object_type": otype}
                position = 0
            else:
                entry = store.cursors.get(cursor)
                if entry is None or entry[2] <= time.monotonic():
                    raise ApiError(400, {"field-errors": {"cursor": SEARCH_BAD_CURSOR}})
                state, position, _expiry = entry
                if state["signature"] != signature:
                    raise ApiError(400, {"error": "This cursor belongs to another query: query, sort, "
                                                  "_fields and results_limit must stay as they were."})
            ids = state["ids"]
            end = min(position + limit, len(ids))
            data = []
            otype = state["object_type"]
            records = store.objects if otype == "custom_object" else crm_search_pool(store, otype)
            for oid in ids[position:end]:
                rec = records.get(oid)
                if rec is None:
                    continue          # deleted after the query ran
                item = {"__object_type": otype, "id": oid}
                for key in fields:
                    if key in rec:
                        item[key] = rec[key]
                data.append(item)
            out = {"data": data, "cursor": store.issue_cursor(state, end) if end < len(ids) else None}
            if include_counts:
                out["count"] = {"total": state["total"]}
        return 200, out, []

    # -- control API -----------------------------------------------------------

    def _control(self, req):
        try:
            if req.bad_url:
                raise ApiError(400, {"error": "Malformed percent-encoding in URL"})
            route = CONTROL_ROUTES.get(req.path)
            if self.command not in KNOWN_METHODS:
                raise ApiError(405, {"error": "Method not allowed"})
            if route is None:
                raise ApiError(404, {"error": "Not found: %s" % req.path})
            name = route.get(self.command)
            if name is None:
                raise ApiError(405, {"error": "Method not allowed"})
            status, payload, ctype = getattr(self, name)(req)
        except ApiError as e:
            status, payload, ctype = e.status, e.payload, "application/json"
        if status == 204:
            body = b""
        elif isinstance(payload, bytes):
            body = payload
        else:
            body = json_bytes(payload)
        self._send(status, body, [("Content-Type", ctype)])

    def _control_body(self, req):
        if req.body is None:
            return {}
        try:
            data = parse_json(req.body.decode("utf-8"))
        except (ValueError, UnicodeError, RecursionError) as e:
            raise ApiError(400, {"error": "Invalid JSON body: %s" % e}) from None
        if not isinstance(data, dict):
            raise ApiError(400, {"error": "Body must be a JSON object"})
        return data

    def ctl_health(self, req):
        return 200, {"ok": True}, "application/json"

    def ctl_log(self, req):
        with self.store.lock:
            entries = [dict(e) for e in self.store.log]
        fmt = req.param("format")
        if fmt == "json":
            return 200, [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries], \
                "application/json"
        if fmt not in (None, "", "text"):
            raise ApiError(400, {"error": "format must be text or json"})
        return 200, b"".join(e["_line"] + b"\n" for e in entries), "text/plain; charset=utf-8"

    def ctl_log_clear(self, req):
        with self.store.lock:
            self.store.log = []
        return 204, None, None

    def ctl_faults_get(self, req):
        with self.store.lock:
            rules = [public_rule(r) for r in self.store.faults]
        return 200, {"rules": rules}, "application/json"

    def ctl_faults_add(self, req):
        rule = parse_fault(self._control_body(req))
        with self.store.lock:
            self.store.faults.append(rule)
            count = len(self.store.faults)
        return 200, {"rule": public_rule(rule), "rules": count}, "application/json"

    def ctl_faults_clear(self, req):
        with self.store.lock:
            self.store.faults = []
            self.store.release_hangs()
        return 204, None, None

    def ctl_reset(self, req):
        self.store.reset()
        return 204, None, None

    def ctl_config_get(self, req):
        with self.store.lock:
            return 200, dict(self.store.config), "application/json"

    def ctl_config_set(self, req):
        data = self._control_body(req)
        errors = {}
        for k, v in data.items():
            if k not in CONFIG_KEYS:
                errors[k] = "Unknown setting."
            elif isinstance(v, bool) or not isinstance(v, int) or v < CONFIG_MINIMUM.get(k, 0):
                errors[k] = "Must be an integer >= %d." % CONFIG_MINIMUM.get(k, 0)
        if errors:
            raise ApiError(400, field_errors(errors))
        with self.store.lock:
            self.store.config.update(data)
            if "rate_limit_per_sec" in data or "search_rate_limit_per_sec" in data \
                    or "rate_limit_window_ms" in data:
                self.store.windows = {}
        return 204, None, None

    def ctl_bulk_objects(self, req):
        data = self._control_body(req)
        store = self.store
        errors = {}
        for k in data:
            if k not in ("lead_id", "custom_object_type_id", "count", "name_prefix", "values",
                         "date_created"):
                errors[k] = "Unknown key."
        lead_id = data.get("lead_id")
        type_id = data.get("custom_object_type_id")
        count = data.get("count")
        prefix = data.get("name_prefix", "Bulk")
        values = data.get("values") or {}
        created = data.get("date_created")     # one instant for all (ties), else the clock's
        if created is not None:
            created = _value_instant(created) if isinstance(created, str) else None
            if created is None:
                errors["date_created"] = "Must be an ISO 8601 date-time with an offset."
        if not isinstance(lead_id, str) or not ID_RES["lead"].fullmatch(lead_id):
            errors["lead_id"] = "Must be lead_ followed by 43 base62 characters."
        if type_id not in store.types:
            errors["custom_object_type_id"] = "Unknown custom object type."
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 2_000_000:
            errors["count"] = "Must be an integer between 0 and 2000000."
        if not isinstance(prefix, str):
            errors["name_prefix"] = "Must be a string."
        custom = {}
        if not isinstance(values, dict):
            errors["values"] = "Must be an object of custom.cf_... keys."
        elif type_id in store.types:
            for key, value in values.items():
                field = store.fields.get(key[7:]) if key.startswith("custom.") else None
                if field is None or field["custom_object_type_id"] != type_id:
                    errors["values." + key] = "Unknown custom field for this custom object type."
                elif value is not None:
                    try:
                        custom[key] = check_value(field, value)
                    except ValueError as e:
                        errors["values." + key] = str(e)
        if errors:
            raise ApiError(400, field_errors(errors))
        width = len(str(count))
        user = USERS["test"]
        with store.lock:
            if lead_id not in store.leads:
                store.add_lead(lead_id, "Bulk Lead " + lead_id[5:], store.clock.tick())
            for i in range(1, count + 1):
                now = created or store.clock.tick()
                rec = store.make_record(store.new_id("custobj_", 43), type_id, lead_id,
                                        "%s %0*d" % (prefix, width, i), user, now, now, custom)
                store.insert(rec)
        return 200, {"created": count}, "application/json"

    def ctl_data_leads(self, req):
        with self.store.lock:
            out = {ld["id"]: len(self.store.by_lead.get(ld["id"], ())) for ld in self.store.lead_order}
        return 200, out, "application/json"

    def ctl_search_state(self, req):
        with self.store.lock:
            self.store.gc_cursors(time.monotonic())
            return 200, {"live_cursors": len(self.store.cursors)}, "application/json"

    def ctl_data_objects(self, req):
        lead_id = req.param("lead_id")
        if not lead_id:
            raise ApiError(400, field_errors({"lead_id": "This field is required."}))
        with self.store.lock:
            out = [dict(r) for r in self.store.by_lead.get(lead_id, ())]
        return 200, out, "application/json"


# ---------------------------------------------------------------------------
# Pipeline helpers
# ---------------------------------------------------------------------------

def auth_label(headers):
    """Map the Authorization header to a label; the credential itself is never kept."""
    values = headers.get_all("Authorization") or []
    if not values:
        return "none"
    if len(values) > 1:
        return "invalid"
    scheme, _, cred = values[0].strip().partition(" ")
    cred = cred.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(cred, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return "invalid"
        key, sep, password = decoded.partition(":")
        if sep and password == "" and key in API_KEYS:
            return API_KEYS[key]
        return "invalid"
    if scheme.lower() == "bearer":
        return BEARER_TOKENS.get(cred, "invalid")
    return "invalid"


def make_log_entry(req, label, headers, client_port=None):
    """A log entry; `_line` is the text form (bytes), computed at arrival.
    client_port tells requests on one kept-alive connection from new ones."""
    line = req.method.encode("latin-1", "replace") + b" " + req.raw_path.encode("latin-1", "replace")
    body_value = None
    if req.body is not None:
        try:
            body_value = parse_json(req.body.decode("utf-8"))
            body_text = to_json(body_value, sort_keys=True)
        except (ValueError, UnicodeError, RecursionError):
            body_value = req.body.decode("utf-8", "backslashreplace")
            body_text = body_value.replace("\r", "\\r").replace("\n", "\\n")
        line += b" " + body_text.encode("utf-8", "backslashreplace")
    hdrs = {}
    for name, value in headers.items():
        lname = name.lower()
        if lname in ("authorization", "proxy-authorization"):
            continue
        hdrs[lname] = hdrs[lname] + ", " + value if lname in hdrs else value
    return {
        "method": req.method,
        "raw_path": req.raw_path.encode("latin-1", "replace").decode("utf-8", "backslashreplace"),
        "path": req.path,
        "query": req.query,
        "body": body_value,
        "status": 0,
        "auth": label,
        "client_port": client_port,
        "headers": hdrs,
        "time": time.time(),
        "_line": line,
    }


def find_route(path, method):
    for pattern, template, methods in API_ROUTES:
        m = pattern.fullmatch(path)
        if m:
            return methods, template, m
    return None, None, None


def param_text(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return ""
    return v if isinstance(v, str) else to_json(v)


def take_fault(store, method, path, raw_query=""):
    """Consume one use of the first rule matching this request (caller holds the lock)."""
    for i, rule in enumerate(store.faults):
        if rule["method"] and rule["method"] != method:
            continue
        if rule["path_prefix"] and not path.startswith(rule["path_prefix"]):
            continue
        if rule["query_contains"] and rule["query_contains"] not in raw_query:
            continue
        if rule["times"] > 0:
            rule["times"] -= 1
            if rule["times"] == 0:
                del store.faults[i]
        return dict(rule)
    return None


# -- fuzzing: hostile answers for the FDW's JSON-to-row conversion -----------

FUZZ_KEYS = ("id", "lead_id", "name", "t", "n", "i4", "i8", "f8", "b", "d", "ts", "tstz",
             "j", "jb", "ta", "na", "custom.cf_x", "custom.cf_y")


def fuzz_string(rng):
    """A string made to hurt: unicode, escapes, NULs, lone surrogates, dates that are not."""
    kind = rng.randrange(10)
    if kind == 0:
        return rng.choice(["2024-02-30", "2024-13-01T25:61:00+00:00", "2020-07-27T21:28:39.765523",
                           "0000-01-01", "9999-12-31T23:59:59.999999+14:00", "infinity", "-infinity",
                           "1e400", "NaN", "12.50", "-0", "0x1F", " 42 ", "true", "null", "[]", "{}"])
    if kind == 1:
        return "x" * rng.choice([0, 1, 255, 256, 10000])
    if kind == 2:
        return "".join(chr(rng.randrange(0x20, 0x7f)) for _ in range(rng.randrange(20)))
    if kind == 3:
        return "".join(chr(rng.choice([0, 1, 0x7f, 0xad, 0x200b, 0xfeff, 0x10ffff, 0xe9, 0x2713]))
                       for _ in range(rng.randrange(1, 8)))
    if kind == 4:
        return "\ud800"        # a lone surrogate (written raw, see fuzz_page)
    return "".join(rng.choice("aZ09 _-./?#%&=+'\"\\;:") for _ in range(rng.randrange(1, 30)))


def fuzz_value(rng, depth=0):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 42, 2 ** 31, -2 ** 31 - 1, 2 ** 53 + 1, 2 ** 63 - 1, -2 ** 63,
                           2 ** 63, 2 ** 64, 10 ** 30, -(10 ** 30)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e-300, 1.7976931348623157e308, 12.5, -3e2, 0.1, 1e21])
    if kind in (4, 5):
        return fuzz_string(rng)
    if kind in (6, 7):
        return [fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {fuzz_string(rng)[:10]: fuzz_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def fuzz_page(rng):
    """A list page of random records, or (one time in six) a broken body."""
    kind = rng.randrange(24)
    if kind == 0:
        return b'{"data": [{"id": "custobj_a"'                       # cut short
    if kind == 1:
        return b'{"data": [{"id": "\xff\xfe"}], "has_more": false}'   # not UTF-8
    if kind == 2:
        return b"[" * 5000 + b"]" * 5000                               # deep nesting
    if kind == 3:
        return rng.choice([b"", b"null", b"[]", b'{"data": {}}', b'{"data": [1, 2]}',
                           b'{"data": [], "has_more": "yes"}', b'{"data": [{}], "has_more": false} x'])
    if kind == 4:
        return b'{"data": [{"n": NaN, "f8": Infinity}], "has_more": false}'
    records = []
    for _ in range(rng.randrange(1, 6)):
        record = {"id": "custobj_fuzz%d" % rng.randrange(10 ** 6)}
        for key in rng.sample(FUZZ_KEYS, rng.randrange(len(FUZZ_KEYS))):
            record[key] = fuzz_value(rng)
        records.append(record)
    text = json.dumps({"data": records, "has_more": False}, ensure_ascii=rng.random() < 0.5)
    # a lone surrogate escape stays an escape: json.dumps would double the backslash
    return text.replace("\\\\ud800", "\\ud800").encode("utf-8", "surrogatepass")


def parse_fault(data):
    allowed = ("method", "path_prefix", "query_contains", "action", "status", "body", "body_hex",
               "headers", "seconds", "times", "seed")
    errors = {k: "Unknown key." for k in data if k not in allowed}
    action = data.get("action")
    if action not in FAULT_ACTIONS:
        errors["action"] = "Must be one of %s." % ", ".join(FAULT_ACTIONS)
    method = data.get("method")
    if method is not None and not isinstance(method, str):
        errors["method"] = "Must be a string."
    prefix = data.get("path_prefix")
    if prefix is not None and not isinstance(prefix, str):
        errors["path_prefix"] = "Must be a string."
    query_contains = data.get("query_contains")
    if query_contains is not None and not isinstance(query_contains, str):
        errors["query_contains"] = "Must be a string."
    status = data.get("status", 503)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        errors["status"] = "Must be an HTTP status code."
    seconds = data.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, Decimal))
                                or seconds < 0):
        errors["seconds"] = "Must be a number >= 0."
    times = data.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or not (times == -1 or times >= 1):
        errors["times"] = "Must be -1 (forever) or >= 1."
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in headers.items()):
        errors["headers"] = "Must map header names to strings (or null to remove a default)."
    elif any(k.lower() in ("content-length", "transfer-encoding", "connection") for k in headers):
        errors["headers"] = "Content-Length, Transfer-Encoding and Connection are set by the emulator."
    body = data.get("body", {"error": "injected"})
    body_hex = data.get("body_hex")
    if body_hex is not None:
        # raw bytes (not UTF-8, say), in place of "body"
        try:
            body = bytes.fromhex(body_hex)
        except (TypeError, ValueError):
            errors["body_hex"] = "Must be a string of hex digits."
    if errors:
        raise ApiError(400, field_errors(errors))
    return {
        "method": method.upper() if method else None,
        "path_prefix": prefix,
        "query_contains": query_contains,
        "action": action,
        "status": status,
        "body": body if isinstance(body, bytes) else
        body.encode("utf-8") if isinstance(body, str) else json_bytes(body),
        "headers": headers,
        "seed": str(data.get("seed", 0)),
        "seconds": float(seconds) if seconds is not None else None,
        "times": times,
    }


def public_rule(rule):
    out = dict(rule)
    out["body"] = rule["body"].decode("utf-8", "replace")
    return out


def rate_limit_hit(store, label, group):
    """Count one request in the (key, endpoint group) sliding 1 s window.

    Returns (allowed, RateLimit header value, seconds until a slot frees).
    Without a configured limit the header counts down from 10000 (it
    advertises no limit it would not enforce: clients pace themselves by
    it) and nothing is refused.  Refused requests do not take a slot.  The search
    endpoint's groups are limited by search_rate_limit_per_sec alone.
    """
    search = group.endswith(" " + SEARCH_TEMPLATE)
    per_sec = store.config["search_rate_limit_per_sec" if search else "rate_limit_per_sec"]
    limit = per_sec if per_sec > 0 else 10000
    # the window's length: 1 s unless rate_limit_window_ms says (a short one
    # frees slots nearly continuously, as a token bucket does)
    span = store.config.get("rate_limit_window_ms", 1000) / 1000.0
    now = time.monotonic()
    window = store.windows.setdefault((label, group), collections.deque())
    while window and window[0] <= now - span:
        window.popleft()
    allowed = not (per_sec > 0 and len(window) >= per_sec)
    if allowed:
        window.append(now)
        if len(window) > 1000:      # unlimited mode: keep memory bounded
            window.popleft()
    reset = (window[0] + span - now) if window else span
    remaining = max(0, limit - len(window))
    return allowed, "limit=%d, remaining=%d, reset=%s" % (limit, remaining, fmt_seconds(reset)), reset


# ---------------------------------------------------------------------------
# Server and main
# ---------------------------------------------------------------------------

class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def write_port_file(path, port):
    """Write atomically: readers see either no file or the whole number."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Close CRM REST API emulator for close_fdw tests.")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one)")
    p.add_argument("--port-file", help="write the port number here once listening")
    p.add_argument("--latency-ms", type=int, default=0, help="sleep before every API answer")
    p.add_argument("--data", choices=("sample", "empty", "bench"), default="sample",
                   help="bench: the sample data plus a type of 30 fields (bench/)")
    p.add_argument("--max-limit", type=int, default=100, help="largest accepted _limit")
    p.add_argument("--max-skip", type=int, default=10000, help="largest accepted _skip")
    p.add_argument("--rate-limit-per-sec", type=int, default=0,
                   help="requests per second per key and endpoint group (0: no limit)")
    p.add_argument("--cursor-ttl", type=int, default=30,
                   help="seconds a search cursor stays valid after it was issued")
    p.add_argument("--search-max-results", type=int, default=10000,
                   help="most objects one search query (first page + its cursors) returns")
    p.add_argument("--search-rate-limit-per-sec", type=int, default=0,
                   help="requests per second per key for the search endpoint (0: no limit)")
    p.add_argument("--crm-max-limit", type=int, default=200,
                   help="largest _limit of the CRM listings (leads, contacts, ...)")
    p.add_argument("--lead-max-skip", type=int, default=35000, help="largest _skip of /lead/")
    p.add_argument("--crm-max-skip", type=int, default=0,
                   help="largest _skip of the other CRM listings (0: not capped)")
    p.add_argument("--crm-search-day-granular", type=int, default=0, choices=(0, 1, 2),
                   help="fixed_utc search bounds on leads, contacts and opportunities count by day "
                        "(1: day starts; 2: a before widened to the next day)")
    p.add_argument("--quiet", action="store_true", help="no per-request lines on stderr")
    args = p.parse_args(argv)
    if (args.latency_ms < 0 or args.max_limit < 1 or args.max_skip < 0 or args.rate_limit_per_sec < 0
            or args.cursor_ttl < 0 or args.search_max_results < 1 or args.search_rate_limit_per_sec < 0
            or args.crm_max_limit < 1 or args.lead_max_skip < 0 or args.crm_max_skip < 0):
        p.error("numeric options must be >= 0 (--max-limit and --search-max-results >= 1)")
    return args


def main(argv=None):
    args = parse_args(argv)
    config = {"latency_ms": args.latency_ms, "max_limit": args.max_limit,
              "max_skip": args.max_skip, "rate_limit_per_sec": args.rate_limit_per_sec,
              "cursor_ttl": args.cursor_ttl, "search_max_results": args.search_max_results,
              "search_rate_limit_per_sec": args.search_rate_limit_per_sec,
              "short_pages": 0, "list_by_date_updated": 0,
              "crm_max_limit": args.crm_max_limit, "lead_max_skip": args.lead_max_skip,
              "crm_max_skip": args.crm_max_skip,
              "crm_search_day_granular": args.crm_search_day_granular, "stale_reads": 0,
              "max_url": 0, "stale_lists": 0}
    store = Store(config, args.data)
    server = EmulatorServer(("127.0.0.1", args.port), Handler)
    server.store = store
    server.quiet = args.quiet
    port = server.server_address[1]

    # A plain list, not an Event: the handler runs in the main thread, which
    # may hold the Event's lock inside stop.wait() (a deadlock, seen once).
    stop = []

    def on_signal(signum, frame):
        stop.append(signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    if args.port_file:
        write_port_file(args.port_file, port)
    try:
        print("listening on 127.0.0.1:%d" % port, flush=True)
    except OSError:
        pass
    while not stop:
        time.sleep(0.2)
    store.release_hangs()
    server.shutdown()
    server.server_close()
    if args.port_file:
        try:
            with open(args.port_file) as f:
                if f.read().strip() == str(port):
                    os.unlink(args.port_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
