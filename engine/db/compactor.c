/*
 * compactor.c -- merging L0 into sorted runs, in the writer's process.
 *
 * Policy (simple and documented in docs/format.md "Compaction"):
 *   - when L0 holds l0_compaction_trigger SSTs, merge all of L0 into one
 *     new sorted run, placed newest among the runs;
 *   - when that would make more than max_sorted_runs runs (or on a forced
 *     compaction), merge all of L0 and every run into a single run instead
 *     (a full compaction: the output is the bottom of the tree).
 * The output run is cut into SSTs of about sst_target_bytes, at key
 * boundaries (all versions of a key stay in one SST).
 *
 * What the merge drops:
 *   - versions shadowed for every reader: an older version survives only
 *     if some live snapshot s has v.seq <= s < (next newer version).seq;
 *   - at the bottom, tombstones with no surviving older version;
 *   - keys outside the database's visible range (a clone's range).
 *
 * The manifest commit is fenced by compactor_epoch: another compactor that
 * raised it makes this one stop.  When no SST references a parent's store
 * any more, the parent entry is dropped from the manifest and the pin this
 * database held there (its final checkpoint) is deleted.
 */
#include "db/checkpoint_int.h"
#include "db/db_int.h"
#include "table/sst.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ver {
    uint8_t *key; size_t klen;
    uint8_t *val; size_t vlen;
    uint64_t seq;
    uint8_t kind;
} ver;

typedef struct compaction {
    shale_db *db;
    manifest *base;          /* copy of the manifest we compact from */
    bool full;               /* every run is an input: output is the bottom */
    uint64_t *snaps; size_t nsnaps;   /* live snapshot seqs, ascending */
    sorted_run out;          /* output SSTs */
    sst_builder *b;
    sst_options so;
    ver *vers; size_t nvers, capvers;
} compaction;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* True if a snapshot s exists with lo <= s < hi. */
static bool snapshot_between(const compaction *c, uint64_t lo, uint64_t hi)
{
    size_t a = 0, b = c->nsnaps;
    while (a < b) {
        size_t mid = (a + b) / 2;
        if (c->snaps[mid] < lo)
            a = mid + 1;
        else
            b = mid;
    }
    return a < c->nsnaps && c->snaps[a] < hi;
}

static shale_status finish_sst(compaction *c)
{
    if (!c->b)
        return SHALE_OK;
    shale_buf img = SHALE_BUF_INIT;
    sst_info info;
    memset(&info, 0, sizeof info);
    shale_status rc = SHALE_OK;
    if (sst_builder_entries(c->b) == 0)
        goto out;
    if ((rc = sst_builder_finish(c->b, &img, &info)))
        goto out;
    sst_handle h;
    memset(&h, 0, sizeof h);
    ulid_new(h.id);
    char key[PATH_KEY_MAX];
    sst_key(h.id, key, sizeof key);
    if ((rc = shale_objstore_put(c->db->store, key, img.data, img.len))) {
        shale_err_prefix(rc, "%s: compaction writing %s", c->db->uri, key);
        goto out;
    }
    sst_handle *n = realloc(c->out.ssts, (c->out.count + 1) * sizeof *n);
    if (!n) {
        rc = SHALE_OOM();
        goto out;
    }
    c->out.ssts = n;
    h.size = img.len;
    h.entries = info.entries;
    h.tail = info.tail;
    h.first_key = info.first_key;
    h.first_klen = info.first_klen;
    h.last_key = info.last_key;
    h.last_klen = info.last_klen;
    info.first_key = info.last_key = NULL;
    c->out.ssts[c->out.count++] = h;
out:
    sst_info_free(&info);
    buf_free(&img);
    sst_builder_free(c->b);
    c->b = NULL;
    return rc;
}

static void clear_vers(compaction *c)
{
    for (size_t i = 0; i < c->nvers; i++) {
        free(c->vers[i].key);
        free(c->vers[i].val);
    }
    c->nvers = 0;
}

/* Emits the buffered versions of one key, applying the drop rules. */
static shale_status emit_key(compaction *c)
{
    if (c->nvers == 0)
        return SHALE_OK;
    shale_status rc = SHALE_OK;
    size_t keep = c->nvers;
    if (c->full) {
        /* Trailing (oldest) tombstones hide nothing below the bottom. */
        while (keep > 0 && c->vers[keep - 1].kind == KV_DELETE)
            keep--;
    }
    if (keep > 0 && !c->b) {
        if (!(c->b = sst_builder_new(&c->so))) {
            rc = SHALE_OOM();
            goto out;
        }
    }
    for (size_t i = 0; i < keep; i++) {
        kv_entry e = {c->vers[i].key, c->vers[i].klen, c->vers[i].seq, c->vers[i].kind,
                      c->vers[i].val, c->vers[i].vlen};
        if ((rc = sst_builder_add(c->b, &e)))
            goto out;
    }
    if (c->b && sst_builder_size_estimate(c->b) >= c->db->opts.sst_target_bytes)
        rc = finish_sst(c);
out:
    clear_vers(c);
    return rc;
}

static shale_status push_ver(compaction *c, const kv_entry *e)
{
    if (c->nvers == c->capvers) {
        size_t cap = c->capvers ? c->capvers * 2 : 8;
        ver *n = realloc(c->vers, cap * sizeof *n);
        if (!n)
            return SHALE_OOM();
        c->vers = n;
        c->capvers = cap;
    }
    ver *v = &c->vers[c->nvers];
    v->key = malloc(e->klen ? e->klen : 1);
    v->val = malloc(e->vlen ? e->vlen : 1);
    if (!v->key || !v->val) {
        free(v->key);
        free(v->val);
        return SHALE_OOM();
    }
    memcpy(v->key, e->key, e->klen);
    if (e->vlen)
        memcpy(v->val, e->val, e->vlen);
    v->klen = e->klen;
    v->vlen = e->vlen;
    v->seq = e->seq;
    v->kind = e->kind;
    c->nvers++;
    return SHALE_OK;
}

/* Runs the merge over the chosen inputs into c->out. */
static shale_status merge_inputs(compaction *c)
{
    db_view *v = NULL;
    manifest *in = manifest_dup(c->base);
    if (!in)
        return SHALE_OOM();
    if (!c->full) {
        for (size_t i = 0; i < in->run_count; i++) {
            for (size_t j = 0; j < in->runs[i].count; j++)
                sst_handle_clear(&in->runs[i].ssts[j]);
            free(in->runs[i].ssts);
        }
        free(in->runs);
        in->runs = NULL;
        in->run_count = 0;
    }
    shale_status rc = view_new(c->db->env, NULL, 0, in, &v);
    manifest_free(in);
    if (rc)
        return rc;
    kv_iter *it = NULL;
    rc = view_internal_iter(v, false, &it);
    if (rc)
        goto out;
    uint64_t newer_seq = 0;  /* seq of the previous version of this key */
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        kv_entry e;
        kv_iter_entry(it, &e);
        if (!view_in_range(c->base, e.key, e.klen))
            continue;
        bool same = c->nvers > 0 &&
                    !kv_key_cmp(e.key, e.klen, c->vers[0].key, c->vers[0].klen);
        if (!same) {
            if ((rc = emit_key(c)))
                goto out;
            rc = push_ver(c, &e);
        } else if (e.seq == newer_seq) {
            continue;  /* the same version from two inputs */
        } else if (snapshot_between(c, e.seq, newer_seq)) {
            rc = push_ver(c, &e);
        }
        if (rc)
            goto out;
        newer_seq = e.seq;
    }
    rc = kv_iter_status(it);
    if (!rc)
        rc = emit_key(c);
    if (!rc)
        rc = finish_sst(c);
out:
    kv_iter_destroy(it);
    view_unref(v);
    return rc;
}

typedef struct commit_ctx {
    compaction *c;
    uint64_t cepoch;
} commit_ctx;

static bool in_base_l0(const manifest *base, const char *id)
{
    for (size_t i = 0; i < base->l0_count; i++)
        if (!strcmp(base->l0[i].id, id))
            return true;
    return false;
}

static bool handle_in_store(const sst_handle *h, const char *uri)
{
    return h->store_uri && !strcmp(h->store_uri, uri);
}

static shale_status commit_mut(manifest *m, void *arg)
{
    commit_ctx *cc = arg;
    compaction *c = cc->c;
    if (m->compactor_epoch != cc->cepoch)
        return shale_err(SHALE_FENCED, "compactor_epoch is %llu, ours %llu",
                         (unsigned long long)m->compactor_epoch,
                         (unsigned long long)cc->cepoch);
    /* Drop the input L0s (newer L0s flushed meanwhile stay). */
    size_t w = 0;
    for (size_t i = 0; i < m->l0_count; i++) {
        if (in_base_l0(c->base, m->l0[i].id))
            sst_handle_clear(&m->l0[i]);
        else
            m->l0[w++] = m->l0[i];
    }
    m->l0_count = w;
    sorted_run nr = {m->next_run_id++, NULL, c->out.count};
    nr.ssts = calloc(c->out.count ? c->out.count : 1, sizeof *nr.ssts);
    if (!nr.ssts)
        return SHALE_OOM();
    for (size_t i = 0; i < c->out.count; i++)
        if (sst_handle_copy(&nr.ssts[i], &c->out.ssts[i])) {
            for (size_t j = 0; j < i; j++)
                sst_handle_clear(&nr.ssts[j]);
            free(nr.ssts);
            return SHALE_OOM();
        }
    if (c->full) {
        for (size_t i = 0; i < m->run_count; i++) {
            for (size_t j = 0; j < m->runs[i].count; j++)
                sst_handle_clear(&m->runs[i].ssts[j]);
            free(m->runs[i].ssts);
        }
        m->run_count = 0;
    }
    sorted_run *runs = realloc(m->runs, (m->run_count + 1) * sizeof *runs);
    if (!runs) {
        for (size_t j = 0; j < nr.count; j++)
            sst_handle_clear(&nr.ssts[j]);
        free(nr.ssts);
        return SHALE_OOM();
    }
    m->runs = runs;
    memmove(m->runs + 1, m->runs, m->run_count * sizeof *runs);
    m->runs[0] = nr;
    m->run_count++;
    if (nr.count == 0) {  /* everything was dropped: no empty run */
        free(nr.ssts);
        memmove(m->runs, m->runs + 1, --m->run_count * sizeof *runs);
    }
    /* Parents no SST references any more are released -- but only while
     * this database has no checkpoint: a checkpoint pins an older version
     * that may still reference a parent's SSTs (a clone of this clone
     * stands on it), so the pin there must stay. */
    w = 0;
    for (size_t p = 0; p < m->parent_count && !m->checkpoint_count; p++) {
        bool used = false;
        for (size_t i = 0; i < m->l0_count && !used; i++)
            used = handle_in_store(&m->l0[i], m->parents[p].store_uri);
        for (size_t r = 0; r < m->run_count && !used; r++)
            for (size_t i = 0; i < m->runs[r].count && !used; i++)
                used = handle_in_store(&m->runs[r].ssts[i], m->parents[p].store_uri);
        if (used)
            m->parents[w++] = m->parents[p];
        else
            free(m->parents[p].store_uri);
    }
    if (!m->checkpoint_count)
        m->parent_count = w;
    return SHALE_OK;
}

/* After a commit dropped parents from the manifest, deletes this
 * database's pins (final checkpoints) in those parents' stores, so their GC
 * can reclaim what only this child used.  Best effort: a pin left behind
 * only delays the parent's GC.  Called without mu. */
static void release_pins(shale_db *db, const manifest *base)
{
    for (size_t p = 0; p < base->parent_count; p++) {
        bool kept = false;
        pthread_mutex_lock(&db->mu);
        for (size_t q = 0; q < db->man->parent_count && !kept; q++)
            kept = !strcmp(db->man->parents[q].store_uri, base->parents[p].store_uri);
        pthread_mutex_unlock(&db->mu);
        if (kept)
            continue;
        /* Through the env: the parent's store with the options the
         * database was opened with (the caller's are long gone). */
        shale_objstore *s = NULL;
        if (db_env_store(db->env, base->parents[p].store_uri, &s) == SHALE_OK)
            cp_remove(s, base->parents[p].final_checkpoint_id, true);
    }
}

/* One compaction if due (or forced).  mu held on entry and exit. */
static shale_status compact_once_locked(shale_db *db, bool force)
{
    const manifest *m = db->man;
    if (!force && m->l0_count < db->opts.l0_compaction_trigger)
        return SHALE_OK;
    if (force && m->l0_count == 0 && m->run_count <= 1 && m->parent_count == 0)
        return SHALE_OK;
    compaction c;
    memset(&c, 0, sizeof c);
    c.db = db;
    c.so = (sst_options){db->opts.block_size, db->opts.compression_level,
                         db->opts.bloom_bits_per_key};
    c.base = manifest_dup(m);
    c.nsnaps = db->snapshot_count;
    c.snaps = malloc((c.nsnaps ? c.nsnaps : 1) * sizeof *c.snaps);
    if (!c.base || !c.snaps) {
        manifest_free(c.base);
        free(c.snaps);
        return SHALE_OOM();
    }
    if (c.nsnaps) {
        memcpy(c.snaps, db->snapshots, c.nsnaps * sizeof *c.snaps);
        qsort(c.snaps, c.nsnaps, sizeof *c.snaps, cmp_u64);
    }
    c.full = force || c.base->run_count + 1 > db->opts.max_sorted_runs ||
             c.base->run_count == 0;
    db->compact_busy = true;
    pthread_mutex_unlock(&db->mu);

    /* The inputs are read once: leave the block cache to the readers (its
     * blocks are still used where present).  See sst_thread_fill_cache. */
    sst_thread_fill_cache(false);
    shale_status rc = merge_inputs(&c);
    sst_thread_fill_cache(true);
    if (!rc) {
        commit_ctx cc = {&c, db->my_compactor_epoch};
        rc = db_update_manifest(db, commit_mut, &cc);
        if (!rc && c.base->parent_count)
            release_pins(db, c.base);
    }
    if (rc) {
        /* Best effort: the output SSTs are garbage now; GC also finds them. */
        for (size_t i = 0; i < c.out.count; i++) {
            char key[PATH_KEY_MAX];
            sst_key(c.out.ssts[i].id, key, sizeof key);
            shale_objstore_delete(db->store, key);
        }
    }
    for (size_t i = 0; i < c.out.count; i++)
        sst_handle_clear(&c.out.ssts[i]);
    free(c.out.ssts);
    clear_vers(&c);
    free(c.vers);
    sst_builder_free(c.b);
    free(c.snaps);
    manifest_free(c.base);

    pthread_mutex_lock(&db->mu);
    db->compact_busy = false;
    if (!rc) {
        db->compactions_done++;
        db_env_retain_only(db->env, db->man);
    }
    pthread_cond_broadcast(&db->cv);
    pthread_cond_signal(&db->cv_flush);
    return rc;
}

/* Compaction is the writer's housekeeping: when it fails (an object store
 * outage longer than the store's retries, a corrupt input SST) the writer
 * keeps taking writes into L0 and the compactor tries again after a backoff
 * (100 ms doubling to 30 s; an explicit shale_compact() does not wait for
 * it).  The failure is kept for shale_db_info() and for the caller of
 * shale_compact(), and cleared by the next success.  Only a fenced
 * compaction stops the writer.  Writers that wait for memory while L0 is
 * full behind a failing compaction get the error (db.c) instead of
 * waiting forever.  Partial outputs of a failed run are objects no
 * manifest names: GC removes them. */
#define COMPACT_BACKOFF_MIN_MS 100u
#define COMPACT_BACKOFF_MAX_MS 30000u

void *db_compact_thread(void *arg)
{
    shale_db *db = arg;
    pthread_mutex_lock(&db->mu);
    while (!db->closing) {
        bool due = db->opts.compactor && db->man->l0_count >= db->opts.l0_compaction_trigger;
        int64_t now = mono_ms();
        bool backing_off = db->compact_error && now < db->compact_retry_at;
        if (db->fenced || db->bg_error || (!db->compact_requested && (!due || backing_off))) {
            if (due && backing_off && !db->fenced && !db->bg_error)
                db_cond_wait_ms(&db->cv_compact, &db->mu, db->compact_retry_at - now);
            else
                pthread_cond_wait(&db->cv_compact, &db->mu);
            continue;
        }
        bool force = db->compact_requested && db->compact_force;
        bool requested = db->compact_requested;
        db->compact_requested = false;
        db->compact_force = false;
        shale_status rc = compact_once_locked(db, force);
        if (rc == SHALE_FENCED) {
            db_set_bg_error_locked(db, rc);
        } else if (rc) {
            db->compactions_failed++;
            db->compact_error = rc;
            snprintf(db->compact_errmsg, sizeof db->compact_errmsg, "%s", shale_errmsg());
            db->compact_backoff_ms = db->compact_backoff_ms
                                         ? (db->compact_backoff_ms >= COMPACT_BACKOFF_MAX_MS / 2
                                                ? COMPACT_BACKOFF_MAX_MS
                                                : db->compact_backoff_ms * 2)
                                         : COMPACT_BACKOFF_MIN_MS;
            db->compact_retry_at = mono_ms() + db->compact_backoff_ms;
        } else {
            db->compact_error = SHALE_OK;
            db->compact_backoff_ms = 0;
        }
        if (requested) {
            db->compact_request_rc = rc;
            snprintf(db->compact_request_msg, sizeof db->compact_request_msg, "%s",
                     rc ? shale_errmsg() : "");
            db->compact_requests_done++;
        }
        pthread_cond_broadcast(&db->cv);
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

/* Asks the compactor thread for one run and waits for its result. */
static shale_status request_run(shale_db *db, bool force)
{
    pthread_mutex_lock(&db->mu);
    shale_status rc = db_check_writable_locked(db);
    if (!rc) {
        uint64_t want = db->compact_requests_done + 1;
        db->compact_requested = true;
        db->compact_force = db->compact_force || force;
        pthread_cond_signal(&db->cv_compact);
        while (!rc && db->compact_requests_done < want) {
            pthread_cond_wait(&db->cv, &db->mu);
            rc = db_check_writable_locked(db);
        }
        if (!rc && db->compact_request_rc)
            rc = shale_err(db->compact_request_rc, "%s: compaction failed: %s", db->uri,
                           db->compact_request_msg);
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

shale_status shale_compact(shale_db *db, bool force)
{
    /* "Everything" includes what is still in memtables: without this flush a
     * forced compaction could run before the last memtable reached L0 and
     * leave those writes out of the run (a flaky test found it). */
    if (force) {
        shale_status frc = shale_flush_memtable(db);
        pthread_mutex_lock(&db->mu);
        bool stalled = frc && db_check_compaction_stall_locked(db, "") != SHALE_OK;
        pthread_mutex_unlock(&db->mu);
        if (stalled) {
            /* L0 is full behind failed compactions, so the memtables
             * cannot go to L0: compact L0 first (now, not after the
             * backoff), then flush. */
            frc = request_run(db, false);
            if (!frc)
                frc = shale_flush_memtable(db);
        }
        if (frc)
            return frc;
    }
    return request_run(db, force);
}
