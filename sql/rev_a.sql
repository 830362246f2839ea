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
EXPLAIN (COSTS OFF)
  DELETE FROM ra_contacts_def WHERE id = (SELECT id FROM ra_contacts WHERE name = 'CX');
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
