/*
 * kube_watch.h -- an informer: a cache of the objects of one collection
 * (here the ShardSplits of one namespace) keyed by metadata.uid, kept
 * current by a list and then a watch from the list's resourceVersion.
 *
 *   - watches ask for bookmarks (allowWatchBookmarks) and resume from the
 *     last resourceVersion seen, so a renewed watch replays nothing;
 *   - 410 Gone, as the answer or as an in-stream ERROR event with code
 *     410, means the resourceVersion is too old: list again;
 *   - other failures (no answer, 5xx, 429, an in-stream ERROR with another
 *     code) retry the watch after a backoff from 200 ms doubling to 30 s,
 *     or after the server's Retry-After if longer; a good answer resets it;
 *   - a re-list replaces the cache: objects missing from it were deleted.
 *
 * Every change (added, modified, deleted, or gone in a re-list) calls the
 * change callback with the object's uid, from the thread that saw it, with
 * no lock held.  A deleted object is no longer in the cache when the
 * callback runs: that is how the controller learns to forget it.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef SHALE_AGENT_KUBE_WATCH_H
#define SHALE_AGENT_KUBE_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kube_client.h"

typedef struct kube_watch kube_watch;
typedef void (*kube_change_fn)(void *ctx, const char *uid);

/* path: the collection, e.g. /apis/shale.io/v1alpha1/namespaces/NS/shardsplits
 * selector: a label selector or NULL.  The client is borrowed. */
shale_status kube_watch_new(kube_client *c, const char *path, const char *selector,
                            kube_change_fn fn, void *ctx, kube_watch **out);
/* Lists once on the calling thread; false (logged) if the list failed. */
bool kube_watch_list(kube_watch *w);
/* Starts the watch thread (lists first unless kube_watch_list succeeded). */
shale_status kube_watch_start(kube_watch *w);
/* Stops the thread (cancel the client first so a stream ends at once). */
void kube_watch_free(kube_watch *w);   /* NULL ok */

/* A copy of the cached object (json_decref it), or NULL. */
json_t *kube_watch_get(kube_watch *w, const char *uid);
/* The uid of the cached object named name (malloc'd), or NULL. */
char *kube_watch_uid_of(kube_watch *w, const char *name);
/* Puts an object the caller got back from a write, unless the cache holds
 * a newer resourceVersion of it already.  Steals nothing (copies obj). */
void kube_watch_put(kube_watch *w, json_t *obj);

/* Feeds watch-stream bytes (JSON event lines) as if read from the server:
 * for the fuzz target and tests.  Returns false if the stream asked for a
 * re-list (an ERROR event). */
bool kube_watch_feed(kube_watch *w, const char *data, size_t len);

typedef struct kube_watch_stats {
    uint64_t lists, watches, relists_410, events, bookmarks;
} kube_watch_stats;
void kube_watch_get_stats(kube_watch *w, kube_watch_stats *out);

#endif
