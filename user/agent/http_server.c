// SPDX-License-Identifier: MIT
/* http_server.c - the agent's HTTP server on libmicrohttpd.
 *
 * We bind the listening socket ourselves: bind() then tells exactly why an
 * address cannot be used (in use, not ours, needs privileges), which MHD
 * would only log. MHD never sees the listening socket: the gate
 * (http_gate.c) accepts, waits for each complete request head within an
 * absolute deadline, and only then hands the connection to MHD
 * (MHD_add_connection). Each handed-over connection gets a thread, so a
 * handler collecting for ?seconds=N does not hold up /metrics, while idle or
 * trickling sockets cost no thread at all. Every response closes its
 * connection: a kept-alive connection would wait for its next head on an
 * MHD thread, with only an idle timeout that any byte resets.
 *
 * Every request is answered on the access handler's first call (headers
 * received): GET and HEAD carry no body, and for anything else answering
 * early makes MHD close the connection instead of reading an upload.
 */
#include "agent/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/http_gate.h"

#define HTTP_DEFAULT_ADDRESS "127.0.0.1"
#define HTTP_DEFAULT_MAX_CONNECTIONS 64
#define HTTP_DEFAULT_TIMEOUT_S 30
#define HTTP_DEFAULT_MAX_PENDING 512
#define HTTP_DEFAULT_MAX_PENDING_PER_ADDR 128
#define HTTP_DEFAULT_HEAD_TIMEOUT_S 10
/* A request head (line + headers) longer than this is refused (431) before
 * MHD sees it; it must fit MHD's buffers in HTTP_CONNECTION_MEMORY. */
#define HTTP_MAX_HEAD_BYTES (16 * 1024)
/* File descriptors kept for everything else the agent opens (BPF, perf
 * events, the database, /proc) when sizing RLIMIT_NOFILE. */
#define HTTP_FD_HEADROOM 1024
/* Per-connection memory: request line, headers and MHD's buffers. A longer
 * URL or header set is refused by MHD (414 / 431). */
#define HTTP_CONNECTION_MEMORY (64 * 1024)
#define HTTP_MAX_PARAMS 64
#define HTTP_MAX_VALUE_LEN 4096
/* How much of an unknown path a 404 echoes back. */
#define HTTP_MAX_ECHOED_PATH 200
/* The gate drains the backlog in batches; a flood of connects must not
 * fill it between two batches and drop a health check's SYN. */
#define HTTP_LISTEN_BACKLOG 1024
#define TEXT_PLAIN "text/plain; charset=utf-8"

struct http_query {
	const char *names[HTTP_MAX_PARAMS];  /* decoded names (MHD's, live for the request) */
	const char *values[HTTP_MAX_PARAMS]; /* decoded values ("" when absent) */
	size_t count;                        /* parameters stored */
	int status;                          /* 0, or 400 when the query broke a limit */
	char error[160];                     /* the 400's message */
};

struct server_route {
	char *path;              /* exact path (owned copy) */
	http_handler_fn handler; /* called for GET/HEAD on path */
	void *ctx;               /* handler's context */
	bool may_block;          /* in opts.blocking_paths: counts against their share */
	bool public_page;        /* in opts.public_paths: no token needed */
};

struct http_server {
	struct MHD_Daemon *daemon;    /* running daemon (no listening socket of its own) */
	struct http_gate *gate;       /* accepts and waits for request heads */
	int listen_fd;                /* our listening socket (-1 none) */
	unsigned max_connections;     /* connections MHD may hold at once */
	unsigned active;              /* connections MHD holds now (atomic) */
	unsigned blocking;            /* requests of may_block routes in progress (atomic) */
	unsigned max_blocking;        /* their limit: max_connections less a few kept
				       * for quick routes (/healthz, /metrics) */
	uint64_t refused_busy;        /* MHD_add_connection failures (atomic) */
	struct server_route *routes;  /* nroutes copies */
	size_t nroutes;               /* number of routes */
	char *token;                  /* required bearer token, or NULL */
	size_t token_len;             /* its length */
	char *route_list;             /* "/a, /b, ..." for 404 messages */
	uint16_t port;                /* port bound */
	int starting;                 /* 1 while MHD_start_daemon runs (atomic) */
	char start_log[256];          /* MHD's last message while starting */
};

const char *http_query__get(const struct http_query *q, const char *name)
{
	if (!q || !name)
		return NULL;
	for (size_t i = 0; i < q->count; i++)
		if (!strcmp(q->names[i], name))
			return q->values[i];
	return NULL;
}

size_t http_query__count(const struct http_query *q)
{
	return q ? q->count : 0;
}

const char *http_query__name(const struct http_query *q, size_t i)
{
	return q && i < q->count ? q->names[i] : NULL;
}

const char *http_query__value(const struct http_query *q, size_t i)
{
	return q && i < q->count ? q->values[i] : NULL;
}

void http_response__error(struct http_response *r, int status, const char *fmt, ...)
{
	struct strbuf raw = STRBUF_INIT;
	va_list ap;
	r->status = status;
	r->content_type = TEXT_PLAIN;
	r->content_encoding = NULL;
	r->content_disposition = NULL;
	strbuf__reset(&r->body);
	va_start(ap, fmt);
	strbuf__vprintf(&raw, fmt, ap);
	va_end(ap);
	/* Messages quote decoded parameters: a CR, LF or other control byte in
	 * them is shown escaped, so a body stays one line a terminal or log
	 * shows as it is. */
	for (size_t i = 0; i < raw.len; i++) {
		unsigned char c = (unsigned char)raw.data[i];
		if (c == '\r')
			strbuf__puts(&r->body, "\\r");
		else if (c == '\n')
			strbuf__puts(&r->body, "\\n");
		else if (c == '\t')
			strbuf__puts(&r->body, "\\t");
		else if (c < 0x20 || c == 0x7f)
			strbuf__printf(&r->body, "\\x%02x", c);
		else
			strbuf__putc(&r->body, (char)c);
	}
	if (strbuf__error(&raw))
		strbuf__puts(&r->body, "(message lost: out of memory)");
	strbuf__release(&raw);
	strbuf__putc(&r->body, '\n');
}

/* ---- query strings ---- */

static void query_fail(struct http_query *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void query_fail(struct http_query *q, const char *fmt, ...)
{
	va_list ap;
	q->status = 400;
	va_start(ap, fmt);
	vsnprintf(q->error, sizeof(q->error), fmt, ap);
	va_end(ap);
}

/* Copies at most max bytes of s into out as printable ASCII ('?' for the
 * rest), so user input echoed in a message stays one harmless line. */
static void printable(char *out, size_t outlen, const char *s, size_t max)
{
	size_t n = 0;
	for (; s && *s && n < max && n + 4 < outlen; s++)
		out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (s && *s && n + 4 <= outlen) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	if (outlen)
		out[n < outlen ? n : outlen - 1] = '\0';
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
				     size_t key_size, const char *value, size_t value_size)
{
	struct http_query *q = cls;
	char shown[48];
	(void)kind;
	if (!key)
		return MHD_YES;
	printable(shown, sizeof(shown), key, 32);
	if (q->count == HTTP_MAX_PARAMS) {
		query_fail(q, "too many query parameters (at most %d)", HTTP_MAX_PARAMS);
		return MHD_NO;
	}
	if (key_size > HTTP_MAX_VALUE_LEN || value_size > HTTP_MAX_VALUE_LEN) {
		query_fail(q, "query parameter '%s' is too long (at most %d bytes)", shown,
			   HTTP_MAX_VALUE_LEN);
		return MHD_NO;
	}
	/* An encoded NUL (%00) would make the value differ from what C sees. */
	if (strlen(key) != key_size || (value && strlen(value) != value_size)) {
		query_fail(q, "query parameter '%s' contains a NUL byte", shown);
		return MHD_NO;
	}
	/* Which of two values would count is a guess a client should not have
	 * to make (and a filter could be dodged with it): refuse. */
	for (size_t i = 0; i < q->count; i++)
		if (!strcmp(q->names[i], key)) {
			query_fail(q, "query parameter '%s' is given twice", shown);
			return MHD_NO;
		}
	q->names[q->count] = key;
	q->values[q->count] = value ? value : "";
	q->count++;
	return MHD_YES;
}

/* ---- authentication ---- */

/* Compares in time that depends only on the expected token's length. */
static bool token_matches(const char *expected, size_t expected_len, const char *given)
{
	size_t given_len = strlen(given);
	unsigned char diff = (unsigned char)(given_len != expected_len);
	for (size_t i = 0; i < expected_len; i++) {
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
		diff |= g ^ (unsigned char)expected[i];
	}
	return diff == 0;
}

static bool authorized(const struct http_server *s, struct MHD_Connection *conn)
{
	if (!s->token)
		return true;
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);
	if (!auth || strncasecmp(auth, "Bearer ", 7))
		return false;
	auth += 7;
	while (*auth == ' ')
		auth++;
	return token_matches(s->token, s->token_len, auth);
}

/* ---- responses ---- */

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_response *r,
				     const char *extra_name, const char *extra_value)
{
	struct MHD_Response *resp;
	if (strbuf__error(&r->body))
		http_response__error(r, 500, "out of memory building the response");
	if (r->status < 100 || r->status > 599)
		r->status = 500;
	if (r->body.len) {
		resp = MHD_create_response_from_buffer_with_free_callback(r->body.len, r->body.data,
									   free);
		if (resp) /* MHD owns the bytes now */
			r->body = (struct strbuf)STRBUF_INIT;
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				r->content_type ? r->content_type : TEXT_PLAIN);
	if (r->content_encoding)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
					r->content_encoding);
	if (r->content_disposition)
		MHD_add_response_header(resp, "Content-Disposition", r->content_disposition);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				r->cache_control ? r->cache_control : "no-store");
	if (r->csp)
		MHD_add_response_header(resp, "Content-Security-Policy", r->csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (extra_name)
		MHD_add_response_header(resp, extra_name, extra_value);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static const struct server_route *find_route(const struct http_server *s, const char *path)
{
	for (size_t i = 0; i < s->nroutes; i++)
		if (!strcmp(s->routes[i].path, path))
			return &s->routes[i];
	return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	struct http_server *s = cls;
	struct http_response r = { .status = 200, .content_type = TEXT_PLAIN };
	const char *extra_name = NULL, *extra_value = NULL;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	/* A second call means a body is arriving after our answer: drop it. */
	if (*req_cls)
		return MHD_NO;
	*req_cls = s;

	const struct server_route *route = find_route(s, url);
	if (!(route && route->public_page) && !authorized(s, conn)) {
		http_response__error(&r, 401, "unauthorized: send 'Authorization: Bearer <token>'");
		extra_name = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
		extra_value = "Bearer realm=\"dynoprof\"";
		goto send;
	}
	if (!route) {
		char shown[HTTP_MAX_ECHOED_PATH + 8];
		printable(shown, sizeof(shown), url, HTTP_MAX_ECHOED_PATH);
		http_response__error(&r, 404, "not found: %s; try %s", shown, s->route_list);
		goto send;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		char shown[40];
		printable(shown, sizeof(shown), method, 32);
		http_response__error(&r, 405, "method %s not allowed on %s: use GET", shown,
				     route->path);
		extra_name = MHD_HTTP_HEADER_ALLOW;
		extra_value = "GET, HEAD";
		goto send;
	}
	if (route->may_block) {
		/* Counted until the response is sent (on_completed): a client that
		 * does not read holds its slot as long as a collection does. */
		if (__atomic_add_fetch(&s->blocking, 1, __ATOMIC_ACQ_REL) > s->max_blocking) {
			__atomic_sub_fetch(&s->blocking, 1, __ATOMIC_ACQ_REL);
			__atomic_add_fetch(&s->refused_busy, 1, __ATOMIC_RELAXED);
			http_response__error(&r, 503, "busy: %u requests to %s and other "
					     "long-running routes in progress: retry",
					     s->max_blocking, route->path);
			goto send;
		}
		*req_cls = &s->blocking;
	}
	struct http_query *q = calloc(1, sizeof(*q));
	if (!q) {
		http_response__error(&r, 503, "out of memory");
		goto send;
	}
	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, collect_param, q);
	if (q->status)
		http_response__error(&r, q->status, "%s", q->error);
	else
		route->handler(route->ctx, q, &r);
	free(q);
send:;
	enum MHD_Result ret = send_response(conn, &r, extra_name, extra_value);
	strbuf__release(&r.body);
	return ret;
}

/* ---- listening ---- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *s = cls;
	/* After start, MHD logs client misbehaviour: not the agent's errors. */
	if (!__atomic_load_n(&s->starting, __ATOMIC_ACQUIRE))
		return;
	vsnprintf(s->start_log, sizeof(s->start_log), fmt, ap);
	size_t n = strlen(s->start_log);
	while (n && s->start_log[n - 1] == '\n')
		s->start_log[--n] = '\0';
}

/* A listen address: the parsed socket address and how to show it. */
struct listen_addr {
	struct sockaddr_storage sa; /* address and port */
	socklen_t len;              /* bytes of sa used */
	int family;                 /* AF_INET or AF_INET6 */
	bool loopback;              /* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104 */
	char shown[INET6_ADDRSTRLEN + 16]; /* "127.0.0.1:9464" / "[::1]:9464" */
};

static int parse_listen_addr(const char *address, uint16_t port, struct listen_addr *out,
			     char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 2];
	memset(out, 0, sizeof(*out));
	if (!strcmp(address, "localhost"))
		address = "127.0.0.1";
	size_t n = strlen(address);
	/* "[::1]" as in URLs. */
	if (n >= 2 && address[0] == '[' && address[n - 1] == ']' && n - 2 < sizeof(host)) {
		memcpy(host, address + 1, n - 2);
		host[n - 2] = '\0';
	} else if (n < sizeof(host)) {
		memcpy(host, address, n + 1);
	} else {
		host[0] = '\0';
	}
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		out->family = v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		out->len = sizeof(*v4);
		out->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
		snprintf(out->shown, sizeof(out->shown), "%s:%u", host, port);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		out->family = v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		out->len = sizeof(*v6);
		out->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) ||
				(IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) &&
				 v6->sin6_addr.s6_addr[12] == 127);
		snprintf(out->shown, sizeof(out->shown), "[%s]:%u", host, port);
	} else {
		char shown[72];
		printable(shown, sizeof(shown), address, 64);
		snprintf(err, errlen,
			 "listen address '%s' is not an IP address (e.g. 127.0.0.1 or ::1)", shown);
		return -EINVAL;
	}
	return 0;
}

/* Returns a listening socket on addr, or -errno with a message in err. */
static int open_listener(const struct listen_addr *addr, uint16_t port, char *err,
			 size_t errlen)
{
	int fd = socket(addr->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		if (e == EAFNOSUPPORT)
			snprintf(err, errlen, "cannot listen on %s: IPv6 is disabled on this host",
				 addr->shown);
		else
			snprintf(err, errlen, "cannot create a socket for %s: %s", addr->shown,
				 strerror(e));
		return -e;
	}
	int on = 1;
	/* Restarting the agent must not wait for old connections' TIME_WAIT. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) == 0 &&
	    listen(fd, HTTP_LISTEN_BACKLOG) == 0)
		return fd;
	int e = errno;
	close(fd);
	switch (e) {
	case EADDRINUSE:
		snprintf(err, errlen,
			 "port %u is in use on %s (another dynoprof agent?): choose another port",
			 port, addr->shown);
		break;
	case EACCES:
		snprintf(err, errlen, "cannot listen on %s: ports below 1024 need privileges",
			 addr->shown);
		break;
	case EADDRNOTAVAIL:
		snprintf(err, errlen, "cannot listen on %s: no interface of this host has that address",
			 addr->shown);
		break;
	default:
		snprintf(err, errlen, "cannot listen on %s: %s", addr->shown, strerror(e));
	}
	return -e;
}

/* MHD's end of a request (response sent, or the connection failed). */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode code)
{
	struct http_server *s = cls;
	(void)conn;
	(void)code;
	if (*req_cls == &s->blocking)
		__atomic_sub_fetch(&s->blocking, 1, __ATOMIC_ACQ_REL);
	*req_cls = NULL;
}

/* MHD's connection start/close: counts the connections it holds. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	(void)conn;
	(void)socket_ctx;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		__atomic_add_fetch(&s->active, 1, __ATOMIC_ACQ_REL);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		__atomic_sub_fetch(&s->active, 1, __ATOMIC_ACQ_REL);
}

/* The gate's hand-over: a connection whose request head has arrived. */
static int admit(void *ctx, int *fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_server *s = ctx;
	if (__atomic_load_n(&s->active, __ATOMIC_ACQUIRE) >= s->max_connections)
		return -EBUSY;
	/* MHD closes the socket when it fails (its own limit reached in a race,
	 * no thread or memory): a duplicate keeps it open for the gate's 503. */
	int keep = fcntl(*fd, F_DUPFD_CLOEXEC, 0);
	if (MHD_add_connection(s->daemon, *fd, addr, addrlen) == MHD_YES) {
		if (keep >= 0)
			close(keep);
		return 0;
	}
	if (keep < 0) { /* nothing left to answer on */
		__atomic_add_fetch(&s->refused_busy, 1, __ATOMIC_RELAXED);
		return 0;
	}
	*fd = keep;
	return -EBUSY;
}

/* Raises the soft RLIMIT_NOFILE towards the hard one so that the waiting
 * and running connections fit beside the agent's other files; when the
 * hard limit is lower, the gate refuses what does not fit (fd_limit). */
static void raise_nofile(unsigned connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)connections + HTTP_FD_HEADROOM;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static void server_free(struct http_server *s)
{
	if (!s)
		return;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	for (size_t i = 0; s->routes && i < s->nroutes; i++)
		free(s->routes[i].path);
	free(s->routes);
	free(s->token);
	free(s->route_list);
	free(s);
}

static int copy_routes(struct http_server *s, const struct http_route *routes, size_t nroutes,
		       const char *const *blocking, const char *const *public_paths)
{
	struct strbuf list = STRBUF_INIT;
	s->routes = calloc(nroutes ? nroutes : 1, sizeof(*s->routes));
	if (!s->routes)
		return -ENOMEM;
	for (size_t i = 0; i < nroutes; i++) {
		if (!routes[i].path || routes[i].path[0] != '/' || !routes[i].handler) {
			strbuf__release(&list);
			return -EINVAL;
		}
		s->routes[i].path = strdup(routes[i].path);
		if (!s->routes[i].path) {
			strbuf__release(&list);
			return -ENOMEM;
		}
		s->routes[i].handler = routes[i].handler;
		s->routes[i].ctx = routes[i].ctx;
		for (size_t k = 0; public_paths && public_paths[k]; k++)
			s->routes[i].public_page |= !strcmp(public_paths[k], routes[i].path);
		for (size_t k = 0; blocking && blocking[k]; k++)
			s->routes[i].may_block |= !strcmp(blocking[k], routes[i].path);
		s->nroutes = i + 1;
		strbuf__printf(&list, "%s%s", i ? ", " : "", routes[i].path);
	}
	s->route_list = strdup(strbuf__str(&list));
	strbuf__release(&list);
	return s->route_list ? 0 : -ENOMEM;
}

struct http_server *http_server__start(const struct http_server_opts *opts,
				       const struct http_route *routes, size_t nroutes,
				       char *err, size_t errlen)
{
	static const struct http_server_opts defaults = { .port = 9464 };
	char scratch[8];
	struct listen_addr addr;
	int e;
	if (!err || !errlen) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	if (!opts)
		opts = &defaults;
	if (!routes && nroutes) {
		snprintf(err, errlen, "no routes");
		errno = EINVAL;
		return NULL;
	}
	const char *address = opts->address && *opts->address ? opts->address
							      : HTTP_DEFAULT_ADDRESS;
	e = parse_listen_addr(address, opts->port, &addr, err, errlen);
	if (e) {
		errno = -e;
		return NULL;
	}
	if (!addr.loopback && !opts->allow_remote) {
		char shown[72];
		printable(shown, sizeof(shown), address, 64);
		snprintf(err, errlen, "address %s is not loopback: pass --listen-remote to allow it",
			 shown);
		errno = EPERM;
		return NULL;
	}

	struct http_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->listen_fd = -1;
	e = copy_routes(s, routes, nroutes, opts->blocking_paths, opts->public_paths);
	if (!e && opts->token && *opts->token) {
		s->token = strdup(opts->token);
		s->token_len = strlen(opts->token);
		if (!s->token)
			e = -ENOMEM;
	}
	if (e) {
		snprintf(err, errlen, e == -EINVAL ? "a route needs a path starting with '/' and a handler"
						   : "out of memory");
		server_free(s);
		errno = -e;
		return NULL;
	}

	int fd = open_listener(&addr, opts->port, err, errlen);
	if (fd < 0) {
		server_free(s);
		errno = -fd;
		return NULL;
	}
	s->listen_fd = fd;
	s->max_connections = opts->max_connections ? opts->max_connections
						   : HTTP_DEFAULT_MAX_CONNECTIONS;
	s->max_blocking = s->max_connections - (s->max_connections >= 2
						? (s->max_connections + 7) / 8 : 0);
	unsigned timeout_s = opts->timeout_s ? opts->timeout_s : HTTP_DEFAULT_TIMEOUT_S;
	struct http_gate_opts gopts = {
		.max_pending = opts->max_pending ? opts->max_pending : HTTP_DEFAULT_MAX_PENDING,
		.max_pending_per_addr = opts->max_pending_per_addr
						? opts->max_pending_per_addr
						: HTTP_DEFAULT_MAX_PENDING_PER_ADDR,
		.head_timeout_ms = opts->head_timeout_ms ? opts->head_timeout_ms
							 : HTTP_DEFAULT_HEAD_TIMEOUT_S * 1000,
		.max_head_bytes = HTTP_MAX_HEAD_BYTES,
	};
	raise_nofile(gopts.max_pending + s->max_connections);
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET |
			 MHD_USE_ITC | (addr.family == AF_INET6 ? MHD_USE_IPv6 : 0);
	__atomic_store_n(&s->starting, 1, __ATOMIC_RELEASE);
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				     MHD_OPTION_CONNECTION_LIMIT, s->max_connections,
				     MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				     (size_t)HTTP_CONNECTION_MEMORY,
				     MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
				     MHD_OPTION_END);
	__atomic_store_n(&s->starting, 0, __ATOMIC_RELEASE);
	if (!s->daemon) {
		snprintf(err, errlen, "cannot start the HTTP server on %s: %s", addr.shown,
			 s->start_log[0] ? s->start_log : "libmicrohttpd refused to start");
		server_free(s);
		errno = EIO;
		return NULL;
	}
	struct sockaddr_storage bound;
	socklen_t len = sizeof(bound);
	if (getsockname(fd, (struct sockaddr *)&bound, &len) == 0)
		s->port = ntohs(bound.ss_family == AF_INET6
					? ((struct sockaddr_in6 *)&bound)->sin6_port
					: ((struct sockaddr_in *)&bound)->sin_port);
	s->gate = http_gate__start(fd, &gopts, admit, s, err, errlen);
	if (!s->gate) {
		e = errno;
		MHD_stop_daemon(s->daemon);
		server_free(s);
		errno = e;
		return NULL;
	}
	return s;
}

void http_server__stop(struct http_server *s)
{
	if (!s)
		return;
	http_gate__stop(s->gate); /* no more hand-overs; waiting sockets closed */
	if (s->daemon)
		MHD_stop_daemon(s->daemon); /* joins the connections' threads */
	server_free(s);             /* closes the listening socket */
}

void http_server__stats(const struct http_server *s, struct http_server_stats *out)
{
	struct http_gate_stats g;
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	http_gate__stats(s->gate, &g);
	out->head_timeout = g.head_timeout;
	out->head_too_large = g.head_too_large;
	out->evicted = g.evicted;
	out->busy = g.busy + __atomic_load_n(&s->refused_busy, __ATOMIC_RELAXED);
	out->fd_limit = g.fd_limit;
}

uint16_t http_server__port(const struct http_server *s)
{
	return s ? s->port : 0;
}

/* ---- parameter parsing ---- */

/* Parses digits at *p into *value (at most max_digits, at least one);
 * advances *p. false on no digit or overflow of uint64. */
static bool parse_digits(const char **p, int max_digits, uint64_t *value)
{
	const char *s = *p;
	uint64_t v = 0;
	int n = 0;
	while (*s >= '0' && *s <= '9') {
		if (n == max_digits || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
		n++;
	}
	if (!n)
		return false;
	*p = s;
	*value = v;
	return true;
}

/* Parses exactly n digits. */
static bool parse_fixed(const char **p, int n, int *value)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*value = v;
	return true;
}

/* Parses ".ddd" (at least one digit) into nanoseconds; digits past the 9th
 * are accepted and truncated. Advances *p; true when absent as well. */
static bool parse_fraction(const char **p, int64_t *ns)
{
	const char *s = *p;
	*ns = 0;
	if (*s != '.')
		return true;
	s++;
	if (*s < '0' || *s > '9')
		return false;
	int64_t scale = 100000000;
	for (; *s >= '0' && *s <= '9'; s++) {
		*ns += (*s - '0') * scale;
		scale /= 10;
	}
	*p = s;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int year, int month)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

/* seconds * 1e9 + ns into *unix_ns, false on int64 overflow or negative. */
static bool to_unix_ns(int64_t seconds, int64_t ns, int64_t *unix_ns)
{
	if (seconds < 0 || seconds > (INT64_MAX - ns) / 1000000000)
		return false;
	*unix_ns = seconds * 1000000000 + ns;
	return true;
}

static int parse_rfc3339(const char *s, int64_t *unix_ns)
{
	int year, month, day, hour, minute, second, off_h = 0, off_m = 0;
	int64_t ns;
	if (!parse_fixed(&s, 4, &year) || *s++ != '-' || !parse_fixed(&s, 2, &month) ||
	    *s++ != '-' || !parse_fixed(&s, 2, &day))
		return -EINVAL;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -EINVAL;
	s++;
	if (!parse_fixed(&s, 2, &hour) || *s++ != ':' || !parse_fixed(&s, 2, &minute) ||
	    *s++ != ':' || !parse_fixed(&s, 2, &second) || !parse_fraction(&s, &ns))
		return -EINVAL;
	int sign = 0;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-' || *s == ' ') {
		/* ' ': an unencoded '+' in a query string arrives decoded as a
		 * space (form encoding); nothing else can put a space here. */
		sign = *s++ == '-' ? -1 : 1;
		if (!parse_fixed(&s, 2, &off_h) || *s++ != ':' || !parse_fixed(&s, 2, &off_m))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	/* second 60 is a leap second (RFC 3339 allows it); it lands on :00 of
	 * the next minute, as POSIX time has no place for it. */
	if (year < 1970 || month < 1 || month > 12 || day < 1 ||
	    day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 ||
	    off_h > 23 || off_m > 59)
		return -EINVAL;
	int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 +
			  minute * 60 + second - sign * (off_h * 3600 + off_m * 60);
	return to_unix_ns(seconds, ns, unix_ns) ? 0 : -EINVAL;
}

int http_parse_time(const char *text, int64_t *unix_ns)
{
	if (!text || !unix_ns || !*text || strlen(text) > 64)
		return -EINVAL;
	if (strlen(text) >= 10 && text[4] == '-')
		return parse_rfc3339(text, unix_ns);
	const char *s = text;
	uint64_t seconds;
	int64_t ns;
	if (!parse_digits(&s, 19, &seconds) || !parse_fraction(&s, &ns) || *s)
		return -EINVAL;
	if (seconds > INT64_MAX)
		return -EINVAL;
	return to_unix_ns((int64_t)seconds, ns, unix_ns) ? 0 : -EINVAL;
}

int http_parse_seconds(const char *text, double max_s, double *seconds)
{
	if (!text || !seconds || !*text || strlen(text) > 32)
		return -EINVAL;
	/* Plain decimal only: strtod would also take "inf", "0x10", "1e3", " 5". */
	const char *s = text;
	bool digits = false;
	while (*s >= '0' && *s <= '9') {
		s++;
		digits = true;
	}
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (!digits || *s)
		return -EINVAL;
	double v = strtod(text, NULL);
	if (!isfinite(v) || v <= 0 || v > max_s)
		return -EINVAL;
	*seconds = v;
	return 0;
}
