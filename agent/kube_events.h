/*
 * kube_events.h -- which Kubernetes Events to post, in the manner of
 * client-go's event correlator: repeats of the same event (object, type,
 * reason, message) within 10 minutes raise the first one's count (a PATCH)
 * instead of making a new Event, and each object may cause 25 new Events in
 * a burst, then one per 5 minutes (the rest are dropped).  Pure
 * bookkeeping: no I/O, times passed in (milliseconds, any monotonic clock).
 *
 * Thread safety: none; the caller serialises (kube_status.c holds its lock).
 */
#ifndef SHALE_AGENT_KUBE_EVENTS_H
#define SHALE_AGENT_KUBE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct kube_evagg kube_evagg;
typedef enum { KUBE_EV_POST, KUBE_EV_PATCH, KUBE_EV_DROP } kube_ev_action;

kube_evagg *kube_evagg_new(void);   /* NULL if out of memory */
void kube_evagg_free(kube_evagg *a);
/* What to do with an event about object uid at now_ms: POST a new Event
 * named name_out (objname.<16 hex digits>), PATCH the earlier one named
 * name_out to *count, or DROP it (rate limit).  Records the decision. */
kube_ev_action kube_evagg_decide(kube_evagg *a, const char *uid, const char *objname,
                                 const char *type, const char *reason, const char *message,
                                 int64_t now_ms, char *name_out, size_t n, int *count);
/* The object is gone: its records and its rate limit go. */
void kube_evagg_forget(kube_evagg *a, const char *uid);

#endif
