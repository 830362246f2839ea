-- deferred: write_mode 'deferred' queues INSERT, UPDATE and DELETE in the
-- transaction and sends them at COMMIT, in order; ROLLBACK sends nothing,
-- ROLLBACK TO SAVEPOINT drops what was queued since; what it cannot do is
-- refused.  Checked through the emulator's request log.
\set VERBOSITY terse
\set one 'lead_One0000000000000000000000000000000000000000'
\set api_url `echo "$CLOSE_API_URL"`
SELECT emulator_reset();
-- (no custom_object_type_id option: UPDATE and DELETE by id need no read)
CREATE FOREIGN TABLE df_devices (id text, lead_id text, name text, date_created timestamptz,
  custom_object_type_id text DEFAULT 'cotype_Device0000000000000000')
  SERVER close OPTIONS (write_mode 'deferred');
-- the same records, written at once (the default)
CREATE FOREIGN TABLE df_now (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
-- the same records again, deferred by the server's option
CREATE SERVER close_deferred FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', write_mode 'deferred');
CREATE USER MAPPING FOR CURRENT_USER SERVER close_deferred OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE df_other (id text, lead_id text, name text)
  SERVER close_deferred OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
-- the option's values; the table's wins over the server's
ALTER FOREIGN TABLE df_now OPTIONS (ADD write_mode 'later');  -- ERROR
ALTER SERVER close_deferred OPTIONS (SET write_mode 'Deferred');  -- ERROR
INSERT INTO df_now (lead_id, name) VALUES (:'one', 'X') RETURNING id AS x \gset
INSERT INTO df_now (lead_id, name) VALUES (:'one', 'Y') RETURNING id AS y \gset
SELECT emulator_clear();
CREATE FUNCTION names() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(name, ', ' ORDER BY name) FROM df_now
   WHERE lead_id = 'lead_One0000000000000000000000000000000000000000'
$$;
SELECT names();

-- ROLLBACK sends nothing (UPDATE and DELETE by id do not even read)
EXPLAIN (COSTS OFF) UPDATE df_devices SET name = 'X2' WHERE id = :'x';
EXPLAIN (COSTS OFF) INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'New');
SELECT emulator_clear();
BEGIN;
UPDATE df_devices SET name = 'X2' WHERE id = :'x';
\echo :ROW_COUNT
DELETE FROM df_devices WHERE id = :'y';
\echo :ROW_COUNT
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'New'), (:'one', 'New2');
\echo :ROW_COUNT
ROLLBACK;
SELECT * FROM emulator_requests();
SELECT names();

-- the same with COMMIT sends exactly these requests, in statement order
BEGIN;
UPDATE df_devices SET name = 'X2' WHERE id = :'x';
DELETE FROM df_devices WHERE id = :'y';
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'New'), (:'one', 'New2');
-- reads in the transaction do not see the queued writes
SELECT names();
SELECT statement, action, object_id IS NOT NULL AS has_id, http_status, state FROM close_fdw_write_log();
SELECT * FROM emulator_requests();
COMMIT;
-- (the two POSTs of one statement go out together, in either order)
SELECT line FROM emulator_requests() WITH ORDINALITY AS r(line, n)
 ORDER BY CASE WHEN line LIKE 'POST %' THEN 3 ELSE n END, line;
SELECT names();
SELECT statement, action, object_id IS NOT NULL AS has_id, http_status, state FROM close_fdw_write_log();

-- ROLLBACK TO SAVEPOINT drops only the writes queued since; an UPDATE that
-- reads first queues a PUT per row read; a server's write_mode applies
BEGIN;
UPDATE df_other SET name = 'X3' WHERE lead_id = :'one' AND name = 'X2';
\echo :ROW_COUNT
SAVEPOINT s;
INSERT INTO df_other (lead_id, name) VALUES (:'one', 'Dropped');
DELETE FROM df_devices WHERE id = :'x';
ROLLBACK TO SAVEPOINT s;
-- the write log keeps only the UPDATE queued before the savepoint
SELECT statement, action, object_id = :'x' AS is_x, state FROM close_fdw_write_log();
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'Kept');
SAVEPOINT t;
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'Kept2');
RELEASE SAVEPOINT t;
COMMIT;
-- (the POSTs of the two INSERTs go out together, in either order)
SELECT line FROM emulator_requests() WITH ORDINALITY AS r(line, n)
 ORDER BY CASE WHEN line LIKE 'POST %' THEN 99 ELSE n END, line;
SELECT names();

-- refused, not faked: RETURNING what Close assigns, UPDATE or DELETE after
-- an INSERT queued into the table, AFTER ROW triggers, PREPARE TRANSACTION
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'R') RETURNING id;  -- ERROR
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'R') RETURNING date_created;  -- ERROR
\set VERBOSITY terse
UPDATE df_devices SET name = 'R' WHERE id = :'x' RETURNING df_devices;  -- ERROR
-- RETURNING what the statement gave is fine
BEGIN;
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'R') RETURNING name, lead_id;
UPDATE df_devices SET name = 'R2' WHERE id = :'x';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'R');
DELETE FROM df_devices WHERE lead_id = :'one' AND name = 'X3';  -- ERROR
ROLLBACK;
CREATE FUNCTION df_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER df_after AFTER INSERT ON df_devices FOR EACH ROW EXECUTE FUNCTION df_noop();
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'T');  -- ERROR
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER df_after ON df_devices;
-- a row routed into a deferred partition too
CREATE TABLE df_parted (id text, lead_id text, name text,
  custom_object_type_id text DEFAULT 'cotype_Device0000000000000000') PARTITION BY LIST (name);
CREATE FOREIGN TABLE df_part_a PARTITION OF df_parted FOR VALUES IN ('PA')
  SERVER close OPTIONS (write_mode 'deferred');
INSERT INTO df_parted (lead_id, name) VALUES (:'one', 'PA') RETURNING id;  -- ERROR
BEGIN;
INSERT INTO df_parted (lead_id, name) VALUES (:'one', 'PA') RETURNING name;
ROLLBACK;
DROP TABLE df_parted;
BEGIN;
INSERT INTO df_devices (lead_id, name) VALUES (:'one', 'P');
PREPARE TRANSACTION 'df_prepared';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM emulator_requests();

-- a record gone by the COMMIT: counted when queued, a WARNING at COMMIT
BEGIN;
UPDATE df_devices SET name = 'Ghost' WHERE id = 'custobj_' || rpad('Missing', 43, '0');
\echo :ROW_COUNT
COMMIT;
SELECT * FROM emulator_requests();

-- a queued write that fails fails the COMMIT, which says what reached
-- Close; what was queued after it is not sent (one request at a time here:
-- the POSTs of consecutive INSERTs would otherwise go out together)
ALTER SERVER close_deferred OPTIONS (ADD max_concurrency '1');
BEGIN;
INSERT INTO df_other (lead_id, name) VALUES (:'one', 'C1');
INSERT INTO df_other (lead_id, name) VALUES (:'one', 'C2');
UPDATE df_devices SET name = 'C3' WHERE id = :'x';
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 0, "times": 1}');
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 400, "body": {"field-errors": {"name": "Not this one."}}, "times": 1}');
\set VERBOSITY default
COMMIT;  -- ERROR
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
SELECT regexp_replace(line, 'custobj_[A-Za-z0-9]+', 'custobj_...') FROM emulator_requests() line;
SELECT names();
SELECT statement, action, object_id IS NOT NULL AS has_id, http_status, state FROM close_fdw_write_log();

DROP FUNCTION names();
DROP FUNCTION df_noop();
DROP FOREIGN TABLE df_devices, df_now;
DROP SERVER close_deferred CASCADE;
