/*-------------------------------------------------------------------------
 *
 * close_fdw.c
 *		  Module entry points, the planner callbacks (estimates, plain and
 *		  parameterized paths, the plan), the scan callbacks in the order the
 *		  executor calls them, and EXPLAIN.
 *
 * A scan reads the table's resource (resource.c: custom objects, leads,
 * contacts, ...) and is driven by one pushed condition: id values (one
 * GET {path}{id}/ each) or lead_id values (one paged listing
 * GET {path}?lead_id=... each); without one, a custom object table is
 * searched (search.c) and another resource's whole listing is paged
 * (with the filters its listing takes, such as opportunities' status_id).
 * The values are computed when the scan starts (from constants,
 * parameters, init-plans, or the outer row of a nested loop), so prepared
 * statements and joins push down as well as literals do.
 *
 * A lead's pages overlap by one object, so that a listing shifted by other
 * writes is seen (and read again); a statement that writes reads each scan
 * whole before its first row (see read_whole).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/prep.h"
#include "optimizer/restrictinfo.h"
#include "rewrite/rewriteManip.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "close_fdw.h"
#include "compat.h"

CLOSE_MODULE_MAGIC;

/* Room for an object id (Close's are 51 characters). */
#define CLOSE_ID_MAX			128
/* Times a lead's listing is read again after it changed while being read. */
#define CLOSE_LEAD_REREADS		3

/* Records a small resource (users, statuses) is guessed to have. */
#define CLOSE_SMALL_ROWS		20.0
/* Records a listing of another resource is guessed to have. */
#define CLOSE_LIST_ROWS			10000.0

/* Planner state, in the RelOptInfo's fdw_private. */
typedef struct CloseRelInfo
{
	const CloseResource *res;	/* the table's resource */
	CloseKeyColumns keys;
	char	   *table_type_id;	/* table option, or NULL */
	int			page_size;
	List	   *base_clauses;	/* baserestrictinfo, plus lateral clauses */
	CloseRelStats stats;		/* what ANALYZE left (costs.c) */
} CloseRelInfo;

/* A set of 64-bit id hashes: appended, sorted when looked up in. */
typedef struct CloseIdSet
{
	uint64	   *ids;
	int			n;
	int			size;
	int			nsorted;		/* ids[0 .. nsorted) sorted */
} CloseIdSet;

/* Executor state, in the ForeignScanState's fdw_state. */
typedef struct CloseScanState
{
	MemoryContext scan_cxt;		/* lives as long as the scan */
	MemoryContext keys_cxt;		/* the key values; reset per (re)scan */
	MemoryContext page_cxt;		/* one answer and its parsed document */
	UserMapping *user;
	const CloseResource *res;	/* the table's resource */
	CloseAccessKind kind;
	bool		key_is_array;
	ExprState  *key_state;
	ExprState  *type_state;		/* or NULL */
	char	   *table_type_id;	/* or NULL */
	int			page_size;
	CloseRowConverter *conv;

	/* a search (CLOSE_ACCESS_SEARCH) */
	List	   *value_states;	/* ExprStates of its condition values */
	List	   *search_nodes;	/* once the scan starts, as confirmed */
	bool		search_confirmed;	/* against the fields' Close types */
	int			search_not_pushed;	/* plan's nodes left out or cut */
	List	   *search_keys;	/* record keys asked for */
	bool		search_all_custom;
	int			search_limit;
	bool		search_ordered; /* rows must come in date_created order */
	List	   *custom_keys;	/* every custom field's key, once fetched */
	CloseSearchState *search;
	int64		search_requests;	/* of the searches before a rescan */

	/*
	 * Answers fetched ahead, several at once: the first pages of the next
	 * leads, and the next pages of the current lead.  Repeated requests of
	 * a statement (a nested loop's outer rows) are answered from
	 * statement_answers, within work_mem.
	 */
	int			max_concurrency;
	CloseAnswers *leads_ahead;
	int			leads_ahead_end;	/* keys before this index were asked */
	TimestampTz leads_ahead_at; /* when they were asked */
	CloseAnswers *pages_ahead;
	int			pages_window;	/* pages asked ahead next time */

	/*
	 * The round after pages_ahead's, in flight while pages_ahead's pages are
	 * read, once the last page of pages_ahead's round shows that the lead
	 * goes on (so no request more goes past its end than without it).
	 */
	CloseAnswers *pages_next;
	CloseFlight *pages_flight;	/* made on first use */
	int			next_n;			/* requests of the round in flight */
	char	  **next_paths;		/* max_concurrency of them */
	CloseResponse *next_responses;
	int		   *next_slot;		/* the flight's slot -> index in next_paths */
	CloseAnswers *statement_answers;
	bool		keep_answers;	/* the scan may be run again */
	int			current_index;	/* of current_key in keys */

	/* the values this (re)scan requests */
	bool		started;		/* start_scan has run for this (re)scan */
	char	  **keys;
	int			nkeys;
	int			next_key;
	char	   *type_filter;	/* custom_object_type_id, or NULL */
	char	   *fields;			/* _fields sent, or NULL */
	List	   *filter_names;	/* a listing's filter parameters... */
	List	   *filter_states;	/* ...and their value ExprStates */
	List	   *filter_params;	/* this (re)scan's: name, value, name, ... */

	/*
	 * A statement that writes reads each (re)scan whole before its first
	 * row (see "materialize"); every scan skips the objects created by its
	 * statement or a later command.
	 */
	bool		materialize;
	CommandId	cid;			/* its snapshot's command: later creations
								 * are not read */
	bool		tracked;		/* close_track_created was called */
	Tuplestorestate *rows;		/* this (re)scan's rows, once read */
	TupleTableSlot *rows_slot;	/* reads them back */
	MemoryContext row_cxt;		/* reset for every row read into rows */

	/* the answer being read */
	char	   *current_key;
	struct json_object *items;	/* a page's "data" array, or NULL */
	struct json_object *record; /* a retrieved record, or NULL */
	int			nitems;
	int			next_item;
	bool		has_more;
	int			skip;
	char		first_id[CLOSE_ID_MAX]; /* of the previous page: a repeat? */

	/*
	 * A lead's listing, checked for changes made while it is read: pages
	 * overlap by one object (each starts with the last of the one before);
	 * when one does not, the lead is read again from the start, and the
	 * objects returned already are skipped.
	 */
	int			limit;			/* _limit of a listing's page */
	int			step;			/* _skip from one full page to the next */
	bool		overlap;		/* the next page starts with last_id */
	char		last_id[CLOSE_ID_MAX];
	MemoryContext lead_cxt;		/* seen; reset per lead */
	bool		tracking;		/* the lead has more than one page */
	uint64	   *seen;			/* hashes of the ids returned, of such a lead */
	int			nseen;
	int			seen_size;
	int			nsorted;		/* seen[0 .. nsorted) sorted, at a re-read */
	int			rereads;		/* of the current lead */
	bool		fresh;			/* pages must come from Close, not stores */
	/* a scan of several leads: hashes of ids, in keys_cxt */
	CloseIdSet	scan_ids;		/* every id it returned */
	CloseIdSet	moved_ids;		/* those returned from another lead's listing */

	/*
	 * The answer cache (cache_ttl_ms): whole answers only, gathered as their
	 * records are returned; never for a statement that writes.
	 */
	int			cache_ttl_ms;	/* 0: the cache is not used */
	uint64		cache_since;	/* the cache's generation when the scan began */
	CloseWholeAnswer *lead_whole;	/* the current lead's, in lead_cxt */
	CloseWholeAnswer *search_whole; /* the search's, in keys_cxt */

	/* the definition, checked against Close's types at the first scan */
	bool		checked;
	List	   *check_columns;	/* names of the columns read... */
	List	   *check_keys;		/* ...that are custom fields: their keys */

	/* for EXPLAIN ANALYZE */
	int64		requests;
	int64		pages;
	int64		records;
	int64		retries;
	double		waited_ms;
	int64		cache_hits;
} CloseScanState;

/* A scan of an upper relation: a count Close answers (upper.c). */
#define IS_COUNT_SCAN(node) \
	(((ForeignScan *) (node)->ss.ps.plan)->scan.scanrelid == 0)

PG_FUNCTION_INFO_V1(close_fdw_handler);

void		_PG_init(void);

static void closeGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
static void closeGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);
static ForeignScan *closeGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										Oid foreigntableid, ForeignPath *best_path,
										List *tlist, List *scan_clauses,
										Plan *outer_plan);
static void closeBeginForeignScan(ForeignScanState *node, int eflags);
static TupleTableSlot *closeIterateForeignScan(ForeignScanState *node);
static void closeReScanForeignScan(ForeignScanState *node);
static void closeEndForeignScan(ForeignScanState *node);
static void closeExplainForeignScan(ForeignScanState *node, ExplainState *es);
static void drop_next_round(CloseScanState *fsstate);
static void abandon_next_round(CloseScanState *fsstate);
static void drop_rows(CloseScanState *fsstate);
static const char *fields_asked(CloseScanState *fsstate);

void
_PG_init(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl")));
	close_budget_init();
	close_shared_init();
	close_cache_init();
}

Datum
close_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = closeGetForeignRelSize;
	routine->GetForeignPaths = closeGetForeignPaths;
	routine->GetForeignPlan = closeGetForeignPlan;
	routine->BeginForeignScan = closeBeginForeignScan;
	routine->IterateForeignScan = closeIterateForeignScan;
	routine->ReScanForeignScan = closeReScanForeignScan;
	routine->EndForeignScan = closeEndForeignScan;
	routine->ExplainForeignScan = closeExplainForeignScan;
	routine->GetForeignUpperPaths = closeGetForeignUpperPaths;
	routine->AnalyzeForeignTable = closeAnalyzeForeignTable;

	routine->AddForeignUpdateTargets = closeAddForeignUpdateTargets;
	routine->PlanForeignModify = closePlanForeignModify;
	routine->BeginForeignModify = closeBeginForeignModify;
	routine->ExecForeignInsert = closeExecForeignInsert;
	routine->ExecForeignUpdate = closeExecForeignUpdate;
	routine->ExecForeignDelete = closeExecForeignDelete;
	routine->BeginForeignInsert = closeBeginForeignInsert;
	routine->EndForeignModify = closeEndForeignModify;
	routine->EndForeignInsert = closeEndForeignInsert;
	routine->IsForeignRelUpdatable = closeIsForeignRelUpdatable;
	routine->ExplainForeignModify = closeExplainForeignModify;
	close_set_batch_insert(routine, closeGetForeignModifyBatchSize,
						   closeExecForeignBatchInsert);
	routine->ImportForeignSchema = closeImportForeignSchema;
	routine->PlanDirectModify = closePlanDirectModify;
	routine->BeginDirectModify = closeBeginDirectModify;
	routine->IterateDirectModify = closeIterateDirectModify;
	routine->EndDirectModify = closeEndDirectModify;
	routine->ExplainDirectModify = closeExplainDirectModify;

	PG_RETURN_POINTER(routine);
}

/*
 * How a scan with these clauses reaches its records (pushdown.c); a whole
 * listing's key_count is the records it is expected to return: ANALYZE's
 * count, else a guess by the resource's size.
 */
static void
classify(PlannerInfo *root, RelOptInfo *baserel, CloseRelInfo *ri,
		 List *clauses, ClosePushdown *pd)
{
	close_classify_conditions(root, baserel, &ri->keys, clauses, pd);
	if (pd->kind == CLOSE_ACCESS_LIST)
		pd->key_count = ri->stats.tuples >= 0 ? Max(ri->stats.tuples, 1.0)
			: ri->res->small ? CLOSE_SMALL_ROWS : CLOSE_LIST_ROWS;
}

/*
 * A partition's scan returns only the rows of its partition.  Nothing keeps
 * Close from holding records outside a foreign partition's bounds (the
 * table of a partition by lead_id lists every lead's objects of its type),
 * and PostgreSQL does not filter a partition's rows by its constraint: each
 * record would show in every partition, twice or more in the partitioned
 * table, and an UPDATE through the table would reach it through a partition
 * whose constraint it violates.  So the partition constraint becomes
 * conditions of the scan, pushed to Close where they can be (a lead_id
 * partition's lead becomes its listing), else checked here.  A condition
 * the table's own custom_object_type_id option already makes true is left
 * out.
 */
static void
add_partition_quals(PlannerInfo *root, RelOptInfo *baserel, Relation rel)
{
	List	   *quals;
	List	   *known = NIL;
	char	   *type_id;
	ListCell   *lc;

	if (!rel->rd_rel->relispartition)
		return;
	quals = RelationGetPartitionQual(rel);
	if (quals == NIL)
		return;
	quals = copyObject(quals);
	if (baserel->relid != 1)
		ChangeVarNodes((Node *) quals, 1, baserel->relid, 0);

	/* what the custom_object_type_id option makes true */
	type_id = close_get_table_type_id(RelationGetRelid(rel));
	if (type_id)
	{
		CloseKeyColumns keys;

		close_find_key_columns(RelationGetRelid(rel), &keys);
		if (AttributeNumberIsValid(keys.type_attno) &&
			TupleDescAttr(RelationGetDescr(rel), keys.type_attno - 1)->atttypid == TEXTOID)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel),
												  keys.type_attno - 1);
			Var		   *var = makeVar(baserel->relid, keys.type_attno,
									  TEXTOID, -1, att->attcollation, 0);
			Const	   *value = makeConst(TEXTOID, -1, att->attcollation, -1,
										  CStringGetTextDatum(type_id),
										  false, false);

			known = list_make1(make_opclause(TextEqualOperator, BOOLOID, false,
											 (Expr *) var, (Expr *) value,
											 InvalidOid, att->attcollation));
		}
	}

	/*
	 * Left out too: a condition the others imply (the "lead_id IS NOT NULL"
	 * of "lead_id IS NOT NULL AND lead_id = ANY (...)")
	 */
	foreach(lc, quals)
	{
		Expr	   *qual = (Expr *) lfirst(lc);
		List	   *others = list_concat_copy(known,
											  list_copy_tail(quals,
															 foreach_current_index(lc) + 1));

		if (others && predicate_implied_by(list_make1(qual), others, false))
			continue;
		known = lappend(known, qual);
		baserel->baserestrictinfo =
			lappend(baserel->baserestrictinfo,
					close_make_restrictinfo(root, qual));
	}
}

static void
closeGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid)
{
	CloseRelInfo *ri = palloc0(sizeof(CloseRelInfo));
	ForeignTable *table = GetForeignTable(foreigntableid);
	CloseServerOptions sopts;
	ClosePushdown pd;
	Cost		startup;
	Cost		total;

	/* a column that maps to no Close key is a mistake, not NULLs */
	{
		Relation	rel = table_open(foreigntableid, NoLock);

		close_check_column_keys(rel);
		add_partition_quals(root, baserel, rel);
		table_close(rel, NoLock);
	}

	/*
	 * FOR UPDATE and FOR SHARE promise that no one else changes the rows
	 * until the transaction ends: Close has no locks, so they are refused
	 * rather than ignored.
	 */
	{
		PlanRowMark *rc = get_plan_rowmark(root->rowMarks, baserel->relid);

		if (rc && rc->strength != LCS_NONE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("foreign table \"%s\" cannot be locked",
							get_rel_name(foreigntableid)),
					 errdetail("Close has no row locks: FOR UPDATE and FOR SHARE cannot keep other clients from changing its records."),
					 errhint("Lock only local tables, with FOR UPDATE OF and their names.")));
	}

	close_get_server_options(GetForeignServer(table->serverid), &sopts);
	ri->res = close_get_table_resource(foreigntableid);
	ri->page_size = Min(sopts.page_size, ri->res->max_limit);
	ri->table_type_id = close_get_table_type_id(foreigntableid);
	close_find_key_columns(foreigntableid, &ri->keys);

	/* a LATERAL reference makes every path parameterized by it */
	ri->base_clauses = baserel->baserestrictinfo;
	if (!bms_is_empty(baserel->lateral_relids))
	{
		ParamPathInfo *ppi = get_baserel_parampathinfo(root, baserel,
													   baserel->lateral_relids);

		ri->base_clauses = list_concat_copy(ri->base_clauses, ppi->ppi_clauses);
	}
	baserel->fdw_private = ri;

	close_rel_stats(baserel, foreigntableid, ri->keys.lead_attno, &ri->stats);
	classify(root, baserel, ri, ri->base_clauses, &pd);
	close_estimate_scan(root, baserel, &pd, ri->base_clauses, ri->page_size,
						&ri->stats, &baserel->rows, &startup, &total);
}

/*
 * The query's ORDER BY, when it is one date_created or date_updated column
 * (a timestamp, so the order of instants), ascending or descending with
 * the default place for NULLs (Close always sets both): *order says which.
 * NIL otherwise.  Text is never sorted by Close: its collation is not
 * PostgreSQL's.
 */
static List *
search_order_pathkeys(PlannerInfo *root, RelOptInfo *baserel,
					  CloseRelInfo *ri, int *order)
{
	PathKey    *pathkey;
	bool		ascending;
	ListCell   *lc;

	*order = CLOSE_SEARCH_ORDER_NONE;
	if (list_length(root->query_pathkeys) != 1)
		return NIL;
	pathkey = linitial(root->query_pathkeys);
	ascending = close_pathkey_is_ascending(pathkey);
	if (pathkey->pk_nulls_first == ascending)
		return NIL;
	foreach(lc, pathkey->pk_eclass->ec_members)
	{
		EquivalenceMember *em = (EquivalenceMember *) lfirst(lc);
		Var		   *var = (Var *) em->em_expr;

		while (var && IsA(var, RelabelType))
			var = (Var *) ((RelabelType *) var)->arg;
		if (!var || !IsA(var, Var) || var->varno != baserel->relid ||
			var->varlevelsup != 0 || var->varattno == InvalidAttrNumber)
			continue;

		/*
		 * the order of instants: the type's own btree order, not another
		 * operator class's (ORDER BY ... USING an operator of one)
		 */
		if (pathkey->pk_opfamily !=
			lookup_type_cache(getBaseType(var->vartype),
							  TYPECACHE_BTREE_OPFAMILY)->btree_opf)
			continue;
		if (var->varattno == ri->keys.date_created_attno)
			*order = ascending ? CLOSE_SEARCH_ORDER_CREATED_ASC
				: CLOSE_SEARCH_ORDER_CREATED_DESC;
		else if (var->varattno == ri->keys.date_updated_attno)
			*order = ascending ? CLOSE_SEARCH_ORDER_UPDATED_ASC
				: CLOSE_SEARCH_ORDER_UPDATED_DESC;
		else
			continue;
		return root->query_pathkeys;
	}
	return NIL;
}

/*
 * Can a search with these conditions take the query's LIMIT as its
 * results_limit?  When nothing after the scan drops or reorders rows: one
 * relation, every condition applied by the API exactly, and no
 * FETCH FIRST ... WITH TIES (which wants the rows past the limit that tie
 * with the last).  plan_search decides the same way from the plan's local
 * filters.
 */
static bool
search_limit_pushable(PlannerInfo *root, RelOptInfo *baserel, List *clauses)
{
	CloseSearchPushdown sp;
	ListCell   *lc;

	if (root->limit_tuples <= 0 ||
		root->parse->limitOption == LIMIT_OPTION_WITH_TIES ||
		bms_membership(root->all_baserels) != BMS_SINGLETON ||
		!bms_is_empty(baserel->lateral_relids))
		return false;
	close_search_conditions(root, baserel, clauses, &sp);
	foreach(lc, clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (!rinfo->pseudoconstant && !list_member_ptr(sp.exact_rinfos, rinfo))
			return false;
	}
	return true;
}

static void
closeGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					 Oid foreigntableid)
{
	CloseRelInfo *ri = (CloseRelInfo *) baserel->fdw_private;
	ClosePushdown pd;
	double		rows;
	Cost		startup;
	Cost		total;
	List	   *outers;
	ListCell   *lc;
	double		scale;

	classify(root, baserel, ri, ri->base_clauses, &pd);
	close_estimate_scan(root, baserel, &pd, ri->base_clauses, ri->page_size,
						&ri->stats, &rows, &startup, &total);
	add_path(baserel, (Path *)
			 close_create_foreignscan_path(root, baserel, rows, startup, total,
										   NIL, baserel->lateral_relids, NIL));

	/*
	 * A search returns its rows by date_created: ORDER BY that is free.
	 * Another order (descending, or by date_updated) Close sorts too, in one
	 * query: only for a LIMIT it can take as results_limit, of at most the
	 * objects one query returns (without a LIMIT every object is read
	 * anyway, and sorting them here costs no request).
	 */
	if (pd.kind == CLOSE_ACCESS_SEARCH)
	{
		int			order;
		List	   *pathkeys = search_order_pathkeys(root, baserel, ri, &order);

		if (pathkeys && order == CLOSE_SEARCH_ORDER_CREATED_ASC)
			add_path(baserel, (Path *)
					 close_create_foreignscan_path(root, baserel, rows, startup,
												   total, pathkeys,
												   baserel->lateral_relids, NIL));
		else if (pathkeys && root->limit_tuples <= CLOSE_SEARCH_MAX_RESULTS &&
				 search_limit_pushable(root, baserel, ri->base_clauses))
		{
			close_estimate_limited_search(rows, root->limit_tuples,
										  &startup, &total);
			add_path(baserel, (Path *)
					 close_create_foreignscan_path(root, baserel, rows, startup,
												   total, pathkeys,
												   baserel->lateral_relids, NIL));
		}
	}

	/* one parameterized path per set of outer relations that give a key */
	outers = close_join_clause_outers(root, baserel, &ri->keys);
	foreach(lc, outers)
	{
		Relids		required_outer = (Relids) lfirst(lc);
		ParamPathInfo *ppi = get_baserel_parampathinfo(root, baserel,
													   required_outer);
		List	   *clauses = list_concat_copy(baserel->baserestrictinfo,
											   ppi->ppi_clauses);

		classify(root, baserel, ri, clauses, &pd);
		if (pd.kind == CLOSE_ACCESS_SEARCH || pd.kind == CLOSE_ACCESS_LIST)
			continue;
		close_estimate_scan(root, baserel, &pd, clauses, ri->page_size,
							&ri->stats, &rows, &startup, &total);
		/* a never-analyzed local table on the outer side counts as small */
		scale = close_outer_scale(root, required_outer);
		startup *= scale;
		total *= scale;
		add_path(baserel, (Path *)
				 close_create_foreignscan_path(root, baserel, rows, startup,
											   total, NIL, required_outer, NIL));
	}
}

/* A constant key value as text, or NULL if the value is not a constant. */
static char *
const_text(Expr *expr)
{
	while (expr && IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (expr == NULL || !IsA(expr, Const) || ((Const *) expr)->constisnull)
		return NULL;
	return TextDatumGetCString(((Const *) expr)->constvalue);
}

static bool
is_list_param(const char *name)
{
	size_t		len = strlen(name);

	return len > 4 && strcmp(name + len - 4, "__in") == 0;
}

/*
 * A listing's filter value as sent: text as it is, an array's non-null
 * elements comma-separated (*no_rows when there are none: no record
 * matches), a timestamp in UTC to the microsecond.  NULL when it is not
 * sent, and the local check does the work: an infinite timestamp, or a
 * list item with a comma (Close would take it for two).
 */
static char *
filter_text(const char *name, Datum value, Oid typid, bool *no_rows)
{
	*no_rows = false;
	if (is_list_param(name))
	{
		ArrayType  *array = DatumGetArrayTypeP(value);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		int			i;
		int			n = 0;
		StringInfoData buf;

		deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &nelems);
		initStringInfo(&buf);
		for (i = 0; i < nelems; i++)
		{
			char	   *item;

			if (nulls[i])
				continue;
			item = TextDatumGetCString(elems[i]);
			if (strchr(item, ',') != NULL)
				return NULL;
			if (n++ > 0)
				appendStringInfoChar(&buf, ',');
			appendStringInfoString(&buf, item);
		}
		if (n == 0)
			*no_rows = true;
		return buf.data;
	}
	if (typid == TIMESTAMPTZOID)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		if (!close_format_timestamp(&buf, DatumGetTimestampTz(value)))
			return NULL;
		/* without the JSON quotes */
		buf.data[buf.len - 1] = '\0';
		return pstrdup(buf.data + 1);
	}
	return TextDatumGetCString(value);
}

static void
append_filter(StringInfo buf, const char *name, const char *value)
{
	if (is_list_param(name))
		close_append_query_list(buf, name, value);
	else
		close_append_query_param(buf, name, value);
}

/*
 * A listing's filter value as EXPLAIN shows it: a constant as it is sent,
 * anything else as {name}.
 */
static void
describe_filter(StringInfo buf, const char *name, Expr *expr)
{
	while (expr && IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (expr && IsA(expr, Const) && !((Const *) expr)->constisnull)
	{
		bool		no_rows;
		char	   *value = filter_text(name, ((Const *) expr)->constvalue,
										((Const *) expr)->consttype, &no_rows);

		if (value != NULL)		/* else not sent */
			append_filter(buf, name, value);
		return;
	}
	appendStringInfo(buf, "%c%s={%s}", strchr(buf->data, '?') ? '&' : '?',
					 name, name);
}

/*
 * The request as EXPLAIN shows it: a single constant value inline, any
 * other value as a {placeholder} with the values on a line of their own.
 */
static void
describe_request(PlannerInfo *root, RelOptInfo *baserel, ClosePushdown *pd,
				 CloseRelInfo *ri, List *filter_names, List *filter_exprs,
				 const char *fields, char **request, char **key_values)
{
	const CloseResource *res = ri->res;
	StringInfoData buf;
	char	   *key = pd->key_is_array || pd->kind == CLOSE_ACCESS_LIST
		? NULL : const_text(pd->key_expr);
	const char *prefix = pd->kind == CLOSE_ACCESS_BY_ID
		? res->id_prefix : CLOSE_PREFIX_LEAD;
	char	   *desc;
	ListCell   *lc;
	ListCell   *lc2;

	*key_values = "";
	if (key && !close_is_valid_id(key, prefix))
	{
		*request = psprintf("none (no Close %s has the value %s)",
							pd->kind == CLOSE_ACCESS_BY_ID ? "id" : "lead_id",
							quote_literal_cstr(key));
		return;
	}

	initStringInfo(&buf);
	if (pd->kind == CLOSE_ACCESS_BY_ID)
	{
		if (key)
			appendStringInfo(&buf, "GET %s",
							 close_record_path(res->path, key));
		else
			appendStringInfo(&buf, "GET %s{id}/", res->path);
	}
	else
	{
		appendStringInfo(&buf, "GET %s", res->path);
		if (pd->kind == CLOSE_ACCESS_BY_LEAD)
		{
			if (key)
				close_append_query_param(&buf, "lead_id", key);
			else
				appendStringInfoString(&buf, "?lead_id={lead_id}");
		}
		if (pd->type_expr)
		{
			char	   *type = const_text(pd->type_expr);

			if (type)
				close_append_query_param(&buf, "custom_object_type_id", type);
			else
				appendStringInfoString(&buf,
									   "&custom_object_type_id={custom_object_type_id}");
		}
		else if (ri->table_type_id)
			close_append_query_param(&buf, "custom_object_type_id",
									 ri->table_type_id);
		forboth(lc, filter_names, lc2, filter_exprs)
			describe_filter(&buf, strVal(lfirst(lc)), (Expr *) lfirst(lc2));
	}
	if (fields[0] != '\0')
		close_append_query_list(&buf, "_fields", fields);
	*request = buf.data;

	if (key == NULL && pd->kind != CLOSE_ACCESS_LIST)
	{
		desc = close_describe_value(root, pd->key_expr);
		*key_values = pd->key_is_array ? psprintf("ANY (%s)", desc) : desc;
	}
}

/* The attributes a scan must convert: its output and its local filters. */
static Bitmapset *
attributes_used(RelOptInfo *baserel, List *local_exprs)
{
	Bitmapset  *attrs_used = NULL;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid,
				   &attrs_used);
	pull_varattnos((Node *) local_exprs, baserel->relid, &attrs_used);
	return attrs_used;
}

/*
 * The _fields of a scan's GETs: id (and lead_id in a lead's listing) and
 * the keys of the columns it reads, comma-separated, for a resource whose
 * GETs take _fields (a lead is heavy: its nested contacts and
 * opportunities are not wanted).  "" when every key is needed: a whole-row
 * reference, a json column of every custom field, or a custom field where
 * _fields is not known to name them.
 */
static char *
scan_fields(Oid relid, const CloseResource *res, Bitmapset *attrs_used,
			bool by_lead)
{
	Relation	rel;
	TupleDesc	tupdesc;
	StringInfoData buf;
	List	   *keys = NIL;
	ListCell   *lc;
	int			i;

	if (!res->fields_param ||
		bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used))
		return "";
	keys = lappend(keys, CLOSE_KEY_ID);

	/*
	 * A lead's listing leaves out records whose lead_id is another lead's
	 * (next_record): they must carry it, whatever columns the query uses.
	 */
	if (by_lead)
		keys = lappend(keys, CLOSE_KEY_LEAD_ID);
	rel = table_open(relid, NoLock);
	tupdesc = RelationGetDescr(rel);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		char	   *key;

		if (att->attisdropped ||
			!bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber,
						   attrs_used))
			continue;
		key = close_get_column_key(relid, att->attnum, NameStr(att->attname));
		if (close_is_custom_map_column(att->atttypid, key) ||
			strchr(key, ',') != NULL ||
			(!res->fields_custom &&
			 strncmp(key, CLOSE_CUSTOM_PREFIX, strlen(CLOSE_CUSTOM_PREFIX)) == 0))
		{
			keys = NIL;
			break;
		}
		foreach(lc, keys)
			if (strcmp((char *) lfirst(lc), key) == 0)
				break;
		if (lc == NULL)
			keys = lappend(keys, key);
	}
	table_close(rel, NoLock);

	initStringInfo(&buf);
	foreach(lc, keys)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? "," : "",
						 (char *) lfirst(lc));
	return buf.data;
}

/*
 * A search plan: the conditions the search evaluates become query nodes
 * (their values in fdw_exprs); those it evaluates exactly leave the local
 * filter, the others stay in it.  A LIMIT is passed on when nothing after
 * the scan can drop or reorder rows, and it is not FETCH FIRST ... WITH TIES
 * (which wants the rows past it that tie with the last).
 */
static ForeignScan *
plan_search(PlannerInfo *root, RelOptInfo *baserel, CloseRelInfo *ri,
			ForeignPath *best_path, List *tlist, List *scan_clauses,
			Plan *outer_plan)
{
	Oid			relid = planner_rt_fetch(baserel->relid, root)->relid;
	const CloseResource *res = close_get_table_resource(relid);
	CloseSearchPushdown sp;
	CloseSearchValues vals;
	List	   *local_exprs = NIL;
	List	   *attrs_list = NIL;
	List	   *field_keys = NIL;
	List	   *fdw_private;
	Bitmapset  *attrs_used;
	bool		all_custom = false;
	bool		whole_row;
	double		limit = -1;
	int			i;
	int			attr;
	int			order = CLOSE_SEARCH_ORDER_NONE;
	ListCell   *lc;
	char	   *query;

	close_search_conditions(root, baserel, scan_clauses, &sp);
	foreach(lc, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (rinfo->pseudoconstant || list_member_ptr(sp.exact_rinfos, rinfo))
			continue;
		local_exprs = lappend(local_exprs, rinfo->clause);
	}

	/* ask for the keys of the columns used, and always id, date_created */
	attrs_used = attributes_used(baserel, local_exprs);
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used);
	{
		Relation	rel = table_open(relid, NoLock);
		TupleDesc	tupdesc = RelationGetDescr(rel);

		for (i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);
			char	   *key;

			if (att->attisdropped ||
				(!whole_row &&
				 !bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber,
								attrs_used)))
				continue;
			key = close_get_column_key(relid, att->attnum, NameStr(att->attname));
			if (close_is_custom_map_column(att->atttypid, key))
				all_custom = true;
			else
				field_keys = lappend(field_keys, makeString(key));
		}
		table_close(rel, NoLock);
	}
	attr = -1;
	while ((attr = bms_next_member(attrs_used, attr)) >= 0)
		attrs_list = lappend_int(attrs_list, attr);

	if (root->limit_tuples > 0 && local_exprs == NIL &&
		root->parse->limitOption != LIMIT_OPTION_WITH_TIES &&
		bms_membership(root->all_baserels) == BMS_SINGLETON &&
		(root->query_pathkeys == NIL ||
		 pathkeys_contained_in(root->query_pathkeys, best_path->path.pathkeys)))
		limit = root->limit_tuples;

	/* the order the path promises; one but date_created's needs the limit */
	if (best_path->path.pathkeys != NIL)
		(void) search_order_pathkeys(root, baserel, ri, &order);
	if (order > CLOSE_SEARCH_ORDER_CREATED_ASC &&
		(limit <= 0 || limit > CLOSE_SEARCH_MAX_RESULTS))
		elog(ERROR, "a sorted search was planned without its limit");

	/* what EXPLAIN shows: constants as they are, other values described */
	close_search_plan_values(root, sp.values, &vals);
	query = close_search_render_query(res, sp.nodes, ri->table_type_id, &vals);

	fdw_private = close_list_make5(makeInteger(CLOSE_ACCESS_SEARCH),
								   makeInteger(0),
								   makeInteger(0),
								   makeString("POST /data/search/"),
								   makeString(close_search_render_explain(res, query,
																		  close_search_render_fields(all_custom
																									 ? lappend(list_copy(field_keys), makeString("custom.*"))
																									 : field_keys),
																		  limit > 0 ? Min(limit, CLOSE_SEARCH_PAGE) : CLOSE_SEARCH_PAGE,
																		  (int64) limit, order)));
	fdw_private = lappend(fdw_private, attrs_list);
	fdw_private = lappend(fdw_private, sp.nodes);
	fdw_private = lappend(fdw_private, field_keys);
	fdw_private = lappend(fdw_private, makeInteger(all_custom ? 1 : 0));
	fdw_private = lappend(fdw_private, makeInteger((int) Min(limit, INT_MAX)));
	fdw_private = lappend(fdw_private, makeInteger(order));
	fdw_private = lappend(fdw_private,
						  makeInteger(close_budget_planned(root, &best_path->path,
														   CLOSE_ACCESS_SEARCH, 0,
														   ri->page_size, limit)));
	fdw_private = lappend(fdw_private,
						  close_search_render_summary(res, sp.nodes,
													  ri->table_type_id,
													  &vals, (int64) limit));
	fdw_private = lappend(fdw_private, NIL);	/* not a listing */
	fdw_private = lappend(fdw_private, makeString(""));

	return make_foreignscan(tlist, local_exprs, baserel->relid, sp.values,
							fdw_private, NIL, NIL, outer_plan);
}

static ForeignScan *
closeGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					Oid foreigntableid, ForeignPath *best_path,
					List *tlist, List *scan_clauses, Plan *outer_plan)
{
	CloseRelInfo *ri = (CloseRelInfo *) baserel->fdw_private;
	ClosePushdown pd;
	List	   *local_exprs = NIL;
	List	   *fdw_exprs;
	List	   *fdw_private;
	List	   *attrs_list = NIL;
	List	   *filter_names = NIL;
	List	   *filter_exprs = NIL;
	Bitmapset  *attrs_used;
	ListCell   *lc;
	char	   *request;
	char	   *key_values;
	char	   *fields;
	int			attr;

	/* a count(*) that Close answers (upper.c) */
	if (IS_UPPER_REL(baserel))
		return close_plan_count(root, baserel, tlist, outer_plan);

	classify(root, baserel, ri, scan_clauses, &pd);
	if (pd.kind == CLOSE_ACCESS_SEARCH)
		return plan_search(root, baserel, ri, best_path, tlist, scan_clauses,
						   outer_plan);

	/* the pushed clauses are applied by the API; the rest stay local */
	foreach(lc, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (rinfo->pseudoconstant)
			continue;
		if (rinfo == pd.key_rinfo || rinfo == pd.type_rinfo)
			continue;
		local_exprs = lappend(local_exprs, rinfo->clause);
	}

	fdw_exprs = list_make1(pd.key_expr);
	if (pd.type_expr)
		fdw_exprs = lappend(fdw_exprs, pd.type_expr);

	/* a listing's filters narrow what Close returns; the scan rechecks */
	if (pd.kind != CLOSE_ACCESS_BY_ID)
		close_list_filters(root, baserel, foreigntableid, scan_clauses,
						   &filter_names, &filter_exprs);
	fdw_exprs = list_concat(fdw_exprs, filter_exprs);

	/* convert only the columns the query uses */
	attrs_used = attributes_used(baserel, local_exprs);
	attr = -1;
	while ((attr = bms_next_member(attrs_used, attr)) >= 0)
		attrs_list = lappend_int(attrs_list, attr);
	fields = scan_fields(foreigntableid, ri->res, attrs_used,
						 pd.kind == CLOSE_ACCESS_BY_LEAD);

	describe_request(root, baserel, &pd, ri, filter_names, filter_exprs,
					 fields, &request, &key_values);

	fdw_private = close_list_make5(makeInteger((int) pd.kind),
								   makeInteger(pd.key_is_array ? 1 : 0),
								   makeInteger(pd.type_expr ? 1 : 0),
								   makeString(request),
								   makeString(key_values));
	fdw_private = lappend(fdw_private, attrs_list);
	fdw_private = lappend(fdw_private, NIL);	/* not a search */
	fdw_private = lappend(fdw_private, NIL);
	fdw_private = lappend(fdw_private, makeInteger(0));
	fdw_private = lappend(fdw_private, makeInteger(-1));
	fdw_private = lappend(fdw_private, makeInteger(0));
	fdw_private = lappend(fdw_private,
						  makeInteger(close_budget_planned(root, &best_path->path,
														   pd.kind, pd.key_count,
														   ri->page_size, -1)));
	fdw_private = lappend(fdw_private, NIL);
	fdw_private = lappend(fdw_private, filter_names);
	fdw_private = lappend(fdw_private, makeString(fields));

	return make_foreignscan(tlist, local_exprs, baserel->relid, fdw_exprs,
							fdw_private, NIL, NIL, outer_plan);
}

static void
closeBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	ForeignTable *table;
	CloseServerOptions sopts;
	CloseScanState *fsstate;
	List	   *fdw_private = fsplan->fdw_private;
	Bitmapset  *attrs_used = NULL;
	ListCell   *lc;
	MemoryContext oldcxt;

	if (IS_COUNT_SCAN(node))
	{
		close_count_begin(node, eflags);
		return;
	}

	/* EXPLAIN without ANALYZE makes no request and needs no state */
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	fsstate = palloc0(sizeof(CloseScanState));
	node->fdw_state = fsstate;

	table = GetForeignTable(RelationGetRelid(rel));
	fsstate->user = GetUserMapping(close_scan_user(node), table->serverid);
	close_get_server_options(GetForeignServer(table->serverid), &sopts);
	fsstate->res = close_get_table_resource(RelationGetRelid(rel));
	fsstate->page_size = Min(sopts.page_size, fsstate->res->max_limit);
	/* pages overlap by one object: at least two a page */
	fsstate->limit = Max(fsstate->page_size, 2);
	fsstate->step = fsstate->limit - 1;
	fsstate->max_concurrency = sopts.max_concurrency;
	fsstate->table_type_id = close_get_table_type_id(RelationGetRelid(rel));

	fsstate->kind = (CloseAccessKind)
		intVal(list_nth(fdw_private, FdwScanPrivateAccessKind));
	fsstate->key_is_array =
		intVal(list_nth(fdw_private, FdwScanPrivateKeyIsArray)) != 0;
	if (fsstate->kind == CLOSE_ACCESS_SEARCH)
	{
		fsstate->value_states = ExecInitExprList(fsplan->fdw_exprs,
												 (PlanState *) node);
		fsstate->search_nodes = (List *) list_nth(fdw_private,
												  FdwScanPrivateSearchNodes);
		fsstate->search_keys = (List *) list_nth(fdw_private,
												 FdwScanPrivateSearchFields);
		fsstate->search_all_custom =
			intVal(list_nth(fdw_private, FdwScanPrivateSearchAllCustom)) != 0;
		fsstate->search_limit =
			intVal(list_nth(fdw_private, FdwScanPrivateSearchLimit));
		fsstate->search_ordered =
			intVal(list_nth(fdw_private, FdwScanPrivateSearchOrdered)) != 0;
	}
	else
	{
		int			nfixed = 1;

		fsstate->key_state = ExecInitExpr(linitial(fsplan->fdw_exprs),
										  (PlanState *) node);
		if (intVal(list_nth(fdw_private, FdwScanPrivateHasTypeExpr)) != 0)
		{
			fsstate->type_state = ExecInitExpr(lsecond(fsplan->fdw_exprs),
											   (PlanState *) node);
			nfixed++;
		}
		fsstate->filter_names = (List *) list_nth(fdw_private,
												  FdwScanPrivateListFilters);
		for_each_from(lc, fsplan->fdw_exprs, nfixed)
			fsstate->filter_states = lappend(fsstate->filter_states,
											 ExecInitExpr((Expr *) lfirst(lc),
														  (PlanState *) node));
		if (strVal(list_nth(fdw_private, FdwScanPrivateFields))[0] != '\0')
			fsstate->fields = strVal(list_nth(fdw_private, FdwScanPrivateFields));
	}

	fsstate->scan_cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "close_fdw scan",
											  ALLOCSET_DEFAULT_SIZES);
	fsstate->keys_cxt = AllocSetContextCreate(fsstate->scan_cxt,
											  "close_fdw keys",
											  ALLOCSET_SMALL_SIZES);
	fsstate->page_cxt = AllocSetContextCreate(fsstate->scan_cxt,
											  "close_fdw page",
											  ALLOCSET_DEFAULT_SIZES);
	fsstate->leads_ahead = close_answers_create(fsstate->scan_cxt,
												"close_fdw leads ahead", 0);
	fsstate->pages_ahead = close_answers_create(fsstate->scan_cxt,
												"close_fdw pages ahead", 0);
	fsstate->pages_next = close_answers_create(fsstate->scan_cxt,
											   "close_fdw pages ahead", 0);
	fsstate->statement_answers =
		close_answers_create(fsstate->scan_cxt, "close_fdw statement answers",
							 (Size) work_mem * 1024);
	fsstate->lead_cxt = AllocSetContextCreate(fsstate->scan_cxt,
											  "close_fdw lead",
											  ALLOCSET_SMALL_SIZES);
	fsstate->row_cxt = AllocSetContextCreate(fsstate->scan_cxt,
											 "close_fdw row",
											 ALLOCSET_SMALL_SIZES);
	/*
	 * A scan that takes parameters is run again for each of their values; a
	 * small resource's listing is read once for all the scan's runs.
	 */
	fsstate->keep_answers = !bms_is_empty(fsplan->scan.plan.extParam) ||
		(fsstate->kind == CLOSE_ACCESS_LIST && fsstate->res->small);

	/*
	 * A statement that writes (anywhere: a trigger could write to Close)
	 * reads this scan whole first.  No scan reads what was created by its
	 * statement or a later command (a function's, a trigger's, or one run
	 * between a cursor's fetches): those its snapshot does not see.
	 */
	fsstate->materialize =
		node->ss.ps.state->es_plannedstmt->commandType != CMD_SELECT ||
		node->ss.ps.state->es_plannedstmt->hasModifyingCTE;
	fsstate->cid = node->ss.ps.state->es_snapshot
		? node->ss.ps.state->es_snapshot->curcid
		: node->ss.ps.state->es_output_cid;
	close_track_created();
	fsstate->tracked = true;

	/* answers read before the scan began are older than it may keep */
	fsstate->cache_ttl_ms = fsstate->materialize ? 0
		: close_get_cache_ttl(RelationGetRelid(rel));
	if (fsstate->cache_ttl_ms > 0)
		fsstate->cache_since = close_cache_generation();

	foreach(lc, (List *) list_nth(fdw_private, FdwScanPrivateAttrsUsed))
		attrs_used = bms_add_member(attrs_used, lfirst_int(lc));
	oldcxt = MemoryContextSwitchTo(fsstate->scan_cxt);
	fsstate->conv = close_make_row_converter(rel, attrs_used);
	{
		TupleDesc	tupdesc = RelationGetDescr(rel);
		bool		whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber,
											  attrs_used);
		int			i;

		for (i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);
			char	   *key;

			if (att->attisdropped ||
				(!whole_row &&
				 !bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber,
								attrs_used)))
				continue;
			key = close_get_column_key(RelationGetRelid(rel), att->attnum,
									   NameStr(att->attname));
			if (strncmp(key, CLOSE_CUSTOM_PREFIX, strlen(CLOSE_CUSTOM_PREFIX)) != 0)
				continue;
			fsstate->check_columns = lappend(fsstate->check_columns,
											 makeString(pstrdup(NameStr(att->attname))));
			fsstate->check_keys = lappend(fsstate->check_keys, makeString(key));
		}
	}
	MemoryContextSwitchTo(oldcxt);
}

static int
compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The values a pushed key expression yields, without NULLs, duplicates and
 * values no Close id with this prefix can have (no record could match
 * them).  Returns how many; *keys is palloc'd in CurrentMemoryContext.
 */
int
close_evaluate_keys(ExprState *state, bool is_array, const char *prefix,
					ExprContext *econtext, char ***keys)
{
	Datum		value;
	bool		isnull;
	int			nkeys = 0;
	int			i;

	*keys = NULL;
	value = ExecEvalExpr(state, econtext, &isnull);
	if (isnull)
		return 0;

	if (!is_array)
	{
		char	   *key = TextDatumGetCString(value);

		if (!close_is_valid_id(key, prefix))
			return 0;
		*keys = palloc(sizeof(char *));
		(*keys)[nkeys++] = key;
		return nkeys;
	}
	else
	{
		ArrayType  *array = DatumGetArrayTypeP(value);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(ARR_ELEMTYPE(array), &typlen, &typbyval, &typalign);
		deconstruct_array(array, ARR_ELEMTYPE(array), typlen, typbyval,
						  typalign, &elems, &nulls, &nelems);
		*keys = palloc(sizeof(char *) * Max(nelems, 1));
		for (i = 0; i < nelems; i++)
		{
			char	   *key;

			if (nulls[i])
				continue;
			key = TextDatumGetCString(elems[i]);
			if (close_is_valid_id(key, prefix))
				(*keys)[nkeys++] = key;
		}
		/* one request per distinct value */
		if (nkeys > 1)
		{
			int			n = 1;

			qsort(*keys, nkeys, sizeof(char *), compare_strings);
			for (i = 1; i < nkeys; i++)
				if (strcmp((*keys)[i], (*keys)[n - 1]) != 0)
					(*keys)[n++] = (*keys)[i];
			nkeys = n;
		}
		return nkeys;
	}
}

/*
 * Start a search: the condition values computed now give the query; the
 * keys asked for are the columns', and every custom field's when a custom
 * json column is used (read once per scan from the type definitions).
 */
static void
start_search(ForeignScanState *node)
{
	CloseScanState *fsstate = (CloseScanState *) node->fdw_state;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	CloseSearchValues vals;
	List	   *keys = fsstate->search_keys;
	char	   *query;
	char	   *fields;
	int			page_limit;
	int			order;

	/* custom fields' conditions go only where Close's field type fits */
	if (!fsstate->search_confirmed)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fsstate->scan_cxt);

		fsstate->search_nodes = close_search_confirm(fsstate->search_nodes,
													 fsstate->res,
													 fsstate->user,
													 &fsstate->requests,
													 &fsstate->search_not_pushed);
		fsstate->search_confirmed = true;
		MemoryContextSwitchTo(oldcxt);
	}

	close_search_evaluate(fsstate->value_states, econtext, &vals);
	query = close_search_render_query(fsstate->res,
									  fsstate->search_nodes,
									  fsstate->table_type_id, &vals);

	if (fsstate->search_all_custom)
	{
		if (fsstate->custom_keys == NIL)
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(fsstate->scan_cxt);

			fsstate->custom_keys = close_search_custom_keys(fsstate->user,
															fsstate->res,
															fsstate->table_type_id,
															&fsstate->requests);
			MemoryContextSwitchTo(oldcxt);
		}
		keys = list_concat_copy(keys, fsstate->custom_keys);
	}

	/* after a lead's DELETE: lead_id too, to skip stale copies (next_row) */
	if (fsstate->res->lead_filter && close_deleted_lead_in_xact())
	{
		ListCell   *lc;

		foreach(lc, keys)
			if (strcmp(strVal(lfirst(lc)), CLOSE_KEY_LEAD_ID) == 0)
				break;
		if (lc == NULL)
			keys = lappend(list_copy(keys), makeString(CLOSE_KEY_LEAD_ID));
	}
	fields = close_search_render_fields(keys);
	page_limit = fsstate->search_limit > 0
		? Min(fsstate->search_limit, CLOSE_SEARCH_PAGE) : CLOSE_SEARCH_PAGE;
	order = intVal(list_nth(((ForeignScan *) node->ss.ps.plan)->fdw_private,
							FdwScanPrivateSearchOrdered));

	/* the whole search, from the cache; else gathered for it */
	fsstate->search_whole = NULL;
	if (fsstate->cache_ttl_ms > 0)
	{
		CloseConnection *conn = close_get_connection(fsstate->user);
		char	   *request = close_search_render_explain(fsstate->res,
														  query, fields,
														  page_limit,
														  fsstate->search_limit,
														  order);
		CloseResponse response;

		if (close_answers_cached(conn, fsstate->cache_ttl_ms, "POST",
								 "/data/search/", request, &response))
		{
			fsstate->cache_hits++;
			fsstate->search = close_search_from_answer(fsstate->keys_cxt,
													   fsstate->user,
													   response.body,
													   response.body_len);
			return;
		}
		fsstate->search_whole = close_whole_begin(fsstate->keys_cxt, "POST",
												  "/data/search/", request);
	}

	fsstate->search = close_search_begin(fsstate->keys_cxt, fsstate->user,
										 fsstate->res, query,
										 fields, page_limit,
										 fsstate->search_limit,
										 fsstate->search_ordered
										 ? 1 : fsstate->max_concurrency);
	close_search_set_order(fsstate->search, order);
}

/*
 * Work out this (re)scan's key values and settle the type filter.
 */
static void
start_scan(ForeignScanState *node)
{
	CloseScanState *fsstate = (CloseScanState *) node->fdw_state;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	const char *prefix = fsstate->kind == CLOSE_ACCESS_BY_ID
		? fsstate->res->id_prefix : CLOSE_PREFIX_LEAD;
	MemoryContext oldcxt;
	Datum		value;
	bool		isnull;
	ListCell   *lc;
	ListCell   *lc2;

	fsstate->started = true;
	drop_rows(fsstate);
	MemoryContextReset(fsstate->lead_cxt);
	fsstate->tracking = false;
	fsstate->seen = NULL;
	fsstate->nseen = fsstate->seen_size = fsstate->nsorted = 0;

	/*
	 * The first scan checks the table's type and the custom fields it reads
	 * against Close's types (cached per user mapping): a mistake in the
	 * definition is an error, not NULLs.
	 */
	if (!fsstate->checked)
	{
		/* a custom field column must read a field Close has */
		if (fsstate->res->field_schema != NULL && fsstate->check_keys != NIL)
			close_field_schema_check_table(fsstate->user, fsstate->res,
										   fsstate->conv->relname,
										   fsstate->check_columns,
										   fsstate->check_keys,
										   &fsstate->requests);
		else if (fsstate->res->field_schema == NULL &&
			(fsstate->table_type_id || fsstate->check_keys != NIL))
			close_field_types_check_scan(fsstate->user, fsstate->cache_ttl_ms,
										 &fsstate->requests,
										 fsstate->conv->relname,
										 fsstate->table_type_id,
										 fsstate->check_columns,
										 fsstate->check_keys);
		fsstate->checked = true;
	}
	if (fsstate->search)
		fsstate->search_requests += close_search_requests(fsstate->search);
	fsstate->search = NULL;
	MemoryContextReset(fsstate->keys_cxt);
	MemoryContextReset(fsstate->page_cxt);
	fsstate->lead_whole = NULL;
	fsstate->search_whole = NULL;
	close_answers_reset(fsstate->leads_ahead);
	fsstate->leads_ahead_end = 0;
	drop_next_round(fsstate);
	close_answers_reset(fsstate->pages_ahead);
	fsstate->items = NULL;
	fsstate->record = NULL;
	fsstate->nitems = 0;
	fsstate->next_item = 0;
	fsstate->has_more = false;
	fsstate->next_key = 0;
	fsstate->nkeys = 0;
	fsstate->keys = NULL;
	memset(&fsstate->scan_ids, 0, sizeof(CloseIdSet));
	memset(&fsstate->moved_ids, 0, sizeof(CloseIdSet));
	fsstate->type_filter = fsstate->table_type_id;
	fsstate->filter_params = NIL;

	oldcxt = MemoryContextSwitchTo(fsstate->keys_cxt);

	if (fsstate->kind == CLOSE_ACCESS_SEARCH)
	{
		start_search(node);
		MemoryContextSwitchTo(oldcxt);
		return;
	}

	if (fsstate->type_state)
	{
		char	   *type;

		value = ExecEvalExpr(fsstate->type_state, econtext, &isnull);
		if (isnull)
			goto no_rows;
		type = TextDatumGetCString(value);
		if (!close_is_valid_id(type, CLOSE_PREFIX_TYPE) ||
			(fsstate->table_type_id &&
			 strcmp(type, fsstate->table_type_id) != 0))
			goto no_rows;
		fsstate->type_filter = type;
	}

	/* a listing's filters: a NULL or an empty list matches no record */
	forboth(lc, fsstate->filter_names, lc2, fsstate->filter_states)
	{
		ExprState  *state = (ExprState *) lfirst(lc2);
		const char *name = strVal(lfirst(lc));
		char	   *text;
		bool		none;

		value = ExecEvalExpr(state, econtext, &isnull);
		if (isnull)
			goto no_rows;
		text = filter_text(name, value, exprType((Node *) state->expr), &none);
		if (none)
			goto no_rows;
		if (text != NULL)
			fsstate->filter_params = lappend(lappend(fsstate->filter_params,
													 (void *) name), text);
	}

	if (fsstate->kind == CLOSE_ACCESS_LIST)
	{
		/* one listing: a key of its own */
		fsstate->keys = palloc(sizeof(char *));
		fsstate->keys[0] = "";
		fsstate->nkeys = 1;
	}
	else
		fsstate->nkeys = close_evaluate_keys(fsstate->key_state,
											 fsstate->key_is_array, prefix,
											 econtext, &fsstate->keys);

no_rows:
	MemoryContextSwitchTo(oldcxt);
}

/* A listing's path and query but its _skip and _limit. */
static void
append_listing(StringInfo path, CloseScanState *fsstate, const char *key)
{
	ListCell   *lc;

	appendStringInfoString(path, fsstate->res->path);
	if (fsstate->kind == CLOSE_ACCESS_BY_LEAD)
		close_append_query_param(path, "lead_id", key);
	if (fsstate->type_filter)
		close_append_query_param(path, "custom_object_type_id",
								 fsstate->type_filter);
	for (lc = list_head(fsstate->filter_params); lc;
		 lc = lnext(fsstate->filter_params, lc))
	{
		const char *name = lfirst(lc);

		lc = lnext(fsstate->filter_params, lc);
		append_filter(path, name, (const char *) lfirst(lc));
	}
	if (fsstate->fields)
		close_append_query_list(path, "_fields", fields_asked(fsstate));
}

/*
 * The path of one page of a listing: a lead's (key is the lead_id), or
 * the whole resource's.
 */
static char *
lead_page_path(CloseScanState *fsstate, const char *key, int skip)
{
	StringInfoData path;

	initStringInfo(&path);
	append_listing(&path, fsstate, key);
	close_append_query_param(&path, "_skip", psprintf("%d", skip));
	close_append_query_param(&path, "_limit", psprintf("%d", fsstate->limit));
	return path.data;
}

/*
 * A lead's whole listing (or the resource's), as the answer cache knows it:
 * the path of its pages without _skip and _limit.  Everything else that
 * shapes the answer is in it: the resource, the lead, the type, the
 * listing's filters and the _fields asked.
 */
static char *
lead_listing_path(CloseScanState *fsstate, const char *key)
{
	StringInfoData path;

	initStringInfo(&path);
	append_listing(&path, fsstate, key);
	return path.data;
}

/* A record's key as a string (its id, its lead_id), or NULL if not one. */
static const char *
record_text(struct json_object *record, const char *key)
{
	struct json_object *member = close_json_object_get(record, key);
	size_t		len;

	if (member == NULL || close_json_kind(member) != CLOSE_JSON_STRING)
		return NULL;
	return close_json_scalar_text(member, &len);
}

#define record_id(record) record_text((record), CLOSE_KEY_ID)

/* Whether a _fields list ("id,name") holds this key. */
static bool
fields_has_key(const char *fields, const char *key)
{
	size_t		len = strlen(key);
	const char *p = fields;

	while ((p = strstr(p, key)) != NULL)
	{
		if ((p == fields || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
			return true;
		p += len;
	}
	return false;
}

/*
 * The _fields a scan's GET sends (fsstate->fields, not NULL).  After a
 * lead's DELETE in the transaction, a record of that lead read by id or
 * listed may be a stale copy (Close's reads and list index lag deletes):
 * its lead_id is asked too, to tell (next_row).
 */
static const char *
fields_asked(CloseScanState *fsstate)
{
	if (fsstate->res->lead_filter && close_deleted_lead_in_xact() &&
		!fields_has_key(fsstate->fields, CLOSE_KEY_LEAD_ID))
		return psprintf("%s,%s", fsstate->fields, CLOSE_KEY_LEAD_ID);
	return fsstate->fields;
}

/*
 * Fetch the first pages of the leads from fsstate->current_index on, up to
 * max_concurrency of them at once, skipping those the statement already
 * has.
 */
static void
fetch_leads_ahead(CloseScanState *fsstate)
{
	CloseConnection *conn = close_get_connection(fsstate->user);
	char	  **paths = palloc(sizeof(char *) * fsstate->max_concurrency);
	CloseResponse kept;
	int			n = 0;
	int			i;

	for (i = fsstate->current_index;
		 i < fsstate->nkeys && n < fsstate->max_concurrency; i++)
	{
		char	   *path = lead_page_path(fsstate, fsstate->keys[i], 0);

		if (!close_answers_find(fsstate->statement_answers, path, false, &kept) &&
			(fsstate->cache_ttl_ms <= 0 ||
			 !close_answers_in_cache(conn, fsstate->cache_ttl_ms, "GET",
									 lead_listing_path(fsstate, fsstate->keys[i]),
									 NULL)))
			paths[n++] = path;
	}
	fsstate->leads_ahead_end = i;
	if (n > 1)
	{
		/* (the store is replaced only here: its answers are this old) */
		fsstate->leads_ahead_at = GetCurrentTimestamp();
		fsstate->requests += close_answers_fetch(fsstate->leads_ahead, conn,
												 paths, n);
	}
}

/* Whether a page at this _skip may be asked for (the resource's cap). */
static bool
skip_allowed(CloseScanState *fsstate, int skip)
{
	return fsstate->res->max_skip <= 0 || skip <= fsstate->res->max_skip;
}

/*
 * What a listing reads, for messages: "the custom objects of lead "L"",
 * "the listing GET /lead/".
 */
static char *
listing_name(CloseScanState *fsstate)
{
	if (fsstate->kind == CLOSE_ACCESS_BY_LEAD)
		return psprintf("the %s of lead \"%s\"",
						fsstate->res->import_table ? fsstate->res->import_table
						: "custom objects",
						fsstate->current_key);
	return psprintf("the listing GET %s", fsstate->res->path);
}

/*
 * Fetch the next pages of the current lead from fsstate->skip on, assuming
 * full pages (an answer that breaks the assumption leaves the rest unused:
 * each is found by its exact path).  After a full first page the window
 * is max_concurrency pages at once (a lead of N full pages costs at most
 * max_concurrency - 1 requests past its end); after a re-read it starts at
 * 2 again and doubles up to max_concurrency.
 */
/*
 * Wait for the round in flight, if any, to end (so that every request sent
 * has its answer, and the request log its entry), and forget it.
 */
static void
drop_next_round(CloseScanState *fsstate)
{
	if (fsstate->next_n > 0)
		while (close_flight_wait(fsstate->pages_flight) >= 0)
			;
	fsstate->next_n = 0;
	close_answers_reset(fsstate->pages_next);
}

/*
 * Give up the round in flight, if any, without waiting for it: the scan
 * stopped before reading it (a LIMIT met, the statement's end).  Its
 * requests that had not gone out yet are not counted as sent.
 */
static void
abandon_next_round(CloseScanState *fsstate)
{
	int			unsent;

	if (fsstate->next_n > 0)
	{
		(void) close_flight_abandon(fsstate->pages_flight, &unsent);
		fsstate->requests -= unsent;
	}
	fsstate->next_n = 0;
	close_answers_reset(fsstate->pages_next);
}

/*
 * After a round of pages (paths, n of them, in pages_ahead): when its last
 * page is full and promises more, the lead goes on past the round, so the
 * next round is sent now, without waiting for it, while this round's pages
 * are read (within the pacing and the request budget: what cannot start
 * now is asked for in its turn).
 */
static void
start_next_round(CloseScanState *fsstate, char **paths, int n)
{
	CloseConnection *conn = close_get_connection(fsstate->user);
	CloseResponse last;
	MemoryContext oldcxt;
	bool		has_more;
	int			length;
	int			skip;
	int			i;

	if (n < 2 || fsstate->pages_window < fsstate->max_concurrency ||
		!close_answers_find(fsstate->pages_ahead, paths[n - 1], false, &last))
		return;
	/* a look at the page, not a parse: it is parsed when read */
	if (!close_json_peek_page(last.body, last.body_len, &length, &has_more) ||
		!has_more || length < fsstate->limit)
		return;

	if (fsstate->pages_flight == NULL)
	{
		oldcxt = MemoryContextSwitchTo(fsstate->scan_cxt);
		fsstate->pages_flight = close_flight_create(conn, fsstate->scan_cxt,
													fsstate->max_concurrency);
		fsstate->next_paths = palloc0(sizeof(char *) * fsstate->max_concurrency);
		fsstate->next_responses = palloc0(sizeof(CloseResponse) * fsstate->max_concurrency);
		fsstate->next_slot = palloc0(sizeof(int) * fsstate->max_concurrency);
		MemoryContextSwitchTo(oldcxt);
	}
	close_answers_reset(fsstate->pages_next);
	oldcxt = MemoryContextSwitchTo(close_answers_context(fsstate->pages_next));
	skip = fsstate->skip + (n - 1) * fsstate->step;
	for (i = 0; i < fsstate->max_concurrency; i++)
	{
		int			slot;

		/* past the listing's _skip cap, the scan stops with an error */
		if (!skip_allowed(fsstate, skip + (i + 1) * fsstate->step))
			break;

		fsstate->next_paths[i] = lead_page_path(fsstate, fsstate->current_key,
												skip + (i + 1) * fsstate->step);
		slot = close_flight_start(fsstate->pages_flight, "GET",
								  fsstate->next_paths[i],
								  NULL, &fsstate->next_responses[i]);
		if (slot < 0)
			break;
		fsstate->next_slot[slot] = i;
		fsstate->next_n++;
		fsstate->requests++;
	}
	MemoryContextSwitchTo(oldcxt);

	/*
	 * Send the requests now; their answers wait in the sockets until the
	 * round is taken, so the memory a scan holds does not depend on when
	 * they come.
	 */
	close_flight_progress(fsstate->pages_flight);
}

/*
 * The round in flight becomes pages_ahead's, once it has all come; the one
 * after it is sent if it shows that the lead goes on.
 */
static void
take_next_round(CloseScanState *fsstate)
{
	CloseAnswers *swap;
	int			n = fsstate->next_n;
	int			slot;

	while ((slot = close_flight_wait(fsstate->pages_flight)) >= 0)
	{
		int			i = fsstate->next_slot[slot];

		close_answers_put(fsstate->pages_next, fsstate->next_paths[i],
						  &fsstate->next_responses[i]);
	}
	fsstate->next_n = 0;
	swap = fsstate->pages_ahead;
	fsstate->pages_ahead = fsstate->pages_next;
	fsstate->pages_next = swap;
	close_answers_reset(fsstate->pages_next);
	/* the round's paths, before the next round reuses next_paths */
	{
		char	  **paths = palloc(sizeof(char *) * n);

		memcpy(paths, fsstate->next_paths, sizeof(char *) * n);
		start_next_round(fsstate, paths, n);
	}
}

static void
fetch_pages_ahead(CloseScanState *fsstate)
{
	CloseConnection *conn = close_get_connection(fsstate->user);
	int			n = Min(fsstate->pages_window, fsstate->max_concurrency);
	char	  **paths = palloc(sizeof(char *) * n);
	int			i;

	drop_next_round(fsstate);
	for (i = 0; i < n && skip_allowed(fsstate, fsstate->skip + i * fsstate->step);
		 i++)
		paths[i] = lead_page_path(fsstate, fsstate->current_key,
								  fsstate->skip + i * fsstate->step);
	n = i;
	fsstate->requests += close_answers_fetch(fsstate->pages_ahead, conn,
											 paths, n);
	start_next_round(fsstate, paths, n);
	fsstate->pages_window = Min(n * 2, fsstate->max_concurrency);
}

/*
 * The answer to one page of the current lead.  The one place that knows
 * where a page may come from, in this order: the statement's kept answers
 * (a nested loop's repeated lead) and the leads' first pages fetched ahead,
 * unless the lead is being read again after it changed; for the first
 * page, the answer cache's whole listing of the lead (one page with every
 * object, which has_more false ends); the current lead's pages fetched
 * ahead (asked for several at once here); else a request of its own, with
 * retries.
 */
static void
get_lead_page(CloseScanState *fsstate, const char *path,
			  CloseResponse *response)
{
	CloseConnection *conn = close_get_connection(fsstate->user);
	bool		stored = !fsstate->fresh;

	if (stored &&
		close_answers_find(fsstate->statement_answers, path, false, response))
	{
		/* read before in this statement, maybe from the cache: not kept again */
		if (fsstate->skip == 0)
			fsstate->lead_whole = NULL;
		return;
	}
	if (stored &&
		close_answers_find(fsstate->leads_ahead, path, false, response))
	{
		/* asked for before the lead's turn: the answer is that old */
		close_whole_read_at(fsstate->lead_whole, fsstate->leads_ahead_at);
		return;
	}
	if (stored && fsstate->skip == 0 &&
		close_answers_cached(conn, fsstate->cache_ttl_ms, "GET",
							 lead_listing_path(fsstate, fsstate->current_key),
							 NULL, response))
	{
		fsstate->cache_hits++;
		fsstate->lead_whole = NULL; /* kept already */
		return;
	}

	/* the current lead's next pages are asked for several at once */
	if (fsstate->skip > 0 && fsstate->max_concurrency > 1 &&
		fsstate->pages_window > 1 &&
		!close_answers_find(fsstate->pages_ahead, path, false, response) &&
		!close_answers_failed(fsstate->pages_ahead, path, response))
	{
		if (fsstate->next_n > 0 && strcmp(path, fsstate->next_paths[0]) == 0)
			take_next_round(fsstate);
		if (!close_answers_find(fsstate->pages_ahead, path, false, response) &&
			!close_answers_failed(fsstate->pages_ahead, path, response))
			fetch_pages_ahead(fsstate);
	}
	if (close_answers_find(fsstate->pages_ahead, path, false, response))
		return;

	/* without retries, a failure fetched ahead is the answer */
	if (((stored && close_answers_failed(fsstate->leads_ahead, path, response)) ||
		 close_answers_failed(fsstate->pages_ahead, path, response)) &&
		!close_http_may_retry(conn, response))
	{
		if (response->transport_error != 0)
			close_report_transport_error(conn, "GET", path, response);
		close_report_http_error(conn, "GET", path, response, NULL);
	}
	close_http_request(conn, "GET", path, NULL, response);
	fsstate->requests += response->attempts;
	fsstate->retries += response->attempts - 1;
	fsstate->waited_ms += response->waited_ms;
	if (response->status != 200)
		close_report_http_error(conn, "GET", path, response, NULL);
}

static int
compare_hashes(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* The hash by which a returned object is remembered. */
static uint64
id_hash(const char *id)
{
	return hash_bytes_extended((const unsigned char *) id, strlen(id), 0);
}

/*
 * The current lead's listing shifted while it was read (a page did not
 * start with the last object of the page before: objects before it were
 * deleted or created meanwhile, or moved).  Read it again from the start,
 * fresh from Close, skipping the objects returned already.  After
 * CLOSE_LEAD_REREADS re-reads, an error.
 */
static void
lead_changed(CloseScanState *fsstate)
{
	if (++fsstate->rereads > CLOSE_LEAD_REREADS &&
		fsstate->kind == CLOSE_ACCESS_BY_LEAD)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not read %s: they changed while being read",
						listing_name(fsstate)),
				 errdetail("The lead's listing shifted %d times while it was paged through: objects were created, deleted or moved meanwhile.",
						   fsstate->rereads),
				 errhint("Try again.")));
	if (fsstate->rereads > CLOSE_LEAD_REREADS)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not read %s: it changed while being read",
						listing_name(fsstate)),
				 errdetail("The listing shifted %d times while it was paged through: records were created, deleted or updated meanwhile.",
						   fsstate->rereads),
				 errhint("Try again, or add a condition on \"id\" to read less.")));

	if (fsstate->nseen > 1)
		qsort(fsstate->seen, fsstate->nseen, sizeof(uint64), compare_hashes);
	fsstate->nsorted = fsstate->nseen;
	fsstate->fresh = true;
	fsstate->skip = 0;
	fsstate->overlap = false;
	fsstate->last_id[0] = '\0';
	fsstate->first_id[0] = '\0';
	drop_next_round(fsstate);
	close_answers_reset(fsstate->pages_ahead);
	fsstate->pages_window = 2;
}

/*
 * Read one page of the current lead's listing at fsstate->skip.  Returns
 * false, having set up a re-read, when the page shows that the listing
 * shifted.
 */
static bool
read_lead_page(CloseScanState *fsstate)
{
	MemoryContext oldcxt;
	char	   *path;
	CloseResponse response;
	struct json_object *root;
	struct json_object *data;
	const char *problem;
	const char *first = NULL;
	bool		has_more;
	int			nitems;
	int			i;

	MemoryContextReset(fsstate->page_cxt);
	fsstate->items = NULL;
	fsstate->nitems = 0;
	fsstate->next_item = 0;
	oldcxt = MemoryContextSwitchTo(fsstate->page_cxt);

	/* a listing that goes on past its _skip cap: never fewer rows */
	if (!skip_allowed(fsstate, fsstate->skip))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("could not read %s: it goes on past the largest _skip Close accepts",
						listing_name(fsstate)),
				 errdetail("Close refuses a _skip above %d for %s, and the listing has more records than that.",
						   fsstate->res->max_skip, fsstate->res->path),
				 fsstate->kind == CLOSE_ACCESS_BY_LEAD
				 ? errhint("A condition on \"id\" reads records one by one.")
				 : errhint("Add a condition Close applies (on \"id\"%s) to read fewer records.",
						   fsstate->res->lead_filter ? " or \"lead_id\"" : "")));

	path = lead_page_path(fsstate, fsstate->current_key, fsstate->skip);
	get_lead_page(fsstate, path, &response);
	if (fsstate->keep_answers)
	{
		if (fsstate->fresh)
			close_answers_forget(fsstate->statement_answers, path);
		close_answers_keep(fsstate->statement_answers, path, &response);
	}

	root = close_parse_answer("GET", path, &response, fsstate->page_cxt);
	problem = close_json_list_page(root, &data, &has_more);
	if (problem)
		close_report_bad_answer("GET", path,
								psprintf("Expected {\"data\": [...], \"has_more\": ...}, but %s.",
										 problem));
	nitems = close_json_array_length(data);
	fsstate->pages++;

	/* a page that promises more but brings nothing would never end */
	if (has_more && nitems == 0)
		close_report_bad_answer("GET", path,
								"The answer has \"has_more\": true but no records.");

	/* paging past one page needs every object's id, to check the pages */
	if (has_more)
		fsstate->tracking = true;
	if (fsstate->tracking)
		for (i = 0; i < nitems; i++)
		{
			const char *id = record_id(close_json_array_get(data, i));

			if (id == NULL || strlen(id) >= CLOSE_ID_MAX)
				close_report_bad_answer("GET", path,
										"An object of a listing lacks its id.");
		}
	if (nitems > 0)
		first = record_id(close_json_array_get(data, 0));

	/* a server that ignores _skip would page forever */
	if (first && fsstate->skip > 0 && strcmp(first, fsstate->first_id) == 0)
		close_report_bad_answer("GET", path,
								"The page repeats the previous page.");

	/* the page starts with the last object of the one before, or it moved */
	if (fsstate->overlap &&
		(first == NULL || strcmp(first, fsstate->last_id) != 0))
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(fsstate->page_cxt);
		lead_changed(fsstate);
		return false;
	}

	fsstate->items = data;
	fsstate->nitems = nitems;
	fsstate->next_item = fsstate->overlap ? 1 : 0;	/* that one was read */
	fsstate->has_more = has_more;
	strlcpy(fsstate->first_id, first ? first : "", sizeof(fsstate->first_id));

	/*
	 * The next page starts at this one's last object, unless it is its
	 * only one (a page of one object that promises more: no overlap then).
	 */
	fsstate->overlap = has_more && nitems >= 2;
	if (has_more)
		strlcpy(fsstate->last_id,
				record_id(close_json_array_get(data, nitems - 1)),
				sizeof(fsstate->last_id));
	fsstate->skip += fsstate->overlap ? nitems - 1 : nitems;

	/* pages shorter than asked: the next skips cannot be guessed */
	if (has_more && nitems < fsstate->limit)
	{
		fsstate->pages_window = 1;
		drop_next_round(fsstate);
	}

	MemoryContextSwitchTo(oldcxt);
	return true;
}

/* Read the next page of the current lead's listing (see read_lead_page). */
static void
fetch_lead_page(CloseScanState *fsstate)
{
	while (!read_lead_page(fsstate))
		CHECK_FOR_INTERRUPTS();
}

/*
 * Start reading a lead's listing: its first page.
 */
static void
start_lead(CloseScanState *fsstate)
{
	MemoryContextReset(fsstate->lead_cxt);
	fsstate->tracking = false;
	fsstate->seen = NULL;
	fsstate->nseen = 0;
	fsstate->seen_size = 0;
	fsstate->nsorted = 0;
	fsstate->rereads = 0;
	fsstate->fresh = false;
	fsstate->overlap = false;
	fsstate->last_id[0] = '\0';
	fsstate->first_id[0] = '\0';
	fsstate->items = NULL;
	fsstate->skip = 0;
	drop_next_round(fsstate);
	/* a full first page: the next ones come max_concurrency at once */
	fsstate->pages_window = fsstate->max_concurrency;
	fsstate->lead_whole = fsstate->cache_ttl_ms > 0
		? close_whole_begin(fsstate->lead_cxt, "GET",
							lead_listing_path(fsstate, fsstate->current_key),
							NULL)
		: NULL;
	fetch_lead_page(fsstate);
}

/*
 * Whether a record of a lead's page is to be returned: after a re-read
 * started, not if it was returned before.  A lead of more than one page
 * remembers a 64-bit hash of each id it returned (8 bytes an object; two
 * different ids share one with a chance of 1 in 2^64).
 */
static bool
lead_record_new(CloseScanState *fsstate, struct json_object *record)
{
	uint64		hash;

	if (!fsstate->tracking)
		return true;
	hash = id_hash(record_id(record));
	if (fsstate->nsorted > 0 &&
		bsearch(&hash, fsstate->seen, fsstate->nsorted, sizeof(uint64),
				compare_hashes) != NULL)
		return false;
	if (fsstate->nseen == fsstate->seen_size)
	{
		fsstate->seen_size = Max(fsstate->seen_size * 2, 256);
		fsstate->seen = fsstate->seen
			? repalloc(fsstate->seen, sizeof(uint64) * fsstate->seen_size)
			: MemoryContextAlloc(fsstate->lead_cxt,
								 sizeof(uint64) * fsstate->seen_size);
	}
	fsstate->seen[fsstate->nseen++] = hash;
	return true;
}

/*
 * False when the record has the key as a string other than value (so a
 * record that lacks it, as a GET with _fields not naming it, passes).
 */
static bool
record_has_key_value(struct json_object *record, const char *key,
					 const char *value)
{
	const char *member = record_text(record, key);

	return member == NULL || strcmp(member, value) == 0;
}

static void
idset_add(CloseIdSet *set, MemoryContext cxt, uint64 hash)
{
	if (set->n == set->size)
	{
		set->size = Max(set->size * 2, 256);
		set->ids = set->ids
			? repalloc_huge(set->ids, sizeof(uint64) * set->size)
			: MemoryContextAllocHuge(cxt, sizeof(uint64) * set->size);
	}
	set->ids[set->n++] = hash;
}

static bool
idset_has(CloseIdSet *set, uint64 hash)
{
	int			i;

	/* a long unsorted tail is sorted in; a short one is looked through */
	if (set->n - set->nsorted > 1024)
	{
		qsort(set->ids, set->n, sizeof(uint64), compare_hashes);
		set->nsorted = set->n;
	}
	for (i = set->nsorted; i < set->n; i++)
		if (set->ids[i] == hash)
			return true;
	return set->nsorted > 0 &&
		bsearch(&hash, set->ids, set->nsorted, sizeof(uint64),
				compare_hashes) != NULL;
}

/*
 * Whether a record of the current lead's listing is a row of a scan by
 * lead.  Close's listings lag: an object moved to another lead (a merge)
 * may still be listed under its former lead, and not yet under its new one.
 * It is the row of its lead_id (a record without it, not asked for, is
 * taken as the listed lead's): of no lead the scan reads, no row; of
 * another lead the scan reads ("lead_id IN (A, B)"), one row, whichever
 * listings hold it.  A scan of several leads remembers a 64-bit hash of each
 * id it returns (8 bytes an object).
 */
static bool
lead_record_take(CloseScanState *fsstate, struct json_object *record)
{
	const char *lead = record_text(record, CLOSE_KEY_LEAD_ID);
	bool		own;
	uint64		hash;

	own = lead == NULL || strcmp(lead, fsstate->current_key) == 0;
	if (fsstate->nkeys < 2)
		return own;

	hash = id_hash(record_id(record));
	if (own)
	{
		/* returned already from a former lead's lagging listing */
		if (fsstate->moved_ids.n > 0 && idset_has(&fsstate->moved_ids, hash))
			return false;
	}
	else
	{
		int			k;

		for (k = 0; k < fsstate->nkeys; k++)
			if (strcmp(fsstate->keys[k], lead) == 0)
				break;
		if (k == fsstate->nkeys)
			return false;
		/* its lead's listing, read already, returned it unless it lagged */
		if (k < fsstate->current_index &&
			idset_has(&fsstate->scan_ids, hash))
			return false;
		/* listed under two former leads */
		if (idset_has(&fsstate->moved_ids, hash))
			return false;
		idset_add(&fsstate->moved_ids, fsstate->keys_cxt, hash);
	}
	idset_add(&fsstate->scan_ids, fsstate->keys_cxt, hash);
	return true;
}

/* Retrieve one record by id; a 404 means there is no such record. */
static void
fetch_by_id(CloseScanState *fsstate)
{
	CloseConnection *conn = close_get_connection(fsstate->user);
	MemoryContext oldcxt;
	char	   *path;
	CloseResponse response;
	struct json_object *root;
	struct json_object *type;

	MemoryContextReset(fsstate->page_cxt);
	fsstate->record = NULL;
	fsstate->nitems = 0;
	fsstate->next_item = 0;
	fsstate->has_more = false;
	oldcxt = MemoryContextSwitchTo(fsstate->page_cxt);

	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfoString(&buf, close_record_path(fsstate->res->path,
													   fsstate->current_key));
		if (fsstate->fields)
			close_append_query_list(&buf, "_fields", fields_asked(fsstate));
		path = buf.data;
	}

	if (close_answers_find(fsstate->statement_answers, path, true, &response))
		;
	else if (close_answers_cached(conn, fsstate->cache_ttl_ms, "GET", path,
								  NULL, &response))
		fsstate->cache_hits++;
	else
	{
		TimestampTz asked = GetCurrentTimestamp();

		close_http_request(conn, "GET", path, NULL, &response);
		fsstate->requests += response.attempts;
		fsstate->retries += response.attempts - 1;
		fsstate->waited_ms += response.waited_ms;
		if (fsstate->keep_answers &&
			(response.status == 200 || response.status == 404))
			close_answers_keep(fsstate->statement_answers, path, &response);
		if (fsstate->cache_ttl_ms > 0)
			close_answers_remember(conn, fsstate->cache_since, asked, "GET",
								   path, NULL, &response);
	}
	if (response.status == 404)
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	if (response.status != 200)
		close_report_http_error(conn, "GET", path, &response, NULL);

	root = close_parse_answer("GET", path, &response, fsstate->page_cxt);
	if (close_json_kind(root) != CLOSE_JSON_OBJECT)
		close_report_bad_answer("GET", path,
								fsstate->res == close_resource_default()
								? "Expected a custom object record."
								: psprintf("Expected a %s record.",
										   fsstate->res->name));
	fsstate->pages++;

	/* the table shows one type only: a record of another type is not in it */
	if (fsstate->type_filter)
	{
		const char *type_text = NULL;
		size_t		len;

		type = close_json_object_get(root, CLOSE_KEY_TYPE_ID);
		if (type && close_json_kind(type) == CLOSE_JSON_STRING)
			type_text = close_json_scalar_text(type, &len);
		if (type_text == NULL || strcmp(type_text, fsstate->type_filter) != 0)
		{
			MemoryContextSwitchTo(oldcxt);
			return;
		}
	}

	/*
	 * The record asked for, or none: an answer of another record (a lead
	 * merged into another, say) is not the row "id = ..." selects, and an
	 * UPDATE or DELETE would write that other record.
	 */
	if (!record_has_key_value(root, CLOSE_KEY_ID, fsstate->current_key))
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}

	fsstate->record = root;
	fsstate->nitems = 1;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The next record of this (re)scan, or NULL at its end.  It belongs to the
 * page being read.
 */
static struct json_object *
next_record(CloseScanState *fsstate)
{
	if (fsstate->kind == CLOSE_ACCESS_SEARCH)
	{
		struct json_object *record = close_search_next(fsstate->search);

		/* a search read to its end is a whole answer */
		if (record)
			close_whole_add(fsstate->search_whole, record);
		else if (fsstate->search_whole)
		{
			close_whole_end(fsstate->search_whole,
							close_get_connection(fsstate->user),
							fsstate->cache_since, "\"cursor\": null");
			fsstate->search_whole = NULL;
		}
		return record;
	}
	for (;;)
	{
		if (fsstate->next_item < fsstate->nitems)
		{
			struct json_object *record = fsstate->items
				? close_json_array_get(fsstate->items, fsstate->next_item)
				: fsstate->record;

			fsstate->next_item++;

			/*
			 * The next round's answers are taken in while this one is read,
			 * so that Close is not kept waiting on full sockets.
			 */
			if (fsstate->next_n > 0 && fsstate->next_item % 16 == 0)
				close_flight_progress(fsstate->pages_flight);
			if (fsstate->items && !lead_record_new(fsstate, record))
				continue;

			/*
			 * The listing as Close gave it is the whole answer (a reader
			 * of it judges each record again); an object moved to another
			 * lead since is not a row of this lead's.
			 */
			if (fsstate->items)
				close_whole_add(fsstate->lead_whole, record);
			if (fsstate->items && fsstate->kind == CLOSE_ACCESS_BY_LEAD &&
				!lead_record_take(fsstate, record))
				continue;
			return record;
		}

		if (fsstate->items && fsstate->has_more)
		{
			fetch_lead_page(fsstate);
			continue;
		}

		/*
		 * A lead's listing read to its end is a whole answer, unless it
		 * changed while it was read.
		 */
		if (fsstate->items && fsstate->lead_whole)
		{
			if (fsstate->rereads == 0)
				close_whole_end(fsstate->lead_whole,
								close_get_connection(fsstate->user),
								fsstate->cache_since, "\"has_more\": false");
			fsstate->lead_whole = NULL;
		}

		if (fsstate->next_key >= fsstate->nkeys)
			return NULL;

		fsstate->current_index = fsstate->next_key;
		fsstate->current_key = fsstate->keys[fsstate->next_key++];
		if (fsstate->kind == CLOSE_ACCESS_BY_LEAD ||
			fsstate->kind == CLOSE_ACCESS_LIST)
		{
			/* many leads: their first pages are fetched several at once */
			if (fsstate->nkeys > 1 && fsstate->max_concurrency > 1 &&
				fsstate->current_index >= fsstate->leads_ahead_end)
				fetch_leads_ahead(fsstate);
			start_lead(fsstate);
		}
		else
			fetch_by_id(fsstate);
	}
}

/*
 * The next row of this (re)scan into slot (a virtual tuple); false at its
 * end.  Objects created by its statement or a later command are skipped.
 */
static bool
next_row(CloseScanState *fsstate, TupleTableSlot *slot)
{
	for (;;)
	{
		struct json_object *record = next_record(fsstate);
		const char *id;

		if (record == NULL)
			return false;
		id = record_id(record);
		if (close_created_since(id, fsstate->cid))
			continue;
		/* a stale copy of a record this transaction deleted, or of its lead's */
		if (close_deleted_in_xact(id, fsstate->cid) ||
			(close_deleted_lead_in_xact() &&
			 close_deleted_in_xact(record_text(record, CLOSE_KEY_LEAD_ID),
								   fsstate->cid)))
			continue;
		close_convert_record(fsstate->conv, record,
							 slot->tts_values, slot->tts_isnull);
		ExecStoreVirtualTuple(slot);
		fsstate->records++;
		return true;
	}
}

/*
 * A statement that writes reads its scan's whole answer before the first
 * row (for a parameterized scan, each restart's), as PostgreSQL's
 * Materialize does against the Halloween problem: its own writes must not
 * change what it reads (deletes would shift the pages still to read, and
 * created objects would be read back).  The rows go to a tuplestore, which
 * spills to a temporary file past work_mem.
 */
static void
read_whole(ForeignScanState *node)
{
	CloseScanState *fsstate = (CloseScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext oldcxt = MemoryContextSwitchTo(fsstate->scan_cxt);

	fsstate->rows = tuplestore_begin_heap(false, false, work_mem);
	if (fsstate->rows_slot == NULL)
		fsstate->rows_slot =
			MakeSingleTupleTableSlot(CreateTupleDescCopy(slot->tts_tupleDescriptor),
									 &TTSOpsMinimalTuple);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(fsstate->row_cxt);
		MemoryContextSwitchTo(fsstate->row_cxt);
		ExecClearTuple(slot);
		if (!next_row(fsstate, slot))
			break;
		tuplestore_puttupleslot(fsstate->rows, slot);
	}
	ExecClearTuple(slot);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(fsstate->row_cxt);
}

static TupleTableSlot *
closeIterateForeignScan(ForeignScanState *node)
{
	CloseScanState *fsstate = (CloseScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (IS_COUNT_SCAN(node))
		return close_count_iterate(node);

	/* parameters of a nested loop are set only once rows are asked for */
	if (!fsstate->started)
	{
		start_scan(node);
		if (fsstate->materialize)
			read_whole(node);
	}

	ExecClearTuple(slot);
	if (fsstate->rows)
	{
		TupleTableSlot *stored = fsstate->rows_slot;
		int			natts = slot->tts_tupleDescriptor->natts;
		MemoryContext oldcxt;
		bool		found;

		/*
		 * A tuple read back from the temporary file is palloc'd here and
		 * freed by the slot at the next one: not in the per-tuple context,
		 * which is reset between rows (the slot would free it again).
		 */
		oldcxt = MemoryContextSwitchTo(fsstate->scan_cxt);
		found = tuplestore_gettupleslot(fsstate->rows, true, false, stored);
		MemoryContextSwitchTo(oldcxt);
		if (!found)
			return slot;
		slot_getallattrs(stored);
		memcpy(slot->tts_values, stored->tts_values, sizeof(Datum) * natts);
		memcpy(slot->tts_isnull, stored->tts_isnull, sizeof(bool) * natts);
		ExecStoreVirtualTuple(slot);
		return slot;
	}
	(void) next_row(fsstate, slot);
	return slot;
}

static void
closeReScanForeignScan(ForeignScanState *node)
{
	CloseScanState *fsstate = (CloseScanState *) node->fdw_state;

	if (IS_COUNT_SCAN(node))
	{
		close_count_rescan(node);
		return;
	}
	fsstate->started = false;
	fsstate->keep_answers = true;
}

/* Drop the rows a (re)scan read whole, if it did. */
static void
drop_rows(CloseScanState *fsstate)
{
	if (fsstate->rows_slot)
		ExecClearTuple(fsstate->rows_slot);
	if (fsstate->rows)
		tuplestore_end(fsstate->rows);
	fsstate->rows = NULL;
}

static void
closeEndForeignScan(ForeignScanState *node)
{
	CloseScanState *fsstate = (CloseScanState *) node->fdw_state;

	/* keep the statistics in fdw_state; the data can go */
	if (fsstate && !IS_COUNT_SCAN(node))
	{
		if (fsstate->tracked)
			close_untrack_created();
		fsstate->tracked = false;
		abandon_next_round(fsstate);
		drop_rows(fsstate);
		if (fsstate->rows_slot)
			ExecDropSingleTupleTableSlot(fsstate->rows_slot);
		fsstate->rows_slot = NULL;
		MemoryContextReset(fsstate->scan_cxt);
	}
}

static void
closeExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	List	   *fdw_private = ((ForeignScan *) node->ss.ps.plan)->fdw_private;
	CloseAccessKind kind = (CloseAccessKind)
		intVal(list_nth(fdw_private, FdwScanPrivateAccessKind));
	char	   *key_values;
	List	   *summary;
	ListCell   *lc;

	if (kind == CLOSE_ACCESS_COUNT)
	{
		close_count_explain(node, es);
		return;
	}
	key_values = strVal(list_nth(fdw_private, FdwScanPrivateKeyValues));
	summary = (List *) list_nth(fdw_private, FdwScanPrivateSearchSummary);
	ExplainPropertyText("Close Request",
						strVal(list_nth(fdw_private, FdwScanPrivateRequest)), es);
	if (kind == CLOSE_ACCESS_SEARCH && es->format == EXPLAIN_FORMAT_TEXT &&
		!es->verbose && summary != NIL)
	{
		/* a readable summary; VERBOSE and the other formats show the body */
		ExplainPropertyText("Close Search", strVal(linitial(summary)), es);
		for_each_from(lc, summary, 1)
			ExplainPropertyText("Close Search Condition", strVal(lfirst(lc)), es);
	}
	else if (key_values[0] != '\0')
		ExplainPropertyText(kind == CLOSE_ACCESS_BY_ID ? "Close id"
							: kind == CLOSE_ACCESS_BY_LEAD ? "Close lead_id"
							: "Close Search", key_values, es);
	if (es->costs)
		ExplainPropertyInteger("Close Requests (planned)", NULL,
							   intVal(list_nth(fdw_private,
											   FdwScanPrivatePlannedRequests)),
							   es);

	if (es->analyze && node->fdw_state)
	{
		CloseScanState *fsstate = (CloseScanState *) node->fdw_state;
		int64		search_requests;

		/*
		 * The statement has run: a round still in flight is not read, and
		 * only its requests that went out count.
		 */
		abandon_next_round(fsstate);
		fsstate->requests += close_search_abandon(fsstate->search);
		search_requests = fsstate->search_requests +
			close_search_requests(fsstate->search);

		ExplainPropertyInteger("Close Requests", NULL,
							   fsstate->requests + search_requests, es);
		ExplainPropertyInteger("Close Pages", NULL,
							   fsstate->pages + search_requests, es);
		ExplainPropertyInteger("Close Records", NULL, fsstate->records, es);
		if (fsstate->cache_ttl_ms > 0)
			ExplainPropertyInteger("Close Cache Hits", NULL,
								   fsstate->cache_hits, es);
		if (fsstate->search_not_pushed > 0)
			ExplainPropertyInteger("Close Search Conditions Not Sent", NULL,
								   fsstate->search_not_pushed, es);
		if (fsstate->retries + close_search_retries(fsstate->search) > 0)
			ExplainPropertyInteger("Close Retries", NULL,
								   fsstate->retries + close_search_retries(fsstate->search),
								   es);
		if (es->timing && fsstate->waited_ms + close_search_waited_ms(fsstate->search) > 0)
			ExplainPropertyFloat("Close Wait", "ms",
								 fsstate->waited_ms + close_search_waited_ms(fsstate->search),
								 1, es);
	}
}
