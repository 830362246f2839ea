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
SELECT clock_timestamp() - :'started' < interval '2.5 s' AS stopped_promptly;

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
SELECT clock_timestamp() - :'started' < interval '1.5 s' AS cancelled_promptly;
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
SELECT clock_timestamp() - :'started' < interval '2 s' AS timed_out_promptly;
ALTER SERVER close OPTIONS (DROP timeout_ms);
SELECT emulator_reset();
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
