-- perf_json: what the one strict pass over an answer guarantees, now that
-- it also checks the UTF-8 (json-c's own second pass is gone) and tells
-- where in a page each integer beyond 64 bits is (so that they are made
-- exact again without walking the whole page).
\set VERBOSITY default
SELECT emulator_reset();

CREATE FOREIGN TABLE pj (
  id text, lead_id text, name text,
  amount_text text OPTIONS (field 'custom.cf_SubscriptionAmount0000000000000000000000000'),
  future_text text OPTIONS (field 'custom.cf_SubscriptionFuture0000000000000000000000000'),
  custom_json json OPTIONS (field 'custom')
) SERVER close;

-- a page whose body is given as text, or as raw bytes around one string
CREATE FUNCTION pj_serve(records text) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object(
    'path_prefix', '/api/v1/custom_object/', 'action', 'status', 'status', 200,
    'body', '{"data": ' || records || ', "has_more": false}', 'times', 1));
$$;
CREATE FUNCTION pj_serve_bytes(name_hex text) RETURNS void LANGUAGE sql AS $$
  SELECT emulator_fault(jsonb_build_object(
    'path_prefix', '/api/v1/custom_object/', 'action', 'status', 'status', 200,
    'body_hex',
    encode(convert_to('{"data": [{"id": "custobj_a", "lead_id": "lead_x", "name": "ok", "notes": "', 'UTF8'), 'hex')
    || name_hex ||
    encode(convert_to('"}], "has_more": false}', 'UTF8'), 'hex'),
    'times', 1));
$$;

-- UTF-8 of every length reads back as it was sent
SELECT pj_serve_bytes(encode(convert_to('Zürich ✓ 😀', 'UTF8'), 'hex'));
SELECT id, name FROM pj WHERE lead_id = 'lead_x';
-- bytes that are not UTF-8 are refused, even in a key no column reads: a
-- stray byte, a sequence cut short, an overlong form ("/" in two bytes), an
-- encoded UTF-16 surrogate, a code point beyond U+10FFFF
SELECT pj_serve_bytes('ff');
SELECT id FROM pj WHERE lead_id = 'lead_x';  -- ERROR
SELECT pj_serve_bytes('c3');
SELECT id FROM pj WHERE lead_id = 'lead_x';  -- ERROR
SELECT pj_serve_bytes('c0af');
SELECT id FROM pj WHERE lead_id = 'lead_x';  -- ERROR
SELECT pj_serve_bytes('eda080');
SELECT id FROM pj WHERE lead_id = 'lead_x';  -- ERROR
SELECT pj_serve_bytes('f4908080');
SELECT id FROM pj WHERE lead_id = 'lead_x';  -- ERROR

-- integers beyond 64 bits, in some items of a page and not others, as a
-- member, nested in a member, and under a key written with an escape: each
-- reads back as written (as text, where a lost digit or a stray "." would show)
SELECT pj_serve($$[
 {"id": "custobj_1", "lead_id": "lead_x",
  "custom.cf_SubscriptionAmount0000000000000000000000000": 98765432109876543210987654321},
 {"id": "custobj_2", "lead_id": "lead_x",
  "custom.cf_SubscriptionAmount0000000000000000000000000": 7},
 {"id": "custobj_3", "lead_id": "lead_x",
  "custom.cf_SubscriptionFuture0000000000000000000000000": {"a": [1, -18446744073709551616]},
  "custom.cf_SubscriptionAmount0000000000000000000000000": -0},
 {"id": "custobj_4", "lead_id": "lead_x",
  "\u0063ustom.cf_SubscriptionAmount0000000000000000000000000": 123456789012345678901234567890},
 {"id": "custobj_5", "lead_id": "lead_x",
  "custom.cf_SubscriptionAmount0000000000000000000000000": 1, "name": "x",
  "custom.cf_SubscriptionAmount0000000000000000000000000": 99999999999999999999}
]$$);
SELECT id, amount_text, future_text, custom_json FROM pj WHERE lead_id = 'lead_x' ORDER BY id;

DROP FUNCTION pj_serve_bytes(text);
DROP FUNCTION pj_serve(text);
DROP FOREIGN TABLE pj;
