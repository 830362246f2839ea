-- setup: the extension, a server on the emulator, the table from the README,
-- and helpers that read and steer the emulator (request log, faults).
-- Later test files rely on what this one creates.
\set emulator_url `echo "$CLOSE_EMULATOR_URL"`
\set api_url `echo "$CLOSE_API_URL"`

CREATE EXTENSION IF NOT EXISTS close_fdw;
CREATE SERVER close FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (api_key 'api_test_key');

CREATE FOREIGN TABLE close_custom_objects (
  id text, custom_object_type_id text, lead_id text, name text,
  organization_id text, created_by text, updated_by text,
  date_created timestamptz, date_updated timestamptz,
  custom jsonb,
  status text OPTIONS (field 'custom.cf_cSh3fWT3rEJ1BFSezme2YAG6bPrZV5wUWKKrW4iN19g')
) SERVER close;

-- Emulator helpers.  A call runs curl on the server's host through
-- COPY FROM PROGRAM; each line of the answer is a row.
CREATE TABLE emulator_settings (url text NOT NULL);
INSERT INTO emulator_settings VALUES (:'emulator_url');

CREATE FUNCTION emulator_call(method text, path text, body text DEFAULT '{}')
RETURNS SETOF text LANGUAGE plpgsql SET client_min_messages = warning AS $$
DECLARE
  cmd text := format('curl -sS --fail -X %s -H %s --data-binary %s %s',
                     method, '''Content-Type: application/json''',
                     '''' || replace(body, '''', '''\''''') || '''',
                     (SELECT url FROM emulator_settings) || path);
BEGIN
  IF method = 'GET' THEN
    cmd := format('curl -sS --fail %s', (SELECT url FROM emulator_settings) || path);
  END IF;
  CREATE TEMP TABLE IF NOT EXISTS emulator_output (n bigserial, line text);
  TRUNCATE emulator_output;
  EXECUTE format('COPY emulator_output (line) FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
                 cmd, E'\x01', E'\x02');
  RETURN QUERY SELECT line FROM emulator_output ORDER BY n;
END $$;

-- the API requests received since the last clear, without the /api/v1
-- prefix, in arrival order; then the log is cleared
CREATE FUNCTION emulator_requests() RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  lines text[] := ARRAY(SELECT regexp_replace(line, '^(\S+) /api/v1', '\1 ')
                          FROM emulator_call('GET', '/_emulator/log') AS line);
BEGIN
  PERFORM emulator_call('POST', '/_emulator/log/clear');
  RETURN QUERY SELECT unnest(lines);
END $$;

CREATE FUNCTION emulator_clear() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM emulator_call('POST', '/_emulator/log/clear');
END $$;

-- add a fault rule (see test/close_emulator.py); cleared by emulator_reset()
CREATE FUNCTION emulator_fault(rule jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM emulator_call('POST', '/_emulator/faults', rule::text);
END $$;

-- back to the sample data, no faults, empty log
CREATE FUNCTION emulator_reset() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM emulator_call('POST', '/_emulator/reset');
END $$;

SELECT emulator_reset();
-- the helpers reach the emulator, and its log starts empty
SELECT * FROM emulator_requests();
SELECT id, name FROM close_custom_objects
 WHERE lead_id = 'lead_hwnL36A2iEMSLIlmGhsdrcmOJzTUzqEHwr66wrA1K2T' ORDER BY id;
SELECT * FROM emulator_requests();

-- EXPLAIN's lines, the same on every PostgreSQL major: 18 shows actual row
-- counts with two decimals ("rows=250.00"), and 17 stopped naming what an
-- init-plan returns ("InitPlan 1 (returns $0)").  Give BUFFERS OFF with
-- ANALYZE: 18 turns it on.
CREATE FUNCTION explain_same(options text, query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE format('EXPLAIN (%s) %s', options, query) LOOP
    line := regexp_replace(line, '(actual rows=\d+)\.00 ', '\1 ');
    line := regexp_replace(line, '^(\s*InitPlan \d+) \(returns [^)]*\)$', '\1');
    RETURN NEXT line;
  END LOOP;
END $$;

-- the JSON log entries since the last clear (method, raw_path, auth label,
-- client_port, headers, status); then the log is cleared
CREATE FUNCTION emulator_log_entries() RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
  doc jsonb := (SELECT string_agg(line, E'\n')
                  FROM emulator_call('GET', '/_emulator/log?format=json') AS line)::jsonb;
BEGIN
  PERFORM emulator_call('POST', '/_emulator/log/clear');
  RETURN QUERY SELECT jsonb_array_elements(doc);
END $$;

-- when the requests since the last clear reached the emulator: how many,
-- the time from the first to the last, the shortest gap between two
-- (requests sent together arrive together; one after another, a latency
-- apart), and the pauses, gaps of 200 ms or more: the round trips at a
-- latency of 300 ms, which a loaded machine can lengthen but neither add
-- nor remove (it can break an upper bound on the spread); then the log is
-- cleared
CREATE FUNCTION arrival_spread()
RETURNS TABLE (requests bigint, spread_ms numeric, min_gap_ms numeric, pauses bigint)
LANGUAGE sql AS $$
  WITH t AS (SELECT (e->>'time')::numeric AS at FROM emulator_log_entries() e),
       g AS (SELECT at, at - lag(at) OVER (ORDER BY at) AS gap FROM t)
  SELECT count(*), round((max(at) - min(at)) * 1000), round(min(gap) * 1000),
         count(*) FILTER (WHERE gap >= 0.2) FROM g
$$;

-- the backend's memory, in bytes: in use in its memory contexts, or
-- allocated by them (PostgreSQL 13 cannot show a backend's memory
-- contexts: 0 there, so the memory checks hold trivially on 13)
CREATE FUNCTION backend_memory(in_use boolean) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('pg_catalog.pg_backend_memory_contexts') IS NULL THEN
    RETURN 0;
  END IF;
  RETURN (SELECT sum(CASE WHEN in_use THEN used_bytes ELSE total_bytes END)::bigint
            FROM pg_backend_memory_contexts);
END $$;
