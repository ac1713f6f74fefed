/*
 * source_kube.h -- the Kubernetes request source: ShardSplit custom
 * resources (group shale.io, version v1alpha1) in one namespace, run as a
 * controller in the manner of controller-runtime (docs/kubernetes.md
 * "How the agent behaves").  It wires three parts to the splitter's
 * split_service:
 *
 *   kube_client  where the API server is, credentials, requests
 *   kube_watch   a cache of ShardSplits keyed by uid (list + watch)
 *   kube_queue   a work queue of uids with per-object rate-limited retries
 *   kube_status  status patches and Events, on their own thread
 *
 * One worker reconciles one uid at a time: the object (from the cache) and
 * the splitter's view of the split of the same name decide what to do.
 * Objects whose spec.parent.shard is not this agent's shard are ignored.
 *   - A request that cannot run (invalid, or refused: another split of the
 *     shard holds it, or its name is taken by a different request) is
 *     refused once per generation: status Failed, Accepted=False with the
 *     reason (InvalidRequest or Conflict), a Warning event; no finalizer,
 *     no retry.  A new generation (a spec edit) is looked at again.
 *   - A request it will run gets the finalizer shale.io/split first; if
 *     that patch fails, the split is not submitted and the object is
 *     retried with backoff (honouring Retry-After).
 *   - The finalizer comes off once the split has ended (or was never
 *     started); a deletion before the local WAL wipe aborts the split.
 *   - A spec edit of an accepted split changes nothing but
 *     observedGeneration (and a Warning, SpecChangeIgnored).
 * The API client is used only with writes whose wanted state differs from
 * the cache.
 */
#ifndef SHALE_AGENT_SOURCE_KUBE_H
#define SHALE_AGENT_SOURCE_KUBE_H

#include <stdint.h>
#include "config.h"
#include "service.h"

typedef struct source_kube source_kube;

shale_status source_kube_new(const agent_config *cfg, split_service *svc, source_kube **out);
/* Lists the ShardSplits once and reconciles each on the calling thread.
 * Called before the splitter's worker starts, so a split deleted while the
 * agent was down is aborted rather than resumed past the point of no
 * return.  false (logged) if the list failed: the watch thread lists
 * again. */
bool source_kube_list_once(source_kube *k);
shale_status source_kube_start(source_kube *k);
/* Status listener to register with the splitter (ctx = the source).  Only
 * hands the document to the status writer: returns at once. */
void source_kube_on_status(void *ctx, const char *name, const char *status_json);
/* Stops reconciling (no more calls into the service); the status listener
 * keeps working until source_kube_free.  For shutdown: stop, then stop the
 * splitter (no more status calls), then free.  NULL ok. */
void source_kube_stop(source_kube *k);
void source_kube_free(source_kube *k);   /* stops everything; NULL ok */

/* Feeds raw watch-stream bytes (JSON event lines) as if read from the
 * server and reconciles what changed on the calling thread, without
 * starting the watch: for the fuzz target and tests. */
void source_kube_feed(source_kube *k, const char *data, size_t len);

/* API requests sent so far (for tests and logs). */
uint64_t source_kube_requests(source_kube *k);

#endif
