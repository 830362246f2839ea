-- paging_overlap: a lead of many pages.  After a full first page the next
-- ones go max_concurrency (8) at once; and as soon as a round's last page
-- shows that the lead goes on, the next round is sent, so a round's pages
-- are read while the next ones travel.  250 objects in pages of 10
-- (overlapping by one object: 28 pages) are 1 + 4 rounds of 8 = 33
-- requests, 5 of them past the end, as without the overlap.  (What the
-- overlap gains in time is shown by bench/, not by a timed test.)
SELECT emulator_reset();
ALTER SERVER close OPTIONS (ADD page_size '10');
SELECT count(*), count(DISTINCT id) FROM close_custom_objects
 WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000'
   AND name IS NOT NULL;
WITH e AS (SELECT substring(e->>'raw_path' from '_skip=([0-9]+)')::int AS skip
             FROM emulator_log_entries() e)
SELECT count(*) AS requests, count(*) FILTER (WHERE skip > 243) AS past_the_end
  FROM e;
ALTER SERVER close OPTIONS (DROP page_size);
