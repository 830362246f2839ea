-- concurrency: the first pages of many leads are fetched several at once
-- (max_concurrency, default 8).  Shown by when requests reach the emulator:
-- with 300 ms per answer, requests sent one after another arrive at least
-- 300 ms apart; sent together, they arrive together.
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 300}');
CREATE TABLE eight_leads AS
  SELECT unnest(ARRAY['lead_Mixed00000000000000000000000000000000000000',
                      'lead_One0000000000000000000000000000000000000000',
                      'lead_Empty00000000000000000000000000000000000000',
                      'lead_Plain10000000000000000000000000000000000000',
                      'lead_Plain20000000000000000000000000000000000000',
                      'lead_Plain30000000000000000000000000000000000000',
                      'lead_Plain40000000000000000000000000000000000000',
                      'lead_Plain50000000000000000000000000000000000000']) AS id;

SELECT count(name) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads));
SELECT requests, pauses = 0 AS sent_together FROM arrival_spread();

ALTER SERVER close OPTIONS (ADD max_concurrency '1');
SELECT count(name) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads));
SELECT requests, min_gap_ms >= 290 AS one_after_another FROM arrival_spread();

-- four at a time: two batches
ALTER SERVER close OPTIONS (SET max_concurrency '4');
SELECT count(name) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads));
SELECT requests, pauses = 1 AS two_batches FROM arrival_spread();
ALTER SERVER close OPTIONS (DROP max_concurrency);

-- a failure in a batch is fetched again alone, with the usual retries
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 503, "times": 1}');
SELECT lead_id, count(name) FROM close_custom_objects
 WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads)) GROUP BY 1 ORDER BY 1;
SELECT requests FROM arrival_spread();
-- within the pacing: when Close allows 3 requests a second, a batch sends
-- no more than remain, and no request collects a 429
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 0, "rate_limit_per_sec": 3}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
SELECT count(name) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads));
SELECT count(*) AS requests, count(*) FILTER (WHERE e->>'status' = '429') AS refused
  FROM emulator_log_entries() e;
ALTER SERVER close OPTIONS (ADD max_concurrency '65');  -- ERROR

-- one lead with many pages: after a full first page the next ones are
-- asked for max_concurrency (8) at once, at most 7 of them past the lead's
-- end: 250 records in pages of 40 (7 pages, overlapping by one object) are
-- 9 requests in 2 round trips (one after another: 7)
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 300}');
ALTER SERVER close OPTIONS (ADD page_size '40');
SELECT count(*), count(DISTINCT id) FROM close_custom_objects
 WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
SELECT requests, pauses = 1 AS two_round_trips FROM arrival_spread();
-- a server that answers shorter pages than asked: the next skips cannot be
-- guessed, so the pages are asked for one after another
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 0, "short_pages": 30}');
SELECT count(*), count(DISTINCT id) FROM close_custom_objects
 WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
SELECT count(*) AS requests FROM emulator_log_entries();
ALTER SERVER close OPTIONS (DROP page_size);

-- a nested loop asks for each lead once per statement: answers to repeated
-- requests are kept (within work_mem) for the outer rows that repeat them
SELECT emulator_reset();
CREATE TABLE repeated_leads AS SELECT id FROM eight_leads, generate_series(1, 3);
ANALYZE repeated_leads;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
-- (PostgreSQL 14 on can cache repeated keys itself, in a Memoize node)
DO $$ BEGIN SET enable_memoize = off; EXCEPTION WHEN undefined_object THEN NULL; END $$;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM repeated_leads r JOIN close_custom_objects t ON t.lead_id = r.id;
SELECT count(*) FROM repeated_leads r JOIN close_custom_objects t ON t.lead_id = r.id;
SELECT count(*) AS requests, count(DISTINCT e->>'raw_path') AS distinct_requests
  FROM emulator_log_entries() e;
-- answers beyond work_mem are not kept: the big lead is asked for again
SET work_mem = '64kB';
SELECT count(*) FROM (VALUES ('lead_Big0000000000000000000000000000000000000000'),
                             ('lead_Big0000000000000000000000000000000000000000')) r(id)
  JOIN close_custom_objects t ON t.lead_id = r.id;
SELECT count(*) > 3 AS asked_again, count(DISTINCT e->>'raw_path') AS distinct_requests
  FROM emulator_log_entries() e;
RESET work_mem;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;
DO $$ BEGIN RESET enable_memoize; EXCEPTION WHEN undefined_object THEN NULL; END $$;
DROP TABLE repeated_leads;

-- a search whose order does not matter is cut by date_created after its
-- first page: one request finds the newest object (sorted "desc"), the
-- range is cut into max_concurrency parts, and each part asks for its next
-- page as soon as its page is read, while the others' are out: with 200 ms
-- per answer, 2,000 objects come in well under the 2.2 s that eleven pages
-- one after another take
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/objects', '{"lead_id": "lead_Cut0000000000000000000000000000000000000000", "custom_object_type_id": "cotype_Device0000000000000000", "count": 2000, "name_prefix": "Cut"}');
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 200}');
SELECT emulator_clear();
SELECT count(*), count(DISTINCT id) FROM close_custom_objects
 WHERE custom_object_type_id = 'cotype_Device0000000000000000';
SELECT requests, spread_ms < 1500 AS concurrent FROM arrival_spread();
-- every part asks for its own range: on_or_after its start, before the
-- next part's (the last one is open)
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 0}');
SELECT count(name) FROM close_custom_objects
 WHERE custom_object_type_id = 'cotype_Device0000000000000000';
SELECT e->'body'->'sort'->0->>'direction' AS direction,
       e->'body'->>'cursor' IS NOT NULL AS with_cursor,
       e->'body'->'query'->'queries'->-1->'condition' ? 'on_or_after' AS from_start,
       e->'body'->'query'->'queries'->-1->'condition' ? 'before' AS up_to_next,
       count(*) AS requests
  FROM emulator_log_entries() e GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
-- objects are seldom spread evenly in time: all objects here are the
-- sample ones, from 2020, and the 2,000 above, from 2024.  The even cut
-- leaves the 2024 ones to the last part; once the parts before it have
-- ended, that part is cut again, from its last object read to the newest
SELECT count(*), count(DISTINCT id) FROM close_custom_objects;
-- (how many pieces depends on which parts end first: answers are read as
-- they come)
SELECT count(*) FILTER (WHERE e->'body'->'query'->'queries'->-1->'condition'->'on_or_after'->>'value' LIKE '2024%'
                          AND e->'body'->>'cursor' IS NULL) > 1 AS cut_again
  FROM emulator_log_entries() e;
-- each part still gets past the per-query cap by slices of its own
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 100}');
SELECT count(*), count(DISTINCT id) FROM close_custom_objects
 WHERE custom_object_type_id = 'cotype_Device0000000000000000';
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 10000}');
-- rows asked for in date_created order come from one search, in order
SELECT emulator_clear();
SELECT count(*) AS rows, count(*) FILTER (WHERE d < prev) AS out_of_order
  FROM (SELECT d, lag(d) OVER () AS prev
          FROM (SELECT date_created AS d FROM close_custom_objects
                 WHERE custom_object_type_id = 'cotype_Device0000000000000000'
                 ORDER BY date_created) o) s;
SELECT count(*) FILTER (WHERE e->'body'->'sort'->0->>'direction' = 'desc') AS newest_asked
  FROM emulator_log_entries() e;

SELECT emulator_reset();
DROP TABLE eight_leads;
