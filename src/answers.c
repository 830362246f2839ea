/*-------------------------------------------------------------------------
 *
 * answers.c
 *		  Answers kept by their request path, for a scan: pages fetched
 *		  ahead of their turn (several at once), and, within a statement,
 *		  the answers to requests a nested loop repeats.  Also the ids of
 *		  the objects created while scans are open, so that those scans do
 *		  not read them back.
 *
 * A store is a hash table in a memory context of its own; resetting the
 * store frees every answer in it at once.  Only complete answers are
 * handed out (200, or 404 where the caller asks for one); anything else a
 * prefetch brought back is fetched again in its turn by the sequential
 * path, which retries and reports as a single request does.  A store with
 * a budget stops keeping answers once their bodies reach it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "close_fdw.h"
#include "compat.h"

/* Paths longer than this are not kept (a listing's path is ~130 bytes). */
#define CLOSE_ANSWER_PATH_MAX 256

typedef struct CloseAnswerEntry
{
	char		path[CLOSE_ANSWER_PATH_MAX];	/* hash key */
	CloseResponse response;		/* body in the store's context */
} CloseAnswerEntry;

struct CloseAnswers
{
	MemoryContext cxt;
	HTAB	   *table;			/* made on first use after a reset */
	Size		budget;			/* 0: no limit */
	Size		used;			/* bytes of the bodies kept */
};

CloseAnswers *
close_answers_create(MemoryContext parent, const char *name, Size budget)
{
	CloseAnswers *answers = MemoryContextAllocZero(parent, sizeof(CloseAnswers));

	answers->cxt = AllocSetContextCreate(parent, "close_fdw answers",
										 ALLOCSET_DEFAULT_SIZES);
	/* name is a string constant: it outlives the context */
	MemoryContextSetIdentifier(answers->cxt, name);
	answers->budget = budget;
	return answers;
}

void
close_answers_reset(CloseAnswers *answers)
{
	MemoryContextReset(answers->cxt);
	answers->table = NULL;
	answers->used = 0;
}

static HTAB *
answers_table(CloseAnswers *answers)
{
	if (answers->table == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = CLOSE_ANSWER_PATH_MAX;
		ctl.entrysize = sizeof(CloseAnswerEntry);
		ctl.hcxt = answers->cxt;
		answers->table = hash_create("close_fdw answers", 64, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	return answers->table;
}

/*
 * The kept answer to path, if there is a complete one: 200, or 404 when
 * missing_ok.  The body stays the store's until it is reset.
 */
bool
close_answers_find(CloseAnswers *answers, const char *path, bool missing_ok,
				   CloseResponse *response)
{
	CloseAnswerEntry *entry;

	if (answers->table == NULL || strlen(path) >= CLOSE_ANSWER_PATH_MAX)
		return false;
	entry = hash_search(answers->table, path, HASH_FIND, NULL);
	if (entry == NULL ||
		!(entry->response.status == 200 ||
		  (missing_ok && entry->response.status == 404)))
		return false;
	*response = entry->response;
	return true;
}

/*
 * The answer to path that was sent ahead and failed (an HTTP status other
 * than 200, or no answer), if there is one.
 */
bool
close_answers_failed(CloseAnswers *answers, const char *path,
					 CloseResponse *response)
{
	CloseAnswerEntry *entry;

	if (answers->table == NULL || strlen(path) >= CLOSE_ANSWER_PATH_MAX)
		return false;
	entry = hash_search(answers->table, path, HASH_FIND, NULL);
	if (entry == NULL || entry->response.attempts == 0 ||
		entry->response.status == 200 ||
		(entry->response.status == 0 && entry->response.transport_error == 0))
		return false;
	*response = entry->response;
	return true;
}

/* Forget the answer kept for path, if any (a newer one replaces it). */
void
close_answers_forget(CloseAnswers *answers, const char *path)
{
	CloseAnswerEntry *entry;

	if (answers->table == NULL || strlen(path) >= CLOSE_ANSWER_PATH_MAX)
		return;
	entry = hash_search(answers->table, path, HASH_FIND, NULL);
	if (entry == NULL)
		return;
	/* the body stays in the store's context until it is reset */
	if (entry->response.body)
		answers->used -= Min(answers->used,
							 entry->response.body_len + sizeof(CloseAnswerEntry));
	(void) hash_search(answers->table, path, HASH_REMOVE, NULL);
}

/* Keep a copy of an answer, unless the budget is spent. */
void
close_answers_keep(CloseAnswers *answers, const char *path,
				   const CloseResponse *response)
{
	CloseAnswerEntry *entry;
	bool		found;

	if (strlen(path) >= CLOSE_ANSWER_PATH_MAX ||
		(answers->budget > 0 &&
		 answers->used + response->body_len + sizeof(CloseAnswerEntry) > answers->budget))
		return;
	entry = hash_search(answers_table(answers), path, HASH_ENTER, &found);
	if (found)
		return;					/* kept already (this answer came from here) */
	entry->response = *response;
	entry->response.body = MemoryContextAlloc(answers->cxt, response->body_len + 1);
	memcpy(entry->response.body, response->body, response->body_len);
	entry->response.body[response->body_len] = '\0';
	answers->used += response->body_len + sizeof(CloseAnswerEntry);
}

/* The context an answer put with close_answers_put must be allocated in. */
MemoryContext
close_answers_context(CloseAnswers *answers)
{
	return answers->cxt;
}

/*
 * Add an answer whose body is in the store's context already (a request
 * sent in a CloseFlight while the store's context was current).
 */
void
close_answers_put(CloseAnswers *answers, const char *path,
				  const CloseResponse *response)
{
	CloseAnswerEntry *entry;

	if (strlen(path) >= CLOSE_ANSWER_PATH_MAX)
		return;
	entry = hash_search(answers_table(answers), path, HASH_ENTER, NULL);
	entry->response = *response;
}

/*
 * Replace what the store holds with the answers to paths, requested
 * concurrently (close_http_send_many: within the pacing, one attempt
 * each).  Returns the number of requests sent.
 */
int
close_answers_fetch(CloseAnswers *answers, CloseConnection *conn,
					char **paths, int n)
{
	MemoryContext oldcxt;
	CloseResponse *responses;
	int			sent;
	int			i;

	close_answers_reset(answers);
	oldcxt = MemoryContextSwitchTo(answers->cxt);
	responses = palloc0(sizeof(CloseResponse) * n);
	sent = close_http_send_many(conn, "GET", paths, NULL, n, responses);
	for (i = 0; i < sent; i++)
	{
		CloseAnswerEntry *entry;

		if (strlen(paths[i]) >= CLOSE_ANSWER_PATH_MAX)
			continue;
		entry = hash_search(answers_table(answers), paths[i], HASH_ENTER, NULL);
		entry->response = responses[i];
	}
	MemoryContextSwitchTo(oldcxt);
	return sent;
}

/*
 * ---- the answer cache (cache_ttl_ms) ----
 *
 * Whole answers only: one object by id, or every page of a listing or a
 * search, gathered by a CloseWholeAnswer as the scan returns their records
 * and kept once the last page was read ({"data": [...]} and the members
 * the caller gives).  A page alone is never kept: next to live pages it
 * would miss or repeat objects.  shared.c stores them (shared memory when
 * preloaded, else this backend's), keyed by the request's text.
 */

/* The cache's key of a request: its method, path and body. */
static char *
cache_request_text(const char *method, const char *path, const char *body)
{
	return psprintf("%s %s\n%s", method, path, body ? body : "");
}

/*
 * The answer to the request, from the cache, if it holds one younger than
 * ttl_ms (the body in CurrentMemoryContext; attempts 0): a cache hit,
 * counted in close_fdw_stats.
 */
bool
close_answers_cached(CloseConnection *conn, int ttl_ms, const char *method,
					 const char *path, const char *body,
					 CloseResponse *response)
{
	char	   *request;
	char	   *answer;
	size_t		len;
	int			status;
	bool		found;
	CloseStatsDelta delta = {0};
	char		group[CLOSE_GROUP_SIZE];

	if (ttl_ms <= 0)
		return false;
	request = cache_request_text(method, path, body);
	found = close_cache_get(conn, request, ttl_ms, CurrentMemoryContext,
							&status, &answer, &len);
	pfree(request);
	if (!found)
		return false;
	memset(response, 0, sizeof(CloseResponse));
	response->status = status;
	response->body = answer;
	response->body_len = len;
	close_endpoint_group(method, path, group, sizeof(group));
	delta.cache_hits = 1;
	close_stats_add(conn, group, &delta);
	return true;
}

/* Whether close_answers_cached would answer the request now. */
bool
close_answers_in_cache(CloseConnection *conn, int ttl_ms, const char *method,
					   const char *path, const char *body)
{
	char	   *request;
	bool		found;

	if (ttl_ms <= 0)
		return false;
	request = cache_request_text(method, path, body);
	found = close_cache_has(conn, request, ttl_ms);
	pfree(request);
	return found;
}

/*
 * Keep a whole answer (200, or 404 for an object by id) to the request, read
 * by a reader that began at cache generation since, asked for at read_at.
 */
void
close_answers_remember(CloseConnection *conn, uint64 since,
					   TimestampTz read_at,
					   const char *method, const char *path, const char *body,
					   const CloseResponse *response)
{
	char	   *request;

	if (response->status != 200 && response->status != 404)
		return;
	request = cache_request_text(method, path, body);
	close_cache_put(conn, request, since, read_at, (int) response->status,
					response->body, response->body_len);
	pfree(request);
}

struct CloseWholeAnswer
{
	char	   *request;		/* the cache's key */
	TimestampTz read_at;		/* when its first page was asked for */
	StringInfoData answer;		/* {"data": [records so far */
	int			records;
	bool		too_large;		/* would not fit the cache: given up */
};

/*
 * Begin gathering the whole answer to a paged request (method, path and
 * body as the cache's key), in cxt.
 */
CloseWholeAnswer *
close_whole_begin(MemoryContext cxt, const char *method, const char *path,
				  const char *body)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	CloseWholeAnswer *whole = palloc0(sizeof(CloseWholeAnswer));

	whole->request = cache_request_text(method, path, body);
	whole->read_at = GetCurrentTimestamp();
	initStringInfo(&whole->answer);
	appendStringInfoString(&whole->answer, "{\"data\": [");
	MemoryContextSwitchTo(oldcxt);
	return whole;
}

/* A record of the answer, in its order. */
void
close_whole_add(CloseWholeAnswer *whole, struct json_object *record)
{
	char	   *text;
	MemoryContext oldcxt;

	if (whole == NULL || whole->too_large)
		return;
	text = close_json_serialize(record);
	if (whole->answer.len + strlen(text) + strlen(whole->request) + 64 >
		Min(close_cache_capacity(), MaxAllocSize / 2))
	{
		/*
		 * more than the cache holds, or than one allocation may (a
		 * close_fdw.cache_size_mb above 1 GB): stop gathering, rather than
		 * fail a scan that would succeed without the cache
		 */
		whole->too_large = true;
		pfree(whole->answer.data);
		whole->answer.data = NULL;
		pfree(text);
		return;
	}
	oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(whole));
	if (whole->records++ > 0)
		appendStringInfoString(&whole->answer, ", ");
	appendStringInfoString(&whole->answer, text);
	MemoryContextSwitchTo(oldcxt);
	pfree(text);
}

/*
 * A page of the answer was asked for at read_at, before the answer was
 * begun (fetched ahead): the answer is as old as its oldest page, and its
 * TTL counts from there.
 */
void
close_whole_read_at(CloseWholeAnswer *whole, TimestampTz read_at)
{
	if (whole != NULL && read_at < whole->read_at)
		whole->read_at = read_at;
}

/*
 * The last page was read: keep {"data": [...], members} (members: the rest
 * of the answer's JSON members, such as "\"has_more\": false").
 */
void
close_whole_end(CloseWholeAnswer *whole, CloseConnection *conn,
				uint64 since, const char *members)
{
	MemoryContext oldcxt;

	if (whole == NULL || whole->too_large)
		return;
	oldcxt = MemoryContextSwitchTo(GetMemoryChunkContext(whole));
	appendStringInfo(&whole->answer, "], %s}", members);
	MemoryContextSwitchTo(oldcxt);
	close_cache_put(conn, whole->request, since, whole->read_at, 200,
					whole->answer.data, whole->answer.len);
	/* kept once */
	whole->too_large = true;
	pfree(whole->answer.data);
	whole->answer.data = NULL;
}

/*
 * ---- objects created while scans are open ----
 *
 * A scan must not read back what its own statement, or a later command of
 * the transaction, created, as PostgreSQL's own tables do not: INSERT ...
 * SELECT, a nested loop restarted after writes, a function or trigger
 * that writes to Close while a SELECT reads, a cursor read on after an
 * INSERT.  Every scan asks close_created_since() of every record.  Ids are
 * kept, with the command that created them, only while a scan is open (a
 * scan that begins later does not need them: its command is later), and go
 * when the last one ends or at the transaction's end (TopTransactionContext).
 */
#define CLOSE_CREATED_ID_MAX 128

/* An id created or deleted, with the command that did it (the first) */
typedef struct CloseIdEntry
{
	char		id[CLOSE_CREATED_ID_MAX];	/* hash key */
	CommandId	cid;
} CloseIdEntry;

static int	created_scans = 0;	/* scans open */
static HTAB *created_ids = NULL;
static HTAB *deleted_ids = NULL;	/* see "objects this transaction deleted" */
static bool deleted_lead = false;	/* a lead among them */
static bool ids_callback = false;

static void
ids_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* the tables were in TopTransactionContext, which goes */
			created_scans = 0;
			created_ids = NULL;
			deleted_ids = NULL;
			deleted_lead = false;
			break;
		default:
			break;
	}
}

/* Before any state the transaction's end must clear. */
static void
ids_register_callback(void)
{
	if (!ids_callback)
	{
		RegisterXactCallback(ids_xact_callback, NULL);
		ids_callback = true;
	}
}

/* A table of the transaction's ids, in TopTransactionContext. */
static HTAB *
ids_table(const char *name)
{
	HASHCTL		ctl;

	ids_register_callback();
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = CLOSE_CREATED_ID_MAX;
	ctl.entrysize = sizeof(CloseIdEntry);
	ctl.hcxt = TopTransactionContext;
	return hash_create(name, 64, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* A scan begins: keep created ids until it ends. */
void
close_track_created(void)
{
	ids_register_callback();
	created_scans++;
}

/* A scan ends: with no scan open, nobody needs the ids kept. */
void
close_untrack_created(void)
{
	if (created_scans > 0 && --created_scans == 0 && created_ids != NULL)
	{
		hash_destroy(created_ids);
		created_ids = NULL;
	}
}

/* modify.c: Close answered a POST with this new object's id. */
void
close_note_created(const char *id)
{
	CloseIdEntry *entry;
	bool		found;

	/* (an id longer than the key, which Close's are not, is cut to it) */
	if (created_scans == 0 || id == NULL)
		return;
	if (created_ids == NULL)
		created_ids = ids_table("close_fdw created ids");
	entry = hash_search(created_ids, id, HASH_ENTER, &found);

	/*
	 * Marked as used, so that the next statement gets a later command id
	 * even when a command run inside this one (a function's ALTER, say)
	 * moved the counter on without using it: the next statement must read
	 * the object, only this one and those it runs must not.
	 */
	if (!found)
		entry->cid = GetCurrentCommandId(true);
}

/*
 * Did a command of this transaction at or after cid (the reading
 * statement's own, or one it ran) create the object with this id?
 */
bool
close_created_since(const char *id, CommandId cid)
{
	CloseIdEntry *entry;

	if (created_ids == NULL || id == NULL)
		return false;
	entry = hash_search(created_ids, id, HASH_FIND, NULL);
	return entry != NULL && entry->cid >= cid;
}

/*
 * ---- objects this transaction deleted ----
 *
 * Close's reads lag its deletes: a GET by id right after a DELETE may
 * answer the record (a stale copy), and its lists and searches keep a
 * deleted record for 30 to 60 s (close-crm-api.md).  The rest of the
 * transaction must not read back what it deleted, as PostgreSQL's own
 * tables do not: the scans of a later command skip a record the
 * transaction deleted (or found gone), and a record whose lead_id (when
 * the record shows it) names a lead it deleted, since Close deletes a
 * lead's contacts, opportunities and custom objects with it.  Kept until the transaction ends
 * (TopTransactionContext), at most CLOSE_DELETED_MAX ids (about 3 MB; past
 * that, the later deletes are not remembered).
 */
#define CLOSE_DELETED_MAX		20000

/* modify.c: Close answered a DELETE of this id (or found it gone). */
void
close_note_deleted(const char *id)
{
	CloseIdEntry *entry;
	bool		found;

	if (id == NULL || strlen(id) >= CLOSE_CREATED_ID_MAX)
		return;
	if (deleted_ids == NULL)
		deleted_ids = ids_table("close_fdw deleted ids");
	if (hash_get_num_entries(deleted_ids) >= CLOSE_DELETED_MAX)
		return;
	entry = hash_search(deleted_ids, id, HASH_ENTER, &found);
	if (!found)
		entry->cid = GetCurrentCommandId(false);
	if (strncmp(id, CLOSE_PREFIX_LEAD, strlen(CLOSE_PREFIX_LEAD)) == 0)
		deleted_lead = true;
}

/* Whether this transaction deleted a lead. */
bool
close_deleted_lead_in_xact(void)
{
	return deleted_lead;
}

/*
 * Did a command of this transaction before cid (the reading statement's)
 * delete the record of this id?  Not one at or after it: a cursor opened
 * before the DELETE, or another part of the DELETE's own statement (a
 * CTE), reads with a snapshot taken before it, as for a local table.
 */
bool
close_deleted_in_xact(const char *id, CommandId cid)
{
	CloseIdEntry *entry;

	if (deleted_ids == NULL || id == NULL ||
		strlen(id) >= CLOSE_CREATED_ID_MAX)
		return false;
	entry = hash_search(deleted_ids, id, HASH_FIND, NULL);
	return entry != NULL && entry->cid < cid;
}
