/*-------------------------------------------------------------------------
 *
 * import.c
 *		  IMPORT FOREIGN SCHEMA custom_objects: one typed foreign table per
 *		  custom object type, read from GET /custom_object_type/, plus one
 *		  table custom_objects covering all types.
 *		  IMPORT FOREIGN SCHEMA crm: one table per other Close resource
 *		  (leads, contacts, opportunities, users, statuses, pipelines), with
 *		  its core keys typed (resource.c) and, for the resources that have
 *		  custom fields, one column per field of GET
 *		  /custom_field_schema/{lead|contact|opportunity}/.
 *
 * Names come from Close's names: lower case, every run of other characters
 * than a-z and 0-9 made one "_", cut to fit an identifier; a name that is
 * empty then, or taken already (by a core column, by the catch-all table,
 * or by an earlier type or field in Close's order), gets "_2", "_3", ...
 * Every identifier and literal in the DDL is quoted.
 *
 * IMPORT can only return CREATE FOREIGN TABLE commands, so the comments
 * (the type's and each field's original name and description) wait for the
 * end of the transaction, when the tables exist.  They go with the
 * (sub)transaction of the IMPORT: a rolled-back IMPORT leaves none, and a
 * transaction that has some cannot be prepared (its comments could not be
 * set).  A comment is set only on a foreign table the IMPORT made: one of
 * its server, created in this transaction, owned by the role that imported.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/comment.h"
#include "commands/defrem.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "close_fdw.h"

#define CLOSE_REMOTE_SCHEMA		"custom_objects"
#define CLOSE_CRM_SCHEMA		"crm"
#define CLOSE_CATCH_ALL_TABLE	"custom_objects"

/* The core columns every imported table starts with, and their comments. */
static const struct
{
	const char *name;
	const char *type;
	const char *comment;
}			core_columns[] = {
	{"id", "text", "Close id of the custom object (custobj_...), set by Close"},
	{"custom_object_type_id", "text", "Close id of the custom object type (cotype_...), set on creation only"},
	{"lead_id", "text", "Close id of the lead the object belongs to (lead_...), set on creation only"},
	{"name", "text", "Name of the custom object"},
	{"organization_id", "text", "Close id of the organization (orga_...), set by Close"},
	{"created_by", "text", "Close id of the user who created the object (user_...), set by Close"},
	{"updated_by", "text", "Close id of the user who last updated the object (user_...), set by Close"},
	{"date_created", "timestamptz", "When the object was created, set by Close"},
	{"date_updated", "timestamptz", "When the object was last updated, set by Close"},
	{NULL, NULL, NULL}
};

/* A comment to set once the imported tables exist. */
typedef struct PendingComment
{
	Oid			namespace;
	char	   *table;
	char	   *column;			/* NULL: the table's */
	char	   *comment;
	Oid			server;			/* the imported table's server */
	Oid			owner;			/* the role that imported */
	SubTransactionId subid;		/* the (sub)transaction of the IMPORT */
} PendingComment;

/* The import under way, for add_comment. */
static Oid	importing_server = InvalidOid;

static List *pending_comments = NIL;	/* in TopMemoryContext */
static bool comment_callback_registered = false;

/* The import's options, the IMPORT statement's OPTIONS (...). */
typedef struct ImportOptions
{
	bool		custom_column;	/* add "custom jsonb" to each type's table */
	bool		catch_all;		/* import the custom_objects table */
} ImportOptions;

static void
parse_import_options(List *options, ImportOptions *opts)
{
	ListCell   *lc;

	opts->custom_column = true;
	opts->catch_all = true;
	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "custom_column") == 0)
			opts->custom_column = defGetBoolean(def);
		else if (strcmp(def->defname, "catch_all") == 0)
			opts->catch_all = defGetBoolean(def);
		else
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint("Valid options of IMPORT FOREIGN SCHEMA are: custom_column, catch_all")));
	}
}

/*
 * A Close name as an identifier: lower case, each run of characters other
 * than a-z and 0-9 one "_", no "_" at either end, at most NAMEDATALEN - 5
 * bytes (room for a suffix).
 */
static char *
sanitize_name(const char *name)
{
	StringInfoData buf;
	const unsigned char *p;
	bool		gap = false;

	initStringInfo(&buf);
	for (p = (const unsigned char *) name; *p; p++)
	{
		if (isascii(*p) && isalnum(*p))
		{
			if (gap && buf.len > 0)
				appendStringInfoChar(&buf, '_');
			gap = false;
			appendStringInfoChar(&buf, (char) tolower(*p));
		}
		else
			gap = true;
	}
	if (buf.len > NAMEDATALEN - 5)
		buf.data[buf.len = NAMEDATALEN - 5] = '\0';
	return buf.data;
}

/* name, or name_2, name_3, ... : the first not in *taken; then taken. */
static char *
unique_name(const char *base, const char *fallback, List **taken)
{
	char	   *name = pstrdup(base[0] ? base : fallback);
	int			suffix = 1;
	ListCell   *lc;

	for (;;)
	{
		bool		used = false;

		foreach(lc, *taken)
			if (strcmp((char *) lfirst(lc), name) == 0)
				used = true;
		if (!used)
			break;
		name = psprintf("%s_%d", base[0] ? base : fallback, ++suffix);
	}
	*taken = lappend(*taken, name);
	return name;
}

/* The PostgreSQL type for a Close field type; NULL if unknown. */
static const char *
column_type(const char *field_type)
{
	static const char *const text_types[] = {
		"text", "textarea", "choices", "user", "contact", "custom_object",
		"hidden", NULL
	};
	int			i;

	for (i = 0; text_types[i]; i++)
		if (strcmp(field_type, text_types[i]) == 0)
			return "text";
	if (strcmp(field_type, "number") == 0)
		return "numeric";
	if (strcmp(field_type, "date") == 0)
		return "date";
	if (strcmp(field_type, "datetime") == 0)
		return "timestamptz";
	return NULL;
}

/*
 * The column type IMPORT gives a field (jsonb for an unknown Close type), an
 * array for a multi-value field; close_fdw_fields() shows it.
 */
const char *
close_field_column_type(CloseFieldInfo *field)
{
	const char *pgtype = column_type(field->type);

	if (pgtype == NULL)
		return "jsonb";
	return field->multi ? psprintf("%s[]", pgtype) : pgtype;
}

/*
 * A column type of the commands IMPORT makes, as they name it: a built-in
 * type by its schema, so that a type of the same name earlier in the
 * search_path (a domain "text" in a schema listed before pg_catalog) is not
 * the one the column gets.  The SQL keywords (bigint, integer, numeric)
 * always mean the built-in type.
 */
static const char *
qualified_type(const char *type)
{
	if (strcmp(type, "bigint") == 0 || strcmp(type, "integer") == 0 ||
		strcmp(type, "numeric") == 0)
		return type;
	return psprintf("pg_catalog.%s", type);
}

static void
add_comment(Oid namespace, const char *table, const char *column,
			const char *comment)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	PendingComment *pc = palloc(sizeof(PendingComment));

	pc->namespace = namespace;
	pc->table = pstrdup(table);
	pc->column = column ? pstrdup(column) : NULL;
	pc->comment = pstrdup(comment);
	pc->server = importing_server;
	pc->owner = GetUserId();
	pc->subid = GetCurrentSubTransactionId();
	pending_comments = lappend(pending_comments, pc);
	MemoryContextSwitchTo(oldcxt);
}

static void
free_comment(PendingComment *pc)
{
	pfree(pc->table);
	if (pc->column)
		pfree(pc->column);
	pfree(pc->comment);
	pfree(pc);
}

/*
 * Whether relid is a table the IMPORT that noted pc made: a foreign table
 * of its server, created in this transaction (its pg_class row is), owned
 * by the role that imported.  Anything else of that name (another role's
 * table, one that existed before) is left alone.
 */
static bool
made_by_import(Oid relid, PendingComment *pc)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		result;

	if (!HeapTupleIsValid(tuple))
		return false;
	result = ((Form_pg_class) GETSTRUCT(tuple))->relkind == RELKIND_FOREIGN_TABLE &&
		((Form_pg_class) GETSTRUCT(tuple))->relowner == pc->owner &&
		TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data));
	ReleaseSysCache(tuple);
	return result && GetForeignTable(relid)->serverid == pc->server;
}

/*
 * The comments of an IMPORT go with its subtransaction: dropped when it is
 * rolled back, the parent's when it commits.
 */
static void
comments_subxact(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	foreach(lc, pending_comments)
	{
		PendingComment *pc = (PendingComment *) lfirst(lc);

		if (pc->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			pc->subid = parentSubid;
		else
		{
			pending_comments = foreach_delete_current(pending_comments, lc);
			free_comment(pc);
		}
	}
}

/* The imported tables exist by the end of the transaction: comment them. */
static void
apply_comments(XactEvent event, void *arg)
{
	ListCell   *lc;

	/*
	 * A prepared transaction's comments could only be set now, before it is
	 * known to commit, so that it would hold them; refuse rather than lose
	 * them.
	 */
	if (event == XACT_EVENT_PRE_PREPARE && pending_comments != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare a transaction that has imported foreign tables with close_fdw"),
				 errhint("Run IMPORT FOREIGN SCHEMA in a transaction that is not prepared.")));

	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT)
	{
		foreach(lc, pending_comments)
		{
			PendingComment *pc = (PendingComment *) lfirst(lc);
			Oid			relid = get_relname_relid(pc->table, pc->namespace);
			AttrNumber	attnum = 0;

			/* not imported (LIMIT TO, EXCEPT), or not by this IMPORT */
			if (!OidIsValid(relid) || !made_by_import(relid, pc))
				continue;
			if (pc->column)
			{
				attnum = get_attnum(relid, pc->column);
				if (attnum == InvalidAttrNumber)
					continue;
			}
			CreateComments(relid, RelationRelationId, attnum, pc->comment);
		}
	}
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		foreach(lc, pending_comments)
			free_comment((PendingComment *) lfirst(lc));
		list_free(pending_comments);
		pending_comments = NIL;
	}
}

/* "Name: description", or the name alone. */
static char *
name_and_description(const char *name, const char *description)
{
	if (description && description[0])
		return psprintf("%s: %s", name, description);
	return pstrdup(name);
}

/*
 * One column per custom field, named after the field (unique among taken,
 * which gets the names), with OPTIONS (field 'custom.cf_...') and the
 * field's name and description as comment.  owner names whose fields they
 * are, for the NOTICE about a field of unknown type.
 */
static void
append_field_columns(StringInfo buf, List *fields, const char *owner,
					 const char *table, Oid namespace, List **taken)
{
	ListCell   *lc;

	foreach(lc, fields)
	{
		CloseFieldInfo *field = (CloseFieldInfo *) lfirst(lc);
		const char *pgtype = column_type(field->type);
		char	   *column = unique_name(sanitize_name(field->name), "field",
										 taken);

		if (pgtype == NULL)
		{
			ereport(NOTICE,
					(errmsg("field \"%s\" of %s has the unknown type \"%s\"; it is imported as jsonb",
							field->name, owner, field->type)));
			pgtype = "jsonb";
		}
		appendStringInfo(buf, ",\n  %s %s%s OPTIONS (field %s)",
						 quote_identifier(column), qualified_type(pgtype),
						 field->multi && strcmp(pgtype, "jsonb") != 0 ? "[]" : "",
						 quote_literal_cstr(psprintf("%s%s", CLOSE_CUSTOM_PREFIX,
													 field->id)));
		add_comment(namespace, table, column,
					name_and_description(field->name, field->description));
	}
}

/* One CREATE FOREIGN TABLE, with its comments noted. */
static char *
create_table_command(const char *table, CloseTypeInfo *type,
					 const char *server, Oid namespace, ImportOptions *opts)
{
	StringInfoData buf;
	List	   *taken = NIL;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (\n", quote_identifier(table));
	for (i = 0; core_columns[i].name; i++)
	{
		appendStringInfo(&buf, "%s  %s %s", i > 0 ? ",\n" : "",
						 quote_identifier(core_columns[i].name),
						 qualified_type(core_columns[i].type));
		taken = lappend(taken, (char *) core_columns[i].name);
		add_comment(namespace, table, core_columns[i].name,
					core_columns[i].comment);
	}
	taken = lappend(taken, CLOSE_KEY_CUSTOM);

	if (type)
		append_field_columns(&buf, type->fields,
							 psprintf("custom object type \"%s\"", type->name),
							 table, namespace, &taken);
	if (!type || opts->custom_column)
	{
		appendStringInfoString(&buf, ",\n  custom pg_catalog.jsonb");
		add_comment(namespace, table, CLOSE_KEY_CUSTOM,
					"Every custom field's value, keyed by Close field id (cf_...)");
	}

	appendStringInfo(&buf, "\n) SERVER %s", quote_identifier(server));
	if (type)
	{
		appendStringInfo(&buf, " OPTIONS (custom_object_type_id %s)",
						 quote_literal_cstr(type->id));
		add_comment(namespace, table, NULL,
					psprintf("Close custom object type %s",
							 name_and_description(type->name, type->description)));
	}
	else
		add_comment(namespace, table, NULL, "Close custom objects of every type");
	return buf.data;
}

/*
 * The custom object types and their fields, from GET /custom_object_type/
 * (one request; the document is freed before returning).
 */
List *
close_fetch_types(UserMapping *user, int cache_ttl_ms, bool *sent)
{
	CloseConnection *conn = close_get_connection(user);
	MemoryContext scratch;
	MemoryContext oldcxt;
	CloseResponse response;
	struct json_object *root;
	const char *problem;
	List	   *types;

	scratch = AllocSetContextCreate(CurrentMemoryContext, "close_fdw types",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(scratch);
	if (sent)
		*sent = false;

	/*
	 * A table with an answer cache reads the types from it too: the scan
	 * that another backend answers from the cache would otherwise still
	 * ask for them.
	 */
	if (cache_ttl_ms <= 0 ||
		!close_answers_cached(conn, cache_ttl_ms, "GET", "/custom_object_type/",
							  NULL, &response))
	{
		uint64		since = close_cache_generation();
		TimestampTz asked = GetCurrentTimestamp();

		if (sent)
			*sent = true;

		close_http_request(conn, "GET", "/custom_object_type/", NULL, &response);
		if (response.status != 200)
			close_report_http_error(conn, "GET", "/custom_object_type/",
									&response, NULL);
		if (cache_ttl_ms > 0)
			close_answers_remember(conn, since, asked, "GET",
								   "/custom_object_type/", NULL, &response);
	}
	root = close_parse_answer("GET", "/custom_object_type/", &response, scratch);
	MemoryContextSwitchTo(oldcxt);
	types = close_json_types(root, &problem);
	if (problem)
		close_report_bad_answer("GET", "/custom_object_type/", problem);
	MemoryContextDelete(scratch);
	return types;
}

/*
 * The CREATE FOREIGN TABLE of one resource of the crm schema, with its
 * comments noted: its core keys typed, then its custom fields (fields) and
 * the custom jsonb column if it has custom fields.
 */
static char *
create_crm_table_command(const CloseResource *res, List *fields,
						 const char *server, Oid namespace, ImportOptions *opts)
{
	const char *table = res->import_table;
	StringInfoData buf;
	List	   *taken = NIL;
	const CloseResourceKey *k;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (\n", quote_identifier(table));
	for (k = res->keys; k->key; k++)
	{
		appendStringInfo(&buf, "%s  %s %s", k != res->keys ? ",\n" : "",
						 quote_identifier(k->key), qualified_type(k->type));
		taken = lappend(taken, (char *) k->key);
		add_comment(namespace, table, k->key, k->comment);
	}
	if (res->field_schema)
	{
		taken = lappend(taken, CLOSE_KEY_CUSTOM);
		append_field_columns(&buf, fields,
							 psprintf("the %s custom fields",
									  close_resource_noun(res, false)),
							 table, namespace, &taken);
		if (opts->custom_column)
		{
			appendStringInfoString(&buf, ",\n  custom pg_catalog.jsonb");
			add_comment(namespace, table, CLOSE_KEY_CUSTOM,
						"Every custom field's value, keyed by Close field id (cf_...)");
		}
	}
	appendStringInfo(&buf, "\n) SERVER %s OPTIONS (resource %s)",
					 quote_identifier(server), quote_literal_cstr(res->name));
	add_comment(namespace, table, NULL,
				psprintf("Close %s%s", close_resource_noun(res, true),
						 res->writable ? "" : " (read-only)"));
	return buf.data;
}

/*
 * Warn about each table LIMIT TO names that the import would not create,
 * listing those it would (taken: the catch-all name, then each type's).
 */
static void
warn_unknown_names(List *table_list, List *taken, bool catch_all)
{
	ListCell   *lc;
	ListCell   *lc2;

	foreach(lc, table_list)
	{
		const char *wanted = ((RangeVar *) lfirst(lc))->relname;
		StringInfoData valid;
		bool		known = false;

		initStringInfo(&valid);
		foreach(lc2, taken)
		{
			const char *name = (const char *) lfirst(lc2);

			if (lc2 == list_head(taken) && !catch_all)
				continue;
			if (strcmp(name, wanted) == 0)
				known = true;
			appendStringInfo(&valid, "%s%s", valid.len > 0 ? ", " : "",
							 quote_identifier(name));
		}
		if (!known)
			ereport(WARNING,
					(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
					 errmsg("IMPORT FOREIGN SCHEMA creates no table \"%s\" named in LIMIT TO",
							wanted),
					 valid.len > 0
					 ? errhint("The tables it can create are: %s.", valid.data)
					 : errhint("Close has no custom object types.")));
	}
}

/*
 * IMPORT FOREIGN SCHEMA crm: a table per resource that has an import
 * table, in resource.c's order; the custom field schema is read only for
 * the tables LIMIT TO / EXCEPT let through.  Table names are fixed (the
 * resources'), so nothing collides among them.
 */
static List *
import_crm(ImportForeignSchemaStmt *stmt, Oid serverOid, UserMapping *user,
		   Oid namespace, ImportOptions *opts)
{
	ForeignServer *server = GetForeignServer(serverOid);
	List	   *commands = NIL;
	List	   *taken = NIL;
	List	   *fields_of = NIL;	/* the field lists, by resource */
	const CloseResource *res;
	int			n;

	/* the requests first, never cut off by the request budget */
	close_budget_exempt(true);
	PG_TRY();
	{
		for (n = 0; (res = close_resource_nth(n)) != NULL; n++)
		{
			List	   *fields = NIL;

			if (res->import_table && res->field_schema &&
				IsImportableForeignTable(res->import_table, stmt))
				fields = close_field_schema_fetch(user, res->field_schema, NULL);
			fields_of = lappend(fields_of, fields);
		}
	}
	PG_FINALLY();
	{
		close_budget_exempt(false);
	}
	PG_END_TRY();

	importing_server = serverOid;
	for (n = 0; (res = close_resource_nth(n)) != NULL; n++)
	{
		if (res->import_table == NULL)
			continue;
		taken = lappend(taken, (char *) res->import_table);
		if (!IsImportableForeignTable(res->import_table, stmt))
			continue;
		commands = lappend(commands,
						   create_crm_table_command(res,
													(List *) list_nth(fields_of, n),
													server->servername,
													namespace, opts));
	}
	if (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO)
		warn_unknown_names(stmt->table_list, taken, true);
	return commands;
}

List *
closeImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	UserMapping *user = GetUserMapping(GetUserId(), serverOid);
	Oid			namespace = get_namespace_oid(stmt->local_schema, false);
	ImportOptions opts;
	List	   *types;
	List	   *commands = NIL;
	List	   *taken = NIL;
	ListCell   *lc;

	if (strcmp(stmt->remote_schema, CLOSE_REMOTE_SCHEMA) != 0 &&
		strcmp(stmt->remote_schema, CLOSE_CRM_SCHEMA) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("Close has no remote schema \"%s\"", stmt->remote_schema),
				 errhint("The valid remote schemas are \"%s\" and \"%s\".",
						 CLOSE_REMOTE_SCHEMA, CLOSE_CRM_SCHEMA)));
	parse_import_options(stmt->options, &opts);

	if (!comment_callback_registered)
	{
		RegisterXactCallback(apply_comments, NULL);
		RegisterSubXactCallback(comments_subxact, NULL);
		comment_callback_registered = true;
	}

	if (strcmp(stmt->remote_schema, CLOSE_CRM_SCHEMA) == 0)
		return import_crm(stmt, serverOid, user, namespace, &opts);

	/* IMPORT is never cut off by the request budget */
	close_budget_exempt(true);
	PG_TRY();
	{
		types = close_fetch_types(user, 0, NULL);
	}
	PG_FINALLY();
	{
		close_budget_exempt(false);
	}
	PG_END_TRY();
	importing_server = serverOid;

	/* the catch-all table's name is taken first, whether imported or not */
	taken = lappend(taken, CLOSE_CATCH_ALL_TABLE);
	if (opts.catch_all && IsImportableForeignTable(CLOSE_CATCH_ALL_TABLE, stmt))
		commands = lappend(commands,
						   create_table_command(CLOSE_CATCH_ALL_TABLE, NULL,
												server->servername, namespace,
												&opts));
	foreach(lc, types)
	{
		CloseTypeInfo *type = (CloseTypeInfo *) lfirst(lc);
		char	   *table = unique_name(sanitize_name(type->name), "type", &taken);

		/* names do not depend on LIMIT TO and EXCEPT; commands (and comments) do */
		if (!IsImportableForeignTable(table, stmt))
			continue;
		commands = lappend(commands,
						   create_table_command(table, type, server->servername,
												namespace, &opts));
	}

	/* a name in LIMIT TO that no table has is likely a typo: say so */
	if (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO)
		warn_unknown_names(stmt->table_list, taken, opts.catch_all);
	return commands;
}
