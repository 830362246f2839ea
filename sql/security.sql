-- security: what a role that is not a superuser may make the backend do.
\set api_url `echo "$CLOSE_API_URL"`
\set VERBOSITY terse
SELECT emulator_reset();
CREATE ROLE regress_sec_user;
GRANT USAGE ON FOREIGN DATA WRAPPER close_fdw TO regress_sec_user;

-- api_url: only a superuser may point a server anywhere but Close's API,
-- plain http on a loopback host included (any local service, with the
-- answer shown in errors)
SET ROLE regress_sec_user;
CREATE SERVER sec_local FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url 'http://127.0.0.1:5432/api/v1');  -- ERROR
CREATE SERVER sec_local FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url');  -- ERROR
CREATE SERVER sec_other FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url 'https://internal.example.com/api/v1');  -- ERROR
CREATE SERVER sec_other FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url 'https://api.close.com.example.com/api/v1');  -- ERROR
-- the default, said or not, is anyone's
CREATE SERVER sec_default FOREIGN DATA WRAPPER close_fdw;
CREATE SERVER sec_default2 FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url 'https://api.close.com/api/v1/');
ALTER SERVER sec_default OPTIONS (ADD api_url 'http://localhost:9/api/v1');  -- ERROR
ALTER SERVER sec_default2 OPTIONS (SET api_url 'https://127.0.0.1:9/api/v1');  -- ERROR
ALTER SERVER sec_default OPTIONS (ADD timeout_ms '5000');
ALTER SERVER sec_default OPTIONS (ADD ca_file '/etc/passwd');  -- ERROR
RESET ROLE;
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname LIKE 'sec_%' ORDER BY 1;

-- a server a superuser pointed elsewhere serves whoever it is granted to
CREATE SERVER sec_su FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
GRANT USAGE ON FOREIGN SERVER sec_su TO regress_sec_user;
CREATE USER MAPPING FOR regress_sec_user SERVER sec_su OPTIONS (api_key 'api_alice_key');
CREATE FOREIGN TABLE sec_objects (id text, lead_id text, name text) SERVER sec_su;
GRANT SELECT ON sec_objects TO regress_sec_user;
SET ROLE regress_sec_user;
SELECT name FROM sec_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
RESET ROLE;
-- given the server, its owner may take the URL back to the default, but
-- not change its other options while the superuser's URL stays
ALTER SERVER sec_su OWNER TO regress_sec_user;
SET ROLE regress_sec_user;
ALTER SERVER sec_su OPTIONS (ADD timeout_ms '5000');  -- ERROR
ALTER SERVER sec_su OPTIONS (DROP api_url);
RESET ROLE;
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'sec_su';
DROP FOREIGN TABLE sec_objects;
DROP SERVER sec_su, sec_default, sec_default2 CASCADE;

-- IMPORT's comments go with the IMPORT: a failed IMPORT rolled back to a
-- savepoint leaves none, whoever owns the tables of those names
CREATE SCHEMA sec_import;
GRANT USAGE, CREATE ON SCHEMA sec_import TO regress_sec_user;
GRANT USAGE ON FOREIGN SERVER close TO regress_sec_user;
CREATE USER MAPPING FOR regress_sec_user SERVER close OPTIONS (api_key 'api_alice_key');
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (subscription) FROM SERVER close INTO sec_import;
COMMENT ON FOREIGN TABLE sec_import.subscription IS 'the owner''s own words';
COMMENT ON COLUMN sec_import.subscription.plan IS 'the owner''s own column words';
SET ROLE regress_sec_user;
BEGIN;
SAVEPOINT s;
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (subscription) FROM SERVER close INTO sec_import;  -- ERROR
ROLLBACK TO SAVEPOINT s;
COMMIT;
RESET ROLE;
SELECT obj_description('sec_import.subscription'::regclass, 'pg_class') AS table_comment,
       col_description('sec_import.subscription'::regclass,
                       (SELECT attnum FROM pg_attribute
                         WHERE attrelid = 'sec_import.subscription'::regclass AND attname = 'plan')) AS column_comment;
-- nor in a function's exception block
SET ROLE regress_sec_user;
DO $$
BEGIN
  IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (subscription) FROM SERVER close INTO sec_import;
EXCEPTION WHEN duplicate_table THEN
  RAISE NOTICE 'import failed: %', SQLERRM;
END $$;
RESET ROLE;
SELECT obj_description('sec_import.subscription'::regclass, 'pg_class') AS table_comment;
-- an IMPORT that worked comments only on the tables it made: not on one
-- of that name another role made in its place
BEGIN;
SET LOCAL ROLE regress_sec_user;
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (resource, empty) FROM SERVER close INTO sec_import;
DROP FOREIGN TABLE sec_import.resource;
RESET ROLE;
CREATE FOREIGN TABLE sec_import.resource (id text) SERVER close;
COMMENT ON FOREIGN TABLE sec_import.resource IS 'the superuser''s table';
COMMIT;
SELECT c.relname, c.relowner = 'regress_sec_user'::regrole AS imported_by_the_role,
       obj_description(c.oid, 'pg_class') AS comment
  FROM pg_class c WHERE c.relnamespace = 'sec_import'::regnamespace AND c.relkind = 'f'
 ORDER BY 1;
-- a subtransaction that commits keeps them
BEGIN;
SAVEPOINT s;
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (device) FROM SERVER close INTO sec_import;
RELEASE SAVEPOINT s;
COMMIT;
SELECT obj_description('sec_import.device'::regclass, 'pg_class') AS comment;
-- a prepared transaction could not set them: PREPARE is refused (and the
-- next transaction sets nothing)
BEGIN;
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (custom_objects) FROM SERVER close INTO sec_import;
PREPARE TRANSACTION 'close_import';  -- ERROR
BEGIN;
CREATE FOREIGN TABLE sec_import.custom_objects (id text) SERVER close;
COMMIT;
SELECT obj_description('sec_import.custom_objects'::regclass, 'pg_class') AS comment;
SET client_min_messages = warning;
DROP SCHEMA sec_import CASCADE;
RESET client_min_messages;
DROP USER MAPPING FOR regress_sec_user SERVER close;
REVOKE ALL ON FOREIGN SERVER close FROM regress_sec_user;
REVOKE ALL ON FOREIGN DATA WRAPPER close_fdw FROM regress_sec_user;
DROP ROLE regress_sec_user;

-- Rate limits are per endpoint group: the method and the path with its
-- ids replaced, "custom_object" and "custom_object_type" being names, not
-- ids.  With one request a second per group, a lead's listing uses up its
-- group; the types' listing (another group) then goes at once rather
-- than waiting for the listing's reset.
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/config', '{"rate_limit_per_sec": 1}');
SELECT count(name) FROM close_custom_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
CREATE SCHEMA sec_pacing;
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (custom_objects) FROM SERVER close INTO sec_pacing;
SELECT e->>'method' AS method, e->>'path' AS path, e->>'status' AS status,
       round(((e->>'time')::numeric - first_value((e->>'time')::numeric) OVER ()) * 1000) < 800 AS at_once
  FROM emulator_log_entries() e;
SELECT emulator_call('POST', '/_emulator/config', '{"rate_limit_per_sec": 0}');
DROP SCHEMA sec_pacing CASCADE;
