-- analyze: ANALYZE of a foreign table counts the objects with one search
-- (include_counts, results_limit 0) and reads a sample from the first
-- pages, at most ceil(sample / 200) + 1 requests; reltuples is then the
-- count, and the planner uses it and the objects per lead it learned.
SELECT emulator_reset();

CREATE FOREIGN TABLE analyze_objects (
  id text, custom_object_type_id text, lead_id text, name text,
  date_created timestamptz, custom jsonb
) SERVER close;
CREATE FOREIGN TABLE analyze_resources (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');

CREATE FUNCTION explain_rows(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  EXECUTE 'EXPLAIN ' || query INTO line;
  RETURN substring(line FROM 'rows=\d+');
END $$;

-- before: PostgreSQL knows nothing, and the planner guesses
SELECT reltuples < 0 OR relpages = 0 AS never_analyzed
  FROM pg_class WHERE oid = 'analyze_objects'::regclass;
SELECT explain_rows('SELECT * FROM analyze_objects');
SELECT explain_rows($$SELECT * FROM analyze_objects
  WHERE lead_id = 'lead_Plain10000000000000000000000000000000000000'$$);

-- the count, the custom fields' keys (for the custom column), two pages
ANALYZE analyze_objects;
SELECT split_part(r, ' ', 1) || ' ' || split_part(r, ' ', 2) AS request,
       substring(r FROM '"results_limit":\d+') AS results_limit,
       substring(r FROM '"_limit":\d+') AS page,
       r ~ '"cursor":"' AS next_page
  FROM emulator_requests() r;
SELECT reltuples, relpages FROM pg_class WHERE oid = 'analyze_objects'::regclass;
SELECT count(*) AS true_count FROM (SELECT * FROM analyze_objects OFFSET 0) s;
SELECT emulator_clear();
SELECT attname, null_frac, n_distinct FROM pg_stats
 WHERE tablename = 'analyze_objects' AND attname IN ('id', 'lead_id', 'custom_object_type_id')
 ORDER BY attname;

-- the planner uses the count, and 270 objects over 9 leads: 30 per lead
SELECT explain_rows('SELECT * FROM analyze_objects');
SELECT explain_rows($$SELECT * FROM analyze_objects
  WHERE lead_id = 'lead_Plain10000000000000000000000000000000000000'$$);

-- a table of one type counts that type
ANALYZE analyze_resources;
SELECT b->'query'->'queries'->1->'condition' AS type_condition, b->'results_limit' AS results_limit
  FROM (SELECT substring(r FROM '^POST /data/search/ (.*)$')::jsonb AS b
          FROM emulator_requests() r) s;
SELECT reltuples FROM pg_class WHERE oid = 'analyze_resources'::regclass;

-- an organisation larger than the sample: never read whole.  A statistics
-- target of 2 asks for 600 rows: at most ceil(600 / 200) + 1 = 4 requests.
SELECT emulator_call('POST', '/_emulator/objects', '{"lead_id": "lead_Plain20000000000000000000000000000000000000", "custom_object_type_id": "cotype_1h5m6uHM9BZOpwVhyRJb4Y", "count": 3000, "name_prefix": "Bulk"}');
SET default_statistics_target = 2;
ANALYZE analyze_resources;
SELECT count(*) AS requests,
       count(*) FILTER (WHERE r LIKE '%"results_limit":0%') AS counts
  FROM emulator_requests() r;
SELECT reltuples FROM pg_class WHERE oid = 'analyze_resources'::regclass;
SELECT count(*) AS true_count FROM analyze_resources;
SELECT emulator_clear();
-- hundreds of objects per lead now: a lead's count is one search (one
-- request), not a listing of several pages
SELECT explain_rows($$SELECT * FROM analyze_resources
  WHERE lead_id = 'lead_Plain20000000000000000000000000000000000000'$$);
SELECT count(*) FROM analyze_resources WHERE lead_id = 'lead_Plain20000000000000000000000000000000000000';
SELECT split_part(r, ' ', 1) || ' ' || split_part(r, ' ', 2) AS request,
       substring(r FROM '"results_limit":\d+') AS results_limit
  FROM emulator_requests() r;
-- with the custom column, one page goes to the fields' keys: still 4
ANALYZE analyze_objects;
SELECT count(*) AS requests FROM emulator_requests() r;
SELECT reltuples FROM pg_class WHERE oid = 'analyze_objects'::regclass;
RESET default_statistics_target;

-- an analyzed table and an analyzed outer side: 2 leads take 2 listings
CREATE TEMP TABLE two_leads AS
  SELECT unnest(ARRAY['lead_Plain10000000000000000000000000000000000000',
                      'lead_One0000000000000000000000000000000000000000']) AS lead_id;
ANALYZE two_leads;
SELECT count(*) FROM two_leads t JOIN analyze_objects o ON o.lead_id = t.lead_id;
SELECT r FROM emulator_requests() r ORDER BY 1;

-- a failed count fails ANALYZE, and leaves the statistics as they were
SELECT emulator_fault('{"path_prefix": "/api/v1/data/search/", "action": "status", "status": 500, "body": "{\"error\": \"down\"}", "times": 10}');
ANALYZE analyze_resources;
SELECT emulator_reset();
SELECT reltuples FROM pg_class WHERE oid = 'analyze_resources'::regclass;

DROP FOREIGN TABLE analyze_objects;
DROP FOREIGN TABLE analyze_resources;
