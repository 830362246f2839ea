/*-------------------------------------------------------------------------
 *
 * close_fdw.h
 *		  Structures and prototypes shared by close_fdw's files.  The
 *		  prototypes are grouped by the file that defines them, so this
 *		  header is also the map of the code.
 *
 * json-c's "json_object" typedef clashes with PostgreSQL's SQL function of
 * the same name, so JSON values only appear here as the opaque
 * "struct json_object", and json-c's own headers are included by json.c
 * alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CLOSE_FDW_H
#define CLOSE_FDW_H

#include "postgres.h"

#include <curl/curl.h>

#include "access/attnum.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "utils/relcache.h"
#include "datatype/timestamp.h"
#include "utils/date.h"

#include "compat.h"

struct json_object;
struct ExplainState;

/* The record keys that close_fdw treats specially. */
#define CLOSE_KEY_ID				"id"
#define CLOSE_KEY_LEAD_ID			"lead_id"
#define CLOSE_KEY_TYPE_ID			"custom_object_type_id"
#define CLOSE_KEY_CUSTOM			"custom"
#define CLOSE_CUSTOM_PREFIX			"custom."

/* Id prefixes (see the API sheet: prefix and base62 characters). */
#define CLOSE_PREFIX_CUSTOM_OBJECT	"custobj_"
#define CLOSE_PREFIX_LEAD			"lead_"
#define CLOSE_PREFIX_TYPE			"cotype_"


/*
 * A Close resource, described once as data (resource.c): scan, modify,
 * search and import code read its row instead of switching on it.
 */
typedef enum CloseKeyAccess
{
	CLOSE_KEY_READ_ONLY,		/* set by Close: never sent */
	CLOSE_KEY_WRITABLE,			/* sent by INSERT and UPDATE */
	CLOSE_KEY_CREATE_ONLY		/* sent by INSERT; an UPDATE of it is refused */
} CloseKeyAccess;

/* A core key of a resource's records (custom fields are not listed). */
typedef struct CloseResourceKey
{
	const char *key;			/* the record's key; the imported column's name */
	const char *type;			/* the SQL type IMPORT gives its column */
	CloseKeyAccess access;
	/*
	 * Its type in Advanced Filtering, in the words of custom fields' types
	 * ("id", "text", "datetime"), or NULL: no search condition on it.
	 */
	const char *search_type;
	const char *comment;		/* the imported column's comment */
	/*
	 * For an id key whose Advanced Filtering condition is "reference" (not
	 * "term"), its reference_type ("status.lead"); else NULL.
	 */
	const char *reference_type;
	/*
	 * Whether Close gives every record a value for it (an id, a lead_id, a
	 * status).  A negated search condition on a key that may be null also
	 * finds the records without it, which SQL's "<>" does not: on such a
	 * key it is a superset, checked again locally.
	 */
	bool		never_null;
	/*
	 * The key a write sends the column's value as, when Close takes it
	 * under another name than it answers it (a status's label is written
	 * as "status", answered as "status_label"); NULL: the key itself.
	 */
	const char *write_key;
	/*
	 * Whether Close may give it a value of its own when a write leaves it
	 * out (a new lead's status; an opportunity's status, pipeline,
	 * confidence, user, and date_won when it moves to a won status; a
	 * contact's time zone, inferred from its phone): a deferred write's
	 * RETURNING cannot show it unless the statement assigns it.
	 */
	bool		close_sets;
	/*
	 * Whether Close stores a value written to it in a form of its own (a
	 * contact's phones, rewritten as E.164): a deferred write's RETURNING
	 * cannot show it even when the statement assigns it.
	 */
	bool		close_rewrites;
} CloseResourceKey;

typedef struct CloseResource
{
	const char *name;			/* the "resource" table option's value */
	const char *import_table;	/* its table in IMPORT's "crm" schema */
	const char *path;			/* "/lead/": listing; path + id + "/": one */
	const char *id_prefix;		/* "lead_" */
	const char *search_type;	/* Advanced Filtering object_type, or NULL */
	const char *plural;			/* "leads", for messages and EXPLAIN */
	/*
	 * Its search may apply moment_range bounds by whole days only (the
	 * sheets disagree): every bound it is sent is a UTC midnight, as a
	 * fixed_local_date (x-tz-offset is 0), and slices are whole days.
	 */
	bool		search_day_bounds;
	const char *field_schema;	/* GET /custom_field_schema/{this}/, or NULL */
	bool		lead_filter;	/* its listing takes lead_id= */
	bool		get_by_id;		/* GET path{id}/ answers one record */
	bool		small;			/* a short set: list it whole, filter here */
	bool		list_whole;		/* its listing needs no key (custom objects'
								 * needs lead_id: they are searched) */
	bool		fields_param;	/* its GETs take _fields (the keys a scan
								 * reads are asked for) */
	bool		fields_custom;	/* _fields may name custom.cf_... keys */
	/*
	 * Keys its listing filters on by "key=" and "key__in=" (exact text), and
	 * timestamps it bounds by "key__gt=" and the like (exact instants); NULL
	 * or a NULL-ended list.
	 */
	const char *const *list_filters;
	const char *const *list_ranges;
	int			max_limit;		/* largest _limit its listing accepts */
	int			max_skip;		/* largest _skip; 0: not capped */
	bool		writable;		/* INSERT, UPDATE and DELETE */
	bool		insert_needs_lead;	/* an INSERT without lead_id is refused */
	const CloseResourceKey *keys;	/* ends with a NULL key */
	bool		name_required;	/* INSERT without a name, SET name = NULL refused */
	/*
	 * Close takes (silently) keys it does not list: a column whose "field"
	 * option names a key not in keys is written as given, and the answer
	 * check warns when Close did not keep it.  Else such a column is refused.
	 */
	bool		open_keys;
} CloseResource;

/*
 * Options, read once into typed structs by option.c; nothing else walks
 * DefElem lists.
 */
typedef struct CloseServerOptions
{
	char	   *api_url;		/* base URL, without a trailing slash */
	int			timeout_ms;		/* whole request */
	int			connect_timeout_ms;
	int			page_size;		/* _limit of listings */
	int			batch_size;		/* rows per batch insert */
	int			max_retries;	/* retries of a failed request (not 429s) */
	int			rate_limit_wait_ms; /* how long 429s may be waited out */
	int			max_concurrency;	/* requests in flight per scan */
	int			max_response_bytes; /* larger answers are refused */
	char	   *ca_file;		/* CA bundle for TLS, or NULL */
	int			cache_ttl_ms;	/* answers cached this long; 0: not */
} CloseServerOptions;

typedef struct CloseUserOptions
{
	char	   *api_key;		/* HTTP Basic user name, empty password */
	char	   *oauth_token;	/* Bearer token */
} CloseUserOptions;

/*
 * A cached HTTP session for one user mapping (connection.c).  The handle
 * keeps its TCP/TLS connection alive between statements.
 */
/* The size of an endpoint group's name (method and path with ids as {id}). */
#define CLOSE_GROUP_SIZE 96

/* Counts of close_fdw_stats, for one server and endpoint group (shared.c). */
typedef struct CloseStatsDelta
{
	int64		requests;		/* sent (each attempt) */
	int64		retries;		/* sent again after a 429 or a failure */
	int64		refused;		/* answered 429 */
	int64		server_errors;	/* answered 5xx */
	int64		waits;			/* waits: pacing, 429s, backoff */
	double		wait_ms;
	int64		bytes;			/* body bytes received */
	int64		cache_hits;
} CloseStatsDelta;

/* At most this many requests in flight for one session. */
#define CLOSE_MAX_CONCURRENCY 64

typedef struct CloseConnection
{
	Oid			umid;			/* hash key: the user mapping's OID */
	CURL	   *curl;			/* NULL until made, or after an error */
	bool		invalidated;	/* options changed: rebuild before use */
	int			pins;			/* flights using it: not rebuilt nor freed */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
	char	   *server_name;	/* for messages; TopMemoryContext */
	CloseServerOptions server;	/* strings in TopMemoryContext */
	struct curl_slist *headers; /* fixed request headers, incl. auth */
	struct curl_slist *json_headers;	/* the same, for a JSON body */
	struct curl_slist *override_headers;	/* and for a long GET sent as a
											 * POST (x-http-method-override) */
	char		errbuf[CURL_ERROR_SIZE];
	Oid			serverid;		/* for the statistics */
	CURLM	   *multi;			/* for concurrent requests, or NULL */
	CURL	   *pool[CLOSE_MAX_CONCURRENCY];	/* their handles, made lazily */
} CloseConnection;

/* One HTTP answer (http.c); the body lives in the caller's context. */
typedef struct CloseResponse
{
	long		status;
	char	   *body;			/* NUL-terminated; may be empty */
	size_t		body_len;
	char		retry_after[64];	/* raw header values, "" if absent */
	char		rate_limit[128];
	int			attempts;		/* requests sent for this answer */
	double		waited_ms;		/* time spent waiting between them */
	/*
	 * A request for this answer went out and Close may have acted on it
	 * without its answer being read: a cancel or a transport failure after
	 * sending, or a gateway's 502 or 504 (Close's own answer lost).
	 */
	bool		may_have_acted;
	/* set by close_http_send_many only */
	int			transport_error;	/* a CURLcode; 0 if the answer came */
	bool		resend_safe;	/* surely had no effect: may be sent again */
	const char *transport_detail;	/* its transfer's detail, or NULL */
} CloseResponse;

/* How a scan reaches its records (pushdown.c decides, close_fdw.c runs). */
typedef enum CloseAccessKind
{
	CLOSE_ACCESS_SEARCH,		/* no lead or id: POST /data/search/ */
	CLOSE_ACCESS_BY_LEAD,		/* GET /custom_object/?lead_id=..., paged */
	CLOSE_ACCESS_BY_ID,			/* GET /custom_object/{id}/ */
	CLOSE_ACCESS_COUNT,			/* count(*): one search's count (upper.c) */
	CLOSE_ACCESS_LIST			/* GET path?filters: the whole listing, paged */
} CloseAccessKind;

/* Objects per page of a search (the API's maximum _limit). */
#define CLOSE_SEARCH_PAGE		200
/* Objects one search query returns at most. */
#define CLOSE_SEARCH_MAX_RESULTS	10000

/*
 * The order a search is asked for (FdwScanPrivateSearchOrdered): 0 when
 * the plan needs none (the search still sorts by date_created ascending,
 * which its slicing relies on), else the order the plan promises.  The
 * orders past CLOSE_SEARCH_ORDER_CREATED_ASC are only used with a
 * results_limit of at most 10,000 (one query, no slicing).
 */
#define CLOSE_SEARCH_ORDER_NONE			0
#define CLOSE_SEARCH_ORDER_CREATED_ASC	1
#define CLOSE_SEARCH_ORDER_CREATED_DESC	2
#define CLOSE_SEARCH_ORDER_UPDATED_ASC	3
#define CLOSE_SEARCH_ORDER_UPDATED_DESC	4

/*
 * A search query node, encoded as a List so that it can live in a plan's
 * fdw_private (pushdown.c builds them, search.c renders them):
 *   AND / OR:  (kind, negate, child nodes...)
 *   COND:      (kind, negate, field JSON, condition, operator, value index,
 *               record key, half unit)
 * where the value index points into the scan's fdw_exprs, the record key
 * ("name", "custom.cf_...") names the field whose Close type must accept
 * the condition, and the half unit (a number's text, "" for none) is how
 * far a number_range is widened for the column's rounding.
 */
#define CLOSE_SEARCH_AND		1
#define CLOSE_SEARCH_OR			2
#define CLOSE_SEARCH_COND		3
/* conditions */
#define CLOSE_SEARCH_TERM		1	/* exact values (ids) */
#define CLOSE_SEARCH_TEXT		2	/* text exact_value (may ignore case) */
#define CLOSE_SEARCH_NUMBER		3	/* number_range, bounds inclusive */
#define CLOSE_SEARCH_MOMENT		4	/* moment_range, widened by a second */
#define CLOSE_SEARCH_DATE		5	/* moment_range of a date, widened a day */
#define CLOSE_SEARCH_REFERENCE	6	/* exact ids, as a "reference" condition */
/* operators, with the column on the left */
#define CLOSE_SEARCH_OP_EQ		1
#define CLOSE_SEARCH_OP_ANY		2	/* = ANY (array) */
#define CLOSE_SEARCH_OP_LE		3	/* < or <= */
#define CLOSE_SEARCH_OP_GE		4	/* > or >= */

typedef struct CloseSearchPushdown
{
	List	   *nodes;			/* query nodes to AND together */
	List	   *values;			/* their value expressions, by index */
	List	   *exact_rinfos;	/* clauses the API applies exactly */
	List	   *pushed_rinfos;	/* clauses sent at all (exact or wider) */
} CloseSearchPushdown;

/*
 * The values of a search's conditions, by index: known at run time; at plan
 * time (EXPLAIN) only constants are, the rest shown by description.
 */
typedef struct CloseSearchValues
{
	Datum	   *values;
	bool	   *nulls;
	Oid		   *types;
	bool	   *known;
	char	  **descriptions;
} CloseSearchValues;

typedef struct CloseSearchState CloseSearchState;

/*
 * The attribute numbers of the key columns (the first mapping to each
 * key), and which of them the resource's API can be asked by.
 */
typedef struct CloseKeyColumns
{
	AttrNumber	id_attno;		/* InvalidAttrNumber when absent */
	AttrNumber	lead_attno;
	AttrNumber	type_attno;
	AttrNumber	date_created_attno; /* a timestamp(tz) column, for ORDER BY */
	AttrNumber	date_updated_attno; /* the same */
	bool		id_pushed;		/* id conditions become GETs by id */
	bool		lead_pushed;	/* lead_id conditions become listings */
	bool		list_whole;		/* without a key: the listing, not a search */
	bool		list_filtered;	/* without a key but with one of the listing's
								 * filters: the filtered listing */
	Oid			relid;
} CloseKeyColumns;

/* What ANALYZE taught about a table (costs.c reads it); -1: not known. */
typedef struct CloseRelStats
{
	double		tuples;			/* objects in the table */
	double		rows_per_lead;	/* objects per lead */
} CloseRelStats;

/* The outcome of looking at a scan's conditions (pushdown.c). */
typedef struct ClosePushdown
{
	CloseAccessKind kind;
	RestrictInfo *key_rinfo;	/* the clause that drives the requests */
	Expr	   *key_expr;		/* its value side, evaluated at run time */
	bool		key_is_array;	/* = ANY (array) rather than = value */
	double		key_count;		/* estimated number of distinct values */
	RestrictInfo *type_rinfo;	/* custom_object_type_id = value, or NULL */
	Expr	   *type_expr;
} ClosePushdown;

/*
 * A column's conversion from a JSON value (convert.c); built once per
 * scan, so the per-row path does no catalog lookups.
 */
typedef struct CloseColumn CloseColumn;

typedef struct CloseRowConverter
{
	char	   *relname;
	int			natts;			/* of the tuple descriptor */
	int			ncolumns;		/* columns that are converted */
	CloseColumn *columns;
} CloseRowConverter;

/* One member of a JSON object: its key and its value as JSON text. */
typedef struct CloseJsonMember
{
	char	   *key;
	char	   *value;
} CloseJsonMember;

/* A custom object type and its fields (json.c reads them for import.c). */
typedef struct CloseFieldInfo
{
	char	   *id;				/* cf_... */
	char	   *name;
	char	   *description;	/* or NULL */
	char	   *type;			/* text, number, date, ...; "" if not told */
	bool		multi;			/* accepts_multiple_values */
} CloseFieldInfo;

typedef struct CloseTypeInfo
{
	char	   *id;				/* cotype_... */
	char	   *name;
	char	   *description;	/* or NULL */
	List	   *fields;			/* of CloseFieldInfo */
} CloseTypeInfo;

/* JSON value kinds, as json.c reports them. */
typedef enum CloseJsonKind
{
	CLOSE_JSON_NULL,
	CLOSE_JSON_BOOL,
	CLOSE_JSON_NUMBER,
	CLOSE_JSON_STRING,
	CLOSE_JSON_ARRAY,
	CLOSE_JSON_OBJECT
} CloseJsonKind;

/*
 * The ForeignScan's fdw_private list; fdw_exprs holds the key value
 * expression and, if FdwScanPrivateHasTypeExpr, the type value expression.
 */
enum FdwScanPrivateIndex
{
	/* Integer: CloseAccessKind */
	FdwScanPrivateAccessKind,
	/* Integer: 1 when the key expression yields an array (= ANY) */
	FdwScanPrivateKeyIsArray,
	/* Integer: 1 when fdw_exprs has a custom_object_type_id value */
	FdwScanPrivateHasTypeExpr,
	/* String: the request, as EXPLAIN shows it */
	FdwScanPrivateRequest,
	/* String: the key values, as EXPLAIN shows them ("" when inline) */
	FdwScanPrivateKeyValues,
	/* List of Integer: the attributes to convert (pull_varattnos style) */
	FdwScanPrivateAttrsUsed,
	/* List: the search's query nodes (NIL unless a search) */
	FdwScanPrivateSearchNodes,
	/* List of String: the record keys the search asks for (_fields) */
	FdwScanPrivateSearchFields,
	/* Integer: 1 when all custom fields are needed (a custom json column) */
	FdwScanPrivateSearchAllCustom,
	/* Integer: the rows a LIMIT needs, when safe to tell the API; else -1 */
	FdwScanPrivateSearchLimit,
	/* Integer: CLOSE_SEARCH_ORDER_*, the order the plan promises */
	FdwScanPrivateSearchOrdered,
	/* Integer: the requests the planner expects, over all loops */
	FdwScanPrivatePlannedRequests,
	/* List of String: the search's conditions, as EXPLAIN summarises them */
	FdwScanPrivateSearchSummary,
	/*
	 * List of String: a listing's filter parameters ("status_id__in"), their
	 * values in fdw_exprs after the key (and type) expressions
	 */
	FdwScanPrivateListFilters,
	/* String: the _fields a GET sends, or "" for none */
	FdwScanPrivateFields,
	/* for a direct UPDATE/DELETE (modify.c), also: */
	/* List of Integer: the attributes an UPDATE sets; their value
	 * expressions follow the key expression in fdw_exprs */
	FdwScanPrivateDirectAttrs,
	/* Integer: 1 when the statement sets the command's row count */
	FdwScanPrivateDirectSetTag
};

/* in analyze.c */
extern bool closeAnalyzeForeignTable(Relation relation,
									 AcquireSampleRowsFunc *func,
									 BlockNumber *totalpages);

/* in answers.c */
typedef struct CloseAnswers CloseAnswers;
extern CloseAnswers *close_answers_create(MemoryContext parent,
										  const char *name, Size budget);
extern void close_answers_reset(CloseAnswers *answers);
extern bool close_answers_find(CloseAnswers *answers, const char *path,
							   bool missing_ok, CloseResponse *response);
extern bool close_answers_failed(CloseAnswers *answers, const char *path,
								 CloseResponse *response);
extern void close_answers_keep(CloseAnswers *answers, const char *path,
							   const CloseResponse *response);
extern void close_answers_forget(CloseAnswers *answers, const char *path);
extern MemoryContext close_answers_context(CloseAnswers *answers);
extern void close_answers_put(CloseAnswers *answers, const char *path,
							  const CloseResponse *response);
extern int	close_answers_fetch(CloseAnswers *answers, CloseConnection *conn,
								char **paths, int n);
typedef struct CloseWholeAnswer CloseWholeAnswer;
extern bool close_answers_cached(CloseConnection *conn, int ttl_ms,
								 const char *method, const char *path,
								 const char *body, CloseResponse *response);
extern bool close_answers_in_cache(CloseConnection *conn, int ttl_ms,
								   const char *method, const char *path,
								   const char *body);
extern void close_answers_remember(CloseConnection *conn, uint64 since,
								   TimestampTz read_at,
								   const char *method, const char *path,
								   const char *body,
								   const CloseResponse *response);
extern CloseWholeAnswer *close_whole_begin(MemoryContext cxt,
										   const char *method,
										   const char *path,
										   const char *body);
extern void close_whole_add(CloseWholeAnswer *whole,
							struct json_object *record);
extern void close_whole_read_at(CloseWholeAnswer *whole, TimestampTz read_at);
extern void close_whole_end(CloseWholeAnswer *whole, CloseConnection *conn,
							uint64 since, const char *members);
extern void close_track_created(void);
extern void close_untrack_created(void);
extern void close_note_created(const char *id);
extern bool close_created_since(const char *id, CommandId cid);
extern void close_note_deleted(const char *id);
extern bool close_deleted_in_xact(const char *id, CommandId cid);
extern bool close_deleted_lead_in_xact(void);

/* in costs.c */
extern void close_rel_stats(RelOptInfo *baserel, Oid relid,
							AttrNumber lead_attno, CloseRelStats *stats);
extern double close_search_request_count(double objects);
extern void close_estimate_scan(PlannerInfo *root, RelOptInfo *baserel,
								const ClosePushdown *pd, List *clauses,
								int page_size, const CloseRelStats *stats,
								double *rows, Cost *startup_cost,
								Cost *total_cost);
extern void close_estimate_limited_search(double rows, double limit,
										  Cost *startup_cost,
										  Cost *total_cost);
extern Cost close_count_cost(void);
extern double close_outer_scale(PlannerInfo *root, Relids required_outer);

/* in budget.c */
extern int	close_max_requests;
extern int	close_max_requests_ceiling;
extern void close_budget_init(void);
extern int	close_budget_limit(const char **setting);
extern int64 close_budget_remaining(void);
extern int	close_budget_admit(bool read, const char *path, int n,
							   bool may_trim);
extern void close_budget_exempt(bool on);
extern int	close_budget_planned(PlannerInfo *root, Path *path,
								 CloseAccessKind kind, double key_count,
								 int page_size, double limit);

/* in close_fdw.c */
extern int	close_evaluate_keys(ExprState *state, bool is_array,
								const char *prefix, ExprContext *econtext,
								char ***keys);

/* in shared.c */

/*
 * A ticket of the pacing: its number, and how many requests of its budget
 * were out (ticket taken, answer not yet learnt) when it was handed out.
 * The i-th of a batch is {number + i, ahead + i}.
 */
typedef struct ClosePaceTicket
{
	uint64		number;
	int			ahead;
} ClosePaceTicket;

extern void close_shared_init(void);
extern void close_shared_attach(void);
extern bool close_shared_active(void);
extern int	close_pace_take(CloseConnection *conn, const char *group, int wanted,
							ClosePaceTicket *ticket, double *wait_ms);
extern uint64 close_pace_key(CloseConnection *conn);
extern void close_pace_release(uint64 key, const char *group, uint64 first,
							   int n);
extern void close_pace_learn(CloseConnection *conn, const char *group,
							 ClosePaceTicket ticket, bool told, int limit,
							 int remaining, double reset_s, double refused_ms);
extern void close_stats_add(CloseConnection *conn, const char *group,
							const CloseStatsDelta *delta);
extern void close_cache_init(void);
extern uint64 close_cache_generation(void);
extern Size close_cache_capacity(void);
extern bool close_cache_get(CloseConnection *conn, const char *request,
							int ttl_ms, MemoryContext cxt, int *status,
							char **answer, size_t *len);
extern bool close_cache_has(CloseConnection *conn, const char *request,
							int ttl_ms);
extern void close_cache_put(CloseConnection *conn, const char *request,
							uint64 since, TimestampTz read_at, int status,
							const char *answer, size_t len);
extern void close_cache_invalidate(CloseConnection *conn);
extern uint64 close_api_target(const char *api_url);

/* in resource.c */
extern const CloseResource *close_resource_by_name(const char *name);
extern const CloseResource *close_resource_default(void);
extern const CloseResource *close_resource_nth(int n);
extern const CloseResourceKey *close_resource_key(const CloseResource *res,
												  const char *key);
extern char *close_resource_names(void);
extern char *close_resource_key_names(const CloseResource *res);
extern bool close_resource_searched(const CloseResource *res);
extern char *close_resource_noun(const CloseResource *res, bool plural);

/* in search.c */
extern void close_search_values_alloc(int n, bool described,
									  CloseSearchValues *vals);
extern void close_search_evaluate(List *value_states, ExprContext *econtext,
								  CloseSearchValues *vals);
extern char *close_search_render_query(const CloseResource *res, List *nodes,
									   const char *type_id,
									   CloseSearchValues *vals);
extern char *close_search_render_fields(List *keys);
extern char *close_search_render_explain(const CloseResource *res,
										 const char *query, const char *fields,
										 int page_limit, int64 results_limit,
										 int order);
extern char *close_search_render_count(const CloseResource *res,
									   const char *query);
extern void close_search_set_order(CloseSearchState *ss, int order);
extern CloseSearchState *close_search_begin(MemoryContext parent,
											UserMapping *user,
											const CloseResource *res,
											const char *query,
											const char *fields,
											int page_limit,
											int64 results_limit,
											int max_concurrency);
extern CloseSearchState *close_search_from_answer(MemoryContext parent,
												  UserMapping *user,
												  const char *body,
												  size_t len);
extern struct json_object *close_search_next(CloseSearchState *ss);
extern int64 close_search_requests(CloseSearchState *ss);
extern int	close_search_abandon(CloseSearchState *ss);
extern int64 close_search_retries(CloseSearchState *ss);
extern double close_search_waited_ms(CloseSearchState *ss);
extern List *close_search_custom_keys(UserMapping *user,
									  const CloseResource *res,
									  const char *type_id, int64 *requests);
extern List *close_search_render_summary(const CloseResource *res,
										 List *nodes, const char *type_id,
										 CloseSearchValues *vals,
										 int64 results_limit);

/* in option.c */
extern void close_get_server_options(ForeignServer *server,
									 CloseServerOptions *opts);
extern void close_get_user_options(UserMapping *user, CloseUserOptions *opts);
extern char *close_get_table_type_id(Oid relid);
extern const CloseResource *close_get_table_resource(Oid relid);
extern int	close_get_batch_size(Oid relid);
extern int	close_get_cache_ttl(Oid relid);
extern bool close_write_mode_deferred(Oid relid);
extern char *close_get_column_key(Oid relid, AttrNumber attnum,
								  const char *attname);
extern bool close_is_valid_id(const char *value, const char *prefix);
extern void close_check_column_keys(Relation rel);

/* in connection.c */
extern CloseConnection *close_get_connection(UserMapping *user);
extern void close_pin_connection(CloseConnection *conn);
extern void close_unpin_connection(CloseConnection *conn);

/* in fieldtypes.c */
typedef struct CloseFieldTypes CloseFieldTypes;
extern CloseFieldTypes *close_field_types_get(UserMapping *user,
											  int cache_ttl_ms,
											  int64 *requests);
extern bool close_field_type_lookup(CloseFieldTypes *types,
									const char *field_id, const char **type,
									bool *multi);
extern List *close_field_schema_fetch(UserMapping *user,
									  const char *object_type,
									  int64 *requests);
extern List *close_field_schema_get(UserMapping *user,
									const CloseResource *res,
									int64 *requests);
extern void close_field_schema_check_table(UserMapping *user,
										   const CloseResource *res,
										   const char *relname,
										   List *columns, List *keys,
										   int64 *requests);
extern List *close_field_types_custom_keys(CloseFieldTypes *types,
										   const char *type_id);
extern void close_field_types_check_scan(UserMapping *user,
										 int cache_ttl_ms, int64 *requests,
										 const char *relname,
										 const char *type_id,
										 List *columns, List *keys);
extern void close_field_types_check_table(CloseFieldTypes *types,
										  const char *relname,
										  const char *type_id, List *columns,
										  List *keys);

/* in http.c */
extern bool close_http_may_retry(CloseConnection *conn,
								 CloseResponse *response);
extern void close_http_request(CloseConnection *conn, const char *method,
							   const char *path, const char *body,
							   CloseResponse *response);
extern int	close_http_send_many(CloseConnection *conn, const char *method,
								 char **paths, char **bodies, int n,
								 CloseResponse *responses);
typedef struct CloseFlight CloseFlight;
extern CloseFlight *close_flight_create(CloseConnection *conn,
										MemoryContext cxt, int nslots);
extern bool close_flight_can_start(CloseFlight *flight, const char *method,
								   const char *path);
extern int	close_flight_start(CloseFlight *flight, const char *method,
							   const char *path, const char *body,
							   CloseResponse *response);
extern int	close_flight_wait(CloseFlight *flight);
extern void close_flight_progress(CloseFlight *flight);
extern int	close_flight_abandon(CloseFlight *flight, int *unsent);
pg_noreturn extern void close_report_transport_error(CloseConnection *conn,
													 const char *method,
													 const char *path,
													 CloseResponse *response);
pg_noreturn extern void close_report_http_error(CloseConnection *conn,
												const char *method,
												const char *path,
												CloseResponse *response,
												CloseRowConverter *conv);
pg_noreturn extern void close_report_bad_answer(const char *method,
												const char *path,
												const char *problem);
extern struct json_object *close_parse_answer(const char *method,
											  const char *path,
											  CloseResponse *response,
											  MemoryContext owner);
extern void close_append_query_param(StringInfo buf, const char *name,
									 const char *value);
extern void close_append_query_list(StringInfo buf, const char *name,
									const char *value);
extern char *close_object_path(const char *id);
extern void close_endpoint_group(const char *method, const char *path,
								 char *group, size_t size);
extern char *close_record_path(const char *base, const char *id);

/* in json.c */
extern struct json_object *close_json_parse(const char *text, size_t len,
											MemoryContext owner,
											const char **error);
extern bool close_json_peek_page(const char *text, size_t len, int *length,
								 bool *has_more);
extern CloseJsonKind close_json_kind(struct json_object *value);
extern const char *close_json_kind_name(CloseJsonKind kind);
extern const char *close_json_scalar_text(struct json_object *value,
										  size_t *len);
extern bool close_json_bool(struct json_object *value);
extern char *close_json_serialize(struct json_object *value);
extern int	close_json_array_length(struct json_object *array);
extern struct json_object *close_json_array_get(struct json_object *array,
												int index);
extern struct json_object *close_json_object_get(struct json_object *object,
												 const char *key);
extern char *close_json_custom_values(struct json_object *record);
extern Datum close_json_to_jsonb(struct json_object *value);
extern Datum close_json_custom_jsonb(struct json_object *record);
extern const char *close_json_list_page(struct json_object *root,
										struct json_object **data,
										bool *has_more);
extern char *close_json_error_text(const char *body, size_t len,
								   CloseRowConverter *conv);
extern List *close_json_object_members(struct json_object *object);
extern List *close_json_types(struct json_object *root, const char **problem);
extern List *close_json_field_schema(struct json_object *root,
									 const char **problem);
extern double close_json_rate_reset(const char *body, size_t len);


/* in convert.c */
extern CloseRowConverter *close_make_row_converter(Relation rel,
												   Bitmapset *attrs_used);
extern void close_convert_record(CloseRowConverter *conv,
								 struct json_object *record,
								 Datum *values, bool *nulls);
extern bool close_is_custom_map_column(Oid typid, const char *key);
extern bool close_format_date(StringInfo buf, DateADT date);
extern bool close_format_timestamp(StringInfo buf, TimestampTz ts);
extern TimestampTz close_read_timestamp(const char *text, Oid typid,
										int32 typmod);
extern char *close_utf8_for_message(const char *text, size_t len);
extern char *close_server_text(const char *text, size_t len);
extern Datum close_numeric_from_text(const char *text);
extern Datum close_int64_numeric(int64 value);
extern const char *close_column_key(CloseRowConverter *conv, AttrNumber attnum);
extern bool close_column_is_custom_map(CloseRowConverter *conv,
									   AttrNumber attnum);
extern const char *close_column_for_key(CloseRowConverter *conv,
										const char *key);
extern void close_append_json_value(StringInfo buf, CloseRowConverter *conv,
									AttrNumber attnum, Datum value,
									bool isnull);

/* in upper.c */
extern void closeGetForeignUpperPaths(PlannerInfo *root,
									  UpperRelationKind stage,
									  RelOptInfo *input_rel,
									  RelOptInfo *output_rel, void *extra);
extern ForeignScan *close_plan_count(PlannerInfo *root, RelOptInfo *rel,
									 List *tlist, Plan *outer_plan);
extern void close_count_begin(ForeignScanState *node, int eflags);
extern TupleTableSlot *close_count_iterate(ForeignScanState *node);
extern void close_count_rescan(ForeignScanState *node);
extern void close_count_explain(ForeignScanState *node,
								struct ExplainState *es);
extern int64 close_search_count(UserMapping *user, const CloseResource *res,
								const char *query, int64 *requests);

/* in import.c */
extern List *closeImportForeignSchema(ImportForeignSchemaStmt *stmt,
									  Oid serverOid);
extern List *close_fetch_types(UserMapping *user, int cache_ttl_ms,
							   bool *sent);
extern const char *close_field_column_type(CloseFieldInfo *field);

/* in deferred.c: the writes write_mode 'deferred' sends at commit */
typedef struct CloseDeferredWrite
{
	Oid			relid;
	Oid			userid;			/* whose user mapping sends it */
	Oid			serverid;
	CmdType		operation;
	CommandId	cid;			/* the statement that queued it */
	char	   *path;			/* "/custom_object/" or the record's */
	char	   *body;			/* NULL for DELETE */
	char	   *id;				/* NULL for INSERT */
	char	   *lead;			/* an INSERT's lead_id, or NULL */
	const char *relname;		/* the table's name, for the write log */
	/* deferred.c's own: what this write counts in */
	struct DeferredObject *object;	/* UPDATE, DELETE: its object */
	struct DeferredTarget *target;	/* INSERT, UPDATE: its table's */
	struct DeferredObject *into;	/* INSERT with a lead: the lead's */
} CloseDeferredWrite;

extern void close_deferred_add(Oid relid, Oid userid, Oid serverid,
							   CmdType operation, CommandId cid,
							   const char *path, const char *body,
							   const char *id, const char *lead,
							   const char *relname);
extern CloseDeferredWrite **close_deferred_writes(int *n);
extern int	close_deferred_object_writes(const char *path, int *deletes);
extern int	close_deferred_inserts_into(const char *path);
extern const char *close_deferred_insert_overlap(Oid relid, bool any_server,
												 bool *same);
extern const char *close_deferred_update_overlap(Oid relid, bool *same);
extern void close_deferred_end(int level, bool abort);

/* in modify.c */
/* close_add_update_targets: see compat.h's closeAddForeignUpdateTargets */
extern List *closePlanForeignModify(PlannerInfo *root, ModifyTable *plan,
									Index resultRelation, int subplan_index);
extern void closeBeginForeignModify(ModifyTableState *mtstate,
									ResultRelInfo *rinfo, List *fdw_private,
									int subplan_index, int eflags);
extern TupleTableSlot *closeExecForeignInsert(EState *estate,
											  ResultRelInfo *rinfo,
											  TupleTableSlot *slot,
											  TupleTableSlot *planSlot);
extern TupleTableSlot *closeExecForeignUpdate(EState *estate,
											  ResultRelInfo *rinfo,
											  TupleTableSlot *slot,
											  TupleTableSlot *planSlot);
extern TupleTableSlot *closeExecForeignDelete(EState *estate,
											  ResultRelInfo *rinfo,
											  TupleTableSlot *slot,
											  TupleTableSlot *planSlot);
extern int	closeGetForeignModifyBatchSize(ResultRelInfo *rinfo);
extern TupleTableSlot **closeExecForeignBatchInsert(EState *estate,
													ResultRelInfo *rinfo,
													TupleTableSlot **slots,
													TupleTableSlot **planSlots,
													int *numSlots);
extern void closeBeginForeignInsert(ModifyTableState *mtstate,
									ResultRelInfo *rinfo);
extern void closeEndForeignModify(EState *estate, ResultRelInfo *rinfo);
extern void closeEndForeignInsert(EState *estate, ResultRelInfo *rinfo);
extern int	closeIsForeignRelUpdatable(Relation rel);
extern bool closePlanDirectModify(PlannerInfo *root, ModifyTable *plan,
								  Index resultRelation, int subplan_index);
extern void closeBeginDirectModify(ForeignScanState *node, int eflags);
extern TupleTableSlot *closeIterateDirectModify(ForeignScanState *node);
extern void closeEndDirectModify(ForeignScanState *node);
extern void closeExplainDirectModify(ForeignScanState *node,
									 struct ExplainState *es);
extern void closeExplainForeignModify(ModifyTableState *mtstate,
									  ResultRelInfo *rinfo, List *fdw_private,
									  int subplan_index, struct ExplainState *es);

/* in pushdown.c */
extern void close_find_key_columns(Oid relid, CloseKeyColumns *keys);
extern void close_classify_conditions(PlannerInfo *root, RelOptInfo *baserel,
									  const CloseKeyColumns *keys,
									  List *rinfos, ClosePushdown *out);
extern List *close_join_clause_outers(PlannerInfo *root, RelOptInfo *baserel,
									  const CloseKeyColumns *keys);
extern char *close_describe_value(PlannerInfo *root, Expr *expr);
extern void close_list_filters(PlannerInfo *root, RelOptInfo *baserel,
							   Oid relid, List *rinfos, List **names,
							   List **exprs);
extern void close_search_plan_values(PlannerInfo *root, List *values,
									 CloseSearchValues *vals);
extern void close_search_conditions(PlannerInfo *root, RelOptInfo *baserel,
									List *rinfos, CloseSearchPushdown *out);
extern List *close_search_confirm(List *nodes, const CloseResource *res,
								  UserMapping *user, int64 *requests,
								  int *not_pushed);

#endif							/* CLOSE_FDW_H */
