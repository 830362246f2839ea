-- search: without a lead or id condition a scan lists through Advanced
-- Filtering (POST /data/search/); pushed conditions never change the
-- answer, which is compared here with a local copy of the data.
\set VERBOSITY default
SELECT emulator_reset();

-- a whole table, as the emulator has it
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM close_custom_objects;
SELECT sum(n::int) AS emulator_objects
  FROM json_each_text((SELECT string_agg(l, '') FROM emulator_call('GET', '/_emulator/data/leads') l)::json) AS t(lead, n);
SELECT regexp_replace(r, '"cursor":"[^"]*"', '"cursor":"(opaque)"') FROM emulator_requests() r;

-- EXPLAIN summarises the search it sends (VERBOSE: its body), and sends nothing
EXPLAIN (COSTS OFF) SELECT name FROM close_custom_objects WHERE custom_object_type_id = 'cotype_Device0000000000000000';
SELECT count(*) FROM emulator_requests();

-- data to compare: subscriptions with values, gaps (NULLs) and boundaries
CREATE FOREIGN TABLE searched (
  id text, lead_id text, name text, date_created timestamptz,
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  start_date date OPTIONS (field 'custom.cf_SubscriptionStart00000000000000000000000000'),
  renewed timestamptz OPTIONS (field 'custom.cf_SubscriptionRenewed000000000000000000000000'),
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  status text OPTIONS (field 'custom.cf_cSh3fWT3rEJ1BFSezme2YAG6bPrZV5wUWKKrW4iN19g')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
INSERT INTO searched (lead_id, name, amount, start_date, renewed, plan, status)
SELECT 'lead_Plain' || (i % 5 + 1) || '0000000000000000000000000000000000000',
       'Sub ' || i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 2.5)::numeric END,
       CASE WHEN i % 6 = 0 THEN NULL ELSE date '2024-01-01' + i END,
       CASE WHEN i % 8 = 0 THEN NULL ELSE timestamptz '2024-03-01 12:00:00+00' + i * interval '1 hour 30 seconds' END,
       CASE i % 3 WHEN 0 THEN 'Gold' WHEN 1 THEN 'gold' ELSE 'Silver' END,
       (ARRAY['active', 'paused', 'cancelled', NULL])[i % 4 + 1]
  FROM generate_series(1, 40) i;
CREATE TABLE searched_copy AS SELECT * FROM searched;
SELECT count(*) FROM searched_copy;
SELECT emulator_clear();

-- compare a condition's rows through the search with the local copy
CREATE FUNCTION same_rows(condition text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  remote text[];
  local text[];
BEGIN
  EXECUTE format('SELECT coalesce(array_agg(id ORDER BY id), ''{}'') FROM searched WHERE %s', condition) INTO remote;
  EXECUTE format('SELECT coalesce(array_agg(id ORDER BY id), ''{}'') FROM searched_copy WHERE %s', condition) INTO local;
  RETURN CASE WHEN remote = local THEN 'same ' || cardinality(local) || ' rows'
              ELSE 'DIFFERENT: ' || cardinality(remote) || ' vs ' || cardinality(local) END;
END $$;
SELECT c AS condition, same_rows(c)
  FROM unnest(ARRAY[
    $$amount > 50$$, $$amount >= 50$$, $$amount < 12.5$$, $$amount <= 12.5$$, $$amount = 25$$,
    $$amount BETWEEN 10 AND 20$$, $$amount > 50 AND amount < 70$$, $$amount IS NULL$$,
    $$start_date > '2024-01-20'$$, $$start_date >= '2024-01-20'$$, $$start_date = '2024-01-05'$$,
    $$start_date < '2024-01-05'$$, $$start_date <= '2024-01-05'$$,
    $$renewed > '2024-03-01 20:00:04+00'$$, $$renewed >= '2024-03-01 20:00:04+00'$$,
    $$renewed < '2024-03-01 20:00:04+00'$$, $$renewed <= '2024-03-01 20:00:04+00'$$,
    $$renewed = '2024-03-01 20:00:04+00'$$, $$renewed > '2024-03-02 09:00:00+09'$$,
    $$date_created >= (SELECT min(date_created) + interval '10 ms' FROM searched_copy)$$,
    $$plan = 'Gold'$$, $$plan = 'gold'$$, $$plan IN ('Gold', 'Silver')$$, $$plan <> 'Gold'$$,
    $$name = 'Sub 7'$$, $$name = 'sub 7'$$, $$status = 'active'$$, $$status IS NULL$$,
    $$lead_id <> 'lead_Plain10000000000000000000000000000000000000'$$,
    $$NOT (lead_id = 'lead_Plain10000000000000000000000000000000000000')$$,
    $$lead_id IN ('lead_Plain10000000000000000000000000000000000000', 'lead_Plain20000000000000000000000000000000000000') AND amount > 20$$,
    $$(plan = 'Gold' OR amount > 90)$$, $$NOT (plan = 'Gold')$$, $$(status = 'paused' OR status IS NULL)$$
  ]) AS c;
-- the same in another time zone
SET TimeZone = 'Asia/Kolkata';
SELECT c AS condition, same_rows(c)
  FROM unnest(ARRAY[$$renewed > '2024-03-02 01:30:04'$$, $$renewed::date = '2024-03-02'$$,
                    $$start_date = '2024-01-05'$$]) AS c;
RESET TimeZone;
SELECT emulator_clear();

-- what goes into the query, and what is checked again locally
EXPLAIN (COSTS OFF) SELECT id FROM searched WHERE amount > 50 AND plan = 'Gold' AND lead_id <> 'lead_x';
SELECT count(*) FROM searched WHERE amount > 50 AND plan = 'Gold' AND lead_id <> 'lead_x';
SELECT jsonb_pretty(e->'body'->'query') FROM emulator_log_entries() e;
-- not pushed: NULL tests, LIKE, functions, NOT of a loose condition
EXPLAIN (COSTS OFF) SELECT id FROM searched WHERE amount IS NULL AND name LIKE 'Sub%' AND lower(plan) = 'gold' AND NOT (plan = 'Gold');

-- ORDER BY date_created is the search's own order; LIMIT is passed on when
-- nothing after the scan drops or reorders rows
EXPLAIN (COSTS OFF) SELECT name FROM searched ORDER BY date_created LIMIT 3;
SELECT name FROM searched ORDER BY date_created LIMIT 3;
EXPLAIN (COSTS OFF) SELECT name FROM searched ORDER BY name LIMIT 3;
SELECT name FROM searched ORDER BY name LIMIT 3;
SELECT name FROM searched WHERE name LIKE 'Sub 1%' ORDER BY date_created LIMIT 2;
SELECT e->'body'->'_limit' AS page, e->'body'->'results_limit' AS results_limit
  FROM emulator_log_entries() e;
-- a LIMIT stops asking for pages once it has its rows
SELECT count(*) FROM (SELECT id FROM close_custom_objects WHERE name <> 'x' LIMIT 10) s;
SELECT count(*) AS requests FROM emulator_requests();

-- past the per-query cap: slices by date_created, each object once
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 60}');
SELECT count(*), count(DISTINCT id) FROM close_custom_objects;
SELECT same_rows('true');
SELECT e->'body'->'query'->'queries'->-1->'condition'->'on_or_after'->>'value' IS NOT NULL AS sliced,
       e->'body'->>'cursor' IS NOT NULL AS with_cursor, e->>'status' AS status
  FROM emulator_log_entries() e;
-- a cursor that expired is worked around from the last date seen
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 10000, "cursor_ttl": 1}');
SELECT count(*), count(DISTINCT c.id)
  FROM close_custom_objects c, LATERAL pg_sleep(0.006 + 0 * length(c.id)) s;
SELECT e->>'status' AS status, e->'body'->>'cursor' IS NOT NULL AS with_cursor,
       e->'body'->'query'->'queries'->-1->'condition'->'on_or_after'->>'value' IS NOT NULL AS sliced
  FROM emulator_log_entries() e;
SELECT emulator_call('POST', '/_emulator/config', '{"cursor_ttl": 30}');

-- a custom jsonb column needs every custom field: read from the type once
SELECT count(*), count(custom) FROM close_custom_objects WHERE custom_object_type_id = 'cotype_Subscription0000000000';
SELECT e->>'method' AS method, e->>'path' AS path,
       (SELECT count(*) FROM jsonb_array_elements_text(e->'body'->'_fields'->'custom_object')) AS fields_asked
  FROM emulator_log_entries() e;

-- a search error is an error
SELECT emulator_fault('{"path_prefix": "/api/v1/data/search/", "action": "status", "status": 400, "body": "{\"error\": \"Invalid query\"}", "times": 1}');
SELECT count(*) FROM close_custom_objects;  -- ERROR
SELECT emulator_fault('{"path_prefix": "/api/v1/data/search/", "action": "status", "status": 200, "body": "{\"data\": [{\"id\": \"custobj_a\"}], \"cursor\": null}", "times": 1}');
SELECT count(name) FROM close_custom_objects;  -- ERROR
SELECT emulator_reset();

-- a full search is costed under jit_above_cost: JIT compiling costs time and
-- memory and gains nothing on a scan that waits on the network
CREATE FUNCTION plan_cost(query text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
  plan json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
  RETURN (plan -> 0 -> 'Plan' ->> 'Total Cost')::float8;
END $$;
SELECT plan_cost('SELECT count(*) FROM close_custom_objects') < current_setting('jit_above_cost')::float8
  AS search_below_jit;
