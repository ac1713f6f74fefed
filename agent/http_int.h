/*
 * http_int.h -- what the two halves of the agent's HTTP server share:
 * http.c (the daemons, the request's phases, the routing and the
 * refusals that need no body) and http_api.c (the answers: the response
 * helpers, the API calls behind the routes, /readyz and /metrics).
 * Private to them; http.h is the interface.
 */
#ifndef SHALE_AGENT_HTTP_INT_H
#define SHALE_AGENT_HTTP_INT_H

#include "http.h"
#include "agent_util.h"
#include "http_ready.h"
#include "http_token.h"

#include <microhttpd.h>
#include <stdatomic.h>

/* How many status codes shale_http_responses_total counts by name
 * (http_api.c's counted_codes; the others are "other"). */
#define HTTP_NCODES 13

struct http_server {
    struct MHD_Daemon *d;
    struct MHD_Daemon *probe_d;              /* NULL without probe_listen */
    uint16_t probe_port;
    split_service *svc;
    splitter *sp;
    http_token *token;
    http_ready *ready;
    char **origins;
    size_t norigins;
    uint64_t max_body;
    uint32_t timeout_s;
    int busy_limit;
    atomic_int busy;                         /* /v1/ requests being served */
    atomic_uint_fast64_t codes[HTTP_NCODES + 1]; /* responses by code; last: other */
    atomic_uint_fast64_t cut_off;            /* connections closed at the deadline */
    uint16_t port;
};

typedef enum {
    R_NONE, R_HEALTHZ, R_READYZ, R_METRICS, R_SPLITS, R_SPLIT, R_ABORT, R_SHARD,
    R_SPLIT_POINTS
} http_route;
typedef enum { B_NONE, B_JSON, B_YAML, B_OTHER } http_body_kind;

typedef struct http_conn {
    agent_buf body;
    bool too_large;
    bool answered;         /* a response was queued in the headers phase */
    int64_t start_ms;
    http_route rt;
    http_body_kind kind;
    char name[64];         /* <name> of /v1/splits/<name>[/abort] */
    char peer[64];
    const char *origin;    /* an allowed Origin (MHD-owned, for CORS headers) */
} http_conn;

/* The answers (http_api.c).  Each queues one response on c and counts its
 * code; cn may be NULL (the probe listener), else it is marked answered
 * and carries the allowed Origin for the CORS headers.  body and json are
 * copied. */
void http_count_code(http_server *h, unsigned code);
enum MHD_Result http_respond(http_server *h, http_conn *cn, struct MHD_Connection *c,
                             unsigned code, const char *type, const char *body);
enum MHD_Result http_respond_json(http_server *h, http_conn *cn, struct MHD_Connection *c,
                                  unsigned code, const char *json);
/* {"error": err, "reason": reason}. */
enum MHD_Result http_respond_error(http_server *h, http_conn *cn, struct MHD_Connection *c,
                                   unsigned code, const char *err, const char *reason);
/* http_respond_error, and a log line when the refused method is POST. */
enum MHD_Result http_refuse(http_server *h, http_conn *cn, struct MHD_Connection *c,
                            const char *method, unsigned code, const char *err,
                            const char *reason);
/* The route as the logs name it ("" for the probes and R_NONE). */
const char *http_route_name(http_route rt);
/* GET /readyz from the readiness snapshot. */
enum MHD_Result http_answer_ready(http_server *h, http_conn *cn, struct MHD_Connection *c);
/* The /metrics text (NUL-terminated; caller frees), NULL without memory. */
char *http_render_metrics(http_server *h);
/* The end of a /v1/ request (the body complete, the busy slot taken):
 * calls the service for cn->rt and answers. */
enum MHD_Result http_api_call(http_server *h, http_conn *cn, struct MHD_Connection *c,
                              const char *method);

#endif
