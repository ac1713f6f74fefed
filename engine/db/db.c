/*
 * db.c -- the writer handle: options, sticky state, views, writes, reads,
 * close.  The writer's open (fence, replay) is db_open.c.
 *
 * The invariants of the write path are in db_int.h; the WAL pipeline is in
 * wal_writer.c, memtable flushes in flush.c, compaction in compactor.c and
 * checkpoints in checkpoint.c.
 *
 * Open, in order (SlateDB's fencing protocol, see docs/format.md; the
 * steps are db_open.c's):
 *   1. open the main store (and the WAL store) and check that the store
 *      honours put-if-absent, unless unsafe_allow_unconditional_store;
 *   2. load the latest manifest, or create version 1;
 *   3. refuse an uninitialised clone and a changed WAL store;
 *   4. raise writer_epoch and compactor_epoch in a new manifest version;
 *   5. replay WAL ids replay_after_wal_id+1 ... up to the first missing one
 *      (ids below the manifest's next_wal_sst_id must exist: a missing one
 *      is data loss or a wrong WAL store, reported as not found);
 *   6. write the empty fencing WAL SST at the first free id with
 *      put-if-absent (taken: replay it too and try the next id, unless the
 *      manifest shows a newer writer, then we are fenced);
 *   7. record next_wal_sst_id = fence id + 1 and start the threads.
 */
#include "db/db_int.h"
#include "util/iotrace.h"
#include "db/batch.h"
#include "db/iter_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct shale_snapshot {
    uint64_t seq;
};

/* The library's own defaults, whatever the caller's header. */
static void options_defaults(shale_options *o)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    shale_objstore_options_init(&o->store);
    o->create_if_missing = true;
    o->await_durable = true;
    o->wal_flush_interval_ms = 100;
    o->wal_flush_bytes = 4u << 20;
    o->memtable_bytes = 64u << 20;
    o->max_unflushed_bytes = 128u << 20;   /* RocksDB: 2 x 64 MiB write buffers */
    o->l0_compaction_trigger = 4;
    o->l0_max_ssts = 16;
    o->max_sorted_runs = 4;
    o->block_size = 4096;
    /* zstd's fast level -1 (no entropy coding of literals): blocks decode
     * about twice as fast as at level 1 for 12 % more bytes, and a cold
     * read's block misses were mostly decompression (docs/benchmarks.md,
     * 2026-12-02 "Cold reads"). */
    o->compression_level = -1;
    o->bloom_bits_per_key = 10;
    o->block_cache_bytes = 64u << 20;
    o->sst_target_bytes = 64u << 20;
    o->compactor = true;
    o->manifest_poll_ms = 1000;
}

void shale_options_init_size(shale_options *o, size_t size)
{
    shale_options d;
    options_defaults(&d);
    /* Only the bytes the caller's struct has: an older header's struct is
     * shorter, and writing past it would overrun the caller's memory.  A
     * newer header's is longer: its extra fields are zero (their default)
     * and struct_size says how long it is. */
    size_t given = size;
    if (size > sizeof d) {
        memset(o, 0, size);
        size = sizeof d;
    }
    if (size < sizeof(size_t))
        return;   /* not even struct_size fits: options_import refuses it */
    memcpy(o, &d, size);
    o->struct_size = given;
}

shale_status options_import(const shale_options *in, shale_options *out)
{
    options_defaults(out);
    if (!in)
        return SHALE_OK;
    size_t size = in->struct_size;
    if (size < offsetof(shale_options, store) + SHALE_OBJSTORE_OPTIONS_SIZE)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "shale_options.struct_size is %zu: initialise the options with "
                         "shale_options_init() (libshale %s)", size, SHALE_VERSION);
    if (size > sizeof *out) {
        /* From a newer header: fine if every field this library does not
         * know is still zero (its default), else refused -- silently
         * ignoring a setting would be worse (Linux's copy_struct_from_user). */
        const uint8_t *tail = (const uint8_t *)in + sizeof *out;
        for (size_t i = 0; i < size - sizeof *out; i++)
            if (tail[i])
                return shale_err(SHALE_UNSUPPORTED,
                                 "shale_options sets a field at byte %zu that this libshale "
                                 "(%s, struct of %zu bytes) does not know: upgrade libshale",
                                 sizeof *out + i, SHALE_VERSION, sizeof *out);
        size = sizeof *out;
    }
    memcpy(out, in, size);
    out->struct_size = sizeof *out;
    return SHALE_OK;
}

void db_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

shale_status db_update_manifest(shale_db *db, manifest_mutator fn, void *ctx)
{
    pthread_mutex_lock(&db->man_mu);
    pthread_mutex_lock(&db->mu);
    manifest *cur = manifest_dup(db->man);
    pthread_mutex_unlock(&db->mu);
    shale_status rc = cur ? manifest_store_update(db->store, &cur, fn, ctx) : SHALE_OOM();
    if (!rc) {
        pthread_mutex_lock(&db->mu);
        rc = db_install_manifest_locked(db, cur);
        cur = NULL;
        pthread_mutex_unlock(&db->mu);
    }
    manifest_free(cur);
    pthread_mutex_unlock(&db->man_mu);
    return rc;
}

/* ---- sticky state ----------------------------------------------------- */

shale_status db_check_writable_locked(shale_db *db)
{
    if (db->fenced)
        return shale_err(SHALE_FENCED,
                         "%s: this writer was fenced by a newer writer (epoch > %llu); "
                         "it accepts no more writes",
                         db->uri, (unsigned long long)db->my_epoch);
    if (db->bg_error)
        return shale_err(db->bg_error, "%s: writer is in error state after: %s", db->uri,
                         db->bg_errmsg);
    if (db->closing)
        return shale_err(SHALE_CLOSED, "%s: database is closing", db->uri);
    return SHALE_OK;
}

void db_set_bg_error_locked(shale_db *db, shale_status rc)
{
    if (rc == SHALE_FENCED) {
        db->fenced = true;
    } else if (!db->bg_error) {
        db->bg_error = rc;
        snprintf(db->bg_errmsg, sizeof db->bg_errmsg, "%s", shale_errmsg());
    }
    pthread_cond_broadcast(&db->cv);
    db_wake_durable_all_locked(db);
}

uint64_t db_oldest_snapshot_locked(shale_db *db)
{
    uint64_t m = UINT64_MAX;
    for (size_t i = 0; i < db->snapshot_count; i++)
        if (db->snapshots[i] < m)
            m = db->snapshots[i];
    return m;
}

/* ---- views and manifests ---------------------------------------------- */

shale_status db_rebuild_view_locked(shale_db *db)
{
    size_t n = 1 + db->imm_count;
    memtable **mems = calloc(n, sizeof *mems);
    if (!mems)
        return SHALE_OOM();
    mems[0] = db->mem;
    for (size_t i = 0; i < db->imm_count; i++)
        mems[1 + i] = db->imms[db->imm_count - 1 - i].mem;  /* newest first */
    db_view *v = NULL;
    shale_status rc = view_new(db->env, mems, n, db->man, &v);
    free(mems);
    if (rc)
        return rc;
    view_unref(db->view);
    db->view = v;
    return SHALE_OK;
}

shale_status db_install_manifest_locked(shale_db *db, manifest *m)
{
    if (db->man != m) {
        manifest_free(db->man);
        db->man = m;
    }
    return db_rebuild_view_locked(db);
}

shale_status db_seal_wal_quiet_locked(shale_db *db)
{
    if (wal_buf_count(db->walbuf) == 0)
        return SHALE_OK;
    wal_seal *s = calloc(1, sizeof *s);
    wal_buf *fresh = wal_buf_new();
    if (!s || !fresh) {
        free(s);
        wal_buf_free(fresh);
        return SHALE_OOM();
    }
    s->id = db->next_wal_id++;
    s->buf = db->walbuf;
    s->max_seq = db->walbuf_max_seq;
    db->walbuf = fresh;
    db->walbuf_max_seq = 0;
    db->walbuf_first_ms = 0;
    if (db->seal_tail)
        db->seal_tail->next = s;
    else
        db->seal_head = s;
    db->seal_tail = s;
    return SHALE_OK;
}

shale_status db_seal_wal_locked(shale_db *db)
{
    if (wal_buf_count(db->walbuf) == 0)
        return SHALE_OK;
    shale_status rc = db_seal_wal_quiet_locked(db);
    if (!rc)
        pthread_cond_signal(&db->cv_wal);
    return rc;
}

shale_status db_freeze_locked(shale_db *db)
{
    shale_status rc = db_seal_wal_locked(db);
    if (rc)
        return rc;
    memtable *fresh = memtable_new();
    if (!fresh)
        return SHALE_OOM();
    if (db->imm_count == db->imm_cap) {
        size_t cap = db->imm_cap ? db->imm_cap * 2 : 8;
        imm_entry *n = realloc(db->imms, cap * sizeof *n);
        if (!n) {
            memtable_unref(fresh);
            return SHALE_OOM();
        }
        db->imms = n;
        db->imm_cap = cap;
    }
    db->imms[db->imm_count++] = (imm_entry){db->mem, db->next_wal_id - 1, NULL};
    db->mem = fresh;
    rc = db_rebuild_view_locked(db);
    pthread_cond_signal(&db->cv_flush);
    return rc;
}

shale_status db_check_compaction_stall_locked(shale_db *db, const char *what)
{
    if (!db->compact_error || !db->opts.compactor || db->man->l0_count < db->opts.l0_max_ssts)
        return SHALE_OK;
    return shale_err(db->compact_error, "%s: %s: L0 holds %u SSTs (l0_max_ssts), so memtables "
                                        "wait for a compaction, and compaction is failing: %s",
                     db->uri, what, (unsigned)db->man->l0_count, db->compact_errmsg);
}

shale_status db_wait_flushed_locked(shale_db *db)
{
    while (db->imm_count > 0) {
        shale_status rc = db_check_writable_locked(db);
        if (!rc)
            rc = db_check_compaction_stall_locked(db, "flush not possible now");
        if (rc)
            return rc;
        pthread_cond_wait(&db->cv, &db->mu);
    }
    return SHALE_OK;
}

static void db_free(shale_db *db)
{
    if (!db)
        return;
    flush_prebuild_drop(db);   /* before the memtables it references */
    for (size_t i = 0; i < db->imm_count; i++)
        memtable_unref(db->imms[i].mem);
    free(db->imms);
    while (db->seal_head) {
        wal_seal *s = db->seal_head;
        db->seal_head = s->next;
        wal_buf_free(s->buf);
        free(s);
    }
    view_unref(db->view);
    memtable_unref(db->mem);
    wal_buf_free(db->walbuf);
    manifest_free(db->man);
    wal_gc_free(db);
    db_free_dur_waiters(db);
    db_env_unref(db->env);   /* closes the stores */
    free(db->snapshots);
    free(db->uri);
    free(db->wal_uri);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->man_mu);
    pthread_cond_destroy(&db->cv);
    pthread_cond_destroy(&db->cv_wal);
    pthread_cond_destroy(&db->cv_flush);
    pthread_cond_destroy(&db->cv_compact);
    free(db);
}

static shale_status check_options(const shale_options *o)
{
    if (o->memtable_bytes < 4096 || o->wal_flush_bytes < 1 || o->block_size < 256 ||
        o->block_size > (64u << 20) || o->l0_compaction_trigger < 1 || o->max_sorted_runs < 1 ||
        o->l0_max_ssts < o->l0_compaction_trigger || o->sst_target_bytes < 4096 ||
        o->max_unflushed_bytes < o->memtable_bytes || o->compression_level < -22 ||
        o->compression_level > 22 || o->bloom_bits_per_key > 64)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "options out of range (memtable_bytes >= 4096, block_size 256..64MiB, "
                         "l0_max_ssts >= l0_compaction_trigger >= 1, max_unflushed_bytes >= "
                         "memtable_bytes, compression_level -22..22, bloom_bits_per_key <= 64)");
    return SHALE_OK;
}

shale_status shale_open(const char *uri, const shale_options *opts, shale_db **out)
{
    return shale_open_at(uri, opts, 0, out);
}

shale_status shale_open_at(const char *uri, const shale_options *opts,
                           uint64_t manifest_id_hint, shale_db **out)
{
    return shale_open_at_fenced_after(uri, opts, manifest_id_hint, NULL, NULL, out);
}

static shale_status open_with(const char *uri, const shale_options *opts, const db_open_args *a,
                              shale_db **out);

shale_status shale_open_at_fenced_after(const char *uri, const shale_options *opts,
                                        uint64_t manifest_id_hint,
                                        shale_status (*before_fence)(void *ctx), void *ctx,
                                        shale_db **out)
{
    return open_with(uri, opts, &(db_open_args){manifest_id_hint, false, before_fence, ctx}, out);
}

shale_status shale_open_at_latest_fenced_after(const char *uri, const shale_options *opts,
                                               uint64_t latest_id,
                                               shale_status (*before_fence)(void *ctx),
                                               void *ctx, shale_db **out)
{
    return open_with(uri, opts, &(db_open_args){latest_id, latest_id != 0, before_fence, ctx},
                     out);
}

static shale_status open_with(const char *uri, const shale_options *opts, const db_open_args *a,
                              shale_db **out)
{
    *out = NULL;
    shale_options imported;
    shale_status rc = options_import(opts, &imported);
    if (rc)
        return rc;
    opts = &imported;
    if (!uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_open: uri is NULL");
    rc = check_options(opts);
    if (rc)
        return rc;
    shale_db *db = calloc(1, sizeof *db);
    if (!db)
        return SHALE_OOM();
    db->opts = *opts;
    /* The caller's strings are not kept: db_open_inner points these at the
     * env's copies (a background thread may read them after we return). */
    memset(&db->opts.store, 0, sizeof db->opts.store);
    db->opts.wal_store_uri = NULL;
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->man_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->cv, &ca);
    pthread_cond_init(&db->cv_wal, &ca);
    pthread_cond_init(&db->cv_flush, &ca);
    pthread_cond_init(&db->cv_compact, &ca);
    pthread_condattr_destroy(&ca);
    db->uri = xstrdup(uri);
    db->wal_uri = opts->wal_store_uri ? xstrdup(opts->wal_store_uri) : NULL;
    if (!db->uri || (opts->wal_store_uri && !db->wal_uri)) {
        db_free(db);
        return SHALE_OOM();
    }
    /* Normalise the URIs as the store does (no trailing '/'). */
    for (char *u = db->uri; u; u = (u == db->uri ? db->wal_uri : NULL)) {
        size_t n = strlen(u);
        while (n > 0 && u[n - 1] == '/' && !(n >= 3 && !strncmp(u + n - 3, "://", 3)))
            u[--n] = '\0';
    }
    rc = db_open_inner(db, opts, a);
    if (!rc) {
        /* Threads are started last; after this the handle is live. */
        if (pthread_create(&db->wal_thread, NULL, db_wal_thread, db) ||
            pthread_create(&db->flush_thread, NULL, db_flush_thread, db) ||
            pthread_create(&db->compact_thread, NULL, db_compact_thread, db)) {
            rc = shale_err(SHALE_IO, "%s: cannot start background threads", uri);
            /* Threads that did start exit when they see closing. */
            pthread_mutex_lock(&db->mu);
            db->closing = true;
            pthread_cond_broadcast(&db->cv_wal);
            pthread_cond_broadcast(&db->cv_flush);
            pthread_cond_broadcast(&db->cv_compact);
            pthread_mutex_unlock(&db->mu);
        } else {
            db->threads_started = true;
        }
    }
    if (rc) {
        if (db->threads_started) {
            pthread_join(db->wal_thread, NULL);
            pthread_join(db->flush_thread, NULL);
            pthread_join(db->compact_thread, NULL);
        }
        db_free(db);
        return rc;
    }
    *out = db;
    return SHALE_OK;
}

shale_status shale_close(shale_db *db)
{
    if (!db)
        return SHALE_OK;
    shale_status rc = SHALE_OK;
    pthread_mutex_lock(&db->mu);
    /* Write what is buffered, so close loses nothing that was accepted. */
    if (!db->fenced && !db->bg_error) {
        rc = db_seal_wal_locked(db);
        while (!rc && (db->seal_head || db->wal_busy) && !db->fenced && !db->bg_error)
            pthread_cond_wait(&db->cv, &db->mu);
        if (!rc && db->bg_error)
            rc = shale_err(db->bg_error, "%s: closing: %s", db->uri, db->bg_errmsg);
    }
    db->closing = true;
    pthread_cond_broadcast(&db->cv);
    pthread_cond_broadcast(&db->cv_wal);
    pthread_cond_broadcast(&db->cv_flush);
    pthread_cond_broadcast(&db->cv_compact);
    pthread_mutex_unlock(&db->mu);
    if (db->threads_started) {
        pthread_join(db->wal_thread, NULL);
        pthread_join(db->flush_thread, NULL);
        pthread_join(db->compact_thread, NULL);
    }
    db_free(db);
    iotrace_dump("close");
    return rc;
}

/* ---- writes ----------------------------------------------------------- */

static size_t unflushed_bytes_locked(shale_db *db)
{
    size_t n = memtable_bytes(db->mem);
    for (size_t i = 0; i < db->imm_count; i++)
        n += memtable_bytes(db->imms[i].mem);
    return n;
}

/* The records to apply: a batch's, or one entry (shale_put/delete build
 * no batch: the encoding, a malloc and a realloc per put, bought
 * nothing). */
typedef struct records {
    const shale_batch *b;
    const kv_entry *one;
} records;

static bool records_next(const records *r, size_t *pos, kv_entry *e)
{
    if (r->b)
        return batch_next(r->b, pos, e);
    if (*pos)
        return false;
    *e = *r->one;
    *pos = 1;
    return true;
}

static shale_status apply(shale_db *db, const records *r)
{
    if (!db || (!r->b && !r->one))
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_write: NULL argument");
    if (r->b && r->b->count == 0)
        return SHALE_OK;
    const manifest *m;
    size_t pos = 0;
    kv_entry e;
    db_wakes wakes = {0};
    uint64_t t0 = iotrace_now();
    pthread_mutex_lock(&db->mu);
    shale_status rc = db_check_writable_locked(db);
    if (rc)
        goto out;
    m = db->man;
    while (records_next(r, &pos, &e))
        if (!view_in_range(m, e.key, e.klen)) {
            rc = shale_err(SHALE_INVALID_ARGUMENT,
                           "%s: key outside this clone's visible range; write refused",
                           db->uri);
            goto out;
        }
    /* Bounded memory: wait while too much is not yet in L0. */
    while (unflushed_bytes_locked(db) > db->opts.max_unflushed_bytes) {
        /* Memory is full and only a compaction can make room (L0 is at
         * l0_max_ssts), but compactions fail: refuse rather than wait
         * for a success that may not come.  Nothing of this write was
         * applied; the caller may retry. */
        if ((rc = db_check_compaction_stall_locked(db, "write refused")))
            goto out;
        pthread_cond_signal(&db->cv_flush);
        pthread_cond_wait(&db->cv, &db->mu);
        if ((rc = db_check_writable_locked(db)))
            goto out;
    }
    pos = 0;
    while (records_next(r, &pos, &e)) {
        e.seq = db->last_seq + 1;
        rc = memtable_add(db->mem, &e);
        if (!rc)
            rc = wal_buf_add(db->walbuf, &e);
        if (rc) {
            /* Part of the batch may be in memory: refuse further writes
             * until reopened, so nothing partial is ever acknowledged. */
            db_set_bg_error_locked(db, rc);
            goto out;
        }
        db->last_seq++;
    }
    uint64_t my_seq = db->last_seq;
    db->walbuf_max_seq = my_seq;
    if (!db->walbuf_first_ms)
        db->walbuf_first_ms = mono_ms();
    if (memtable_bytes(db->mem) >= db->opts.memtable_bytes)
        rc = db_freeze_locked(db);
    else if (wal_buf_bytes(db->walbuf) >= db->opts.wal_flush_bytes)
        rc = db_seal_wal_locked(db);
    if (rc) {
        db_set_bg_error_locked(db, rc);
        goto out;
    }
    if (db->opts.await_durable)
        rc = db_await_durable_locked(db, my_seq, &wakes);
out:
    pthread_mutex_unlock(&db->mu);
    db_wakes_signal(&wakes);   /* after the unlock: the woken need mu */
    if (db->opts.await_durable)
        iotrace_ev('P', t0);
    return rc;
}

shale_status shale_write(shale_db *db, const shale_batch *b)
{
    if (!b)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_write: NULL argument");
    records r = {b, NULL};
    return apply(db, &r);
}

shale_status shale_put(shale_db *db, const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    shale_status rc = batch_check(KV_PUT, key, klen, val, vlen);
    if (rc)
        return rc;
    kv_entry e = {key, klen, 0, KV_PUT, val ? val : (const void *)"", vlen};
    records r = {NULL, &e};
    return apply(db, &r);
}

shale_status shale_delete(shale_db *db, const void *key, size_t klen)
{
    shale_status rc = batch_check(KV_DELETE, key, klen, NULL, 0);
    if (rc)
        return rc;
    kv_entry e = {key, klen, 0, KV_DELETE, NULL, 0};
    records r = {NULL, &e};
    return apply(db, &r);
}

/* ---- reads ------------------------------------------------------------ */

static db_view *grab_view(shale_db *db, const shale_read_options *ro, uint64_t *seq)
{
    pthread_mutex_lock(&db->mu);
    db_view *v = db->view;
    view_ref(v);
    *seq = ro && ro->snapshot ? ro->snapshot->seq : KV_MAX_SEQ;
    pthread_mutex_unlock(&db->mu);
    return v;
}

shale_status shale_get(shale_db *db, const shale_read_options *ro, const void *key,
                       size_t klen, void **val, size_t *vlen)
{
    if (!db || !key || !klen || !val || !vlen)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_get: NULL argument or empty key");
    uint64_t seq;
    db_view *v = grab_view(db, ro, &seq);
    shale_status rc = view_get(v, key, klen, seq, val, vlen);
    view_unref(v);
    return rc;
}

shale_status shale_scan(shale_db *db, const shale_read_options *ro, const void *start,
                        size_t slen, const void *end, size_t elen, shale_iter **out)
{
    if (!db || !out)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_scan: NULL argument");
    uint64_t seq;
    db_view *v = grab_view(db, ro, &seq);
    shale_status rc = view_scan(v, seq, start, slen, end, elen, out);
    view_unref(v);
    return rc;
}

shale_snapshot *shale_snapshot_new(shale_db *db)
{
    shale_snapshot *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_lock(&db->mu);
    if (db->snapshot_count == db->snapshot_cap) {
        size_t cap = db->snapshot_cap ? db->snapshot_cap * 2 : 8;
        uint64_t *n = realloc(db->snapshots, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&db->mu);
            free(s);
            return NULL;
        }
        db->snapshots = n;
        db->snapshot_cap = cap;
    }
    s->seq = db->last_seq;
    db->snapshots[db->snapshot_count++] = s->seq;
    pthread_mutex_unlock(&db->mu);
    return s;
}

void shale_snapshot_release(shale_db *db, shale_snapshot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->snapshot_count; i++)
        if (db->snapshots[i] == s->seq) {
            db->snapshots[i] = db->snapshots[--db->snapshot_count];
            break;
        }
    pthread_mutex_unlock(&db->mu);
    free(s);
}

/* ---- flushes and info ------------------------------------------------- */

shale_status shale_flush_wal(shale_db *db)
{
    pthread_mutex_lock(&db->mu);
    shale_status rc = db_check_writable_locked(db);
    uint64_t target = db->last_seq;
    if (!rc)
        rc = db_seal_wal_locked(db);
    while (!rc && db->durable_seq < target) {
        pthread_cond_wait(&db->cv, &db->mu);
        rc = db_check_writable_locked(db);
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

shale_status shale_flush_memtable(shale_db *db)
{
    pthread_mutex_lock(&db->mu);
    shale_status rc = db_check_writable_locked(db);
    if (!rc && memtable_count(db->mem) > 0)
        rc = db_freeze_locked(db);
    if (!rc)
        rc = db_wait_flushed_locked(db);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

shale_status shale_db_info_get(shale_db *db, shale_db_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&db->mu);
    view_fill_info(db->man, out);
    out->last_seq = db->last_seq;
    out->compactions_done = db->compactions_done;
    out->compactions_failed = db->compactions_failed;
    out->compaction_error = db->compact_error;
    pthread_mutex_unlock(&db->mu);
    return SHALE_OK;
}
