-- sqlstates: one SQLSTATE per kind of failure, the same for reads and
-- writes, so that a program can branch on it (README, "Errors").  Never
-- class 08, which drivers and pools take for a dead database connection.
\set VERBOSITY terse
\set one 'lead_One0000000000000000000000000000000000000000'
\set api_url `echo "$CLOSE_API_URL"`
SELECT emulator_reset();
CREATE SERVER sq FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', max_retries '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER sq OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE sq_devices (id text, lead_id text, name text)
  SERVER sq OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
INSERT INTO sq_devices (lead_id, name) VALUES (:'one', 'Kept') RETURNING id AS kept \gset

-- Close rejected the values (400 with field-errors): 22023
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 400, "body": {"errors": [], "field-errors": {"name": "Ensure this value has at most 255 characters."}}, "times": 1}');
INSERT INTO sq_devices (lead_id, name) VALUES (:'one', 'Bad');  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 400, "body": {"field-errors": {"name": "Ensure this value has at most 255 characters."}}, "times": 1}');
UPDATE sq_devices SET name = 'Bad' WHERE id = :'kept';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 400, "body": {"errors": ["Bad request"]}, "times": 1}');
SELECT count(name) FROM sq_devices WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
-- a 400 that is not about values (an expired search cursor is one) stays HV000
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 400, "body": {"error": "Cursor expired or invalid."}, "times": 1}');
SELECT count(name) FROM sq_devices WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE

-- credentials (401): 28000
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 401, "body": {"error": "Unauthorized"}, "times": 1}');
SELECT count(name) FROM sq_devices WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 401, "body": {"error": "Unauthorized"}, "times": 1}');
INSERT INTO sq_devices (lead_id, name) VALUES (:'one', 'No');  -- ERROR
\echo :LAST_ERROR_SQLSTATE

-- plan limit (402) and forbidden (403): 42501, reads and writes
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 402, "body": {"error": "Your plan does not include custom objects."}, "times": 1}');
SELECT count(name) FROM sq_devices WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 402, "body": {"error": "Your plan does not include custom objects."}, "times": 1}');
INSERT INTO sq_devices (lead_id, name) VALUES (:'one', 'No');  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 403, "body": {"error": "Forbidden"}, "times": 1}');
UPDATE sq_devices SET name = 'No' WHERE id = :'kept';  -- ERROR
\echo :LAST_ERROR_SQLSTATE

-- the object does not exist (404) on UPDATE or DELETE: not counted, no error
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 404, "body": {"error": "Not found"}, "times": 1}');
UPDATE sq_devices SET name = 'Gone' WHERE id = :'kept';
\echo :ROW_COUNT
SELECT emulator_fault('{"method": "DELETE", "action": "status", "status": 404, "body": {"error": "Not found"}, "times": 1}');
DELETE FROM sq_devices WHERE id = :'kept';
\echo :ROW_COUNT
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 404, "body": {"error": "Not found"}, "times": 1}');
UPDATE sq_devices SET name = 'Gone' WHERE lead_id = :'one' AND name = 'Kept';
\echo :ROW_COUNT
SELECT name FROM sq_devices WHERE id = :'kept';

-- Close unavailable (5xx after the retries): HV000, reads and writes
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 503, "body": "", "times": 2}');
SELECT count(name) FROM sq_devices WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 500, "body": "", "times": 1}');
UPDATE sq_devices SET name = 'No' WHERE id = :'kept';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
-- an answer cut short: HV000 too
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "truncate", "times": 2}');
SELECT count(name) FROM sq_devices WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE

-- no answer within timeout_ms: HV00N, reads and writes
ALTER SERVER sq OPTIONS (ADD timeout_ms '300');
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "hang", "times": 2}');
SELECT count(name) FROM sq_devices WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_call('DELETE', '/_emulator/faults');
SELECT emulator_fault('{"method": "POST", "action": "hang", "times": 1}');
INSERT INTO sq_devices (lead_id, name) VALUES (:'one', 'Late');  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT emulator_call('DELETE', '/_emulator/faults');
ALTER SERVER sq OPTIONS (DROP timeout_ms);

-- cannot connect: HV00N
ALTER SERVER sq OPTIONS (SET api_url 'http://127.0.0.1:9/api/v1', SET max_retries '0');
SELECT count(name) FROM sq_devices WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
INSERT INTO sq_devices (lead_id, name) VALUES (:'one', 'Nowhere');  -- ERROR
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER sq OPTIONS (SET api_url :'api_url');

-- what these statements sent
SELECT * FROM emulator_requests();
DROP SERVER sq CASCADE;
