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

-- direct DELETE of a list; a failure says what was already deleted
EXPLAIN (COSTS OFF) DELETE FROM objects WHERE id IN (:'alpha', :'beta', :'gamma');
SELECT emulator_fault('{"method": "DELETE", "action": "delay", "seconds": 0, "times": 2}');
SELECT emulator_fault('{"method": "DELETE", "action": "status", "status": 500, "body": "{\"error\": \"Internal error\"}", "times": 1}');
DELETE FROM objects WHERE id IN (:'alpha', :'beta', :'gamma');  -- ERROR
DELETE FROM objects WHERE id IN (:'alpha', :'beta', :'gamma');
SELECT * FROM emulator_requests();
SELECT count(*) FROM objects WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000';
