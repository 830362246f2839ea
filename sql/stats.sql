-- stats: close_fdw_stats counts, per server and endpoint group, what was
-- sent and what came back, across backends; close_fdw_stats_reset()
-- starts it again.
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

\set big 'lead_Big0000000000000000000000000000000000000000'
SELECT emulator_reset();
SELECT close_fdw_stats_reset();
SELECT count(*) AS rows_after_reset FROM close_fdw_stats;

-- a scripted run: a listing of many pages, eight leads at once, a read by
-- id, a search; one 429 and one 503 on the way
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 429, "times": 1, "headers": {"RateLimit": "limit=100, remaining=0, reset=0.2"}}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 503, "times": 1}');
SELECT count(name) FROM close_custom_objects
 WHERE lead_id IN ('lead_Mixed00000000000000000000000000000000000000',
                   'lead_One0000000000000000000000000000000000000000',
                   'lead_Empty00000000000000000000000000000000000000',
                   'lead_Plain10000000000000000000000000000000000000',
                   'lead_Plain20000000000000000000000000000000000000',
                   'lead_Plain30000000000000000000000000000000000000',
                   'lead_Plain40000000000000000000000000000000000000',
                   'lead_Plain50000000000000000000000000000000000000');
SELECT name FROM close_custom_objects WHERE id = 'custobj_MixedAlpha000000000000000000000000000000000';
SELECT count(*) FROM close_custom_objects WHERE name = 'Plain 1.1';
-- and one listing from another backend
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT * FROM dblink(format('dbname=%s host=%s port=%s user=%s', current_database(),
                            split_part(current_setting('unix_socket_directories'), ',', 1),
                            current_setting('port'), current_user),
                     $$SELECT count(name) FROM close_custom_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000'$$)
       AS t(n bigint);

-- the view agrees with the emulator's request log, method by method
CREATE TEMP TABLE request_log AS SELECT e FROM emulator_log_entries() e;
WITH fdw AS (
  SELECT split_part(endpoint_group, ' ', 1) AS method, sum(requests) AS requests,
         sum(rate_limited) AS rate_limited, sum(server_errors) AS server_errors,
         sum(retries) AS retries
    FROM close_fdw_stats WHERE server = 'close' GROUP BY 1),
emu AS (
  SELECT e->>'method' AS method, count(*) AS requests,
         count(*) FILTER (WHERE e->>'status' = '429') AS rate_limited,
         count(*) FILTER (WHERE (e->>'status')::int >= 500) AS server_errors
    FROM request_log GROUP BY 1)
SELECT method, emu.requests, fdw.requests = emu.requests AS requests_match,
       emu.rate_limited, fdw.rate_limited = emu.rate_limited AS rate_limited_match,
       emu.server_errors, fdw.server_errors = emu.server_errors AS server_errors_match,
       fdw.retries
  FROM emu FULL JOIN fdw USING (method) ORDER BY method;
-- the 429 was waited out (its reset, 0.2 s), and bytes came in
SELECT sum(waits) >= 1 AS waited, sum(wait_ms) >= 200 AS waited_the_reset,
       sum(bytes_received) > 10000 AS bytes_counted,
       bool_and(since <= now()) AS since_set
  FROM close_fdw_stats WHERE server = 'close';

-- reset: only what comes after counts
SELECT close_fdw_stats_reset();
SELECT count(name) FROM close_custom_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
SELECT sum(requests) AS requests, sum(retries) AS retries FROM close_fdw_stats;
-- resetting is not for everyone
CREATE ROLE regress_stats_reader;
SET ROLE regress_stats_reader;
SELECT close_fdw_stats_reset();  -- ERROR
SELECT count(*) >= 0 AS can_read FROM close_fdw_stats;
RESET ROLE;
DROP ROLE regress_stats_reader;
SELECT emulator_reset();
