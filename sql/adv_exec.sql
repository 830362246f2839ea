-- adv_exec: a scan's life as the executor drives it: stopped early by a
-- LIMIT with a round of pages in flight, rescanned, then the next
-- statement.  EXPLAIN ANALYZE's request count is what reached Close.
\set VERBOSITY terse
\set api_url `echo "$CLOSE_API_URL"`
\set big 'lead_Big0000000000000000000000000000000000000000'
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
-- pages of 10: lead_Big's 250 objects are 28 pages, rounds of 8
CREATE SERVER adv_exec FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '10');
CREATE USER MAPPING FOR CURRENT_USER SERVER adv_exec OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE adv_exec_objects (id text, lead_id text, name text,
  custom_object_type_id text)
  SERVER adv_exec;

-- "Close Requests" of an EXPLAIN ANALYZE, and the requests Close received
-- meanwhile (waiting up to 5 s for those still travelling, and a moment
-- more for any past the count); the log is cleared
CREATE FUNCTION requests_counted_and_logged(query text,
  OUT counted int, OUT logged int) LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  PERFORM emulator_clear();
  FOR line IN SELECT * FROM explain_same('ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF', query) LOOP
    IF line ~ 'Close Requests: ' THEN
      counted := coalesce(counted, 0) + substring(line from 'Close Requests: (\d+)')::int;
    END IF;
  END LOOP;
  FOR i IN 1..50 LOOP
    EXIT WHEN (SELECT count(*) FROM emulator_call('GET', '/_emulator/log')) >= counted;
    PERFORM pg_sleep(0.1);
  END LOOP;
  PERFORM pg_sleep(0.2);
  logged := (SELECT count(*) FROM emulator_requests());
END $$;

-- a LIMIT met on the lead's second page: the round after the 8 pages read
-- ahead (pages 10 to 17) is in flight, and is given up unread; EXPLAIN
-- counts only the requests that went out (before: 17 counted, 9 received)
SELECT name FROM adv_exec_objects WHERE lead_id = :'big' LIMIT 12;
SELECT counted = logged AS counts_what_reached_close, counted >= 9 AS at_least_the_pages_read
  FROM requests_counted_and_logged(format(
    'SELECT name FROM adv_exec_objects WHERE lead_id = %L LIMIT 12', :'big'));
-- met further on, with the round partly out
SELECT counted = logged AS counts_what_reached_close, counted >= 17 AS at_least_the_pages_read
  FROM requests_counted_and_logged(format(
    'SELECT name FROM adv_exec_objects WHERE lead_id = %L LIMIT 95', :'big'));
-- the next statement on the connection reads the whole lead, from Close,
-- with no answer of the round given up: 1 + 8 x ceil(27 / 8) requests
SELECT count(*), count(DISTINCT id), min(name), max(name)
  FROM adv_exec_objects WHERE lead_id = :'big';
SELECT count(*) AS requests, count(DISTINCT r) AS distinct_requests
  FROM emulator_requests() r;

-- a parameterized scan stopped by a LIMIT for each outer row, then rescanned
-- for the next: each loop's rows, and the requests counted as received
CREATE TEMP TABLE adv_exec_outer (n int, lead text, k int);
INSERT INTO adv_exec_outer VALUES (1, :'big', 12), (2, :'one', 5), (3, :'big', 95),
  (4, NULL, 3), (5, :'big', 250), (6, :'big', 3);
ANALYZE adv_exec_outer;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
SELECT o.n, s.c, s.d, s.mx
  FROM adv_exec_outer o, LATERAL (
    SELECT count(*) c, count(DISTINCT id) d, max(name) mx
      FROM (SELECT id, name FROM adv_exec_objects c WHERE c.lead_id = o.lead LIMIT o.k) x) s
 ORDER BY o.n;
SELECT counted = logged AS counts_what_reached_close
  FROM requests_counted_and_logged(
    'SELECT o.n, s.c FROM adv_exec_outer o, LATERAL (SELECT count(*) c FROM (SELECT id FROM adv_exec_objects c WHERE c.lead_id = o.lead LIMIT o.k) x) s');
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;

-- a search cut into parts, stopped by a LIMIT (a local filter keeps it
-- from Close) while parts' next pages are out: those that went out count
-- (before: 11 counted, 17 received)
SELECT emulator_call('POST', '/_emulator/objects',
  '{"lead_id": "lead_Empty00000000000000000000000000000000000000", "custom_object_type_id": "cotype_1h5m6uHM9BZOpwVhyRJb4Y", "count": 1500, "name_prefix": "Gen"}');
SELECT l, counted = logged AS counts_what_reached_close
  FROM generate_series(550, 950, 400) l,
       LATERAL requests_counted_and_logged(format(
         'SELECT id FROM adv_exec_objects WHERE custom_object_type_id = %L AND lower(name) <> %L LIMIT %s',
         'cotype_1h5m6uHM9BZOpwVhyRJb4Y', 'x', l)) r;
-- and the next statement reads every one of them
SELECT count(*), count(DISTINCT id) FROM adv_exec_objects
 WHERE custom_object_type_id = 'cotype_1h5m6uHM9BZOpwVhyRJb4Y' AND lower(name) <> 'x';

DROP TABLE adv_exec_outer;
DROP FUNCTION requests_counted_and_logged(text);
DROP SERVER adv_exec CASCADE;
SELECT emulator_reset();
