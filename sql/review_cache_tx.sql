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
