/*-------------------------------------------------------------------------
 *
 * http.c
 *		  Requests to the Close API: URL building and escaping, the one place
 *		  that sets up a libcurl handle, timeouts, cancellation, the pacing
 *		  by Close's RateLimit, requests in flight together (a round of
 *		  close_http_send_many, or a CloseFlight whose requests start and end
 *		  one by one), and the one reporter that turns every remote failure
 *		  into an error.
 *
 * Nothing called from inside libcurl may throw: the callbacks here only
 * record what happened (a cancel request, a body too large, no memory) and
 * return, and the caller reports it once curl_easy_perform has returned.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "close_fdw.h"
#include "compat.h"

#define CLOSE_USER_AGENT	"close_fdw/0.1"

/* Where the write callback puts a body; only ever appended to. */
typedef struct BodyBuffer
{
	MemoryContext context;
	char	   *data;
	size_t		len;
	size_t		capacity;
	size_t		max;			/* refuse a body larger than this */
	bool		too_large;
	bool		out_of_memory;
} BodyBuffer;

/*
 * The body of a request that must not be sent twice, handed to libcurl
 * through a read callback that cannot go back (see setup_handle).
 */
/*
 * A POST that creates reuses only a connection used this recently: servers
 * close idle keep-alive connections after longer than this, and a request
 * sent on a connection the server has just closed fails (see setup_handle).
 */
#define CLOSE_WRITE_REUSE_SECONDS 2

typedef struct UploadBody
{
	const char *data;
	size_t		len;
	size_t		sent;
} UploadBody;

static double rate_limit_wait_ms(CloseResponse *response, const char *body,
								 size_t len);
static bool rate_limit_wait_allowed(CloseConnection *conn, TimestampTz since,
									double delay);

static size_t
read_upload(char *buffer, size_t size, size_t nitems, void *userdata)
{
	UploadBody *upload = (UploadBody *) userdata;
	size_t		n = Min(size * nitems, upload->len - upload->sent);

	memcpy(buffer, upload->data + upload->sent, n);
	upload->sent += n;
	return n;
}

static int
refuse_seek(void *userdata, curl_off_t offset, int origin)
{
	return CURL_SEEKFUNC_CANTSEEK;
}

static size_t
write_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	BodyBuffer *buf = (BodyBuffer *) userdata;
	size_t		n = size * nmemb;

	if (buf->len + n > buf->max)
	{
		buf->too_large = true;
		return 0;
	}
	if (buf->len + n + 1 > buf->capacity)
	{
		size_t		capacity = Max(buf->capacity * 2, buf->len + n + 1);
		char	   *data;

		capacity = Max(capacity, 8192);
		/* no-OOM allocation: an error must not longjmp through libcurl */
		data = MemoryContextAllocExtended(buf->context, capacity,
										  MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE);
		if (data == NULL)
		{
			buf->out_of_memory = true;
			return 0;
		}
		if (buf->data)
		{
			memcpy(data, buf->data, buf->len);
			pfree(buf->data);
		}
		buf->data = data;
		buf->capacity = capacity;
	}
	memcpy(buf->data + buf->len, ptr, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return n;
}

/* Copy a header's value into a fixed buffer if its name matches. */
static void
capture_header(const char *line, size_t len, const char *name,
			   char *dest, size_t destsize)
{
	size_t		namelen = strlen(name);
	size_t		vlen;

	if (len <= namelen || pg_strncasecmp(line, name, namelen) != 0 ||
		line[namelen] != ':')
		return;
	line += namelen + 1;
	len -= namelen + 1;
	while (len > 0 && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
					   line[len - 1] == ' '))
		len--;
	vlen = Min(len, destsize - 1);
	memcpy(dest, line, vlen);
	dest[vlen] = '\0';
}

static size_t
read_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	CloseResponse *response = (CloseResponse *) userdata;
	size_t		n = size * nmemb;

	capture_header(ptr, n, "retry-after", response->retry_after,
				   sizeof(response->retry_after));
	capture_header(ptr, n, "ratelimit", response->rate_limit,
				   sizeof(response->rate_limit));
	return n;
}

/*
 * Called by libcurl at least once a second during a transfer: abort it when
 * the backend has a cancel or termination pending.  It only signals; the
 * caller runs CHECK_FOR_INTERRUPTS() after curl_easy_perform returns.
 */
static int
check_interrupts(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
				 curl_off_t ultotal, curl_off_t ulnow)
{
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

static void
append_escaped(StringInfo buf, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *) value; *p; p++)
	{
		if (isascii(*p) && (isalnum(*p) || *p == '-' || *p == '.' ||
							*p == '_' || *p == '~'))
			appendStringInfoChar(buf, (char) *p);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[*p >> 4]);
			appendStringInfoChar(buf, hex[*p & 0x0f]);
		}
	}
}

/*
 * Text in the server encoding as Close reads it, UTF-8 (the same pointer in
 * a UTF8 database); a character UTF-8 cannot hold is an error.  Every body
 * and every value in a URL goes through here on its way out.
 */
static const char *
utf8_text(const char *text)
{
	if (text == NULL)
		return NULL;

	/*
	 * An SQL_ASCII database converts nothing: its bytes go out as they are,
	 * and must then be UTF-8 already (a LATIN1 "\xe9" is not a character
	 * Close can read, nor one it should guess).
	 */
	if (GetDatabaseEncoding() == PG_SQL_ASCII &&
		!pg_verify_mbstr(PG_UTF8, text, strlen(text), true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("text sent to the Close API is not valid UTF-8"),
				 errdetail("In an SQL_ASCII database, text is sent as its bytes, and Close reads UTF-8.")));
	return pg_server_to_any(text, strlen(text), PG_UTF8);
}

/* Append "?name=value" or "&name=value", the value percent-encoded. */
void
close_append_query_param(StringInfo buf, const char *name, const char *value)
{
	appendStringInfoChar(buf, strchr(buf->data, '?') ? '&' : '?');
	appendStringInfoString(buf, name);
	appendStringInfoChar(buf, '=');
	append_escaped(buf, utf8_text(value));
}

/*
 * A query parameter whose value is a comma-separated list (_fields, a
 * filter's __in): each item percent-encoded, the commas between them kept.
 */
void
close_append_query_list(StringInfo buf, const char *name, const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *part;
	char	   *next;

	appendStringInfoChar(buf, strchr(buf->data, '?') ? '&' : '?');
	appendStringInfoString(buf, name);
	appendStringInfoChar(buf, '=');
	for (part = copy; part; part = next)
	{
		next = strchr(part, ',');
		if (next)
			*next++ = '\0';
		append_escaped(buf, utf8_text(part));
		if (next)
			appendStringInfoChar(buf, ',');
	}
	pfree(copy);
}

/* The path of one custom object, its id percent-encoded; palloc'd. */
char *
close_object_path(const char *id)
{
	return close_record_path("/custom_object/", id);
}

/* The path of one record of the listing at base ("/lead/"): base{id}/. */
char *
close_record_path(const char *base, const char *id)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, base);
	append_escaped(&buf, utf8_text(id));
	appendStringInfoChar(&buf, '/');
	return buf.data;
}

/*
 * Remote text made fit for a message: valid in the server encoding (Close
 * writes UTF-8: in a database of another encoding, its non-ASCII
 * characters are shown escaped), no control characters, and not too long.
 */
static char *
printable_text(const char *text, size_t len)
{
	size_t		maxlen = 1000;
	char	   *result;
	size_t		i;

	if (GetDatabaseEncoding() != PG_UTF8)
	{
		if (len > maxlen)
			len = pg_encoding_mbcliplen(PG_UTF8, text, (int) len, (int) maxlen);
		result = close_utf8_for_message(text, len);
		len = strlen(result);
	}
	else
	{
		if (len > maxlen)
			len = maxlen;
		result = pnstrdup(text, len);
		if (!pg_verifymbstr(result, len, true))
		{
			for (i = 0; i < len; i++)
				if (!isascii((unsigned char) result[i]))
					result[i] = '?';
		}
		else
			len = pg_mbcliplen(result, len, len);
		result[len] = '\0';
	}
	for (i = 0; i < len; i++)
		if ((unsigned char) result[i] < 0x20 && result[i] != '\n')
			result[i] = ' ';
	return result;
}

/* "N attempts over X s" when a request was tried more than once. */
static char *
attempts_text(CloseResponse *response)
{
	if (response->attempts <= 1)
		return NULL;
	return psprintf("Tried %d times over %.1f s of waiting.", response->attempts,
					response->waited_ms / 1000.0);
}

/*
 * A request that got no answer, after its retries; detail is libcurl's
 * account of that request's transfer ("" if none).
 */
pg_noreturn static void
report_transport_error(CloseConnection *conn, const char *method,
					   const char *path, CloseResponse *response, CURLcode rc,
					   const char *detail)
{
	bool		connecting = (rc == CURLE_COULDNT_RESOLVE_HOST ||
							  rc == CURLE_COULDNT_RESOLVE_PROXY ||
							  rc == CURLE_COULDNT_CONNECT ||
							  rc == CURLE_SSL_CONNECT_ERROR ||
							  rc == CURLE_PEER_FAILED_VERIFICATION ||
							  rc == CURLE_SSL_CACERT_BADFILE ||
							  (rc == CURLE_OPERATION_TIMEDOUT &&
							   response->status == 0));
	bool		may_have_acted = !connecting && strcmp(method, "GET") != 0;
	char	   *tried = attempts_text(response);

	/*
	 * Never class 08: drivers and pools take it for a dead database
	 * connection.  No connection or no answer in time is HV00N; an answer
	 * lost or cut short once connected is Close failing, HV000.
	 */
	if (rc == CURLE_SEND_FAIL_REWIND)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("the connection to the Close API at server \"%s\" closed before an answer came",
						conn->server_name),
				 errdetail("The request went out on a kept-alive connection; it is not sent again by itself."),
				 errhint("The request may have reached Close and taken effect; check before repeating it."),
				 errcontext("Close API request: %s %s", method, path)));
	if (rc == CURLE_OPERATION_TIMEDOUT)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("Close API request timed out"),
				 tried ? errdetail_internal("%s %s", detail, tried)
				 : errdetail_internal("%s", detail),
				 may_have_acted
				 ? errhint("The request may have reached Close and taken effect; check before repeating it.")
				 : errhint("The server options \"timeout_ms\" and \"connect_timeout_ms\" of server \"%s\" set the limits.",
						   conn->server_name),
				 errcontext("Close API request: %s %s", method, path)));
	if (connecting)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not connect to the Close API at server \"%s\": %s",
						conn->server_name, close_curl_strerror(rc)),
				 tried ? errdetail_internal("%s %s", detail, tried)
				 : detail[0] ? errdetail_internal("%s", detail) : 0,
				 errcontext("Close API request: %s %s", method, path)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("could not read from the Close API at server \"%s\": %s",
					conn->server_name, close_curl_strerror(rc)),
			 tried ? errdetail_internal("%s %s", detail, tried)
			 : detail[0] ? errdetail_internal("%s", detail) : 0,
			 may_have_acted
			 ? errhint("The request may have reached Close and taken effect; check before repeating it.")
			 : 0,
			 errcontext("Close API request: %s %s", method, path)));
}

/*
 * Whether a transfer's request went out (its head, at least): Close may
 * then have acted on it, whatever became of the answer.
 */
static bool
request_went_out(CURL *curl)
{
	long		size = 0;

	return curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &size) == CURLE_OK &&
		size > 0;
}

/*
 * A server error after which a request may still have taken effect: a
 * gateway's 502 or 504 (Close's own answer may have been lost behind it),
 * a 500 (Close may have failed after acting) and the other 5xx a front may
 * send for a request it passed on.  Only 501 and 503 say the request was
 * not acted on (Close's own client retries 503 on any method).
 */
static bool
gateway_failure(long status)
{
	return status >= 500 && status <= 599 && status != 501 && status != 503;
}

/* The outcome of one attempt, before it is judged. */
typedef struct Attempt
{
	ClosePaceTicket ticket;		/* of the pacing (shared.c) */
	CURLcode	rc;
	BodyBuffer	answer;
	UploadBody	upload;
} Attempt;

/*
 * Whether a request may be sent again after an answer that did not come:
 * every method but POST, and of POSTs the search, which only reads.
 */
static bool
request_is_repeatable(const char *method, const char *path)
{
	return strcmp(method, "POST") != 0 ||
		strncmp(path, "/data/search/", strlen("/data/search/")) == 0;
}

/* Whether a request reads (counts towards the request budget): GET, search. */
static bool
request_reads(const char *method, const char *path)
{
	return strcmp(method, "GET") == 0 ||
		(strcmp(method, "POST") == 0 &&
		 strncmp(path, "/data/search/", strlen("/data/search/")) == 0);
}

/*
 * The wait events of a backend waiting on Close: a transfer, and a wait
 * for the rate limit or a retry (see compat.h).
 */
static uint32 http_wait_event = 0;
static uint32 retry_wait_event = 0;

#define CLOSE_WAIT_HTTP		close_wait_event("CloseHttp", &http_wait_event)
#define CLOSE_WAIT_RETRY	close_wait_event("CloseWait", &retry_wait_event)

/*
 * A GET whose URL is longer than this goes as a POST with
 * "x-http-method-override: GET" and its parameters in {"_params": {...}}
 * (the API sheet: Close takes URLs of about 2000 characters).
 */
#define CLOSE_MAX_GET_URL	2000

/* One %-encoded query part, decoded (a '+' is a space), as a JSON string. */
static void
append_query_part_json(StringInfo buf, const char *p, size_t len)
{
	StringInfoData raw;
	size_t		i;

	initStringInfo(&raw);
	for (i = 0; i < len; i++)
	{
		if (p[i] == '%' && i + 2 < len &&
			isxdigit((unsigned char) p[i + 1]) &&
			isxdigit((unsigned char) p[i + 2]))
		{
			char		hex[3] = {p[i + 1], p[i + 2], '\0'};

			appendStringInfoChar(&raw, (char) strtol(hex, NULL, 16));
			i += 2;
		}
		else if (p[i] == '+')
			appendStringInfoChar(&raw, ' ');
		else
			appendStringInfoChar(&raw, p[i]);
	}
	escape_json(buf, raw.data);
	pfree(raw.data);
}

/*
 * The body {"_params": {...}} of a GET's query string (after the '?'),
 * each parameter once (close_fdw sends none twice).
 */
static char *
override_params_body(const char *query)
{
	StringInfoData buf;
	const char *p = query;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"_params\": {");
	while (*p)
	{
		const char *end = strchr(p, '&');
		const char *eq;
		size_t		len = end ? (size_t) (end - p) : strlen(p);

		if (len > 0)
		{
			eq = memchr(p, '=', len);
			if (!first)
				appendStringInfoString(&buf, ", ");
			first = false;
			append_query_part_json(&buf, p, eq ? (size_t) (eq - p) : len);
			appendStringInfoString(&buf, ": ");
			if (eq)
				append_query_part_json(&buf, eq + 1, len - (eq + 1 - p));
			else
				appendStringInfoString(&buf, "\"\"");
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	appendStringInfoString(&buf, "}}");
	return buf.data;
}

/*
 * The one place that sets a handle up for a request: safe defaults first,
 * then ours.
 */
static void
setup_handle(CloseConnection *conn, CURL *curl, const char *method,
			 const char *url, const char *body, bool repeatable,
			 CloseResponse *response, Attempt *attempt)
{
	char	   *override_body = NULL;

	memset(&attempt->answer, 0, sizeof(attempt->answer));
	attempt->answer.context = CurrentMemoryContext;
	attempt->answer.max = conn->server.max_response_bytes;
	response->status = 0;
	response->retry_after[0] = '\0';
	response->rate_limit[0] = '\0';
	conn->errbuf[0] = '\0';

	/* a GET too long for a URL: a POST that says it is a GET */
	if (body == NULL && strcmp(method, "GET") == 0 &&
		strlen(url) > CLOSE_MAX_GET_URL && strchr(url, '?') != NULL)
	{
		const char *query = strchr(url, '?');

		override_body = override_params_body(query + 1);
		url = pnstrdup(url, query - url);
	}

	/* reset keeps the live connection; then safe defaults, then ours */
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	close_curl_limit_protocols(curl);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (conn->server.ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, conn->server.ca_file);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) conn->server.timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
					 (long) conn->server.connect_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, CLOSE_USER_AGENT);
	curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, conn->errbuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &attempt->answer);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_interrupts);
	curl_easy_setopt(curl, CURLOPT_URL, url);

	curl_easy_setopt(curl, CURLOPT_HTTPHEADER,
					 override_body ? conn->override_headers :
					 body ? conn->json_headers : conn->headers);
	if (override_body)
	{
		/* copied by libcurl: it outlives this memory in a flight */
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) strlen(override_body));
		curl_easy_setopt(curl, CURLOPT_COPYPOSTFIELDS, override_body);
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		pfree(override_body);
		return;
	}
	if (body && repeatable)
	{
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) strlen(body));
	}
	else if (body)
	{
		/*
		 * libcurl sends a request again by itself when the kept-alive
		 * connection it reused closes before any answer, rewinding the body;
		 * a POST that creates must never go twice.  Its body comes from a
		 * callback that cannot rewind, so that such a repeat fails instead
		 * (CURLE_SEND_FAIL_REWIND, reported as "may have reached Close"),
		 * and only a connection used in the last seconds is reused, so that
		 * a connection the server closed for idling is not.
		 */
		attempt->upload.data = body;
		attempt->upload.len = strlen(body);
		attempt->upload.sent = 0;
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_upload);
		curl_easy_setopt(curl, CURLOPT_READDATA, &attempt->upload);
		curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, refuse_seek);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) attempt->upload.len);
		close_curl_limit_connection_age(curl, CLOSE_WRITE_REUSE_SECONDS);
	}
	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
	else
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
}

/* Send the request once. */
static void
send_once(CloseConnection *conn, const char *method, const char *url,
		  const char *body, bool repeatable, CloseResponse *response,
		  Attempt *attempt)
{
	setup_handle(conn, conn->curl, method, url, body, repeatable,
				 response, attempt);
	pgstat_report_wait_start(CLOSE_WAIT_HTTP);
	attempt->rc = curl_easy_perform(conn->curl);
	pgstat_report_wait_end();
	curl_easy_getinfo(conn->curl, CURLINFO_RESPONSE_CODE, &response->status);
}

/*
 * Whether a path segment is a Close id: one of the API sheet's prefixes
 * followed by base62 characters (close_is_valid_id).  Segments that are
 * names ("custom_object", "custom_object_type") are not, underscore and
 * all.
 */
static bool
is_id_segment(const char *segment, size_t len)
{
	static const char *const prefixes[] = {
		CLOSE_PREFIX_CUSTOM_OBJECT, CLOSE_PREFIX_LEAD, CLOSE_PREFIX_TYPE,
		"cf_", "cont_", "user_", "orga_", NULL
	};
	const CloseResource *res;
	char		copy[256];
	int			i;

	if (len == 0 || len >= sizeof(copy))
		return false;
	memcpy(copy, segment, len);
	copy[len] = '\0';
	for (i = 0; prefixes[i]; i++)
		if (close_is_valid_id(copy, prefixes[i]))
			return true;
	/* and every resource's records (oppo_, pipe_, stat_...) */
	for (i = 0; (res = close_resource_nth(i)) != NULL; i++)
		if (close_is_valid_id(copy, res->id_prefix))
			return true;
	return false;
}

/*
 * The endpoint group of a request, as Close counts rate limits: the method
 * and the path with each id replaced by {id}, without the query.
 */
static void
endpoint_group(const char *method, const char *path, char *group, size_t size)
{
	StringInfoData buf;
	const char *p = path;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s ", method);
	while (*p && *p != '?')
	{
		size_t		seg = strcspn(p, "/?");

		if (is_id_segment(p, seg))
			appendStringInfoString(&buf, "{id}");
		else
			appendBinaryStringInfo(&buf, p, seg);
		p += seg;
		if (*p == '/')
			appendStringInfoChar(&buf, *p++);
	}
	strlcpy(group, buf.data, size);
	pfree(buf.data);
}

/* endpoint_group, for the other files (close_fdw_stats' cache hits). */
void
close_endpoint_group(const char *method, const char *path, char *group,
					 size_t size)
{
	endpoint_group(method, path, group, size);
}

/*
 * The numbers of a RateLimit header: "limit=100, remaining=50, reset=5"
 * (also with ";" between the parts; reset may have decimals).
 */
static bool
parse_rate_limit(const char *header, int *limit, int *remaining, double *reset)
{
	const char *l = strstr(header, "limit=");
	const char *r = strstr(header, "remaining=");
	const char *s = strstr(header, "reset=");

	if (r == NULL || s == NULL)
		return false;
	*limit = l ? atoi(l + strlen("limit=")) : -1;
	*remaining = atoi(r + strlen("remaining="));
	*reset = strtod(s + strlen("reset="), NULL);
	return *reset >= 0;
}

/*
 * Tell the pacing (shared.c) what the answer to the request of ticket
 * said: its RateLimit, and for a 429 that nothing may go for refused_ms.
 */
static void
pace_learn_answer(CloseConnection *conn, const char *group,
				  ClosePaceTicket ticket, CloseResponse *response,
				  double refused_ms)
{
	int			limit = -1;
	int			remaining = 0;
	double		reset = 0;
	bool		told = response->rate_limit[0] &&
		parse_rate_limit(response->rate_limit, &limit, &remaining, &reset);

	close_pace_learn(conn, group, ticket, told, limit, remaining, reset,
					 refused_ms);
}

/* Count one attempt, once it has ended, in close_fdw_stats. */
static void
count_attempt(CloseConnection *conn, const char *group, long status,
			  size_t bytes, bool retry)
{
	CloseStatsDelta delta = {0};

	delta.requests = 1;
	delta.retries = retry ? 1 : 0;
	delta.refused = (status == 429);
	delta.server_errors = (status >= 500);
	delta.bytes = (int64) bytes;
	close_stats_add(conn, group, &delta);
}

/*
 * Judge one attempt of a concurrent request, once its transfer has ended:
 * learn the pacing from it, and fill in the response (status 0 and
 * transport_error when no whole answer came; resend_safe when sending it
 * again, alone, can do no harm).
 */
static void
judge_attempt(CloseConnection *conn, const char *group, CloseResponse *response,
			  Attempt *attempt, bool repeatable)
{
	/* answers of one batch come in any order: the pacing sorts them out */
	pace_learn_answer(conn, group, attempt->ticket, response,
					  response->status == 429 ?
					  rate_limit_wait_ms(response, attempt->answer.data,
										 attempt->answer.len) : -1);
	response->attempts = 1;
	if (attempt->answer.too_large || attempt->answer.out_of_memory)
	{
		/*
		 * A read is asked again alone, which reports this properly; a POST
		 * that creates has been acted on and is never sent again.
		 */
		response->status = 0;
		response->resend_safe = repeatable;
		if (!repeatable)
			response->transport_error = (int) CURLE_WRITE_ERROR;
	}
	else if (attempt->rc != CURLE_OK)
	{
		response->status = 0;
		response->transport_error = (int) attempt->rc;
		response->resend_safe = repeatable ||
			attempt->rc == CURLE_COULDNT_CONNECT ||
			attempt->rc == CURLE_COULDNT_RESOLVE_HOST ||
			attempt->rc == CURLE_COULDNT_RESOLVE_PROXY;
	}
	else
		response->resend_safe = response->status == 429 ||
			(repeatable && (response->status == 502 ||
							response->status == 503 ||
							response->status == 504));
	response->body = attempt->answer.data ? attempt->answer.data : "";
	response->body_len = attempt->answer.len;

	/*
	 * Counted as a request; and as a retry when its caller will send it again
	 * alone (a 429 or a transient failure, where the options allow).
	 */
	count_attempt(conn, group, attempt->rc == CURLE_OK ? response->status : 0,
				  attempt->answer.len,
				  response->resend_safe &&
				  (response->status == 429 || response->status >= 500 ||
				   response->status == 0) &&
				  close_http_may_retry(conn, response));
}

/*
 * Wait, interruptibly: a cancel or statement_timeout ends the wait (and
 * the statement) at once.  Returns the milliseconds waited.
 */
static double wait_ms(double ms);

/* Wait as wait_ms does, and count the wait in close_fdw_stats. */
static double
counted_wait_ms(CloseConnection *conn, const char *group, double ms)
{
	CloseStatsDelta delta = {0};

	delta.waits = 1;
	delta.wait_ms = wait_ms(ms);
	close_stats_add(conn, group, &delta);
	return delta.wait_ms;
}

/*
 * Wait for the pacing to let wanted requests go (shared.c says how long);
 * returns how many may go, their tickets from *ticket on, and adds the
 * time waited to *waited.  A request that has met a 429 since limited_since
 * waits only as long as rate_limit_wait_allowed says: false then.
 */
static bool
pace_wait(CloseConnection *conn, const char *group, int wanted,
		  TimestampTz limited_since, ClosePaceTicket *ticket, int *granted,
		  double *waited)
{
	double		pause;

	while ((*granted = close_pace_take(conn, group, wanted, ticket, &pause)) == 0)
	{
		/* a little at random, so that waiting backends do not wake together */
		pause += 3.0 * close_random_fraction();
		if (limited_since != 0 &&
			!rate_limit_wait_allowed(conn, limited_since, pause))
			return false;
		*waited += counted_wait_ms(conn, group, pause);
	}
	return true;
}

static double
wait_ms(double ms)
{
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz deadline = TimestampTzPlusMilliseconds(start, (int64) ms);

	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, CLOSE_WAIT_RETRY);
		ResetLatch(MyLatch);
	}
	return (double) TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
}

/* Exponential backoff with jitter: about 0.25 s, 0.5 s, 1 s, ... 8 s. */
static double
backoff_ms(int attempt)
{
	double		base = 250.0 * (1 << Min(attempt - 1, 5));

	return base * (0.5 + close_random_fraction());
}

/*
 * How long a 429 asks to wait: RateLimit's reset, else Retry-After, else
 * the body's rate_reset, else 2 s.  Only a wait counts: a hint of 0 (a
 * RateLimit of another limit than the one that refused, "remaining" above
 * zero and "reset=0"; "Retry-After: 0") passes to the next, since a 429 is
 * always a signal to wait, and trying again at once would send requests as
 * fast as Close refuses them until rate_limit_wait_ms runs out.
 */
static double
rate_limit_wait_ms(CloseResponse *response, const char *body, size_t len)
{
	int			limit;
	int			remaining;
	double		reset;
	double		seconds = -1;

	if (response->rate_limit[0] &&
		parse_rate_limit(response->rate_limit, &limit, &remaining, &reset) &&
		reset > 0)
		seconds = reset;
	if (seconds <= 0 && response->retry_after[0] &&
		isdigit((unsigned char) response->retry_after[0]))
		seconds = strtod(response->retry_after, NULL);
	if (seconds <= 0)
		seconds = close_json_rate_reset(body, len);
	if (seconds <= 0)
		seconds = 2.0;
	return Min(seconds, 600.0) * 1000.0;
}

/*
 * A little more than Close asked for, at random, so that backends refused
 * together do not come back together.
 */
static double
rate_limit_jitter_ms(double delay)
{
	return (delay / 10.0 + 20.0) * close_random_fraction();
}

/*
 * Whether a request first refused (429) at since may wait delay ms more:
 * not when that would outlast the server's rate_limit_wait_ms (0: never
 * wait) or the statement_timeout (waiting would only end in a cancel).
 */
static bool
rate_limit_wait_allowed(CloseConnection *conn, TimestampTz since, double delay)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													(int64) delay);

	if (conn->server.rate_limit_wait_ms <= 0 ||
		until > TimestampTzPlusMilliseconds(since,
											conn->server.rate_limit_wait_ms))
		return false;
	if (get_timeout_active(STATEMENT_TIMEOUT) &&
		until >= get_timeout_finish_time(STATEMENT_TIMEOUT))
		return false;
	return true;
}

/*
 * Whether a failed answer fetched together with others may be sent again
 * alone (close_http_request) under the server's options: a 429 unless
 * rate_limit_wait_ms is 0, any other failure unless max_retries is 0.
 */
bool
close_http_may_retry(CloseConnection *conn, CloseResponse *response)
{
	if (response->status == 429)
		return conn->server.rate_limit_wait_ms > 0;
	return conn->server.max_retries > 0;
}

/*
 * Send one request and return the answer, whatever its status, after the
 * retries a transient failure deserves:
 *
 * - 429: Close refused the request: back-pressure, not a failure.  Wait as
 *   it says (with jitter), then again (any method), for as long as
 *   rate_limit_wait_ms (from the first 429) and statement_timeout allow:
 *   a wait that would outlast either is not begun, and the 429 is the
 *   answer (close_report_http_error makes it SQLSTATE 53400).
 * - 502, 503, 504 and a connection lost: again after a backoff, for GET, PUT
 *   and DELETE only (repeating those is harmless); a POST may have created
 *   a record, so it is never repeated once it may have been sent.
 * - a connection never made (refused, unresolved): again, any method.
 *
 * the latter two at most max_retries times.  Before each request, a RateLimit that said
 * nothing remains for this endpoint group is waited out.  Waits are
 * interruptible.  Transport failures, cancellation and oversized bodies
 * that remain are errors here; the caller judges the final status and
 * reports it with close_report_http_error.  The body is allocated in
 * CurrentMemoryContext.  response->may_have_acted is kept up to date as the
 * attempts go, so that a caller catching an error (a cancel during the
 * transfer, a lost answer) can tell whether the request may have reached
 * Close.
 *
 * libcurl repeats a request by itself, once, when a reused keep-alive
 * connection turns out to be closed before any answer arrived.  That is
 * harmless but for a POST that creates: setup_handle makes that repeat
 * fail instead.
 */
void
close_http_request(CloseConnection *conn, const char *method,
				   const char *path, const char *body,
				   CloseResponse *response)
{
	char	   *url = psprintf("%s%s", conn->server.api_url, path);
	bool		repeatable = request_is_repeatable(method, path);
	char		group[CLOSE_GROUP_SIZE];
	Attempt		attempt;
	TimestampTz limited_since = 0;	/* when the first 429 came */
	int			failures = 0;	/* retries of other failures */

	body = utf8_text(body);
	memset(response, 0, sizeof(*response));
	memset(&attempt, 0, sizeof(attempt));
	endpoint_group(method, path, group, sizeof(group));
	/* a write: the server's cached answers go before and after it */
	if (!request_reads(method, path))
		close_cache_invalidate(conn);

	for (;;)
	{
		double		delay = -1;
		double		refused_ms = -1;
		int			granted;

		/* every attempt to read counts towards the statement's budget */
		(void) close_budget_admit(request_reads(method, path), path, 1, false);

		/*
		 * Pace: wait for the budget of this key and endpoint group (shared
		 * with the other backends when preloaded).  A request refused before
		 * gives up when waiting longer is not allowed: its last 429 is the
		 * answer.
		 */
		if (!pace_wait(conn, group, 1, limited_since, &attempt.ticket,
					   &granted, &response->waited_ms))
			break;

		if (attempt.answer.data)
			pfree(attempt.answer.data);
		response->attempts++;
		send_once(conn, method, url, body, repeatable, response, &attempt);
		if (!request_reads(method, path))
			close_cache_invalidate(conn);
		/* told before a cancel is let through: the caller's write log */
		if (attempt.rc != CURLE_OK ? request_went_out(conn->curl)
			: gateway_failure(response->status))
			response->may_have_acted = true;
		count_attempt(conn, group, attempt.rc == CURLE_OK ? response->status : 0,
					  attempt.answer.len, response->attempts > 1);
		if (attempt.rc == CURLE_OK && response->status == 429)
		{
			refused_ms = rate_limit_wait_ms(response, attempt.answer.data,
											attempt.answer.len);
			refused_ms += rate_limit_jitter_ms(refused_ms);
		}
		pace_learn_answer(conn, group, attempt.ticket, response, refused_ms);

		if (attempt.rc == CURLE_ABORTED_BY_CALLBACK)
		{
			/* the user's cancel or statement_timeout, with its own SQLSTATE */
			CHECK_FOR_INTERRUPTS();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("canceling Close API request due to a pending interrupt"),
					 errcontext("Close API request: %s %s", method, path)));
		}
		if (attempt.answer.too_large)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("Close API response is larger than %zu bytes",
							attempt.answer.max),
					 errhint("The server option \"max_response_bytes\" of server \"%s\" sets the limit.",
							 conn->server_name),
					 errcontext("Close API request: %s %s", method, path)));
		if (attempt.answer.out_of_memory)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Could not buffer a Close API response of %zu bytes.",
							   attempt.answer.len),
					 errcontext("Close API request: %s %s", method, path)));

		if (attempt.rc != CURLE_OK)
		{
			bool		never_sent = (attempt.rc == CURLE_COULDNT_CONNECT ||
									  attempt.rc == CURLE_COULDNT_RESOLVE_HOST ||
									  attempt.rc == CURLE_COULDNT_RESOLVE_PROXY);

			if (attempt.rc != CURLE_OPERATION_TIMEDOUT && (never_sent || repeatable))
				delay = backoff_ms(response->attempts);
		}
		else if (response->status == 429)
		{
			if (limited_since == 0)
				limited_since = GetCurrentTimestamp();
			if (!rate_limit_wait_allowed(conn, limited_since, refused_ms))
				break;
			delay = refused_ms;
		}
		else if (repeatable && (response->status == 502 ||
								response->status == 503 ||
								response->status == 504))
			delay = backoff_ms(response->attempts);

		if (delay < 0 ||
			(refused_ms < 0 && ++failures > conn->server.max_retries))
			break;
		response->waited_ms += counted_wait_ms(conn, group, delay);
	}

	if (attempt.rc != CURLE_OK)
		report_transport_error(conn, method, path, response, attempt.rc,
							   close_curl_error_detail(conn->curl, attempt.rc,
													   conn->errbuf));

	if (attempt.answer.data == NULL)
	{
		attempt.answer.data = MemoryContextAllocZero(attempt.answer.context, 1);
		attempt.answer.len = 0;
	}
	response->body = attempt.answer.data;
	response->body_len = attempt.answer.len;
	pfree(url);
}

/*
 * Whether a 400 is Close rejecting the values sent: its body has "errors"
 * or "field-errors" (a search Close cannot run answers {"error": ...}
 * instead).  An expired search cursor is not a value of the user's, though
 * Close words it as a field error: {"field-errors": {"cursor": "Expired
 * cursor"}} (the API sheet), so field errors on "cursor" alone are not.
 */
static bool
rejects_values(CloseResponse *response)
{
	const char *problem;
	struct json_object *root;
	struct json_object *errors;
	struct json_object *fields;
	bool		result = false;

	if (response->body == NULL || response->body_len == 0)
		return false;
	root = close_json_parse(response->body, response->body_len,
							CurrentMemoryContext, &problem);
	if (problem != NULL || close_json_kind(root) != CLOSE_JSON_OBJECT)
		return false;
	errors = close_json_object_get(root, "errors");
	fields = close_json_object_get(root, "field-errors");
	if (errors != NULL &&
		!(close_json_kind(errors) == CLOSE_JSON_ARRAY &&
		  close_json_array_length(errors) == 0 && fields != NULL))
		result = true;
	if (fields != NULL)
	{
		ListCell   *lc;

		if (close_json_kind(fields) != CLOSE_JSON_OBJECT ||
			close_json_object_members(fields) == NIL)
			result = true;
		else
			foreach(lc, close_json_object_members(fields))
				if (strcmp(((CloseJsonMember *) lfirst(lc))->key, "cursor") != 0)
					result = true;
	}
	return result;
}

/*
 * The one reporter of unexpected HTTP statuses: picks the SQLSTATE, puts
 * the API's message into the detail (naming the column of each field in
 * error when conv is given) and the request into the context.
 */
void
close_report_http_error(CloseConnection *conn, const char *method,
						const char *path, CloseResponse *response,
						CloseRowConverter *conv)
{
	char	   *remote = close_json_error_text(response->body,
											   response->body_len, conv);
	char	   *detail = remote ? printable_text(remote, strlen(remote)) : NULL;
	char	   *tried = attempts_text(response);
	long		status = response->status;

	if (tried)
		detail = detail ? psprintf("%s\n%s", detail, tried) : tried;

	if (status == 401)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("Close API rejected the credential of the user mapping for server \"%s\"",
						conn->server_name),
				 detail ? errdetail_internal("%s", detail) : 0,
				 errhint("Check the \"api_key\" or \"oauth_token\" option of the user mapping."),
				 errcontext("Close API request: %s %s", method, path)));
	if (status == 400 && rejects_values(response))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Close API request failed with HTTP status %ld", status),
				 detail ? errdetail_internal("%s", detail) : 0,
				 errcontext("Close API request: %s %s", method, path)));
	if (status == 402)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("Close API request failed with HTTP status 402"),
				 detail ? errdetail_internal("%s", detail) : 0,
				 errhint("Custom objects need a Close plan that includes them."),
				 errcontext("Close API request: %s %s", method, path)));
	if (status == 403)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("Close API refused access (HTTP status 403)"),
				 detail ? errdetail_internal("%s", detail) : 0,
				 errhint("The Close user whose \"api_key\" or \"oauth_token\" the user mapping holds may lack the permission for this resource."),
				 errcontext("Close API request: %s %s", method, path)));
	if (status == 429)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("Close API rate limit exceeded (HTTP status 429)"),
				 detail ? errdetail_internal("%s", detail) : 0,
				 response->retry_after[0]
				 ? errhint("Close asked to retry after %s seconds; the server option \"rate_limit_wait_ms\" of server \"%s\" and statement_timeout bound the wait.",
						   printable_text(response->retry_after,
										  strlen(response->retry_after)),
						   conn->server_name)
				 : errhint("The server option \"rate_limit_wait_ms\" of server \"%s\" and statement_timeout bound the wait.",
						   conn->server_name),
				 errcontext("Close API request: %s %s", method, path)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Close API request failed with HTTP status %ld", status),
			 detail ? errdetail_internal("%s", detail) : 0,
			 (status == 404 || status == 405)
			 ? errhint("Check the \"api_url\" option of server \"%s\".",
					   conn->server_name)
			 : 0,
			 errcontext("Close API request: %s %s", method, path)));
}

/* An answer whose status was fine but whose body is not what was promised. */
void
close_report_bad_answer(const char *method, const char *path,
						const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("invalid answer from the Close API"),
			 errdetail_internal("%s", problem),
			 errcontext("Close API request: %s %s", method, path)));
}

/*
 * The body of an answer parsed as JSON, owned by owner; an answer that is
 * not JSON is reported as a bad answer to the request.
 */
struct json_object *
close_parse_answer(const char *method, const char *path,
				   CloseResponse *response, MemoryContext owner)
{
	const char *problem;
	struct json_object *root = close_json_parse(response->body,
												response->body_len,
												owner, &problem);

	if (problem)
		close_report_bad_answer(method, path,
								psprintf("The body is not valid JSON: %s.", problem));
	return root;
}

/*
 * The next transfer of multi that has finished: its slot (the handle's
 * CURLOPT_PRIVATE), its result and its HTTP status.  False when none is
 * left to report.
 */
static bool
next_finished(CURLM *multi, int *slot, CURLcode *rc, long *status)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		void	   *priv;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		*slot = (int) (intptr_t) priv;
		*rc = msg->data.result;
		*status = 0;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, status);
		return true;
	}
	return false;
}

/*
 * Send up to CLOSE_MAX_CONCURRENCY requests of one method and endpoint
 * group at once, each a single attempt, within the pacing; no retries.
 * Returns how many were sent (the first ones; the rest have status 0 and
 * resend_safe set).  The caller judges each answer: a complete one is
 * used, one with resend_safe is sent again through close_http_request
 * (which retries as the request deserves), and any other is reported
 * (close_report_transport_error when transport_error is set).  The
 * handles belong to the connection entry (their connections stay alive
 * between batches); they are detached from the multi handle on any exit.
 *
 * Reads check for interrupts between transfers.  Writes do not: a cancel
 * stops every transfer (the progress callback), and the caller then logs
 * what did get written, and what may have been (may_have_acted: the
 * request went out), before it lets the cancel through.
 */
int
close_http_send_many(CloseConnection *conn, const char *method,
					 char **paths, char **bodies, int n,
					 CloseResponse *responses)
{
	Attempt    *attempts = palloc0(sizeof(Attempt) * Max(n, 1));
	bool		repeatable = request_is_repeatable(method, paths[0]);
	bool		reading = strcmp(method, "GET") == 0 ||
		(strcmp(method, "POST") == 0 && repeatable);	/* a search */
	int			asked = n;
	volatile int added = 0;
	volatile bool completed = false;
	char		group[CLOSE_GROUP_SIZE];
	ClosePaceTicket ticket;
	double		waited = 0;
	int			i;

	/* a statement whose request budget is spent stops before any wait */
	if (reading && close_budget_remaining() == 0)
		(void) close_budget_admit(true, paths[0], 1, false);
	for (i = 0; i < asked; i++)
	{
		memset(&responses[i], 0, sizeof(CloseResponse));
		responses[i].resend_safe = true;
	}
	if (conn->multi == NULL)
	{
		conn->multi = curl_multi_init();
		if (conn->multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create an HTTP multi handle")));
	}

	/*
	 * Within the pacing: wait when nothing remains, and send no more than
	 * remains; the rest are left unsent for the paced sequential path.
	 */
	endpoint_group(method, paths[0], group, sizeof(group));
	/* nor more than the statement's request budget leaves */
	if (reading && close_budget_remaining() > 0)
		n = (int) Min((int64) n, close_budget_remaining());
	(void) pace_wait(conn, group, Min(n, CLOSE_MAX_CONCURRENCY), 0, &ticket,
					 &n, &waited);
	/* counted now: no more than the budget left, so none is refused */
	n = close_budget_admit(reading, paths[0], n, true);
	/* writes: the server's cached answers go before and after them */
	if (!reading && n > 0)
		close_cache_invalidate(conn);

	PG_TRY();
	{
		int			running = 1;
		CURLcode	rc;
		long		status;

		for (i = 0; i < n; i++)
		{
			if (conn->pool[i] == NULL && (conn->pool[i] = curl_easy_init()) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not create an HTTP handle")));
			setup_handle(conn, conn->pool[i], method,
						 psprintf("%s%s", conn->server.api_url, paths[i]),
						 bodies ? utf8_text(bodies[i]) : NULL, repeatable,
						 &responses[i], &attempts[i]);
			attempts[i].ticket.number = ticket.number + i;
			attempts[i].ticket.ahead = ticket.ahead + i;
			/* one error buffer is shared: the message names no request */
			curl_easy_setopt(conn->pool[i], CURLOPT_ERRORBUFFER, NULL);
			curl_easy_setopt(conn->pool[i], CURLOPT_PRIVATE, (void *) (intptr_t) i);
			attempts[i].rc = CURLE_AGAIN;
			if (curl_multi_add_handle(conn->multi, conn->pool[i]) != CURLM_OK)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not start an HTTP request")));
			added++;
		}

		while (running > 0)
		{
			if (curl_multi_perform(conn->multi, &running) != CURLM_OK)
				break;
			if (running > 0)
			{
				pgstat_report_wait_start(CLOSE_WAIT_HTTP);
				curl_multi_poll(conn->multi, NULL, 0, 100, NULL);
				pgstat_report_wait_end();
			}
			/* out of libcurl here: an interrupt may throw */
			if (reading)
				CHECK_FOR_INTERRUPTS();
		}
		while (next_finished(conn->multi, &i, &rc, &status))
		{
			attempts[i].rc = rc;
			responses[i].status = status;
		}
		completed = true;
	}
	PG_FINALLY();
	{
		for (i = 0; i < added; i++)
			curl_multi_remove_handle(conn->multi, conn->pool[i]);
		/* given up: their answers will not be judged */
		if (!completed)
			close_pace_release(close_pace_key(conn), group, ticket.number, n);
		if (!reading && n > 0)
			close_cache_invalidate(conn);
	}
	PG_END_TRY();

	for (i = 0; i < n; i++)
	{
		CloseResponse *r = &responses[i];

		judge_attempt(conn, group, r, &attempts[i], repeatable);
		/* what only this transfer's handle knows */
		if (r->transport_error != 0)
		{
			r->may_have_acted = request_went_out(conn->pool[i]);
			r->transport_detail =
				close_curl_error_detail(conn->pool[i],
										(CURLcode) r->transport_error, "");
		}
		else if (gateway_failure(r->status))
			r->may_have_acted = true;
	}
	return n;
}

/*
 * Requests in flight, each started and collected on its own: a reader that
 * wants to use each answer as soon as it comes, and to ask for the next
 * while the others are still out (a cut search).  A flight has its own multi
 * handle and easy handles, freed with the memory context it lives in (also
 * when an error ends the statement with transfers still out).  Its
 * transfers use the connection entry's header lists between calls, so the
 * flight pins the entry (see connection.c) until it is freed.
 */
struct CloseFlight
{
	CloseConnection *conn;
	CURLM	   *multi;
	int			nslots;
	CURL	  **handles;		/* per slot, made lazily */
	bool	   *busy;			/* started, not yet collected */
	bool	   *done;			/* finished, not yet collected */
	Attempt    *attempts;
	CloseResponse **responses;	/* the caller's, per slot */
	char		group[CLOSE_GROUP_SIZE];	/* the endpoint group, for the pacing */
	uint64		key;			/* of the pacing (close_pace_key) */
	bool		reserved;		/* a ticket of the pacing is held for... */
	ClosePaceTicket reserved_ticket;	/* ...the next request to start */
	bool		repeatable;		/* its requests only read */
	int			in_flight;
	bool		pinned;			/* holds a pin on conn */
	MemoryContextCallback cleanup;
};

/* Where what still arrives goes once a flight is given up. */
static size_t
discard_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/*
 * Give up the transfer of a busy slot: it gets no answer, so it leaves the
 * pacing's count of requests in flight, and nothing may be written to the
 * caller's buffers from now on (they may be gone already).
 */
static void
drop_transfer(CloseFlight *flight, int slot)
{
	if (flight->group[0])
		close_pace_release(flight->key, flight->group,
						   flight->attempts[slot].ticket.number, 1);
	curl_easy_setopt(flight->handles[slot], CURLOPT_WRITEFUNCTION, discard_data);
	curl_easy_setopt(flight->handles[slot], CURLOPT_HEADERFUNCTION, discard_data);
	curl_multi_remove_handle(flight->multi, flight->handles[slot]);
	flight->busy[slot] = false;
	flight->done[slot] = false;
}

static void
flight_cleanup(void *arg)
{
	CloseFlight *flight = (CloseFlight *) arg;
	int			i;

	/* what is still out, or was let go but not sent, gets no answer */
	for (i = 0; i < flight->nslots; i++)
		if (flight->busy[i])
			drop_transfer(flight, i);
	if (flight->reserved && flight->group[0])
		close_pace_release(flight->key, flight->group,
						   flight->reserved_ticket.number, 1);
	flight->in_flight = 0;
	flight->reserved = false;

	for (i = 0; i < flight->nslots; i++)
	{
		if (flight->handles[i] == NULL)
			continue;
		curl_easy_cleanup(flight->handles[i]);
		flight->handles[i] = NULL;
	}
	if (flight->multi)
		curl_multi_cleanup(flight->multi);
	flight->multi = NULL;
	/* no transfer refers to the entry's headers any more */
	if (flight->pinned)
		close_unpin_connection(flight->conn);
	flight->pinned = false;
}

CloseFlight *
close_flight_create(CloseConnection *conn, MemoryContext cxt, int nslots)
{
	CloseFlight *flight = MemoryContextAllocZero(cxt, sizeof(CloseFlight));

	flight->conn = conn;
	flight->key = close_pace_key(conn);
	flight->nslots = Min(Max(nslots, 1), CLOSE_MAX_CONCURRENCY);
	flight->handles = MemoryContextAllocZero(cxt, sizeof(CURL *) * flight->nslots);
	flight->busy = MemoryContextAllocZero(cxt, sizeof(bool) * flight->nslots);
	flight->done = MemoryContextAllocZero(cxt, sizeof(bool) * flight->nslots);
	flight->attempts = MemoryContextAllocZero(cxt, sizeof(Attempt) * flight->nslots);
	flight->responses = MemoryContextAllocZero(cxt,
											   sizeof(CloseResponse *) * flight->nslots);
	flight->cleanup.func = flight_cleanup;
	flight->cleanup.arg = flight;
	MemoryContextRegisterResetCallback(cxt, &flight->cleanup);
	/* its transfers use conn's headers until the flight is freed */
	close_pin_connection(conn);
	flight->pinned = true;
	flight->multi = curl_multi_init();
	if (flight->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create an HTTP multi handle")));
	return flight;
}

/*
 * Whether a request could start now: a slot is free and the pacing allows
 * one more (counting those in flight).
 */
bool
close_flight_can_start(CloseFlight *flight, const char *method,
					   const char *path)
{
	int			slot;
	double		pause;
	char		group[CLOSE_GROUP_SIZE];

	for (slot = 0; slot < flight->nslots; slot++)
		if (!flight->busy[slot])
			break;
	if (slot == flight->nslots)
		return false;
	/* within the statement's request budget */
	if (request_reads(method, path) && close_budget_remaining() == 0)
		return false;

	/*
	 * Within the pacing: a yes holds a ticket for the next request, so that
	 * another backend cannot take it before close_flight_start does.
	 */
	endpoint_group(method, path, group, sizeof(group));
	if (flight->reserved && strcmp(group, flight->group) == 0)
		return true;
	strlcpy(flight->group, group, sizeof(flight->group));
	flight->reserved = close_pace_take(flight->conn, flight->group, 1,
									   &flight->reserved_ticket, &pause) > 0;
	return flight->reserved;
}

/*
 * Start a request in a free slot and return the slot, or -1 when
 * close_flight_can_start would say no (the caller then sends it alone
 * through close_http_request, which waits as it should).  The answer's body
 * goes to CurrentMemoryContext; *response is filled when the slot is
 * collected by close_flight_wait.
 */
int
close_flight_start(CloseFlight *flight, const char *method, const char *path,
				   const char *body, CloseResponse *response)
{
	int			slot;

	if (!close_flight_can_start(flight, method, path))
		return -1;
	(void) close_budget_admit(request_reads(method, path), path, 1, false);
	for (slot = 0; slot < flight->nslots; slot++)
		if (!flight->busy[slot])
			break;

	if (flight->handles[slot] == NULL &&
		(flight->handles[slot] = curl_easy_init()) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create an HTTP handle")));
	memset(response, 0, sizeof(CloseResponse));
	flight->repeatable = request_is_repeatable(method, path);
	setup_handle(flight->conn, flight->handles[slot], method,
				 psprintf("%s%s", flight->conn->server.api_url, path),
				 utf8_text(body), flight->repeatable, response,
				 &flight->attempts[slot]);
	curl_easy_setopt(flight->handles[slot], CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(flight->handles[slot], CURLOPT_PRIVATE, (void *) (intptr_t) slot);
	flight->attempts[slot].rc = CURLE_AGAIN;
	flight->attempts[slot].ticket = flight->reserved_ticket;
	flight->reserved = false;
	flight->responses[slot] = response;
	if (curl_multi_add_handle(flight->multi, flight->handles[slot]) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not start an HTTP request")));
	flight->busy[slot] = true;
	flight->done[slot] = false;
	flight->in_flight++;
	return slot;
}

/*
 * Wait until a request in flight has finished; return its slot (its
 * response filled and judged as close_http_send_many does), or -1 when
 * none is in flight.  Interrupts are checked while waiting.
 */
int
close_flight_wait(CloseFlight *flight)
{
	for (;;)
	{
		CURLcode	rc;
		long		status;
		int			running;
		int			slot;

		for (slot = 0; slot < flight->nslots; slot++)
		{
			CloseResponse *response;
			Attempt    *attempt;

			if (!flight->busy[slot] || !flight->done[slot])
				continue;
			response = flight->responses[slot];
			attempt = &flight->attempts[slot];
			curl_multi_remove_handle(flight->multi, flight->handles[slot]);
			flight->busy[slot] = false;
			flight->done[slot] = false;
			flight->in_flight--;

			judge_attempt(flight->conn, flight->group, response,
						  attempt, flight->repeatable);
			return slot;
		}
		if (flight->in_flight == 0)
			return -1;

		if (curl_multi_perform(flight->multi, &running) != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("could not run the HTTP requests in flight")));
		while (next_finished(flight->multi, &slot, &rc, &status))
		{
			flight->attempts[slot].rc = rc;
			flight->responses[slot]->status = status;
			flight->done[slot] = true;
		}
		if (running > 0)
		{
			bool		any_done = false;

			for (slot = 0; slot < flight->nslots; slot++)
				any_done |= flight->done[slot];
			if (!any_done)
			{
				pgstat_report_wait_start(CLOSE_WAIT_HTTP);
				curl_multi_poll(flight->multi, NULL, 0, 100, NULL);
				pgstat_report_wait_end();
			}
		}
		/* out of libcurl here: an interrupt may throw (the cleanup detaches) */
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Give up the requests in flight without waiting for their answers (a scan
 * that stops before it reads them): their transfers are dropped, as at the
 * flight's end, and the flight can start others.  Returns how many of them
 * had gone out (Close may have received them), and sets *unsent to how many
 * had not, so that a caller counts only what reached Close, whether it
 * counts requests when it starts them or when it collects their answers.
 */
int
close_flight_abandon(CloseFlight *flight, int *unsent)
{
	int			went_out = 0;
	int			i;

	*unsent = 0;

	for (i = 0; i < flight->nslots; i++)
	{
		if (!flight->busy[i])
			continue;
		if (request_went_out(flight->handles[i]))
			went_out++;
		else
			(*unsent)++;
		drop_transfer(flight, i);
	}
	flight->in_flight = 0;
	return went_out;
}

/* Let the requests in flight move on, without waiting. */
void
close_flight_progress(CloseFlight *flight)
{
	int			running;

	if (flight->in_flight > 0)
		(void) curl_multi_perform(flight->multi, &running);
}

/* Report the transport failure of a request close_http_send_many sent. */
void
close_report_transport_error(CloseConnection *conn, const char *method,
							 const char *path, CloseResponse *response)
{
	conn->errbuf[0] = '\0';
	if (response->transport_error == CURLE_ABORTED_BY_CALLBACK)
	{
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling Close API request due to a pending interrupt"),
				 errcontext("Close API request: %s %s", method, path)));
	}
	if (response->transport_error == CURLE_WRITE_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Close API response is larger than %d bytes, or could not be buffered",
						conn->server.max_response_bytes),
				 errhint("The request reached Close and may have taken effect; check before repeating it."),
				 errcontext("Close API request: %s %s", method, path)));
	report_transport_error(conn, method, path, response,
						   (CURLcode) response->transport_error,
						   response->transport_detail
						   ? response->transport_detail : "");
}
