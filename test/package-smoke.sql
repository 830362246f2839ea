-- test/package's checks inside a clean root with the .deb installed: each
-- line is "ok - ..." or "not ok - ...".
\set ON_ERROR_STOP 0
CREATE EXTENSION close_fdw;
SELECT CASE WHEN extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'close_fdw')
            THEN 'ok' ELSE 'not ok' END || ' - CREATE EXTENSION close_fdw at the default version ' || extversion
  FROM pg_extension WHERE extname = 'close_fdw';
CREATE SERVER close FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE t (id text, lead_id text, name text) SERVER close;
SELECT CASE WHEN count(*) = 3 THEN 'ok' ELSE 'not ok' END || ' - a lead read through the emulator: ' || count(*) || ' objects'
  FROM t WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000';
SELECT CASE WHEN count(*) > 0 THEN 'ok' ELSE 'not ok' END || ' - close_fdw_fields lists ' || count(*) || ' rows'
  FROM close_fdw_fields('close');
CREATE DATABASE smoke_old;
\c smoke_old
CREATE EXTENSION close_fdw VERSION '0.1';
ALTER EXTENSION close_fdw UPDATE;
SELECT CASE WHEN extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'close_fdw')
            THEN 'ok' ELSE 'not ok' END || ' - ALTER EXTENSION close_fdw UPDATE from 0.1 to ' || extversion
  FROM pg_extension WHERE extname = 'close_fdw';
