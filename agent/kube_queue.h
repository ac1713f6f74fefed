/*
 * kube_queue.h -- the controller's work queue, with client-go's
 * (controller-runtime's) semantics:
 *
 *   - a key is queued at most once, however often it is added;
 *   - a key being processed (between get and done) is never handed to a
 *     second worker; added meanwhile, it is queued again at done;
 *   - add_after queues a key once a delay has passed (the earliest delay
 *     asked for wins);
 *   - add_rate_limited queues it after this key's next backoff:
 *     base * 2^failures, capped at max (failures counts the rate-limited
 *     adds since the last forget), or later if the caller needs (a
 *     Retry-After);
 *   - forget resets a key's failures (after a success).
 *
 * Keys are strings (here: object UIDs), copied.  Times come from a
 * monotonic clock in milliseconds.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef SHALE_AGENT_KUBE_QUEUE_H
#define SHALE_AGENT_KUBE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"

typedef struct kube_queue kube_queue;

shale_status kube_queue_new(uint32_t base_ms, uint32_t max_ms, kube_queue **out);
void kube_queue_free(kube_queue *q);   /* NULL ok; call after the workers stopped */

void kube_queue_add(kube_queue *q, const char *key);
void kube_queue_add_after(kube_queue *q, const char *key, uint32_t delay_ms);
/* Queues key after max(its next backoff, min_ms); returns the delay used. */
uint32_t kube_queue_add_rate_limited(kube_queue *q, const char *key, uint32_t min_ms);
/* The delay the next add_rate_limited would use (min_ms 0), for tests. */
uint32_t kube_queue_next_backoff(kube_queue *q, const char *key);
uint32_t kube_queue_failures(kube_queue *q, const char *key);
void kube_queue_forget(kube_queue *q, const char *key);

/* Blocks until a key is ready (*key malloc'd, the caller frees it after
 * kube_queue_done) or the queue shut down (false).  wait_ms < 0 waits
 * for ever; 0 only takes a key that is ready now. */
bool kube_queue_get(kube_queue *q, int64_t wait_ms, char **key);
void kube_queue_done(kube_queue *q, const char *key);
void kube_queue_shutdown(kube_queue *q);
/* Keys ready now (not counting delayed or processing ones). */
size_t kube_queue_len(kube_queue *q);

#endif
