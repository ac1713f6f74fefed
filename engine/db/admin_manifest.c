/*
 * admin_manifest.c -- shale_manifest_view (shale_admin.h): a manifest
 * version as tools read it.
 *
 * The view keeps the decoded internal manifest (db/manifest.h) and points
 * into it: strings, keys and ids are the manifest's own, never copied.  Only
 * the element arrays are new, because the public element structs are not
 * the internal ones (those may change with the engine; the public ones keep
 * their layout).  All SSTs -- L0 first, then each run's in order -- share
 * one array, so a view is five allocations whatever its size.
 */
#include "shale_admin.h"
#include "db/db_int.h"
#include "db/view.h"
#include "db/checkpoint_int.h"
#include "table/sst.h"
#include "util/status_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct view_impl {
    shale_manifest_view pub;     /* first: the caller's pointer is to it */
    manifest *m;                 /* owns what pub points at */
    shale_manifest_sst *ssts;
    shale_manifest_run *runs;
    shale_manifest_checkpoint *cps;
    shale_manifest_parent *parents;
} view_impl;

static void sst_fill(shale_manifest_sst *d, const sst_handle *h)
{
    memcpy(d->id, h->id, sizeof d->id);
    d->store_uri = h->store_uri;
    d->size = h->size;
    d->entries = h->entries;
    d->first_key = h->first_key;
    d->first_klen = h->first_klen;
    d->last_key = h->last_key;
    d->last_klen = h->last_klen;
}

void shale_manifest_view_free(shale_manifest_view *v)
{
    if (!v)
        return;
    view_impl *x = (view_impl *)v;
    manifest_free(x->m);
    free(x->ssts);
    free(x->runs);
    free(x->cps);
    free(x->parents);
    free(x);
}

/* Takes m (freed on failure too). */
static shale_status view_of(manifest *m, shale_manifest_view **out)
{
    *out = NULL;
    view_impl *x = calloc(1, sizeof *x);
    if (!x) {
        manifest_free(m);
        return SHALE_OOM();
    }
    x->m = m;
    size_t nsst = m->l0_count;
    for (size_t r = 0; r < m->run_count; r++)
        nsst += m->runs[r].count;
    /* calloc(0) may return NULL: every array gets at least one element. */
    x->ssts = calloc(nsst + 1, sizeof *x->ssts);
    x->runs = calloc(m->run_count + 1, sizeof *x->runs);
    x->cps = calloc(m->checkpoint_count + 1, sizeof *x->cps);
    x->parents = calloc(m->parent_count + 1, sizeof *x->parents);
    if (!x->ssts || !x->runs || !x->cps || !x->parents) {
        shale_manifest_view_free(&x->pub);
        return SHALE_OOM();
    }
    shale_manifest_view *v = &x->pub;
    v->struct_size = sizeof *v;
    v->id = m->id;
    v->format_version = m->format_version;
    v->writer_epoch = m->writer_epoch;
    v->compactor_epoch = m->compactor_epoch;
    v->replay_after_wal_id = m->replay_after_wal_id;
    v->next_wal_sst_id = m->next_wal_sst_id;
    v->last_l0_seq = m->last_l0_seq;
    v->initialized = m->initialized;
    v->wal_store_uri = m->wal_store_uri;
    size_t k = 0;
    for (size_t i = 0; i < m->l0_count; i++)
        sst_fill(&x->ssts[k++], &m->l0[i]);
    v->l0 = x->ssts;
    v->l0_count = m->l0_count;
    for (size_t r = 0; r < m->run_count; r++) {
        x->runs[r].id = m->runs[r].id;
        x->runs[r].ssts = &x->ssts[k];
        x->runs[r].count = m->runs[r].count;
        for (size_t i = 0; i < m->runs[r].count; i++)
            sst_fill(&x->ssts[k++], &m->runs[r].ssts[i]);
    }
    v->runs = x->runs;
    v->run_count = m->run_count;
    for (size_t i = 0; i < m->checkpoint_count; i++) {
        const checkpoint_rec *c = &m->checkpoints[i];
        memcpy(x->cps[i].id, c->id, sizeof x->cps[i].id);
        x->cps[i].manifest_id = c->manifest_id;
        x->cps[i].create_time_ms = c->create_time_ms;
        x->cps[i].expire_time_ms = c->expire_time_ms;
        x->cps[i].name = c->name;
    }
    v->checkpoints = x->cps;
    v->checkpoint_count = m->checkpoint_count;
    for (size_t i = 0; i < m->parent_count; i++) {
        const parent_rec *p = &m->parents[i];
        x->parents[i].store_uri = p->store_uri;
        memcpy(x->parents[i].source_checkpoint_id, p->source_checkpoint_id,
               sizeof x->parents[i].source_checkpoint_id);
        memcpy(x->parents[i].final_checkpoint_id, p->final_checkpoint_id,
               sizeof x->parents[i].final_checkpoint_id);
    }
    v->parents = x->parents;
    v->parent_count = m->parent_count;
    v->range_start = m->range_start;
    v->range_start_len = m->range_start_len;
    v->range_end = m->range_end;
    v->range_end_len = m->range_end_len;
    v->origin.parent_uri = m->origin.parent_uri;
    v->origin.parent_checkpoint_id = m->origin.parent_checkpoint_id;
    v->origin.has_range = m->origin.has_range;
    *out = v;
    return SHALE_OK;
}

shale_status shale_manifest_view_load(shale_objstore *s, uint64_t id,
                                      shale_manifest_view **out)
{
    *out = NULL;
    manifest *m = NULL;
    shale_status rc = id ? manifest_store_load(s, id, &m) : manifest_store_load_latest(s, 0, &m);
    return rc ? rc : view_of(m, out);
}

shale_status shale_reader_manifest_view(shale_reader *r, shale_manifest_view **out)
{
    *out = NULL;
    manifest *m = NULL;
    shale_status rc = reader_manifest_dup(r, &m);
    return rc ? rc : view_of(m, out);
}

const shale_manifest_checkpoint *shale_manifest_view_checkpoint(const shale_manifest_view *v,
                                                                const char *id)
{
    for (size_t i = 0; i < v->checkpoint_count; i++)
        if (!strcmp(v->checkpoints[i].id, id))
            return &v->checkpoints[i];
    return NULL;
}

bool shale_manifest_sst_overlaps(const shale_manifest_sst *h, const void *start,
                                 size_t start_len, const void *end, size_t end_len)
{
    /* The engine's test on the same fields (the keys are only read). */
    sst_handle t;
    memset(&t, 0, sizeof t);
    t.entries = h->entries;
    t.first_key = (uint8_t *)h->first_key;
    t.first_klen = h->first_klen;
    t.last_key = (uint8_t *)h->last_key;
    t.last_klen = h->last_klen;
    return sst_handle_overlaps(&t, start, start_len, end, end_len);
}

shale_status shale_checkpoint_delete_on(shale_objstore *s, const char *id,
                                        const shale_manifest_view *latest)
{
    if (!s || !id)
        return shale_err(SHALE_INVALID_ARGUMENT, "checkpoint delete: a store and an id are "
                                                 "required");
    const view_impl *x = (const view_impl *)latest;
    return cp_remove_on(s, id, true, x ? x->m : NULL);
}

shale_status shale_sst_block_count(shale_objstore *s, const char *key, uint64_t size,
                                   uint64_t *blocks)
{
    if (!s || !key || !blocks)
        return shale_err(SHALE_INVALID_ARGUMENT, "sst block count: a store, a key and an "
                                                 "output are required");
    sst_reader *rd = NULL;
    shale_status rc = sst_reader_open_index(s, key, size, &rd);
    if (!rc)
        *blocks = sst_reader_block_count(rd);
    sst_reader_unref(rd);
    return rc;
}

shale_status shale_reader_open_sst(shale_reader *r, const shale_manifest_sst *h)
{
    if (!r || !h)
        return shale_err(SHALE_INVALID_ARGUMENT, "open sst: a reader and an SST are required");
    sst_handle x;
    memset(&x, 0, sizeof x);
    memcpy(x.id, h->id, sizeof x.id);
    x.store_uri = (char *)h->store_uri;          /* read only below */
    x.size = h->size;
    x.entries = h->entries;
    x.first_key = (uint8_t *)h->first_key;
    x.first_klen = h->first_klen;
    x.last_key = (uint8_t *)h->last_key;
    x.last_klen = h->last_klen;
    return reader_open_sst(r, &x);
}
