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
	char	   *type_id;		/* the custom object type it belongs to */
	char	   *name;			/* for messages */
	int			position;		/* in Close's order */
} CloseFieldType;

struct CloseFieldTypes
{
	MemoryContext cxt;			/* holds this struct and all it points to */
	TimestampTz fetched_at;
	int			nfields;
	CloseFieldType *fields;		/* sorted by id */
	int			ntypes;
	char	  **type_ids;		/* the custom object types, in Close's order */
	char	  **type_names;
};

typedef struct FieldTypesEntry
{
	Oid			umid;			/* hash key: the user mapping's OID */
	CloseFieldTypes *types;		/* NULL until fetched */
	bool		invalidated;	/* a server or mapping changed meanwhile */
} FieldTypesEntry;

static HTAB *FieldTypesHash = NULL;

static void register_inval_callbacks(void);

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
fetch_field_types(UserMapping *user, int cache_ttl_ms, bool *sent)
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
	list = close_fetch_types(user, cache_ttl_ms, sent);
	foreach(lc, list)
		n += list_length(((CloseTypeInfo *) lfirst(lc))->fields);

	cxt = AllocSetContextCreate(scratch, "close_fdw field types",
								ALLOCSET_SMALL_SIZES);
	types = MemoryContextAllocZero(cxt, sizeof(CloseFieldTypes));
	types->cxt = cxt;
	types->fields = MemoryContextAllocZero(cxt,
										   sizeof(CloseFieldType) * Max(n, 1));
	types->type_ids = MemoryContextAllocZero(cxt,
											 sizeof(char *) * Max(list_length(list), 1));
	types->type_names = MemoryContextAllocZero(cxt,
											   sizeof(char *) * Max(list_length(list), 1));
	foreach(lc, list)
	{
		CloseTypeInfo *type = (CloseTypeInfo *) lfirst(lc);

		types->type_ids[types->ntypes] = MemoryContextStrdup(cxt, type->id);
		types->type_names[types->ntypes++] = MemoryContextStrdup(cxt, type->name);
		foreach(lc2, type->fields)
		{
			CloseFieldInfo *field = (CloseFieldInfo *) lfirst(lc2);
			CloseFieldType *out = &types->fields[types->nfields];

			out->id = MemoryContextStrdup(cxt, field->id);
			out->type = MemoryContextStrdup(cxt, field->type);
			out->multi = field->multi;
			out->type_id = types->type_ids[types->ntypes - 1];
			out->name = MemoryContextStrdup(cxt, field->name ? field->name : "");
			out->position = types->nfields++;
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
 * requests made to *requests), through the answer cache when the reading
 * table has one (cache_ttl_ms > 0).  The result stays valid until the next call.
 * A failed fetch is an error, like any failed request.
 */
static CloseFieldTypes *
field_types_get(UserMapping *user, int cache_ttl_ms, int64 *requests,
				bool refresh, bool *asked)
{
	FieldTypesEntry *entry;
	CloseFieldTypes *types;
	bool		found;
	bool		sent;

	register_inval_callbacks();
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

	*asked = false;
	if (entry->types &&
		(refresh || entry->invalidated ||
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
	types = fetch_field_types(user, cache_ttl_ms, &sent);
	entry->types = types;
	if (sent)
		(*requests)++;
	*asked = sent;
	return types;
}

CloseFieldTypes *
close_field_types_get(UserMapping *user, int cache_ttl_ms, int64 *requests)
{
	bool		asked;

	return field_types_get(user, cache_ttl_ms, requests, false, &asked);
}

/* A custom field (cf_...) of any type, or NULL. */
static CloseFieldType *
find_field(CloseFieldTypes *types, const char *field_id)
{
	CloseFieldType key;

	if (types == NULL || types->nfields == 0)
		return NULL;
	key.id = (char *) field_id;
	return bsearch(&key, types->fields, types->nfields,
				   sizeof(CloseFieldType), compare_fields);
}

/* Whether Close has the custom object type. */
static bool
type_exists(CloseFieldTypes *types, const char *type_id)
{
	int			i;

	for (i = 0; i < types->ntypes; i++)
		if (strcmp(types->type_ids[i], type_id) == 0)
			return true;
	return false;
}

/* Whether a key ("custom.cf_...") is a field of the type (of any, if none). */
static bool
key_fits(CloseFieldTypes *types, const char *key, const char *type_id)
{
	CloseFieldType *found = find_field(types,
									   key + strlen(CLOSE_CUSTOM_PREFIX));

	return found != NULL &&
		(type_id == NULL || strcmp(found->type_id, type_id) == 0);
}

/*
 * The Close type of a custom field (cf_...) and whether it takes several
 * values; false if no type has such a field.
 */
bool
close_field_type_lookup(CloseFieldTypes *types, const char *field_id,
						const char **type, bool *multi)
{
	CloseFieldType *found = find_field(types, field_id);

	if (found == NULL)
		return false;
	*type = found->type;
	*multi = found->multi;
	return true;
}

/* A hint lists at most this many valid fields. */
#define CHECK_HINT_FIELDS 20

static int
compare_positions(const void *a, const void *b)
{
	return (*(CloseFieldType *const *) a)->position -
		(*(CloseFieldType *const *) b)->position;
}

/* The fields of a type (of every type when type_id is NULL), in Close's order. */
static int
fields_of(CloseFieldTypes *types, const char *type_id, CloseFieldType ***out)
{
	int			n = 0;
	int			i;

	*out = palloc(sizeof(CloseFieldType *) * Max(types->nfields, 1));
	for (i = 0; i < types->nfields; i++)
		if (type_id == NULL || strcmp(types->fields[i].type_id, type_id) == 0)
			(*out)[n++] = &types->fields[i];
	if (n > 1)
		qsort(*out, n, sizeof(CloseFieldType *), compare_positions);
	return n;
}

/*
 * Every custom field's record key ("custom.cf_..."), of the type or of all
 * types, in Close's order: what a search asks for when a custom json
 * column needs them all.
 */
List *
close_field_types_custom_keys(CloseFieldTypes *types, const char *type_id)
{
	CloseFieldType **fields;
	List	   *keys = NIL;
	int			n = fields_of(types, type_id, &fields);
	int			i;

	for (i = 0; i < n; i++)
		keys = lappend(keys, makeString(psprintf("%s%s", CLOSE_CUSTOM_PREFIX,
												 fields[i]->id)));
	return keys;
}

/* Does the table's type and every custom field key it reads exist? */
static bool
types_fit_table(CloseFieldTypes *types, const char *type_id, List *keys)
{
	ListCell   *lc;

	if (type_id && !type_exists(types, type_id))
		return false;
	foreach(lc, keys)
		if (!key_fits(types, strVal(lfirst(lc)), type_id))
			return false;
	return true;
}

/*
 * A scan's check of its table against Close's types (as
 * close_field_types_check_table), by the types kept or cached.  A type or
 * field missing from those is looked for in a fresh answer first, asked of
 * Close past both caches: it may have been made since.
 */
void
close_field_types_check_scan(UserMapping *user, int cache_ttl_ms,
							 int64 *requests, const char *relname,
							 const char *type_id, List *columns, List *keys)
{
	bool		asked;
	CloseFieldTypes *types = field_types_get(user, cache_ttl_ms, requests,
											 false, &asked);

	if (!asked && !types_fit_table(types, type_id, keys))
		types = field_types_get(user, 0, requests, true, &asked);
	close_field_types_check_table(types, relname, type_id, columns, keys);
}

/*
 * Check a foreign table's definition against Close's types: its
 * custom_object_type_id must exist, and each custom field key its columns
 * read ("custom.cf_...", the columns named in columns, their keys in keys)
 * must be a field of that type, or of some type when the table has none.
 * An error names the valid types or fields.
 */
void
close_field_types_check_table(CloseFieldTypes *types, const char *relname,
							  const char *type_id, List *columns, List *keys)
{
	ListCell   *lc;
	ListCell   *lc2;
	int			i;

	if (type_id && !type_exists(types, type_id))
	{
		StringInfoData valid;

		initStringInfo(&valid);
		for (i = 0; i < types->ntypes; i++)
			appendStringInfo(&valid, "%s%s (%s)", i > 0 ? ", " : "",
							 types->type_ids[i], types->type_names[i]);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
				 errmsg("Close has no custom object type \"%s\", the custom_object_type_id of foreign table \"%s\"",
						type_id, relname),
				 types->ntypes > 0
				 ? errhint("Valid custom object types are: %s.", valid.data)
				 : errhint("Close has no custom object types.")));
	}

	forboth(lc, columns, lc2, keys)
	{
		const char *key = strVal(lfirst(lc2));

		if (!key_fits(types, key, type_id))
		{
			CloseFieldType **fields;
			int			n = fields_of(types, type_id, &fields);
			StringInfoData valid;

			initStringInfo(&valid);
			for (i = 0; i < n && i < CHECK_HINT_FIELDS; i++)
				appendStringInfo(&valid, "%s%s%s (%s)", i > 0 ? ", " : "",
								 CLOSE_CUSTOM_PREFIX, fields[i]->id,
								 fields[i]->name);
			if (n > CHECK_HINT_FIELDS)
				appendStringInfo(&valid, " and %d more (see close_fdw_fields())",
								 n - CHECK_HINT_FIELDS);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
					 errmsg("column \"%s\" of foreign table \"%s\" reads \"%s\", which is not a field of %s",
							strVal(lfirst(lc)), relname, key,
							type_id ? psprintf("custom object type \"%s\"", type_id)
							: "any custom object type"),
					 n > 0 ? errhint("Valid fields are: %s.", valid.data)
					 : errhint("The custom object type has no fields.")));
		}
	}
}

/*
 * The custom field schema of a resource that has one (leads, contacts,
 * opportunities: GET /custom_field_schema/{type}/), kept like the custom
 * object types: per user mapping and object type, for FIELD_TYPES_TTL_MS,
 * dropped when a server or user mapping changes.
 */
typedef struct FieldSchemaKey
{
	Oid			umid;
	char		object_type[NAMEDATALEN];
} FieldSchemaKey;

typedef struct FieldSchemaEntry
{
	FieldSchemaKey key;			/* hash key */
	MemoryContext cxt;			/* holds fields; NULL until fetched */
	List	   *fields;			/* of CloseFieldInfo */
	TimestampTz fetched_at;
	bool		invalidated;
} FieldSchemaEntry;

static HTAB *FieldSchemaHash = NULL;

/* A server or user mapping changed: every kept type and schema is stale. */
static void
field_caches_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;

	if (FieldTypesHash != NULL)
	{
		FieldTypesEntry *entry;

		hash_seq_init(&scan, FieldTypesHash);
		while ((entry = (FieldTypesEntry *) hash_seq_search(&scan)) != NULL)
			entry->invalidated = true;
	}
	if (FieldSchemaHash != NULL)
	{
		FieldSchemaEntry *entry;

		hash_seq_init(&scan, FieldSchemaHash);
		while ((entry = (FieldSchemaEntry *) hash_seq_search(&scan)) != NULL)
			entry->invalidated = true;
	}
}

/* The callbacks first: no kept entry may outlive a change unnoticed. */
static void
register_inval_callbacks(void)
{
	static bool registered = false;

	if (registered)
		return;
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
								  field_caches_inval_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID,
								  field_caches_inval_callback, (Datum) 0);
	registered = true;
}

/*
 * The custom fields (CloseFieldInfo) of one object type ("lead", "contact",
 * "opportunity") from GET /custom_field_schema/{type}/, regular and shared
 * fields alike, asked for now (the requests made added to *requests, if
 * given).  IMPORT reads it afresh; scans and searches keep it (below).
 */
List *
close_field_schema_fetch(UserMapping *user, const char *object_type,
						 int64 *requests)
{
	CloseConnection *conn = close_get_connection(user);
	char	   *path = psprintf("/custom_field_schema/%s/", object_type);
	MemoryContext scratch;
	MemoryContext oldcxt;
	CloseResponse response;
	struct json_object *root;
	const char *problem;
	List	   *fields;

	scratch = AllocSetContextCreate(CurrentMemoryContext, "close_fdw field schema fetch",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(scratch);
	close_http_request(conn, "GET", path, NULL, &response);
	if (requests)
		*requests += response.attempts;
	if (response.status != 200)
		close_report_http_error(conn, "GET", path, &response, NULL);
	root = close_parse_answer("GET", path, &response, scratch);
	MemoryContextSwitchTo(oldcxt);
	/* the list is built in the caller's context; the parse goes with scratch */
	fields = close_json_field_schema(root, &problem);
	if (problem)
		close_report_bad_answer("GET", path, problem);
	MemoryContextDelete(scratch);
	return fields;
}

/*
 * The kept schema, or a new one when refresh (or none is kept); *fetched:
 * whether it was asked for now.
 */
static List *
field_schema_get(UserMapping *user, const CloseResource *res,
				 int64 *requests, bool refresh, bool *fetched)
{
	FieldSchemaKey key;
	FieldSchemaEntry *entry;
	MemoryContext scratch;
	MemoryContext oldcxt;
	List	   *fields;
	bool		found;

	Assert(res->field_schema != NULL);
	register_inval_callbacks();
	if (FieldSchemaHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(FieldSchemaKey);
		ctl.entrysize = sizeof(FieldSchemaEntry);
		ctl.hcxt = CacheMemoryContext;
		FieldSchemaHash = hash_create("close_fdw field schemas", 8, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	memset(&key, 0, sizeof(key));
	key.umid = user->umid;
	strlcpy(key.object_type, res->field_schema, sizeof(key.object_type));
	entry = hash_search(FieldSchemaHash, &key, HASH_ENTER, &found);
	if (!found)
	{
		entry->cxt = NULL;
		entry->fields = NIL;
		entry->invalidated = false;
	}
	*fetched = false;
	if (entry->cxt &&
		(refresh || entry->invalidated ||
		 TimestampDifferenceExceeds(entry->fetched_at, GetCurrentTimestamp(),
									FIELD_TYPES_TTL_MS)))
	{
		MemoryContextDelete(entry->cxt);
		entry->cxt = NULL;
		entry->fields = NIL;
	}
	if (entry->cxt)
		return entry->fields;

	/* built under the current context, so that an error on the way frees it */
	entry->invalidated = false;
	scratch = AllocSetContextCreate(CurrentMemoryContext,
									"close_fdw field schema",
									ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(scratch);
	fields = close_field_schema_fetch(user, res->field_schema, requests);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextSetParent(scratch, CacheMemoryContext);
	entry->cxt = scratch;
	entry->fields = fields;
	entry->fetched_at = GetCurrentTimestamp();
	*fetched = true;
	return fields;
}

/*
 * The custom fields (CloseFieldInfo) of a resource with a field schema:
 * kept, or fetched now (adding the requests made to *requests).  The list
 * stays valid until the next call.
 */
List *
close_field_schema_get(UserMapping *user, const CloseResource *res,
					   int64 *requests)
{
	bool		fetched;

	return field_schema_get(user, res, requests, false, &fetched);
}

/* The first of keys (custom.cf_...) that is not among fields, or NULL. */
static ListCell *
first_unknown_key(List *fields, List *keys)
{
	ListCell   *lc;
	ListCell   *lc2;

	foreach(lc, keys)
	{
		const char *field_id = strVal(lfirst(lc)) + strlen(CLOSE_CUSTOM_PREFIX);
		bool		known = false;

		foreach(lc2, fields)
			if (strcmp(((CloseFieldInfo *) lfirst(lc2))->id, field_id) == 0)
				known = true;
		if (!known)
			return lc;
	}
	return NULL;
}

/*
 * Refuse a scan of a table whose custom field column reads a field the
 * resource's schema does not have (a mistyped id would read NULL).  A field
 * missing from a kept schema is looked for in a new one first: it may have
 * been made in Close since (the schema is kept a minute).
 */
void
close_field_schema_check_table(UserMapping *user, const CloseResource *res,
							   const char *relname, List *columns, List *keys,
							   int64 *requests)
{
	bool		fetched;
	List	   *fields = field_schema_get(user, res, requests, false, &fetched);
	ListCell   *lc;
	ListCell   *lc2;
	ListCell   *missing;

	missing = first_unknown_key(fields, keys);
	if (missing != NULL && !fetched)
	{
		fields = field_schema_get(user, res, requests, true, &fetched);
		missing = first_unknown_key(fields, keys);
	}
	if (missing == NULL)
		return;

	forboth(lc, columns, lc2, keys)
	{
		const char *key = strVal(lfirst(lc2));
		StringInfoData valid;
		ListCell   *lc3;
		int			n = 0;

		if (lc2 != missing)
			continue;
		initStringInfo(&valid);
		foreach(lc3, fields)
		{
			CloseFieldInfo *f = (CloseFieldInfo *) lfirst(lc3);

			if (n++ < CHECK_HINT_FIELDS)
				appendStringInfo(&valid, "%s%s%s", n > 1 ? ", " : "",
								 CLOSE_CUSTOM_PREFIX, f->id);
		}
		if (n > CHECK_HINT_FIELDS)
			appendStringInfo(&valid, " and %d more", n - CHECK_HINT_FIELDS);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("column \"%s\" of foreign table \"%s\" reads \"%s\", which is not a custom field of Close's %s",
						strVal(lfirst(lc)), relname, key, res->plural),
				 n > 0 ? errhint("Valid fields are: %s.", valid.data)
				 : errhint("Close's %s have no custom fields.", res->plural)));
	}
}
