-- connection: one kept-alive HTTP session per user mapping, rebuilt when
-- ALTER SERVER or ALTER USER MAPPING changes its options; each role uses
-- its own credential.
\set VERBOSITY terse
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();

-- three statements, one TCP connection
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT count(name) FROM close_custom_objects WHERE id = 'custobj_OnlyOne000000000000000000000000000000000000';
SELECT count(*) AS requests, count(DISTINCT e->>'client_port') AS connections,
       min(e->>'auth') AS auth, min(e->'headers'->>'accept') AS accept,
       min(e->'headers'->>'x-tz-offset') AS tz_offset,
       min(e->'headers'->>'user-agent') AS user_agent
  FROM emulator_log_entries() e;

-- ALTER USER MAPPING takes effect at once: another key, a bearer token, a wrong key
ALTER USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (SET api_key 'api_alice_key');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
ALTER USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (DROP api_key, ADD oauth_token 'oauth_test_token');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT e->>'auth' AS auth FROM emulator_log_entries() e;
ALTER USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (DROP oauth_token, ADD api_key 'api_wrong_key');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
ALTER USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (SET api_key 'api_test_key');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';

-- ALTER SERVER too: a closed port, then back
\set api_url `echo "$CLOSE_API_URL"`
ALTER SERVER close OPTIONS (SET api_url 'http://127.0.0.1:9/api/v1');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
ALTER SERVER close OPTIONS (SET api_url :'api_url');
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
SELECT e->>'auth' AS auth, e->>'status' AS status FROM emulator_log_entries() e;

-- a change that arrives while another session's scan is under way is used
-- from that scan's next request on, and by every later statement
CREATE EXTENSION dblink;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  current_setting('unix_socket_directories'), current_setting('port'), current_database(),
  current_user));
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', 'DECLARE c CURSOR FOR SELECT name FROM close_custom_objects WHERE lead_id = ''lead_Big0000000000000000000000000000000000000000''');
SELECT * FROM dblink('other', 'FETCH 1 FROM c') AS t(name text);
ALTER USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (SET api_key 'api_alice_key');
SELECT * FROM dblink('other', 'SELECT count(*) FROM pg_class WHERE false') AS t(n bigint);
SELECT count(*) FROM dblink('other', 'FETCH 200 FROM c') AS t(name text);
SELECT dblink_exec('other', 'COMMIT');
SELECT * FROM dblink('other', 'SELECT count(name) FROM close_custom_objects WHERE lead_id = ''lead_One0000000000000000000000000000000000000000''') AS t(n bigint);
-- (later pages are fetched several at once: sorted)
SELECT e->>'auth' AS auth, e->'query'->>'_skip' AS skip FROM emulator_log_entries() e
 ORDER BY e->'query'->>'lead_id', (e->'query'->'_skip'->>0)::int;
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;
ALTER USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (SET api_key 'api_test_key');

-- each role its own mapping; a role without one cannot read
CREATE ROLE regress_alice;
CREATE ROLE regress_nomap;
GRANT USAGE ON FOREIGN SERVER close TO regress_alice, regress_nomap;
GRANT SELECT ON close_custom_objects TO regress_alice, regress_nomap;
CREATE USER MAPPING FOR regress_alice SERVER close OPTIONS (api_key 'api_alice_key');
SET ROLE regress_alice;
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';
RESET ROLE;
SET ROLE regress_nomap;
\set VERBOSITY sqlstate
SELECT count(name) FROM close_custom_objects WHERE lead_id = :'one';  -- ERROR
\set VERBOSITY terse
RESET ROLE;
-- PostgreSQL's own words, which 17 changed
SELECT :'LAST_ERROR_MESSAGE' ~ '^user mapping not found for (user )?"regress_nomap"' AS no_mapping;
-- a view reads with its owner's mapping, whoever queries it
CREATE VIEW one_lead_objects AS
  SELECT name FROM close_custom_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
GRANT SELECT ON one_lead_objects TO regress_nomap;
SET ROLE regress_nomap;
SELECT * FROM one_lead_objects;
RESET ROLE;
SELECT e->>'auth' AS auth FROM emulator_log_entries() e;

DROP VIEW one_lead_objects;
DROP USER MAPPING FOR regress_alice SERVER close;
REVOKE ALL ON close_custom_objects FROM regress_alice, regress_nomap;
REVOKE ALL ON FOREIGN SERVER close FROM regress_alice, regress_nomap;
DROP ROLE regress_alice, regress_nomap;
