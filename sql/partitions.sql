-- partitions: a partitioned table whose partitions are close_fdw tables,
-- one per custom object type, with the id column at different positions.
-- UPDATE and DELETE (with RETURNING) reach every partition; a row never
-- moves from one partition to another (Close keeps a record's lead and type).
\set VERBOSITY default
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
SELECT emulator_reset();

CREATE TABLE parted (
  id text, lead_id text, name text, custom_object_type_id text, custom jsonb
) PARTITION BY LIST (custom_object_type_id);
CREATE FOREIGN TABLE parted_subs PARTITION OF parted
  FOR VALUES IN ('cotype_Subscription0000000000')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
-- the Resource partition has its columns in another order: id is last
CREATE FOREIGN TABLE parted_res (
  custom jsonb, name text, custom_object_type_id text, lead_id text, id text
) SERVER close OPTIONS (custom_object_type_id 'cotype_1h5m6uHM9BZOpwVhyRJb4Y');
ALTER TABLE parted ATTACH PARTITION parted_res
  FOR VALUES IN ('cotype_1h5m6uHM9BZOpwVhyRJb4Y');

SELECT tableoid::regclass, id, name FROM parted WHERE lead_id = :'mixed' ORDER BY id;
SELECT emulator_clear();

-- UPDATE over both partitions: one PUT per row, each to its own record
UPDATE parted SET name = name || ' (2)' WHERE lead_id = :'mixed'
RETURNING tableoid::regclass, id, name;
SELECT * FROM emulator_requests() ORDER BY 1;

-- a BEFORE ROW trigger on the partitioned table reaches each partition,
-- whose row read is in its own column order; UPDATE ... FROM matching a
-- record twice writes it once
CREATE FUNCTION parted_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.name := NEW.name || ' [' || substr(NEW.custom_object_type_id, 8, 4) || ']';
  RETURN NEW;
END $$;
CREATE TRIGGER parted_before_update BEFORE UPDATE ON parted
  FOR EACH ROW EXECUTE FUNCTION parted_before_update();
UPDATE parted SET custom = '{}' FROM (VALUES (1), (2)) v(n)
 WHERE lead_id = :'mixed'
RETURNING tableoid::regclass, id, name;
SELECT * FROM emulator_requests() r WHERE r LIKE 'PUT%' ORDER BY 1;
DROP TRIGGER parted_before_update ON parted;

-- DELETE ... RETURNING over both partitions: the rows as they were read
-- (a row trigger needs the whole row too: it shares the same one)
CREATE FUNCTION parted_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'deleted %', OLD.name;
  RETURN OLD;
END $$;
CREATE TRIGGER parted_after_delete AFTER DELETE ON parted
  FOR EACH ROW EXECUTE FUNCTION parted_after_delete();
DELETE FROM parted WHERE lead_id = :'mixed' AND name LIKE 'Mixed%'
RETURNING tableoid::regclass, id, name;
DROP TRIGGER parted_after_delete ON parted;
SELECT * FROM emulator_requests() ORDER BY 1;

-- a row never moves to another partition: lead_id and
-- custom_object_type_id cannot be assigned (plan time) ...
UPDATE parted SET custom_object_type_id = 'cotype_1h5m6uHM9BZOpwVhyRJb4Y'
 WHERE lead_id = :'mixed';  -- ERROR
-- ... and a partition key Close can change is refused before any request
-- when the new row belongs elsewhere (moving would delete the record and
-- create another, with a new id)
SELECT emulator_reset();
CREATE TABLE by_name (id text, lead_id text, name text) PARTITION BY LIST (name);
CREATE FOREIGN TABLE by_name_a PARTITION OF by_name FOR VALUES IN ('Mixed Alpha', 'Moved')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
CREATE FOREIGN TABLE by_name_b PARTITION OF by_name FOR VALUES IN ('Mixed Beta', 'Elsewhere')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
CREATE TABLE by_name_local PARTITION OF by_name FOR VALUES IN ('Local');
SELECT emulator_clear();
UPDATE by_name SET name = 'Elsewhere' WHERE lead_id = :'mixed' AND name = 'Mixed Alpha';  -- ERROR
UPDATE by_name SET name = 'Moved' WHERE lead_id = :'mixed' AND name = 'Mixed Beta';  -- ERROR
-- the partition itself, by id: read first, then refused
UPDATE by_name_a SET name = 'Elsewhere'
 WHERE id = 'custobj_MixedAlpha000000000000000000000000000000000';  -- ERROR
-- from a local partition into a Close one: refused too (nothing is created)
INSERT INTO by_name_local VALUES (NULL, :'mixed', 'Local');
UPDATE by_name SET name = 'Moved' WHERE name = 'Local';  -- ERROR
SELECT * FROM emulator_requests();
-- within its partition, a change is an ordinary PUT
UPDATE by_name SET name = 'Moved' WHERE lead_id = :'mixed' AND name = 'Mixed Alpha'
RETURNING tableoid::regclass, id, name;
SELECT * FROM emulator_requests();
DROP TABLE by_name;
DROP TABLE parted;
SELECT emulator_reset();
