-- concurrency: the first pages of many leads are fetched several at once
-- (max_concurrency, default 8).  Shown by when requests reach the emulator:
-- with 300 ms per answer, requests sent one after another arrive at least
-- 300 ms apart; sent together, they arrive together.
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 300}');
CREATE FUNCTION arrival_spread() RETURNS TABLE (requests bigint, spread_ms numeric, min_gap_ms numeric)
LANGUAGE sql AS $$
  WITH t AS (SELECT (e->>'time')::numeric AS at FROM emulator_log_entries() e),
       g AS (SELECT at, at - lag(at) OVER (ORDER BY at) AS gap FROM t)
  SELECT count(*), round((max(at) - min(at)) * 1000), round(min(gap) * 1000) FROM g
$$;
CREATE TABLE eight_leads AS
  SELECT unnest(ARRAY['lead_Mixed00000000000000000000000000000000000000',
                      'lead_One0000000000000000000000000000000000000000',
                      'lead_Empty00000000000000000000000000000000000000',
                      'lead_Plain10000000000000000000000000000000000000',
                      'lead_Plain20000000000000000000000000000000000000',
                      'lead_Plain30000000000000000000000000000000000000',
                      'lead_Plain40000000000000000000000000000000000000',
                      'lead_Plain50000000000000000000000000000000000000']) AS id;

SELECT count(*) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads));
SELECT requests, spread_ms < 250 AS sent_together FROM arrival_spread();

ALTER SERVER close OPTIONS (ADD max_concurrency '1');
SELECT count(*) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads));
SELECT requests, min_gap_ms >= 290 AS one_after_another FROM arrival_spread();

-- four at a time: two batches
ALTER SERVER close OPTIONS (SET max_concurrency '4');
SELECT count(*) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads));
SELECT requests, spread_ms >= 290 AND spread_ms < 550 AS two_batches FROM arrival_spread();
ALTER SERVER close OPTIONS (DROP max_concurrency);

-- a failure in a batch is fetched again alone, with the usual retries
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 503, "times": 1}');
SELECT lead_id, count(*) FROM close_custom_objects
 WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads)) GROUP BY 1 ORDER BY 1;
SELECT requests FROM arrival_spread();
-- within the pacing: when Close allows 3 requests a second, a batch sends
-- no more than remain, and no request collects a 429
SELECT emulator_call('POST', '/_emulator/config', '{"latency_ms": 0, "rate_limit_per_sec": 3}');
SELECT count(*) FROM close_custom_objects WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
SELECT count(*) FROM close_custom_objects WHERE lead_id = ANY (ARRAY(SELECT id FROM eight_leads));
SELECT count(*) AS requests, count(*) FILTER (WHERE e->>'status' = '429') AS refused
  FROM emulator_log_entries() e;
ALTER SERVER close OPTIONS (ADD max_concurrency '65');  -- ERROR
SELECT emulator_reset();
DROP TABLE eight_leads;
