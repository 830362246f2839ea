-- review_write: what PostgreSQL checks only after a foreign table's write
-- is refused before the request (transition tables, WITH CHECK OPTION,
-- a MERGE moving a row into a Close partition), AFTER ROW triggers see the
-- row Close stored, and a 5xx other than 501/503 may have acted.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE rw_devices (id text, lead_id text, name text, date_updated timestamptz)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');

-- AFTER ROW triggers see the row Close stored, as RETURNING does: the new
-- record's id, the date of the update
CREATE TABLE rw_audit (op text, id text, name text, date_updated timestamptz);
CREATE FUNCTION rw_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rw_audit VALUES (TG_OP, NEW.id, NEW.name, NEW.date_updated);
  RETURN NEW;
END $$;
CREATE TRIGGER rw_audit AFTER INSERT OR UPDATE ON rw_devices
  FOR EACH ROW EXECUTE FUNCTION rw_audit();
SET TimeZone = 'UTC';
INSERT INTO rw_devices (lead_id, name) VALUES (:'one', 'Audited');
UPDATE rw_devices SET name = 'Audited again' WHERE lead_id = :'one' AND name = 'Audited';
SELECT a.op, a.id = d.id AS id_is_closes, a.name, a.date_updated
  FROM rw_audit a LEFT JOIN (SELECT id FROM rw_devices WHERE lead_id = :'one') d ON d.id = a.id
 ORDER BY a.op;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
-- the same for rows that COPY sends
COPY rw_devices (lead_id, name) FROM STDIN;
lead_One0000000000000000000000000000000000000000	Audited copy
\.
SELECT a.op, a.id = d.id AS id_is_closes, a.name
  FROM rw_audit a LEFT JOIN (SELECT id FROM rw_devices WHERE lead_id = :'one') d ON d.id = a.id
 WHERE a.name = 'Audited copy';
DROP TRIGGER rw_audit ON rw_devices;

-- a view's WITH CHECK OPTION is checked before the request: PostgreSQL
-- checks it after the write, which Close has then done
CREATE VIEW rw_a_devices AS
  SELECT * FROM rw_devices WHERE name LIKE 'A%' WITH CHECK OPTION;
INSERT INTO rw_a_devices (lead_id, name) VALUES (:'one', 'B device');  -- ERROR
UPDATE rw_a_devices SET name = 'B device' WHERE lead_id = :'one';  -- ERROR
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
UPDATE rw_a_devices SET name = 'A device' WHERE lead_id = :'one' RETURNING name;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
DROP VIEW rw_a_devices;

-- transition tables: PostgreSQL cannot collect a foreign partition's rows,
-- and says so after the row's write; refused before any request
CREATE TABLE rw_parted (id text, lead_id text, name text, custom_object_type_id text)
  PARTITION BY LIST (custom_object_type_id);
CREATE FOREIGN TABLE rw_parted_devices PARTITION OF rw_parted
  FOR VALUES IN ('cotype_Device0000000000000000')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
CREATE TABLE rw_parted_local PARTITION OF rw_parted DEFAULT;
CREATE FUNCTION rw_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE '% rows', (SELECT count(*) FROM changed);
  RETURN NULL;
END $$;
CREATE TRIGGER rw_ins AFTER INSERT ON rw_parted REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION rw_count();
CREATE TRIGGER rw_upd AFTER UPDATE ON rw_parted REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION rw_count();
CREATE TRIGGER rw_del AFTER DELETE ON rw_parted REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION rw_count();
INSERT INTO rw_parted (lead_id, name, custom_object_type_id)
VALUES (:'one', 'Collected', 'cotype_Device0000000000000000');  -- ERROR
COPY rw_parted (lead_id, name, custom_object_type_id) FROM STDIN;  -- ERROR
lead_One0000000000000000000000000000000000000000	Copied	cotype_Device0000000000000000
\.
UPDATE rw_parted SET name = 'Collected' WHERE lead_id = :'one';  -- ERROR
DELETE FROM rw_parted WHERE lead_id = :'one';  -- ERROR
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';
-- a local partition's rows are collected as ever
INSERT INTO rw_parted (lead_id, name, custom_object_type_id)
VALUES (:'one', 'Local', 'cotype_Local');
DROP TRIGGER rw_ins ON rw_parted;
DROP TRIGGER rw_upd ON rw_parted;
DROP TRIGGER rw_del ON rw_parted;
-- a row routed to a Close partition: its AFTER ROW trigger (cloned from
-- the partitioned table's) sees the row Close stored
CREATE FUNCTION rw_audit_parted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rw_audit VALUES (TG_OP, NEW.id, NEW.name);
  RETURN NEW;
END $$;
CREATE TRIGGER rw_audit AFTER INSERT ON rw_parted
  FOR EACH ROW EXECUTE FUNCTION rw_audit_parted();
INSERT INTO rw_parted (lead_id, name, custom_object_type_id)
VALUES (:'one', 'Routed', 'cotype_Device0000000000000000');
SELECT a.op, a.id = d.id AS id_is_closes, a.name
  FROM rw_audit a LEFT JOIN (SELECT id FROM rw_devices WHERE lead_id = :'one') d ON d.id = a.id
 WHERE a.name = 'Routed';
DROP TRIGGER rw_audit ON rw_parted;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';

INSERT INTO rw_parted_devices (lead_id, name) VALUES (:'one', 'Placed') RETURNING name;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';

-- MERGE (15+) does not move a row from a local partition into a Close one
-- (that would create a record and delete the row), as UPDATE does not;
-- its INSERT action inserts as INSERT does (13 has no MERGE: the same
-- answers are shown)
CREATE TABLE rw_by_name (id text, lead_id text, name text) PARTITION BY LIST (name);
CREATE FOREIGN TABLE rw_by_name_close PARTITION OF rw_by_name FOR VALUES IN ('Moved', 'Merged')
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
CREATE TABLE rw_by_name_local PARTITION OF rw_by_name DEFAULT;
INSERT INTO rw_by_name VALUES (NULL, :'mixed', 'Local');
CREATE FUNCTION rw_merge(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('server_version_num')::int < 150000 THEN
    IF stmt LIKE '%UPDATE%' THEN
      RETURN 'refused';
    END IF;
    -- what the MERGE's INSERT action does
    INSERT INTO rw_by_name VALUES (NULL, 'lead_Mixed00000000000000000000000000000000000000', 'Merged');
    RETURN 'merged';
  END IF;
  EXECUTE stmt;
  RETURN 'merged';
EXCEPTION WHEN feature_not_supported THEN
  RETURN 'refused';
END $$;
SELECT rw_merge($$MERGE INTO rw_by_name t USING (VALUES ('Local')) v(n) ON t.name = v.n
  WHEN MATCHED THEN UPDATE SET name = 'Moved'$$);
SELECT name FROM rw_by_name_local;
SELECT rw_merge($$MERGE INTO rw_by_name t USING (VALUES ('New')) v(n) ON t.name = v.n
  WHEN NOT MATCHED THEN INSERT VALUES (NULL, 'lead_Mixed00000000000000000000000000000000000000', 'Merged')$$);
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET%';

-- a 500 to a write: Close may have acted before it failed (only 501 and
-- 503 say it did not); the error says so
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 500, "times": 1}');
INSERT INTO rw_devices (lead_id, name) VALUES (:'one', 'Five hundred');  -- ERROR
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 500, "times": 1}');
UPDATE rw_devices SET name = 'Five hundred' WHERE lead_id = :'one' AND name = 'Placed';  -- ERROR
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 503, "times": 1}');
INSERT INTO rw_devices (lead_id, name) VALUES (:'one', 'Unavailable');  -- ERROR

-- a transaction that wrote to Close cannot be prepared: its rollback
-- could not undo the writes, nor would anything say so
BEGIN;
INSERT INTO rw_devices (lead_id, name) VALUES (:'one', 'Prepared');
PREPARE TRANSACTION 'rw_prepared';  -- ERROR
-- (the error lists them, so the rollback has no WARNING to add)

RESET TimeZone;
DROP TABLE rw_by_name, rw_parted, rw_audit;
DROP FUNCTION rw_merge(text);
DROP FUNCTION rw_count();
DROP FUNCTION rw_audit();
DROP FUNCTION rw_audit_parted();
DROP FOREIGN TABLE rw_devices;
SELECT emulator_reset();
