-- review_plan: count(*) pushed to Close's count (include_counts with
-- results_limit 0) must answer as the scan would: a table whose
-- custom_object_type_id Close does not have is an error, as in a scan,
-- never a count of 0.  Also what held: counts in correlated subqueries
-- (rescans), NULL parameters, LIMIT/OFFSET above the count.
SELECT emulator_reset();
CREATE FOREIGN TABLE bad_type (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Missing000000000000000');
\set VERBOSITY terse
SELECT * FROM bad_type LIMIT 1;   -- ERROR
SELECT count(*) FROM bad_type;    -- ERROR too, not 0
SELECT count(*) FROM bad_type WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';  -- ERROR
\set VERBOSITY default
-- a type Close has: counted, the types read once (cached), one count
SELECT emulator_clear();
CREATE FOREIGN TABLE good_type (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
SELECT count(*) FROM good_type;
SELECT count(*) FROM good_type;
SELECT regexp_replace(r, ' \{.*', '') AS request FROM emulator_requests() r;

-- what held: correlated counts (a rescan per outer row, NULL included)
CREATE TEMP TABLE oc AS SELECT * FROM close_custom_objects;
SELECT emulator_clear();
SELECT l.x IS NULL AS null_lead,
       (SELECT count(*) FROM close_custom_objects c WHERE c.lead_id = l.x) AS n,
       (SELECT count(*) FROM oc c WHERE c.lead_id = l.x) AS m
  FROM (VALUES ('lead_Big0000000000000000000000000000000000000000'),
               ('lead_Plain30000000000000000000000000000000000000'), (NULL)) l(x);
SELECT count(*) AS requests FROM emulator_requests();
SELECT count(*) FROM close_custom_objects LIMIT 0;
SELECT count(*) FROM close_custom_objects OFFSET 1;
-- generic plans: NULL parameters inside <>, NOT, and = ANY with a NULL element
SET plan_cache_mode = force_generic_plan;
PREPARE q(text[]) AS SELECT count(*) FROM close_custom_objects WHERE id <> ALL($1) AND lead_id = ANY($1);
EXECUTE q(ARRAY['lead_Big0000000000000000000000000000000000000000', NULL]);
PREPARE q3(text) AS SELECT count(*), count(lead_id) FROM close_custom_objects WHERE id <> $1;
EXECUTE q3(NULL);
EXECUTE q3('x');
SELECT count(*) FROM oc WHERE id <> 'x';
RESET plan_cache_mode;
DEALLOCATE q;
DEALLOCATE q3;

-- ANALYZE of such a table: an error too, not reltuples 0
\set VERBOSITY terse
ANALYZE bad_type;   -- ERROR
\set VERBOSITY default
-- (never set: -1 from PostgreSQL 14 on, 0 before)
SELECT reltuples < 1 AS reltuples_not_set FROM pg_class WHERE relname = 'bad_type';

-- an object key holding \u0000: json-c keeps keys as C strings and would
-- cut it short ({"a\u0000b": 1} read as {"a": 1}; "custom.cf_A\u0000x" as
-- the field cf_A): an error, as jsonb_in refuses \u0000, never another key
SELECT emulator_reset();
\set raw '{"id":"custobj_OnlyOne000000000000000000000000000000000000","lead_id":"lead_One0000000000000000000000000000000000000000","custom_object_type_id":"cotype_Subscription0000000000","name":"x","date_created":"2020-08-04T16:45:35.367000+00:00","date_updated":"2020-08-04T16:45:35.367000+00:00","organization_id":"orga_x","custom.cf_A":{"a\\u0000b":1}}'
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/custobj_', 'action', 'replace_body', 'body', :'raw'::text, 'times', 1));
\set VERBOSITY terse
SELECT custom FROM close_custom_objects WHERE id = 'custobj_OnlyOne000000000000000000000000000000000000';  -- ERROR
\set VERBOSITY default
\set raw '{"id":"custobj_OnlyOne000000000000000000000000000000000000","lead_id":"lead_One0000000000000000000000000000000000000000","custom_object_type_id":"cotype_Subscription0000000000","name":"x","date_created":"2020-08-04T16:45:35.367000+00:00","date_updated":"2020-08-04T16:45:35.367000+00:00","organization_id":"orga_x","custom.cf_A\\u0000x":1}'
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/custobj_', 'action', 'replace_body', 'body', :'raw'::text, 'times', 1));
\set VERBOSITY terse
SELECT custom FROM close_custom_objects WHERE id = 'custobj_OnlyOne000000000000000000000000000000000000';  -- ERROR
\set VERBOSITY default
-- other escapes in a key are kept
\set raw '{"id":"custobj_OnlyOne000000000000000000000000000000000000","lead_id":"lead_One0000000000000000000000000000000000000000","custom_object_type_id":"cotype_Subscription0000000000","name":"x","date_created":"2020-08-04T16:45:35.367000+00:00","date_updated":"2020-08-04T16:45:35.367000+00:00","organization_id":"orga_x","custom.cf_A":{"a\\u0001\\tb":1}}'
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/custobj_', 'action', 'replace_body', 'body', :'raw'::text, 'times', 1));
SELECT custom FROM close_custom_objects WHERE id = 'custobj_OnlyOne000000000000000000000000000000000000';
