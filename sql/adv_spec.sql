-- adv_spec: answers the API sheets allow that the emulator did not send
-- before, and what close_fdw must make of them.
\set api_url `echo "$CLOSE_API_URL"`
\set co 'custobj_MixedAlpha000000000000000000000000000000000'
SELECT emulator_reset();

-- 1. A 429 always means wait.  A RateLimit header of another limit than the
-- one that refused ("remaining" above zero, "reset=0") or "Retry-After: 0"
-- is no wait: the next hint (Retry-After, the body's rate_reset, else 2 s)
-- is taken, never a retry at once (which sent hundreds of requests a second
-- until rate_limit_wait_ms ran out).
SELECT emulator_fault('{"method": "GET", "action": "status", "status": 429, "body": {"error": "Too many"}, "headers": {"RateLimit": "limit=100, remaining=50, reset=0", "Retry-After": "1"}, "times": 1}');
SELECT clock_timestamp() AS t0 \gset
SELECT id FROM close_custom_objects WHERE id = :'co';
SELECT clock_timestamp() - :'t0' >= interval '1 s' AS waited_retry_after;
SELECT count(*) AS requests FROM emulator_requests();
SELECT emulator_fault('{"method": "GET", "action": "status", "status": 429, "body": {"error": {"message": "Too many", "rate_reset": 0}}, "headers": {"RateLimit": null, "Retry-After": "0"}, "times": 1}');
SELECT clock_timestamp() AS t0 \gset
SELECT id FROM close_custom_objects WHERE id = :'co';
SELECT clock_timestamp() - :'t0' >= interval '2 s' AS waited_two_seconds;
SELECT count(*) AS requests FROM emulator_requests();
-- refused again and again: a few requests, not a storm (the wait is bounded
-- by rate_limit_wait_ms, counted from the first 429, rather than by a
-- statement_timeout that a slow machine could reach in mid-request)
SELECT emulator_fault('{"method": "GET", "action": "status", "status": 429, "body": {"error": "Too many"}, "headers": {"RateLimit": "limit=100; remaining=7; reset=0", "Retry-After": "1"}, "times": -1}');
ALTER SERVER close OPTIONS (ADD rate_limit_wait_ms '1500');
\set VERBOSITY terse
SELECT id FROM close_custom_objects WHERE id = :'co';  -- ERROR
\set VERBOSITY default
ALTER SERVER close OPTIONS (DROP rate_limit_wait_ms);
SELECT count(*) AS requests FROM emulator_requests();
SELECT emulator_reset();

-- 2. An expired search cursor is answered as the sheet saw it live,
-- 400 {"field-errors": {"cursor": "Expired cursor"}}: not a value the user
-- gave (22023) but the API's failure (HV000), as any refused cursor.  A
-- sorted search (ORDER BY date_created DESC LIMIT n) reads one query, so
-- its refused cursor is an error.
CREATE SERVER adv_small FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '2', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER adv_small OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE adv_objects (id text, name text, date_created timestamptz)
  SERVER adv_small;
SELECT emulator_call('POST', '/_emulator/config', '{"cursor_ttl": 0}');
EXPLAIN (COSTS OFF)
SELECT count(*) FROM (SELECT name FROM adv_objects ORDER BY date_created DESC LIMIT 250) s;
SELECT count(*) FROM (SELECT name FROM adv_objects ORDER BY date_created DESC LIMIT 250) s;  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_reset();
-- a 400 whose field errors name values sent stays 22023
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 400, "body": {"errors": [], "field-errors": {"name": "This field is required.", "cursor": "Expired cursor"}}, "times": 1}');
SELECT name FROM adv_objects ORDER BY date_created DESC LIMIT 5;  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_reset();

-- 3. A search whose count stays above what it returns, far short of the
-- 10,000 one query returns (a lower cap, or Close counting objects it no
-- longer gives): an error with what was returned and counted, not one
-- blaming 10,000 objects at one instant.
SELECT emulator_fault('{"method": "POST", "path_prefix": "/api/v1/data/search/", "action": "status", "status": 200, "times": -1, "body": {"data": [{"__object_type": "custom_object", "id": "custobj_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "name": "a", "date_created": "2020-08-04T16:45:35.367000+00:00"}], "cursor": null, "count": {"total": 5}}}');
SELECT id, name FROM adv_objects;  -- ERROR
SELECT count(*) AS requests FROM emulator_requests();
SELECT emulator_reset();

-- 4. Another record answered for the one asked: GET /lead/{id}/ of a lead
-- merged into another, or a lead's listing (Close's index lags) holding an
-- object moved to another lead since.  Not the row the condition selects:
-- no row, and an UPDATE does not write the other record.
SELECT emulator_fault('{"method": "GET", "path_prefix": "/api/v1/custom_object/custobj_", "action": "status", "status": 200, "times": 1, "body": {"id": "custobj_Other00000000000000000000000000000000000000", "lead_id": "lead_Mixed00000000000000000000000000000000000000", "name": "Other", "custom_object_type_id": "cotype_1h5m6uHM9BZOpwVhyRJb4Y"}}');
SELECT id, name FROM close_custom_objects WHERE id = :'co';
CREATE FOREIGN TABLE adv_spec_leads (id text, name text) SERVER close OPTIONS (resource 'lead');
SELECT emulator_fault('{"method": "GET", "path_prefix": "/api/v1/lead/lead_", "action": "status", "status": 200, "times": 1, "body": {"id": "lead_Other00000000000000000000000000000000000000", "name": "Merged into"}}');
SELECT id, name FROM adv_spec_leads WHERE id = 'lead_Mixed00000000000000000000000000000000000000';
SELECT * FROM emulator_requests();
SELECT emulator_fault('{"method": "GET", "path_prefix": "/api/v1/lead/lead_", "action": "status", "status": 200, "times": 1, "body": {"id": "lead_Other00000000000000000000000000000000000000", "name": "Merged into"}}');
UPDATE adv_spec_leads SET name = 'Renamed'
 WHERE id = 'lead_Mixed00000000000000000000000000000000000000' AND name <> 'x';
-- (PostgreSQL 13 reads the row with _fields: the query string left out)
SELECT regexp_replace(r, '\?.*', '') AS request FROM emulator_requests() r;
-- a lead's listing: the object now of another lead is left out
SELECT emulator_fault('{"method": "GET", "path_prefix": "/api/v1/custom_object/", "action": "status", "status": 200, "times": 1, "body": {"data": [{"id": "custobj_Other00000000000000000000000000000000000000", "lead_id": "lead_Other00000000000000000000000000000000000000", "name": "Moved", "custom_object_type_id": "cotype_1h5m6uHM9BZOpwVhyRJb4Y"}, {"id": "custobj_Stays00000000000000000000000000000000000000", "lead_id": "lead_Mixed00000000000000000000000000000000000000", "name": "Stays", "custom_object_type_id": "cotype_1h5m6uHM9BZOpwVhyRJb4Y"}], "has_more": false}}');
SELECT id, lead_id, name FROM close_custom_objects
 WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000' AND name <> 'x';
SELECT emulator_reset();

-- 5. A GET whose URL would be longer than Close takes (about 2000
-- characters: here _fields naming 40 custom fields) goes as a POST with
-- x-http-method-override: GET and its parameters in {"_params": {...}}.
SELECT emulator_call('POST', '/_emulator/config', '{"max_url": 2000}');
SELECT emulator_fault(jsonb_build_object('method', 'GET',
  'path_prefix', '/api/v1/custom_field_schema/lead/', 'action', 'status',
  'status', 200, 'times', -1, 'body', jsonb_build_object(
    'name', 'Lead', 'object_type', 'lead',
    'organization_id', 'orga_Test000000000000000000000000000000000000000',
    'fields', (SELECT jsonb_agg(jsonb_build_object('id', f, 'name', f, 'type', 'text',
                                                   'accepts_multiple_values', false))
                 FROM (SELECT 'cf_Wide' || lpad(i::text, 39, '0') AS f
                         FROM generate_series(1, 40) i
                       UNION ALL SELECT 'cf_LeadIndustry0000000000000000000000000000000') w))));
DO $$
BEGIN
  EXECUTE 'CREATE FOREIGN TABLE adv_wide_leads (id text, name text, '
    || (SELECT string_agg(format('f%s text OPTIONS (field %L)', i,
                                 'custom.cf_Wide' || lpad(i::text, 39, '0')), ', ')
          FROM generate_series(1, 40) i)
    || ', industry text OPTIONS (field ''custom.cf_LeadIndustry0000000000000000000000000000000''))'
    || ' SERVER close OPTIONS (resource ''lead'')';
END $$;
SELECT id, name, industry, num_nulls(f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32, f33, f34, f35, f36, f37, f38, f39, f40) AS unset FROM adv_wide_leads
 WHERE id = 'lead_hwnL36A2iEMSLIlmGhsdrcmOJzTUzqEHwr66wrA1K2T';
SELECT regexp_replace(r, 'custom\.cf_Wide0+(\d+)', 'W\1', 'g') AS request
  FROM emulator_requests() r;
SELECT emulator_reset();
