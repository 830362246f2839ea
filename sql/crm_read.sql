-- crm_read: leads, contacts, opportunities, users, statuses and pipelines
-- read through their REST endpoints: GET by id, lead_id listings, whole
-- listings (paged, filtered where Close's meaning is SQL's), joins, costs.
\set api_url `echo "$CLOSE_API_URL"`
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
\set one 'lead_One0000000000000000000000000000000000000000'
\set empty 'lead_Empty00000000000000000000000000000000000000'
\set sheet 'lead_hwnL36A2iEMSLIlmGhsdrcmOJzTUzqEHwr66wrA1K2T'
SELECT emulator_reset();

CREATE FOREIGN TABLE crm_leads (
  id text, name text, display_name text, status_id text, status_label text,
  organization_id text, created_by text, date_created timestamptz,
  date_updated timestamptz, custom jsonb,
  industry text OPTIONS (field 'custom.cf_LeadIndustry0000000000000000000000000000000')
) SERVER close OPTIONS (resource 'lead');

-- by id: GET /lead/{id}/ with _fields naming the keys the scan reads
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, name FROM crm_leads WHERE id = :'mixed';
SELECT id, name FROM crm_leads WHERE id = :'mixed';
SELECT * FROM emulator_requests();
-- IN: one GET per distinct id; a 404 is no row; an id of another prefix asks nothing
SELECT id, name, status_label FROM crm_leads
 WHERE id IN (:'mixed', :'one', :'mixed', 'lead_Nosuch000000000000000000000000000000000000', 'cont_x')
 ORDER BY id;
SELECT r FROM emulator_requests() r ORDER BY r;
-- a lead's custom field is named in _fields (Close takes custom.cf_ there for leads)
SELECT name, industry FROM crm_leads WHERE id = :'sheet';
SELECT * FROM emulator_requests();
-- a prepared statement keeps the pushdown in its generic plan
PREPARE lead_by_id(text) AS SELECT name FROM crm_leads WHERE id = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE lead_by_id(:'one');
EXECUTE lead_by_id(:'one');
RESET plan_cache_mode;
DEALLOCATE lead_by_id;
SELECT * FROM emulator_requests();

-- without a key: the listing, paged (pages overlap by one lead)
CREATE SERVER crm_small FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '4', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER crm_small OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE crm_leads_paged (id text, name text)
  SERVER crm_small OPTIONS (resource 'lead');
EXPLAIN (VERBOSE, COSTS OFF) SELECT name FROM crm_leads_paged WHERE name LIKE 'Plain%';
SELECT count(*), count(DISTINCT id) FROM crm_leads_paged;
SELECT * FROM emulator_requests();
-- leads without a key are searched (sorted by date_created, cursor paging),
-- so a lead updated while they are read neither moves nor is missed (the
-- /lead/ listing, newest update first, would shift under it)
CREATE TABLE crm_api (url text NOT NULL);
INSERT INTO crm_api VALUES (:'api_url');
CREATE FUNCTION crm_touch_lead(lead text) RETURNS boolean LANGUAGE plpgsql
SET client_min_messages = warning AS $$
DECLARE
  cmd text := format('curl -sS --fail -u api_test_key: -X PUT -H %s --data-binary %s %s',
                     '''Content-Type: application/json''', '''{"description": "touched"}''',
                     (SELECT url FROM crm_api) || '/lead/' || lead || '/');
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS crm_api_output (line text);
  EXECUTE format('COPY crm_api_output FROM PROGRAM %L WITH (FORMAT csv, QUOTE %L, DELIMITER %L)',
                 cmd, E'\x01', E'\x02');
  RETURN true;
END $$;
SELECT (array_agg(id))[1] AS first_lead, (array_agg(id))[10] AS last_lead
  FROM crm_leads_paged \gset
SELECT * FROM emulator_requests();
SELECT count(*), count(DISTINCT id) FROM crm_leads_paged
 WHERE id <> :'first_lead' OR crm_touch_lead(:'last_lead');
SELECT * FROM emulator_requests();
SELECT emulator_reset();
-- the whole record (no _fields), and the deprecated name-keyed "custom" object is not data
SELECT name, custom FROM crm_leads WHERE id = :'one';
SELECT * FROM emulator_requests();
CREATE FOREIGN TABLE crm_bad (id text, custom_dict text OPTIONS (field 'custom'))
  SERVER close OPTIONS (resource 'lead');
SELECT * FROM crm_bad;  -- ERROR
DROP FOREIGN TABLE crm_bad;
CREATE FOREIGN TABLE crm_good (id text, cf jsonb OPTIONS (field 'custom'))
  SERVER close OPTIONS (resource 'lead');
SELECT cf FROM crm_good WHERE id = :'one';
DROP FOREIGN TABLE crm_good;
SELECT * FROM emulator_requests();

-- the /lead/ listing's _skip cap does not bound a search: every lead is read
SELECT emulator_call('POST', '/_emulator/config', '{"lead_max_skip": 4}');
SELECT count(name) FROM crm_leads_paged;
SELECT * FROM emulator_requests();
SELECT emulator_reset();

-- count(*) is one count search of leads; ANALYZE counts and samples them
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM crm_leads_paged;
ANALYZE crm_leads_paged;

-- contacts: by lead (one listing per lead), by id, the listing
CREATE FOREIGN TABLE crm_contacts (
  id text, lead_id text, name text, title text, emails jsonb, phones jsonb,
  date_created timestamptz,
  nickname text OPTIONS (field 'custom.cf_ContactNickname0000000000000000000000000000')
) SERVER close OPTIONS (resource 'contact');
EXPLAIN (VERBOSE, COSTS OFF) SELECT name, title FROM crm_contacts WHERE lead_id = :'mixed';
SELECT name, title, emails FROM crm_contacts WHERE lead_id = :'mixed' ORDER BY name;
SELECT * FROM emulator_requests();
-- a custom field: every key (Close is not known to take custom.cf_ in a contact's _fields)
SELECT name, nickname, phones->0->>'phone' AS phone FROM crm_contacts
 WHERE id = 'cont_SheetJane0000000000000000000000000000000000';
SELECT * FROM emulator_requests();
SELECT count(*) FROM crm_contacts;
SELECT * FROM emulator_requests();
-- a custom field column must read a field of the resource's schema (one
-- GET /custom_field_schema/contact/ per backend and minute; a field missing
-- from the kept schema is looked for in a new one): a mistyped id is an
-- error, not NULLs
CREATE FOREIGN TABLE crm_contacts_typo (id text,
  nick text OPTIONS (field 'custom.cf_ContactNickame00000000000000000000000000000'))
  SERVER close OPTIONS (resource 'contact');
SELECT nick FROM crm_contacts_typo WHERE id = 'cont_SheetJane0000000000000000000000000000000000';  -- ERROR
DROP FOREIGN TABLE crm_contacts_typo;
SELECT * FROM emulator_requests();
-- without a key, searched (no _skip cap applies)
CREATE FOREIGN TABLE crm_contacts_paged (id text, name text)
  SERVER crm_small OPTIONS (resource 'contact');
SELECT count(id), count(DISTINCT id) FROM crm_contacts_paged;
SELECT * FROM emulator_requests();
SELECT emulator_call('POST', '/_emulator/config', '{"crm_max_skip": 8}');
SELECT count(id) FROM crm_contacts_paged;
SELECT * FROM emulator_requests();
SELECT emulator_reset();
-- a listing with filters (opportunities by a date range: the listing is
-- exact to the microsecond) is paged, pages overlapping by one record, and
-- past Close's _skip cap it is an error, never fewer rows
CREATE FOREIGN TABLE crm_opps_paged (id text, status_type text, date_updated timestamptz)
  SERVER crm_small OPTIONS (resource 'opportunity');
SELECT count(id), count(DISTINCT id) FROM crm_opps_paged
 WHERE status_type IN ('active', 'won', 'lost') AND date_updated > '2000-01-01 00:00+00';
SELECT * FROM emulator_requests();
SELECT emulator_call('POST', '/_emulator/config', '{"crm_max_skip": 4}');
SELECT count(*) FROM (SELECT id FROM crm_opps_paged
 WHERE status_type IN ('active', 'won', 'lost') AND date_updated > '2000-01-01 00:00+00' OFFSET 0) s;  -- ERROR
SELECT * FROM emulator_requests();
SELECT emulator_reset();

-- past the largest _skip Close takes (35,000, as on /lead/), a listing is an
-- error before asking for it, never fewer rows
SELECT emulator_call('POST', '/_emulator/crm/generate',
  format('{"lead_id": "%s", "contacts_per_lead": 35300}', :'empty'));
CREATE SERVER crm_big FOREIGN DATA WRAPPER close_fdw
  OPTIONS (api_url :'api_url', page_size '200');
CREATE USER MAPPING FOR CURRENT_USER SERVER crm_big OPTIONS (api_key 'api_test_key');
CREATE FOREIGN TABLE crm_contacts_big (id text, lead_id text)
  SERVER crm_big OPTIONS (resource 'contact');
SELECT count(*) FROM (SELECT id FROM crm_contacts_big WHERE lead_id = :'empty' OFFSET 0) s;  -- ERROR
SELECT count(*) AS requests, max(substring(r FROM '_skip=(\d+)')::int) AS last_skip
  FROM emulator_requests() r;
SELECT emulator_reset();

-- opportunities: money in cents as bigint, date_won a date
CREATE FOREIGN TABLE crm_opportunities (
  id text, lead_id text, lead_name text, status_id text, status_label text,
  status_type text, pipeline_id text, value bigint, value_period text,
  value_formatted text, confidence integer, expected_value bigint,
  annualized_value bigint, date_won date, date_lost timestamptz,
  user_id text, user_name text, note text,
  date_created timestamptz, date_updated timestamptz,
  seats numeric OPTIONS (field 'custom.cf_OppSeats00000000000000000000000000000000000')
) SERVER close OPTIONS (resource 'opportunity');
SELECT id, value, value_formatted, annualized_value, date_won, pg_typeof(date_won), seats
  FROM crm_opportunities WHERE lead_id = :'mixed' ORDER BY id;
SELECT * FROM emulator_requests();
-- with a timestamp range (which the listing applies exactly, a search by
-- whole days), the listing, and its other filters with it: status_type,
-- status_id, user_id (= and = ANY); every row is still checked here
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id, value FROM crm_opportunities
 WHERE status_type = 'won' AND user_id = ANY (ARRAY['user_Bob0000000000000000000000000000000000000000', 'user_Former0000000000000000000000000000000000000'])
   AND date_created >= '2020-09-01 08:00:00+00' AND date_updated < 'infinity';
SELECT id, value FROM crm_opportunities
 WHERE status_type = 'won' AND user_id = ANY (ARRAY['user_Bob0000000000000000000000000000000000000000', 'user_Former0000000000000000000000000000000000000'])
   AND date_created >= '2020-09-01 08:00:00+00' AND date_updated < 'infinity'
 ORDER BY id;
SELECT * FROM emulator_requests();
-- a bound to the microsecond, on the right of the operator too
SELECT id, date_created FROM crm_opportunities ORDER BY date_created;
SELECT * FROM emulator_requests();
SELECT id, date_created FROM crm_opportunities
 WHERE '2020-09-01 12:15:48.165+00' < date_created AND date_created <= '2020-09-01 13:24:01.009+00' ORDER BY id;
SELECT * FROM emulator_requests();
-- a parameter in a generic plan; NULL and an empty list ask nothing
PREPARE opp_by_status(text[]) AS
  SELECT id FROM crm_opportunities WHERE status_id = ANY ($1)
     AND date_updated < 'infinity' ORDER BY id;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE opp_by_status('{}');
EXECUTE opp_by_status(ARRAY['stat_Won0000000000000000000000000000000000000000', 'stat_Churned000000000000000000000000000000000000']);
EXECUTE opp_by_status('{}');
EXECUTE opp_by_status(NULL);
RESET plan_cache_mode;
DEALLOCATE opp_by_status;
SELECT * FROM emulator_requests();
-- what is not Close's meaning stays local: a case-insensitive collation, LIKE
SELECT count(*) FROM crm_opportunities WHERE status_type LIKE 'w%';
SELECT * FROM emulator_requests();
-- pipeline value by status
SELECT status_type, sum(value) AS cents, count(*) FROM crm_opportunities
 GROUP BY status_type ORDER BY status_type;
SELECT * FROM emulator_requests();

-- small resources: one listing, filtered here (statuses have no GET by id)
CREATE FOREIGN TABLE crm_users (
  id text, email text, first_name text, last_name text, organizations jsonb,
  date_created timestamptz
) SERVER close OPTIONS (resource 'user');
CREATE FOREIGN TABLE crm_lead_statuses (id text, label text, color text)
  SERVER close OPTIONS (resource 'lead_status');
CREATE FOREIGN TABLE crm_opportunity_statuses (id text, label text, type text, pipeline_id text)
  SERVER close OPTIONS (resource 'opportunity_status');
CREATE FOREIGN TABLE crm_pipelines (
  id text, name text, statuses jsonb, date_created timestamptz, date_updated timestamptz
) SERVER close OPTIONS (resource 'pipeline');
SELECT first_name, last_name, email FROM crm_users WHERE last_name <> 'Client' ORDER BY last_name;
SELECT * FROM emulator_requests();
SELECT email FROM crm_users WHERE id = 'user_Bob0000000000000000000000000000000000000000';
SELECT * FROM emulator_requests();
EXPLAIN (VERBOSE, COSTS OFF) SELECT label FROM crm_lead_statuses WHERE id = 'stat_Qualified0000000000000000000000000000000000';
SELECT label, color FROM crm_lead_statuses WHERE id = 'stat_Qualified0000000000000000000000000000000000';
SELECT * FROM emulator_requests();
SELECT label, type FROM crm_opportunity_statuses
 WHERE pipeline_id = 'pipe_Sales00000000000000000' ORDER BY label;
SELECT * FROM emulator_requests();
-- pipelines' timestamps come without an offset: UTC, whatever the TimeZone
SET TimeZone = 'America/New_York';
SELECT name, date_created, date_updated, jsonb_array_length(statuses) FROM crm_pipelines ORDER BY name;
RESET TimeZone;
SELECT name, date_created FROM crm_pipelines WHERE id = 'pipe_Sales00000000000000000';
SELECT * FROM emulator_requests();
-- the statement lists a small resource once, however often a nested loop rescans it
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
\set opp_ids '(''oppo_MixedWon00000000000000000000000000000000000'', ''oppo_MixedRenewal0000000000000000000000000000000'', ''oppo_OneMonthly000000000000000000000000000000000'')'
EXPLAIN (VERBOSE, COSTS OFF)
SELECT o.id, s.label FROM crm_opportunities o JOIN crm_opportunity_statuses s ON s.id = o.status_id
 WHERE o.id IN :opp_ids ORDER BY o.id;
SELECT o.id, s.label FROM crm_opportunities o JOIN crm_opportunity_statuses s ON s.id = o.status_id
 WHERE o.id IN :opp_ids ORDER BY o.id;
SELECT r FROM emulator_requests() r ORDER BY r;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;

-- joins that read naturally, parameterized: custom objects to their leads
-- (GET /lead/{id}/ per distinct lead), leads to their opportunities (one
-- listing per lead), opportunities to their users
EXPLAIN (VERBOSE, COSTS OFF)
SELECT co.name, l.name FROM close_custom_objects co JOIN crm_leads l ON l.id = co.lead_id
 WHERE co.lead_id IN (:'mixed', :'one');
SELECT co.name, l.name FROM close_custom_objects co JOIN crm_leads l ON l.id = co.lead_id
 WHERE co.lead_id IN (:'mixed', :'one') ORDER BY co.name;
SELECT r FROM emulator_requests() r ORDER BY r;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT l.name, o.value FROM crm_leads l JOIN crm_opportunities o ON o.lead_id = l.id
 WHERE l.id IN (:'mixed', :'sheet');
SELECT l.name, o.value FROM crm_leads l JOIN crm_opportunities o ON o.lead_id = l.id
 WHERE l.id IN (:'mixed', :'sheet') ORDER BY l.name, o.value;
SELECT r FROM emulator_requests() r ORDER BY r;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT o.id, u.first_name FROM crm_opportunities o LEFT JOIN crm_users u ON u.id = o.user_id
 WHERE o.lead_id IN (:'mixed', 'lead_Plain40000000000000000000000000000000000000');
SELECT o.id, u.first_name FROM crm_opportunities o LEFT JOIN crm_users u ON u.id = o.user_id
 WHERE o.lead_id IN (:'mixed', 'lead_Plain40000000000000000000000000000000000000') ORDER BY o.id;
SELECT r FROM emulator_requests() r ORDER BY r;
-- a user's columns by a lateral subquery: GET /user/{id}/ per distinct user
EXPLAIN (VERBOSE, COSTS OFF)
SELECT o.id, (SELECT u.first_name FROM crm_users u WHERE u.id = o.user_id)
  FROM crm_opportunities o WHERE o.lead_id IN (:'mixed', :'sheet');
SELECT o.id, (SELECT u.first_name FROM crm_users u WHERE u.id = o.user_id)
  FROM crm_opportunities o WHERE o.lead_id IN (:'mixed', :'sheet') ORDER BY o.id;
SELECT r FROM emulator_requests() r ORDER BY r;

-- planned requests: per id, per lead, a small listing's pages
SELECT line FROM explain_same('COSTS ON', $$SELECT * FROM crm_users$$) line WHERE line ~ 'Close Requests';
SELECT line FROM explain_same('COSTS ON', $$SELECT * FROM crm_opportunities WHERE lead_id = ANY (ARRAY[$$ || quote_literal(:'mixed') || $$, $$ || quote_literal(:'one') || $$])$$) line WHERE line ~ 'Close Requests';
SELECT line FROM explain_same('COSTS ON', $$SELECT * FROM crm_contacts WHERE id IN ('cont_a', 'cont_b', 'cont_c')$$) line WHERE line ~ 'Close Requests';

-- users are read-only
INSERT INTO crm_users (email) VALUES ('x@example.com');  -- ERROR
SELECT * FROM emulator_requests();
UPDATE crm_lead_statuses SET label = 'x' WHERE id = 'stat_Qualified0000000000000000000000000000000000';  -- ERROR
DELETE FROM crm_pipelines;  -- ERROR
SELECT * FROM emulator_requests();
