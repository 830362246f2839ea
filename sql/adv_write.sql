-- adv_write: writes through every statement form reach Close once, with
-- what the statement means, and what the statement reports is what Close
-- holds.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
\set only 'custobj_OnlyOne000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE aw_dev (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
CREATE FOREIGN TABLE aw_any (id text, lead_id text, name text) SERVER close;

-- 1. two parts of one statement (the main query and a data-modifying
-- WITH) that write the same record: as for a local row, the part that runs
-- first writes it and the other skips it, so Close holds what the
-- statement reported.  The main query runs before a WITH it does not read.
WITH u AS (UPDATE aw_dev SET name = 'from the WITH' WHERE lead_id = :'one' RETURNING id)
UPDATE aw_dev SET name = 'from the main query' WHERE lead_id = :'one' RETURNING name;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
SELECT name FROM aw_dev WHERE lead_id = :'one';
-- a DELETE of the rows a WITH updated deletes none (the WITH runs first)
WITH u AS (UPDATE aw_dev SET name = 'updated' WHERE lead_id = :'one' RETURNING id)
DELETE FROM aw_dev WHERE id IN (SELECT id FROM u);
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
SELECT name FROM aw_dev WHERE lead_id = :'one';
-- the same by id without reading first, and through two foreign tables of
-- the same records
WITH u AS (UPDATE aw_any SET name = 'w1' WHERE id = :'only')
UPDATE aw_any SET name = 'w2' WHERE id = :'only';
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
WITH u AS (UPDATE aw_any SET name = 'z1' WHERE lead_id = :'one')
UPDATE aw_dev SET name = 'z2' WHERE lead_id = :'one';
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
WITH u AS (DELETE FROM aw_dev WHERE id = :'only')
UPDATE aw_any SET name = 'gone?' WHERE id = :'only';
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
SELECT name FROM aw_dev WHERE lead_id = :'one';

-- 2. a new row must belong to its partition: PostgreSQL checks a local
-- partition's constraint on INSERT, not a foreign one's, and Close would
-- keep a record the partitioned table shows in the wrong partition.
-- Refused before any request, whether inserted into the partition itself
-- or moved out of it by the partition's BEFORE ROW trigger after routing.
CREATE TABLE aw_by_lead (id text, lead_id text, name text) PARTITION BY LIST (lead_id);
CREATE FOREIGN TABLE aw_by_lead_one PARTITION OF aw_by_lead
  FOR VALUES IN ('lead_One0000000000000000000000000000000000000000')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
CREATE TABLE aw_by_lead_rest PARTITION OF aw_by_lead DEFAULT;
INSERT INTO aw_by_lead_one (lead_id, name)
VALUES ('lead_Mixed00000000000000000000000000000000000000', 'wrong lead');  -- ERROR
ALTER FOREIGN TABLE aw_by_lead_one OPTIONS (ADD batch_size '10');
INSERT INTO aw_by_lead_one (lead_id, name)
VALUES ('lead_Mixed00000000000000000000000000000000000000', 'wrong lead'), (:'one', 'right lead');  -- ERROR
ALTER FOREIGN TABLE aw_by_lead_one OPTIONS (DROP batch_size);
CREATE FUNCTION aw_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.lead_id := 'lead_Mixed00000000000000000000000000000000000000';
  RETURN NEW;
END $$;
CREATE TRIGGER aw_move BEFORE INSERT ON aw_by_lead_one
  FOR EACH ROW EXECUTE FUNCTION aw_move();
INSERT INTO aw_by_lead (lead_id, name) VALUES (:'one', 'moved by a trigger');  -- ERROR
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
DROP TRIGGER aw_move ON aw_by_lead_one;
-- a row that belongs is written, routed or not
INSERT INTO aw_by_lead (lead_id, name) VALUES (:'one', 'routed');
INSERT INTO aw_by_lead_one (lead_id, name) VALUES (:'one', 'direct');
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
SELECT name FROM aw_by_lead WHERE lead_id = :'one' ORDER BY name;

-- 3. a foreign partition shows, updates and deletes only the records of
-- its partition: a table per lead (partitions by lead_id) lists only its
-- lead (its bound becomes the lead's listing), so the partitioned table
-- shows each record once and an UPDATE through it writes each record once,
-- through the partition it belongs to.
CREATE TABLE aw_leads (id text, lead_id text, name text) PARTITION BY LIST (lead_id);
CREATE FOREIGN TABLE aw_leads_one PARTITION OF aw_leads
  FOR VALUES IN ('lead_One0000000000000000000000000000000000000000')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
CREATE FOREIGN TABLE aw_leads_plain1 PARTITION OF aw_leads
  FOR VALUES IN ('lead_Plain10000000000000000000000000000000000000')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
CREATE FOREIGN TABLE aw_leads_other PARTITION OF aw_leads DEFAULT
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
EXPLAIN (COSTS OFF) SELECT * FROM aw_leads;
SELECT tableoid::regclass, lead_id, name FROM aw_leads ORDER BY name;
SELECT count(*) FROM aw_leads_plain1;
UPDATE aw_leads SET name = name || '!' WHERE name LIKE 'Plain%' RETURNING tableoid::regclass, name;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%' AND r NOT LIKE 'POST /data/search/%';
DELETE FROM aw_leads WHERE name IN ('routed', 'direct') RETURNING tableoid::regclass, name;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%' AND r NOT LIKE 'POST /data/search/%';
-- a record of another lead is not in the partition: deleting or updating
-- it by id through the partition writes nothing
DELETE FROM aw_leads_plain1 WHERE id = 'custobj_RLXAgBmZ7wwqmY4x9HFsf9wNtNbrWHhei9NVVy9CGwA';
UPDATE aw_leads_plain1 SET name = 'not mine' WHERE id = 'custobj_RLXAgBmZ7wwqmY4x9HFsf9wNtNbrWHhei9NVVy9CGwA';
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%' AND r NOT LIKE 'POST /data/search/%';
SELECT name FROM aw_leads_other WHERE id = 'custobj_RLXAgBmZ7wwqmY4x9HFsf9wNtNbrWHhei9NVVy9CGwA';
-- the DEFAULT partition's bound is checked locally, so neither its order
-- with a LIMIT (WITH TIES too) nor a count is handed to Close: the same
-- rows as a local copy of the partitioned table gives, from whole searches
CREATE TEMP TABLE aw_leads_copy AS SELECT * FROM aw_leads;
SELECT emulator_clear();
SELECT (SELECT array_agg(name ORDER BY name) FROM (SELECT name FROM aw_leads_other
          ORDER BY lead_id FETCH FIRST 2 ROWS WITH TIES) f)
     = (SELECT array_agg(name ORDER BY name) FROM (SELECT name FROM aw_leads_copy
          WHERE lead_id NOT IN ('lead_One0000000000000000000000000000000000000000',
                                'lead_Plain10000000000000000000000000000000000000')
          ORDER BY lead_id FETCH FIRST 2 ROWS WITH TIES) c) AS same_rows,
       (SELECT count(*) FROM aw_leads_other) AS counted;
SELECT count(*) AS searches,
       count(*) FILTER (WHERE r LIKE '%results_limit%' OR r NOT LIKE '%"_limit":200,%'
                           OR r LIKE '%lead_id","object_type%') AS cut_or_sorted_by_close
  FROM emulator_requests() r;
DROP TABLE aw_leads_copy;

-- 4. INSERT ... ON CONFLICT DO NOTHING into a partitioned table (a table
-- with a foreign partition has no unique index, so no conflict target):
-- a row routed to a Close partition is refused before its POST, as ON
-- CONFLICT on the foreign table itself is; Close has no unique constraint
-- to skip a duplicate by.  Rows routed to local partitions are inserted.
INSERT INTO aw_by_lead (lead_id, name)
VALUES ('lead_Mixed00000000000000000000000000000000000000', 'local row')
ON CONFLICT DO NOTHING;
INSERT INTO aw_by_lead (lead_id, name)
VALUES ('lead_Mixed00000000000000000000000000000000000000', 'local again'), (:'one', 'to Close')
ON CONFLICT DO NOTHING;  -- ERROR
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
SELECT name FROM aw_by_lead_rest ORDER BY name;
