/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  Every PostgreSQL and libcurl version difference close_fdw knows of,
 *		  as static inline wrappers, so that the rest of the code is written
 *		  once against one API.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CLOSE_FDW_COMPAT_H
#define CLOSE_FDW_COMPAT_H

#include "postgres.h"

#include <curl/curl.h>

#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "optimizer/inherit.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "access/stratnum.h"
#include "common/base64.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#include "parser/parsetree.h"
#include "utils/hsearch.h"

/*
 * hash_create's HASH_STRINGS came in 14, when naming the key kind became
 * required; before, string keys were the default and the flag is none.
 */
#ifndef HASH_STRINGS
#define HASH_STRINGS 0
#endif

/*
 * The role whose user mapping a foreign scan uses: the view owner for a
 * scan inside a view, else the current user.  PostgreSQL 16 moved the
 * checkAsUser from the range table entry to the plan node.
 */
static inline Oid
close_scan_user(ForeignScanState *node)
{
#if PG_VERSION_NUM >= 160000
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;

	return OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
	EState	   *estate = node->ss.ps.state;
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	int			rtindex;
	RangeTblEntry *rte;

	rtindex = fsplan->scan.scanrelid;
	if (rtindex == 0)
		rtindex = bms_next_member(fsplan->fs_relids, -1);
	rte = exec_rt_fetch(rtindex, estate);
	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/*
 * create_foreignscan_path gained a disabled_nodes count in 18 and
 * fdw_restrictinfo in 17.
 */
static inline ForeignPath *
close_create_foreignscan_path(PlannerInfo *root, RelOptInfo *rel,
							  double rows, Cost startup_cost, Cost total_cost,
							  List *pathkeys, Relids required_outer,
							  List *fdw_private)
{
#if PG_VERSION_NUM >= 180000
	return create_foreignscan_path(root, rel, NULL, rows, 0,
								   startup_cost, total_cost, pathkeys,
								   required_outer, NULL, NIL, fdw_private);
#elif PG_VERSION_NUM >= 170000
	return create_foreignscan_path(root, rel, NULL, rows,
								   startup_cost, total_cost, pathkeys,
								   required_outer, NULL, NIL, fdw_private);
#else
	return create_foreignscan_path(root, rel, NULL, rows,
								   startup_cost, total_cost, pathkeys,
								   required_outer, NULL, fdw_private);
#endif
}

/* PathKey's strategy became a compare type in 18. */
static inline bool
close_pathkey_is_ascending(PathKey *pathkey)
{
#if PG_VERSION_NUM >= 180000
	return pathkey->pk_cmptype == COMPARE_LT;
#else
	return pathkey->pk_strategy == BTLessStrategyNumber;
#endif
}

/*
 * The role whose user mapping a modification uses; a row routed to a
 * foreign partition has no range table index of its own.
 */
static inline Oid
close_modify_user(ResultRelInfo *rinfo, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecGetResultRelCheckAsUser(rinfo, estate);
#else
	Index		rtindex = rinfo->ri_RangeTableIndex;
	RangeTblEntry *rte;

	if (rtindex == 0 && rinfo->ri_RootResultRelInfo)
		rtindex = rinfo->ri_RootResultRelInfo->ri_RangeTableIndex;
	if (rtindex == 0)
		return GetUserId();
	rte = exec_rt_fetch(rtindex, estate);
	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/* The columns an UPDATE assigns, generated ones included. */
static inline Bitmapset *
close_updated_columns(PlannerInfo *root, RelOptInfo *baserel,
					  RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 150000
	return get_rel_all_updated_cols(root, baserel);
#else
	return bms_union(rte->updatedCols, rte->extraUpdatedCols);
#endif
}

/* Batch insert came in 14; before, rows are inserted one by one. */
static inline void
close_set_batch_insert(FdwRoutine *routine,
					   int (*batch_size) (ResultRelInfo *rinfo),
					   TupleTableSlot **(*batch_insert) (EState *estate,
														 ResultRelInfo *rinfo,
														 TupleTableSlot **slots,
														 TupleTableSlot **planSlots,
														 int *numSlots))
{
#if PG_VERSION_NUM >= 140000
	routine->GetForeignModifyBatchSize = batch_size;
	routine->ExecForeignBatchInsert = batch_insert;
#endif
}

/* The batch size the executor settled on (always 1 before 14). */
static inline int
close_batch_size_of(ResultRelInfo *rinfo)
{
#if PG_VERSION_NUM >= 140000
	return rinfo->ri_BatchSize;
#else
	return 1;
#endif
}

/* A random fraction in [0, 1), for jitter. */
static inline double
close_random_fraction(void)
{
#if PG_VERSION_NUM >= 150000
	return pg_prng_double(&pg_global_prng_state);
#else
	return (double) random() / ((double) MAX_RANDOM_VALUE + 1);
#endif
}

/* pull_varnos took the PlannerInfo from 14 on. */
static inline Relids
close_pull_varnos(PlannerInfo *root, Node *node)
{
#if PG_VERSION_NUM >= 140000
	return pull_varnos(root, node);
#else
	return pull_varnos(node);
#endif
}

/* libcurl 7.85 replaced the protocol bitmasks by strings. */
static inline void
close_curl_limit_protocols(CURL *curl)
{
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
}

/*
 * pg_b64_encode takes its input as uint8 from 18 on; a void pointer
 * converts to either.
 */
static inline int
close_base64_encode(const char *src, int len, char *dst, int dstlen)
{
	return pg_b64_encode((const void *) src, len, dst, dstlen);
}

/*
 * Reuse a kept-alive connection only if it was used in the last seconds
 * (CURLOPT_MAXAGE_CONN, libcurl 7.65; every release here has it).
 */
static inline void
close_curl_limit_connection_age(CURL *curl, long seconds)
{
#if LIBCURL_VERSION_NUM >= 0x074100
	curl_easy_setopt(curl, CURLOPT_MAXAGE_CONN, seconds);
#else
	/* older: never reuse one */
	curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
#endif
}

#endif							/* CLOSE_FDW_COMPAT_H */
