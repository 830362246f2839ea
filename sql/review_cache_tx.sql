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
