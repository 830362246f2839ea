-- explain: EXPLAIN shows the request a scan will make and makes none;
-- EXPLAIN ANALYZE adds requests, pages and records; no credential shows.
SELECT emulator_reset();

EXPLAIN (COSTS OFF)
SELECT * FROM close_custom_objects WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000';
EXPLAIN (COSTS OFF)
SELECT * FROM close_custom_objects
 WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000'
   AND custom_object_type_id = 'cotype_Subscription0000000000' AND name <> 'x';
EXPLAIN (COSTS OFF)
SELECT * FROM close_custom_objects
 WHERE lead_id IN ('lead_Mixed00000000000000000000000000000000000000', 'lead_One0000000000000000000000000000000000000000');
EXPLAIN (COSTS OFF)
SELECT * FROM close_custom_objects WHERE id = 'custobj_MixedAlpha000000000000000000000000000000000';
EXPLAIN (COSTS OFF)
SELECT * FROM close_custom_objects
 WHERE id = ANY ('{custobj_MixedAlpha000000000000000000000000000000000,custobj_x}') AND lead_id = 'lead_x';
EXPLAIN (COSTS OFF)
SELECT * FROM close_custom_objects WHERE id = 'custobj_../etc';
CREATE FOREIGN TABLE explain_resources (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');
EXPLAIN (VERBOSE, COSTS OFF)
SELECT name FROM explain_resources WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
-- in JSON the Close properties are the plan node's own; "Async Capable"
-- (14) and "Disabled" (18) come and go with the PostgreSQL major
CREATE FUNCTION explain_json_node(query text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  plan json;
BEGIN
  EXECUTE 'EXPLAIN (COSTS OFF, FORMAT JSON) ' || query INTO plan;
  RETURN (plan::jsonb -> 0 -> 'Plan') - 'Async Capable' - 'Disabled';
END $$;
SELECT key, value FROM jsonb_each(explain_json_node($$
SELECT name FROM explain_resources WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000'$$))
 ORDER BY key;
-- none of those made a request
SELECT * FROM emulator_requests();

-- EXPLAIN ANALYZE counts what was done
SELECT explain_same('ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF', $$
SELECT * FROM close_custom_objects WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000'$$);
SELECT explain_same('ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF', $$
SELECT * FROM close_custom_objects
 WHERE id IN ('custobj_MixedAlpha000000000000000000000000000000000', 'custobj_Missing000000000000000000000000000000000000')$$);
SELECT count(*) FROM emulator_requests();

-- no credential anywhere in EXPLAIN output
CREATE FUNCTION explain_lines(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
    RETURN NEXT line;
  END LOOP;
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, VERBOSE, BUFFERS OFF, FORMAT JSON) ' || query LOOP
    RETURN NEXT line;
  END LOOP;
END $$;
SELECT count(*) AS lines, count(*) FILTER (WHERE l ~* 'api_test_key|authorization|basic') AS with_secret
  FROM explain_lines($$SELECT * FROM close_custom_objects
                      WHERE lead_id = 'lead_One0000000000000000000000000000000000000000'$$) l;
