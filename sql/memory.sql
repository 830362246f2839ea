-- memory: a scan holds one page and the pages fetched ahead of it (at
-- most max_concurrency, 8 here, and a lead's next round of 8 in flight),
-- however many rows it returns.  Memory in
-- use is sampled every 1,000th row of 20,000 objects on two leads; it must
-- not grow with the rows read: what it holds varies by less than the 8 MB
-- the rows would take, and the second lead's pages take no more than the
-- first's, give or take how much of a round in flight has arrived when a
-- sample is taken (a round of 8 pages is about 300 kB; a leak of 100 bytes
-- a row would be 1 MB over the second lead).
\set lead_a 'lead_MemoryA000000000000000000000000000000000000'
\set lead_b 'lead_MemoryB000000000000000000000000000000000000'
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/objects', format(
  '{"lead_id": "%s", "custom_object_type_id": "cotype_1h5m6uHM9BZOpwVhyRJb4Y", "count": 10000, "name_prefix": "Bulk"}',
  lead)) FROM unnest(ARRAY[:'lead_a', :'lead_b']) AS lead;

SELECT count(*) AS rows, count(mem) AS samples,
       max(mem) - min(mem) < 1024 * 1024 AS memory_bounded,
       max(mem) FILTER (WHERE lead_id = :'lead_b') <
         max(mem) FILTER (WHERE lead_id = :'lead_a') + 512 * 1024 AS not_growing
  FROM (SELECT lead_id, CASE WHEN name LIKE '%000' THEN backend_memory(in_use => true) END AS mem
          FROM close_custom_objects WHERE lead_id IN (:'lead_a', :'lead_b')) s;
-- 101 pages each (pages overlap by one object), and 4 asked past the end
-- (8 at a time after the first)
SELECT count(*) AS pages FROM emulator_requests();

-- a search through 50,000 objects of one type (cut into 8 parts by
-- date_created after its first page, each holding a page): what it holds
-- varies by less than the 10 MB the rows would take
SELECT emulator_reset();
SELECT sum((l::json->>'created')::int)
  FROM generate_series(1, 5) i,
       LATERAL emulator_call('POST', '/_emulator/objects', format(
         '{"lead_id": "lead_%s", "custom_object_type_id": "cotype_Device0000000000000000", "count": 10000, "name_prefix": "Bulk"}',
         rpad('Many' || i, 43, '0'))) l;
SELECT count(*) AS rows, count(mem) AS samples,
       max(mem) - min(mem) < 1024 * 1024 AS memory_bounded
  FROM (SELECT CASE WHEN name LIKE '%000' THEN backend_memory(in_use => true) END AS mem
          FROM close_custom_objects WHERE custom_object_type_id = 'cotype_Device0000000000000000') s;
-- 250 pages, the newest-object probe, and a few more first pages (how many
-- depends on which parts end first)
SELECT count(*) BETWEEN 251 AND 290 AS requests_near_pages
  FROM emulator_requests() r;
SELECT emulator_reset();
