/*
 * http.h -- the agent's HTTP API (libmicrohttpd), docs/agent-http.md:
 *
 *   POST /v1/splits                 JSON or YAML request -> 201 created,
 *                                   200 same request again, 400 invalid,
 *                                   409 conflict, 413 body too large,
 *                                   415 not JSON/YAML
 *   GET  /v1/splits                 every split's status (JSON array)
 *   GET  /v1/splits/<name>          one status, 404 if unknown
 *   POST /v1/splits/<name>/abort    200 aborting, 409 past the point of no
 *                                   return or finished, 404 unknown
 *   GET  /healthz                   200 while the process serves
 *   GET  /readyz                    200 while the shard's store answers,
 *                                   503 with the reason
 *   GET  /metrics                   Prometheus text 0.0.4
 *
 * Fails closed (docs/security.md "HTTP API"):
 * - with a token, /v1/ and /metrics need "Authorization: Bearer <token>"
 *   (http_token.h); without one the configuration only allows loopback
 *   (config.c refuses anything else at start);
 * - a request with an Origin header not in the allowed list is refused
 *   (403), and a POST body must be application/json or application/yaml
 *   (415 otherwise), so a browser's simple cross-site POST (text/plain,
 *   form types) can never submit or abort a split;
 * - the refusals that need no body (401, 403, 413 by Content-Length, 415)
 *   are answered before a byte of the body is read;
 * - a request is bounded in size (maxBodyBytes), in time (idle timeout and
 *   a whole-request deadline: a trickled body is cut off) and in number
 *   (maxConnections in all, three quarters of them from one address,
 *   half of them busy in /v1/ at once: the rest get 503 at once);
 * - every connection has its own thread, and /healthz, /readyz and
 *   /metrics are answered from memory (http_ready.h), so no probe waits
 *   behind a store call or a busy API request; with probe_listen the
 *   probes also have a daemon of their own, which no API client can fill.
 * Every split request over HTTP (accepted or refused, with the reason) and
 * every abort is logged (log.h).  Errors are JSON {"error": code,
 * "reason": message}.
 *
 * Thread safety: one server per http_start(); http_stop() from the thread
 * that started it.
 */
#ifndef SHALE_AGENT_HTTP_H
#define SHALE_AGENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "service.h"
#include "splitter.h"

typedef struct http_server http_server;

typedef struct http_options {
    const char *listen;               /* "a.b.c.d:port" or "[v6]:port"; port 0: any */
    const char *token;                /* inline bearer token, or NULL */
    const char *token_file;           /* token file (re-read on change), or NULL */
    uint64_t max_body;                /* default 1 MiB */
    uint32_t max_connections;         /* default 32 */
    uint32_t timeout_s;               /* idle and whole-request bound; default 30 */
    const char *const *allowed_origins;   /* Origin values let through; may be NULL */
    size_t allowed_origin_count;
    uint32_t ready_check_ms;          /* default 1000 */
    uint32_t ready_timeout_ms;        /* default 3000 */
    const char *probe_listen;         /* NULL: probes on listen only; else a second
                                         listener serving only /healthz and /readyz,
                                         open (no token), e.g. for kubelet while the
                                         API stays on loopback */
} http_options;

void http_options_init(http_options *o);

/* Parses a listen address.  sa (may be NULL) receives the socket address;
 * *loopback is true for 127.0.0.0/8 and ::1.  SHALE_INVALID_ARGUMENT
 * naming the address otherwise. */
shale_status http_listen_parse(const char *listen, struct sockaddr_storage *sa,
                               bool *loopback);

/* Starts serving.  Strings in o are copied; svc and sp (for metrics; may
 * be NULL) are borrowed until http_stop(). */
shale_status http_start(const http_options *o, split_service *svc, splitter *sp,
                        http_server **out);
uint16_t http_port(const http_server *h);
uint16_t http_probe_port(const http_server *h);   /* 0 without probe_listen */
void http_stop(http_server *h);   /* NULL ok */

#endif
