/*
 * kube_status.h -- what the agent writes back to Kubernetes about a
 * ShardSplit: its status (through the status subresource) and core/v1
 * Events.  All writes happen on this module's own thread: callers (the
 * splitter's status listener, the controller) hand over the wanted state
 * and return at once, so a slow or failing API server never slows a step.
 *
 * Status.  Built from the splitter's status document (service.h) and the
 * object's generation: phase, reason, message, observedGeneration, the
 * conditions below, and the document's details (steps, children,
 * checkpointId, times, verifyMode, plan, stalled, lease).  For each object
 * only the newest wanted status is kept (older ones are dropped unwritten),
 * and it is written only if it differs from the last one written (or, for
 * the first write after a start, from what the cache shows) in phase,
 * reason, message, observedGeneration or a condition.  A non-final status
 * waits until interval_ms after the object's previous write (the finalizer
 * patch counts: kube_status_touch), so short phases are written together;
 * Complete, Failed and Aborted are written at once.  A failed write is
 * retried (backoff 200 ms to 30 s, or the server's Retry-After); a 404
 * drops it (the object is gone).
 *
 * Conditions (type: True when ...), each with observedGeneration = the
 * object's current generation and a lastTransitionTime that changes only
 * when that condition's status changes:
 *   Accepted     the request was accepted (False with the refusal's reason)
 *   Progressing  the split is between Accepted and its end
 *   Stalled      a step after the WAL wipe keeps failing and is retried
 *   Complete, Failed, Aborted   the split ended so
 *
 * Events (core/v1, POST /api/v1/namespaces/NS/events, involvedObject with
 * uid and resourceVersion so `kubectl describe` finds them): one per phase
 * an object enters, Normal, or Warning for Failed, Stalled and refusals,
 * reason = the phase (or the refusal's reason).  Repeats of the same event
 * (object, type, reason, message) within 10 minutes increase the first
 * one's count (a PATCH) instead of making a new one, and each object may
 * cause 25 events in a burst, then one per 5 minutes (more are dropped and
 * logged), as client-go's event recorder does (kube_events.h).
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef SHALE_AGENT_KUBE_STATUS_H
#define SHALE_AGENT_KUBE_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "kube_client.h"
#include "kube_events.h"

typedef struct kube_status kube_status;

/* The object a write is about (all borrowed for the call). */
typedef struct kube_target {
    const char *ns, *name, *uid, *rv;
    long long generation;
    json_t *status;            /* its status as the cache shows it, or NULL */
} kube_target;

/* instance: names this agent in events (its shard).  The client is
 * borrowed.  Starts the writer thread. */
shale_status kube_status_new(kube_client *c, const char *instance, uint32_t interval_ms,
                             kube_status **out);
/* Writes what is pending (at most wait_ms), then stops.  NULL ok. */
void kube_status_free(kube_status *ks, int64_t wait_ms);

/* The wanted status: doc is a status document (service.h) as JSON text.
 * A refusal is a document with phase Failed, its reason and message, and
 * "refused": true (then Accepted is False). */
void kube_status_want(kube_status *ks, const kube_target *t, const char *doc);
/* An extra event (e.g. SpecChangeIgnored), through the same aggregation. */
void kube_status_event(kube_status *ks, const kube_target *t, bool warning, const char *reason,
                       const char *message);
/* Counts a write of ours to the object now (for the coalescing interval). */
void kube_status_touch(kube_status *ks, const char *uid);
/* The object is gone: drop what is pending for it. */
void kube_status_forget(kube_status *ks, const char *uid);
/* True once nothing is pending or in flight (for tests). */
bool kube_status_idle(kube_status *ks);

typedef struct kube_status_stats {
    uint64_t status_writes, status_failures, coalesced, events_posted, events_aggregated,
             events_dropped, event_failures;
} kube_status_stats;
void kube_status_get_stats(kube_status *ks, kube_status_stats *out);

/* ---- pure parts, for tests ---------------------------------------------- */

/* The conditions for a status document at generation gen; prev is the
 * object's current conditions array (or NULL) whose lastTransitionTime is
 * kept where a condition's status is unchanged; now is RFC 3339.  New
 * reference. */
json_t *kube_conditions(json_t *doc, long long gen, json_t *prev, const char *now);
/* The status to write (the conditions included).  New reference. */
json_t *kube_status_body(json_t *doc, long long gen, json_t *prev_status, const char *now);
/* True if a and b (status objects, NULL = none) differ in what triggers a
 * write: phase, reason, message, observedGeneration, conditions. */
bool kube_status_differs(json_t *a, json_t *b);


#endif
