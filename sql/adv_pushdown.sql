-- adv_pushdown: a query on a foreign table returns what the same query
-- returns on a local copy of its rows, whatever is sent to Close.  Each
-- case compares with the copy and shows what was sent.
\set VERBOSITY terse
SELECT emulator_reset();

-- the requests since the last clear: method and path (a search's body
-- left out), then the log is cleared
CREATE FUNCTION adv_sent() RETURNS TABLE (method text, path text)
LANGUAGE sql AS $$
  SELECT e->>'method', e->>'raw_path' FROM emulator_log_entries() e
$$;

-- 1. Opportunities' listing takes a date range to the microsecond; a
-- timestamptz(0) column shows 12:32:51.376 as 12:32:51, so
-- "<= 12:32:51" keeps it: the range is not sent to the listing as it is
-- (the search that reads instead widens it by a second).
CREATE FOREIGN TABLE adv_opp0 (
  id text, status_id text,
  updated0 timestamptz(0) OPTIONS (field 'date_updated'),
  updated3 timestamptz(3) OPTIONS (field 'date_updated'),
  updated6 timestamptz(6) OPTIONS (field 'date_updated')
) SERVER close OPTIONS (resource 'opportunity');
CREATE TABLE adv_opp0_copy AS SELECT * FROM adv_opp0;
SELECT emulator_clear();
SELECT id, updated0 FROM adv_opp0 WHERE updated0 <= '2020-09-01 12:32:51+00' ORDER BY id;
SELECT id, updated0 FROM adv_opp0_copy WHERE updated0 <= '2020-09-01 12:32:51+00' ORDER BY id;
SELECT id FROM adv_opp0 WHERE updated0 = '2020-09-01 12:32:51+00';
SELECT id FROM adv_opp0_copy WHERE updated0 = '2020-09-01 12:32:51+00';
SELECT id FROM adv_opp0 WHERE updated0 > '2020-09-01 14:49:16+00';
SELECT id FROM adv_opp0_copy WHERE updated0 > '2020-09-01 14:49:16+00';
SELECT method, regexp_replace(path, '\?.*', '') AS path FROM adv_sent();
-- a column keeping the microseconds still reads the listing, with the range
SELECT id FROM adv_opp0 WHERE updated6 <= '2020-09-01 12:32:51.376+00' ORDER BY id;
SELECT * FROM adv_sent();
EXPLAIN (COSTS OFF) SELECT id FROM adv_opp0 WHERE updated3 >= '2020-09-01 12:32:51.376+00';
EXPLAIN (COSTS OFF) SELECT id FROM adv_opp0 WHERE updated0 >= '2020-09-01 12:32:51+00' AND status_id = 'stat_Won0000000000000000000000000000000000000000';

-- 2. ORDER BY date_created USING an operator of another btree operator
-- class (here newest first) is not Close's date_created order: sorted and
-- cut here, never by the search
CREATE FUNCTION adv_rev_cmp(timestamptz, timestamptz) RETURNS int
  LANGUAGE sql IMMUTABLE AS 'SELECT timestamptz_cmp($2, $1)';
CREATE FUNCTION adv_rev_lt(timestamptz, timestamptz) RETURNS bool
  LANGUAGE sql IMMUTABLE AS 'SELECT $1 > $2';
CREATE FUNCTION adv_rev_le(timestamptz, timestamptz) RETURNS bool
  LANGUAGE sql IMMUTABLE AS 'SELECT $1 >= $2';
CREATE FUNCTION adv_rev_ge(timestamptz, timestamptz) RETURNS bool
  LANGUAGE sql IMMUTABLE AS 'SELECT $1 <= $2';
CREATE FUNCTION adv_rev_gt(timestamptz, timestamptz) RETURNS bool
  LANGUAGE sql IMMUTABLE AS 'SELECT $1 < $2';
CREATE OPERATOR <<< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = adv_rev_lt);
CREATE OPERATOR <<<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = adv_rev_le);
CREATE OPERATOR >>>= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = adv_rev_ge);
CREATE OPERATOR >>> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = adv_rev_gt);
CREATE OPERATOR CLASS adv_rev_ops FOR TYPE timestamptz USING btree AS
  OPERATOR 1 <<<, OPERATOR 2 <<<=, OPERATOR 3 =, OPERATOR 4 >>>=, OPERATOR 5 >>>,
  FUNCTION 1 adv_rev_cmp(timestamptz, timestamptz);
CREATE TABLE adv_objects_copy AS SELECT * FROM close_custom_objects;
SELECT emulator_clear();
SELECT name, date_created FROM close_custom_objects ORDER BY date_created USING <<< LIMIT 3;
SELECT name, date_created FROM adv_objects_copy ORDER BY date_created USING <<< LIMIT 3;
-- one search, neither sorted nor cut by Close
SELECT method, path, body->'sort' AS sort, body->'results_limit' AS results_limit
  FROM (SELECT e->>'method' AS method, e->>'path' AS path, e->'body' AS body
          FROM emulator_log_entries() e) s;
-- the type's own order is still Close's
EXPLAIN (COSTS OFF) SELECT name FROM close_custom_objects ORDER BY date_created LIMIT 3;
EXPLAIN (COSTS OFF) SELECT name FROM close_custom_objects ORDER BY date_created USING <<< LIMIT 3;
