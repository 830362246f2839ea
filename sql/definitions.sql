-- definitions: mistakes in a foreign table's definition are errors, not
-- NULLs: a column that maps to no Close key (when the table is planned), a
-- custom field or a custom_object_type_id Close does not have (at the first
-- scan, from the types cached per user mapping); IMPORT's LIMIT TO warns
-- about a name it does not create, and comments the core columns too.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
SELECT emulator_reset();

-- a misspelt column, without a "field" option: an error when planned, by
-- EXPLAIN too, which sends nothing
CREATE FOREIGN TABLE def_misspelt (id text, lead_id text, name text, amout numeric) SERVER close;
SELECT name FROM def_misspelt WHERE lead_id = :'mixed';  -- ERROR
EXPLAIN (COSTS OFF) SELECT id FROM def_misspelt WHERE lead_id = :'mixed';  -- ERROR
-- a "custom" column must be json or jsonb to hold the custom fields
CREATE FOREIGN TABLE def_custom_as_text (id text, lead_id text, custom text) SERVER close;
SELECT id FROM def_custom_as_text WHERE lead_id = :'mixed';  -- ERROR
SELECT count(*) FROM emulator_requests();
-- a "field" option says which key the column reads
ALTER FOREIGN TABLE def_misspelt ALTER COLUMN amout
  OPTIONS (ADD field 'custom.cf_SubscriptionAmount0000000000000000000000000');
SELECT name, amout FROM def_misspelt WHERE lead_id = :'mixed' ORDER BY name;
SELECT * FROM emulator_requests();

-- a custom field of another type than the table's: an error at the first
-- scan, naming the type's fields; EXPLAIN alone sends nothing and says nothing
CREATE FOREIGN TABLE def_devices (
  id text, lead_id text, name text,
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Device0000000000000000');
EXPLAIN (COSTS OFF) SELECT name, amount FROM def_devices WHERE lead_id = :'one';
SELECT count(*) FROM emulator_requests();
SELECT name, amount FROM def_devices WHERE lead_id = :'one';  -- ERROR
-- a column the query does not read is not checked
SELECT name FROM def_devices WHERE lead_id = :'one';
-- a field no type has, on a table of every type
CREATE FOREIGN TABLE def_ghosts (
  id text, lead_id text,
  ghost text OPTIONS (field 'custom.cf_NoSuchField00000000000000000000000000000000')
) SERVER close;
SELECT ghost FROM def_ghosts WHERE lead_id = :'one';  -- ERROR
-- a type Close does not have
CREATE FOREIGN TABLE def_no_type (id text, lead_id text, name text)
  SERVER close OPTIONS (custom_object_type_id 'cotype_NoSuchType000000000000');
SELECT name FROM def_no_type WHERE lead_id = :'one';  -- ERROR
-- all of it from one fetch of the types, cached for the connection; a scan
-- refused for a type or field the cached types lack asks once more first
SELECT * FROM emulator_requests();

-- the custom jsonb column's keys come from the same cache: no fetch per
-- statement (ALTER SERVER empties the cache first)
ALTER SERVER close OPTIONS (ADD timeout_ms '30000');
ALTER SERVER close OPTIONS (DROP timeout_ms);
SELECT count(custom) FROM close_custom_objects WHERE name <> 'x';
SELECT count(custom) FROM close_custom_objects WHERE name <> 'y';
SELECT count(*) FILTER (WHERE r LIKE 'GET /custom_object_type/%') AS type_fetches,
       count(*) FILTER (WHERE r LIKE 'POST /data/search/%') AS searches
  FROM emulator_requests() r;

-- IMPORT: a LIMIT TO name it would not create is a warning listing those
-- it would; the core columns are commented too
CREATE SCHEMA defs;
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (subscription, subscriptons)
  FROM SERVER close INTO defs;
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'defs' ORDER BY 1;
SELECT a.attname, col_description(a.attrelid, a.attnum)
  FROM pg_attribute a WHERE a.attrelid = 'defs.subscription'::regclass AND a.attnum > 0
   AND a.attname IN ('id', 'custom_object_type_id', 'lead_id', 'name', 'organization_id',
                     'created_by', 'updated_by', 'date_created', 'date_updated', 'custom')
 ORDER BY a.attnum;
-- without the catch-all table, its name is not one it would create
IMPORT FOREIGN SCHEMA custom_objects LIMIT TO (custom_objects)
  FROM SERVER close INTO defs OPTIONS (catch_all 'false');
DROP SCHEMA defs CASCADE;

DROP FOREIGN TABLE def_misspelt, def_custom_as_text, def_devices, def_ghosts, def_no_type;
SELECT emulator_reset();
