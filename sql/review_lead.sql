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
