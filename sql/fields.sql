-- fields: close_fdw_fields(server) lists the custom object types and fields
-- behind a server (the ids a table's options need), from one request.
SELECT emulator_reset();
SELECT type_name, field_name, close_type, multiple, column_type, column_options, field_id
  FROM close_fdw_fields('close') ORDER BY type_name, field_name;
SELECT * FROM emulator_requests();
-- every type is there, also one without fields
SELECT resource, type_id, type_name, count(field_id) AS fields
  FROM close_fdw_fields('close') GROUP BY 1, 2, 3 ORDER BY type_name;
SELECT emulator_clear();

-- errors: an unknown server, a server of another wrapper, no USAGE, no mapping
\set VERBOSITY terse
SELECT * FROM close_fdw_fields('nope');  -- ERROR
CREATE FOREIGN DATA WRAPPER other_fdw;
CREATE SERVER other FOREIGN DATA WRAPPER other_fdw;
SELECT * FROM close_fdw_fields('other');  -- ERROR
DROP FOREIGN DATA WRAPPER other_fdw CASCADE;
CREATE ROLE regress_fields_user;
SET ROLE regress_fields_user;
SELECT * FROM close_fdw_fields('close');  -- ERROR
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER close TO regress_fields_user;
SET ROLE regress_fields_user;
SELECT * FROM close_fdw_fields('close');  -- ERROR
RESET ROLE;
-- a Close failure is an error, not an empty list
SELECT emulator_fault('{"path_prefix": "/api/v1/custom_object_type/", "action": "status", "status": 400, "times": 1}');
SELECT * FROM close_fdw_fields('close');  -- ERROR
SELECT emulator_reset();
\set VERBOSITY default
SELECT count(*) FROM emulator_requests();
REVOKE USAGE ON FOREIGN SERVER close FROM regress_fields_user;
DROP ROLE regress_fields_user;
