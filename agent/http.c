/*
 * http.c -- see http.h.  One libmicrohttpd daemon, a thread per
 * connection.  A request goes through three phases, and each refuses what
 * it can as early as it can:
 *   headers (first call)  route, Origin, method, token, Content-Type and
 *                         Content-Length: refused before any body is read;
 *   body (middle calls)   appended up to maxBodyBytes; past the
 *                         whole-request deadline the connection is closed;
 *   end (last call)       the API call, under the busy limit.
 * Probes and metrics never reach the service: they read the readiness
 * snapshot and the counters.  This file holds the daemons, the phases and
 * the routing; the answers (responses and their counters, the API calls,
 * /readyz, /metrics) are in http_api.c, and http_int.h is what the two
 * share.
 */
#include "http_int.h"
#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void http_options_init(http_options *o)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:8080";
    o->max_body = 1u << 20;
    o->max_connections = 32;
    o->timeout_s = 30;
    o->ready_check_ms = 1000;
    o->ready_timeout_ms = 3000;
}

/* ---- the headers phase --------------------------------------------------- */

static http_route classify(const char *url, char *name, size_t n)
{
    name[0] = '\0';
    if (!strcmp(url, "/healthz"))
        return R_HEALTHZ;
    if (!strcmp(url, "/readyz"))
        return R_READYZ;
    if (!strcmp(url, "/metrics"))
        return R_METRICS;
    if (!strcmp(url, "/v1/shard"))
        return R_SHARD;
    if (!strcmp(url, "/v1/shard/split-points"))
        return R_SPLIT_POINTS;
    if (strncmp(url, "/v1/splits", 10) || (url[10] != '\0' && url[10] != '/'))
        return R_NONE;
    if (!url[10] || !url[11])
        return R_SPLITS;
    const char *rest = url + 11, *slash = strchr(rest, '/');
    size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
    if (nl == 0 || nl >= n)
        return R_NONE;    /* longer than any split name */
    if (slash && strcmp(slash, "/abort"))
        return R_NONE;
    memcpy(name, rest, nl);
    name[nl] = '\0';
    return slash ? R_ABORT : R_SPLIT;
}

/* The media type of a Content-Type value (parameters ignored). */
static http_body_kind kind_of(const char *ct)
{
    if (!ct)
        return B_NONE;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    static const struct { const char *t; http_body_kind k; } types[] = {
        {"application/json", B_JSON},   {"application/yaml", B_YAML},
        {"application/x-yaml", B_YAML}, {"text/yaml", B_YAML},
        {"text/x-yaml", B_YAML},
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strlen(types[i].t) == n && !strncasecmp(ct, types[i].t, n))
            return types[i].k;
    return B_OTHER;
}

static void peer_of(struct MHD_Connection *c, char *out, size_t n)
{
    snprintf(out, n, "?");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

static bool origin_allowed(const http_server *h, const char *origin)
{
    for (size_t i = 0; i < h->norigins; i++)
        if (!strcmp(h->origins[i], origin))
            return true;
    return false;
}

/* Everything that can be refused without the body.  Returns true when a
 * response was queued (*ret is then the result to return). */
static bool headers_phase(http_server *h, http_conn *cn, struct MHD_Connection *c, const char *url,
                          const char *method, enum MHD_Result *ret)
{
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    cn->rt = classify(url, cn->name, sizeof cn->name);
    peer_of(c, cn->peer, sizeof cn->peer);
    if (cn->rt == R_HEALTHZ || cn->rt == R_READYZ) {
        /* Probes: from memory, open to all (they reveal nothing). */
        if (!get)
            *ret = http_respond_error(h, cn, c, 405, "MethodNotAllowed", "use GET");
        else if (cn->rt == R_HEALTHZ)
            *ret = http_respond(h, cn, c, 200, "text/plain; charset=utf-8", "ok\n");
        else
            *ret = http_answer_ready(h, cn, c);
        return true;
    }
    if (cn->rt == R_NONE) {
        *ret = http_respond_error(h, cn, c, 404, "NotFound", "no such endpoint");
        return true;
    }
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin && !origin_allowed(h, origin)) {
        char why[300];
        snprintf(why, sizeof why, "requests from origin '%.200s' are not allowed "
                                  "('sources.http.allowedOrigins')", origin);
        *ret = http_refuse(h, cn, c, method, 403, "Forbidden", why);
        return true;
    }
    cn->origin = origin;
    if (!strcmp(method, "OPTIONS") && origin) {
        /* CORS preflight for an allowed origin. */
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"",
                                                                 MHD_RESPMEM_PERSISTENT);
        if (!r)
            return (*ret = MHD_NO), true;
        MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
        MHD_add_response_header(r, "Vary", "Origin");
        *ret = MHD_queue_response(c, 204, r);
        MHD_destroy_response(r);
        http_count_code(h, 204);
        cn->answered = true;
        return true;
    }
    bool want_post = cn->rt == R_ABORT, either = cn->rt == R_SPLITS;
    if ((want_post && !post) || (either && !get && !post) ||
        ((cn->rt == R_SPLIT || cn->rt == R_METRICS || cn->rt == R_SHARD ||
          cn->rt == R_SPLIT_POINTS) && !get)) {
        *ret = http_respond_error(h, cn, c, 405, "MethodNotAllowed",
                                  either ? "use GET or POST" : want_post ? "use POST" : "use GET");
        return true;
    }
    const char *why = "";
    if (!http_token_check(h->token, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                "Authorization"), &why)) {
        *ret = http_refuse(h, cn, c, method, 401, "Unauthorized", why);
        return true;
    }
    if (!post)
        return false;
    cn->kind = kind_of(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    bool has_body = (cl && strcmp(cl, "0")) ||
                    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    /* A body must say it is JSON or YAML: the types a browser may send
     * across sites without asking first (text/plain, forms) are refused. */
    if ((cn->rt == R_SPLITS && cn->kind != B_JSON && cn->kind != B_YAML) ||
        (cn->rt == R_ABORT && (cn->kind == B_OTHER || (has_body && cn->kind == B_NONE)))) {
        *ret = http_refuse(h, cn, c, method, 415, "UnsupportedMediaType",
                           "the body must be Content-Type application/json or application/yaml");
        return true;
    }
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end || n > h->max_body) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body larger than %llu bytes "
                                      "('sources.http.maxBodyBytes')",
                     (unsigned long long)h->max_body);
            *ret = http_refuse(h, cn, c, method, 413, "PayloadTooLarge", msg);
            return true;
        }
    }
    return false;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *h = cls;
    http_conn *cn = *con_cls;
    if (!cn) {
        if (!(cn = calloc(1, sizeof *cn)))
            return MHD_NO;
        *con_cls = cn;
        cn->start_ms = agent_mono_ms();
        enum MHD_Result ret = MHD_YES;
        if (headers_phase(h, cn, c, url, method, &ret))
            return ret;
        return MHD_YES;   /* the body comes in the next calls */
    }
    if (cn->answered) {   /* refused early: discard what the client still sends */
        *upload_size = 0;
        return MHD_YES;
    }
    if (agent_mono_ms() - cn->start_ms > (int64_t)h->timeout_s * 1000) {
        /* A body trickled in slower than the deadline allows: hang up
         * rather than hold a thread for it. */
        atomic_fetch_add(&h->cut_off, 1);
        LOGW("HTTP %s %s from %s: closed, the request took longer than %u s "
             "('sources.http.timeoutSeconds')", method, http_route_name(cn->rt), cn->peer,
             h->timeout_s);
        return MHD_NO;
    }
    if (*upload_size) {
        if (!cn->too_large && cn->body.len + *upload_size <= h->max_body)
            agent_buf_append(&cn->body, upload_data, *upload_size);
        else
            cn->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    if (cn->rt == R_METRICS) {
        char *text = http_render_metrics(h);
        enum MHD_Result r = http_respond(h, cn, c, 200, "text/plain; version=0.0.4",
                                         text ? text : "");
        free(text);
        return r;
    }
    /* Leave room for probes: past half the connections busy in the API,
     * answer at once instead of queueing behind a slow store. */
    if (atomic_fetch_add(&h->busy, 1) >= h->busy_limit) {
        atomic_fetch_sub(&h->busy, 1);
        return http_refuse(h, cn, c, method, 503, "Busy",
                           "too many API requests in progress; retry shortly");
    }
    enum MHD_Result r = http_api_call(h, cn, c, method);
    atomic_fetch_sub(&h->busy, 1);
    return r;
}

/* The probe listener: /healthz and /readyz, nothing else, no body. */
static enum MHD_Result handle_probe(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size,
                                    void **con_cls)
{
    (void)version;
    (void)upload_data;
    http_server *h = cls;
    if (!*con_cls) {
        *con_cls = h;   /* headers seen; answer on the next call */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET"))
        return http_respond_error(h, NULL, c, 405, "MethodNotAllowed", "use GET");
    if (!strcmp(url, "/healthz"))
        return http_respond(h, NULL, c, 200, "text/plain; charset=utf-8", "ok\n");
    if (!strcmp(url, "/readyz"))
        return http_answer_ready(h, NULL, c);
    return http_respond_error(h, NULL, c, 404, "NotFound", "this listener serves /healthz and "
                                                      "/readyz only");
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    http_conn *cn = *con_cls;
    if (cn) {
        agent_buf_free(&cn->body);
        free(cn);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    LOGW("http: %s", msg);
}

/* ---- lifecycle ------------------------------------------------------------ */

shale_status http_listen_parse(const char *listen, struct sockaddr_storage *out,
                               bool *loopback)
{
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    *loopback = false;
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    char host[64];
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (!colon || hl == 0 || hl >= sizeof host)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "listen address '%s' is not host:port",
                               listen ? listen : "");
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    bool bad = !colon[1] || *end || port < 0 || port > 65535;
    if (!bad && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
        host[hl - 1] = '\0';
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        bad = inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1;
        *loopback = !bad && IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
    } else if (!bad) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        bad = inet_pton(AF_INET, host, &s4->sin_addr) != 1;
        *loopback = !bad && (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (bad)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "listen address '%s' needs a numeric IPv4 "
                                                       "address or [IPv6] address and a port",
                               listen);
    if (out)
        *out = sa;
    return SHALE_OK;
}

static void server_free(http_server *h)
{
    if (!h)
        return;
    if (h->probe_d)
        MHD_stop_daemon(h->probe_d);
    if (h->d)
        MHD_stop_daemon(h->d);
    http_ready_stop(h->ready);
    http_token_free(h->token);
    for (size_t i = 0; i < h->norigins; i++)
        free(h->origins[i]);
    free(h->origins);
    free(h);
}

shale_status http_start(const http_options *o, split_service *svc, splitter *sp,
                        http_server **out)
{
    *out = NULL;
    struct sockaddr_storage sa;
    bool loopback = false;
    shale_status rc = http_listen_parse(o->listen, &sa, &loopback);
    if (rc)
        return shale_error_prefix(rc, "http: ");
    http_server *h = calloc(1, sizeof *h);
    if (!h)
        return AGENT_OOM();
    h->svc = svc;
    h->sp = sp;
    h->max_body = o->max_body ? o->max_body : 1u << 20;
    h->timeout_s = o->timeout_s ? o->timeout_s : 30;
    uint32_t maxc = o->max_connections ? o->max_connections : 32;
    /* Busy in /v1/ at most half the connections, fewer than one address
     * may open (three quarters): a client flooding the API gets quick 503s
     * while connections are left for probes, even from its own address (a
     * mesh proxy sends everything from 127.0.0.1). */
    h->busy_limit = (int)(maxc / 2 ? maxc / 2 : 1);
    if ((rc = http_token_new(o->token, o->token_file, &h->token)))
        goto fail;
    if (!loopback && !http_token_required(h->token)) {
        rc = shale_error_set(SHALE_INVALID_ARGUMENT, "http: listening on %s, beyond loopback, "
                                                     "needs a bearer token", o->listen);
        goto fail;
    }
    if (o->allowed_origin_count) {
        if (!(h->origins = calloc(o->allowed_origin_count, sizeof *h->origins))) {
            rc = AGENT_OOM();
            goto fail;
        }
        for (; h->norigins < o->allowed_origin_count; h->norigins++)
            if (!(h->origins[h->norigins] = agent_strdup(o->allowed_origins[h->norigins]))) {
                rc = AGENT_OOM();
                goto fail;
            }
    }
    if ((rc = http_ready_start(svc, sp, o->ready_check_ms, o->ready_timeout_ms, &h->ready)))
        goto fail;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, done, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)maxc,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)(maxc * 3 / 4),
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_END);
    if (!h->d) {
        rc = shale_error_set(SHALE_IO, "http: cannot listen on %s (in use, or not allowed)",
                             o->listen);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    if (o->probe_listen) {
        struct sockaddr_storage ps;
        if ((rc = http_listen_parse(o->probe_listen, &ps, &loopback))) {
            rc = shale_error_prefix(rc, "http: probe listener: ");
            goto fail;
        }
        unsigned pflags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                          MHD_USE_POLL | MHD_USE_ERROR_LOG |
                          (ps.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
        h->probe_d = MHD_start_daemon(pflags, 0, NULL, NULL, handle_probe, h,
                                      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ps,
                                      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                                      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                      MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                                      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
                                      MHD_OPTION_END);
        if (!h->probe_d) {
            rc = shale_error_set(SHALE_IO, "http: cannot listen on %s for probes (in use, or not "
                                           "allowed)", o->probe_listen);
            goto fail;
        }
        info = MHD_get_daemon_info(h->probe_d, MHD_DAEMON_INFO_BIND_PORT);
        h->probe_port = info ? info->port : 0;
    }
    *out = h;
    return SHALE_OK;
fail:
    server_free(h);
    return rc;
}

uint16_t http_port(const http_server *h)
{
    return h->port;
}

uint16_t http_probe_port(const http_server *h)
{
    return h->probe_port;
}

void http_stop(http_server *h)
{
    server_free(h);
}
