-- edges_encoding: in a LATIN1 database, text leaves for Close in UTF-8
-- (write bodies, search values) and arrives converted to LATIN1; a
-- character LATIN1 cannot hold is an error, never another character.
-- The database is made here and dropped at the end; the client speaks UTF-8.
\set VERBOSITY default
\set api_url `echo "$CLOSE_API_URL"`
\set emulator_url `echo "$CLOSE_EMULATOR_URL"`
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT current_database() AS regress_database \gset
CREATE DATABASE close_fdw_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c close_fdw_latin1
SET client_encoding = 'UTF8';
SHOW server_encoding;

CREATE EXTENSION close_fdw;
CREATE SERVER close FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE subs (
  id text, lead_id text, name text,
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  labels text[] OPTIONS (field 'custom.cf_SubscriptionLabels0000000000000000000000000'),
  future json OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  custom jsonb
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');

-- the emulator's control API, from this database: what it says is UTF-8;
-- what is sent to it stays ASCII (non-ASCII as JSON escapes)
CREATE TABLE emulator_settings (url text NOT NULL);
INSERT INTO emulator_settings VALUES (:'emulator_url');
CREATE FUNCTION emulator_call(method text, path text, body text DEFAULT '{}',
                              encoding text DEFAULT 'UTF8')
RETURNS SETOF text LANGUAGE plpgsql SET client_min_messages = warning AS $$
DECLARE
  cmd text := format('curl -sS --fail -X %s -H %s --data-binary %s %s',
                     method, '''Content-Type: application/json''',
                     '''' || replace(body, '''', '''\''''') || '''',
                     (SELECT url FROM emulator_settings) || path);
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS emulator_output (n bigserial, line text);
  TRUNCATE emulator_output;
  EXECUTE format('COPY emulator_output (line) FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L, ENCODING %L)',
                 cmd, E'\x01', E'\x02', encoding);
  RETURN QUERY SELECT line FROM emulator_output ORDER BY n;
END $$;
CREATE FUNCTION emulator_requests() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  lines text[] := ARRAY(SELECT regexp_replace(line, '^(\S+) /api/v1', '\1 ')
                          FROM emulator_call('GET', '/_emulator/log') AS line);
BEGIN
  PERFORM emulator_call('POST', '/_emulator/log/clear');
  RETURN QUERY SELECT unnest(lines);
END $$;
-- (the emulator's echo of a rule is not read: it may hold any character)
CREATE FUNCTION emulator_fault(rule text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM emulator_call('POST', '/_emulator/faults', rule, 'SQL_ASCII');
END $$;
CREATE FUNCTION serve_records(records text) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object(
    'path_prefix', '/api/v1/custom_object/', 'action', 'status', 'status', 200,
    'body', '{"data": ' || records || ', "has_more": false}', 'times', 1)::text);
$$;
SELECT count(*) FROM emulator_call('POST', '/_emulator/reset');

-- outgoing: an INSERT's body is UTF-8, from every kind of column (text,
-- array, json, the custom map's keys and values); RETURNING reads back
INSERT INTO subs (lead_id, name, plan, labels, future, custom)
VALUES (:'one', 'Zürich', 'Genève', ARRAY['façade', 'Ærø'], '{"clé": "crème brûlée"}',
        '{"cf_SubscriptionTerms00000000000000000000000000": "½ price, £5 ±1"}')
RETURNING name, plan, labels, future, custom;
SELECT * FROM emulator_requests();

-- an UPDATE's body too
UPDATE subs SET name = 'Zürich über alles', custom = custom || '{"cf_SubscriptionTerms00000000000000000000000000": "§ 1 ¿no?"}'
 WHERE lead_id = :'one' AND name = 'Zürich'
RETURNING name, custom;
SELECT * FROM emulator_requests();

-- a search's values are UTF-8, and its answer reads back in LATIN1
SELECT name, plan FROM subs WHERE name = 'Zürich über alles';
SELECT * FROM emulator_requests();

-- incoming: UTF-8 text (raw or escaped) arrives in LATIN1
SELECT serve_records($$[{"id": "custobj_l", "lead_id": "lead_x", "name": "Gen\u00e8ve \u00bd",
  "custom.cf_SubscriptionPlan000000000000000000000000000": "\u00c6r\u00f8",
  "custom.cf_SubscriptionFuture0000000000000000000000000": {"k\u00e9": ["\u00fc"]}}]$$);
SELECT name, plan, future, custom, convert_to(name, 'LATIN1') AS latin1_bytes
  FROM subs WHERE lead_id = 'lead_x';

-- a character LATIN1 cannot hold is an error, in any column; the message
-- shows it escaped
SELECT serve_records($$[{"id": "custobj_l", "lead_id": "lead_x", "name": "price \u20ac 5"}]$$);
SELECT name FROM subs WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records($$[{"id": "custobj_l", "lead_id": "lead_x",
  "custom.cf_SubscriptionPlan000000000000000000000000000": "\ud83d\ude00"}]$$);
SELECT custom FROM subs WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records($$[{"id": "custobj_l", "lead_id": "lead_x",
  "custom.cf_SubscriptionFuture0000000000000000000000000": ["\u2713"]}]$$);
SELECT future FROM subs WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records($$[{"id": "custobj_l", "lead_id": "lead_x",
  "custom.cf_SubscriptionLabels0000000000000000000000000": ["ok", "\u0153uvre"]}]$$);
SELECT labels FROM subs WHERE lead_id = 'lead_x';  -- ERROR

-- an error Close writes in UTF-8 shows in the message, its non-ASCII
-- characters escaped (never as other characters)
SELECT emulator_fault($${"path_prefix": "/api/v1/custom_object/", "action": "status", "status": 400,
  "body": "{\"error\": \"Z\u00fcrich \u20ac refused\"}", "times": 1}$$);
SELECT name FROM subs WHERE lead_id = 'lead_x';  -- ERROR

SELECT count(*) FROM emulator_call('POST', '/_emulator/reset');
\c :regress_database
DROP DATABASE close_fdw_latin1 WITH (FORCE);
