/*-------------------------------------------------------------------------
 *
 * http.c
 *		  Requests to the Close API: URL building and escaping, the one place
 *		  that sets up a libcurl handle, timeouts, cancellation, and the one
 *		  reporter that turns every remote failure into an error.
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
	bool		too_large;
	bool		out_of_memory;
} BodyBuffer;

static size_t
write_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	BodyBuffer *buf = (BodyBuffer *) userdata;
	size_t		n = size * nmemb;

	if (buf->len + n > CLOSE_MAX_RESPONSE_BYTES)
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

/* Append "?name=value" or "&name=value", the value percent-encoded. */
void
close_append_query_param(StringInfo buf, const char *name, const char *value)
{
	appendStringInfoChar(buf, strchr(buf->data, '?') ? '&' : '?');
	appendStringInfoString(buf, name);
	appendStringInfoChar(buf, '=');
	append_escaped(buf, value);
}

/* Append a path segment, percent-encoded, and the trailing slash. */
void
close_append_path_segment(StringInfo buf, const char *value)
{
	append_escaped(buf, value);
	appendStringInfoChar(buf, '/');
}

/*
 * Remote text made fit for a message: valid in the server encoding, no
 * control characters, and not too long.
 */
static char *
printable_text(const char *text, size_t len)
{
	size_t		maxlen = 1000;
	char	   *result;
	size_t		i;

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
	for (i = 0; i < len; i++)
		if ((unsigned char) result[i] < 0x20 && result[i] != '\n')
			result[i] = ' ';
	return result;
}

/*
 * Send one request and return the answer, whatever its status.  body is
 * JSON text or NULL.  Transport failures, cancellation and oversized bodies
 * are errors here; the caller decides which statuses it accepts and reports
 * the rest with close_report_http_error.  The answer's body is allocated in
 * CurrentMemoryContext.
 *
 * libcurl repeats a request by itself, once, when a reused keep-alive
 * connection turns out to be closed before any answer arrived.  That is
 * harmless for GET, PUT (the same change again) and DELETE (a 404 the
 * second time), but a POST may already have created a record, so a POST
 * always goes out on a fresh connection, which libcurl never retries.
 */
void
close_http_request(CloseConnection *conn, const char *method,
				   const char *path, const char *body,
				   CloseResponse *response)
{
	CURL	   *curl = conn->curl;
	BodyBuffer	answer;
	char	   *url;
	CURLcode	rc;

	memset(response, 0, sizeof(*response));
	memset(&answer, 0, sizeof(answer));
	answer.context = CurrentMemoryContext;
	url = psprintf("%s%s", conn->server.api_url, path);
	conn->errbuf[0] = '\0';

	/* reset keeps the live connection; then safe defaults, then ours */
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	close_curl_limit_protocols(curl);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) conn->server.timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
					 (long) conn->server.connect_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, CLOSE_USER_AGENT);
	curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, conn->errbuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_interrupts);
	curl_easy_setopt(curl, CURLOPT_URL, url);

	if (body)
	{
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, conn->json_headers);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) strlen(body));
	}
	else
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, conn->headers);
	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") == 0)
	{
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
	}
	else
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);

	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response->status);

	if (rc == CURLE_ABORTED_BY_CALLBACK)
	{
		/* the user's cancel or statement_timeout, with its own SQLSTATE */
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling Close API request due to a pending interrupt"),
				 errcontext("Close API request: %s %s", method, path)));
	}
	if (answer.too_large)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Close API response is larger than %d bytes",
						CLOSE_MAX_RESPONSE_BYTES),
				 errcontext("Close API request: %s %s", method, path)));
	if (answer.out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not buffer a Close API response of %zu bytes.",
						   answer.len),
				 errcontext("Close API request: %s %s", method, path)));
	if (rc != CURLE_OK)
	{
		bool		connecting = (rc == CURLE_COULDNT_RESOLVE_HOST ||
								  rc == CURLE_COULDNT_RESOLVE_PROXY ||
								  rc == CURLE_COULDNT_CONNECT ||
								  rc == CURLE_SSL_CONNECT_ERROR ||
								  rc == CURLE_PEER_FAILED_VERIFICATION ||
								  (rc == CURLE_OPERATION_TIMEDOUT &&
								   response->status == 0 && answer.len == 0));

		if (rc == CURLE_OPERATION_TIMEDOUT)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("Close API request timed out"),
					 errdetail_internal("%s", conn->errbuf),
					 strcmp(method, "GET") != 0
					 ? errhint("The request may have reached Close and taken effect; check before repeating it.")
					 : errhint("The server options \"timeout_ms\" and \"connect_timeout_ms\" of server \"%s\" set the limits.",
							   conn->server_name),
					 errcontext("Close API request: %s %s", method, path)));
		if (connecting)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not connect to the Close API at server \"%s\": %s",
							conn->server_name, curl_easy_strerror(rc)),
					 conn->errbuf[0] ? errdetail_internal("%s", conn->errbuf) : 0,
					 errcontext("Close API request: %s %s", method, path)));
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not read from the Close API at server \"%s\": %s",
						conn->server_name, curl_easy_strerror(rc)),
				 conn->errbuf[0] ? errdetail_internal("%s", conn->errbuf) : 0,
				 strcmp(method, "GET") != 0
				 ? errhint("The request may have reached Close and taken effect; check before repeating it.")
				 : 0,
				 errcontext("Close API request: %s %s", method, path)));
	}

	if (answer.data == NULL)
	{
		answer.data = MemoryContextAllocZero(answer.context, 1);
		answer.len = 0;
	}
	response->body = answer.data;
	response->body_len = answer.len;
	pfree(url);
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
	long		status = response->status;

	if (status == 401)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("Close API rejected the credential of the user mapping for server \"%s\"",
						conn->server_name),
				 detail ? errdetail_internal("%s", detail) : 0,
				 errhint("Check the \"api_key\" or \"oauth_token\" option of the user mapping."),
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
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Close API rate limit exceeded (HTTP status 429)"),
				 detail ? errdetail_internal("%s", detail) : 0,
				 response->retry_after[0]
				 ? errhint("Close asked to retry after %s seconds.",
						   printable_text(response->retry_after,
										  strlen(response->retry_after)))
				 : 0,
				 errcontext("Close API request: %s %s", method, path)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("Close API request failed with HTTP status %ld", status),
			 detail ? errdetail_internal("%s", detail) : 0,
			 status == 402
			 ? errhint("Custom objects need a Close plan that includes them.")
			 : (status == 404 || status == 405)
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
