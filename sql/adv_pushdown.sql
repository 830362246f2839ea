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

-- 3. Many conditions, each compared with the local copy: the rows that
-- match (ids) must be the same, whatever was pushed.  Lists the
-- conditions whose rows differ: none.
CREATE FUNCTION adv_differs(ftable text, ltable text, conds text[])
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  c text;
  f text[];
  l text[];
BEGIN
  FOREACH c IN ARRAY conds LOOP
    EXECUTE format('SELECT array_agg(id ORDER BY id) FROM %s WHERE %s', ftable, c) INTO f;
    EXECUTE format('SELECT array_agg(id ORDER BY id) FROM %s WHERE %s', ltable, c) INTO l;
    IF f IS DISTINCT FROM l THEN
      RETURN NEXT c;
    END IF;
  END LOOP;
END $$;
CREATE FOREIGN TABLE adv_pd_subs (
  id text, lead_id text, name text, date_created timestamptz,
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  amount_r numeric(20,0) OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  start_date date OPTIONS (field 'custom.cf_SubscriptionStart00000000000000000000000000'),
  renewed_at timestamptz OPTIONS (field 'custom.cf_SubscriptionRenewed000000000000000000000000'),
  renewed0 timestamp(0) OPTIONS (field 'custom.cf_SubscriptionRenewed000000000000000000000000'),
  renewed_d date OPTIONS (field 'custom.cf_SubscriptionRenewed000000000000000000000000'),
  status text OPTIONS (field 'custom.cf_cSh3fWT3rEJ1BFSezme2YAG6bPrZV5wUWKKrW4iN19g'),
  labels text[] OPTIONS (field 'custom.cf_SubscriptionLabels0000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
INSERT INTO adv_pd_subs (lead_id, name, plan, amount, start_date, renewed_at, status, labels) VALUES
  ('lead_Mixed00000000000000000000000000000000000000', 'P1', 'gold', 0, '2021-03-14', '2021-03-15 10:30:00.5+00', 'active', '{a}'),
  ('lead_Mixed00000000000000000000000000000000000000', 'P2', 'GOLD', 12.4999, '2021-03-16', '2021-03-15 10:29:59.9+00', 'paused', '{}'),
  ('lead_Mixed00000000000000000000000000000000000000', 'P3', 'Gold ', 12.5, '2021-01-01', '2021-03-15 23:30:00-05', NULL, NULL),
  ('lead_Mixed00000000000000000000000000000000000000', 'P5', 'Göld', -5, '2021-03-15', '1999-01-01 00:00:00+00', 'active', NULL),
  ('lead_Mixed00000000000000000000000000000000000000', 'P6', 'gold%_x', 0.0001, NULL, NULL, 'paused', '{a,a}'),
  ('lead_Plain20000000000000000000000000000000000000', 'P7', 'GÖLD', 9007199254740993, '2021-03-15', '2021-03-15 00:00:00+00', 'active', NULL),
  ('lead_Plain20000000000000000000000000000000000000', 'P8', NULL, 42.000, '2021-03-15', '2021-03-15 10:30:00+00', 'active', NULL);
CREATE TABLE adv_pd_subs_copy AS SELECT * FROM adv_pd_subs;
SELECT count(*) FROM adv_pd_subs_copy;
SET TimeZone = 'Pacific/Kiritimati';
SELECT * FROM adv_differs('adv_pd_subs', 'adv_pd_subs_copy', ARRAY[
  $c$plan = 'Gold'$c$, $c$plan = 'gold'$c$, $c$plan = 'Gold '$c$, $c$plan = ''$c$, $c$plan = 'Göld'$c$,
  $c$plan <> 'Gold'$c$, $c$plan = 'Gold' COLLATE "C"$c$, $c$plan IN ('Gold', 'GOLD', NULL)$c$,
  $c$plan NOT IN ('Gold')$c$, $c$plan = ANY (ARRAY['gold', 'gold'])$c$, $c$plan IS NULL$c$,
  $c$plan IS DISTINCT FROM 'Gold'$c$, $c$plan LIKE 'gold\%\_x'$c$, $c$plan ILIKE 'gold%'$c$,
  $c$NOT (plan = 'Gold' OR amount > 40)$c$, $c$plan = 'Gold' OR amount > 40$c$,
  $c$amount = 12.5$c$, $c$amount >= 12.5$c$, $c$amount > 12.4999$c$, $c$amount <= -0$c$,
  $c$amount = 9007199254740993$c$, $c$amount > 9007199254740992$c$, $c$amount = 'NaN'$c$,
  $c$amount < 'NaN'$c$, $c$amount BETWEEN SYMMETRIC 42 AND 12$c$, $c$amount = ANY ('{42,NULL}')$c$,
  $c$amount > 41::int8$c$, $c$amount_r = 13$c$, $c$amount_r >= 13$c$, $c$amount_r <= 12$c$, $c$amount_r = 0$c$,
  $c$start_date = '2021-03-15'$c$, $c$start_date > '2021-03-15'$c$, $c$start_date <= '2020-12-31'$c$,
  $c$start_date < 'infinity'$c$, $c$start_date = 'infinity'$c$,
  $c$renewed_at = '2021-03-15 10:30:00+00'$c$, $c$renewed_at > '2021-03-15 10:30:00+00'$c$,
  $c$renewed_at <= '2021-03-15 10:29:59.9+00'$c$, $c$renewed_at < '2021-03-16'$c$, $c$renewed_at >= '2021-03-16'$c$,
  $c$renewed_at < 'infinity'$c$, $c$renewed0 = '2021-03-15 10:30:01'$c$, $c$renewed0 < '2021-03-15 10:30:00'$c$,
  $c$renewed0 >= '2021-03-16 04:30:00'$c$, $c$renewed_d = '2021-03-15'$c$, $c$renewed_d > '2021-03-15'$c$,
  $c$renewed_d < '2021-03-16'$c$,
  $c$status = 'active'$c$, $c$status <> 'active'$c$, $c$NOT status = 'active'$c$,
  $c$'a' = ANY (labels)$c$, $c$labels = '{}'$c$,
  $c$id = 'custobj_MixedAlpha000000000000000000000000000000000'$c$,
  $c$id = 'CUSTOBJ_MixedAlpha000000000000000000000000000000000'$c$,
  $c$id <> 'custobj_MixedAlpha000000000000000000000000000000000'$c$,
  $c$id = ANY (ARRAY['custobj_MixedAlpha000000000000000000000000000000000', 'custobj_MixedAlpha000000000000000000000000000000000', NULL])$c$,
  $c$id = ANY ('{}')$c$, $c$id = 'custobj_MixedGamma000000000000000000000000000000000'$c$,
  $c$lead_id = 'lead_Mixed00000000000000000000000000000000000000'$c$,
  $c$lead_id IN ('lead_Mixed00000000000000000000000000000000000000', 'lead_Mixed00000000000000000000000000000000000000', NULL)$c$,
  $c$lead_id <> 'lead_Mixed00000000000000000000000000000000000000'$c$,
  $c$name = 'p1'$c$, $c$name = 'P1'$c$]);
RESET TimeZone;
CREATE FOREIGN TABLE adv_opps (
  id text, lead_id text, status_id text, status_type text, contact_id text, user_id text,
  value bigint, date_won date, date_created timestamptz, date_updated timestamptz,
  seats numeric OPTIONS (field 'custom.cf_OppSeats00000000000000000000000000000000000'),
  source text OPTIONS (field 'custom.cf_OppSource0000000000000000000000000000000000')
) SERVER close OPTIONS (resource 'opportunity');
CREATE TABLE adv_opps_copy AS SELECT * FROM adv_opps;
SELECT * FROM adv_differs('adv_opps', 'adv_opps_copy', ARRAY[
  $c$status_id = 'stat_Won0000000000000000000000000000000000000000'$c$,
  $c$status_id <> 'stat_Won0000000000000000000000000000000000000000'$c$,
  $c$status_id = ANY ('{}')$c$, $c$status_type = 'Won'$c$, $c$status_type <> 'won'$c$,
  $c$NOT (status_type = 'won' OR status_type = 'lost')$c$,
  $c$contact_id <> 'cont_Mixed00000000000000000000000000000000000000'$c$,
  $c$user_id <> 'user_Alice00000000000000000000000000000000000000'$c$,
  $c$value >= 5000$c$, $c$NOT (value > 5000)$c$, $c$date_won > '2020-09-15'$c$,
  $c$date_updated >= '2020-09-01 12:32:51.376+00'$c$, $c$date_updated > '2020-09-01 12:32:51.376+00'$c$,
  $c$date_updated > '2020-01-01' AND status_id = 'stat_Won0000000000000000000000000000000000000000'$c$,
  $c$date_created < '2020-09-01 13:00+00' AND status_type IN ('won', 'lost', NULL)$c$,
  $c$seats > 5$c$, $c$source = 'referral'$c$,
  $c$lead_id = 'lead_Plain10000000000000000000000000000000000000'$c$,
  $c$lead_id <> 'lead_Plain10000000000000000000000000000000000000'$c$,
  $c$id <> 'oppo_MixedWon00000000000000000000000000000000000'$c$]);

-- counts, orders and limits: the same as the copy's
SELECT (SELECT count(*) FROM adv_opps WHERE status_type <> 'won') AS pushed,
       (SELECT count(*) FROM adv_opps_copy WHERE status_type <> 'won') AS copy;
SELECT count(*), count(contact_id), count(lead_id) FROM adv_opps WHERE contact_id <> 'x';
SELECT count(*), count(contact_id), count(lead_id) FROM adv_opps_copy WHERE contact_id <> 'x';
SELECT id FROM adv_opps WHERE status_type = 'active' ORDER BY date_created DESC LIMIT 2 OFFSET 1;
SELECT id FROM adv_opps_copy WHERE status_type = 'active' ORDER BY date_created DESC LIMIT 2 OFFSET 1;
SELECT id FROM adv_opps WHERE value > 1000 ORDER BY date_updated DESC LIMIT 2;
SELECT id FROM adv_opps_copy WHERE value > 1000 ORDER BY date_updated DESC LIMIT 2;
SELECT id FROM adv_opps ORDER BY date_updated FETCH FIRST 2 ROWS WITH TIES;
SELECT id FROM adv_opps_copy ORDER BY date_updated FETCH FIRST 2 ROWS WITH TIES;
