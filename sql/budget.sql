-- budget: close_fdw.max_requests (any user) and close_fdw.max_requests_ceiling
-- (superuser only) stop a statement before it sends one request to read too
-- many, with SQLSTATE 54000; writes are never cut off; EXPLAIN shows the
-- planned number of requests.
\set VERBOSITY default
\set api_url `echo "$CLOSE_API_URL"`
\set big 'lead_Big0000000000000000000000000000000000000000'
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
SELECT current_user AS superuser \gset

-- small pages, one request at a time: lead_Big's 250 objects are 28 pages
-- (pages overlap by one object)
CREATE SERVER close_small FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '10', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER close_small OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE small_objects (id text, lead_id text, name text, custom_object_type_id text)
  SERVER close_small;
-- the same pages, eight requests at once
CREATE SERVER close_wide FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '10', max_concurrency '8');
CREATE USER MAPPING FOR CURRENT_USER SERVER close_wide OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE wide_objects (id text, lead_id text, name text) SERVER close_wide;

SHOW close_fdw.max_requests;
SHOW close_fdw.max_requests_ceiling;

-- no limit by default
SELECT count(name) FROM small_objects WHERE lead_id = :'big';
SELECT count(*) FROM emulator_requests();

-- exactly the budget: the statement runs
SET close_fdw.max_requests = 28;
SELECT count(name) FROM small_objects WHERE lead_id = :'big';
SELECT count(*) FROM emulator_requests();
-- one less: it stops before sending request 28
SET close_fdw.max_requests = 27;
SELECT count(name) FROM small_objects WHERE lead_id = :'big';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM emulator_requests();
-- a search says which condition would make it cheaper
SET close_fdw.max_requests = 1;
SELECT count(name) FROM close_custom_objects WHERE name <> 'x';  -- ERROR
SELECT count(*) FROM emulator_requests();

-- requests sent together never overshoot: the pages fetched ahead of a
-- lead and the first pages of several leads are trimmed to what is left
SET close_fdw.max_requests = 5;
SELECT count(name) FROM wide_objects WHERE lead_id = :'big';  -- ERROR
SELECT count(*) FROM emulator_requests();
SET close_fdw.max_requests = 3;
SELECT count(name) FROM wide_objects
 WHERE lead_id IN ('lead_Plain10000000000000000000000000000000000000', 'lead_Plain20000000000000000000000000000000000000',
                   'lead_Plain30000000000000000000000000000000000000', 'lead_Plain40000000000000000000000000000000000000',
                   'lead_Plain50000000000000000000000000000000000000');  -- ERROR
SELECT count(*) FROM emulator_requests();
SET close_fdw.max_requests = 5;
SELECT count(name) FROM wide_objects
 WHERE lead_id IN ('lead_Plain10000000000000000000000000000000000000', 'lead_Plain20000000000000000000000000000000000000',
                   'lead_Plain30000000000000000000000000000000000000', 'lead_Plain40000000000000000000000000000000000000',
                   'lead_Plain50000000000000000000000000000000000000');
SELECT count(*) FROM emulator_requests();

-- a search cut into parts read concurrently (1,200 more objects): the
-- first page, the probe for the newest object, then only two parts
RESET close_fdw.max_requests;
SELECT count(*) > 0 AS created FROM emulator_call('POST', '/_emulator/objects', format(
  '{"lead_id": "%s", "custom_object_type_id": "%s", "count": 1200, "name_prefix": "Bulk"}',
  rpad('lead_Bulk', 48, '0'), rpad('cotype_Device', 29, '0')));
SET close_fdw.max_requests = 4;
SELECT count(name) FROM close_custom_objects WHERE name <> 'x';  -- ERROR
SELECT count(*) FROM emulator_requests();
RESET close_fdw.max_requests;
SELECT count(name) FROM close_custom_objects WHERE name <> 'x';
SELECT count(*) > 4 AS more_than_four FROM emulator_requests();
SELECT emulator_reset();

-- a retry is a request
SET close_fdw.max_requests = 1;
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 503, "times": 1}');
SELECT count(name) FROM small_objects WHERE lead_id = :'one';  -- ERROR
SELECT count(*) FROM emulator_requests();
SELECT emulator_reset();

-- a cursor is one statement across its FETCHes (pages of 10 objects
-- overlapping by one: 40 rows need 5)
SET close_fdw.max_requests = 4;
BEGIN;
DECLARE c CURSOR FOR SELECT name FROM small_objects WHERE lead_id = :'big';
FETCH 10 FROM c;
FETCH 10 FROM c;
-- another statement in between has a budget of its own
SELECT count(name) FROM small_objects WHERE lead_id = :'one';
FETCH 10 FROM c;
FETCH 10 FROM c;  -- ERROR
ROLLBACK;
SELECT count(*) FROM emulator_requests();

-- answers the statement already has are not requests: a nested loop asks
-- for each lead once
SET close_fdw.max_requests = 1;
SELECT v.n, s.name FROM (VALUES (1, :'one'), (2, :'one'), (3, :'one')) v(n, lead)
  JOIN small_objects s ON s.lead_id = v.lead ORDER BY v.n;
SELECT * FROM emulator_requests();

-- writes are never cut off
SET close_fdw.max_requests = 1;
INSERT INTO small_objects (lead_id, name, custom_object_type_id)
  SELECT :'one', 'Budget ' || i, 'cotype_Device0000000000000000' FROM generate_series(1, 3) i;
SELECT count(*) FROM emulator_requests();
-- a statement that writes reads everything first (see "Reading and
-- writing the same table"): over its budget, it stops before any write
UPDATE small_objects SET name = name || ' updated'
 WHERE lead_id IN (:'one', 'lead_Plain10000000000000000000000000000000000000') AND name LIKE 'Budget%';
SELECT count(*) FROM emulator_requests();
SET close_fdw.max_requests = 10;
SELECT name FROM small_objects WHERE lead_id = :'one' ORDER BY name;
SELECT emulator_reset();

-- EXPLAIN shows the planned requests (with costs), and sends none
RESET close_fdw.max_requests;
SELECT line FROM explain_same('COSTS ON', $$SELECT * FROM small_objects
  WHERE id IN ('custobj_A000000000000000000000000000000000000000000', 'custobj_B000000000000000000000000000000000000000000')$$) line
 WHERE line ~ 'Close Requests';
SELECT line FROM explain_same('COSTS ON', $$SELECT * FROM small_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000'$$) line
 WHERE line ~ 'Close Requests';
SELECT line FROM explain_same('COSTS ON', $$SELECT * FROM close_custom_objects LIMIT 450$$) line
 WHERE line ~ 'Close Requests';
SELECT count(*) FROM emulator_requests();

-- EXPLAIN ANALYZE shows the time spent waiting for the rate limit
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 429, "headers": {"RateLimit": "limit=100, remaining=0, reset=0.6"}, "times": 1}');
SELECT regexp_replace(line, '[0-9.]+ ms', 'N ms') AS line,
       (regexp_match(line, 'Close Wait: ([0-9.]+)'))[1]::numeric >= 500 AS waited_the_reset
  FROM explain_same('ANALYZE, COSTS OFF, SUMMARY OFF, BUFFERS OFF',
                    $$SELECT * FROM small_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000'$$) line
 WHERE line ~ 'Close (Requests|Retries|Wait)';
SELECT emulator_reset();

-- a backend waiting on Close shows it in pg_stat_activity ("Extension";
-- on PostgreSQL 17 and later the event is named "CloseHttp")
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  current_setting('unix_socket_directories'), current_setting('port'), current_database(),
  current_user));
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "hang", "seconds": 60, "times": 1}');
SELECT dblink_send_query('other',
  'SELECT count(name) FROM close_custom_objects WHERE lead_id = ''lead_One0000000000000000000000000000000000000000''');
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN (SELECT count(*) FROM emulator_call('GET', '/_emulator/log')) > 0;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT wait_event_type, wait_event IN ('Extension', 'CloseHttp') AS close_event
  FROM pg_stat_activity
 WHERE query LIKE 'SELECT count(name) FROM close_custom_objects WHERE lead_id%' AND pid <> pg_backend_pid();
-- released: the connection closes, the GET is sent again
SELECT count(*) FROM emulator_call('DELETE', '/_emulator/faults');
SELECT * FROM dblink_get_result('other') AS t(n bigint);
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;
SELECT emulator_reset();

-- an administrator's ceiling: the role cannot lift it
RESET close_fdw.max_requests;
CREATE ROLE regress_budget LOGIN;
GRANT USAGE ON FOREIGN SERVER close_small TO regress_budget;
GRANT SELECT ON small_objects TO regress_budget;
CREATE USER MAPPING FOR regress_budget SERVER close_small OPTIONS (api_key 'api_alice_key');
ALTER ROLE regress_budget SET close_fdw.max_requests_ceiling = 3;
\c - regress_budget
SHOW close_fdw.max_requests_ceiling;
-- (close_fdw is loaded by the first query that uses it)
SELECT count(name) FROM small_objects WHERE lead_id = 'no lead';
SHOW close_fdw.max_requests_ceiling;
SET close_fdw.max_requests_ceiling = 0;  -- ERROR
SET close_fdw.max_requests = 100;
SELECT count(name) FROM small_objects WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';  -- ERROR
-- a smaller budget of the role's own applies
SET close_fdw.max_requests = 2;
SELECT count(name) FROM small_objects WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';  -- ERROR
\c - :superuser
SELECT count(*) FROM emulator_requests();

DROP USER MAPPING FOR regress_budget SERVER close_small;
REVOKE ALL ON small_objects FROM regress_budget;
REVOKE ALL ON FOREIGN SERVER close_small FROM regress_budget;
DROP ROLE regress_budget;
DROP SERVER close_small CASCADE;
DROP SERVER close_wide CASCADE;
SELECT emulator_reset();
