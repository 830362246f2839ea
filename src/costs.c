/*-------------------------------------------------------------------------
 *
 * costs.c
 *		  The cost model: what a scan costs, counted in requests to Close.
 *
 * Close's rate limit, and each request's latency, are the scarce resources:
 * a request costs CLOSE_REQUEST_COST (a round trip, in the planner's units
 * where a page read is 1), a row only what converting it costs.  So
 *   - GET by id: one request per id;
 *   - a lead listing: ceil(objects per lead / page_size) requests per lead;
 *   - a resource's whole listing: ceil(its records / page_size) requests
 *     (pages overlap by one record), its records from ANALYZE or guessed
 *     by the resource's size (close_fdw.c);
 *   - a search: ceil(objects it finds / 200) pages, plus the probe for the
 *     newest object when the search is large enough to be cut in parts.
 * The objects a search finds are the table's count (from ANALYZE, else a
 * guess at an organisation) narrowed by the conditions sent with it; the
 * objects per lead are learned by ANALYZE too (the count over the distinct
 * lead_id values of its sample), else guessed.
 *
 * A join whose outer side gives lead_id values runs a listing per outer
 * row: the planner weighs that against one search by the outer side's row
 * estimate.  For a local table that was never analyzed (every temp table:
 * autovacuum never analyzes them) that estimate is PostgreSQL's 10-page
 * guess, hundreds or thousands of rows, which makes a search over the whole
 * organisation look cheaper than a handful of listings.  Such an outer
 * table is taken as small instead: CLOSE_UNANALYZED_ROWS_PER_PAGE rows for
 * each page it really has.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_statistic.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "close_fdw.h"

/*
 * A request, in the planner's units.  The numbers keep a search of the
 * default guess (about 50,000) under jit_above_cost (100,000): compiling
 * costs time and memory and gains nothing on a scan that waits on the
 * network.
 */
#define CLOSE_REQUEST_COST		100.0
#define CLOSE_ROW_COST			(cpu_tuple_cost * 2)
#define CLOSE_ROWS_PER_LEAD		25.0	/* until ANALYZE tells */
#define CLOSE_SEARCH_ROWS		100000.0	/* a guess at an organisation */
#define CLOSE_UNANALYZED_ROWS_PER_PAGE 10.0

/*
 * What ANALYZE left for the table: its object count, and objects per lead
 * from the distinct lead_id values (-1 for either when not known).
 */
void
close_rel_stats(RelOptInfo *baserel, Oid relid, AttrNumber lead_attno,
				CloseRelStats *stats)
{
	HeapTuple	tuple;

	stats->tuples = -1;
	stats->rows_per_lead = -1;

	/* ANALYZE sets relpages to at least 1 (analyze.c) */
	if (baserel->pages == 0 || baserel->tuples < 0)
		return;
	stats->tuples = baserel->tuples;
	if (lead_attno == InvalidAttrNumber || baserel->tuples < 1)
		return;

	tuple = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid),
							Int16GetDatum(lead_attno), BoolGetDatum(false));
	if (HeapTupleIsValid(tuple))
	{
		float4		stadistinct = ((Form_pg_statistic) GETSTRUCT(tuple))->stadistinct;
		double		ndistinct = 0;

		if (stadistinct > 0)
			ndistinct = stadistinct;
		else if (stadistinct < 0)
			ndistinct = -stadistinct * baserel->tuples;
		if (ndistinct >= 1)
			stats->rows_per_lead = Max(1.0, baserel->tuples / ndistinct);
		ReleaseSysCache(tuple);
	}
}

/* Requests of a search that finds this many objects. */
double
close_search_request_count(double objects)
{
	double		pages = Max(1.0, ceil(objects / CLOSE_SEARCH_PAGE));

	/* past two pages, one more request finds the newest, to cut the rest */
	return pages > 2 ? pages + 1 : pages;
}

/*
 * Rows and costs of a scan reached as pd says, with these clauses (the
 * pushed and the local ones).
 */
void
close_estimate_scan(PlannerInfo *root, RelOptInfo *baserel,
					const ClosePushdown *pd, List *clauses, int page_size,
					const CloseRelStats *stats, double *rows,
					Cost *startup_cost, Cost *total_cost)
{
	List	   *local = NIL;
	ListCell   *lc;
	double		fetched;
	double		requests;
	double		per_lead = stats->rows_per_lead > 0
		? stats->rows_per_lead : CLOSE_ROWS_PER_LEAD;
	Selectivity sel;
	QualCost	qcost;

	switch (pd->kind)
	{
		case CLOSE_ACCESS_BY_ID:
			fetched = pd->key_count;
			requests = pd->key_count;
			foreach(lc, clauses)
				if (lfirst(lc) != pd->key_rinfo && lfirst(lc) != pd->type_rinfo)
					local = lappend(local, lfirst(lc));
			break;
		case CLOSE_ACCESS_BY_LEAD:
			fetched = pd->key_count * per_lead;
			requests = pd->key_count *
				Max(1.0, ceil(per_lead / Max(page_size, 1)));
			foreach(lc, clauses)
				if (lfirst(lc) != pd->key_rinfo && lfirst(lc) != pd->type_rinfo)
					local = lappend(local, lfirst(lc));
			break;
		case CLOSE_ACCESS_LIST:
			/* the whole listing (its filters are not counted on) */
			fetched = pd->key_count;
			requests = Max(1.0, ceil(fetched / Max(page_size - 1, 1)));
			local = clauses;
			break;
		default:
			{
				CloseSearchPushdown sp;

				/* the conditions sent narrow what is fetched */
				close_search_conditions(root, baserel, clauses, &sp);
				sel = clauselist_selectivity(root, sp.pushed_rinfos,
											 baserel->relid, JOIN_INNER, NULL);
				fetched = clamp_row_est((stats->tuples >= 0
										 ? stats->tuples : CLOSE_SEARCH_ROWS) * sel);
				requests = close_search_request_count(fetched);
				foreach(lc, clauses)
					if (!list_member_ptr(sp.exact_rinfos, lfirst(lc)))
						local = lappend(local, lfirst(lc));
				break;
			}
	}

	/* the local filters pass a part of what is fetched */
	sel = clauselist_selectivity(root, local, baserel->relid, JOIN_INNER, NULL);
	cost_qual_eval(&qcost, local, root);
	*rows = clamp_row_est(fetched * sel);
	*startup_cost = CLOSE_REQUEST_COST + qcost.startup;
	*total_cost = requests * CLOSE_REQUEST_COST + qcost.startup +
		fetched * (CLOSE_ROW_COST + qcost.per_tuple);
}

/*
 * The costs of a search that stops after limit rows (a sorted search with
 * results_limit): the pages those rows take.
 */
void
close_estimate_limited_search(double rows, double limit, Cost *startup_cost,
							  Cost *total_cost)
{
	double		fetched = Min(rows, limit);

	*startup_cost = CLOSE_REQUEST_COST;
	*total_cost = Max(1.0, ceil(fetched / CLOSE_SEARCH_PAGE)) * CLOSE_REQUEST_COST +
		fetched * CLOSE_ROW_COST;
}

/*
 * A count answered by one search request.  It is always the cheapest way to
 * a count with exact conditions: never more than one request, where even a
 * lead's listing is one request per page and a lead's size is only a guess
 * before ANALYZE (a count must cost at most what its answer needs).
 */
Cost
close_count_cost(void)
{
	return CLOSE_REQUEST_COST * 0.5;
}

/*
 * The factor by which to scale the per-row cost of a scan parameterized by
 * required_outer, so that the planner, multiplying it by the outer side's
 * row estimate, counts the rows of a never-analyzed local table as few
 * (CLOSE_UNANALYZED_ROWS_PER_PAGE per page it has) rather than its 10-page
 * guess.  1 for any other outer side.
 */
double
close_outer_scale(PlannerInfo *root, Relids required_outer)
{
	int			relid;
	RelOptInfo *outer;
	RangeTblEntry *rte;
	Relation	rel;
	double		assumed = -1;

	if (bms_membership(required_outer) != BMS_SINGLETON)
		return 1.0;
	relid = bms_singleton_member(required_outer);
	outer = find_base_rel(root, relid);
	rte = planner_rt_fetch(relid, root);
	if (outer->reloptkind != RELOPT_BASEREL || rte->rtekind != RTE_RELATION ||
		rte->relkind != RELKIND_RELATION || rte->inh)
		return 1.0;

	/* the planner holds a lock on it already */
	rel = table_open(rte->relid, NoLock);
	if (close_rel_never_analyzed(rel))
		assumed = Max(1.0, (double) RelationGetNumberOfBlocks(rel)) *
			CLOSE_UNANALYZED_ROWS_PER_PAGE;
	table_close(rel, NoLock);

	if (assumed < 0 || outer->tuples <= assumed)
		return 1.0;
	return assumed / outer->tuples;
}
