/*-------------------------------------------------------------------------
 *
 * budget.c
 *		  The request budget of a statement: close_fdw.max_requests (any user,
 *		  to protect themselves) and close_fdw.max_requests_ceiling (superuser
 *		  only, for an administrator to cap a role), and the count of the
 *		  requests each statement has sent to read, which http.c asks before
 *		  every request it sends.
 *
 * A statement is a query the executor runs at the top level: its count
 * starts at ExecutorStart and lives in the query's executor state, so a
 * cursor is one statement across all its FETCHes, and the queries a
 * function runs inside it count towards it.  Requests sent outside any
 * executor (ANALYZE) count towards the client's current statement.
 *
 * Every request sent to read counts: pages, retries, type lookups, pages
 * fetched ahead; answers from a cache are not requests.  Writes are never
 * refused, nor is a read of a statement that has written (stopping it
 * would leave its writes half done), nor IMPORT.  A round of concurrent
 * requests is trimmed to what remains, so the budget is never overshot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "executor/executor.h"
#include "optimizer/pathnode.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "access/xact.h"

#include "close_fdw.h"
#include "compat.h"

int			close_max_requests = 0;
int			close_max_requests_ceiling = 0;

/* The count of one statement. */
typedef struct CloseBudget
{
	QueryDesc  *owner;			/* the top-level query; NULL: no executor */
	int64		used;			/* requests sent to read */
	bool		wrote;			/* a write was sent: never stopped now */
	struct CloseBudget *next;	/* in open_budgets */
	MemoryContextCallback unlink;
} CloseBudget;

/* The top-level queries open (several with cursors), newest first. */
static CloseBudget *open_budgets = NULL;

/* The statement running now, or NULL outside the executor. */
static CloseBudget *current = NULL;

/* Depth of ExecutorRun and ExecutorFinish calls. */
static int	nesting = 0;

/* > 0 while IMPORT reads. */
static int	exempt = 0;

/* Requests outside any executor, per client statement. */
static CloseBudget outside;
static TimestampTz outside_statement = 0;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;

static void
budget_unlink(void *arg)
{
	CloseBudget *budget = (CloseBudget *) arg;
	CloseBudget **p;

	for (p = &open_budgets; *p; p = &(*p)->next)
		if (*p == budget)
		{
			*p = budget->next;
			break;
		}
	if (current == budget)
		current = NULL;
}

static CloseBudget *
find_budget(QueryDesc *queryDesc)
{
	CloseBudget *b;

	for (b = open_budgets; b; b = b->next)
		if (b->owner == queryDesc)
			return b;
	return NULL;
}

/* A top-level query gets a count of its own, freed with its state. */
static void
budget_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (nesting == 0 && queryDesc->estate &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		CloseBudget *b = MemoryContextAllocZero(queryDesc->estate->es_query_cxt,
												sizeof(CloseBudget));

		b->owner = queryDesc;
		b->unlink.func = budget_unlink;
		b->unlink.arg = b;
		MemoryContextRegisterResetCallback(queryDesc->estate->es_query_cxt,
										   &b->unlink);
		b->next = open_budgets;
		open_budgets = b;
	}
}

static void
budget_ExecutorRun(CLOSE_EXECUTOR_RUN_ARGS)
{
	CloseBudget *save = current;
	CloseBudget *mine = nesting == 0 ? find_budget(queryDesc) : NULL;

	if (mine)
		current = mine;
	nesting++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(CLOSE_EXECUTOR_RUN_PASS);
		else
			standard_ExecutorRun(CLOSE_EXECUTOR_RUN_PASS);
	}
	PG_FINALLY();
	{
		nesting--;
		current = save;
	}
	PG_END_TRY();
}

static void
budget_ExecutorFinish(QueryDesc *queryDesc)
{
	CloseBudget *save = current;
	CloseBudget *mine = nesting == 0 ? find_budget(queryDesc) : NULL;

	if (mine)
		current = mine;
	nesting++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		nesting--;
		current = save;
	}
	PG_END_TRY();
}

void
close_budget_init(void)
{
	DefineCustomIntVariable("close_fdw.max_requests",
							"Most Close API requests one statement may send to read.",
							"0 means no limit.  The smaller non-zero one of this and close_fdw.max_requests_ceiling applies.",
							&close_max_requests,
							0, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("close_fdw.max_requests_ceiling",
							"Most Close API requests one statement may send to read, set by a superuser.",
							"0 means no limit.  A user cannot raise it with close_fdw.max_requests.",
							&close_max_requests_ceiling,
							0, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = budget_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = budget_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = budget_ExecutorFinish;
}

/*
 * The budget in force (0: none), and the name of the setting that sets it.
 */
int
close_budget_limit(const char **setting)
{
	int			limit = close_max_requests;

	if (setting)
		*setting = "close_fdw.max_requests";
	if (close_max_requests_ceiling > 0 &&
		(limit == 0 || close_max_requests_ceiling < limit))
	{
		limit = close_max_requests_ceiling;
		if (setting)
			*setting = "close_fdw.max_requests_ceiling";
	}
	return limit;
}

/* The count the next request goes to, or NULL when nothing is counted. */
static CloseBudget *
budget_now(void)
{
	if (exempt > 0)
		return NULL;
	if (current)
		return current;
	if (outside_statement != GetCurrentStatementStartTimestamp())
	{
		memset(&outside, 0, sizeof(outside));
		outside_statement = GetCurrentStatementStartTimestamp();
	}
	return &outside;
}

/*
 * How many more requests to read the statement may send now; -1 for any
 * number.
 */
int64
close_budget_remaining(void)
{
	CloseBudget *b = budget_now();
	int			limit = close_budget_limit(NULL);

	if (b == NULL || limit == 0 || b->wrote)
		return -1;
	return Max(limit - b->used, 0);
}

/*
 * Admit up to n requests of one kind to path, about to be sent: writes
 * always; reads as far as the budget goes, counted.  Returns how many may
 * go (at least 1, fewer than n only when may_trim); when none may, the
 * statement ends with an error naming the limit.
 */
int
close_budget_admit(bool read, const char *path, int n, bool may_trim)
{
	CloseBudget *b = budget_now();
	int64		remaining = close_budget_remaining();
	const char *setting;
	int			limit;
	bool		search;

	if (b == NULL)
		return n;
	if (!read)
	{
		b->wrote = true;
		return n;
	}
	if (remaining < 0 || remaining >= n)
	{
		b->used += n;
		return n;
	}
	if (remaining > 0 && may_trim)
	{
		b->used += remaining;
		return (int) remaining;
	}

	limit = close_budget_limit(&setting);
	search = strncmp(path, "/data/search/", strlen("/data/search/")) == 0;
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg_plural("statement would send more than %d Close API request, the limit set by \"%s\"",
						   "statement would send more than %d Close API requests, the limit set by \"%s\"",
						   limit, limit, setting),
			 errdetail_plural("It has sent %d request to read.",
							  "It has sent %d requests to read.",
							  (unsigned long) b->used, (int) b->used),
			 search
			 ? errhint("A condition on \"lead_id\" (one listing per lead) or \"id\" (one request per object) would make it cheaper than searching the whole organisation.")
			 : errhint("Fewer \"lead_id\" or \"id\" values, or a larger \"page_size\", would make it cheaper."),
			 errcontext("Close API request: %s %s", search ? "POST" : "GET",
						path)));
	return 0;					/* keep the compiler quiet */
}

/* IMPORT FOREIGN SCHEMA's requests are not counted while this is set. */
void
close_budget_exempt(bool on)
{
	exempt += on ? 1 : -1;
	Assert(exempt >= 0);
}

/* A search's page (see search.c). */
#define PLANNED_SEARCH_PAGE 200

/*
 * The requests a planned scan is expected to send, over all its loops (a
 * parameterized scan runs once per row of what it depends on): what
 * EXPLAIN shows, for comparing with the budget.  A search reads its rows
 * in pages, one more to cut a long one into parts; a listing reads pages
 * per lead; a retrieval one request per id.
 */
int
close_budget_planned(PlannerInfo *root, Path *path, CloseAccessKind kind,
					 double key_count, int page_size, double limit)
{
	double		rows = Max(path->rows, 1.0);
	double		loops = 1.0;
	double		requests;
	double		pages;

	if (path->param_info)
	{
		Relids		outer = path->param_info->ppi_req_outer;
		RelOptInfo *rel = NULL;
		int			relid;

		if (bms_get_singleton_member(outer, &relid))
		{
			if (relid < root->simple_rel_array_size)
				rel = root->simple_rel_array[relid];
		}
		else
			rel = find_join_rel(root, outer);
		if (rel)
			loops = Max(rel->rows, 1.0);
	}

	switch (kind)
	{
		case CLOSE_ACCESS_BY_ID:
			requests = key_count;
			break;
		case CLOSE_ACCESS_LIST:
			/* key_count: the records of the listing; pages overlap by one */
			requests = Max(1.0, ceil(key_count / Max(page_size - 1, 1)));
			break;
		case CLOSE_ACCESS_BY_LEAD:
			key_count = Max(key_count, 1.0);
			requests = key_count *
				Max(1.0, ceil(rows / key_count / Max(page_size, 1)));
			break;
		default:
			if (limit > 0)
				rows = Min(rows, limit);
			pages = Max(1.0, ceil(rows / PLANNED_SEARCH_PAGE));
			requests = pages + (limit <= 0 && pages > 2 ? 1 : 0);
			break;
	}
	return (int) Min(requests * loops, (double) INT_MAX);
}
