-- rev_a: hostile review of the transaction and write changes; each case
-- here was a wrong result or a broken promise of the code it tests.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE ra_now (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
CREATE FOREIGN TABLE ra_def (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000',
                        write_mode 'deferred');
CREATE FOREIGN TABLE ra_contacts (id text, lead_id text, name text)
  SERVER close OPTIONS (resource 'contact');
CREATE FOREIGN TABLE ra_contacts_def (id text, lead_id text, name text)
  SERVER close OPTIONS (resource 'contact', write_mode 'deferred');

-- An UPDATE or DELETE "by id alone" after UPDATEs queued in the transaction
-- took its ids (or SET values) from a subquery, which reads the values Close
-- still has: a record renamed X -> 'renamed' was deleted by its old name
-- (WHERE id = (SELECT id ... WHERE name = 'X')), and another record got the
-- old name.  Refused like the same condition without the subquery, on both
-- the read-then-write path and the direct (no read) path.
INSERT INTO ra_now (lead_id, name) VALUES (:'one', 'X') RETURNING id AS rx \gset
INSERT INTO ra_now (lead_id, name) VALUES (:'one', 'Y') RETURNING id AS ry \gset
INSERT INTO ra_contacts (lead_id, name) VALUES (:'one', 'CX') RETURNING id AS cx \gset
SELECT emulator_clear();
BEGIN;
UPDATE ra_def SET name = 'renamed' WHERE id = :'rx';
DELETE FROM ra_def
  WHERE id = (SELECT id FROM ra_now WHERE lead_id = :'one' AND name = 'X');  -- ERROR
ROLLBACK;
BEGIN;
UPDATE ra_def SET name = 'renamed' WHERE id = :'rx';
UPDATE ra_def SET name = (SELECT name FROM ra_now WHERE id = :'rx')
  WHERE id = :'ry';  -- ERROR
ROLLBACK;
-- (a contact table has no type: its DELETE by id is direct, unread)
BEGIN;
UPDATE ra_contacts_def SET name = 'renamed' WHERE id = :'cx';
SELECT explain_same('COSTS OFF',
  $q$DELETE FROM ra_contacts_def WHERE id = (SELECT id FROM ra_contacts WHERE name = 'CX')$q$);
DELETE FROM ra_contacts_def
  WHERE id = (SELECT id FROM ra_contacts WHERE name = 'CX');  -- ERROR
ROLLBACK;
BEGIN;
UPDATE ra_contacts_def SET name = 'renamed' WHERE id = :'cx';
UPDATE ra_contacts_def SET name = (SELECT name FROM ra_contacts WHERE id = :'cx')
  WHERE id = :'cx';  -- ERROR
ROLLBACK;
-- nothing was sent but the reads of the UPDATEs that read first
SELECT * FROM emulator_requests();
-- ids given as values stay allowed: a PL/pgSQL variable, a prepared
-- statement's parameter (generic plan)
SET plan_cache_mode = force_generic_plan;
PREPARE ra_del(text) AS DELETE FROM ra_def WHERE id = $1;
BEGIN;
UPDATE ra_def SET name = 'renamed' WHERE id = :'rx';
DO $$
DECLARE
  v text := (SELECT id FROM ra_now WHERE lead_id = 'lead_One0000000000000000000000000000000000000000' AND name = 'Y');
BEGIN
  UPDATE ra_def SET name = 'Y2' WHERE id = v;
END $$;
EXECUTE ra_del(:'rx');
COMMIT;
RESET plan_cache_mode;
SELECT name FROM ra_now WHERE lead_id = :'one' ORDER BY name;
-- and with no UPDATE queued, a subquery's id is no matter
SELECT emulator_clear();
DELETE FROM ra_contacts_def WHERE id = (SELECT id FROM ra_contacts WHERE name = 'CX');
SELECT count(*) FROM ra_contacts WHERE id = :'cx';

-- The refusal after queued UPDATEs was too broad: a statement whose
-- conditions and SET values use only values no UPDATE can change (the id,
-- the lead, the type) picks the same records and writes the same values
-- whatever was queued.  UPDATE or DELETE ... WHERE lead_id = ... (a lead's
-- listing) through a deferred table, and a condition on the lead beside
-- the id, stay allowed; a condition on another column is refused still,
-- and so is a lead's listing through an immediate table (it would meet the
-- records with queued writes one by one, after writing the rows before).
CREATE FOREIGN TABLE ra_leads (id text, name text) SERVER close OPTIONS (resource 'lead');
INSERT INTO ra_leads (name) VALUES ('Fixed') RETURNING id AS lead \gset
INSERT INTO ra_now (lead_id, name) VALUES (:'lead', 'A') RETURNING id AS ra \gset
INSERT INTO ra_now (lead_id, name) VALUES (:'lead', 'B') RETURNING id AS rb \gset
SELECT emulator_clear();
BEGIN;
UPDATE ra_def SET name = 'A renamed' WHERE id = :'ra';
UPDATE ra_def SET name = 'all' WHERE lead_id = :'lead';
\echo :ROW_COUNT
UPDATE ra_def SET name = 'B2' WHERE id = :'rb' AND lead_id = :'lead';
UPDATE ra_def SET name = 'none' WHERE lead_id = :'lead' AND name = 'A';  -- ERROR
ROLLBACK;
BEGIN;
UPDATE ra_def SET name = 'A renamed' WHERE id = :'ra';
DELETE FROM ra_now WHERE lead_id = :'lead';  -- ERROR
ROLLBACK;
SELECT regexp_replace(r, '(custobj|lead)_[A-Za-z0-9]{30,}', '\1_…', 'g') FROM emulator_requests() AS r ORDER BY 1;
SELECT emulator_clear();
BEGIN;
UPDATE ra_def SET name = 'A renamed' WHERE id = :'ra';
UPDATE ra_def SET name = 'all ' || lead_id WHERE lead_id = :'lead';
\echo :ROW_COUNT
COMMIT;
SELECT id = :'ra' AS is_a, name = 'all ' || :'lead' AS named FROM ra_now WHERE lead_id = :'lead' ORDER BY 1;
BEGIN;
UPDATE ra_def SET name = 'A again' WHERE id = :'ra';
DELETE FROM ra_def WHERE lead_id = :'lead';
\echo :ROW_COUNT
COMMIT;
SELECT count(*) FROM ra_now WHERE lead_id = :'lead';
SELECT regexp_replace(r, '(custobj|lead)_[A-Za-z0-9]{30,}', '\1_…', 'g') FROM emulator_requests() AS r;
