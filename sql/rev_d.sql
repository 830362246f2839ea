-- rev_d: hostile review of the CRM changes (deleted ids, deferred
-- RETURNING of keys Close fills, blank search values).
\set VERBOSITY default
SELECT emulator_reset();
CREATE SCHEMA rd;
IMPORT FOREIGN SCHEMA crm FROM SERVER close INTO rd;

-- 1. A deferred UPDATE's RETURNING of a key Close fills or rewrites that
-- the UPDATE leaves alone shows the value the scan read from Close, which
-- the PUT (only the assigned keys) does not change: not refused.  It is
-- refused when the UPDATE assigns a key Close reacts to (a status: its
-- date_won, pipeline; phones: the time zone inferred from them).
ALTER FOREIGN TABLE rd.opportunities OPTIONS (ADD write_mode 'deferred');
ALTER FOREIGN TABLE rd.contacts OPTIONS (ADD write_mode 'deferred');
SELECT confidence, user_id, status_id, pipeline_id, date_won
  FROM rd.opportunities WHERE id = 'oppo_Plain3Demo000000000000000000000000000000000';
SELECT emulator_clear();
BEGIN;
UPDATE rd.opportunities SET value = 777
 WHERE id = 'oppo_Plain3Demo000000000000000000000000000000000'
RETURNING value, confidence, user_id, status_id, pipeline_id, date_won;
COMMIT;
SELECT * FROM emulator_requests();
SELECT value, confidence, user_id, status_id, pipeline_id, date_won
  FROM rd.opportunities WHERE id = 'oppo_Plain3Demo000000000000000000000000000000000';
SELECT phones, timezone FROM rd.contacts
 WHERE id = 'cont_Plain1A000000000000000000000000000000000000';
BEGIN;
UPDATE rd.contacts SET title = 'Buyer'
 WHERE id = 'cont_Plain1A000000000000000000000000000000000000'
RETURNING title, phones, timezone;
COMMIT;
-- still refused: what the UPDATE's keys make Close change
BEGIN;
UPDATE rd.opportunities SET status_id = 'stat_Won0000000000000000000000000000000000000000'
 WHERE id = 'oppo_Plain3Demo000000000000000000000000000000000' RETURNING pipeline_id;  -- ERROR
ROLLBACK;
BEGIN;
UPDATE rd.contacts SET phones = '[{"phone": "+14155550100", "type": "mobile"}]'
 WHERE id = 'cont_Plain1A000000000000000000000000000000000000' RETURNING timezone;  -- ERROR
ROLLBACK;
BEGIN;
UPDATE rd.contacts SET phones = '[{"phone": "(415) 555-0199", "type": "mobile"}]'
 WHERE id = 'cont_Plain1A000000000000000000000000000000000000' RETURNING phones;  -- ERROR
ROLLBACK;
ALTER FOREIGN TABLE rd.opportunities OPTIONS (DROP write_mode);
ALTER FOREIGN TABLE rd.contacts OPTIONS (DROP write_mode);

-- 2. A scan skips a record the transaction deleted before the scan's
-- statement, not one a later command deleted: a cursor opened before the
-- DELETE reads with its own snapshot, as for a local table, and shows the
-- record it had read from Close (a later SELECT does not).
SELECT emulator_reset();
SELECT id FROM rd.contacts WHERE lead_id = 'lead_Plain20000000000000000000000000000000000000';
BEGIN;
DECLARE c CURSOR FOR
  SELECT id, name FROM rd.contacts WHERE lead_id = 'lead_Plain20000000000000000000000000000000000000';
FETCH 1 FROM c;
SELECT emulator_clear();
DELETE FROM rd.contacts WHERE id = 'cont_Plain2A000000000000000000000000000000000000';
FETCH ALL FROM c;
CLOSE c;
SELECT id FROM rd.contacts WHERE lead_id = 'lead_Plain20000000000000000000000000000000000000';
COMMIT;
SELECT * FROM emulator_requests();

-- 3. After a lead's DELETE, a search (or listing) of contacts that reads
-- no lead_id column asks lead_id too, to skip the stale copies of the
-- lead's contacts Close's lagging index still shows (here the emulator's
-- stale_lists), as one that reads lead_id does.
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/config', '{"stale_reads": 5, "stale_lists": 1}');
BEGIN;
DELETE FROM rd.leads WHERE id = 'lead_Plain50000000000000000000000000000000000000';
SELECT emulator_clear();
SELECT id, name FROM rd.contacts WHERE name LIKE '% Five' ORDER BY id;
SELECT id, name, lead_id FROM rd.contacts WHERE name LIKE '% Five' ORDER BY id;
COMMIT;
SELECT * FROM emulator_requests();
-- the next transaction reads Close as it answers (its lagging list)
SELECT id, name FROM rd.contacts WHERE name LIKE '% Five' ORDER BY id;
SELECT emulator_call('POST', '/_emulator/config', '{"stale_reads": 0, "stale_lists": 0}');
SELECT emulator_reset();

-- 4. A BEFORE ROW UPDATE trigger may set a status the UPDATE does not
-- assign (Close then fills date_won): RETURNING a key Close fills stays
-- refused on a table with one.
CREATE FUNCTION rd.win() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.status_id := 'stat_Won0000000000000000000000000000000000000000';
  RETURN NEW;
END $$;
CREATE TRIGGER win BEFORE UPDATE ON rd.opportunities
  FOR EACH ROW EXECUTE FUNCTION rd.win();
ALTER FOREIGN TABLE rd.opportunities OPTIONS (ADD write_mode 'deferred');
BEGIN;
UPDATE rd.opportunities SET value = 5
 WHERE id = 'oppo_Plain3Demo000000000000000000000000000000000' RETURNING date_won;  -- ERROR
ROLLBACK;
ALTER FOREIGN TABLE rd.opportunities OPTIONS (DROP write_mode);
DROP TRIGGER win ON rd.opportunities;

-- 5. A DELETE sent inside a savepoint that is rolled back stays done in
-- Close (nothing undoes it): the rest of the transaction still skips the
-- record Close answers stale.  A DELETE Close refused deleted nothing: the
-- record still shows.
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/config', '{"stale_reads": 5}');
BEGIN;
SAVEPOINT s;
DELETE FROM rd.contacts WHERE id = 'cont_Plain2A000000000000000000000000000000000000';
ROLLBACK TO SAVEPOINT s;
SELECT id FROM rd.contacts WHERE id = 'cont_Plain2A000000000000000000000000000000000000';
SELECT emulator_fault('{"method": "DELETE", "action": "status", "status": 403, "body": {"error": "Forbidden"}, "times": 1}');
SAVEPOINT t;
DELETE FROM rd.contacts WHERE id = 'cont_Plain2B000000000000000000000000000000000000';  -- ERROR
ROLLBACK TO SAVEPOINT t;
SELECT id FROM rd.contacts WHERE id = 'cont_Plain2B000000000000000000000000000000000000';
COMMIT;
-- Close answered the deleted contact's GET (a stale copy, 200)
SELECT e->>'method' AS method, e->>'path' AS path, e->>'status' AS status
  FROM emulator_log_entries() e;
SELECT emulator_call('POST', '/_emulator/config', '{"stale_reads": 0}');
SELECT emulator_reset();
