/*-------------------------------------------------------------------------
 *
 * option.c
 *		  The options close_fdw accepts, where each is allowed, the validator
 *		  that enforces that, and the readers that turn catalog options into
 *		  typed structs.  The validator and the readers share one parser per
 *		  option, so a value is never interpreted two ways.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_attribute.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "miscadmin.h"

#include "close_fdw.h"

/* One accepted option and the catalog whose objects may carry it. */
typedef struct CloseOption
{
	const char *name;
	Oid			context;
	bool		secret;			/* never echo the value */
} CloseOption;

static const CloseOption close_options[] = {
	{"api_url", ForeignServerRelationId, false},
	{"timeout_ms", ForeignServerRelationId, false},
	{"connect_timeout_ms", ForeignServerRelationId, false},
	{"page_size", ForeignServerRelationId, false},
	{"batch_size", ForeignServerRelationId, false},
	{"max_retries", ForeignServerRelationId, false},
	{"rate_limit_wait_ms", ForeignServerRelationId, false},
	{"max_concurrency", ForeignServerRelationId, false},
	{"max_response_bytes", ForeignServerRelationId, false},
	{"ca_file", ForeignServerRelationId, false},
	{"batch_size", ForeignTableRelationId, false},
	{"write_mode", ForeignServerRelationId, false},
	{"write_mode", ForeignTableRelationId, false},
	{"api_key", UserMappingRelationId, true},
	{"oauth_token", UserMappingRelationId, true},
	{"custom_object_type_id", ForeignTableRelationId, false},
	{"resource", ForeignTableRelationId, false},
	{"field", AttributeRelationId, false},
	{NULL, InvalidOid, false}
};

#define DEFAULT_API_URL				"https://api.close.com/api/v1"
#define DEFAULT_TIMEOUT_MS			30000
#define DEFAULT_CONNECT_TIMEOUT_MS	10000
#define DEFAULT_PAGE_SIZE			100
#define MAX_PAGE_SIZE				1000
#define MAX_BATCH_SIZE				1000
#define DEFAULT_MAX_RETRIES			5
#define DEFAULT_RATE_LIMIT_WAIT_MS	60000
#define DEFAULT_MAX_CONCURRENCY		8
#define MAX_MAX_RETRIES				100
#define DEFAULT_MAX_RESPONSE_BYTES	(64 * 1024 * 1024)

PG_FUNCTION_INFO_V1(close_fdw_validator);

/* The option of that name allowed in context, else any of that name. */
static const CloseOption *
find_option(const char *name, Oid context)
{
	const CloseOption *opt;
	const CloseOption *found = NULL;

	for (opt = close_options; opt->name; opt++)
	{
		if (strcmp(opt->name, name) != 0)
			continue;
		if (opt->context == context)
			return opt;
		found = opt;
	}
	return found;
}

pg_noreturn static void
report_invalid_option(DefElem *def, Oid context)
{
	const CloseOption *opt;
	StringInfoData buf;

	initStringInfo(&buf);
	for (opt = close_options; opt->name; opt++)
	{
		if (opt->context == context)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", opt->name);
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", def->defname),
			 buf.len > 0
			 ? errhint("Valid options in this context are: %s", buf.data)
			 : errhint("There are no valid options in this context.")));
}

pg_noreturn static void
report_invalid_value(const char *name, const char *value, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 value ? errmsg("invalid value for option \"%s\": \"%s\"", name, value)
			 : errmsg("invalid value for option \"%s\"", name),
			 errdetail("%s", detail)));
}

static int
parse_int_option(DefElem *def, int min, int max)
{
	char	   *value = defGetString(def);
	int			result;

	if (!parse_int(value, &result, 0, NULL) || result < min || result > max)
		report_invalid_value(def->defname, value,
							 psprintf("The value must be an integer from %d to %d.",
									  min, max));
	return result;
}

/* write_mode: true for 'deferred', false for 'immediate'. */
static bool
parse_write_mode(DefElem *def)
{
	char	   *value = defGetString(def);

	if (strcmp(value, "deferred") == 0)
		return true;
	if (strcmp(value, "immediate") != 0)
		report_invalid_value(def->defname, value,
							 "The value must be \"immediate\" or \"deferred\".");
	return false;
}

/*
 * True when host (as written in a URL authority) is a loopback address,
 * where plain http is allowed for tests.
 */
static bool
is_loopback_host(const char *host, size_t len)
{
	if (len == strlen("localhost") && strncmp(host, "localhost", len) == 0)
		return true;
	if (len == strlen("[::1]") && strncmp(host, "[::1]", len) == 0)
		return true;
	if (len >= 4 && strncmp(host, "127.", 4) == 0)
	{
		size_t		i;

		for (i = 4; i < len; i++)
			if (!(isdigit((unsigned char) host[i]) || host[i] == '.'))
				return false;
		return true;
	}
	return false;
}

/*
 * api_url: http(s) only, https unless the host is loopback, no credentials,
 * query or fragment (they would be sent, shown or mangled with every path).
 * Returns the URL without trailing slashes.
 */
static char *
parse_api_url(const char *value)
{
	const char *rest;
	size_t		hostlen;
	char	   *url;
	size_t		len;
	bool		https;

	if (pg_strncasecmp(value, "https://", 8) == 0)
	{
		https = true;
		rest = value + 8;
	}
	else if (pg_strncasecmp(value, "http://", 7) == 0)
	{
		https = false;
		rest = value + 7;
	}
	else
		report_invalid_value("api_url", strchr(value, '@') ? NULL : value,
							 "The URL must start with https://.");

	hostlen = strcspn(rest, "/?#");
	if (hostlen == 0)
		report_invalid_value("api_url", value, "The URL has no host.");
	if (memchr(rest, '@', hostlen) != NULL)
		report_invalid_value("api_url", NULL,
							 "The URL must not contain credentials; put them in a user mapping.");
	if (strpbrk(value, "?# \t\r\n") != NULL)
		report_invalid_value("api_url", value,
							 "The URL must not contain a query, a fragment or white space.");

	if (!https)
	{
		size_t		namelen = hostlen;
		const char *colon;

		/* the host without a port; an IPv6 literal keeps its brackets */
		if (rest[0] == '[')
		{
			const char *close = memchr(rest, ']', hostlen);

			if (close)
				namelen = close - rest + 1;
		}
		else if ((colon = memchr(rest, ':', hostlen)) != NULL)
			namelen = colon - rest;
		if (!is_loopback_host(rest, namelen))
			report_invalid_value("api_url", value,
								 "Plain http is allowed only for a loopback host; use https.");
	}

	url = pstrdup(value);
	len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		url[--len] = '\0';
	return url;
}

/*
 * A credential goes into an HTTP header: refuse what could break out of
 * it.  The value itself is never shown.
 */
static char *
parse_secret(DefElem *def)
{
	char	   *value = defGetString(def);
	const char *p;

	if (value[0] == '\0')
		report_invalid_value(def->defname, NULL, "The value must not be empty.");
	for (p = value; *p; p++)
	{
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			report_invalid_value(def->defname, NULL,
								 "The value must not contain control characters.");
		if (*p == ':' && strcmp(def->defname, "api_key") == 0)
			report_invalid_value(def->defname, NULL,
								 "An API key cannot contain a colon.");
	}
	return value;
}

/*
 * True if value is the prefix followed by one or more base62 characters:
 * the only shape a Close id has.  Values of any other shape are never put
 * into a request path.
 */
bool
close_is_valid_id(const char *value, const char *prefix)
{
	size_t		plen = strlen(prefix);
	const char *p;

	if (strncmp(value, prefix, plen) != 0 || value[plen] == '\0')
		return false;
	for (p = value + plen; *p; p++)
		if (!isalnum((unsigned char) *p) || !isascii((unsigned char) *p))
			return false;
	return (p - value) <= 200;
}

static char *
parse_type_id(DefElem *def)
{
	char	   *value = defGetString(def);

	if (!close_is_valid_id(value, CLOSE_PREFIX_TYPE))
		report_invalid_value(def->defname, value,
							 "A custom object type id is \"cotype_\" followed by letters and digits.");
	return value;
}

static const CloseResource *
parse_resource(DefElem *def)
{
	char	   *value = defGetString(def);
	const CloseResource *res = close_resource_by_name(value);

	if (res == NULL)
		report_invalid_value(def->defname, value,
							 psprintf("The value must be one of: %s.",
									  close_resource_names()));
	return res;
}

static char *
parse_field(DefElem *def)
{
	char	   *value = defGetString(def);

	if (value[0] == '\0')
		report_invalid_value(def->defname, value, "The value must not be empty.");
	return value;
}

/*
 * Validate the options of one object; called by CREATE and ALTER with the
 * complete resulting option list.
 */
Datum
close_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *cell;
	int			credentials = 0;
	bool		has_type_id = false;
	const CloseResource *resource = close_resource_default();

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);
		const CloseOption *opt = find_option(def->defname, catalog);

		if (opt == NULL || opt->context != catalog)
		{
			if (opt && opt->secret)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("option \"%s\" is allowed only on a user mapping",
								def->defname),
						 errhint("Use CREATE USER MAPPING ... OPTIONS (%s '...').",
								 def->defname)));
			report_invalid_option(def, catalog);
		}

		if (strcmp(def->defname, "api_url") == 0)
		{
			char	   *url = parse_api_url(defGetString(def));

			/*
			 * Any other URL points the backend's requests, with their
			 * bodies, at another service (a local one over plain http too),
			 * and shows its answers: only a superuser may choose one.  A
			 * server a superuser set up that way may be used by anyone
			 * granted it.
			 */
			if (strcmp(url, DEFAULT_API_URL) != 0 && !superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a superuser can set option \"api_url\" to a URL other than \"%s\"",
								DEFAULT_API_URL)));
		}
		else if (strcmp(def->defname, "timeout_ms") == 0)
			(void) parse_int_option(def, 1, INT_MAX);
		else if (strcmp(def->defname, "connect_timeout_ms") == 0)
			(void) parse_int_option(def, 1, INT_MAX);
		else if (strcmp(def->defname, "page_size") == 0)
			(void) parse_int_option(def, 1, MAX_PAGE_SIZE);
		else if (strcmp(def->defname, "batch_size") == 0)
			(void) parse_int_option(def, 1, MAX_BATCH_SIZE);
		else if (strcmp(def->defname, "max_retries") == 0)
			(void) parse_int_option(def, 0, MAX_MAX_RETRIES);
		else if (strcmp(def->defname, "rate_limit_wait_ms") == 0)
			(void) parse_int_option(def, 0, INT_MAX);
		else if (strcmp(def->defname, "max_concurrency") == 0)
			(void) parse_int_option(def, 1, CLOSE_MAX_CONCURRENCY);
		else if (strcmp(def->defname, "max_response_bytes") == 0)
			(void) parse_int_option(def, 1024, MaxAllocHugeSize > INT_MAX ? INT_MAX : (int) MaxAllocHugeSize);
		else if (strcmp(def->defname, "ca_file") == 0)
		{
			/* a file the server reads: only a superuser may name one */
			if (!superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a superuser can set option \"ca_file\"")));
			if (!is_absolute_path(defGetString(def)))
				report_invalid_value(def->defname, defGetString(def),
									 "The value must be an absolute path.");
		}
		else if (strcmp(def->defname, "api_key") == 0 ||
				 strcmp(def->defname, "oauth_token") == 0)
		{
			(void) parse_secret(def);
			credentials++;
		}
		else if (strcmp(def->defname, "custom_object_type_id") == 0)
		{
			(void) parse_type_id(def);
			has_type_id = true;
		}
		else if (strcmp(def->defname, "resource") == 0)
		{
			resource = parse_resource(def);
			/* searched resources are read; the rest not yet (crm-rest) */
			if (resource->search_type == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("resource \"%s\" cannot be read yet",
								resource->name)));
		}
		else if (strcmp(def->defname, "write_mode") == 0)
			(void) parse_write_mode(def);
		else if (strcmp(def->defname, "field") == 0)
			(void) parse_field(def);
	}

	if (has_type_id && resource != close_resource_default())
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"custom_object_type_id\" is only valid with resource \"%s\"",
						close_resource_default()->name),
				 errdetail("The table reads resource \"%s\".", resource->name)));

	if (catalog == UserMappingRelationId && credentials != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a user mapping for close_fdw needs exactly one of \"api_key\" and \"oauth_token\""),
				 errhint("Use OPTIONS (api_key '...') for an API key or OPTIONS (oauth_token '...') for an OAuth access token.")));

	PG_RETURN_VOID();
}

void
close_get_server_options(ForeignServer *server, CloseServerOptions *opts)
{
	ListCell   *cell;

	opts->api_url = DEFAULT_API_URL;
	opts->timeout_ms = DEFAULT_TIMEOUT_MS;
	opts->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	opts->page_size = DEFAULT_PAGE_SIZE;
	opts->batch_size = 1;
	opts->max_retries = DEFAULT_MAX_RETRIES;
	opts->rate_limit_wait_ms = DEFAULT_RATE_LIMIT_WAIT_MS;
	opts->max_concurrency = DEFAULT_MAX_CONCURRENCY;
	opts->max_response_bytes = DEFAULT_MAX_RESPONSE_BYTES;
	opts->ca_file = NULL;

	foreach(cell, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "api_url") == 0)
			opts->api_url = parse_api_url(defGetString(def));
		else if (strcmp(def->defname, "timeout_ms") == 0)
			opts->timeout_ms = parse_int_option(def, 1, INT_MAX);
		else if (strcmp(def->defname, "connect_timeout_ms") == 0)
			opts->connect_timeout_ms = parse_int_option(def, 1, INT_MAX);
		else if (strcmp(def->defname, "page_size") == 0)
			opts->page_size = parse_int_option(def, 1, MAX_PAGE_SIZE);
		else if (strcmp(def->defname, "batch_size") == 0)
			opts->batch_size = parse_int_option(def, 1, MAX_BATCH_SIZE);
		else if (strcmp(def->defname, "max_retries") == 0)
			opts->max_retries = parse_int_option(def, 0, MAX_MAX_RETRIES);
		else if (strcmp(def->defname, "rate_limit_wait_ms") == 0)
			opts->rate_limit_wait_ms = parse_int_option(def, 0, INT_MAX);
		else if (strcmp(def->defname, "max_concurrency") == 0)
			opts->max_concurrency = parse_int_option(def, 1, CLOSE_MAX_CONCURRENCY);
		else if (strcmp(def->defname, "max_response_bytes") == 0)
			opts->max_response_bytes = parse_int_option(def, 1024, INT_MAX);
		else if (strcmp(def->defname, "ca_file") == 0)
			opts->ca_file = defGetString(def);
	}
}

void
close_get_user_options(UserMapping *user, CloseUserOptions *opts)
{
	ListCell   *cell;

	opts->api_key = NULL;
	opts->oauth_token = NULL;
	foreach(cell, user->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "api_key") == 0)
			opts->api_key = parse_secret(def);
		else if (strcmp(def->defname, "oauth_token") == 0)
			opts->oauth_token = parse_secret(def);
	}
}

/* The table's custom_object_type_id option, or NULL. */
char *
close_get_table_type_id(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	ListCell   *cell;

	foreach(cell, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "custom_object_type_id") == 0)
			return parse_type_id(def);
	}
	return NULL;
}

/* The resource the table reads: its "resource" option, else custom objects. */
const CloseResource *
close_get_table_resource(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	ListCell   *cell;

	foreach(cell, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "resource") == 0)
			return parse_resource(def);
	}
	return close_resource_default();
}

/* The record key a column reads: its "field" option, else its name. */
char *
close_get_column_key(Oid relid, AttrNumber attnum, const char *attname)
{
	List	   *options = GetForeignColumnOptions(relid, attnum);
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "field") == 0)
			return parse_field(def);
	}
	return pstrdup(attname);
}

/*
 * Refuse a table definition with a column that maps to no Close key: no
 * "field" option, and a name that is no record key (a typo such as
 * "amout"), nor "custom" on a json or jsonb column.  Such a column would
 * only ever read NULL.  A "field" option is the user's word for the key;
 * its custom fields are checked against Close's types when the table is
 * scanned (fieldtypes.c).
 */
void
close_check_column_keys(Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	const CloseResource *res = close_get_table_resource(RelationGetRelid(rel));
	int			i;

	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		const char *name = NameStr(att->attname);
		List	   *options;
		ListCell   *cell;
		bool		has_field = false;

		/* a generated column is computed here, not read from Close */
		if (att->attisdropped || att->attgenerated)
			continue;
		if (close_resource_key(res, name) ||
			close_is_custom_map_column(att->atttypid, name))
			continue;
		options = GetForeignColumnOptions(RelationGetRelid(rel), att->attnum);
		foreach(cell, options)
			if (strcmp(((DefElem *) lfirst(cell))->defname, "field") == 0)
				has_field = true;
		if (has_field)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("column \"%s\" of foreign table \"%s\" maps to no Close key",
						name, RelationGetRelationName(rel)),
				 errdetail("A column without a \"field\" option reads the record key of its name, and Close records have no key \"%s\".",
						   name),
				 errhint("Valid keys are %s, custom (a json or jsonb column of every custom field), and custom.cf_... (a custom field, through OPTIONS (field 'custom.cf_...')).",
						 close_resource_key_names(res))));
	}
}

/*
 * Whether a table's writes are deferred to the commit: its write_mode
 * option, else its server's, else 'immediate'.
 */
bool
close_write_mode_deferred(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(table->serverid);
	ListCell   *cell;

	foreach(cell, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "write_mode") == 0)
			return parse_write_mode(def);
	}
	foreach(cell, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "write_mode") == 0)
			return parse_write_mode(def);
	}
	return false;
}

/* The table's batch_size option, else the server's, else 1. */
int
close_get_batch_size(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	CloseServerOptions sopts;
	ListCell   *cell;

	foreach(cell, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "batch_size") == 0)
			return parse_int_option(def, 1, MAX_BATCH_SIZE);
	}
	close_get_server_options(GetForeignServer(table->serverid), &sopts);
	return sopts.batch_size;
}
