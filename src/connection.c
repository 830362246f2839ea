/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  The per-user-mapping cache of HTTP sessions.  Each entry owns one
 *		  libcurl easy handle, which keeps its connection to the API alive
 *		  across statements, and the request headers that carry the
 *		  credential.  ALTER SERVER and ALTER USER MAPPING invalidate the
 *		  entries they concern through syscache callbacks; an invalidated
 *		  entry is rebuilt (from the catalogs, not the caller's copies) the
 *		  next time it is asked for, and freed at the end of the transaction
 *		  if nothing asked; never while a request may be using it.
 *
 * Requests that stay in flight between calls (a CloseFlight's: a cut
 * search's parts) use the entry's header lists and pacers: their owner
 * pins the entry (close_pin_connection) and unpins it when it is freed,
 * also on error.  A pinned entry is neither rebuilt nor freed: until its
 * last pin goes, every request of the session keeps the options it had
 * (as postgres_fdw keeps a connection whose server changed until the
 * transaction ends); the first close_get_connection after that rebuilds
 * it, or the end of the transaction frees it.  Requests that end within
 * the call that sent them (close_http_request, close_http_send_many: lead
 * pages fetched ahead, batch writes) need no pin: nothing between their
 * start and their end can ask for an entry.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_user_mapping.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "close_fdw.h"
#include "compat.h"

static HTAB *ConnectionHash = NULL;

static void close_release_entry(CloseConnection *entry);
static void close_build_entry(CloseConnection *entry, UserMapping *user);
static void close_inval_callback(Datum arg, int cacheid, uint32 hashvalue);
static void close_xact_release(XactEvent event, void *arg);

/*
 * A PUBLIC user mapping's credential is nobody's own: like postgres_fdw's
 * password_required, only a superuser may use it; every other role needs a
 * mapping of its own.
 */
static void
check_own_credential(UserMapping *user)
{
	HeapTuple	tuple = SearchSysCache1(USERMAPPINGOID,
										ObjectIdGetDatum(user->umid));
	Oid			umuser;

	/* dropped since the statement began (by this or another session) */
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("user mapping not found for user \"%s\", server \"%s\"",
						GetUserNameFromId(user->userid, false),
						GetForeignServer(user->serverid)->servername),
				 errdetail("The user mapping was dropped while the statement ran.")));
	umuser = ((Form_pg_user_mapping) GETSTRUCT(tuple))->umuser;
	ReleaseSysCache(tuple);

	if (!OidIsValid(umuser) && !superuser_arg(user->userid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" has no user mapping of its own for server \"%s\"",
						GetUserNameFromId(user->userid, false),
						GetForeignServer(user->serverid)->servername),
				 errdetail("The PUBLIC user mapping's credential serves superusers only."),
				 errhint("CREATE USER MAPPING FOR %s SERVER %s OPTIONS (api_key '...').",
						 quote_identifier(GetUserNameFromId(user->userid, false)),
						 quote_identifier(GetForeignServer(user->serverid)->servername))));
}

/*
 * Return the session for a user mapping, building it (or rebuilding it
 * after its options changed) as needed.
 */
CloseConnection *
close_get_connection(UserMapping *user)
{
	CloseConnection *entry;
	bool		found;

	check_own_credential(user);
	/* the shared pacing and statistics, before any request */
	close_shared_attach();

	if (ConnectionHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CloseConnection);
		ConnectionHash = hash_create("close_fdw connections", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
									  close_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID,
									  close_inval_callback, (Datum) 0);
		RegisterXactCallback(close_xact_release, NULL);
	}

	entry = hash_search(ConnectionHash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		/* zero everything but the key, so that release is always safe */
		memset(((char *) entry) + sizeof(Oid), 0,
			   sizeof(CloseConnection) - sizeof(Oid));
	}

	if (entry->pins > 0)
	{
		/* requests in flight use it as it is: a change waits for them */
		if (entry->curl == NULL)
			elog(ERROR, "close_fdw connection pinned before it was made");
	}
	else if (entry->curl == NULL || entry->invalidated)
	{
		close_release_entry(entry);
		close_build_entry(entry, user);
	}
	return entry;
}

/*
 * Keep the entry as it is while requests that use it are in flight; each
 * pin is undone by close_unpin_connection, also on error (from a memory
 * context reset callback: nothing here may throw).
 */
void
close_pin_connection(CloseConnection *conn)
{
	conn->pins++;
}

/*
 * The last pin gone, an entry whose server or mapping changed meanwhile is
 * rebuilt by the next close_get_connection, or freed at the end of the
 * transaction (the next one, when the flight outlived the end of its own).
 * It is not freed here: a caller may still hold the entry while a flight
 * of another scan goes.
 */
void
close_unpin_connection(CloseConnection *conn)
{
	Assert(conn->pins > 0);
	if (conn->pins > 0)
		conn->pins--;
}

/* Free everything an entry owns; safe on a partly built entry. */
static void
close_release_entry(CloseConnection *entry)
{
	int			i;

	for (i = 0; i < CLOSE_MAX_CONCURRENCY; i++)
	{
		if (entry->pool[i])
			curl_easy_cleanup(entry->pool[i]);
		entry->pool[i] = NULL;
	}
	if (entry->multi)
		curl_multi_cleanup(entry->multi);
	entry->multi = NULL;
	if (entry->curl)
		curl_easy_cleanup(entry->curl);
	entry->curl = NULL;
	if (entry->headers)
		curl_slist_free_all(entry->headers);
	entry->headers = NULL;
	if (entry->json_headers)
		curl_slist_free_all(entry->json_headers);
	entry->json_headers = NULL;
	if (entry->override_headers)
		curl_slist_free_all(entry->override_headers);
	entry->override_headers = NULL;
	if (entry->server_name)
		pfree(entry->server_name);
	entry->server_name = NULL;
	if (entry->server.api_url)
		pfree(entry->server.api_url);
	entry->server.api_url = NULL;
	if (entry->server.ca_file)
		pfree(entry->server.ca_file);
	entry->server.ca_file = NULL;
	entry->invalidated = false;
}

/*
 * Append one header line to a list the entry owns (the list pointer is
 * stored back at once, so an error leaves nothing unowned).
 */
static void
append_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *appended = curl_slist_append(*list, line);

	if (appended == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	*list = appended;
}

/*
 * Make the entry's handle and headers.  Anything allocated is attached to
 * the entry before the next thing that can fail, so an error leaves an
 * entry that close_release_entry frees on the next call.
 */
static void
close_build_entry(CloseConnection *entry, UserMapping *user)
{
	ForeignServer *server;
	CloseServerOptions sopts;
	CloseUserOptions uopts;
	StringInfoData auth;

	/*
	 * Read the server and the mapping afresh: the caller's copies may predate
	 * the very change that invalidated the entry.
	 */
	server = GetForeignServer(user->serverid);
	user = GetUserMapping(user->userid, user->serverid);
	close_get_server_options(server, &sopts);
	close_get_user_options(user, &uopts);
	if (uopts.api_key == NULL && uopts.oauth_token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("user mapping for server \"%s\" has no credential",
						server->servername),
				 errhint("Set \"api_key\" or \"oauth_token\" with ALTER USER MAPPING.")));

	entry->server_name = MemoryContextStrdup(TopMemoryContext,
											 server->servername);
	entry->server = sopts;
	entry->server.api_url = MemoryContextStrdup(TopMemoryContext, sopts.api_url);
	entry->server.ca_file = sopts.ca_file
		? MemoryContextStrdup(TopMemoryContext, sopts.ca_file) : NULL;
	entry->serverid = server->serverid;
	entry->server_hashvalue =
		GetSysCacheHashValue1(FOREIGNSERVEROID,
							  ObjectIdGetDatum(server->serverid));
	entry->mapping_hashvalue =
		GetSysCacheHashValue1(USERMAPPINGOID, ObjectIdGetDatum(user->umid));

	/*
	 * The credential goes into a header built here, once: Basic with the key
	 * as user name and an empty password, or Bearer.
	 */
	initStringInfo(&auth);
	if (uopts.api_key)
	{
		StringInfoData plain;
		int			enclen;

		initStringInfo(&plain);
		appendStringInfo(&plain, "%s:", uopts.api_key);
		enclen = pg_b64_enc_len(plain.len);
		appendStringInfoString(&auth, "Authorization: Basic ");
		enlargeStringInfo(&auth, enclen + 1);
		auth.len += close_base64_encode(plain.data, plain.len,
										auth.data + auth.len, enclen);
		auth.data[auth.len] = '\0';
		explicit_bzero(plain.data, plain.len);
		pfree(plain.data);
	}
	else
		appendStringInfo(&auth, "Authorization: Bearer %s", uopts.oauth_token);

	PG_TRY();
	{
		struct curl_slist **lists[3] = {&entry->headers, &entry->json_headers,
		&entry->override_headers};
		int			i;

		for (i = 0; i < 3; i++)
		{
			append_header(lists[i], "Accept: application/json");
			append_header(lists[i], auth.data);
			/* an empty Expect stops curl from waiting for "100 Continue" */
			append_header(lists[i], "Expect:");
			append_header(lists[i], "x-tz-offset: 0");
		}
		append_header(&entry->json_headers, "Content-Type: application/json");
		append_header(&entry->override_headers, "Content-Type: application/json");
		append_header(&entry->override_headers, "x-http-method-override: GET");
	}
	PG_FINALLY();
	{
		explicit_bzero(auth.data, auth.len);
		pfree(auth.data);
	}
	PG_END_TRY();

	entry->curl = curl_easy_init();
	if (entry->curl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create an HTTP handle")));
}

/*
 * A server or user mapping changed: mark the entries that use it, or all
 * of them when the callback does not say which.
 */
static void
close_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	CloseConnection *entry;

	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (CloseConnection *) hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID &&
			 entry->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID &&
			 entry->mapping_hashvalue == hashvalue))
			entry->invalidated = true;
	}
}

/*
 * At the end of a transaction no request is under way: free the sessions
 * whose server or mapping changed or went away, so that a dropped
 * mapping's credential does not stay in memory.  An entry a flight still
 * pins (an aborted statement's, freed after this) waits for the next end.
 */
static void
close_xact_release(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS scan;
	CloseConnection *entry;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_PARALLEL_ABORT)
		return;
	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (CloseConnection *) hash_seq_search(&scan)) != NULL)
	{
		/* a pinned one: a flight not freed yet (on abort, the failed portal's) */
		if (!entry->invalidated || entry->pins > 0)
			continue;
		close_release_entry(entry);
		hash_search(ConnectionHash, &entry->umid, HASH_REMOVE, NULL);
	}
}
