-- review_lead: the lead's commits of session 4, attacked
\set api_url `echo "$CLOSE_API_URL"`
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
SELECT emulator_reset();

-- A custom field added in Close after this backend read the field schema:
-- the kept schema (a minute) must not refuse a column that reads it.  The
-- first scan sees the schema without cf_LeadEmployees (an answer replaced
-- once, as Close answered before the field was made).
CREATE FOREIGN TABLE rl_leads_ind (id text,
  industry text OPTIONS (field 'custom.cf_LeadIndustry0000000000000000000000000000000')
) SERVER close OPTIONS (resource 'lead');
CREATE FOREIGN TABLE rl_leads_emp (id text,
  employees numeric OPTIONS (field 'custom.cf_LeadEmployees000000000000000000000000000000')
) SERVER close OPTIONS (resource 'lead');
SELECT emulator_fault(jsonb_build_object('method', 'GET',
  'path_prefix', '/api/v1/custom_field_schema/lead/', 'action', 'replace_body', 'times', 1,
  'body', '{"fields": [{"id": "cf_LeadIndustry0000000000000000000000000000000", "type": "text", "accepts_multiple_values": false}]}'::jsonb));
SELECT id, industry FROM rl_leads_ind WHERE id = :'mixed';
SELECT emulator_clear();
-- the field is there now: the schema is asked again, and the scan reads it
SELECT id, employees FROM rl_leads_emp WHERE id = :'mixed';
SELECT * FROM emulator_requests();
-- a field Close really lacks is still refused, after one more look
CREATE FOREIGN TABLE rl_leads_typo (id text,
  nope text OPTIONS (field 'custom.cf_Nope000000000000000000000000000000000000000')
) SERVER close OPTIONS (resource 'lead');
SELECT emulator_clear();
SELECT id, nope FROM rl_leads_typo WHERE id = :'mixed';  -- ERROR
SELECT * FROM emulator_requests();
-- and the kept schema serves the next scan of a known field
SELECT emulator_clear();
SELECT id, employees FROM rl_leads_emp WHERE id = :'mixed';
SELECT * FROM emulator_requests();
DROP FOREIGN TABLE rl_leads_ind, rl_leads_emp, rl_leads_typo;

-- The same for custom object types, which a table with cache_ttl_ms reads
-- through the answer cache (shared by the backends): a type made in Close
-- after the types were cached is read, in this backend and in a new one.
\set device 'cotype_Device0000000000000000'
CREATE SERVER rl_cache_srv FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', cache_ttl_ms '60000');
CREATE USER MAPPING FOR CURRENT_USER SERVER rl_cache_srv OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE rl_devices (id text, name text)
  SERVER rl_cache_srv OPTIONS (custom_object_type_id :'device');
SELECT emulator_fault(jsonb_build_object('method', 'GET',
  'path_prefix', '/api/v1/custom_object_type/', 'action', 'replace_body', 'times', 1,
  'body', '{"data": []}'::jsonb));
-- Close has no such type yet
SELECT id, name FROM rl_devices WHERE id = 'custobj_Nope00000000000000000000000000000000000';  -- ERROR
\c -
SELECT emulator_clear();
-- a new backend: the cached answer lacks the type, so Close is asked again
SELECT id, name FROM rl_devices WHERE id = 'custobj_Nope00000000000000000000000000000000000';
SELECT * FROM emulator_requests();
DROP FOREIGN TABLE rl_devices;
DROP USER MAPPING FOR CURRENT_USER SERVER rl_cache_srv;
DROP SERVER rl_cache_srv;

-- Opportunities: a date_updated range given as a parameter of a generic
-- plan is the listing's filter; 'infinity' (no instant Close takes) is not
-- sent, the listing is read whole and the range checked here
CREATE FOREIGN TABLE rl_opps (id text, status_type text, date_updated timestamptz)
  SERVER close OPTIONS (resource 'opportunity');
SET plan_cache_mode = force_generic_plan;
PREPARE rl_since(timestamptz) AS
  SELECT count(*) FROM rl_opps WHERE date_updated > $1;
EXPLAIN (COSTS OFF) EXECUTE rl_since('2000-01-01 00:00+00');
SELECT emulator_clear();
EXECUTE rl_since('2000-01-01 00:00+00');
EXECUTE rl_since('infinity');
EXECUTE rl_since('-infinity');
SELECT * FROM emulator_requests();
DEALLOCATE rl_since;
RESET plan_cache_mode;
-- with the count pushed (a search) when no range applies, the same count
SELECT count(*) FROM rl_opps WHERE date_updated > '-infinity';
SELECT count(*) FROM rl_opps;
DROP FOREIGN TABLE rl_opps;
