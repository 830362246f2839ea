-- joins: a join or subquery on lead_id runs as a parameterized scan, one
-- listing per outer lead, never a listing of everything.
SELECT emulator_reset();
CREATE TABLE local_leads (id text PRIMARY KEY, region text);
INSERT INTO local_leads VALUES
  ('lead_Mixed00000000000000000000000000000000000000', 'eu'),
  ('lead_One0000000000000000000000000000000000000000', 'us'),
  ('lead_Empty00000000000000000000000000000000000000', 'us'),
  ('lead_Plain10000000000000000000000000000000000000', 'apac');
ANALYZE local_leads;

-- an inner join
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l.region, c.name FROM local_leads l JOIN close_custom_objects c ON c.lead_id = l.id;
SELECT l.region, c.name FROM local_leads l JOIN close_custom_objects c ON c.lead_id = l.id
 ORDER BY c.name;
SELECT * FROM emulator_requests() ORDER BY 1;

-- a join with filters on both sides
SELECT l.region, c.name FROM local_leads l JOIN close_custom_objects c ON c.lead_id = l.id
 WHERE l.region = 'us' AND c.name <> 'nothing' ORDER BY c.name;
SELECT * FROM emulator_requests() ORDER BY 1;

-- IN (SELECT ...): a semi-join
EXPLAIN (COSTS OFF)
SELECT name FROM close_custom_objects WHERE lead_id IN (SELECT id FROM local_leads WHERE region = 'us');
SELECT name FROM close_custom_objects WHERE lead_id IN (SELECT id FROM local_leads WHERE region = 'us');
SELECT * FROM emulator_requests() ORDER BY 1;

-- = ANY (ARRAY(SELECT ...)): an init-plan computes all leads first
SELECT explain_same('COSTS OFF', $$
SELECT count(name) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM local_leads))$$);
SELECT count(name) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM local_leads));
SELECT * FROM emulator_requests() ORDER BY 1;

-- an outer join keeps leads without objects
SELECT l.id, count(c.id) FROM local_leads l LEFT JOIN close_custom_objects c ON c.lead_id = l.id
 GROUP BY l.id ORDER BY l.id;
SELECT * FROM emulator_requests() ORDER BY 1;

-- LATERAL
SELECT l.region, s.name FROM local_leads l,
  LATERAL (SELECT name FROM close_custom_objects c WHERE c.lead_id = l.id ORDER BY name LIMIT 1) s
 ORDER BY 1, 2;
SELECT * FROM emulator_requests() ORDER BY 1;

-- a join on id retrieves each record
CREATE TABLE wanted (object_id text);
INSERT INTO wanted VALUES ('custobj_MixedBeta0000000000000000000000000000000000'), ('custobj_OnlyOne000000000000000000000000000000000000');
ANALYZE wanted;
SELECT c.name FROM wanted w JOIN close_custom_objects c ON c.id = w.object_id ORDER BY 1;
SELECT * FROM emulator_requests() ORDER BY 1;

-- a prepared join under a generic plan keeps the parameterized scan
PREPARE region_objects(text) AS
  SELECT c.name FROM local_leads l JOIN close_custom_objects c ON c.lead_id = l.id
   WHERE l.region = $1 ORDER BY 1;
SET plan_cache_mode = force_generic_plan;
EXECUTE region_objects('eu');
RESET plan_cache_mode;
SELECT * FROM emulator_requests() ORDER BY 1;

-- joining two foreign scans: one lead's objects referencing another object by id
SELECT a.name, b.name AS parent
  FROM close_custom_objects a
  JOIN close_custom_objects b ON b.id = a.custom ->> 'cf_jnxTQDKnSxCEBtD5dvZdNgTzC3CqeyWUyU349PBA9Wf'
 WHERE a.lead_id = 'lead_hwnL36A2iEMSLIlmGhsdrcmOJzTUzqEHwr66wrA1K2T';
SELECT * FROM emulator_requests() ORDER BY 1;
