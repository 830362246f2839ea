/*-------------------------------------------------------------------------
 *
 * deferred.c
 *		  The queue of a transaction's writes to tables with write_mode
 *		  'deferred': INSERT, UPDATE and DELETE add their requests here, a
 *		  rolled back savepoint drops those it queued, ROLLBACK drops all,
 *		  and modify.c sends them at PRE_COMMIT in the order they came.
 *
 * The queue lives in its own memory context under TopMemoryContext, made
 * when the first write is queued and deleted when the transaction ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "close_fdw.h"

static MemoryContext queue_cxt = NULL;
static List *queue = NIL;		/* of CloseDeferredWrite, in order */

/*
 * Queue one write; method, path, body (NULL for DELETE) and id (NULL for
 * POST) are copied.
 */
void
close_deferred_add(Oid relid, Oid userid, Oid serverid, CmdType operation,
				   CommandId cid, const char *path, const char *body,
				   const char *id)
{
	MemoryContext oldcxt;
	CloseDeferredWrite *w;

	if (queue_cxt == NULL)
		queue_cxt = AllocSetContextCreate(TopMemoryContext,
										  "close_fdw deferred writes",
										  ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(queue_cxt);
	w = palloc0(sizeof(CloseDeferredWrite));
	w->relid = relid;
	w->userid = userid;
	w->serverid = serverid;
	w->operation = operation;
	w->cid = cid;
	w->nest_level = GetCurrentTransactionNestLevel();
	w->path = pstrdup(path);
	w->body = body ? pstrdup(body) : NULL;
	w->id = id ? pstrdup(id) : NULL;
	queue = lappend(queue, w);
	MemoryContextSwitchTo(oldcxt);
}

/* The queued writes, in order (owned by the queue). */
List *
close_deferred_writes(void)
{
	return queue;
}

/* Whether the transaction queued an INSERT into the table. */
bool
close_deferred_has_insert(Oid relid)
{
	ListCell   *lc;

	foreach(lc, queue)
	{
		CloseDeferredWrite *w = (CloseDeferredWrite *) lfirst(lc);

		if (w->relid == relid && w->operation == CMD_INSERT)
			return true;
	}
	return false;
}

/*
 * The (sub)transaction at level ends: on abort its writes and those of
 * deeper levels are dropped; on commit of a subtransaction they become its
 * parent's.  The queue items stay allocated until the transaction ends.
 */
void
close_deferred_end(int level, bool abort)
{
	List	   *kept = NIL;
	ListCell   *lc;
	MemoryContext oldcxt;

	if (queue == NIL)
		return;
	if (level <= 1)
	{
		/* the whole queue goes, sent or not */
		queue = NIL;
		MemoryContextDelete(queue_cxt);
		queue_cxt = NULL;
		return;
	}
	oldcxt = MemoryContextSwitchTo(queue_cxt);
	foreach(lc, queue)
	{
		CloseDeferredWrite *w = (CloseDeferredWrite *) lfirst(lc);

		if (w->nest_level < level)
			kept = lappend(kept, w);
		else if (!abort)
		{
			w->nest_level = level - 1;
			kept = lappend(kept, w);
		}
	}
	list_free(queue);
	queue = kept;
	MemoryContextSwitchTo(oldcxt);
}
