-- many_connections: several backends share one Close API key.  A 429 is
-- back-pressure: each request waits as long as rate_limit_wait_ms allows,
-- so six backends listing at once under a 20 requests/s limit all finish.
-- The cross-backend behaviour below needs the state in shared memory:
-- close_fdw preloaded, or on PostgreSQL 17 and later a DSM segment
-- (close_fdw.shared_state says which).  On 13 to 16 without preload there
-- is none, and this file stops here (shared f, the rest missing).
LOAD 'close_fdw';
SELECT current_setting('close_fdw.shared_state') =
       CASE WHEN current_setting('shared_preload_libraries') ~ 'close_fdw' THEN 'preloaded'
            WHEN current_setting('server_version_num')::int >= 170000 THEN 'dsm'
            ELSE 'backend' END AS state_as_expected,
       current_setting('close_fdw.shared_state') <> 'backend' AS shared
\gset
SELECT :'state_as_expected' AS state_as_expected, :'shared' AS shared;
\if :shared
\else
\quit
\endif

SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT emulator_reset();
-- ten leads with two objects each
SELECT sum((j->>'created')::int) AS created
  FROM generate_series(1, 10) i,
       LATERAL (SELECT line::jsonb AS j FROM emulator_call('POST', '/_emulator/objects',
         json_build_object('lead_id', 'lead_Many' || lpad(i::text, 39, '0'),
                           'custom_object_type_id', 'cotype_Device0000000000000000',
                           'count', 2, 'name_prefix', 'Many')::text) AS line) r;
CREATE TABLE many_leads AS
  SELECT 'lead_Many' || lpad(i::text, 39, '0') AS id FROM generate_series(1, 10) i;
-- n backends, each listing the ten leads at once; settings go into options
CREATE FUNCTION run_backends(n int, settings text DEFAULT '')
RETURNS TABLE (backend int, objects bigint) LANGUAGE plpgsql AS $$
DECLARE
  conninfo text := format('dbname=%s host=%s port=%s user=%s options=%L',
                          current_database(),
                          split_part(current_setting('unix_socket_directories'), ',', 1),
                          current_setting('port'), current_user, settings);
BEGIN
  FOR i IN 1..n LOOP
    PERFORM dblink_connect('backend' || i, conninfo);
  END LOOP;
  FOR i IN 1..n LOOP
    PERFORM dblink_send_query('backend' || i,
      'SELECT count(name) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM many_leads))');
  END LOOP;
  FOR i IN 1..n LOOP
    BEGIN
      RETURN QUERY SELECT i, r.n FROM dblink_get_result('backend' || i) AS r(n bigint);
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE 'backend %: % (%)', i, SQLERRM, SQLSTATE;
    END;
  END LOOP;
  FOR i IN 1..n LOOP
    PERFORM dblink_disconnect('backend' || i);
  END LOOP;
END $$;

-- A limit of 2 requests per 100 ms (20/s), whose slots free nearly
-- continuously.  Each backend pacing itself alone (as without preload):
-- many 429s, but every listing completes.
SELECT emulator_call('POST', '/_emulator/config', '{"rate_limit_per_sec": 2, "rate_limit_window_ms": 100}');
SELECT emulator_clear();
SELECT * FROM run_backends(6, '-c close_fdw.shared_pacing=off');
SELECT count(*) FILTER (WHERE e->>'status' = '200') AS answered
  FROM emulator_log_entries() e;

-- Paced together (shared memory): one budget for the key, the backends
-- wait for it instead of sending into a 429.  (Once the budget is known:
-- the first answer tells it.)
SELECT count(name) FROM close_custom_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
SELECT emulator_clear();
SELECT * FROM run_backends(6);
SELECT count(*) FILTER (WHERE e->>'status' = '200') AS answered,
       count(*) FILTER (WHERE e->>'status' = '429') <= 1 AS at_most_2_percent_refused
  FROM emulator_log_entries() e;

SELECT emulator_reset();
DROP FUNCTION run_backends(int, text);
DROP TABLE many_leads;
