/* close_fdw--0.3.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION close_fdw" to load this file. \quit

CREATE FUNCTION close_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION close_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER close_fdw
  HANDLER close_fdw_handler
  VALIDATOR close_fdw_validator;

-- The custom object types and fields behind a server, one row per field:
-- the ids a foreign table's options need, without reading JSON.
CREATE FUNCTION close_fdw_fields(server name)
RETURNS TABLE (resource text, type_id text, type_name text,
               field_id text, field_name text, close_type text,
               multiple boolean, column_type text, column_options text)
AS 'MODULE_PATHNAME', 'close_fdw_fields'
LANGUAGE C STRICT VOLATILE;

-- Request statistics per server and endpoint group: across all backends
-- when close_fdw is in shared_preload_libraries, else this backend's.
CREATE FUNCTION close_fdw_stats_rows(
    OUT server text, OUT endpoint_group text, OUT requests bigint,
    OUT retries bigint, OUT rate_limited bigint, OUT server_errors bigint,
    OUT waits bigint, OUT wait_ms double precision, OUT bytes_received bigint,
    OUT cache_hits bigint, OUT since timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'close_fdw_stats_rows'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW close_fdw_stats AS SELECT * FROM close_fdw_stats_rows();
GRANT SELECT ON close_fdw_stats TO PUBLIC;

CREATE FUNCTION close_fdw_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'close_fdw_stats_reset'
LANGUAGE C STRICT VOLATILE;

REVOKE EXECUTE ON FUNCTION close_fdw_stats_reset() FROM PUBLIC;

-- The writes of the current transaction through close_fdw if it wrote,
-- else of the last finished transaction that did, one row per write (at
-- most 10000): what reached Close, to reconcile after an error or a
-- rollback.
CREATE FUNCTION close_fdw_write_log()
RETURNS TABLE (statement integer, foreign_table text, action text,
               object_id text, lead_id text, http_status integer,
               state text)
AS 'MODULE_PATHNAME', 'close_fdw_write_log'
LANGUAGE C STRICT VOLATILE;

-- Drop the answers cached (cache_ttl_ms) for a server, or for every
-- server of the database when NULL; returns how many were dropped.
CREATE FUNCTION close_fdw_cache_clear(server name DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'close_fdw_cache_clear'
LANGUAGE C VOLATILE;

REVOKE EXECUTE ON FUNCTION close_fdw_cache_clear(name) FROM PUBLIC;
