-- crm_write: INSERT, UPDATE and DELETE on leads, contacts and opportunities
-- (POST path, PUT path{id}/, DELETE path{id}/ of the table's resource, 200
-- answers), with RETURNING from Close's answer; the lead_id refusal before
-- any request; read-only resources and keys refused; what Close did not
-- keep of what was sent is one WARNING per statement (its normalisations,
-- such as E.164 phone numbers, are not); opportunity money in cents.
\set VERBOSITY default
SELECT emulator_reset();
CREATE SCHEMA cw;
IMPORT FOREIGN SCHEMA crm FROM SERVER close INTO cw;
SELECT emulator_clear();

-- leads: POST /lead/ with the columns given, RETURNING from the answer
INSERT INTO cw.leads (name, description, url, status_id, addresses, industry, employees, segments)
VALUES ('Acme Write', 'made by crm_write', 'https://acme.example',
        'stat_Qualified0000000000000000000000000000000000',
        '[{"label": "business", "address_1": "1 Main St", "city": "Springfield", "country": "US"}]',
        'Anvils', 12, ARRAY['SMB'])
RETURNING id AS lead_id, name, display_name, status_label, industry, employees, segments,
          addresses->0->>'city' AS city, created_by, date_created \gset
SELECT :'lead_id' LIKE 'lead_%' AS is_lead, :'name', :'display_name', :'status_label',
       :'industry', :'employees', :'segments', :'city', :'created_by', :'date_created';
SELECT * FROM emulator_requests();

-- contacts: lead_id is required; Close's E.164 phone numbers and its extra
-- keys (phone_formatted, country, is_unsubscribed) are no WARNING
SELECT emulator_clear();
INSERT INTO cw.contacts (lead_id, name, title, emails, phones, nickname, languages)
VALUES (:'lead_id', 'Jane Write', 'CEO', '[{"email": "jane@acme.example", "type": "office"}]',
        '[{"phone": "(800) 444-5555", "type": "office"}]', 'JW', ARRAY['English', 'German'])
RETURNING id AS contact_id, lead_id = :'lead_id' AS same_lead, name, title, display_name,
          emails, phones, nickname, languages \gset
SELECT :'contact_id' LIKE 'cont_%' AS is_contact, :'same_lead', :'name', :'title', :'display_name',
       :'emails', :'phones', :'nickname', :'languages';
SELECT * FROM emulator_requests();

-- opportunities: money is bigint cents, in and out
SELECT emulator_clear();
INSERT INTO cw.opportunities (lead_id, status_id, value, value_period, confidence, note, contact_id, seats)
VALUES (:'lead_id', 'stat_Active0000000000000000000000000000000000000', 50000, 'one_time', 40,
        'first deal', :'contact_id', 3)
RETURNING id AS opp_id, value, value_formatted, value_currency, expected_value, annualized_value,
          status_label, status_type, pipeline_name, contact_name, confidence, note, seats \gset
SELECT :'opp_id' LIKE 'oppo_%' AS is_opportunity, :'value', :'value_formatted', :'value_currency',
       :'expected_value', :'annualized_value', :'status_label', :'status_type', :'pipeline_name',
       :'contact_name', :'confidence', :'note', :'seats';
INSERT INTO cw.opportunities (lead_id, pipeline_id, value, value_period, confidence)
VALUES (:'lead_id', 'pipe_Renewals00000000000000', 5000, 'monthly', 50)
RETURNING value, value_formatted, expected_value, annualized_value, annualized_expected_value,
          pipeline_name, status_label;
SELECT * FROM emulator_requests();

-- EXPLAIN names the resource's requests
EXPLAIN (VERBOSE, COSTS OFF) INSERT INTO cw.opportunities (lead_id, value) VALUES (:'lead_id', 1);

-- UPDATE and DELETE by id: PUT / DELETE of the resource's path, the body
-- holding only the columns assigned
SELECT emulator_clear();
UPDATE cw.opportunities SET value = 75000, confidence = 80, note = NULL WHERE id = :'opp_id';
UPDATE cw.contacts SET title = 'CTO', nickname = NULL, languages = ARRAY['French'] WHERE id = :'contact_id';
UPDATE cw.leads SET description = 'updated', employees = 13 WHERE id = :'lead_id';
SELECT * FROM emulator_requests();

-- the lead_id refusal: before any request, whatever else the row holds
SELECT emulator_clear();
INSERT INTO cw.contacts (name) VALUES ('Orphan');  -- ERROR
INSERT INTO cw.contacts (lead_id, name) VALUES (NULL, 'Orphan');  -- ERROR
INSERT INTO cw.opportunities (value, note) VALUES (100, 'orphan deal');  -- ERROR
-- keys Close sets, or sets on creation only, are refused before any request
INSERT INTO cw.leads (id, name) VALUES ('lead_x', 'x');  -- ERROR
INSERT INTO cw.opportunities (lead_id, value_formatted) VALUES (:'lead_id', '$5');  -- ERROR
UPDATE cw.contacts SET lead_id = 'lead_One0000000000000000000000000000000000000000' WHERE id = :'contact_id';  -- ERROR
UPDATE cw.opportunities SET pipeline_id = 'pipe_Renewals00000000000000' WHERE id = :'opp_id';  -- ERROR
UPDATE cw.opportunities SET expected_value = 1 WHERE id = :'opp_id';  -- ERROR
-- users, statuses and pipelines are read-only
INSERT INTO cw.users (email) VALUES ('new@example.com');  -- ERROR
UPDATE cw.pipelines SET name = 'Renamed' WHERE id = 'pipe_Renewals00000000000000';  -- ERROR
DELETE FROM cw.lead_statuses WHERE id = 'stat_Qualified0000000000000000000000000000000000';  -- ERROR
DELETE FROM cw.opportunity_statuses;  -- ERROR
COPY cw.users (email) FROM STDIN;  -- ERROR
new@example.com
\.
SELECT count(*) AS requests FROM emulator_requests();
-- rows go one by one: a row without lead_id stops the statement at that
-- row, and the rows sent before stay in Close (the rollback WARNING, not
-- shown here, and the write log say so)
SET client_min_messages = error;
INSERT INTO cw.contacts (lead_id, name) VALUES (:'lead_id', 'First'), (NULL, 'Second');  -- ERROR
RESET client_min_messages;
SELECT * FROM emulator_requests();
SELECT statement, action, object_id LIKE 'cont_%' AS contact, http_status, state FROM close_fdw_write_log();

-- what Close did not keep is one WARNING per statement, naming the columns
-- and counting the rows: a key Close does not know is accepted and dropped
ALTER FOREIGN TABLE cw.contacts ADD COLUMN shoe_size text OPTIONS (field 'shoe_size');
SELECT emulator_clear();
INSERT INTO cw.contacts (lead_id, name, shoe_size, phones)
VALUES (:'lead_id', 'Dropped One', '44', '[{"phone": "+44 20 7946 0000", "type": "office"}]'),
       (:'lead_id', 'Dropped Two', '38', NULL),
       (:'lead_id', 'Kept', NULL, NULL)
RETURNING name, shoe_size, phones->0->>'phone' AS phone;
UPDATE cw.contacts SET shoe_size = '45', title = 'VP' WHERE id = :'contact_id';
SELECT * FROM emulator_requests();
-- a custom field key of another object type is dropped too
ALTER FOREIGN TABLE cw.leads ADD COLUMN wrong_field text OPTIONS (field 'custom.cf_OppSource000000000000000000000000000000000');
INSERT INTO cw.leads (name, wrong_field, industry) VALUES ('Dropped Lead', 'web', 'Tools')
RETURNING name, wrong_field, industry;
ALTER FOREIGN TABLE cw.leads DROP COLUMN wrong_field;
-- a key of the custom jsonb column is named with its key
INSERT INTO cw.leads (name, custom)
VALUES ('Map Lead', '{"cf_Nope00000000000000000000000000000000000000000": 1,
                      "cf_LeadIndustry0000000000000000000000000000000": "Mapped"}')
RETURNING name, industry, custom;
-- Close's normalisations are no WARNING (email case, E.164 phones with
-- extra keys, a number or an instant written another way); another change
-- is (here a title's case): the answer is replaced to show them all at once
ALTER FOREIGN TABLE cw.contacts ADD COLUMN met_at timestamptz OPTIONS (field 'met_at'),
                                ADD COLUMN rank numeric OPTIONS (field 'rank');
SELECT emulator_fault(jsonb_build_object('method', 'POST', 'path_prefix', '/api/v1/contact/',
  'action', 'replace_body', 'times', 1, 'body', jsonb_build_object(
    'id', 'cont_Replaced000000000000000000000000000000000', 'lead_id', :'lead_id', 'name', 'Norm',
    'title', 'cto', 'emails', '[{"email": "NORM@ACME.EXAMPLE", "type": "office", "is_unsubscribed": false}]'::jsonb,
    'phones', '[{"phone": "+18004445555", "phone_formatted": "+1 800-444-5555", "type": "office", "country": "US"}]'::jsonb,
    'met_at', '2024-03-01T10:00:00+02:00', 'rank', 12.5)));
INSERT INTO cw.contacts (lead_id, name, title, emails, phones, met_at, rank)
VALUES (:'lead_id', 'Norm', 'CTO', '[{"email": "norm@acme.example", "type": "office"}]',
        '[{"phone": "800.444.5555", "type": "office"}]', '2024-03-01 08:00:00+00', 12.50)
RETURNING id, title, emails->0->>'email' AS email, met_at, rank;
ALTER FOREIGN TABLE cw.contacts DROP COLUMN met_at, DROP COLUMN rank;
-- a column with no field option and no such key is still refused
ALTER FOREIGN TABLE cw.contacts ADD COLUMN hat_size text;
INSERT INTO cw.contacts (lead_id, name, hat_size) VALUES (:'lead_id', 'Hat', 'L');  -- ERROR
ALTER FOREIGN TABLE cw.contacts DROP COLUMN hat_size;

-- the write log names each resource's records
SELECT emulator_clear();
SELECT emulator_fault('{"method": "POST", "path_prefix": "/api/v1/contact/", "action": "delay", "seconds": 0, "times": 1}');
SELECT emulator_fault('{"method": "POST", "path_prefix": "/api/v1/contact/", "action": "status", "status": 400, "times": 1,
                        "body": {"errors": [], "field-errors": {"name": "Not this one."}}}');
INSERT INTO cw.contacts (lead_id, name) VALUES (:'lead_id', 'Logged'), (:'lead_id', 'Refused');  -- ERROR
SELECT statement, foreign_table, action, object_id LIKE 'cont_%' AS contact, lead_id = :'lead_id' AS lead,
       http_status, state FROM close_fdw_write_log();
SELECT emulator_call('DELETE', '/_emulator/faults');

-- a POST whose answer is lost (a gateway's 502) is never sent again: the
-- error says the lead may have been created; a PUT is retried
SELECT emulator_clear();
SELECT emulator_fault('{"method": "POST", "path_prefix": "/api/v1/lead/", "action": "status", "status": 502, "times": 1}');
INSERT INTO cw.leads (name) VALUES ('Maybe Lead');  -- ERROR
SELECT emulator_fault('{"method": "PUT", "path_prefix": "/api/v1/lead/", "action": "status", "status": 502, "times": 1}');
UPDATE cw.leads SET url = 'https://retried.example' WHERE id = :'lead_id';
SELECT * FROM emulator_requests();

-- batches and deferred writes go to the same paths
ALTER FOREIGN TABLE cw.contacts OPTIONS (ADD batch_size '10');
SELECT emulator_clear();
INSERT INTO cw.contacts (lead_id, name) SELECT :'lead_id', 'Batch ' || i FROM generate_series(1, 3) i;
SELECT count(*) AS posts FROM emulator_requests() r WHERE r LIKE 'POST /contact/ %';
ALTER FOREIGN TABLE cw.opportunities OPTIONS (ADD write_mode 'deferred');
SELECT emulator_clear();
BEGIN;
UPDATE cw.opportunities SET value = 100 WHERE id = :'opp_id';
INSERT INTO cw.opportunities (lead_id, value) VALUES (:'lead_id', 12345);
SELECT count(*) AS sent_before_commit FROM emulator_requests();
COMMIT;
SELECT * FROM emulator_requests();
SELECT statement, foreign_table, action, http_status, state FROM close_fdw_write_log();
-- deferred: what Close did not keep is told at COMMIT
ALTER FOREIGN TABLE cw.opportunities ADD COLUMN stage text OPTIONS (field 'stage');
BEGIN;
INSERT INTO cw.opportunities (lead_id, value, stage) VALUES (:'lead_id', 1, 'late'), (:'lead_id', 2, 'later');
COMMIT;
ALTER FOREIGN TABLE cw.opportunities DROP COLUMN stage;
ALTER FOREIGN TABLE cw.opportunities OPTIONS (DROP write_mode);

-- DELETE by id: 200 {} accepted; a record already gone is not counted
SELECT emulator_clear();
DELETE FROM cw.opportunities WHERE id = :'opp_id';
DELETE FROM cw.opportunities WHERE id = :'opp_id';
DELETE FROM cw.contacts WHERE id = :'contact_id';
DELETE FROM cw.leads WHERE id = :'lead_id';
SELECT * FROM emulator_requests();

-- a lead whose DELETE is queued: an object created in it at once is
-- refused (COMMIT would delete it with the lead, where in statement order
-- its INSERT fails); nothing is sent, and ROLLBACK sends nothing either
INSERT INTO cw.leads (name) VALUES ('Doomed') RETURNING id AS doomed \gset
ALTER FOREIGN TABLE cw.leads OPTIONS (ADD write_mode 'deferred');
SELECT emulator_clear();
BEGIN;
DELETE FROM cw.leads WHERE id = :'doomed';
\set VERBOSITY terse
INSERT INTO cw.contacts (lead_id, name) VALUES (:'doomed', 'Too late');  -- ERROR
\set VERBOSITY default
ROLLBACK;
SELECT * FROM emulator_requests();
ALTER FOREIGN TABLE cw.leads OPTIONS (DROP write_mode);
DELETE FROM cw.leads WHERE id = :'doomed';

SET client_min_messages = warning;
DROP SCHEMA cw CASCADE;
RESET client_min_messages;
