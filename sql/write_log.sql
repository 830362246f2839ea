-- write_log: close_fdw_write_log() lists, as data, the writes of the
-- current transaction if it wrote, else of the last finished one that did:
-- statement, table, action, object id, lead id, HTTP status and state.  It
-- matches the emulator's request log after a partial failure.
\set VERBOSITY terse
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();
CREATE FOREIGN TABLE wlog_devices (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
-- the write log next to the requests that reached the emulator (every
-- request but reads), in order; object ids masked where Close made them
CREATE FUNCTION log_vs_requests() RETURNS TABLE (
  statement int, action text, object_id text, lead_id text, http_status int,
  state text, request text, request_status int)
LANGUAGE sql AS $$
  WITH w AS (SELECT row_number() OVER () AS n, * FROM close_fdw_write_log()),
       r AS (SELECT row_number() OVER (ORDER BY (e->>'time')::numeric) AS n,
                    e->>'method' || ' ' || regexp_replace(e->>'path', '^/api/v1', '') AS request,
                    (e->>'status')::int AS status
               FROM emulator_log_entries() e WHERE e->>'method' <> 'GET')
  SELECT w.statement, w.action,
         CASE WHEN w.action = 'INSERT' THEN regexp_replace(w.object_id, 'custobj_.*', 'custobj_(new)')
              ELSE w.object_id END,
         w.lead_id, w.http_status, w.state, r.request, r.status
    FROM w FULL JOIN r USING (n) ORDER BY coalesce(w.n, r.n)
$$;
-- nothing written yet in this session
SELECT count(*) FROM close_fdw_write_log();

-- a transaction of three statements whose third fails on its second row
-- (Close rejects the values): the first row of the third stays in Close
BEGIN;
INSERT INTO wlog_devices (lead_id, name) VALUES (:'one', 'A'), (:'one', 'B');
UPDATE wlog_devices SET name = 'A2' WHERE lead_id = :'one' AND name = 'A';
SELECT emulator_fault('{"method": "POST", "action": "delay", "seconds": 0, "times": 1}');
SELECT emulator_fault('{"method": "POST", "action": "status", "status": 400, "body": {"field-errors": {"name": "Not allowed."}}, "times": 1}');
SAVEPOINT third;
INSERT INTO wlog_devices (lead_id, name) VALUES (:'one', 'C'), (:'one', 'D'), (:'one', 'E');  -- ERROR
ROLLBACK TO SAVEPOINT third;
-- still in the transaction: its writes
SELECT statement, foreign_table, action, lead_id, http_status, state FROM close_fdw_write_log();
ROLLBACK;
-- after it: the same, next to the request log
SELECT * FROM log_vs_requests();
-- the ids of the rows created are the records Close holds
SELECT count(*) AS created_in_close FROM close_fdw_write_log() l
  JOIN wlog_devices d ON d.id = l.object_id AND d.lead_id = :'one'
 WHERE l.action = 'INSERT' AND l.state = 'sent';

-- a transaction that did not write leaves it as it was
BEGIN;
SELECT count(name) FROM wlog_devices WHERE lead_id = :'one';
SELECT count(*) FROM close_fdw_write_log();
COMMIT;
SELECT count(*) FROM close_fdw_write_log();
SELECT emulator_clear();

-- a record gone (404) is failed and not counted; a 502 to a PUT may have
-- reached Close; a DELETE sent; a rolled back savepoint's writes stay listed
ALTER SERVER close OPTIONS (ADD max_retries '0');
SELECT id AS b_id FROM wlog_devices WHERE lead_id = :'one' AND name = 'B' \gset
SELECT id AS a_id FROM wlog_devices WHERE lead_id = :'one' AND name = 'A2' \gset
BEGIN;
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 404, "body": {"error": "Not found"}, "times": 1}');
UPDATE wlog_devices SET name = 'B2' WHERE id = :'b_id';
SAVEPOINT s;
DELETE FROM wlog_devices WHERE id = :'b_id';
ROLLBACK TO SAVEPOINT s;
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 502, "body": "", "times": 1}');
UPDATE wlog_devices SET name = 'A3' WHERE id = :'a_id';  -- ERROR
ROLLBACK;
ALTER SERVER close OPTIONS (DROP max_retries);
SELECT statement, action, object_id = :'a_id' AS is_a, object_id = :'b_id' AS is_b,
       lead_id, http_status, state FROM close_fdw_write_log();
SELECT request, request_status FROM log_vs_requests();

DROP FUNCTION log_vs_requests();
DROP FOREIGN TABLE wlog_devices;
