/*-------------------------------------------------------------------------
 *
 * json.c
 *		  The only user of json-c: parses API answers, walks pages and
 *		  records, and reads the API's error bodies.  A parsed document is
 *		  owned by a memory context, whose reset frees it, so no error path
 *		  can leak one.
 *
 * This file must not include utils/builtins.h: json-c's "json_object"
 * typedef clashes with the SQL function of that name declared there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include <json-c/json.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "close_fdw.h"

#define CLOSE_JSON_MAX_DEPTH	64

static void
free_document(void *arg)
{
	json_object_put((json_object *) arg);
}

/*
 * The strict JSON grammar (RFC 8259) is checked here, not by json-c's
 * JSON_TOKENER_STRICT, whose meaning changed between releases: from 0.17
 * on it refuses a whole document for one integer beyond 64 bits, and 0.17
 * and 0.18 refuse any non-ASCII character in a string.  json-c then only
 * builds the tree of a text known to be strict JSON, and checks its UTF-8.
 * The problems are named as json-c names them.  This pass also refuses
 * what json-c would change silently: a lone UTF-16 surrogate escape (which
 * json-c turns into U+FFFD; PostgreSQL refuses it too).
 *
 * Numbers keep the digits they were written with.  json-c keeps the text
 * of a number with a fraction or an exponent (json_object_new_double_s),
 * but reads an integer into 64 bits, saturating one beyond (and writes -0
 * as 0).  So this pass notes every integer literal outside int64 (and -0);
 * only then is the text copied with a '.' after each of them, which json-c
 * (not in strict mode) reads as a double whose text is the literal and the
 * '.', and restore_big_integers drops the '.' again.  No strict JSON
 * number ends in '.', so no other number is touched, and every number
 * json-c reads as an int is exact.
 */
/*
 * An integer beyond 64 bits: where it ends (an offset from the text's
 * start), and where it is in a listing page, so that restore_big_integers
 * need not walk the whole document: the index of the "data" item holding
 * it (-1: not in one) and the key of that item's member holding it (as
 * written, quotes excluded; NULL: not in a member, or a key with escapes).
 */
typedef struct JsonBig
{
	size_t		end;
	int			element;
	const char *key;
	int			key_len;
} JsonBig;

typedef struct JsonCheck
{
	const char *start;
	const char *p;
	const char *end;
	const char *error;
	/* the integers beyond 64 bits */
	JsonBig    *bigs;
	int			nbigs;
	int			maxbigs;
	/* the "data" item being checked (-1: none), and its member's key */
	int			element;
	const char *member_key;
	int			member_key_len;
	/*
	 * What a listing page's root object says, for close_json_peek_page:
	 * its "data" array's length (-1: no such array) and its "has_more"
	 * literal (-1: not a boolean).  in_data: the value being checked is the
	 * root object's "data" member.
	 */
	int			data_length;
	int			has_more;
	bool		in_data;
} JsonCheck;

static const char *const json_ends_early = "the body ends before the JSON value does";
static const char *const json_lone_surrogate = "a string holds a lone UTF-16 surrogate escape";
static const char *const json_bad_utf8 = "invalid utf-8 string";

static bool json_check_value(JsonCheck *jc, int depth);
static bool json_check_literal(JsonCheck *jc, const char *word);

static bool
json_check_fail(JsonCheck *jc, const char *error)
{
	jc->error = jc->p >= jc->end ? json_ends_early : error;
	return false;
}

static void
json_check_space(JsonCheck *jc)
{
	while (jc->p < jc->end &&
		   (*jc->p == ' ' || *jc->p == '\t' || *jc->p == '\n' || *jc->p == '\r'))
		jc->p++;
}

/* The four hex digits of a Unicode escape, from the first, into *unit. */
static bool
json_check_unicode_escape(JsonCheck *jc, int *unit)
{
	int			i;

	*unit = 0;
	for (i = 0; i < 4; i++, jc->p++)
	{
		unsigned char c;

		if (jc->p >= jc->end || !isxdigit((unsigned char) *jc->p))
			return json_check_fail(jc, "invalid string sequence");
		c = (unsigned char) *jc->p;
		*unit = (*unit << 4) |
			(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
	}
	return true;
}

/*
 * The ASCII bytes a string holds as they are (not its quote, its backslash
 * or a control character): the check skips runs of them in a tight loop.
 * A byte from 0x80 on starts a UTF-8 sequence, checked on its own.
 */
static bool json_plain_byte[256];
static bool json_plain_ready = false;

static void
json_plain_init(void)
{
	int			c;

	for (c = 0; c < 256; c++)
		json_plain_byte[c] = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
	json_plain_ready = true;
}

/*
 * Whether any of the eight bytes in x is not a plain byte: below 0x20, a
 * quote, a backslash, or from 0x80 on (the classic "has a zero byte" test,
 * exact: no false alarm and no miss).
 */
#define JSON_BYTES(b)	(UINT64CONST(0x0101010101010101) * (b))

static inline bool
json_special_in(uint64 x)
{
	uint64		quote = x ^ JSON_BYTES('"');
	uint64		backslash = x ^ JSON_BYTES('\\');
	uint64		low7 = x & JSON_BYTES(0x7F);

	/* a byte below 0x20 (taken as 7 bits: a high byte is caught below) */
	uint64		control = (low7 + JSON_BYTES(0x60)) ^ JSON_BYTES(0x80);
	/* a byte equal to zero, in quote or backslash */
	uint64		q = ((quote & JSON_BYTES(0x7F)) + JSON_BYTES(0x7F)) | quote;
	uint64		b = ((backslash & JSON_BYTES(0x7F)) + JSON_BYTES(0x7F)) | backslash;

	return ((control | ~q | ~b | x) & JSON_BYTES(0x80)) != 0;
}

/*
 * A string, from its opening quote.  An object key may not hold \u0000:
 * json-c keeps keys as C strings, so it would cut the key short there
 * ("a\u0000b" read as "a"), a different key.
 */
static bool
json_check_string(JsonCheck *jc, bool key)
{
	jc->p++;
	while (jc->p < jc->end)
	{
		unsigned char c;

		/* eight bytes at a time while none is special, then byte by byte */
		while (jc->end - jc->p >= 8)
		{
			uint64		x;

			memcpy(&x, jc->p, 8);
			if (json_special_in(x))
				break;
			jc->p += 8;
		}
		while (jc->p < jc->end && json_plain_byte[(unsigned char) *jc->p])
			jc->p++;
		if (jc->p >= jc->end)
			break;
		c = (unsigned char) *jc->p;

		if (c == '"')
		{
			jc->p++;
			return true;
		}
		if (c < 0x20)
			return json_check_fail(jc, "invalid string sequence");
		if (c >= 0x80)
		{
			/* its length by its first byte (1: not a first byte) */
			int			n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 :
				(c & 0xF8) == 0xF0 ? 4 : 1;

			if (n > jc->end - jc->p)
				break;			/* the body ends in the string */
			if (!pg_utf8_islegal((const unsigned char *) jc->p, n))
			{
				jc->error = json_bad_utf8;
				return false;
			}
			jc->p += n;
			continue;
		}
		jc->p++;
		if (c != '\\')
			continue;
		if (jc->p >= jc->end)
			break;
		c = (unsigned char) *jc->p++;
		if (c == 'u')
		{
			int			unit;

			if (!json_check_unicode_escape(jc, &unit))
				return false;
			if (key && unit == 0)
				return json_check_fail(jc, "an object key holds \\u0000");
			if (unit >= 0xDC00 && unit <= 0xDFFF)
				return json_check_fail(jc, json_lone_surrogate);
			if (unit >= 0xD800 && unit <= 0xDBFF)
			{
				/* a high surrogate: a low one must follow at once */
				if (jc->end - jc->p < 2 || jc->p[0] != '\\' || jc->p[1] != 'u')
					return json_check_fail(jc, json_lone_surrogate);
				jc->p += 2;
				if (!json_check_unicode_escape(jc, &unit))
					return false;
				if (unit < 0xDC00 || unit > 0xDFFF)
					return json_check_fail(jc, json_lone_surrogate);
			}
		}
		else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
		{
			jc->p--;
			return json_check_fail(jc, "invalid string sequence");
		}
	}
	return json_check_fail(jc, NULL);
}

static bool
json_check_digits(JsonCheck *jc)
{
	if (jc->p >= jc->end || !isdigit((unsigned char) *jc->p))
		return json_check_fail(jc, "number expected");
	while (jc->p < jc->end && isdigit((unsigned char) *jc->p))
		jc->p++;
	return true;
}

/* Note that an integer literal beyond 64 bits ends here (see above). */
static void
json_note_big_integer(JsonCheck *jc)
{
	JsonBig    *big;

	if (jc->nbigs == jc->maxbigs)
	{
		jc->maxbigs = jc->maxbigs == 0 ? 8 : jc->maxbigs * 2;
		jc->bigs = jc->bigs == NULL
			? palloc(sizeof(JsonBig) * jc->maxbigs)
			: repalloc(jc->bigs, sizeof(JsonBig) * jc->maxbigs);
	}
	big = &jc->bigs[jc->nbigs++];
	big->end = jc->p - jc->start;
	big->element = jc->element;
	big->key = jc->member_key;
	big->key_len = jc->member_key_len;
}

/* A number; NaN and (-)Infinity too, which json-c's strict mode took. */
static bool
json_check_number(JsonCheck *jc)
{
	bool		negative = false;
	bool		integer = true;
	const char *digits;

	if (*jc->p == 'N')
		return json_check_literal(jc, "NaN");
	if (*jc->p == '-')
	{
		negative = true;
		jc->p++;
	}
	if (jc->p < jc->end && *jc->p == 'I')
		return json_check_literal(jc, "Infinity");
	digits = jc->p;
	if (jc->p < jc->end && *jc->p == '0')
		jc->p++;
	else if (!json_check_digits(jc))
		return false;
	if (jc->p < jc->end && *jc->p == '.')
	{
		integer = false;
		jc->p++;
		if (!json_check_digits(jc))
			return false;
	}
	if (jc->p < jc->end && (*jc->p == 'e' || *jc->p == 'E'))
	{
		integer = false;
		jc->p++;
		if (jc->p < jc->end && (*jc->p == '+' || *jc->p == '-'))
			jc->p++;
		if (!json_check_digits(jc))
			return false;
	}
	/*
	 * An integer of 19 digits or more may not fit int64 (JSON has no leading
	 * zeros); and json-c would write -0 as 0.
	 */
	if (integer &&
		((jc->p - digits >= 19 &&
		  (jc->p - digits > 19 ||
		   memcmp(digits, negative ? "9223372036854775808" : "9223372036854775807",
				  19) > 0)) ||
		 (negative && jc->p - digits == 1 && *digits == '0')))
		json_note_big_integer(jc);
	return true;
}

static bool
json_check_literal(JsonCheck *jc, const char *word)
{
	size_t		len = strlen(word);
	size_t		left = jc->end - jc->p;

	if (memcmp(jc->p, word, Min(len, left)) != 0)
		return json_check_fail(jc, "unexpected character");
	if (left < len)
	{
		jc->p = jc->end;
		return json_check_fail(jc, NULL);
	}
	jc->p += len;
	return true;
}

/* An object or array, from its opening bracket. */
static bool
json_check_container(JsonCheck *jc, int depth)
{
	bool		object = *jc->p == '{';
	char		close = object ? '}' : ']';
	/* the root's "data" array: its items are counted */
	bool		counting = depth == 2 && !object && jc->in_data;
	/* an item of it: its members' keys are noted */
	bool		record = depth == 3 && object && jc->element >= 0;
	int			count = 0;

	jc->p++;
	json_check_space(jc);
	if (jc->p < jc->end && *jc->p == close)
	{
		jc->p++;
		if (counting)
			jc->data_length = 0;
		return true;
	}
	for (;;)
	{
		/* a member of the root object: which of a page's parts, if any */
		bool		is_data = false;
		bool		is_has_more = false;

		if (object)
		{
			const char *key = jc->p;

			if (jc->p >= jc->end || *jc->p != '"')
				return json_check_fail(jc, "quoted object property name expected");
			if (!json_check_string(jc, true))
				return false;
			if (record)
			{
				/* the key as written, unless it has escapes */
				jc->member_key = key + 1;
				jc->member_key_len = (int) (jc->p - key - 2);
				if (memchr(jc->member_key, '\\', jc->member_key_len) != NULL)
					jc->member_key = NULL;
			}
			if (depth == 1)
			{
				/* as written (an escaped key is not recognized: no peek) */
				is_data = jc->p - key == 6 && memcmp(key, "\"data\"", 6) == 0;
				is_has_more = jc->p - key == 10 &&
					memcmp(key, "\"has_more\"", 10) == 0;
				if (is_data)
					jc->data_length = -1;
				if (is_has_more)
					jc->has_more = -1;
			}
			json_check_space(jc);
			if (jc->p >= jc->end || *jc->p != ':')
				return json_check_fail(jc, "object property name separator ':' expected");
			jc->p++;
		}
		if (counting)
			jc->element = count;
		if (is_has_more)
		{
			json_check_space(jc);
			if (jc->p < jc->end && (*jc->p == 't' || *jc->p == 'f'))
				jc->has_more = *jc->p == 't';
		}
		jc->in_data = is_data;
		if (!json_check_value(jc, depth + 1))
			return false;
		jc->in_data = false;
		if (counting)
			jc->element = -1;
		if (record)
			jc->member_key = NULL;
		count++;
		json_check_space(jc);
		if (jc->p < jc->end && *jc->p == close)
		{
			jc->p++;
			if (counting)
				jc->data_length = count;
			return true;
		}
		if (jc->p >= jc->end || *jc->p != ',')
			return json_check_fail(jc, object
								   ? "object value separator ',' expected"
								   : "array value separator ',' expected");
		jc->p++;
		json_check_space(jc);
	}
}

static bool
json_check_value(JsonCheck *jc, int depth)
{
	if (depth > CLOSE_JSON_MAX_DEPTH)
		return json_check_fail(jc, "nesting too deep");
	json_check_space(jc);
	if (jc->p >= jc->end)
		return json_check_fail(jc, NULL);
	switch (*jc->p)
	{
		case '{':
		case '[':
			return json_check_container(jc, depth);
		case '"':
			return json_check_string(jc, false);
		case 't':
			return json_check_literal(jc, "true");
		case 'f':
			return json_check_literal(jc, "false");
		case 'n':
			return json_check_literal(jc, "null");
		default:
			if (*jc->p == '-' || *jc->p == 'N' || *jc->p == 'I' ||
				isdigit((unsigned char) *jc->p))
				return json_check_number(jc);
			return json_check_fail(jc, "unexpected character");
	}
}

/*
 * NULL when text is one strict JSON value (with white space around it);
 * jc then tells where its integers beyond 64 bits end.
 */
static const char *
json_check(JsonCheck *jc, const char *text, size_t len)
{
	if (!json_plain_ready)
		json_plain_init();
	memset(jc, 0, sizeof(JsonCheck));
	jc->data_length = -1;
	jc->has_more = -1;
	jc->element = -1;
	jc->start = text;
	jc->p = text;
	jc->end = text + len;
	if (!json_check_value(jc, 1))
		return jc->error;
	json_check_space(jc);
	if (jc->p < jc->end)
		return "unexpected character";
	return NULL;
}

/*
 * Whether text is strict JSON whose root object has a "data" array and a
 * boolean "has_more", both keys written without escapes; if so, the array's
 * length and has_more's value.  A look at a listing page that builds no
 * document, to decide whether to ask for the pages after it; the page is
 * parsed and checked in full when it is read.
 */
bool
close_json_peek_page(const char *text, size_t len, int *length,
					 bool *has_more)
{
	JsonCheck	jc;
	bool		known = json_check(&jc, text, len) == NULL &&
		jc.data_length >= 0 && jc.has_more >= 0;

	if (jc.bigs)
		pfree(jc.bigs);
	*length = known ? jc.data_length : 0;
	*has_more = known && jc.has_more == 1;
	return known;
}

/*
 * The text json-c is given when it has integers beyond 64 bits: a copy with
 * a '.' after each, palloc'd; *len becomes its length.
 */
static char *
mark_big_integers(const char *text, size_t *len, const JsonCheck *jc)
{
	char	   *copy = palloc(*len + jc->nbigs + 1);
	char	   *out = copy;
	size_t		from = 0;
	int			i;

	for (i = 0; i < jc->nbigs; i++)
	{
		memcpy(out, text + from, jc->bigs[i].end - from);
		out += jc->bigs[i].end - from;
		*out++ = '.';
		from = jc->bigs[i].end;
	}
	memcpy(out, text + from, *len - from);
	out += *len - from;
	*out = '\0';
	*len = out - copy;
	return copy;
}

/*
 * Drop the '.' mark_big_integers put after each integer beyond 64 bits from
 * the text json-c keeps for it (json_object_new_double_s's, which it owns
 * and serializes as is), so that the number reads and writes as its digits.
 */
static void
restore_big_integers(json_object *value)
{
	switch (json_object_get_type(value))
	{
		case json_type_double:
			{
				char	   *text = (char *) json_object_get_userdata(value);
				size_t		n = text ? strlen(text) : 0;

				if (n > 0 && text[n - 1] == '.')
					text[n - 1] = '\0';
				break;
			}
		case json_type_array:
			{
				size_t		n = json_object_array_length(value);
				size_t		i;

				for (i = 0; i < n; i++)
					restore_big_integers(json_object_array_get_idx(value, i));
				break;
			}
		case json_type_object:
			{
				json_object_object_foreach(value, key, member)
				{
					(void) key;
					restore_big_integers(member);
				}
				break;
			}
		default:
			break;
	}
}

/*
 * restore_big_integers for the integers json_check noted, finding each
 * without walking the whole document where it can: in a listing's "data"
 * item, that item's member.  Anything else is walked (once more does no
 * harm: no other number's text ends in '.').  Allocates nothing, as the
 * document has no owner yet.
 */
static void
restore_noted_big_integers(json_object *root, const JsonCheck *jc)
{
	json_object *data;
	int			i;

	if (!json_object_is_type(root, json_type_object) ||
		!json_object_object_get_ex(root, "data", &data) ||
		!json_object_is_type(data, json_type_array))
	{
		restore_big_integers(root);
		return;
	}
	for (i = 0; i < jc->nbigs; i++)
	{
		const JsonBig *big = &jc->bigs[i];
		json_object *item;
		json_object *member;
		char		key[NAMEDATALEN * 2];

		if (big->element < 0 ||
			(size_t) big->element >= json_object_array_length(data))
		{
			restore_big_integers(root);
			return;
		}
		item = json_object_array_get_idx(data, (size_t) big->element);
		if (big->key == NULL || big->key_len >= (int) sizeof(key) ||
			!json_object_is_type(item, json_type_object))
		{
			restore_big_integers(item);
			continue;
		}
		memcpy(key, big->key, big->key_len);
		key[big->key_len] = '\0';
		if (json_object_object_get_ex(item, key, &member))
			restore_big_integers(member);
		else
			restore_big_integers(item);
	}
}

/*
 * Parse a whole body.  The document is freed when owner is reset or
 * deleted.  Returns NULL and sets *error when the text is not one complete
 * JSON value.
 */
struct json_object *
close_json_parse(const char *text, size_t len, MemoryContext owner,
				 const char **error)
{
	MemoryContextCallback *callback;
	json_tokener *tok;
	json_object *root;
	enum json_tokener_error jerr;
	JsonCheck	jc;
	char	   *marked = NULL;

	*error = NULL;
	if (len > INT_MAX)
	{
		*error = "body too large";
		return NULL;
	}
	*error = json_check(&jc, text, len);
	if (*error)
		return NULL;
	if (jc.nbigs > 0)
	{
		if (len + jc.nbigs > INT_MAX)
		{
			*error = "body too large";
			return NULL;
		}
		text = marked = mark_big_integers(text, &len, &jc);
	}

	/* allocate first: nothing may fail between parsing and owning */
	callback = MemoryContextAlloc(owner, sizeof(MemoryContextCallback));

	tok = json_tokener_new_ex(CLOSE_JSON_MAX_DEPTH);
	if (tok == NULL)
	{
		*error = "out of memory";
		return NULL;
	}
	/* no JSON_TOKENER_VALIDATE_UTF8: json_check has checked the UTF-8 */
	root = json_tokener_parse_ex(tok, text, (int) len);
	jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (marked)
		pfree(marked);			/* json-c keeps copies of what it needs */

	if (root == NULL || jerr != json_tokener_success)
	{
		if (root)
			json_object_put(root);
		if (jc.bigs)
			pfree(jc.bigs);
		*error = (jerr == json_tokener_continue)
			? json_ends_early
			: json_tokener_error_desc(jerr);
		return NULL;
	}
	if (jc.nbigs > 0)
		restore_noted_big_integers(root, &jc);
	if (jc.bigs)
		pfree(jc.bigs);

	callback->func = free_document;
	callback->arg = root;
	MemoryContextRegisterResetCallback(owner, callback);
	return root;
}

CloseJsonKind
close_json_kind(struct json_object *value)
{
	switch (json_object_get_type(value))
	{
		case json_type_null:
			return CLOSE_JSON_NULL;
		case json_type_boolean:
			return CLOSE_JSON_BOOL;
		case json_type_double:
		case json_type_int:
			return CLOSE_JSON_NUMBER;
		case json_type_string:
			return CLOSE_JSON_STRING;
		case json_type_array:
			return CLOSE_JSON_ARRAY;
		case json_type_object:
			return CLOSE_JSON_OBJECT;
	}
	return CLOSE_JSON_NULL;
}

const char *
close_json_kind_name(CloseJsonKind kind)
{
	switch (kind)
	{
		case CLOSE_JSON_NULL:
			return "null";
		case CLOSE_JSON_BOOL:
			return "boolean";
		case CLOSE_JSON_NUMBER:
			return "number";
		case CLOSE_JSON_STRING:
			return "string";
		case CLOSE_JSON_ARRAY:
			return "array";
		case CLOSE_JSON_OBJECT:
			return "object";
	}
	return "unknown";
}

/*
 * The text of a string (its value) or of a number or boolean (as written
 * in the document: every number keeps its digits, see close_json_parse).
 * The result belongs to the document.
 */
const char *
close_json_scalar_text(struct json_object *value, size_t *len)
{
	const char *text;

	if (json_object_get_type(value) == json_type_string)
	{
		*len = (size_t) json_object_get_string_len(value);
		return json_object_get_string(value);
	}

	/* a number or boolean as written in the document */
	text = json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN);
	*len = strlen(text);
	return text;
}

bool
close_json_bool(struct json_object *value)
{
	return json_object_get_boolean(value) != 0;
}

/* Any value as compact JSON text, palloc'd. */
char *
close_json_serialize(struct json_object *value)
{
	return pstrdup(json_object_to_json_string_ext(value,
												  JSON_C_TO_STRING_PLAIN |
												  JSON_C_TO_STRING_NOSLASHESCAPE));
}

int
close_json_array_length(struct json_object *array)
{
	return (int) json_object_array_length(array);
}

struct json_object *
close_json_array_get(struct json_object *array, int index)
{
	return json_object_array_get_idx(array, (size_t) index);
}

/* A member of an object, or NULL when the key is absent. */
struct json_object *
close_json_object_get(struct json_object *object, const char *key)
{
	json_object *value;

	if (!json_object_object_get_ex(object, key, &value))
		return NULL;
	return value;
}

/*
 * The record's flat "custom.<cf_id>" keys as one JSON object keyed by
 * cf_id, palloc'd text.  A record without custom values gives "{}".
 */
char *
close_json_custom_values(struct json_object *record)
{
	StringInfoData buf;
	size_t		plen = strlen(CLOSE_CUSTOM_PREFIX);
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	{
	json_object_object_foreach(record, key, value)
	{
		if (strncmp(key, CLOSE_CUSTOM_PREFIX, plen) != 0)
			continue;
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		escape_json(&buf, key + plen);
		appendStringInfoChar(&buf, ':');
		appendStringInfoString(&buf,
							   json_object_to_json_string_ext(value,
															  JSON_C_TO_STRING_PLAIN |
															  JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Building jsonb straight from the document, with pushJsonbValue: no JSON
 * text is written and lexed again.  The result is the one jsonb_in gives
 * for the document's text: strings converted to the server encoding (a
 * null character refused, as in any column), every number a numeric of
 * the digits it was written with (integers beyond 64 bits kept exact, see
 * close_json_parse), keys sorted and unique.  NaN and Infinity, which JSON
 * has not, are refused as jsonb_in refuses them.
 */
static JsonbValue *jsonb_push(JsonbParseState **state,
							  JsonbIteratorToken token, json_object *value);

static void
jsonb_string(JsonbValue *v, const char *text, size_t len)
{
	char	   *converted = close_server_text(text, len);

	/* the text itself when the server encoding is UTF-8 */
	if (converted != text)
		len = strlen(converted);
	if (len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string too long to represent as jsonb string"),
				 errdetail("Due to an implementation restriction, jsonb strings cannot exceed %d bytes.",
						   JENTRY_OFFLENMASK)));
	v->type = jbvString;
	v->val.string.val = converted;
	v->val.string.len = (int) len;
}

/* A scalar as a JsonbValue; false for an array or object. */
static bool
jsonb_scalar(JsonbValue *v, json_object *value)
{
	switch (json_object_get_type(value))
	{
		case json_type_null:
			v->type = jbvNull;
			return true;
		case json_type_boolean:
			v->type = jbvBool;
			v->val.boolean = json_object_get_boolean(value) != 0;
			return true;
		case json_type_int:
			v->type = jbvNumeric;
			v->val.numeric = DatumGetNumeric(close_int64_numeric(json_object_get_int64(value)));
			return true;
		case json_type_double:
			{
				/* the text as written (json_object_new_double_s's) */
				const char *text = (const char *) json_object_get_userdata(value);

				if (text == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							 errmsg("invalid input syntax for type %s", "json"),
							 errdetail("Token \"%s\" is invalid.",
									   json_object_to_json_string_ext(value,
																	  JSON_C_TO_STRING_PLAIN))));
				v->type = jbvNumeric;
				v->val.numeric = DatumGetNumeric(close_numeric_from_text(text));
				return true;
			}
		case json_type_string:
			jsonb_string(v, json_object_get_string(value),
						 (size_t) json_object_get_string_len(value));
			return true;
		case json_type_array:
		case json_type_object:
			break;
	}
	return false;
}

/*
 * Push a value (a scalar as token, WJB_ELEM or WJB_VALUE); returns what
 * pushJsonbValue returned last, the whole value once a container ends.
 */
static JsonbValue *
jsonb_push(JsonbParseState **state, JsonbIteratorToken token, json_object *value)
{
	JsonbValue	v;

	if (jsonb_scalar(&v, value))
		return pushJsonbValue(state, token, &v);
	check_stack_depth();
	if (json_object_is_type(value, json_type_array))
	{
		size_t		n = json_object_array_length(value);
		size_t		i;

		pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
		for (i = 0; i < n; i++)
			jsonb_push(state, WJB_ELEM, json_object_array_get_idx(value, i));
		return pushJsonbValue(state, WJB_END_ARRAY, NULL);
	}
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	{
	json_object_object_foreach(value, key, member)
	{
		jsonb_string(&v, key, strlen(key));
		pushJsonbValue(state, WJB_KEY, &v);
		jsonb_push(state, WJB_VALUE, member);
	}
	}
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/* Any value as a jsonb Datum, allocated in CurrentMemoryContext. */
Datum
close_json_to_jsonb(struct json_object *value)
{
	JsonbParseState *state = NULL;
	JsonbValue	v;

	if (jsonb_scalar(&v, value))
		return PointerGetDatum(JsonbValueToJsonb(&v));
	return PointerGetDatum(JsonbValueToJsonb(jsonb_push(&state, WJB_ELEM, value)));
}

/*
 * The record's flat "custom.<cf_id>" keys as one jsonb object keyed by
 * cf_id (close_json_custom_values's object, built as close_json_to_jsonb
 * builds).
 */
Datum
close_json_custom_jsonb(struct json_object *record)
{
	JsonbParseState *state = NULL;
	size_t		plen = strlen(CLOSE_CUSTOM_PREFIX);
	JsonbValue	v;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	{
	json_object_object_foreach(record, key, value)
	{
		if (strncmp(key, CLOSE_CUSTOM_PREFIX, plen) != 0)
			continue;
		jsonb_string(&v, key + plen, strlen(key + plen));
		pushJsonbValue(&state, WJB_KEY, &v);
		jsonb_push(&state, WJB_VALUE, value);
	}
	}
	return PointerGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)));
}

/*
 * Check that a listing answer is {"data": [objects...], "has_more": bool}
 * and return its parts; on a wrong shape, return what is wrong.
 */
const char *
close_json_list_page(struct json_object *root, struct json_object **data,
					 bool *has_more)
{
	json_object *more;
	size_t		n;
	size_t		i;

	if (!json_object_is_type(root, json_type_object))
		return "the answer is not a JSON object";
	if (!json_object_object_get_ex(root, "data", data) ||
		!json_object_is_type(*data, json_type_array))
		return "the answer has no \"data\" array";
	if (!json_object_object_get_ex(root, "has_more", &more) ||
		!json_object_is_type(more, json_type_boolean))
		return "the answer has no boolean \"has_more\"";
	*has_more = json_object_get_boolean(more) != 0;
	n = json_object_array_length(*data);
	for (i = 0; i < n; i++)
		if (!json_object_is_type(json_object_array_get_idx(*data, i),
								 json_type_object))
			return "an item of \"data\" is not a JSON object";
	return NULL;
}

static void
append_json_text(StringInfo buf, json_object *value)
{
	if (json_object_is_type(value, json_type_string))
		appendStringInfoString(buf, json_object_get_string(value));
	else
		appendStringInfoString(buf,
							   json_object_to_json_string_ext(value,
															  JSON_C_TO_STRING_PLAIN |
															  JSON_C_TO_STRING_NOSLASHESCAPE));
}

/*
 * The human-readable part of an error body: "error" (a string, or an object
 * with "message"), "errors" and "field-errors" ("field: message" pairs,
 * naming the column a field maps to when conv is given), else the body text
 * itself.  Returns NULL for an empty body.  The document parsed here
 * belongs to CurrentMemoryContext.
 */
char *
close_json_error_text(const char *body, size_t len, CloseRowConverter *conv)
{
	const char *problem;
	json_object *root;
	json_object *value;
	StringInfoData buf;

	if (body == NULL || len == 0)
		return NULL;
	root = close_json_parse(body, len, CurrentMemoryContext, &problem);
	if (problem || !json_object_is_type(root, json_type_object))
		return pnstrdup(body, len);

	initStringInfo(&buf);
	if (json_object_object_get_ex(root, "error", &value))
	{
		json_object *message;

		if (json_object_is_type(value, json_type_object) &&
			json_object_object_get_ex(value, "message", &message))
			append_json_text(&buf, message);
		else
			append_json_text(&buf, value);
	}
	if (json_object_object_get_ex(root, "errors", &value) &&
		json_object_is_type(value, json_type_array))
	{
		size_t		i;

		for (i = 0; i < json_object_array_length(value); i++)
		{
			if (buf.len > 0)
				appendStringInfoString(&buf, "; ");
			append_json_text(&buf, json_object_array_get_idx(value, i));
		}
	}
	if (json_object_object_get_ex(root, "field-errors", &value) &&
		json_object_is_type(value, json_type_object))
	{
		json_object_object_foreach(value, field, message)
		{
			const char *column = conv ? close_column_for_key(conv, field) : NULL;

			if (buf.len > 0)
				appendStringInfoString(&buf, "; ");
			if (column)
				appendStringInfo(&buf, "%s (column \"%s\"): ", field, column);
			else
				appendStringInfo(&buf, "%s: ", field);
			append_json_text(&buf, message);
		}
	}
	if (buf.len == 0)
	{
		pfree(buf.data);
		return pnstrdup(body, len);
	}
	return buf.data;
}

/*
 * The members of a JSON object, in document order, each value as compact
 * JSON text; NIL for an empty object.  The caller checks it is an object.
 */
List *
close_json_object_members(struct json_object *object)
{
	List	   *members = NIL;

	json_object_object_foreach(object, key, value)
	{
		CloseJsonMember *member = palloc(sizeof(CloseJsonMember));

		member->key = pstrdup(key);
		member->value = close_json_serialize(value);
		members = lappend(members, member);
	}
	return members;
}

/* A member's string value, palloc'd, or NULL when absent or not a string. */
static char *
member_string(json_object *object, const char *key)
{
	json_object *value;

	if (!json_object_object_get_ex(object, key, &value) ||
		!json_object_is_type(value, json_type_string))
		return NULL;
	return pstrdup(json_object_get_string(value));
}

/*
 * One custom field's definition, or NULL when it is no object or has no id
 * (nothing to read it by).  A field without a type gets type "" (imported
 * as an unknown type), one without a name its id.
 */
static CloseFieldInfo *
parse_field(json_object *fobject)
{
	json_object *multi;
	CloseFieldInfo *field;

	if (!json_object_is_type(fobject, json_type_object))
		return NULL;
	field = palloc0(sizeof(CloseFieldInfo));
	field->id = member_string(fobject, "id");
	field->name = member_string(fobject, "name");
	field->description = member_string(fobject, "description");
	field->type = member_string(fobject, "type");
	if (field->type == NULL)
		field->type = pstrdup("");
	field->multi = json_object_object_get_ex(fobject, "accepts_multiple_values", &multi) &&
		json_object_is_type(multi, json_type_boolean) &&
		json_object_get_boolean(multi);
	if (field->id == NULL)
		return NULL;
	if (field->name == NULL)
		field->name = pstrdup(field->id);
	return field;
}

/*
 * The custom object types of GET /custom_object_type/, with their fields,
 * as CloseTypeInfo and CloseFieldInfo; on a wrong shape, NIL and *problem
 * says what is wrong.  A field without a type gets type "" (imported as
 * an unknown type).
 */
List *
close_json_types(struct json_object *root, const char **problem)
{
	List	   *types = NIL;
	json_object *data;
	size_t		i;

	*problem = NULL;
	if (!json_object_is_type(root, json_type_object) ||
		!json_object_object_get_ex(root, "data", &data) ||
		!json_object_is_type(data, json_type_array))
	{
		*problem = "Expected {\"data\": [custom object types]}.";
		return NIL;
	}
	for (i = 0; i < json_object_array_length(data); i++)
	{
		json_object *object = json_object_array_get_idx(data, i);
		json_object *fields;
		CloseTypeInfo *type;
		size_t		j;

		if (!json_object_is_type(object, json_type_object))
		{
			*problem = "A custom object type is not a JSON object.";
			return NIL;
		}
		type = palloc0(sizeof(CloseTypeInfo));
		type->id = member_string(object, "id");
		type->name = member_string(object, "name");
		type->description = member_string(object, "description");
		if (type->id == NULL || type->name == NULL)
		{
			*problem = "A custom object type lacks its id or name.";
			return NIL;
		}
		if (json_object_object_get_ex(object, "fields", &fields) &&
			json_object_is_type(fields, json_type_array))
		{
			for (j = 0; j < json_object_array_length(fields); j++)
			{
				CloseFieldInfo *field = parse_field(json_object_array_get_idx(fields, j));

				if (field)
					type->fields = lappend(type->fields, field);
			}
		}
		types = lappend(types, type);
	}
	return types;
}

/*
 * The custom fields of GET /custom_field_schema/{object type}/, in Close's
 * order, as CloseFieldInfo; on a wrong shape, NIL and *problem says what
 * is wrong.
 */
List *
close_json_field_schema(struct json_object *root, const char **problem)
{
	List	   *fields = NIL;
	json_object *array;
	size_t		i;

	*problem = NULL;
	if (!json_object_is_type(root, json_type_object) ||
		!json_object_object_get_ex(root, "fields", &array) ||
		!json_object_is_type(array, json_type_array))
	{
		*problem = "Expected {\"fields\": [custom fields]}.";
		return NIL;
	}
	for (i = 0; i < json_object_array_length(array); i++)
	{
		CloseFieldInfo *field = parse_field(json_object_array_get_idx(array, i));

		if (field)
			fields = lappend(fields, field);
	}
	return fields;
}

/*
 * The seconds an old-style 429 body asks to wait,
 * {"error": {"rate_reset": 1.5, ...}}; -1 if it does not say.
 */
double
close_json_rate_reset(const char *body, size_t len)
{
	MemoryContext scratch;
	MemoryContext oldcxt;
	struct json_object *root;
	json_object *error;
	json_object *reset;
	const char *problem;
	double		seconds = -1;

	if (body == NULL || len == 0)
		return -1;
	scratch = AllocSetContextCreate(CurrentMemoryContext, "close_fdw rate reset",
									ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(scratch);
	root = close_json_parse(body, len, scratch, &problem);
	if (problem == NULL &&
		json_object_is_type(root, json_type_object) &&
		json_object_object_get_ex(root, "error", &error) &&
		json_object_is_type(error, json_type_object) &&
		json_object_object_get_ex(error, "rate_reset", &reset) &&
		(json_object_is_type(reset, json_type_double) ||
		 json_object_is_type(reset, json_type_int)))
		seconds = json_object_get_double(reset);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(scratch);
	return seconds;
}
