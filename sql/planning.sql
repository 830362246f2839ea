-- planning: the cost model counts requests.  A join whose outer side gives
-- the lead_id values runs one listing per lead, also when the local table
-- was never analyzed (PostgreSQL then guesses it at 10 pages, hundreds of
-- rows) and for temp tables (autovacuum never analyzes them): never a
-- search of the whole organisation.
SELECT emulator_reset();

-- a plan's nodes, without the Close lines (the requests are checked in the
-- emulator's log)
CREATE OR REPLACE FUNCTION plan_nodes(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
    IF line !~ '^\s+Close ' THEN
      RETURN NEXT line;
    END IF;
  END LOOP;
END $$;

-- a temp table of 5 leads, never analyzed
CREATE TEMP TABLE five_leads (lead_id text, region text);
INSERT INTO five_leads VALUES
  ('lead_Plain10000000000000000000000000000000000000', 'eu'),
  ('lead_Plain20000000000000000000000000000000000000', 'eu'),
  ('lead_Plain30000000000000000000000000000000000000', 'us'),
  ('lead_One0000000000000000000000000000000000000000', 'us'),
  ('lead_Empty00000000000000000000000000000000000000', 'apac');
SELECT reltuples < 0 OR relpages = 0 AS never_analyzed
  FROM pg_class WHERE oid = 'five_leads'::regclass;
EXPLAIN (COSTS OFF)
SELECT f.region, c.name FROM five_leads f JOIN close_custom_objects c ON c.lead_id = f.lead_id;
SELECT f.region, c.name FROM five_leads f JOIN close_custom_objects c ON c.lead_id = f.lead_id
 ORDER BY 1, 2;
-- only the five listings
SELECT * FROM emulator_requests() ORDER BY 1;

-- a semi-join and an outer join the same way
SELECT count(*) FROM close_custom_objects WHERE lead_id IN (SELECT lead_id FROM five_leads);
SELECT f.lead_id, count(c.id) FROM five_leads f
  LEFT JOIN close_custom_objects c ON c.lead_id = f.lead_id GROUP BY 1 ORDER BY 1;
SELECT * FROM emulator_requests() ORDER BY 1;

-- an ordinary table never analyzed: the same
CREATE TABLE plain_leads (lead_id text);
INSERT INTO plain_leads SELECT lead_id FROM five_leads;
EXPLAIN (COSTS OFF)
SELECT c.name FROM plain_leads p JOIN close_custom_objects c ON c.lead_id = p.lead_id;
SELECT c.name FROM plain_leads p JOIN close_custom_objects c ON c.lead_id = p.lead_id ORDER BY 1;
SELECT count(*) AS requests, count(*) FILTER (WHERE r LIKE 'POST /data/search/%') AS searches
  FROM emulator_requests() r;

-- the rows are those of a join with a copy of every object
CREATE TEMP TABLE objects_copy AS SELECT * FROM close_custom_objects;
SELECT emulator_clear();
CREATE TEMP TABLE joined AS
  SELECT f.region, c.name FROM five_leads f JOIN close_custom_objects c ON c.lead_id = f.lead_id;
SELECT (SELECT count(*) FROM (
          (SELECT * FROM joined
           EXCEPT ALL
           SELECT f.region, o.name FROM five_leads f JOIN objects_copy o ON o.lead_id = f.lead_id)
          UNION ALL
          (SELECT f.region, o.name FROM five_leads f JOIN objects_copy o ON o.lead_id = f.lead_id
           EXCEPT ALL
           SELECT * FROM joined)) d) AS missing_or_extra,
       (SELECT count(*) FROM five_leads f JOIN objects_copy o ON o.lead_id = f.lead_id) AS expected_rows;
SELECT count(*) FILTER (WHERE r LIKE 'POST /data/search/%') AS searches FROM emulator_requests() r;

-- once analyzed, the outer side counts as what it is: five leads still
-- take five listings
ANALYZE five_leads;
EXPLAIN (COSTS OFF)
SELECT f.region, c.name FROM five_leads f JOIN close_custom_objects c ON c.lead_id = f.lead_id;

-- a large outer side (more leads than a search has pages) takes the search
CREATE TEMP TABLE many_leads AS
  SELECT 'lead_Many' || lpad(i::text, 38, '0') AS lead_id FROM generate_series(1, 5000) i;
ANALYZE many_leads;
SELECT plan_nodes($$
SELECT m.lead_id, c.name FROM many_leads m JOIN close_custom_objects c ON c.lead_id = m.lead_id$$);

-- costs are requests: a listing of one lead costs one request, a search of
-- the guessed organisation (100,000 objects) 501 pages and one probe
CREATE FUNCTION explain_cost(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  EXECUTE 'EXPLAIN ' || query INTO line;
  RETURN substring(line FROM 'cost=\S+ rows=\d+');
END $$;
SELECT explain_cost($$SELECT * FROM close_custom_objects
  WHERE lead_id = 'lead_Plain10000000000000000000000000000000000000'$$);
SELECT explain_cost($$SELECT * FROM close_custom_objects
  WHERE id = 'custobj_OnlyOne000000000000000000000000000000000000'$$);
SELECT explain_cost($$SELECT * FROM close_custom_objects$$);
-- a condition sent with the search narrows what it fetches; one kept
-- local does not
SELECT explain_cost($$SELECT * FROM close_custom_objects
  WHERE custom_object_type_id = 'cotype_Subscription0000000000'$$);
SELECT explain_cost($$SELECT * FROM close_custom_objects WHERE name || '' = 'x'$$);

DROP TABLE plain_leads;
