/*
 * reader.c -- read-only access to a database without fencing its writer.
 *
 * A reader loads a manifest version (the latest, the one a checkpoint
 * pins, or one its caller names by id), replays the WAL SSTs that version still needs into a private
 * memtable, and serves gets and scans from a view over both.  It never
 * writes to the store.  At the latest state, refresh re-reads the manifest
 * and the WAL, so new data shows up; at a checkpoint or a named version
 * the view is fixed.
 *
 * The reader refuses an uninitialised clone.  WAL store: the given one, or
 * the one the manifest records; a given one that differs from a recorded
 * one is refused, as for the writer.
 *
 * Thread safety: all calls may come from many threads; refresh swaps the
 * view under a mutex and running scans keep the old one.
 */
#include "shale_admin.h"   /* shale_reader_open_version, _prefetch: exported as declared there */
#include "db/checkpoint_int.h"
#include "db/env.h"
#include "db/view.h"
#include "db/wal.h"
#include "util/crew.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shale_reader {
    char *uri;
    char *checkpoint_id;        /* NULL: follows the latest version */
    uint64_t version_id;        /* non-zero: at this manifest version (no
                                   LIST, no checkpoint lookup) */
    const char *wal_uri_given;  /* the env's copy of opts->wal_store_uri */
    shale_options opts;         /* strings: the env's copies */
    shale_objstore *store;      /* the env's main store */
    shale_objstore *wal_store;  /* the env's (== store when none apart) */
    db_env *env;
    pthread_mutex_t mu;
    db_view *view;
};

typedef struct rctx {
    memtable *mem;
    uint64_t last_l0_seq;
} rctx;

static shale_status reader_entry(void *ctx, const kv_entry *e)
{
    rctx *c = ctx;
    if (e->seq <= c->last_l0_seq)
        return SHALE_OK;
    return memtable_add(c->mem, e);
}

static shale_status refuse_uninitialized(const shale_reader *r, manifest *m)
{
    manifest_free(m);
    return shale_err(SHALE_INVALID_ARGUMENT,
                     "%s: this database is a clone that was not finished "
                     "(initialized=false); reads are refused", r->uri);
}

/* Loads the manifest to read (latest, pinned by the checkpoint, or the
 * named version: one GET). */
static shale_status load_target(shale_reader *r, manifest **out)
{
    if (r->version_id) {
        manifest *m = NULL;
        shale_status rc = manifest_store_load(r->store, r->version_id, &m);
        if (rc)
            return shale_err_prefix(rc, "reader %s: manifest version %llu", r->uri,
                                    (unsigned long long)r->version_id);
        if (!m->initialized)
            return refuse_uninitialized(r, m);
        *out = m;
        return SHALE_OK;
    }
    manifest *latest = NULL;
    shale_status rc = manifest_store_load_latest(r->store, 0, &latest);
    if (rc)
        return shale_err_prefix(rc, "reader %s", r->uri);
    if (!latest->initialized)
        return refuse_uninitialized(r, latest);
    if (!r->checkpoint_id) {
        *out = latest;
        return SHALE_OK;
    }
    const checkpoint_rec *cp = cp_find(latest, r->checkpoint_id);
    if (!cp) {
        manifest_free(latest);
        return shale_err(SHALE_NOT_FOUND, "%s: no checkpoint %s", r->uri, r->checkpoint_id);
    }
    uint64_t id = cp->manifest_id;
    manifest_free(latest);
    rc = manifest_store_load(r->store, id, out);
    if (rc)
        shale_err_prefix(rc, "%s: manifest %llu pinned by checkpoint %s", r->uri,
                         (unsigned long long)id, r->checkpoint_id);
    return rc;
}

static shale_status ensure_wal_store(shale_reader *r, const manifest *m)
{
    if (r->wal_store)
        return SHALE_OK;
    const char *rec = m->wal_store_uri, *given = r->wal_uri_given;
    if (rec && given && strcmp(rec, given))
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "%s: WAL store reconfiguration refused: the manifest records '%s', "
                         "the caller gave '%s'", r->uri, rec, given);
    const char *use = given ? given : rec;
    if (!use || !strcmp(use, r->uri)) {
        r->wal_store = r->store;
        return SHALE_OK;
    }
    return db_env_store(r->env, use, &r->wal_store);
}

/* At the latest state: is there a version after m?  A writer deletes the
 * WAL SSTs a flush made obsolete once that flush's version is written
 * (wal_gc.c), so a WAL id this reader found missing may have been flushed
 * and deleted after the reader read m: the WAL it replayed is then a
 * prefix of what m needs, and the state it would serve is older than the
 * open.  Deletions only ever follow a newer version, so if there is none
 * after the replay, nothing m needed was deleted.  One GET (NOT_FOUND in
 * the common case). */
static shale_status newer_version(shale_reader *r, const manifest *m, bool *newer)
{
    manifest *next = NULL;
    shale_status rc = manifest_store_load(r->store, m->id + 1, &next);
    manifest_free(next);
    *newer = rc == SHALE_OK;
    if (rc == SHALE_NOT_FOUND)
        return SHALE_OK;
    return rc ? shale_err_prefix(rc, "reader %s: checking for a version after %llu", r->uri,
                                 (unsigned long long)m->id)
              : SHALE_OK;
}

#define READER_BUILD_ATTEMPTS 16

static shale_status build_view_once(shale_reader *r, db_view **out, bool *again);

/* Builds a fresh view: manifest + replayed WAL; at the latest state again
 * from the newer version when one was written meanwhile (newer_version). */
static shale_status build_view(shale_reader *r, db_view **out)
{
    shale_status rc = SHALE_OK;
    for (int attempt = 0; attempt < READER_BUILD_ATTEMPTS; attempt++) {
        bool again = false;
        rc = build_view_once(r, out, &again);
        if (rc || !again)
            return rc;
    }
    return shale_err(SHALE_RETRYABLE,
                     "reader %s: the manifest moved on during each of %d reads of the WAL", r->uri,
                     READER_BUILD_ATTEMPTS);
}

static shale_status build_view_once(shale_reader *r, db_view **out, bool *again)
{
    manifest *m = NULL;
    memtable *mem = NULL;
    shale_status rc = load_target(r, &m);
    if (rc)
        return rc;
    if ((rc = ensure_wal_store(r, m)))
        goto out;
    if (!(mem = memtable_new())) {
        rc = SHALE_OOM();
        goto out;
    }
    rctx c = {mem, m->last_l0_seq};
    wal_replay_cb cb = {reader_entry, NULL, &c};
    uint64_t first_free = 0;
    /* A named version that records no WAL to replay needs none: what a
     * writer wrote after it is not part of it (shale_admin.h).  The
     * latest state and a checkpoint read on from replay_after_wal_id + 1
     * as before. */
    bool none = r->version_id && m->replay_after_wal_id + 1 >= m->next_wal_sst_id;
    if (!none)
        rc = wal_read_range(r->wal_store, r->uri, m, 0, &cb, &first_free);
    /* The latest state: a missing WAL id (the end of the WAL, or one a
     * flush made obsolete and the writer deleted) is only the end if no
     * version came after m (newer_version). */
    bool latest = !r->checkpoint_id && !r->version_id;
    if (latest && (!rc || rc == SHALE_NOT_FOUND)) {
        char msg[512] = "";
        if (rc)
            snprintf(msg, sizeof msg, "%s", shale_errmsg());   /* the check's GET sets its own */
        shale_status nrc = newer_version(r, m, again);
        if (nrc || *again) {
            rc = nrc;
            goto out;
        }
        if (rc)
            shale_err(rc, "%s", msg);
    }
    if (rc)
        goto out;
    rc = view_new(r->env, &mem, 1, m, out);
out:
    memtable_unref(mem);
    manifest_free(m);
    return rc;
}

void shale_reader_close(shale_reader *r)
{
    if (!r)
        return;
    view_unref(r->view);
    db_env_unref(r->env);   /* closes the stores */
    pthread_mutex_destroy(&r->mu);
    free(r->uri);
    free(r->checkpoint_id);
    free(r);
}

static shale_status reader_open(const char *uri, const shale_options *opts,
                                const char *checkpoint_id, uint64_t version_id,
                                shale_reader **out)
{
    *out = NULL;
    if (!uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_reader_open: uri is NULL");
    shale_reader *r = calloc(1, sizeof *r);
    if (!r)
        return SHALE_OOM();
    pthread_mutex_init(&r->mu, NULL);
    r->version_id = version_id;
    r->uri = xstrdup(uri);
    r->checkpoint_id = checkpoint_id ? xstrdup(checkpoint_id) : NULL;
    shale_status rc = SHALE_OK;
    if (!r->uri || (checkpoint_id && !r->checkpoint_id))
        rc = SHALE_OOM();
    /* The env copies the options deeply; the reader keeps only those
     * copies (views and lazy parent opens read them after we return). */
    if (!rc)
        rc = db_env_open(uri, opts, &r->env);
    if (!rc) {
        r->opts = *db_env_options(r->env);
        r->wal_uri_given = r->opts.wal_store_uri;
        r->opts.wal_store_uri = NULL;
        r->store = db_env_main(r->env);
    }
    if (!rc)
        rc = build_view(r, &r->view);
    if (rc) {
        shale_reader_close(r);
        return rc;
    }
    *out = r;
    return SHALE_OK;
}

shale_status shale_reader_open(const char *uri, const shale_options *opts,
                               const char *checkpoint_id, shale_reader **out)
{
    return reader_open(uri, opts, checkpoint_id, 0, out);
}

shale_status shale_reader_open_version(const char *uri, const shale_options *opts,
                                       uint64_t manifest_id, shale_reader **out)
{
    *out = NULL;
    if (!manifest_id)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "shale_reader_open_version: manifest id 0 names no version");
    return reader_open(uri, opts, NULL, manifest_id, out);
}

static db_view *grab(shale_reader *r)
{
    pthread_mutex_lock(&r->mu);
    db_view *v = r->view;
    view_ref(v);
    pthread_mutex_unlock(&r->mu);
    return v;
}

shale_status shale_reader_get(shale_reader *r, const void *key, size_t klen, void **val,
                              size_t *vlen)
{
    if (!r || !key || !klen || !val || !vlen)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_reader_get: NULL argument or empty key");
    db_view *v = grab(r);
    shale_status rc = view_get(v, key, klen, KV_MAX_SEQ, val, vlen);
    view_unref(v);
    return rc;
}

shale_status shale_reader_scan(shale_reader *r, const void *start, size_t slen,
                               const void *end, size_t elen, shale_iter **out)
{
    if (!r || !out)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_reader_scan: NULL argument");
    db_view *v = grab(r);
    shale_status rc = view_scan(v, KV_MAX_SEQ, start, slen, end, elen, out);
    view_unref(v);
    return rc;
}

shale_status shale_reader_count(shale_reader *r, const void *start, size_t slen,
                                const void *end, size_t elen, uint64_t *count)
{
    *count = 0;
    shale_iter *it = NULL;
    shale_status rc = shale_reader_scan(r, start, slen, end, elen, &it);
    if (rc)
        return rc;
    uint64_t n = 0;
    for (; shale_iter_valid(it); shale_iter_next(it))
        n++;
    rc = shale_iter_status(it);
    shale_iter_free(it);
    if (!rc)
        *count = n;
    return rc;
}

shale_status shale_reader_refresh(shale_reader *r)
{
    if (!r)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_reader_refresh: reader is NULL");
    if (r->checkpoint_id || r->version_id)
        return SHALE_OK;
    db_view *v = NULL;
    shale_status rc = build_view(r, &v);
    if (rc)
        return rc;
    pthread_mutex_lock(&r->mu);
    db_view *old = r->view;
    r->view = v;
    pthread_mutex_unlock(&r->mu);
    view_unref(old);
    db_env_retain_only(r->env, v->man);
    return SHALE_OK;
}

shale_status reader_manifest_dup(shale_reader *r, manifest **out)
{
    db_view *v = grab(r);
    *out = manifest_dup(v->man);
    view_unref(v);
    return *out ? SHALE_OK : SHALE_OOM();
}

shale_status reader_open_sst(shale_reader *r, const sst_handle *h)
{
    sst_reader *sr = NULL;
    shale_status rc = db_env_sst(r->env, h, &sr);
    sst_reader_unref(sr);
    return rc;
}

shale_status shale_reader_info(shale_reader *r, shale_db_info *out)
{
    return shale_reader_info_get(r, out);
}

shale_status shale_reader_info_get(shale_reader *r, shale_db_info *out)
{
    memset(out, 0, sizeof *out);
    db_view *v = grab(r);
    view_fill_info(v->man, out);
    uint64_t mem_seq = memtable_max_seq(v->mems[0]);
    if (mem_seq > out->last_seq)
        out->last_seq = mem_seq;
    view_unref(v);
    return SHALE_OK;
}

/* ---- prefetch (shale_admin.h) -------------------------------------------- */

#define PREFETCH_THREADS 16
/* What the seek's first read covers in each level: its block and those
 * after it up to this (sst_thread_seek_read), so a window that crosses one
 * block boundary is one round trip, not two. */
#define PREFETCH_SEEK_READ (8u << 10)

typedef struct pf_job {
    db_view *v;
    const uint8_t *key;          /* NULL: from the first key */
    size_t klen, entries;
    _Atomic size_t next;
    size_t n;                    /* levels: L0 SSTs, then sorted runs */
    pthread_mutex_t mu;
    shale_status rc;             /* first failure, under mu */
    char msg[512];
} pf_job;

/* Level i: does it hold keys at or after the prefetch's key? */
static bool pf_wanted(const pf_job *j, const sst_handle *last)
{
    return last->entries && last->last_key &&
           (!j->key || kv_key_cmp(last->last_key, last->last_klen, j->key, j->klen) >= 0);
}

static shale_status pf_level(pf_job *j, size_t i)
{
    const manifest *m = j->v->man;
    kv_iter *it = NULL;
    if (i < m->l0_count) {
        if (!pf_wanted(j, &m->l0[i]))
            return SHALE_OK;
        sst_reader *r = NULL;
        shale_status rc = db_env_sst(j->v->env, &m->l0[i], &r);
        if (rc)
            return rc;
        it = sst_iter_new(r);
        sst_reader_unref(r);   /* the iterator holds its own reference */
    } else {
        const sorted_run *run = &m->runs[i - m->l0_count];
        if (!run->count || !pf_wanted(j, &run->ssts[run->count - 1]))
            return SHALE_OK;
        it = run_iter_new(j->v->env, run);
    }
    if (!it)
        return SHALE_OOM();
    sst_thread_seek_read(PREFETCH_SEEK_READ);
    if (j->key)
        kv_iter_seek(it, j->key, j->klen);
    else
        kv_iter_seek_first(it);
    for (size_t k = 1; k < j->entries && kv_iter_valid(it); k++)
        kv_iter_next(it);
    sst_thread_seek_read(0);
    shale_status rc = kv_iter_status(it);
    kv_iter_destroy(it);
    return rc;
}

static void pf_worker(void *arg)
{
    pf_job *j = arg;
    for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
        shale_status rc = pf_level(j, i);
        if (rc) {
            pthread_mutex_lock(&j->mu);
            if (!j->rc) {
                j->rc = rc;
                snprintf(j->msg, sizeof j->msg, "%s", shale_errmsg());
            }
            pthread_mutex_unlock(&j->mu);
        }
    }
}

shale_status shale_reader_prefetch(shale_reader *r, const void *key, size_t klen,
                                   size_t entries)
{
    if (!r)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_reader_prefetch: reader is NULL");
    db_view *v = grab(r);
    const manifest *m = v->man;
    pf_job j;
    memset(&j, 0, sizeof j);
    j.v = v;
    j.key = key && klen ? key : NULL;
    j.klen = j.key ? klen : 0;
    /* A scan starts at the visible range's start at the earliest. */
    if (m->range_start && (!j.key || kv_key_cmp(j.key, j.klen, m->range_start,
                                                m->range_start_len) < 0)) {
        j.key = m->range_start;
        j.klen = m->range_start_len;
    }
    j.entries = entries ? entries : 1;
    j.n = m->l0_count + m->run_count;
    if (m->range_end && j.key && kv_key_cmp(j.key, j.klen, m->range_end, m->range_end_len) >= 0)
        j.n = 0;   /* past the visible range: a scan from here reads nothing */
    pthread_mutex_init(&j.mu, NULL);
    /* On the engine's kept threads (util/crew.h), not threads started and
     * joined here: Verify prefetches each of its windows, about 160 at 32
     * children, and a thread's start and join (its stack's mmap and, past
     * glibc's stack cache, munmap) per window was CPU between Verify's
     * round trips on the split's critical path. */
    size_t nth = j.n < PREFETCH_THREADS ? j.n : PREFETCH_THREADS;
    if (nth > 1)
        crew_for(nth, pf_worker, &j);
    else
        pf_worker(&j);
    pthread_mutex_destroy(&j.mu);
    view_unref(v);
    return j.rc ? shale_err(j.rc, "%s", j.msg) : SHALE_OK;
}

void shale_thread_scan_readahead(size_t bytes)
{
    sst_thread_scan_readahead(bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes);
}
