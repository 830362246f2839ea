/*-------------------------------------------------------------------------
 *
 * fields.c
 *		  close_fdw_fields(server): the custom object types and fields of
 *		  the organisation behind a server, as rows, so that a user can find
 *		  the cotype_... and cf_... ids a table needs without reading JSON.
 *
 * One row per field, and one row per type without fields (field columns
 * NULL).  The first column names the Close resource, so that the same
 * function can later describe leads', contacts' and opportunities' custom
 * fields without changing shape.  The column type it suggests is the one
 * IMPORT FOREIGN SCHEMA would give the field.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "close_fdw.h"

PG_FUNCTION_INFO_V1(close_fdw_fields);

#define FIELDS_COLUMNS 9

/*
 * Refuse a server of another foreign data wrapper: its options would be
 * read as ours (and its credential sent to Close).
 */
static void
check_close_server(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	bool		ours = false;

	if (OidIsValid(fdw->fdwhandler))
	{
		HeapTuple	tuple = SearchSysCache1(PROCOID,
											ObjectIdGetDatum(fdw->fdwhandler));

		if (HeapTupleIsValid(tuple))
		{
			bool		isnull;
			Datum		src = SysCacheGetAttr(PROCOID, tuple,
											  Anum_pg_proc_prosrc, &isnull);

			ours = !isnull &&
				strcmp(TextDatumGetCString(src), "close_fdw_handler") == 0;
			ReleaseSysCache(tuple);
		}
	}
	if (!ours)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a close_fdw server",
						server->servername)));
}

static void
add_row(Tuplestorestate *store, TupleDesc desc, CloseTypeInfo *type,
		CloseFieldInfo *field)
{
	Datum		values[FIELDS_COLUMNS];
	bool		nulls[FIELDS_COLUMNS];
	int			i;

	memset(nulls, false, sizeof(nulls));
	values[0] = CStringGetTextDatum("custom_object");
	values[1] = CStringGetTextDatum(type->id);
	values[2] = CStringGetTextDatum(type->name);
	if (field == NULL)
	{
		for (i = 3; i < FIELDS_COLUMNS; i++)
			nulls[i] = true;
	}
	else
	{
		values[3] = CStringGetTextDatum(field->id);
		values[4] = CStringGetTextDatum(field->name);
		values[5] = CStringGetTextDatum(field->type);
		values[6] = BoolGetDatum(field->multi);
		values[7] = CStringGetTextDatum(close_field_column_type(field));
		values[8] = CStringGetTextDatum(psprintf("OPTIONS (field '%s%s')",
												 CLOSE_CUSTOM_PREFIX,
												 field->id));
	}
	tuplestore_putvalues(store, desc, values, nulls);
}

Datum
close_fdw_fields(PG_FUNCTION_ARGS)
{
	Name		server_name = PG_GETARG_NAME(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ForeignServer *server;
	AclResult	aclresult;
	TupleDesc	desc;
	Tuplestorestate *store;
	MemoryContext oldcxt;
	List	   *types;
	ListCell   *lc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	server = GetForeignServerByName(NameStr(*server_name), false);
	check_close_server(server);
	aclresult = close_server_aclcheck(server->serverid, GetUserId());
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);

	types = close_fetch_types(close_get_user_mapping(GetUserId(),
													 server->serverid),
							  0, NULL);

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	desc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);

	foreach(lc, types)
	{
		CloseTypeInfo *type = (CloseTypeInfo *) lfirst(lc);
		ListCell   *fc;

		if (type->fields == NIL)
			add_row(store, desc, type, NULL);
		foreach(fc, type->fields)
			add_row(store, desc, type, (CloseFieldInfo *) lfirst(fc));
	}

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = desc;
	return (Datum) 0;
}
