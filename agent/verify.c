/*
 * verify.c -- the Verify step of a split (docs/agent.md "Verify").
 *
 * Two modes, chosen per request (`verify:`) or by the agent's default
 * (`verify.mode`):
 *
 *   full        every key and value of each child against the parent's
 *               range at the split's checkpoint.  Walks the data twice,
 *               reads it from the store once (the readers share a block
 *               cache); its time grows with the shard, its memory does
 *               not (verify_full.c walks in pieces).
 *   references  what makes a child equal its range by construction,
 *               checked without reading the data: the child's manifest
 *               (initialized, the requested range, made from this
 *               checkpoint, nothing to replay, no WAL written since),
 *               its SST references (exactly the parent's SSTs at the
 *               checkpoint that overlap its range, level by level, each
 *               object present with its recorded size), its pins in every
 *               store it references, and reads through the child's own
 *               read path: a window of keys and values at its range start
 *               and at sample points inside every referenced SST, each
 *               compared with the parent's.  Its cost grows with the
 *               number of SSTs, not with their bytes.
 *
 * Both are read-only and may be redone after a crash.  A mismatch is
 * SHALE_CORRUPT and sets step_result.mismatch (the splitter fails the split
 * as VerifyFailed); anything else, a read error above all, is an ordinary
 * step error that the splitter retries: a child that could not be read has
 * not been shown to differ.
 */
#include "verify.h"
#include "shale_admin.h"
#include "verify_open.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WINDOW 16          /* keys compared per sampled window */
#define INNER_SAMPLES 3    /* sample points inside each referenced SST */

/* verify.h */
void verify_key_text(const void *k, size_t kl, char *out, size_t outlen)
{
    char *e = shale_key_escape(k, kl > 64 ? 64 : kl);
    snprintf(out, outlen, "'%s'%s", e ? e : "?", kl > 64 ? "..." : "");
    free(e);
}

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    return shale_key_compare(a, al, b, bl);
}

typedef struct child_scan {
    shale_reader *r;
    const void *from, *to;
    size_t from_len, to_len;
    shale_iter *it;
    shale_status rc;
    char msg[512];                   /* shale_errmsg() is per thread */
} child_scan;

static void *child_scan_run(void *arg)
{
    child_scan *c = arg;
    if ((c->rc = shale_reader_scan(c->r, c->from, c->from_len, c->to, c->to_len, &c->it)))
        snprintf(c->msg, sizeof c->msg, "%s", shale_errmsg());
    return NULL;
}

/* verify.h.  The child's scan is bounded by `to` only: with to NULL, a
 * child serving a key beyond its range fails here. */
shale_status verify_compare(shale_reader *parent, shale_reader *child, const split_child *c,
                            const void *from, size_t from_len, const void *to, size_t to_len,
                            uint64_t limit, bool concurrent, uint64_t *count)
{
    const void *ps = c->start, *pe = c->end;
    size_t psl = c->start_len, pel = c->end_len;
    if (from && (!ps || key_cmp(from, from_len, ps, psl) > 0)) {
        ps = from;
        psl = from_len;
    }
    if (to && (!pe || key_cmp(to, to_len, pe, pel) < 0)) {
        pe = to;
        pel = to_len;
    }
    shale_iter *pi = NULL, *ci = NULL;
    /* concurrent: the two scans open their SSTs (each a few round trips on
     * S3: footer, index, first block) at the same time, the child's on a
     * thread of its own -- for the first window in an SST, whose opens
     * are the cost; later windows find the SSTs open and the child finds
     * the parent's blocks in the shared cache if it reads after it. */
    child_scan cs = {.r = child, .from = from, .from_len = from ? from_len : 0, .to = to,
                     .to_len = to ? to_len : 0, .rc = SHALE_OK};
    pthread_t th;
    bool threaded = concurrent && !pthread_create(&th, NULL, child_scan_run, &cs);
    shale_status rc = shale_reader_scan(parent, ps, psl, pe, pel, &pi);
    if (threaded)
        pthread_join(th, NULL);
    else
        child_scan_run(&cs);
    ci = cs.it;
    if (!rc && cs.rc)
        rc = shale_error_set(cs.rc, "%s", cs.msg);
    uint64_t n = 0;
    char kt[200];
    while (!rc && (!limit || n < limit)) {
        bool pv = shale_iter_valid(pi), cv = shale_iter_valid(ci);
        /* An iterator that stopped on an error has not reached the end of
         * its data: what follows is a read error, never a missing key. */
        if ((!pv && (rc = shale_iter_status(pi))) || (!cv && (rc = shale_iter_status(ci))))
            break;
        if (!pv && !cv)
            break;
        size_t pkl = 0, ckl = 0, pvl = 0, cvl = 0;
        const void *pk = pv ? shale_iter_key(pi, &pkl) : NULL;
        const void *ck = cv ? shale_iter_key(ci, &ckl) : NULL;
        int cmp = !pv ? 1 : !cv ? -1 : key_cmp(pk, pkl, ck, ckl);
        if (cmp < 0) {
            verify_key_text(pk, pkl, kt, sizeof kt);
            rc = shale_error_set(SHALE_CORRUPT,
                                 "verify: child %s lacks key %s of its range (after "
                                 "%llu equal keys)", c->name, kt, (unsigned long long)n);
        } else if (cmp > 0) {
            verify_key_text(ck, ckl, kt, sizeof kt);
            rc = shale_error_set(SHALE_CORRUPT, "verify: child %s holds key %s, which the parent "
                                                "does not have in the child's range (after %llu "
                                                "equal keys)", c->name, kt, (unsigned long long)n);
        } else {
            const void *pval = shale_iter_value(pi, &pvl), *cval = shale_iter_value(ci, &cvl);
            if (pvl != cvl || memcmp(pval, cval, pvl)) {
                verify_key_text(pk, pkl, kt, sizeof kt);
                rc = shale_error_set(SHALE_CORRUPT,
                                     "verify: child %s returns a different value for "
                                     "key %s (%zu bytes; the parent %zu)", c->name, kt,
                                     cvl, pvl);
            }
        }
        if (rc)
            break;
        n++;
        shale_iter_next(pi);
        shale_iter_next(ci);
    }
    /* A read error names the child it was found for.  A damaged block
     * (SHALE_CORRUPT: its checksum fails) is a finding; any other error
     * (I/O, timeout) is retried by the splitter. */
    shale_status pst = shale_iter_status(pi), cst = shale_iter_status(ci);
    if (pst && (!rc || rc == pst))
        rc = shale_error_prefix(pst, "verify: reading the parent's range of child %s", c->name);
    else if (cst && (!rc || rc == cst))
        rc = shale_error_prefix(cst, "verify: reading child %s", c->name);
    shale_iter_free(pi);
    shale_iter_free(ci);
    *count = n;
    return rc;
}

/* ---- references mode ------------------------------------------------------ */

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

static bool same_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    if (!a || !al)
        return !b || !bl;
    return b && al == bl && !memcmp(a, b, al);
}

/* The child's expected range: the request's, within the parent's own. */
static void expected_range(const split_child *c, const shale_manifest_view *pm, const uint8_t **s,
                           size_t *sl, const uint8_t **e, size_t *el)
{
    *s = c->start;
    *sl = c->start_len;
    *e = c->end;
    *el = c->end_len;
    if (pm->range_start && (!*s || key_cmp(*s, *sl, pm->range_start, pm->range_start_len) < 0)) {
        *s = pm->range_start;
        *sl = pm->range_start_len;
    }
    if (pm->range_end && (!*e || key_cmp(*e, *el, pm->range_end, pm->range_end_len) > 0)) {
        *e = pm->range_end;
        *el = pm->range_end_len;
    }
}

/* One child handle against the parent's: the same object, described alike. */
static shale_status same_handle(const split_child *c, const char *where,
                                const shale_manifest_sst *want,
                                const char *want_store, const shale_manifest_sst *got)
{
    const char *got_store = got->store_uri ? got->store_uri : "(the child's own store)";
    if (strcmp(want->id, got->id))
        return shale_error_set(SHALE_CORRUPT,
                               "verify: child %s lacks the parent's SST "
                               "%s at %s (it has %s there)", c->name, want->id, where,
                               got->id);
    if (strcmp(want_store, got_store))
        return shale_error_set(SHALE_CORRUPT,
                               "verify: child %s references SST %s in store %s; it "
                               "lives in %s", c->name, got->id, got_store, want_store);
    if (want->size != got->size || want->entries != got->entries ||
        !same_bytes(want->first_key, want->first_klen, got->first_key, got->first_klen) ||
        !same_bytes(want->last_key, want->last_klen, got->last_key, got->last_klen))
        return shale_error_set(SHALE_CORRUPT, "verify: child %s describes SST %s unlike the parent "
                                              "(size, entries or key bounds differ)", c->name,
                               got->id);
    return SHALE_OK;
}

/* The child's L0 and sorted runs are exactly the parent's SSTs at the
 * checkpoint that overlap its range, in the same order. */
static shale_status check_refs(const verify_ctx *v, const split_child *c,
                               const shale_manifest_view *cm,
                               uint64_t *nssts)
{
    const shale_manifest_view *pm = v->pinned;
    const char *puri = parent_store(v->r);
    const uint8_t *s, *e;
    size_t sl, el;
    expected_range(c, pm, &s, &sl, &e, &el);
    char where[64];
    size_t ci = 0;
    for (size_t k = 0; k < pm->l0_count; k++) {
        const shale_manifest_sst *h = &pm->l0[k];
        if (!shale_manifest_sst_overlaps(h, s, sl, e, el))
            continue;
        snprintf(where, sizeof where, "L0 position %zu", ci);
        if (ci >= cm->l0_count)
            return shale_error_set(SHALE_CORRUPT, "verify: child %s lacks the parent's L0 SST %s",
                                   c->name, h->id);
        shale_status rc = same_handle(c, where, h, h->store_uri ? h->store_uri : puri,
                                      &cm->l0[ci++]);
        if (rc)
            return rc;
    }
    if (ci != cm->l0_count)
        return shale_error_set(SHALE_CORRUPT, "verify: child %s has L0 SST %s, which the parent's "
                                              "checkpoint does not reference in its range", c->name,
                               cm->l0[ci].id);
    *nssts = ci;
    size_t cr = 0;
    for (size_t r = 0; r < pm->run_count; r++) {
        const shale_manifest_run *prun = &pm->runs[r];
        const shale_manifest_run *crun = NULL;
        size_t j = 0;
        for (size_t k = 0; k < prun->count; k++) {
            const shale_manifest_sst *h = &prun->ssts[k];
            if (!shale_manifest_sst_overlaps(h, s, sl, e, el))
                continue;
            if (!crun) {
                if (cr >= cm->run_count || cm->runs[cr].id != prun->id)
                    return shale_error_set(SHALE_CORRUPT, "verify: child %s lacks the parent's "
                                                          "sorted run %u", c->name, prun->id);
                crun = &cm->runs[cr++];
            }
            snprintf(where, sizeof where, "sorted run %u position %zu", prun->id, j);
            if (j >= crun->count)
                return shale_error_set(SHALE_CORRUPT, "verify: child %s lacks SST %s of sorted run "
                                                      "%u", c->name, h->id, prun->id);
            shale_status rc = same_handle(c, where, h, h->store_uri ? h->store_uri : puri,
                                          &crun->ssts[j++]);
            if (rc)
                return rc;
        }
        if (crun && j != crun->count)
            return shale_error_set(SHALE_CORRUPT,
                                   "verify: child %s has SST %s in sorted run %u, "
                                   "which the parent's checkpoint does not reference "
                                   "in its range", c->name, crun->ssts[j].id, prun->id);
        *nssts += j;
    }
    if (cr != cm->run_count)
        return shale_error_set(SHALE_CORRUPT, "verify: child %s has sorted run %u, which the "
                                              "parent's checkpoint does not have", c->name,
                               cm->runs[cr].id);
    return SHALE_OK;
}

/* Every store the child references holds a pin on the version it reads, so
 * that store's GC keeps the objects. */
static shale_status check_pins(const verify_ctx *v, const split_child *c,
                               const shale_manifest_view *cm)
{
    const char *puri = parent_store(v->r);
    const shale_manifest_checkpoint *src = shale_manifest_view_checkpoint(v->latest, v->cp);
    for (size_t p = 0; p < cm->parent_count; p++) {
        const shale_manifest_parent *pr = &cm->parents[p];
        bool direct = !strcmp(pr->store_uri, puri);
        if (direct && strcmp(pr->source_checkpoint_id, v->cp))
            return shale_error_set(SHALE_CORRUPT, "verify: child %s records checkpoint %s of the "
                                                  "parent, not the split's %s", c->name,
                                   pr->source_checkpoint_id, v->cp);
        shale_manifest_view *owner = NULL;
        shale_objstore *s = NULL;
        shale_status rc = SHALE_OK;
        if (!direct) {
            rc = shale_objstore_open(pr->store_uri, &v->r->sp->o.db.store, &s);
            if (!rc)
                rc = shale_manifest_view_load(s, 0, &owner);
            shale_objstore_close(s);
            if (rc)
                return shale_error_prefix(rc, "verify: child %s: reading the manifest of %s",
                                          c->name, pr->store_uri);
        }
        const shale_manifest_checkpoint *pin =
            shale_manifest_view_checkpoint(direct ? v->latest : owner, pr->final_checkpoint_id);
        if (!pin)
            rc = shale_error_set(SHALE_CORRUPT,
                                 "verify: child %s has no pin (checkpoint %s) in %s: "
                                 "that store's GC could delete what the child reads",
                                 c->name, pr->final_checkpoint_id, pr->store_uri);
        else if (direct && src && pin->manifest_id != src->manifest_id)
            rc = shale_error_set(SHALE_CORRUPT, "verify: child %s pins version %llu of the parent, "
                                                "not the checkpoint's %llu", c->name,
                                 (unsigned long long)pin->manifest_id,
                                 (unsigned long long)src->manifest_id);
        shale_manifest_view_free(owner);
        if (rc)
            return rc;
    }
    return SHALE_OK;
}

/* Which of the child's recorded parents holds SST h (check_refs has held
 * every SST's store to a parent's). */
static shale_status sst_parent(const split_child *c, const shale_manifest_view *cm,
                               const shale_manifest_sst *h,
                               size_t *at)
{
    size_t i = 0;
    while (i < cm->parent_count && strcmp(cm->parents[i].store_uri, h->store_uri))
        i++;
    if (i == cm->parent_count)
        return shale_error_set(SHALE_CORRUPT,
                               "verify: child %s references SST %s in %s, which is not "
                               "among its parents (no pin keeps it)", c->name, h->id,
                               h->store_uri);
    *at = i;
    return SHALE_OK;
}

/* A referenced object exists with its recorded size: one HEAD. */
static shale_status check_object(const verify_ctx *v, const split_child *c,
                                 const shale_manifest_view *cm,
                                 const shale_manifest_sst *h)
{
    size_t i;
    shale_status rc = sst_parent(c, cm, h, &i);
    if (rc)
        return rc;
    shale_objstore *s = NULL;
    if ((rc = shale_objstore_open(h->store_uri, &v->r->sp->o.db.store, &s)))
        return rc;
    char key[64];
    uint64_t size = 0;
    shale_sst_key(h->id, key, sizeof key);
    rc = shale_objstore_head(s, key, &size, NULL);
    if (rc == SHALE_NOT_FOUND)
        rc = shale_error_set(SHALE_CORRUPT,
                             "verify: child %s references %s/%s, which does not exist",
                             c->name, h->store_uri, key);
    else if (!rc && size != h->size)
        rc = shale_error_set(SHALE_CORRUPT, "verify: child %s references %s/%s of %llu bytes; it "
                                            "holds %llu", c->name, h->store_uri, key,
                             (unsigned long long)h->size, (unsigned long long)size);
    shale_objstore_close(s);
    return rc;
}

/* No WAL to replay, and nothing written to the child's WAL since the clone. */
static shale_status check_child_wal(const verify_ctx *v, const split_child *c,
                                    const shale_manifest_view *cm, const shale_objlist *listed)
{
    if (cm->replay_after_wal_id + 1 != cm->next_wal_sst_id)
        return shale_error_set(SHALE_CORRUPT,
                               "verify: child %s has WAL ids %llu..%llu to replay; the "
                               "split's full flush left none, so a writer has opened "
                               "the child since the clone", c->name,
                               (unsigned long long)cm->replay_after_wal_id + 1,
                               (unsigned long long)cm->next_wal_sst_id - 1);
    const char *wal = cm->wal_store_uri ? cm->wal_store_uri : c->store;
    char after[SHALE_KEY_MAX];
    shale_wal_key(cm->replay_after_wal_id, after, sizeof after);
    shale_objstore *w = NULL;
    shale_objlist l;
    shale_status rc = SHALE_OK;
    if (listed) {
        l = *listed;   /* borrowed: not freed below */
    } else {
        if ((rc = shale_objstore_open(wal, &v->r->sp->o.db.store, &w)))
            return rc;
        rc = shale_objstore_list_all(w, SHALE_WAL_DIR, &l);
    }
    if (!rc) {
        /* Keys are fixed width: text order is id order. */
        for (size_t i = 0; i < l.count && !rc; i++)
            if (strlen(l.items[i].key) == strlen(after) && strcmp(l.items[i].key, after) > 0)
                rc = shale_error_set(SHALE_CORRUPT,
                                     "verify: child %s's WAL store %s holds %s, "
                                     "written after the clone: a writer has opened the "
                                     "child", c->name, wal, l.items[i].key);
        if (!listed)
            shale_objlist_free(&l);
    }
    shale_objstore_close(w);
    return rc;
}

/* The WAL store a child's manifest will name: the request's (the clone
 * records it), listed beside the reader's open; check_child_wal() falls
 * back to listing cm's own if the two differ. */
static const char *request_wal(const split_child *c)
{
    return c->wal_store ? c->wal_store : c->store;
}

/* A key at fraction num/4 between a and b (b > a), by their first bytes
 * after the common prefix read as a big-endian number: a seek target, not
 * necessarily a key that exists. */
static size_t between(const uint8_t *a, size_t al, const uint8_t *b, size_t bl, int num,
                      uint8_t *out, size_t cap)
{
    size_t p = 0;
    while (p < al && p < bl && a[p] == b[p] && p + 8 < cap)
        p++;
    uint64_t x = 0, y = 0;
    for (size_t i = 0; i < 8; i++) {
        x = (x << 8) | (p + i < al ? a[p + i] : 0);
        y = (y << 8) | (p + i < bl ? b[p + i] : 0);
    }
    uint64_t m = x + ((y - x) / 4) * (uint64_t)num;
    memcpy(out, a, p);
    for (size_t i = 0; i < 8; i++)
        out[p + i] = (uint8_t)(m >> (56 - 8 * i));
    return p + 8;
}

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

/* Appends the tasks of child ci (its manifest cm) to *t. */
static shale_status add_tasks(size_t ci, const shale_manifest_view *cm, vtask **t, size_t *n,
                              size_t *cap)
{
    for (size_t l = 0; l <= cm->run_count + 1; l++) {
        const shale_manifest_sst *h = l == 0 ? NULL : l == 1 ? cm->l0 : cm->runs[l - 2].ssts;
        size_t cnt = l == 0 ? 1 : l == 1 ? cm->l0_count : cm->runs[l - 2].count;
        long prev_last = -1;   /* the previous SST's last-key window (runs only) */
        for (size_t k = 0; k < cnt; k++) {
            if (*n + 6 > *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                vtask *g = realloc(*t, nc * sizeof *g);
                if (!g)
                    return AGENT_OOM();
                *t = g;
                *cap = nc;
            }
            vtask *x = &(*t)[*n];
            memset(x, 0, 6 * sizeof *x);
            for (int q = 0; q < 6; q++)
                x[q].opener = x[q].opener2 = -1;
            if (!h) {   /* the window at the range start */
                x->child = ci;
                (*n)++;
                continue;
            }
            const shale_manifest_sst *s = &h[k];
            x[0].child = ci;
            x[0].head = s;
            x[1].child = ci;
            x[1].from = s->first_key;
            x[1].from_len = s->first_klen;
            x[1].first = true;
            x[2].child = ci;
            x[2].from = s->last_key;
            x[2].from_len = s->last_klen;
            x[2].opener = (long)(*n + 1);
            /* In a sorted run the scan from an SST's last key goes on into
             * the next SST (L0 SSTs overlap: each is its own scan). */
            if (prev_last >= 0)
                (*t)[prev_last].opener2 = (long)(*n + 1);
            prev_last = l >= 2 ? (long)(*n + 2) : -1;
            size_t m = 3;
            for (int f = 1; f <= INNER_SAMPLES; f++) {
                if (key_cmp(s->first_key, s->first_klen, s->last_key, s->last_klen) >= 0)
                    break;
                x[m].child = ci;
                x[m].from_len = between(s->first_key, s->first_klen, s->last_key, s->last_klen,
                                        f, x[m].mid, sizeof x[m].mid);
                x[m].at_mid = true;
                x[m].opener = (long)(*n + 1);
                m++;
            }
            *n += m;
        }
    }
    return SHALE_OK;
}

/* A child's manifest and its WAL store's check, for the references
 * checks: the version the child's reader just loaded (the latest at its
 * open; listing and reading it a second time would cost a LIST and a GET
 * per child for the same version), then the WAL listing. */
static shale_status child_manifest(const verify_ctx *v, const split_child *c,
                                   shale_reader *child, shale_manifest_view **out)
{
    (void)v;
    shale_manifest_view *cm = NULL;
    shale_status rc = shale_reader_manifest_view(child, &cm);
    if (rc)
        return shale_error_prefix(rc, "verify: reading child %s's manifest", c->name);
    *out = cm;
    return SHALE_OK;
}

/* The checks of a child's manifest against the parent's versions (no
 * request unless the child references a grandparent): origin, range,
 * references, pins. */
static shale_status check_manifest(const verify_ctx *v, const split_child *c,
                                   const shale_manifest_view *cm, child_result *res)
{
    const uint8_t *es, *ee;
    size_t esl, eel;
    expected_range(c, v->pinned, &es, &esl, &ee, &eel);
    shale_status rc = SHALE_OK;
    if (!cm->origin.parent_uri || strcmp(cm->origin.parent_uri, parent_store(v->r)) ||
        !cm->origin.parent_checkpoint_id || strcmp(cm->origin.parent_checkpoint_id, v->cp))
        rc = shale_error_set(SHALE_CORRUPT,
                             "verify: child %s was not cloned from checkpoint %s of %s",
                             c->name, v->cp, parent_store(v->r));
    else if (!same_bytes(es, esl, cm->range_start, cm->range_start_len) ||
             !same_bytes(ee, eel, cm->range_end, cm->range_end_len))
        rc = shale_error_set(SHALE_CORRUPT,
                             "verify: child %s's manifest has another key range than "
                             "the request's", c->name);
    if (!rc)
        rc = check_refs(v, c, cm, &res->ssts);
    if (!rc)
        rc = check_pins(v, c, cm);
    return rc;
}

/* ---- both modes ----------------------------------------------------------- */

/* Two phases, each on a pool of up to VERIFY_THREADS threads (the work is
 * round trips to the store, not CPU: the pool is sized for the store's
 * parallelism, not the cores).  Phase 1, per child: open its reader and
 * check its manifest (references) or that it is initialized (full, whose
 * walk then runs in verify_full.c).  Phase 2 (references), per task: every
 * HEAD and every sampled window of every child at once, so the critical
 * path is one child's manifest checks and one window, whatever the number
 * of children and SSTs. */
#define VERIFY_THREADS 64

typedef struct verify_job {
    const verify_ctx *v;
    verify_ctx *vm;                  /* the same, written by phase 1 only */
    int phase;
    size_t n;                        /* items of this phase */
    _Atomic size_t next;             /* next item to take */
    _Atomic bool failed;             /* phase 1: any failure; phase 2: a mismatch */
    child_result *res;               /* per child */
    shale_reader **readers;          /* per child, opened in phase 1 */
    shale_manifest_view **cms;       /* per child (references), phase 1 */
    shale_objlist *wals;             /* per child (references): its WAL store's
                                        listing, made in phase 1 */
    shale_status *wal_rcs;           /* per child: that listing's answer */
    const vtask *tasks;              /* phase 2 */
    _Atomic bool *opened;            /* phase 2, per task: a first window done */
    _Atomic size_t *firsts_left;     /* phase 2, per child: first windows not done */
    pthread_mutex_t wait_mu;         /* with wait_cv: a later window waits for */
    pthread_cond_t wait_cv;          /*   its SST's first window */
    size_t *order;                   /* phase 2: indexes into tasks */
    shale_status *rcs;               /* per item */
    char (*msgs)[512];               /* per item: shale_errmsg() is per thread */
} verify_job;

static shale_status load_parent_versions(verify_ctx *v);

static shale_status open_child(verify_job *w, size_t i)
{
    const verify_ctx *v = w->v;
    const split_child *c = &v->r->req->children[i];
    shale_options co = db_opts(v->r->sp, c->wal_store);
    co.block_cache = v->cache;
    shale_reader *child = NULL;
    shale_status rc = shale_reader_open(c->store, &co, NULL, &child);
    if (rc)
        return shale_error_prefix(rc, "verify: opening child %s", c->name);
    w->readers[i] = child;
    shale_db_info info;
    rc = shale_reader_info(child, &info);
    if (!rc && !info.initialized)
        rc = shale_error_set(SHALE_CORRUPT, "verify: child %s is not initialized", c->name);
    if (!rc && v->mode == SPLIT_VERIFY_REFERENCES)
        rc = child_manifest(v, c, child, &w->cms[i]);
    return rc;
}

/* Phase 1, item i: 0 opens the parent's reader at the checkpoint, 1 loads
 * the parent's versions, then 2+k opens child k's reader and (references)
 * 2+n+k lists child k's WAL store.  All independent: the phase costs the
 * slowest of them. */
static shale_status verify_open(verify_job *w, size_t i)
{
    verify_ctx *v = w->vm;
    if (i == 0) {
        shale_options po = db_opts(v->r->sp, parent_wal(v->r));
        po.block_cache = v->cache;
        shale_status rc = shale_reader_open(parent_store(v->r), &po, v->cp, &v->parent);
        return rc ? shale_error_prefix(rc, "verify: opening the parent at checkpoint %s", v->cp)
                  : SHALE_OK;
    }
    /* The full mode loads them too (beside its readers' opens): Complete
     * writes on the latest (do_complete). */
    if (i == 1)
        return load_parent_versions(v);
    size_t n = v->r->req->child_count;
    if (i >= 2 + n) {
        /* The child's WAL listing, beside its reader's open (it needs no
         * manifest to be made; it is judged against the manifest after). */
        const split_child *c = &v->r->req->children[i - 2 - n];
        shale_objstore *ws = NULL;
        shale_status rc = shale_objstore_open(request_wal(c), &v->r->sp->o.db.store, &ws);
        if (!rc)
            rc = shale_objstore_list_all(ws, SHALE_WAL_DIR, &w->wals[i - 2 - n]);
        shale_objstore_close(ws);
        w->wal_rcs[i - 2 - n] = rc;
        return SHALE_OK;   /* a failed listing is made again by check_child_wal */
    }
    return open_child(w, i - 2);
}

/* A later window waits until its SST's first window has opened the SST
 * in the parent's reader and the child's (the range-start window: every
 * first window of its child), so it finds the SST open instead of opening
 * it a second time; it does not wait for the other SSTs' windows.  The
 * first windows are queued before every later one, so what is waited for
 * is already running. */
static void wait_opened(verify_job *w, const vtask *t)
{
    /* Still waited for when open_all() opened every SST: the first window
     * then only reads blocks, and a later one finds the blocks it shares
     * with it in the cache.  Not waiting saved a round trip or two at most
     * and read about 40 % more blocks (two windows that miss one block
     * both read it: docs/benchmarks.md). */
    pthread_mutex_lock(&w->wait_mu);
    while (!atomic_load(&w->failed) &&
           (t->opener >= 0 ? !atomic_load(&w->opened[t->opener]) ||
                                 (t->opener2 >= 0 && !atomic_load(&w->opened[t->opener2]))
                           : atomic_load(&w->firsts_left[t->child]) > 0))
        pthread_cond_wait(&w->wait_cv, &w->wait_mu);
    pthread_mutex_unlock(&w->wait_mu);
}

static void mark_opened(verify_job *w, size_t ti, const vtask *t)
{
    pthread_mutex_lock(&w->wait_mu);
    atomic_store(&w->opened[ti], true);
    atomic_fetch_sub(&w->firsts_left[t->child], 1);
    pthread_cond_broadcast(&w->wait_cv);
    pthread_mutex_unlock(&w->wait_mu);
}

static shale_status verify_task(verify_job *w, size_t i)
{
    size_t ti = w->order[i];
    const vtask *t = &w->tasks[ti];
    const split_child *c = &w->v->r->req->children[t->child];
    if (t->head)
        return check_object(w->v, c, w->cms[t->child], t->head);
    if (!t->first)
        wait_opened(w, t);
    uint64_t n = 0;
    shale_status rc = verify_compare(w->v->parent, w->readers[t->child], c,
                                     t->at_mid ? t->mid : t->from, t->from_len, NULL, 0, WINDOW,
                                     t->first || !t->from, &n);
    if (t->first)
        mark_opened(w, ti, t);   /* also on failure: nobody waits forever */
    return rc;
}

static void *verify_worker(void *arg)
{
    verify_job *w = arg;
    for (size_t i; !atomic_load(&w->failed) && (i = atomic_fetch_add(&w->next, 1)) < w->n;) {
        w->rcs[i] = w->phase == 1 ? verify_open(w, i) : verify_task(w, i);
        if (w->rcs[i]) {
            snprintf(w->msgs[i], sizeof w->msgs[i], "%s", shale_errmsg());
            /* Phase 2 goes on past a read error, so that a mismatch found
             * by another task (a missing object's HEAD) is reported as
             * one, never hidden behind a retryable error. */
            if (w->phase != 2 || w->rcs[i] == SHALE_CORRUPT) {
                atomic_store(&w->failed, true);
                if (w->phase == 2) {   /* waiting windows give up */
                    pthread_mutex_lock(&w->wait_mu);
                    pthread_cond_broadcast(&w->wait_cv);
                    pthread_mutex_unlock(&w->wait_mu);
                }
            }
        }
    }
    return NULL;
}

/* Runs phase `phase` over n items; the result: a mismatch first, then
 * the first other error. */
static shale_status verify_phase(verify_job *w, int phase, size_t n)
{
    w->phase = phase;
    w->n = n;
    atomic_store(&w->next, 0);
    free(w->rcs);
    free(w->msgs);
    w->rcs = calloc(n ? n : 1, sizeof *w->rcs);
    w->msgs = calloc(n ? n : 1, sizeof *w->msgs);
    if (!w->rcs || !w->msgs)
        return AGENT_OOM();
    size_t nthreads = n < VERIFY_THREADS ? n : VERIFY_THREADS;
    pthread_t th[VERIFY_THREADS];
    size_t started = 0;
    while (started + 1 < nthreads && !pthread_create(&th[started], NULL, verify_worker, w))
        started++;
    verify_worker(w);   /* this thread works too */
    for (size_t t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    for (size_t i = 0; i < n; i++)
        if (w->rcs[i] == SHALE_CORRUPT)
            return shale_error_set(w->rcs[i], "%s", w->msgs[i]);
    for (size_t i = 0; i < n; i++)
        if (w->rcs[i])
            return shale_error_set(w->rcs[i], "%s", w->msgs[i]);
    return SHALE_OK;
}

/* The parent's versions Verify compares against: the one the split's
 * checkpoint pins, and the latest (which holds the children's pins). */
static shale_status load_parent_versions(verify_ctx *v)
{
    shale_objstore *s = NULL;
    shale_status rc = shale_objstore_open(parent_store(v->r), &v->r->sp->o.db.store, &s);
    if (!rc)
        rc = shale_manifest_view_load(s, 0, &v->latest);
    const shale_manifest_checkpoint *cp = rc ? NULL : shale_manifest_view_checkpoint(v->latest,
                                                                                     v->cp);
    if (!rc && !cp)
        rc = shale_error_set(SHALE_NOT_FOUND, "verify: the parent has no checkpoint %s", v->cp);
    if (!rc)
        rc = shale_manifest_view_load(s, cp->manifest_id, &v->pinned);
    shale_objstore_close(s);
    return rc;
}

/* Every SST each reader will touch opened at once, before the windows
 * (verify_open.h). */
static shale_status open_all(verify_job *w, size_t n)
{
    return verify_open_ssts(w->v->parent, w->v->pinned, w->readers,
                            (const shale_manifest_view *const *)w->cms,
                            n);
}

/* The children's ranges were
 * validated to cover the parent's range exactly, so children that each
 * equal their range hold the parent's keys, each once. */
shale_status do_verify(run *r, step_result *res_out)
{
    splitter *sp = r->sp;
    const split_request *q = r->req;
    const char *cp = r->checkpoint_id;
    char *msg = res_out->message;
    size_t msglen = sizeof res_out->message;
    split_verify mode = q->verify != SPLIT_VERIFY_DEFAULT ? q->verify : sp->o.verify;
    if (mode == SPLIT_VERIFY_DEFAULT)
        mode = SPLIT_VERIFY_FULL;
    res_out->verify_mode = mode;
    verify_ctx v = {r, mode, cp, NULL, NULL, NULL, NULL};
    /* The children's SSTs are the parent's own objects, and a child is
     * walked beside the parent's range: with one cache the child finds
     * each block the parent has just read, decoded (no second read, no
     * second decompression). */
    shale_status rc = shale_cache_new(sp->o.verify_cache_bytes ? sp->o.verify_cache_bytes
                                                               : VERIFY_CACHE_BYTES,
                                      &v.cache);
    if (rc)
        return rc;
    size_t n = q->child_count;
    verify_job w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.wait_mu, NULL);
    pthread_cond_init(&w.wait_cv, NULL);
    w.v = w.vm = &v;
    child_result *res = w.res = calloc(n ? n : 1, sizeof *res);
    w.readers = calloc(n ? n : 1, sizeof *w.readers);
    w.cms = calloc(n ? n : 1, sizeof *w.cms);
    vtask *tasks = NULL;
    size_t ntasks = 0, cap = 0;
    if (!res || !w.readers || !w.cms) {
        rc = AGENT_OOM();
        goto out;
    }
    bool refs = mode == SPLIT_VERIFY_REFERENCES;
    if (refs) {
        w.wals = calloc(n ? n : 1, sizeof *w.wals);
        w.wal_rcs = calloc(n ? n : 1, sizeof *w.wal_rcs);
        if (!w.wals || !w.wal_rcs) {
            rc = AGENT_OOM();
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            w.wal_rcs[i] = SHALE_IO;   /* not listed (yet) */
    }
    rc = verify_phase(&w, 1, 2 + (refs ? 2 * n : n));
    for (size_t i = 0; !rc && refs && i < n; i++) {
        const split_child *c = &q->children[i];
        const char *cw = w.cms[i]->wal_store_uri ? w.cms[i]->wal_store_uri : c->store;
        bool same = !w.wal_rcs[i] && !strcmp(cw, request_wal(c));
        rc = check_child_wal(&v, c, w.cms[i], same ? &w.wals[i] : NULL);
    }
    for (size_t i = 0; !rc && mode == SPLIT_VERIFY_REFERENCES && i < n; i++)
        rc = check_manifest(&v, &q->children[i], w.cms[i], &res[i]);
    size_t pieces = 0, walkers = 0;
    if (!rc && mode == SPLIT_VERIFY_FULL) {
        /* In pieces with readers of their own (verify_full.c): the phase 1
         * readers stay as they are, holding no SST. */
        shale_manifest_view *pm = NULL;
        uint64_t *keys = calloc(n ? n : 1, sizeof *keys);
        rc = keys ? shale_reader_manifest_view(v.parent, &pm) : AGENT_OOM();
        if (!rc)
            rc = verify_full_walk(r, v.cache, pm, keys, &pieces, &walkers);
        for (size_t i = 0; !rc && i < n; i++)
            res[i].keys = keys[i];
        shale_manifest_view_free(pm);
        free(keys);
    }
    for (size_t i = 0; !rc && mode == SPLIT_VERIFY_REFERENCES && i < n; i++)
        rc = add_tasks(i, w.cms[i], &tasks, &ntasks, &cap);
    if (!rc && mode == SPLIT_VERIFY_REFERENCES) {
        /* Phase 2: the HEADs and each SST's first window, which open every
         * SST once in the parent's reader and the child's, queued first;
         * then every other window, each of which waits for its own SST's
         * first window (concurrent first opens of one SST would each read
         * its index and filter) but not for the other SSTs' (a round
         * barrier made every later window wait for the slowest open). */
        w.tasks = tasks;
        w.order = calloc(ntasks ? ntasks : 1, sizeof *w.order);
        w.opened = calloc(ntasks ? ntasks : 1, sizeof *w.opened);
        w.firsts_left = calloc(n ? n : 1, sizeof *w.firsts_left);
        size_t k = 0;
        if (!w.order || !w.opened || !w.firsts_left)
            rc = AGENT_OOM();
        for (size_t i = 0; !rc && i < ntasks; i++)
            if (tasks[i].first)
                w.firsts_left[tasks[i].child]++;
        for (size_t i = 0; !rc && i < ntasks; i++)
            if (tasks[i].head || tasks[i].first)
                w.order[k++] = i;
        for (size_t i = 0; !rc && i < ntasks; i++)
            if (!tasks[i].head && !tasks[i].first)
                w.order[k++] = i;
        /* Every SST opened at once first (open_all); a failure there is
         * not a verdict: the windows open what is left themselves. */
        if (!rc)
            (void)open_all(&w, n);
        if (!rc)
            rc = verify_phase(&w, 2, ntasks);
        free(w.order);
        free(w.opened);
        free(w.firsts_left);
        for (size_t i = 0; i < ntasks; i++)
            if (!tasks[i].head)
                res[tasks[i].child].windows++;
    }
    res_out->mismatch = rc == SHALE_CORRUPT;
    uint64_t keys = 0, ssts = 0, windows = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        keys += res[i].keys;
        ssts += res[i].ssts;
        windows += res[i].windows;
        if (mode == SPLIT_VERIFY_FULL) {
            res_out->children[i].verified = true;
            res_out->children[i].key_count = res[i].keys;
        }
    }
    if (!rc && mode == SPLIT_VERIFY_FULL)
        snprintf(msg, msglen, "%llu keys in %zu children equal the parent's, key by key "
                              "(%zu pieces, %zu at a time)", (unsigned long long)keys, n,
                 pieces, walkers);
    else if (!rc)
        snprintf(msg, msglen, "%zu children reference exactly the parent's %llu SSTs in their "
                              "ranges, all present and pinned; %llu sampled windows of up to "
                              "%d keys read back equal", n, (unsigned long long)ssts,
                 (unsigned long long)windows, WINDOW);
out:
    for (size_t i = 0; i < n; i++) {
        if (w.readers)
            shale_reader_close(w.readers[i]);
        if (w.cms)
            shale_manifest_view_free(w.cms[i]);
    }
    free(w.readers);
    free(w.cms);
    for (size_t i = 0; w.wals && w.wal_rcs && i < n; i++)
        if (!w.wal_rcs[i])
            shale_objlist_free(&w.wals[i]);
    free(w.wals);
    free(w.wal_rcs);
    free(w.rcs);
    free(w.msgs);
    free(tasks);
    free(res);
    shale_manifest_view_free(v.pinned);
    /* Complete releases the checkpoint on this version (do_complete). */
    shale_manifest_view_free(r->parent_latest);
    r->parent_latest = rc ? NULL : v.latest;
    if (rc)
        shale_manifest_view_free(v.latest);
    shale_reader_close(v.parent);
    shale_cache_free(v.cache);   /* after every reader that uses it */
    pthread_mutex_destroy(&w.wait_mu);
    pthread_cond_destroy(&w.wait_cv);
    return rc;
}
