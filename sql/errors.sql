-- errors: every HTTP failure and every malformed answer is an error with a
-- proper SQLSTATE and the API's message, never fewer rows.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
\set big 'lead_Big0000000000000000000000000000000000000000'
SELECT emulator_reset();
-- how each failure is reported, without the retries (resilience.sql)
ALTER SERVER close OPTIONS (ADD max_retries '0', ADD rate_limit_wait_ms '0');
CREATE FUNCTION fail_next(rule jsonb) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object('path_prefix', '/api/v1/custom_object/', 'times', 1) || rule);
$$;
-- each error is followed by its SQLSTATE

SELECT fail_next('{"action": "status", "status": 400, "body": "{\"errors\": [\"Bad request\"], \"field-errors\": {\"lead_id\": \"Not a valid lead.\"}}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 401, "body": "{\"error\": \"Unauthorized\"}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 402, "body": "{\"error\": \"Your plan does not include custom objects.\"}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 403, "body": "{\"error\": \"Forbidden\"}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 404, "body": "{\"error\": \"Not found\"}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 429, "headers": {"Retry-After": "3"}, "body": "{\"error\": {\"message\": \"API rate limit exceeded\", \"rate_reset\": 3}}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 500, "body": "<html>Internal error</html>"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 503, "body": ""}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
-- a retrieval answers 404 for a missing record (no row), anything else is an error
SELECT fail_next('{"action": "status", "status": 502, "body": "{\"error\": \"Bad gateway\"}"}');
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_OnlyOne000000000000000000000000000000000000';  -- ERROR
\echo SQLSTATE :SQLSTATE

-- transport failures (libcurl itself retries a GET once when a kept-alive
-- connection closes before answering: drop both tries)
\set VERBOSITY terse
SELECT fail_next('{"action": "drop", "times": 2}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "truncate"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
\set VERBOSITY default

-- answers that are not what the endpoint promises
SELECT fail_next('{"action": "garbage"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 200, "body": "{\"data\": [], \"has_more\": false} trailing"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 200, "body": "{\"data\": [{\"id\": \"custobj_a\"}], \"has_more\": fals"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 200, "body": "[]"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 200, "body": "{\"data\": {}, \"has_more\": false}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 200, "body": "{\"data\": []}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 200, "body": "{\"data\": [1, 2], \"has_more\": false}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 200, "body": "{\"data\": [], \"has_more\": true}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT fail_next('{"action": "status", "status": 200, "body": "[\"not a record\"]"}');
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_OnlyOne000000000000000000000000000000000000';  -- ERROR
\echo SQLSTATE :SQLSTATE

-- a server that ignores _skip would page forever: a repeated page is an error
SELECT fail_next('{"action": "status", "status": 200, "times": 3, "body": "{\"data\": [{\"id\": \"custobj_a\"}], \"has_more\": true}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT emulator_reset();

-- a failure on a later page fails the statement: never a short result
-- (one request at a time, so that the failure falls on the second page)
ALTER SERVER close OPTIONS (ADD max_concurrency '1');
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "delay", "seconds": 0, "times": 1}');
SELECT fail_next('{"action": "status", "status": 503, "body": "{\"error\": \"Service unavailable\"}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';  -- ERROR
\echo SQLSTATE :SQLSTATE
ALTER SERVER close OPTIONS (DROP max_concurrency);
-- so does a failure on a page fetched ahead with others: without retries
-- it is the answer.  The failure is put on the lead's last page (skip 198 of
-- 250): a failure on a page asked for past the lead's end is not part of the
-- answer, and which page arrives first among those in flight is timing.
SELECT fail_next('{"query_contains": "_skip=198&", "action": "status", "status": 503, "body": "{\"error\": \"Service unavailable\"}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';  -- ERROR
\echo SQLSTATE :SQLSTATE
-- while a failure on a page past the lead's end (asked for ahead, before the
-- end was known) is not: the answer is whole without it
SELECT fail_next('{"query_contains": "_skip=297&", "action": "status", "status": 503, "body": "{\"error\": \"Service unavailable\"}"}');
SELECT emulator_clear();
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';
SELECT count(*) FILTER (WHERE e->>'raw_path' LIKE '%&_skip=297&%' AND e->>'status' = '503') AS failed_past_end
  FROM emulator_log_entries() e;
-- the API's cap on _skip is reported too
SELECT emulator_call('POST', '/_emulator/config', '{"max_skip": 100}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT emulator_reset();

-- after all that, the session still works and the connection is reused
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';
ALTER SERVER close OPTIONS (DROP max_retries, DROP rate_limit_wait_ms);
