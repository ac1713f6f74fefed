/*
 * verify_refs.c -- Verify by references: the checks of one child that make
 * it equal its range by construction, without reading its data (see
 * verify.c's header for the mode, docs/agent.md "Verify").  Each function
 * is one task of verify.c's phases; none keeps state.
 */
#include "verify_int.h"
#include "agent_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Every SST the child references lives in one of its recorded parents
 * (no request). */
static shale_status check_parents(const split_child *c, const shale_manifest_view *cm)
{
    for (size_t l = 0; l <= cm->run_count; l++) {
        const shale_manifest_sst *h = l == 0 ? cm->l0 : cm->runs[l - 1].ssts;
        size_t cnt = l == 0 ? cm->l0_count : cm->runs[l - 1].count;
        for (size_t k = 0; k < cnt; k++) {
            size_t i;
            shale_status rc = sst_parent(c, cm, &h[k], &i);
            if (rc)
                return rc;
        }
    }
    return SHALE_OK;
}

/* A referenced object exists with its recorded size: one HEAD (once per
 * object, for the first child that references it: refs_add_tasks). */
shale_status refs_check_object(const verify_ctx *v, const split_child *c,
                               const shale_manifest_view *cm,
                               const shale_manifest_sst *h)
{
    (void)cm;
    shale_status rc = SHALE_OK;
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

/* verify_int.h.  The HEADs refs_add_tasks made, one per object, grouped by
 * store: a store with LIST_MIN_OBJECTS or more becomes one LIST task in
 * the place of its first HEAD (the others are dropped), so the requests
 * do not grow with the parent's SSTs. */
size_t refs_group_heads(vtask *t, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        vtask *x = &t[i];
        if (!x->head || !x->head->store_uri) {
            t[out++] = *x;
            continue;
        }
        const char *uri = x->head->store_uri;
        bool listed = false;   /* an earlier task lists this store already */
        for (size_t j = 0; j < out && !listed; j++)
            listed = t[j].list_store && !strcmp(t[j].list_store, uri);
        if (listed)
            continue;
        size_t same = 0;
        for (size_t j = i; j < n; j++)
            same += t[j].head && t[j].head->store_uri && !strcmp(t[j].head->store_uri, uri);
        if (same >= LIST_MIN_OBJECTS) {
            x->list_store = uri;
            x->head = NULL;
        }
        t[out++] = *x;
    }
    return out;
}

static int objinfo_cmp(const void *key, const void *item)
{
    return strcmp(key, ((const shale_objinfo *)item)->key);
}

/* verify_int.h.  What a HEAD per object checked, for all of a store's
 * objects at once: a listing made after every child's manifest was read
 * shows each object present then, with its size (S3, RGW, file:// and
 * mem:// list what is written, at once).  Every SST key has the same
 * prefix (shale_sst_key: "compacted/"), so the listing is of it alone, not
 * of the store's manifests, WAL or journal. */
shale_status refs_check_listed(const verify_ctx *v, shale_manifest_view *const *cms,
                               const char *uri)
{
    const split_request *q = v->r->req;
    char key[64], prefix[64];
    shale_sst_key("", prefix, sizeof prefix);
    char *slash = strchr(prefix, '/');
    if (slash)
        slash[1] = '\0';
    shale_objstore *s = NULL;
    shale_objlist l = {0};
    shale_status rc = shale_objstore_open(uri, &v->r->sp->o.db.store, &s);
    if (!rc)
        rc = shale_objstore_list_all(s, prefix, &l);
    shale_objstore_close(s);
    if (rc)
        return shale_error_prefix(rc, "verify: listing the SSTs of %s", uri);
    for (size_t ci = 0; !rc && ci < q->child_count; ci++) {
        const split_child *c = &q->children[ci];
        const shale_manifest_view *cm = cms[ci];
        for (size_t lv = 0; !rc && cm && lv <= cm->run_count; lv++) {
            const shale_manifest_sst *h = lv == 0 ? cm->l0 : cm->runs[lv - 1].ssts;
            size_t cnt = lv == 0 ? cm->l0_count : cm->runs[lv - 1].count;
            for (size_t k = 0; !rc && k < cnt; k++) {
                if (!h[k].store_uri || strcmp(h[k].store_uri, uri))
                    continue;
                shale_sst_key(h[k].id, key, sizeof key);
                const shale_objinfo *o = bsearch(key, l.items, l.count, sizeof *l.items,
                                                 objinfo_cmp);
                if (!o)
                    rc = shale_error_set(SHALE_CORRUPT, "verify: child %s references %s/%s, "
                                                        "which does not exist (not in the "
                                                        "store's listing)", c->name, uri, key);
                else if (o->size != h[k].size)
                    rc = shale_error_set(SHALE_CORRUPT, "verify: child %s references %s/%s of "
                                                        "%llu bytes; the store's listing says "
                                                        "%llu", c->name,
                                         uri, key, (unsigned long long)h[k].size,
                                         (unsigned long long)o->size);
            }
        }
    }
    shale_objlist_free(&l);
    return rc;
}

/* verify_int.h */
shale_status refs_check_child_replay(const split_child *c, const shale_manifest_view *cm)
{
    if (cm->replay_after_wal_id + 1 != cm->next_wal_sst_id)
        return shale_error_set(SHALE_CORRUPT,
                               "verify: child %s has WAL ids %llu..%llu to replay; the "
                               "split's full flush left none, so a writer has opened "
                               "the child since the clone", c->name,
                               (unsigned long long)cm->replay_after_wal_id + 1,
                               (unsigned long long)cm->next_wal_sst_id - 1);
    return SHALE_OK;
}

/* No WAL to replay, and nothing written to the child's WAL since the clone. */
shale_status refs_check_child_wal(const verify_ctx *v, const split_child *c,
                                  const shale_manifest_view *cm, const shale_objlist *listed)
{
    shale_status rc0 = refs_check_child_replay(c, cm);
    if (rc0)
        return rc0;
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
 * records it), listed beside the reader's open; refs_check_child_wal() falls
 * back to listing cm's own if the two differ. */
const char *refs_request_wal(const split_child *c)
{
    return c->wal_store ? c->wal_store : c->store;
}

/* A key at fraction num/den between a and b (b > a), by their first bytes
 * after the common prefix read as a big-endian number: a seek target, not
 * necessarily a key that exists. */
static size_t between(const uint8_t *a, size_t al, const uint8_t *b, size_t bl, int num,
                      int den, uint8_t *out, size_t cap)
{
    size_t p = 0;
    while (p < al && p < bl && a[p] == b[p] && p + 8 < cap)
        p++;
    uint64_t x = 0, y = 0;
    for (size_t i = 0; i < 8; i++) {
        x = (x << 8) | (p + i < al ? a[p + i] : 0);
        y = (y << 8) | (p + i < bl ? b[p + i] : 0);
    }
    uint64_t m = x + ((y - x) / (uint64_t)den) * (uint64_t)num;
    memcpy(out, a, p);
    for (size_t i = 0; i < 8; i++)
        out[p + i] = (uint8_t)(m >> (56 - 8 * i));
    return p + 8;
}

static shale_status grow(vtask **t, size_t n, size_t *cap)
{
    if (n < *cap)
        return SHALE_OK;
    size_t nc = *cap ? *cap * 2 : 64;
    vtask *g = realloc(*t, nc * sizeof *g);
    if (!g)
        return AGENT_OOM();
    *t = g;
    *cap = nc;
    return SHALE_OK;
}

/* Where the child's span windows go: from the smallest first key of the
 * SSTs it references (within its range) to the end of the first SST of
 * each sorted run there with keys past that -- the SSTs its range-start
 * window reads anyway --
 * so the windows open no SST of their own: a constant number of SST opens
 * per child, whatever the number of SSTs in its range (each open is a
 * 16 KiB read and a request, and spread over the whole span the windows
 * landed in as many SSTs as there were up to SPAN_SAMPLES + 1, so what
 * Verify read grew with the shard until each window had an SST of its
 * own).  The other SSTs are checked by their references and HEADs.
 * L0 SSTs do not bound it: every window reads every L0 SST that holds
 * keys at its point, and L0 is small (l0_max_ssts).  False when the child
 * references no SST (or the span is a single key). */
static bool key_span(const shale_manifest_view *cm, const split_child *c, const uint8_t **lo,
                     size_t *lol, const uint8_t **hi, size_t *hil)
{
    *lo = *hi = NULL;
    *lol = *hil = 0;
    for (size_t l = 0; l <= cm->run_count; l++) {
        const shale_manifest_sst *h = l == 0 ? cm->l0 : cm->runs[l - 1].ssts;
        size_t cnt = l == 0 ? cm->l0_count : cm->runs[l - 1].count;
        for (size_t k = 0; k < cnt; k++) {
            if (!h[k].entries || !h[k].first_key)
                continue;
            if (!*lo || key_cmp(h[k].first_key, h[k].first_klen, *lo, *lol) < 0) {
                *lo = h[k].first_key;
                *lol = h[k].first_klen;
            }
            if (!*hi || key_cmp(h[k].last_key, h[k].last_klen, *hi, *hil) > 0) {
                *hi = h[k].last_key;
                *hil = h[k].last_klen;
            }
        }
    }
    if (!*lo)
        return false;
    if (c->start && key_cmp(*lo, *lol, c->start, c->start_len) < 0) {
        *lo = c->start;
        *lol = c->start_len;
    }
    if (c->end && key_cmp(*hi, *hil, c->end, c->end_len) > 0) {
        *hi = c->end;
        *hil = c->end_len;
    }
    /* A run's SSTs are in key order and the child's are those that
     * overlap its range (check_refs): its first with keys past lo is the
     * one the range-start window reads on from.  (Past lo: a first SST
     * whose last key is the range's first would leave no span.) */
    for (size_t r = 0; r < cm->run_count; r++)
        for (size_t k = 0; k < cm->runs[r].count; k++) {
            const shale_manifest_sst *h = &cm->runs[r].ssts[k];
            if (!h->entries || !h->last_key || key_cmp(h->last_key, h->last_klen, *lo, *lol) <= 0)
                continue;
            if (key_cmp(h->last_key, h->last_klen, *hi, *hil) < 0) {
                *hi = h->last_key;
                *hil = h->last_klen;
            }
            break;
        }
    return key_cmp(*lo, *lol, *hi, *hil) < 0;
}

/* verify_int.h.  The windows are a fixed number per child: what a
 * references Verify reads does not grow with the shard.  Every referenced
 * SST is still checked to exist with its size (a HEAD: no bytes), and
 * each window reads every level of the child at its point, so a child
 * whose levels, range or data differ from the parent's shows it there. */
shale_status refs_add_tasks(size_t ci, const shale_manifest_view *cm, const split_child *c,
                            vtask **t, size_t *n, size_t *cap)
{
    for (size_t l = 0; l <= cm->run_count; l++) {
        const shale_manifest_sst *h = l == 0 ? cm->l0 : cm->runs[l - 1].ssts;
        size_t cnt = l == 0 ? cm->l0_count : cm->runs[l - 1].count;
        for (size_t k = 0; k < cnt; k++) {
            /* One HEAD per object: the children of a split reference the
             * same parent SSTs (check_refs holds each handle to the
             * parent's, so the first child's is every child's). */
            bool seen = false;
            for (size_t j = 0; j < *n && !seen; j++) {
                const shale_manifest_sst *o = (*t)[j].head;
                seen = o && !strcmp(o->id, h[k].id) && o->store_uri && h[k].store_uri &&
                       !strcmp(o->store_uri, h[k].store_uri);
            }
            if (seen)
                continue;
            shale_status rc = grow(t, *n, cap);
            if (rc)
                return rc;
            vtask *x = &(*t)[(*n)++];
            memset(x, 0, sizeof *x);
            x->end_of = -1;
            x->child = ci;
            x->head = &h[k];
        }
    }
    shale_status rc = grow(t, *n, cap);
    if (rc)
        return rc;
    vtask *x = &(*t)[(*n)++];   /* the window at the range start */
    memset(x, 0, sizeof *x);
    x->end_of = -1;
    x->child = ci;
    if (c->end) {
        /* At the range end: the parent's side is empty there, so the
         * child's scan from its end (bounded by nothing but its own range)
         * must find nothing -- a read path that let keys past its range
         * through fails here. */
        if ((rc = grow(t, *n, cap)))
            return rc;
        x = &(*t)[(*n)++];
        memset(x, 0, sizeof *x);
        x->end_of = -1;
        x->child = ci;
        x->from = c->end;
        x->from_len = c->end_len;
    }
    const uint8_t *lo, *hi;
    size_t lol, hil;
    if (!key_span(cm, c, &lo, &lol, &hi, &hil))
        return SHALE_OK;
    for (int f = 1; f <= SPAN_SAMPLES; f++) {
        if ((rc = grow(t, *n, cap)))
            return rc;
        x = &(*t)[(*n)++];
        memset(x, 0, sizeof *x);
        x->end_of = -1;
        x->child = ci;
        x->at_mid = true;
        x->from_len = between(lo, lol, hi, hil, f, SPAN_SAMPLES + 1, x->mid, sizeof x->mid);
    }
    return SHALE_OK;
}

/* A child's manifest and its WAL store's check, for the references
 * checks: the version the child's reader just loaded (the latest at its
 * open; listing and reading it a second time would cost a LIST and a GET
 * per child for the same version), then the WAL listing. */
shale_status refs_child_manifest(const verify_ctx *v, const split_child *c,
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

/* The checks of a child's manifest against the parent's pinned version
 * (no request): origin, range, references.  The pins are checked once the
 * parent's latest version is read (refs_check_pins). */
shale_status refs_check_manifest(const verify_ctx *v, const split_child *c,
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
        rc = check_parents(c, cm);
    return rc;
}

/* verify_int.h */
shale_status refs_check_pins(const verify_ctx *v, const split_child *c,
                             const shale_manifest_view *cm)
{
    return check_pins(v, c, cm);
}

/* verify_int.h */
size_t refs_fold_end_windows(const split_request *q, vtask *t, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        vtask *x = &t[i];
        if (!x->head && !x->at_mid && x->from) {   /* child x->child's end window */
            long into = -1;
            for (size_t j = 0; j < n && into < 0; j++) {
                const split_child *o = &q->children[t[j].child];
                if (!t[j].head && !t[j].at_mid && !t[j].from && t[j].end_of < 0 && o->start &&
                    key_cmp(o->start, o->start_len, x->from, x->from_len) == 0)
                    into = (long)j;
            }
            if (into >= 0) {
                t[into].end_of = (long)x->child;
                continue;   /* dropped: done by that window */
            }
        }
        t[out++] = *x;
    }
    /* end_of indexes children, not tasks: moving tasks keeps it right. */
    return out;
}
