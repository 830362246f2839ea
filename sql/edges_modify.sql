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
  custom jsonb,
  note text
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');

-- COPY cannot see its column list: on create, no NULL custom field is
-- sent (a missing key already means "not set"), so a custom jsonb column
-- and a typed column for the same field do not collide
SELECT emulator_clear();
COPY esubs (lead_id, name, custom) FROM STDIN;
lead_One0000000000000000000000000000000000000000	Copied by map	{"cf_SubscriptionPlan000000000000000000000000000": "Gold", "cf_SubscriptionTerms000000000000000000000000000": null}
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
