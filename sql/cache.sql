-- cache: cache_ttl_ms keeps whole answers (a lead's whole listing, a whole
-- search, an object by id) for that long; with close_fdw preloaded (the
-- suite's cluster) in shared memory, so that every backend is answered from
-- it, else in each backend alone (CLOSE_FDW_PRELOAD=0: then the second
-- backend below asks Close itself, and on 13 to 16 does not see the first
-- backend's write until its own entry expires).  The test cluster sets
-- close_fdw.cache_size_mb to 1.
\set api_url `echo "$CLOSE_API_URL"`
\set plain2 'lead_Plain20000000000000000000000000000000000000'
\set device 'cotype_Device0000000000000000'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT emulator_reset();
SELECT close_fdw_stats_reset();
SHOW close_fdw.cache_size_mb;

CREATE SERVER cache_srv FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '2', max_concurrency '1',
           cache_ttl_ms '60000');
CREATE USER MAPPING FOR CURRENT_USER SERVER cache_srv OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE cached (id text, lead_id text, name text,
                             custom_object_type_id text) SERVER cache_srv;
-- the option, on a server or a table; a count of milliseconds
CREATE FOREIGN TABLE cache_bad (id text) SERVER cache_srv OPTIONS (cache_ttl_ms '-1');  -- ERROR
CREATE FOREIGN TABLE cache_bad (id text) SERVER cache_srv OPTIONS (cache_ttl_ms 'soon');  -- ERROR
CREATE USER MAPPING FOR PUBLIC SERVER cache_srv OPTIONS (api_key 'x', cache_ttl_ms '1');  -- ERROR

-- a second backend, kept open
SELECT dblink_connect('other', format('dbname=%s host=%s port=%s user=%s',
  current_database(), split_part(current_setting('unix_socket_directories'), ',', 1),
  current_setting('port'), current_user));
CREATE FUNCTION in_other(query text) RETURNS SETOF text LANGUAGE sql AS $$
  SELECT line FROM dblink('other', query) AS t(line text)
$$;

-- a lead of three objects, two pages: read, then answered from the cache,
-- here and in the other backend
SELECT name FROM cached WHERE lead_id = :'plain2' ORDER BY name;
SELECT * FROM emulator_requests();
SELECT name FROM cached WHERE lead_id = :'plain2' ORDER BY name;
SELECT * FROM emulator_requests();
SELECT * FROM in_other(format($$SELECT string_agg(name, ', ' ORDER BY name) FROM cached WHERE lead_id = %L$$, :'plain2'));
SELECT * FROM emulator_requests();
-- a table with a type and a custom field: the field types it checks at
-- scan start come from the cache too (the other backend asks nothing)
CREATE FOREIGN TABLE cached_typed (id text, lead_id text, name text,
  model text OPTIONS (field 'custom.cf_DeviceModel00000000000000000000000000000000'))
  SERVER cache_srv OPTIONS (custom_object_type_id :'device');
SELECT name, model FROM cached_typed WHERE lead_id = :'plain2' ORDER BY name;
SELECT * FROM emulator_requests();
SELECT * FROM in_other(format($$SELECT string_agg(name || '/' || coalesce(model, '-'), ', ' ORDER BY name) FROM cached_typed WHERE lead_id = %L$$, :'plain2'));
SELECT * FROM emulator_requests();
-- several leads at once: those the cache has are not fetched ahead
ALTER SERVER cache_srv OPTIONS (SET max_concurrency '8');
SELECT count(name) FROM cached
 WHERE lead_id IN (:'plain2', 'lead_One0000000000000000000000000000000000000000');
SELECT * FROM emulator_requests();
ALTER SERVER cache_srv OPTIONS (SET max_concurrency '1');
-- EXPLAIN ANALYZE counts the hit
SELECT * FROM explain_same('ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF',
  format('SELECT name FROM cached WHERE lead_id = %L', :'plain2'));

-- an INSERT through close_fdw drops the server's answers at once: the next
-- listing, in either backend, asks Close and shows the new object
INSERT INTO cached (lead_id, custom_object_type_id, name) VALUES (:'plain2', :'device', 'Plain 2.4 new');
SELECT * FROM emulator_requests();
SELECT * FROM in_other(format($$SELECT string_agg(name, ', ' ORDER BY name) FROM cached WHERE lead_id = %L$$, :'plain2'));
SELECT count(*) > 0 AS other_asked_close FROM emulator_requests();
SELECT name FROM cached WHERE lead_id = :'plain2' ORDER BY name;
SELECT count(*) > 0 AS asked_close FROM emulator_requests();

-- so do writes sent at COMMIT (write_mode 'deferred'), batches and DELETEs
CREATE FOREIGN TABLE cached_deferred (id text, lead_id text, name text,
                                      custom_object_type_id text)
  SERVER cache_srv OPTIONS (write_mode 'deferred');
SELECT count(name) FROM cached WHERE lead_id = :'plain2';
BEGIN;
INSERT INTO cached_deferred (lead_id, custom_object_type_id, name) VALUES (:'plain2', :'device', 'Plain 2.5 deferred');
COMMIT;
SELECT emulator_clear();
SELECT count(name) FROM cached WHERE lead_id = :'plain2';
SELECT count(*) > 0 AS asked_close FROM emulator_requests();
ALTER FOREIGN TABLE cached OPTIONS (ADD batch_size '10');
ALTER SERVER cache_srv OPTIONS (SET max_concurrency '8');
INSERT INTO cached (lead_id, custom_object_type_id, name)
  SELECT :'plain2', :'device', 'Plain 2.' || i || ' batch' FROM generate_series(6, 7) i;
ALTER SERVER cache_srv OPTIONS (SET max_concurrency '1');
ALTER FOREIGN TABLE cached OPTIONS (DROP batch_size);
SELECT emulator_clear();
SELECT count(name) FROM cached WHERE lead_id = :'plain2';
SELECT count(*) > 0 AS asked_close FROM emulator_requests();
DELETE FROM cached WHERE lead_id = :'plain2' AND name IN ('Plain 2.5 deferred', 'Plain 2.6 batch', 'Plain 2.7 batch');
SELECT emulator_clear();
SELECT count(name) FROM cached WHERE lead_id = :'plain2';
SELECT count(*) > 0 AS asked_close FROM emulator_requests();
DROP FOREIGN TABLE cached_deferred;

-- a statement that writes reads its scan from Close, never the cache (and
-- writing nothing, leaves the cache as it was)
UPDATE cached SET name = name || '!' WHERE lead_id = :'plain2' AND name = 'no such name';
SELECT * FROM emulator_requests();
SELECT count(name) FROM cached WHERE lead_id = :'plain2';
SELECT * FROM emulator_requests();

-- the table's cache_ttl_ms wins over the server's: after 300 ms, Close again
SELECT close_fdw_cache_clear('cache_srv') >= 0 AS cleared;
ALTER FOREIGN TABLE cached OPTIONS (ADD cache_ttl_ms '300');
SELECT count(name) FROM cached WHERE lead_id = :'plain2';
SELECT emulator_clear();
SELECT pg_sleep(0.4);
SELECT count(name) FROM cached WHERE lead_id = :'plain2';
SELECT * FROM emulator_requests();
ALTER FOREIGN TABLE cached OPTIONS (DROP cache_ttl_ms);

-- an object by id is a whole answer
SELECT name FROM cached WHERE id = 'custobj_MixedAlpha000000000000000000000000000000000';
SELECT * FROM emulator_requests();
SELECT * FROM in_other($$SELECT name FROM cached WHERE id = 'custobj_MixedAlpha000000000000000000000000000000000'$$);
SELECT * FROM emulator_requests();

-- a search is kept whole, and answered whole
SELECT name FROM cached WHERE name = 'Plain 2.1';
SELECT count(*) AS search_requests FROM emulator_requests();
SELECT * FROM in_other($$SELECT name FROM cached WHERE name = 'Plain 2.1'$$);
SELECT * FROM emulator_requests();

-- a listing cut short by a LIMIT is not a whole answer: not kept
SELECT sum((j->>'created')::int) AS created
  FROM (SELECT line::jsonb AS j FROM emulator_call('POST', '/_emulator/objects',
         json_build_object('lead_id', 'lead_CachePartial0000000000000000000000000000000',
                           'custom_object_type_id', :'device', 'count', 6,
                           'name_prefix', 'Part')::text) AS line) r;
SELECT name FROM cached WHERE lead_id = 'lead_CachePartial0000000000000000000000000000000' LIMIT 1;
SELECT count(*) = 1 AS one_page FROM emulator_requests();
SELECT count(name) FROM cached WHERE lead_id = 'lead_CachePartial0000000000000000000000000000000';
SELECT count(*) >= 5 AS every_page_from_close FROM emulator_requests();
SELECT count(name) FROM cached WHERE lead_id = 'lead_CachePartial0000000000000000000000000000000';
SELECT * FROM emulator_requests();

-- close_fdw_cache_clear empties it: the next listing asks Close
SELECT close_fdw_cache_clear('cache_srv') > 0 AS dropped;
SELECT count(name) FROM cached WHERE lead_id = :'plain2';
SELECT count(*) > 0 AS asked_close FROM emulator_requests();
SELECT close_fdw_cache_clear() > 0 AS dropped_all;
SELECT close_fdw_cache_clear() AS nothing_left;
SELECT close_fdw_cache_clear('no_such_server');  -- ERROR
-- not for everyone: it costs requests to every user of the server
CREATE ROLE regress_cache_user;
SET ROLE regress_cache_user;
SELECT close_fdw_cache_clear();  -- ERROR
RESET ROLE;
DROP ROLE regress_cache_user;

-- close_fdw_stats counts the hits (across backends when preloaded)
SELECT endpoint_group, sum(cache_hits) AS cache_hits
  FROM close_fdw_stats WHERE server = 'cache_srv' AND cache_hits > 0
 GROUP BY 1 ORDER BY 1;

-- the cache's memory stays within close_fdw.cache_size_mb: three leads of
-- about 400 kB each do not all fit, the least recently used goes
SELECT sum((j->>'created')::int) AS created
  FROM generate_series(1, 3) i,
       LATERAL (SELECT line::jsonb AS j FROM emulator_call('POST', '/_emulator/objects',
         json_build_object('lead_id', 'lead_CacheFill' || lpad(i::text, 34, '0'),
                           'custom_object_type_id', :'device', 'count', 1000,
                           'name_prefix', 'Fill')::text) AS line) r;
SELECT length(string_agg(line, E'\n')) BETWEEN 400000 AND 520000 AS about_400kb
  FROM emulator_call('GET', '/_emulator/data/objects?lead_id=lead_CacheFill' || lpad('1', 34, '0')) line;
ALTER SERVER cache_srv OPTIONS (SET page_size '100');
SELECT i, (SELECT count(name) FROM cached WHERE lead_id = 'lead_CacheFill' || lpad(i::text, 34, '0'))
  FROM generate_series(1, 3) i;
SELECT emulator_clear();
-- the newest is still there, the oldest is gone
SELECT count(name) FROM cached WHERE lead_id = 'lead_CacheFill' || lpad('3', 34, '0');
SELECT count(*) AS newest_requests FROM emulator_requests();
SELECT count(name) FROM cached WHERE lead_id = 'lead_CacheFill' || lpad('1', 34, '0');
SELECT count(*) > 0 AS oldest_asked_again FROM emulator_requests();
-- an answer larger than the whole cache is not kept
SELECT sum((j->>'created')::int) AS created
  FROM (SELECT line::jsonb AS j FROM emulator_call('POST', '/_emulator/objects',
         json_build_object('lead_id', 'lead_CacheFill' || lpad('4', 34, '0'),
                           'custom_object_type_id', :'device', 'count', 2500,
                           'name_prefix', 'Fill')::text) AS line) r;
SELECT count(name) FROM cached WHERE lead_id = 'lead_CacheFill' || lpad('4', 34, '0');
SELECT count(name) FROM cached WHERE lead_id = 'lead_CacheFill' || lpad('3', 34, '0');
SELECT emulator_clear();
SELECT count(name) FROM cached WHERE lead_id = 'lead_CacheFill' || lpad('4', 34, '0');
SELECT count(*) >= 25 AS large_asked_again FROM emulator_requests();
-- (and it did not push the others out)
SELECT count(name) FROM cached WHERE lead_id = 'lead_CacheFill' || lpad('3', 34, '0');
SELECT count(*) AS requests FROM emulator_requests();
-- and its shared memory is that size (no row without preload)
SELECT coalesce(max(size), 0) <= 1.05 * 1024 * 1024 AS within_bound
  FROM pg_shmem_allocations WHERE name = 'close_fdw cache';

SELECT dblink_disconnect('other');
DROP FUNCTION in_other(text);
DROP SERVER cache_srv CASCADE;
SELECT close_fdw_cache_clear() >= 0 AS cleared;
SELECT emulator_reset();
