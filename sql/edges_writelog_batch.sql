-- edges_writelog_batch: edges_writelog's cases for batch INSERT (sent
-- together, PostgreSQL 14 and later): an unreadable answer in a batch, and
-- a cancel in the first or the second round of a concurrent batch.
SELECT current_setting('server_version_num')::int >= 140000 AS has_batch_insert \gset
\if :has_batch_insert
\else
\echo 'batch insert came in PostgreSQL 14: nothing to test here'
\quit
\endif
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

-- five rows in one batch (sent together), the third answered 201 with a body
-- that is not JSON: the four others are created
-- and named, the unreadable one may exist
ALTER FOREIGN TABLE wl_devices OPTIONS (ADD batch_size '5');
SELECT one_count() AS before \gset
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 0, "times": 2}');
SELECT emulator_fault('{"method": "POST", "action": "replace_body", "body": "<html>Created</html>", "times": 1}');
SELECT masked_error(format($q$INSERT INTO wl_devices (lead_id, name) SELECT %L, 'Bat ' || i FROM generate_series(1, 5) i$q$, :'one'));
SELECT one_count() - :before AS created;
ALTER FOREIGN TABLE wl_devices OPTIONS (DROP batch_size);

-- a cancel during a concurrent batch (batch_size 16, max_concurrency 8):
-- every POST in flight is reported, in the first round ...
ALTER FOREIGN TABLE wl_devices OPTIONS (ADD batch_size '16');
SELECT one_count() AS before \gset
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 3, "times": 16}');
SET statement_timeout = '1s';
SELECT masked_error(format($q$INSERT INTO wl_devices (lead_id, name) SELECT %L, 'Round ' || i FROM generate_series(1, 16) i$q$, :'one'));
RESET statement_timeout;
SELECT one_count_reaches(:before + 8) - :before AS created;
SELECT emulator_reset();
-- ... and in the second, after the first round's eight were created
SELECT one_count() AS before \gset
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 0, "times": 8}');
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 3, "times": 8}');
SET statement_timeout = '1500ms';
SELECT masked_error(format($q$INSERT INTO wl_devices (lead_id, name) SELECT %L, 'Round ' || i FROM generate_series(1, 16) i$q$, :'one'));
RESET statement_timeout;
SELECT one_count_reaches(:before + 16) - :before AS created;

ALTER FOREIGN TABLE wl_devices OPTIONS (DROP batch_size);
SELECT emulator_reset();
DROP FOREIGN TABLE wl_devices;
DROP FUNCTION one_count_reaches(int);
DROP FUNCTION one_count();
DROP FUNCTION masked_error(text);
