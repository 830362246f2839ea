/*-------------------------------------------------------------------------
 *
 * upper.c
 *		  Aggregates computed by Close: count(*) over a foreign table answered
 *		  by one search that asks for its count alone (include_counts with
 *		  results_limit 0), instead of reading every object to count it.
 *
 * Pushed only when the answer is surely SQL's: no GROUP BY, grouping sets
 * or HAVING; every aggregate a plain count(*), or count(column) of a key
 * Close always sets (so never NULL); and every condition on the table one
 * that the search applies exactly (pushdown.c's exact_rinfos: ids, lead_id,
 * custom_object_type_id).  A condition Close applies only approximately
 * (text that may ignore case, a range widened for precision, any custom
 * field, which is rechecked locally) or not at all keeps the aggregate
 * local: the scan reads the objects and PostgreSQL counts them.
 *
 * The plan is a ForeignScan of the upper relation (scanrelid 0) whose
 * fdw_scan_tlist holds the count aggregates; fdw_private is laid out as
 * FdwUpperPrivateIndex says, its first element a CLOSE_ACCESS_COUNT so
 * that close_fdw.c's callbacks send the scan here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_aggregate.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/tlist.h"
#include "utils/lsyscache.h"

#include "close_fdw.h"

/* pg_proc OIDs of count() and count("any"), the same on every release */
#define COUNT_STAR_OID	2803
#define COUNT_ANY_OID	2147

/* fdw_private of a count's ForeignScan */
enum FdwUpperPrivateIndex
{
	/* Integer: CLOSE_ACCESS_COUNT (at FdwScanPrivateAccessKind) */
	FdwUpperPrivateAccessKind,
	/* Integer: the foreign table's OID */
	FdwUpperPrivateRelid,
	/* String: the request body, as EXPLAIN shows it */
	FdwUpperPrivateBody,
	/* List: the search's query nodes (values in fdw_exprs) */
	FdwUpperPrivateNodes
};

/* In the upper relation's fdw_private, from path to plan. */
typedef struct CloseUpperInfo
{
	RelOptInfo *input_rel;
	List	   *aggs;			/* the count Aggrefs: fdw_scan_tlist */
} CloseUpperInfo;

/* Executor state of a count. */
typedef struct CloseCountState
{
	UserMapping *user;
	const CloseResource *res;	/* what is counted */
	char	   *type_id;		/* the table's custom_object_type_id */
	char	   *relname;		/* the foreign table's, for errors */
	bool		checked;		/* type_id checked against Close's types */
	List	   *nodes;
	List	   *value_states;
	bool		done;			/* the row has been returned */
	int64		requests;
} CloseCountState;

/* Is this count one Close's answer gives?  count(*) or of a key always set. */
static bool
count_is_pushable(Aggref *agg, RelOptInfo *input_rel, Oid relid)
{
	TargetEntry *tle;
	Var		   *var;
	char	   *key;

	if (agg->aggdistinct != NIL || agg->aggorder != NIL ||
		agg->aggfilter != NULL || agg->agglevelsup != 0 ||
		agg->aggkind != AGGKIND_NORMAL || agg->aggsplit != AGGSPLIT_SIMPLE)
		return false;
	if (agg->aggfnoid == COUNT_STAR_OID && agg->aggstar)
		return true;
	if (agg->aggfnoid != COUNT_ANY_OID || list_length(agg->args) != 1)
		return false;
	tle = linitial_node(TargetEntry, agg->args);
	var = (Var *) tle->expr;
	while (var && IsA(var, RelabelType))
		var = (Var *) ((RelabelType *) var)->arg;
	if (var == NULL || !IsA(var, Var) || var->varno != input_rel->relid ||
		var->varlevelsup != 0 || var->varattno <= 0)
		return false;
	key = close_get_column_key(relid, var->varattno,
							   get_attname(relid, var->varattno, false));
	/* a key of the resource's records (a lead has no lead_id: NULL) */
	if (close_resource_key(close_get_table_resource(relid), key) == NULL)
		return false;
	return strcmp(key, CLOSE_KEY_ID) == 0 ||
		strcmp(key, CLOSE_KEY_LEAD_ID) == 0 ||
		strcmp(key, CLOSE_KEY_TYPE_ID) == 0 ||
		strcmp(key, "date_created") == 0 ||
		strcmp(key, "date_updated") == 0 ||
		strcmp(key, "organization_id") == 0;
}

void
closeGetForeignUpperPaths(PlannerInfo *root, UpperRelationKind stage,
						  RelOptInfo *input_rel, RelOptInfo *output_rel,
						  void *extra)
{
	Query	   *parse = root->parse;
	Oid			relid;
	CloseSearchPushdown sp;
	CloseUpperInfo *info;
	List	   *items;
	List	   *aggs = NIL;
	ListCell   *lc;

	if (stage != UPPERREL_GROUP_AGG || output_rel->fdw_private != NULL ||
		input_rel->reloptkind != RELOPT_BASEREL ||
		input_rel->fdw_private == NULL ||
		!bms_is_empty(input_rel->lateral_relids))
		return;
	if (parse->groupClause != NIL || parse->groupingSets != NIL ||
		root->hasHavingQual || parse->hasTargetSRFs || !parse->hasAggs)
		return;
	relid = planner_rt_fetch(input_rel->relid, root)->relid;
	if (close_get_table_resource(relid)->search_type == NULL)
		return;					/* Close cannot count it */

	/* a resource read through its listing has no search count */
	if (!close_resource_searched(close_get_table_resource(relid)))
		return;

	/* every condition applied by Close exactly */
	close_search_conditions(root, input_rel, input_rel->baserestrictinfo, &sp);
	foreach(lc, input_rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (rinfo->pseudoconstant || !list_member_ptr(sp.exact_rinfos, rinfo))
			return;
	}

	/* the output is computed from count aggregates alone */
	items = pull_var_clause((Node *) output_rel->reltarget->exprs,
							PVC_INCLUDE_AGGREGATES | PVC_INCLUDE_PLACEHOLDERS |
							PVC_RECURSE_WINDOWFUNCS);
	foreach(lc, items)
	{
		Node	   *item = (Node *) lfirst(lc);

		if (!IsA(item, Aggref) ||
			!count_is_pushable((Aggref *) item, input_rel, relid))
			return;
		aggs = list_append_unique(aggs, item);
	}
	if (aggs == NIL)
		return;

	info = palloc0(sizeof(CloseUpperInfo));
	info->input_rel = input_rel;
	info->aggs = aggs;
	output_rel->fdw_private = info;

	add_path(output_rel, (Path *)
			 close_create_foreign_upper_path(root, output_rel,
											 output_rel->reltarget, 1,
											 close_count_cost(),
											 close_count_cost(), NIL));
}

/* The plan of a count: the search's conditions, and the aggregates. */
ForeignScan *
close_plan_count(PlannerInfo *root, RelOptInfo *rel, List *tlist,
				 Plan *outer_plan)
{
	CloseUpperInfo *info = (CloseUpperInfo *) rel->fdw_private;
	RelOptInfo *input_rel = info->input_rel;
	Oid			relid = planner_rt_fetch(input_rel->relid, root)->relid;
	CloseSearchPushdown sp;
	CloseSearchValues vals;
	List	   *scan_tlist = NIL;
	List	   *fdw_private;
	ListCell   *lc;
	char	   *query;

	close_search_conditions(root, input_rel, input_rel->baserestrictinfo, &sp);
	foreach(lc, info->aggs)
		scan_tlist = lappend(scan_tlist,
							 makeTargetEntry((Expr *) lfirst(lc),
											 list_length(scan_tlist) + 1,
											 NULL, false));

	/* what EXPLAIN shows: constants as they are, other values described */
	close_search_plan_values(root, sp.values, &vals);

	query = close_search_render_query(close_get_table_resource(relid),
									  sp.nodes, close_get_table_type_id(relid),
									  &vals);
	fdw_private = list_make4(makeInteger(CLOSE_ACCESS_COUNT),
							 makeInteger((int) relid),
							 makeString(close_search_render_count(close_get_table_resource(relid),
																  query)),
							 sp.nodes);

	return make_foreignscan(tlist, NIL, 0, sp.values, fdw_private,
							scan_tlist, NIL, outer_plan);
}

void
close_count_begin(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	Oid			relid = (Oid) intVal(list_nth(fsplan->fdw_private,
											  FdwUpperPrivateRelid));
	ForeignTable *table;
	CloseCountState *cs;

	/* EXPLAIN without ANALYZE makes no request and needs no state */
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	cs = palloc0(sizeof(CloseCountState));
	table = GetForeignTable(relid);
	cs->user = GetUserMapping(close_scan_user(node), table->serverid);
	cs->res = close_get_table_resource(relid);
	cs->type_id = close_get_table_type_id(relid);
	cs->relname = get_rel_name(relid);
	cs->nodes = (List *) list_nth(fsplan->fdw_private, FdwUpperPrivateNodes);
	cs->value_states = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	node->fdw_state = cs;
}

TupleTableSlot *
close_count_iterate(ForeignScanState *node)
{
	CloseCountState *cs = (CloseCountState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	CloseSearchValues vals;
	MemoryContext oldcxt;
	int64		count;
	int			i = 0;

	ExecClearTuple(slot);
	if (cs->done)
		return slot;
	cs->done = true;

	/* the values and the request are per-tuple data */
	oldcxt = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);

	/*
	 * As a scan's first read does: a custom_object_type_id that Close does
	 * not have is an error, not a count of 0 (the types are cached per user
	 * mapping).
	 */
	if (cs->type_id && !cs->checked)
	{
		close_field_types_check_table(close_field_types_get(cs->user, 0,
															&cs->requests),
									  cs->relname, cs->type_id, NIL, NIL);
		cs->checked = true;
	}
	close_search_evaluate(cs->value_states, econtext, &vals);
	count = close_search_count(cs->user, cs->res,
							   close_search_render_query(cs->res, cs->nodes,
														 cs->type_id, &vals),
							   &cs->requests);
	MemoryContextSwitchTo(oldcxt);

	for (i = 0; i < slot->tts_tupleDescriptor->natts; i++)
	{
		slot->tts_values[i] = Int64GetDatum(count);
		slot->tts_isnull[i] = false;
	}
	ExecStoreVirtualTuple(slot);
	return slot;
}

void
close_count_rescan(ForeignScanState *node)
{
	CloseCountState *cs = (CloseCountState *) node->fdw_state;

	cs->done = false;
}

void
close_count_explain(ForeignScanState *node, ExplainState *es)
{
	List	   *fdw_private = ((ForeignScan *) node->ss.ps.plan)->fdw_private;

	ExplainPropertyText("Close Request", "POST /data/search/ (count only)", es);
	ExplainPropertyText("Close Search",
						strVal(list_nth(fdw_private, FdwUpperPrivateBody)), es);
	if (es->analyze && node->fdw_state)
		ExplainPropertyInteger("Close Requests", NULL,
							   ((CloseCountState *) node->fdw_state)->requests,
							   es);
}

/*
 * The number of objects a search's query (rendered conditions) finds: one
 * request for the count alone.  An answer without a count is an error.
 */
int64
close_search_count(UserMapping *user, const CloseResource *res,
				   const char *query, int64 *requests)
{
	CloseConnection *conn = close_get_connection(user);
	char	   *body = close_search_render_count(res, query);
	CloseResponse response;
	struct json_object *root;
	struct json_object *count;
	const char *text = NULL;
	char	   *end;
	int64		total;
	size_t		len;

	close_http_request(conn, "POST", "/data/search/", body, &response);
	*requests += response.attempts;
	if (response.status != 200)
		close_report_http_error(conn, "POST", "/data/search/", &response, NULL);
	root = close_parse_answer("POST", "/data/search/", &response,
							  CurrentMemoryContext);
	if (close_json_kind(root) == CLOSE_JSON_OBJECT &&
		(count = close_json_object_get(root, "count")) != NULL &&
		close_json_kind(count) == CLOSE_JSON_OBJECT &&
		(count = close_json_object_get(count, "total")) != NULL &&
		close_json_kind(count) == CLOSE_JSON_NUMBER)
		text = close_json_scalar_text(count, &len);
	if (text == NULL)
		close_report_bad_answer("POST", "/data/search/",
								"Expected {\"count\": {\"total\": N}}.");
	errno = 0;
	total = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0' || total < 0)
		close_report_bad_answer("POST", "/data/search/",
								"The count is not a whole number of objects.");
	return total;
}
