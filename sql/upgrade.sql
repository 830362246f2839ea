-- upgrade: CREATE EXTENSION close_fdw VERSION '0.1' (or '0.2') followed by
-- ALTER EXTENSION close_fdw UPDATE gives exactly the objects of a fresh
-- CREATE EXTENSION, and the servers, mappings and foreign tables made before
-- keep working.  Scratch databases; psql variables carry the results across.
\set api_url `echo "$CLOSE_API_URL"`
SELECT current_database() AS regress_db \gset
SELECT default_version FROM pg_available_extensions WHERE name = 'close_fdw';
SELECT version FROM pg_available_extension_versions WHERE name = 'close_fdw' ORDER BY 1;
CREATE DATABASE close_fdw_upgraded;
CREATE DATABASE close_fdw_upgraded_02;
CREATE DATABASE close_fdw_fresh;

-- the extension's members and their definitions, one line each
\set describe 'SELECT string_agg(d, E''\n'' ORDER BY d) FROM (SELECT pg_describe_object(classid, objid, objsubid) || CASE WHEN classid = ''pg_proc''::regclass THEN E''\n'' || pg_get_functiondef(objid) || coalesce('' acl '' || (SELECT proacl::text FROM pg_proc WHERE oid = objid), '''') ELSE '''' END AS d FROM pg_depend WHERE refclassid = ''pg_extension''::regclass AND refobjid = (SELECT oid FROM pg_extension WHERE extname = ''close_fdw'') AND deptype = ''e'' AND NOT (classid = ''pg_type''::regclass AND EXISTS (SELECT FROM pg_type t LEFT JOIN pg_type el ON el.oid = t.typelem WHERE t.oid = objid AND (t.typrelid <> 0 OR el.typrelid <> 0))) UNION ALL SELECT ''wrapper '' || fdwname || '' handler '' || fdwhandler::regproc || '' validator '' || fdwvalidator::regproc || coalesce('' acl '' || fdwacl::text, '''') FROM pg_foreign_data_wrapper WHERE fdwname = ''close_fdw'') s'

\c close_fdw_upgraded
CREATE EXTENSION close_fdw VERSION '0.1';
CREATE SERVER close FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE t (id text, lead_id text, name text) SERVER close;
SELECT count(*) FROM t WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000';
-- 0.1 has no close_fdw_fields
SELECT count(*) FROM pg_proc WHERE proname = 'close_fdw_fields';
ALTER EXTENSION close_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'close_fdw';
-- what 0.1 made still works, and so does what 0.2 and 0.3 added
SELECT count(*) FROM t WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000';
SELECT count(*) > 0 AS has_fields FROM close_fdw_fields('close');
SELECT close_fdw_cache_clear('close') >= 0 AS has_cache_clear;
SELECT srvname, srvoptions = ARRAY['api_url=' || :'api_url'] AS options_kept FROM pg_foreign_server;
SELECT count(*) AS mappings FROM pg_user_mappings WHERE srvname = 'close';
:describe \gset upgraded_
\c close_fdw_upgraded_02
CREATE EXTENSION close_fdw VERSION '0.2';
CREATE SERVER close FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE t (id text, lead_id text, name text) SERVER close;
-- 0.2 has no close_fdw_cache_clear
SELECT count(*) FROM pg_proc WHERE proname = 'close_fdw_cache_clear';
ALTER EXTENSION close_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'close_fdw';
SELECT count(*) FROM t WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000';
SELECT close_fdw_cache_clear() >= 0 AS has_cache_clear;
:describe \gset upgraded_02_
\c close_fdw_fresh
CREATE EXTENSION close_fdw;
SELECT extversion FROM pg_extension WHERE extname = 'close_fdw';
:describe \gset fresh_
SELECT :'upgraded_string_agg' = :'fresh_string_agg' AS same_objects;
SELECT :'upgraded_02_string_agg' = :'fresh_string_agg' AS same_objects_from_02;
-- what they are
SELECT :'fresh_string_agg' AS members \gset
\echo :members

\c :regress_db
DROP DATABASE close_fdw_upgraded WITH (FORCE);
DROP DATABASE close_fdw_upgraded_02 WITH (FORCE);
DROP DATABASE close_fdw_fresh WITH (FORCE);
