-- crm_import: IMPORT FOREIGN SCHEMA crm makes one foreign table per Close
-- resource (leads, contacts, opportunities, users, lead and opportunity
-- statuses, pipelines), the core keys typed and commented, one column per
-- custom field of leads, contacts and opportunities (from Close's custom
-- field schema endpoints, shared fields included), with the naming, LIMIT
-- TO / EXCEPT, comment and collision rules of IMPORT ... custom_objects.
\set VERBOSITY default
SELECT emulator_reset();
CREATE SCHEMA crmi;
IMPORT FOREIGN SCHEMA crm FROM SERVER close INTO crmi;
-- one request per custom field schema, nothing else
SELECT * FROM emulator_requests();
\det+ crmi.*
\d+ crmi.leads
\d+ crmi.contacts
\d+ crmi.opportunities
\d+ crmi.users
\d+ crmi.lead_statuses
\d+ crmi.opportunity_statuses
\d+ crmi.pipelines
SELECT c.relname, obj_description(c.oid, 'pg_class') AS comment
  FROM pg_class c WHERE c.relnamespace = 'crmi'::regnamespace ORDER BY c.relname;
-- every column of every imported table has a comment
SELECT c.relname, count(*) AS columns, count(col_description(c.oid, a.attnum)) AS commented
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'crmi'::regnamespace GROUP BY c.relname ORDER BY c.relname;

-- LIMIT TO reads only the field schemas of the tables it imports
SELECT emulator_clear();
CREATE SCHEMA crmi2;
IMPORT FOREIGN SCHEMA crm LIMIT TO (users, opportunities, pipelines) FROM SERVER close INTO crmi2;
SELECT * FROM emulator_requests();
\det crmi2.*
-- EXCEPT, without the custom jsonb column: no custom fields, no request
SELECT emulator_clear();
CREATE SCHEMA crmi3;
IMPORT FOREIGN SCHEMA crm EXCEPT (leads, opportunities, users, pipelines)
  FROM SERVER close INTO crmi3 OPTIONS (custom_column 'false');
SELECT * FROM emulator_requests();
\det crmi3.*
\d crmi3.contacts
-- a name in LIMIT TO that the import does not make is a WARNING
CREATE SCHEMA crmi4;
IMPORT FOREIGN SCHEMA crm LIMIT TO (userz, leads) FROM SERVER close INTO crmi4;
\det crmi4.*

-- unknown remote schema: the error lists both
IMPORT FOREIGN SCHEMA leads FROM SERVER close INTO crmi4;  -- ERROR

-- awkward custom field names: the same collision rules as custom objects
-- (core columns first, then each field in Close's order), unknown types
-- as jsonb with a NOTICE, every identifier quoted
CREATE SCHEMA crm_odd;
SELECT emulator_fault(jsonb_build_object(
  'path_prefix', '/api/v1/custom_field_schema/lead/', 'action', 'status', 'status', 200, 'times', 1,
  'body', $json${"object_type": "lead", "name": "Lead", "fields": [
       {"id": "cf_1", "name": "Name", "type": "text"},
       {"id": "cf_2", "name": "Status ID", "type": "user", "description": "Who said so"},
       {"id": "cf_3", "name": "custom", "type": "number"},
       {"id": "cf_4", "name": "!!!", "type": "date"},
       {"id": "cf_5", "name": "Tags", "type": "choices", "accepts_multiple_values": true},
       {"id": "cf_6", "name": "Odd \"one\"", "type": "geo"},
       {"name": "no id", "type": "text"}]}$json$));
IMPORT FOREIGN SCHEMA crm LIMIT TO (leads) FROM SERVER close INTO crm_odd;
SELECT attname, format_type(atttypid, atttypmod) AS type, attfdwoptions,
       col_description(attrelid, attnum) AS comment
  FROM pg_attribute WHERE attrelid = 'crm_odd.leads'::regclass AND attnum > 16
 ORDER BY attnum;

-- a failed field schema request fails the IMPORT: nothing is created
CREATE SCHEMA crm_fail;
SELECT emulator_fault(jsonb_build_object(
  'path_prefix', '/api/v1/custom_field_schema/contact/', 'action', 'status', 'status', 500, 'times', 1));
\set VERBOSITY terse
IMPORT FOREIGN SCHEMA crm FROM SERVER close INTO crm_fail;  -- ERROR
\set VERBOSITY default
SELECT count(*) AS tables FROM pg_class WHERE relnamespace = 'crm_fail'::regnamespace;

SET client_min_messages = warning;
DROP SCHEMA crmi, crmi2, crmi3, crmi4, crm_odd, crm_fail CASCADE;
RESET client_min_messages;
