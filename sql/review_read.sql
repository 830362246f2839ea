-- review_read: wrong rows found by an adversarial review of the read path.
\set VERBOSITY terse
\set big 'lead_Big0000000000000000000000000000000000000000'
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();

-- A scan does not read the objects created by a later command: a cursor
-- read on after an INSERT into its lead (a snapshot would not show them)
CREATE FUNCTION rr_cursor_then_insert() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  c refcursor;
  r record;
  n int := 0;
  late int := 0;
BEGIN
  OPEN c FOR SELECT id, name FROM close_custom_objects
              WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
  MOVE FORWARD 10 FROM c;
  INSERT INTO close_custom_objects (custom_object_type_id, lead_id, name)
    SELECT 'cotype_1h5m6uHM9BZOpwVhyRJb4Y', 'lead_Big0000000000000000000000000000000000000000',
           'Late ' || g FROM generate_series(1, 3) g;
  LOOP
    FETCH c INTO r;
    EXIT WHEN NOT FOUND;
    n := n + 1;
    IF r.name LIKE 'Late%' THEN late := late + 1; END IF;
  END LOOP;
  RETURN format('rest %s, late %s', n, late);
END $$;
SELECT rr_cursor_then_insert();
SELECT count(*) FROM close_custom_objects WHERE lead_id = :'big';

-- nor, in a SELECT, what its function creates while it reads (it would
-- read the copies back: with a function copying every row, without end)
SELECT emulator_reset();
CREATE FUNCTION rr_copy(n text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF n LIKE 'Item%' THEN
    INSERT INTO close_custom_objects (custom_object_type_id, lead_id, name)
      VALUES ('cotype_1h5m6uHM9BZOpwVhyRJb4Y', 'lead_Big0000000000000000000000000000000000000000', 'Copy ' || n);
    RETURN 1;
  END IF;
  RETURN 0;
END $$;
SELECT count(*) AS rows_read, sum(rr_copy(name)) AS copies
  FROM close_custom_objects WHERE lead_id = :'big';
-- the next statement reads them
SELECT count(*) FILTER (WHERE name LIKE 'Copy%') AS copies, count(*)
  FROM close_custom_objects WHERE lead_id = :'big';

-- varchar(n) drops the spaces past n: "Silver   " shows as "Silver", which
-- Close's exact_value "Silver" would not find; not pushed
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/objects', '{"lead_id": "lead_One0000000000000000000000000000000000000000", "custom_object_type_id": "cotype_Subscription0000000000", "count": 1, "name_prefix": "Spaced", "values": {"custom.cf_SubscriptionPlan000000000000000000000000000": "Silver   "}}');
CREATE FOREIGN TABLE rr_subs (
  id text, lead_id text, name text, date_created timestamptz,
  plan_v varchar(6) OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  plan_u varchar OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
SELECT name, plan_v, length(plan_v) FROM rr_subs WHERE lead_id = :'one';
SELECT emulator_clear();
SELECT name, plan_v FROM rr_subs
 WHERE plan_v = 'Silver' AND name IN ('Mixed Beta', 'Spaced 1') ORDER BY name;
-- varchar without a length keeps the spaces, and is still pushed
SELECT name FROM rr_subs
 WHERE plan_u = 'Silver' AND name IN ('Mixed Beta', 'Spaced 1') ORDER BY name;
SELECT e->>'path' AS path,
       jsonb_path_query_array(e->'body', '$.**.custom_field_id') AS custom_fields_sent
  FROM emulator_log_entries() e;

-- a writing statement's scan read whole past work_mem (a temporary file):
-- its rows come back from the file whole (the backend crashed before: each
-- row read back was freed twice)
SELECT emulator_reset();
CREATE TABLE rr_sink AS SELECT * FROM close_custom_objects WHERE false;
SET work_mem = '64kB';
INSERT INTO rr_sink SELECT * FROM close_custom_objects WHERE lead_id = :'big';
RESET work_mem;
SELECT count(*), count(DISTINCT id), sum(pg_column_size(rr_sink.*)) > 65536 AS past_work_mem,
       min(name), max(name), sum((custom->>'cf_ResourceCapacity000000000000000000000000000')::int)
  FROM rr_sink;
DROP TABLE rr_sink;

-- a range is pushed only for a built-in operator: a user's operator named
-- "<" (numeric, int4) may mean anything (here: always true)
CREATE FOREIGN TABLE rr_amounts (
  id text, lead_id text, name text, date_created timestamptz,
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
CREATE SCHEMA rr_ops;
CREATE FUNCTION rr_ops.always(numeric, int4) RETURNS bool LANGUAGE plpgsql IMMUTABLE
  AS 'BEGIN RETURN true; END';
CREATE OPERATOR rr_ops.< (leftarg = numeric, rightarg = int4, function = rr_ops.always);
SET search_path = rr_ops, public, pg_catalog;
SELECT emulator_clear();
SELECT count(*) FROM rr_amounts WHERE amount < 5;
SELECT count(*) FROM rr_amounts WHERE amount IS NOT NULL;
RESET search_path;
SELECT jsonb_path_query_array(e->'body', '$.**.condition ? (@.type == "number_range")') AS ranges_sent
  FROM emulator_log_entries() e;
DROP SCHEMA rr_ops CASCADE;
