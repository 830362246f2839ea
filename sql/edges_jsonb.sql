-- edges_jsonb: a jsonb column and the custom map (jsonb) are built from the
-- parsed answer, not from JSON text: the value is the one jsonb_in gives for
-- the same JSON (compared here with the json column's text cast to jsonb),
-- for every kind of value; NaN and Infinity, which are not JSON, and a
-- string with \u0000 are errors
\set VERBOSITY default
SELECT emulator_reset();
CREATE FUNCTION jb_serve(records text) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object(
    'path_prefix', '/api/v1/custom_object/', 'action', 'status', 'status', 200,
    'body', '{"data": ' || records || ', "has_more": false}', 'times', 1));
$$;
CREATE DOMAIN small_jsonb AS jsonb CHECK (length(VALUE::text) < 40);
CREATE FOREIGN TABLE jb (
  id text, lead_id text,
  future jsonb OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  future_json json OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  futures jsonb[] OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  small small_jsonb OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  custom jsonb,
  custom_json json OPTIONS (field 'custom')
) SERVER close OPTIONS (custom_object_type_id 'cotype_Subscription0000000000');

-- every kind of value, nested, with escapes, non-ASCII, repeated keys,
-- numbers of every form, empty containers and scalars at the top (no
-- emoji in what is shown: psql's width for one differs between versions;
-- edges_json compares a surrogate pair instead)
SELECT jb_serve($$[
 {"id": "custobj_a", "lead_id": "lead_x",
  "custom.cf_SubscriptionPlan000000000000000000000000000": "tab\there \"quoted\" \\ back\/slash \u00e9\u2713 \u001f",
  "custom.cf_SubscriptionAmount0000000000000000000000000": -0.000120e+5,
  "custom.cf_SubscriptionFuture0000000000000000000000000": {"z": 1, "a": [true, false, null, [], {}, "", 0, -0, 1.0, 1E2, 123456789012345678901234567890, -9223372036854775809, 9223372036854775807],
      "m": {"b": {"c": [[["deep"]]]}}, "a": "repeated key: the last one counts", "": "empty key"}},
 {"id": "custobj_b", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": "a string"},
 {"id": "custobj_c", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": 18446744073709551616},
 {"id": "custobj_d", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": true},
 {"id": "custobj_e", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": [1.50, "x", {"k": null}]},
 {"id": "custobj_f", "lead_id": "lead_x"}
]$$);
SELECT id, future, custom,
       future IS NOT DISTINCT FROM future_json::text::jsonb AS future_same,
       custom = custom_json::text::jsonb AS custom_same,
       custom::text = custom_json::text::jsonb::text AS custom_same_text
  FROM jb WHERE lead_id = 'lead_x' ORDER BY id \gx
-- a jsonb[] column takes each element of an array; a domain is checked
SELECT jb_serve($$[{"id": "custobj_e", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": [1.50, "x", {"k": null}]}]$$);
SELECT futures, small FROM jb WHERE lead_id = 'lead_x';
SELECT jb_serve($$[{"id": "custobj_e", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": ["a long value that the domain refuses"]}]$$);
SELECT small FROM jb WHERE lead_id = 'lead_x';  -- ERROR

-- NaN and Infinity (json-c reads them) are not JSON: an error in jsonb, as
-- jsonb_in says, in a jsonb column and in the custom map
SELECT jb_serve($$[{"id": "custobj_n", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": [1, NaN]}]$$);
SELECT future FROM jb WHERE lead_id = 'lead_x';  -- ERROR
SELECT jb_serve($$[{"id": "custobj_n", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": {"v": -Infinity}}]$$);
SELECT custom FROM jb WHERE lead_id = 'lead_x';  -- ERROR
-- a string with \u0000 cannot be stored, as in any column
SELECT jb_serve($$[{"id": "custobj_z", "lead_id": "lead_x", "custom.cf_SubscriptionFuture0000000000000000000000000": {"v": "nul\u0000inside"}}]$$);
SELECT custom FROM jb WHERE lead_id = 'lead_x';  -- ERROR
SELECT count(*) AS requests FROM emulator_log_entries();
