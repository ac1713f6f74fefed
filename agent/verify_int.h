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
#define INNER_SAMPLES 3    /* sample points inside each referenced SST */

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

/* One unit of Verify's second phase: a HEAD of a referenced object, or a
 * window of keys read through the child's read path against the parent's
 * (at the range start, and at the first key, the last key and points
 * inside every SST the child references). */
typedef struct vtask {
    size_t child;
    const shale_manifest_sst *head;  /* non-NULL: HEAD this object */
    const void *from;                /* window start (NULL: the range start) */
    size_t from_len;
    bool at_mid;                     /* the window starts at mid (the array
                                        moves while it grows: no pointer) */
    bool first;                      /* the SST's first window: opens it */
    long opener;                     /* a later window of an SST: the index of
                                        that SST's first window, which it
                                        waits for (-1: none) */
    long opener2;                    /* the window at an SST's last key reads
                                        on into the next SST of its run: that
                                        one's first window too (-1: none) */
    uint8_t mid[64 + 8];
} vtask;

/* ---- the references mode's checks (verify_refs.c) ---------------------- */

shale_status refs_check_object(const verify_ctx *v, const split_child *c,
                               const shale_manifest_view *cm,
                               const shale_manifest_sst *h);
shale_status refs_check_child_wal(const verify_ctx *v, const split_child *c,
                                  const shale_manifest_view *cm, const shale_objlist *listed);
const char *refs_request_wal(const split_child *c);
shale_status refs_add_tasks(size_t ci, const shale_manifest_view *cm, vtask **t, size_t *n,
                            size_t *cap);
shale_status refs_child_manifest(const verify_ctx *v, const split_child *c,
                                 shale_reader *child, shale_manifest_view **out);
shale_status refs_check_manifest(const verify_ctx *v, const split_child *c,
                                 const shale_manifest_view *cm, child_result *res);

#endif
