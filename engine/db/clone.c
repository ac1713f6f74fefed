/*
 * clone.c -- range clones: a new database that references its parent's
 * SSTs (no data copied) and sees only a key range of them.
 *
 * Steps, each safe to repeat (a crash anywhere is resumed by calling
 * shale_clone() again with the same spec):
 *   1. Choose the parent checkpoint (given, or a new Durable one of 300 s)
 *      and load the manifest version it pins.
 *   2. Write the child's manifest version 1 with put-if-absent:
 *      initialized=false, the parent's L0 and runs (only SSTs overlapping
 *      the range, each tagged with the store it lives in), the visible
 *      range (the parent's range intersected with the requested one), the
 *      parent's WAL position, the clone's origin (to recognise a repeat),
 *      and a parent entry per referenced store with a fixed
 *      final_checkpoint_id derived from the clone (pin_id_for: the same
 *      for every run of the same clone).  The clone does NOT inherit the parent's WAL
 *      store URI: it records none; its first open records its own.
 *   3. Pin: add checkpoint final_checkpoint_id (no expiry) in each parent
 *      store, so the parents' GC keeps every SST the child references.
 *   4. copy_wal_ssts: WAL ids replay_after_wal_id+1 .. next_wal_sst_id-1 of
 *      the pinned version are copied from the parent's WAL store into the
 *      child's.  Ids missing at the start are skipped (their data was
 *      flushed and the WAL cleaned up) and replay_after_wal_id moves past
 *      them -- but only if a later id of the range exists: when every needed
 *      id is missing the WAL store is wrong or was wiped before a full
 *      flush, and the clone fails with SHALE_NOT_FOUND naming the first
 *      missing object rather than silently dropping data.  A missing id
 *      after a present one is data loss: SHALE_NOT_FOUND naming it.
 *   5. Write initialized=true with the adjusted replay_after_wal_id.
 * A full-scope parent checkpoint needs no WAL at all (see checkpoint.c).
 * shale_clone_many() (clone_many.c) runs these steps for many children of
 * one checkpoint at once, with one pin write in the parent.
 */
#include "db/clone_int.h"
#include "db/checkpoint_int.h"
#include "db/env.h"
#include "db/identity.h"
#include "db/wal.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLONE_DEFAULT_CHECKPOINT_MS 300000


static bool bound_set(const void *p, size_t n)
{
    return p && n > 0;
}

/* Compares an optional bound with a stored one (NULL = unbounded). */
static bool same_bound(const void *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (!bound_set(a, alen))
        return b == NULL;
    return b && alen == blen && !memcmp(a, b, alen);
}

static shale_status set_bound(uint8_t **dst, size_t *dlen, const void *src, size_t n)
{
    free(*dst);
    *dst = NULL;
    *dlen = 0;
    if (!bound_set(src, n))
        return SHALE_OK;
    if (!(*dst = malloc(n)))
        return SHALE_OOM();
    memcpy(*dst, src, n);
    *dlen = n;
    return SHALE_OK;
}

/* The child's range: the parent's range intersected with the spec's. */
static shale_status intersect_range(manifest *child, const manifest *parent,
                                    const shale_clone_spec *sp)
{
    const void *s = sp->range_start;
    size_t sl = bound_set(sp->range_start, sp->range_start_len) ? sp->range_start_len : 0;
    const void *e = sp->range_end;
    size_t el = bound_set(sp->range_end, sp->range_end_len) ? sp->range_end_len : 0;
    if (parent->range_start && (!sl || kv_key_cmp(s, sl, parent->range_start,
                                                  parent->range_start_len) < 0)) {
        s = parent->range_start;
        sl = parent->range_start_len;
    }
    if (parent->range_end && (!el || kv_key_cmp(e, el, parent->range_end,
                                                parent->range_end_len) > 0)) {
        e = parent->range_end;
        el = parent->range_end_len;
    }
    if (sl && el && kv_key_cmp(s, sl, e, el) >= 0)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "clone range is empty (start >= end after intersecting with the "
                         "parent's visible range)");
    shale_status rc = set_bound(&child->range_start, &child->range_start_len, s, sl);
    if (!rc)
        rc = set_bound(&child->range_end, &child->range_end_len, e, el);
    return rc;
}


/* FNV-1a over a string and its terminator, from h. */
static uint64_t fnv_str(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return (h ^ 0xff) * 0x100000001b3ULL;
}

/* The final checkpoint id of the clone sp's pin in store uri, made from
 * what names the clone (the pinned store, the parent checkpoint it was
 * cloned from, the child, its range), not drawn at random: a clone redone
 * after a crash computes the same id, so a pin that landed before the
 * child's version 1 did (shale_clone_many writes them at once) is found
 * and kept, never left behind as a second pin no manifest names. */
static void pin_id_for(const shale_clone_spec *sp, const char *uri, const char *cp_id,
                       char out[37])
{
    uint8_t b[16];
    for (int half = 0; half < 2; half++) {
        uint64_t h = half ? 0x84222325cbf29ce4ULL : 0xcbf29ce484222325ULL;
        h = fnv_str(h, uri, strlen(uri));
        h = fnv_str(h, cp_id ? cp_id : "", cp_id ? strlen(cp_id) : 0);
        h = fnv_str(h, sp->child_uri, strlen(sp->child_uri));
        h = fnv_str(h, sp->range_start ? sp->range_start : "",
                    bound_set(sp->range_start, sp->range_start_len) ? sp->range_start_len : 0);
        h = fnv_str(h, sp->range_end ? sp->range_end : "",
                    bound_set(sp->range_end, sp->range_end_len) ? sp->range_end_len : 0);
        for (int k = 0; k < 8; k++)
            b[half * 8 + k] = (uint8_t)(h >> (8 * k));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x80);   /* version 8: made by the application */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

static shale_status add_parent(manifest *m, const shale_clone_spec *sp, const char *uri,
                               const char *source_cp)
{
    for (size_t i = 0; i < m->parent_count; i++)
        if (!strcmp(m->parents[i].store_uri, uri))
            return SHALE_OK;
    parent_rec *n = realloc(m->parents, (m->parent_count + 1) * sizeof *n);
    if (!n)
        return SHALE_OOM();
    m->parents = n;
    parent_rec *p = &m->parents[m->parent_count];
    memset(p, 0, sizeof *p);
    if (!(p->store_uri = xstrdup(uri)))
        return SHALE_OOM();
    snprintf(p->source_checkpoint_id, sizeof p->source_checkpoint_id, "%s",
             source_cp ? source_cp : "");
    pin_id_for(sp, uri, m->origin.parent_checkpoint_id, p->final_checkpoint_id);
    m->parent_count++;
    return SHALE_OK;
}

/* Copies the referenced SST handles of `from` into `to`, tagging each with
 * the store it lives in, and registers the stores as parents. */
static shale_status copy_handles(manifest *to, const shale_clone_spec *sp,
                                 const char *parent_uri, const char *cp_id, sst_handle *src,
                                 size_t n,
                                 sst_handle **dst, size_t *dn)
{
    *dst = calloc(n ? n : 1, sizeof **dst);
    *dn = 0;
    if (!*dst)
        return SHALE_OOM();
    for (size_t i = 0; i < n; i++) {
        if (!sst_handle_overlaps(&src[i], to->range_start, to->range_start_len, to->range_end,
                                 to->range_end_len))
            continue;
        sst_handle *h = &(*dst)[*dn];
        shale_status rc = sst_handle_copy(h, &src[i]);
        if (rc)
            return rc;
        (*dn)++;
        const char *where = src[i].store_uri ? src[i].store_uri : parent_uri;
        if (!h->store_uri && !(h->store_uri = xstrdup(where)))
            return SHALE_OOM();
        /* A grandparent's SSTs are pinned through our own new pin there. */
        rc = add_parent(to, sp, where, !strcmp(where, parent_uri) ? cp_id : NULL);
        if (rc)
            return rc;
    }
    return SHALE_OK;
}

static shale_status build_child_manifest(clone_run *cr, const manifest *pm, const char *cp_id,
                                         manifest **out)
{
    const shale_clone_spec *sp = cr->spec;
    manifest *m = manifest_new();
    if (!m)
        return SHALE_OOM();
    shale_status rc;
    m->id = 1;
    m->initialized = false;
    m->writer_epoch = pm->writer_epoch;
    m->compactor_epoch = pm->compactor_epoch;
    m->replay_after_wal_id = pm->replay_after_wal_id;
    m->next_wal_sst_id = pm->next_wal_sst_id;
    m->last_l0_seq = pm->last_l0_seq;
    m->next_run_id = pm->next_run_id;
    if ((rc = intersect_range(m, pm, sp)))
        goto out;
    if (!(m->origin.parent_uri = xstrdup(sp->parent_uri)) ||
        !(m->origin.parent_checkpoint_id = xstrdup(cp_id))) {
        rc = SHALE_OOM();
        goto out;
    }
    m->origin.has_range = bound_set(sp->range_start, sp->range_start_len) ||
                          bound_set(sp->range_end, sp->range_end_len);
    rc = copy_handles(m, sp, sp->parent_uri, cp_id, pm->l0, pm->l0_count, &m->l0,
                      &m->l0_count);
    if (rc)
        goto out;
    m->runs = calloc(pm->run_count ? pm->run_count : 1, sizeof *m->runs);
    if (!m->runs) {
        rc = SHALE_OOM();
        goto out;
    }
    for (size_t r = 0; r < pm->run_count; r++) {
        sorted_run *dr = &m->runs[m->run_count];
        dr->id = pm->runs[r].id;
        rc = copy_handles(m, sp, sp->parent_uri, cp_id, pm->runs[r].ssts, pm->runs[r].count,
                          &dr->ssts, &dr->count);
        m->run_count++;
        if (rc)
            goto out;
        if (dr->count == 0) {
            free(dr->ssts);
            m->run_count--;
        }
    }
    /* The parent itself is always recorded: it is the clone's origin even
     * when no SST overlaps the range. */
    rc = add_parent(m, sp, sp->parent_uri, cp_id);
out:
    if (rc)
        manifest_free(m);
    else
        *out = m;
    return rc;
}

/* Is the existing child manifest the same clone as this spec? */
static shale_status check_origin(const clone_run *cr, const manifest *m)
{
    const shale_clone_spec *sp = cr->spec;
    const char *why = NULL;
    if (!m->origin.parent_uri)
        why = "it is not a clone";
    else if (strcmp(m->origin.parent_uri, sp->parent_uri))
        why = "it was cloned from another parent";
    else if (sp->parent_checkpoint_id && m->origin.parent_checkpoint_id &&
             strcmp(sp->parent_checkpoint_id, m->origin.parent_checkpoint_id))
        why = "it was cloned from another parent checkpoint";
    else if (!same_bound(sp->range_start, sp->range_start_len, m->range_start,
                         m->range_start_len) ||
             !same_bound(sp->range_end, sp->range_end_len, m->range_end, m->range_end_len))
        why = "it was cloned with another key range";
    if (why)
        return shale_err(SHALE_CONFLICT, "clone into %s refused: the store already holds a "
                                         "database and %s", sp->child_uri, why);
    return SHALE_OK;
}

/* The manifest version of store s that checkpoint cp_id pins (0 if the
 * checkpoint is gone). */
static shale_status pinned_version(shale_objstore *s, const char *cp_id, uint64_t *id)
{
    manifest *m = NULL;
    *id = 0;
    shale_status rc = manifest_store_load_latest(s, 0, &m);
    if (rc)
        return rc;
    const checkpoint_rec *r = cp_find(m, cp_id);
    if (r)
        *id = r->manifest_id;
    manifest_free(m);
    return SHALE_OK;
}

/* Step 3: a pin in every parent store, on exactly the version whose SSTs
 * the child references: for the direct parent, the version the source
 * checkpoint pins; for a grandparent, the version the parent's own pin
 * there holds. */
shale_status pin_parents(clone_run *cr, const manifest *m)
{
    char name[256];
    snprintf(name, sizeof name, "clone:%s", cr->spec->child_uri);
    const char *src_cp = m->origin.parent_checkpoint_id;
    manifest *pm = NULL;   /* the parent version we cloned, for grandparents */
    shale_status rc = SHALE_OK;
    for (size_t i = 0; i < m->parent_count && !rc; i++) {
        const parent_rec *p = &m->parents[i];
        bool direct = !strcmp(p->store_uri, cr->spec->parent_uri);
        shale_objstore *s = NULL;
        uint64_t pin = 0;
        if (direct) {
            s = cr->parent;
            rc = pinned_version(s, src_cp, &pin);
        } else {
            rc = db_env_store(cr->env, p->store_uri, &s);
            if (!rc && !pm) {
                uint64_t pv = 0;
                rc = pinned_version(cr->parent, src_cp, &pv);
                if (!rc && !pv)
                    rc = shale_err(SHALE_NOT_FOUND, "the parent's checkpoint %s is gone",
                                   src_cp);
                if (!rc)
                    rc = manifest_store_load(cr->parent, pv, &pm);
            }
            for (size_t j = 0; !rc && j < pm->parent_count; j++)
                if (!strcmp(pm->parents[j].store_uri, p->store_uri))
                    rc = pinned_version(s, pm->parents[j].final_checkpoint_id, &pin);
        }
        if (!rc && !pin) {
            /* A retry after the source pin went away is fine if our own pin
             * is already there. */
            uint64_t mine = 0;
            rc = pinned_version(s, p->final_checkpoint_id, &mine);
            if (!rc && !mine)
                rc = shale_err(SHALE_NOT_FOUND, "no checkpoint in %s pins the version the "
                                                "clone references", p->store_uri);
            pin = mine;
        }
        if (!rc)
            rc = cp_add_pin(s, p->final_checkpoint_id, pin, name, NULL);
        if (rc)
            shale_err_prefix(rc, "pinning parent %s", p->store_uri);
    }
    manifest_free(pm);
    return rc;
}

/* Step 4.  *replay_after returns the adjusted value. */
static shale_status copy_wal_ssts(clone_run *cr, const manifest *m, uint64_t *replay_after)
{
    uint64_t first = m->replay_after_wal_id + 1, end = m->next_wal_sst_id;
    *replay_after = m->replay_after_wal_id;
    bool copied_any = false;
    uint64_t first_missing = 0;
    for (uint64_t id = first; id < end; id++) {
        char key[PATH_KEY_MAX];
        wal_key(id, key, sizeof key);
        void *data = NULL;
        size_t len = 0;
        shale_status rc = shale_objstore_get(cr->parent_wal, key, &data, &len);
        if (rc == SHALE_NOT_FOUND) {
            if (copied_any)
                return shale_err(SHALE_NOT_FOUND,
                                 "copy_wal_ssts: %s/%s is missing after copied WAL SSTs: "
                                 "data loss in the parent's WAL store",
                                 shale_objstore_uri(cr->parent_wal), key);
            if (!first_missing)
                first_missing = id;
            *replay_after = id;
            cr->res.wal_ssts_skipped++;
            continue;
        }
        if (rc)
            return shale_err_prefix(rc, "copy_wal_ssts: reading %s", key);
        rc = shale_objstore_put(cr->child_wal, key, data, len);
        free(data);
        if (rc)
            return shale_err_prefix(rc, "copy_wal_ssts: writing %s to %s", key,
                                    shale_objstore_uri(cr->child_wal));
        copied_any = true;
        cr->res.wal_ssts_copied++;
        cr->res.bytes_copied += len;
    }
    if (first_missing && !copied_any) {
        char key[PATH_KEY_MAX];
        wal_key(first_missing, key, sizeof key);
        return shale_err(SHALE_NOT_FOUND,
                         "copy_wal_ssts: %s/%s not found: the checkpoint needs WAL ids %llu.."
                         "%llu and the given parent WAL store holds none of them (wrong or "
                         "missing parent WAL store, or the WAL was wiped without a full-scope "
                         "checkpoint)",
                         shale_objstore_uri(cr->parent_wal), key, (unsigned long long)first,
                         (unsigned long long)(end - 1));
    }
    return SHALE_OK;
}

typedef struct init_ctx {
    uint64_t replay_after;
} init_ctx;

static shale_status init_mut(manifest *m, void *arg)
{
    init_ctx *c = arg;
    if (c->replay_after > m->replay_after_wal_id)
        m->replay_after_wal_id = c->replay_after;
    if (m->next_wal_sst_id <= m->replay_after_wal_id)
        m->next_wal_sst_id = m->replay_after_wal_id + 1;
    m->initialized = true;
    return SHALE_OK;
}

static void count_refs(clone_run *cr, const manifest *m)
{
    cr->res.ssts_referenced = m->l0_count;
    for (size_t r = 0; r < m->run_count; r++)
        cr->res.ssts_referenced += m->runs[r].count;
}

/* Step 1, the child's side (reads only): its manifest if it has one (the
 * same clone, to resume; anything else is refused), else the identity
 * checks a fresh clone needs.  cr->cm: the existing manifest, or NULL for
 * a fresh clone; cr->res.already_done if it was initialised. */
/* True when the child store is a split's claimed, still fresh store: its
 * identity is a child claim and it has no manifest version 1.  The claim
 * was made on an empty store (shale_store_claim lists it), and any writer
 * since would have written version 1 first (a writer's open and a clone
 * both start at 1, by put-if-absent) or turned the identity into a
 * database's; a GC removes old versions only of a store whose writer ran,
 * whose identity is then no longer a claim.  So the GET of version 1 and
 * the identity (two requests, one of which a fresh clone reads anyway)
 * prove no version exists, without listing the store's manifests.  Any
 * other answer is decided by the listing. */
typedef struct id_read_job {
    clone_run *cr;
    shale_status rc;
} id_read_job;

static void *id_read_run(void *arg)
{
    id_read_job *j = arg;
    j->rc = identity_read(j->cr->child, &j->cr->id);
    return NULL;
}

static bool fresh_claimed(clone_run *cr)
{
    /* The two GETs at once (each a round trip on S3); the identity is kept
     * for the identity step (clone_identities). */
    id_read_job j = {cr, SHALE_OK};
    pthread_t th;
    bool threaded = !pthread_create(&th, NULL, id_read_run, &j);
    manifest *m1 = NULL;
    shale_status rc = manifest_store_load(cr->child, 1, &m1);
    manifest_free(m1);
    if (threaded)
        pthread_join(th, NULL);
    else
        id_read_run(&j);
    cr->id_read = true;
    cr->id_rc = j.rc;
    if (rc != SHALE_NOT_FOUND || j.rc)
        return false;
    /* A held batch writes the identity beside version 1 (clone_many.c):
     * a crash between can leave the claim turned into a database's
     * identity (it keeps the claim's owner) over a store with no version;
     * that is this clone, resumed (a writer's open refuses such a store,
     * db_open.c).  Only a held batch, whose caller claimed the store for
     * it (the split's pre-flight), takes it so. */
    return cr->id.kind == SHALE_STORE_KIND_CHILD_CLAIM ||
           (cr->held && cr->id.kind == SHALE_STORE_KIND_DB && cr->id.claim);
}

shale_status clone_read(clone_run *cr)
{
    const shale_clone_spec *sp = cr->spec;
    manifest *cm = NULL;
    bool claimed = fresh_claimed(cr);
    shale_status rc = claimed ? SHALE_NOT_FOUND : manifest_store_load_latest(cr->child, 0, &cm);
    if (rc == SHALE_OK) {
        if ((rc = check_origin(cr, cm))) {
            manifest_free(cm);
            return rc;
        }
        cr->res.already_done = cm->initialized;
        cr->cm = cm;
        return SHALE_OK;
    }
    if (rc != SHALE_NOT_FOUND)
        return rc;
    /* Fresh clone.  A child store may hold a split's claim, never another
     * store's identity of a database or a WAL. */
    rc = SHALE_OK;
    if (!claimed && (rc = identity_check_clone_target(cr->child, sp->child_uri)))
        return rc;
    if (cr->child_wal != cr->child)
        rc = identity_check_clone_target(cr->child_wal, sp->child_wal_uri);
    return rc;
}

/* Step 1, the parent's side, and step 2 for a fresh clone (cr->cm NULL):
 * the checkpoint, the version it pins, the child's manifest version 1.
 * shared: the parent's latest and pinned versions loaded once for a batch
 * of clones from one checkpoint (NULL: loaded here).  On success cr->cm
 * holds the child's manifest. */
shale_status clone_prepare(clone_run *cr, const manifest *shared_latest,
                           const manifest *shared_pinned)
{
    if (cr->cm || cr->fresh)
        return SHALE_OK;
    const shale_clone_spec *sp = cr->spec;
    manifest *cm = NULL, *pm = NULL, *platest = NULL;
    shale_status rc = SHALE_OK;
    char cp_id[37];
    const manifest *lat = shared_latest;
    if (!lat) {
        if ((rc = manifest_store_load_latest(cr->parent, 0, &platest))) {
            shale_err_prefix(rc, "clone: loading the parent %s", sp->parent_uri);
            goto out;
        }
        lat = platest;
    }
    if (!lat->initialized) {
        rc = shale_err(SHALE_INVALID_ARGUMENT, "clone: the parent %s is an unfinished clone",
                       sp->parent_uri);
        goto out;
    }
    uint64_t pinned_id;
    if (sp->parent_checkpoint_id) {
        const checkpoint_rec *r = cp_find(lat, sp->parent_checkpoint_id);
        if (!r) {
            rc = shale_err(SHALE_NOT_FOUND, "clone: the parent %s has no checkpoint %s",
                           sp->parent_uri, sp->parent_checkpoint_id);
            goto out;
        }
        snprintf(cp_id, sizeof cp_id, "%s", r->id);
        pinned_id = r->manifest_id;
    } else {
        /* A Durable checkpoint made from outside the writer: it must cover
         * the WAL SSTs written since the parent's last manifest update (a
         * load's acknowledged writes may be only there), so its
         * next_wal_sst_id is where the parent's WAL store ends. */
        shale_checkpoint cp;
        uint64_t next = 0;
        rc = cp_first_missing_wal(cr->parent_wal, lat->next_wal_sst_id, &next);
        if (!rc)
            rc = cp_add(cr->parent, NULL, CLONE_DEFAULT_CHECKPOINT_MS, "clone-source", next,
                        &cp);
        if (rc)
            goto out;
        snprintf(cp_id, sizeof cp_id, "%s", cp.id);
        pinned_id = cp.manifest_id;
    }
    const manifest *pin = shared_pinned && shared_pinned->id == pinned_id ? shared_pinned : NULL;
    if (!pin) {
        if ((rc = manifest_store_load(cr->parent, pinned_id, &pm))) {
            shale_err_prefix(rc, "clone: loading the parent's manifest %llu pinned by %s",
                             (unsigned long long)pinned_id, cp_id);
            goto out;
        }
        pin = pm;
    }
    rc = build_child_manifest(cr, pin, cp_id, &cm);
out:
    if (!rc)
        cr->fresh = cm;
    manifest_free(pm);
    manifest_free(platest);
    return rc;
}

/* Step 2's write (after clone_prepare; a no-op for a resumed clone). */
shale_status clone_write(clone_run *cr, const manifest *shared_latest,
                         const manifest *shared_pinned)
{
    shale_status rc = clone_prepare(cr, shared_latest, shared_pinned);
    if (rc || cr->cm)
        return rc;
    manifest *cm = cr->fresh;
    cr->fresh = NULL;
    rc = manifest_store_write(cr->child, cm);
    if (rc && rc != SHALE_PRECONDITION_FAILED) {
        cr->spent = cm;   /* not freed here: see clone_run.spent */
        return rc;
    }
    if (rc == SHALE_PRECONDITION_FAILED) {
        /* Another run of this clone got there first: resume its work. */
        cr->spent = cm;
        cm = NULL;
        cr->raced = true;
        if (!(rc = manifest_store_load_latest(cr->child, 0, &cm)))
            rc = check_origin(cr, cm);
    }
    if (rc)
        manifest_free(cm);
    else
        cr->cm = cm;
    return rc;
}

/* Steps 4-5 after the pins, and the result. */
shale_status clone_finish(clone_run *cr)
{
    shale_status rc = SHALE_OK;
    if (!cr->res.already_done && !cr->cm->initialized) {   /* early: written so */
        uint64_t replay_after = 0;
        if ((rc = copy_wal_ssts(cr, cr->cm, &replay_after)))
            return rc;
        init_ctx ic = {replay_after};
        if ((rc = manifest_store_update(cr->child, &cr->cm, init_mut, &ic)))
            return rc;
    }
    count_refs(cr, cr->cm);
    cr->res.manifest_id = cr->cm->id;
    snprintf(cr->res.checkpoint_id, sizeof cr->res.checkpoint_id, "%s",
             cr->cm->origin.parent_checkpoint_id ? cr->cm->origin.parent_checkpoint_id : "");
    return SHALE_OK;
}

shale_status clone_check_spec(const shale_clone_spec *spec)
{
    if (!spec || !spec->parent_uri || !spec->child_uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "clone: parent_uri and child_uri are required");
    if (!strcmp(spec->parent_uri, spec->child_uri))
        return shale_err(SHALE_INVALID_ARGUMENT, "clone: child store %s is the parent's store",
                         spec->child_uri);
    if (bound_set(spec->range_start, spec->range_start_len) &&
        bound_set(spec->range_end, spec->range_end_len) &&
        kv_key_cmp(spec->range_start, spec->range_start_len, spec->range_end,
                   spec->range_end_len) >= 0)
        return shale_err(SHALE_INVALID_ARGUMENT, "clone: range start must be below range end");
    return SHALE_OK;
}

/* One env for the run, opened on the child: the parent, both WAL stores
 * and every grandparent store come from its pool, all with the caller's
 * options. */
shale_status clone_open(clone_run *cr, const shale_clone_spec *spec,
                               const shale_options *opts, bool probe)
{
    memset(cr, 0, sizeof *cr);
    cr->spec = spec;
    shale_status rc = db_env_open(spec->child_uri, opts, &cr->env);
    if (!rc) {
        cr->opts = *db_env_options(cr->env);
        cr->child = db_env_main(cr->env);
        rc = db_env_store(cr->env, spec->parent_uri, &cr->parent);
    }
    cr->parent_wal = cr->parent;
    cr->child_wal = cr->child;
    if (!rc && spec->parent_wal_uri)
        rc = db_env_store(cr->env, spec->parent_wal_uri, &cr->parent_wal);
    if (!rc && spec->child_wal_uri)
        rc = db_env_store(cr->env, spec->child_wal_uri, &cr->child_wal);
    if (!rc && probe && !cr->opts.unsafe_allow_unconditional_store)
        rc = shale_objstore_probe_conditional(cr->child);
    return rc;
}

/* Initialised: the child's stores are a database and its WAL store now (a
 * claim becomes that, keeping its UUID). */
shale_status clone_identities(clone_run *cr)
{
    shale_status rc;
    if (cr->identity_done)
        return SHALE_OK;
    if (cr->id_read && (cr->id_rc == SHALE_OK || cr->id_rc == SHALE_NOT_FOUND)) {
        cr->id_read = false;
        rc = identity_settle(cr->child, cr->spec->child_uri, &cr->opts.store,
                             SHALE_STORE_KIND_DB, cr->id_rc, &cr->id, identity_any_claim);
    } else {
        rc = identity_ensure(cr->child, cr->spec->child_uri, &cr->opts.store,
                             SHALE_STORE_KIND_DB, identity_any_claim);
    }
    if (!rc && cr->child_wal != cr->child)
        rc = identity_ensure(cr->child_wal, cr->spec->child_wal_uri, &cr->opts.store,
                             SHALE_STORE_KIND_WAL, identity_any_claim);
    cr->identity_done = !rc;
    return rc;
}

void clone_close(clone_run *cr)
{
    if (cr->id_read && cr->id_rc == SHALE_OK)
        shale_store_identity_clear(&cr->id);
    cr->id_read = false;
    manifest_free(cr->cm);
    cr->cm = NULL;
    manifest_free(cr->fresh);
    cr->fresh = NULL;
    manifest_free(cr->spent);
    cr->spent = NULL;
    db_env_unref(cr->env);
    cr->env = NULL;
}

shale_status shale_clone(const shale_clone_spec *spec, const shale_options *opts,
                         shale_clone_result *out)
{
    shale_status rc = clone_check_spec(spec);
    if (rc)
        return rc;
    clone_run cr;
    rc = clone_open(&cr, spec, opts, true);
    if (!rc)
        rc = clone_read(&cr);
    if (!rc)
        rc = clone_write(&cr, NULL, NULL);
    if (!rc && !cr.res.already_done)
        rc = pin_parents(&cr, cr.cm);
    if (!rc)
        rc = clone_finish(&cr);
    if (!rc)
        rc = clone_identities(&cr);
    if (out)
        *out = cr.res;
    clone_close(&cr);
    return rc;
}
