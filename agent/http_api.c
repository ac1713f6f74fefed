/*
 * http_api.c -- the HTTP server's answers (http_int.h): responses with
 * their common headers and the per-code counters, JSON errors mapped from
 * shale_status, the API calls behind the /v1/ routes (submit, list, get,
 * abort, the shard's figures and split points), /readyz and /metrics.
 * Everything here runs in the request's last phase, or in the headers
 * phase for the refusals http.c decides on; the routing is in http.c.
 */
#include "http_int.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "shard_facts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Status codes counted for shale_http_responses_total (others: "other"). */
static const unsigned counted_codes[] = {200, 201, 204, 400, 401, 403, 404, 405,
                                         409, 413, 415, 500, 503};
_Static_assert(sizeof counted_codes / sizeof *counted_codes == HTTP_NCODES,
               "HTTP_NCODES counts counted_codes");

/* ---- answers ------------------------------------------------------------- */

void http_count_code(http_server *h, unsigned code)
{
    size_t i = 0;
    while (i < HTTP_NCODES && counted_codes[i] != code)
        i++;
    atomic_fetch_add(&h->codes[i], 1);
}

enum MHD_Result http_respond(http_server *h, http_conn *cn, struct MHD_Connection *c,
                             unsigned code, const char *type, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (cn && cn->origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", cn->origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
    if (code == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    http_count_code(h, code);
    if (cn)
        cn->answered = true;
    return ret;
}

enum MHD_Result http_respond_json(http_server *h, http_conn *cn, struct MHD_Connection *c,
                                  unsigned code, const char *json)
{
    return http_respond(h, cn, c, code, "application/json", json);
}

enum MHD_Result http_respond_error(http_server *h, http_conn *cn, struct MHD_Connection *c,
                                   unsigned code, const char *err, const char *reason)
{
    json_t *o = json_pack("{s:s, s:s}", "error", err, "reason", reason ? reason : "");
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    enum MHD_Result r = http_respond_json(h, cn, c, code, t ? t : "{\"error\":\"Internal\"}");
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
    /* Not the request's fault, and it may pass later (journals not read
     * yet, a store that did not answer): 503 with Retry-After. */
    case SHALE_RETRYABLE: case SHALE_TIMEOUT: case SHALE_IO: return 503;
    default: return 500;
    }
}

static const char *err_name(shale_status rc)
{
    switch (rc) {
    case SHALE_INVALID_ARGUMENT: return "BadRequest";
    case SHALE_NOT_FOUND: return "NotFound";
    case SHALE_CONFLICT: return "Conflict";
    case SHALE_UNAUTHORIZED: return "Unauthorized";
    case SHALE_RETRYABLE: case SHALE_TIMEOUT: case SHALE_IO: return "Unavailable";
    default: return "Internal";
    }
}

const char *http_route_name(http_route rt)
{
    switch (rt) {
    case R_SPLITS: return "/v1/splits";
    case R_SPLIT: return "/v1/splits/<name>";
    case R_ABORT: return "/v1/splits/<name>/abort";
    case R_METRICS: return "/metrics";
    case R_SHARD: return "/v1/shard";
    case R_SPLIT_POINTS: return "/v1/shard/split-points";
    default: return "";
    }
}

/* A refusal of anything that could act on a split is logged (a GET
 * refused is only counted: reads change nothing). */
enum MHD_Result http_refuse(http_server *h, http_conn *cn, struct MHD_Connection *c,
                            const char *method, unsigned code, const char *err,
                            const char *reason)
{
    if (!strcmp(method, "POST"))
        log_msg(LOG_WARN, cn->name[0] ? cn->name : NULL, NULL, -1,
                "HTTP %s %s from %s refused: %u %s: %s", method, http_route_name(cn->rt), cn->peer,
                code, err, reason);
    return http_respond_error(h, cn, c, code, err, reason);
}

enum MHD_Result http_answer_ready(http_server *h, http_conn *cn, struct MHD_Connection *c)
{
    char why[600], text[640];
    bool ok = http_ready_get(h->ready, why, sizeof why);
    snprintf(text, sizeof text, ok ? "ready\n" : "not ready: %s\n", why);
    return http_respond(h, cn, c, ok ? 200 : 503, "text/plain; charset=utf-8", text);
}

char *http_render_metrics(http_server *h)
{
    char *base = metrics_render(h->sp);
    agent_buf b = AGENT_BUF_INIT;
    if (base)
        agent_buf_append(&b, base, strlen(base));
    free(base);
    char line[256], why[8];
    static const char head[] =
        "# HELP shale_http_responses_total HTTP API answers, by status code.\n"
        "# TYPE shale_http_responses_total counter\n";
    agent_buf_append(&b, head, sizeof head - 1);
    for (size_t i = 0; i <= HTTP_NCODES; i++) {
        char code[8];
        if (i < HTTP_NCODES)
            snprintf(code, sizeof code, "%u", counted_codes[i]);
        else
            snprintf(code, sizeof code, "other");
        int n = snprintf(line, sizeof line, "shale_http_responses_total{code=\"%s\"} %llu\n",
                         code, (unsigned long long)atomic_load(&h->codes[i]));
        agent_buf_append(&b, line, (size_t)n);
    }
    int n = snprintf(line, sizeof line,
                     "# HELP shale_http_deadline_closed_total Connections closed at the "
                     "request deadline.\n# TYPE shale_http_deadline_closed_total counter\n"
                     "shale_http_deadline_closed_total %llu\n",
                     (unsigned long long)atomic_load(&h->cut_off));
    agent_buf_append(&b, line, (size_t)n);
    n = snprintf(line, sizeof line,
                 "# HELP shale_agent_ready 1 while the shard's store answers (/readyz).\n"
                 "# TYPE shale_agent_ready gauge\nshale_agent_ready %d\n",
                 http_ready_get(h->ready, why, sizeof why) ? 1 : 0);
    agent_buf_append(&b, line, (size_t)n);
    if (h->sp) {
        shard_gauges g;
        http_ready_shard(h->ready, &g);
        char *sh = metrics_render_shard(&g);
        if (sh)
            agent_buf_append(&b, sh, strlen(sh));
        free(sh);
    }
    agent_buf_append(&b, "", 1);
    return (char *)b.data;
}

/* ---- the end: API calls -------------------------------------------------- */

static enum MHD_Result answer_status(http_server *h, http_conn *cn, struct MHD_Connection *c,
                                     shale_status rc, unsigned ok_code, char *out)
{
    enum MHD_Result r = rc ? http_respond_error(h, cn, c, code_of(rc), err_name(rc), shale_errmsg())
                           : http_respond_json(h, cn, c, ok_code, out ? out : "{}");
    free(out);
    return r;
}

static enum MHD_Result submit(http_server *h, http_conn *cn, struct MHD_Connection *c)
{
    if (cn->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body larger than %llu bytes",
                 (unsigned long long)h->max_body);
        return http_refuse(h, cn, c, "POST", 413, "PayloadTooLarge", msg);
    }
    const char *text = cn->body.data ? (const char *)cn->body.data : "";
    size_t len = cn->body.len, i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (cn->kind == B_JSON && (i == len || text[i] != '{'))
        return http_refuse(h, cn, c, "POST", 400, "BadRequest",
                           "HTTP body: declared application/json but is not a JSON object");
    split_request *req = NULL;
    char *out = NULL;
    bool created = false;
    shale_status rc = split_request_parse("HTTP body", text, len, &req);
    if (!rc)
        snprintf(cn->name, sizeof cn->name, "%s", req->name);
    if (!rc)
        rc = h->svc->ops->submit(h->svc, req, &created, &out);
    bool aborting = !rc && req->abort;
    if (aborting) {
        free(out);
        out = NULL;
        rc = h->svc->ops->abort(h->svc, req->name, &out);
    }
    split_request_free(req);
    if (rc) {
        free(out);
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", shale_errmsg());
        return http_refuse(h, cn, c, "POST", code_of(rc), err_name(rc), reason);
    }
    log_msg(LOG_INFO, cn->name, NULL, -1, "HTTP POST /v1/splits from %s: %s", cn->peer,
            aborting ? "abort requested" : created ? "split accepted (201)"
                                                   : "same request again (200): its status");
    return answer_status(h, cn, c, SHALE_OK, created ? 201 : 200, out);
}

/* GET /v1/shard: the shard's figures, read now (an API call may wait on
 * the store, bounded by the HTTP timeouts; the gauges use the snapshot). */
static enum MHD_Result answer_shard(http_server *h, http_conn *cn, struct MHD_Connection *c)
{
    if (!h->sp)
        return http_respond_error(h, cn, c, 404, "NotFound", "this agent has no shard");
    shard_facts f;
    shale_status rc = shard_facts_read(h->sp, &f);
    char *out = NULL;
    if (!rc) {
        out = shard_facts_json(h->sp, &f);
        shard_facts_clear(&f);
        if (!out)
            rc = AGENT_OOM();
    }
    return answer_status(h, cn, c, rc, 200, out);
}

/* GET /v1/shard/split-points?ways=N[&by=bytes|keys]. */
static enum MHD_Result answer_split_points(http_server *h, http_conn *cn, struct MHD_Connection *c)
{
    if (!h->sp)
        return http_respond_error(h, cn, c, 404, "NotFound", "this agent has no shard");
    const char *w = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ways");
    const char *by = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "by");
    char *end = NULL;
    unsigned long ways = w && *w >= '0' && *w <= '9' ? strtoul(w, &end, 10) : 0;
    if (!w || !end || *end || ways < 2 || ways > 1024)
        return http_respond_error(h, cn, c, 400, "BadRequest",
                                  "query parameter 'ways': must be an integer from 2 to 1024 (the "
                                  "number of children)");
    int b = by ? split_by_parse(by) : SHALE_SPLIT_BY_BYTES;
    if (b < 0)
        return http_respond_error(h, cn, c, 400, "BadRequest",
                                  "query parameter 'by': must be bytes or keys");
    char *out = NULL;
    shale_status rc = shard_split_points_json(h->sp, (uint32_t)ways, (shale_split_by)b, &out);
    return answer_status(h, cn, c, rc, 200, out);
}

enum MHD_Result http_api_call(http_server *h, http_conn *cn, struct MHD_Connection *c,
                              const char *method)
{
    char *out = NULL;
    shale_status rc;
    switch (cn->rt) {
    case R_SPLITS:
        if (!strcmp(method, "POST"))
            return submit(h, cn, c);
        rc = h->svc->ops->list(h->svc, &out);
        return answer_status(h, cn, c, rc, 200, out);
    case R_SPLIT:
        rc = h->svc->ops->get(h->svc, cn->name, &out);
        return answer_status(h, cn, c, rc, 200, out);
    case R_ABORT:
        rc = h->svc->ops->abort(h->svc, cn->name, &out);
        if (rc) {
            free(out);
            char reason[1024];
            snprintf(reason, sizeof reason, "%s", shale_errmsg());
            return http_refuse(h, cn, c, method, code_of(rc), err_name(rc), reason);
        }
        log_msg(LOG_INFO, cn->name, NULL, -1, "HTTP POST abort from %s: abort requested",
                cn->peer);
        return answer_status(h, cn, c, SHALE_OK, 200, out);
    case R_SHARD:
        return answer_shard(h, cn, c);
    case R_SPLIT_POINTS:
        return answer_split_points(h, cn, c);
    default:
        return http_respond_error(h, cn, c, 404, "NotFound", "no such endpoint");
    }
}
