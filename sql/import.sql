-- import: IMPORT FOREIGN SCHEMA custom_objects makes one typed foreign
-- table per custom object type, and reading and writing work through them.
\set VERBOSITY default
SELECT emulator_reset();
CREATE SCHEMA crm;
IMPORT FOREIGN SCHEMA custom_objects FROM SERVER close INTO crm;
SELECT * FROM emulator_requests();
\det+ crm.*
\d+ crm.subscription
\d+ crm.resource
\d+ crm.empty
\d+ crm.custom_objects

-- numbers and dates compare and sort as such; arrays are arrays
SELECT name, amount, amount > 20 AS over_20, start_date, renewed_at, labels[1] AS first_label
  FROM crm.subscription WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000'
 ORDER BY amount DESC;
SELECT name, capacity FROM crm.resource
 WHERE lead_id = 'lead_Big0000000000000000000000000000000000000000' AND capacity BETWEEN 98 AND 101
 ORDER BY capacity DESC;
SELECT count(name) FROM crm.custom_objects WHERE lead_id = 'lead_Mixed00000000000000000000000000000000000000';

-- a round trip through an imported table: what is written is what is read
INSERT INTO crm.subscription (lead_id, name, plan, amount, balance, start_date, renewed_at,
                              status, labels, channels, legacy_flag, future_thing)
VALUES ('lead_One0000000000000000000000000000000000000000', 'Imported', 'Gold', 99.95, -1.5,
        '2025-02-28', '2025-03-01 12:34:56.789+00', 'paused', ARRAY['x', 'y'], ARRAY['email'],
        'yes', '{"v": 2}')
RETURNING name, plan, amount, balance, start_date, renewed_at, status, labels, channels,
          legacy_flag, future_thing;
SELECT name, plan, amount, balance, start_date, renewed_at, status, labels, channels,
       legacy_flag, future_thing
  FROM crm.subscription WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';
UPDATE crm.subscription SET amount = amount + 0.05, labels = labels || 'z'::text, start_date = NULL
 WHERE lead_id = 'lead_One0000000000000000000000000000000000000000'
RETURNING amount, labels, start_date;
SELECT e->>'method' AS method, e->'body' AS body FROM emulator_log_entries() e WHERE e->>'method' <> 'GET';
DELETE FROM crm.subscription WHERE lead_id = 'lead_One0000000000000000000000000000000000000000';

-- LIMIT TO and EXCEPT use the imported names; options
CREATE SCHEMA crm2;
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (subscription, resource) FROM SERVER close INTO crm2;
IMPORT FOREIGN SCHEMA custom_objects EXCEPT (subscription, resource, custom_objects)
  FROM SERVER close INTO crm2 OPTIONS (custom_column 'false');
\det crm2.*
\d crm2.empty
IMPORT FOREIGN SCHEMA leads FROM SERVER close INTO crm2;  -- ERROR
IMPORT FOREIGN SCHEMA custom_objects FROM SERVER close INTO crm2 OPTIONS (typed 'yes');  -- ERROR
IMPORT FOREIGN SCHEMA custom_objects FROM SERVER close INTO crm2;  -- ERROR

-- awkward names: clashes resolve the same way every time, and every
-- identifier and literal is quoted
CREATE SCHEMA odd;
SELECT emulator_fault(jsonb_build_object(
  'path_prefix', '/api/v1/custom_object_type/', 'action', 'status', 'status', 200, 'times', 1,
  'body', $json${"data": [
    {"id": "cotype_A", "name": "Primary Account", "fields": [
       {"id": "cf_1", "name": "Name", "type": "text"},
       {"id": "cf_2", "name": "name", "type": "text"},
       {"id": "cf_3", "name": "Lead ID", "type": "user"},
       {"id": "cf_4", "name": "x\"; DROP TABLE odd.victim; --", "type": "number"},
       {"id": "cf_5", "name": "Ünïcödé ✓", "type": "date", "description": "it's 'quoted'"},
       {"id": "cf_6", "name": "", "type": "datetime"},
       {"id": "cf_7", "name": "Custom", "type": "choices", "accepts_multiple_values": true},
       {"id": "cf_8", "name": "Flags", "type": "brand_new", "accepts_multiple_values": true}]},
    {"id": "cotype_B", "name": "primary-account", "fields": []},
    {"id": "cotype_C", "name": "Custom Objects", "fields": []},
    {"id": "cotype_D", "name": "'; DROP SCHEMA odd; --", "fields": []},
    {"id": "cotype_E", "name": "A very long type name that goes on and on past the sixty-three bytes of an identifier", "fields": []}
  ]}$json$));
CREATE TABLE odd.victim (x int);
IMPORT FOREIGN SCHEMA custom_objects FROM SERVER close INTO odd;
\det+ odd.*
\d+ odd.primary_account
SELECT count(*) AS victim_still_there FROM odd.victim;
SET client_min_messages = warning;
DROP SCHEMA odd, crm, crm2 CASCADE;
RESET client_min_messages;
