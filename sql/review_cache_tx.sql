-- review_cache_tx: hostile review of the answer cache (cache_ttl_ms) and of
-- deferred writes' gaps.
\set api_url `echo "$CLOSE_API_URL"`
\set plain2 'lead_Plain20000000000000000000000000000000000000'
\set device 'cotype_Device0000000000000000'
SELECT emulator_reset();

-- 1. A write through another server that points at the same Close (same
-- API URL; the same key or another key of the organisation) changes what
-- the cached answers say: it must drop them as a write through the caching
-- server does, or the cached listing misses the new object for a whole TTL.
CREATE SERVER rct_a FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '2', max_concurrency '1',
           cache_ttl_ms '60000');
CREATE SERVER rct_b FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER rct_a OPTIONS (api_key 'api_test_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER rct_b OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE rct_a_objs (id text, lead_id text, name text,
                                 custom_object_type_id text) SERVER rct_a;
CREATE FOREIGN TABLE rct_b_objs (id text, lead_id text, name text,
                                 custom_object_type_id text) SERVER rct_b;
SELECT count(name) FROM rct_a_objs WHERE lead_id = :'plain2';
SELECT emulator_clear();
SELECT count(name) FROM rct_a_objs WHERE lead_id = :'plain2';
SELECT count(*) AS cached_no_requests FROM emulator_requests();
INSERT INTO rct_b_objs (lead_id, custom_object_type_id, name)
  VALUES (:'plain2', :'device', 'Plain 2.9 via b');
SELECT emulator_clear();
-- the new object is seen, from Close
SELECT name FROM rct_a_objs WHERE lead_id = :'plain2' AND name = 'Plain 2.9 via b';
SELECT count(*) > 0 AS asked_close FROM emulator_requests();
DELETE FROM rct_b_objs WHERE lead_id = :'plain2' AND name = 'Plain 2.9 via b';
SELECT emulator_clear();
SELECT count(name) AS after_delete FROM rct_a_objs
 WHERE lead_id = :'plain2' AND name = 'Plain 2.9 via b';
SELECT count(*) > 0 AS asked_close FROM emulator_requests();

-- 2. A cached lead listing is keyed by everything that shapes the answer:
-- the resource (a lead's contacts are not its custom objects), the
-- listing's filters (opportunities' status_type) and the _fields asked
-- (a table reading fewer columns must not hand its records to one reading
-- more, whose extra columns would be NULL).
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
CREATE FOREIGN TABLE rct_objs_any (id text, lead_id text, name text) SERVER rct_a;
CREATE FOREIGN TABLE rct_contacts (id text, lead_id text, name text)
  SERVER rct_a OPTIONS (resource 'contact');
CREATE FOREIGN TABLE rct_opps (id text, lead_id text, status_type text, value bigint)
  SERVER rct_a OPTIONS (resource 'opportunity');
CREATE FOREIGN TABLE rct_opps_narrow (id text, lead_id text)
  SERVER rct_a OPTIONS (resource 'opportunity');
SELECT close_fdw_cache_clear() >= 0 AS cleared;
SELECT string_agg(name, ', ' ORDER BY name) AS contacts FROM rct_contacts WHERE lead_id = :'mixed';
SELECT string_agg(name, ', ' ORDER BY name) AS objects FROM rct_objs_any WHERE lead_id = :'mixed';
SELECT string_agg(name, ', ' ORDER BY name) AS contacts FROM rct_contacts WHERE lead_id = :'mixed';
SELECT * FROM emulator_requests();
SELECT string_agg(status_type, ', ' ORDER BY id) FROM rct_opps WHERE lead_id = :'mixed';
SELECT string_agg(status_type, ', ' ORDER BY id) AS won FROM rct_opps WHERE lead_id = :'mixed' AND status_type = 'won';
SELECT string_agg(status_type, ', ' ORDER BY id) AS lost FROM rct_opps WHERE lead_id = :'mixed' AND status_type = 'lost';
SELECT * FROM emulator_requests();
SELECT close_fdw_cache_clear() >= 0 AS cleared;
SELECT string_agg(id, ', ' ORDER BY id) FROM rct_opps_narrow WHERE lead_id = :'mixed';
SELECT string_agg(id || ' ' || coalesce(status_type, 'NULL') || ' ' || coalesce(value::text, 'NULL'), ', ' ORDER BY id)
  FROM rct_opps WHERE lead_id = :'mixed';
SELECT * FROM emulator_requests();
-- and it is still answered from the cache the second time
SELECT string_agg(id || ' ' || coalesce(status_type, 'NULL') || ' ' || coalesce(value::text, 'NULL'), ', ' ORDER BY id)
  FROM rct_opps WHERE lead_id = :'mixed';
SELECT * FROM emulator_requests();

-- 3. A write by another backend drops this backend's cached answers where
-- the state is shared: preloaded (one cache for all) and, on 17 and later
-- without preload, through the DSM segment (each backend's own cache
-- learns of every write).  Only 13 to 16 without preload cannot (README).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT current_setting('close_fdw.shared_state') IN ('preloaded', 'dsm') AS shared;
SELECT dblink_connect('rct_other', format('dbname=%s host=%s port=%s user=%s',
  current_database(), split_part(current_setting('unix_socket_directories'), ',', 1),
  current_setting('port'), current_user));
CREATE FUNCTION rct_in_other(query text) RETURNS SETOF text LANGUAGE sql AS $$
  SELECT line FROM dblink('rct_other', query) AS t(line text)
$$;
-- the other backend reads twice: the second from its cache (or the shared one)
SELECT * FROM rct_in_other(format($$SELECT string_agg(name, ', ' ORDER BY name) FROM rct_a_objs WHERE lead_id = %L$$, :'plain2'));
SELECT emulator_clear();
SELECT * FROM rct_in_other(format($$SELECT string_agg(name, ', ' ORDER BY name) FROM rct_a_objs WHERE lead_id = %L$$, :'plain2'));
SELECT count(*) AS cached_no_requests FROM emulator_requests();
-- this backend writes (through the other server): the other one sees it
INSERT INTO rct_b_objs (lead_id, custom_object_type_id, name)
  VALUES (:'plain2', :'device', 'Plain 2.8 from here');
SELECT emulator_clear();
SELECT * FROM rct_in_other(format($$SELECT string_agg(name, ', ' ORDER BY name) FROM rct_a_objs WHERE lead_id = %L$$, :'plain2'));
SELECT count(*) > 0 AS other_asked_close FROM emulator_requests();
DELETE FROM rct_b_objs WHERE lead_id = :'plain2' AND name = 'Plain 2.8 from here';
SELECT * FROM rct_in_other(format($$SELECT string_agg(name, ', ' ORDER BY name) FROM rct_a_objs WHERE lead_id = %L$$, :'plain2'));
SELECT dblink_disconnect('rct_other');
DROP FUNCTION rct_in_other(text);

-- 4. The TTL counts from when the answer was read, not from when its last
-- page came: a listing read slowly (a cursor fetched over time) is kept
-- only for what is left of the TTL after its first page.  Here its first
-- page is 1.2 s old, its last 0.4 s: with a TTL of 1 s, Close is asked.
SELECT close_fdw_cache_clear() >= 0 AS cleared;
ALTER FOREIGN TABLE rct_a_objs OPTIONS (ADD cache_ttl_ms '1000');
SELECT emulator_clear();
BEGIN;
DECLARE rct_cur CURSOR FOR
  SELECT name FROM rct_a_objs WHERE lead_id = :'plain2';
FETCH 1 FROM rct_cur;
SELECT pg_sleep(0.8);
FETCH ALL FROM rct_cur;
COMMIT;
SELECT count(*) AS pages FROM emulator_requests();
SELECT pg_sleep(0.4);
SELECT string_agg(name, ', ' ORDER BY name) FROM rct_a_objs WHERE lead_id = :'plain2';
SELECT count(*) > 0 AS asked_close FROM emulator_requests();
ALTER FOREIGN TABLE rct_a_objs OPTIONS (DROP cache_ttl_ms);

-- 5. An UPDATE or DELETE after INSERTs queued (write_mode 'deferred') into
-- a table of another server pointing at the same Close could not see their
-- rows either: refused as for a table of the same server (was: the UPDATE
-- ran and left out the queued row, which COMMIT then created unchanged).
CREATE FOREIGN TABLE rct_b_deferred (id text, lead_id text, name text,
                                     custom_object_type_id text)
  SERVER rct_b OPTIONS (write_mode 'deferred');
SELECT emulator_clear();
BEGIN;
INSERT INTO rct_b_deferred (lead_id, custom_object_type_id, name)
  VALUES (:'plain2', :'device', 'Plain 2.7 queued');
UPDATE rct_a_objs SET name = name || ' (seen)' WHERE lead_id = :'plain2' AND name LIKE 'Plain 2.7%';  -- ERROR
ROLLBACK;
SELECT * FROM emulator_requests();
-- a server pointing at another Close is another set of rows
CREATE SERVER rct_c FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url 'http://127.0.0.1:1/api/v1/');
CREATE USER MAPPING FOR CURRENT_USER SERVER rct_c OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE rct_c_deferred (id text, lead_id text, name text,
                                     custom_object_type_id text)
  SERVER rct_c OPTIONS (write_mode 'deferred');
BEGIN;
INSERT INTO rct_c_deferred (lead_id, custom_object_type_id, name)
  VALUES (:'plain2', :'device', 'elsewhere');
UPDATE rct_a_objs SET name = name WHERE lead_id = :'plain2' AND name = 'no such name';
ROLLBACK;
SELECT count(*) AS reads_only FROM emulator_requests();

-- 6. An immediate write to a CRM record with writes queued is refused
-- naming the record as what it is (was: "custom object cont_...").
CREATE FOREIGN TABLE rct_contacts_def (id text, lead_id text, name text)
  SERVER rct_b OPTIONS (resource 'contact', write_mode 'deferred');
CREATE FOREIGN TABLE rct_contacts_now (id text, lead_id text, name text)
  SERVER rct_b OPTIONS (resource 'contact');
SELECT id AS contact FROM rct_contacts_now WHERE lead_id = :'mixed' ORDER BY id LIMIT 1 \gset
SELECT emulator_clear();
BEGIN;
UPDATE rct_contacts_def SET name = 'Renamed' WHERE id = :'contact';
UPDATE rct_contacts_now SET name = 'Now' WHERE id = :'contact';  -- ERROR
ROLLBACK;
SELECT * FROM emulator_requests();

-- 7. The same in another database: a write here drops the answers a
-- server of another database (same Close) cached, in the shared cache or
-- (17+ without preload) in its backend's own.
CREATE DATABASE rct_db2;
SELECT dblink_connect('rct_db2', format('dbname=rct_db2 host=%s port=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1),
  current_setting('port'), current_user));
SELECT dblink_exec('rct_db2', 'CREATE EXTENSION close_fdw');
SELECT dblink_exec('rct_db2', format($$CREATE SERVER db2_srv FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url %L, page_size '2', max_concurrency '1', cache_ttl_ms '60000')$$, :'api_url'));
SELECT dblink_exec('rct_db2', $$CREATE USER MAPPING FOR CURRENT_USER SERVER db2_srv OPTIONS (api_key 'api_test_key')$$);
SELECT dblink_exec('rct_db2', $$CREATE FOREIGN TABLE db2_objs (id text, lead_id text, name text) SERVER db2_srv$$);
SELECT * FROM dblink('rct_db2', format($$SELECT string_agg(name, ', ' ORDER BY name) FROM db2_objs WHERE lead_id = %L$$, :'plain2')) AS t(names text);
SELECT emulator_clear();
SELECT * FROM dblink('rct_db2', format($$SELECT string_agg(name, ', ' ORDER BY name) FROM db2_objs WHERE lead_id = %L$$, :'plain2')) AS t(names text);
SELECT count(*) AS cached_no_requests FROM emulator_requests();
INSERT INTO rct_b_objs (lead_id, custom_object_type_id, name)
  VALUES (:'plain2', :'device', 'Plain 2.6 other db');
SELECT * FROM dblink('rct_db2', format($$SELECT string_agg(name, ', ' ORDER BY name) FROM db2_objs WHERE lead_id = %L$$, :'plain2')) AS t(names text);
DELETE FROM rct_b_objs WHERE lead_id = :'plain2' AND name = 'Plain 2.6 other db';
SELECT dblink_disconnect('rct_db2');
DROP DATABASE rct_db2 WITH (FORCE);

SET client_min_messages = warning;
DROP SERVER rct_a CASCADE;
DROP SERVER rct_b CASCADE;
DROP SERVER rct_c CASCADE;
RESET client_min_messages;
SELECT close_fdw_cache_clear() >= 0 AS cleared;
SELECT emulator_reset();
