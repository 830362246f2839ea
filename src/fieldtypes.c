/*-------------------------------------------------------------------------
 *
 * fieldtypes.c
 *		  A per-user-mapping cache of the type Close stores each custom field
 *		  as (and whether it takes several values), read from
 *		  GET /custom_object_type/.  A search condition on a custom field is
 *		  sent only when that type gives it SQL's meaning, which the column's
 *		  type alone cannot tell (pushdown.c decides; this file only knows).
 *
 * The types are fetched when a scan first needs them and kept for
 * FIELD_TYPES_TTL_MS: a burst of scans costs one request, and a field added
 * or changed in Close is seen within that time.  ALTER SERVER and ALTER
 * USER MAPPING (any change, of any server or mapping: they are rare) drop
 * every entry, through syscache callbacks that only mark them; the next
 * request for an entry frees and refetches it.  An entry's data is built in
 * a context under the caller's, and moved under CacheMemoryContext only
 * once complete, so an error while fetching leaves nothing behind.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "close_fdw.h"

/* How long fetched field types are trusted, in milliseconds. */
#define FIELD_TYPES_TTL_MS	60000

typedef struct CloseFieldType
{
	char	   *id;				/* cf_... */
	char	   *type;			/* as Close names it; "" if not told */
	bool		multi;			/* accepts_multiple_values */
} CloseFieldType;

struct CloseFieldTypes
{
	MemoryContext cxt;			/* holds this struct and all it points to */
	TimestampTz fetched_at;
	int			nfields;
	CloseFieldType *fields;		/* sorted by id */
};

typedef struct FieldTypesEntry
{
	Oid			umid;			/* hash key: the user mapping's OID */
	CloseFieldTypes *types;		/* NULL until fetched */
	bool		invalidated;	/* a server or mapping changed meanwhile */
} FieldTypesEntry;

static HTAB *FieldTypesHash = NULL;

static void
field_types_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	FieldTypesEntry *entry;

	if (FieldTypesHash == NULL)
		return;
	hash_seq_init(&scan, FieldTypesHash);
	while ((entry = (FieldTypesEntry *) hash_seq_search(&scan)) != NULL)
		entry->invalidated = true;
}

static int
compare_fields(const void *a, const void *b)
{
	return strcmp(((const CloseFieldType *) a)->id,
				  ((const CloseFieldType *) b)->id);
}

/*
 * Fetch the types and keep what the pushdown needs, in a context of its
 * own under CacheMemoryContext (built under the current context, so that an
 * error on the way frees it).
 */
static CloseFieldTypes *
fetch_field_types(UserMapping *user)
{
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext,
												  "close_fdw field types fetch",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContext cxt;
	MemoryContext oldcxt;
	CloseFieldTypes *types;
	List	   *list;
	ListCell   *lc;
	ListCell   *lc2;
	int			n = 0;

	oldcxt = MemoryContextSwitchTo(scratch);
	list = close_fetch_types(user);
	foreach(lc, list)
		n += list_length(((CloseTypeInfo *) lfirst(lc))->fields);

	cxt = AllocSetContextCreate(scratch, "close_fdw field types",
								ALLOCSET_SMALL_SIZES);
	types = MemoryContextAllocZero(cxt, sizeof(CloseFieldTypes));
	types->cxt = cxt;
	types->fields = MemoryContextAllocZero(cxt,
										   sizeof(CloseFieldType) * Max(n, 1));
	foreach(lc, list)
	{
		foreach(lc2, ((CloseTypeInfo *) lfirst(lc))->fields)
		{
			CloseFieldInfo *field = (CloseFieldInfo *) lfirst(lc2);
			CloseFieldType *out = &types->fields[types->nfields++];

			out->id = MemoryContextStrdup(cxt, field->id);
			out->type = MemoryContextStrdup(cxt, field->type);
			out->multi = field->multi;
		}
	}
	if (types->nfields > 1)
		qsort(types->fields, types->nfields, sizeof(CloseFieldType),
			  compare_fields);
	types->fetched_at = GetCurrentTimestamp();

	MemoryContextSwitchTo(oldcxt);
	MemoryContextSetParent(cxt, CacheMemoryContext);
	MemoryContextDelete(scratch);
	return types;
}

/*
 * The field types for a user mapping: cached, or fetched now (adding the
 * requests made to *requests).  The result stays valid until the next call.
 * A failed fetch is an error, like any failed request.
 */
CloseFieldTypes *
close_field_types_get(UserMapping *user, int64 *requests)
{
	static bool callbacks_registered = false;
	FieldTypesEntry *entry;
	CloseFieldTypes *types;
	bool		found;

	/* the callbacks first: no entry may outlive a change unnoticed */
	if (!callbacks_registered)
	{
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
									  field_types_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID,
									  field_types_inval_callback, (Datum) 0);
		callbacks_registered = true;
	}
	if (FieldTypesHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(FieldTypesEntry);
		ctl.hcxt = CacheMemoryContext;
		FieldTypesHash = hash_create("close_fdw field types", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	entry = hash_search(FieldTypesHash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		entry->types = NULL;
		entry->invalidated = false;
	}

	if (entry->types &&
		(entry->invalidated ||
		 TimestampDifferenceExceeds(entry->types->fetched_at,
									GetCurrentTimestamp(), FIELD_TYPES_TTL_MS)))
	{
		MemoryContextDelete(entry->types->cxt);
		entry->types = NULL;
	}
	if (entry->types)
		return entry->types;

	/* a change while fetching marks the entry again, for the next call */
	entry->invalidated = false;
	types = fetch_field_types(user);
	entry->types = types;
	(*requests)++;
	return types;
}

/*
 * The Close type of a custom field (cf_...) and whether it takes several
 * values; false if no type has such a field.
 */
bool
close_field_type_lookup(CloseFieldTypes *types, const char *field_id,
						const char **type, bool *multi)
{
	CloseFieldType key;
	CloseFieldType *found;

	if (types == NULL || types->nfields == 0)
		return false;
	key.id = (char *) field_id;
	found = bsearch(&key, types->fields, types->nfields,
					sizeof(CloseFieldType), compare_fields);
	if (found == NULL)
		return false;
	*type = found->type;
	*multi = found->multi;
	return true;
}
