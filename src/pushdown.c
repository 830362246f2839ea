/*-------------------------------------------------------------------------
 *
 * pushdown.c
 *		  Which conditions of a scan become request parameters.  The API
 *		  filters custom objects by exact lead_id and id (and by
 *		  custom_object_type_id within a lead), so only text equality on
 *		  those columns, with a deterministic collation, is ever pushed;
 *		  everything else stays a local filter.  Also finds the join clauses
 *		  that make parameterized scans (one listing per outer lead), and
 *		  describes pushed values for EXPLAIN.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
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
	int			i;

	keys->id_attno = InvalidAttrNumber;
	keys->lead_attno = InvalidAttrNumber;
	keys->type_attno = InvalidAttrNumber;
	keys->date_created_attno = InvalidAttrNumber;
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		char	   *key;

		if (att->attisdropped)
			continue;
		key = close_get_column_key(relid, att->attnum, NameStr(att->attname));
		if (strcmp(key, CLOSE_KEY_ID) == 0 && keys->id_attno == InvalidAttrNumber)
			keys->id_attno = att->attnum;
		else if (strcmp(key, CLOSE_KEY_LEAD_ID) == 0 &&
				 keys->lead_attno == InvalidAttrNumber)
			keys->lead_attno = att->attnum;
		else if (strcmp(key, CLOSE_KEY_TYPE_ID) == 0 &&
				 keys->type_attno == InvalidAttrNumber)
			keys->type_attno = att->attnum;
		else if (strcmp(key, "date_created") == 0 &&
				 keys->date_created_attno == InvalidAttrNumber &&
				 (getBaseType(att->atttypid) == TIMESTAMPTZOID ||
				  getBaseType(att->atttypid) == TIMESTAMPOID))
			keys->date_created_attno = att->attnum;
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
	out->kind = CLOSE_ACCESS_SEARCH;	/* unless a lead or id condition */

	foreach(lc, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		Expr	   *value;
		bool		is_array;
		int			rank = 0;
		CloseAccessKind kind = CLOSE_ACCESS_SEARCH;

		if (rinfo->pseudoconstant)
			continue;
		if (match_key_clause(root, rinfo->clause, baserel->relid,
							 keys->id_attno, &value, &is_array))
		{
			kind = CLOSE_ACCESS_BY_ID;
			rank = is_array ? 3 : 4;
		}
		else if (match_key_clause(root, rinfo->clause, baserel->relid,
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

	if (!match_key_clause(root, rinfo->clause, baserel->relid,
						  keys->lead_attno, &value, &is_array) &&
		!match_key_clause(root, rinfo->clause, baserel->relid,
						  keys->id_attno, &value, &is_array))
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

	attnos[0] = keys->lead_attno;
	attnos[1] = keys->id_attno;
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

/* ---- Advanced Filtering: conditions as search query nodes ---- */

typedef struct SearchContext
{
	PlannerInfo *root;
	Index		relid;			/* the rel's range table index */
	Oid			reloid;
	List	   *values;			/* value expressions, by index */
} SearchContext;

static bool
is_id_like_key(const char *key)
{
	return strcmp(key, CLOSE_KEY_ID) == 0 ||
		strcmp(key, CLOSE_KEY_LEAD_ID) == 0 ||
		strcmp(key, CLOSE_KEY_TYPE_ID) == 0;
}

/* The search API's reference to a record key, as JSON; NULL if none. */
static char *
search_field_json(const char *key)
{
	StringInfoData buf;
	size_t		plen = strlen(CLOSE_CUSTOM_PREFIX);

	initStringInfo(&buf);
	if (strncmp(key, CLOSE_CUSTOM_PREFIX, plen) == 0 && key[plen] != '\0')
	{
		appendStringInfoString(&buf, "{\"type\": \"custom_field\", \"custom_field_id\": ");
		escape_json(&buf, key + plen);
	}
	else if (is_id_like_key(key) || strcmp(key, "name") == 0 ||
			 strcmp(key, "date_created") == 0 || strcmp(key, "date_updated") == 0)
	{
		appendStringInfoString(&buf, "{\"type\": \"regular_field\", \"object_type\": \"custom_object\", \"field_name\": ");
		escape_json(&buf, key);
	}
	else
		return NULL;
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

static List *
make_search_cond(SearchContext *cx, const char *field, int cond, int op,
				 Expr *value, bool negate)
{
	cx->values = lappend(cx->values, value);
	return lappend(close_list_make5(makeInteger(CLOSE_SEARCH_COND),
									makeInteger(negate ? 1 : 0),
									makeString(pstrdup(field)), makeInteger(cond),
									makeInteger(op)),
				   makeInteger(list_length(cx->values) - 1));
}

static bool
is_numeric_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID ||
		typid == NUMERICOID || typid == FLOAT4OID || typid == FLOAT8OID;
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
	field = search_field_json(key);
	coltype = getBaseType(get_atttype(cx->reloid, var->varattno));
	if (field == NULL)
		return NULL;

	/* ids: exact, and so also negatable */
	if (is_id_like_key(key))
	{
		*exact = true;
		if (is_exact_text_equality(opno, collation))
			return make_search_cond(cx, field, CLOSE_SEARCH_TERM,
									is_array ? CLOSE_SEARCH_OP_ANY : CLOSE_SEARCH_OP_EQ,
									value, false);
		if (!is_array && opno == get_negator(TextEqualOperator) &&
			(!OidIsValid(collation) || get_collation_isdeterministic(collation)))
			return make_search_cond(cx, field, CLOSE_SEARCH_TERM,
									CLOSE_SEARCH_OP_EQ, value, true);
		return NULL;
	}

	*exact = false;
	/* text: Close's exact_value may ignore case; recheck locally */
	if ((coltype == TEXTOID || coltype == VARCHAROID) &&
		is_exact_text_equality(opno, collation))
		return make_search_cond(cx, field, CLOSE_SEARCH_TEXT,
								is_array ? CLOSE_SEARCH_OP_ANY : CLOSE_SEARCH_OP_EQ,
								value, false);
	if (is_array)
		return NULL;

	/* ranges, on the same type on both sides */
	{
		int			op = range_op(get_opname(opno), commuted);
		Oid			valtype = exprType((Node *) value);

		if (op == 0)
			return NULL;
		if ((coltype == TIMESTAMPTZOID || coltype == TIMESTAMPOID) &&
			valtype == coltype)
			return make_search_cond(cx, field, CLOSE_SEARCH_MOMENT, op, value, false);
		if (coltype == DATEOID && valtype == DATEOID &&
			strncmp(key, CLOSE_CUSTOM_PREFIX, strlen(CLOSE_CUSTOM_PREFIX)) == 0)
			return make_search_cond(cx, field, CLOSE_SEARCH_DATE, op, value, false);
		if (is_numeric_type(coltype) && is_numeric_type(valtype) &&
			strncmp(key, CLOSE_CUSTOM_PREFIX, strlen(CLOSE_CUSTOM_PREFIX)) == 0)
			return make_search_cond(cx, field, CLOSE_SEARCH_NUMBER, op, value, false);
	}
	return NULL;
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
	cx.values = NIL;
	out->nodes = NIL;
	out->exact_rinfos = NIL;

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
		if (exact)
			out->exact_rinfos = lappend(out->exact_rinfos, rinfo);
	}
	out->values = cx.values;
}
