/*
 * source_kube.h -- the Kubernetes request source: ShardSplit custom
 * resources (group shale.io, version v1alpha1) in one namespace.
 *
 * Lists, then watches from the list's resourceVersion (with bookmarks);
 * re-lists on 410 Gone; reconnects with capped backoff when the stream ends
 * or fails.  Objects whose spec.parent.shard is not this agent's shard are
 * ignored.  Each object's spec becomes a split request (same rules as every
 * source); `spec.abort: true` or a deletion requests an abort.  Status is
 * written through the status subresource with a JSON merge patch after
 * every change: phase, observedGeneration, the standard conditions
 * (Accepted, Progressing, Complete, Failed, Aborted), steps, children.
 *
 * Credentials: a kubeconfig (server, certificate-authority[-data], token or
 * tokenFile, insecure-skip-tls-verify) or, without one, the in-cluster
 * service account (KUBERNETES_SERVICE_HOST/PORT, the mounted token, CA and
 * namespace).  The token is read again before every request, so rotated
 * projected tokens are picked up; TLS is verified unless the kubeconfig or
 * the config says insecure (logged as a warning).
 */
#ifndef SHALE_AGENT_SOURCE_KUBE_H
#define SHALE_AGENT_SOURCE_KUBE_H

#include "config.h"
#include "service.h"

typedef struct source_kube source_kube;

shale_status source_kube_new(const agent_config *cfg, split_service *svc, source_kube **out);
/* Lists the ShardSplits once, on the calling thread, handling each object
 * as the watch would (deletions and `abort: true` become aborts).  Called
 * before the splitter's worker starts, so a split deleted while the agent
 * was down is aborted rather than resumed past the point of no return.
 * false (logged) if the list failed: the watch thread lists again. */
bool source_kube_list_once(source_kube *k);
shale_status source_kube_start(source_kube *k);
/* Status listener to register with the splitter (ctx = the source). */
void source_kube_on_status(void *ctx, const char *name, const char *status_json);
void source_kube_free(source_kube *k);   /* stops the watch; NULL ok */

/* Feeds raw watch-stream bytes (JSON event lines) as if read from the
 * server, without starting the watch thread: for the fuzz target and
 * tests.  Objects go through the same handling as watched ones. */
void source_kube_feed(source_kube *k, const char *data, size_t len);

#endif
