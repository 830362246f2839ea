-- cancel: statement_timeout, pg_cancel_backend() and timeout_ms stop a
-- hanging request promptly with the usual errors.
\set VERBOSITY terse
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FUNCTION hang_next() RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "hang", "seconds": 60, "times": 1}');
$$;

-- statement_timeout
SELECT hang_next();
SET statement_timeout = '1s';
SELECT clock_timestamp() AS started \gset
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
RESET statement_timeout;
SELECT clock_timestamp() - :'started' < interval '4 s' AS stopped_promptly;

-- pg_cancel_backend() from another session (through dblink)
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  current_setting('unix_socket_directories'), current_setting('port'), current_database(),
  current_user));
SELECT hang_next();
-- (the log still holds the request hung above: start from an empty one)
SELECT emulator_clear();
SELECT dblink_send_query('other', format(
  'SELECT count(name) FROM close_custom_objects WHERE lead_id = %L', :'one'));
-- wait until the request has reached the emulator
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN (SELECT count(*) FROM emulator_call('GET', '/_emulator/log')) > 0;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT clock_timestamp() AS started \gset
SELECT pg_cancel_backend(pid) FROM pg_stat_activity
 WHERE query LIKE 'SELECT count(name) FROM close_custom_objects WHERE lead_id%' AND pid <> pg_backend_pid();
SELECT * FROM dblink_get_result('other') AS t(n bigint);  -- ERROR
SELECT * FROM dblink_get_result('other') AS t(n bigint);  -- the end of that query
SELECT clock_timestamp() - :'started' < interval '3 s' AS cancelled_promptly;
-- the cancelled session goes on working
SELECT * FROM dblink('other', format(
  'SELECT count(name) FROM close_custom_objects WHERE lead_id = %L', :'one')) AS t(n bigint);
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;

-- the server's timeout_ms
ALTER SERVER close OPTIONS (ADD timeout_ms '500');
SELECT hang_next();
SELECT clock_timestamp() AS started \gset
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
SELECT clock_timestamp() - :'started' < interval '3.5 s' AS timed_out_promptly;
ALTER SERVER close OPTIONS (DROP timeout_ms);
SELECT emulator_reset();
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';

-- a cancel while a lead's next round of pages is in flight and taken in as
-- the rows of the round before are read: stopped promptly, the round's
-- transfers dropped, and the session goes on with the same lead
SELECT emulator_call('POST', '/_emulator/objects', '{"lead_id": "lead_Plain20000000000000000000000000000000000000", "custom_object_type_id": "cotype_1h5m6uHM9BZOpwVhyRJb4Y", "count": 40, "name_prefix": "Pump"}') IS NOT NULL AS created;
\set api_url `echo "$CLOSE_API_URL"`
CREATE SERVER cancel_pages FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '3');
CREATE USER MAPPING FOR CURRENT_USER SERVER cancel_pages OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE cancel_objects (id text, lead_id text, name text) SERVER cancel_pages;
-- (page 1 at _skip=0, the first round at 2..16, the next at 18..32)
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "query_contains": "_skip=20&", "action": "hang", "seconds": 60, "times": 1}');
SELECT emulator_clear();
SET statement_timeout = '1s';
SELECT clock_timestamp() AS started \gset
SELECT count(name) FROM cancel_objects WHERE lead_id = 'lead_Plain20000000000000000000000000000000000000';  -- ERROR
RESET statement_timeout;
SELECT clock_timestamp() - :'started' < interval '4 s' AS stopped_promptly;
-- the hung request was sent in the second round, before its rows were needed
SELECT count(*) AS sent, count(*) FILTER (WHERE line LIKE '%_skip=20&%') AS hung
  FROM emulator_requests() AS line;
SELECT count(name), count(DISTINCT id) FROM cancel_objects
 WHERE lead_id = 'lead_Plain20000000000000000000000000000000000000';
SET client_min_messages = warning;
DROP SERVER cancel_pages CASCADE;
RESET client_min_messages;
SELECT emulator_reset();
