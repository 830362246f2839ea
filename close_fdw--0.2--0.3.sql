/* close_fdw--0.2--0.3.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION close_fdw UPDATE TO '0.3'" to load this file. \quit

-- Drop the answers cached (cache_ttl_ms) for a server, or for every
-- server of the database when NULL; returns how many were dropped.
CREATE FUNCTION close_fdw_cache_clear(server name DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'close_fdw_cache_clear'
LANGUAGE C VOLATILE;

REVOKE EXECUTE ON FUNCTION close_fdw_cache_clear(name) FROM PUBLIC;
