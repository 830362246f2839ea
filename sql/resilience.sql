-- resilience: transient failures are ridden through, permanent ones fail
-- clearly, nothing is written twice, and no credential leaks.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
\set big 'lead_Big0000000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE OR REPLACE FUNCTION fail_next(rule jsonb) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object('path_prefix', '/api/v1/custom_object/', 'times', 1) || rule);
$$;
-- the pause before each request, from the emulator's log (seconds)
CREATE FUNCTION request_gaps() RETURNS TABLE (method text, status text, gap numeric)
LANGUAGE sql AS $$
  SELECT e->>'method', e->>'status',
         round(((e->>'time')::numeric - lag((e->>'time')::numeric) OVER ()), 1)
    FROM emulator_log_entries() e
$$;

-- a 429 waits as Close says: RateLimit reset, Retry-After, the body's rate_reset
SELECT fail_next('{"action": "status", "status": 429, "headers": {"RateLimit": "limit=100, remaining=0, reset=0.6"}, "body": "{\"error\": \"slow down\"}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT method, status, gap >= 0.5 AS waited FROM request_gaps();
SELECT fail_next('{"action": "status", "status": 429, "headers": {"RateLimit": "limit=100; remaining=0; reset=0.6"}}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT method, status, gap >= 0.5 AS waited FROM request_gaps();
SELECT fail_next('{"action": "status", "status": 429, "headers": {"RateLimit": null, "Retry-After": "1"}}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT method, status, gap >= 0.9 AS waited FROM request_gaps();
SELECT fail_next('{"action": "status", "status": 429, "headers": {"RateLimit": null}, "body": "{\"error\": {\"message\": \"API rate limit exceeded\", \"rate_reset\": 0.6}}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT method, status, gap >= 0.5 AS waited FROM request_gaps();

-- 502, 503, 504 and lost connections: GET again; EXPLAIN ANALYZE counts it
SELECT fail_next('{"action": "status", "status": 503, "times": 2, "body": "{\"error\": \"unavailable\"}"}');
SELECT explain_same('ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF',
                    format('SELECT * FROM close_custom_objects WHERE lead_id = %L', :'big'));
SELECT fail_next('{"action": "status", "status": 502}');
SELECT fail_next('{"action": "status", "status": 504}');
SELECT fail_next('{"action": "truncate"}');
SELECT fail_next('{"action": "drop", "times": 2}');
SELECT count(*), count(DISTINCT id) FROM close_custom_objects WHERE lead_id = :'big';
SELECT method, status FROM request_gaps();
-- a 500 is not transient
SELECT fail_next('{"action": "status", "status": 500, "body": "{\"error\": \"bug\"}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
SELECT count(*) AS requests FROM request_gaps();

-- a POST is repeated only when Close surely did not act on it (429)
CREATE FOREIGN TABLE retried_devices (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 429, "times": 1, "headers": {"RateLimit": "limit=10, remaining=0, reset=0.3"}}');
INSERT INTO retried_devices (lead_id, name) VALUES (:'one', 'After 429') RETURNING name;
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 503, "times": 1}');
INSERT INTO retried_devices (lead_id, name) VALUES (:'one', 'After 503');  -- ERROR
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 502, "times": 1}');
INSERT INTO retried_devices (lead_id, name) VALUES (:'one', 'After 502');  -- ERROR
SELECT method, status FROM request_gaps();
SELECT name FROM retried_devices WHERE lead_id = :'one' ORDER BY name;
-- PUT and DELETE are repeated (doing them twice is harmless)
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 503, "times": 1}');
UPDATE retried_devices SET name = 'Renamed' WHERE lead_id = :'one' AND name = 'After 429';
SELECT emulator_fault('{"method": "DELETE", "action": "status", "status": 503, "times": 1}');
DELETE FROM retried_devices WHERE lead_id = :'one' AND name = 'Renamed';
SELECT method, status FROM request_gaps() WHERE method <> 'GET';

-- max_retries bounds the retries of failures; the error says what was tried
ALTER SERVER close OPTIONS (ADD max_retries '2');
SELECT fail_next('{"action": "status", "status": 503, "times": -1}');
\set VERBOSITY terse
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\set VERBOSITY default
SELECT count(*) AS requests FROM request_gaps();
SELECT emulator_call('DELETE', '/_emulator/faults');
-- but not a 429's: those are waited out for rate_limit_wait_ms, then 53400
SELECT fail_next('{"action": "status", "status": 429, "times": -1, "headers": {"RateLimit": "limit=100, remaining=0, reset=0.1"}}');
ALTER SERVER close OPTIONS (ADD rate_limit_wait_ms '700');
SELECT clock_timestamp() AS started \gset
\set VERBOSITY terse
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\set VERBOSITY default
\echo SQLSTATE :SQLSTATE
SELECT clock_timestamp() - :'started' BETWEEN interval '0.5 s' AND interval '3 s' AS waited_about_the_limit,
       count(*) > 3 AS more_than_max_retries
  FROM request_gaps();
-- 0: a 429 fails at once
ALTER SERVER close OPTIONS (SET rate_limit_wait_ms '0');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
SELECT count(*) AS requests FROM request_gaps();
ALTER SERVER close OPTIONS (DROP rate_limit_wait_ms);
SELECT emulator_call('DELETE', '/_emulator/faults');
\set api_url `echo "$CLOSE_API_URL"`
ALTER SERVER close OPTIONS (SET api_url 'http://127.0.0.1:9/api/v1');
\set VERBOSITY terse
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\set VERBOSITY default
ALTER SERVER close OPTIONS (SET api_url :'api_url', DROP max_retries);

-- pacing: when Close says nothing remains, the next request waits for the reset
SELECT fail_next('{"action": "status", "status": 200, "headers": {"RateLimit": "limit=2, remaining=0, reset=0.8"}, "body": "{\"data\": [{\"id\": \"custobj_Paced\", \"name\": \"first page\"}], \"has_more\": true}"}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';
SELECT method, status, gap >= 0.7 AS waited FROM request_gaps() LIMIT 2;

-- (through a key of its own: the waits below hold its budget for 30 s)
CREATE SERVER close_paced FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER close_paced OPTIONS (api_key 'api_paced_key');
CREATE FOREIGN TABLE paced_objects (id text, lead_id text, name text) SERVER close_paced;
-- a 429 whose wait would outlast statement_timeout fails at once (53400)
SELECT fail_next('{"action": "status", "status": 429, "headers": {"RateLimit": null, "Retry-After": "30"}}');
SET statement_timeout = '5s';
SELECT clock_timestamp() AS started \gset
SELECT count(name) FROM paced_objects WHERE lead_id = :'one';  -- ERROR
\echo SQLSTATE :SQLSTATE
RESET statement_timeout;
SELECT clock_timestamp() - :'started' < interval '3 s' AS stopped_at_once;
-- waits are interrupted by statement_timeout (and cancel) like requests are
SELECT fail_next('{"action": "status", "status": 200, "headers": {"RateLimit": "limit=2, remaining=0, reset=30"}, "body": "{\"data\": [{\"id\": \"custobj_Paced\", \"name\": \"first page\"}], \"has_more\": true}"}');
ALTER USER MAPPING FOR CURRENT_USER SERVER close_paced OPTIONS (SET api_key 'api_paced_key2');
SET statement_timeout = '1s';
SELECT clock_timestamp() AS started \gset
SELECT count(name) FROM paced_objects WHERE lead_id = :'big';  -- ERROR
RESET statement_timeout;
SELECT clock_timestamp() - :'started' < interval '4 s' AS stopped_promptly;
DROP SERVER close_paced CASCADE;
SELECT emulator_reset();

-- an answer over max_response_bytes is refused
ALTER SERVER close OPTIONS (ADD max_response_bytes '2048');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';  -- ERROR
ALTER SERVER close OPTIONS (DROP max_response_bytes);

-- a hundred failing statements leave memory where it was
SELECT fail_next('{"action": "garbage", "times": 400}');
CREATE PROCEDURE fail_many(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    BEGIN
      PERFORM count(name) FROM close_custom_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
      RAISE EXCEPTION 'the garbage answer was accepted';
    EXCEPTION WHEN fdw_error THEN
      NULL;
    END;
  END LOOP;
END $$;
CALL fail_many(20);
SELECT backend_memory(in_use => false) AS before \gset
CALL fail_many(200);
SELECT backend_memory(in_use => false) - :before < 16384 AS memory_flat;
SELECT emulator_reset();

-- a non-superuser must use a credential of their own, never PUBLIC's
CREATE SERVER close_shared FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR PUBLIC SERVER close_shared OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE shared_objects (id text, lead_id text, name text) SERVER close_shared;
CREATE ROLE regress_plain;
GRANT SELECT ON shared_objects TO regress_plain;
SELECT count(name) FROM shared_objects WHERE lead_id = :'one';
SET ROLE regress_plain;
SELECT count(name) FROM shared_objects WHERE lead_id = :'one';  -- ERROR
-- nor can it see another role's credential
SELECT srvname, usename, umoptions FROM pg_user_mappings ORDER BY 1, 2;
RESET ROLE;
-- and only a superuser may point TLS at a CA bundle file
GRANT USAGE ON FOREIGN DATA WRAPPER close_fdw TO regress_plain;
SET ROLE regress_plain;
CREATE SERVER plain_server FOREIGN DATA WRAPPER close_fdw OPTIONS (ca_file '/etc/ssl/certs/ca-certificates.crt');  -- ERROR
RESET ROLE;
ALTER SERVER close_shared OPTIONS (ADD ca_file 'relative/path.pem');  -- ERROR
-- TLS is verified: https to a server that does not speak it fails
ALTER SERVER close_shared OPTIONS (SET api_url 'https://127.0.0.1:9/api/v1', ADD max_retries '0');
\set VERBOSITY terse
SELECT count(name) FROM shared_objects WHERE lead_id = :'one';  -- ERROR
\set VERBOSITY default
DROP SERVER close_shared CASCADE;
REVOKE USAGE ON FOREIGN DATA WRAPPER close_fdw FROM regress_plain;
DROP ROLE regress_plain;

-- no credential in the server log at any log level, nor in the emulator's log
CREATE TEMP TABLE server_log_size (n bigint);
COPY server_log_size FROM PROGRAM 'wc -c < server.log';
SELECT n AS log_offset FROM server_log_size \gset
SET log_min_messages = debug5;
SET log_min_error_statement = debug5;
-- (the session, credential header included, is rebuilt while logging)
ALTER SERVER close OPTIONS (ADD timeout_ms '30000');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT fail_next('{"action": "status", "status": 401}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
SELECT explain_same('ANALYZE, VERBOSE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF',
                    format('SELECT id FROM close_custom_objects WHERE lead_id = %L', :'one'));
RESET log_min_messages;
RESET log_min_error_statement;
ALTER SERVER close OPTIONS (DROP timeout_ms);
CREATE TEMP TABLE server_log_hits (n int);
SELECT format('COPY server_log_hits FROM PROGRAM %L',
              format('tail -c +%s server.log | grep -c -e api_test_key -e YXBpX3Rlc3Rfa2V5 || true',
                     :log_offset + 1)) AS copy_hits \gset
:copy_hits;
SELECT n AS server_log_lines_with_the_key FROM server_log_hits;
SELECT count(*) AS emulator_log_entries_with_the_key
  FROM emulator_call('GET', '/_emulator/log?format=json') l
 WHERE l LIKE '%api_test_key%' OR l LIKE '%YXBpX3Rlc3Rfa2V5%';
