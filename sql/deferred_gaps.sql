-- deferred_gaps: write_mode 'deferred' next to immediate writes and other
-- tables of the same type; the write log after a COMMIT that failed
-- partway; a DELETE queued twice; statement numbers across a rolled back
-- savepoint; subtransaction ends that cost the writes they drop, not the
-- whole queue.  Checked through the emulator's request log.
\set VERBOSITY terse
\set one 'lead_One0000000000000000000000000000000000000000'
\set api_url `echo "$CLOSE_API_URL"`
SELECT emulator_reset();
-- deferred, no type option (UPDATE and DELETE by id need no read)
CREATE FOREIGN TABLE dg_def (id text, lead_id text, name text,
  custom_object_type_id text DEFAULT 'cotype_Device0000000000000000')
  SERVER close OPTIONS (write_mode 'deferred');
-- deferred, of type Device (UPDATE and DELETE read first)
CREATE FOREIGN TABLE dg_def_dev (id text, lead_id text, name text)
  SERVER close OPTIONS (write_mode 'deferred',
                        custom_object_type_id 'cotype_Device0000000000000000');
-- immediate, of type Device (reads first)
CREATE FOREIGN TABLE dg_now (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
-- immediate, no type option (by id without reading)
CREATE FOREIGN TABLE dg_now_any (id text, lead_id text, name text)
  SERVER close;
-- immediate, another type
CREATE FOREIGN TABLE dg_now_sub (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
INSERT INTO dg_now (lead_id, name) VALUES (:'one', 'X') RETURNING id AS x \gset
INSERT INTO dg_now (lead_id, name) VALUES (:'one', 'Y') RETURNING id AS y \gset
INSERT INTO dg_now (lead_id, name) VALUES (:'one', 'Z') RETURNING id AS z \gset
SELECT emulator_clear();
CREATE FUNCTION names() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(name, ', ' ORDER BY name) FROM dg_now
   WHERE lead_id = 'lead_One0000000000000000000000000000000000000000'
$$;
CREATE FUNCTION requests() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT regexp_replace(regexp_replace(regexp_replace(line,
           current_setting('dg.x'), 'X'), current_setting('dg.y'), 'Y'),
           current_setting('dg.z'), 'Z')
    FROM emulator_requests() line
$$;
CREATE FUNCTION xyz(id text) RETURNS text LANGUAGE sql AS $$
  SELECT CASE id WHEN current_setting('dg.x') THEN 'X'
                 WHEN current_setting('dg.y') THEN 'Y'
                 WHEN current_setting('dg.z') THEN 'Z' ELSE id END
$$;
SET dg.x = :'x';
SET dg.y = :'y';
SET dg.z = :'z';
SELECT names();

-- 1. an immediate write to an object with writes queued in the
-- transaction is refused before any request (was: the DELETE went out
-- first, and COMMIT's PUT got 404)
BEGIN;
UPDATE dg_def SET name = 'X2' WHERE id = :'x';
DELETE FROM dg_now WHERE id = :'x';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT * FROM requests();
-- by id without reading, and after a queued DELETE; the error's hint
BEGIN;
DELETE FROM dg_def WHERE id = :'x';
\set VERBOSITY default
UPDATE dg_now_any SET name = 'X3' WHERE id IN (:'y', :'x');  -- ERROR
\set VERBOSITY terse
ROLLBACK;
SELECT * FROM requests();
-- a write to another object goes out at once; once a rolled back
-- savepoint dropped the queued write, the object is free again
BEGIN;
SAVEPOINT s;
UPDATE dg_def SET name = 'X4' WHERE id = :'x';
UPDATE dg_now SET name = 'Y1' WHERE id = :'y';
\echo :ROW_COUNT
ROLLBACK TO SAVEPOINT s;
UPDATE dg_now SET name = 'X1' WHERE id = :'x';
\echo :ROW_COUNT
COMMIT;
SELECT * FROM requests();
SELECT names();

-- 2. UPDATE or DELETE after INSERTs queued into another table of the same
-- type is refused, in either mode (was: only the same table was checked)
BEGIN;
INSERT INTO dg_def_dev (lead_id, name) VALUES (:'one', 'New');
UPDATE dg_now SET name = 'N' WHERE lead_id = :'one';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
INSERT INTO dg_def_dev (lead_id, name) VALUES (:'one', 'New');
\set VERBOSITY default
DELETE FROM dg_def WHERE id = :'y';  -- ERROR (no type filter: maybe the same)
\set VERBOSITY terse
ROLLBACK;
BEGIN;
INSERT INTO dg_def (lead_id, name) VALUES (:'one', 'New');
DELETE FROM dg_def_dev WHERE lead_id = :'one' AND name = 'Y';  -- ERROR (the INSERT's table has none)
ROLLBACK;
-- another type is another set of rows; a rolled back INSERT is gone
BEGIN;
INSERT INTO dg_def_dev (lead_id, name) VALUES (:'one', 'New');
UPDATE dg_now_sub SET name = 'S' WHERE id = :'y';
\echo :ROW_COUNT
ROLLBACK;
BEGIN;
SAVEPOINT s;
INSERT INTO dg_def_dev (lead_id, name) VALUES (:'one', 'New');
ROLLBACK TO SAVEPOINT s;
UPDATE dg_now SET name = 'Y' WHERE id = :'y';
\echo :ROW_COUNT
COMMIT;
SELECT * FROM requests();

-- 4. a DELETE queued twice counts once, and an UPDATE of a record whose
-- DELETE is queued counts nothing, as for a local row deleted in the
-- transaction (was: 2 rows, and a 404 WARNING at COMMIT)
BEGIN;
DELETE FROM dg_def WHERE id = :'z';
\echo :ROW_COUNT
DELETE FROM dg_def WHERE id = :'z';
\echo :ROW_COUNT
UPDATE dg_def SET name = 'Z2' WHERE id IN (:'z', :'y');
\echo :ROW_COUNT
DELETE FROM dg_def_dev WHERE id = :'z';
\echo :ROW_COUNT
SELECT statement, action, xyz(object_id), state FROM close_fdw_write_log()
 ORDER BY statement;
COMMIT;
SELECT * FROM requests();
SELECT names();

-- 5. statement numbers are positions among the transaction's writing
-- statements: those a rolled back savepoint dropped keep theirs (a gap)
BEGIN;
UPDATE dg_def SET name = 'S1' WHERE id = :'y';
SAVEPOINT s;
UPDATE dg_def SET name = 'S2' WHERE id = :'y';
ROLLBACK TO SAVEPOINT s;
UPDATE dg_def SET name = 'S3' WHERE id = :'y';
SELECT statement, action, xyz(object_id), state FROM close_fdw_write_log();
COMMIT;
SELECT statement, action, xyz(object_id), http_status, state FROM close_fdw_write_log();
SELECT * FROM requests();

-- 3. a COMMIT that fails partway lists what it never sent as 'queued'
-- (was: left out), after what was sent and what failed; one request at a
-- time, so the second POST of the INSERT is the one that fails
CREATE SERVER dg_serial FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', max_concurrency '1', write_mode 'deferred');
CREATE USER MAPPING FOR CURRENT_USER SERVER dg_serial OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE dg_serial_dev (id text, lead_id text, name text)
  SERVER dg_serial OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
CREATE FOREIGN TABLE dg_serial_sub (id text, lead_id text, name text)
  SERVER dg_serial OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
INSERT INTO dg_now (lead_id, name) VALUES (:'one', 'W') RETURNING id AS w \gset
SELECT emulator_clear();
BEGIN;
UPDATE dg_serial_dev SET name = 'Y5' WHERE id = :'y';
DELETE FROM dg_serial_dev WHERE id = :'w';
INSERT INTO dg_serial_dev (lead_id, name) VALUES (:'one', 'C1'), (:'one', 'C2'), (:'one', 'C3');
INSERT INTO dg_serial_dev (lead_id, name) VALUES (:'one', 'C4');
UPDATE dg_serial_sub SET name = 'Beta' WHERE id = 'custobj_MixedBeta0000000000000000000000000000000000';
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 0, "times": 1}');
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 400, "body": {"field-errors": {"name": "Not this one."}}, "times": 1}');
\set VERBOSITY default
COMMIT;  -- ERROR
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
SELECT statement, foreign_table, action, object_id = :'y' AS is_y, object_id = :'w' AS is_w,
       object_id IS NULL AS no_id, lead_id, http_status, state
  FROM close_fdw_write_log();
SELECT regexp_replace(line, 'custobj_[A-Za-z0-9]+', 'custobj_...') FROM requests() line;
SELECT names();
-- two POSTs of one round refused: each is listed as failed with its
-- status, none as queued (was: only the first was listed at all)
BEGIN;
INSERT INTO dg_def (lead_id, name) VALUES (:'one', 'R1'), (:'one', 'R2'), (:'one', 'R3');
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 400, "body": {"field-errors": {"name": "Not this one."}}, "times": 2}');
COMMIT;  -- ERROR
SELECT statement, action, object_id IS NULL AS no_id, http_status, state
  FROM close_fdw_write_log() ORDER BY state, http_status;
SELECT count(*) FROM requests() WHERE requests LIKE 'POST %';
-- a COMMIT that fails before sending anything lists every write queued
CREATE FOREIGN TABLE dg_gone (id text, name text) SERVER dg_serial;
BEGIN;
UPDATE dg_gone SET name = 'G' WHERE id = :'y';
DELETE FROM dg_serial_dev WHERE id = :'y';
DROP FOREIGN TABLE dg_gone;
COMMIT;  -- ERROR
SELECT statement, foreign_table, action, object_id = :'y' AS is_y, http_status, state
  FROM close_fdw_write_log();
SELECT * FROM requests();

-- 6. a subtransaction's end drops only the writes it queued: 2,000
-- EXCEPTION blocks each queue an UPDATE of one object, every block's
-- write is kept (its own end pops only its part), and ROLLBACK sends
-- nothing.  (That this costs the block's writes, not the whole queue, is
-- a matter of time, measured when it was built -- 12,000 blocks: the last
-- thousands as fast as the first, against 4x and more before -- and not
-- asserted here: the suite does not time things.)
BEGIN;
DO $$
DECLARE
  x text := current_setting('dg.y');
BEGIN
  FOR i IN 1..2000 LOOP
    BEGIN
      UPDATE dg_def SET name = 'E' || i WHERE id = x;
    EXCEPTION WHEN others THEN RAISE;
    END;
  END LOOP;
END $$;
SELECT count(*) FROM close_fdw_write_log() WHERE state = 'queued';
ROLLBACK;
SELECT * FROM requests();

DROP FUNCTION names();
DROP FUNCTION requests();
DROP FUNCTION xyz(text);
DROP FOREIGN TABLE dg_def, dg_def_dev, dg_now, dg_now_any, dg_now_sub;
DROP SERVER dg_serial CASCADE;
SELECT emulator_reset();
