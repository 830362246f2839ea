-- rev_b: a hostile review of the read path, HTTP and pushdown changes.
\set api_url `echo "$CLOSE_API_URL"`
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
\set other 'lead_Other00000000000000000000000000000000000000'
SELECT emulator_reset();

-- 1. A lead's listing leaves out a record whose lead_id is another lead's
-- (Close's index lags behind a move or a merge).  A resource whose GETs
-- take _fields must then ask for lead_id whatever the query reads, or a
-- record moved away passes unseen: SELECT shows it as the lead's, and a
-- DELETE ... WHERE lead_id = ... deletes another lead's contact.
CREATE FOREIGN TABLE rev_b_contacts (id text, lead_id text, name text)
  SERVER close OPTIONS (resource 'contact');
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, name FROM rev_b_contacts WHERE lead_id = :'mixed';
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/contact/',
  'action', 'status', 'status', 200, 'times', 1,
  'body', jsonb_build_object('has_more', false, 'data', jsonb_build_array(
    jsonb_build_object('id', 'cont_Moved00000000000000000000000000000000000000', 'lead_id', :'other', 'name', 'Moved'),
    jsonb_build_object('id', 'cont_Stays00000000000000000000000000000000000000', 'lead_id', :'mixed', 'name', 'Stays')))));
SELECT id, name FROM rev_b_contacts WHERE lead_id = :'mixed';
SELECT * FROM emulator_requests();
-- the same for the lead_id column read, named once
SELECT name, lead_id FROM rev_b_contacts WHERE lead_id = :'mixed' ORDER BY name;
SELECT * FROM emulator_requests();

-- 2. A scan of several leads ("lead_id IN (A, B)") where an object moved
-- from A to B: A's lagging listing still holds it (its lead_id now B) while
-- B's listing does not yet.  The object is B's, so "lead_id IN (A, B)"
-- selects it: one row, not none; and one row, not two, when B's listing
-- has it too.
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/',
  'query_contains', 'lead_id=' || :'mixed', 'action', 'status', 'status', 200, 'times', 1,
  'body', jsonb_build_object('has_more', false, 'data', jsonb_build_array(
    jsonb_build_object('id', 'custobj_Moved00000000000000000000000000000000000000', 'lead_id', :'other', 'name', 'Moved', 'custom_object_type_id', 'cotype_1h5m6uHM9BZOpwVhyRJb4Y'),
    jsonb_build_object('id', 'custobj_Stays00000000000000000000000000000000000000', 'lead_id', :'mixed', 'name', 'Stays', 'custom_object_type_id', 'cotype_1h5m6uHM9BZOpwVhyRJb4Y')))));
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/',
  'query_contains', 'lead_id=' || :'other', 'action', 'status', 'status', 200, 'times', 1,
  'body', jsonb_build_object('has_more', false, 'data', jsonb_build_array())));
SELECT id, lead_id, name FROM close_custom_objects
 WHERE lead_id IN (:'mixed', :'other') ORDER BY id;
SELECT * FROM emulator_requests() ORDER BY 1;
-- B's listing has it too: still one row
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/',
  'query_contains', 'lead_id=' || :'mixed', 'action', 'status', 'status', 200, 'times', 1,
  'body', jsonb_build_object('has_more', false, 'data', jsonb_build_array(
    jsonb_build_object('id', 'custobj_Moved00000000000000000000000000000000000000', 'lead_id', :'other', 'name', 'Moved', 'custom_object_type_id', 'cotype_1h5m6uHM9BZOpwVhyRJb4Y'),
    jsonb_build_object('id', 'custobj_Stays00000000000000000000000000000000000000', 'lead_id', :'mixed', 'name', 'Stays', 'custom_object_type_id', 'cotype_1h5m6uHM9BZOpwVhyRJb4Y')))));
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/',
  'query_contains', 'lead_id=' || :'other', 'action', 'status', 'status', 200, 'times', 1,
  'body', jsonb_build_object('has_more', false, 'data', jsonb_build_array(
    jsonb_build_object('id', 'custobj_Moved00000000000000000000000000000000000000', 'lead_id', :'other', 'name', 'Moved', 'custom_object_type_id', 'cotype_1h5m6uHM9BZOpwVhyRJb4Y')))));
SELECT id, lead_id, name FROM close_custom_objects
 WHERE lead_id IN (:'mixed', :'other') ORDER BY id;
-- the other order of the leads: the same
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/',
  'query_contains', 'lead_id=' || :'mixed', 'action', 'status', 'status', 200, 'times', 1,
  'body', jsonb_build_object('has_more', false, 'data', jsonb_build_array(
    jsonb_build_object('id', 'custobj_Moved00000000000000000000000000000000000000', 'lead_id', :'other', 'name', 'Moved', 'custom_object_type_id', 'cotype_1h5m6uHM9BZOpwVhyRJb4Y')))));
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/',
  'query_contains', 'lead_id=' || :'other', 'action', 'status', 'status', 200, 'times', 1,
  'body', jsonb_build_object('has_more', false, 'data', jsonb_build_array(
    jsonb_build_object('id', 'custobj_Moved00000000000000000000000000000000000000', 'lead_id', :'other', 'name', 'Moved', 'custom_object_type_id', 'cotype_1h5m6uHM9BZOpwVhyRJb4Y')))));
SELECT id, lead_id, name FROM close_custom_objects
 WHERE lead_id IN (:'other', :'mixed') ORDER BY id;
-- one lead alone: the object moved away is not its row
SELECT emulator_fault(jsonb_build_object('method', 'GET', 'path_prefix', '/api/v1/custom_object/',
  'query_contains', 'lead_id=' || :'mixed', 'action', 'status', 'status', 200, 'times', 1,
  'body', jsonb_build_object('has_more', false, 'data', jsonb_build_array(
    jsonb_build_object('id', 'custobj_Moved00000000000000000000000000000000000000', 'lead_id', :'other', 'name', 'Moved', 'custom_object_type_id', 'cotype_1h5m6uHM9BZOpwVhyRJb4Y')))));
SELECT id, lead_id, name FROM close_custom_objects WHERE lead_id = :'mixed';
SELECT emulator_reset();
