/*-------------------------------------------------------------------------
 *
 * modify.c
 *		  INSERT, UPDATE and DELETE as POST, PUT and DELETE requests, with
 *		  RETURNING filled from what Close answers, and the write log that
 *		  tells a user what was written to Close when a statement or a
 *		  transaction fails (the API cannot roll anything back).
 *
 * What a statement may write is settled before any request, from the
 * table's resource (resource.c): columns that map to read-only keys, to
 * keys set on creation only (UPDATE), or to no Close key are refused at
 * plan time or before the row's request, and so is a table whose resource
 * close_fdw does not write.  What Close answers is compared with what was
 * sent: a value it did not keep is a WARNING at the end of the statement.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "close_fdw.h"
#include "compat.h"

/*
 * Names of the junk columns that carry the row to UPDATE/DELETE: the id
 * column as "close_id_<attno>" (partitions of one table may hold their id
 * at different positions, and a row identity name stands for one Var), and
 * the whole row as core names it.
 */
#define CLOSE_ID_JUNK		"close_id_%d"
#define CLOSE_WHOLEROW_JUNK	"wholerow"

/* How many ids a failure report lists before it only counts. */
#define CLOSE_REPORTED_IDS	20

/* The ModifyTable's fdw_private for a foreign table. */
enum FdwModifyPrivateIndex
{
	/* List of Integer: the attribute numbers whose values are sent */
	FdwModifyPrivateTargetAttrs,
	/* Integer: 1 when the statement has a RETURNING list */
	FdwModifyPrivateHasReturning,
	/* Integer: 1 when a row may come more than once (UPDATE ... FROM) */
	FdwModifyPrivateMayRepeat,

	/*
	 * List of Integer: the columns RETURNING and WITH CHECK OPTIONs use, as
	 * pull_varattnos numbers them (the whole row's number for all of them)
	 */
	FdwModifyPrivateReturnedAttrs,

	/*
	 * Integer: what of the rows it reads an UPDATE or DELETE uses (see
	 * reads_ids_only): READS_IDS, READS_FIXED or READS_VALUES
	 */
	FdwModifyPrivateIdsOnly
};

/*
 * What an UPDATE or DELETE uses of the rows it reads (reads_ids_only):
 * their ids alone, read by id; or their ids and the values no UPDATE can
 * change (the lead, the type), read by id or as a lead's listing; or more.
 */
#define READS_VALUES	0
#define READS_FIXED		1
#define READS_IDS		2

/* What writing a column means (from its key's CloseKeyAccess). */
typedef enum ColumnKind
{
	COLUMN_WRITABLE,			/* sent by INSERT and UPDATE */
	COLUMN_CREATE_ONLY,			/* lead_id, custom_object_type_id... */
	COLUMN_CUSTOM_FIELD,		/* "custom.<cf_id>" */
	COLUMN_CUSTOM_MAP,			/* json(b) "custom": one key per field */
	COLUMN_READ_ONLY,			/* id, dates, creator...: set by Close */
	COLUMN_UNKNOWN				/* a key Close does not take */
} ColumnKind;

/* A column whose value Close answered differently from what was sent. */
typedef struct AnswerMismatch
{
	char	   *label;			/* the column, as messages name it */
	int64		rows;
} AnswerMismatch;

/*
 * What was written to Close by the statements of the current transaction,
 * per table and kind of write, so that a failure can say what stays.
 * Kept in TopMemoryContext; dropped at the end of the (sub)transaction.
 */
typedef struct CloseWriteLog
{
	int			nest_level;		/* (sub)transaction that wrote */
	char		relname[NAMEDATALEN];
	const CloseResource *res;	/* what its records are */
	const char *verb;			/* "created", "updated", "deleted" */
	int64		count;
	int64		reported;		/* count already told in an error */
	StringInfoData ids;			/* the first CLOSE_REPORTED_IDS ids */
	/* writes that may have reached Close, with no readable answer */
	int64		maybe;
	int64		maybe_reported; /* maybe already told in an error */
	List	   *maybe_keys;		/* of MaybeWrites, at most CLOSE_REPORTED_IDS */
} CloseWriteLog;

/*
 * Writes of unknown outcome with one key: the lead of POSTs (whose records'
 * ids are unknown), or the record of a PUT or DELETE.
 */
typedef struct MaybeWrites
{
	char	   *key;
	int64		n;
} MaybeWrites;

static List *write_logs = NIL;
static bool write_log_callbacks = false;

/*
 * The first table the transaction wrote to, by a write that reached Close
 * or may have; "" if none.  Unlike write_logs, a rolled back savepoint does
 * not forget it: its writes stay in Close, so the transaction still cannot
 * be prepared.
 */
static char xact_wrote_to[NAMEDATALEN] = "";

/*
 * The same writes as data, one entry per write, for close_fdw_write_log():
 * those of the current transaction, and those of the last finished
 * transaction that wrote.  At most CLOSE_WRITE_ENTRIES_MAX entries are
 * kept per transaction (the first ones); the rest are only counted.
 */
#define CLOSE_WRITE_ENTRIES_MAX	10000

typedef enum WriteState
{
	WRITE_SENT,					/* Close answered that it took effect */
	WRITE_FAILED,				/* Close refused it, or it never went out */
	WRITE_QUEUED,				/* deferred, not sent yet */
	WRITE_MAYBE					/* sent, no readable answer */
} WriteState;

static const char *const write_state_names[] = {
	"sent", "failed", "queued", "may have reached Close"
};

typedef struct WriteEntry
{
	int			statement;		/* 1 for the transaction's first writer */
	const char *relname;
	CmdType		action;
	char	   *object_id;		/* NULL when unknown */
	char	   *lead_id;		/* NULL when unknown */
	int			status;			/* HTTP status, 0 when none */
	WriteState	state;
} WriteEntry;

typedef struct WriteEntries
{
	MemoryContext cxt;			/* owns the array and its strings */
	WriteEntry *entries;
	int			n;
	int			size;
	int64		dropped;		/* writes over CLOSE_WRITE_ENTRIES_MAX */
	int64	   *dropped_queued; /* of dropped, queued ones by nest level */
	int			dropped_levels; /* size of dropped_queued */
	CommandId  *cids;			/* statement i + 1 is cids[i], ascending */
	int			statements;		/* statements numbered so far */
	int			cids_size;
	/*
	 * starts[level]: the first entry of the open (sub)transaction at that
	 * level, for levels 2 to depth, filled when it adds one (a level
	 * without a start has none): its end costs its own entries.
	 */
	int		   *starts;
	int			starts_size;
	int			depth;			/* 0 or 1: no subtransaction entries */
	const char *last_relname;	/* in cxt, shared by entries */
	bool		committing;		/* COMMIT began sending queued writes */
} WriteEntries;

static WriteEntries current_entries;
static WriteEntries finished_entries;	/* the last transaction that wrote */

/* Executor state of one foreign table's modification. */
typedef struct CloseModifyState
{
	Relation	rel;
	CmdType		operation;
	UserMapping *user;
	CloseRowConverter *conv;	/* every column: bodies (and RETURNING) */
	CloseRowConverter *returned_conv;	/* only the columns RETURNING uses,
										 * or NULL: conv */
	ColumnKind *kinds;			/* by attribute number - 1 */
	List	   *target_attrs;
	bool		has_returning;
	char	   *table_type_id;
	int			max_concurrency;	/* writes in flight at once */
	AttrNumber	id_junk;		/* in the subplan's output */
	AttrNumber	wholerow_junk;
	bool		send_changed;	/* UPDATE with BEFORE ROW triggers: send what
								 * differs from the row read */
	TupleTableSlot *old_row;	/* the row read, when send_changed */
	HTAB	   *done_ids;		/* ids written, when a row may repeat */
	TupleTableSlot *part_slot;	/* a partition's new row with its type */
	MemoryContext row_cxt;		/* reset for every row */
	CloseWriteLog *log;
	const CloseResource *res;	/* the table's resource */
	List	   *mismatches;		/* of AnswerMismatch, in the state's context */
	int64		mismatch_rows;	/* rows with at least one */
	bool		deferred;		/* write_mode 'deferred': queue, not send */
	bool		check_returning;	/* deferred routed row: check RETURNING */
	CommandId	cid;			/* the statement, for its write log entries */
	CommandId  *item_cids;		/* at COMMIT: each deferred write's statement */
	bool	   *item_logged;	/* at COMMIT: each has the entry of its outcome */
	int			item_index;		/* the write item_statement chose */
	int			last_status;	/* judge_write: the status judged */
	char	   *last_lead;		/* judge_write: the record's lead, or NULL */
	bool		gone_on_retry;	/* judge_write: a DELETE's retry got 404 */
	ModifyTableState *mtstate;	/* NULL for a direct modification */
} CloseModifyState;

static void check_update_columns(Relation rel, List *attnos);
static void check_generated_columns(Relation rel, List *attnos);
static int	reads_ids_only(PlannerInfo *root, ModifyTable *plan,
						   Index resultRelation, int subplan_index);
static bool refers_to_rel(PlannerInfo *root, Node *node, Index relid);
static void close_xact_callback(XactEvent event, void *arg);
static void send_deferred(void);
static void write_entry_add_for(CommandId cid, const char *relname,
								CmdType action, const char *id,
								const char *lead, int status,
								WriteState state);
static char *body_lead(const char *body);
static void close_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);

/* Whether a column has a "field" option: the user's word for its key. */
static bool
has_field_option(Relation rel, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, GetForeignColumnOptions(RelationGetRelid(rel), attnum))
		if (strcmp(((DefElem *) lfirst(lc))->defname, "field") == 0)
			return true;
	return false;
}

/*
 * The kind of a column, from the record key it maps to and that key's
 * access in the table's resource.  The one place that decides what a
 * column may write.  A key the resource does not list is written only
 * where Close takes such keys (CloseResource.open_keys) and a "field"
 * option names it; the answer check then tells whether Close kept it.
 */
static ColumnKind
column_kind(Relation rel, Form_pg_attribute att, const char **keyp)
{
	char	   *key = close_get_column_key(RelationGetRelid(rel), att->attnum,
										   NameStr(att->attname));
	const CloseResource *res = close_get_table_resource(RelationGetRelid(rel));
	const CloseResourceKey *k;

	if (keyp)
		*keyp = key;
	if (close_is_custom_map_column(att->atttypid, key))
		return COLUMN_CUSTOM_MAP;
	if (strncmp(key, CLOSE_CUSTOM_PREFIX, strlen(CLOSE_CUSTOM_PREFIX)) == 0 &&
		key[strlen(CLOSE_CUSTOM_PREFIX)] != '\0')
		return COLUMN_CUSTOM_FIELD;
	k = close_resource_key(res, key);
	if (k == NULL)
		return res->open_keys && has_field_option(rel, att->attnum)
			? COLUMN_WRITABLE : COLUMN_UNKNOWN;
	switch (k->access)
	{
		case CLOSE_KEY_READ_ONLY:
			return COLUMN_READ_ONLY;
		case CLOSE_KEY_CREATE_ONLY:
			return COLUMN_CREATE_ONLY;
		case CLOSE_KEY_WRITABLE:
			break;
	}
	return COLUMN_WRITABLE;
}

/*
 * Refuse any write to a table whose resource close_fdw does not write
 * (users, statuses, pipelines), before any request.
 */
static void
check_writable(Relation rel)
{
	const CloseResource *res = close_get_table_resource(RelationGetRelid(rel));

	if (!res->writable)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("foreign table \"%s\" cannot be written",
						RelationGetRelationName(rel)),
				 errdetail("It reads the Close resource \"%s\", which close_fdw only reads.",
						   res->name)));
}

/* ---- write log ---- */

static CloseWriteLog *
write_log_for(Relation rel, const char *verb)
{
	int			level = GetCurrentTransactionNestLevel();
	CloseWriteLog *log;
	const CloseResource *res;
	MemoryContext oldcxt;
	ListCell   *lc;

	if (!write_log_callbacks)
	{
		RegisterXactCallback(close_xact_callback, NULL);
		RegisterSubXactCallback(close_subxact_callback, NULL);
		write_log_callbacks = true;
	}

	foreach(lc, write_logs)
	{
		log = (CloseWriteLog *) lfirst(lc);
		if (log->nest_level == level && log->verb == verb &&
			strcmp(log->relname, RelationGetRelationName(rel)) == 0)
			return log;
	}

	res = close_get_table_resource(RelationGetRelid(rel));
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	log = palloc0(sizeof(CloseWriteLog));
	log->nest_level = level;
	strlcpy(log->relname, RelationGetRelationName(rel), NAMEDATALEN);
	log->res = res;
	log->verb = verb;
	initStringInfo(&log->ids);
	write_logs = lappend(write_logs, log);
	MemoryContextSwitchTo(oldcxt);
	return log;
}

static void
write_log_add(CloseWriteLog *log, const char *id)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

	/* scans of the statement must not read what it created */
	if (strcmp(log->verb, "created") == 0)
		close_note_created(id);

	log->count++;
	if (log->count <= CLOSE_REPORTED_IDS)
		appendStringInfo(&log->ids, "%s%s", log->ids.len > 0 ? ", " : "", id);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Log a write whose outcome is not known (it was sent, but no answer that
 * can be read came): by the lead of a POST, the record of a PUT or DELETE.
 */
static void
write_log_maybe(CloseWriteLog *log, const char *key)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	ListCell   *lc;

	log->maybe++;
	foreach(lc, log->maybe_keys)
	{
		MaybeWrites *m = (MaybeWrites *) lfirst(lc);

		if (strcmp(m->key, key) == 0)
		{
			m->n++;
			MemoryContextSwitchTo(oldcxt);
			return;
		}
	}
	if (list_length(log->maybe_keys) < CLOSE_REPORTED_IDS)
	{
		MaybeWrites *m = palloc(sizeof(MaybeWrites));

		m->key = pstrdup(key);
		m->n = 1;
		log->maybe_keys = lappend(log->maybe_keys, m);
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The number of the statement whose command id is cid: 1 for the first of
 * the transaction that wrote through close_fdw (a deferred write sent at
 * commit keeps the number of the statement that queued it).
 */
static int
statement_number(WriteEntries *we, CommandId cid)
{
	int			lo = 0;
	int			hi = we->statements;
	MemoryContext oldcxt;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (we->cids[mid] == cid)
			return mid + 1;
		if (we->cids[mid] < cid)
			lo = mid + 1;
		else
			hi = mid;
	}
	oldcxt = MemoryContextSwitchTo(we->cxt);
	if (we->statements >= we->cids_size)
	{
		we->cids_size = we->cids_size == 0 ? 16 : we->cids_size * 2;
		we->cids = we->cids == NULL
			? palloc(sizeof(CommandId) * we->cids_size)
			: repalloc(we->cids, sizeof(CommandId) * we->cids_size);
	}
	MemoryContextSwitchTo(oldcxt);
	/* command ids only grow: lo is the end but after a failed lookup */
	memmove(&we->cids[lo + 1], &we->cids[lo],
			sizeof(CommandId) * (we->statements - lo));
	we->cids[lo] = cid;
	we->statements++;
	return lo + 1;
}

/*
 * Drop the entries of writes queued (write_mode 'deferred') at level and
 * deeper: they are dropped unsent, or about to be sent (then each gets the
 * entry of its outcome).
 */
static void
write_entries_drop_queued(int level)
{
	WriteEntries *we = &current_entries;
	int			first = level <= 1 ? 0
		: level <= we->depth ? we->starts[level] : we->n;
	int			i;
	int			kept = first;

	/* the entries of level and deeper are those from its start on */
	for (i = first; i < we->n; i++)
	{
		WriteEntry *e = &we->entries[i];

		if (e->state == WRITE_QUEUED)
			continue;
		we->entries[kept++] = *e;
	}
	we->n = kept;

	/* so are those queued past the cap: they no longer count as unlisted */
	for (i = level; i < current_entries.dropped_levels; i++)
	{
		current_entries.dropped -= current_entries.dropped_queued[i];
		current_entries.dropped_queued[i] = 0;
	}
}

/*
 * Add an entry for one write of st's statement to the current
 * transaction's entries (id and lead may be NULL).
 */
static void
write_entry_add(CloseModifyState *st, const char *id, const char *lead,
				int status, WriteState state)
{
	write_entry_add_for(st->cid, RelationGetRelationName(st->rel),
						st->operation, id, lead, status, state);
	/* a queued write being sent (send_deferred) has its outcome */
	if (st->item_logged)
		st->item_logged[st->item_index] = true;
}

/*
 * Add an entry for one write to the current transaction's entries: of the
 * statement whose command id is cid, to table relname (id and lead may be
 * NULL).
 */
static void
write_entry_add_for(CommandId cid, const char *relname, CmdType action,
					const char *id, const char *lead, int status,
					WriteState state)
{
	WriteEntries *we = &current_entries;
	WriteEntry *e;
	MemoryContext oldcxt;
	int			statement;
	int			level = GetCurrentTransactionNestLevel();

	if ((state == WRITE_SENT || state == WRITE_MAYBE) &&
		xact_wrote_to[0] == '\0')
		strlcpy(xact_wrote_to, relname, NAMEDATALEN);
	if (we->cxt == NULL)
		we->cxt = AllocSetContextCreate(TopMemoryContext,
										"close_fdw write log",
										ALLOCSET_DEFAULT_SIZES);
	statement = statement_number(we, cid);
	if (we->n >= CLOSE_WRITE_ENTRIES_MAX)
	{
		we->dropped++;
		if (state != WRITE_QUEUED)
			return;
		/* counted by level, to be uncounted when dropped or sent */
		if (level >= we->dropped_levels)
		{
			int			size = Max(level + 1, we->dropped_levels * 2);

			oldcxt = MemoryContextSwitchTo(we->cxt);
			we->dropped_queued = we->dropped_queued == NULL
				? palloc0(sizeof(int64) * size)
				: repalloc(we->dropped_queued, sizeof(int64) * size);
			MemSet(we->dropped_queued + we->dropped_levels, 0,
				   sizeof(int64) * (size - we->dropped_levels));
			we->dropped_levels = size;
			MemoryContextSwitchTo(oldcxt);
		}
		we->dropped_queued[level]++;
		return;
	}
	oldcxt = MemoryContextSwitchTo(we->cxt);
	/* the levels opened since the last entry start here */
	if (level >= we->starts_size)
	{
		int			size = Max(level + 1, we->starts_size * 2);

		we->starts = we->starts == NULL ? palloc(sizeof(int) * size)
			: repalloc(we->starts, sizeof(int) * size);
		we->starts_size = size;
	}
	if (we->depth > level)
		we->depth = level;		/* cannot happen: the ends are seen */
	while (we->depth < level)
		we->starts[++we->depth] = we->n;
	if (we->n >= we->size)
	{
		we->size = we->size == 0 ? 64 : Min(we->size * 2, CLOSE_WRITE_ENTRIES_MAX);
		we->entries = we->entries == NULL
			? palloc(sizeof(WriteEntry) * we->size)
			: repalloc(we->entries, sizeof(WriteEntry) * we->size);
	}
	e = &we->entries[we->n];
	e->statement = statement;
	if (we->last_relname == NULL || strcmp(we->last_relname, relname) != 0)
		we->last_relname = pstrdup(relname);
	e->relname = we->last_relname;
	e->action = action;
	e->object_id = id && id[0] ? pstrdup(id) : NULL;
	e->lead_id = lead && lead[0] ? pstrdup(lead) : NULL;
	e->status = status;
	e->state = state;
	we->n++;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * The (sub)transaction at level ends: on commit its entries become its
 * parent's; the top level's go to finished_entries if it wrote.  Entries
 * for writes sent stay in any case: Close does not undo them.
 */
static void
write_entries_end(int level, bool abort)
{
	int			i;

	/*
	 * A COMMIT that failed while sending keeps the entries of what it never
	 * sent: they say what did not reach Close.
	 */
	if (abort && !(level <= 1 && current_entries.committing))
		write_entries_drop_queued(level);
	if (level > 1)
	{
		/* its entries become its parent's */
		if (current_entries.depth >= level)
			current_entries.depth = level - 1;
		for (i = level; i < current_entries.dropped_levels; i++)
		{
			current_entries.dropped_queued[level - 1] +=
				current_entries.dropped_queued[i];
			current_entries.dropped_queued[i] = 0;
		}
		return;
	}
	/* a COMMIT that sent its queue is this log's, even if nothing was sent */
	if (current_entries.n == 0 && current_entries.dropped == 0 &&
		!current_entries.committing)
		return;
	if (finished_entries.cxt)
		MemoryContextDelete(finished_entries.cxt);
	finished_entries = current_entries;
	memset(&current_entries, 0, sizeof(current_entries));
}

PG_FUNCTION_INFO_V1(close_fdw_write_log);

/*
 * close_fdw_write_log(): the writes of the current transaction if it wrote
 * through close_fdw, else of the last finished transaction that did.
 */
Datum
close_fdw_write_log(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WriteEntries *we = current_entries.n > 0 || current_entries.dropped > 0
		? &current_entries : &finished_entries;
	TupleDesc	desc;
	Tuplestorestate *store;
	MemoryContext oldcxt;
	int			i;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	desc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);

	for (i = 0; i < we->n; i++)
	{
		WriteEntry *e = &we->entries[i];
		Datum		values[7];
		bool		nulls[7];

		memset(nulls, false, sizeof(nulls));
		values[0] = Int32GetDatum(e->statement);
		values[1] = CStringGetTextDatum(e->relname);
		values[2] = CStringGetTextDatum(e->action == CMD_INSERT ? "INSERT"
										: e->action == CMD_UPDATE ? "UPDATE"
										: "DELETE");
		if (e->object_id)
			values[3] = CStringGetTextDatum(e->object_id);
		else
			nulls[3] = true;
		if (e->lead_id)
			values[4] = CStringGetTextDatum(e->lead_id);
		else
			nulls[4] = true;
		if (e->status)
			values[5] = Int32GetDatum(e->status);
		else
			nulls[5] = true;
		values[6] = CStringGetTextDatum(write_state_names[e->state]);
		tuplestore_putvalues(store, desc, values, nulls);
	}
	if (we->dropped > 0)
		ereport(WARNING,
				(errmsg("the write log lists only the first %d writes of the transaction",
						CLOSE_WRITE_ENTRIES_MAX),
				 errdetail("%lld more writes are not listed.",
						   (long long) we->dropped)));

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = desc;
	return (Datum) 0;
}

/*
 * Sentences saying what a log's writes were, palloc'd: "Created in Close
 * by this transaction, which Close cannot undo: 2 custom objects of foreign
 * table "t": custobj_a, custobj_b." and, for writes of unknown outcome,
 * "1 request to foreign table "t" may have reached Close, with no readable
 * answer: one object may have been created on lead lead_a (id unknown)."
 */
static char *
write_log_text(CloseWriteLog *log)
{
	StringInfoData buf;
	int64		listed = 0;
	ListCell   *lc;

	initStringInfo(&buf);
	if (log->count > 0)
	{
		/* (may run in TopMemoryContext: the noun is freed) */
		char	   *noun = close_resource_noun(log->res, log->count != 1);

		appendStringInfo(&buf, "%c%s in Close by this transaction, which Close cannot undo: %lld %s of foreign table \"%s\": %s%s.",
						 pg_toupper((unsigned char) log->verb[0]), log->verb + 1,
						 (long long) log->count, noun,
						 log->relname, log->ids.data,
						 log->count > CLOSE_REPORTED_IDS
						 ? psprintf(" and %lld more",
									(long long) (log->count - CLOSE_REPORTED_IDS))
						 : "");
		pfree(noun);
	}
	if (log->maybe == 0)
		return buf.data;

	appendStringInfo(&buf, "%s%lld request%s to foreign table \"%s\" may have reached Close, with no readable answer: ",
					 buf.len > 0 ? " " : "", (long long) log->maybe,
					 log->maybe == 1 ? "" : "s", log->relname);
	foreach(lc, log->maybe_keys)
	{
		MaybeWrites *m = (MaybeWrites *) lfirst(lc);

		if (listed > 0)
			appendStringInfoString(&buf, ", ");
		if (strcmp(log->verb, "created") != 0)
			appendStringInfo(&buf, "object %s may have been %s", m->key, log->verb);
		else if (m->key[0] == '\0' &&
				 close_resource_key(log->res, CLOSE_KEY_LEAD_ID) == NULL)
		{
			/* a lead: it has no lead of its own to name */
			char	   *noun = close_resource_noun(log->res, m->n != 1);

			appendStringInfo(&buf, "%lld %s may have been created (id%s unknown)",
							 (long long) m->n, noun, m->n == 1 ? "" : "s");
			pfree(noun);
		}
		else if (m->key[0] == '\0')
			appendStringInfo(&buf, "%lld object%s may have been created (lead and id%s unknown)",
							 (long long) m->n, m->n == 1 ? "" : "s",
							 m->n == 1 ? "" : "s");
		else if (m->n == 1)
			appendStringInfo(&buf, "one object may have been created on lead %s (id unknown)",
							 m->key);
		else
			appendStringInfo(&buf, "%lld objects may have been created on lead %s (ids unknown)",
							 (long long) m->n, m->key);
		listed += m->n;
	}
	if (log->maybe > listed)
		appendStringInfo(&buf, " and %lld more", (long long) (log->maybe - listed));
	appendStringInfoChar(&buf, '.');
	return buf.data;
}

static void
free_write_log(CloseWriteLog *log)
{
	ListCell   *lc;

	pfree(log->ids.data);
	foreach(lc, log->maybe_keys)
		pfree(((MaybeWrites *) lfirst(lc))->key);
	list_free_deep(log->maybe_keys);
	pfree(log);
}

/*
 * Add src's writes to dst's (the same table and kind of write); dst keeps
 * listing the first CLOSE_REPORTED_IDS ids.  The caller is in
 * TopMemoryContext.
 */
static void
merge_write_log(CloseWriteLog *dst, CloseWriteLog *src)
{
	int64		listed = Min(dst->count, CLOSE_REPORTED_IDS);
	char	   *id = src->ids.data;
	ListCell   *lc;
	ListCell   *lc2;

	/* ids have no comma ("custobj_..." or "custobj_... (the retry ...)") */
	while (listed < CLOSE_REPORTED_IDS && *id != '\0')
	{
		size_t		len = strcspn(id, ",");

		appendStringInfo(&dst->ids, "%s%.*s", dst->ids.len > 0 ? ", " : "",
						 (int) len, id);
		listed++;
		id += len;
		if (*id == ',')
			id += 2;			/* ", " */
	}
	dst->count += src->count;
	dst->reported += src->reported;
	dst->maybe += src->maybe;
	dst->maybe_reported += src->maybe_reported;
	foreach(lc, src->maybe_keys)
	{
		MaybeWrites *m = (MaybeWrites *) lfirst(lc);
		bool		found = false;

		foreach(lc2, dst->maybe_keys)
		{
			MaybeWrites *d = (MaybeWrites *) lfirst(lc2);

			if (strcmp(d->key, m->key) == 0)
			{
				d->n += m->n;
				found = true;
				break;
			}
		}
		if (!found && list_length(dst->maybe_keys) < CLOSE_REPORTED_IDS)
		{
			MaybeWrites *d = palloc(sizeof(MaybeWrites));

			d->key = pstrdup(m->key);
			d->n = m->n;
			dst->maybe_keys = lappend(dst->maybe_keys, d);
		}
	}
}

/*
 * The (sub)transaction at level and deeper ends: on abort, warn about
 * writes no error has told of yet; on commit, a subtransaction's writes
 * become its parent's, merged into the parent's log of the same table and
 * kind of write (so that the logs stay few however many subtransactions
 * wrote: an EXCEPTION block per row).
 */
static void
write_logs_end(int level, bool abort)
{
	List	   *kept = NIL;
	ListCell   *lc;
	ListCell   *lc2;
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

	foreach(lc, write_logs)
	{
		CloseWriteLog *log = (CloseWriteLog *) lfirst(lc);

		if (log->nest_level < level)
		{
			kept = lappend(kept, log);
			continue;
		}
		if (!abort && level > 1)
		{
			CloseWriteLog *parent = NULL;

			foreach(lc2, kept)
			{
				CloseWriteLog *other = (CloseWriteLog *) lfirst(lc2);

				if (other->nest_level == level - 1 && other->verb == log->verb &&
					strcmp(other->relname, log->relname) == 0)
				{
					parent = other;
					break;
				}
			}
			if (parent == NULL)
			{
				log->nest_level = level - 1;
				kept = lappend(kept, log);
			}
			else
			{
				merge_write_log(parent, log);
				free_write_log(log);
			}
			continue;
		}
		if (abort && (log->count > log->reported ||
					  log->maybe > log->maybe_reported))
		{
			char	   *text = write_log_text(log);

			ereport(WARNING,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("rolled back changes to foreign table \"%s\" stay in Close", log->relname),
					 errdetail_internal("%s", text)));
			pfree(text);		/* made in TopMemoryContext */
		}
		free_write_log(log);
	}
	list_free(write_logs);
	write_logs = kept;
	MemoryContextSwitchTo(oldcxt);
}

static void
close_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;
	int			nqueued;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			send_deferred();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (close_deferred_writes(&nqueued) != NULL && nqueued > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that has queued writes to foreign table \"%s\"",
								close_deferred_writes(&nqueued)[0]->relname),
						 errdetail("Its writes (write_mode 'deferred') would be sent by COMMIT PREPARED, which cannot fail.")));

			/*
			 * A prepared transaction may still be rolled back, with nothing
			 * then to say that its writes stay in Close: refuse, as
			 * postgres_fdw does.  The error lists the writes no error told
			 * of yet (so the abort has no WARNING to add).
			 */
			foreach(lc, write_logs)
			{
				CloseWriteLog *log = (CloseWriteLog *) lfirst(lc);
				StringInfoData detail;
				ListCell   *lc2;

				if (log->count == 0 && log->maybe == 0)
					continue;
				initStringInfo(&detail);
				appendStringInfoString(&detail, "Close cannot undo a write, so a prepared transaction's rollback could not undo it either.");
				foreach(lc2, write_logs)
				{
					CloseWriteLog *other = (CloseWriteLog *) lfirst(lc2);

					if (other->count <= other->reported &&
						other->maybe <= other->maybe_reported)
						continue;
					appendStringInfo(&detail, "\n%s", write_log_text(other));
					other->reported = other->count;
					other->maybe_reported = other->maybe;
				}
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that has written to foreign table \"%s\"",
								log->relname),
						 errdetail_internal("%s", detail.data)));
			}

			/*
			 * Writes of savepoints rolled back since (their error or the
			 * rollback's WARNING told of them) stay in Close as well.
			 */
			if (xact_wrote_to[0] != '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that has written to foreign table \"%s\"",
								xact_wrote_to),
						 errdetail("Close cannot undo a write, so a prepared transaction's rollback could not undo it either; the writes of its rolled back subtransactions stay in Close.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			xact_wrote_to[0] = '\0';
			close_deferred_end(1, true);
			write_entries_end(1, true);
			write_logs_end(1, true);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			xact_wrote_to[0] = '\0';
			close_deferred_end(1, false);
			write_entries_end(1, false);
			write_logs_end(1, false);
			break;
		default:
			break;
	}
}

static void
close_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		close_deferred_end(GetCurrentTransactionNestLevel(), true);
		write_entries_end(GetCurrentTransactionNestLevel(), true);
		write_logs_end(GetCurrentTransactionNestLevel(), true);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		close_deferred_end(GetCurrentTransactionNestLevel(), false);
		write_entries_end(GetCurrentTransactionNestLevel(), false);
		write_logs_end(GetCurrentTransactionNestLevel(), false);
	}
}

/* ---- planning ---- */

/*
 * UPDATE and DELETE find their row by the id column, carried up from the
 * scan as a junk column; DELETE ... RETURNING also carries the whole row,
 * which is what it returns.  Both follow core's conventions for row
 * identities, so that the partitions of one table share them: one name per
 * id position, and the whole row as core's own "wholerow" Var.
 */
void
close_add_update_targets(PlannerInfo *root, Query *parse, Index rtindex,
						 RangeTblEntry *target_rte, Relation target_relation)
{
	CloseKeyColumns keys;
	Form_pg_attribute att;
	Var		   *var;

	/* the first hook an UPDATE or DELETE reaches */
	check_writable(target_relation);
	close_find_key_columns(RelationGetRelid(target_relation), &keys);
	if (keys.id_attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot update or delete rows of foreign table \"%s\" without an id column",
						RelationGetRelationName(target_relation)),
				 errhint("Add a column \"id\", or a column with OPTIONS (field 'id'): Close finds a record by its id.")));

	att = TupleDescAttr(RelationGetDescr(target_relation), keys.id_attno - 1);
	var = makeVar(rtindex, keys.id_attno, att->atttypid, att->atttypmod,
				  att->attcollation, 0);
	close_add_row_identity(root, parse, var, rtindex,
						   psprintf(CLOSE_ID_JUNK, keys.id_attno));

	if (parse->commandType == CMD_DELETE && parse->returningList != NIL)
		close_add_row_identity(root, parse,
							   close_whole_row_var(target_rte, rtindex),
							   rtindex, CLOSE_WHOLEROW_JUNK);
}

pg_noreturn static void
refuse_update_column(Relation rel, Form_pg_attribute att, ColumnKind kind,
					 const char *key)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot change column \"%s\" of foreign table \"%s\"",
					NameStr(att->attname), RelationGetRelationName(rel)),
			 kind == COLUMN_READ_ONLY
			 ? errdetail("The column maps to the read-only field \"%s\", which Close sets.", key)
			 : kind == COLUMN_UNKNOWN
			 ? errdetail("The column maps to \"%s\", which is not a field Close can change.", key)
			 : errdetail("A Close %s keeps its \"%s\" for life.",
						 close_resource_noun(close_get_table_resource(RelationGetRelid(rel)),
											 false), key),
			 kind == COLUMN_CREATE_ONLY
			 ? errhint("Insert a new record and delete the old one instead.") : 0));
}

/*
 * RETURNING of a table with write_mode 'deferred' cannot show what Close
 * assigns (the id, the dates, the creator...): the write is not sent
 * before the commit.  Refused, not faked.  A key Close gives a value of its
 * own when a write leaves it out (a new opportunity's status, confidence
 * and user; date_won when its status becomes won) is refused too, unless
 * the statement assigns it (target_attrs), and so is one Close rewrites
 * (a contact's phones, as E.164).  An UPDATE's RETURNING shows the value
 * the scan read for a key it leaves alone, which its PUT (a patch of the
 * assigned keys) does not change: such a key is refused only when the
 * UPDATE assigns one Close reacts to (a status: date_won, the pipeline;
 * phones: the time zone), and a key Close rewrites only when assigned.
 */
static void
check_deferred_returning(Relation rel, Node *returning, Index varno,
						 List *target_attrs, bool update)
{
	Bitmapset  *attrs = NULL;
	int			col = -1;
	const CloseResource *res = close_get_table_resource(RelationGetRelid(rel));
	bool		reacts = false;
	ListCell   *lc;

	/*
	 * Does the UPDATE assign a key Close reacts to?  A BEFORE ROW trigger
	 * may change any key (a status), so with one it may.
	 */
	if (update && rel->trigdesc && rel->trigdesc->trig_update_before_row)
		reacts = true;
	else if (update)
		foreach(lc, target_attrs)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel),
												  lfirst_int(lc) - 1);
			const char *key;
			const CloseResourceKey *k;

			if (column_kind(rel, att, &key) == COLUMN_READ_ONLY)
				continue;
			k = close_resource_key(res, key);
			if (k != NULL && (k->write_key != NULL || k->close_sets ||
							  k->close_rewrites))
				reacts = true;
		}

	pull_varattnos(returning, varno, &attrs);
	while ((col = bms_next_member(attrs, col)) >= 0)
	{
		AttrNumber	attnum = col + FirstLowInvalidHeapAttributeNumber;
		Form_pg_attribute att;
		const char *key;

		if (attnum < InvalidAttrNumber)
			continue;			/* a system column: not Close's */
		if (attnum > InvalidAttrNumber)
		{
			const CloseResourceKey *k;

			att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
			if (att->attisdropped)
				continue;
			/*
			 * A key written under another name (a status's label) is set by
			 * Close from either of its keys: refused as one Close sets.
			 */
			if (column_kind(rel, att, &key) != COLUMN_READ_ONLY &&
				((k = close_resource_key(res, key)) == NULL ||
				 (k->write_key == NULL && !k->close_rewrites &&
				  (!k->close_sets || list_member_int(target_attrs, attnum)))))
				continue;
			/* an UPDATE's key it leaves alone: the value read */
			if (update && column_kind(rel, att, &key) != COLUMN_READ_ONLY &&
				!list_member_int(target_attrs, attnum) && !reacts)
				continue;
		}
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 attnum > InvalidAttrNumber
				 ? errmsg("cannot return column \"%s\" of foreign table \"%s\" with write_mode 'deferred'",
						  NameStr(att->attname), RelationGetRelationName(rel))
				 : errmsg("cannot return the whole row of foreign table \"%s\" with write_mode 'deferred'",
						  RelationGetRelationName(rel)),
				 errdetail("Close sets that value when the write is sent, at COMMIT."),
				 errhint("Use OPTIONS (write_mode 'immediate') on foreign table \"%s\" for that statement.",
						 RelationGetRelationName(rel))));
	}
}

/*
 * A deferred INSERT's RETURNING shows the row given, but a NULL is not sent
 * on create, and for a key Close fills itself (a new opportunity's
 * confidence, status, user...) Close then stores a value of its own at
 * COMMIT: RETURNING such a column of a row that holds NULL in it is
 * refused, as when the statement leaves it out (check_deferred_returning).
 */
static void
check_deferred_returned_nulls(CloseModifyState *st, ResultRelInfo *rinfo,
							  TupleTableSlot *slot)
{
	Bitmapset  *attrs = NULL;
	bool		pulled = false;
	ListCell   *lc;

	if (!st->has_returning || rinfo->ri_returningList == NIL)
		return;
	slot_getallattrs(slot);
	foreach(lc, st->target_attrs)
	{
		AttrNumber	attnum = lfirst_int(lc);
		ColumnKind	kind = st->kinds[attnum - 1];
		const CloseResourceKey *k;

		if (!slot->tts_isnull[attnum - 1] ||
			(kind != COLUMN_WRITABLE && kind != COLUMN_CREATE_ONLY))
			continue;
		k = close_resource_key(st->res, close_column_key(st->conv, attnum));
		if (k == NULL || !k->close_sets)
			continue;
		if (!pulled)
		{
			pull_varattnos((Node *) rinfo->ri_returningList,
						   rinfo->ri_RangeTableIndex, &attrs);
			pulled = true;
		}
		if (bms_is_member(attnum - FirstLowInvalidHeapAttributeNumber, attrs))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot return column \"%s\" of foreign table \"%s\" with write_mode 'deferred'",
							NameStr(TupleDescAttr(RelationGetDescr(st->rel), attnum - 1)->attname),
							RelationGetRelationName(st->rel)),
					 errdetail("The row holds NULL in it, which a new record does not send: Close sets that value when the write is sent, at COMMIT."),
					 errhint("Use OPTIONS (write_mode 'immediate') on foreign table \"%s\" for that statement.",
							 RelationGetRelationName(st->rel))));
	}
}

/*
 * Settle which columns a statement sends: for INSERT those it supplies
 * (explicitly or by a column DEFAULT), for UPDATE those it assigns, and
 * refuse the assignments Close would not take.
 */
List *
closePlanForeignModify(PlannerInfo *root, ModifyTable *plan,
					   Index resultRelation, int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	Relation	rel = table_open(rte->relid, NoLock);
	List	   *target_attrs = NIL;
	List	   *returned_attrs = NIL;
	bool		has_returning;
	bool		may_repeat;
	FromExpr   *jointree;
	ListCell   *lc;
	int			i;

	check_writable(rel);
	if (plan->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT ... ON CONFLICT is not supported by close_fdw")));

	if (plan->operation == CMD_INSERT)
	{
		foreach(lc, root->parse->targetList)
		{
			TargetEntry *tle = lfirst_node(TargetEntry, lc);

			if (!tle->resjunk)
				target_attrs = lappend_int(target_attrs, tle->resno);
		}

		/*
		 * A stored generated column is not in the statement's target list,
		 * but PostgreSQL computes it into the row before the insert: it is
		 * sent as a column the statement supplies (UPDATE sends it too).
		 */
		for (i = 0; i < RelationGetDescr(rel)->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);

			if (!att->attisdropped &&
				att->attgenerated == ATTRIBUTE_GENERATED_STORED &&
				!list_member_int(target_attrs, i + 1))
				target_attrs = lappend_int(target_attrs, i + 1);
		}
	}
	else if (plan->operation == CMD_UPDATE)
	{
		RelOptInfo *baserel = find_base_rel(root, resultRelation);
		Bitmapset  *updated = close_updated_columns(root, baserel, rte);
		int			col = -1;

		while ((col = bms_next_member(updated, col)) >= 0)
		{
			AttrNumber	attnum = col + FirstLowInvalidHeapAttributeNumber;

			if (attnum > InvalidAttrNumber)
				target_attrs = lappend_int(target_attrs, attnum);
		}
		check_update_columns(rel, target_attrs);
		check_generated_columns(rel, target_attrs);
	}

	has_returning = plan->returningLists != NIL &&
		list_nth(plan->returningLists, subplan_index) != NIL;

	/*
	 * The row Close answers is converted for the columns RETURNING uses only
	 * (a value another column cannot hold is no error then, as in a scan);
	 * with a view's WITH CHECK OPTION above, for every column.
	 */
	if (has_returning)
	{
		Bitmapset  *attrs = NULL;
		int			member = -1;

		if (plan->withCheckOptionLists != NIL &&
			list_nth(plan->withCheckOptionLists, subplan_index) != NIL)
			attrs = bms_make_singleton(0 - FirstLowInvalidHeapAttributeNumber);
		else
			pull_varattnos((Node *) list_nth(plan->returningLists, subplan_index),
						   resultRelation, &attrs);
		while ((member = bms_next_member(attrs, member)) >= 0)
			returned_attrs = lappend_int(returned_attrs, member);
	}
	if (has_returning && plan->operation != CMD_DELETE &&
		close_write_mode_deferred(rte->relid))
		check_deferred_returning(rel, (Node *) list_nth(plan->returningLists,
														subplan_index),
								 resultRelation, target_attrs,
								 plan->operation == CMD_UPDATE);

	/*
	 * UPDATE ... FROM and DELETE ... USING join the table to others: a record
	 * may match more than once.
	 */
	jointree = root->parse->jointree;
	may_repeat = plan->operation != CMD_INSERT && jointree &&
		(list_length(jointree->fromlist) > 1 ||
		 (jointree->fromlist != NIL &&
		  !IsA(linitial(jointree->fromlist), RangeTblRef)));

	table_close(rel, NoLock);
	/* (list_make5 is not in PostgreSQL 13) */
	return lappend(list_make4(target_attrs, makeInteger(has_returning ? 1 : 0),
							  makeInteger(may_repeat ? 1 : 0), returned_attrs),
				   makeInteger(plan->operation == CMD_INSERT ? READS_VALUES
							   : reads_ids_only(root, plan, resultRelation,
												subplan_index)));
}

/*
 * Whether an expression takes a value from a subquery: a SubPlan, or the
 * Param an InitPlan (an uncorrelated subquery) sets.
 */
static bool
uses_subquery_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if ((IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC) ||
		IsA(node, SubPlan) || IsA(node, AlternativeSubPlan))
		return true;
	return expression_tree_walker(node, uses_subquery_walker, context);
}

/*
 * Whether a column's value stays what Close has whatever the transaction
 * queued: the id, the lead and the type, which no UPDATE may change (not
 * every create-only key: an opportunity's pipeline_id follows its status).
 */
static bool
fixed_column(Relation rel, AttrNumber attnum)
{
	const char *key;

	if (attnum <= InvalidAttrNumber)
		return false;			/* the whole row, a system column */
	(void) column_kind(rel, TupleDescAttr(RelationGetDescr(rel), attnum - 1),
					   &key);
	return strcmp(key, CLOSE_KEY_ID) == 0 ||
		strcmp(key, CLOSE_KEY_LEAD_ID) == 0 ||
		strcmp(key, CLOSE_KEY_TYPE_ID) == 0;
}

/* Whether node uses no column of the table at relid but fixed ones. */
static bool
uses_fixed_columns_only(Relation rel, Node *node, Index relid)
{
	Bitmapset  *attrs = NULL;
	int			member = -1;

	pull_varattnos(node, relid, &attrs);
	while ((member = bms_next_member(attrs, member)) >= 0)
		if (!fixed_column(rel, member + FirstLowInvalidHeapAttributeNumber))
			return false;
	return true;
}

/*
 * What an UPDATE or DELETE uses of the rows it reads.  READS_IDS: it reads
 * them by id, and its conditions and SET values use no column but fixed
 * ones (fixed_column), with no RETURNING, no check option and no stored
 * generated column (computed from the row).  READS_FIXED: the same, read
 * as a lead's listing (every object of the lead, which no queued UPDATE
 * can move).  Otherwise READS_VALUES.  Ids, conditions and SET values
 * computed by a subquery do not count: the subquery reads Close's values
 * as they were before the queued UPDATEs (WHERE id = (SELECT id ... WHERE
 * name = ...) picks a record by its old name).  Row triggers, which see
 * the old row, are checked at execution.
 */
static int
reads_ids_only(PlannerInfo *root, ModifyTable *plan, Index resultRelation,
			   int subplan_index)
{
	Plan	   *subplan = close_modify_table_subplan(plan, subplan_index);
	ForeignScan *fscan;
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	Relation	rel;
	int			kind;
	int			reads = READS_VALUES;

	if (subplan == NULL || !IsA(subplan, ForeignScan))
		return READS_VALUES;
	fscan = (ForeignScan *) subplan;
	kind = intVal(list_nth(fscan->fdw_private, FdwScanPrivateAccessKind));
	if (fscan->scan.scanrelid != resultRelation ||
		(kind != CLOSE_ACCESS_BY_ID && kind != CLOSE_ACCESS_BY_LEAD) ||
		uses_subquery_walker((Node *) fscan->fdw_exprs, NULL) ||
		uses_subquery_walker((Node *) fscan->scan.plan.qual, NULL))
		return READS_VALUES;
	if (plan->returningLists != NIL &&
		list_nth(plan->returningLists, subplan_index) != NIL)
		return READS_VALUES;
	/* (a check option's or policy's check sees the row's old values too) */
	if (plan->withCheckOptionLists != NIL &&
		list_nth(plan->withCheckOptionLists, subplan_index) != NIL)
		return READS_VALUES;

	rel = table_open(rte->relid, NoLock);
	if (uses_fixed_columns_only(rel, (Node *) fscan->scan.plan.qual,
								resultRelation))
		reads = kind == CLOSE_ACCESS_BY_ID ? READS_IDS : READS_FIXED;
	if (reads != READS_VALUES && plan->operation == CMD_UPDATE)
	{
		List	   *set_exprs = NIL;
		List	   *attnos = NIL;
		ListCell   *lc;
		ListCell   *lc2;

		if (RelationGetDescr(rel)->constr &&
			RelationGetDescr(rel)->constr->has_generated_stored)
			reads = READS_VALUES;
		/* (the target list goes on with junk columns: one per attribute) */
		close_update_targets(root, resultRelation, subplan, &set_exprs, &attnos);
		forboth(lc, set_exprs, lc2, attnos)
		{
			Expr	   *expr = lfirst_node(TargetEntry, lc)->expr;

			if (!uses_fixed_columns_only(rel, (Node *) expr, resultRelation) ||
				uses_subquery_walker((Node *) expr, NULL))
				reads = READS_VALUES;
		}
	}
	table_close(rel, NoLock);
	return reads;
}

/* ---- execution ---- */

static CloseModifyState *
create_modify_state(EState *estate, ResultRelInfo *rinfo, CmdType operation,
					List *target_attrs, bool has_returning)
{
	Relation	rel = rinfo->ri_RelationDesc;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	CloseModifyState *st = palloc0(sizeof(CloseModifyState));
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
	int			i;

	st->rel = rel;
	st->operation = operation;
	st->res = close_get_table_resource(RelationGetRelid(rel));
	st->user = GetUserMapping(close_modify_user(rinfo, estate), table->serverid);
	st->conv = close_make_row_converter(rel, NULL);
	st->kinds = palloc(sizeof(ColumnKind) * Max(tupdesc->natts, 1));
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		st->kinds[i] = att->attisdropped ? COLUMN_UNKNOWN
			: column_kind(rel, att, NULL);
	}
	st->target_attrs = target_attrs;
	st->has_returning = has_returning;
	st->table_type_id = close_get_table_type_id(RelationGetRelid(rel));
	{
		CloseServerOptions sopts;

		close_get_server_options(GetForeignServer(table->serverid), &sopts);
		st->max_concurrency = sopts.max_concurrency;
	}
	st->row_cxt = AllocSetContextCreate(CurrentMemoryContext,
										"close_fdw modify row",
										ALLOCSET_DEFAULT_SIZES);
	st->log = write_log_for(rel, operation == CMD_INSERT ? "created"
							: operation == CMD_UPDATE ? "updated" : "deleted");
	st->cid = estate->es_output_cid;
	st->deferred = close_write_mode_deferred(RelationGetRelid(rel));
	return st;
}

/* done_ids is keyed by a pointer to the id: hash and compare the ids. */
static uint32
id_hash(const void *key, Size keysize)
{
	const char *id = *(const char *const *) key;

	return DatumGetUInt32(hash_any((const unsigned char *) id, strlen(id)));
}

static int
id_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

/* A new set of ids, in the current memory context. */
static HTAB *
new_id_set(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(char *);
	ctl.hash = id_hash;
	ctl.match = id_match;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("close_fdw ids written", 64, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/*
 * The records a statement with data-modifying WITH queries updated or
 * deleted, shared by all its UPDATE and DELETE nodes (the main one and
 * each WITH's, through any foreign table: Close ids are unique), so that a
 * record written by one of them is skipped by the others, as PostgreSQL
 * skips a local row the same command already updated or deleted.  Kept in
 * the statement's executor memory; its end (or an error's) unlinks it.
 */
typedef struct StatementIds
{
	EState	   *estate;
	HTAB	   *ids;
	struct StatementIds *next;
	MemoryContextCallback cb;
} StatementIds;

static StatementIds *statement_ids_list = NULL;

static void
statement_ids_forget(void *arg)
{
	StatementIds **p;

	for (p = &statement_ids_list; *p != NULL; p = &(*p)->next)
		if (*p == (StatementIds *) arg)
		{
			*p = (*p)->next;
			break;
		}
}

/* The statement's shared set of ids written, or NULL if it needs none. */
static HTAB *
statement_ids(EState *estate)
{
	StatementIds *si;
	MemoryContext oldcxt;

	if (estate->es_plannedstmt == NULL ||
		!estate->es_plannedstmt->hasModifyingCTE)
		return NULL;
	for (si = statement_ids_list; si != NULL; si = si->next)
		if (si->estate == estate)
			return si->ids;
	oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);
	si = palloc0(sizeof(StatementIds));
	si->estate = estate;
	si->ids = new_id_set();
	si->cb.func = statement_ids_forget;
	si->cb.arg = si;
	MemoryContextRegisterResetCallback(estate->es_query_cxt, &si->cb);
	si->next = statement_ids_list;
	statement_ids_list = si;
	MemoryContextSwitchTo(oldcxt);
	return si->ids;
}

/*
 * Whether the statement already wrote this record (a record matched again
 * by UPDATE ... FROM, or written by another part of a statement with
 * data-modifying WITH queries); if not, remember it.
 */
static bool
already_done(CloseModifyState *st, const char *id)
{
	bool		found;
	char	   *copy;

	if (st->done_ids == NULL)
		return false;
	(void) hash_search(st->done_ids, &id, HASH_FIND, &found);
	if (found)
		return true;
	copy = MemoryContextStrdup(GetMemoryChunkContext(st->done_ids), id);
	(void) hash_search(st->done_ids, &copy, HASH_ENTER, NULL);
	return false;
}

/* Every column of a table, by attribute number. */
static List *
all_columns(TupleDesc tupdesc)
{
	List	   *attnos = NIL;
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
		if (!TupleDescAttr(tupdesc, i)->attisdropped)
			attnos = lappend_int(attnos, i + 1);
	return attnos;
}

/*
 * What a statement on a table with write_mode 'deferred' cannot do: AFTER
 * ROW triggers would see no id (nothing is sent yet).
 */
static void
check_deferred_statement(CloseModifyState *st, TriggerDesc *trigdesc)
{
	const char *relname = RelationGetRelationName(st->rel);

	if (trigdesc &&
		((st->operation == CMD_INSERT && trigdesc->trig_insert_after_row) ||
		 (st->operation == CMD_UPDATE && trigdesc->trig_update_after_row) ||
		 (st->operation == CMD_DELETE && trigdesc->trig_delete_after_row)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot fire AFTER ROW triggers of foreign table \"%s\" with write_mode 'deferred'",
						relname),
				 errdetail("The write is sent at COMMIT: a trigger would see neither the id nor the values Close sets."),
				 errhint("Use OPTIONS (write_mode 'immediate') on foreign table \"%s\", or a statement-level trigger.",
						 relname)));
}

/*
 * An UPDATE or DELETE, in either write mode, could not see the rows of
 * INSERTs queued (write_mode 'deferred') into its table, or into another
 * table that may hold its rows: the same server and resource, and the
 * same custom_object_type_id or either table without one.  Refused.  A
 * statement that reads its rows (not by_id: a direct UPDATE or DELETE of
 * the ids it is given, which no queued INSERT can have) is refused after
 * INSERTs through another server pointing at the same Close too: the rows
 * are Close's, whichever server queued them.
 */
static void
check_queued_inserts(CloseModifyState *st, bool by_id)
{
	const char *relname = RelationGetRelationName(st->rel);
	const char *other;
	bool		same;

	if (st->operation == CMD_INSERT)
		return;
	other = close_deferred_insert_overlap(RelationGetRelid(st->rel), !by_id,
										  &same);
	if (other == NULL)
		return;
	if (same)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot %s foreign table \"%s\" after INSERTs into it queued in this transaction",
						st->operation == CMD_UPDATE ? "update" : "delete from",
						relname),
				 errdetail("With write_mode 'deferred' the INSERTs reach Close at COMMIT, so this statement could not see their rows."),
				 errhint("Commit first, or use OPTIONS (write_mode 'immediate').")));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s foreign table \"%s\" after INSERTs queued in this transaction into foreign table \"%s\"",
					st->operation == CMD_UPDATE ? "update" : "delete from",
					relname, other),
			 close_resource_key(st->res, CLOSE_KEY_TYPE_ID) != NULL
			 ? errdetail("The INSERTs (write_mode 'deferred') reach Close at COMMIT, and their rows may be rows of \"%s\" (the same Close and custom object type, or a table without custom_object_type_id), which this statement could not see.",
						 relname)
			 : errdetail("The INSERTs (write_mode 'deferred') reach Close at COMMIT, and their rows may be rows of \"%s\" (the same Close and resource, %s), which this statement could not see.",
						 relname, st->res->plural),
			 errhint("Commit first, or use OPTIONS (write_mode 'immediate') on foreign table \"%s\".",
					 other)));
}

/*
 * An UPDATE or DELETE that reads its rows acts on the values Close has, not
 * on those of UPDATEs queued in the transaction (write_mode 'deferred'),
 * which reach Close at COMMIT: its conditions would pick records by their
 * old values (a record the transaction renamed could be deleted by its old
 * name, and missed by its new one), and its SET expressions, RETURNING and
 * row triggers would see them.  Refused when a table with such UPDATEs
 * could hold its rows, unless it uses nothing of the rows but their ids.
 */
static void
check_queued_updates(CloseModifyState *st, bool ids_only)
{
	const char *relname = RelationGetRelationName(st->rel);
	const char *other;
	bool		same;

	if (st->operation == CMD_INSERT || ids_only)
		return;
	other = close_deferred_update_overlap(RelationGetRelid(st->rel), &same);
	if (other == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 same
			 ? errmsg("cannot %s foreign table \"%s\" by its values after UPDATEs of it queued in this transaction",
					  st->operation == CMD_UPDATE ? "update" : "delete from",
					  relname)
			 : errmsg("cannot %s foreign table \"%s\" by its values after UPDATEs queued in this transaction through foreign table \"%s\"",
					  st->operation == CMD_UPDATE ? "update" : "delete from",
					  relname, other),
			 errdetail("The UPDATEs (write_mode 'deferred') reach Close at COMMIT, so this statement would read the values Close still has: its conditions, SET values, RETURNING or row triggers would use values this transaction changed."),
			 errhint("Commit first, or name the records by id alone (WHERE id = ..., with SET values that do not use the row and no RETURNING).")));
}

/*
 * A write sent at once (write_mode 'immediate') to an object with writes
 * queued in the transaction would reach Close before them, out of order:
 * refused before any request.
 */
static void
check_object_not_queued(CloseModifyState *st, const char *path,
						const char *id)
{
	int			deletes;
	int			writes = close_deferred_object_writes(path, &deletes);
	int			inserts;

	/*
	 * A lead deleted at once would be gone before the INSERTs into it
	 * queued earlier: they would fail at COMMIT, where in statement order
	 * they were created, then deleted with the lead.
	 */
	if (st->operation == CMD_DELETE &&
		(inserts = close_deferred_inserts_into(path)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot delete %s %s through foreign table \"%s\" before the INSERTs into it queued in this transaction",
						close_resource_noun(st->res, false),
						id, RelationGetRelationName(st->rel)),
				 errdetail_plural("%d INSERT into it is queued (write_mode 'deferred') and reaches Close at COMMIT; this table's write_mode 'immediate' would delete the %s at once, before it, and the INSERT would then fail.",
								  "%d INSERTs into it are queued (write_mode 'deferred') and reach Close at COMMIT; this table's write_mode 'immediate' would delete the %s at once, before them, and the INSERTs would then fail.",
								  inserts, inserts,
								  close_resource_noun(st->res, false)),
				 errhint("Delete it through a table with write_mode 'deferred' in this transaction, or commit first.")));
	if (writes == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s %s %s through foreign table \"%s\" before the writes to it queued in this transaction",
					st->operation == CMD_UPDATE ? "update" : "delete",
					close_resource_noun(st->res, false),
					id, RelationGetRelationName(st->rel)),
			 deletes > 0
			 ? errdetail("Its DELETE is queued (write_mode 'deferred') and reaches Close at COMMIT; this table's write_mode 'immediate' would send this write at once, before it.")
			 : writes == 1
			 ? errdetail("An UPDATE of it is queued (write_mode 'deferred') and reaches Close at COMMIT; this table's write_mode 'immediate' would send this write at once, before it.")
			 : errdetail("%d UPDATEs of it are queued (write_mode 'deferred') and reach Close at COMMIT; this table's write_mode 'immediate' would send this write at once, before them.",
						 writes),
			 errhint("Write the object through a table with write_mode 'deferred' in this transaction, or commit first.")));
}

/*
 * Whether an UPDATE or DELETE of the object at path is queued: not when its
 * DELETE already is (the record is gone for the transaction, as a local
 * row deleted earlier would be: the row does not count).
 */
static bool
object_deleted_in_queue(const char *path)
{
	int			deletes;

	(void) close_deferred_object_writes(path, &deletes);
	return deletes > 0;
}

/*
 * A read-only transaction (SET TRANSACTION READ ONLY,
 * default_transaction_read_only, a hot standby) writes nothing.  PostgreSQL
 * checks that for every table but those of a temporary schema, a foreign
 * table created there (CREATE FOREIGN TABLE pg_temp.t) included, whose
 * writes reach Close all the same: checked here, before any request.
 */
static void
check_read_write(CmdType operation, bool copy)
{
	PreventCommandIfReadOnly(copy ? "COPY FROM"
							 : operation == CMD_INSERT ? "INSERT"
							 : operation == CMD_UPDATE ? "UPDATE" : "DELETE");
}

/* Queue one write of a deferred table, with its write log entry. */
static void
queue_write(CloseModifyState *st, const char *path, const char *body,
			const char *id)
{
	char	   *lead = st->operation == CMD_INSERT ? body_lead(body) : NULL;

	close_deferred_add(RelationGetRelid(st->rel), st->user->userid,
					   st->user->serverid, st->operation, st->cid, path,
					   body, id, lead, RelationGetRelationName(st->rel));
	write_entry_add(st, id, lead, 0, WRITE_QUEUED);
}

void
closeBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						List *fdw_private, int subplan_index, int eflags)
{
	CloseModifyState *st;
	CmdType		operation = mtstate->operation;
	TriggerDesc *trigdesc;
	List	   *target_attrs;
	bool		after_row;
	ListCell   *lc;
	int			reads;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	check_read_write(operation, false);

	target_attrs = (List *) list_nth(fdw_private, FdwModifyPrivateTargetAttrs);
	trigdesc = rinfo->ri_TrigDesc;

	/*
	 * A BEFORE ROW INSERT trigger may set any column: every one that is not
	 * NULL is sent.
	 */
	if (operation == CMD_INSERT && trigdesc && trigdesc->trig_insert_before_row)
		target_attrs = all_columns(RelationGetDescr(rinfo->ri_RelationDesc));

	/*
	 * AFTER ROW triggers, like RETURNING, see the row Close stored (its id,
	 * its dates), not the one sent.
	 */
	after_row = trigdesc &&
		((operation == CMD_INSERT && trigdesc->trig_insert_after_row) ||
		 (operation == CMD_UPDATE && trigdesc->trig_update_after_row));
	st = create_modify_state(mtstate->ps.state, rinfo, operation, target_attrs,
							 intVal(list_nth(fdw_private,
											 FdwModifyPrivateHasReturning)) != 0 ||
							 after_row);
	st->mtstate = mtstate;
	if (st->has_returning && !after_row)
	{
		/* RETURNING alone: only the columns it uses (triggers see all) */
		Bitmapset  *attrs = NULL;

		foreach(lc, (List *) list_nth(fdw_private, FdwModifyPrivateReturnedAttrs))
			attrs = bms_add_member(attrs, lfirst_int(lc));
		st->returned_conv = close_make_row_converter(st->rel, attrs);
	}
	if (st->deferred)
		check_deferred_statement(st, trigdesc);
	check_queued_inserts(st, false);
	/*
	 * (a lead's listing through a table with write_mode 'immediate' would
	 * meet the records with UPDATEs queued one by one, refused each after
	 * the rows before it were written: refused here, before any)
	 */
	reads = intVal(list_nth(fdw_private, FdwModifyPrivateIdsOnly));
	check_queued_updates(st,
						 (reads == READS_IDS ||
						  (reads == READS_FIXED && st->deferred)) &&
						 !(trigdesc &&
						   (operation == CMD_UPDATE
							? trigdesc->trig_update_before_row ||
							trigdesc->trig_update_after_row
							: trigdesc->trig_delete_before_row ||
							trigdesc->trig_delete_after_row)));
	if (operation == CMD_UPDATE || operation == CMD_DELETE)
	{
		Plan	   *subplan = close_modify_subplan(mtstate, subplan_index);
		CloseKeyColumns keys;
		char	   *id_name;

		close_find_key_columns(RelationGetRelid(rinfo->ri_RelationDesc), &keys);
		id_name = psprintf(CLOSE_ID_JUNK, keys.id_attno);
		st->id_junk = ExecFindJunkAttributeInTlist(subplan->targetlist, id_name);
		if (!AttributeNumberIsValid(st->id_junk))
			elog(ERROR, "could not find junk column \"%s\"", id_name);
		st->wholerow_junk = ExecFindJunkAttributeInTlist(subplan->targetlist,
															  CLOSE_WHOLEROW_JUNK);

		/*
		 * A BEFORE ROW UPDATE trigger may change any column: every one whose
		 * new value differs from the row read (which PostgreSQL carries as
		 * the whole row when there are such triggers) is sent.
		 */
		if (operation == CMD_UPDATE && trigdesc && trigdesc->trig_update_before_row)
		{
			if (!AttributeNumberIsValid(st->wholerow_junk))
				elog(ERROR, "could not find junk column \"%s\"",
					 CLOSE_WHOLEROW_JUNK);
			st->send_changed = true;
			st->old_row = ExecInitExtraTupleSlot(mtstate->ps.state,
												 RelationGetDescr(rinfo->ri_RelationDesc),
												 &TTSOpsVirtual);
		}

		/*
		 * A record matched again is written once, as PostgreSQL updates or
		 * deletes a local row once however many rows it joins.
		 */
		st->done_ids = statement_ids(mtstate->ps.state);
		if (st->done_ids == NULL &&
			intVal(list_nth(fdw_private, FdwModifyPrivateMayRepeat)) != 0)
			st->done_ids = new_id_set();
	}
	rinfo->ri_FdwState = st;
}

/*
 * An UPDATE whose new row belongs to another partition would move it: for
 * a Close record, delete it and create another, with a new id.  PostgreSQL
 * does not check a foreign partition's constraint, and routes a row from a
 * local partition into a foreign one as an insert: both are refused before
 * any request.
 */
pg_noreturn static void
refuse_partition_move(Relation rel, bool into)
{
	ereport(ERROR,
			(errcode(into ? ERRCODE_FEATURE_NOT_SUPPORTED : ERRCODE_CHECK_VIOLATION),
			 into
			 ? errmsg("cannot move a row into foreign table \"%s\" by UPDATE",
					  RelationGetRelationName(rel))
			 : errmsg("new row for foreign table \"%s\" violates its partition constraint",
					  RelationGetRelationName(rel)),
			 errdetail("close_fdw does not move a row between partitions: that would delete a Close record and create another, with a new id."),
			 errhint("Insert a new row and delete the old one instead.")));
}

/*
 * The new row as Close will store it, for its partition's constraint: a
 * NULL custom_object_type_id column is the table option's type, which the
 * POST sends.
 */
static TupleTableSlot *
row_with_type(CloseModifyState *st, TupleTableSlot *slot, EState *estate)
{
	CloseKeyColumns keys;
	TupleDesc	tupdesc = slot->tts_tupleDescriptor;
	Form_pg_attribute att;
	MemoryContext oldcxt;

	if (st->table_type_id == NULL)
		return slot;
	close_find_key_columns(RelationGetRelid(st->rel), &keys);
	if (!AttributeNumberIsValid(keys.type_attno) ||
		!slot_attisnull(slot, keys.type_attno))
		return slot;
	att = TupleDescAttr(tupdesc, keys.type_attno - 1);
	if (att->atttypid != TEXTOID && att->atttypid != VARCHAROID)
		return slot;

	if (st->part_slot == NULL)
	{
		oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);
		st->part_slot = ExecInitExtraTupleSlot(estate, tupdesc, &TTSOpsVirtual);
		MemoryContextSwitchTo(oldcxt);
	}
	ExecClearTuple(st->part_slot);
	slot_getallattrs(slot);
	memcpy(st->part_slot->tts_values, slot->tts_values,
		   sizeof(Datum) * tupdesc->natts);
	memcpy(st->part_slot->tts_isnull, slot->tts_isnull,
		   sizeof(bool) * tupdesc->natts);
	oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
	st->part_slot->tts_values[keys.type_attno - 1] =
		CStringGetTextDatum(st->table_type_id);
	st->part_slot->tts_isnull[keys.type_attno - 1] = false;
	MemoryContextSwitchTo(oldcxt);
	return ExecStoreVirtualTuple(st->part_slot);
}

/*
 * What PostgreSQL checks only after the FDW has written a row (AFTER ROW
 * triggers collecting transition tables, a view's WITH CHECK OPTION), and
 * the MERGE that moves a row into a foreign partition, refused before the
 * row's request: a write that reached Close stays there whatever the
 * statement does next.
 */
static void
check_before_write(CloseModifyState *st, ResultRelInfo *rinfo,
				   TupleTableSlot *slot, EState *estate)
{
	TransitionCaptureState *tcs = st->mtstate ? st->mtstate->mt_transition_capture : NULL;

	if (tcs &&
		((st->operation == CMD_INSERT && tcs->tcs_insert_new_table) ||
		 (st->operation == CMD_UPDATE &&
		  (tcs->tcs_update_old_table || tcs->tcs_update_new_table)) ||
		 (st->operation == CMD_DELETE && tcs->tcs_delete_old_table)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot collect transition tuples from child foreign tables"),
				 errdetail("Foreign table \"%s\" is written to by a statement whose triggers need its rows in a transition table; nothing was sent to Close.",
						   RelationGetRelationName(st->rel))));

	if (st->operation == CMD_INSERT && st->mtstate &&
		st->mtstate->operation != CMD_INSERT)
	{
		int			kind = close_routed_row_kind(st->mtstate);

		if (kind == CLOSE_ROUTED_MOVED)
			refuse_partition_move(st->rel, true);
		if (kind == CLOSE_ROUTED_MAYBE_MOVED)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot route a row of a MERGE with an UPDATE action into foreign table \"%s\"",
							RelationGetRelationName(st->rel)),
					 errdetail("close_fdw does not move a row between partitions, and on this PostgreSQL version it cannot tell a row the UPDATE action moves from one the INSERT action inserts."),
					 errhint("Use INSERT and UPDATE statements instead.")));
	}

	/*
	 * A new row must belong to its partition: PostgreSQL checks a local
	 * partition's constraint (for a row inserted into the partition itself,
	 * or changed by its BEFORE ROW trigger after routing), not a foreign
	 * one's, and Close would keep a record that the partitioned table then
	 * shows in the wrong partition.
	 */
	if (slot && st->operation == CMD_INSERT &&
		st->rel->rd_rel->relispartition)
		(void) ExecPartitionCheck(rinfo, row_with_type(st, slot, estate),
								  estate, true);

	if (slot && rinfo->ri_WithCheckOptions != NIL)
		ExecWithCheckOptions(WCO_VIEW_CHECK, rinfo, slot, estate);
}

/* COPY into a foreign table, and rows routed to a foreign partition. */
void
closeBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	CloseModifyState *st;

	check_writable(rinfo->ri_RelationDesc);
	/* (COPY's ModifyTableState has no plan) */
	check_read_write(CMD_INSERT, mtstate == NULL || mtstate->ps.plan == NULL);
	/* a row an UPDATE moves here from another partition */
	if (close_routed_row_kind(mtstate) == CLOSE_ROUTED_MOVED)
		refuse_partition_move(rinfo->ri_RelationDesc, true);
	/*
	 * A row routed here by INSERT ... ON CONFLICT DO NOTHING (a partitioned
	 * table with a foreign partition has no unique index, so no conflict
	 * target): Close has no unique constraints for a conflict to be found
	 * by, and a plain create would make the duplicate the statement means
	 * to skip.  Refused, as ON CONFLICT on the foreign table itself is.
	 */
	if (mtstate && mtstate->ps.plan && IsA(mtstate->ps.plan, ModifyTable) &&
		((ModifyTable *) mtstate->ps.plan)->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT ... ON CONFLICT is not supported by close_fdw"),
				 errdetail("A row was routed to foreign table \"%s\"; Close has no unique constraints to find a conflict by.",
						   RelationGetRelationName(rinfo->ri_RelationDesc))));

	/*
	 * The statement's column list is not known here: send every column (NULL
	 * ones are not sent on create).  RETURNING and AFTER ROW triggers see
	 * the row Close stored.
	 */
	st = create_modify_state(mtstate->ps.state, rinfo, CMD_INSERT,
							 all_columns(RelationGetDescr(rinfo->ri_RelationDesc)),
							 rinfo->ri_returningList != NIL ||
							 (rinfo->ri_TrigDesc &&
							  rinfo->ri_TrigDesc->trig_insert_after_row));
	st->mtstate = mtstate;
	if (st->deferred)
	{
		check_deferred_statement(st, rinfo->ri_TrigDesc);
		/* RETURNING, which may not be set up yet: at the first row */
		st->check_returning = true;
	}
	rinfo->ri_FdwState = st;
}

/* One field of a body: its key, its value as JSON text, and its column. */
typedef struct BodyField
{
	const char *key;
	char	   *value;
	const char *column;
} BodyField;

/* Whether two JSON texts are the same value (12.5 and 12.50 are). */
static bool
same_json(const char *a, const char *b)
{
	if (strcmp(a, b) == 0)
		return true;
	return DatumGetBool(DirectFunctionCall2(jsonb_eq,
											DirectFunctionCall1(jsonb_in, CStringGetDatum(a)),
											DirectFunctionCall1(jsonb_in, CStringGetDatum(b))));
}

/*
 * Add a field to a body.  A field may be given twice, by a typed column and
 * by a key of the custom json(b) column (a row copied from the same table
 * has both): sent once when both say the same, an error when they differ.
 */
static void
add_field(List **fields, const char *key, char *value, const char *column)
{
	BodyField  *field;
	ListCell   *lc;

	foreach(lc, *fields)
	{
		field = (BodyField *) lfirst(lc);
		if (strcmp(field->key, key) != 0)
			continue;
		if (same_json(field->value, value))
			return;
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the field \"%s\" is given twice", key),
				 errdetail("Columns \"%s\" and \"%s\" set the field to different values.",
						   field->column, column)));
	}
	field = palloc(sizeof(BodyField));
	field->key = key;
	field->value = value;
	field->column = column;
	*fields = lappend(*fields, field);
}

/*
 * The members of a custom json(b) value, which must be a JSON object.
 * json-c reads UTF-8 and keeps every number's digits; the members' keys and
 * values are UTF-8 (add_custom_map takes them back to the server encoding,
 * as the rest of the body is: http.c sends UTF-8).
 */
static List *
custom_map_members(Form_pg_attribute att, Datum value)
{
	Oid			outputfn;
	bool		isvarlena;
	char	   *text;
	const char *problem;
	struct json_object *object;

	getTypeOutputInfo(att->atttypid, &outputfn, &isvarlena);
	text = OidOutputFunctionCall(outputfn, value);
	text = pg_server_to_any(text, strlen(text), PG_UTF8);
	object = close_json_parse(text, strlen(text), CurrentMemoryContext, &problem);

	if (problem || close_json_kind(object) != CLOSE_JSON_OBJECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"%s\" must hold a JSON object keyed by custom field id",
						NameStr(att->attname))));
	return close_json_object_members(object);
}

/*
 * The members of a custom json(b) value as "custom.<key>": value.  On
 * create a null member is left out: a missing key already means not set.
 * With the value read before (old_members, a trigger's change), only the
 * members that differ from it.
 */
static void
add_custom_map(CloseModifyState *st, List **fields, Form_pg_attribute att,
			   Datum value, List *old_members)
{
	ListCell   *lc;

	foreach(lc, custom_map_members(att, value))
	{
		CloseJsonMember *member = (CloseJsonMember *) lfirst(lc);
		bool		unchanged = false;
		ListCell   *lc2;

		char	   *key = pg_any_to_server(member->key, strlen(member->key),
											   PG_UTF8);
		char	   *json = pg_any_to_server(member->value,
											strlen(member->value), PG_UTF8);

		if (st->operation == CMD_INSERT && strcmp(json, "null") == 0)
			continue;
		foreach(lc2, old_members)
		{
			CloseJsonMember *old = (CloseJsonMember *) lfirst(lc2);

			if (strcmp(old->key, member->key) == 0)
			{
				unchanged = same_json(pg_any_to_server(old->value,
													   strlen(old->value),
													   PG_UTF8),
									  json);
				break;
			}
		}
		if (unchanged)
			continue;
		add_field(fields, psprintf("%s%s", CLOSE_CUSTOM_PREFIX, key),
				  json, NameStr(att->attname));
	}
}

pg_noreturn static void
refuse_insert_column(CloseModifyState *st, Form_pg_attribute att,
					 ColumnKind kind)
{
	const char *key = close_column_key(st->conv, att->attnum);

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot insert a value into column \"%s\" of foreign table \"%s\"",
					NameStr(att->attname), RelationGetRelationName(st->rel)),
			 kind == COLUMN_READ_ONLY
			 ? errdetail("The column maps to the read-only field \"%s\", which Close sets.", key)
			 : errdetail("The column maps to \"%s\", which is not a field Close takes.", key),
			 kind == COLUMN_UNKNOWN && st->res->open_keys
			 ? errhint("To send the key anyway, give the column OPTIONS (field '%s'): Close ignores a key it does not take, and close_fdw then warns.",
					   key)
			 : 0));
}

/* An UPDATE may not set this column to NULL: why (a fact) or what to do. */
pg_noreturn static void
refuse_null(CloseModifyState *st, Form_pg_attribute att, const char *detail,
			const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("column \"%s\" of foreign table \"%s\" cannot be set to NULL",
					NameStr(att->attname), RelationGetRelationName(st->rel)),
			 detail ? errdetail("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}

/*
 * The key a write sends a column's key as: a resource key's write_key
 * (a status's label is written as "status"), else the key itself.
 */
static const char *
sent_key(const CloseResource *res, const char *key)
{
	const CloseResourceKey *k = close_resource_key(res, key);

	return k && k->write_key ? k->write_key : key;
}

/* The key Close answers a key sent as (the reverse of sent_key). */
static const char *
answered_key(const CloseResource *res, const char *key)
{
	const CloseResourceKey *k;

	for (k = res->keys; k->key; k++)
		if (k->write_key && strcmp(k->write_key, key) == 0)
			return k->key;
	return key;
}

/*
 * The lead_id of a new contact, opportunity or custom object, as JSON text:
 * it must be a lead's id.  Close takes a lead_id that says nothing (null,
 * as a json(b) column may hold, or "", 0, false) as no lead, and creates a
 * new lead for the record: refused before any request, as a missing one.
 */
static void
check_new_lead_id(CloseModifyState *st, Form_pg_attribute att,
				  const char *json)
{
	const char *problem;
	struct json_object *value;
	const char *id = NULL;
	size_t		len;

	value = close_json_parse(json, strlen(json), CurrentMemoryContext,
							 &problem);
	if (problem == NULL && close_json_kind(value) == CLOSE_JSON_STRING)
		id = close_json_scalar_text(value, &len);
	if (id == NULL || !close_is_valid_id(id, CLOSE_PREFIX_LEAD))
	{
		int			shown = pg_mbcliplen(json, strlen(json), 60);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"%s\" of foreign table \"%s\" holds no Close lead id",
						NameStr(att->attname), RelationGetRelationName(st->rel)),
				 errdetail("A new Close %s needs the id of its lead (\"lead_\" and letters and digits), not %.*s%s: Close may create a new lead for a lead_id that says nothing. Nothing was sent.",
						   close_resource_noun(st->res, false), shown, json,
						   json[shown] != '\0' ? "..." : "")));
	}

	/*
	 * A lead whose DELETE is queued is gone at COMMIT, with what it holds:
	 * an object created in it at once would be counted now and deleted
	 * then, where in statement order its INSERT would have failed.
	 */
	if (!st->deferred &&
		object_deleted_in_queue(psprintf("%s%s/",
										 close_resource_by_name("lead")->path,
										 id)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot create a %s through foreign table \"%s\" in a lead whose DELETE is queued in this transaction",
						close_resource_noun(st->res, false),
						RelationGetRelationName(st->rel)),
				 errdetail("The DELETE of lead %s (write_mode 'deferred') reaches Close at COMMIT and deletes what the lead holds; this table's write_mode 'immediate' would create the %s at once, before it.",
						   id, close_resource_noun(st->res, false)),
				 errhint("Commit first, or create it through a table with write_mode 'deferred' (it then fails at COMMIT, as the lead is gone).")));
}

/*
 * The JSON body for one row: the fields of the columns attrs, by kind.  For
 * INSERT also the table's type and the checks Close would otherwise make
 * with a 400 after the request.  old is the row read, for an UPDATE that
 * sends what a trigger changed (NULL otherwise): a custom json(b) column
 * the statement does not assign then sends only the keys that changed.
 */
static char *
build_body(CloseModifyState *st, TupleTableSlot *slot, List *attrs,
		   TupleTableSlot *old)
{
	TupleDesc	tupdesc = RelationGetDescr(st->rel);
	StringInfoData body;
	List	   *fields = NIL;
	bool		insert = st->operation == CMD_INSERT;
	bool		has_type = false;
	bool		has_lead = false;
	bool		has_name = false;
	bool		check_lead = false;
	ListCell   *lc;

	slot_getallattrs(slot);

	foreach(lc, attrs)
	{
		AttrNumber	attnum = lfirst_int(lc);
		Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);
		ColumnKind	kind = st->kinds[attnum - 1];
		const char *key = close_column_key(st->conv, attnum);
		Datum		value = slot->tts_values[attnum - 1];
		bool		isnull = slot->tts_isnull[attnum - 1];
		StringInfoData json;

		if (att->attisdropped)
			continue;
		switch (kind)
		{
			case COLUMN_READ_ONLY:
			case COLUMN_UNKNOWN:
				if (!isnull)
					refuse_insert_column(st, att, kind);
				continue;
			case COLUMN_CREATE_ONLY:
			case COLUMN_WRITABLE:
				/* on create, a missing key already means not set */
				if (isnull && (insert || kind == COLUMN_CREATE_ONLY))
					continue;
				if (strcmp(key, CLOSE_KEY_TYPE_ID) == 0)
				{
					if (st->table_type_id &&
						strcmp(TextDatumGetCString(value), st->table_type_id) != 0)
						ereport(ERROR,
								(errcode(ERRCODE_CHECK_VIOLATION),
								 errmsg("custom_object_type_id \"%s\" conflicts with the type of foreign table \"%s\"",
										TextDatumGetCString(value),
										RelationGetRelationName(st->rel)),
								 errdetail("The table has OPTIONS (custom_object_type_id '%s').",
										   st->table_type_id)));
					has_type = true;
				}
				else if (strcmp(key, CLOSE_KEY_LEAD_ID) == 0 && !isnull)
				{
					has_lead = true;
					check_lead = insert && st->res->insert_needs_lead;
				}
				else if (strcmp(key, "name") == 0 && st->res->name_required)
				{
					if (isnull)
						refuse_null(st, att,
									psprintf("Every Close %s has a name.",
											 close_resource_noun(st->res, false)),
									NULL);
					has_name = true;
				}
				break;
			case COLUMN_CUSTOM_FIELD:
				/* on create, a missing key already means not set */
				if (isnull && insert)
					continue;
				break;
			case COLUMN_CUSTOM_MAP:
				if (isnull && insert)
					continue;
				if (isnull)
					refuse_null(st, att, NULL,
								"To clear a custom field, set its key to null: '{\"cf_...\": null}'.");
				add_custom_map(st, &fields, att, value,
							   old && !old->tts_isnull[attnum - 1] &&
							   !list_member_int(st->target_attrs, attnum)
							   ? custom_map_members(att, old->tts_values[attnum - 1])
							   : NIL);
				continue;
		}
		initStringInfo(&json);
		close_append_json_value(&json, st->conv, attnum, value, isnull);
		if (check_lead)
			check_new_lead_id(st, att, json.data);
		check_lead = false;
		add_field(&fields, sent_key(st->res, key), json.data,
				  NameStr(att->attname));
	}

	if (insert)
	{
		/* the keys a new record needs, from the resource */
		bool		needs_type = close_resource_key(st->res, CLOSE_KEY_TYPE_ID) != NULL;
		const char *missing = NULL;

		if (!has_type && st->table_type_id)
		{
			StringInfoData json;

			initStringInfo(&json);
			escape_json(&json, st->table_type_id);
			add_field(&fields, CLOSE_KEY_TYPE_ID, json.data, "(table option)");
			has_type = true;
		}
		if (st->res->insert_needs_lead && !has_lead)
			missing = CLOSE_KEY_LEAD_ID;
		else if (st->res->name_required && !has_name)
			missing = "name";
		else if (needs_type && !has_type)
			missing = CLOSE_KEY_TYPE_ID;
		if (missing && needs_type)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("a new Close custom object needs a %s", missing),
					 errdetail("Close requires lead_id, name and custom_object_type_id to create a custom object."),
					 !has_type
					 ? errhint("Insert a value into a column mapped to custom_object_type_id, or give the table OPTIONS (custom_object_type_id '...').")
					 : 0));

		/*
		 * Close takes a contact or opportunity without a lead_id, and makes
		 * a new lead for it: refused, as a lead_id left out by mistake.
		 */
		if (missing)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("a new Close %s needs a %s",
							close_resource_noun(st->res, false), missing),
					 strcmp(missing, CLOSE_KEY_LEAD_ID) == 0
					 ? errdetail("Without a lead_id, Close would create a new lead for the %s; nothing was sent.",
								 close_resource_noun(st->res, false))
					 : errdetail("Nothing was sent."),
					 strcmp(missing, CLOSE_KEY_LEAD_ID) == 0
					 ? errhint("Insert the lead first (foreign table of resource \"lead\"), then its %s with that lead's id.",
							   close_resource_noun(st->res, true))
					 : 0));
	}

	initStringInfo(&body);
	appendStringInfoChar(&body, '{');
	foreach(lc, fields)
	{
		BodyField  *field = (BodyField *) lfirst(lc);

		if (body.len > 1)
			appendStringInfoChar(&body, ',');
		escape_json(&body, field->key);
		appendStringInfoChar(&body, ':');
		appendStringInfoString(&body, field->value);
	}
	appendStringInfoChar(&body, '}');
	return body.data;
}

/*
 * The row as the scan read it, from the whole-row junk column, into slot
 * (which points into the junk value: valid while the plan's row is).
 */
static void
whole_row(CloseModifyState *st, TupleTableSlot *planSlot, TupleTableSlot *slot)
{
	bool		isnull;
	Datum		wholerow = ExecGetJunkAttribute(planSlot, st->wholerow_junk,
												&isnull);
	HeapTupleHeader header;
	HeapTupleData tuple;

	ExecClearTuple(slot);
	if (isnull)
		return;
	header = DatumGetHeapTupleHeader(wholerow);
	tuple.t_len = HeapTupleHeaderGetDatumLength(header);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = header;
	heap_deform_tuple(&tuple, slot->tts_tupleDescriptor,
					  slot->tts_values, slot->tts_isnull);
	ExecStoreVirtualTuple(slot);
}

/*
 * The columns an UPDATE with BEFORE ROW triggers sends: those it assigns,
 * and every other whose new value differs from the row read (a trigger's
 * change; an unchanged value, maybe rounded by its column type, is never
 * written back).  A trigger may not change what Close would not.
 */
static List *
changed_columns(CloseModifyState *st, TupleTableSlot *slot,
				TupleTableSlot *old)
{
	TupleDesc	tupdesc = RelationGetDescr(st->rel);
	List	   *attrs = list_copy(st->target_attrs);
	int			i;

	slot_getallattrs(slot);
	if (TTS_EMPTY(old))
		elog(ERROR, "the row read is missing");
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		const char *key;
		ColumnKind	kind;

		if (att->attisdropped || list_member_int(attrs, i + 1))
			continue;
		if (slot->tts_isnull[i] == old->tts_isnull[i] &&
			(slot->tts_isnull[i] ||
			 datum_image_eq(slot->tts_values[i], old->tts_values[i],
							att->attbyval, att->attlen)))
			continue;
		kind = column_kind(st->rel, att, &key);
		if (kind == COLUMN_READ_ONLY || kind == COLUMN_UNKNOWN ||
			kind == COLUMN_CREATE_ONLY)
			refuse_update_column(st->rel, att, kind, key);
		attrs = lappend_int(attrs, i + 1);
	}
	return attrs;
}

/* The id of the row to change, from the scan's junk column. */
static char *
row_id(CloseModifyState *st, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		value = ExecGetJunkAttribute(planSlot, st->id_junk, &isnull);
	char	   *id;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("a row of foreign table \"%s\" has no id",
						RelationGetRelationName(st->rel))));
	id = TextDatumGetCString(value);
	if (!close_is_valid_id(id, st->res->id_prefix))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("\"%s\" is not a Close %s id", id,
						close_resource_noun(st->res, false))));
	return id;
}

/* The path of one record: the resource's path, the id (base62) and "/". */
static char *
record_path(CloseModifyState *st, const char *id)
{
	return psprintf("%s%s/", st->res->path, id);
}

/* A string member of a record, palloc'd, or NULL. */
static char *
json_text_member(struct json_object *record, const char *key)
{
	struct json_object *value;
	size_t		len;

	if (record == NULL || close_json_kind(record) != CLOSE_JSON_OBJECT)
		return NULL;
	value = close_json_object_get(record, key);
	if (value == NULL || close_json_kind(value) != CLOSE_JSON_STRING)
		return NULL;
	return pstrdup(close_json_scalar_text(value, &len));
}

/* The lead_id of a POST's body, or NULL. */
static char *
body_lead(const char *body)
{
	const char *problem;
	struct json_object *root;

	if (body == NULL)
		return NULL;
	root = close_json_parse(body, strlen(body), CurrentMemoryContext, &problem);
	return problem ? NULL : json_text_member(root, CLOSE_KEY_LEAD_ID);
}

/*
 * The record id of a PUT's or DELETE's path, its last segment (ids are
 * checked to be base62, so the path holds the id as it is), or NULL.
 */
static char *
path_object_id(const char *path)
{
	size_t		len = strlen(path);
	const char *end;
	const char *start;

	if (len < 2 || path[len - 1] != '/')
		return NULL;
	end = path + len - 1;
	for (start = end; start > path && start[-1] != '/'; start--)
		;
	if (start == end || start == path)
		return NULL;
	return pnstrdup(start, end - start);
}

static const char *
record_id(struct json_object *record)
{
	size_t		len;

	return close_json_scalar_text(close_json_object_get(record, CLOSE_KEY_ID),
								  &len);
}

/* ---- what Close answered against what was sent ---- */

/*
 * The digits of a phone number, without leading zeros (a trunk prefix),
 * nor a "(0)" (the trunk prefix written after a country code, "+44 (0)20
 * ...", which E.164 drops).
 */
static char *
phone_digits(const char *text)
{
	StringInfoData buf;
	const char *p;

	initStringInfo(&buf);
	for (p = text; *p; p++)
	{
		if (p[0] == '(' && p[1] == '0' && p[2] == ')')
		{
			p += 2;
			continue;
		}
		if (*p >= '0' && *p <= '9' && (buf.len > 0 || *p != '0'))
			appendStringInfoChar(&buf, *p);
	}
	return buf.data;
}

/* n decimal digits at *p, as a number; false if there are fewer. */
static bool
read_digits(const char **p, int n, int *value)
{
	int			i;

	*value = 0;
	for (i = 0; i < n; i++)
	{
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		*value = *value * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return true;
}

/*
 * An ISO 8601 date and time (YYYY-MM-DD, "T" or a space, hh:mm[:ss[.f]],
 * then Z, +hh[:mm], -hh[:mm] or nothing for UTC) as microseconds since
 * 1970 UTC; false for anything else.  Never an error: it reads what Close
 * answers, to compare it with what was sent.
 */
static bool
iso_instant(const char *p, int64 *usec)
{
	int			y,
				mo,
				d,
				h,
				mi,
				sec = 0,
				oh = 0,
				om = 0,
				sign = 0;
	int64		frac = 0;
	int			scale = 1000000;
	int64		days;
	int			era;
	int			yoe,
				doy;

	if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) ||
		*p++ != '-' || !read_digits(&p, 2, &d) ||
		(*p != 'T' && *p != 't' && *p != ' '))
		return false;
	p++;
	if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi))
		return false;
	if (*p == ':')
	{
		p++;
		if (!read_digits(&p, 2, &sec))
			return false;
		if (*p == '.')
		{
			p++;
			if (*p < '0' || *p > '9')
				return false;
			for (; *p >= '0' && *p <= '9'; p++)
				if (scale > 1)
				{
					scale /= 10;
					frac += (*p - '0') * scale;
				}
		}
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		sign = *p++ == '-' ? -1 : 1;
		if (!read_digits(&p, 2, &oh))
			return false;
		if (*p == ':')
			p++;
		if (*p != '\0' && !read_digits(&p, 2, &om))
			return false;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
		mi > 59 || sec > 60 || oh > 23 || om > 59)
		return false;

	/* days since 1970-01-01 of a proleptic Gregorian date */
	y -= mo <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	days = (int64) era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	*usec = ((days * 86400 + h * 3600 + mi * 60 + sec) -
			 (int64) sign * (oh * 3600 + om * 60)) * 1000000 + frac;
	return true;
}

/* Whether a JSON value says "nothing": absent, null, "" or []. */
static bool
json_is_empty(struct json_object *value)
{
	size_t		len;

	switch (close_json_kind(value))
	{
		case CLOSE_JSON_NULL:
			return true;
		case CLOSE_JSON_STRING:
			(void) close_json_scalar_text(value, &len);
			return len == 0;
		case CLOSE_JSON_ARRAY:
			return close_json_array_length(value) == 0;
		default:
			return false;
	}
}

/*
 * Whether Close kept the value sent for key, answering got (NULL when the
 * key is absent).  The same JSON value is kept, and so is what Close
 * normalises: a number written another way (12.5, 12.50), a date and
 * time written another way (the same instant), an email address in
 * another case, a phone number rewritten as E.164 (its digits
 * end with the digits sent, leading zeros and a "(0)" left out), an
 * object with more keys than were sent (every key sent kept: a phone's
 * phone_formatted and country), an array whose elements are each kept, in
 * order.  Nothing
 * sent ("" , [] or null) is kept by an absent or empty answer.  Anything
 * else (an absent key among them) was not kept.
 */
static bool
same_as_sent(const char *key, struct json_object *sent, struct json_object *got)
{
	CloseJsonKind kind = close_json_kind(sent);
	size_t		len;

	if (json_is_empty(sent) && json_is_empty(got))
		return true;
	if (kind != close_json_kind(got))
		return false;
	switch (kind)
	{
		case CLOSE_JSON_NULL:
			return true;
		case CLOSE_JSON_BOOL:
			return close_json_bool(sent) == close_json_bool(got);
		case CLOSE_JSON_NUMBER:
			return same_json(close_json_scalar_text(sent, &len),
							 close_json_scalar_text(got, &len));
		case CLOSE_JSON_STRING:
			{
				const char *a = close_json_scalar_text(sent, &len);
				const char *b = close_json_scalar_text(got, &len);
				int64		ta,
							tb;

				if (strcmp(a, b) == 0)
					return true;
				/* a date and time: the same instant, however written */
				if (iso_instant(a, &ta) && iso_instant(b, &tb))
					return ta == tb;
				if (key && strcmp(key, "email") == 0)
					return pg_strcasecmp(a, b) == 0;
				if (key && strcmp(key, "phone") == 0)
				{
					char	   *da = phone_digits(a);
					char	   *db = phone_digits(b);
					size_t		la = strlen(da);
					size_t		lb = strlen(db);

					return la > 0 && lb >= la && strcmp(db + lb - la, da) == 0;
				}
				return false;
			}
		case CLOSE_JSON_ARRAY:
			{
				int			n = close_json_array_length(sent);
				int			i;

				if (close_json_array_length(got) != n)
					return false;
				for (i = 0; i < n; i++)
					if (!same_as_sent(key, close_json_array_get(sent, i),
									  close_json_array_get(got, i)))
						return false;
				return true;
			}
		case CLOSE_JSON_OBJECT:
			{
				ListCell   *lc;

				foreach(lc, close_json_object_members(sent))
				{
					const char *member = ((CloseJsonMember *) lfirst(lc))->key;

					if (!same_as_sent(member, close_json_object_get(sent, member),
									  close_json_object_get(got, member)))
						return false;
				}
				return true;
			}
	}
	return false;
}

/* How messages name the column that sent key. */
static char *
mismatch_label(CloseModifyState *st, const char *key)
{
	const char *column = close_column_for_key(st->conv, key);
	int			i;

	if (column == NULL)
		return psprintf("key \"%s\"", key);
	for (i = 0; i < st->conv->natts; i++)
	{
		const char *ckey = close_column_key(st->conv, i + 1);

		if (ckey && strcmp(ckey, key) == 0 &&
			!close_column_is_custom_map(st->conv, i + 1))
			return psprintf("\"%s\"", column);
	}
	return psprintf("\"%s\" (key \"%s\")", column, key);
}

/*
 * Compare the answer to a POST or PUT with its body: each key sent that
 * Close did not keep (same_as_sent) is counted against its column, for
 * the statement's WARNING (report_mismatches).  Close takes keys it does
 * not know, or cannot set, and answers 200 all the same.
 */
static void
check_answer(CloseModifyState *st, const char *body, struct json_object *record)
{
	MemoryContext cxt = GetMemoryChunkContext(st);
	const char *problem;
	struct json_object *sent;
	bool		differs = false;
	ListCell   *lc;

	if (body == NULL)
		return;
	sent = close_json_parse(body, strlen(body), CurrentMemoryContext, &problem);
	if (problem || close_json_kind(sent) != CLOSE_JSON_OBJECT)
		return;
	foreach(lc, close_json_object_members(sent))
	{
		const char *key = ((CloseJsonMember *) lfirst(lc))->key;
		const char *got_key = answered_key(st->res, key);
		char	   *label;
		AnswerMismatch *m = NULL;
		ListCell   *lc2;

		if (same_as_sent(key, close_json_object_get(sent, key),
						 close_json_object_get(record, got_key)))
			continue;
		differs = true;
		label = mismatch_label(st, got_key);
		foreach(lc2, st->mismatches)
			if (strcmp(((AnswerMismatch *) lfirst(lc2))->label, label) == 0)
				m = (AnswerMismatch *) lfirst(lc2);
		if (m == NULL)
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

			m = palloc0(sizeof(AnswerMismatch));
			m->label = pstrdup(label);
			st->mismatches = lappend(st->mismatches, m);
			MemoryContextSwitchTo(oldcxt);
		}
		m->rows++;
	}
	if (differs)
		st->mismatch_rows++;
}

/*
 * One WARNING for a statement's rows whose answers did not keep what was
 * sent, naming each column with its count; then forget them.
 */
static void
report_mismatches(CloseModifyState *st)
{
	StringInfoData columns;
	ListCell   *lc;

	if (st == NULL || st->mismatch_rows == 0)
		return;
	initStringInfo(&columns);
	foreach(lc, st->mismatches)
	{
		AnswerMismatch *m = (AnswerMismatch *) lfirst(lc);

		appendStringInfo(&columns, "%s%s (%lld row%s)",
						 columns.len > 0 ? ", " : "", m->label,
						 (long long) m->rows, m->rows == 1 ? "" : "s");
	}
	ereport(WARNING,
			(errcode(ERRCODE_WARNING),
			 errmsg("Close did not keep values written to foreign table \"%s\" in %lld row%s",
					RelationGetRelationName(st->rel),
					(long long) st->mismatch_rows,
					st->mismatch_rows == 1 ? "" : "s"),
			 errdetail("Close answered other values, or none, for: %s.",
					   columns.data),
			 errhint("Close ignores a key it does not take; RETURNING and later reads show what it kept.")));
	st->mismatches = NIL;
	st->mismatch_rows = 0;
}

/*
 * Judge the answer to one write: return the parsed record (NULL for
 * DELETE), set *missing for a 404 on an existing id (the record is gone),
 * and report anything else as an error.  A DELETE whose earlier attempt
 * may have acted (its answer lost) and whose retry gets 404 most likely
 * deleted the record itself: it counts as deleted, and st->gone_on_retry
 * says so to the write log.
 */
static struct json_object *
judge_write(CloseModifyState *st, CloseConnection *conn, const char *method,
			const char *path, const char *body, CloseResponse *response,
			bool *missing)
{
	struct json_object *record = NULL;
	struct json_object *id;

	*missing = false;
	st->gone_on_retry = false;
	st->last_status = (int) response->status;
	st->last_lead = NULL;
	if (response->status == 404 && st->operation != CMD_INSERT)
	{
		if (st->operation == CMD_DELETE && response->may_have_acted)
			st->gone_on_retry = true;
		else
		{
			*missing = true;
			write_entry_add(st, path_object_id(path), NULL, 404, WRITE_FAILED);
		}
		return NULL;
	}
	if (st->operation == CMD_DELETE)
	{
		/* 204 with no body; older resources answer 200 {} */
		if (response->status != 204 && response->status != 200)
			close_report_http_error(conn, method, path, response, st->conv);
		return NULL;
	}
	if (response->status != (st->operation == CMD_INSERT ? 201 : 200) &&
		response->status != 200)
		close_report_http_error(conn, method, path, response, st->conv);
	record = close_parse_answer(method, path, response, CurrentMemoryContext);
	id = close_json_kind(record) == CLOSE_JSON_OBJECT
		? close_json_object_get(record, CLOSE_KEY_ID) : NULL;
	if (id == NULL || close_json_kind(id) != CLOSE_JSON_STRING)
		close_report_bad_answer(method, path,
								psprintf("Expected the %s record, with its id.",
										 close_resource_noun(st->res, false)));
	st->last_lead = json_text_member(record, CLOSE_KEY_LEAD_ID);
	check_answer(st, body, record);
	return record;
}

/* Log a write that took effect (its answer was the last judged). */
static void
log_written(CloseModifyState *st, const char *id)
{
	if (st->gone_on_retry)
		write_log_add(st->log, psprintf("%s (the retry found it gone)", id));
	else
		write_log_add(st->log, id);
	write_entry_add(st, id, st->last_lead, st->last_status, WRITE_SENT);
	/* Close's reads lag its deletes: scans skip it (answers.c) */
	if (st->operation == CMD_DELETE)
		close_note_deleted(id);
}

/*
 * Log a write that surely did not take effect: refused by Close (status),
 * or never sent (status 0).
 */
static void
log_failed(CloseModifyState *st, const char *method, const char *path,
		   const char *body, int status)
{
	if (strcmp(method, "POST") == 0)
		write_entry_add(st, NULL, body_lead(body), status, WRITE_FAILED);
	else
		write_entry_add(st, path_object_id(path), NULL, status, WRITE_FAILED);
}

/*
 * Whether a write that failed may still have taken effect: a request went
 * out with no answer read (a cancel, a lost answer, a 5xx but 501 and
 * 503), or Close said it succeeded in an answer that cannot be read.
 */
static bool
answer_leaves_doubt(CloseResponse *response)
{
	return response->may_have_acted ||
		(response->status >= 200 && response->status < 300);
}

/*
 * Log a write whose outcome is unknown: a POST by the lead of its body, a
 * PUT or DELETE by the record of its path (ids are checked to be base62,
 * so the path holds the id as it is).
 */
static void
log_unsure_write(CloseModifyState *st, const char *method, const char *path,
				 const char *body, int status)
{
	const char *key = "";

	if (strcmp(method, "POST") == 0)
	{
		const char *problem;
		struct json_object *root = NULL;
		struct json_object *lead = NULL;
		size_t		len;

		if (body)
			root = close_json_parse(body, strlen(body), CurrentMemoryContext,
									&problem);
		if (root && close_json_kind(root) == CLOSE_JSON_OBJECT)
			lead = close_json_object_get(root, CLOSE_KEY_LEAD_ID);
		if (lead && close_json_kind(lead) == CLOSE_JSON_STRING)
			key = pstrdup(close_json_scalar_text(lead, &len));
	}
	else if ((key = path_object_id(path)) == NULL)
		key = pstrdup(path);
	write_log_maybe(st->log, key);
	if (strcmp(method, "POST") == 0)
		write_entry_add(st, NULL, key, status, WRITE_MAYBE);
	else
		write_entry_add(st, path_object_id(path), NULL, status, WRITE_MAYBE);
}

/*
 * Re-throw the error being handled with what stays written in Close, and
 * what may have been written, added to its detail, once per write log
 * entry.  A cancel or statement_timeout comes through here too: it then
 * also says which requests it stopped in flight (the caller logs them
 * first).  The caller has switched to cxt.
 */
pg_noreturn static void
rethrow_with_write_log(CloseModifyState *st, MemoryContext cxt)
{
	ErrorData  *edata;
	char	   *written;
	int64		new_maybe = st->log->maybe - st->log->maybe_reported;

	if (st->log->count <= st->log->reported && new_maybe <= 0)
		PG_RE_THROW();
	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	written = write_log_text(st->log);
	edata->detail = edata->detail
		? psprintf("%s\n%s", edata->detail, written) : written;
	if (new_maybe > 0 && edata->hint == NULL)
		edata->hint = new_maybe == 1
			? pstrdup("The request may have reached Close and taken effect; check before repeating it.")
			: pstrdup("The requests may have reached Close and taken effect; check before repeating them.");
	st->log->reported = st->log->count;
	st->log->maybe_reported = st->log->maybe;
	ReThrowError(edata);
}

/*
 * Send one write; on success return the parsed answer (NULL for DELETE).
 * An error (a cancel too) says what the statement had already written, and
 * that this write may have reached Close when it may have.  *missing is
 * set for a 404 on an existing id (the record is gone).
 */
static struct json_object *
send_write(CloseModifyState *st, const char *method, const char *path,
		   const char *body, bool *missing)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	struct json_object *record = NULL;
	/* not on the stack: read after a longjmp */
	CloseResponse *response = palloc0(sizeof(CloseResponse));

	PG_TRY();
	{
		CloseConnection *conn = close_get_connection(st->user);

		close_http_request(conn, method, path, body, response);
		record = judge_write(st, conn, method, path, body, response, missing);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		if (answer_leaves_doubt(response))
			log_unsure_write(st, method, path, body, (int) response->status);
		else if (response->attempts > 0)
			log_failed(st, method, path, body, (int) response->status);
		rethrow_with_write_log(st, oldcxt);
	}
	PG_END_TRY();
	return record;
}

/*
 * Log one write whose answer says it took effect, and clear its *unsure.
 * An answer that claims success but cannot be read is kept in *first_error
 * (in error_cxt) rather than thrown, so that the other writes of its round
 * are logged first; its *unsure stays set.
 */
static void
log_if_written(CloseModifyState *st, CloseConnection *conn,
			   const char *method, const char *path, const char *body,
			   CloseResponse *response, const char *id, bool *written,
			   bool *unsure, ErrorData **first_error, MemoryContext error_cxt)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		bool		missing;
		struct json_object *record;

		record = judge_write(st, conn, method, path, body, response, &missing);
		*written = !missing;
		*unsure = false;
		if (!missing)
			log_written(st, id ? id : record_id(record));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(error_cxt);
		if (*first_error == NULL)
			*first_error = CopyErrorData();
		FlushErrorState();
		MemoryContextSwitchTo(cxt);
	}
	PG_END_TRY();
}

/* The write log entries that follow are those of write i of a round. */
static void
item_statement(CloseModifyState *st, int i)
{
	if (st->item_cids)
		st->cid = st->item_cids[i];
	st->item_index = i;
}

/* A chunk of send_writes being judged (read after a longjmp). */
typedef struct WriteChunk
{
	CloseResponse *responses;
	bool	   *judged;			/* has its entry, or is being resent */
	int			start;			/* its first write */
	int			sent;			/* its writes sent; 0: none being judged */
} WriteChunk;

/*
 * Send n writes of one kind, up to max_concurrency at once
 * (close_http_send_many: within the pacing, one attempt each), and log
 * each that took effect: ids[i] names the record of a PUT or DELETE (NULL
 * for POST, whose record's id Close answers).  Every write is logged
 * before any failure of its round is reported, so an error still says
 * exactly what stays written, and what may be: every write of the round
 * whose outcome is unknown (sent with no readable answer, also those a
 * cancel stopped in flight) is logged as such before the error goes on.
 * A write that surely had no effect (not sent, refused with 429, no
 * connection; for PUT and DELETE also a lost answer or a 502-504) is sent
 * again alone, with the usual retries; a POST that may have reached Close
 * never is.  written[i] is false for a record that was gone (404).
 */
static void
send_writes(CloseModifyState *st, const char *method, char **ids,
			char **bodies, int n, bool *written)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext round_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"close_fdw write round",
													ALLOCSET_DEFAULT_SIZES);
	char	  **paths = palloc(sizeof(char *) * Max(n, 1));

	/*
	 * Read after a longjmp, so not on the stack: which writes may have taken
	 * effect unlogged, and the write being sent again alone (-1: none).
	 */
	bool	   *unsure = palloc0(sizeof(bool) * Max(n, 1));
	CloseResponse *resend = palloc0(sizeof(CloseResponse));
	int		   *resending = palloc(sizeof(int));
	/* the chunk being judged: its answers, and which have their entry */
	WriteChunk *cur = palloc0(sizeof(WriteChunk));
	int			i;

	*resending = -1;
	for (i = 0; i < n; i++)
		paths[i] = ids ? record_path(st, ids[i]) : (char *) st->res->path;

	PG_TRY();
	{
		CloseConnection *conn = close_get_connection(st->user);
		int			start;

		/* max_concurrency 1: one request after another, as a single write */
		for (i = 0; st->max_concurrency <= 1 && i < n; i++)
		{
			bool		missing;
			struct json_object *record;

			CHECK_FOR_INTERRUPTS();
			item_statement(st, i);
			MemoryContextReset(round_cxt);
			MemoryContextSwitchTo(round_cxt);
			record = send_write(st, method, paths[i],
								bodies ? bodies[i] : NULL, &missing);
			written[i] = !missing;
			if (!missing)
				log_written(st, ids ? ids[i] : record_id(record));
			MemoryContextSwitchTo(oldcxt);
		}

		for (start = st->max_concurrency <= 1 ? n : 0; start < n;)
		{
			int			chunk = Min(n - start, Max(st->max_concurrency, 1));
			CloseResponse *responses;
			bool	   *judged;
			ErrorData  *first_error = NULL;
			int			sent;

			MemoryContextReset(round_cxt);
			MemoryContextSwitchTo(round_cxt);
			responses = palloc0(sizeof(CloseResponse) * chunk);
			judged = palloc0(sizeof(bool) * chunk);
			sent = close_http_send_many(conn, method, paths + start,
										bodies ? bodies + start : NULL,
										chunk, responses);
			cur->responses = responses;
			cur->judged = judged;
			cur->start = start;
			cur->sent = sent;
			for (i = 0; i < sent; i++)
				unsure[start + i] = answer_leaves_doubt(&responses[i]);

			/*
			 * First log everything that took effect; an answer that claims
			 * success but cannot be read is reported after that.
			 */
			for (i = 0; i < sent; i++)
			{
				CloseResponse *r = &responses[i];

				item_statement(st, start + i);
				if (r->transport_error != 0 || r->resend_safe ||
					!(r->status == 200 || r->status == 201 || r->status == 204 ||
					  (r->status == 404 && st->operation != CMD_INSERT)))
					continue;
				judged[i] = true;
				log_if_written(st, conn, method, paths[start + i],
							   bodies ? bodies[start + i] : NULL, r,
							   ids ? ids[start + i] : NULL, &written[start + i],
							   &unsure[start + i], &first_error, oldcxt);
			}
			if (first_error)
				ReThrowError(first_error);

			/*
			 * then send again, alone, what surely did nothing; or report (a
			 * cancel goes through here)
			 */
			for (i = 0; i < sent; i++)
			{
				CloseResponse *r = &responses[i];
				bool		missing;
				struct json_object *record;

				if (judged[i])
					continue;
				item_statement(st, start + i);
				CHECK_FOR_INTERRUPTS();
				judged[i] = true;	/* logged below, or as resending */
				if (!r->resend_safe || !close_http_may_retry(conn, r))
				{
					if (!unsure[start + i])
						log_failed(st, method, paths[start + i],
								   bodies ? bodies[start + i] : NULL,
								   (int) r->status);
					if (r->transport_error != 0)
						close_report_transport_error(conn, method,
													 paths[start + i], r);
					close_report_http_error(conn, method, paths[start + i], r,
											st->conv);
				}
				*resending = start + i;
				close_http_request(conn, method, paths[start + i],
								   bodies ? bodies[start + i] : NULL, resend);
				/* a lost first answer counts, as in a retry of its own */
				resend->may_have_acted |= r->may_have_acted;
				record = judge_write(st, conn, method, paths[start + i],
									 bodies ? bodies[start + i] : NULL, resend,
									 &missing);
				*resending = -1;
				unsure[start + i] = false;
				written[start + i] = !missing;
				if (!missing)
					log_written(st, ids ? ids[start + i] : record_id(record));
			}
			MemoryContextSwitchTo(oldcxt);
			cur->sent = 0;
			start += sent;
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		int			j;

		MemoryContextSwitchTo(oldcxt);
		if (*resending >= 0 && answer_leaves_doubt(resend))
			unsure[*resending] = true;
		else if (*resending >= 0 && resend->attempts > 0)
		{
			item_statement(st, *resending);
			log_failed(st, method, paths[*resending],
					   bodies ? bodies[*resending] : NULL,
					   (int) resend->status);
		}
		/*
		 * the chunk's writes refused, or surely not done, that an earlier
		 * write's error left unjudged
		 */
		for (j = 0; j < cur->sent; j++)
		{
			if (cur->judged[j] || unsure[cur->start + j])
				continue;
			item_statement(st, cur->start + j);
			log_failed(st, method, paths[cur->start + j],
					   bodies ? bodies[cur->start + j] : NULL,
					   (int) cur->responses[j].status);
		}
		for (j = 0; j < n; j++)
		{
			if (!unsure[j])
				continue;
			item_statement(st, j);
			log_unsure_write(st, method, paths[j],
							 bodies ? bodies[j] : NULL, 0);
		}
		rethrow_with_write_log(st, oldcxt);
	}
	PG_END_TRY();
	MemoryContextDelete(round_cxt);
}

/* Fill the slot from the record Close answered with, for RETURNING. */
static TupleTableSlot *
store_returned(CloseModifyState *st, TupleTableSlot *slot,
			   struct json_object *record)
{
	if (!st->has_returning)
		return slot;
	ExecClearTuple(slot);
	/* transition tables (a parent's triggers) keep the whole row too */
	close_convert_record(st->returned_conv &&
						 !(st->mtstate && st->mtstate->mt_transition_capture)
						 ? st->returned_conv : st->conv,
						 record, slot->tts_values, slot->tts_isnull);
	ExecStoreVirtualTuple(slot);
	return slot;
}

TupleTableSlot *
closeExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
					   TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	CloseModifyState *st = (CloseModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	struct json_object *record;
	bool		missing;

	check_before_write(st, rinfo, slot, estate);
	MemoryContextReset(st->row_cxt);
	oldcxt = MemoryContextSwitchTo(st->row_cxt);
	if (st->deferred)
	{
		/* a routed row's RETURNING has the Vars of the statement's table */
		if (st->check_returning && rinfo->ri_returningList != NIL)
			check_deferred_returning(st->rel, (Node *) rinfo->ri_returningList,
									 st->mtstate && st->mtstate->resultRelInfo
									 ? st->mtstate->resultRelInfo->ri_RangeTableIndex
									 : rinfo->ri_RangeTableIndex,
									 NIL, false);	/* its NULLs are not sent */
		else
			check_deferred_returned_nulls(st, rinfo, slot);
		st->check_returning = false;
		queue_write(st, st->res->path,
					build_body(st, slot, st->target_attrs, NULL), NULL);
		MemoryContextSwitchTo(oldcxt);
		return slot;			/* RETURNING shows the row given */
	}
	record = send_write(st, "POST", st->res->path,
						build_body(st, slot, st->target_attrs, NULL), &missing);
	log_written(st, record_id(record));
	slot = store_returned(st, slot, record);
	MemoryContextSwitchTo(oldcxt);
	return slot;
}

TupleTableSlot *
closeExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
					   TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	CloseModifyState *st = (CloseModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	char	   *path;
	char	   *body;
	struct json_object *record;
	bool		missing;
	char	   *id;

	MemoryContextReset(st->row_cxt);
	oldcxt = MemoryContextSwitchTo(st->row_cxt);
	id = row_id(st, planSlot);
	if (already_done(st, id))
	{
		MemoryContextSwitchTo(oldcxt);
		return NULL;			/* matched again: updated once */
	}
	MemoryContextSwitchTo(oldcxt);

	/*
	 * Only then the checks of the new row: a record already written is
	 * skipped, as PostgreSQL skips a row the command already changed
	 * without checking its view's CHECK OPTION, and an error here would
	 * fail a statement whose other part already wrote to Close.
	 */
	/* the new row must stay in its partition */
	if (st->rel->rd_rel->relispartition &&
		!ExecPartitionCheck(rinfo, slot, estate, false))
		refuse_partition_move(st->rel, false);
	check_before_write(st, rinfo, slot, estate);

	MemoryContextSwitchTo(st->row_cxt);
	path = record_path(st, id);
	if (st->send_changed)
	{
		/* what the statement assigns, and what a trigger changed */
		whole_row(st, planSlot, st->old_row);
		body = build_body(st, slot, changed_columns(st, slot, st->old_row),
						  st->old_row);
	}
	else
		body = build_body(st, slot, st->target_attrs, NULL);
	if (st->deferred)
	{
		if (object_deleted_in_queue(path))
		{
			MemoryContextSwitchTo(oldcxt);
			return NULL;		/* deleted in the transaction: not updated */
		}
		queue_write(st, path, body, id);
		MemoryContextSwitchTo(oldcxt);
		return slot;			/* RETURNING shows the row as assigned */
	}
	check_object_not_queued(st, path, id);
	record = send_write(st, "PUT", path, body, &missing);
	if (missing)
	{
		MemoryContextSwitchTo(oldcxt);
		return NULL;			/* deleted meanwhile: not updated */
	}
	log_written(st, id);
	/* converted in the row's context, as for INSERT */
	slot = store_returned(st, slot, record);
	MemoryContextSwitchTo(oldcxt);
	return slot;
}

TupleTableSlot *
closeExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
					   TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	CloseModifyState *st = (CloseModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	char	   *path;
	bool		missing;
	char	   *id;

	MemoryContextReset(st->row_cxt);
	oldcxt = MemoryContextSwitchTo(st->row_cxt);
	id = row_id(st, planSlot);
	if (already_done(st, id))
	{
		MemoryContextSwitchTo(oldcxt);
		return NULL;			/* matched again: deleted once */
	}
	/* only for a record deleted now, as for UPDATE */
	MemoryContextSwitchTo(oldcxt);
	check_before_write(st, rinfo, NULL, estate);
	MemoryContextSwitchTo(st->row_cxt);
	path = record_path(st, id);
	if (st->deferred)
	{
		/* deleted earlier in the transaction: not deleted again */
		missing = object_deleted_in_queue(path);
		if (!missing)
			queue_write(st, path, NULL, id);
	}
	else
	{
		check_object_not_queued(st, path, id);
		(void) send_write(st, "DELETE", path, NULL, &missing);
	}
	MemoryContextSwitchTo(oldcxt);
	if (missing)
	{
		/* gone: scans skip a stale copy of it too */
		if (!st->deferred)
			close_note_deleted(id);
		return NULL;			/* already gone: not deleted by us */
	}
	if (!st->deferred)
		log_written(st, id);

	/* RETURNING shows the row as it was read */
	if (st->has_returning && AttributeNumberIsValid(st->wholerow_junk))
		whole_row(st, planSlot, slot);
	return slot;
}

/*
 * Rows per batch insert: the batch_size option, but 1 where a row's answer
 * is needed before the next row (RETURNING, row triggers) as postgres_fdw
 * does.  A batch's POSTs go out up to max_concurrency at once.
 */
int
closeGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	if (rinfo->ri_projectReturning != NULL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	return close_get_batch_size(RelationGetRelid(rinfo->ri_RelationDesc));
}

TupleTableSlot **
closeExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
							TupleTableSlot **slots, TupleTableSlot **planSlots,
							int *numSlots)
{
	CloseModifyState *st = (CloseModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	char	  **bodies;
	bool	   *written;
	int			i;

	MemoryContextReset(st->row_cxt);
	oldcxt = MemoryContextSwitchTo(st->row_cxt);
	bodies = palloc(sizeof(char *) * Max(*numSlots, 1));
	written = palloc0(sizeof(bool) * Max(*numSlots, 1));
	/* every row's body is checked before any of the batch is sent */
	for (i = 0; i < *numSlots; i++)
	{
		check_before_write(st, rinfo, slots[i], estate);
		bodies[i] = build_body(st, slots[i], st->target_attrs, NULL);
	}
	if (st->deferred)
		for (i = 0; i < *numSlots; i++)
			queue_write(st, st->res->path, bodies[i], NULL);
	else
		send_writes(st, "POST", NULL, bodies, *numSlots, written);
	MemoryContextSwitchTo(oldcxt);
	return slots;
}

/* ---- write_mode 'deferred': sending the queue at PRE_COMMIT ---- */

/* How many queued writes go to send_writes at most at once. */
#define CLOSE_DEFERRED_WAVE		256

/*
 * Where COMMIT was in the queue, for the error context and for the write
 * log of what it never sent.  Not on the stack: read after a longjmp.
 */
typedef struct DeferredProgress
{
	int			sent;			/* writes sent before this round */
	int			round;			/* writes in this round (0: none yet) */
	int			total;
	const char *relname;
	bool	   *logged;			/* of the round: has its outcome's entry */
} DeferredProgress;

static void
deferred_error_callback(void *arg)
{
	DeferredProgress *p = (DeferredProgress *) arg;

	if (p->round == 0)
		errcontext("COMMIT sending the %d writes queued with write_mode 'deferred': %d were sent, the %d after were not",
				   p->total, p->sent, p->total - p->sent);
	else
		errcontext("COMMIT sending the %d writes queued with write_mode 'deferred': a round of %d to foreign table \"%s\" after %d sent; the %d after it were not sent",
				   p->total, p->round, p->relname, p->sent,
				   p->total - p->sent - p->round);
}

/*
 * The writes a transaction queued, sent in the order they were queued: a
 * run of consecutive writes of one kind (INSERT, UPDATE or DELETE) to one
 * table, each to another object, goes to send_writes together
 * (max_concurrency at once, each logged with its own statement); a write
 * to an object already in the run starts the next one, so the writes to
 * any one object keep their order.  Same pacing and retries as the statement's
 * writes would have had (a POST is never sent twice).  A failure is the
 * COMMIT's error, saying what reached Close; the transaction then rolls
 * back, and close_fdw_write_log() lists every write of the queue: sent,
 * failed, may have reached Close, or never sent ('queued').  A PUT or
 * DELETE whose record is gone (404) is a WARNING naming it.
 */
static void
send_deferred(void)
{
	int			n;
	CloseDeferredWrite **ws = close_deferred_writes(&n);
	MemoryContext cxt;
	MemoryContext oldcxt;
	MemoryContext round_cxt;
	DeferredProgress *progress;
	ErrorContextCallback errcallback;

	if (n == 0)
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext,
								"close_fdw deferred send",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	/* each write gets the entry of its outcome as it is sent */
	write_entries_drop_queued(1);
	current_entries.committing = true;

	progress = palloc0(sizeof(DeferredProgress));
	progress->total = n;
	progress->relname = "";
	progress->logged = palloc0(sizeof(bool) * CLOSE_DEFERRED_WAVE);
	errcallback.callback = deferred_error_callback;
	errcallback.arg = progress;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	/* each round's state and arrays go with the round */
	round_cxt = AllocSetContextCreate(cxt, "close_fdw deferred round",
									  ALLOCSET_DEFAULT_SIZES);
	PG_TRY();
	{
		int			i;

		for (i = 0; i < n;)
		{
			CloseDeferredWrite *first = ws[i];
			Relation	rel;
			CloseModifyState *st;
			CloseServerOptions sopts;
			char	  **ids;
			char	  **bodies;
			CommandId  *cids;
			bool	   *written;
			int			count = 0;
			int			k;

			progress->sent = i;
			progress->round = 0;
			MemSet(progress->logged, 0, sizeof(bool) * CLOSE_DEFERRED_WAVE);
			MemoryContextReset(round_cxt);
			MemoryContextSwitchTo(round_cxt);
			rel = close_try_table_open(first->relid, AccessShareLock);
			st = palloc0(sizeof(CloseModifyState));
			ids = palloc(sizeof(char *) * CLOSE_DEFERRED_WAVE);
			bodies = palloc(sizeof(char *) * CLOSE_DEFERRED_WAVE);
			cids = palloc(sizeof(CommandId) * CLOSE_DEFERRED_WAVE);

			if (rel == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("cannot send the writes queued for a foreign table dropped in this transaction"),
						 errdetail("%d queued writes were sent before, %d were not.",
								   i, n - i)));
			st->rel = rel;
			st->operation = first->operation;
			st->res = close_get_table_resource(first->relid);
			st->user = GetUserMapping(first->userid, first->serverid);
			st->conv = close_make_row_converter(rel, NULL);
			close_get_server_options(GetForeignServer(first->serverid), &sopts);
			st->max_concurrency = sopts.max_concurrency;
			st->log = write_log_for(rel, first->operation == CMD_INSERT ? "created"
									: first->operation == CMD_UPDATE ? "updated"
									: "deleted");
			st->cid = first->cid;
			st->item_cids = cids;
			st->item_logged = progress->logged;
			st->deferred = false;

			while (i + count < n && count < CLOSE_DEFERRED_WAVE)
			{
				CloseDeferredWrite *w = ws[i + count];
				bool		repeat = false;

				if (w->relid != first->relid || w->userid != first->userid ||
					w->operation != first->operation)
					break;
				for (k = 0; w->id && k < count; k++)
					repeat |= strcmp(ids[k], w->id) == 0;
				if (repeat)
					break;
				ids[count] = w->id;
				bodies[count] = w->body;
				cids[count] = w->cid;
				count++;
			}

			progress->relname = RelationGetRelationName(rel);
			progress->round = count;
			written = palloc0(sizeof(bool) * count);
			send_writes(st, first->operation == CMD_INSERT ? "POST"
						: first->operation == CMD_UPDATE ? "PUT" : "DELETE",
						first->operation == CMD_INSERT ? NULL : ids,
						first->operation == CMD_DELETE ? NULL : bodies,
						count, written);
			report_mismatches(st);
			for (k = 0; k < count; k++)
				if (!written[k])
					ereport(WARNING,
							(errcode(ERRCODE_WARNING),
							 errmsg("%s %s of foreign table \"%s\" was gone when COMMIT sent its %s",
									close_resource_noun(st->res, false),
									ids[k], RelationGetRelationName(rel),
									first->operation == CMD_UPDATE ? "UPDATE" : "DELETE"),
							 errdetail("Close answered 404: the record no longer exists; nothing was %s.",
									   first->operation == CMD_UPDATE ? "updated" : "deleted")));
			table_close(rel, AccessShareLock);
			i += count;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		ListCell   *lc;
		int			j;

		/*
		 * What was never sent (the rest of the round and everything after
		 * it) stays in the write log as queued; the rest of the round has
		 * its outcome's entries already.
		 */
		MemoryContextSwitchTo(cxt);
		for (j = progress->sent; j < n; j++)
		{
			CloseDeferredWrite *w = ws[j];

			if (j - progress->sent < progress->round &&
				progress->logged[j - progress->sent])
				continue;
			write_entry_add_for(w->cid, w->relname, w->operation, w->id,
								w->lead, 0, WRITE_QUEUED);
		}

		/*
		 * The error says what every round before reached Close too (the
		 * failing round's already does), rather than WARNINGs at the abort.
		 */
		edata = CopyErrorData();
		FlushErrorState();
		foreach(lc, write_logs)
		{
			CloseWriteLog *log = (CloseWriteLog *) lfirst(lc);
			char	   *text;

			if (log->count <= log->reported && log->maybe <= log->maybe_reported)
				continue;
			text = write_log_text(log);
			edata->detail = edata->detail
				? psprintf("%s\n%s", edata->detail, text) : text;
			log->reported = log->count;
			log->maybe_reported = log->maybe;
		}
		ReThrowError(edata);
	}
	PG_END_TRY();

	error_context_stack = errcallback.previous;
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
}

/* ---- end of a statement ---- */

void
closeEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	CloseModifyState *st = (CloseModifyState *) rinfo->ri_FdwState;

	if (st)
		report_mismatches(st);
}

void
closeEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
	closeEndForeignModify(estate, rinfo);
}

/*
 * Every table says it takes writes, so that a write to a read-only
 * resource (users, statuses, pipelines) gets check_writable's error, which
 * names the resource, COPY's included.
 */
int
closeIsForeignRelUpdatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

void
closeExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						  List *fdw_private, int subplan_index,
						  ExplainState *es)
{
	const char *request;
	const char *path = close_get_table_resource(RelationGetRelid(rinfo->ri_RelationDesc))->path;

	switch (mtstate->operation)
	{
		case CMD_INSERT:
			request = psprintf("POST %s (one per row)", path);
			break;
		case CMD_UPDATE:
			request = psprintf("PUT %s{id}/ (one per row read)", path);
			break;
		default:
			request = psprintf("DELETE %s{id}/ (one per row read)", path);
			break;
	}
	ExplainPropertyText("Close Request", request, es);
	if (close_write_mode_deferred(RelationGetRelid(rinfo->ri_RelationDesc)))
		ExplainPropertyText("Close Write Mode", "deferred (sent at COMMIT)", es);
	if (es->verbose && mtstate->operation == CMD_INSERT &&
		close_batch_size_of(rinfo) > 1)
		ExplainPropertyInteger("Batch Size", NULL, close_batch_size_of(rinfo), es);
}

/* ---- direct modification: UPDATE/DELETE by id without reading first ---- */

/* Executor state of a direct modification, in the ForeignScanState. */
typedef struct CloseDirectState
{
	CloseModifyState *st;		/* bodies, requests, write log */
	ExprState  *key_state;
	bool		key_is_array;
	List	   *set_states;		/* ExprState per target attribute */
	TupleTableSlot *values;		/* the SET values, for build_body */
	bool		set_processed;
	bool		done;
} CloseDirectState;

/* Refuse an UPDATE of a column Close would not change (plan time). */
static void
check_update_columns(Relation rel, List *attnos)
{
	ListCell   *lc;

	foreach(lc, attnos)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel),
											  lfirst_int(lc) - 1);
		const char *key;
		ColumnKind	kind = column_kind(rel, att, &key);

		if (kind == COLUMN_READ_ONLY || kind == COLUMN_UNKNOWN ||
			kind == COLUMN_CREATE_ONLY)
			refuse_update_column(rel, att, kind, key);
	}
}

/*
 * Refuse an UPDATE that changes what a stored generated column is computed
 * from when PostgreSQL did not count the generated column as assigned
 * (PostgreSQL 13 does not, for a foreign table): its new value would not
 * be sent, and Close would keep the old one.
 */
static void
check_generated_columns(Relation rel, List *attnos)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Bitmapset  *assigned = NULL;
	ListCell   *lc;
	int			i;

	if (tupdesc->constr == NULL || !tupdesc->constr->has_generated_stored)
		return;
	foreach(lc, attnos)
		assigned = bms_add_member(assigned,
								  lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Bitmapset  *uses = NULL;
		Node	   *expr;

		if (att->attisdropped ||
			att->attgenerated != ATTRIBUTE_GENERATED_STORED ||
			list_member_int(attnos, i + 1))
			continue;
		expr = build_column_default(rel, i + 1);
		if (expr == NULL)
			continue;
		pull_varattnos(expr, 1, &uses);
		if (bms_overlap(uses, assigned))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot update foreign table \"%s\": the UPDATE changes what its generated column \"%s\" is computed from",
							RelationGetRelationName(rel), NameStr(att->attname)),
					 errdetail("This PostgreSQL release does not count the generated column as assigned by the UPDATE, so its new value would not reach Close."),
					 errhint("PostgreSQL 15 and later send it.")));
	}
}

static bool
refers_to_rel(PlannerInfo *root, Node *node, Index relid)
{
	return bms_is_member(relid, close_pull_varnos(root, node));
}

/*
 * UPDATE or DELETE can skip reading the rows when the scan retrieves them
 * by id and nothing needs their old values: no local filter, no RETURNING,
 * no type restriction to check, SET values computed without the row (and
 * not volatile: they are computed once for all ids).  The scan then
 * becomes the modification.
 */
bool
closePlanDirectModify(PlannerInfo *root, ModifyTable *plan,
					  Index resultRelation, int subplan_index)
{
	Plan	   *subplan = close_modify_table_subplan(plan, subplan_index);
	ForeignScan *fscan;
	List	   *set_exprs = NIL;
	List	   *target_attrs = NIL;
	char	   *request;
	char	   *path;
	ListCell   *lc;

	if (plan->operation != CMD_UPDATE && plan->operation != CMD_DELETE)
		return false;
	/* (PlanForeignModify is not called when this returns true) */
	{
		Relation	rel = table_open(planner_rt_fetch(resultRelation, root)->relid,
									 NoLock);

		check_writable(rel);
		table_close(rel, NoLock);
	}
	if (subplan == NULL || !IsA(subplan, ForeignScan))
		return false;
	fscan = (ForeignScan *) subplan;
	if (fscan->scan.scanrelid != resultRelation || fscan->scan.plan.qual != NIL)
		return false;
	if (intVal(list_nth(fscan->fdw_private, FdwScanPrivateAccessKind)) !=
		CLOSE_ACCESS_BY_ID)
		return false;
	if (plan->returningLists != NIL &&
		list_nth(plan->returningLists, subplan_index) != NIL)
		return false;

	/*
	 * A table of one type must not change a record of another type that has
	 * the id: only the read (which checks the type) can tell.
	 */
	if (close_get_table_type_id(planner_rt_fetch(resultRelation, root)->relid))
		return false;

	/* nor whether an UPDATE's new row stays in the table's partition */
	if (plan->operation == CMD_UPDATE &&
		get_rel_relispartition(planner_rt_fetch(resultRelation, root)->relid))
		return false;

	if (plan->operation == CMD_UPDATE)
	{
		RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
		Relation	rel;
		ListCell   *lc2;

		/* the new values, one per assigned column */
		close_update_targets(root, resultRelation, subplan,
							 &set_exprs, &target_attrs);
		forboth(lc, set_exprs, lc2, target_attrs)
		{
			Expr	   *expr = lfirst_node(TargetEntry, lc)->expr;

			if (refers_to_rel(root, (Node *) expr, resultRelation) ||
				contain_volatile_functions((Node *) expr) ||
				contain_subplans((Node *) expr))
				return false;
		}
		rel = table_open(rte->relid, NoLock);
		check_update_columns(rel, target_attrs);
		table_close(rel, NoLock);

		/* fdw_exprs: the key expression, then one value per attribute */
		forboth(lc, set_exprs, lc2, target_attrs)
			fscan->fdw_exprs = lappend(fscan->fdw_exprs,
									   lfirst_node(TargetEntry, lc)->expr);
	}

	/* the scan's "GET /{resource}/{id}/" becomes this statement's request */
	request = strVal(list_nth(fscan->fdw_private, FdwScanPrivateRequest));
	path = strchr(request, '/');
	if (path && strncmp(request, "GET ", 4) == 0)
		request = psprintf("%s %.*s (no read first)",
						   plan->operation == CMD_UPDATE ? "PUT" : "DELETE",
						   (int) strcspn(path, "? "), path);	/* not its _fields */
	list_nth_cell(fscan->fdw_private, FdwScanPrivateRequest)->ptr_value =
		makeString(request);

	fscan->operation = plan->operation;
	close_set_direct_result_relation(fscan, resultRelation);
	fscan->fdw_private = lappend(fscan->fdw_private, target_attrs);
	fscan->fdw_private = lappend(fscan->fdw_private,
								 makeInteger(plan->canSetTag ? 1 : 0));
	/*
	 * The scan returns no rows; its target list stays, since the executor
	 * looks up the junk columns in it (as for a scan that reads).
	 */
	return true;
}

void
closeBeginDirectModify(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	List	   *fdw_private = fsplan->fdw_private;
	CloseDirectState *ds;
	ListCell   *lc;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	check_read_write(fsplan->operation, false);

	ds = palloc0(sizeof(CloseDirectState));
	ds->st = create_modify_state(node->ss.ps.state,
								 close_direct_result_relation(node),
								 fsplan->operation,
								 (List *) list_nth(fdw_private,
												   FdwScanPrivateDirectAttrs),
								 false);
	ds->key_is_array =
		intVal(list_nth(fdw_private, FdwScanPrivateKeyIsArray)) != 0;
	ds->set_processed =
		intVal(list_nth(fdw_private, FdwScanPrivateDirectSetTag)) != 0;
	ds->key_state = ExecInitExpr(linitial(fsplan->fdw_exprs), (PlanState *) node);
	for_each_from(lc, fsplan->fdw_exprs, 1)
		ds->set_states = lappend(ds->set_states,
								 ExecInitExpr((Expr *) lfirst(lc),
											  (PlanState *) node));
	ds->values = MakeSingleTupleTableSlot(RelationGetDescr(ds->st->rel),
										  &TTSOpsVirtual);
	/* a record another part of the statement wrote is not written again */
	ds->st->done_ids = statement_ids(node->ss.ps.state);
	if (ds->st->deferred)
		check_deferred_statement(ds->st, NULL);
	check_queued_inserts(ds->st, true);
	/* ids or SET values from a subquery: see reads_ids_only */
	check_queued_updates(ds->st,
						 !uses_subquery_walker((Node *) fsplan->fdw_exprs, NULL));
	node->fdw_state = ds;
}

/*
 * All the work happens in the first call: compute the ids and the SET
 * values once, send one PUT or DELETE per id, count what existed.
 */
TupleTableSlot *
closeIterateDirectModify(ForeignScanState *node)
{
	CloseDirectState *ds = (CloseDirectState *) node->fdw_state;
	CloseModifyState *st = ds->st;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext oldcxt;
	char	  **ids;
	int			nids;
	char	   *body = NULL;
	int64		done = 0;
	int			i;

	if (ds->done)
		return ExecClearTuple(slot);
	ds->done = true;

	oldcxt = MemoryContextSwitchTo(econtext->ecxt_per_query_memory);
	nids = close_evaluate_keys(ds->key_state, ds->key_is_array,
							   st->res->id_prefix, econtext, &ids);
	if (st->done_ids != NULL)
	{
		int			kept = 0;

		for (i = 0; i < nids; i++)
			if (!already_done(st, ids[i]))
				ids[kept++] = ids[i];
		nids = kept;
	}
	if (st->operation == CMD_UPDATE && nids > 0)
	{
		ListCell   *lc;
		ListCell   *lc2;

		ExecClearTuple(ds->values);
		memset(ds->values->tts_isnull, true,
			   sizeof(bool) * ds->values->tts_tupleDescriptor->natts);
		forboth(lc, ds->set_states, lc2, st->target_attrs)
		{
			AttrNumber	attnum = lfirst_int(lc2);

			ds->values->tts_values[attnum - 1] =
				ExecEvalExpr((ExprState *) lfirst(lc), econtext,
							 &ds->values->tts_isnull[attnum - 1]);
		}
		ExecStoreVirtualTuple(ds->values);
		body = build_body(st, ds->values, st->target_attrs, NULL);
	}

	if (nids > 0)
	{
		char	  **bodies = NULL;
		bool	   *written = palloc0(sizeof(bool) * nids);

		if (body)
		{
			bodies = palloc(sizeof(char *) * nids);
			for (i = 0; i < nids; i++)
				bodies[i] = body;
		}
		if (st->deferred)
		{
			/*
			 * queued unread: each id counts (but one whose DELETE is queued
			 * already), and one whose record is gone by the COMMIT is a
			 * WARNING then
			 */
			for (i = 0; i < nids; i++)
			{
				char	   *path = record_path(st, ids[i]);

				if (object_deleted_in_queue(path))
					continue;
				queue_write(st, path, bodies ? bodies[i] : NULL, ids[i]);
				done++;
			}
		}
		else
		{
			/* every id is checked before any request */
			for (i = 0; i < nids; i++)
				check_object_not_queued(st, record_path(st, ids[i]), ids[i]);
			send_writes(st, st->operation == CMD_UPDATE ? "PUT" : "DELETE",
						ids, bodies, nids, written);
			/* a record that was gone is not counted: nothing changed */
			for (i = 0; i < nids; i++)
				done += written[i] ? 1 : 0;
		}
	}
	MemoryContextSwitchTo(oldcxt);

	if (ds->set_processed)
		node->ss.ps.state->es_processed += done;
	return ExecClearTuple(slot);
}

void
closeEndDirectModify(ForeignScanState *node)
{
	CloseDirectState *ds = (CloseDirectState *) node->fdw_state;

	if (ds)
	{
		report_mismatches(ds->st);
		ExecDropSingleTupleTableSlot(ds->values);
	}
}

void
closeExplainDirectModify(ForeignScanState *node, ExplainState *es)
{
	List	   *fdw_private = ((ForeignScan *) node->ss.ps.plan)->fdw_private;
	char	   *key_values = strVal(list_nth(fdw_private, FdwScanPrivateKeyValues));

	ExplainPropertyText("Close Request",
						strVal(list_nth(fdw_private, FdwScanPrivateRequest)), es);
	if (key_values[0] != '\0')
		ExplainPropertyText("Close id", key_values, es);
	/* (the result relation is not known here before 14: the scan's is) */
	if (close_write_mode_deferred(RelationGetRelid(node->ss.ss_currentRelation)))
		ExplainPropertyText("Close Write Mode", "deferred (sent at COMMIT)", es);
}
