/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  JSON values of a Close record into the Datums of a foreign table's
 *		  columns.  Everything a column needs (its record key, type class,
 *		  input function) is looked up once per scan; a conversion error
 *		  names the column, the foreign table and the value.
 *
 * A value that does not fit its column is an error, never a NULL.  Where
 * the text form would be read differently depending on session settings
 * (timestamps without an offset), the value is read as UTC, as the API
 * sheet says; a date or time that is not ISO 8601 (a zone name, say) is an
 * error rather than read by those settings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/timestamp.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "close_fdw.h"

/* How a JSON value is read for a type. */
typedef enum ValueClass
{
	VC_TEXT,					/* any scalar's text; containers as JSON text */
	VC_INTEGER,					/* a number (or numeric string) with no fraction */
	VC_NUMBER,					/* a number, or a string the type accepts */
	VC_BOOL,
	VC_DATE,
	VC_TIMESTAMP,				/* read as UTC wall time */
	VC_TIMESTAMPTZ,
	VC_JSON						/* the value as JSON text */
} ValueClass;

struct CloseColumn
{
	AttrNumber	attnum;
	char	   *attname;
	char	   *key;			/* record key */
	bool		custom_map;		/* json(b) holding every custom.* key */
	bool		jsonb;			/* (element) type jsonb: built, not parsed */
	bool		bpchar;			/* (element) type char(n): sent unpadded */
	bool		settings_free;	/* its text is the same whatever the session's
								 * settings (see pin_output_settings) */
	Oid			typid;			/* the column's type */
	bool		is_array;
	/* the scalar (or array element) type and how to read it */
	Oid			scalar_typid;
	int32		typmod;
	bool		is_domain;
	ValueClass	vclass;
	FmgrInfo	input;
	Oid			ioparam;
	FmgrInfo	output;
	int16		elemlen;
	bool		elembyval;
	char		elemalign;
	/* domain_check's caches, in the converter's context (see cxt) */
	void	   *scalar_domain_extra;
	void	   *array_domain_extra;
	MemoryContext cxt;
};

/* What the error context callback reports. */
typedef struct ConvertErrorContext
{
	CloseRowConverter *conv;
	CloseColumn *column;
	struct json_object *value;
} ConvertErrorContext;

static ValueClass
classify_type(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return VC_INTEGER;
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			return VC_NUMBER;
		case BOOLOID:
			return VC_BOOL;
		case DATEOID:
			return VC_DATE;
		case TIMESTAMPOID:
			return VC_TIMESTAMP;
		case TIMESTAMPTZOID:
			return VC_TIMESTAMPTZ;
		case JSONOID:
		case JSONBOID:
			return VC_JSON;
		default:
			return VC_TEXT;
	}
}

/*
 * True for the column that holds every custom.* key as one object: a json
 * or jsonb column (not an array) reading the key "custom".
 */
bool
close_is_custom_map_column(Oid typid, const char *key)
{
	Oid			base = getBaseType(typid);

	return (base == JSONOID || base == JSONBOID) &&
		strcmp(key, CLOSE_KEY_CUSTOM) == 0;
}

/*
 * Build the converter for the columns in attrs_used (attribute numbers
 * offset by FirstLowInvalidHeapAttributeNumber, as pull_varattnos makes
 * them; NULL means every column).  Allocated in CurrentMemoryContext.
 */
CloseRowConverter *
close_make_row_converter(Relation rel, Bitmapset *attrs_used)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	CloseRowConverter *conv = palloc0(sizeof(CloseRowConverter));
	bool		whole_row;
	int			i;

	whole_row = attrs_used == NULL ||
		bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used);
	conv->relname = pstrdup(RelationGetRelationName(rel));
	conv->natts = tupdesc->natts;
	conv->columns = palloc0(sizeof(CloseColumn) * Max(tupdesc->natts, 1));

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		CloseColumn *col;
		Oid			elemtype;
		Oid			inputfn;
		Oid			outputfn;
		bool		isvarlena;

		if (att->attisdropped)
			continue;
		if (!whole_row &&
			!bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber,
						   attrs_used))
			continue;

		col = &conv->columns[conv->ncolumns++];
		col->attnum = att->attnum;
		col->attname = pstrdup(NameStr(att->attname));
		col->key = close_get_column_key(RelationGetRelid(rel), att->attnum,
										col->attname);
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->cxt = CurrentMemoryContext;

		elemtype = get_element_type(getBaseType(att->atttypid));
		col->is_array = OidIsValid(elemtype);
		col->scalar_typid = col->is_array ? elemtype : att->atttypid;
		col->is_domain = getBaseType(col->scalar_typid) != col->scalar_typid;
		col->vclass = classify_type(col->scalar_typid);
		col->custom_map = close_is_custom_map_column(att->atttypid, col->key);
		col->jsonb = getBaseType(col->scalar_typid) == JSONBOID;
		col->bpchar = getBaseType(col->scalar_typid) == BPCHAROID;
		switch (getBaseType(col->scalar_typid))
		{
			case TEXTOID:
			case VARCHAROID:
			case BPCHAROID:
			case NAMEOID:
			case UUIDOID:
			case NUMERICOID:
			case INT2OID:
			case INT4OID:
			case INT8OID:
				col->settings_free = true;
				break;
			default:
				/* json(b), bool, date and timestamps are written here */
				col->settings_free = col->vclass != VC_TEXT &&
					col->vclass != VC_NUMBER;
		}

		getTypeInputInfo(col->scalar_typid, &inputfn, &col->ioparam);
		fmgr_info(inputfn, &col->input);
		getTypeOutputInfo(col->scalar_typid, &outputfn, &isvarlena);
		fmgr_info(outputfn, &col->output);
		get_typlenbyvalalign(col->scalar_typid, &col->elemlen,
							 &col->elembyval, &col->elemalign);
	}
	return conv;
}

/*
 * UTF-8 text from the API, made fit for a message in a database of another
 * encoding, where its bytes would show as other characters: each non-ASCII
 * character becomes a JSON-style Unicode escape (a surrogate pair beyond
 * U+FFFF), and each non-ASCII byte of text that is not UTF-8 a '?'.
 * palloc'd; never fails.
 */
char *
close_utf8_for_message(const char *text, size_t len)
{
	StringInfoData buf;
	const unsigned char *p = (const unsigned char *) text;
	const unsigned char *end = p + len;
	bool		utf8 = pg_verify_mbstr(PG_UTF8, text, (int) len, true);

	initStringInfo(&buf);
	while (p < end)
	{
		if (*p < 0x80)
			appendStringInfoChar(&buf, (char) *p++);
		else if (!utf8)
		{
			appendStringInfoChar(&buf, '?');
			p++;
		}
		else
		{
			pg_wchar	c = utf8_to_unicode(p);

			if (c > 0xFFFF)
				appendStringInfo(&buf, "\\u%04x\\u%04x",
								 (unsigned int) (0xD800 + ((c - 0x10000) >> 10)),
								 (unsigned int) (0xDC00 + ((c - 0x10000) & 0x3FF)));
			else
				appendStringInfo(&buf, "\\u%04x", (unsigned int) c);
			p += pg_utf_mblen(p);
		}
	}
	return buf.data;
}

static void
conversion_error_callback(void *arg)
{
	ConvertErrorContext *ctx = (ConvertErrorContext *) arg;
	char	   *value;
	int			len;

	if (ctx->column == NULL)
		return;
	if (ctx->value == NULL)
	{
		errcontext("column \"%s\" of foreign table \"%s\"",
				   ctx->column->attname, ctx->conv->relname);
		return;
	}
	value = close_json_serialize(ctx->value);
	len = strlen(value);
	if (GetDatabaseEncoding() != PG_UTF8)
	{
		value = close_utf8_for_message(value, len);
		len = strlen(value);
	}
	if (!pg_verifymbstr(value, len, true))
		value = "(not valid in the server encoding)";
	else if (len > 200)
	{
		len = pg_mbcliplen(value, len, 200);
		value = psprintf("%.*s...", len, value);
	}
	errcontext("column \"%s\" of foreign table \"%s\", value %s",
			   ctx->column->attname, ctx->conv->relname, value);
}

pg_noreturn static void
report_mismatch(CloseColumn *col, struct json_object *value)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("cannot convert a JSON %s to type %s",
					close_json_kind_name(close_json_kind(value)),
					format_type_be(col->scalar_typid))));
}

/*
 * UTF-8 text of a document close_json_parse has checked, converted to the
 * server encoding.  That check has verified its UTF-8 (as
 * pg_any_to_server would: the text is the answer's bytes, or what json-c
 * made of escapes, or json-c's writing of them), so a UTF-8 database takes
 * it as it is; only a null character, which an escape can make, is refused.
 */
char *
close_server_text(const char *text, size_t len)
{
	if (strlen(text) != len)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("a JSON string with a null character cannot be stored in a column")));
	if (GetDatabaseEncoding() == PG_UTF8)
		return unconstify(char *, text);
	return pg_any_to_server(text, (int) len, PG_UTF8);
}

/* A JSON number's text (strict JSON: as numeric_in reads it) as numeric. */
Datum
close_numeric_from_text(const char *text)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum(text),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

Datum
close_int64_numeric(int64 value)
{
	return DirectFunctionCall1(int8_numeric, Int64GetDatum(value));
}

static Datum
call_input(CloseColumn *col, char *text)
{
	return InputFunctionCall(&col->input, text, col->ioparam, col->typmod);
}

/*
 * The text of a scalar, in the server encoding.  Containers become JSON
 * text only when allowed.
 */
static char *
scalar_text(CloseColumn *col, struct json_object *value, bool containers_ok)
{
	CloseJsonKind kind = close_json_kind(value);
	const char *text;
	size_t		len;

	if (kind == CLOSE_JSON_ARRAY || kind == CLOSE_JSON_OBJECT)
	{
		if (!containers_ok)
			report_mismatch(col, value);
		text = close_json_serialize(value);
		return close_server_text(text, strlen(text));
	}
	text = close_json_scalar_text(value, &len);
	return close_server_text(text, len);
}

/* n digits at *p, which moves past them. */
static bool
iso_digits(const char **p, int n)
{
	for (; n > 0; n--, (*p)++)
		if (!isdigit((unsigned char) **p))
			return false;
	return true;
}

/*
 * Whether text is ISO 8601 as Close writes it: YYYY-MM-DD, optionally
 * followed by T (or a space) and hh:mm[:ss[.fraction]], that optionally
 * followed by Z or a UTC offset (+hh, +hhmm, +hh:mm).  A zone name, or any
 * other form that PostgreSQL would read by the session's settings, is not.
 */
static bool
iso8601_shape(const char *p, bool *has_time, bool *has_offset)
{
	*has_time = false;
	*has_offset = false;
	if (!iso_digits(&p, 4) || *p++ != '-' || !iso_digits(&p, 2) ||
		*p++ != '-' || !iso_digits(&p, 2))
		return false;
	if (*p == '\0')
		return true;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	*has_time = true;
	if (!iso_digits(&p, 2) || *p++ != ':' || !iso_digits(&p, 2))
		return false;
	if (*p == ':')
	{
		p++;
		if (!iso_digits(&p, 2))
			return false;
		if (*p == '.')
		{
			p++;
			if (!iso_digits(&p, 1))
				return false;
			while (isdigit((unsigned char) *p))
				p++;
		}
	}
	if (*p == '\0')
		return true;
	*has_offset = true;
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0';
	if (*p != '+' && *p != '-')
		return false;
	p++;
	if (!iso_digits(&p, 2))
		return false;
	if (*p == ':')
		p++;
	if (*p != '\0' && !iso_digits(&p, 2))
		return false;
	return *p == '\0';
}

pg_noreturn static void
report_bad_datetime(Oid typid, const char *text)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
			 errmsg("invalid input syntax for type %s: \"%s\"",
					format_type_be(typid), text),
			 errdetail("Close dates and times are ISO 8601: YYYY-MM-DD, optionally followed by a time and a UTC offset.")));
}

/*
 * An ISO 8601 date or timestamp string as timestamptz, read as UTC when it
 * has no offset; anything else is an error (typid names the type in it).
 */
TimestampTz
close_read_timestamp(const char *text, Oid typid, int32 typmod)
{
	bool		has_time;
	bool		has_offset;

	if (!iso8601_shape(text, &has_time, &has_offset))
		report_bad_datetime(typid, text);
	if (!has_offset)
	{
		/* no offset: the API means UTC, whatever the session's TimeZone */
		text = psprintf("%s%s", text, has_time ? "+00" : " 00:00:00+00");
	}
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												   CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(typmod)));
}

/* Whole numbers only: 12 and 12.0 fit an integer column, 12.5 does not. */
static Datum
read_integer(CloseColumn *col, char *text)
{
	if (strpbrk(text, ".eE") != NULL)
	{
		Datum		n = DirectFunctionCall3(numeric_in, CStringGetDatum(text),
											ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(-1));
		Datum		t = DirectFunctionCall2(numeric_trunc, n, Int32GetDatum(0));

		if (!DatumGetBool(DirectFunctionCall2(numeric_eq, n, t)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type %s: \"%s\"",
							format_type_be(col->scalar_typid), text),
					 errdetail("The value has a fractional part.")));
		text = DatumGetCString(DirectFunctionCall1(numeric_out, t));
	}
	return call_input(col, text);
}

static Datum
check_domain(CloseColumn *col, Datum value)
{
	if (col->is_domain)
		domain_check(value, false, col->scalar_typid,
					 &col->scalar_domain_extra, col->cxt);
	return value;
}

/*
 * The text of a number or of a string read as one.  PostgreSQL 16 reads
 * "0x1F", "0o17", "0b101" and "1_000" as numbers too, where earlier
 * releases refuse them: a string is a number only in decimal, the same on
 * every release, rather than a text such as "0x10" becoming 16.
 */
static char *
decimal_text(CloseColumn *col, struct json_object *value)
{
	char	   *text = scalar_text(col, value, false);
	const char *p = text;

	if (close_json_kind(value) != CLOSE_JSON_STRING)
		return text;
	while (isspace((unsigned char) *p))
		p++;
	if (*p == '+' || *p == '-')
		p++;
	if ((p[0] == '0' && p[1] != '\0' && strchr("xXoObB", p[1]) != NULL) ||
		strchr(text, '_') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s: \"%s\"",
						format_type_be(col->scalar_typid), text),
				 errdetail("A string is read as a number only in decimal.")));
	return text;
}

/* One non-null JSON value into the column's scalar (or element) type. */
static Datum
convert_scalar(CloseColumn *col, struct json_object *value)
{
	CloseJsonKind kind = close_json_kind(value);

	switch (col->vclass)
	{
		case VC_JSON:
			if (col->jsonb)
				return check_domain(col, close_json_to_jsonb(value));
			{
				char	   *text = close_json_serialize(value);

				return call_input(col, close_server_text(text, strlen(text)));
			}
		case VC_TEXT:
			return call_input(col, scalar_text(col, value, true));
		case VC_INTEGER:
			if (kind != CLOSE_JSON_NUMBER && kind != CLOSE_JSON_STRING)
				report_mismatch(col, value);
			return read_integer(col, decimal_text(col, value));
		case VC_NUMBER:
			if (kind != CLOSE_JSON_NUMBER && kind != CLOSE_JSON_STRING)
				report_mismatch(col, value);
			return call_input(col, decimal_text(col, value));
		case VC_BOOL:
			if (kind == CLOSE_JSON_BOOL)
				return check_domain(col, BoolGetDatum(close_json_bool(value)));
			if (kind != CLOSE_JSON_STRING)
				report_mismatch(col, value);
			return call_input(col, scalar_text(col, value, false));
		case VC_DATE:
			{
				char	   *text;
				TimestampTz ts;
				DateADT		date;

				bool		has_time;
				bool		has_offset;

				if (kind != CLOSE_JSON_STRING)
					report_mismatch(col, value);
				text = scalar_text(col, value, false);
				if (!iso8601_shape(text, &has_time, &has_offset))
					report_bad_datetime(col->scalar_typid, text);
				if (!has_time)
					return call_input(col, text);
				/* a datetime in a date column: its date in UTC */
				ts = close_read_timestamp(text, col->scalar_typid, -1);
				if (TIMESTAMP_IS_NOBEGIN(ts))
					DATE_NOBEGIN(date);
				else if (TIMESTAMP_IS_NOEND(ts))
					DATE_NOEND(date);
				else
				{
					date = (DateADT) (ts / USECS_PER_DAY);
					if (ts < 0 && ts % USECS_PER_DAY != 0)
						date--;
				}
				return check_domain(col, DateADTGetDatum(date));
			}
		case VC_TIMESTAMP:
		case VC_TIMESTAMPTZ:
			{
				TimestampTz ts;

				if (kind != CLOSE_JSON_STRING)
					report_mismatch(col, value);
				ts = close_read_timestamp(scalar_text(col, value, false),
										  col->scalar_typid, col->typmod);

				/*
				 * timestamp and timestamptz share a representation: the
				 * instant as UTC wall time is the same number.
				 */
				return check_domain(col, TimestampTzGetDatum(ts));
			}
	}
	elog(ERROR, "unexpected value class %d", (int) col->vclass);
	return (Datum) 0;
}

/* A JSON array into a one-dimensional array of the element type. */
static Datum
convert_array(CloseColumn *col, struct json_object *value)
{
	int			n;
	Datum	   *elems;
	bool	   *nulls;
	int			dims[1];
	int			lbs[1] = {1};
	int			i;
	Datum		result;

	if (close_json_kind(value) != CLOSE_JSON_ARRAY)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("cannot convert a JSON %s to type %s",
						close_json_kind_name(close_json_kind(value)),
						format_type_be(col->typid)),
				 errhint("An array column needs a JSON array.")));

	n = close_json_array_length(value);
	if (n == 0)
		result = PointerGetDatum(construct_empty_array(col->scalar_typid));
	else
	{
		elems = palloc(sizeof(Datum) * n);
		nulls = palloc(sizeof(bool) * n);
		for (i = 0; i < n; i++)
		{
			struct json_object *elem = close_json_array_get(value, i);

			nulls[i] = (elem == NULL || close_json_kind(elem) == CLOSE_JSON_NULL);
			elems[i] = nulls[i] ? (Datum) 0 : convert_scalar(col, elem);
		}
		dims[0] = n;
		result = PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
													col->scalar_typid,
													col->elemlen,
													col->elembyval,
													col->elemalign));
	}
	if (getBaseType(col->typid) != col->typid)
		domain_check(result, false, col->typid, &col->array_domain_extra,
					 col->cxt);
	return result;
}

/*
 * Fill values/nulls (natts long) from one record.  A missing key or a JSON
 * null is NULL.  Allocates in CurrentMemoryContext, which the caller resets
 * per row.
 */
void
close_convert_record(CloseRowConverter *conv, struct json_object *record,
					 Datum *values, bool *nulls)
{
	ConvertErrorContext ctx;
	ErrorContextCallback errcallback;
	int			i;

	memset(nulls, true, sizeof(bool) * conv->natts);

	ctx.conv = conv;
	ctx.column = NULL;
	ctx.value = NULL;
	errcallback.callback = conversion_error_callback;
	errcallback.arg = &ctx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (i = 0; i < conv->ncolumns; i++)
	{
		CloseColumn *col = &conv->columns[i];
		struct json_object *value;
		int			att = col->attnum - 1;

		ctx.column = col;
		ctx.value = NULL;
		if (col->custom_map && col->jsonb)
		{
			values[att] = check_domain(col, close_json_custom_jsonb(record));
			nulls[att] = false;
			continue;
		}
		if (col->custom_map)
		{
			char	   *text = close_json_custom_values(record);

			values[att] = call_input(col, close_server_text(text, strlen(text)));
			nulls[att] = false;
			continue;
		}

		value = close_json_object_get(record, col->key);
		if (value == NULL || close_json_kind(value) == CLOSE_JSON_NULL)
			continue;
		ctx.value = value;
		values[att] = col->is_array ? convert_array(col, value)
			: convert_scalar(col, value);
		nulls[att] = false;
	}

	error_context_stack = errcallback.previous;
}

/* The converter's column for an attribute, or NULL if it has none. */
static CloseColumn *
find_column(CloseRowConverter *conv, AttrNumber attnum)
{
	int			i;

	for (i = 0; i < conv->ncolumns; i++)
		if (conv->columns[i].attnum == attnum)
			return &conv->columns[i];
	return NULL;
}

/* The record key an attribute maps to (NULL if not converted). */
const char *
close_column_key(CloseRowConverter *conv, AttrNumber attnum)
{
	CloseColumn *col = find_column(conv, attnum);

	return col ? col->key : NULL;
}

/* True when the attribute is the json(b) column holding all custom.* keys. */
bool
close_column_is_custom_map(CloseRowConverter *conv, AttrNumber attnum)
{
	CloseColumn *col = find_column(conv, attnum);

	return col && col->custom_map;
}

/*
 * The column a record key is read into, for messages: the column mapped to
 * the key, else the custom json(b) column for a custom.* key, else NULL.
 */
const char *
close_column_for_key(CloseRowConverter *conv, const char *key)
{
	int			i;

	for (i = 0; i < conv->ncolumns; i++)
		if (!conv->columns[i].custom_map && strcmp(conv->columns[i].key, key) == 0)
			return conv->columns[i].attname;
	if (strncmp(key, CLOSE_CUSTOM_PREFIX, strlen(CLOSE_CUSTOM_PREFIX)) == 0)
		for (i = 0; i < conv->ncolumns; i++)
			if (conv->columns[i].custom_map)
				return conv->columns[i].attname;
	return NULL;
}

pg_noreturn static void
report_unsendable(CloseColumn *col, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("cannot send the value of column \"%s\" to the Close API",
					col->attname),
			 errdetail("%s", why)));
}

/*
 * A date as "YYYY-MM-DD" (with quotes), whatever the DateStyle; false if
 * Close cannot hold it (infinite, or outside years 1 to 9999).
 */
bool
close_format_date(StringInfo buf, DateADT date)
{
	int			year;
	int			month;
	int			day;

	if (DATE_NOT_FINITE(date))
		return false;
	j2date(date + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	if (year < 1 || year > 9999)
		return false;
	appendStringInfo(buf, "\"%04d-%02d-%02d\"", year, month, day);
	return true;
}

/*
 * An instant as ISO 8601 in UTC (with quotes), as Close writes its own
 * dates, whatever the TimeZone; false if Close cannot hold it.
 */
bool
close_format_timestamp(StringInfo buf, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1 || tm.tm_year > 9999)
		return false;
	appendStringInfo(buf, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00\"",
					 tm.tm_year, tm.tm_mon, tm.tm_mday,
					 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
	return true;
}

/* One non-null scalar (or array element) as JSON. */
static void
append_json_scalar(StringInfo buf, CloseColumn *col, Datum value)
{
	char	   *text;

	switch (col->vclass)
	{
		case VC_INTEGER:
		case VC_NUMBER:
			text = OutputFunctionCall(&col->output, value);
			if (pg_strcasecmp(text, "NaN") == 0 || strstr(text, "nfinity") != NULL)
				report_unsendable(col, "JSON has no NaN or infinity.");
			appendStringInfoString(buf, text);
			return;
		case VC_BOOL:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case VC_DATE:
			if (!close_format_date(buf, DatumGetDateADT(value)))
				report_unsendable(col, "Close dates are finite, with years 1 to 9999.");
			return;
		case VC_TIMESTAMP:
		case VC_TIMESTAMPTZ:
			/* both are the instant as UTC wall time (see convert_scalar) */
			if (!close_format_timestamp(buf, DatumGetTimestampTz(value)))
				report_unsendable(col, "Close timestamps are finite, with years 1 to 9999.");
			return;
		case VC_JSON:
			/* json and jsonb output is JSON text already */
			appendStringInfoString(buf, OutputFunctionCall(&col->output, value));
			return;
		case VC_TEXT:
			text = OutputFunctionCall(&col->output, value);
			if (col->bpchar)
			{
				/*
				 * char(n) pads with spaces that are not part of the value
				 * (as its cast to text drops them): Close gets the value
				 */
				int			len = strlen(text);

				while (len > 0 && text[len - 1] == ' ')
					len--;
				text[len] = '\0';
			}
			escape_json(buf, text);
			return;
	}
	elog(ERROR, "unexpected value class %d", (int) col->vclass);
}

/*
 * Output functions whose text follows session settings (DateStyle for a
 * date inside a range or a composite, IntervalStyle, bytea_output, and
 * extra_float_digits, which below 1 rounds a float to 15 or fewer digits)
 * run with the settings pinned to one exact form, so that what reaches
 * Close is the value, whatever the session's settings.  Returns the GUC
 * nest level to give reset_output_settings, or 0 when the settings
 * already give that form (the defaults do).  An error in between is
 * cleaned up by the (sub)transaction's abort, which pops the nest level.
 */
static int
pin_output_settings(void)
{
	int			nestlevel;

	if (DateStyle == USE_ISO_DATES && IntervalStyle == INTSTYLE_POSTGRES &&
		extra_float_digits > 0 && bytea_output == BYTEA_OUTPUT_HEX)
		return 0;
	nestlevel = NewGUCNestLevel();
	if (DateStyle != USE_ISO_DATES)
		(void) set_config_option("datestyle", "ISO", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
	if (extra_float_digits <= 0)
		(void) set_config_option("extra_float_digits", "1", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
	if (bytea_output != BYTEA_OUTPUT_HEX)
		(void) set_config_option("bytea_output", "hex", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
	return nestlevel;
}

static void
reset_output_settings(int nestlevel)
{
	if (nestlevel > 0)
		AtEOXact_GUC(true, nestlevel);
}

/*
 * A column's value as JSON, the reverse of close_convert_record: NULL is
 * null, an array a JSON array, a date "YYYY-MM-DD", a timestamp ISO 8601 in
 * UTC, json(b) as it is, numbers as numbers, anything else a string.
 */
void
close_append_json_value(StringInfo buf, CloseRowConverter *conv,
						AttrNumber attnum, Datum value, bool isnull)
{
	CloseColumn *col = find_column(conv, attnum);
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			nestlevel;

	if (col == NULL)
		elog(ERROR, "column %d has no converter", attnum);
	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	nestlevel = col->settings_free ? 0 : pin_output_settings();
	if (!col->is_array)
	{
		append_json_scalar(buf, col, value);
		reset_output_settings(nestlevel);
		return;
	}

	array = DatumGetArrayTypeP(value);
	if (ARR_NDIM(array) > 1)
		report_unsendable(col, "Only one-dimensional arrays can be sent.");
	deconstruct_array(array, col->scalar_typid, col->elemlen, col->elembyval,
					  col->elemalign, &elems, &nulls, &n);
	appendStringInfoChar(buf, '[');
	for (i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		if (nulls[i])
			appendStringInfoString(buf, "null");
		else
			append_json_scalar(buf, col, elems[i]);
	}
	appendStringInfoChar(buf, ']');
	reset_output_settings(nestlevel);
}
