/*-------------------------------------------------------------------------
 *
 * shared.c
 *		  Shared state in one place: the pacing by Close's RateLimit per
 *		  (credential, endpoint group) and the request statistics per
 *		  (server, endpoint group).  When close_fdw is in
 *		  shared_preload_libraries they live in shared memory, so that every
 *		  backend using one API key draws from one budget and the statistics
 *		  add up across backends; without preload, on PostgreSQL 17 and
 *		  later, the same state lives in a named DSM segment that each
 *		  backend attaches when it first needs a session; otherwise in this
 *		  backend's memory.  The rest of the code calls the functions here
 *		  and does not care which.
 *
 * The pacing hands out "tickets": each request takes one before it is sent.
 * What an answer's RateLimit says remains is taken less every other request
 * Close may have counted after it: those that were out when its ticket was
 * handed out and those handed out since.  Concurrent requests reach Close
 * in any order, and their answers are learnt in any order: a later ticket's
 * answer may have been counted before an earlier one's that was learnt
 * first, so neither "later" nor "still in flight" alone is enough (those
 * counted already are counted twice, which only errs on the safe side).
 * The answer to a later ticket than the last one taken replaces the
 * estimate (it may also raise it: a reset freed some); the answer to an
 * earlier one only lowers it, and its reset, when nothing remains, only
 * puts the wait off.  When nothing remains, requests wait for the
 * reset; after it, one request goes alone and the others wait for its
 * answer, which tells how many the reset freed.  A budget not known yet
 * (no answer so far) is not paced: the first answers tell it.
 *
 * The credential is never stored: the key is a 64-bit hash of the
 * Authorization header and the API URL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "close_fdw.h"
#include "compat.h"

/* Budgets (key, endpoint group) and statistics rows (server, group) kept. */
#define CLOSE_SHARED_PACERS		256
#define CLOSE_SHARED_STATS		1024

/* A RateLimit reset beyond this is not believed (nor waited for longer). */
#define CLOSE_MAX_RESET_MS		600000
/* Waited beyond a RateLimit reset: a reset given to the millisecond may
 * have been rounded down, and a request sent a moment early gets a 429. */
#define CLOSE_RESET_MARGIN_MS	5
/* How long the others wait for the answer of the one request sent after a
 * reset before another goes, and how often they look meanwhile. */
#define CLOSE_HOLD_MS			1000
#define CLOSE_HOLD_POLL_MS		5
/* Requests in flight are forgotten after this long without any activity
 * (one lost without an answer, e.g. by a crash, must not shrink the budget
 * for ever). */
#define CLOSE_IDLE_MS			60000

typedef struct PaceSlot
{
	uint64		key;			/* hash of credential and URL; 0: free */
	char		group[CLOSE_GROUP_SIZE];
	bool		known;			/* a RateLimit (or a 429) has been taken */
	bool		holding;		/* a request went alone: wait for it */
	int			limit;			/* -1 if not told */
	int			remaining;		/* estimated; below 0 when overdrawn */
	int			in_flight;		/* tickets handed out, not yet answered */
	TimestampTz reset_at;
	uint64		next_ticket;
	uint64		taken_ticket;	/* the ticket whose answer was taken */
	uint64		alone_ticket;	/* the ticket of the request that went alone */
	TimestampTz last_used;
} PaceSlot;

typedef struct StatsSlot
{
	Oid			dbid;
	Oid			serverid;		/* InvalidOid: free */
	char		group[CLOSE_GROUP_SIZE];
	CloseStatsDelta counts;
	TimestampTz since;
	TimestampTz last_used;
} StatsSlot;

typedef struct CloseSharedState
{
	/*
	 * Preloaded: the lock of the named tranche, at the same address in every
	 * backend.  NULL in a DSM segment (its lock is in CloseDsmState, mapped
	 * anywhere) and in a backend's own copy.
	 */
	LWLock	   *lock;
	PaceSlot	pacers[CLOSE_SHARED_PACERS];
	StatsSlot	stats[CLOSE_SHARED_STATS];

	/*
	 * Writes through close_fdw by any backend: without a shared answer cache
	 * (not preloaded, a DSM segment), each backend drops its own cache when
	 * this moved.
	 */
	uint64		cache_writes;
} CloseSharedState;

/* The named DSM segment (17+, not preloaded): the state and its lock. */
typedef struct CloseDsmState
{
	LWLock		lock;
	CloseSharedState state;
} CloseDsmState;

/*
 * The state in shared memory (preloaded or a DSM segment) and the lock that
 * guards it in this backend, and this backend's own.
 */
static CloseSharedState *SharedState = NULL;
static LWLock *SharedLock = NULL;
static CloseSharedState *LocalState = NULL;

/* Where the state lives: close_fdw.shared_state. */
static char *close_shared_state = NULL;
static bool shared_in_dsm = false;

static void (*prev_shmem_request) (void) = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* close_fdw.shared_pacing: whether this session paces with the others */
static bool close_shared_pacing = true;

PG_FUNCTION_INFO_V1(close_fdw_stats_rows);
PG_FUNCTION_INFO_V1(close_fdw_stats_reset);

static void
shared_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(CloseSharedState)));
	RequestNamedLWLockTranche("close_fdw", 1);
}

static void
shared_startup(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	SharedState = ShmemInitStruct("close_fdw", sizeof(CloseSharedState), &found);
	if (!found)
	{
		memset(SharedState, 0, sizeof(CloseSharedState));
		SharedState->lock = &(GetNamedLWLockTranche("close_fdw"))->lock;
	}
	SharedLock = SharedState->lock;
	LWLockRelease(AddinShmemInitLock);
}

/* The first backend to ask makes the DSM segment: a fresh state and lock. */
static void
dsm_init(void *ptr)
{
	CloseDsmState *dsm = (CloseDsmState *) ptr;

	memset(dsm, 0, sizeof(CloseDsmState));
	LWLockInitialize(&dsm->lock, LWLockNewTrancheId());
}

/*
 * From _PG_init: the settings, and shared memory when preloaded.  Without
 * preload, on 17 and later, the DSM segment is attached later, by
 * close_shared_attach: not here, where an error would leave the library
 * loaded half initialized.
 */
void
close_shared_init(void)
{
	const char *where;

	if (process_shared_preload_libraries_in_progress)
		where = "preloaded";
	else if (close_named_dsm_available())
		where = "dsm";
	else
		where = "backend";
	shared_in_dsm = strcmp(where, "dsm") == 0;
	DefineCustomBoolVariable("close_fdw.shared_pacing",
							 "Paces this session's Close API requests together with the other sessions'.",
							 "Takes effect when the state is shared (see close_fdw.shared_state); off, the session paces itself alone.",
							 &close_shared_pacing, true, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("close_fdw.shared_state",
							   "Shows where the pacing and statistics shared by all sessions live.",
							   "preloaded: shared memory (shared_preload_libraries); dsm: a dynamic shared memory segment (PostgreSQL 17 and later); backend: each backend's own memory.",
							   &close_shared_state, where, PGC_INTERNAL,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	close_request_shmem(shared_request, &prev_shmem_request);
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = shared_startup;
}

/*
 * Without preload, on 17 and later: attach the named DSM segment (making
 * it if no backend has yet), before this backend paces or counts anything.
 * Called where an error may be thrown (a session is about to be used, the
 * statistics are read or reset); cheap once attached.  The name carries the
 * size of the state: a build whose state has another size (an upgrade
 * installed while the server runs) makes a segment of its own, where
 * GetNamedDSMSegment would refuse the old name for the size differing.
 */
void
close_shared_attach(void)
{
	CloseDsmState *dsm;
	char		name[64];

	if (SharedState != NULL || !shared_in_dsm)
		return;
	snprintf(name, sizeof(name), "close_fdw %zu", sizeof(CloseDsmState));
	dsm = close_get_named_dsm(name, sizeof(CloseDsmState), dsm_init);
	if (dsm == NULL)
		elog(ERROR, "close_fdw: no dynamic shared memory segment");
	LWLockRegisterTranche(dsm->lock.tranche, "close_fdw");
	SharedLock = &dsm->lock;
	SharedState = &dsm->state;
}

/* Whether the state is in shared memory. */
bool
close_shared_active(void)
{
	return SharedState != NULL;
}

/* The state to use, locked when shared; release with unlock_state. */
static CloseSharedState *
lock_state(bool pacing)
{
	if (SharedState && (close_shared_pacing || !pacing))
	{
		LWLockAcquire(SharedLock, LW_EXCLUSIVE);
		return SharedState;
	}
	if (LocalState == NULL)
		LocalState = MemoryContextAllocZero(TopMemoryContext,
											sizeof(CloseSharedState));
	return LocalState;
}

static void
unlock_state(CloseSharedState *state)
{
	if (state == SharedState)
		LWLockRelease(SharedLock);
}

/*
 * The pacing key of a session: a hash of its Authorization header and its
 * API URL (one key against two hosts is two budgets); never 0.
 */
static uint64
credential_key(CloseConnection *conn)
{
	struct curl_slist *h;
	uint64		key = hash_bytes_extended((const unsigned char *) conn->server.api_url,
										  strlen(conn->server.api_url), 0x436c6f7365ULL);

	for (h = conn->headers; h; h = h->next)
		if (pg_strncasecmp(h->data, "Authorization:", 14) == 0)
			key = hash_bytes_extended((const unsigned char *) h->data,
									  strlen(h->data), key);
	return key ? key : 1;
}

/* The slot of (key, group), taking the least recently used if new. */
static PaceSlot *
find_pace_slot(CloseSharedState *state, uint64 key, const char *group)
{
	PaceSlot   *oldest = &state->pacers[0];
	PaceSlot   *slot;
	int			i;

	for (i = 0; i < CLOSE_SHARED_PACERS; i++)
	{
		slot = &state->pacers[i];
		if (slot->key == key && strcmp(slot->group, group) == 0)
			return slot;
		if (oldest->key != 0 &&
			(slot->key == 0 || slot->last_used < oldest->last_used))
			oldest = slot;
	}
	slot = oldest;
	memset(slot, 0, sizeof(PaceSlot));
	slot->key = key;
	strlcpy(slot->group, group, sizeof(slot->group));
	slot->limit = -1;
	slot->next_ticket = 1;
	return slot;
}

/*
 * How many of wanted requests may go now (their tickets are *ticket on),
 * or 0 and how long to wait before asking again.
 */
static int
pace_take(PaceSlot *slot, int wanted, TimestampTz now, ClosePaceTicket *ticket,
		  double *wait)
{
	int			granted;

	*wait = 0;
	if (slot->in_flight > 0 &&
		now > TimestampTzPlusMilliseconds(slot->last_used, CLOSE_IDLE_MS))
		slot->in_flight = 0;
	if (!slot->known)
		granted = wanted;
	else if (slot->known && slot->remaining > 0)
	{
		granted = Min(wanted, slot->remaining);
		slot->remaining -= granted;
	}
	else if (now >= slot->reset_at)
	{
		/* one goes alone; its answer says what the reset freed */
		granted = 1;
		slot->holding = true;
		slot->alone_ticket = slot->next_ticket;
		slot->remaining = 0;
		slot->reset_at = TimestampTzPlusMilliseconds(now, CLOSE_HOLD_MS);
	}
	else
	{
		*wait = (double) TimestampDifferenceMilliseconds(now, slot->reset_at);
		if (slot->holding)
			*wait = Min(*wait, CLOSE_HOLD_POLL_MS);
		*wait = Max(*wait, 1);
		return 0;
	}
	ticket->number = slot->next_ticket;
	ticket->ahead = slot->in_flight;
	slot->next_ticket += granted;
	slot->in_flight += granted;
	slot->last_used = now;
	return granted;
}

/*
 * Take up to wanted requests of the budget of the session's key and
 * endpoint group: returns how many may be sent now, their tickets from
 * *ticket on; or 0 and, in *wait_ms, how long to wait before asking again.
 */
int
close_pace_take(CloseConnection *conn, const char *group, int wanted,
				ClosePaceTicket *ticket, double *wait_ms)
{
	uint64		key = credential_key(conn);
	CloseSharedState *state = lock_state(true);
	int			granted;

	granted = pace_take(find_pace_slot(state, key, group), Max(wanted, 1),
						GetCurrentTimestamp(), ticket, wait_ms);
	unlock_state(state);
	return granted;
}

/*
 * Learn from the answer to the request of ticket: what its RateLimit said
 * (told), and, refused_ms >= 0 for a 429, that nothing may go for that long.
 */
void
close_pace_learn(CloseConnection *conn, const char *group,
				 ClosePaceTicket ticket, bool told, int limit, int remaining,
				 double reset_s, double refused_ms)
{
	uint64		key = credential_key(conn);
	CloseSharedState *state = lock_state(true);
	PaceSlot   *slot = find_pace_slot(state, key, group);
	TimestampTz now = GetCurrentTimestamp();

	if (ticket.number < slot->next_ticket && slot->in_flight > 0)
		slot->in_flight--;
	if (told && ticket.number < slot->next_ticket)
	{
		double		reset_ms = Min(reset_s * 1000.0, CLOSE_MAX_RESET_MS);
		TimestampTz reset_at = TimestampTzPlusMilliseconds(now, (int64) reset_ms +
														   CLOSE_RESET_MARGIN_MS);
		/* out when it went, and handed out since: Close may count them after */
		int64		others = (int64) Max(ticket.ahead, 0) +
			(int64) (slot->next_ticket - 1 - ticket.number);
		int			left = (int) Max((int64) remaining - others, -100000);

		if (ticket.number > slot->taken_ticket)
		{
			slot->taken_ticket = ticket.number;
			slot->known = true;
			slot->limit = limit;
			slot->remaining = left;
			if (slot->holding && ticket.number < slot->alone_ticket)
			{
				/* sent before the one that went alone: still wait for it */
				if (slot->reset_at < reset_at)
					slot->reset_at = reset_at;
			}
			else
			{
				slot->reset_at = reset_at;
				slot->holding = false;
			}
		}
		else if (slot->known && (left < slot->remaining || left <= 0))
		{
			/* an earlier ticket's answer, which Close counted later */
			slot->remaining = Min(slot->remaining, left);
			if (slot->remaining <= 0 && slot->reset_at < reset_at)
				slot->reset_at = reset_at;
		}
	}
	else if (!told && slot->holding && ticket.number == slot->alone_ticket)
	{
		/* no RateLimit on its answer: no need to wait longer for it */
		slot->holding = false;
		slot->reset_at = now;
		/* and a server that never sent one (only a 429) is not paced */
		if (slot->taken_ticket == 0 && refused_ms < 0)
			slot->known = false;
	}
	if (refused_ms >= 0)
	{
		TimestampTz until = TimestampTzPlusMilliseconds(now,
														(int64) Min(refused_ms, CLOSE_MAX_RESET_MS));

		slot->known = true;
		slot->remaining = Min(slot->remaining, 0);
		if (slot->reset_at < until)
			slot->reset_at = until;
		if (ticket.number == slot->alone_ticket)
			slot->holding = false;
	}
	slot->last_used = now;
	unlock_state(state);
}

/*
 * The key of the session's budgets, for close_pace_release (which must not
 * need the session: it may be gone when the requests are given up).
 */
uint64
close_pace_key(CloseConnection *conn)
{
	return credential_key(conn);
}

/*
 * n requests of key and group, of the tickets numbered first on, will get no
 * answer (not sent, or given up on an error): they are no longer in flight.
 */
void
close_pace_release(uint64 key, const char *group, uint64 first, int n)
{
	CloseSharedState *state;
	PaceSlot   *slot;

	if (n <= 0)
		return;
	state = lock_state(true);
	slot = find_pace_slot(state, key, group);
	slot->in_flight = Max(slot->in_flight - n, 0);
	/*
	 * The request that went alone may be one of them: do not wait for it
	 * (but for another backend's, still out, the others do wait).
	 */
	if (slot->holding && slot->alone_ticket >= first &&
		slot->alone_ticket - first < (uint64) n)
	{
		slot->holding = false;
		slot->reset_at = Min(slot->reset_at, GetCurrentTimestamp());
	}
	unlock_state(state);
}

/*
 * Add to the statistics of the session's server and an endpoint group:
 * across backends when shared, else this backend's.
 */
void
close_stats_add(CloseConnection *conn, const char *group,
				const CloseStatsDelta *delta)
{
	CloseSharedState *state = lock_state(false);
	StatsSlot  *oldest = &state->stats[0];
	StatsSlot  *slot = NULL;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < CLOSE_SHARED_STATS; i++)
	{
		StatsSlot  *s = &state->stats[i];

		if (s->serverid == conn->serverid && s->dbid == MyDatabaseId &&
			strcmp(s->group, group) == 0)
		{
			slot = s;
			break;
		}
		if (oldest->serverid != InvalidOid &&
			(s->serverid == InvalidOid || s->last_used < oldest->last_used))
			oldest = s;
	}
	if (slot == NULL)
	{
		/* a new row; when all are taken, the one idle longest goes */
		slot = oldest;
		memset(slot, 0, sizeof(StatsSlot));
		slot->dbid = MyDatabaseId;
		slot->serverid = conn->serverid;
		strlcpy(slot->group, group, sizeof(slot->group));
		slot->since = now;
	}
	slot->counts.requests += delta->requests;
	slot->counts.retries += delta->retries;
	slot->counts.refused += delta->refused;
	slot->counts.server_errors += delta->server_errors;
	slot->counts.waits += delta->waits;
	slot->counts.wait_ms += delta->wait_ms;
	slot->counts.bytes += delta->bytes;
	slot->counts.cache_hits += delta->cache_hits;
	slot->last_used = now;
	unlock_state(state);
}

/*
 * close_fdw_stats_rows(): the statistics rows of this database's servers
 * that still exist, copied out under the lock.
 */
Datum
close_fdw_stats_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	Tuplestorestate *store;
	MemoryContext oldcxt;
	CloseSharedState *state;
	StatsSlot  *rows;
	int			nrows = 0;
	int			i;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	close_shared_attach();
	rows = palloc(sizeof(StatsSlot) * CLOSE_SHARED_STATS);
	state = lock_state(false);
	for (i = 0; i < CLOSE_SHARED_STATS; i++)
		if (state->stats[i].serverid != InvalidOid &&
			state->stats[i].dbid == MyDatabaseId)
			rows[nrows++] = state->stats[i];
	unlock_state(state);

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	desc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);

	for (i = 0; i < nrows; i++)
	{
		StatsSlot  *s = &rows[i];
		ForeignServer *server = GetForeignServerExtended(s->serverid,
														 FSV_MISSING_OK);
		Datum		values[11];
		bool		nulls[11] = {0};

		if (server == NULL)
			continue;
		values[0] = CStringGetTextDatum(server->servername);
		values[1] = CStringGetTextDatum(s->group);
		values[2] = Int64GetDatum(s->counts.requests);
		values[3] = Int64GetDatum(s->counts.retries);
		values[4] = Int64GetDatum(s->counts.refused);
		values[5] = Int64GetDatum(s->counts.server_errors);
		values[6] = Int64GetDatum(s->counts.waits);
		values[7] = Float8GetDatum(s->counts.wait_ms);
		values[8] = Int64GetDatum(s->counts.bytes);
		values[9] = Int64GetDatum(s->counts.cache_hits);
		values[10] = TimestampTzGetDatum(s->since);
		tuplestore_putvalues(store, desc, values, nulls);
	}

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = desc;
	return (Datum) 0;
}

/* close_fdw_stats_reset(): forget this database's statistics. */
Datum
close_fdw_stats_reset(PG_FUNCTION_ARGS)
{
	CloseSharedState *state;
	int			i;

	close_shared_attach();
	state = lock_state(false);
	for (i = 0; i < CLOSE_SHARED_STATS; i++)
		if (state->stats[i].dbid == MyDatabaseId)
			memset(&state->stats[i], 0, sizeof(StatsSlot));
	unlock_state(state);
	PG_RETURN_VOID();
}

/*
 * ---- the answer cache ----
 *
 * Whole answers to read requests (answers.c decides which), kept for the
 * cache_ttl_ms of the table that reads them: in shared memory when
 * preloaded, else in this backend's memory, within close_fdw.cache_size_mb
 * either way.  The answers are stored in blocks of CACHE_BLOCK bytes,
 * chained; an entry holds its request's text (compared on a hit) and its
 * answer.  When the blocks run out, the least recently used entries go; an
 * answer that needs more blocks than there are is not kept.  An entry is
 * keyed by the database, the server, a hash of the credential (as the
 * pacing's, never the credential) and the request's text.
 *
 * A write through close_fdw changes what every server pointing at the same
 * Close says (another server, another key of the organisation, another
 * database): it drops the entries of every server with its API URL (its
 * "target") at once.  So that an answer read before the write and stored
 * after it is not kept, a reader notes the cache's generation when it
 * starts, and an answer is stored only if its target was not invalidated
 * since (each invalidation takes a new generation; the last one of each
 * recent target is kept, and of the targets forgotten, the newest; a
 * close_fdw_cache_clear counts for every target).
 */
#define CACHE_BLOCK			4096
#define CACHE_SERVERS		64

typedef struct CacheEntry
{
	bool		used;
	Oid			dbid;
	Oid			serverid;
	uint64		credential;
	uint64		target;			/* hash of the API URL (cache_target) */
	uint64		hash;			/* of all of the above and the request */
	TimestampTz stored_at;
	int32		status;
	uint32		request_len;	/* the request's text, then the answer */
	uint32		answer_len;
	int32		first_block;
	int32		nblocks;
	int32		chain;			/* next entry of its bucket, or -1 */
	int32		newer;			/* the LRU list, or -1 */
	int32		older;
} CacheEntry;

typedef struct CacheTarget
{
	uint64		target;			/* cache_target; 0: free */
	uint64		invalidated;	/* the generation of its last invalidation */
} CacheTarget;

typedef struct CloseCache
{
	LWLock	   *lock;			/* NULL in a backend's own cache */
	uint64		generation;
	uint64		forgotten;		/* newest invalidation of a target not in
								 * targets[] */
	uint64		cleared;		/* the last close_fdw_cache_clear */
	CacheTarget targets[CACHE_SERVERS];
	uint64		writes_seen;	/* a backend's own: cache_writes seen */
	int32		nblocks;		/* 0 until the storage is made (local) */
	int32		free_blocks;
	int32		free_block;		/* chained by block_next */
	int32		free_entry;		/* chained by chain */
	int32		newest;
	int32		oldest;
	int32	   *buckets;		/* nblocks of them */
	CacheEntry *entries;		/* nblocks: each entry takes a block at least */
	int32	   *block_next;
	char	   *blocks;
} CloseCache;

/* close_fdw.cache_size_mb */
static int	close_cache_size_mb = 16;
static CloseCache *SharedCache = NULL;
static CloseCache *LocalCache = NULL;

static int32
cache_nblocks(void)
{
	return (int32) (((Size) close_cache_size_mb * 1024 * 1024) / CACHE_BLOCK);
}

static Size
cache_storage_size(int32 nblocks)
{
	Size		size = 0;

	size = add_size(size, mul_size(nblocks, sizeof(int32)));	/* buckets */
	size = add_size(size, mul_size(nblocks, sizeof(CacheEntry)));
	size = add_size(size, mul_size(nblocks, sizeof(int32)));	/* block_next */
	size = MAXALIGN(size);
	size = add_size(size, mul_size(nblocks, CACHE_BLOCK));
	return size;
}

/* Lay the storage out at space and make every block and entry free. */
static void
cache_init_storage(CloseCache *c, char *space, int32 nblocks)
{
	int32		i;

	c->buckets = (int32 *) space;
	space += sizeof(int32) * nblocks;
	c->entries = (CacheEntry *) space;
	space += sizeof(CacheEntry) * nblocks;
	c->block_next = (int32 *) space;
	space += sizeof(int32) * nblocks;
	c->blocks = (char *) MAXALIGN(space);
	for (i = 0; i < nblocks; i++)
	{
		c->buckets[i] = -1;
		c->entries[i].used = false;
		c->entries[i].chain = i + 1 < nblocks ? i + 1 : -1;
		c->block_next[i] = i + 1 < nblocks ? i + 1 : -1;
	}
	c->free_entry = nblocks > 0 ? 0 : -1;
	c->free_block = nblocks > 0 ? 0 : -1;
	c->free_blocks = nblocks;
	c->newest = c->oldest = -1;
	c->nblocks = nblocks;
}

static Size
cache_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(CloseCache)),
					cache_storage_size(cache_nblocks()));
}

static void (*cache_prev_shmem_request) (void) = NULL;
static shmem_startup_hook_type cache_prev_shmem_startup = NULL;

PG_FUNCTION_INFO_V1(close_fdw_cache_clear);

/* The cache's share of shared memory (preloaded). */
static void
cache_request(void)
{
	if (cache_prev_shmem_request)
		cache_prev_shmem_request();
	RequestAddinShmemSpace(cache_shmem_size());
	RequestNamedLWLockTranche("close_fdw cache", 1);
}

static void
cache_startup(void)
{
	bool		found;

	if (cache_prev_shmem_startup)
		cache_prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	SharedCache = ShmemInitStruct("close_fdw cache", cache_shmem_size(), &found);
	if (!found)
	{
		memset(SharedCache, 0, sizeof(CloseCache));
		SharedCache->lock = &(GetNamedLWLockTranche("close_fdw cache"))->lock;
		cache_init_storage(SharedCache,
						   (char *) SharedCache + MAXALIGN(sizeof(CloseCache)),
						   cache_nblocks());
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * From _PG_init: the setting, and the cache's shared memory when preloaded.
 * Preloaded, the setting sizes shared memory, so it is read at server
 * start; otherwise (a variable of that context can only be made at start)
 * it is read from the configuration, and a backend's own cache is sized
 * when the backend first keeps an answer.
 */
void
close_cache_init(void)
{
	DefineCustomIntVariable("close_fdw.cache_size_mb",
							"Memory for the answers cached by tables with cache_ttl_ms.",
							"In shared memory when close_fdw is in shared_preload_libraries, else in each backend that uses the cache.",
							&close_cache_size_mb, 16, 1, 1024 * 1024,
							process_shared_preload_libraries_in_progress
							? PGC_POSTMASTER : PGC_SIGHUP,
							GUC_UNIT_MB, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	close_request_shmem(cache_request, &cache_prev_shmem_request);
	cache_prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = cache_startup;
}

static void cache_remove(CloseCache *c, int32 i);

/*
 * A backend's own cache next to a shared state (a DSM segment: 17 and later
 * without preload): when another backend wrote through close_fdw since it
 * last looked, every answer it holds goes, and answers read before are not
 * stored after.  Without a shared state, only this backend's writes are
 * known.
 */
static void
local_cache_sync(CloseCache *c)
{
	uint64		writes;
	int32		i;

	close_shared_attach();		/* (17+ without preload; else nothing) */
	if (SharedState == NULL)
		return;
	LWLockAcquire(SharedLock, LW_SHARED);
	writes = SharedState->cache_writes;
	LWLockRelease(SharedLock);
	if (writes == c->writes_seen)
		return;
	c->writes_seen = writes;
	c->cleared = ++c->generation;
	for (i = 0; i < c->nblocks; i++)
		if (c->entries[i].used)
			cache_remove(c, i);
}

/* A write through close_fdw, told to the backends' own caches. */
static void
shared_cache_written(void)
{
	if (SharedState == NULL || SharedCache != NULL)
		return;
	LWLockAcquire(SharedLock, LW_EXCLUSIVE);
	SharedState->cache_writes++;
	LWLockRelease(SharedLock);
}

/*
 * The cache, locked when shared; with storage only when make_storage (a
 * backend's own is made on its first answer to keep).
 */
static CloseCache *
lock_cache(bool make_storage)
{
	if (SharedCache)
	{
		LWLockAcquire(SharedCache->lock, LW_EXCLUSIVE);
		return SharedCache;
	}
	if (LocalCache == NULL)
		LocalCache = MemoryContextAllocZero(TopMemoryContext, sizeof(CloseCache));
	local_cache_sync(LocalCache);
	if (make_storage && LocalCache->nblocks == 0)
	{
		int32		nblocks = cache_nblocks();

		cache_init_storage(LocalCache,
						   MemoryContextAllocExtended(TopMemoryContext,
													  cache_storage_size(nblocks),
													  MCXT_ALLOC_HUGE),
						   nblocks);
	}
	return LocalCache;
}

static void
unlock_cache(CloseCache *c)
{
	if (c->lock)
		LWLockRelease(c->lock);
}

static uint64
cache_hash(Oid serverid, uint64 credential, const char *request, size_t len)
{
	uint64		seed = credential ^ ((uint64) MyDatabaseId << 32) ^ serverid;

	return hash_bytes_extended((const unsigned char *) request, len, seed);
}

/*
 * The Close an API URL names: a hash of it, in lower case and without
 * trailing slashes (two spellings of one URL must not keep apart what a
 * write through either changes).  Never 0.
 */
uint64
close_api_target(const char *url)
{
	size_t		len = strlen(url);
	char	   *lower;
	char	   *p;
	uint64		target;

	while (len > 0 && url[len - 1] == '/')
		len--;
	lower = pnstrdup(url, len);
	for (p = lower; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	target = hash_bytes_extended((const unsigned char *) lower, len,
								 0x746172676574ULL);
	pfree(lower);
	return target ? target : 1;
}

/* The Close a session's requests go to. */
static uint64
cache_target(CloseConnection *conn)
{
	return close_api_target(conn->server.api_url);
}

/* Copy len bytes at offset of entry's data (request, then answer) to out. */
static void
cache_copy_out(CloseCache *c, CacheEntry *e, size_t offset, char *out,
			   size_t len)
{
	int32		b = e->first_block;

	while (offset >= CACHE_BLOCK)
	{
		b = c->block_next[b];
		offset -= CACHE_BLOCK;
	}
	while (len > 0)
	{
		size_t		n = Min(len, CACHE_BLOCK - offset);

		memcpy(out, c->blocks + (Size) b * CACHE_BLOCK + offset, n);
		out += n;
		len -= n;
		offset = 0;
		b = c->block_next[b];
	}
}

/* Whether entry's request is request (its hash matched). */
static bool
cache_same_request(CloseCache *c, CacheEntry *e, const char *request,
				   size_t len)
{
	int32		b = e->first_block;
	size_t		offset = 0;

	if (e->request_len != len)
		return false;
	while (offset < len)
	{
		size_t		n = Min(len - offset, CACHE_BLOCK);

		if (memcmp(c->blocks + (Size) b * CACHE_BLOCK, request + offset, n) != 0)
			return false;
		offset += n;
		b = c->block_next[b];
	}
	return true;
}

static void
cache_lru_unlink(CloseCache *c, int32 i)
{
	CacheEntry *e = &c->entries[i];

	if (e->newer >= 0)
		c->entries[e->newer].older = e->older;
	else
		c->newest = e->older;
	if (e->older >= 0)
		c->entries[e->older].newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = -1;
}

static void
cache_lru_push(CloseCache *c, int32 i)
{
	CacheEntry *e = &c->entries[i];

	e->newer = -1;
	e->older = c->newest;
	if (c->newest >= 0)
		c->entries[c->newest].newer = i;
	c->newest = i;
	if (c->oldest < 0)
		c->oldest = i;
}

/* Drop entry i: its blocks and itself become free. */
static void
cache_remove(CloseCache *c, int32 i)
{
	CacheEntry *e = &c->entries[i];
	int32	   *link = &c->buckets[e->hash % (uint64) c->nblocks];
	int32		b;

	while (*link != i)
		link = &c->entries[*link].chain;
	*link = e->chain;
	cache_lru_unlink(c, i);
	/* the chain of blocks goes to the front of the free list */
	b = e->first_block;
	while (c->block_next[b] >= 0)
		b = c->block_next[b];
	c->block_next[b] = c->free_block;
	c->free_block = e->first_block;
	c->free_blocks += e->nblocks;
	e->used = false;
	e->chain = c->free_entry;
	c->free_entry = i;
}

static int32
cache_find(CloseCache *c, uint64 credential, Oid serverid, uint64 hash,
		   const char *request, size_t len)
{
	int32		i;

	if (c->nblocks == 0)
		return -1;
	for (i = c->buckets[hash % (uint64) c->nblocks]; i >= 0; i = c->entries[i].chain)
	{
		CacheEntry *e = &c->entries[i];

		if (e->hash == hash && e->credential == credential &&
			e->serverid == serverid && e->dbid == MyDatabaseId &&
			cache_same_request(c, e, request, len))
			return i;
	}
	return -1;
}

/* The generation to give close_cache_put: note it before reading. */
uint64
close_cache_generation(void)
{
	CloseCache *c = lock_cache(false);
	uint64		g = c->generation;

	unlock_cache(c);
	return g;
}

/* The bytes one answer (with its request's text) may take at most. */
Size
close_cache_capacity(void)
{
	return (Size) cache_nblocks() * CACHE_BLOCK;
}

/*
 * The cached answer to request (its text: method, path, body) of the
 * session's server and credential, if one was stored less than ttl_ms ago:
 * its status and its body (NUL-terminated, in cxt).  An older one is
 * dropped.
 */
bool
close_cache_get(CloseConnection *conn, const char *request, int ttl_ms,
				MemoryContext cxt, int *status, char **answer, size_t *len)
{
	uint64		credential = credential_key(conn);
	size_t		rlen = strlen(request);
	uint64		hash = cache_hash(conn->serverid, credential, request, rlen);
	CloseCache *c = lock_cache(false);
	int32		i = cache_find(c, credential, conn->serverid, hash, request, rlen);
	CacheEntry *e;

	if (i < 0)
	{
		unlock_cache(c);
		return false;
	}
	e = &c->entries[i];
	if (GetCurrentTimestamp() >= TimestampTzPlusMilliseconds(e->stored_at, ttl_ms))
	{
		cache_remove(c, i);
		unlock_cache(c);
		return false;
	}
	cache_lru_unlink(c, i);
	cache_lru_push(c, i);
	*status = e->status;
	*len = e->answer_len;
	*answer = MemoryContextAllocExtended(cxt, (Size) e->answer_len + 1,
										 MCXT_ALLOC_HUGE);
	cache_copy_out(c, e, e->request_len, *answer, e->answer_len);
	(*answer)[e->answer_len] = '\0';
	unlock_cache(c);
	return true;
}

/* Whether close_cache_get would find an answer to request (no copy). */
bool
close_cache_has(CloseConnection *conn, const char *request, int ttl_ms)
{
	uint64		credential = credential_key(conn);
	size_t		rlen = strlen(request);
	uint64		hash = cache_hash(conn->serverid, credential, request, rlen);
	CloseCache *c = lock_cache(false);
	int32		i = cache_find(c, credential, conn->serverid, hash, request, rlen);
	bool		found;

	found = i >= 0 &&
		GetCurrentTimestamp() < TimestampTzPlusMilliseconds(c->entries[i].stored_at,
															ttl_ms);
	unlock_cache(c);
	return found;
}

/* The generation of the target's last invalidation (at most). */
static uint64
cache_invalidated(CloseCache *c, uint64 target)
{
	int			i;

	for (i = 0; i < CACHE_SERVERS; i++)
		if (c->targets[i].target == target)
			return Max(c->targets[i].invalidated, c->cleared);
	return Max(c->forgotten, c->cleared);
}

/*
 * Keep the answer to request, read by a reader that began at generation
 * since (close_cache_generation), unless the server was invalidated since
 * then or the answer cannot fit; it replaces the one kept before.  Its age
 * counts from read_at, when its first request went (0: now).
 */
void
close_cache_put(CloseConnection *conn, const char *request, uint64 since,
				TimestampTz read_at, int status, const char *answer,
				size_t len)
{
	uint64		credential = credential_key(conn);
	size_t		rlen = strlen(request);
	uint64		hash = cache_hash(conn->serverid, credential, request, rlen);
	uint64		target = cache_target(conn);
	int32		need = (int32) ((rlen + len + CACHE_BLOCK - 1) / CACHE_BLOCK);
	CloseCache *c;
	CacheEntry *e;
	int32		i;
	int32		b;
	int32		last = -1;
	size_t		done;

	if (rlen + len > close_cache_capacity() || rlen + len > (size_t) PG_INT32_MAX)
		return;
	need = Max(need, 1);
	c = lock_cache(true);
	if (cache_invalidated(c, target) > since)
	{
		unlock_cache(c);
		return;
	}
	if ((i = cache_find(c, credential, conn->serverid, hash, request, rlen)) >= 0)
		cache_remove(c, i);
	/*
	 * The least recently used go until it fits (a backend's own cache may
	 * have been made smaller than the setting is now).
	 */
	if (need > c->nblocks)
	{
		unlock_cache(c);
		return;
	}
	while ((c->free_blocks < need || c->free_entry < 0) && c->oldest >= 0)
		cache_remove(c, c->oldest);
	Assert(c->free_blocks >= need && c->free_entry >= 0);

	i = c->free_entry;
	e = &c->entries[i];
	c->free_entry = e->chain;
	e->used = true;
	e->dbid = MyDatabaseId;
	e->serverid = conn->serverid;
	e->credential = credential;
	e->target = target;
	e->hash = hash;
	e->stored_at = read_at != 0 ? Min(read_at, GetCurrentTimestamp())
		: GetCurrentTimestamp();
	e->status = status;
	e->request_len = (uint32) rlen;
	e->answer_len = (uint32) len;
	e->nblocks = need;
	e->first_block = c->free_block;
	for (b = 0; b < need; b++)
	{
		last = c->free_block;
		c->free_block = c->block_next[last];
	}
	c->block_next[last] = -1;
	c->free_blocks -= need;

	/* the request's text, then the answer, across the blocks */
	b = e->first_block;
	done = 0;
	while (done < rlen + len)
	{
		size_t		n = Min(rlen + len - done, CACHE_BLOCK);
		char	   *to = c->blocks + (Size) b * CACHE_BLOCK;

		if (done < rlen)
		{
			size_t		part = Min(n, rlen - done);

			memcpy(to, request + done, part);
			if (n > part)
				memcpy(to + part, answer, n - part);
		}
		else
			memcpy(to, answer + (done - rlen), n);
		done += n;
		b = c->block_next[b];
	}

	e->chain = c->buckets[hash % (uint64) c->nblocks];
	c->buckets[hash % (uint64) c->nblocks] = i;
	cache_lru_push(c, i);
	unlock_cache(c);
}

/*
 * Drop the cached answers of this database's server (every server's of the
 * database when serverid is InvalidOid): close_fdw_cache_clear.  So that
 * answers read before are not stored after, it counts as an invalidation
 * of every target.  Returns how many were dropped.
 */
static int64
cache_drop(CloseCache *c, Oid serverid)
{
	int64		dropped = 0;
	int			i;

	c->cleared = ++c->generation;
	for (i = 0; i < c->nblocks; i++)
	{
		CacheEntry *e = &c->entries[i];

		if (e->used && e->dbid == MyDatabaseId &&
			(serverid == InvalidOid || e->serverid == serverid))
		{
			cache_remove(c, i);
			dropped++;
		}
	}
	return dropped;
}

/*
 * A write through close_fdw to the session's Close: the cached answers of
 * every server pointing at it (any database, any credential) go, and the
 * target is marked invalidated, so that answers read before are not stored
 * after.
 */
void
close_cache_invalidate(CloseConnection *conn)
{
	uint64		target = cache_target(conn);
	CloseCache *c;
	int			slot = -1;
	int			i;

	/* the other backends' own caches (before this one looks again) */
	shared_cache_written();
	c = lock_cache(false);
	c->generation++;
	for (i = 0; i < CACHE_SERVERS; i++)
	{
		CacheTarget *t = &c->targets[i];

		if (t->target == target)
		{
			slot = i;
			break;
		}
		/* else a free slot, or the one invalidated longest ago */
		if (slot < 0 || t->target == 0 ||
			(c->targets[slot].target != 0 &&
			 t->invalidated < c->targets[slot].invalidated))
			slot = i;
	}
	if (c->targets[slot].target != 0 && c->targets[slot].target != target)
		c->forgotten = Max(c->forgotten, c->targets[slot].invalidated);
	c->targets[slot].target = target;
	c->targets[slot].invalidated = c->generation;
	for (i = 0; i < c->nblocks; i++)
	{
		CacheEntry *e = &c->entries[i];

		if (e->used && e->target == target)
			cache_remove(c, i);
	}
	unlock_cache(c);
}

/*
 * close_fdw_cache_clear(server name DEFAULT NULL): drop the cached answers
 * of the server, or of every server of this database; returns how many.
 */
Datum
close_fdw_cache_clear(PG_FUNCTION_ARGS)
{
	Oid			serverid = InvalidOid;
	CloseCache *c;
	int64		dropped;

	if (!PG_ARGISNULL(0))
		serverid = GetForeignServerByName(NameStr(*PG_GETARG_NAME(0)),
										  false)->serverid;
	c = lock_cache(false);
	dropped = cache_drop(c, serverid);
	unlock_cache(c);
	PG_RETURN_INT64(dropped);
}
