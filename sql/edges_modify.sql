-- edges_modify: writes at the edges.  BEFORE ROW triggers (what they change
-- is sent), COPY and NULL custom fields, UPDATE ... FROM matching a record
-- twice, and the memory an UPDATE ... RETURNING or a rolled back write uses.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
SELECT emulator_reset();

CREATE FOREIGN TABLE esubs (
  id text, lead_id text, name text, custom_object_type_id text,
  date_updated timestamptz,
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  start_date date OPTIONS (field 'custom.cf_SubscriptionStart00000000000000000000000000'),
  balance numeric(10,1) OPTIONS (field 'custom.cf_SubscriptionBalance000000000000000000000000'),
  custom jsonb
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');

-- COPY cannot see its column list: on create, no NULL custom field is
-- sent (a missing key already means "not set"), so a custom jsonb column
-- and a typed column for the same field do not collide
SELECT emulator_clear();
COPY esubs (lead_id, name, custom) FROM STDIN;
lead_One0000000000000000000000000000000000000000	Copied by map	{"cf_SubscriptionPlan000000000000000000000000000": "Gold", "cf_SubscriptionTerms00000000000000000000000000": null}
\.
COPY esubs (lead_id, name, plan) FROM STDIN;
lead_One0000000000000000000000000000000000000000	Copied by column	Silver
\.
-- both columns may name one field when they agree (a row copied from the
-- table has both); it is sent once
COPY esubs (lead_id, name, plan, amount, custom) FROM STDIN;
lead_One0000000000000000000000000000000000000000	Copied with both	Bronze	12.50	{"cf_SubscriptionPlan000000000000000000000000000": "Bronze", "cf_SubscriptionAmount0000000000000000000000000": 12.5}
\.
SELECT * FROM emulator_requests();
INSERT INTO esubs (lead_id, name, plan, custom)
SELECT lead_id, name || ' again', plan, custom FROM esubs
 WHERE lead_id = :'one' AND name = 'Copied with both'
RETURNING name, plan, amount;
SELECT * FROM emulator_requests() r WHERE r LIKE 'POST%';
-- when they disagree, nothing is sent
COPY esubs (lead_id, name, plan, custom) FROM STDIN;  -- ERROR
lead_One0000000000000000000000000000000000000000	Copied in two minds	Gold	{"cf_SubscriptionPlan000000000000000000000000000": "Silver"}
\.
SELECT * FROM emulator_requests();

-- BEFORE ROW triggers: what they change is sent.  UPDATE sends what it
-- assigns and every column whose new value differs from the row read, and
-- never writes back an unchanged value (balance is rounded by its column
-- type: -17.25 reads as -17.3 and must stay -17.25 in Close)
\set alpha 'custobj_MixedAlpha000000000000000000000000000000000'
CREATE FUNCTION esubs_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.name IS DISTINCT FROM OLD.name THEN
    NEW.plan := 'Renamed';
  END IF;
  IF NEW.name = 'Stamped' THEN
    NEW.custom := NEW.custom || '{"cf_SubscriptionTerms00000000000000000000000000": "stamped"}';
  END IF;
  IF NEW.name = 'Dated' THEN
    NEW.date_updated := now();
  END IF;
  IF NEW.name LIKE 'Two minds%' THEN
    NEW.plan := NEW.name;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER esubs_before_update BEFORE UPDATE ON esubs
  FOR EACH ROW EXECUTE FUNCTION esubs_before_update();
SELECT emulator_clear();
UPDATE esubs SET name = 'Mixed Alpha renamed' WHERE lead_id = :'mixed' AND id = :'alpha'
RETURNING name, plan, amount, balance,
          custom ->> 'cf_SubscriptionBalance000000000000000000000000' AS balance_in_close;
SELECT * FROM emulator_requests() r WHERE r LIKE 'PUT%';
-- an assigned column is sent even when unchanged; nothing else changed
UPDATE esubs SET amount = amount WHERE lead_id = :'mixed' AND id = :'alpha'
RETURNING name, plan, amount;
SELECT * FROM emulator_requests() r WHERE r LIKE 'PUT%';
-- a trigger's change to the custom column sends the keys that changed
UPDATE esubs SET name = 'Stamped' WHERE lead_id = :'mixed' AND id = :'alpha'
RETURNING name, plan, custom ->> 'cf_SubscriptionTerms00000000000000000000000000' AS terms;
SELECT * FROM emulator_requests() r WHERE r LIKE 'PUT%';
-- a trigger may not change what Close would not: refused before the PUT
UPDATE esubs SET name = 'Dated' WHERE lead_id = :'mixed' AND id = :'alpha';  -- ERROR
-- the custom column and a typed column for the same field: sent once when
-- they agree, refused when they differ
UPDATE esubs SET name = 'Two minds', custom = '{"cf_SubscriptionPlan000000000000000000000000000": "Two minds"}'
 WHERE lead_id = :'mixed' AND id = :'alpha'
RETURNING name, plan;
UPDATE esubs SET name = 'Two minds again', custom = '{"cf_SubscriptionPlan000000000000000000000000000": "Silver"}'
 WHERE lead_id = :'mixed' AND id = :'alpha';  -- ERROR
SELECT * FROM emulator_requests() r WHERE r LIKE 'PUT%';
DROP TRIGGER esubs_before_update ON esubs;

-- INSERT with a BEFORE ROW trigger sends every column that is not NULL
CREATE FUNCTION esubs_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.plan := coalesce(NEW.plan, 'Trial');
  NEW.name := NEW.name || ' (checked)';
  RETURN NEW;
END $$;
CREATE TRIGGER esubs_before_insert BEFORE INSERT ON esubs
  FOR EACH ROW EXECUTE FUNCTION esubs_before_insert();
INSERT INTO esubs (lead_id, name) VALUES (:'one', 'Triggered') RETURNING name, plan;
INSERT INTO esubs (lead_id, name, amount) VALUES (:'one', 'Triggered 2', 5) RETURNING name, plan, amount;
SELECT * FROM emulator_requests() r WHERE r LIKE 'POST%';
DROP TRIGGER esubs_before_insert ON esubs;

-- UPDATE ... FROM matching one record twice writes it once and counts
-- it once, as PostgreSQL does for a local table
CREATE TEMP TABLE local_subs (id text, plan text);
INSERT INTO local_subs VALUES (:'alpha', 'Gold');
WITH u AS (
  UPDATE local_subs SET plan = v.plan FROM (VALUES ('Bronze'), ('Iron')) v(plan)
   WHERE local_subs.id = :'alpha' RETURNING 1)
SELECT count(*) AS local_rows_updated FROM u;
SELECT emulator_clear();
WITH u AS (
  UPDATE esubs SET plan = v.plan FROM (VALUES ('Bronze'), ('Iron')) v(plan)
   WHERE esubs.lead_id = :'mixed' AND esubs.id = :'alpha' RETURNING esubs.id)
SELECT count(*) AS rows_updated FROM u;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
-- the same for DELETE ... USING
WITH d AS (
  DELETE FROM esubs USING (VALUES (1), (2)) v(n)
   WHERE esubs.lead_id = :'mixed' AND esubs.id = :'alpha' RETURNING esubs.name)
SELECT count(*) AS rows_deleted FROM d;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';

-- memory: UPDATE ... RETURNING converts each answer in a context reset for
-- every row, as INSERT does: over 500 rows, the statement's own memory
-- (sampled every 100th row) grows by far less than the ~2 MB the answers
-- would take (PostgreSQL 13 cannot show a backend's memory contexts: 0 there)
CREATE FUNCTION context_memory(context text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('pg_catalog.pg_backend_memory_contexts') IS NULL THEN
    RETURN 0;
  END IF;
  RETURN (SELECT sum(used_bytes)::bigint FROM pg_backend_memory_contexts
           WHERE name = context);
END $$;
\set bulk 'lead_EdgesBulk0000000000000000000000000000000000'
SELECT emulator_call('POST', '/_emulator/objects', format(
  '{"lead_id": "%s", "custom_object_type_id": "cotype_Subscription0000000000", "count": 500, "name_prefix": "Bulk"}',
  :'bulk'));
WITH u AS (
  UPDATE esubs SET plan = 'Bulk plan' WHERE lead_id = :'bulk'
  RETURNING plan, CASE WHEN name LIKE '%00' THEN context_memory('ExecutorState') END AS mem)
SELECT count(*) AS rows, count(mem) AS samples, min(plan) AS plan,
       max(mem) - min(mem) < 256 * 1024 AS memory_bounded
  FROM u;

-- memory: a rolled back write warns once, and leaves nothing behind in
-- the backend's top memory context (PostgreSQL 13 cannot show it: 0 there)
CREATE FUNCTION insert_rolled_back(n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    BEGIN
      INSERT INTO esubs (lead_id, name) VALUES ('lead_EdgesBulk0000000000000000000000000000000000', 'undone ' || i);
      RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
  END LOOP;
END $$;
SET client_min_messages = error;
SELECT insert_rolled_back(20);
SELECT context_memory('TopMemoryContext') AS before \gset
SELECT insert_rolled_back(200);
SELECT context_memory('TopMemoryContext') - :before < 8192 AS no_leak;
RESET client_min_messages;
\set VERBOSITY terse
BEGIN;
INSERT INTO esubs (lead_id, name) VALUES (:'bulk', 'undone') RETURNING name;
ROLLBACK;
\set VERBOSITY default
SELECT emulator_reset();
