/*
 * http.h -- the agent's HTTP API (libmicrohttpd), docs/agent-http.md:
 *
 *   POST /v1/splits                 JSON or YAML request -> 201 created,
 *                                   200 same request again, 400 invalid,
 *                                   409 conflict, 413 body too large
 *   GET  /v1/splits                 every split's status (JSON array)
 *   GET  /v1/splits/<name>          one status, 404 if unknown
 *   POST /v1/splits/<name>/abort    200 aborting, 409 past the point of no
 *                                   return or finished, 404 unknown
 *   GET  /healthz                   200 while the process serves
 *   GET  /readyz                    200 once the shard's store answers, 503
 *   GET  /metrics                   Prometheus text 0.0.4
 *
 * Errors are JSON {"error": code, "reason": message}.  With a token file,
 * /v1/ and /metrics need "Authorization: Bearer <token>" (compared in
 * constant time; 401 otherwise); the probes stay open.  Binds to the
 * configured address (127.0.0.1 by default).
 */
#ifndef SHALE_AGENT_HTTP_H
#define SHALE_AGENT_HTTP_H

#include <stdint.h>
#include "service.h"
#include "splitter.h"

typedef struct http_server http_server;

/* listen "host:port" (port 0: any free port).  token may be NULL.  svc and
 * sp (for metrics; may be NULL) are borrowed. */
shale_status http_start(const char *listen, const char *token, uint64_t max_body,
                        split_service *svc, splitter *sp, http_server **out);
uint16_t http_port(const http_server *h);
void http_stop(http_server *h);   /* NULL ok */

#endif
