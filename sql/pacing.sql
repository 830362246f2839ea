-- pacing: the answers to concurrent requests reach Close, and are learnt,
-- in any order.  Close allows 3 requests in 500 ms; lead_Big's listing is a
-- first page, then its two other pages fetched ahead at once.  One of the
-- two is held back 100 ms before Close counts it, so that Close counts the
-- later ticket first: its answer still says one remains, although the
-- other took it.  The next statement's request must wait for the reset
-- instead of collecting a 429; either page held back, a few times over.
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/config', '{"rate_limit_per_sec": 3, "rate_limit_window_ms": 500}');
DO $$
DECLARE
  held text;
BEGIN
  FOR round IN 1..4 LOOP
    held := CASE WHEN round % 2 = 1 THEN '&_skip=99&' ELSE '&_skip=198&' END;
    -- a window without requests: it is empty again
    PERFORM pg_sleep(0.6);
    PERFORM emulator_fault(jsonb_build_object('path_prefix', '/api/v1/custom_object/',
      'query_contains', held, 'action', 'delay', 'seconds', 0.1, 'times', 1));
    PERFORM count(name) FROM close_custom_objects
     WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
    PERFORM count(name) FROM close_custom_objects
     WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
  END LOOP;
END $$;
SELECT count(*) AS requests, count(*) FILTER (WHERE e->>'status' = '429') AS refused,
       count(*) FILTER (WHERE e->>'raw_path' LIKE '%&_skip=99&%') AS second_pages,
       count(*) FILTER (WHERE e->>'raw_path' LIKE '%&_skip=198&%') AS third_pages
  FROM emulator_log_entries() e;
SELECT count(*) AS rules_left FROM emulator_call('GET', '/_emulator/faults') r
 WHERE r LIKE '%query_contains%';
SELECT emulator_reset();
