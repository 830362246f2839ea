-- writes: INSERT, UPDATE and DELETE become POST, PUT and DELETE with
-- exactly the fields the statement gives; RETURNING shows what Close
-- stored; what Close would refuse is refused before any request.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();

CREATE FOREIGN TABLE subs (
  id text, lead_id text, name text, custom_object_type_id text,
  date_created timestamptz, date_updated timestamptz, created_by text,
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  amount_int int OPTIONS (field 'custom.cf_SubscriptionBalance000000000000000000000000'),
  start_date date OPTIONS (field 'custom.cf_SubscriptionStart00000000000000000000000000'),
  renewed timestamptz OPTIONS (field 'custom.cf_SubscriptionRenewed000000000000000000000000'),
  labels text[] OPTIONS (field 'custom.cf_SubscriptionLabels0000000000000000000000000'),
  legacy bool OPTIONS (field 'custom.cf_SubscriptionLegacy0000000000000000000000000'),
  status text OPTIONS (field 'custom.cf_cSh3fWT3rEJ1BFSezme2YAG6bPrZV5wUWKKrW4iN19g')
    DEFAULT 'active',
  custom jsonb,
  note text OPTIONS (field 'note')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');

-- INSERT sends the columns the statement supplies, a DEFAULT counts, NULL
-- custom values are not sent (a missing key means not set), the type comes
-- from the table option;
-- RETURNING shows what Close stored
SET TimeZone = 'Europe/Berlin';
SET DateStyle = 'SQL, DMY';
INSERT INTO subs (lead_id, name, plan, amount, start_date, renewed, labels, legacy, amount_int)
VALUES (:'one', 'First', 'Gold', 12.50, '2024-02-29', '2024-03-01 10:00:00.123456+02',
        ARRAY['a', 'Zürich ✓', 'say "hi"'], true, NULL)
RETURNING id, name, custom_object_type_id, date_created, created_by, amount, start_date,
          renewed, labels, legacy, status, custom ->> 'cf_SubscriptionPlan000000000000000000000000000' AS plan_in_custom;
RESET TimeZone;
RESET DateStyle;
SELECT * FROM emulator_requests();

-- the custom jsonb column sends one field per key (a null one: none)
INSERT INTO subs (lead_id, name, custom)
VALUES (:'one', 'Second', '{"cf_SubscriptionPlan000000000000000000000000000": "Silver", "cf_SubscriptionStart00000000000000000000000000": null}')
RETURNING name, plan, start_date, status;
SELECT * FROM emulator_requests();

-- refused before any request
INSERT INTO subs (lead_id, plan) VALUES (:'one', 'x');  -- ERROR
INSERT INTO subs (name, plan) VALUES ('no lead', 'x');  -- ERROR
INSERT INTO subs (lead_id, name, id) VALUES (:'one', 'x', 'custobj_abc');  -- ERROR
INSERT INTO subs (lead_id, name, date_created) VALUES (:'one', 'x', now());  -- ERROR
INSERT INTO subs (lead_id, name, note) VALUES (:'one', 'x', 'not a Close field');  -- ERROR
INSERT INTO subs (lead_id, name, custom_object_type_id) VALUES (:'one', 'x', 'cotype_Device0000000000000000');  -- ERROR
INSERT INTO subs (lead_id, name, plan, custom)
VALUES (:'one', 'x', 'Gold', '{"cf_SubscriptionPlan000000000000000000000000000": "Silver"}');  -- ERROR
INSERT INTO subs (lead_id, name, custom) VALUES (:'one', 'x', '[1, 2]');  -- ERROR
INSERT INTO subs (lead_id, name, amount) VALUES (:'one', 'x', 'NaN');  -- ERROR
INSERT INTO subs (lead_id, name, start_date) VALUES (:'one', 'x', 'infinity');  -- ERROR
INSERT INTO subs (lead_id, name) VALUES (:'one', 'x') ON CONFLICT DO NOTHING;  -- ERROR
-- NULL in a read-only or unmapped column is not sent, and not an error;
-- NULL in a custom field is not sent on create
INSERT INTO subs (lead_id, name, id, note, status) VALUES (:'one', 'Third', NULL, NULL, NULL)
RETURNING name, status;
SELECT * FROM emulator_requests();

-- a 400 lists Close's field errors with the columns they belong to
INSERT INTO subs (lead_id, name, status) VALUES (:'one', 'x', 'nope');  -- ERROR
INSERT INTO subs (lead_id, name, custom) VALUES (:'one', 'x', '{"cf_NoSuchField0000000000000000000000000000": 1}');  -- ERROR
SELECT count(*) FROM emulator_requests();

-- UPDATE sends only the assigned columns; null clears a field
EXPLAIN (COSTS OFF)
UPDATE subs SET plan = 'Platinum' WHERE lead_id = :'one' AND name = 'First';
UPDATE subs SET plan = 'Platinum', amount = amount * 2, labels = NULL, legacy = false,
                renewed = '2025-01-01 00:00:00+00'
 WHERE lead_id = :'one' AND name = 'First'
RETURNING name, plan, amount, labels, legacy, renewed, date_updated > date_created AS touched;
SELECT * FROM emulator_requests();
-- the custom jsonb column replaces the fields it names, and only those
UPDATE subs SET custom = '{"cf_SubscriptionPlan000000000000000000000000000": "Bronze", "cf_SubscriptionStart00000000000000000000000000": "2020-01-01"}'
 WHERE lead_id = :'one' AND name = 'First'
RETURNING name, plan, start_date, amount, status;
SELECT * FROM emulator_requests();

-- changes Close would not take are refused before any request
UPDATE subs SET lead_id = 'lead_Mixed00000000000000000000000000000000000000' WHERE lead_id = :'one';  -- ERROR
UPDATE subs SET custom_object_type_id = 'cotype_Device0000000000000000' WHERE lead_id = :'one';  -- ERROR
UPDATE subs SET date_created = now() WHERE lead_id = :'one';  -- ERROR
UPDATE subs SET id = 'custobj_x' WHERE lead_id = :'one';  -- ERROR
UPDATE subs SET note = 'x' WHERE lead_id = :'one';  -- ERROR
UPDATE subs SET name = NULL WHERE lead_id = :'one' AND name = 'Third';  -- ERROR
UPDATE subs SET custom = NULL WHERE lead_id = :'one' AND name = 'Third';  -- ERROR
SELECT * FROM emulator_requests();

-- DELETE: 204, or 200 with {} from older resources; RETURNING shows the row as read
EXPLAIN (COSTS OFF)
DELETE FROM subs WHERE lead_id = :'one' AND name = 'Second';
DELETE FROM subs WHERE lead_id = :'one' AND name = 'Second' RETURNING name, plan, status;
SELECT emulator_fault('{"method": "DELETE", "action": "status", "status": 200, "body": "{}", "times": 1}');
DELETE FROM subs WHERE lead_id = :'one' AND name = 'Third';
SELECT * FROM emulator_requests();
-- a record gone between the read and the write is not counted
SELECT emulator_fault('{"method": "DELETE", "action": "status", "status": 404, "body": "{\"error\": \"Object not found\"}", "times": 1}');
DELETE FROM subs WHERE lead_id = :'one' AND name = 'First';
SELECT emulator_fault('{"method": "PUT", "action": "status", "status": 404, "body": "{\"error\": \"Object not found\"}", "times": 1}');
UPDATE subs SET plan = 'x' WHERE lead_id = :'one' AND name = 'First';
SELECT name, plan FROM subs WHERE lead_id = :'one' ORDER BY name;
DELETE FROM subs WHERE lead_id = :'one';
SELECT count(*) FROM subs WHERE lead_id = :'one';
SELECT emulator_clear();

-- a table without an id column can be read and inserted into, not updated
CREATE FOREIGN TABLE no_id (lead_id text, name text, custom_object_type_id text) SERVER close;
INSERT INTO no_id VALUES (:'one', 'No id', 'cotype_Device0000000000000000');
SELECT name FROM no_id WHERE lead_id = :'one' ORDER BY name;
UPDATE no_id SET name = 'x' WHERE lead_id = :'one';  -- ERROR
DELETE FROM no_id WHERE lead_id = :'one';  -- ERROR
SELECT * FROM emulator_requests();
