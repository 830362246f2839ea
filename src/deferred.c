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
 * The writes a subtransaction queued are the end of the queue: a stack
 * holds, for each open (sub)transaction level that queued, where its
 * writes start, so that its end costs the writes it drops, not the whole
 * queue.  Beside the queue, what other statements must know in O(1):
 * the writes queued to each object (by its path; Close ids are unique, so
 * an object's path names it whatever the server), and the INSERTs queued
 * per table, with the (server, resource, type) whose rows they add.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "close_fdw.h"

/* The writes queued to one object. */
typedef struct DeferredObject
{
	char	   *path;			/* hash key: "/custom_object/{id}/" */
	int			writes;			/* queued, not dropped */
	int			deletes;		/* of which DELETEs */
	int			inserts_into;	/* INSERTs queued into it (a lead) */
} DeferredObject;

/*
 * The INSERTs queued into one table, and the rows they add; and the UPDATEs
 * queued through it, and the rows whose values they change.
 */
typedef struct DeferredTarget
{
	Oid			relid;
	char	   *relname;		/* as when it queued, for messages */
	Oid			serverid;
	uint64		api_target;		/* its server's Close (close_api_target) */
	const char *resource;		/* its resource's path */
	char	   *type_id;		/* its custom_object_type_id, or NULL */
	int			inserts;		/* queued, not dropped */
	int			updates;		/* queued, not dropped */
} DeferredTarget;

static MemoryContext queue_cxt = NULL;
static CloseDeferredWrite **queue = NULL;	/* in order */
static int	queue_len = 0;
static int	queue_size = 0;

/*
 * starts[level]: the queue position where the writes of the open
 * (sub)transaction at that level begin, for levels 2 to depth (level 1
 * starts at 0).  Filled lazily when a write is queued: a level without a
 * start has queued nothing.
 */
static int *starts = NULL;
static int	starts_size = 0;
static int	depth = 1;

static HTAB *objects = NULL;	/* of DeferredObject, by path */
static List *targets = NIL;		/* of DeferredTarget */

/* objects is keyed by a pointer to the path: hash and compare the paths. */
static uint32
path_hash(const void *key, Size keysize)
{
	const char *path = *(const char *const *) key;

	return DatumGetUInt32(hash_any((const unsigned char *) path, strlen(path)));
}

static int
path_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

static DeferredObject *
find_object(const char *path, bool create)
{
	DeferredObject *obj;
	bool		found;

	if (objects == NULL)
	{
		HASHCTL		ctl;

		if (!create)
			return NULL;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(DeferredObject);
		ctl.hash = path_hash;
		ctl.match = path_match;
		ctl.hcxt = queue_cxt;
		objects = hash_create("close_fdw deferred objects", 256, &ctl,
							  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE |
							  HASH_CONTEXT);
	}
	obj = (DeferredObject *) hash_search(objects, &path,
										 create ? HASH_ENTER : HASH_FIND,
										 &found);
	if (obj && !found)
	{
		obj->path = MemoryContextStrdup(queue_cxt, path);
		obj->writes = 0;
		obj->deletes = 0;
		obj->inserts_into = 0;
	}
	return obj;
}

/* The Close a server points at (close_api_target of its api_url). */
static uint64
server_target(Oid serverid)
{
	CloseServerOptions sopts;

	close_get_server_options(GetForeignServer(serverid), &sopts);
	return close_api_target(sopts.api_url);
}

/* The target of a table's INSERTs, made on its first. */
static DeferredTarget *
find_target(Oid relid, Oid serverid, const char *relname)
{
	DeferredTarget *t;
	ListCell   *lc;
	MemoryContext oldcxt;

	/* the last one first: a statement queues its rows one after another */
	if (targets != NIL &&
		((DeferredTarget *) llast(targets))->relid == relid)
		return (DeferredTarget *) llast(targets);
	foreach(lc, targets)
	{
		t = (DeferredTarget *) lfirst(lc);
		if (t->relid == relid)
			return t;
	}
	oldcxt = MemoryContextSwitchTo(queue_cxt);
	t = palloc0(sizeof(DeferredTarget));
	t->relid = relid;
	t->relname = pstrdup(relname);
	t->serverid = serverid;
	t->api_target = server_target(serverid);
	t->resource = close_get_table_resource(relid)->path;
	t->type_id = close_get_table_type_id(relid);
	targets = lappend(targets, t);
	MemoryContextSwitchTo(oldcxt);
	return t;
}

/*
 * Queue one write; path, body (NULL for DELETE), id (NULL for POST), lead
 * (a POST's lead_id, or NULL) and relname are copied.
 */
void
close_deferred_add(Oid relid, Oid userid, Oid serverid, CmdType operation,
				   CommandId cid, const char *path, const char *body,
				   const char *id, const char *lead, const char *relname)
{
	MemoryContext oldcxt;
	CloseDeferredWrite *w;
	int			level = GetCurrentTransactionNestLevel();

	if (queue_cxt == NULL)
		queue_cxt = AllocSetContextCreate(TopMemoryContext,
										  "close_fdw deferred writes",
										  ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(queue_cxt);

	/* the levels opened since the last write start here */
	if (level >= starts_size)
	{
		int			size = Max(level + 1, starts_size * 2);

		starts = starts == NULL ? palloc(sizeof(int) * size)
			: repalloc(starts, sizeof(int) * size);
		starts_size = size;
	}
	if (depth > level)
		depth = level;			/* cannot happen: the ends are seen */
	while (depth < level)
		starts[++depth] = queue_len;

	if (queue_len >= queue_size)
	{
		queue_size = queue_size == 0 ? 64 : queue_size * 2;
		queue = queue == NULL
			? palloc(sizeof(CloseDeferredWrite *) * queue_size)
			: repalloc_huge(queue, sizeof(CloseDeferredWrite *) * queue_size);
	}
	w = palloc0(sizeof(CloseDeferredWrite));
	w->relid = relid;
	w->userid = userid;
	w->serverid = serverid;
	w->operation = operation;
	w->cid = cid;
	w->path = pstrdup(path);
	w->body = body ? pstrdup(body) : NULL;
	w->id = id ? pstrdup(id) : NULL;
	w->lead = lead ? pstrdup(lead) : NULL;
	/* consecutive writes of one table share its name */
	w->relname = queue_len > 0 && queue[queue_len - 1]->relid == relid
		? queue[queue_len - 1]->relname : pstrdup(relname);
	if (operation == CMD_INSERT)
	{
		w->target = find_target(relid, serverid, relname);
		w->target->inserts++;
		/* the lead it goes into, found by its path as UPDATE finds it */
		if (lead)
		{
			char	   *lead_path = psprintf("%s%s/",
											 close_resource_by_name("lead")->path,
											 lead);

			w->into = find_object(lead_path, true);
			w->into->inserts_into++;
			pfree(lead_path);
		}
	}
	else
	{
		w->object = find_object(path, true);
		w->object->writes++;
		if (operation == CMD_DELETE)
			w->object->deletes++;
		else
		{
			w->target = find_target(relid, serverid, relname);
			w->target->updates++;
		}
	}
	queue[queue_len++] = w;
	MemoryContextSwitchTo(oldcxt);
}

/* The queued writes, in order (owned by the queue); *n: how many. */
CloseDeferredWrite **
close_deferred_writes(int *n)
{
	*n = queue_len;
	return queue;
}

/*
 * How many writes are queued to the object at path; *deletes: how many of
 * them are DELETEs.
 */
int
close_deferred_object_writes(const char *path, int *deletes)
{
	DeferredObject *obj = queue_len > 0 ? find_object(path, false) : NULL;

	*deletes = obj ? obj->deletes : 0;
	return obj ? obj->writes : 0;
}

/* How many INSERTs are queued into the lead at path. */
int
close_deferred_inserts_into(const char *path)
{
	DeferredObject *obj = queue_len > 0 ? find_object(path, false) : NULL;

	return obj ? obj->inserts_into : 0;
}

/*
 * The name of a table with INSERTs (updates: UPDATEs) queued whose rows a
 * statement on relid could read: the same server (any_server: any server
 * pointing at the same Close, by its api_url) and resource, and the same
 * custom_object_type_id, or either table without one (it may hold the
 * other's rows); *same: it is relid.  NULL if there is none.
 */
static const char *
queued_overlap(Oid relid, bool any_server, bool updates, bool *same)
{
	ForeignTable *table;
	const char *resource;
	char	   *type_id;
	ListCell   *lc;
	bool		any = false;
	uint64		api_target = 0;

	foreach(lc, targets)
	{
		DeferredTarget *t = (DeferredTarget *) lfirst(lc);

		any |= (updates ? t->updates : t->inserts) > 0;
	}
	*same = false;
	if (!any)
		return NULL;

	table = GetForeignTable(relid);
	if (any_server)
		api_target = server_target(table->serverid);
	resource = close_get_table_resource(relid)->path;
	type_id = close_get_table_type_id(relid);
	foreach(lc, targets)
	{
		DeferredTarget *t = (DeferredTarget *) lfirst(lc);

		if ((updates ? t->updates : t->inserts) > 0 &&
			(any_server ? t->api_target == api_target
			 : t->serverid == table->serverid) &&
			strcmp(t->resource, resource) == 0 &&
			(t->type_id == NULL || type_id == NULL ||
			 strcmp(t->type_id, type_id) == 0))
		{
			*same = t->relid == relid;
			return t->relname;
		}
	}
	return NULL;
}

const char *
close_deferred_insert_overlap(Oid relid, bool any_server, bool *same)
{
	return queued_overlap(relid, any_server, false, same);
}

/* The same for UPDATEs queued: a table whose rows' values they change. */
const char *
close_deferred_update_overlap(Oid relid, bool *same)
{
	return queued_overlap(relid, true, true, same);
}

/* Drop the writes from position pos on. */
static void
truncate_queue(int pos)
{
	while (queue_len > pos)
	{
		CloseDeferredWrite *w = queue[--queue_len];

		if (w->target && w->operation == CMD_INSERT)
			w->target->inserts--;
		else if (w->target)
			w->target->updates--;
		if (w->into)
			w->into->inserts_into--;
		if (w->object)
		{
			w->object->writes--;
			if (w->operation == CMD_DELETE)
				w->object->deletes--;
		}
		pfree(w->path);
		if (w->body)
			pfree(w->body);
		if (w->id)
			pfree(w->id);
		if (w->lead)
			pfree(w->lead);
		if (queue_len == 0 || queue[queue_len - 1]->relname != w->relname)
			pfree((char *) w->relname);
		pfree(w);
	}
}

/*
 * The (sub)transaction at level ends: on abort its writes (those of deeper
 * levels too) are dropped; on commit of a subtransaction they become its
 * parent's.  Costs the writes dropped, not the queue.
 */
void
close_deferred_end(int level, bool abort)
{
	if (queue_cxt == NULL)
		return;
	if (level <= 1)
	{
		/* the whole queue goes, sent or not */
		MemoryContextDelete(queue_cxt);
		queue_cxt = NULL;
		queue = NULL;
		queue_len = 0;
		queue_size = 0;
		starts = NULL;
		starts_size = 0;
		depth = 1;
		objects = NULL;
		targets = NIL;
		return;
	}
	if (level > depth)
		return;					/* it queued nothing */
	if (abort)
		truncate_queue(starts[level]);
	depth = level - 1;
}
