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

#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "optimizer/appendinfo.h"
#include "optimizer/inherit.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "access/stratnum.h"
#include "common/base64.h"
#include "nodes/makefuncs.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#if PG_VERSION_NUM >= 170000
#include "storage/dsm_registry.h"
#endif
#include "catalog/pg_foreign_server.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "foreign/foreign.h"
#include "utils/hsearch.h"
#include "utils/rel.h"
#include "access/table.h"
#include "access/relation.h"

/*
 * hash_create's HASH_STRINGS came in 14, when naming the key kind became
 * required; before, string keys were the default and the flag is none.
 */
#ifndef HASH_STRINGS
#define HASH_STRINGS 0
#endif

/* Wait events got a header of their own in 14; before, pgstat.h had them. */
#if PG_VERSION_NUM >= 140000
#include "utils/wait_event.h"
#else
#include "pgstat.h"
#endif

/* 18 split ExplainState and the ExplainProperty functions off explain.h. */
#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif

/*
 * ExecutorRun lost its execute_once argument in 18: the parameters of an
 * ExecutorRun hook, and the same names passed on.
 */
#if PG_VERSION_NUM >= 180000
#define CLOSE_EXECUTOR_RUN_ARGS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define CLOSE_EXECUTOR_RUN_PASS queryDesc, direction, count
#else
#define CLOSE_EXECUTOR_RUN_ARGS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count, \
	bool execute_once
#define CLOSE_EXECUTOR_RUN_PASS queryDesc, direction, count, execute_once
#endif

/*
 * A named wait event for time spent waiting on Close (17 lets an extension
 * name its own, shown in pg_stat_activity.wait_event); before 17, the
 * generic "Extension".
 */
static inline uint32
close_wait_event(const char *name, uint32 *cached)
{
#if PG_VERSION_NUM >= 170000
	if (*cached == 0)
		*cached = WaitEventExtensionNew(name);
	return *cached;
#else
	return PG_WAIT_EXTENSION;
#endif
}

/*
 * 18 replaced pg_attribute_noreturn(), written after a declarator, by
 * pg_noreturn, written before the declaration.  Before 18 the attribute
 * goes first too (GCC and Clang take it there); a macro, since it is not a
 * function.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * The module's magic block; 18 can also tell its name and version to
 * pg_get_loaded_modules().  A macro: it defines a function.
 */
#ifdef PG_MODULE_MAGIC_EXT
#define CLOSE_MODULE_MAGIC \
	PG_MODULE_MAGIC_EXT(.name = "close_fdw", .version = "0.1")
#else
#define CLOSE_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/* A RestrictInfo of a clause of one relation (14 added the root). */
#if PG_VERSION_NUM >= 140000
#define close_make_restrictinfo(root, clause) \
	make_simple_restrictinfo((root), (clause))
#else
#define close_make_restrictinfo(root, clause) \
	make_simple_restrictinfo(clause)
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

/*
 * AddForeignUpdateTargets: the planner calls it from 14 on, the rewriter
 * before.  Either form calls modify.c's close_add_update_targets, with the
 * PlannerInfo from 14 on and NULL before.
 */
extern void close_add_update_targets(PlannerInfo *root, Query *parse,
									 Index rtindex, RangeTblEntry *target_rte,
									 Relation target_relation);

#if PG_VERSION_NUM >= 140000
static inline void
closeAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
							 RangeTblEntry *target_rte,
							 Relation target_relation)
{
	close_add_update_targets(root, root->parse, rtindex, target_rte,
							 target_relation);
}
#else
static inline void
closeAddForeignUpdateTargets(Query *parsetree, RangeTblEntry *target_rte,
							 Relation target_relation)
{
	close_add_update_targets(NULL, parsetree, parsetree->resultRelation,
							 target_rte, target_relation);
}
#endif

/*
 * Ask for a junk column that carries the row an UPDATE or DELETE changes,
 * found again by name in the subplan's target list.  From 14 the planner
 * keeps them as row identity variables; before, they are resjunk entries
 * of the query's target list, as the rewriter makes them.
 */
static inline void
close_add_row_identity(PlannerInfo *root, Query *parse, Var *var,
					   Index rtindex, const char *name)
{
#if PG_VERSION_NUM >= 140000
	add_row_identity_var(root, var, rtindex, name);
#else
	parse->targetList = lappend(parse->targetList,
								makeTargetEntry((Expr *) var,
												list_length(parse->targetList) + 1,
												pstrdup(name), true));
#endif
}

/*
 * The whole row as a row identity, as core makes it: from 14 a Var of type
 * record, the same for every partition (so that they share it); before, the
 * table's row type, as the rewriter makes it.
 */
static inline Var *
close_whole_row_var(RangeTblEntry *target_rte, Index rtindex)
{
#if PG_VERSION_NUM >= 140000
	return makeVar(rtindex, InvalidAttrNumber, RECORDOID, -1, InvalidOid, 0);
#else
	return makeWholeRowVar(target_rte, rtindex, 0, false);
#endif
}

/*
 * The plan a ModifyTable takes its rows from: its one subplan from 14 on,
 * one subplan per result relation before.
 */
static inline Plan *
close_modify_table_subplan(ModifyTable *plan, int subplan_index)
{
#if PG_VERSION_NUM >= 140000
	return outerPlan(plan);
#else
	return (Plan *) list_nth(plan->plans, subplan_index);
#endif
}

/* The same, at execution. */
static inline Plan *
close_modify_subplan(ModifyTableState *mtstate, int subplan_index)
{
#if PG_VERSION_NUM >= 140000
	return outerPlanState(mtstate)->plan;
#else
	return mtstate->mt_plans[subplan_index]->plan;
#endif
}

/*
 * The new values an UPDATE assigns, as target entries, and the attribute
 * numbers they go to, in the same order.  From 14 they are the first
 * entries of the subplan's target list, one per assigned column; before,
 * the subplan's target list is the whole new row, by attribute number.
 */
static inline void
close_update_targets(PlannerInfo *root, Index relid, Plan *subplan,
					 List **tles, List **attnos)
{
#if PG_VERSION_NUM >= 140000
	get_translated_update_targetlist(root, relid, tles, attnos);
#else
	RangeTblEntry *rte = planner_rt_fetch(relid, root);
	int			col = -1;

	*tles = NIL;
	*attnos = NIL;
	while ((col = bms_next_member(rte->updatedCols, col)) >= 0)
	{
		AttrNumber	attnum = col + FirstLowInvalidHeapAttributeNumber;
		TargetEntry *tle;

		if (attnum <= InvalidAttrNumber)
			elog(ERROR, "system-column update is not supported");
		tle = get_tle_by_resno(subplan->targetlist, attnum);
		if (tle == NULL)
			elog(ERROR, "attribute number %d not found in subplan targetlist",
				 attnum);
		*tles = lappend(*tles, tle);
		*attnos = lappend_int(*attnos, attnum);
	}
#endif
}

/*
 * A direct modification's result relation: named in the ForeignScan and
 * given to its state from 14 on; before, the executor makes the one being
 * initialized the estate's current result relation.
 */
static inline void
close_set_direct_result_relation(ForeignScan *fscan, Index resultRelation)
{
#if PG_VERSION_NUM >= 140000
	fscan->resultRelation = resultRelation;
#endif
}

static inline ResultRelInfo *
close_direct_result_relation(ForeignScanState *node)
{
#if PG_VERSION_NUM >= 140000
	return node->resultRelInfo;
#else
	return node->ss.ps.state->es_result_relation_info;
#endif
}

/*
 * Whether a row routed into a foreign partition may be one moved there from
 * another partition: by an UPDATE, or by a MERGE's UPDATE action (MERGE came
 * in 15).  From 17 the MERGE action under way is known; before, any MERGE
 * with an UPDATE action may be moving the row (CLOSE_ROUTED_MAYBE_MOVED).
 */
#define CLOSE_ROUTED_INSERTED		0
#define CLOSE_ROUTED_MOVED			1
#define CLOSE_ROUTED_MAYBE_MOVED	2

static inline int
close_routed_row_kind(ModifyTableState *mtstate)
{
	if (mtstate == NULL)
		return CLOSE_ROUTED_INSERTED;
	if (mtstate->operation == CMD_UPDATE)
		return CLOSE_ROUTED_MOVED;
#if PG_VERSION_NUM >= 170000
	if (mtstate->operation == CMD_MERGE)
		return mtstate->mt_merge_action != NULL &&
			mtstate->mt_merge_action->mas_action->commandType == CMD_UPDATE
			? CLOSE_ROUTED_MOVED : CLOSE_ROUTED_INSERTED;
#elif PG_VERSION_NUM >= 150000
	if (mtstate->operation == CMD_MERGE)
		return (mtstate->mt_merge_subcommands & MERGE_UPDATE) != 0
			? CLOSE_ROUTED_MAYBE_MOVED : CLOSE_ROUTED_INSERTED;
#endif
	return CLOSE_ROUTED_INSERTED;
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

/*
 * Ask for shared memory while preloading: through shmem_request_hook from
 * 15 on (request is chained in, *prev keeps the hook before it), at once
 * before.
 */
static inline void
close_request_shmem(void (*request) (void), void (**prev) (void))
{
#if PG_VERSION_NUM >= 150000
	*prev = shmem_request_hook;
	shmem_request_hook = request;
#else
	*prev = NULL;
	request();
#endif
}

/*
 * Shared memory after startup: a named DSM segment (dsm_registry, 17 on),
 * made and initialized by init in the first backend that asks, attached in
 * the others; NULL before 17, where only shared_preload_libraries gives
 * shared memory.
 */
static inline bool
close_named_dsm_available(void)
{
#if PG_VERSION_NUM >= 170000
	return true;
#else
	return false;
#endif
}

static inline void *
close_get_named_dsm(const char *name, size_t size, void (*init) (void *ptr))
{
#if PG_VERSION_NUM >= 170000
	bool		found;

	return GetNamedDSMSegment(name, size, init, &found);
#else
	return NULL;
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

/* list_make5 came in 14. */
static inline List *
close_list_make5(void *x1, void *x2, void *x3, void *x4, void *x5)
{
#if PG_VERSION_NUM >= 140000
	return list_make5(x1, x2, x3, x4, x5);
#else
	return lappend(list_make4(x1, x2, x3, x4), x5);
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
 * What a transfer failure was, in the same words whatever the libcurl
 * version: libcurl 8 reworded its messages (8.14 says "Could not" where
 * 7.88 says "Couldn't", and "end of response with N bytes missing" for a
 * cut answer's "transfer closed with N bytes remaining to read").  The
 * failures close_fdw tells apart keep their libcurl 7 words; the rest are
 * libcurl's.
 */
static inline const char *
close_curl_strerror(CURLcode rc)
{
	switch (rc)
	{
		case CURLE_COULDNT_RESOLVE_PROXY:
			return "Couldn't resolve proxy name";
		case CURLE_COULDNT_RESOLVE_HOST:
			return "Couldn't resolve host name";
		case CURLE_COULDNT_CONNECT:
			return "Couldn't connect to server";
		case CURLE_PARTIAL_FILE:
			return "Transferred a partial file";
		case CURLE_GOT_NOTHING:
			return "Server returned nothing (no headers, no data)";
		default:
			return curl_easy_strerror(rc);
	}
}

/*
 * The detail of a failed transfer: libcurl's error buffer, but for an
 * answer cut short of its Content-Length, palloc'd words of our own.
 */
static inline const char *
close_curl_error_detail(CURL *curl, CURLcode rc, const char *errbuf)
{
	curl_off_t	announced;
	curl_off_t	received;

	if (rc == CURLE_PARTIAL_FILE && curl != NULL &&
		curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
						  &announced) == CURLE_OK &&
		curl_easy_getinfo(curl, CURLINFO_SIZE_DOWNLOAD_T,
						  &received) == CURLE_OK &&
		announced > received)
		return psprintf("transfer closed with %lld bytes remaining to read",
						(long long) (announced - received));
	return errbuf;
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

/*
 * A role's USAGE on a foreign server: 16 replaced the per-kind ACL checks
 * by object_aclcheck().
 */
static inline AclResult
close_server_aclcheck(Oid serverid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ForeignServerRelationId, serverid, roleid,
						   ACL_USAGE);
#else
	return pg_foreign_server_aclcheck(serverid, roleid, ACL_USAGE);
#endif
}

/*
 * GetUserMapping, with the words 17 gave its error ("user mapping not found
 * for user "u", server "s""; before, only the user was named) on every
 * major.
 */
static inline UserMapping *
close_get_user_mapping(Oid userid, Oid serverid)
{
	if (!SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
							   ObjectIdGetDatum(serverid)) &&
		!SearchSysCacheExists2(USERMAPPINGUSERSERVER,
							   ObjectIdGetDatum(InvalidOid),
							   ObjectIdGetDatum(serverid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("user mapping not found for user \"%s\", server \"%s\"",
						GetUserNameFromId(userid, false),
						GetForeignServer(serverid)->servername)));
	return GetUserMapping(userid, serverid);
}

/*
 * create_foreign_upper_path gained a disabled_nodes count in 18 and
 * fdw_restrictinfo in 17.
 */
static inline ForeignPath *
close_create_foreign_upper_path(PlannerInfo *root, RelOptInfo *rel,
								PathTarget *target, double rows,
								Cost startup_cost, Cost total_cost,
								List *fdw_private)
{
#if PG_VERSION_NUM >= 180000
	return create_foreign_upper_path(root, rel, target, rows, 0,
									 startup_cost, total_cost, NIL, NULL,
									 NIL, fdw_private);
#elif PG_VERSION_NUM >= 170000
	return create_foreign_upper_path(root, rel, target, rows,
									 startup_cost, total_cost, NIL, NULL,
									 NIL, fdw_private);
#else
	return create_foreign_upper_path(root, rel, target, rows,
									 startup_cost, total_cost, NIL, NULL,
									 fdw_private);
#endif
}

/*
 * Has a table never been analyzed (nor vacuumed)?  14 marks that with
 * reltuples -1; 13 with relpages 0.
 */
static inline bool
close_rel_never_analyzed(Relation rel)
{
#if PG_VERSION_NUM >= 140000
	return rel->rd_rel->reltuples < 0;
#else
	return rel->rd_rel->relpages == 0;
#endif
}

/* try_table_open came in 14; before, try_relation_open does the same here. */
static inline Relation
close_try_table_open(Oid relid, LOCKMODE lockmode)
{
#if PG_VERSION_NUM >= 140000
	return try_table_open(relid, lockmode);
#else
	return try_relation_open(relid, lockmode);
#endif
}

#endif							/* CLOSE_FDW_COMPAT_H */
