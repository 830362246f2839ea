-- adv_edges: values sent to Close are the values, whatever the session's
-- settings (extra_float_digits, IntervalStyle, DateStyle, bytea_output);
-- char(n) sends its value without its padding; an SQL_ASCII database sends
-- only UTF-8.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
\set api_url `echo "$CLOSE_API_URL"`
SELECT current_database() AS regress_database \gset
SELECT emulator_reset();
CREATE FOREIGN TABLE adv_subs (
  id text, lead_id text, name text,
  amount float8 OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  balance float4 OPTIONS (field 'custom.cf_SubscriptionBalance000000000000000000000000'),
  amounts float8[] OPTIONS (field 'custom.cf_SubscriptionLabels0000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
CREATE FOREIGN TABLE adv_texts (
  id text, lead_id text, name char(12),
  period interval OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  raw bytea OPTIONS (field 'custom.cf_SubscriptionTerms00000000000000000000000000'),
  spans daterange[] OPTIONS (field 'custom.cf_SubscriptionLabels0000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
CREATE FOREIGN TABLE adv_codes (
  id text, lead_id text, name text,
  plan char(10) OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  labels char(4)[] OPTIONS (field 'custom.cf_SubscriptionLabels0000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');

-- floats keep every digit under extra_float_digits 0 or below (which would
-- print 0.3, 1.67772e+07): in INSERT and UPDATE; the setting is the
-- session's again after the statement
SET extra_float_digits = 0;
INSERT INTO adv_subs (lead_id, name, amount, balance)
VALUES (:'one', 'Floats', 0.1::float8 + 0.2::float8, 16777216::float4 + 1::float4)
RETURNING id AS float_id, amount = 0.1::float8 + 0.2::float8 AS amount_exact,
          balance = 16777216::float4 AS balance_exact \gset
SELECT :'amount_exact', :'balance_exact';
SHOW extra_float_digits;
SET extra_float_digits = -15;
UPDATE adv_subs SET amount = 2/3::float8, balance = 0.1::float4 WHERE id = :'float_id';
RESET extra_float_digits;
SELECT * FROM emulator_requests();
SELECT amount, balance FROM adv_subs WHERE id = :'float_id';
SELECT count(*) FROM emulator_requests();

-- an interval, a bytea and dates inside a range are sent in one form,
-- whatever IntervalStyle, bytea_output and DateStyle say; a char(12)
-- value without its padding
SET IntervalStyle = 'iso_8601';
SET DateStyle = 'SQL, DMY';
SET bytea_output = 'escape';
INSERT INTO adv_texts (lead_id, name, period, raw, spans)
VALUES (:'one', 'Settings', '1 day 2 hours 3.5 seconds', '\x41ff00',
        ARRAY['[2024-01-02,2024-03-04)'::daterange, 'empty'])
RETURNING id AS text_id, name || '|' AS name, period, raw, spans \gset
SELECT :'name', :'period', :'raw', :'spans';
SHOW IntervalStyle;
SHOW DateStyle;
SHOW bytea_output;
UPDATE adv_texts SET period = '-1 year 2 mons' WHERE id = :'text_id';
RESET IntervalStyle;
RESET DateStyle;
RESET bytea_output;
SELECT * FROM emulator_requests();

-- char(n): its padding is not part of the value (leading spaces are)
INSERT INTO adv_codes (lead_id, name, plan, labels)
VALUES (:'one', 'Codes', 'ab', ARRAY['x', ' y ', ''])
RETURNING id AS code_id, plan || '|' AS plan, labels \gset
SELECT :'plan', :'labels';
UPDATE adv_codes SET plan = plan WHERE id = :'code_id';
SELECT * FROM emulator_requests();

-- a write that fails while the settings are pinned (an array of float8:
-- pinned for the whole array) leaves the session's
SET extra_float_digits = 0;
BEGIN;
SAVEPOINT s;
INSERT INTO adv_subs (lead_id, name, amounts) VALUES (:'one', 'x', ARRAY[1.5, 'NaN']);  -- ERROR
ROLLBACK TO s;
SHOW extra_float_digits;
SELECT 0.1::float8 + 0.2::float8 AS rounded_as_set;
COMMIT;
RESET extra_float_digits;
SELECT * FROM emulator_requests();

-- the CRM tables write through the same path
CREATE FOREIGN TABLE adv_leads (id text, name char(30), description interval,
  employees float8 OPTIONS (field 'custom.cf_LeadEmployees000000000000000000000000000000'))
  SERVER close OPTIONS (resource 'lead');
SET IntervalStyle = 'sql_standard';
SET extra_float_digits = 0;
INSERT INTO adv_leads (name, description, employees)
VALUES ('Adv Edges Inc', '3 days 04:05:06', 0.1::float8 + 0.2::float8)
RETURNING name || '|' AS name, employees = 0.1::float8 + 0.2::float8 AS employees_exact;
RESET IntervalStyle;
RESET extra_float_digits;
SELECT * FROM emulator_requests();

-- INSERT ... RETURNING converts the columns it uses, as a scan does: a value
-- another column cannot hold (a plan in an interval column) is no error
-- after the write; RETURNING * converts them all.  (An UPDATE reads the
-- whole row: PostgreSQL makes the new row from it.)
CREATE FOREIGN TABLE adv_returning (id text, lead_id text, name text,
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  plan_period interval OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'))
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
INSERT INTO adv_returning (lead_id, name, plan) VALUES (:'one', 'Returning', 'Gold')
RETURNING id AS ret_id, name, plan \gset
SELECT :'name', :'plan';
INSERT INTO adv_returning (lead_id, name, plan) VALUES (:'one', 'Returning 2', 'Silver')
RETURNING adv_returning.name, upper(plan);
-- (the records stay in Close: its WARNING says so, not shown here)
SET client_min_messages = error;
INSERT INTO adv_returning (lead_id, name, plan) VALUES (:'one', 'Returning 3', 'Bronze')
RETURNING *;  -- ERROR
INSERT INTO adv_returning (lead_id, name, plan) VALUES (:'one', 'Returning 4', 'Iron')
RETURNING adv_returning;  -- ERROR
RESET client_min_messages;
UPDATE adv_returning SET name = 'Returning 5' WHERE id = :'ret_id' RETURNING name;  -- ERROR
-- a view's WITH CHECK OPTION checks the row Close answered, every column
CREATE FOREIGN TABLE adv_checked (id text, lead_id text, name text,
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'))
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
CREATE VIEW adv_planned AS SELECT * FROM adv_checked WHERE plan IS NOT NULL WITH CHECK OPTION;
INSERT INTO adv_planned (lead_id, name, plan) VALUES (:'one', 'Returning 6', 'Gold') RETURNING name;
SELECT name, plan FROM adv_returning WHERE lead_id = :'one' AND name LIKE 'Returning%' ORDER BY name;
SELECT count(*) FROM emulator_requests();

-- IMPORT names the built-in types by their schema: types of the same names
-- in a schema the search_path lists before pg_catalog are not the columns'
CREATE SCHEMA adv_shadow;
CREATE DOMAIN adv_shadow.text AS pg_catalog.varchar(3);
CREATE DOMAIN adv_shadow.timestamptz AS pg_catalog.timestamp;
CREATE DOMAIN adv_shadow.date AS pg_catalog.text;
CREATE DOMAIN adv_shadow.jsonb AS pg_catalog.json;
CREATE SCHEMA adv_imported;
SET search_path = adv_shadow, pg_catalog, public;
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (subscription) FROM SERVER close INTO adv_imported;
IMPORT FOREIGN SCHEMA crm LIMIT TO (leads) FROM SERVER close INTO adv_imported;
RESET search_path;
SELECT attrelid::regclass AS "table", format_type(atttypid, atttypmod) AS type, count(*)
  FROM pg_attribute
 WHERE attrelid IN ('adv_imported.subscription'::regclass, 'adv_imported.leads'::regclass)
   AND attnum > 0
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT name, pg_typeof(date_created), date_created IS NOT NULL AS has_date FROM adv_imported.subscription
 WHERE lead_id = :'one' AND name = 'Floats';
DROP SCHEMA adv_imported CASCADE;
DROP SCHEMA adv_shadow CASCADE;
SELECT count(*) FROM emulator_requests();

-- a string is read as a number in decimal only, on every release
-- (PostgreSQL 16 and later would read "0x10" as 16, "1_000" as 1000)
CREATE FOREIGN TABLE adv_numbers (id text, lead_id text,
  i4 int4 OPTIONS (field 'i4'), i8 int8 OPTIONS (field 'i8'), n numeric OPTIONS (field 'n'),
  f8 float8 OPTIONS (field 'f8'), na numeric[] OPTIONS (field 'na'))
  SERVER close;
CREATE FUNCTION adv_serve(records text) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object(
    'path_prefix', '/api/v1/custom_object/', 'action', 'status', 'status', 200,
    'body', '{"data": ' || records || ', "has_more": false}', 'times', 1));
$$;
SELECT adv_serve('[{"id": "custobj_a", "i4": " 12 ", "i8": "-1e3", "n": "1.50E+1", "f8": "-Infinity", "na": ["2.5", 3]}]');
SELECT i4, i8, n, f8, na FROM adv_numbers WHERE lead_id = 'lead_x';
SELECT adv_serve('[{"id": "custobj_a", "i4": "0x10"}]');
SELECT i4 FROM adv_numbers WHERE lead_id = 'lead_x';  -- ERROR
SELECT adv_serve('[{"id": "custobj_a", "i8": "1_000"}]');
SELECT i8 FROM adv_numbers WHERE lead_id = 'lead_x';  -- ERROR
SELECT adv_serve('[{"id": "custobj_a", "n": "0b101"}]');
SELECT n FROM adv_numbers WHERE lead_id = 'lead_x';  -- ERROR
SELECT adv_serve('[{"id": "custobj_a", "na": ["1", "0o17"]}]');
SELECT na FROM adv_numbers WHERE lead_id = 'lead_x';  -- ERROR
SELECT count(*) FROM emulator_requests();

-- an SQL_ASCII database sends its bytes as they are: UTF-8 goes through
-- both ways; a byte that is not UTF-8 is an error, with nothing sent
CREATE DATABASE close_fdw_sqlascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c close_fdw_sqlascii
SET client_encoding = 'UTF8';
CREATE EXTENSION close_fdw;
CREATE SERVER close FOREIGN DATA WRAPPER close_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER close OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE subs (id text, lead_id text, name text,
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'))
  SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
INSERT INTO subs (lead_id, name, plan) VALUES (:'one', 'ASCII db', 'Zürich') RETURNING plan;
SELECT plan, octet_length(plan) FROM subs WHERE lead_id = :'one' AND name = 'ASCII db';
INSERT INTO subs (lead_id, name, plan) VALUES (:'one', 'ASCII db 2', E'caf\xe9');  -- ERROR
UPDATE subs SET plan = E'caf\xe9' WHERE lead_id = :'one' AND name = 'ASCII db';  -- ERROR
SELECT count(*) FROM subs WHERE lead_id = :'one' AND name LIKE 'ASCII db%';
SELECT count(*) FROM subs WHERE lead_id = E'lead_caf\xe9';  -- ERROR
SELECT count(*) FROM subs WHERE name = E'caf\xe9';  -- ERROR
\c :regress_database
-- (the failed statements sent nothing)
SELECT * FROM emulator_requests();
DROP DATABASE close_fdw_sqlascii WITH (FORCE);
