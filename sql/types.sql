-- types: JSON values into every supported column type; a missing key is
-- NULL; a value that does not fit is an error naming the column, the table
-- and the value.
\set VERBOSITY default
\set mixed 'lead_Mixed00000000000000000000000000000000000000'
SELECT emulator_reset();

-- typed columns over the Subscription type of the sample data
CREATE FOREIGN TABLE subscriptions (
  id text, lead_id text, name varchar(40),
  date_created timestamptz, date_updated timestamp(0),
  plan text OPTIONS (field 'custom.cf_SubscriptionPlan000000000000000000000000000'),
  terms text OPTIONS (field 'custom.cf_SubscriptionTerms00000000000000000000000000'),
  amount numeric OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  amount_f float8 OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  balance numeric OPTIONS (field 'custom.cf_SubscriptionBalance000000000000000000000000'),
  start_date date OPTIONS (field 'custom.cf_SubscriptionStart00000000000000000000000000'),
  renewed timestamptz OPTIONS (field 'custom.cf_SubscriptionRenewed000000000000000000000000'),
  status text OPTIONS (field 'custom.cf_cSh3fWT3rEJ1BFSezme2YAG6bPrZV5wUWKKrW4iN19g'),
  legacy jsonb OPTIONS (field 'custom.cf_SubscriptionLegacy0000000000000000000000000'),
  labels text[] OPTIONS (field 'custom.cf_SubscriptionLabels0000000000000000000000000'),
  channels varchar(10)[] OPTIONS (field 'custom.cf_SubscriptionChannels00000000000000000000000'),
  labels_json json OPTIONS (field 'custom.cf_SubscriptionLabels0000000000000000000000000')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');

SET TimeZone = 'UTC';
SELECT * FROM subscriptions WHERE lead_id = :'mixed' ORDER BY id \gx
SELECT * FROM emulator_requests();

-- values are exact: numbers keep their digits, arrays their elements
SELECT name, amount + 0.5 AS amount_plus, balance * 2 AS balance_twice,
       start_date + 1 AS next_day, labels[2], array_length(labels, 1) AS n_labels,
       channels @> ARRAY['sms'::varchar] AS has_sms, legacy = 'true' AS legacy_true
  FROM subscriptions WHERE lead_id = :'mixed' ORDER BY id;

-- timestamptz is an instant; timestamp shows it as UTC wall time whatever TimeZone
SET TimeZone = 'America/New_York';
SELECT name, renewed, date_updated FROM subscriptions WHERE lead_id = :'mixed' ORDER BY id;
RESET TimeZone;

-- the custom jsonb column holds every custom.* key, keyed by field id; a
-- record without custom values gives an empty object
SELECT name, custom ? 'cf_SubscriptionPlan000000000000000000000000000' AS has_plan,
       custom -> 'cf_SubscriptionLabels0000000000000000000000000' AS labels,
       custom ->> 'cf_cSh3fWT3rEJ1BFSezme2YAG6bPrZV5wUWKKrW4iN19g' AS status
  FROM close_custom_objects WHERE lead_id = :'mixed' ORDER BY id;

-- hand-written records served by the emulator, one value of each kind
CREATE FOREIGN TABLE typed (
  id text, lead_id text,
  -- keys of these hand-written records only: named by "field" options
  t text OPTIONS (field 't'), vc varchar(5) OPTIONS (field 'vc'), n numeric OPTIONS (field 'n'), i2 int2 OPTIONS (field 'i2'), i4 int4 OPTIONS (field 'i4'),
  i8 int8 OPTIONS (field 'i8'), f4 float4 OPTIONS (field 'f4'), f8 float8 OPTIONS (field 'f8'), b bool OPTIONS (field 'b'), d date OPTIONS (field 'd'), ts timestamp OPTIONS (field 'ts'),
  tstz timestamptz OPTIONS (field 'tstz'), j json OPTIONS (field 'j'), jb jsonb OPTIONS (field 'jb'), ta text[] OPTIONS (field 'ta'), na numeric[] OPTIONS (field 'na'), ia int4[] OPTIONS (field 'ia'),
  custom jsonb, other_custom json OPTIONS (field 'custom')
) SERVER close;

CREATE FUNCTION serve_records(records text) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object(
    'path_prefix', '/api/v1/custom_object/', 'action', 'status', 'status', 200,
    'body', '{"data": ' || records || ', "has_more": false}', 'times', 1));
$$;

SELECT serve_records($$[
 {"id": "custobj_a", "lead_id": "lead_x", "t": "Zürich ✓ \"quoted\" \\ back", "vc": "short",
  "n": 12345678901234567890.123456789, "i2": 32767, "i4": 12.0, "i8": 9007199254740993,
  "f4": 1.5, "f8": -2.5e-3, "b": true, "d": "2024-02-29", "ts": "2020-07-27T21:28:39.765523",
  "tstz": "2020-07-27T21:28:39.765523", "j": {"a": [1, 2.50, null]}, "jb": "just a string",
  "ta": ["x", null, "z"], "na": [1, 2.5, -3e2], "ia": [], "custom.cf_one": 1, "custom.cf_two": "deux"},
 {"id": "custobj_b", "lead_id": "lead_x", "t": 42, "n": "7.25", "i4": "12", "b": "false",
  "d": "2020-08-04T23:30:00-05:00", "ts": "2020-08-04T16:45:35.367000+02:00",
  "tstz": "2020-08-04T16:45:35.367000+02:00", "j": null, "jb": [1, "two"], "ta": [], "f8": 1e300},
 {"id": "custobj_c", "lead_id": "lead_x", "t": {"nested": true}, "b": false, "jb": 3.14159}
]$$);
SELECT id, t, vc, n, i2, i4, i8, f4, f8, b, d, ts, tstz, j, jb, ta, na, ia, custom, other_custom
  FROM typed WHERE lead_id = 'lead_x' ORDER BY id \gx

-- a value that does not fit is an error, never a NULL
SELECT serve_records('[{"id": "custobj_e", "n": "twelve"}]');
SELECT n FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "i4": 12.5}]');
SELECT i4 FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "i2": 40000}]');
SELECT i2 FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "i8": 123456789012345678901234567890}]');
SELECT i8 FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "n": true}]');
SELECT n FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "b": 1}]');
SELECT b FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "d": "not a date"}]');
SELECT d FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "tstz": 1596559535}]');
SELECT tstz FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "vc": "too long for five"}]');
SELECT vc FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "ta": "not an array"}]');
SELECT ta FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "na": [1, "x"]}]');
SELECT na FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "ia": [[1, 2]]}]');
SELECT ia FROM typed WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_e", "t": "nul\u0000inside"}]');
SELECT t FROM typed WHERE lead_id = 'lead_x';  -- ERROR
-- a column the query does not use is not converted
SELECT serve_records('[{"id": "custobj_e", "n": "twelve"}]');
SELECT id FROM typed WHERE lead_id = 'lead_x';
SELECT * FROM emulator_requests();

-- domains: checked on every row (their check's cache must outlive a row)
CREATE DOMAIN recent_ts AS timestamptz CHECK (VALUE > '2000-01-01');
CREATE DOMAIN yes_no AS bool;
CREATE DOMAIN short_labels AS text[] CHECK (cardinality(VALUE) < 3);
CREATE FOREIGN TABLE typed_domains (id text, lead_id text, ts recent_ts OPTIONS (field 'ts'),
  b yes_no OPTIONS (field 'b'), labels short_labels OPTIONS (field 'labels'))
  SERVER close;
SELECT serve_records('[{"id": "custobj_1", "ts": "2020-01-01T00:00:00+00:00", "b": true, "labels": ["a"]},
                       {"id": "custobj_2", "ts": "2021-01-01T00:00:00+00:00", "b": false, "labels": []},
                       {"id": "custobj_3", "ts": "1999-01-01T00:00:00+00:00", "b": true, "labels": ["a", "b"]}]');
SELECT id, ts, b, labels FROM typed_domains WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_1", "labels": ["a"]}, {"id": "custobj_2", "labels": ["a", "b", "c"]}]');
SELECT id, labels FROM typed_domains WHERE lead_id = 'lead_x';  -- ERROR
SELECT serve_records('[{"id": "custobj_1", "ts": "2020-01-01T00:00:00+00:00", "b": true}, {"id": "custobj_2", "ts": "2022-02-02T00:00:00+00:00", "b": false}]');
SELECT id, ts, b FROM typed_domains WHERE lead_id = 'lead_x' ORDER BY id;
SELECT count(*) FROM emulator_requests();
