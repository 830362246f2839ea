-- review_crm_write: hostile review of CRM writes and IMPORT crm
\set VERBOSITY default
SELECT emulator_reset();
CREATE SCHEMA rcw;
IMPORT FOREIGN SCHEMA crm FROM SERVER close INTO rcw;
INSERT INTO rcw.leads (name) VALUES ('Review Lead') RETURNING id AS lead_id \gset
SELECT emulator_clear();

-- 1. a lead_id that is not a lead id (JSON null in a jsonb column, "", a
-- number) would make Close create a new lead: refused before any request
CREATE FOREIGN TABLE rcw.contacts_j (id text, lead_id jsonb, name text)
  SERVER close OPTIONS (resource 'contact');
INSERT INTO rcw.contacts_j (lead_id, name) VALUES ('null', 'Null Lead');  -- ERROR
INSERT INTO rcw.contacts_j (lead_id, name) VALUES ('0', 'Zero Lead');  -- ERROR
INSERT INTO rcw.contacts (lead_id, name) VALUES ('', 'Empty Lead');  -- ERROR
INSERT INTO rcw.contacts (lead_id, name) VALUES ('lead_', 'Bare Prefix');  -- ERROR
INSERT INTO rcw.contacts_j (lead_id, name) VALUES (jsonb_build_object('a', repeat('x', 100)), 'Long');  -- ERROR
SELECT * FROM emulator_requests();
-- a column DEFAULT is checked the same
ALTER FOREIGN TABLE rcw.contacts_j ALTER COLUMN lead_id SET DEFAULT 'null';
INSERT INTO rcw.contacts_j (name) VALUES ('Default Lead');  -- ERROR
ALTER FOREIGN TABLE rcw.contacts_j ALTER COLUMN lead_id DROP DEFAULT;
-- a generic plan's parameter is checked at each execution
SET plan_cache_mode = force_generic_plan;
PREPARE new_contact(text) AS INSERT INTO rcw.contacts (lead_id, name) VALUES ($1, 'Prepared');
EXECUTE new_contact(NULL);  -- ERROR
EXECUTE new_contact('');  -- ERROR
DEALLOCATE new_contact;
PREPARE move_contact(text, text) AS UPDATE rcw.contacts SET lead_id = $1 WHERE id = $2;
EXECUTE move_contact('lead_One0000000000000000000000000000000000000000', 'cont_x');  -- ERROR
DEALLOCATE move_contact;
RESET plan_cache_mode;
-- a custom object's lead_id the same
CREATE FOREIGN TABLE rcw.objs_j (id text, lead_id jsonb, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');
INSERT INTO rcw.objs_j (lead_id, name) VALUES ('false', 'False Lead');  -- ERROR
-- a lead id in a jsonb column is one
SELECT emulator_clear();
INSERT INTO rcw.contacts_j (lead_id, name) VALUES (to_jsonb(:'lead_id'::text), 'Json Lead')
RETURNING lead_id = to_jsonb(:'lead_id'::text) AS same_lead, name;
SELECT count(*) AS posts FROM emulator_requests();

-- 2. a BEFORE ROW trigger clearing lead_id; COPY; deferred; ON CONFLICT
CREATE FUNCTION rcw.clear_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.lead_id := NULL; RETURN NEW; END $$;
CREATE TRIGGER clear_lead BEFORE INSERT ON rcw.contacts FOR EACH ROW EXECUTE FUNCTION rcw.clear_lead();
INSERT INTO rcw.contacts (lead_id, name) VALUES (:'lead_id', 'Trigger');  -- ERROR
DROP TRIGGER clear_lead ON rcw.contacts;
COPY rcw.contacts (name) FROM STDIN;  -- ERROR
Copied
\.
ALTER FOREIGN TABLE rcw.opportunities OPTIONS (ADD write_mode 'deferred');
BEGIN;
INSERT INTO rcw.opportunities (value) VALUES (100);  -- ERROR
ROLLBACK;
ALTER FOREIGN TABLE rcw.opportunities OPTIONS (DROP write_mode);
INSERT INTO rcw.contacts (lead_id, name) VALUES (:'lead_id', 'x') ON CONFLICT DO NOTHING;  -- ERROR
SELECT * FROM emulator_requests();

-- 3. create-only keys: UPDATE ... FROM, a trigger (MERGE into a foreign
-- table is PostgreSQL's own refusal, worded by major)
UPDATE rcw.contacts c SET lead_id = l.id FROM rcw.leads l WHERE l.id = :'lead_id' AND c.lead_id = l.id;  -- ERROR
CREATE FUNCTION rcw.move_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.lead_id := 'lead_One0000000000000000000000000000000000000000'; RETURN NEW; END $$;
INSERT INTO rcw.contacts (lead_id, name) VALUES (:'lead_id', 'Mover') RETURNING id AS mover \gset
CREATE TRIGGER move_lead BEFORE UPDATE ON rcw.contacts FOR EACH ROW EXECUTE FUNCTION rcw.move_lead();
SELECT emulator_clear();
UPDATE rcw.contacts SET title = 'moved' WHERE id = :'mover';  -- ERROR
DROP TRIGGER move_lead ON rcw.contacts;
SELECT * FROM emulator_requests();

-- 4. DELETE ... RETURNING
SELECT emulator_clear();
DELETE FROM rcw.contacts WHERE id = :'mover' RETURNING name, lead_id = :'lead_id' AS same_lead;
SELECT * FROM emulator_requests();

-- 5. normalisations that are no drop
ALTER FOREIGN TABLE rcw.opportunities OPTIONS (ADD write_mode 'immediate');
INSERT INTO rcw.opportunities (lead_id, value, date_won, note)
VALUES (:'lead_id', 1234, '2026-01-15', '') RETURNING id AS opp, value, date_won, note \gset
UPDATE rcw.opportunities SET note = NULL, date_won = NULL WHERE id = :'opp';
UPDATE rcw.opportunities SET status_id = rpad('stat_Won', 48, '0') WHERE id = :'opp'
RETURNING date_won IS NOT NULL AS won, status_type;
INSERT INTO rcw.contacts (lead_id, name, emails, phones, urls)
VALUES (:'lead_id', 'Empty', '[]', '[]', '[]') RETURNING emails, phones, urls;
-- "+44 (0)20 ..." is +442079460958 in E.164 (the "(0)" trunk prefix goes):
-- no WARNING (Close's answer stands in)
SELECT emulator_fault(jsonb_build_object('method', 'POST', 'path_prefix', '/api/v1/contact/',
  'action', 'replace_body', 'times', 1, 'body', jsonb_build_object(
    'id', 'cont_Replaced000000000000000000000000000000000', 'lead_id', :'lead_id', 'name', 'UK',
    'phones', '[{"phone": "+442079460958", "phone_formatted": "+44 20 7946 0958", "type": "office", "country": "GB"}]'::jsonb)));
INSERT INTO rcw.contacts (lead_id, name, phones)
VALUES (:'lead_id', 'UK', '[{"phone": "+44 (0)20 7946 0958", "type": "office"}]');

-- 6. a status by its label: status_label is written as Close's "status",
-- and what Close answers under status_label is compared with it (no
-- WARNING when kept, one when not); a column OPTIONS (field 'status') too
SELECT emulator_clear();
INSERT INTO rcw.leads (name, status_label) VALUES ('Labelled', 'Qualified')
RETURNING id AS lab_lead, status_label, status_id = rpad('stat_Qualified', 48, '0') AS qualified \gset
SELECT :'status_label', :'qualified';
UPDATE rcw.opportunities SET status_label = 'Lost' WHERE id = :'opp' RETURNING status_label, status_type;
SELECT emulator_fault(jsonb_build_object('method', 'PUT', 'path_prefix', '/api/v1/lead/',
  'action', 'replace_body', 'times', 1, 'body', jsonb_build_object(
    'id', :'lab_lead', 'name', 'Labelled', 'status_label', 'Qualified')));
UPDATE rcw.leads SET status_label = 'Customer' WHERE id = :'lab_lead';
ALTER FOREIGN TABLE rcw.opportunities ADD COLUMN status text OPTIONS (field 'status');
UPDATE rcw.opportunities SET status = 'Won' WHERE id = :'opp';
ALTER FOREIGN TABLE rcw.opportunities DROP COLUMN status;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET %';
-- deferred: Close sets status_label from status_id as well: RETURNING it is
-- refused, as for other values Close sets
ALTER FOREIGN TABLE rcw.leads OPTIONS (ADD write_mode 'deferred');
INSERT INTO rcw.leads (name, status_id) VALUES ('Deferred', rpad('stat_Qualified', 48, '0'))
RETURNING status_label;  -- ERROR
ALTER FOREIGN TABLE rcw.leads OPTIONS (DROP write_mode);

-- 7. an immediate write to a contact whose UPDATE is queued is refused,
-- naming it a contact
INSERT INTO rcw.contacts (lead_id, name) VALUES (:'lead_id', 'Queued') RETURNING id AS queued \gset
CREATE FOREIGN TABLE rcw.contacts_now (id text, title text)
  SERVER close OPTIONS (resource 'contact', write_mode 'immediate');
ALTER FOREIGN TABLE rcw.contacts OPTIONS (ADD write_mode 'deferred');
BEGIN;
UPDATE rcw.contacts SET title = 'first' WHERE id = :'queued';
UPDATE rcw.contacts_now SET title = 'second' WHERE id = :'queued';  -- ERROR
ROLLBACK;
-- and an UPDATE through another contacts table after a queued INSERT
BEGIN;
INSERT INTO rcw.contacts (lead_id, name) VALUES (:'lead_id', 'Queued Too');
UPDATE rcw.contacts_now SET title = 'third' WHERE id = :'queued';  -- ERROR
ROLLBACK;
ALTER FOREIGN TABLE rcw.contacts OPTIONS (DROP write_mode);

-- 8. DELETE of a lead takes its contacts and opportunities in Close: a
-- later scan of the lead's contacts in the transaction finds none, a DELETE
-- of one by id counts 0 rows (Close answers 404: nothing was deleted)
INSERT INTO rcw.leads (name) VALUES ('Doomed') RETURNING id AS doomed \gset
INSERT INTO rcw.contacts (lead_id, name) VALUES (:'doomed', 'Doomed 1') RETURNING id AS doomed_c \gset
INSERT INTO rcw.opportunities (lead_id, value) VALUES (:'doomed', 1);
SELECT emulator_clear();
BEGIN;
DELETE FROM rcw.leads WHERE id = :'doomed' RETURNING name;
SELECT count(*) AS contacts FROM rcw.contacts WHERE lead_id = :'doomed';
SELECT count(*) AS opportunities FROM rcw.opportunities WHERE lead_id = :'doomed';
DELETE FROM rcw.contacts WHERE id = :'doomed_c';
COMMIT;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'POST /data/search/%';
-- deferred: the lead's DELETE goes first at COMMIT, then its contacts', each
-- a WARNING that it was gone
INSERT INTO rcw.leads (name) VALUES ('Doomed 2') RETURNING id AS doomed \gset
INSERT INTO rcw.contacts (lead_id, name) VALUES (:'doomed', 'Doomed 2a');
ALTER FOREIGN TABLE rcw.leads OPTIONS (ADD write_mode 'deferred');
ALTER FOREIGN TABLE rcw.contacts OPTIONS (ADD write_mode 'deferred');
BEGIN;
DELETE FROM rcw.leads WHERE id = :'doomed';
DELETE FROM rcw.contacts WHERE lead_id = :'doomed';
COMMIT;
SELECT statement, foreign_table, action, http_status, state FROM close_fdw_write_log();
ALTER FOREIGN TABLE rcw.leads OPTIONS (DROP write_mode);
ALTER FOREIGN TABLE rcw.contacts OPTIONS (DROP write_mode);

-- 9. read-only resources: every path
CREATE TABLE rcw.local_users (id text, email text);
INSERT INTO rcw.users SELECT * FROM rcw.users LIMIT 1;  -- ERROR

-- IMPORT: a custom field schema answering 404 fails the IMPORT, nothing made
CREATE SCHEMA rcw_fail;
SELECT emulator_fault(jsonb_build_object(
  'path_prefix', '/api/v1/custom_field_schema/opportunity/', 'action', 'status', 'status', 404, 'times', 1,
  'body', '{"error": "Not found"}'::jsonb));
\set VERBOSITY terse
IMPORT FOREIGN SCHEMA crm FROM SERVER close INTO rcw_fail;  -- ERROR
\set VERBOSITY default
SELECT count(*) AS tables FROM pg_class WHERE relnamespace = 'rcw_fail'::regnamespace;
DROP SCHEMA rcw_fail;

SET client_min_messages = warning;
DROP SCHEMA rcw CASCADE;
RESET client_min_messages;
