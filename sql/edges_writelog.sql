-- edges_writelog: every write that may have reached Close is in the write
-- log (the error's detail, the rollback warning): an answer that cannot be
-- read, a cancel or statement_timeout with requests in flight, a DELETE
-- whose retry finds the record gone.  Each case checks the emulator's store
-- against what the message said.
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE wl_devices (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
-- how many objects the emulator holds for lead one
CREATE FUNCTION one_count() RETURNS int LANGUAGE sql AS $$
  SELECT (string_agg(line, '')::jsonb ->> 'lead_One0000000000000000000000000000000000000000')::int
    FROM emulator_call('GET', '/_emulator/data/leads') AS line
$$;
-- wait (at most 10 s) until lead one holds n objects: requests the
-- statement gave up on may still be running in the emulator
CREATE FUNCTION one_count_reaches(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN one_count() >= n;
    PERFORM pg_sleep(0.1);
  END LOOP;
  RETURN one_count();
END $$;
-- run a statement; show its error with the ids masked (their order
-- depends on which concurrent request arrived first)
CREATE FUNCTION masked_error(stmt text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  msg text;
  detail text;
  hint text;
BEGIN
  EXECUTE stmt;
  RETURN NEXT 'no error';
EXCEPTION WHEN OTHERS OR query_canceled THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                          hint = PG_EXCEPTION_HINT;
  RETURN NEXT 'ERROR: ' || msg;
  RETURN QUERY SELECT 'DETAIL: ' || regexp_replace(d, 'custobj_[A-Za-z0-9]+', 'custobj_...', 'g')
                 FROM regexp_split_to_table(detail, E'\n') d WHERE detail <> '';
  IF hint <> '' THEN
    RETURN NEXT 'HINT: ' || hint;
  END IF;
END $$;
SELECT one_count();

-- five single-row POSTs, the third answered 201 with a body that is not
-- JSON: the error names the two created and says the third may exist
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 0, "times": 2}');
SELECT emulator_fault('{"method": "POST", "action": "replace_body", "body": "<html>Created</html>", "times": 1}');
INSERT INTO wl_devices (lead_id, name) SELECT :'one', 'Seq ' || i FROM generate_series(1, 5) i;  -- ERROR
SELECT one_count();


-- a 201 without an id
SELECT emulator_fault('{"method": "POST", "action": "replace_body", "body": {"name": "No id"}, "times": 1}');
INSERT INTO wl_devices (lead_id, name) VALUES (:'one', 'No id');  -- ERROR
SELECT one_count();

-- an unreadable 200 to a PUT: the record was changed, the error says it may be
SELECT id AS only_id FROM wl_devices WHERE lead_id = :'one' AND name = 'Only Device' \gset
SELECT emulator_fault('{"method": "PUT", "action": "replace_body", "body": "<html>Saved</html>", "times": 1}');
UPDATE wl_devices SET name = 'Renamed' WHERE lead_id = :'one' AND name = 'Only Device';  -- ERROR
SELECT name FROM wl_devices WHERE id = :'only_id';

-- a DELETE whose answer is lost after Close deleted the record: the retry
-- gets 404; the record is counted as deleted, and the write log says so
SELECT emulator_fault('{"method": "DELETE", "action": "truncate", "times": 1}');
SELECT emulator_clear();
BEGIN;
WITH d AS (DELETE FROM wl_devices WHERE id = :'only_id' RETURNING id) SELECT count(*) AS deleted FROM d;
ROLLBACK;
SELECT * FROM emulator_requests() r WHERE r NOT LIKE 'GET %';
-- the same by id without reading first (requests sent together)
SELECT id AS seq1_id FROM wl_devices WHERE lead_id = :'one' AND name = 'Seq 1' \gset
SELECT emulator_fault(format('{"method": "DELETE", "path_prefix": "/api/v1/custom_object/%s/", "action": "truncate", "times": 1}', :'seq1_id')::jsonb);
DO $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM close_custom_objects WHERE id = ANY (ARRAY[
    (SELECT id FROM wl_devices WHERE lead_id = 'lead_One0000000000000000000000000000000000000000' AND name = 'Seq 1'),
    'custobj_Gone000000000000000000000000000000000000000']);
  GET DIAGNOSTICS n = ROW_COUNT;
  RAISE NOTICE 'deleted: %', n;
  RAISE division_by_zero;
EXCEPTION WHEN division_by_zero THEN
  RAISE NOTICE 'rolled back';
END $$;
SELECT count(*) FROM wl_devices WHERE id = :'seq1_id';

-- statement_timeout during a single-row INSERT: the POST was sent, so it
-- may have reached Close (it did: the emulator creates it after its delay)
SELECT one_count() AS before \gset
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 2, "times": 1}');
SET statement_timeout = '1s';
INSERT INTO wl_devices (lead_id, name) VALUES (:'one', 'Timed out');  -- ERROR
RESET statement_timeout;
SELECT one_count_reaches(:before + 1) - :before AS created;
-- in a transaction, with a row created before: the error (raised in the
-- function's subtransaction) tells what the statement may have written, the
-- rollback what the transaction wrote
BEGIN;
INSERT INTO wl_devices (lead_id, name) VALUES (:'one', 'Kept');
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 2, "times": 1}');
SET LOCAL statement_timeout = '1s';
SELECT masked_error(format($q$INSERT INTO wl_devices (lead_id, name) VALUES (%L, 'Timed out')$q$, :'one'));
ROLLBACK;
SELECT one_count_reaches(:before + 3) - :before AS created;


-- the same for PUTs in flight (an UPDATE by id, sent together): each
-- record may have been updated (it was: the emulator runs them after the
-- delay)
SELECT emulator_reset();
SELECT emulator_fault('{"method": "PUT", "action": "delay", "seconds": 2, "times": 2}');
SET statement_timeout = '1s';
UPDATE close_custom_objects SET name = 'Timed out'
 WHERE id IN ('custobj_MixedAlpha000000000000000000000000000000000',
              'custobj_MixedBeta0000000000000000000000000000000000');  -- ERROR
RESET statement_timeout;
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN (SELECT count(*) FROM close_custom_objects
                WHERE id IN ('custobj_MixedAlpha000000000000000000000000000000000',
                             'custobj_MixedBeta0000000000000000000000000000000000')
                  AND name = 'Timed out') = 2;
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SELECT id, name FROM close_custom_objects
 WHERE id IN ('custobj_MixedAlpha000000000000000000000000000000000',
              'custobj_MixedBeta0000000000000000000000000000000000') ORDER BY id;

-- a batch POST whose answer is cut short: the detail is that transfer's
-- (how many bytes were missing), and the object may exist
SELECT emulator_reset();
ALTER FOREIGN TABLE wl_devices OPTIONS (ADD batch_size '3');
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 0, "times": 2}');
SELECT emulator_fault('{"method": "POST", "action": "truncate", "times": 1}');
SELECT masked_error(format($q$INSERT INTO wl_devices (lead_id, name) SELECT %L, 'Cut ' || i FROM generate_series(1, 3) i$q$, :'one'));
SELECT one_count();

ALTER FOREIGN TABLE wl_devices OPTIONS (DROP batch_size);
SELECT emulator_reset();
DROP FOREIGN TABLE wl_devices;
DROP FUNCTION one_count_reaches(int);
DROP FUNCTION one_count();
DROP FUNCTION masked_error(text);
