-- adv_tx: transactions, writes and the PostgreSQL features around them
-- (adversarial pass): each case here was a wrong result or a broken promise.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE at_now (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');

-- A stored generated column is written by INSERT as UPDATE writes it: its
-- value is computed before the write and must reach Close (it was left out
-- of the POST, and RETURNING showed NULL where the column's value was 3).
CREATE FOREIGN TABLE at_gen (id text, lead_id text, name text,
  custom_object_type_id text DEFAULT 'cotype_Device0000000000000000',
  weight numeric OPTIONS (field 'custom.cf_DeviceWeight0000000000000000000000000000000')
    GENERATED ALWAYS AS (length(name)) STORED)
  SERVER close;
INSERT INTO at_gen (lead_id, name) VALUES (:'one', 'abc') RETURNING name, weight;
INSERT INTO at_gen (lead_id, name) VALUES (:'one', 'abcd') RETURNING id AS gen_id \gset
SELECT name, weight FROM at_gen WHERE id = :'gen_id';
UPDATE at_gen SET name = 'abcdef' WHERE id = :'gen_id' RETURNING name, weight;
SELECT * FROM emulator_requests();
-- the same with write_mode 'deferred': RETURNING shows what COMMIT sends
ALTER FOREIGN TABLE at_gen OPTIONS (ADD write_mode 'deferred');
BEGIN;
INSERT INTO at_gen (lead_id, name) VALUES (:'one', 'ab') RETURNING name, weight;
COMMIT;
SELECT * FROM emulator_requests();
-- and COPY (every column)
ALTER FOREIGN TABLE at_gen OPTIONS (DROP write_mode);
COPY at_gen (lead_id, name) FROM stdin;
lead_One0000000000000000000000000000000000000000	abcde
\.
SELECT * FROM emulator_requests();

-- A write in a savepoint rolled back since stays in Close: the transaction
-- still cannot be prepared (PREPARE TRANSACTION went on, and a ROLLBACK
-- PREPARED would then have said nothing).
BEGIN;
SAVEPOINT s;
INSERT INTO at_now (lead_id, name) VALUES (:'one', 'in savepoint');
ROLLBACK TO SAVEPOINT s;
PREPARE TRANSACTION 'adv_tx_prepared';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
-- the same through a PL/pgSQL EXCEPTION block
BEGIN;
DO $$
BEGIN
  INSERT INTO at_now (lead_id, name)
    VALUES ('lead_One0000000000000000000000000000000000000000', 'in block');
  RAISE EXCEPTION 'undone locally';
EXCEPTION WHEN raise_exception THEN
  RAISE NOTICE 'caught: %', SQLERRM;
END $$;
PREPARE TRANSACTION 'adv_tx_prepared';  -- ERROR
\echo :LAST_ERROR_SQLSTATE
-- a transaction whose only write failed wrote nothing: PostgreSQL's own
-- refusal (this cluster has max_prepared_transactions 0) comes first
BEGIN;
SAVEPOINT s;
INSERT INTO at_now (lead_id, name)
  VALUES ('lead_Gone0000000000000000000000000000000000000000', 'refused');  -- ERROR
ROLLBACK TO SAVEPOINT s;
\set VERBOSITY terse
PREPARE TRANSACTION 'adv_tx_prepared';  -- ERROR
\set VERBOSITY default
SELECT * FROM emulator_requests();

-- A lead deleted at once (write_mode 'immediate') while INSERTs into it
-- are queued: in statement order they were created, then deleted with the
-- lead; sent out of order, COMMIT failed on them (400, the lead gone) and
-- rolled back everything, the DELETE staying in Close.  Refused first.
CREATE FOREIGN TABLE at_def (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000',
                        write_mode 'deferred');
CREATE FOREIGN TABLE at_leads (id text, name text) SERVER close OPTIONS (resource 'lead');
CREATE FOREIGN TABLE at_leads_def (id text, name text)
  SERVER close OPTIONS (resource 'lead', write_mode 'deferred');
INSERT INTO at_leads (name) VALUES ('Doomed') RETURNING id AS doomed \gset
SELECT emulator_clear();
BEGIN;
INSERT INTO at_def (lead_id, name) VALUES (:'doomed', 'child');
DELETE FROM at_leads WHERE id = :'doomed';  -- ERROR
ROLLBACK;
-- also when the DELETE reads first
BEGIN;
INSERT INTO at_def (lead_id, name) VALUES (:'doomed', 'child'), (:'doomed', 'child 2');
DELETE FROM at_leads WHERE id = :'doomed' AND name = 'Doomed';  -- ERROR
ROLLBACK;
SELECT * FROM emulator_requests();
-- through a deferred table the DELETE keeps its place in the queue
BEGIN;
INSERT INTO at_def (lead_id, name) VALUES (:'doomed', 'child');
DELETE FROM at_leads_def WHERE id = :'doomed';
COMMIT;
SELECT * FROM emulator_requests();
-- a ROLLBACK TO SAVEPOINT that dropped the INSERTs frees the lead
INSERT INTO at_leads (name) VALUES ('Doomed 2') RETURNING id AS doomed2 \gset
BEGIN;
INSERT INTO at_def (lead_id, name) VALUES (:'one', 'kept');
SAVEPOINT s;
INSERT INTO at_def (lead_id, name) VALUES (:'doomed2', 'dropped');
ROLLBACK TO SAVEPOINT s;
SELECT emulator_clear();
DELETE FROM at_leads WHERE id = :'doomed2';
COMMIT;
SELECT * FROM emulator_requests();

-- A read-only transaction writes nothing: PostgreSQL does not check a table
-- of a temporary schema, and a foreign table created there wrote to Close
-- in a read-only transaction (INSERT, UPDATE, DELETE, COPY, routed rows).
-- (no custom_object_type_id option: UPDATE and DELETE by id are direct)
CREATE FOREIGN TABLE pg_temp.at_temp (id text, lead_id text, name text,
  custom_object_type_id text DEFAULT 'cotype_Device0000000000000000') SERVER close;
INSERT INTO pg_temp.at_temp (lead_id, name) VALUES (:'one', 'temp') RETURNING id AS temp_id \gset
CREATE TEMP TABLE at_temp_parted (id text, lead_id text, name text,
  custom_object_type_id text DEFAULT 'cotype_Device0000000000000000') PARTITION BY LIST (lead_id);
ALTER TABLE at_temp_parted ATTACH PARTITION pg_temp.at_temp FOR VALUES IN ('lead_One0000000000000000000000000000000000000000');
SELECT emulator_clear();
BEGIN READ ONLY;
INSERT INTO pg_temp.at_temp (lead_id, name) VALUES (:'one', 'read only');  -- ERROR
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SET default_transaction_read_only = on;
UPDATE pg_temp.at_temp SET name = 'read only' WHERE id = :'temp_id';  -- ERROR
UPDATE pg_temp.at_temp SET name = 'read only' WHERE name = 'temp';  -- ERROR
DELETE FROM pg_temp.at_temp WHERE id = :'temp_id';  -- ERROR
DELETE FROM pg_temp.at_temp WHERE name = 'temp';  -- ERROR
INSERT INTO at_temp_parted (lead_id, name) VALUES (:'one', 'routed');  -- ERROR
COPY pg_temp.at_temp (lead_id, name) FROM stdin;  -- ERROR
lead_One0000000000000000000000000000000000000000	copied
\.
-- reading and EXPLAIN stay allowed
SELECT name FROM pg_temp.at_temp WHERE id = :'temp_id';
EXPLAIN (COSTS OFF) DELETE FROM pg_temp.at_temp WHERE id = :'temp_id';
RESET default_transaction_read_only;
SELECT * FROM emulator_requests();
DROP TABLE at_temp_parted;

-- FOR UPDATE and FOR SHARE cannot lock Close's records: refused, not
-- ignored (the rows were read and nothing was locked); locking only local
-- tables, and UPDATE ... FROM a foreign table, stay allowed.
SELECT emulator_clear();
SELECT id FROM at_now WHERE id = :'gen_id' FOR UPDATE;  -- ERROR
BEGIN;
DECLARE at_cur CURSOR FOR SELECT id, name FROM at_now WHERE lead_id = :'one' FOR SHARE;  -- ERROR
ROLLBACK;
CREATE TEMP TABLE at_local (id text, n int);
INSERT INTO at_local VALUES (:'gen_id', 1);
SELECT l.n, c.name FROM at_local l JOIN at_gen c ON c.id = l.id FOR UPDATE;  -- ERROR
SELECT l.n, c.name FROM at_local l JOIN at_gen c ON c.id = l.id FOR UPDATE OF l;
UPDATE at_local l SET n = 2 FROM at_gen c WHERE c.id = l.id AND c.name = 'abcdef' RETURNING l.n;
-- (the refused statements sent nothing: one read for each allowed one)
SELECT count(*) FROM emulator_requests();

-- An UPDATE or DELETE that reads its rows after UPDATEs queued in the
-- transaction (write_mode 'deferred') read the values Close still had: a
-- record renamed X -> 'renamed' was then deleted by its old name, and COMMIT
-- sent the PUT and the DELETE (in statement order nothing matched, and the
-- record stays).  Refused, unless the statement uses nothing of the rows but
-- their ids.
DELETE FROM at_now WHERE lead_id = :'one';
INSERT INTO at_now (lead_id, name) VALUES (:'one', 'X') RETURNING id AS rx \gset
INSERT INTO at_now (lead_id, name) VALUES (:'one', 'Y') RETURNING id AS ry \gset
INSERT INTO at_now (lead_id, name) VALUES (:'one', 'W') RETURNING id AS rw \gset
SELECT emulator_clear();
BEGIN;
UPDATE at_def SET name = 'renamed' WHERE id = :'rx';
DELETE FROM at_def WHERE lead_id = :'one' AND name = 'X';  -- ERROR
ROLLBACK;
BEGIN;
UPDATE at_def SET name = 'renamed' WHERE id = :'rx';
-- the same through an immediate table, and for UPDATE (a SET that uses the
-- row, a RETURNING, a condition on other columns)
DELETE FROM at_now WHERE lead_id = :'one' AND name = 'X';  -- ERROR
ROLLBACK;
BEGIN;
UPDATE at_def SET name = 'renamed' WHERE id = :'rx';
UPDATE at_def SET name = name || '!' WHERE id = :'rx';  -- ERROR
ROLLBACK;
BEGIN;
UPDATE at_def SET name = 'renamed' WHERE id = :'rx';
UPDATE at_def SET name = 'again' WHERE id = :'rx' RETURNING name;  -- ERROR
ROLLBACK;
SELECT * FROM emulator_requests();
-- by id alone it stays allowed: several UPDATEs of one record, each a PUT
-- (also through the immediate table, for another record)
BEGIN;
UPDATE at_def SET name = 'renamed' WHERE id = :'rx';
UPDATE at_def SET name = 'renamed twice' WHERE id = :'rx';
DELETE FROM at_def WHERE id = :'rx';
UPDATE at_now SET name = 'other' WHERE id = :'rw';
COMMIT;
SELECT * FROM emulator_requests();
-- a ROLLBACK TO SAVEPOINT that dropped the UPDATEs frees the table again
INSERT INTO at_now (lead_id, name) VALUES (:'one', 'Z') RETURNING id AS rz \gset
BEGIN;
SAVEPOINT s;
UPDATE at_def SET name = 'renamed' WHERE id = :'rz';
ROLLBACK TO SAVEPOINT s;
DELETE FROM at_def WHERE lead_id = :'one' AND name = 'Z';
\echo :ROW_COUNT
COMMIT;
SELECT name FROM at_now WHERE lead_id = :'one' ORDER BY name;
