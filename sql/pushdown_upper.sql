-- pushdown_upper: count(*) answered by Close's count (one search with
-- include_counts and results_limit 0), and ORDER BY date_created or
-- date_updated, ascending or descending, with a LIMIT, sorted by Close
-- (sort and results_limit); each checked against the same query over a
-- copy of every object, and in the emulator's request log.
SELECT emulator_reset();

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

-- the search bodies sent since the last clear, as JSON (then cleared)
CREATE FUNCTION search_bodies() RETURNS SETOF jsonb LANGUAGE sql AS $$
  SELECT substring(r FROM '^POST /data/search/ (.*)$')::jsonb
    FROM emulator_requests() r
$$;

CREATE TEMP TABLE objects_copy AS SELECT * FROM close_custom_objects;
SELECT emulator_clear();

---- count(*)

-- of everything: one request for the count alone
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM close_custom_objects;
SELECT count(*) FROM close_custom_objects;
SELECT * FROM emulator_requests();
SELECT count(*) FROM objects_copy;

-- count(key Close always sets), and arithmetic over the counts
SELECT count(*) + 1 AS plus_one, count(id) AS ids, count(lead_id) AS leads,
       count(date_created) AS dates
  FROM close_custom_objects
 WHERE lead_id IN ('lead_Big0000000000000000000000000000000000000000', 'lead_One0000000000000000000000000000000000000000');
SELECT b->'query', b->'results_limit', b->'_limit', b->'include_counts' FROM search_bodies() b;
SELECT count(*) FROM objects_copy
 WHERE lead_id IN ('lead_Big0000000000000000000000000000000000000000', 'lead_One0000000000000000000000000000000000000000');

-- one lead or one id: a count too (one request, whatever the lead's size,
-- which the planner does not know before ANALYZE: lead_Big's 250 objects
-- are one request, not three pages)
SELECT count(*) FROM close_custom_objects WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
SELECT count(*) FROM close_custom_objects WHERE lead_id = 'lead_Plain30000000000000000000000000000000000000';
SELECT count(*) FROM close_custom_objects WHERE id = 'custobj_OnlyOne000000000000000000000000000000000000';
SELECT * FROM emulator_requests();

-- exact conditions: id lists, type, negated ids; a table of one type
SELECT count(*) FROM close_custom_objects
 WHERE custom_object_type_id = 'cotype_Subscription0000000000'
   AND id <> 'custobj_MixedAlpha000000000000000000000000000000000';
SELECT count(*) FROM objects_copy
 WHERE custom_object_type_id = 'cotype_Subscription0000000000'
   AND id <> 'custobj_MixedAlpha000000000000000000000000000000000';
SELECT count(*) FROM close_custom_objects
 WHERE id = ANY ('{custobj_MixedAlpha000000000000000000000000000000000,custobj_OnlyOne000000000000000000000000000000000000,custobj_nope}');
SELECT count(*) FROM close_custom_objects WHERE lead_id = NULL;
CREATE FOREIGN TABLE upper_resources (id text, lead_id text, name text, date_created timestamptz)
  SERVER close OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');
SELECT count(*) FROM upper_resources;
SELECT count(*) FROM objects_copy WHERE custom_object_type_id = 'cotype_1h5m6uHM9BZOpwVhyRJb4Y';
SELECT count(*) AS requests, count(*) FILTER (WHERE b->>'results_limit' = '0') AS count_only
  FROM search_bodies() b;

-- under a window function, and in a sub-select
SELECT count(*), sum(count(*)) OVER () FROM close_custom_objects;
SELECT (SELECT count(*) FROM upper_resources) - (SELECT count(*) FROM objects_copy
  WHERE custom_object_type_id = 'cotype_1h5m6uHM9BZOpwVhyRJb4Y') AS difference;
SELECT count(*) AS requests FROM emulator_requests();

-- a parameter: the generic plan counts with the value of each execution
PREPARE count_lead(text, text) AS
  SELECT count(*) FROM close_custom_objects WHERE lead_id IN ($1, $2);
SET plan_cache_mode = force_generic_plan;
EXECUTE count_lead('lead_Plain30000000000000000000000000000000000000', 'lead_x');
EXECUTE count_lead('lead_Mixed00000000000000000000000000000000000000', 'lead_Big0000000000000000000000000000000000000000');
RESET plan_cache_mode;
DEALLOCATE count_lead;
SELECT count(*) AS requests FROM emulator_requests();

-- EXPLAIN ANALYZE counts its one request
SELECT explain_same('ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF',
                    'SELECT count(*) FROM upper_resources');
SELECT emulator_clear();

-- not pushed, counted here: conditions Close applies only approximately
-- (text that may ignore case, a widened range, a custom field: all checked
-- again here) or not at all, GROUP BY, HAVING, other aggregates, DISTINCT,
-- FILTER, a column Close may leave out
SELECT plan_nodes($$SELECT count(*) FROM close_custom_objects WHERE name = 'Item 001'$$);
SELECT plan_nodes($$SELECT count(*) FROM close_custom_objects
  WHERE date_created >= '2020-08-05T10:00:00+00'$$);
SELECT plan_nodes($$SELECT count(*) FROM close_custom_objects WHERE status = 'active'$$);
SELECT plan_nodes($$SELECT count(*) FROM close_custom_objects WHERE name || '' = 'x'$$);
SELECT plan_nodes($$SELECT lead_id, count(*) FROM close_custom_objects GROUP BY lead_id$$);
SELECT plan_nodes($$SELECT count(*) FROM close_custom_objects HAVING count(*) > 1$$);
SELECT plan_nodes($$SELECT count(*), max(name) FROM close_custom_objects$$);
-- (17 and later sort the DISTINCT aggregate's input first: not shown, nor
-- the indentation that moves with it)
SELECT ltrim(p) AS plan_nodes FROM plan_nodes($$SELECT count(DISTINCT lead_id) FROM close_custom_objects$$) p
 WHERE p !~ 'Sort';
SELECT plan_nodes($$SELECT count(*) FILTER (WHERE name > 'M') FROM close_custom_objects$$);
SELECT plan_nodes($$SELECT count(name) FROM close_custom_objects$$);
SELECT plan_nodes($$SELECT count(status) FROM close_custom_objects$$);
-- and those give what counting the copy gives
SELECT (SELECT count(*) FROM close_custom_objects WHERE name = 'Item 001'),
       (SELECT count(*) FROM objects_copy WHERE name = 'Item 001');
SELECT (SELECT count(*) FROM close_custom_objects WHERE status = 'active'),
       (SELECT count(*) FROM objects_copy WHERE status = 'active');
SELECT (SELECT count(*) FROM close_custom_objects WHERE date_created >= '2020-08-05T10:00:00+00'),
       (SELECT count(*) FROM objects_copy WHERE date_created >= '2020-08-05T10:00:00+00');
SELECT (SELECT array_agg(n ORDER BY lead_id) FROM (SELECT lead_id, count(*) n FROM close_custom_objects GROUP BY 1) a)
     = (SELECT array_agg(n ORDER BY lead_id) FROM (SELECT lead_id, count(*) n FROM objects_copy GROUP BY 1) b) AS same;
SELECT count(*) FILTER (WHERE b->>'results_limit' = '0') AS count_only FROM search_bodies() b;

-- an answer without a count is an error, not a number
SELECT emulator_fault('{"path_prefix": "/api/v1/data/search/", "action": "status", "status": 200, "body": "{\"data\": [], \"cursor\": null}", "times": 1}');
SELECT count(*) FROM close_custom_objects;
SELECT emulator_fault('{"path_prefix": "/api/v1/data/search/", "action": "status", "status": 200, "body": "{\"data\": [], \"cursor\": null, \"count\": {\"total\": 2.5}}", "times": 1}');
SELECT count(*) FROM close_custom_objects;
SELECT emulator_reset();

---- ORDER BY ... LIMIT

-- newest first: one request, sorted by Close, capped by results_limit
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id, date_created FROM close_custom_objects ORDER BY date_created DESC LIMIT 10;
SELECT id, date_created FROM close_custom_objects ORDER BY date_created DESC LIMIT 10;
SELECT b->'sort', b->'results_limit', b->'_limit' FROM search_bodies() b;
SELECT array(SELECT id FROM close_custom_objects ORDER BY date_created DESC LIMIT 10)
     = array(SELECT id FROM objects_copy ORDER BY date_created DESC LIMIT 10) AS same_rows;
SELECT count(*) AS requests FROM emulator_requests();

-- date_updated, both ways, with OFFSET, and a table of one type
SELECT array(SELECT id FROM close_custom_objects ORDER BY date_updated LIMIT 10)
     = array(SELECT id FROM objects_copy ORDER BY date_updated LIMIT 10) AS same_rows;
SELECT array(SELECT name FROM close_custom_objects ORDER BY date_updated DESC LIMIT 5 OFFSET 2)
     = array(SELECT name FROM objects_copy ORDER BY date_updated DESC LIMIT 5 OFFSET 2) AS same_rows;
SELECT array(SELECT name FROM upper_resources ORDER BY date_created DESC LIMIT 3)
     = array(SELECT name FROM objects_copy WHERE custom_object_type_id = 'cotype_1h5m6uHM9BZOpwVhyRJb4Y'
              ORDER BY date_created DESC LIMIT 3) AS same_rows;
SELECT array(SELECT name FROM close_custom_objects
              WHERE custom_object_type_id = 'cotype_Subscription0000000000'
              ORDER BY date_created DESC LIMIT 4)
     = array(SELECT name FROM objects_copy WHERE custom_object_type_id = 'cotype_Subscription0000000000'
              ORDER BY date_created DESC LIMIT 4) AS same_rows;
SELECT b->'sort'->0->'field'->>'field_name' AS field, b->'sort'->0->>'direction' AS direction,
       b->'results_limit' AS results_limit
  FROM search_bodies() b;

-- more than Close sorts within one page: two pages of one query
SELECT array(SELECT id FROM close_custom_objects ORDER BY date_created DESC LIMIT 250)
     = array(SELECT id FROM objects_copy ORDER BY date_created DESC LIMIT 250) AS same_rows;
SELECT b->'results_limit', b->'_limit', b->'cursor' IS NOT NULL AND b->>'cursor' IS NOT NULL AS next_page
  FROM search_bodies() b;

-- a sorted query that Close ends short of its limit and its count is an
-- error, not fewer rows
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 120}');
SELECT count(*) FROM (SELECT id FROM close_custom_objects ORDER BY date_created DESC LIMIT 250) s;  -- ERROR
SELECT emulator_reset();

-- not sorted by Close: text (Close's collation is not PostgreSQL's), WITH
-- TIES, a condition checked here, more than one query returns, no LIMIT,
-- two sort keys
SELECT plan_nodes($$SELECT id FROM close_custom_objects ORDER BY name LIMIT 10$$);
SELECT plan_nodes($$SELECT id FROM close_custom_objects ORDER BY date_created DESC
  FETCH FIRST 3 ROWS WITH TIES$$);
SELECT plan_nodes($$SELECT id FROM close_custom_objects WHERE name <> 'x'
  ORDER BY date_created DESC LIMIT 10$$);
SELECT plan_nodes($$SELECT id FROM close_custom_objects ORDER BY date_created DESC LIMIT 20000$$);
SELECT plan_nodes($$SELECT id FROM close_custom_objects ORDER BY date_updated DESC$$);
SELECT plan_nodes($$SELECT id FROM close_custom_objects ORDER BY date_updated DESC, id LIMIT 3$$);
SELECT plan_nodes($$SELECT id FROM close_custom_objects ORDER BY date_updated DESC NULLS LAST LIMIT 3$$);
SELECT array(SELECT id FROM close_custom_objects WHERE name <> 'x' ORDER BY date_created DESC LIMIT 10)
     = array(SELECT id FROM objects_copy WHERE name <> 'x' ORDER BY date_created DESC LIMIT 10) AS same_rows;
SELECT array(SELECT id FROM close_custom_objects ORDER BY date_created DESC FETCH FIRST 3 ROWS WITH TIES)
     = array(SELECT id FROM objects_copy ORDER BY date_created DESC FETCH FIRST 3 ROWS WITH TIES) AS same_rows;
SELECT count(*) FILTER (WHERE b->'sort'->0->>'direction' = 'desc') AS sorted_by_close
  FROM search_bodies() b;

-- objects created at one instant: WITH TIES returns them all, LIMIT as many
-- as it says
SELECT emulator_call('POST', '/_emulator/objects', '{"lead_id": "lead_Plain10000000000000000000000000000000000000", "custom_object_type_id": "cotype_1h5m6uHM9BZOpwVhyRJb4Y", "count": 5, "name_prefix": "Tied", "date_created": "2030-01-01T00:00:00.000000+00:00"}');
SELECT count(*) FROM (SELECT id FROM close_custom_objects ORDER BY date_created DESC
  FETCH FIRST 2 ROWS WITH TIES) t;
SELECT name LIKE 'Tied%' AS tied, count(*) FROM (SELECT name FROM close_custom_objects
  ORDER BY date_created DESC LIMIT 2) t GROUP BY 1;
SELECT count(*) AS requests FROM emulator_requests();

DROP FOREIGN TABLE upper_resources;
