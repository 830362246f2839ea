-- rev_c: a record that one part of a statement with data-modifying WITH
-- queries already wrote is skipped by the others before any check of the
-- new row they would write, as PostgreSQL skips a local row the command
-- already changed: no error after Close was written to.
\set VERBOSITY default
\set only 'custobj_OnlyOne000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE rc_any (id text, lead_id text, name text) SERVER close;

-- 1. a view's CHECK OPTION: PostgreSQL checks it only for a row it
-- updates, so the WITH's row, already updated by the main query (which
-- runs first), is skipped without an error (a local table shows it)
CREATE TABLE rc_local (id text, name text);
INSERT INTO rc_local VALUES ('x', 'orig');
CREATE VIEW rc_local_v AS SELECT * FROM rc_local WHERE name <> 'hidden'
  WITH CHECK OPTION;
WITH u AS (UPDATE rc_local_v SET name = 'hidden' WHERE id = 'x')
UPDATE rc_local SET name = 'main' WHERE id = 'x';
SELECT * FROM rc_local;
CREATE VIEW rc_v AS SELECT * FROM rc_any WHERE name <> 'hidden'
  WITH CHECK OPTION;
WITH u AS (UPDATE rc_v SET name = 'hidden' WHERE id = :'only' RETURNING name)
UPDATE rc_any SET name = 'main' WHERE id = :'only' RETURNING name;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
SELECT name FROM rc_any WHERE id = :'only';

-- 2. a partition bound: the main query writes the record (keeping it in
-- its partition) before the WITH reads it; through a partitioned table
-- PostgreSQL would move the WITH's row, and skips it as already updated.
-- close_fdw refuses a move, but not for a record it skips.
CREATE TABLE rc_by_name (id text, lead_id text, name text) PARTITION BY LIST (name);
CREATE FOREIGN TABLE rc_by_name_main PARTITION OF rc_by_name FOR VALUES IN ('main')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
CREATE FOREIGN TABLE rc_by_name_rest PARTITION OF rc_by_name DEFAULT
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
SELECT tableoid::regclass, name FROM rc_by_name WHERE id = :'only';
WITH u AS (UPDATE rc_by_name SET name = 'elsewhere' WHERE id = :'only' RETURNING name)
UPDATE rc_any SET name = 'main' WHERE id = :'only' RETURNING name;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%' AND r NOT LIKE 'POST /data/search/%';
SELECT tableoid::regclass, name FROM rc_by_name WHERE id = :'only';
-- a record not written by another part is still refused its move
UPDATE rc_by_name SET name = 'elsewhere' WHERE id = :'only';  -- ERROR
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%' AND r NOT LIKE 'POST /data/search/%';

-- 3. the same for a DELETE whose rows a statement trigger would collect
-- in a transition table (which a foreign partition's rows cannot be in):
-- a record the main query already wrote is skipped, with no error
CREATE FUNCTION rc_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'deleted: %', (SELECT count(*) FROM gone);
  RETURN NULL;
END $$;
CREATE TRIGGER rc_count AFTER DELETE ON rc_by_name
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION rc_count();
WITH d AS (DELETE FROM rc_by_name WHERE id = :'only' RETURNING name)
UPDATE rc_any SET name = 'main' WHERE id = :'only' RETURNING name;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%' AND r NOT LIKE 'POST /data/search/%';
DELETE FROM rc_by_name WHERE id = :'only';  -- ERROR
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%' AND r NOT LIKE 'POST /data/search/%';
SELECT name FROM rc_any WHERE id = :'only';
