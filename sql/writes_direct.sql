-- writes_direct: UPDATE and DELETE by id need no read first when nothing
-- depends on the old row; otherwise they read, and EXPLAIN says which.
\set VERBOSITY default
\set alpha 'custobj_MixedAlpha000000000000000000000000000000000'
\set beta 'custobj_MixedBeta0000000000000000000000000000000000'
\set gamma 'custobj_MixedGamma000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE objects (
  id text, lead_id text, name text, custom_object_type_id text,
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000')
) SERVER close;

-- direct: one PUT, no GET
EXPLAIN (VERBOSE, COSTS OFF)
UPDATE objects SET plan = 'Direct', amount = 7 WHERE id = :'alpha';
UPDATE objects SET plan = 'Direct', amount = 7 WHERE id = :'alpha';
SELECT * FROM emulator_requests();
SELECT plan, amount FROM objects WHERE id = :'alpha';
SELECT emulator_clear();
-- a missing record is not counted; parameters work, also in generic plans
PREPARE set_plan(text, text) AS UPDATE objects SET plan = $2 WHERE id = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE set_plan(:'beta', 'Gen');
EXECUTE set_plan(:'beta', 'Gen');
EXECUTE set_plan('custobj_Missing000000000000000000000000000000000000', 'Gen');
EXECUTE set_plan('custobj_../x', 'Gen');
RESET plan_cache_mode;
SELECT * FROM emulator_requests();

-- what Close would not change is still refused before any request
UPDATE objects SET lead_id = 'lead_One0000000000000000000000000000000000000000' WHERE id = :'alpha';  -- ERROR
UPDATE objects SET name = NULL WHERE id = :'alpha';  -- ERROR
SELECT * FROM emulator_requests();

-- read first: the new value needs the old row, RETURNING, a local filter,
-- a volatile value, a listing by lead, or a table limited to one type
EXPLAIN (COSTS OFF) UPDATE objects SET amount = amount + 1 WHERE id = :'alpha';
EXPLAIN (COSTS OFF) UPDATE objects SET plan = 'x' WHERE id = :'alpha' RETURNING plan;
EXPLAIN (COSTS OFF) DELETE FROM objects WHERE id = :'alpha' AND name = 'Mixed Alpha';
EXPLAIN (COSTS OFF) UPDATE objects SET plan = random()::text WHERE id = :'alpha';
EXPLAIN (COSTS OFF) DELETE FROM objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
CREATE FOREIGN TABLE resources_only (id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');
EXPLAIN (COSTS OFF) DELETE FROM resources_only WHERE id = :'alpha';
-- (and so a Subscription is not deleted through a table of Resources)
DELETE FROM resources_only WHERE id = :'alpha';
SELECT * FROM emulator_requests();

-- direct DELETE of a list: up to max_concurrency requests at once; a
-- failure says what was deleted, including what its neighbours in flight
-- deleted
EXPLAIN (COSTS OFF) DELETE FROM objects WHERE id IN (:'alpha', :'beta', :'gamma');
SELECT emulator_fault(format('{"method": "DELETE", "path_prefix": "/api/v1/custom_object/%s/", "action": "status", "status": 500, "body": "{\"error\": \"Internal error\"}", "times": 1}', :'alpha')::jsonb);
DELETE FROM objects WHERE id IN (:'alpha', :'beta', :'gamma');  -- ERROR
DELETE FROM objects WHERE id IN (:'alpha', :'beta', :'gamma');
SELECT * FROM emulator_requests() ORDER BY 1;
SELECT count(*) FROM objects WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000';

-- a direct UPDATE of many ids sends up to max_concurrency (8) PUTs at
-- once: 16 records in two round trips, where one after another is sixteen
CREATE TEMP TABLE sixteen AS
  SELECT id FROM objects WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000'
   ORDER BY id LIMIT 16;
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 300}');
SELECT emulator_clear();
UPDATE objects SET name = 'Together' WHERE id = ANY (ARRAY(SELECT id FROM sixteen));
SELECT requests, pauses = 1 AS two_round_trips FROM arrival_spread();
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 0}');
SELECT count(*) FROM objects
 WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000' AND name = 'Together';
-- with max_concurrency 1 they go one after another, and a failure stops
-- the statement before the rest are sent
ALTER SERVER close OPTIONS (ADD max_concurrency '1');
SELECT emulator_fault(format('{"method": "PUT", "path_prefix": "/api/v1/custom_object/%s/", "action": "status", "status": 500, "body": "{\"error\": \"Internal error\"}", "times": 1}',
                             (SELECT id FROM sixteen ORDER BY id OFFSET 1 LIMIT 1))::jsonb);
SELECT emulator_clear();
\set VERBOSITY terse
UPDATE objects SET name = 'One by one' WHERE id = ANY (ARRAY(SELECT id FROM sixteen));  -- ERROR
\set VERBOSITY default
SELECT count(*) AS requests FROM emulator_log_entries() e;
ALTER SERVER close OPTIONS (DROP max_concurrency);
DROP TABLE sixteen;
