/*-------------------------------------------------------------------------
 *
 * analyze.c
 *		  ANALYZE of a foreign table: the number of objects from one search
 *		  that asks for its count alone, and a sample of objects read from
 *		  the first pages of a search, within a fixed number of requests.
 *
 * The count (include_counts with results_limit 0, of the table's
 * custom_object_type_id when it has one) becomes reltuples, exactly.  The
 * sample is at most ANALYZE's sample size (300 x the statistics target),
 * and at most what one search query returns (10,000: past that a search is
 * sliced, and a slice may repeat a page), read by date_created from the
 * oldest object: Close offers no random order and no offset, and spreading
 * it over date_created ranges would cost a request to find the newest.  It
 * is read in pages of 200, so ANALYZE sends at most ceil(sample / 200) + 1
 * requests, whatever the size of the organisation; a table with a custom
 * jsonb column takes one page less, to ask for the custom fields' keys
 * (GET /custom_object_type/), unless the sample is one page (then that
 * column's sample holds no custom values).  From the sample PostgreSQL computes the
 * column statistics, among them the distinct lead_id values, which
 * costs.c turns into objects per lead.
 *
 * relpages is set to 1: PostgreSQL 13 tells an analyzed table by it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "close_fdw.h"

static int	close_acquire_sample_rows(Relation relation, int elevel,
									  HeapTuple *rows, int targrows,
									  double *totalrows,
									  double *totaldeadrows);

bool
closeAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						 BlockNumber *totalpages)
{
	/* a resource Close does not search (a short listing): not sampled */
	if (close_get_table_resource(RelationGetRelid(relation))->search_type == NULL)
		return false;
	*func = close_acquire_sample_rows;
	*totalpages = 1;
	return true;
}

static int
close_acquire_sample_rows(Relation relation, int elevel, HeapTuple *rows,
						  int targrows, double *totalrows,
						  double *totaldeadrows)
{
	Oid			relid = RelationGetRelid(relation);
	TupleDesc	tupdesc = RelationGetDescr(relation);
	ForeignTable *table = GetForeignTable(relid);
	UserMapping *user = GetUserMapping(GetUserId(), table->serverid);
	char	   *type_id = close_get_table_type_id(relid);
	const CloseResource *res = close_get_table_resource(relid);
	MemoryContext outer_cxt = CurrentMemoryContext;
	MemoryContext work_cxt;
	MemoryContext row_cxt;
	MemoryContext oldcxt;
	CloseSearchValues no_values = {0};
	CloseRowConverter *conv;
	CloseSearchState *ss;
	Bitmapset  *attrs_used = NULL;
	List	   *keys = NIL;
	bool		all_custom = false;
	char	   *query;
	int64		requests = 0;
	int64		total;
	int			pages;
	int			sample;
	int			nrows = 0;
	Datum	   *values;
	bool	   *nulls;
	int			i;

	work_cxt = AllocSetContextCreate(CurrentMemoryContext, "close_fdw analyze",
									 ALLOCSET_DEFAULT_SIZES);
	row_cxt = AllocSetContextCreate(work_cxt, "close_fdw analyze row",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(work_cxt);

	/* the columns, and the record keys they read */
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		char	   *key;

		if (att->attisdropped)
			continue;
		attrs_used = bms_add_member(attrs_used,
									att->attnum - FirstLowInvalidHeapAttributeNumber);
		key = close_get_column_key(relid, att->attnum, NameStr(att->attname));
		if (close_is_custom_map_column(att->atttypid, key))
			all_custom = true;
		else
			keys = lappend(keys, makeString(key));
	}

	/* the count: one request */
	query = close_search_render_query(res, NIL, type_id, &no_values);
	total = close_search_count(user, res, query, &requests);

	/*
	 * No object may mean a custom_object_type_id Close does not have: an
	 * error, as in a scan, not reltuples 0 (the types are cached per user
	 * mapping; read only then, so the request bound holds).
	 */
	if (total == 0 && type_id)
		close_field_types_check_scan(user, 0, &requests,
									 RelationGetRelationName(relation),
									 type_id, NIL, NIL);

	/* the sample: the pages the bound leaves, from the oldest object */
	pages = (int) ceil(targrows / (double) CLOSE_SEARCH_PAGE);
	if (all_custom && total > 0 && pages > 1)
	{
		int64		type_requests = 0;

		/* the types may come from the per-mapping cache, without a request */
		keys = list_concat(keys, close_search_custom_keys(user, res, type_id,
														  &type_requests));
		requests += type_requests;
		if (type_requests > 0)
			pages--;
	}
	sample = (int) Min((int64) Min(targrows, CLOSE_SEARCH_MAX_RESULTS),
					   Min(total, (int64) pages * CLOSE_SEARCH_PAGE));
	sample = Max(sample, 0);

	if (sample > 0)
	{
		conv = close_make_row_converter(relation, attrs_used);
		values = palloc(sizeof(Datum) * tupdesc->natts);
		nulls = palloc(sizeof(bool) * tupdesc->natts);
		ss = close_search_begin(work_cxt, user, res, query,
								close_search_render_fields(keys),
								CLOSE_SEARCH_PAGE, sample, 1);
		while (nrows < sample)
		{
			struct json_object *record;

			CHECK_FOR_INTERRUPTS();
			record = close_search_next(ss);
			if (record == NULL)
				break;
			MemoryContextReset(row_cxt);
			MemoryContextSwitchTo(row_cxt);
			memset(nulls, true, sizeof(bool) * tupdesc->natts);
			close_convert_record(conv, record, values, nulls);
			MemoryContextSwitchTo(outer_cxt);
			rows[nrows++] = heap_form_tuple(tupdesc, values, nulls);
			MemoryContextSwitchTo(work_cxt);
		}
		requests += close_search_requests(ss);
	}

	ereport(elevel,
			(errmsg("\"%s\": %lld objects in Close, a sample of %d read in %lld requests",
					RelationGetRelationName(relation), (long long) total, nrows,
					(long long) requests)));

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(work_cxt);

	*totalrows = (double) total;
	*totaldeadrows = 0;
	return nrows;
}
