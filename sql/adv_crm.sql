-- adv_crm: the CRM tables against close-crm-api.md, where our code relied
-- on more than the sheet promises.
\set VERBOSITY default
SELECT emulator_reset();
CREATE SCHEMA ac;
IMPORT FOREIGN SCHEMA crm FROM SERVER close INTO ac;

-- 1. A deferred write's RETURNING cannot show a value Close gives a key the
-- write leaves out: a new opportunity's status, pipeline, confidence (50)
-- and user (the key's), a new lead's status (the org's first), date_won
-- when the status becomes won.  Refused (0A000), not shown as NULL or as
-- the old value; a column the statement assigns is still shown as given.
ALTER FOREIGN TABLE ac.opportunities OPTIONS (ADD write_mode 'deferred');
ALTER FOREIGN TABLE ac.leads OPTIONS (ADD write_mode 'deferred');
SELECT emulator_clear();
BEGIN;
INSERT INTO ac.opportunities (lead_id, value)
VALUES ('lead_Plain10000000000000000000000000000000000000', 100) RETURNING confidence;  -- ERROR
ROLLBACK;
BEGIN;
INSERT INTO ac.opportunities (lead_id, value)
VALUES ('lead_Plain10000000000000000000000000000000000000', 100) RETURNING status_id;  -- ERROR
ROLLBACK;
BEGIN;
INSERT INTO ac.opportunities (lead_id, value)
VALUES ('lead_Plain10000000000000000000000000000000000000', 100) RETURNING user_id;  -- ERROR
ROLLBACK;
BEGIN;
INSERT INTO ac.leads (name) VALUES ('Deferred Lead') RETURNING status_id;  -- ERROR
ROLLBACK;
BEGIN;
UPDATE ac.opportunities SET status_id = 'stat_Won0000000000000000000000000000000000000000'
 WHERE id = 'oppo_Plain3Demo000000000000000000000000000000000' RETURNING date_won;  -- ERROR
ROLLBACK;
-- a row routed to a foreign partition sends every column it has, but not
-- its NULLs: Close fills those, so RETURNING them is refused too
CREATE TABLE ac.opp_parts (id text, lead_id text, value bigint, confidence integer)
  PARTITION BY LIST (lead_id);
CREATE FOREIGN TABLE ac.opp_plain1 PARTITION OF ac.opp_parts
  FOR VALUES IN ('lead_Plain10000000000000000000000000000000000000')
  SERVER close OPTIONS (resource 'opportunity', write_mode 'deferred');
BEGIN;
INSERT INTO ac.opp_parts (lead_id, value)
VALUES ('lead_Plain10000000000000000000000000000000000000', 100) RETURNING confidence;  -- ERROR
ROLLBACK;
-- a NULL is not sent on create: Close fills the key, so a row holding
-- NULL in such a column cannot return it either (the first row is sent
-- nowhere: the statement fails before COMMIT)
BEGIN;
INSERT INTO ac.opportunities (lead_id, value, confidence)
VALUES ('lead_Plain10000000000000000000000000000000000000', 100, 30),
       ('lead_Plain10000000000000000000000000000000000000', 100, NULL)
RETURNING confidence;  -- ERROR
ROLLBACK;
-- what the statement assigns is shown as given, and is what Close keeps
BEGIN;
INSERT INTO ac.opportunities (lead_id, value, confidence, user_id, status_id)
VALUES ('lead_Plain10000000000000000000000000000000000000', 100, 40,
        'user_Bob0000000000000000000000000000000000000000',
        'stat_Demo000000000000000000000000000000000000000')
RETURNING value, confidence, user_id, status_id;
COMMIT;
SELECT value, confidence, user_id, status_id FROM ac.opportunities
 WHERE lead_id = 'lead_Plain10000000000000000000000000000000000000' AND value = 100;
SELECT * FROM emulator_requests();
-- phones are stored as E.164 whatever was written: a deferred RETURNING of
-- them is refused even when the statement assigns them
ALTER FOREIGN TABLE ac.contacts OPTIONS (ADD write_mode 'deferred');
BEGIN;
UPDATE ac.contacts SET phones = '[{"phone": "(415) 555-0199", "type": "mobile"}]'
 WHERE id = 'cont_Plain1A000000000000000000000000000000000000' RETURNING phones;  -- ERROR
ROLLBACK;
BEGIN;
INSERT INTO ac.contacts (lead_id, name, phones)
VALUES ('lead_Plain10000000000000000000000000000000000000', 'Phoned', '[{"phone": "(415) 555-0199"}]')
RETURNING phones;  -- ERROR
ROLLBACK;
ALTER FOREIGN TABLE ac.contacts OPTIONS (DROP write_mode);
-- immediate mode shows what Close gave them
ALTER FOREIGN TABLE ac.opportunities OPTIONS (DROP write_mode);
ALTER FOREIGN TABLE ac.leads OPTIONS (DROP write_mode);
INSERT INTO ac.opportunities (lead_id, value)
VALUES ('lead_Plain10000000000000000000000000000000000000', 200)
RETURNING confidence, user_id, status_label, pipeline_name;

-- 2. An empty (or blank) text value bounds nothing in a search: the sheet
-- does not say Close's exact_value finds the records holding "", so
-- title = '' is a local filter, and so is an IN list holding ''.
SELECT emulator_clear();
SELECT id FROM ac.contacts WHERE title = '' ORDER BY id;
SELECT id FROM ac.leads WHERE name IN ('Big Lead', '  ') ORDER BY id;
SELECT * FROM emulator_requests();

-- 3. Close's reads lag its deletes: a GET by id just after a DELETE may
-- answer a stale copy (here the emulator's stale_reads).  The rest of the
-- transaction does not read back what it deleted: scans skip it, and skip
-- a record of a lead it deleted (Close deletes a lead's contacts and
-- opportunities with it): after a lead's DELETE, a GET by id of a contact
-- or an opportunity asks its lead_id to tell.
SELECT emulator_call('POST', '/_emulator/config', '{"stale_reads": 5}');
BEGIN;
DELETE FROM ac.contacts WHERE id = 'cont_Plain2B000000000000000000000000000000000000';
SELECT id FROM ac.contacts WHERE id = 'cont_Plain2B000000000000000000000000000000000000';
SELECT id FROM ac.contacts
 WHERE id IN ('cont_Plain2A000000000000000000000000000000000000', 'cont_Plain2B000000000000000000000000000000000000');
DELETE FROM ac.leads WHERE id = 'lead_Plain30000000000000000000000000000000000000';
SELECT emulator_clear();
SELECT id FROM ac.leads WHERE id = 'lead_Plain30000000000000000000000000000000000000';
SELECT id FROM ac.contacts WHERE id = 'cont_Plain3A000000000000000000000000000000000000';
SELECT id FROM ac.opportunities WHERE id = 'oppo_Plain3Demo000000000000000000000000000000000';
-- Close still answers them (stale), the scans do not return them
SELECT * FROM emulator_requests();
COMMIT;
-- a later transaction reads Close as it answers (another client's view)
SELECT id FROM ac.contacts WHERE id = 'cont_Plain3A000000000000000000000000000000000000';
SELECT emulator_call('POST', '/_emulator/config', '{"stale_reads": 0}');
