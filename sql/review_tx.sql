-- review_tx: adversarial checks of write_mode 'deferred' and the write log
\set VERBOSITY terse
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE rt_dev (id text, lead_id text, name text,
  custom_object_type_id text DEFAULT 'cotype_Device0000000000000000')
  SERVER close OPTIONS (write_mode 'deferred');
CREATE FOREIGN TABLE rt_now (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
INSERT INTO rt_now (lead_id, name) VALUES (:'one', 'X') RETURNING id AS x \gset
SELECT emulator_clear();

-- two UPDATEs of one object keep their order; DELETE then INSERT
BEGIN;
UPDATE rt_dev SET name = 'U1' WHERE id = :'x';
UPDATE rt_dev SET name = 'U2' WHERE id = :'x';
COMMIT;
SELECT regexp_replace(line, 'custobj_[A-Za-z0-9]+', 'custobj_...') FROM emulator_requests() line;
SELECT name FROM rt_now WHERE id = :'x';
SELECT emulator_clear();

-- a savepoint released, then rolled back to an outer one
BEGIN;
SAVEPOINT a;
SAVEPOINT b;
UPDATE rt_dev SET name = 'Dropped' WHERE id = :'x';
RELEASE SAVEPOINT b;
ROLLBACK TO SAVEPOINT a;
SELECT count(*) FROM close_fdw_write_log();
COMMIT;
SELECT * FROM emulator_requests();

-- the write log's count of writes it does not list: 10,001 queued in a
-- savepoint rolled back leave nothing listed and nothing unlisted (was:
-- a WARNING of 1 write not listed, in this and the finished transaction)
BEGIN;
SAVEPOINT s;
INSERT INTO rt_dev (lead_id, name) SELECT :'one', 'Q' || g FROM generate_series(1, 10001) g;
ROLLBACK TO SAVEPOINT s;
UPDATE rt_dev SET name = 'U3' WHERE id = :'x';
SELECT statement, action, state FROM close_fdw_write_log();
COMMIT;
SELECT statement, action, state FROM close_fdw_write_log();
SELECT emulator_clear();
-- 10,001 queued and sent: 1 not listed (was: 2, counted when queued and
-- again when sent)
BEGIN;
INSERT INTO rt_dev (lead_id, name) SELECT :'one', 'Q' || g FROM generate_series(1, 10001) g;
\set VERBOSITY default
SELECT count(*), min(state), max(state) FROM close_fdw_write_log();
COMMIT;
SELECT count(*), min(state), max(state) FROM close_fdw_write_log();
\set VERBOSITY terse
SELECT count(*) FROM emulator_requests();

-- statement_timeout does not bound COMMIT (PostgreSQL disarms it before
-- committing): the queued PUT is sent and COMMIT succeeds
SELECT emulator_clear();
BEGIN;
UPDATE rt_dev SET name = 'T1' WHERE id = :'x';
SELECT emulator_fault('{"method": "PUT", "action": "delay", "seconds": 1, "times": 1}');
SET LOCAL statement_timeout = '200ms';
\set VERBOSITY default
COMMIT;
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
SELECT statement, action, object_id = :'x' AS is_x, http_status, state FROM close_fdw_write_log();
SELECT pg_sleep(0);
SELECT regexp_replace(line, 'custobj_[A-Za-z0-9]+', 'custobj_...') FROM emulator_requests() line;


-- a COMMIT that fails before anything reached Close: the write log lists
-- this transaction's UPDATE, queued and never sent (was: the 2 INSERTs of
-- the transaction before, as if this one's)
CREATE FOREIGN TABLE rt_gone (id text, name text,
  custom_object_type_id text DEFAULT 'cotype_Device0000000000000000')
  SERVER close OPTIONS (write_mode 'deferred');
INSERT INTO rt_now (lead_id, name) VALUES (:'one', 'W1'), (:'one', 'W2');
SELECT action, state FROM close_fdw_write_log();
BEGIN;
UPDATE rt_gone SET name = 'G' WHERE id = :'x';
DROP FOREIGN TABLE rt_gone;
COMMIT;  -- ERROR
SELECT count(*) FROM close_fdw_write_log();

-- the COMMIT's memory: 4,000 UPDATEs of one object are 4,000 rounds of one
-- write each; each round's arrays and converter were kept until the end
-- of the COMMIT (its peak grew by over 10 MB), now freed round by round
\c
SET client_min_messages = warning;
CREATE FUNCTION peak_kb() RETURNS bigint LANGUAGE sql AS $$
  SELECT substring(pg_read_file('/proc/' || pg_backend_pid() || '/status')
                   FROM 'VmHWM:\s*(\d+)')::bigint
$$;
SET rt.x = :'x';
SELECT emulator_clear();
BEGIN;
DO $$ DECLARE x text := current_setting('rt.x'); BEGIN FOR i IN 1..4000 LOOP
  UPDATE rt_dev SET name = 'M' || i WHERE id = x;
END LOOP; END $$;
SELECT peak_kb() AS before \gset
COMMIT;
SELECT peak_kb() - :before < 10000 AS commit_peak_under_10mb;
SELECT count(*) FROM emulator_requests() WHERE emulator_requests LIKE 'PUT %';
DROP FUNCTION peak_kb();
DROP FOREIGN TABLE rt_dev, rt_now;
SELECT emulator_reset();
