/*-------------------------------------------------------------------------
 *
 * resource.c
 *		  The Close resources a foreign table can read, described once as
 *		  data: each resource's path, id prefix, how its records are listed
 *		  and searched, its paging caps, whether it is written, and its core
 *		  record keys.  Scan, modify, search and import code read this table
 *		  (through a table's "resource" option) instead of switching on the
 *		  resource; a new resource is a new row here, plus tests.
 *
 * The facts come from the API sheets (close-api.md for custom objects,
 * close-crm-api.md for the rest).  Where the sheets call a fact
 * unconfirmed, the row takes the safe side: a cap not known is taken as
 * the one measured for leads, a GET by id not confirmed is not used (the
 * small listing is filtered instead).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "close_fdw.h"

/*
 * Keys every Close record carries the same way.  created_by and updated_by
 * may be null (close-crm-api.md), so they are not never_null: only the
 * keys marked so (ids, lead ids, statuses) always have a value.
 */
#define ORG_KEY		{"organization_id", "text", CLOSE_KEY_READ_ONLY, NULL, "Close id of the organization (orga_...), set by Close"}
#define CREATED_BY	{"created_by", "text", CLOSE_KEY_READ_ONLY, "id", "Close id of the user who created it (user_...), set by Close"}
#define UPDATED_BY	{"updated_by", "text", CLOSE_KEY_READ_ONLY, "id", "Close id of the user who last updated it (user_...), set by Close"}
#define CREATED		{"date_created", "timestamptz", CLOSE_KEY_READ_ONLY, "datetime", "When it was created, set by Close"}
#define UPDATED		{"date_updated", "timestamptz", CLOSE_KEY_READ_ONLY, "datetime", "When it was last updated, set by Close"}
#define END_KEYS	{NULL, NULL, CLOSE_KEY_READ_ONLY, NULL, NULL, NULL, false, NULL}

static const CloseResourceKey custom_object_keys[] = {
	{"id", "text", CLOSE_KEY_READ_ONLY, "id", "Close id of the custom object (custobj_...), set by Close", NULL, true},
	{"custom_object_type_id", "text", CLOSE_KEY_CREATE_ONLY, "id", "Close id of the custom object type (cotype_...), set on creation only", NULL, true},
	{"lead_id", "text", CLOSE_KEY_CREATE_ONLY, "id", "Close id of the lead the object belongs to (lead_...), set on creation only", NULL, true},
	{"name", "text", CLOSE_KEY_WRITABLE, "text", "Name of the custom object"},
	ORG_KEY, CREATED_BY, UPDATED_BY, CREATED, UPDATED,
	END_KEYS
};

/*
 * Leads: the nested contacts, opportunities and tasks are tables of their
 * own, and the deprecated "custom" object (keyed by field name) is never
 * read as data, so none of them is a key here.
 */
static const CloseResourceKey lead_keys[] = {
	{"id", "text", CLOSE_KEY_READ_ONLY, "id", "Close id of the lead (lead_...), set by Close", NULL, true},
	{"name", "text", CLOSE_KEY_WRITABLE, "text", "Name of the lead (the company)"},
	{"display_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name Close shows for the lead, set by Close"},
	{"description", "text", CLOSE_KEY_WRITABLE, NULL, "Description of the lead"},
	{"url", "text", CLOSE_KEY_WRITABLE, NULL, "Web site of the lead"},
	{"status_id", "text", CLOSE_KEY_WRITABLE, "id", "Close id of the lead status (stat_...)", "status.lead", true, NULL, true},
	{"status_label", "text", CLOSE_KEY_WRITABLE, NULL, "Label of the lead status; writing it sets the status", NULL, false, "status", true},
	{"addresses", "jsonb", CLOSE_KEY_WRITABLE, NULL, "Addresses of the lead, as Close's JSON array"},
	{"html_url", "text", CLOSE_KEY_READ_ONLY, NULL, "Address of the lead in Close's web application, set by Close"},
	ORG_KEY, CREATED_BY, UPDATED_BY,
	{"created_by_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name of the user who created the lead, set by Close"},
	{"updated_by_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name of the user who last updated the lead, set by Close"},
	CREATED, UPDATED,
	END_KEYS
};

static const CloseResourceKey contact_keys[] = {
	{"id", "text", CLOSE_KEY_READ_ONLY, "id", "Close id of the contact (cont_...), set by Close", NULL, true},
	{"lead_id", "text", CLOSE_KEY_CREATE_ONLY, "id", "Close id of the lead the contact belongs to (lead_...), set on creation only", NULL, true},
	{"name", "text", CLOSE_KEY_WRITABLE, "text", "Name of the contact"},
	{"title", "text", CLOSE_KEY_WRITABLE, "text", "Title of the contact"},
	{"display_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name Close shows for the contact, set by Close"},
	{"emails", "jsonb", CLOSE_KEY_WRITABLE, NULL, "Email addresses, as Close's JSON array of {email, type}"},
	{"phones", "jsonb", CLOSE_KEY_WRITABLE, NULL, "Phone numbers, as Close's JSON array of {phone, type} (Close stores them as E.164)", NULL, false, NULL, false, true},
	{"urls", "jsonb", CLOSE_KEY_WRITABLE, NULL, "Web addresses, as Close's JSON array of {url, type}"},
	{"timezone", "text", CLOSE_KEY_WRITABLE, NULL, "Time zone of the contact (an IANA name)", NULL, false, NULL, true},
	ORG_KEY, CREATED_BY, UPDATED_BY, CREATED, UPDATED,
	END_KEYS
};

/*
 * Opportunities: money is in cents (Close's minor units), in and out, so
 * the amounts are bigint; date_won is a date.  pipeline_id is taken on
 * creation only (the update schema has none).
 */
static const CloseResourceKey opportunity_keys[] = {
	{"id", "text", CLOSE_KEY_READ_ONLY, "id", "Close id of the opportunity (oppo_...), set by Close", NULL, true},
	{"lead_id", "text", CLOSE_KEY_CREATE_ONLY, "id", "Close id of the lead the opportunity belongs to (lead_...), set on creation only", NULL, true},
	{"lead_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name of its lead, set by Close"},
	{"status_id", "text", CLOSE_KEY_WRITABLE, "id", "Close id of the opportunity status (stat_...)", "status.opportunity", true, NULL, true},
	{"status_label", "text", CLOSE_KEY_WRITABLE, NULL, "Label of the status; writing it sets the status", NULL, false, "status", true},
	{"status_type", "text", CLOSE_KEY_READ_ONLY, "id", "Type of the status: active, won or lost, set by Close", NULL, true},
	{"pipeline_id", "text", CLOSE_KEY_CREATE_ONLY, "id", "Close id of the pipeline (pipe_...), set on creation only", NULL, false, NULL, true},
	{"pipeline_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name of the pipeline, set by Close"},
	{"value", "bigint", CLOSE_KEY_WRITABLE, NULL, "Value in cents (minor units of the currency): 50000 is $500.00"},
	{"value_period", "text", CLOSE_KEY_WRITABLE, NULL, "one_time, monthly or annual"},
	{"value_currency", "text", CLOSE_KEY_READ_ONLY, NULL, "Currency of the value, set by Close"},
	{"value_formatted", "text", CLOSE_KEY_READ_ONLY, NULL, "The value as Close shows it, set by Close"},
	{"confidence", "integer", CLOSE_KEY_WRITABLE, NULL, "Confidence, 0 to 100", NULL, false, NULL, true},
	{"expected_value", "bigint", CLOSE_KEY_READ_ONLY, NULL, "Value times confidence, in cents, set by Close"},
	{"annualized_value", "bigint", CLOSE_KEY_READ_ONLY, NULL, "Value over a year, in cents, set by Close"},
	{"annualized_expected_value", "bigint", CLOSE_KEY_READ_ONLY, NULL, "Annualized value times confidence, in cents, set by Close"},
	{"date_won", "date", CLOSE_KEY_WRITABLE, NULL, "Day the opportunity was won (Close sets it when it moves to a won status and keeps it after)", NULL, false, NULL, true},
	{"date_lost", "timestamptz", CLOSE_KEY_READ_ONLY, NULL, "When the opportunity was lost, set by Close"},
	{"contact_id", "text", CLOSE_KEY_WRITABLE, "id", "Close id of its contact (cont_...)"},
	{"contact_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name of its contact, set by Close"},
	{"user_id", "text", CLOSE_KEY_WRITABLE, "id", "Close id of the user it is assigned to (user_...)", NULL, false, NULL, true},
	{"user_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name of that user, set by Close"},
	{"note", "text", CLOSE_KEY_WRITABLE, NULL, "Note on the opportunity"},
	ORG_KEY, CREATED_BY, UPDATED_BY, CREATED, UPDATED,
	END_KEYS
};

/* Users have no name key: first_name and last_name. */
static const CloseResourceKey user_keys[] = {
	{"id", "text", CLOSE_KEY_READ_ONLY, NULL, "Close id of the user (user_...)"},
	{"email", "text", CLOSE_KEY_READ_ONLY, NULL, "Email address of the user"},
	{"first_name", "text", CLOSE_KEY_READ_ONLY, NULL, "First name of the user"},
	{"last_name", "text", CLOSE_KEY_READ_ONLY, NULL, "Last name of the user"},
	{"image", "text", CLOSE_KEY_READ_ONLY, NULL, "Address of the user's picture"},
	{"organizations", "jsonb", CLOSE_KEY_READ_ONLY, NULL, "Close ids of the user's organizations, as a JSON array"},
	{"last_used_timezone", "text", CLOSE_KEY_READ_ONLY, NULL, "Time zone the user last used (an IANA name)"},
	{"email_verified_at", "timestamptz", CLOSE_KEY_READ_ONLY, NULL, "When the email address was verified"},
	CREATED, UPDATED,
	END_KEYS
};

static const CloseResourceKey lead_status_keys[] = {
	{"id", "text", CLOSE_KEY_READ_ONLY, NULL, "Close id of the lead status (stat_...)"},
	{"label", "text", CLOSE_KEY_READ_ONLY, NULL, "Label of the status"},
	{"color", "text", CLOSE_KEY_READ_ONLY, NULL, "Color of the status, or NULL"},
	ORG_KEY,
	END_KEYS
};

static const CloseResourceKey opportunity_status_keys[] = {
	{"id", "text", CLOSE_KEY_READ_ONLY, NULL, "Close id of the opportunity status (stat_...)"},
	{"label", "text", CLOSE_KEY_READ_ONLY, NULL, "Label of the status"},
	{"type", "text", CLOSE_KEY_READ_ONLY, NULL, "active, won or lost"},
	{"pipeline_id", "text", CLOSE_KEY_READ_ONLY, NULL, "Close id of the pipeline the status belongs to (pipe_...)"},
	ORG_KEY,
	END_KEYS
};

/* Pipelines' timestamps come without an offset: they are UTC. */
static const CloseResourceKey pipeline_keys[] = {
	{"id", "text", CLOSE_KEY_READ_ONLY, NULL, "Close id of the pipeline (pipe_...)"},
	{"name", "text", CLOSE_KEY_READ_ONLY, NULL, "Name of the pipeline"},
	{"statuses", "jsonb", CLOSE_KEY_READ_ONLY, NULL, "Its opportunity statuses in order, as a JSON array of {id, label, type}"},
	ORG_KEY,
	{"created_by", "text", CLOSE_KEY_READ_ONLY, NULL, "Close id of the user who created it (user_...), set by Close"},
	{"updated_by", "text", CLOSE_KEY_READ_ONLY, NULL, "Close id of the user who last updated it (user_...), set by Close"},
	{"date_created", "timestamptz", CLOSE_KEY_READ_ONLY, NULL, "When it was created, set by Close"},
	{"date_updated", "timestamptz", CLOSE_KEY_READ_ONLY, NULL, "When it was last updated, set by Close"},
	END_KEYS
};

/*
 * Opportunities' listing filters whose meaning is SQL's: exact ids and
 * status types (one value, or __in a list), and date bounds (__gt, __gte,
 * __lt, __lte).  The scan still checks every row itself.
 */
static const char *const opportunity_filters[] = {
	"status_id", "status_type", "user_id", NULL
};
static const char *const opportunity_ranges[] = {
	"date_created", "date_updated", NULL
};

/*
 * The resources.  The first row is the default of the "resource" option,
 * so that tables made before the option existed keep their meaning.
 */
static const CloseResource close_resources[] = {
	{
		.name = "custom_object",
		.import_table = NULL,	/* one table per custom object type */
		.path = "/custom_object/",
		.id_prefix = CLOSE_PREFIX_CUSTOM_OBJECT,
		.search_type = "custom_object",
		.plural = "custom objects",
		.search_day_bounds = false,	/* fixed_utc bounds are exact */
		.field_schema = NULL,
		.lead_filter = true,
		.get_by_id = true,
		.small = false,
		.max_limit = 200,
		.max_skip = 0,
		.writable = true,
		.insert_needs_lead = true,
		.list_whole = false,	/* its listing takes lead_id only */
		.fields_param = false,
		.fields_custom = false,
		.keys = custom_object_keys,
		.name_required = true,
		.open_keys = false		/* Close refuses a key it does not know */
	},
	{
		.name = "lead",
		.import_table = "leads",
		.path = "/lead/",
		.id_prefix = CLOSE_PREFIX_LEAD,
		.search_type = "lead",
		.plural = "leads",
		.search_day_bounds = true,	/* exact bounds not confirmed */
		.field_schema = "lead",
		.lead_filter = false,	/* a lead is its own lead: filter by id */
		.get_by_id = true,
		.small = false,
		.max_limit = 200,
		.max_skip = 35000,
		.writable = true,
		.insert_needs_lead = false,
		.list_whole = false,	/* searched: no _skip cap */
		.fields_param = true,	/* records are heavy: nested contacts... */
		.fields_custom = true,	/* _fields=custom.cf_X is confirmed */
		.keys = lead_keys,
		.open_keys = true		/* unknown keys accepted silently */
	},
	{
		.name = "contact",
		.import_table = "contacts",
		.path = "/contact/",
		.id_prefix = "cont_",
		.search_type = "contact",
		.plural = "contacts",
		.search_day_bounds = true,	/* exact bounds not confirmed */
		.field_schema = "contact",
		.lead_filter = true,
		.get_by_id = true,
		.small = false,
		.max_limit = 200,
		.max_skip = 35000,		/* not known: taken as the leads' */
		.writable = true,
		.insert_needs_lead = true,	/* without it Close makes a new lead */
		.list_whole = false,	/* searched: no _skip cap */
		.fields_param = true,
		.fields_custom = false, /* custom.cf_X in _fields: not confirmed */
		.keys = contact_keys,
		.open_keys = true
	},
	{
		.name = "opportunity",
		.import_table = "opportunities",
		.path = "/opportunity/",
		.id_prefix = "oppo_",
		.search_type = "opportunity",
		.plural = "opportunities",
		.search_day_bounds = true,	/* exact bounds not confirmed */
		.field_schema = "opportunity",
		.lead_filter = true,
		.get_by_id = true,
		.small = false,
		.max_limit = 200,
		.max_skip = 35000,		/* not known: taken as the leads' */
		.writable = true,
		.insert_needs_lead = true,	/* without it Close makes a new lead */
		.list_whole = false,	/* searched: no _skip cap */
		.fields_param = true,
		.fields_custom = false, /* custom.cf_X in _fields: not confirmed */
		.list_filters = opportunity_filters,
		.list_ranges = opportunity_ranges,
		.keys = opportunity_keys,
		.open_keys = true
	},
	{
		.name = "user",
		.import_table = "users",
		.path = "/user/",
		.id_prefix = "user_",
		.search_type = NULL,
		.plural = "users",
		.field_schema = NULL,
		.lead_filter = false,
		.get_by_id = true,
		.small = true,
		.max_limit = 200,
		.max_skip = 35000,
		.writable = false,		/* Close has no writes for users */
		.insert_needs_lead = false,
		.list_whole = true,
		.fields_param = false,	/* not confirmed on its endpoints */
		.fields_custom = false,
		.keys = user_keys
	},
	{
		.name = "lead_status",
		.import_table = "lead_statuses",
		.path = "/status/lead/",
		.id_prefix = "stat_",
		.search_type = NULL,
		.plural = "lead statuses",
		.field_schema = NULL,
		.lead_filter = false,
		.get_by_id = false,		/* GET by id is not confirmed */
		.small = true,
		.max_limit = 200,
		.max_skip = 35000,
		.writable = false,
		.insert_needs_lead = false,
		.list_whole = true,
		.fields_param = false,	/* not confirmed on its endpoints */
		.fields_custom = false,
		.keys = lead_status_keys
	},
	{
		.name = "opportunity_status",
		.import_table = "opportunity_statuses",
		.path = "/status/opportunity/",
		.id_prefix = "stat_",
		.search_type = NULL,
		.plural = "opportunity statuses",
		.field_schema = NULL,
		.lead_filter = false,
		.get_by_id = false,		/* GET by id is not confirmed */
		.small = true,
		.max_limit = 200,
		.max_skip = 35000,
		.writable = false,
		.insert_needs_lead = false,
		.list_whole = true,
		.fields_param = false,	/* not confirmed on its endpoints */
		.fields_custom = false,
		.keys = opportunity_status_keys
	},
	{
		.name = "pipeline",
		.import_table = "pipelines",
		.path = "/pipeline/",
		.id_prefix = "pipe_",
		.search_type = NULL,
		.plural = "pipelines",
		.field_schema = NULL,
		.lead_filter = false,
		.get_by_id = true,
		.small = true,
		.max_limit = 200,
		.max_skip = 35000,
		.writable = false,
		.insert_needs_lead = false,
		.list_whole = true,
		.fields_param = false,	/* not confirmed on its endpoints */
		.fields_custom = false,
		.keys = pipeline_keys
	},
	{0}
};

/* The resource of that option value, or NULL. */
const CloseResource *
close_resource_by_name(const char *name)
{
	const CloseResource *res;

	for (res = close_resources; res->name; res++)
		if (strcmp(res->name, name) == 0)
			return res;
	return NULL;
}

/* The default resource: custom objects. */
const CloseResource *
close_resource_default(void)
{
	return &close_resources[0];
}

/* The n-th resource (0-based), or NULL past the last: to walk them all. */
const CloseResource *
close_resource_nth(int n)
{
	int			i;

	for (i = 0; close_resources[i].name; i++)
		if (i == n)
			return &close_resources[i];
	return NULL;
}

/* The core key of that name in a resource's records, or NULL. */
const CloseResourceKey *
close_resource_key(const CloseResource *res, const char *key)
{
	const CloseResourceKey *k;

	for (k = res->keys; k->key; k++)
		if (strcmp(k->key, key) == 0)
			return k;
	return NULL;
}

/*
 * Whether a table of this resource without a key is read through Advanced
 * Filtering (and its count(*) answered by a search's count), rather than
 * through its listing.
 */
bool
close_resource_searched(const CloseResource *res)
{
	return res->search_type != NULL && !res->list_whole;
}

/* The resource names, comma-separated, for messages. */
char *
close_resource_names(void)
{
	const CloseResource *res;
	StringInfoData buf;

	initStringInfo(&buf);
	for (res = close_resources; res->name; res++)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", res->name);
	return buf.data;
}

/* A resource's core keys, comma-separated, for messages. */
char *
close_resource_key_names(const CloseResource *res)
{
	const CloseResourceKey *k;
	StringInfoData buf;

	initStringInfo(&buf);
	for (k = res->keys; k->key; k++)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", k->key);
	return buf.data;
}

/*
 * A resource's records in words, for messages: "custom object", "lead",
 * "opportunities" (plural).
 */
char *
close_resource_noun(const CloseResource *res, bool plural)
{
	char	   *noun = pstrdup(res->name);
	char	   *plural_noun;
	size_t		len = strlen(noun);
	char	   *p;

	for (p = noun; *p; p++)
		if (*p == '_')
			*p = ' ';
	if (!plural)
		return noun;
	if (len > 0 && noun[len - 1] == 'y')
		plural_noun = psprintf("%.*sies", (int) len - 1, noun);
	else if (len > 0 && noun[len - 1] == 's')
		plural_noun = psprintf("%ses", noun);
	else
		plural_noun = psprintf("%ss", noun);
	pfree(noun);
	return plural_noun;
}
