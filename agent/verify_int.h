/*
 * verify_int.h -- what verify.c (the step: phases, workers, both modes)
 * and verify_refs.c (the references mode's checks) share.  Private to the
 * Verify step.
 */
#ifndef SHALE_AGENT_VERIFY_INT_H
#define SHALE_AGENT_VERIFY_INT_H

#include "verify.h"
#include "shale_admin.h"

#define WINDOW 16          /* keys compared per sampled window */
/* Windows per child inside its key span, besides the one at its range
 * start: a fixed number, whatever the number of SSTs the child references
 * (a references split's reads do not grow with the shard). */
#define SPAN_SAMPLES 3
/* A store holding this many objects the children reference is checked by
 * one LIST of its SSTs (with their sizes) instead of a HEAD each: the
 * HEADs grew with the shard (one per SST: 7 at 500 MB, 1 at 50 MB), the
 * LIST does not until the store holds a page of SSTs (1000: 64 GB of 64 MiB
 * SSTs).  Two: one LIST instead of two HEADs is one request fewer; a
 * single object keeps its HEAD (a LIST costs more than a HEAD on S3, and
 * lists every SST of the store, referenced or not). */
#define LIST_MIN_OBJECTS 2

static inline int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    return shale_key_compare(a, al, b, bl);
}

/* What every child's check shares: read once before the workers start. */
typedef struct verify_ctx {
    run *r;
    split_verify mode;
    const char *cp;                  /* the split's checkpoint id */
    shale_reader *parent;            /* at the checkpoint; shared by threads */
    shale_cache *cache;              /* shared by the parent and child readers */
    shale_manifest_view *pinned;     /* the parent's version the checkpoint pins */
    shale_manifest_view *latest;     /* the parent's latest version (its pins) */
} verify_ctx;

/* Per child results. */
typedef struct child_result {
    uint64_t keys;                   /* full: keys compared */
    uint64_t ssts, windows;          /* references: SSTs checked, windows read */
} child_result;

/* One unit of Verify's second phase: a LIST of a store's SSTs or a HEAD of
 * a referenced object (refs_group_heads), or a
 * window of keys read through the child's read path against the parent's
 * (at the range start, at SPAN_SAMPLES points spread over the child's
 * key span, and at its range end, where the child must serve nothing). */
typedef struct vtask {
    size_t child;
    const shale_manifest_sst *head;  /* non-NULL: HEAD this object */
    const char *list_store;          /* non-NULL: LIST this store's SSTs
                                        and check every object of it any
                                        child references (refs_group_heads) */
    bool at_mid;                     /* the window starts at mid, else at
                                        from (NULL: the range start) */
    const void *from;                /* the child's range end (borrowed from
                                        the request), or NULL */
    size_t from_len;                 /* of mid or from */
    long end_of;                     /* a range-start window: also the end
                                        window of this child, whose range
                                        ends where this one's starts (one
                                        prefetch for both; -1: none) */
    uint8_t mid[64 + 8];
} vtask;

/* The parent's reader at the split's checkpoint into v->parent, with
 * v->cache (verify.c; the warm-up opens it too, verify_warm.c).  at: the
 * version the run's writer stands on (verify_parent_hint, read on the
 * worker: the writer may be closed meanwhile), 0 for none. */
uint64_t verify_parent_hint(const run *r);
shale_status verify_open_parent(verify_ctx *v, uint64_t at);
/* Reads into the parent's cache what window t of child c reads first in
 * every level (shale_reader_prefetch from the window's start).  Errors are
 * no verdict: the window's scans read what they lack. */
void verify_window_prefetch(shale_reader *parent, const split_child *c, const vtask *t);
/* The block cache's size (splitter_options.verify_cache_bytes or the
 * default) and the run's Verify mode (the request's, else the agent's). */
size_t verify_cache_bytes(const splitter *sp);
split_verify verify_mode_of(const run *r);

/* ---- the references mode's checks (verify_refs.c) ---------------------- */

shale_status refs_check_object(const verify_ctx *v, const split_child *c,
                               const shale_manifest_view *cm,
                               const shale_manifest_sst *h);
/* The child's manifest records no WAL to replay (the split's full flush
 * left none).  With refs_check_child_wal's listing, or alone where the
 * child's manifest is known to be its latest version (verify.c: a writer
 * writes a manifest version before any WAL object). */
shale_status refs_check_child_replay(const split_child *c, const shale_manifest_view *cm);
shale_status refs_check_child_wal(const verify_ctx *v, const split_child *c,
                                  const shale_manifest_view *cm, const shale_objlist *listed);
const char *refs_request_wal(const split_child *c);
/* Appends child ci's tasks to *t: a HEAD per referenced object not yet
 * HEADed for another child, the window at its range start, the one at its
 * range end and SPAN_SAMPLES windows inside its key span. */
shale_status refs_add_tasks(size_t ci, const shale_manifest_view *cm, const split_child *c,
                            vtask **t, size_t *n, size_t *cap);
/* Replaces the HEAD tasks of a store that holds at least LIST_MIN_OBJECTS
 * referenced objects by one LIST task of that store (refs_check_listed);
 * returns the tasks left. */
size_t refs_group_heads(vtask *t, size_t n);
/* A LIST task: every object in store `uri` that a child references exists
 * there with its recorded size (one listing of the store's SST prefix, its
 * sizes too).  cms: every child's manifest. */
shale_status refs_check_listed(const verify_ctx *v, shale_manifest_view *const *cms,
                               const char *uri);
shale_status refs_child_manifest(const verify_ctx *v, const split_child *c,
                                 shale_reader *child, shale_manifest_view **out);
/* Folds each child's range-end window into the range-start window of the
 * child whose range starts there (one prefetch of those blocks, one task:
 * the two windows read the same blocks); returns the tasks left. */
size_t refs_fold_end_windows(const split_request *q, vtask *t, size_t n);
/* Origin, range and references, against the parent's pinned version (no
 * request). */
shale_status refs_check_manifest(const verify_ctx *v, const split_child *c,
                                 const shale_manifest_view *cm, child_result *res);
/* The child's pins, against the parent's latest version (v->latest). */
shale_status refs_check_pins(const verify_ctx *v, const split_child *c,
                             const shale_manifest_view *cm);

#endif
