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
