/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which conditions of a scan become request parameters.  The API
 *		  filters custom objects by exact lead_id and id (and by
 *		  custom_object_type_id within a lead), so only text equality on
 *		  those columns, with a deterministic collation, is ever pushed;
 *		  everything else stays a local filter.  Also finds the join clauses
 *		  that make parameterized scans (one listing per outer lead),
 *		  describes pushed values for EXPLAIN, and turns a search's
 *		  conditions into query nodes: each a superset of what SQL keeps
 *		  unless exact, and only of a kind the type Close stores the field as
 *		  takes (confirmed for custom fields when the scan starts).  A
 *		  search's core fields and their types are its resource's keys
 *		  (resource.c), custom fields those of custom object types or of the
 *		  resource's field schema.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/transam.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/clauses.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "close_fdw.h"
#include "compat.h"

/* Planner guess of distinct values behind a parameter array. */
#define UNKNOWN_ARRAY_VALUES	10

/*
 * The columns that map to the keys the API can filter on (the first
 * column of each, by the record key it reads).
 */
void
close_find_key_columns(Oid relid, CloseKeyColumns *keys)
{
	Relation	rel = table_open(relid, NoLock);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	const CloseResource *res = close_get_table_resource(relid);
	int			i;

	/* a key is pushed only where the resource's API takes it */
	keys->list_whole = !close_resource_searched(res);
	keys->list_filtered = res->list_filters != NULL || res->list_ranges != NULL;
	keys->relid = relid;
	keys->id_pushed = res->get_by_id;
	keys->lead_pushed = res->lead_filter;
	keys->id_attno = InvalidAttrNumber;
	keys->lead_attno = InvalidAttrNumber;
	keys->type_attno = InvalidAttrNumber;
	keys->date_created_attno = InvalidAttrNumber;
	keys->date_updated_attno = InvalidAttrNumber;
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		char	   *key;

		if (att->attisdropped)
			continue;
		key = close_get_column_key(relid, att->attnum, NameStr(att->attname));
		if (strcmp(key, CLOSE_KEY_ID) == 0)
		{
			if (keys->id_attno == InvalidAttrNumber)
				keys->id_attno = att->attnum;
		}
		else if (strcmp(key, CLOSE_KEY_LEAD_ID) == 0)
		{
			if (keys->lead_attno == InvalidAttrNumber)
				keys->lead_attno = att->attnum;
		}
		else if (strcmp(key, CLOSE_KEY_TYPE_ID) == 0)
		{
			if (keys->type_attno == InvalidAttrNumber &&
				close_resource_key(res, CLOSE_KEY_TYPE_ID))
				keys->type_attno = att->attnum;
		}
		else if (strcmp(key, "date_created") == 0 &&
				 keys->date_created_attno == InvalidAttrNumber &&
				 (getBaseType(att->atttypid) == TIMESTAMPTZOID ||
				  getBaseType(att->atttypid) == TIMESTAMPOID))
			keys->date_created_attno = att->attnum;
		else if (strcmp(key, "date_updated") == 0 &&
				 keys->date_updated_attno == InvalidAttrNumber &&
				 (getBaseType(att->atttypid) == TIMESTAMPTZOID ||
				  getBaseType(att->atttypid) == TIMESTAMPOID))
			keys->date_updated_attno = att->attnum;
	}
	table_close(rel, NoLock);
}

static Expr *
strip_relabel(Expr *expr)
{
	while (expr && IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	return expr;
}

static bool
is_key_var(Expr *expr, Index relid, AttrNumber attno)
{
	Var		   *var = (Var *) strip_relabel(expr);

	return attno != InvalidAttrNumber && var && IsA(var, Var) &&
		var->varno == relid && var->varattno == attno &&
		var->varlevelsup == 0;
}

/*
 * A value side that can be computed once before the scan (or per outer
 * row): no column of this table, nothing volatile, no correlated subplan.
 */
static bool
is_outside_value(PlannerInfo *root, Expr *expr, Index relid)
{
	return !bms_is_member(relid, close_pull_varnos(root, (Node *) expr)) &&
		!contain_volatile_functions((Node *) expr) &&
		!contain_subplans((Node *) expr);
}

/* Text equality under a collation that compares bytes as the API does. */
static bool
is_exact_text_equality(Oid opno, Oid collation)
{
	return opno == TextEqualOperator &&
		(!OidIsValid(collation) || get_collation_isdeterministic(collation));
}

/*
 * Is clause "column = value" or "column = ANY (array)" for the column
 * attno, with text equality and a value from outside the table?
 */
static bool
match_key_clause(PlannerInfo *root, Expr *clause, Index relid,
				 AttrNumber attno, Expr **value, bool *is_array)
{
	if (attno == InvalidAttrNumber)
		return false;

	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;
		Expr	   *left;
		Expr	   *right;

		if (list_length(op->args) != 2 ||
			!is_exact_text_equality(op->opno, op->inputcollid))
			return false;
		left = linitial(op->args);
		right = lsecond(op->args);
		if (is_key_var(left, relid, attno) &&
			is_outside_value(root, right, relid))
			*value = right;
		else if (is_key_var(right, relid, attno) &&
				 is_outside_value(root, left, relid))
			*value = left;
		else
			return false;
		*is_array = false;
		return true;
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;

		if (!saop->useOr || list_length(saop->args) != 2 ||
			!is_exact_text_equality(saop->opno, saop->inputcollid) ||
			!is_key_var(linitial(saop->args), relid, attno) ||
			!is_outside_value(root, lsecond(saop->args), relid))
			return false;
		*value = lsecond(saop->args);
		*is_array = true;
		return true;
	}
	return false;
}

static double
estimate_value_count(Expr *value, bool is_array)
{
	Const	   *c = (Const *) strip_relabel(value);

	if (!is_array)
		return 1;
	if (IsA(c, Const))
	{
		if (c->constisnull)
			return 0;
		return ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(c->constvalue)),
							  ARR_DIMS(DatumGetArrayTypeP(c->constvalue)));
	}
	return UNKNOWN_ARRAY_VALUES;
}

/*
 * Choose how a scan with these conditions reaches its records: by id
 * (cheapest: one request per id) over by lead (a paged listing per lead),
 * single values over lists.  The custom_object_type_id condition is only
 * pushed with a lead listing, the one request that takes it.
 */
void
close_classify_conditions(PlannerInfo *root, RelOptInfo *baserel,
						  const CloseKeyColumns *keys, List *rinfos,
						  ClosePushdown *out)
{
	ListCell   *lc;
	int			best_rank = 0;

	memset(out, 0, sizeof(*out));
	/* unless a lead or id condition: a search, or the resource's listing */
	out->kind = keys->list_whole ? CLOSE_ACCESS_LIST : CLOSE_ACCESS_SEARCH;

	foreach(lc, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		Expr	   *value;
		bool		is_array;
		int			rank = 0;
		CloseAccessKind kind = out->kind;

		if (rinfo->pseudoconstant)
			continue;
		if (keys->id_pushed &&
			match_key_clause(root, rinfo->clause, baserel->relid,
							 keys->id_attno, &value, &is_array))
		{
			kind = CLOSE_ACCESS_BY_ID;
			rank = is_array ? 3 : 4;
		}
		else if (keys->lead_pushed &&
				 match_key_clause(root, rinfo->clause, baserel->relid,
								  keys->lead_attno, &value, &is_array))
		{
			kind = CLOSE_ACCESS_BY_LEAD;
			rank = is_array ? 1 : 2;
		}
		else if (out->type_rinfo == NULL &&
				 match_key_clause(root, rinfo->clause, baserel->relid,
								  keys->type_attno, &value, &is_array) &&
				 !is_array)
		{
			out->type_rinfo = rinfo;
			out->type_expr = value;
		}

		if (rank > best_rank)
		{
			best_rank = rank;
			out->kind = kind;
			out->key_rinfo = rinfo;
			out->key_expr = value;
			out->key_is_array = is_array;
			out->key_count = estimate_value_count(value, is_array);
		}
	}

	/*
	 * Without a key, a resource searched otherwise is read through its own
	 * listing when the listing takes one of the conditions as a timestamp
	 * range: Close applies those to the microsecond, where a search's date
	 * bounds may be whole days (what an incremental read by date_updated
	 * asks).  Its other filters (statuses, users) a search applies exactly
	 * too, and a search can also sort with a LIMIT and count, which the
	 * listing cannot: those stay searches.
	 */
	if (out->kind == CLOSE_ACCESS_SEARCH && keys->list_filtered)
	{
		List	   *names;
		List	   *exprs;
		ListCell   *lc2;

		close_list_filters(root, baserel, keys->relid, rinfos, &names, &exprs);
		foreach(lc2, names)
		{
			const char *name = strVal(lfirst(lc2));

			if (strstr(name, "__gt") || strstr(name, "__lt"))
				out->kind = CLOSE_ACCESS_LIST;
		}
	}

	if (out->kind != CLOSE_ACCESS_BY_LEAD)
	{
		out->type_rinfo = NULL;
		out->type_expr = NULL;
	}
}

/* Callback for generate_implied_equalities_for_column. */
static bool
ec_member_matches_key(PlannerInfo *root, RelOptInfo *rel,
					  EquivalenceClass *ec, EquivalenceMember *em,
					  void *arg)
{
	AttrNumber	attno = *(AttrNumber *) arg;

	return is_key_var(em->em_expr, rel->relid, attno);
}

static List *
add_outer_for_clause(PlannerInfo *root, RelOptInfo *baserel,
					 const CloseKeyColumns *keys, RestrictInfo *rinfo,
					 List *outers)
{
	Expr	   *value;
	bool		is_array;
	Relids		required_outer;
	ListCell   *lc;

	if (!(keys->lead_pushed &&
		  match_key_clause(root, rinfo->clause, baserel->relid,
						   keys->lead_attno, &value, &is_array)) &&
		!(keys->id_pushed &&
		  match_key_clause(root, rinfo->clause, baserel->relid,
						   keys->id_attno, &value, &is_array)))
		return outers;

	required_outer = bms_union(rinfo->clause_relids, baserel->lateral_relids);
	required_outer = bms_del_members(required_outer, baserel->relids);
	if (bms_is_empty(required_outer))
		return outers;
	foreach(lc, outers)
	{
		if (bms_equal((Relids) lfirst(lc), required_outer))
			return outers;
	}
	return lappend(outers, required_outer);
}

/*
 * The sets of outer relations that could feed this table's lead_id or id
 * one row at a time (a join clause or an equivalence with another
 * table's column): each gets a parameterized path, so a join lists one
 * lead per outer row rather than everything.
 */
List *
close_join_clause_outers(PlannerInfo *root, RelOptInfo *baserel,
						 const CloseKeyColumns *keys)
{
	List	   *outers = NIL;
	ListCell   *lc;
	AttrNumber	attnos[2];
	int			i;

	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		if (join_clause_is_movable_to(rinfo, baserel))
			outers = add_outer_for_clause(root, baserel, keys, rinfo, outers);
	}

	attnos[0] = keys->lead_pushed ? keys->lead_attno : InvalidAttrNumber;
	attnos[1] = keys->id_pushed ? keys->id_attno : InvalidAttrNumber;
	for (i = 0; i < 2; i++)
	{
		List	   *clauses;

		if (attnos[i] == InvalidAttrNumber)
			continue;
		clauses = generate_implied_equalities_for_column(root, baserel,
														 ec_member_matches_key,
														 &attnos[i],
														 baserel->lateral_referencers);
		foreach(lc, clauses)
			outers = add_outer_for_clause(root, baserel, keys,
										  lfirst_node(RestrictInfo, lc), outers);
	}
	return outers;
}

static bool
contains_param_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param))
		return true;
	return expression_tree_walker(node, contains_param_walker, context);
}

/*
 * A pushed value as EXPLAIN shows it, worked out at plan time while
 * another table's column is still a Var (at run time it is a Param).
 */
char *
close_describe_value(PlannerInfo *root, Expr *expr)
{
	expr = strip_relabel(expr);

	if (IsA(expr, Var))
	{
		Var		   *var = (Var *) expr;
		RangeTblEntry *rte = planner_rt_fetch(var->varno, root);

		return psprintf("%s.%s", quote_identifier(rte->eref->aliasname),
						quote_identifier(get_rte_attribute_name(rte, var->varattno)));
	}
	if (IsA(expr, Param))
		return psprintf("$%d", ((Param *) expr)->paramid);
	if (contain_var_clause((Node *) expr) ||
		contains_param_walker((Node *) expr, NULL))
		return pstrdup("(expression)");
	return deparse_expression((Node *) expr, NIL, false, false);
}

/* ---- a listing's filter parameters ---- */

static bool
key_in_list(const char *const *list, const char *key)
{
	if (list == NULL)
		return false;
	for (; *list; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

/*
 * A timestamptz comparison "column op value" (or "value op column") of
 * PostgreSQL's own operators, with a value from outside the table: the
 * column's attribute number and the parameter suffix ("__gt", ...) with the
 * column on the left; InvalidAttrNumber otherwise.
 */
static AttrNumber
match_range_clause(PlannerInfo *root, Expr *clause, Index relid,
				   Expr **value, const char **suffix)
{
	OpExpr	   *op = (OpExpr *) clause;
	Var		   *var;
	Expr	   *other;
	bool		commuted;
	char	   *opname;
	Oid			left_type;
	Oid			right_type;

	if (!IsA(clause, OpExpr) || list_length(op->args) != 2 ||
		op->opno >= FirstGenbkiObjectId)
		return InvalidAttrNumber;
	op_input_types(op->opno, &left_type, &right_type);
	if (left_type != TIMESTAMPTZOID || right_type != TIMESTAMPTZOID)
		return InvalidAttrNumber;
	var = (Var *) strip_relabel(linitial(op->args));
	other = lsecond(op->args);
	commuted = false;
	if (!IsA(var, Var))
	{
		var = (Var *) strip_relabel(lsecond(op->args));
		other = linitial(op->args);
		commuted = true;
	}
	if (!IsA(var, Var) || var->varno != relid || var->varlevelsup != 0 ||
		var->varattno <= 0 || !is_outside_value(root, other, relid))
		return InvalidAttrNumber;
	opname = get_opname(op->opno);
	if (opname == NULL)
		return InvalidAttrNumber;
	if (strcmp(opname, "<") == 0)
		*suffix = commuted ? "__gt" : "__lt";
	else if (strcmp(opname, "<=") == 0)
		*suffix = commuted ? "__gte" : "__lte";
	else if (strcmp(opname, ">") == 0)
		*suffix = commuted ? "__lt" : "__gt";
	else if (strcmp(opname, ">=") == 0)
		*suffix = commuted ? "__lte" : "__gte";
	else
		return InvalidAttrNumber;
	*value = other;
	return var->varattno;
}

/*
 * The conditions a resource's listing can filter by (its list_filters and
 * list_ranges): *names gets each parameter ("status_id", "status_id__in",
 * "date_updated__gte"), *exprs its value expression, at most one a
 * parameter.  Each is applied by Close with SQL's meaning, and the scan
 * still checks it, so these conditions stay local filters as well.
 */
void
close_list_filters(PlannerInfo *root, RelOptInfo *baserel, Oid relid,
				   List *rinfos, List **names, List **exprs)
{
	const CloseResource *res = close_get_table_resource(relid);
	Relation	rel;
	TupleDesc	tupdesc;
	ListCell   *lc;

	*names = NIL;
	*exprs = NIL;
	if (res->list_filters == NULL && res->list_ranges == NULL)
		return;
	rel = table_open(relid, NoLock);
	tupdesc = RelationGetDescr(rel);
	foreach(lc, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		Expr	   *value;
		bool		is_array;
		const char *suffix;
		AttrNumber	attno;
		char	   *key;
		char	   *name = NULL;

		if (rinfo->pseudoconstant)
			continue;
		for (attno = 1; attno <= tupdesc->natts && name == NULL; attno++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, attno - 1);

			if (att->attisdropped ||
				!key_in_list(res->list_filters,
							 close_get_column_key(relid, attno,
												  NameStr(att->attname))))
				continue;
			if (match_key_clause(root, rinfo->clause, baserel->relid, attno,
								 &value, &is_array))
			{
				key = close_get_column_key(relid, attno, NameStr(att->attname));
				name = is_array ? psprintf("%s__in", key) : key;
			}
		}
		if (name == NULL && res->list_ranges != NULL)
		{
			attno = match_range_clause(root, rinfo->clause, baserel->relid,
									   &value, &suffix);
			if (attno != InvalidAttrNumber && attno <= tupdesc->natts)
			{
				Form_pg_attribute att = TupleDescAttr(tupdesc, attno - 1);
				int32		typmod = att->atttypmod;

				/*
				 * Only a column that keeps Close's microseconds: one of fewer
				 * digits shows 12:32:51.376 as 12:32:51, which "<= 12:32:51"
				 * keeps but "__lte=12:32:51" would leave out (such a range
				 * stays local, and a search, which widens it, reads it).
				 */
				key = close_get_column_key(relid, attno, NameStr(att->attname));
				if (getBaseTypeAndTypmod(att->atttypid, &typmod) == TIMESTAMPTZOID &&
					(typmod < 0 || typmod >= MAX_TIMESTAMP_PRECISION) &&
					key_in_list(res->list_ranges, key))
					name = psprintf("%s%s", key, suffix);
			}
		}
		if (name == NULL)
			continue;
		/* one value a parameter: the first condition found */
		{
			ListCell   *lc2;
			bool		dup = false;

			foreach(lc2, *names)
				if (strcmp(strVal(lfirst(lc2)), name) == 0)
					dup = true;
			if (dup)
				continue;
		}
		*names = lappend(*names, makeString(name));
		*exprs = lappend(*exprs, value);
	}
	table_close(rel, NoLock);
}

/* ---- Advanced Filtering: conditions as search query nodes ---- */

typedef struct SearchContext
{
	PlannerInfo *root;
	Index		relid;			/* the rel's range table index */
	Oid			reloid;
	const CloseResource *res;	/* what the table reads */
	List	   *values;			/* value expressions, by index */
} SearchContext;

/*
 * The type Advanced Filtering gives a core key of the resource's records,
 * in the words of custom fields' types ("id" for ids, which only exact
 * conditions use), or NULL when a search cannot filter on it.
 */
static const char *
core_field_type(const CloseResource *res, const char *key)
{
	const CloseResourceKey *k = close_resource_key(res, key);

	return k ? k->search_type : NULL;
}

static bool
is_id_like_key(const CloseResource *res, const char *key)
{
	const char *type = core_field_type(res, key);

	return type != NULL && strcmp(type, "id") == 0;
}

/* The search API's reference to a record key, as JSON; NULL if none. */
static char *
search_field_json(const CloseResource *res, const char *key)
{
	StringInfoData buf;
	size_t		plen = strlen(CLOSE_CUSTOM_PREFIX);

	initStringInfo(&buf);
	if (strncmp(key, CLOSE_CUSTOM_PREFIX, plen) == 0 && key[plen] != '\0')
	{
		appendStringInfoString(&buf, "{\"type\": \"custom_field\", \"custom_field_id\": ");
		escape_json(&buf, key + plen);
	}
	else if (core_field_type(res, key) != NULL)
	{
		appendStringInfoString(&buf, "{\"type\": \"regular_field\", \"object_type\": ");
		escape_json(&buf, res->search_type);
		appendStringInfoString(&buf, ", \"field_name\": ");
		escape_json(&buf, key);
	}
	else
		return NULL;
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static bool
is_custom_key(const char *key)
{
	return strncmp(key, CLOSE_CUSTOM_PREFIX, strlen(CLOSE_CUSTOM_PREFIX)) == 0;
}

/*
 * Does a condition of this kind, on a field Close stores as this type, find
 * every record the column would show as matching?  Text exact_value only on
 * text-like and id fields, number_range only on numbers, moment_range only
 * on datetimes (and dates, for date columns, widened by a day); never on a
 * field of several values (the column shows the whole array), a hidden
 * field (any scalar), or a type not known here.
 */
static bool
condition_fits_field(int cond, const char *type, bool multi)
{
	if (multi)
		return false;
	switch (cond)
	{
		case CLOSE_SEARCH_TERM:
			return strcmp(type, "id") == 0;
		case CLOSE_SEARCH_TEXT:
			return strcmp(type, "text") == 0 || strcmp(type, "textarea") == 0 ||
				strcmp(type, "choices") == 0 || strcmp(type, "user") == 0 ||
				strcmp(type, "contact") == 0 ||
				strcmp(type, "custom_object") == 0;
		case CLOSE_SEARCH_NUMBER:
			return strcmp(type, "number") == 0;
		case CLOSE_SEARCH_MOMENT:
			return strcmp(type, "datetime") == 0;
		case CLOSE_SEARCH_DATE:
			return strcmp(type, "date") == 0 || strcmp(type, "datetime") == 0;
	}
	return false;
}

static List *
make_search_cond(SearchContext *cx, const char *field, const char *key,
				 int cond, int op, const char *half_unit, Expr *value,
				 bool negate)
{
	List	   *node;

	cx->values = lappend(cx->values, value);
	node = close_list_make5(makeInteger(CLOSE_SEARCH_COND),
							makeInteger(negate ? 1 : 0),
							makeString(pstrdup(field)), makeInteger(cond),
							makeInteger(op));
	node = lappend(node, makeInteger(list_length(cx->values) - 1));
	node = lappend(node, makeString(pstrdup(key)));
	return lappend(node, makeString(pstrdup(half_unit)));
}

/*
 * Column types whose values a number_range can bound: exact numbers.  A
 * float column rounds Close's decimal number to binary, which can move it
 * across a bound: not pushed.
 */
static bool
is_exact_number_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID ||
		typid == NUMERICOID;
}

/*
 * Half a unit of the last place a column of this type keeps, as numeric
 * text ("" when it keeps every digit Close sends): the column shows Close's
 * 12.50 as 13 in numeric(10,0) (and an int column as 13, or refuses it),
 * so "col >= 13" must ask Close for 12.5 and up.
 */
static char *
rounding_half_unit(Oid typid, int32 typmod)
{
	StringInfoData buf;
	int			scale;
	int			i;

	if (typid != NUMERICOID)
		return pstrdup("0.5");
	if (typmod < (int32) VARHDRSZ)
		return pstrdup("");
	/* numeric.c's NUMERIC_TYPMOD_SCALE: 11 bits, signed since PG 15 */
	scale = ((((typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024);

	/* 0.5 * 10^-scale, written out (numeric_in limits exponents) */
	initStringInfo(&buf);
	if (scale >= 0)
	{
		appendStringInfoString(&buf, "0.");
		for (i = 0; i < scale; i++)
			appendStringInfoChar(&buf, '0');
		appendStringInfoChar(&buf, '5');
	}
	else
	{
		appendStringInfoChar(&buf, '5');
		for (i = 0; i < -scale - 1; i++)
			appendStringInfoChar(&buf, '0');
	}
	return buf.data;
}

/* "<" for "<" with the column on the left, ">" when it is on the right... */
static int
range_op(const char *opname, bool commuted)
{
	if (strcmp(opname, "=") == 0)
		return CLOSE_SEARCH_OP_EQ;
	if (strcmp(opname, "<") == 0 || strcmp(opname, "<=") == 0)
		return commuted ? CLOSE_SEARCH_OP_GE : CLOSE_SEARCH_OP_LE;
	if (strcmp(opname, ">") == 0 || strcmp(opname, ">=") == 0)
		return commuted ? CLOSE_SEARCH_OP_LE : CLOSE_SEARCH_OP_GE;
	return 0;
}

/*
 * A condition "column op value" as a search node, or NULL.  *exact tells
 * whether the API applies it with SQL's meaning; otherwise the node finds
 * a superset (looser text matching, bounds widened past any precision
 * difference) and the condition stays a local filter too.
 */
static List *
translate_comparison(SearchContext *cx, Expr *clause, bool *exact)
{
	Var		   *var;
	Expr	   *value;
	Oid			opno;
	Oid			collation;
	bool		commuted = false;
	bool		is_array = false;
	char	   *key;
	char	   *field;
	Oid			coltype;
	int32		coltypmod = -1;
	Oid			colcollation;
	int			cond = 0;
	int			op = 0;
	char	   *half_unit = "";

	if (IsA(clause, OpExpr) && list_length(((OpExpr *) clause)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) clause;

		var = (Var *) strip_relabel(linitial(op->args));
		value = lsecond(op->args);
		if (!(IsA(var, Var) && var->varno == cx->relid))
		{
			var = (Var *) strip_relabel(lsecond(op->args));
			value = linitial(op->args);
			commuted = true;
		}
		opno = op->opno;
		collation = op->inputcollid;
	}
	else if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;

		if (!saop->useOr || list_length(saop->args) != 2)
			return NULL;
		var = (Var *) strip_relabel(linitial(saop->args));
		value = lsecond(saop->args);
		opno = saop->opno;
		collation = saop->inputcollid;
		is_array = true;
	}
	else
		return NULL;

	if (!IsA(var, Var) || var->varno != cx->relid || var->varlevelsup != 0 ||
		var->varattno <= 0 || !is_outside_value(cx->root, value, cx->relid))
		return NULL;

	key = close_get_column_key(cx->reloid, var->varattno,
							   get_attname(cx->reloid, var->varattno, false));
	field = search_field_json(cx->res, key);
	if (field == NULL)
		return NULL;
	get_atttypetypmodcoll(cx->reloid, var->varattno, &coltype, &coltypmod,
						  &colcollation);
	coltype = getBaseTypeAndTypmod(coltype, &coltypmod);

	/*
	 * ids: exact, and so also negatable; a "reference" condition where the
	 * resource says Close filters the key so (status ids)
	 */
	if (!is_custom_key(key) && is_id_like_key(cx->res, key))
	{
		const CloseResourceKey *k = close_resource_key(cx->res, key);
		int			idcond = k->reference_type ? CLOSE_SEARCH_REFERENCE
			: CLOSE_SEARCH_TERM;

		*exact = true;
		if (is_exact_text_equality(opno, collation))
			return make_search_cond(cx, field, key, idcond,
									is_array ? CLOSE_SEARCH_OP_ANY : CLOSE_SEARCH_OP_EQ,
									"", value, false);
		if (!is_array && opno == get_negator(TextEqualOperator) &&
			(!OidIsValid(collation) || get_collation_isdeterministic(collation)))
		{
			/*
			 * Close's negated condition also finds the records without the
			 * key (an opportunity without a contact), which SQL's "<>"
			 * leaves out: exact only on a key every record has.
			 */
			*exact = k->never_null;
			return make_search_cond(cx, field, key, idcond,
									CLOSE_SEARCH_OP_EQ, "", value, true);
		}
		return NULL;
	}

	/*
	 * The rest find a superset and are checked again locally.  The kind of
	 * condition follows the column's type; it must also suit the type Close
	 * stores the field as: known here for core fields, confirmed when the
	 * scan starts for custom ones (close_search_confirm).
	 */
	*exact = false;
	if ((coltype == TEXTOID || (coltype == VARCHAROID && coltypmod < 0)) &&
		is_exact_text_equality(opno, collation))
	{
		/*
		 * Close's exact_value may ignore case.  Not for varchar(n), which
		 * shows "Gold   " as "Gold" (it drops the spaces past n): Close
		 * would not match that value.
		 */
		cond = CLOSE_SEARCH_TEXT;
		op = is_array ? CLOSE_SEARCH_OP_ANY : CLOSE_SEARCH_OP_EQ;
	}
	else if (!is_array && opno < FirstGenbkiObjectId &&
			 (op = range_op(get_opname(opno), commuted)) != 0)
	{
		/*
		 * ranges, on the same kind of type on both sides, by a built-in
		 * operator (one of a user's, named "<" too, may mean anything)
		 */
		Oid			valtype = exprType((Node *) value);

		if ((coltype == TIMESTAMPTZOID || coltype == TIMESTAMPOID) &&
			valtype == coltype)
			cond = CLOSE_SEARCH_MOMENT;
		else if (coltype == DATEOID && valtype == DATEOID)
			cond = CLOSE_SEARCH_DATE;
		else if (is_exact_number_type(coltype) && is_exact_number_type(valtype))
		{
			cond = CLOSE_SEARCH_NUMBER;
			half_unit = rounding_half_unit(coltype, coltypmod);
		}
	}
	if (cond == 0 ||
		(!is_custom_key(key) &&
		 !condition_fits_field(cond, core_field_type(cx->res, key), false)))
		return NULL;
	return make_search_cond(cx, field, key, cond, op, half_unit, value, false);
}

/* A constant with no NULL in it (nor in its elements, for an array). */
static bool
is_non_null_const(Expr *expr)
{
	Const	   *c = (Const *) strip_relabel(expr);

	if (!IsA(c, Const) || c->constisnull)
		return false;
	if (type_is_array(c->consttype))
		return !array_contains_nulls(DatumGetArrayTypeP(c->constvalue));
	return true;
}

/*
 * Does every condition of the node name a key each record has?  Close's
 * negation of a node finds the records without such a key too.
 */
static bool
node_keys_never_null(const CloseResource *res, List *node)
{
	ListCell   *lc;

	if (intVal(linitial(node)) == CLOSE_SEARCH_COND)
	{
		const char *key = strVal(list_nth(node, 6));
		const CloseResourceKey *k;

		if (is_custom_key(key))
			return false;
		k = close_resource_key(res, key);
		return k != NULL && k->never_null;
	}
	for_each_from(lc, node, 2)
		if (!node_keys_never_null(res, (List *) lfirst(lc)))
			return false;
	return true;
}

/* An expression as a search node (AND, OR, NOT of comparisons), or NULL. */
static List *
translate_search(SearchContext *cx, Expr *expr, bool *exact)
{
	if (IsA(expr, BoolExpr))
	{
		BoolExpr   *b = (BoolExpr *) expr;
		List	   *node;
		ListCell   *lc;
		bool		all_exact = true;

		if (b->boolop == NOT_EXPR)
		{
			int			first = list_length(cx->values);
			List	   *child = translate_search(cx, linitial(b->args), exact);
			int			i;

			/*
			 * The negation of a superset is a subset: only exact conditions.
			 * And SQL's NOT of a NULL comparison is not true, which a
			 * negated search node cannot say: only non-null constants.
			 */
			if (child == NULL || !*exact)
				return NULL;
			for (i = first; i < list_length(cx->values); i++)
				if (!is_non_null_const(list_nth(cx->values, i)))
					return NULL;
			/* nor of a key a record may lack (SQL's NOT of NULL = x) */
			if (!node_keys_never_null(cx->res, child))
				return NULL;
			return list_make3(makeInteger(CLOSE_SEARCH_AND), makeInteger(1), child);
		}

		node = list_make2(makeInteger(b->boolop == AND_EXPR ? CLOSE_SEARCH_AND
									  : CLOSE_SEARCH_OR),
						  makeInteger(0));
		foreach(lc, b->args)
		{
			bool		child_exact;
			List	   *child = translate_search(cx, lfirst(lc), &child_exact);

			if (child == NULL)
			{
				/* an OR needs all its branches; an AND can drop some */
				if (b->boolop == OR_EXPR)
					return NULL;
				all_exact = false;
				continue;
			}
			all_exact = all_exact && child_exact;
			node = lappend(node, child);
		}
		if (list_length(node) == 2)
			return NULL;
		*exact = all_exact;
		return node;
	}
	return translate_comparison(cx, expr, exact);
}

/*
 * The conditions a search can evaluate, as query nodes to AND together,
 * their value expressions, and the clauses the API applies exactly (which
 * need no local recheck).
 */
void
close_search_conditions(PlannerInfo *root, RelOptInfo *baserel, List *rinfos,
						CloseSearchPushdown *out)
{
	SearchContext cx;
	ListCell   *lc;

	cx.root = root;
	cx.relid = baserel->relid;
	cx.reloid = planner_rt_fetch(baserel->relid, root)->relid;
	cx.res = close_get_table_resource(cx.reloid);
	cx.values = NIL;
	out->nodes = NIL;
	out->exact_rinfos = NIL;
	out->pushed_rinfos = NIL;
	out->values = NIL;
	if (cx.res->search_type == NULL)
		return;					/* not searched: nothing to push */

	foreach(lc, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		bool		exact = false;
		List	   *node;

		if (rinfo->pseudoconstant)
			continue;
		node = translate_search(&cx, rinfo->clause, &exact);
		if (node == NULL)
			continue;
		out->nodes = lappend(out->nodes, node);
		out->pushed_rinfos = lappend(out->pushed_rinfos, rinfo);
		if (exact)
			out->exact_rinfos = lappend(out->exact_rinfos, rinfo);
	}
	out->values = cx.values;
}

/* ---- at scan start: the conditions the fields' Close types accept ---- */

typedef struct ConfirmContext
{
	UserMapping *user;
	const CloseResource *res;
	CloseFieldTypes *types;		/* fetched at the first custom field */
	List	   *schema;			/* the same, for a resource's field schema */
	bool		schema_fetched;
	int64	   *requests;
} ConfirmContext;

/* Does the type Close stores the condition's field as accept it? */
static bool
condition_confirmed(ConfirmContext *cx, List *node)
{
	int			cond = intVal(list_nth(node, 3));
	const char *key = strVal(list_nth(node, 6));
	const char *type;
	bool		multi;

	if (!is_custom_key(key))
		return true;			/* a core field: checked when planned */
	if (cx->res->field_schema)
	{
		/* leads, contacts, opportunities: their schema, read once */
		ListCell   *lc;

		if (!cx->schema_fetched)
		{
			cx->schema = close_field_schema_get(cx->user, cx->res,
													cx->requests);
			cx->schema_fetched = true;
		}
		foreach(lc, cx->schema)
		{
			CloseFieldInfo *field = (CloseFieldInfo *) lfirst(lc);

			if (strcmp(field->id, key + strlen(CLOSE_CUSTOM_PREFIX)) == 0)
				return condition_fits_field(cond, field->type, field->multi);
		}
		return false;			/* no such field: leave it to the filter */
	}
	if (cx->types == NULL)
		cx->types = close_field_types_get(cx->user, 0, cx->requests);
	if (!close_field_type_lookup(cx->types, key + strlen(CLOSE_CUSTOM_PREFIX),
								 &type, &multi))
		return false;			/* no such field: leave it to the filter */
	return condition_fits_field(cond, type, multi);
}

/* Is every condition of the node accepted? */
static bool
node_confirmed(ConfirmContext *cx, List *node)
{
	ListCell   *lc;

	if (intVal(linitial(node)) == CLOSE_SEARCH_COND)
		return condition_confirmed(cx, node);
	for_each_from(lc, node, 2)
		if (!node_confirmed(cx, (List *) lfirst(lc)))
			return false;
	return true;
}

/*
 * The node with the conditions Close would not apply with SQL's meaning
 * taken out, where taking out widens: NULL when nothing is left to send
 * (the node matches all), the node itself when all is accepted.  An AND
 * drops its refused parts; an OR with a refused part, or a negated node
 * with one (the negation of a wider node is narrower), goes whole.
 */
static List *
confirm_node(ConfirmContext *cx, List *node)
{
	int			kind = intVal(linitial(node));
	List	   *result;
	ListCell   *lc;
	bool		changed = false;

	if (kind == CLOSE_SEARCH_COND || intVal(lsecond(node)) != 0)
		return node_confirmed(cx, node) ? node : NULL;

	result = list_make2(linitial(node), lsecond(node));
	for_each_from(lc, node, 2)
	{
		List	   *child = (List *) lfirst(lc);
		List	   *kept = confirm_node(cx, child);

		if (kept == NULL && kind == CLOSE_SEARCH_OR)
			return NULL;
		if (kept != child)
			changed = true;
		if (kept != NULL)
			result = lappend(result, kept);
	}
	if (!changed)
		return node;
	return list_length(result) > 2 ? result : NULL;
}

/*
 * The plan's search nodes as they may be sent, once the types Close stores
 * the custom fields as are known (fetched here, through the cache, only if
 * a node has a custom field; *requests counts a fetch): a condition the
 * field's type does not give SQL's meaning is left out, and so is whatever
 * leaving it out would narrow, so the search still finds a superset (the
 * conditions are all checked again locally).  *not_pushed counts the
 * plan's nodes left out or cut.
 */
List *
close_search_confirm(List *nodes, const CloseResource *res, UserMapping *user,
					 int64 *requests, int *not_pushed)
{
	ConfirmContext cx;
	List	   *result = NIL;
	ListCell   *lc;

	cx.user = user;
	cx.res = res;
	cx.schema = NIL;
	cx.schema_fetched = false;
	cx.types = NULL;
	cx.requests = requests;
	*not_pushed = 0;
	foreach(lc, nodes)
	{
		List	   *node = (List *) lfirst(lc);
		List	   *kept = confirm_node(&cx, node);

		if (kept != node)
			(*not_pushed)++;
		if (kept != NULL)
			result = lappend(result, kept);
	}
	return result;
}

/*
 * The values of a search's conditions as a plan knows them, for EXPLAIN:
 * constants as they are, other values (parameters, outer columns)
 * described.
 */
void
close_search_plan_values(PlannerInfo *root, List *values,
						 CloseSearchValues *vals)
{
	ListCell   *lc;
	int			i = 0;

	close_search_values_alloc(list_length(values), true, vals);
	foreach(lc, values)
	{
		Const	   *c = (Const *) lfirst(lc);

		if (IsA(c, Const))
		{
			vals->known[i] = true;
			vals->values[i] = c->constvalue;
			vals->nulls[i] = c->constisnull;
			vals->types[i] = c->consttype;
		}
		else
			vals->descriptions[i] = close_describe_value(root, (Expr *) c);
		i++;
	}
}
