-- fuzz: hostile answers through the JSON-to-row conversion of every column
-- type, and hostile condition values through URL and search-body building.
-- The emulator's "random" fault makes a different answer for each request
-- (seeded: the same run every time).  Every answer must give rows or an
-- error; the backend must survive, memory must stay flat, and no request
-- may be malformed.
SELECT emulator_reset();
CREATE FOREIGN TABLE fuzzed (
  id text, lead_id text, name varchar(20),
  t text OPTIONS (field 't'), n numeric OPTIONS (field 'n'), i4 int4 OPTIONS (field 'i4'), i8 int8 OPTIONS (field 'i8'), f8 float8 OPTIONS (field 'f8'),
  b bool OPTIONS (field 'b'), d date OPTIONS (field 'd'), ts timestamp OPTIONS (field 'ts'), tstz timestamptz OPTIONS (field 'tstz'),
  j json OPTIONS (field 'j'), jb jsonb OPTIONS (field 'jb'), ta text[] OPTIONS (field 'ta'), na numeric[] OPTIONS (field 'na'),
  custom jsonb, x text OPTIONS (field 'custom.cf_x'), y int[] OPTIONS (field 'custom.cf_y')
) SERVER close;
CREATE TABLE fuzz_outcomes (outcome text);
CREATE PROCEDURE fuzz_answers(n int) LANGUAGE plpgsql AS $$
DECLARE
  rows bigint;
BEGIN
  FOR i IN 1..n LOOP
    BEGIN
      SELECT count(*) INTO rows
        FROM (SELECT fuzzed::text FROM fuzzed WHERE lead_id = 'lead_Fuzz' OFFSET 0) s;
      INSERT INTO fuzz_outcomes VALUES ('rows');
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO fuzz_outcomes VALUES (left(SQLSTATE, 2));
    END;
  END LOOP;
END $$;
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object/", "action": "random", "seed": 2026, "times": -1}');
CALL fuzz_answers(100);
SELECT backend_memory(in_use => false) AS before \gset
CALL fuzz_answers(2900);
SELECT backend_memory(in_use => false) - :before < 65536 AS memory_flat;
SELECT count(*) AS answers,
       count(*) FILTER (WHERE outcome = 'rows') > 50 AS some_converted,
       count(*) FILTER (WHERE outcome <> 'rows') > 1000 AS many_refused
  FROM fuzz_outcomes;
-- the classes of error: data exceptions (22), FDW errors (HV), nothing else
SELECT DISTINCT outcome FROM fuzz_outcomes WHERE outcome <> 'rows' ORDER BY 1;
SELECT emulator_call('DELETE', '/_emulator/faults');
SELECT emulator_clear();

-- hostile values in conditions: ids and lead ids no Close id can have never
-- reach a URL; search values always make a valid body
CREATE FUNCTION hostile_text(seed int) RETURNS text LANGUAGE sql AS $$
  SELECT CASE seed % 5
    WHEN 0 THEN repeat('a/../?#%20 ', 1000)
    WHEN 1 THEN 'custobj_' || string_agg(chr(32 + (seed * k * 7919) % 95), '')
    WHEN 2 THEN 'lead_' || string_agg(chr(1 + (seed * k * 104729) % 55000), '')
    WHEN 3 THEN string_agg(chr(34 + (seed + k) % 60), '') || E'\\"\n\t'
    ELSE 'cotype_../' || seed
  END
  FROM generate_series(1, 1 + seed % 40) k
$$;
CREATE TABLE fuzz_values AS SELECT i, hostile_text(i) AS v FROM generate_series(1, 400) i;
SELECT count(*) AS values_tried,
       sum((SELECT count(*) FROM (SELECT FROM close_custom_objects WHERE id = v OFFSET 0) s)) AS rows_by_id,
       sum((SELECT count(*) FROM (SELECT FROM close_custom_objects WHERE lead_id = v OFFSET 0) s)) AS rows_by_lead
  FROM fuzz_values;
SELECT count(*) AS requests_made FROM emulator_requests();
SELECT count(*) AS values_tried,
       sum((SELECT count(*) FROM (SELECT FROM close_custom_objects WHERE name = v OFFSET 0) s)) AS rows_by_name,
       sum((SELECT count(*) FROM (SELECT FROM close_custom_objects WHERE custom_object_type_id = v AND name <> v OFFSET 0) s)) AS rows_by_type
  FROM fuzz_values WHERE i % 4 = 0;
SELECT count(*) AS searches,
       count(*) FILTER (WHERE e->>'status' <> '200') AS refused,
       count(*) FILTER (WHERE jsonb_typeof(e->'body') <> 'object') AS not_json
  FROM emulator_log_entries() e;
DROP TABLE fuzz_values, fuzz_outcomes;
