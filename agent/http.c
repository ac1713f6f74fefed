/* http.c -- see http.h. */
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "util/buf.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_server {
    struct MHD_Daemon *d;
    split_service *svc;
    splitter *sp;
    char *token;
    uint64_t max_body;
    uint16_t port;
};

typedef struct conn {
    shale_buf body;
    bool too_large;
} conn;

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, const char *type,
                               const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned code, const char *json)
{
    return respond(c, code, "application/json", json);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, unsigned code, const char *err,
                                     const char *reason)
{
    json_t *o = json_pack("{s:s, s:s}", "error", err, "reason", reason ? reason : "");
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    enum MHD_Result r = respond_json(c, code, t ? t : "{\"error\":\"internal\"}");
    free(t);
    json_decref(o);
    return r;
}

static unsigned code_of(shale_status rc)
{
    switch (rc) {
    case SHALE_INVALID_ARGUMENT: return 400;
    case SHALE_NOT_FOUND: return 404;
    case SHALE_CONFLICT: return 409;
    case SHALE_UNAUTHORIZED: return 401;
    default: return 500;
    }
}

static const char *err_name(shale_status rc)
{
    switch (rc) {
    case SHALE_INVALID_ARGUMENT: return "BadRequest";
    case SHALE_NOT_FOUND: return "NotFound";
    case SHALE_CONFLICT: return "Conflict";
    default: return "Internal";
    }
}

static bool authorized(http_server *h, struct MHD_Connection *c)
{
    if (!h->token)
        return true;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!a || strncmp(a, "Bearer ", 7))
        return false;
    a += 7;
    size_t n = strlen(h->token), m = strlen(a);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(h->token[i] ^ (i < m ? a[i] : 0));
    return diff == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *h = cls;
    bool post = !strcmp(method, "POST"), get = !strcmp(method, "GET");
    if (!*con_cls) {
        conn *cn = calloc(1, sizeof *cn);
        if (!cn)
            return MHD_NO;
        *con_cls = cn;
        return MHD_YES;   /* headers only; data comes in the next calls */
    }
    conn *cn = *con_cls;
    if (*upload_size) {
        if (!cn->too_large && cn->body.len + *upload_size <= h->max_body)
            buf_append(&cn->body, upload_data, *upload_size);
        else
            cn->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    if (!strcmp(url, "/healthz"))
        return get ? respond(c, 200, "text/plain", "ok\n")
                   : respond_error(c, 405, "MethodNotAllowed", "use GET");
    if (!strcmp(url, "/readyz")) {
        if (!get)
            return respond_error(c, 405, "MethodNotAllowed", "use GET");
        bool ready = h->svc->ops->ready(h->svc);
        return respond(c, ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n");
    }
    bool api = !strncmp(url, "/v1/splits", 10) && (url[10] == '\0' || url[10] == '/');
    bool metrics = !strcmp(url, "/metrics");
    if (!api && !metrics)
        return respond_error(c, 404, "NotFound", "no such endpoint");
    if (!authorized(h, c))
        return respond_error(c, 401, "Unauthorized", "a valid bearer token is required");
    if (metrics) {
        if (!get)
            return respond_error(c, 405, "MethodNotAllowed", "use GET");
        char *text = metrics_render(h->sp);
        enum MHD_Result r = respond(c, 200, "text/plain; version=0.0.4", text ? text : "");
        free(text);
        return r;
    }
    const char *rest = url[10] ? url + 11 : "";
    char *out = NULL;
    shale_status rc;
    if (!*rest) {
        if (get) {
            rc = h->svc->ops->list(h->svc, &out);
            enum MHD_Result r = rc ? respond_error(c, code_of(rc), err_name(rc), shale_errmsg())
                                   : respond_json(c, 200, out);
            free(out);
            return r;
        }
        if (!post)
            return respond_error(c, 405, "MethodNotAllowed", "use GET or POST");
        if (cn->too_large) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body larger than %llu bytes",
                     (unsigned long long)h->max_body);
            return respond_error(c, 413, "PayloadTooLarge", msg);
        }
        split_request *req = NULL;
        rc = split_request_parse("HTTP body", cn->body.data ? (char *)cn->body.data : "",
                                 cn->body.len, &req);
        bool created = false;
        if (!rc)
            rc = h->svc->ops->submit(h->svc, req, &created, &out);
        if (!rc && req->abort) {
            free(out);
            out = NULL;
            rc = h->svc->ops->abort(h->svc, req->name, &out);
        }
        split_request_free(req);
        enum MHD_Result r = rc ? respond_error(c, code_of(rc), err_name(rc), shale_errmsg())
                               : respond_json(c, created ? 201 : 200, out);
        free(out);
        return r;
    }
    char name[128];
    const char *slash = strchr(rest, '/');
    size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
    if (nl == 0 || nl >= sizeof name)
        return respond_error(c, 404, "NotFound", "no such split");
    memcpy(name, rest, nl);
    name[nl] = '\0';
    if (slash && !strcmp(slash, "/abort")) {
        if (!post)
            return respond_error(c, 405, "MethodNotAllowed", "use POST");
        rc = h->svc->ops->abort(h->svc, name, &out);
    } else if (!slash) {
        if (!get)
            return respond_error(c, 405, "MethodNotAllowed", "use GET");
        rc = h->svc->ops->get(h->svc, name, &out);
    } else {
        return respond_error(c, 404, "NotFound", "no such endpoint");
    }
    enum MHD_Result r = rc ? respond_error(c, code_of(rc), err_name(rc), shale_errmsg())
                           : respond_json(c, 200, out);
    free(out);
    return r;
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn *cn = *con_cls;
    if (cn) {
        buf_free(&cn->body);
        free(cn);
        *con_cls = NULL;
    }
}

shale_status http_start(const char *listen, const char *token, uint64_t max_body,
                        split_service *svc, splitter *sp, http_server **out)
{
    *out = NULL;
    const char *colon = strrchr(listen, ':');
    char host[64];
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return shale_err(SHALE_INVALID_ARGUMENT, "http: listen address '%s' is not host:port",
                         listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return shale_err(SHALE_INVALID_ARGUMENT, "http: listen address '%s' needs an IPv4 "
                                                 "address and a port", listen);
    http_server *h = calloc(1, sizeof *h);
    if (!h)
        return SHALE_OOM();
    h->svc = svc;
    h->sp = sp;
    h->max_body = max_body;
    if (token && !(h->token = xstrdup(token))) {
        free(h);
        return SHALE_OOM();
    }
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            handle, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, done, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!h->d) {
        free(h->token);
        free(h);
        return shale_err(SHALE_IO, "http: cannot listen on %s (in use, or not allowed)",
                         listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : (uint16_t)port;
    *out = h;
    return SHALE_OK;
}

uint16_t http_port(const http_server *h)
{
    return h->port;
}

void http_stop(http_server *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h->token);
    free(h);
}
