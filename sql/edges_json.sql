-- edges_json: every number keeps the digits it was written with, integers
-- beyond 64 bits included, on every path (typed columns, text, json and
-- jsonb columns, the custom map, and the bodies INSERT and UPDATE send);
-- a lone UTF-16 surrogate and a date that is not ISO 8601 are errors.
\set VERBOSITY default
\set one 'lead_One0000000000000000000000000000000000000000'
SELECT emulator_reset();

CREATE FUNCTION ej_serve(records text) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object(
    'path_prefix', '/api/v1/custom_object/', 'action', 'status', 'status', 200,
    'body', '{"data": ' || records || ', "has_more": false}', 'times', 1));
$$;

-- the Subscription type: Amount is a number field, Future a field of a
-- type close_fdw does not know (any JSON value)
CREATE FOREIGN TABLE ej (
  id text, lead_id text, name text,
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  amount_text text OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  balance int8 OPTIONS (field 'custom.cf_SubscriptionBalance000000000000000000000000'),
  future jsonb OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  future_json json OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  future_text text OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  custom jsonb,
  custom_json json OPTIONS (field 'custom')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');
CREATE FOREIGN TABLE ej_nums (
  id text, lead_id text,
  nums numeric[] OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  custom jsonb
) SERVER close;

-- reading: integers beyond 64 bits (json-c saturates them), the int64
-- limits themselves, and decimals, in every kind of column
SELECT ej_serve($$[
 {"id": "custobj_big", "lead_id": "lead_x", "name": "big",
  "custom.cf_SubscriptionAmount0000000000000000000000000": 98765432109876543210987654321,
  "custom.cf_SubscriptionBalance000000000000000000000000": 9223372036854775807,
  "custom.cf_SubscriptionFuture0000000000000000000000000": [1, -98765432109876543210987654321,
     9223372036854775807, 9223372036854775808, -9223372036854775808, -9223372036854775809,
     18446744073709551615, 18446744073709551616, 1.50, -0.0, 1E+2, 12345678901234567890123.5]},
 {"id": "custobj_neg", "lead_id": "lead_x", "name": "neg",
  "custom.cf_SubscriptionAmount0000000000000000000000000": -123456789012345678901234567890,
  "custom.cf_SubscriptionBalance000000000000000000000000": -9223372036854775808,
  "custom.cf_SubscriptionFuture0000000000000000000000000": {"deep": [[99999999999999999999, -0, 0]]}}
]$$);
SELECT id, amount, amount_text, balance, future, future_json, future_text, custom, custom_json
  FROM ej WHERE lead_id = 'lead_x' ORDER BY id \gx
-- the values compare exactly
SELECT ej_serve($$[
 {"id": "custobj_big", "lead_id": "lead_x",
  "custom.cf_SubscriptionAmount0000000000000000000000000": 98765432109876543210987654321,
  "custom.cf_SubscriptionFuture0000000000000000000000000": [18446744073709551616, -9223372036854775809]}
]$$);
SELECT nums, nums = ARRAY[18446744073709551616, -9223372036854775809]::numeric[] AS array_exact,
       (custom -> 'cf_SubscriptionAmount0000000000000000000000000')::numeric
         = 98765432109876543210987654321 AS custom_exact
  FROM ej_nums WHERE lead_id = 'lead_x';
-- an integer column refuses what it cannot hold, naming the value as written
SELECT ej_serve($$[{"id": "custobj_big", "custom.cf_SubscriptionBalance000000000000000000000000": 9223372036854775808}]$$);
SELECT balance FROM ej WHERE lead_id = 'lead_x';  -- ERROR
SELECT * FROM emulator_requests();

-- writing: INSERT sends the digits of the custom map exactly (see the
-- body in the request log), and Close's answer reads back exactly
INSERT INTO ej (lead_id, name, custom)
VALUES (:'one', 'Big', '{"cf_SubscriptionAmount0000000000000000000000000": 98765432109876543210987654321,
                         "cf_SubscriptionFuture0000000000000000000000000": {"v": [1, -98765432109876543210987654321, 9223372036854775808, 1.50]}}')
RETURNING name, amount, future, custom;
SELECT * FROM emulator_requests();
-- a json column and a numeric column send their digits too
INSERT INTO ej (lead_id, name, amount, future_json)
VALUES (:'one', 'Big json', 123456789012345678901234567890.25, '{"v": [18446744073709551616, {"n": -18446744073709551616}]}')
RETURNING name, amount, future;
SELECT * FROM emulator_requests();

-- UPDATE ... SET custom = custom || ...: the fields nobody touched go back
-- exactly as they were read
UPDATE ej SET custom = custom || '{"cf_SubscriptionPlan000000000000000000000000000": "Gold"}'
 WHERE lead_id = :'one' AND name = 'Big'
RETURNING name, amount, future, custom ->> 'cf_SubscriptionPlan000000000000000000000000000' AS plan;
SELECT * FROM emulator_requests();
SELECT name, amount, amount_text, future_text, custom
  FROM ej WHERE lead_id = :'one' AND name LIKE 'Big%' ORDER BY name;
SELECT emulator_clear();

-- a lone UTF-16 surrogate escape is refused (json-c would make it U+FFFD);
-- a pair is one character
CREATE FOREIGN TABLE ej_typed (
  id text, lead_id text, t text OPTIONS (field 't'), j jsonb OPTIONS (field 'j'), d date OPTIONS (field 'd'), ts timestamp OPTIONS (field 'ts'), tstz timestamptz OPTIONS (field 'tstz')
) SERVER close;
SELECT ej_serve($$[{"id": "custobj_s", "t": "pair \ud83d\ude00 ok", "j": ["\ud83d\ude00"]}]$$);
-- (compared, not shown: psql's width of an emoji differs between versions)
SELECT t = 'pair ' || U&'\+01F600' || ' ok' AS t_is_pair, length(t) AS t_length,
       j = jsonb_build_array(U&'\+01F600') AS j_is_pair
  FROM ej_typed WHERE lead_id = 'lead_x';
SELECT ej_serve($$[{"id": "custobj_s", "t": "high \ud83d alone"}]$$);
SELECT t FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_s", "t": "low \ude00 alone"}]$$);
SELECT t FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_s", "t": "high then other \ud83d\u0041"}]$$);
SELECT t FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_s", "j": {"k": "\ud83d"}}]$$);
SELECT j FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR

-- dates and timestamps: ISO 8601 with an offset, or without one (UTC);
-- a zone name or any other form is an error, not a guess
SET TimeZone = 'America/New_York';
SET DateStyle = 'ISO';
SELECT ej_serve($$[
 {"id": "custobj_1", "d": "2020-08-04", "ts": "2020-08-04T16:45:35Z", "tstz": "2020-08-04T16:45:35+0530"},
 {"id": "custobj_2", "d": "2020-08-04T23:30:00-05:00", "ts": "2020-08-04 16:45", "tstz": "2020-08-04T16:45:35.5-05"},
 {"id": "custobj_3", "d": "2020-08-04T01:00:00+02:00", "ts": "2020-08-04", "tstz": "2020-08-04t16:45:35.123456z"}
]$$);
SELECT id, d, ts, tstz FROM ej_typed WHERE lead_id = 'lead_x' ORDER BY id;
SELECT ej_serve($$[{"id": "custobj_z", "tstz": "2020-08-04T16:45:35 Europe/Paris"}]$$);
SELECT tstz FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_z", "tstz": "2020-08-04 16:45:35 EST"}]$$);
SELECT tstz FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_z", "ts": "2020-08-04T16:45:35 UTC"}]$$);
SELECT ts FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_z", "tstz": "Tue Aug 04 16:45:35 2020"}]$$);
SELECT tstz FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_z", "tstz": "infinity"}]$$);
SELECT tstz FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_z", "d": "08/04/2020"}]$$);
SELECT d FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_z", "d": "today"}]$$);
SELECT d FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT ej_serve($$[{"id": "custobj_z", "d": "2020-08-04 Europe/Paris"}]$$);
SELECT d FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
-- the right shape with an impossible value is PostgreSQL's error
SELECT ej_serve($$[{"id": "custobj_z", "tstz": "2020-02-30T10:00:00Z"}]$$);
SELECT tstz FROM ej_typed WHERE lead_id = 'lead_x';  -- ERROR
RESET TimeZone;
RESET DateStyle;

SELECT emulator_reset();
DROP FOREIGN TABLE ej, ej_nums, ej_typed;
DROP FUNCTION ej_serve(text);
