/*
 * http_ready.h -- the readiness snapshot behind /readyz.
 *
 * A background thread asks the service whether the shard's store answers
 * (split_service_ops.ready, a store call) every interval and keeps the
 * answer in memory; /readyz reads only that memory, so a probe never waits
 * on a store.  Not ready, with the reason, when: the first check has not
 * finished; the last check failed (its error); or a check has been running
 * longer than the timeout (a hung or very slow store).  /healthz does not
 * look at this at all.
 *
 * The same cadence drives a second thread that refreshes the shard's
 * figures (shard_facts.h: its SST indexes and split lease) for the
 * shale_shard_* gauges of /metrics; it has its own thread so a slow read
 * of many SST indexes never delays a readiness answer, and /metrics only
 * copies the last snapshot.
 *
 * Thread safety: http_ready_get() may be called from any thread.
 * Stopping joins the thread, so it waits for a check in progress (bounded
 * by the store's own request timeout).
 */
#ifndef SHALE_AGENT_HTTP_READY_H
#define SHALE_AGENT_HTTP_READY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "metrics.h"
#include "service.h"
#include "splitter.h"

typedef struct http_ready http_ready;

/* Starts the checker; waits for the first answer at most timeout_ms, so a
 * healthy agent is ready when its HTTP port is announced.  svc and sp are
 * borrowed until http_ready_stop(); sp NULL: no shard figures. */
shale_status http_ready_start(split_service *svc, splitter *sp, uint32_t interval_ms,
                              uint32_t timeout_ms, http_ready **out);
/* The last shard figures (g->known false before the first refresh or
 * without a splitter).  Never blocks on the store. */
void http_ready_shard(http_ready *r, shard_gauges *g);
/* The snapshot: true if ready; otherwise the reason in why (always
 * NUL-terminated).  Never blocks on the store. */
bool http_ready_get(http_ready *r, char *why, size_t n);
void http_ready_stop(http_ready *r);   /* NULL ok */

#endif
