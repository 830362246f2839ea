-- consistency: a statement that writes to a foreign table does not let its
-- own writes change what its scans read (each scan reads its whole answer
-- before the first row, and skips the objects the statement created), and a
-- lead's listing survives other writes while it pages (pages overlap by one
-- object; a shifted page makes the lead be read again).  Also the search's
-- slices under a LIMIT above the per-query cap, and empty search pages.
\set big 'lead_Big0000000000000000000000000000000000000000'
\set one 'lead_One0000000000000000000000000000000000000000'
\set a 'lead_ConsA00000000000000000000000000000000000000'
\set b 'lead_ConsB00000000000000000000000000000000000000'
\set c 'lead_ConsC00000000000000000000000000000000000000'
\set device 'cotype_Device0000000000000000'
SELECT emulator_reset();

-- a lead's object count, as the emulator has it
CREATE FUNCTION lead_count(lead text) RETURNS int LANGUAGE sql AS $$
  SELECT coalesce((string_agg(line, '')::json->>lead)::int, 0)
    FROM emulator_call('GET', '/_emulator/data/leads') line
$$;
-- make n objects of the Device type on a lead
CREATE FUNCTION make_objects(lead text, n int) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_call('POST', '/_emulator/objects',
                       format('{"lead_id": "%s", "custom_object_type_id": "cotype_Device0000000000000000", "count": %s, "name_prefix": "Cons"}',
                              lead, n));
  SELECT emulator_clear();
$$;

-- DELETE by a lead of 250 objects (pages of 100): every object goes.  The
-- three pages (and the 6 asked for past the end with them) are read before
-- the first DELETE.
SELECT emulator_clear();
DELETE FROM close_custom_objects WHERE lead_id = :'big';
SELECT count(*) FILTER (WHERE r LIKE 'GET %') AS pages,
       count(*) FILTER (WHERE r LIKE 'DELETE %') AS deletes,
       max(n) FILTER (WHERE r LIKE 'GET %') < min(n) FILTER (WHERE r LIKE 'DELETE %') AS read_first
  FROM emulator_requests() WITH ORDINALITY AS t(r, n);
SELECT count(*) FROM close_custom_objects WHERE lead_id = :'big';
SELECT lead_count(:'big') AS left_in_close;

-- the same with lead_id = ANY, and with DELETE ... USING (a nested loop
-- whose scan is run again for each lead)
SELECT make_objects(l, 150) FROM unnest(ARRAY[:'a', :'b']) l;
DELETE FROM close_custom_objects WHERE lead_id = ANY (ARRAY[:'a', :'b']);
SELECT lead_count(:'a') AS a_left, lead_count(:'b') AS b_left;
SELECT make_objects(l, 150) FROM unnest(ARRAY[:'a', :'b']) l;
SELECT bool_or(l ~ 'Nested Loop') AS nested_loop
  FROM explain_same('COSTS OFF', format($$DELETE FROM close_custom_objects c USING (VALUES (%L), (%L)) v(l) WHERE c.lead_id = v.l$$, :'a', :'b')) l;
DELETE FROM close_custom_objects c USING (VALUES (:'a'), (:'b')) v(l) WHERE c.lead_id = v.l;
SELECT lead_count(:'a') AS a_left, lead_count(:'b') AS b_left;
-- and in a data-modifying WITH
SELECT make_objects(:'c', 150);
WITH d AS (DELETE FROM close_custom_objects WHERE lead_id = :'c' RETURNING id)
SELECT count(*) AS deleted, count(DISTINCT id) AS ids FROM d;
SELECT lead_count(:'c') AS c_left;

-- an UPDATE that moves what it updates in the listing (the emulator lists
-- by date_updated here: Close does not document a listing's order): each
-- object is updated once
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/config', '{"list_by_date_updated": 1}');
SELECT emulator_clear();
UPDATE close_custom_objects SET name = 'Updated' WHERE lead_id = :'big';
SELECT count(*) AS puts, count(DISTINCT split_part(r, ' ', 2)) AS objects
  FROM emulator_requests() r WHERE r LIKE 'PUT %';
SELECT count(*) FILTER (WHERE name = 'Updated') AS updated, count(*) AS objects
  FROM close_custom_objects WHERE lead_id = :'big';
SELECT emulator_call('POST', '/_emulator/config', '{"list_by_date_updated": 0}');

-- INSERT ... SELECT from the same table, by lead: exactly the source rows
SELECT emulator_reset();
INSERT INTO close_custom_objects (lead_id, custom_object_type_id, name)
SELECT lead_id, custom_object_type_id, name || ' copy' FROM close_custom_objects
 WHERE lead_id = :'big';
SELECT lead_count(:'big') AS big_now;
-- a nested loop whose second lead receives the copies of the first: its
-- scan, run again after those inserts, does not read them
SELECT bool_or(l ~ 'Nested Loop') AS nested_loop
  FROM explain_same('COSTS OFF', format($$INSERT INTO close_custom_objects (lead_id, custom_object_type_id, name) SELECT %L, c.custom_object_type_id, c.name FROM (VALUES (%L), (%L)) v(l) JOIN close_custom_objects c ON c.lead_id = v.l$$, :'one', :'big', :'one')) l;
INSERT INTO close_custom_objects (lead_id, custom_object_type_id, name)
SELECT :'one', c.custom_object_type_id, c.name
  FROM (VALUES (:'big'), (:'one')) v(l) JOIN close_custom_objects c ON c.lead_id = v.l;
SELECT lead_count(:'one') AS one_now;

-- through a search (cut into concurrent parts, the last one open-ended):
-- exactly the source rows, also with a date_created condition
SELECT emulator_reset();
SELECT make_objects(:'a', 1000);
SELECT count(*) AS devices FROM close_custom_objects WHERE custom_object_type_id = :'device' \gset
INSERT INTO close_custom_objects (lead_id, custom_object_type_id, name)
SELECT lead_id, custom_object_type_id, name || ' copy' FROM close_custom_objects
 WHERE custom_object_type_id = :'device';
SELECT :devices AS source_rows, count(*) - :devices AS inserted
  FROM close_custom_objects WHERE custom_object_type_id = :'device';
INSERT INTO close_custom_objects (lead_id, custom_object_type_id, name)
SELECT lead_id, custom_object_type_id, name || ' again' FROM close_custom_objects
 WHERE custom_object_type_id = :'device' AND date_created > '2000-01-01';
SELECT 2 * :devices AS source_rows, count(*) - 2 * :devices AS inserted
  FROM close_custom_objects WHERE custom_object_type_id = :'device';

-- another client deletes objects already read while a SELECT pages a
-- lead (here the same session, between FETCHes of a cursor): the next page
-- does not start where the last one ended, so the lead is read again and
-- the objects already returned are skipped: none is missed or repeated
SELECT emulator_reset();
CREATE TEMP TABLE fetched (id text);
DO $$
DECLARE
  c refcursor;
  r record;
  n int := 0;
BEGIN
  OPEN c FOR SELECT id FROM close_custom_objects
              WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000';
  LOOP
    FETCH c INTO r;
    EXIT WHEN NOT FOUND;
    INSERT INTO fetched VALUES (r.id);
    n := n + 1;
    IF n = 50 THEN
      DELETE FROM close_custom_objects
       WHERE id = ANY (ARRAY(SELECT id FROM fetched ORDER BY id LIMIT 3));
    END IF;
  END LOOP;
  CLOSE c;
END $$;
SELECT count(*) AS fetched, count(DISTINCT id) AS distinct_ids FROM fetched;
SELECT lead_count(:'big') AS left_in_close;
-- pages 0, 99 (shifted) and 198 (fetched with it), then again from 0
SELECT substring(r FROM '_skip=(\d+)')::int AS skip, count(*) AS requests
  FROM emulator_requests() r WHERE r LIKE 'GET %' GROUP BY 1 ORDER BY 1;

-- a SELECT whose rows delete themselves as they are read (through a
-- function): every object is read once
CREATE FUNCTION delete_object(object_id text) RETURNS boolean LANGUAGE sql AS $$
  DELETE FROM close_custom_objects WHERE id = object_id;
  SELECT true;
$$;
SELECT emulator_reset();
SELECT count(*), count(DISTINCT id) FROM close_custom_objects
 WHERE lead_id = :'big' AND delete_object(id);
SELECT lead_count(:'big') AS left_in_close;
-- when the listing keeps shifting, the scan fails after three re-reads
-- rather than guess
SELECT make_objects(:'a', 600);
\set VERBOSITY default
SET client_min_messages = error;  -- not the WARNING listing what stays deleted
SELECT count(*) FROM close_custom_objects WHERE lead_id = :'a' AND delete_object(id);  -- ERROR
\echo SQLSTATE :SQLSTATE
RESET client_min_messages;
\set VERBOSITY terse

-- a LIMIT above the per-query cap: the next slice starts at the last
-- date_created seen, repeating the object returned at it, and asks for one
-- more to make up for it
SELECT emulator_reset();
SELECT make_objects(:'a', 600);
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 500}');
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM close_custom_objects LIMIT 499) s;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM close_custom_objects LIMIT 500) s;
SELECT emulator_clear();
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM close_custom_objects LIMIT 501) s;
SELECT (e->'body'->>'results_limit')::int AS results_limit, e->'body'->>'cursor' IS NOT NULL AS with_cursor,
       jsonb_array_length(e->'body'->'query'->'queries') AS conditions
  FROM emulator_log_entries() e;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM close_custom_objects LIMIT 600) s;
-- a cursor that expires before the next page (here at once): the same
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 10000, "cursor_ttl": 0}');
SELECT emulator_clear();
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM close_custom_objects LIMIT 450) s;
SELECT (e->'body'->>'results_limit')::int AS results_limit, e->>'status' AS status
  FROM emulator_log_entries() e;
SELECT emulator_call('POST', '/_emulator/config', '{"cursor_ttl": 30}');

-- a search page with a cursor but no objects (Close skips objects deleted
-- since the query ran) is read past; ten in a row are an error
SELECT emulator_reset();
SELECT count(*) AS all_objects FROM close_custom_objects \gset
SELECT emulator_clear();
SELECT emulator_fault('{"path_prefix": "/api/v1/data/search/", "action": "status", "status": 200, "body": "{\"data\": [], \"cursor\": \"empty\"}"}');
SELECT count(name) = :all_objects AS all_read FROM close_custom_objects;
-- the empty page, its cursor (refused by the emulator: it made none), then
-- the query again from its start
SELECT e->>'status' AS status,
       CASE WHEN e->'body'->>'cursor' IS NULL THEN 'none'
            WHEN e->'body'->>'cursor' = 'empty' THEN 'empty' ELSE 'issued' END AS cursor,
       jsonb_array_length(e->'body'->'query'->'queries') AS conditions
  FROM emulator_log_entries() e;
-- the same when another client deleted the objects of the next page
-- before it was asked for: the page comes empty, with a cursor
SELECT make_objects(:'a', 500);
CREATE TEMP TABLE searched_ids (id text);
DO $$
DECLARE
  c refcursor;
  r record;
  n int := 0;
  doomed text[] := ARRAY(SELECT id FROM close_custom_objects
                          ORDER BY date_created OFFSET 200 LIMIT 200);
BEGIN
  OPEN c FOR SELECT id FROM close_custom_objects ORDER BY date_created;
  LOOP
    FETCH c INTO r;
    EXIT WHEN NOT FOUND;
    INSERT INTO searched_ids VALUES (r.id);
    n := n + 1;
    IF n = 200 THEN
      DELETE FROM close_custom_objects WHERE id = ANY (doomed);
    END IF;
  END LOOP;
  CLOSE c;
END $$;
SELECT count(*) = :all_objects + 500 - 200 AS all_others_read, count(DISTINCT id) = count(*) AS once
  FROM searched_ids;
\set VERBOSITY default
SELECT emulator_fault('{"path_prefix": "/api/v1/data/search/", "action": "status", "status": 200, "times": 11, "body": "{\"data\": [], \"cursor\": \"empty\"}"}');
SELECT count(name) FROM close_custom_objects;  -- ERROR
\set VERBOSITY terse
SELECT emulator_reset();
