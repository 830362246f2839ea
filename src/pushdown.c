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
	out->kind = CLOSE_ACCESS_NONE;

	foreach(lc, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		Expr	   *value;
		bool		is_array;
		int			rank = 0;
		CloseAccessKind kind = CLOSE_ACCESS_NONE;

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
