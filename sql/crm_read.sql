-- crm_read: leads, contacts, opportunities, users, statuses and pipelines
-- read through their REST endpoints: GET by id, lead_id listings, whole
-- listings (paged, filtered where Close's meaning is SQL's), joins, costs.
\set api_url `echo "$CLOSE_API_URL"`
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
\set one 'lead_One0000000000000000000000000000000000000000'
\set empty 'lead_Empty00000000000000000000000000000000000000'
SELECT emulator_reset();

CREATE FOREIGN TABLE crm_leads (
  id text, name text, display_name text, status_id text, status_label text,
  organization_id text, created_by text, date_created timestamptz,
  date_updated timestamptz, custom jsonb
) SERVER close OPTIONS (resource 'lead');

-- by id: GET /lead/{id}/ with _fields naming the keys the scan reads
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, name FROM crm_leads WHERE id = :'mixed';
SELECT id, name FROM crm_leads WHERE id = :'mixed';
SELECT * FROM emulator_requests();
-- IN: one GET per distinct id; a 404 is no row; an id of another prefix asks nothing
SELECT id, name, status_label FROM crm_leads
 WHERE id IN (:'mixed', :'one', :'mixed', 'lead_Nosuch000000000000000000000000000000000000', 'cont_x')
 ORDER BY id;
SELECT r FROM emulator_requests() r ORDER BY r;
-- a prepared statement keeps the pushdown in its generic plan
PREPARE lead_by_id(text) AS SELECT name FROM crm_leads WHERE id = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE lead_by_id(:'one');
EXECUTE lead_by_id(:'one');
RESET plan_cache_mode;
DEALLOCATE lead_by_id;
SELECT * FROM emulator_requests();

-- without a key: the listing, paged (pages overlap by one lead)
CREATE SERVER crm_small FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '4', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER crm_small OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE crm_leads_paged (id text, name text)
  SERVER crm_small OPTIONS (resource 'lead');
EXPLAIN (VERBOSE, COSTS OFF) SELECT name FROM crm_leads_paged WHERE name LIKE 'Plain%';
SELECT count(*), count(DISTINCT id) FROM crm_leads_paged;
SELECT * FROM emulator_requests();
-- the whole record (no _fields), and the deprecated name-keyed "custom" object is not data
SELECT name, custom FROM crm_leads WHERE id = :'one';
SELECT * FROM emulator_requests();
CREATE FOREIGN TABLE crm_bad (id text, custom text) SERVER close OPTIONS (resource 'lead');
SELECT * FROM crm_bad;  -- ERROR
DROP FOREIGN TABLE crm_bad;

-- a listing Close caps at some _skip: the answer past it is an error, never fewer rows
SELECT emulator_call('POST', '/_emulator/config', '{"max_skip": 4}');
SELECT count(*) FROM crm_leads_paged;  -- ERROR
SELECT * FROM emulator_requests();
SELECT emulator_reset();

-- count(*) is not answered by a custom object search; ANALYZE skips the table
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM crm_leads_paged;
ANALYZE crm_leads_paged;

-- writes are refused before any request
INSERT INTO crm_leads (name) VALUES ('x');  -- ERROR
UPDATE crm_leads SET name = 'x' WHERE id = :'one';  -- ERROR
DELETE FROM crm_leads WHERE id = :'one';  -- ERROR
SELECT * FROM emulator_requests();
