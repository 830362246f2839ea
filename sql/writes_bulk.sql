-- writes_bulk: many rows at once (INSERT ... SELECT, multi-row VALUES,
-- COPY); what a failing statement had already written is reported; a POST
-- is never sent twice.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE devices (
  id text, lead_id text, name text,
  weight numeric OPTIONS (field 'custom.cf_DeviceWeight0000000000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');

INSERT INTO devices (lead_id, name, weight)
SELECT :'one', 'Device ' || i, i * 1.5 FROM generate_series(1, 25) i;
INSERT INTO devices (lead_id, name) VALUES (:'one', 'V1'), (:'one', 'V2'), (:'one', 'V3');
COPY devices (lead_id, name, weight) FROM STDIN;
lead_One0000000000000000000000000000000000000000	Copied 1	1
lead_One0000000000000000000000000000000000000000	Copied 2	\N
\.
SELECT count(*), sum(weight) FROM devices WHERE lead_id = :'one';
SELECT count(*) FILTER (WHERE r LIKE 'POST %') AS posts, count(*) FILTER (WHERE r LIKE 'GET %') AS gets
  FROM emulator_requests() r;
-- COPY does not know the statement's columns: it sends every writable
-- column that is not NULL (an unlisted custom field is not sent as null)
SELECT emulator_clear();
COPY devices (lead_id, name) FROM STDIN;
lead_One0000000000000000000000000000000000000000	Copied 3
\.
SELECT * FROM emulator_requests();

-- batch insert (batch_size on the table or the server); RETURNING needs
-- each answer before the next row, so it inserts row by row
-- (PostgreSQL 13 has no batch insert: it shows no Batch Size, and inserts
-- row by row; expected/writes_bulk_1.out)
ALTER FOREIGN TABLE devices OPTIONS (ADD batch_size '10');
EXPLAIN (VERBOSE, COSTS OFF)
INSERT INTO devices (lead_id, name) SELECT :'one', 'Batched ' || i FROM generate_series(1, 12) i;
EXPLAIN (VERBOSE, COSTS OFF)
INSERT INTO devices (lead_id, name) VALUES (:'one', 'Returned') RETURNING name;
SELECT emulator_clear();
INSERT INTO devices (lead_id, name) SELECT :'one', 'Batched ' || i FROM generate_series(1, 12) i;
INSERT INTO devices (lead_id, name) VALUES (:'one', 'Returned') RETURNING name;
SELECT count(*) FILTER (WHERE r LIKE 'POST %') AS posts FROM emulator_requests() r;
ALTER FOREIGN TABLE devices OPTIONS (SET batch_size '0');  -- ERROR
ALTER FOREIGN TABLE devices OPTIONS (DROP batch_size);
ALTER SERVER close OPTIONS (ADD batch_size '5');
INSERT INTO devices (lead_id, name) SELECT :'one', 'Server batched ' || i FROM generate_series(1, 7) i;
ALTER SERVER close OPTIONS (DROP batch_size);
SELECT count(name) FROM devices WHERE lead_id = :'one' AND name LIKE '%atched%';

-- a batch's POSTs go out up to max_concurrency (8) at once, each at most
-- once: 12 rows in batches of 10 are three round trips (8, 2, then 2)
-- where one after another would be twelve
ALTER FOREIGN TABLE devices OPTIONS (ADD batch_size '10');
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 300}');
SELECT emulator_clear();
INSERT INTO devices (lead_id, name) SELECT :'one', 'Together ' || i FROM generate_series(1, 12) i;
SELECT requests, pauses = 2 AS three_round_trips FROM arrival_spread();
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 0}');
-- a POST refused with 429 did nothing: it is sent again, alone
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 429, "headers": {"Retry-After": "0"}, "body": "{\"error\": \"Rate limited\"}", "times": 1}');
INSERT INTO devices (lead_id, name) SELECT :'one', 'Refused ' || i FROM generate_series(1, 5) i;
SELECT count(*) FILTER (WHERE e->>'method' = 'POST') AS posts,
       count(*) FILTER (WHERE e->>'status' = '429') AS refused
  FROM emulator_log_entries() e;
SELECT count(name) FROM devices WHERE lead_id = :'one' AND name LIKE 'Refused %';
-- any other failure: no POST is sent twice, and the error counts what the
-- others in flight created (their ids depend on arrival order: masked)
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 503, "body": "{\"error\": \"Service unavailable\"}", "times": 1}');
DO $$
DECLARE
  msg text;
  detail text;
BEGIN
  INSERT INTO devices (lead_id, name)
  SELECT 'lead_One0000000000000000000000000000000000000000', 'Unavailable ' || i
    FROM generate_series(1, 5) i;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
  RAISE NOTICE '%: %', msg, regexp_replace(detail, 'custobj_[A-Za-z0-9]+', 'custobj_...', 'g');
END $$;
SELECT count(*) FILTER (WHERE e->>'method' = 'POST') AS posts FROM emulator_log_entries() e;
SELECT count(name) FROM devices WHERE lead_id = :'one' AND name LIKE 'Unavailable %';
ALTER FOREIGN TABLE devices OPTIONS (DROP batch_size);

-- a failure after some rows were created says which ones stay in Close
SELECT emulator_reset();
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 0, "times": 2}');
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 503, "body": "{\"error\": \"Service unavailable\"}", "times": 1}');
INSERT INTO devices (lead_id, name) SELECT :'one', 'Batch ' || i FROM generate_series(1, 5) i;  -- ERROR
SELECT name FROM devices WHERE lead_id = :'one' AND name LIKE 'Batch%' ORDER BY name;
-- a failure elsewhere in the statement: the rollback warns (caught here so
-- that the warning and the error reach psql in a fixed order)
SELECT emulator_clear();
DO $$
BEGIN
  INSERT INTO devices (lead_id, name)
  SELECT 'lead_One0000000000000000000000000000000000000000', 'Div ' || (10 / (2 - i))
    FROM generate_series(1, 2) i;
EXCEPTION WHEN division_by_zero THEN
  RAISE NOTICE 'the insert failed: %', SQLERRM;
END $$;
-- as does an explicit ROLLBACK, also of a savepoint
BEGIN;
UPDATE devices SET weight = 1 WHERE lead_id = :'one' AND name LIKE 'Batch%';
SAVEPOINT s;
DELETE FROM devices WHERE lead_id = :'one' AND name LIKE 'Div%';
ROLLBACK TO SAVEPOINT s;
ROLLBACK;
-- many ids are counted, not all listed
BEGIN;
INSERT INTO devices (lead_id, name) SELECT :'one', 'Many ' || i FROM generate_series(1, 23) i;
ROLLBACK;
SELECT count(*) FILTER (WHERE r LIKE 'POST %') AS posts, count(*) FILTER (WHERE r LIKE 'PUT %') AS puts,
       count(*) FILTER (WHERE r LIKE 'DELETE %') AS deletes
  FROM emulator_requests() r;

-- a POST goes out on the connection a read has just used (no new
-- handshake); on one idle for more than 2 s, which the server may be
-- closing, it does not
SELECT emulator_clear();
SELECT count(name) FROM devices WHERE lead_id = :'one';
INSERT INTO devices (lead_id, name) VALUES (:'one', 'Same connection');
SELECT pg_sleep(3.2);  -- libcurl counts idle time in whole seconds
INSERT INTO devices (lead_id, name) VALUES (:'one', 'New connection');
SELECT count(DISTINCT e->>'client_port') AS connections,
       count(*) FILTER (WHERE e->>'method' = 'POST') AS posts
  FROM emulator_log_entries() e;

-- a POST whose answer is lost is not repeated, and the error says it may have worked
SELECT emulator_reset();
SELECT count(name) FROM devices WHERE lead_id = :'one';
SELECT emulator_clear();
SELECT emulator_fault('{"method": "POST", "action": "truncate", "times": 1}');
INSERT INTO devices (lead_id, name) VALUES (:'one', 'Lost answer');  -- ERROR
-- libcurl would send a request again by itself when the kept-alive
-- connection it reused closes without an answer: a POST's body cannot be
-- rewound, so the POST fails instead of going twice
SELECT count(name) FROM devices WHERE lead_id = :'one';
SELECT emulator_fault('{"method": "POST", "action": "drop", "times": 1}');
INSERT INTO devices (lead_id, name) VALUES (:'one', 'Dropped');  -- ERROR
SELECT count(*) FILTER (WHERE r LIKE 'POST %') AS posts FROM emulator_requests() r;
SELECT name FROM devices WHERE lead_id = :'one' ORDER BY name;
