-- invalidation: ALTER SERVER, ALTER USER MAPPING, cache resets and
-- cancels while requests are in flight, over a TLS front whose handshakes
-- are slow and one at a time (as the real API's can be), so that a cut
-- search's parts sit in their handshakes while the backend does other
-- things: nothing a transfer still uses may be freed.  A session's
-- requests keep the options they had while a search has requests in
-- flight; the change applies once it has ended.
\set tls_url `echo "$CLOSE_TLS_API_URL"`
\set tls_ca `echo "$CLOSE_TLS_CA_FILE"`
SELECT emulator_reset();
SELECT emulator_call('POST', '/_emulator/objects', '{"lead_id": "lead_Cut0000000000000000000000000000000000000000", "custom_object_type_id": "cotype_Device0000000000000000", "count": 2000, "name_prefix": "Cut"}');
CREATE SERVER tls FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'tls_url', ca_file :'tls_ca', max_concurrency '4',
           batch_size '10');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE tls_objects (id text, custom_object_type_id text, lead_id text,
  name text, date_created timestamptz) SERVER tls;
SELECT count(*) AS devices FROM tls_objects
 WHERE custom_object_type_id = 'cotype_Device0000000000000000';

-- the rows a cursor still has to give
CREATE FUNCTION cursor_rest(c refcursor) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  MOVE FORWARD ALL IN c;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- a cut search has its parts' requests in their handshakes when the
-- server changes (in this session, and so at once): the search goes on
-- with what it started with
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM tls_objects
  WHERE custom_object_type_id = 'cotype_Device0000000000000000';
MOVE 201 FROM c;
ALTER SERVER tls OPTIONS (ADD timeout_ms '25000');
SELECT cursor_rest('c');
COMMIT;
-- the same with the user mapping
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM tls_objects
  WHERE custom_object_type_id = 'cotype_Device0000000000000000';
MOVE 201 FROM c;
ALTER USER MAPPING FOR CURRENT_USER SERVER tls OPTIONS (SET api_key 'api_test_key');
SELECT cursor_rest('c');
COMMIT;
-- a change that breaks the server waits for the search in flight, then
-- applies to the next request: the cursor ends well, the next query fails
ALTER SERVER tls OPTIONS (ADD max_retries '0');
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM tls_objects
  WHERE custom_object_type_id = 'cotype_Device0000000000000000';
MOVE 201 FROM c;
ALTER SERVER tls OPTIONS (SET api_url 'http://127.0.0.1:1/api/v1');
SELECT cursor_rest('c');
CLOSE c;
\set VERBOSITY terse
SELECT count(*) FROM tls_objects WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';  -- ERROR
\set VERBOSITY default
ROLLBACK;
-- a cancel while the parts are in their handshakes, with the entry
-- changed meanwhile: the entry stays until the failed cursor's flight is
-- freed
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM tls_objects
  WHERE custom_object_type_id = 'cotype_Device0000000000000000';
MOVE 201 FROM c;
ALTER SERVER tls OPTIONS (SET timeout_ms '26000');
SET LOCAL statement_timeout = '50ms';
SELECT cursor_rest('c');  -- ERROR
ROLLBACK;
-- and in a subtransaction rolled back
BEGIN;
SAVEPOINT s;
DECLARE c CURSOR FOR SELECT id FROM tls_objects
  WHERE custom_object_type_id = 'cotype_Device0000000000000000';
MOVE 201 FROM c;
ALTER USER MAPPING FOR CURRENT_USER SERVER tls OPTIONS (SET api_key 'api_test_key');
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS devices FROM tls_objects
 WHERE custom_object_type_id = 'cotype_Device0000000000000000';
COMMIT;
-- a dropped user mapping: the search in flight ends with a clear error
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM tls_objects
  WHERE custom_object_type_id = 'cotype_Device0000000000000000';
MOVE 201 FROM c;
DROP USER MAPPING FOR CURRENT_USER SERVER tls;
DO $$
BEGIN
  PERFORM cursor_rest('c');
EXCEPTION WHEN undefined_object THEN
  RAISE NOTICE '%', replace(SQLERRM, '"' || current_user || '"', 'CURRENT_USER');
END $$;
ROLLBACK;
SELECT count(*) AS devices FROM tls_objects
 WHERE custom_object_type_id = 'cotype_Device0000000000000000';

-- Stress: searches cut in parts, lead listings fetched ahead and batch
-- writes, while this session changes the user mapping in the middle of
-- them (bump(), every few rows) and another session (dblink) keeps
-- changing the server (two sessions changing one catalog row would fail
-- with "tuple concurrently updated") and once floods the invalidation
-- queue, so that this session's caches are reset.  Each round is a transaction of its
-- own, and takes a lock on a table first touched in the middle of its
-- search, which makes it take the other session's changes there.
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE TABLE inval_probe (x int);
CREATE SEQUENCE bump_seq;
CREATE FUNCTION bump() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  n bigint := nextval('bump_seq');
BEGIN
  IF n % 89 = 0 THEN
    ALTER USER MAPPING FOR CURRENT_USER SERVER tls OPTIONS (SET api_key 'api_test_key');
  END IF;
  RETURN true;
END $$;
CREATE FOREIGN TABLE tls_writes (id text, custom_object_type_id text, lead_id text,
  name text) SERVER tls;
CREATE PROCEDURE stress(rounds int) LANGUAGE plpgsql AS $$
DECLARE
  c refcursor := 'stress_cursor';
  n bigint;
  devices CONSTANT bigint := 2006;
BEGIN
  FOR i IN 1..rounds LOOP
    -- a cut search, changed in the middle by this session or the other
    OPEN c FOR SELECT id FROM tls_objects
      WHERE custom_object_type_id = 'cotype_Device0000000000000000';
    MOVE FORWARD 201 IN c;
    IF i % 2 = 1 THEN
      ALTER USER MAPPING FOR CURRENT_USER SERVER tls OPTIONS (SET api_key 'api_test_key');
    ELSE
      CREATE USER MAPPING FOR PUBLIC SERVER tls OPTIONS (api_key 'api_test_key');
      DROP USER MAPPING FOR PUBLIC SERVER tls;
    END IF;
    PERFORM count(*) FROM inval_probe;
    MOVE FORWARD ALL IN c;
    GET DIAGNOSTICS n = ROW_COUNT;
    CLOSE c;
    IF n <> devices - 201 THEN
      RAISE EXCEPTION 'round %: the search gave % rows after the first 201', i, n;
    END IF;
    -- a search, lead listings fetched ahead and changes in one statement
    SELECT count(*) INTO n FROM (
      SELECT id FROM tls_objects
       WHERE custom_object_type_id = 'cotype_Device0000000000000000' AND bump()
      UNION ALL
      SELECT id FROM tls_objects
       WHERE lead_id = ANY (ARRAY['lead_Plain10000000000000000000000000000000000000',
                                  'lead_Plain20000000000000000000000000000000000000',
                                  'lead_Plain30000000000000000000000000000000000000',
                                  'lead_Plain40000000000000000000000000000000000000',
                                  'lead_Mixed00000000000000000000000000000000000000',
                                  'lead_One0000000000000000000000000000000000000000'])
         AND bump()) s;
    IF n <> devices + 15 THEN
      RAISE EXCEPTION 'round %: % rows', i, n;
    END IF;
    -- batch writes read from a search, with changes between the batches
    INSERT INTO tls_writes (custom_object_type_id, lead_id, name)
    SELECT 'cotype_Device0000000000000000', 'lead_One0000000000000000000000000000000000000000',
           'Stress ' || name
      FROM tls_objects
     WHERE custom_object_type_id = 'cotype_Device0000000000000000' AND bump()
     LIMIT 30;
    DELETE FROM tls_writes
     WHERE lead_id = 'lead_One0000000000000000000000000000000000000000'
       AND name LIKE 'Stress %' AND bump();
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> 30 THEN
      RAISE EXCEPTION 'round %: % rows deleted', i, n;
    END IF;
    COMMIT;
  END LOOP;
END $$;
-- the other session: changes, one after another, each committed, and one
-- flood of invalidations (many temporary tables in one transaction), until
-- this session is done
CREATE TABLE inval_stop (x int);
CREATE PROCEDURE other_session_changes() LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '50 seconds';
  i int := 0;
BEGIN
  WHILE clock_timestamp() < deadline AND NOT EXISTS (SELECT FROM inval_stop) LOOP
    i := i + 1;
    EXECUTE format('ALTER SERVER tls OPTIONS (SET timeout_ms %L)', (30000 + i)::text);
    COMMIT;
    IF i = 5 THEN
      FOR t IN 1..400 LOOP
        EXECUTE format('CREATE TEMP TABLE flood_%s (a int, b text) ON COMMIT DROP', t);
      END LOOP;
      COMMIT;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1),
  current_setting('port'), current_database(), current_user));
SELECT dblink_send_query('other', 'CALL other_session_changes()');
CALL stress(4);
INSERT INTO inval_stop VALUES (1);
SELECT * FROM dblink_get_result('other') AS t(result text);
SELECT dblink_disconnect('other');
-- every change of this and the other session is seen
SELECT count(*) AS devices FROM tls_objects
 WHERE custom_object_type_id = 'cotype_Device0000000000000000';
SELECT option_value::int > 30000 AS changed_by_the_other_session
  FROM pg_foreign_server, pg_options_to_table(srvoptions)
 WHERE srvname = 'tls' AND option_name = 'timeout_ms';

DROP PROCEDURE stress(int);
DROP PROCEDURE other_session_changes();
DROP TABLE inval_stop;
DROP FUNCTION bump();
DROP SEQUENCE bump_seq;
DROP TABLE inval_probe;
DROP FUNCTION cursor_rest(refcursor);
DROP EXTENSION dblink;
DROP USER MAPPING FOR CURRENT_USER SERVER tls;
DROP SERVER tls CASCADE;
