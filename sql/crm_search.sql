-- crm_search: leads, contacts and opportunities without an id (or lead_id)
-- condition are read through Advanced Filtering (POST /data/search/), with
-- their own object type in the query, _fields and sort; a pushed condition
-- never changes the answer (compared here with local copies); dates are
-- sent as whole UTC days, and slices are whole days, so a scan is complete
-- whether Close reads date bounds exactly or by day (the emulator's
-- crm_search_day_granular switch), and a day over the cap is an error.
\set VERBOSITY default
SELECT emulator_reset();

CREATE FOREIGN TABLE srch_leads (
  id text, name text, status_id text, status_label text,
  created_by text, date_created timestamptz, date_updated timestamptz,
  industry text OPTIONS (field 'custom.cf_LeadIndustry0000000000000000000000000000000'),
  employees numeric OPTIONS (field 'custom.cf_LeadEmployees000000000000000000000000000000'),
  segments jsonb OPTIONS (field 'custom.cf_LeadSegments0000000000000000000000000000000')
) SERVER close OPTIONS (resource 'lead');
CREATE FOREIGN TABLE srch_contacts (
  id text, lead_id text, name text, title text,
  date_created timestamptz, date_updated timestamptz,
  score numeric OPTIONS (field 'custom.cf_ContactScore0000000000000000000000000000000')
) SERVER close OPTIONS (resource 'contact');
CREATE FOREIGN TABLE srch_opportunities (
  id text, lead_id text, status_id text, status_type text, user_id text,
  value bigint, date_created timestamptz, date_updated timestamptz
) SERVER close OPTIONS (resource 'opportunity');

-- a whole table: one search of leads, the keys the query uses in _fields
SELECT id, name, status_label, industry, employees FROM srch_leads ORDER BY id;
SELECT e->>'path' AS path, e->'headers'->>'x-tz-offset' AS tz_offset, jsonb_pretty(e->'body') AS body
  FROM emulator_log_entries() e;

-- local copies, to compare pushed conditions with
CREATE TABLE srch_leads_copy AS SELECT * FROM srch_leads;
CREATE TABLE srch_contacts_copy AS SELECT * FROM srch_contacts;
CREATE TABLE srch_opportunities_copy AS SELECT * FROM srch_opportunities;
SELECT (SELECT count(*) FROM srch_leads_copy) AS leads,
       (SELECT count(*) FROM srch_contacts_copy) AS contacts,
       (SELECT count(*) FROM srch_opportunities_copy) AS opportunities;
SELECT emulator_clear();

CREATE FUNCTION srch_same_rows(tab text, condition text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  remote text[];
  local text[];
BEGIN
  EXECUTE format('SELECT coalesce(array_agg(id ORDER BY id), ''{}'') FROM %I WHERE %s', tab, condition) INTO remote;
  EXECUTE format('SELECT coalesce(array_agg(id ORDER BY id), ''{}'') FROM %I WHERE %s', tab || '_copy', condition) INTO local;
  RETURN CASE WHEN remote = local THEN 'same ' || cardinality(local) || ' rows'
              ELSE 'DIFFERENT: ' || cardinality(remote) || ' vs ' || cardinality(local) END;
END $$;
SELECT t, c AS condition, srch_same_rows(t, c)
  FROM (VALUES
    ('srch_leads', $$status_id = 'stat_Qualified0000000000000000000000000000000000'$$),
    ('srch_leads', $$status_id IN ('stat_Qualified0000000000000000000000000000000000', 'stat_Customer00000000000000000000000000000000000')$$),
    ('srch_leads', $$status_id <> 'stat_Potential0000000000000000000000000000000000'$$),
    ('srch_leads', $$name = 'Plain Lead 3'$$), ('srch_leads', $$name = 'plain lead 3'$$),
    ('srch_leads', $$created_by = 'user_Test000000000000000000000000000000000000000'$$),
    ('srch_leads', $$date_created > '2020-08-05 09:02:00+00'$$),
    ('srch_leads', $$date_created < '2020-08-05 09:02:00+00'$$),
    ('srch_leads', $$date_created >= '2020-08-04'::date$$),
    ('srch_leads', $$date_created BETWEEN '2020-08-04 16:30:00+00' AND '2020-08-05 09:00:37.123+00'$$),
    ('srch_leads', $$employees > 25$$), ('srch_leads', $$employees = 2.5$$),
    ('srch_leads', $$industry = 'Retail'$$), ('srch_leads', $$industry = 'retail' OR employees >= 40$$),
    ('srch_contacts', $$title = 'Owner'$$), ('srch_contacts', $$name IN ('Pat One', 'Sam Two')$$),
    ('srch_contacts', $$score >= 3$$), ('srch_contacts', $$date_updated <= '2020-09-01 09:00:00+00'$$),
    ('srch_contacts', $$lead_id <> 'lead_Big0000000000000000000000000000000000000000'$$),
    ('srch_opportunities', $$status_id = 'stat_Won0000000000000000000000000000000000000000'$$),
    ('srch_opportunities', $$user_id = 'user_Alice00000000000000000000000000000000000000'$$),
    ('srch_opportunities', $$status_type = 'won'$$),
    ('srch_opportunities', $$date_created >= '2020-09-01 12:00:00+00' AND value > 1000$$)
  ) AS v(t, c);
-- the same in another time zone: the days are UTC days
SET TimeZone = 'Pacific/Auckland';
SELECT t, c AS condition, srch_same_rows(t, c)
  FROM (VALUES
    ('srch_leads', $$date_created < '2020-08-05 21:02:00'$$),
    ('srch_contacts', $$date_created > '2020-09-01 22:00:00'$$)) AS v(t, c);
RESET TimeZone;
SELECT emulator_clear();

-- what goes into the query, and what is checked again locally: status ids
-- as reference conditions (exact), names as text (Close may ignore case),
-- date ranges as whole days (Close may read them so)
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM srch_leads
 WHERE status_id = 'stat_Qualified0000000000000000000000000000000000'
   AND name = 'Plain Lead 1' AND date_updated > '2020-08-05 09:02:00+00';
SELECT id FROM srch_leads
 WHERE status_id = 'stat_Qualified0000000000000000000000000000000000'
   AND name = 'Plain Lead 1' AND date_updated > '2020-08-05 09:02:00+00';
SELECT jsonb_pretty(e->'body'->'query') FROM emulator_log_entries() e;
EXPLAIN (COSTS OFF)
SELECT id FROM srch_leads WHERE date_created < '2020-08-05 09:02:00+00' AND status_id <> 'stat_Potential0000000000000000000000000000000000'
   AND created_by = 'user_Test000000000000000000000000000000000000000';
-- a custom field: its type comes from the lead field schema, read when the scan starts
SELECT id, employees FROM srch_leads WHERE employees > 25 ORDER BY id;
SELECT e->>'method' AS method, e->>'path' AS path, e->'body'->'query'->'queries'->1 AS condition
  FROM emulator_log_entries() e;
-- a custom jsonb column: every custom field of the lead schema is asked for
CREATE FOREIGN TABLE srch_leads_custom (id text, name text, custom jsonb)
  SERVER close OPTIONS (resource 'lead');
SELECT name, custom FROM srch_leads_custom WHERE name IN ('Mixed Lead', 'Plain Lead 2') ORDER BY name;
SELECT e->>'method' AS method, e->>'path' AS path, e->'body'->'_fields' AS fields FROM emulator_log_entries() e;
-- a field of several values is not sent
SELECT count(*) FROM srch_leads WHERE segments = '["Enterprise"]';
SELECT e->>'path' AS path, e->'body'->'query'->'queries' AS queries FROM emulator_log_entries() e;

-- contacts and opportunities: their own object type, fields and statuses
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, name FROM srch_contacts WHERE title = 'Owner';
SELECT id, name FROM srch_contacts WHERE title = 'Owner' ORDER BY id;
SELECT jsonb_pretty(e->'body') FROM emulator_log_entries() e;
-- (a condition the /opportunity/ listing takes alone makes a filtered
-- listing: an OR of two is searched)
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM srch_opportunities
 WHERE status_id IN ('stat_Won0000000000000000000000000000000000000000', 'stat_Active0000000000000000000000000000000000000')
    OR user_id = 'user_Alice00000000000000000000000000000000000000';
SELECT id FROM srch_opportunities
 WHERE status_id IN ('stat_Won0000000000000000000000000000000000000000', 'stat_Active0000000000000000000000000000000000000')
    OR user_id = 'user_Alice00000000000000000000000000000000000000'
 ORDER BY id;
SELECT jsonb_pretty(e->'body'->'query') FROM emulator_log_entries() e;
-- the same rows as the condition applied here to every opportunity
SELECT count(*) FROM (SELECT * FROM srch_opportunities OFFSET 0) s
 WHERE status_id IN ('stat_Won0000000000000000000000000000000000000000', 'stat_Active0000000000000000000000000000000000000')
    OR user_id = 'user_Alice00000000000000000000000000000000000000';
SELECT emulator_clear();

-- count(*) with exact conditions: one count search
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*) FROM srch_leads WHERE status_id = 'stat_Qualified0000000000000000000000000000000000';
SELECT count(*) FROM srch_leads WHERE status_id = 'stat_Qualified0000000000000000000000000000000000';
SELECT count(*) FROM srch_contacts;
SELECT count(*) FROM srch_opportunities WHERE status_id <> 'stat_Won0000000000000000000000000000000000000000';
SELECT count(*) FROM srch_opportunities WHERE status_type IN ('won', 'lost');
SELECT e->>'path' AS path, e->'body' AS body FROM emulator_log_entries() e;
-- a condition Close applies loosely keeps the count local
EXPLAIN (COSTS OFF) SELECT count(*) FROM srch_contacts WHERE title = 'Owner';

-- ANALYZE: a count and a sample, both searches of leads
ANALYZE srch_leads;
SELECT reltuples FROM pg_class WHERE relname = 'srch_leads';
SELECT e->>'path' AS path, e->'body'->'_fields' AS fields, e->'body'->'results_limit' AS results_limit
  FROM emulator_log_entries() e;

-- ORDER BY date_created DESC / date_updated with a LIMIT: one sorted search
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, date_created FROM srch_leads ORDER BY date_created DESC LIMIT 3;
SELECT id, date_created FROM srch_leads ORDER BY date_created DESC LIMIT 3;
SELECT id FROM srch_contacts ORDER BY date_updated LIMIT 2;
SELECT e->'body'->'sort' AS sort, e->'body'->'results_limit' AS results_limit, e->'body'->'_limit' AS page
  FROM emulator_log_entries() e;

-- slices: with a cap of 9 objects per query, the 10 leads (1 on
-- 2020-08-04, 9 on 2020-08-05) take a second query, from the midnight
-- before the last date_created seen, whose repeats are skipped; the same
-- rows whether Close reads the bounds exactly or by day
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 9}');
SELECT count(*), count(DISTINCT id),
       (SELECT array_agg(id ORDER BY id) FROM srch_leads_copy) = array_agg(id ORDER BY id) AS same
  FROM srch_leads;
SELECT e->'body'->'query'->'queries'->1 AS slice, e->'body'->'results_limit' AS results_limit
  FROM emulator_log_entries() e;
SELECT emulator_call('POST', '/_emulator/config', '{"crm_search_day_granular": 1}');
SELECT count(*), count(DISTINCT id),
       (SELECT array_agg(id ORDER BY id) FROM srch_leads_copy) = array_agg(id ORDER BY id) AS same
  FROM srch_leads;
SELECT emulator_call('POST', '/_emulator/config', '{"crm_search_day_granular": 2}');
SELECT count(*), count(DISTINCT id),
       (SELECT array_agg(id ORDER BY id) FROM srch_leads_copy) = array_agg(id ORDER BY id) AS same
  FROM srch_leads;
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 20, "crm_search_day_granular": 1}');
SELECT t, c AS condition, srch_same_rows(t, c)
  FROM (VALUES
    ('srch_leads', $$date_created > '2020-08-05 09:02:00+00'$$),
    ('srch_leads', $$date_updated <= '2020-08-05 09:02:00+00'$$),
    ('srch_contacts', $$date_created > '2020-09-01 10:00:00+00'$$),
    ('srch_opportunities', $$date_created < '2020-09-01 14:00:00+00'$$)) AS v(t, c);
-- in date_created order, through the slices: no sort needed, no repeat
SELECT array_agg(id ORDER BY date_created, id) = array_agg(id) AS in_order, count(*)
  FROM (SELECT id, date_created FROM srch_leads ORDER BY date_created) s;
SELECT emulator_clear();

-- many leads over many days: the search is cut into parts at UTC
-- midnights (after a probe for the newest lead), read concurrently, each
-- sliced by whole days; every lead once, under each reading of the bounds
-- (1: a bound counts from the start of its day, which would lose the
-- objects before a cut that is not a midnight)
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 250, "crm_search_day_granular": 1}');
SELECT emulator_call('POST', '/_emulator/crm/generate',
                     '{"leads": 1400, "start": "2021-01-01T00:30:00.000000+00:00", "step_ms": 1800000}');
SELECT emulator_clear();
SELECT count(employees) AS listed, count(DISTINCT id) AS distinct_ids,
       min(date_created) AS first, max(date_created) AS last
  FROM srch_leads WHERE date_created >= '2021-01-01 00:00:00+00';
SELECT count(*) >= 8 AS pages_and_parts,
       count(*) FILTER (WHERE e->'body'->'_limit' = '1') AS newest_probes,
       count(*) FILTER (WHERE e->'body'->'query'->'queries'->-1->'condition' ? 'before') > 1 AS parts_with_an_end,
       bool_and(e->'body'->'query'->'queries'->-1->'condition'->'on_or_after'->>'type' = 'fixed_local_date'
                AND coalesce(e->'body'->'query'->'queries'->-1->'condition'->'before'->>'type', 'fixed_local_date') = 'fixed_local_date') AS day_bounds_only
  FROM emulator_log_entries() e;
SELECT emulator_call('POST', '/_emulator/config', '{"crm_search_day_granular": 2}');
SELECT count(employees) AS listed, count(DISTINCT id) AS distinct_ids FROM srch_leads WHERE date_created >= '2021-01-01 00:00:00+00';
SELECT emulator_call('POST', '/_emulator/config', '{"crm_search_day_granular": 0}');
SELECT count(employees) AS listed, count(DISTINCT id) AS distinct_ids FROM srch_leads WHERE date_created >= '2021-01-01 00:00:00+00';
SELECT emulator_reset();

-- /lead/ refuses a _skip past its cap (35,000 in Close; 5 here): a scan
-- without an id is a search, which has no such cap, so a big organisation
-- never stops early (the same for contacts' listing)
SELECT emulator_call('POST', '/_emulator/config', '{"lead_max_skip": 5, "crm_max_skip": 5, "crm_max_limit": 3}');
SELECT count(name) AS leads, count(DISTINCT id) AS distinct_ids FROM srch_leads;
SELECT count(name) AS contacts, count(DISTINCT id) AS distinct_ids FROM srch_contacts;
SELECT e->>'method' AS method, e->>'path' AS path, count(*) FROM emulator_log_entries() e GROUP BY 1, 2;
SELECT emulator_reset();

-- a UTC day with more objects than one query returns: an error naming the
-- day, never fewer rows (the 14 contacts are all of 2020-09-01), however
-- Close reads the bounds
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 10, "crm_search_day_granular": 0}');
SELECT count(title) FROM srch_contacts;
SELECT emulator_call('POST', '/_emulator/config', '{"crm_search_day_granular": 1}');
SELECT id FROM srch_contacts;
-- within the cap, it goes through
SELECT count(title) FROM srch_contacts WHERE title = 'Owner';
SELECT emulator_call('POST', '/_emulator/config', '{"search_max_results": 3}');
SELECT id FROM srch_leads;
SELECT emulator_reset();
