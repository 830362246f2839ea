/*-------------------------------------------------------------------------
 *
 * search.c
 *		  Listing custom objects without a lead, and leads, contacts and
 *		  opportunities without an id, through Advanced Filtering
 *		  (POST /data/search/): the request body from the plan's query nodes
 *		  and the run-time values (the object type, fields and sort of the
 *		  table's resource), cursor paging, and the slicing that gets past
 *		  the API's limits.
 *
 * One search query returns at most 10,000 objects, silently, and a cursor
 * expires about 30 s after it was issued.  Both are handled the same way:
 * results are sorted by date_created, and a new query ("slice") starts at
 * the last date_created seen, skipping the ids already returned at that
 * instant.  A slice is started when a query ends having returned 10,000
 * objects or fewer than its count said, and before a cursor gets old.
 *
 * For a resource whose search may apply date bounds by whole days only
 * (CloseResource.search_day_bounds: the sheets disagree for leads, contacts
 * and opportunities), every bound sent is a UTC midnight (a
 * fixed_local_date, x-tz-offset being 0), read the same either way: a new
 * slice starts at the midnight before the last date_created seen and skips
 * what it repeats (objects before that instant, and the ids seen at it),
 * and parts are cut at midnights.  A day holding more objects than one
 * query returns cannot be sliced further: an error naming the day.
 *
 * Cursor pages come one after another, so a large search whose order does
 * not matter is cut up front as well: after the first page, one more
 * request finds the newest date_created, and the range between is cut into
 * up to max_concurrency parts, each a search of its own (with its own
 * slices), whose next pages are requested together.  Objects are seldom
 * spread evenly in time (imports come in bursts), so whenever parts have
 * ended, the part with the most objects still to come (its count says) is
 * cut again, from the last object of its page to the end of its range.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/fmgrprotos.h"

#include "executor/executor.h"
#include "nodes/nodeFuncs.h"

#include "close_fdw.h"

/* The API's limits (see the API sheet). */
#define SEARCH_MAX_PAGE			200
#define SEARCH_MAX_PER_QUERY	10000
/* A cursor older than this is not used: a new slice starts instead. */
#define SEARCH_CURSOR_MAX_AGE_MS	20000
/* Refused cursors a scan works around before it reports the refusal. */
#define SEARCH_CURSOR_REFUSALS		10
/* Pages in a row with a cursor but no objects before that is an error. */
#define SEARCH_EMPTY_PAGES			10

/* A regular field of the resource's object type, as JSON. */
#define FIELD_FORMAT \
	"{\"type\": \"regular_field\", \"object_type\": \"%s\", \"field_name\": \"%s\"}"
#define FIELD_OF(res, name)	psprintf(FIELD_FORMAT, (res)->search_type, (name))
#define MATCH_NOTHING	"{\"type\": \"match_all\", \"negate\": true}"

struct CloseSearchState
{
	UserMapping *user;
	const CloseResource *res;	/* what is searched */
	MemoryContext page_cxt;		/* one answer and its parsed document */
	MemoryContext cursor_cxt;	/* the current cursor */
	char	   *query;			/* the query nodes, rendered */
	char	   *fields;			/* the _fields list, rendered */
	int			page_limit;
	int64		results_limit;	/* -1: none */
	int			max_concurrency;	/* parts at most; 1: never cut */
	int			order;			/* CLOSE_SEARCH_ORDER_*: past CREATED_ASC, one
								 * query, never sliced */
	char		lower_date[64]; /* a part's range: "" for none */
	char		upper_date[64];
	TimestampTz lower_instant;	/* lower_date, when there is one */
	TimestampTz upper_instant;	/* upper_date, when there is one */
	bool		restart;		/* start a new slice next (range changed) */
	bool		ended;			/* a part with nothing more to ask */
	bool		flying;			/* its next page is in flight */
	bool		flying_new_slice;
	CloseResponse flying_response;

	/* the current query (slice) */
	bool		slice_started;
	char	   *cursor;			/* NULL: the slice has ended */
	TimestampTz cursor_time;
	int			cursor_refusals;
	int			empty_pages;	/* in a row, with a cursor */
	int64		slice_returned;
	int64		slice_total;	/* its count.total, -1 if not told */
	int64		slice_results_limit;
	char		slice_date[64];	/* where it starts ("" for the first) */
	TimestampTz slice_instant;	/* slice_date, when there is one */
	bool		slice_have_prev;	/* slice_prev is set */
	TimestampTz slice_prev;		/* the slice's last date_created read */

	/* keyset: the last date_created seen, and the ids seen at it */
	bool		have_last;
	TimestampTz last_instant;
	char		last_date[64];	/* last_instant as ISO 8601 UTC */
	List	   *boundary_ids;	/* in cursor_cxt's parent (the scan) */
	bool		slice_progress;	/* this slice returned something new */
	int64		returned;

	/* the page being read */
	struct json_object *items;
	int			nitems;
	int			next_item;

	/* the parts run concurrently, once the first page is read */
	bool		cut_decided;
	TimestampTz newest;			/* date_created of the newest object */
	int			nparts;
	int			parts_size;
	CloseSearchState **parts;
	int			current_part;	/* being read, or -1 */
	CloseFlight *flight;		/* the parts' requests in flight */
	CloseSearchState **slot_part;	/* which part each slot serves */

	/* for EXPLAIN ANALYZE */
	int64		requests;
	int64		retries;
	double		waited_ms;

	/* a whole answer from the cache: items are every record, in order */
	bool		replay;
};

/* ---- rendering the query ---- */

/* Append a text value as a JSON string. */
static void
append_text(StringInfo buf, Datum value)
{
	escape_json(buf, TextDatumGetCString(value));
}

/* The non-null text elements of an array value. */
static void
text_elements(Datum value, List **elems)
{
	ArrayType  *array = DatumGetArrayTypeP(value);
	Datum	   *datums;
	bool	   *nulls;
	int			n;
	int			i;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(ARR_ELEMTYPE(array), &typlen, &typbyval, &typalign);
	deconstruct_array(array, ARR_ELEMTYPE(array), typlen, typbyval, typalign,
					  &datums, &nulls, &n);
	*elems = NIL;
	for (i = 0; i < n; i++)
		if (!nulls[i])
			*elems = lappend(*elems, DatumGetPointer(datums[i]));
}

/* The UTC midnight at or before an instant. */
static TimestampTz
day_floor(TimestampTz t)
{
	TimestampTz r = t % USECS_PER_DAY;

	return r < 0 ? t - r - USECS_PER_DAY : t - r;
}

/* The UTC midnight at or after an instant. */
static TimestampTz
day_ceil(TimestampTz t)
{
	TimestampTz f = day_floor(t);

	return f == t ? t : f + USECS_PER_DAY;
}

/*
 * One bound of a moment_range: the instant itself (fixed_utc), or, for a
 * resource whose search may apply bounds by whole days, the UTC day that
 * keeps every object the instant would (its midnight at or before for
 * on_or_after, at or after for before), as a fixed_local_date: with
 * x-tz-offset 0, and read exactly or by day, it means that midnight.
 */
static void
append_bound(StringInfo buf, const char *which, TimestampTz at, bool by_day)
{
	appendStringInfo(buf, ", \"%s\": ", which);
	if (by_day)
	{
		bool		after = strcmp(which, "on_or_after") == 0;
		TimestampTz day = after ? day_floor(at) : day_ceil(at);

		appendStringInfoString(buf, "{\"type\": \"fixed_local_date\", \"value\": ");
		if (!close_format_date(buf, (DateADT) (day / USECS_PER_DAY)))
			appendStringInfoString(buf, after ? "\"0001-01-01\"" : "\"9999-12-31\"");
		appendStringInfoString(buf, ", \"which\": \"start\"}");
		return;
	}
	appendStringInfoString(buf, "{\"type\": \"fixed_utc\", \"value\": ");
	if (!close_format_timestamp(buf, at))
		appendStringInfoString(buf, strcmp(which, "on_or_after") == 0
							   ? "\"0001-01-01T00:00:00.000000+00:00\""
							   : "\"9999-12-31T23:59:59.999999+00:00\"");
	appendStringInfoChar(buf, '}');
}

/* A moment_range with the bounds asked for (instants, UTC). */
static void
append_moment_range(StringInfo buf, bool has_after, TimestampTz after,
					bool has_before, TimestampTz before, bool by_day)
{
	appendStringInfoString(buf, "{\"type\": \"moment_range\"");
	if (has_after)
		append_bound(buf, "on_or_after", after, by_day);
	if (has_before)
		append_bound(buf, "before", before, by_day);
	appendStringInfoChar(buf, '}');
}

/* The numeric a + sign * b, as text (a and b numeric text). */
static char *
numeric_text_shifted(const char *a, const char *b, int sign)
{
	Datum		x = DirectFunctionCall3(numeric_in, CStringGetDatum(a),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
	Datum		y = DirectFunctionCall3(numeric_in, CStringGetDatum(b),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));

	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   sign < 0
											   ? DirectFunctionCall2(numeric_sub, x, y)
											   : DirectFunctionCall2(numeric_add, x, y)));
}

/*
 * The condition of one node for a known value.  Every condition finds at
 * least the rows SQL would: NULL finds nothing; ranges are widened past
 * any difference of precision (a second, a day, half a unit of the last
 * place the column keeps) and made inclusive.
 */
/*
 * The instant a date or timestamp condition's value names, and how far a
 * bound is widened around it (a day for a date, a second for a moment, as
 * Close's precision may be coarser); false for infinity, which bounds
 * nothing.
 */
static bool
moment_bound(int cond, Datum value, TimestampTz *at, int64 *widen)
{
	if (cond == CLOSE_SEARCH_DATE)
	{
		DateADT		date = DatumGetDateADT(value);

		if (DATE_NOT_FINITE(date))
			return false;
		*at = (TimestampTz) date * USECS_PER_DAY;
		*widen = USECS_PER_DAY;
		return true;
	}
	*at = DatumGetTimestampTz(value);
	if (TIMESTAMP_NOT_FINITE(*at))
		return false;
	*widen = USECS_PER_SEC;
	return true;
}

/* Whether a text value is empty or spaces only. */
static bool
text_is_blank(Datum value)
{
	text	   *t = DatumGetTextPP(value);
	const char *p = VARDATA_ANY(t);
	const char *end = p + VARSIZE_ANY_EXHDR(t);

	for (; p < end; p++)
		if (!isspace((unsigned char) *p))
			return false;
	return true;
}

static void
append_condition(StringInfo buf, const CloseResource *res, const char *key,
				 const char *field, int cond, int op,
				 const char *half_unit, bool negate, Datum value, bool isnull,
				 Oid type)
{
	StringInfoData c;
	List	   *elems = NIL;
	ListCell   *lc;

	if (isnull)
	{
		/* "= NULL", "<> NULL", "< NULL": never true */
		appendStringInfoString(buf, MATCH_NOTHING);
		return;
	}

	initStringInfo(&c);
	switch (cond)
	{
		case CLOSE_SEARCH_TERM:
		case CLOSE_SEARCH_REFERENCE:
			if (cond == CLOSE_SEARCH_REFERENCE)
			{
				const CloseResourceKey *k = close_resource_key(res, key);

				if (k == NULL || k->reference_type == NULL)
					elog(ERROR, "key \"%s\" has no reference type", key);
				appendStringInfoString(&c, "{\"type\": \"reference\", \"reference_type\": ");
				escape_json(&c, k->reference_type);
				appendStringInfoString(&c, ", \"object_ids\": [");
			}
			else
				appendStringInfoString(&c, "{\"type\": \"term\", \"values\": [");
			if (op == CLOSE_SEARCH_OP_ANY)
			{
				text_elements(value, &elems);
				if (elems == NIL)
				{
					appendStringInfoString(buf, MATCH_NOTHING);
					return;
				}
				foreach(lc, elems)
				{
					if (lc != list_head(elems))
						appendStringInfoString(&c, ", ");
					append_text(&c, PointerGetDatum(lfirst(lc)));
				}
			}
			else
				append_text(&c, value);
			appendStringInfoString(&c, "]}");
			break;

		case CLOSE_SEARCH_TEXT:
			if (op == CLOSE_SEARCH_OP_ANY)
			{
				text_elements(value, &elems);
				if (elems == NIL)
				{
					appendStringInfoString(buf, MATCH_NOTHING);
					return;
				}
				appendStringInfoString(buf, "{\"type\": \"or\", \"queries\": [");
				foreach(lc, elems)
				{
					if (lc != list_head(elems))
						appendStringInfoString(buf, ", ");
					append_condition(buf, res, key, field, cond,
									 CLOSE_SEARCH_OP_EQ, half_unit, false,
									 PointerGetDatum(lfirst(lc)), false, type);
				}
				appendStringInfoString(buf, "]}");
				return;
			}
			/*
			 * An empty value (or one of spaces only): Close's sheets do not
			 * say that a text search finds the records holding it (a search
			 * engine may take it as no value at all), so it bounds nothing.
			 */
			if (text_is_blank(value))
			{
				appendStringInfoString(buf, "{\"type\": \"match_all\"}");
				return;
			}
			appendStringInfoString(&c, "{\"type\": \"text\", \"mode\": \"exact_value\", \"value\": ");
			append_text(&c, value);
			appendStringInfoChar(&c, '}');
			break;

		case CLOSE_SEARCH_NUMBER:
			{
				Oid			outfn;
				bool		isvarlena;
				char	   *text;

				getTypeOutputInfo(type, &outfn, &isvarlena);
				text = OidOutputFunctionCall(outfn, value);
				/* NaN and infinity bound nothing a search can express */
				if (pg_strcasecmp(text, "NaN") == 0 || strstr(text, "nfinity"))
				{
					appendStringInfoString(buf, "{\"type\": \"match_all\"}");
					return;
				}
				appendStringInfoString(&c, "{\"type\": \"number_range\"");
				if (op != CLOSE_SEARCH_OP_LE)
					appendStringInfo(&c, ", \"gte\": %s", half_unit[0]
									 ? numeric_text_shifted(text, half_unit, -1)
									 : text);
				if (op != CLOSE_SEARCH_OP_GE)
					appendStringInfo(&c, ", \"lte\": %s", half_unit[0]
									 ? numeric_text_shifted(text, half_unit, 1)
									 : text);
				appendStringInfoChar(&c, '}');
				break;
			}

		case CLOSE_SEARCH_MOMENT:
		case CLOSE_SEARCH_DATE:
			{
				TimestampTz at;
				int64		widen;

				if (!moment_bound(cond, value, &at, &widen))
				{
					appendStringInfoString(buf, "{\"type\": \"match_all\"}");
					return;
				}
				append_moment_range(&c, op != CLOSE_SEARCH_OP_LE, at - widen,
									op != CLOSE_SEARCH_OP_GE,
									at + widen + (cond == CLOSE_SEARCH_DATE ? USECS_PER_DAY : 0),
									res->search_day_bounds);
				break;
			}
		default:
			elog(ERROR, "unknown search condition %d", cond);
	}

	appendStringInfo(buf, "{\"type\": \"field_condition\", \"field\": %s, \"condition\": %s%s}",
					 field, c.data, negate ? ", \"negate\": true" : "");
}

static void
append_node(StringInfo buf, const CloseResource *res, List *node,
			CloseSearchValues *vals)
{
	int			kind = intVal(linitial(node));
	bool		negate = intVal(lsecond(node)) != 0;

	if (kind == CLOSE_SEARCH_COND)
	{
		char	   *field = strVal(lthird(node));
		int			cond = intVal(list_nth(node, 3));
		int			op = intVal(list_nth(node, 4));
		int			index = intVal(list_nth(node, 5));

		if (!vals->known[index])
		{
			/* EXPLAIN: a value known only at run time */
			appendStringInfo(buf, "{\"type\": \"field_condition\", \"field\": %s, \"condition\": {\"%s\": ",
							 field,
							 cond == CLOSE_SEARCH_TERM ? "term" :
							 cond == CLOSE_SEARCH_REFERENCE ? "reference" :
							 cond == CLOSE_SEARCH_TEXT ? "text" :
							 cond == CLOSE_SEARCH_NUMBER ? "number_range" : "moment_range");
			escape_json(buf, psprintf("{%s}", vals->descriptions[index]));
			appendStringInfo(buf, "}%s}", negate ? ", \"negate\": true" : "");
			return;
		}
		append_condition(buf, res, strVal(list_nth(node, 6)), field, cond, op,
						 strVal(list_nth(node, 7)), negate,
						 vals->values[index], vals->nulls[index],
						 vals->types[index]);
		return;
	}
	else
	{
		ListCell   *lc;

		appendStringInfo(buf, "{\"type\": \"%s\", \"queries\": [",
						 kind == CLOSE_SEARCH_AND ? "and" : "or");
		for_each_from(lc, node, 2)
		{
			if (foreach_current_index(lc) > 2)
				appendStringInfoString(buf, ", ");
			append_node(buf, res, (List *) lfirst(lc), vals);
		}
		appendStringInfo(buf, "]%s}", negate ? ", \"negate\": true" : "");
	}
}

/* Room for n condition values, none known yet (descriptions for EXPLAIN). */
void
close_search_values_alloc(int n, bool described, CloseSearchValues *vals)
{
	n = Max(n, 1);
	vals->values = palloc0(sizeof(Datum) * n);
	vals->nulls = palloc0(sizeof(bool) * n);
	vals->types = palloc0(sizeof(Oid) * n);
	vals->known = palloc0(sizeof(bool) * n);
	vals->descriptions = described ? palloc0(sizeof(char *) * n) : NULL;
}

/*
 * The values of a search's conditions, computed now from their expression
 * states, in the current memory context.
 */
void
close_search_evaluate(List *value_states, ExprContext *econtext,
					  CloseSearchValues *vals)
{
	ListCell   *lc;
	int			i = 0;

	close_search_values_alloc(list_length(value_states), false, vals);
	foreach(lc, value_states)
	{
		ExprState  *state = (ExprState *) lfirst(lc);

		vals->values[i] = ExecEvalExpr(state, econtext, &vals->nulls[i]);
		vals->types[i] = exprType((Node *) state->expr);
		vals->known[i] = true;
		i++;
	}
}

/*
 * The query's conditions, rendered: objects of the resource's type (custom
 * objects of the table's type if it has one), and each pushed node.  A
 * slice condition is added per request.
 */
char *
close_search_render_query(const CloseResource *res, List *nodes,
						  const char *type_id, CloseSearchValues *vals)
{
	StringInfoData buf;
	ListCell   *lc;

	if (res->search_type == NULL)
		elog(ERROR, "resource \"%s\" has no search object type", res->name);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"type\": \"object_type\", \"object_type\": ");
	escape_json(&buf, res->search_type);
	appendStringInfoChar(&buf, '}');
	if (type_id)
	{
		appendStringInfoString(&buf, ", {\"type\": \"field_condition\", \"field\": {\"type\": \"regular_field\", \"object_type\": \"custom_object\", \"field_name\": \"custom_object_type_id\"}, \"condition\": {\"type\": \"term\", \"values\": [");
		escape_json(&buf, type_id);
		appendStringInfoString(&buf, "]}}");
	}
	foreach(lc, nodes)
	{
		appendStringInfoString(&buf, ", ");
		append_node(&buf, res, (List *) lfirst(lc), vals);
	}
	return buf.data;
}

/* The _fields list for the record keys a scan needs, rendered. */
char *
close_search_render_fields(List *keys)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "\"id\", \"date_created\"");
	foreach(lc, keys)
	{
		const char *key = strVal(lfirst(lc));

		if (strcmp(key, "id") == 0 || strcmp(key, "date_created") == 0)
			continue;
		appendStringInfoString(&buf, ", ");
		escape_json(&buf, key);
	}
	return buf.data;
}

/* The sort of a search asked for in this order, rendered. */
static char *
render_sort(const CloseResource *res, int order)
{
	bool		updated = (order == CLOSE_SEARCH_ORDER_UPDATED_ASC ||
						   order == CLOSE_SEARCH_ORDER_UPDATED_DESC);
	bool		desc = (order == CLOSE_SEARCH_ORDER_CREATED_DESC ||
						order == CLOSE_SEARCH_ORDER_UPDATED_DESC);

	return psprintf("[{\"field\": %s, \"direction\": \"%s\"}]",
					FIELD_OF(res, updated ? "date_updated" : "date_created"),
					desc ? "desc" : "asc");
}

/*
 * The whole request body for one page; a slice's range is [lower, upper)
 * (NULL or "": unbounded), by day for a resource whose bounds may be read
 * so (then lower_at and upper_at, the instants, give the days).
 */
static char *
render_body(const CloseResource *res, const char *query, const char *fields,
			int page_limit, int64 results_limit, const char *slice_date,
			TimestampTz lower_at, const char *upper_date,
			TimestampTz upper_at, const char *cursor, int order)
{
	StringInfoData buf;
	bool		newest = (fields == NULL);	/* the newest object's date */
	bool		has_lower = slice_date && slice_date[0];
	bool		has_upper = upper_date && upper_date[0];

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"query\": {\"type\": \"and\", \"queries\": [%s", query);
	if (has_lower || has_upper)
	{
		appendStringInfo(&buf, ", {\"type\": \"field_condition\", \"field\": %s, \"condition\": ",
						 FIELD_OF(res, "date_created"));
		if (res->search_day_bounds)
			append_moment_range(&buf, has_lower, lower_at, has_upper, upper_at,
								true);
		else
		{
			/* the instants as they were written, to the microsecond */
			appendStringInfoString(&buf, "{\"type\": \"moment_range\"");
			if (has_lower)
			{
				appendStringInfoString(&buf, ", \"on_or_after\": {\"type\": \"fixed_utc\", \"value\": ");
				escape_json(&buf, slice_date);
				appendStringInfoChar(&buf, '}');
			}
			if (has_upper)
			{
				appendStringInfoString(&buf, ", \"before\": {\"type\": \"fixed_utc\", \"value\": ");
				escape_json(&buf, upper_date);
				appendStringInfoChar(&buf, '}');
			}
			appendStringInfoChar(&buf, '}');
		}
		appendStringInfoChar(&buf, '}');
	}
	if (newest)
	{
		appendStringInfo(&buf, "]}, \"_fields\": {\"%s\": [\"id\", \"date_created\"]}, \"sort\": [{\"field\": %s, \"direction\": \"desc\"}], \"_limit\": 1, \"cursor\": null}",
						 res->search_type, FIELD_OF(res, "date_created"));
		return buf.data;
	}
	appendStringInfo(&buf, "]}, \"_fields\": {\"%s\": [%s]}, \"sort\": %s, \"_limit\": %d, \"include_counts\": true",
					 res->search_type, fields, render_sort(res, order),
					 page_limit);
	if (results_limit > 0)
		appendStringInfo(&buf, ", \"results_limit\": " INT64_FORMAT, results_limit);
	appendStringInfoString(&buf, ", \"cursor\": ");
	if (cursor)
		escape_json(&buf, cursor);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The body EXPLAIN shows: the first page of the first slice. */
char *
close_search_render_explain(const CloseResource *res, const char *query,
							const char *fields, int page_limit,
							int64 results_limit, int order)
{
	return render_body(res, query, fields, page_limit, results_limit, NULL, 0,
					   NULL, 0, NULL, order);
}

/*
 * The body of a search that asks for the count alone: results_limit 0
 * (the documented way), with _limit kept at least 1.
 */
char *
close_search_render_count(const CloseResource *res, const char *query)
{
	return psprintf("{\"query\": {\"type\": \"and\", \"queries\": [%s]}, \"_fields\": {\"%s\": [\"id\"]}, \"_limit\": 1, \"results_limit\": 0, \"include_counts\": true}",
					query, res->search_type);
}

/*
 * Ask for the objects in another order than date_created ascending: then
 * the search is one query, capped by its results_limit (at most the
 * objects one query returns), read by its cursor and never sliced, since
 * slices are cut by date_created ascending.  The plan makes sure of the
 * cap (close_fdw.c).
 */
void
close_search_set_order(CloseSearchState *ss, int order)
{
	if (order <= CLOSE_SEARCH_ORDER_CREATED_ASC)
		return;
	if (ss->results_limit <= 0 || ss->results_limit > SEARCH_MAX_PER_QUERY)
		elog(ERROR, "a sorted search needs a results_limit of at most %d",
			 SEARCH_MAX_PER_QUERY);
	ss->order = order;
	ss->max_concurrency = 1;
}

/* ---- summarising it, for EXPLAIN's text format ---- */

/* A value as the summary shows it: quoted unless a number. */
static char *
summary_value(Datum value, Oid type, bool quote)
{
	Oid			outfn;
	bool		isvarlena;
	char	   *text;

	getTypeOutputInfo(type, &outfn, &isvarlena);
	text = OidOutputFunctionCall(outfn, value);
	return quote ? quote_literal_cstr(text) : text;
}

/* The instant a moment_range bound is sent as, quoted. */
static char *
summary_instant(TimestampTz at)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (!close_format_timestamp(&buf, at))
		return "infinity";
	/* close_format_timestamp writes a JSON string: make it SQL's quotes */
	buf.data[0] = '\'';
	buf.data[buf.len - 1] = '\'';
	return buf.data;
}

/*
 * One condition in words, as sent: ranges with the bounds the search gets
 * (inclusive, widened), text matches that may ignore case marked so.
 */
static void
append_summary(StringInfo buf, const CloseResource *res, List *node,
			   CloseSearchValues *vals)
{
	int			kind = intVal(linitial(node));
	bool		negate = intVal(lsecond(node)) != 0;
	ListCell   *lc;

	if (negate)
		appendStringInfoString(buf, "NOT ");
	if (kind != CLOSE_SEARCH_COND)
	{
		appendStringInfoChar(buf, '(');
		for_each_from(lc, node, 2)
		{
			if (foreach_current_index(lc) > 2)
				appendStringInfoString(buf, kind == CLOSE_SEARCH_AND
									   ? " AND " : " OR ");
			append_summary(buf, res, (List *) lfirst(lc), vals);
		}
		appendStringInfoChar(buf, ')');
		return;
	}
	else
	{
		int			cond = intVal(list_nth(node, 3));
		int			op = intVal(list_nth(node, 4));
		int			index = intVal(list_nth(node, 5));
		const char *key = strVal(list_nth(node, 6));
		const char *half_unit = strVal(list_nth(node, 7));
		const char *how = cond == CLOSE_SEARCH_TERM ? "" :
			cond == CLOSE_SEARCH_TEXT ? " (exact value, any case)" : "";
		bool		quote = cond != CLOSE_SEARCH_NUMBER;
		Datum		value = vals->values[index];
		Oid			type = vals->types[index];

		appendStringInfo(buf, "%s ", key);
		if (!vals->known[index])
		{
			appendStringInfo(buf, "%s {%s}%s",
							 op == CLOSE_SEARCH_OP_ANY ? "= ANY" :
							 op == CLOSE_SEARCH_OP_LE ? "<=" :
							 op == CLOSE_SEARCH_OP_GE ? ">=" : "=",
							 vals->descriptions[index], how);
			return;
		}
		if (vals->nulls[index])
		{
			appendStringInfoString(buf, "= NULL (matches nothing)");
			return;
		}
		if (op == CLOSE_SEARCH_OP_ANY)
		{
			List	   *elems;
			Oid			elemtype = get_element_type(type);

			text_elements(value, &elems);
			appendStringInfoString(buf, "IN (");
			foreach(lc, elems)
				appendStringInfo(buf, "%s%s", lc == list_head(elems) ? "" : ", ",
								 summary_value(PointerGetDatum(lfirst(lc)),
											   OidIsValid(elemtype) ? elemtype : TEXTOID,
											   true));
			appendStringInfo(buf, ")%s", how);
			return;
		}
		if (cond == CLOSE_SEARCH_TERM || cond == CLOSE_SEARCH_TEXT ||
			cond == CLOSE_SEARCH_REFERENCE)
		{
			appendStringInfo(buf, "= %s%s", summary_value(value, type, quote), how);
			return;
		}
		if (cond == CLOSE_SEARCH_NUMBER)
		{
			char	   *text = summary_value(value, type, false);

			if (pg_strcasecmp(text, "NaN") == 0 || strstr(text, "nfinity"))
			{
				appendStringInfoString(buf, "anything (no bound)");
				return;
			}
			if (half_unit[0] && op != CLOSE_SEARCH_OP_LE)
				appendStringInfo(buf, ">= %s", numeric_text_shifted(text, half_unit, -1));
			else if (op != CLOSE_SEARCH_OP_LE)
				appendStringInfo(buf, ">= %s", text);
			if (op == CLOSE_SEARCH_OP_EQ)
				appendStringInfo(buf, " AND %s ", key);
			if (half_unit[0] && op != CLOSE_SEARCH_OP_GE)
				appendStringInfo(buf, "<= %s", numeric_text_shifted(text, half_unit, 1));
			else if (op != CLOSE_SEARCH_OP_GE)
				appendStringInfo(buf, "<= %s", text);
			return;
		}
		else
		{
			TimestampTz at;
			int64		widen;
			TimestampTz lower;
			TimestampTz upper;

			if (!moment_bound(cond, value, &at, &widen))
			{
				appendStringInfoString(buf, "anything (no bound)");
				return;
			}
			lower = at - widen;
			upper = at + widen + (cond == CLOSE_SEARCH_DATE ? USECS_PER_DAY : 0);
			/* whole UTC days, as sent (see append_bound) */
			if (res->search_day_bounds)
			{
				lower = day_floor(lower);
				upper = day_ceil(upper);
			}
			if (op != CLOSE_SEARCH_OP_LE)
				appendStringInfo(buf, ">= %s", summary_instant(lower));
			if (op == CLOSE_SEARCH_OP_EQ)
				appendStringInfo(buf, " AND %s ", key);
			if (op != CLOSE_SEARCH_OP_GE)
				appendStringInfo(buf, "< %s", summary_instant(upper));
		}
	}
}

/*
 * The search in a few lines, for EXPLAIN's text format (VERBOSE and the
 * other formats show the exact body): what it reads, then each condition
 * of the query on a line of its own.
 */
List *
close_search_render_summary(const CloseResource *res, List *nodes,
							const char *type_id, CloseSearchValues *vals,
							int64 results_limit)
{
	List	   *lines = NIL;
	ListCell   *lc;
	char	   *what = type_id
		? psprintf("custom objects of type %s, by date_created", type_id)
		: res == close_resource_default()	/* the one with types */
		? pstrdup("custom objects of every type, by date_created")
		: psprintf("%s, by date_created%s", res->plural,
				   res->search_day_bounds ? " (date bounds by whole UTC days)" : "");

	if (results_limit > 0)
		what = psprintf("%s, the first " INT64_FORMAT, what, results_limit);
	lines = lappend(lines, makeString(what));
	foreach(lc, nodes)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		append_summary(&buf, res, (List *) lfirst(lc), vals);
		lines = lappend(lines, makeString(buf.data));
	}
	return lines;
}

/* ---- running it ---- */

CloseSearchState *
close_search_begin(MemoryContext parent, UserMapping *user,
				   const CloseResource *res, const char *query,
				   const char *fields, int page_limit, int64 results_limit,
				   int max_concurrency)
{
	CloseSearchState *ss = MemoryContextAllocZero(parent, sizeof(CloseSearchState));

	ss->user = user;
	ss->res = res;
	ss->page_cxt = AllocSetContextCreate(parent, "close_fdw search page",
										 ALLOCSET_DEFAULT_SIZES);
	ss->cursor_cxt = AllocSetContextCreate(parent, "close_fdw search cursor",
										   ALLOCSET_SMALL_SIZES);
	ss->query = MemoryContextStrdup(parent, query);
	ss->fields = MemoryContextStrdup(parent, fields);
	ss->page_limit = Min(Max(page_limit, 1), SEARCH_MAX_PAGE);
	ss->results_limit = results_limit;
	/* a LIMIT wants the first objects: those come one slice at a time */
	ss->max_concurrency = results_limit > 0 ? 1 : Max(max_concurrency, 1);
	ss->slice_total = -1;
	return ss;
}

/*
 * A search answered whole by the cache (answers.c): body is its
 * {"data": [...]}, whose records close_search_next returns in their order.
 */
CloseSearchState *
close_search_from_answer(MemoryContext parent, UserMapping *user,
						 const char *body, size_t len)
{
	CloseSearchState *ss = MemoryContextAllocZero(parent, sizeof(CloseSearchState));
	CloseResponse response = {0};
	MemoryContext oldcxt;
	struct json_object *root;
	struct json_object *data;

	ss->user = user;
	ss->replay = true;
	ss->page_cxt = AllocSetContextCreate(parent, "close_fdw search page",
										 ALLOCSET_DEFAULT_SIZES);
	response.status = 200;
	response.body = (char *) body;
	response.body_len = len;
	oldcxt = MemoryContextSwitchTo(ss->page_cxt);
	root = close_parse_answer("POST", "/data/search/", &response, ss->page_cxt);
	if (close_json_kind(root) != CLOSE_JSON_OBJECT ||
		(data = close_json_object_get(root, "data")) == NULL ||
		close_json_kind(data) != CLOSE_JSON_ARRAY)
		elog(ERROR, "a cached search answer lacks its data");
	MemoryContextSwitchTo(oldcxt);
	ss->items = data;
	ss->nitems = close_json_array_length(data);
	return ss;
}

int64
close_search_requests(CloseSearchState *ss)
{
	int64		n = 0;
	int			i;

	if (ss == NULL)
		return 0;
	for (i = 0; i < ss->nparts; i++)
		n += ss->parts[i]->requests;
	return n + ss->requests;
}

/*
 * The search is read no further (its statement has run): the parts'
 * requests still in flight are given up.  Returns how many of them had
 * gone out, for the caller to count (a part's request is otherwise counted
 * when its answer is taken, which these never are).
 */
int
close_search_abandon(CloseSearchState *ss)
{
	int			unsent;
	int			went_out;
	int			i;

	if (ss == NULL || ss->flight == NULL)
		return 0;
	went_out = close_flight_abandon(ss->flight, &unsent);
	for (i = 0; i < ss->nparts; i++)
		ss->parts[i]->flying = false;
	return went_out;
}

int64
close_search_retries(CloseSearchState *ss)
{
	int64		n = 0;
	int			i;

	if (ss == NULL)
		return 0;
	for (i = 0; i < ss->nparts; i++)
		n += ss->parts[i]->retries;
	return n + ss->retries;
}

double
close_search_waited_ms(CloseSearchState *ss)
{
	double		ms = 0;
	int			i;

	if (ss == NULL)
		return 0;
	for (i = 0; i < ss->nparts; i++)
		ms += ss->parts[i]->waited_ms;
	return ms + ss->waited_ms;
}

/*
 * The body of the next page's request: the current slice's next page, or
 * the first of a new one (whose state is set up here).
 */
static char *
prepare_page(CloseSearchState *ss, bool new_slice)
{
	if (new_slice)
	{
		MemoryContextReset(ss->cursor_cxt);
		ss->cursor = NULL;
		ss->slice_returned = 0;
		ss->slice_total = -1;
		ss->slice_progress = false;
		ss->slice_have_prev = false;
		strlcpy(ss->slice_date, ss->last_date[0] ? ss->last_date : ss->lower_date,
				sizeof(ss->slice_date));
		ss->slice_instant = ss->last_date[0] ? ss->last_instant
			: ss->lower_instant;

		/*
		 * Constant within a slice (a cursor belongs to one body).  A slice
		 * from the last instant seen first repeats the objects returned at
		 * it: they count towards its results_limit too.  By whole days, it
		 * repeats the day's objects before that instant too: no limit
		 * then (the rows still stop at the LIMIT).
		 */
		ss->slice_results_limit = ss->results_limit > 0
			? ss->results_limit - ss->returned +
			(ss->last_date[0] ? list_length(ss->boundary_ids) : 0)
			: -1;
		if (ss->res->search_day_bounds && ss->last_date[0])
			ss->slice_results_limit = -1;
	}
	return render_body(ss->res, ss->query, ss->fields, ss->page_limit,
					   ss->slice_results_limit, ss->slice_date,
					   ss->slice_instant, ss->upper_date, ss->upper_instant,
					   new_slice ? NULL : ss->cursor, ss->order);
}

/*
 * Take the answer to a page's request.  Returns false, without an error,
 * when Close refuses a cursor (it may have expired sooner than we
 * thought): the caller starts a new slice.
 */
static bool
take_page(CloseSearchState *ss, bool new_slice, CloseResponse *response)
{
	CloseConnection *conn = close_get_connection(ss->user);
	MemoryContext oldcxt;
	struct json_object *root;
	struct json_object *data;
	struct json_object *cursor;
	struct json_object *count;
	int			i;

	ss->requests += response->attempts;
	ss->retries += response->attempts - 1;
	ss->waited_ms += response->waited_ms;
	if (response->status == 400 && !new_slice &&
		ss->order <= CLOSE_SEARCH_ORDER_CREATED_ASC &&
		++ss->cursor_refusals <= SEARCH_CURSOR_REFUSALS)
		return false;
	if (response->status != 200)
		close_report_http_error(conn, "POST", "/data/search/", response, NULL);
	oldcxt = MemoryContextSwitchTo(ss->page_cxt);
	root = close_parse_answer("POST", "/data/search/", response, ss->page_cxt);
	if (close_json_kind(root) != CLOSE_JSON_OBJECT ||
		(data = close_json_object_get(root, "data")) == NULL ||
		close_json_kind(data) != CLOSE_JSON_ARRAY)
		close_report_bad_answer("POST", "/data/search/",
								"Expected {\"data\": [...], \"cursor\": ...}.");
	for (i = 0; i < close_json_array_length(data); i++)
		if (close_json_kind(close_json_array_get(data, i)) != CLOSE_JSON_OBJECT)
			close_report_bad_answer("POST", "/data/search/",
									"An item of \"data\" is not a JSON object.");

	count = close_json_object_get(root, "count");
	if (count && close_json_kind(count) == CLOSE_JSON_OBJECT &&
		(count = close_json_object_get(count, "total")) != NULL &&
		close_json_kind(count) == CLOSE_JSON_NUMBER)
	{
		size_t		len;
		const char *text = close_json_scalar_text(count, &len);

		if (text)
			ss->slice_total = strtoll(text, NULL, 10);
	}

	cursor = close_json_object_get(root, "cursor");
	MemoryContextSwitchTo(ss->cursor_cxt);
	if (cursor && close_json_kind(cursor) == CLOSE_JSON_STRING)
	{
		size_t		len;

		ss->cursor = pstrdup(close_json_scalar_text(cursor, &len));
		ss->cursor_time = GetCurrentTimestamp();
	}
	else
		ss->cursor = NULL;
	MemoryContextSwitchTo(oldcxt);

	ss->slice_started = true;
	ss->items = data;
	ss->nitems = close_json_array_length(data);
	ss->next_item = 0;
	/*
	 * A page may be short, even empty (Close skips objects deleted since
	 * the query ran): go on with its cursor, but not forever.
	 */
	if (ss->cursor && ss->nitems == 0)
	{
		if (++ss->empty_pages > SEARCH_EMPTY_PAGES)
			close_report_bad_answer("POST", "/data/search/",
									psprintf("%d answers in a row have a cursor but no objects.",
											 ss->empty_pages));
	}
	else
		ss->empty_pages = 0;
	ss->slice_returned += ss->nitems;
	return true;
}

/* Forget the page read; its memory goes. */
static void
drop_page(CloseSearchState *ss)
{
	MemoryContextReset(ss->page_cxt);
	ss->items = NULL;
	ss->nitems = 0;
	ss->next_item = 0;
}

/*
 * Request the next page of the current slice, or the first of a new one,
 * one request (with retries).  Returns false as take_page does.
 */
static bool
fetch_page(CloseSearchState *ss, bool new_slice)
{
	CloseConnection *conn = close_get_connection(ss->user);
	CloseResponse response;
	MemoryContext oldcxt;
	char	   *body;

	drop_page(ss);
	oldcxt = MemoryContextSwitchTo(ss->page_cxt);
	body = prepare_page(ss, new_slice);
	close_http_request(conn, "POST", "/data/search/", body, &response);
	MemoryContextSwitchTo(oldcxt);
	return take_page(ss, new_slice, &response);
}

/*
 * The record's date_created as an instant (compared as instants, not as
 * text, whatever fraction or offset the API writes); false if it has none.
 */
static bool
record_instant(struct json_object *record, TimestampTz *instant)
{
	struct json_object *date = close_json_object_get(record, "date_created");
	size_t		len;
	const char *text;

	if (date == NULL || close_json_kind(date) != CLOSE_JSON_STRING)
		return false;
	text = close_json_scalar_text(date, &len);
	/* Close's record dates carry an offset (see the API sheet) */
	*instant = close_read_timestamp(text, TIMESTAMPTZOID, -1);
	return true;
}

static const char *
record_id(struct json_object *record)
{
	struct json_object *id = close_json_object_get(record, CLOSE_KEY_ID);
	size_t		len;

	if (id == NULL || close_json_kind(id) != CLOSE_JSON_STRING)
		return NULL;
	return close_json_scalar_text(id, &len);
}

/* An instant as ISO 8601 UTC, without quotes, into out[64]. */
static void
format_instant(TimestampTz instant, char *out)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (!close_format_timestamp(&buf, instant))
		close_report_bad_answer("POST", "/data/search/",
								"An object's date_created is out of range.");
	/* without the quotes close_format_timestamp puts around it */
	strlcpy(out, buf.data + 1, 64);
	out[strlen(out) - 1] = '\0';
	pfree(buf.data);
}

/*
 * Does the slice that just ended leave objects out?  When it returned the
 * per-query maximum, or fewer than its count.
 */
static bool
slice_was_cut(CloseSearchState *ss)
{
	if (ss->slice_total >= 0)
		return ss->slice_total > ss->slice_returned;
	return ss->slice_returned >= SEARCH_MAX_PER_QUERY;
}

/*
 * The next record of the page being read, or NULL when it is read (or a
 * LIMIT is reached).  Records repeated by a new slice (those at its
 * starting instant already returned) are skipped.
 */
static struct json_object *
next_buffered(CloseSearchState *ss)
{
	while (ss->items && ss->next_item < ss->nitems)
	{
		struct json_object *record = close_json_array_get(ss->items,
														  ss->next_item++);
		const char *id = record_id(record);
		TimestampTz instant;
		MemoryContext oldcxt;
		ListCell   *lc;
		bool		seen = false;

		if (ss->results_limit > 0 && ss->returned >= ss->results_limit)
			return NULL;
		if (id == NULL || !record_instant(record, &instant))
			close_report_bad_answer("POST", "/data/search/",
									"An object lacks its id or date_created.");

		/* another order: one query, nothing repeated, nothing to check */
		if (ss->order > CLOSE_SEARCH_ORDER_CREATED_ASC)
		{
			ss->returned++;
			return record;
		}

		/* a slice's results come in date_created order */
		if (ss->slice_have_prev && instant < ss->slice_prev)
			close_report_bad_answer("POST", "/data/search/",
									"The objects are not in date_created order.");
		ss->slice_have_prev = true;
		ss->slice_prev = instant;

		/*
		 * Outside the part's range, or before the last instant returned (a
		 * slice that starts again at the midnight before it repeats the
		 * day's objects up to it): another part's, or returned already.
		 */
		if ((ss->lower_date[0] && instant < ss->lower_instant) ||
			(ss->upper_date[0] && instant >= ss->upper_instant) ||
			(ss->have_last && instant < ss->last_instant))
			continue;

		/* a later date resets the ids seen at the last one */
		oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(ss));
		if (!ss->have_last || instant != ss->last_instant)
		{
			list_free_deep(ss->boundary_ids);
			ss->boundary_ids = NIL;
			ss->have_last = true;
			ss->last_instant = instant;
			format_instant(instant, ss->last_date);
		}
		else
		{
			foreach(lc, ss->boundary_ids)
				if (strcmp((char *) lfirst(lc), id) == 0)
					seen = true;
		}
		if (!seen)
			ss->boundary_ids = lappend(ss->boundary_ids, pstrdup(id));
		MemoryContextSwitchTo(oldcxt);

		if (seen)
			continue;			/* repeated by a new slice */
		ss->slice_progress = true;
		ss->returned++;
		return record;
	}
	return NULL;
}

/*
 * What to request once a page is read: the slice's next page (*new_slice
 * false), a new slice, or nothing (false: the search has ended).
 */
static bool
next_request(CloseSearchState *ss, bool *new_slice)
{
	if (ss->results_limit > 0 && ss->returned >= ss->results_limit)
		return false;
	if (ss->order > CLOSE_SEARCH_ORDER_CREATED_ASC)
	{
		/* one query, read to its end by its cursor, whatever its age */
		*new_slice = !ss->slice_started;
		if (!ss->slice_started || ss->cursor != NULL)
			return true;
		/* ended short of its limit and its count: cut, not complete */
		if (ss->slice_total >= 0 &&
			ss->returned < Min(ss->results_limit, ss->slice_total))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("could not list the first " INT64_FORMAT " %s in the order asked for",
							Min(ss->results_limit, ss->slice_total),
							ss->res->plural),
					 errdetail("The sorted search ended after " INT64_FORMAT " objects, but its count is " INT64_FORMAT ".",
							   ss->returned, ss->slice_total)));
		return false;
	}
	if (!ss->slice_started || ss->restart)
	{
		ss->restart = false;
		*new_slice = true;
		return true;
	}
	if (ss->cursor &&
		(ss->slice_progress == false ||
		 !TimestampDifferenceExceeds(ss->cursor_time, GetCurrentTimestamp(),
									 SEARCH_CURSOR_MAX_AGE_MS)))
	{
		*new_slice = false;
		return true;
	}
	if (ss->cursor || slice_was_cut(ss))
	{
		/*
		 * Start again at the last instant seen: the cursor is getting old,
		 * or the query stopped at its cap.  A cut slice that brought nothing
		 * new cannot get further: more objects than one query returns share
		 * one instant.
		 */
		if (!ss->cursor && !ss->slice_progress)
		{
			/*
			 * Without a count too: this slice returned what one query
			 * returns at most (else it was not cut), and nothing past the
			 * last instant, so the objects after it are not known to be
			 * all read.
			 */
			if (ss->res->search_day_bounds)
			{
				/*
				 * By whole days, a slice starts at the midnight before the
				 * last instant: that day holds more than one query returns.
				 */
				char		day[64];

				format_instant(day_floor(ss->last_instant), day);
				day[10] = '\0';
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("could not list all %s: more were created on %s (UTC) than one search returns (" INT64_FORMAT ")",
								ss->res->plural, day, ss->slice_returned),
						 errdetail("close_fdw cuts searches of %s by whole UTC days, since Close may apply their date bounds by day only.",
								   ss->res->plural)));
			}
			/*
			 * What stopped the query is what it returned: 10,000, or (its
			 * count being more) fewer, Close's cap being lower, or Close
			 * counting objects it does not give any more.
			 */
			if (ss->slice_total >= 0)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("could not list all %s: more share the date_created %s than one search returns (" INT64_FORMAT ")",
								ss->res->plural, ss->last_date,
								ss->slice_returned),
						 errdetail("The search ended after " INT64_FORMAT " object%s where its count is " INT64_FORMAT ", and a new query from that date_created found nothing more.",
								   ss->slice_returned,
								   ss->slice_returned == 1 ? "" : "s",
								   ss->slice_total),
						 errhint("Close may still count objects deleted moments ago: try again.")));
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("could not list all %s: more than %d share the date_created %s",
							ss->res->plural, SEARCH_MAX_PER_QUERY, ss->last_date),
					 errdetail("A Close search returns at most %d objects per query, and slices are cut by date_created.",
							   SEARCH_MAX_PER_QUERY)));
		}
		*new_slice = true;
		return true;
	}
	return false;
}

/* Add a part over [lower, upper) ("": unbounded) to the search. */
static CloseSearchState *
add_part(CloseSearchState *ss, const char *lower_date,
		 TimestampTz lower_instant, const char *upper_date,
		 TimestampTz upper_instant)
{
	MemoryContext parent = GetMemoryChunkContext(ss);
	CloseSearchState *part;

	if (ss->nparts == ss->parts_size)
	{
		ss->parts_size = Max(ss->parts_size * 2, ss->max_concurrency);
		ss->parts = ss->parts
			? repalloc(ss->parts, sizeof(CloseSearchState *) * ss->parts_size)
			: MemoryContextAlloc(parent, sizeof(CloseSearchState *) * ss->parts_size);
	}
	part = close_search_begin(parent, ss->user, ss->res, ss->query, ss->fields,
							  ss->page_limit, -1, 1);
	strlcpy(part->lower_date, lower_date, sizeof(part->lower_date));
	strlcpy(part->upper_date, upper_date, sizeof(part->upper_date));
	part->lower_instant = lower_instant;
	part->upper_instant = upper_instant;
	ss->parts[ss->nparts++] = part;
	return part;
}

/*
 * Cut [from, to) into n pieces of equal time: the first stays with part
 * (its range now ends at the first cut, and its next request starts a new
 * slice), the others become new parts, the last one ending where part's
 * range ended.  By whole days, the cuts are the UTC midnights at or before
 * those instants (fewer pieces when they coincide).  Returns the number of
 * cuts made (0: nothing changed).
 */
static int
cut_range(CloseSearchState *ss, CloseSearchState *part, TimestampTz from,
		  TimestampTz to, int n)
{
	bool		by_day = ss->res->search_day_bounds;
	TimestampTz points[CLOSE_MAX_CONCURRENCY + 1];
	TimestampTz floor_from = by_day ? day_floor(from) : from;
	int			npoints = 0;
	char		old_upper[64];
	TimestampTz old_upper_instant = part->upper_instant;
	char		lower[64];
	char		upper[64];
	int			i;

	n = Min(n, CLOSE_MAX_CONCURRENCY);
	for (i = 1; i < n; i++)
	{
		TimestampTz p = from + (to - from) / n * i;

		if (by_day)
			p = day_floor(p);
		if (p <= floor_from || (npoints > 0 && p <= points[npoints - 1]) ||
			(part->upper_date[0] && p >= part->upper_instant))
			continue;
		points[npoints++] = p;
	}
	if (npoints == 0 && by_day && day_floor(to) > floor_from &&
		!(part->upper_date[0] && day_floor(to) >= part->upper_instant))
		points[npoints++] = day_floor(to);
	if (npoints == 0)
		return 0;

	strlcpy(old_upper, part->upper_date, sizeof(old_upper));
	part->upper_instant = points[0];
	format_instant(part->upper_instant, part->upper_date);
	for (i = 0; i < npoints; i++)
	{
		format_instant(points[i], lower);
		if (i < npoints - 1)
			format_instant(points[i + 1], upper);
		(void) add_part(ss, lower, points[i],
						i < npoints - 1 ? upper : old_upper,
						i < npoints - 1 ? points[i + 1] : old_upper_instant);
	}
	return npoints;
}

/*
 * Cut what remains of a search into parts by date_created, when it is
 * worth it: the first page is read, and its count says at least two more
 * pages follow.  One request finds the newest object; the range from the
 * last instant read to it is cut evenly, the last part left open (objects
 * created meanwhile).  The first part goes on from the last instant read,
 * skipping the objects already returned at it.
 */
static bool
cut_into_parts(CloseSearchState *ss)
{
	CloseConnection *conn = close_get_connection(ss->user);
	MemoryContext oldcxt;
	CloseResponse response;
	struct json_object *root;
	struct json_object *data;
	CloseSearchState *first;
	int64		remaining;
	int			nparts;
	ListCell   *lc;

	if (ss->max_concurrency < 2 || ss->cursor == NULL || !ss->have_last ||
		ss->slice_total < 0)
		return false;
	remaining = ss->slice_total - ss->slice_returned;
	nparts = (int) Min((int64) ss->max_concurrency,
					   (remaining + ss->page_limit - 1) / ss->page_limit);
	if (nparts < 2)
		return false;

	drop_page(ss);
	oldcxt = MemoryContextSwitchTo(ss->page_cxt);
	close_http_request(conn, "POST", "/data/search/",
					   render_body(ss->res, ss->query, NULL, 1, -1, NULL, 0,
								   NULL, 0, NULL, 0),
					   &response);
	MemoryContextSwitchTo(oldcxt);
	ss->requests += response.attempts;
	ss->retries += response.attempts - 1;
	ss->waited_ms += response.waited_ms;
	if (response.status != 200)
		close_report_http_error(conn, "POST", "/data/search/", &response, NULL);
	root = close_parse_answer("POST", "/data/search/", &response, ss->page_cxt);
	if (close_json_kind(root) != CLOSE_JSON_OBJECT ||
		(data = close_json_object_get(root, "data")) == NULL ||
		close_json_kind(data) != CLOSE_JSON_ARRAY ||
		close_json_array_length(data) != 1 ||
		!record_instant(close_json_array_get(data, 0), &ss->newest))
		close_report_bad_answer("POST", "/data/search/",
								"Expected the newest object, with its date_created.");
	drop_page(ss);
	/* pieces shorter than a millisecond (or a day) could not be told apart */
	if (ss->res->search_day_bounds)
		nparts = (int) Min((int64) nparts,
						   (day_floor(ss->newest) - day_floor(ss->last_instant)) / USECS_PER_DAY + 1);
	else
		nparts = (int) Min((int64) nparts, (ss->newest - ss->last_instant) / 1000);
	if (nparts < 2)
		return false;

	/* the first part goes on where the first page ended */
	oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(ss));
	first = add_part(ss, "", 0, "", 0);
	first->have_last = true;
	first->last_instant = ss->last_instant;
	strlcpy(first->last_date, ss->last_date, sizeof(first->last_date));
	foreach(lc, ss->boundary_ids)
		first->boundary_ids = lappend(first->boundary_ids,
									  pstrdup((char *) lfirst(lc)));
	(void) cut_range(ss, first, ss->last_instant, ss->newest, nparts);
	ss->current_part = -1;
	ss->flight = close_flight_create(conn, GetMemoryChunkContext(ss),
									 ss->max_concurrency);
	ss->slot_part = palloc0(sizeof(CloseSearchState *) * ss->max_concurrency);
	MemoryContextSwitchTo(oldcxt);
	return true;
}

/*
 * Parts have ended: cut again the part with the most objects still to come
 * (its count says), from the last object of the page it just got to the
 * end of its range, into as many pieces as there are free places.
 */
static void
cut_busiest_part(CloseSearchState *ss, int live)
{
	CloseSearchState *busiest = NULL;
	int64		most = 0;
	TimestampTz from;
	TimestampTz to;
	int			i;
	int			n;

	for (i = 0; i < ss->nparts; i++)
	{
		CloseSearchState *part = ss->parts[i];
		int64		left = part->slice_total - part->slice_returned;

		if (!part->ended && part->cursor && part->nitems > 0 &&
			part->slice_total >= 0 && left > most)
		{
			busiest = part;
			most = left;
		}
	}
	if (busiest == NULL || most <= 2 * (int64) ss->page_limit)
		return;
	if (!record_instant(close_json_array_get(busiest->items,
											 busiest->nitems - 1), &from))
		return;					/* reported when the page is read */
	to = busiest->upper_date[0] ? busiest->upper_instant : ss->newest;
	n = (int) Min((int64) (ss->max_concurrency - live + 1),
				  (most + ss->page_limit - 1) / ss->page_limit);
	/* pieces shorter than a millisecond (or a day) could not be told apart */
	if (ss->res->search_day_bounds)
		n = (int) Min((int64) n, (day_floor(to) - day_floor(from)) / USECS_PER_DAY + 1);
	else
		n = (int) Min((int64) n, (to - from) / 1000);
	if (n < 2 || cut_range(ss, busiest, from, to, n) == 0)
		return;

	/* its cursor belongs to the old range: a new slice from its last object */
	MemoryContextReset(busiest->cursor_cxt);
	busiest->cursor = NULL;
	busiest->restart = true;
}

/*
 * Ask for the next page of every part that is not being read and has
 * nothing in flight or waiting, as far as free slots and the pacing allow
 * (the rest wait for a slot).  A part with nothing more to ask has ended;
 * the places it frees go to cutting the busiest part again.
 */
static void
launch_parts(CloseSearchState *ss)
{
	int			live = 0;
	int			i;

	for (i = 0; i < ss->nparts; i++)
	{
		CloseSearchState *part = ss->parts[i];
		MemoryContext oldcxt;
		char	   *body;
		int			slot;

		if (part->ended)
			continue;
		live++;
		if (part->flying || (part->items && part->next_item < part->nitems) ||
			!close_flight_can_start(ss->flight, "POST", "/data/search/"))
			continue;			/* busy, not read yet, or waits for a slot */
		if (!next_request(part, &part->flying_new_slice))
		{
			part->ended = true;
			live--;
			continue;
		}
		drop_page(part);
		oldcxt = MemoryContextSwitchTo(part->page_cxt);
		body = prepare_page(part, part->flying_new_slice);
		slot = close_flight_start(ss->flight, "POST", "/data/search/", body,
								  &part->flying_response);
		MemoryContextSwitchTo(oldcxt);
		Assert(slot >= 0);
		ss->slot_part[slot] = part;
		part->flying = true;
	}
	if (live < ss->max_concurrency)
		cut_busiest_part(ss, live);
}

/*
 * Collect one answer from the flight and make its part ready to read; what
 * did not come whole is asked again alone, with retries (without retries,
 * a failure is the error).  Returns false when nothing is in flight.
 */
static bool
collect_part(CloseSearchState *ss)
{
	CloseConnection *conn = close_get_connection(ss->user);
	int			slot = close_flight_wait(ss->flight);
	CloseSearchState *part;
	CloseResponse *r;

	if (slot < 0)
		return false;
	part = ss->slot_part[slot];
	r = &part->flying_response;
	part->flying = false;
	if (r->status != 200 && r->status != 400 &&
		(r->status != 0 || r->transport_error != 0) &&
		!close_http_may_retry(conn, r))
	{
		if (r->transport_error != 0)
			close_report_transport_error(conn, "POST", "/data/search/", r);
		close_report_http_error(conn, "POST", "/data/search/", r, NULL);
	}
	if (r->status != 200 && r->status != 400)
	{
		if (!fetch_page(part, part->flying_new_slice))
			fetch_page(part, true);
	}
	else if (!take_page(part, part->flying_new_slice, r))
		fetch_page(part, true);
	return true;
}

/*
 * The next record of a cut search: from the part being read; when its page
 * is read, the next parts' requests go out at once, and the next part ready
 * (or the next answer to come) is read, in the order the answers come.
 */
static struct json_object *
next_of_parts(CloseSearchState *ss)
{
	for (;;)
	{
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (ss->current_part >= 0)
		{
			struct json_object *record = next_buffered(ss->parts[ss->current_part]);

			if (record)
				return record;
			ss->current_part = -1;
		}

		launch_parts(ss);
		close_flight_progress(ss->flight);

		/* a part whose page came while others were read */
		for (i = 0; i < ss->nparts; i++)
		{
			CloseSearchState *part = ss->parts[i];

			if (!part->flying && part->items && part->next_item < part->nitems)
			{
				ss->current_part = i;
				break;
			}
		}
		if (ss->current_part >= 0)
			continue;
		if (!collect_part(ss))
		{
			/*
			 * Nothing in flight: the pacing holds every part back (one goes
			 * alone, waiting as a single request does), or all have ended.
			 */
			for (i = 0; i < ss->nparts; i++)
			{
				CloseSearchState *part = ss->parts[i];
				bool		new_slice;

				if (part->ended)
					continue;
				if (!next_request(part, &new_slice))
				{
					part->ended = true;
					continue;
				}
				if (!fetch_page(part, new_slice))
					fetch_page(part, true);
				break;
			}
			if (i == ss->nparts)
				return NULL;
		}
	}
}

/*
 * The next record of the search, or NULL at the end.  The record belongs
 * to the current page.
 */
struct json_object *
close_search_next(CloseSearchState *ss)
{
	for (;;)
	{
		struct json_object *record;
		bool		new_slice;

		CHECK_FOR_INTERRUPTS();

		if (ss->replay)
			return ss->next_item < ss->nitems
				? close_json_array_get(ss->items, ss->next_item++) : NULL;
		if (ss->nparts > 0)
			return next_of_parts(ss);

		record = next_buffered(ss);
		if (record)
			return record;
		if (ss->slice_started && !ss->cut_decided)
		{
			ss->cut_decided = true;
			if (cut_into_parts(ss))
				continue;
		}
		if (!next_request(ss, &new_slice))
			return NULL;
		if (!fetch_page(ss, new_slice))
			fetch_page(ss, true);
	}
}

/*
 * Every custom field's record key, of the type (or of all types): what a
 * search asks for when a custom json column needs them all.  Custom
 * objects' types come from the per-mapping cache (fieldtypes.c), fetched
 * when it has none; other resources' from their field schema (adding the
 * request to *requests).
 */
List *
close_search_custom_keys(UserMapping *user, const CloseResource *res,
						 const char *type_id, int64 *requests)
{
	List	   *keys = NIL;
	ListCell   *lc;

	if (res->field_schema == NULL)
		return close_field_types_custom_keys(close_field_types_get(user, 0, requests),
											 type_id);
	foreach(lc, close_field_schema_get(user, res, requests))
		keys = lappend(keys, makeString(psprintf("%s%s", CLOSE_CUSTOM_PREFIX,
												 ((CloseFieldInfo *) lfirst(lc))->id)));
	return keys;
}
