-- read_id: id conditions become GET /custom_object/{id}/; a 404 is no row;
-- values no Close id can have never reach a URL.
\set alpha 'custobj_MixedAlpha000000000000000000000000000000000'
\set gamma 'custobj_MixedGamma000000000000000000000000000000000'
\set sheet 'custobj_5J7mimiIKB1tQ3gVduP0c4UhXbNj5ptMLteAWRJu7Sf'
SELECT emulator_reset();

SELECT id, lead_id, name, date_created, custom FROM close_custom_objects WHERE id = :'sheet';
SELECT * FROM emulator_requests();

-- IN: one retrieval per distinct id; unknown ids (404) are no rows
SELECT id, name FROM close_custom_objects
 WHERE id IN (:'alpha', :'gamma', :'alpha', 'custobj_Nope00000000000000000000000000000000000000')
 ORDER BY id;
SELECT * FROM emulator_requests();

-- id wins over lead_id (fewer requests); lead_id is then checked locally
SELECT name FROM close_custom_objects
 WHERE id = :'alpha' AND lead_id = 'lead_Mixed00000000000000000000000000000000000000';
SELECT name FROM close_custom_objects
 WHERE id = :'alpha' AND lead_id = 'lead_One0000000000000000000000000000000000000000';
SELECT * FROM emulator_requests();

-- a table limited to one type does not show a record of another type
CREATE FOREIGN TABLE resources_by_id (id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');
SELECT name FROM resources_by_id WHERE id IN (:'alpha', :'gamma');
SELECT * FROM emulator_requests();

-- hostile values: nothing that is not "custobj_" and letters and digits is requested
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_../../lead/x';
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_a/?b=#c';
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_ünïcode';
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_ abc';
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_';
SELECT count(name) FROM close_custom_objects WHERE id = 'lead_Mixed00000000000000000000000000000000000000';
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_' || repeat('a', 10000);
SELECT * FROM emulator_requests();
-- a lead id is a query parameter: escaped, and never able to add another
SELECT count(name) FROM close_custom_objects WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000' || '&_skip=1';
SELECT * FROM emulator_requests();

-- prepared, generic plan
PREPARE by_id(text) AS SELECT name FROM close_custom_objects WHERE id = $1;
SET plan_cache_mode = force_generic_plan;
EXECUTE by_id(:'gamma');
EXECUTE by_id('custobj_../x');
RESET plan_cache_mode;
SELECT * FROM emulator_requests();
