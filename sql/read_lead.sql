-- read_lead: lead_id conditions become paged listings, one per distinct
-- lead; conditions the API cannot apply stay local filters.
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
\set big 'lead_Big0000000000000000000000000000000000000000'
\set one 'lead_One0000000000000000000000000000000000000000'
\set empty 'lead_Empty00000000000000000000000000000000000000'
SELECT emulator_reset();

-- a literal: one listing
SELECT id, custom_object_type_id, name, status FROM close_custom_objects
 WHERE lead_id = :'mixed' ORDER BY id;
SELECT * FROM emulator_requests();

-- paging: 250 records come in three pages of 100, 100 and 50; the pages
-- after a full first one are asked for max_concurrency (8) at once, 6 of
-- them past the end here (at most 7), so the log is sorted by _skip
SELECT count(*), count(DISTINCT id), min(name), max(name)
  FROM close_custom_objects WHERE lead_id = :'big';
SELECT r FROM emulator_requests() r ORDER BY length(r), r;

-- the server's page_size is the _limit
ALTER SERVER close OPTIONS (ADD page_size '40');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'big';
SELECT r FROM emulator_requests() r ORDER BY length(r), r;
ALTER SERVER close OPTIONS (DROP page_size);

-- IN and = ANY: one listing per distinct lead; NULLs and duplicates ask nothing
-- (several leads' first pages are fetched at once: the log is sorted)
SELECT lead_id, count(name) FROM close_custom_objects
 WHERE lead_id IN (:'mixed', :'one', :'mixed', NULL, :'empty')
 GROUP BY lead_id ORDER BY lead_id;
SELECT * FROM emulator_requests() ORDER BY 1;
SELECT count(name) FROM close_custom_objects
 WHERE lead_id = ANY (ARRAY[:'one', :'one']::text[]);
SELECT * FROM emulator_requests();

-- conditions the API does not evaluate stay local filters, results are exact
SELECT name FROM close_custom_objects
 WHERE lead_id = :'big' AND name LIKE 'Item 24%' AND id IS NOT NULL ORDER BY name;
SELECT r FROM emulator_requests() r ORDER BY length(r), r;
SELECT name FROM close_custom_objects
 WHERE lead_id = :'mixed' AND (status = 'paused' OR status IS NULL) ORDER BY name;
SELECT * FROM emulator_requests();
-- a case-insensitive comparison is not the API's exact match: filtered locally
SELECT count(name) FROM close_custom_objects
 WHERE lead_id = :'mixed' AND lead_id = upper(:'mixed') COLLATE "C";
SELECT * FROM emulator_requests();

-- custom_object_type_id: the table option and a condition go into the request
CREATE FOREIGN TABLE resources (id text, lead_id text, name text, custom_object_type_id text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');
SELECT name FROM resources WHERE lead_id = :'mixed';
SELECT * FROM emulator_requests();
SELECT name FROM close_custom_objects
 WHERE lead_id = :'mixed' AND custom_object_type_id = 'cotype_Subscription0000000000' ORDER BY name;
SELECT * FROM emulator_requests();
-- a condition that contradicts the table option needs no request
SELECT name FROM resources
 WHERE lead_id = :'mixed' AND custom_object_type_id = 'cotype_Subscription0000000000';
SELECT * FROM emulator_requests();
-- a type list is not one request parameter: filtered locally
SELECT name FROM close_custom_objects
 WHERE lead_id = :'mixed' AND custom_object_type_id IN ('cotype_1h5m6uHM9BZOpwVhyRJb4Y', 'cotype_x') ;
SELECT * FROM emulator_requests();

-- a lead with no objects, an unknown lead, and values no lead id can have
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'empty';
SELECT count(name) FROM close_custom_objects WHERE lead_id = 'lead_Unknown0000000000000000000000000000000000';
SELECT * FROM emulator_requests();
SELECT count(name) FROM close_custom_objects WHERE lead_id = '';
SELECT count(name) FROM close_custom_objects WHERE lead_id = 'lead_x&lead_id=lead_y';
SELECT count(name) FROM close_custom_objects WHERE lead_id = NULL;
SELECT count(name) FROM close_custom_objects WHERE lead_id = ANY (NULL::text[]);
SELECT * FROM emulator_requests();

-- prepared statements: custom plans and generic plans push the parameter
PREPARE by_lead(text) AS
  SELECT count(name) FROM close_custom_objects WHERE lead_id = $1;
EXECUTE by_lead(:'mixed');
EXECUTE by_lead(:'one');
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_lead(:'big');
EXECUTE by_lead(:'big');
EXECUTE by_lead(:'one');
PREPARE by_leads(text[]) AS
  SELECT lead_id, count(name) FROM close_custom_objects WHERE lead_id = ANY ($1)
  GROUP BY lead_id ORDER BY lead_id;
EXECUTE by_leads(ARRAY[:'one', :'mixed']);
RESET plan_cache_mode;
SELECT * FROM emulator_requests() ORDER BY 1;

-- a stable expression is computed once, before the scan
SELECT count(name) FROM close_custom_objects WHERE lead_id = lower('LEAD_') || 'One0000000000000000000000000000000000000000';
SELECT * FROM emulator_requests();

-- no usable lead or id condition: a search instead (see search.sql)
SELECT count(name) FROM close_custom_objects WHERE lead_id LIKE 'lead_Big%';
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one' OR name = 'Item 001';
SELECT regexp_replace(r, ' \{.*', ' ...') FROM emulator_requests() r;
