/*
 * flush.c -- frozen memtables to L0, and noticing that we were fenced.
 *
 * The flush thread takes the oldest frozen memtable once its WAL ids are
 * durable, writes it as compacted/<ulid>.sst (a plain put: the name is
 * new), then commits one manifest version that adds the SST at the front
 * of L0 and sets replay_after_wal_id to the memtable's wal_id.  An empty
 * memtable writes no SST and only advances replay_after_wal_id.  L0 is
 * bounded: while it holds l0_max_ssts SSTs the flush waits for compaction.
 *
 * A flush may carry a checkpoint (flush_cp, db_int.h; shale_flush_checkpoint):
 * the SST is written, the caller's barrier runs on the caller's thread
 * while this thread waits, and the one manifest write adds the L0 SST, sets
 * replay_after_wal_id and adds the checkpoint record pinning that very
 * version.  The SST is invisible until that write (nothing names it), so
 * it may be written before the barrier: a caller that must record its
 * intent durably before the checkpoint exists (the split's journal) runs
 * that record beside the SST's upload.  A barrier that fails leaves the
 * flush to commit without the record (the flush is the writer's own
 * business; only the checkpoint is the caller's).
 *
 * When no flush is ready the thread deletes the WAL SSTs the flushes made
 * obsolete, a batch at a time (wal_gc.c), and finishes that at close.
 *
 * Between flushes the thread re-reads the manifest every manifest_poll_ms:
 * a writer_epoch above ours means a newer writer took over, and this
 * handle refuses writes from then on (SHALE_FENCED).
 */
#include "db/checkpoint_int.h"
#include "db/db_int.h"
#include "table/sst.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct l0_ctx {
    uint64_t epoch;
    sst_handle *h;          /* NULL when the memtable was empty */
    uint64_t wal_id;
    uint64_t max_seq;
    uint64_t next_wal;      /* durable next WAL id to record */
    flush_cp *cp;           /* a checkpoint to add in the same write, or NULL */
} l0_ctx;

static shale_status l0_mut(manifest *m, void *arg)
{
    l0_ctx *c = arg;
    if (m->writer_epoch != c->epoch)
        return shale_err(SHALE_FENCED, "manifest writer_epoch %llu is newer than ours (%llu)",
                         (unsigned long long)m->writer_epoch, (unsigned long long)c->epoch);
    if (c->h) {
        sst_handle *n = realloc(m->l0, (m->l0_count + 1) * sizeof *n);
        if (!n)
            return SHALE_OOM();
        m->l0 = n;
        memmove(m->l0 + 1, m->l0, m->l0_count * sizeof *n);
        memset(&m->l0[0], 0, sizeof m->l0[0]);
        m->l0_count++;
        shale_status rc = sst_handle_copy(&m->l0[0], c->h);
        if (rc) {
            memmove(m->l0, m->l0 + 1, --m->l0_count * sizeof *n);
            return rc;
        }
    }
    if (c->wal_id > m->replay_after_wal_id)
        m->replay_after_wal_id = c->wal_id;
    if (c->next_wal > m->next_wal_sst_id)
        m->next_wal_sst_id = c->next_wal;
    if (m->next_wal_sst_id <= m->replay_after_wal_id)
        m->next_wal_sst_id = m->replay_after_wal_id + 1;
    if (c->max_seq > m->last_l0_seq)
        m->last_l0_seq = c->max_seq;
    if (!c->cp)
        return SHALE_OK;
    /* After the WAL fields: the record pins this version, with the gap
     * closed (add_mut checks it, checkpoint.c).  Described here, from the
     * version being written: a race lost re-runs this on the newer base,
     * so the last description is the written one. */
    shale_status rc = c->cp->add(m, c->cp->add_ctx);
    const checkpoint_rec *r = rc ? NULL : cp_find(m, c->cp->id);
    if (!rc && !r)
        rc = shale_err(SHALE_NOT_FOUND, "checkpoint %s not added", c->cp->id);
    if (r)
        cp_describe(r, m, &c->cp->desc);
    return rc;
}

/* Ends a carried checkpoint (mu held): after this the flush thread does
 * not touch it (it is on the caller's stack). */
static void cp_finish_locked(shale_db *db, flush_cp *cp, shale_status rc, const char *msg)
{
    cp->rc = rc;
    if (rc && msg != cp->msg)
        snprintf(cp->msg, sizeof cp->msg, "%s", msg);
    cp->state = FCP_DONE;
    pthread_cond_broadcast(&db->cv);
}

/* The SST is written: the caller runs its barrier (mu not held on entry
 * or return).  Returns its status: on a failure the flush commits without
 * the record, and the caller hears the barrier's status once the flush
 * is done (its message is in cp->msg already, from the caller's thread). */
static shale_status cp_barrier(shale_db *db, flush_cp *cp)
{
    if (!cp || !cp->before_commit)
        return SHALE_OK;
    pthread_mutex_lock(&db->mu);
    cp->state = FCP_BARRIER;
    pthread_cond_broadcast(&db->cv);
    while (cp->state == FCP_BARRIER)
        pthread_cond_wait(&db->cv, &db->mu);
    shale_status rc = cp->barrier_rc;
    pthread_mutex_unlock(&db->mu);
    return rc;
}

struct l0_pre {
    shale_db *db;
    memtable *mem;                 /* a reference */
    uint64_t count;                /* entries when the build started */
    pthread_t th;
    shale_status rc;
    shale_buf img;
    sst_info info;
    char id[27];                   /* the uploaded object's ULID */
    bool uploaded;                 /* img is in the store under sst_key(id) */
    bool built;                    /* img and info are mem's (rc says if it failed) */
    bool build_only;               /* the thread only builds (flush_prebuild_spec) */
    bool running;                  /* th is to be joined */
};

static shale_status build_l0(shale_db *db, memtable *mem, shale_buf *img, sst_info *info)
{
    sst_options so = {db->opts.block_size, db->opts.compression_level,
                      db->opts.bloom_bits_per_key};
    kv_iter *it = memtable_iter_new(mem);
    shale_status rc = it ? sst_build_from_iter(&so, it, img, info) : SHALE_OOM();
    kv_iter_destroy(it);
    return rc;
}

/* Builds the image and uploads it at once, under a key of its own: the
 * open's next-WAL-id write is in flight meanwhile, so the upload is off
 * the takeover's chain of round trips (FullFlush is then its one manifest
 * write; issue 16).  The upload is not a side effect: no manifest names
 * the object until the flush's write does, and one that no flush takes
 * (an entry was added since, the open failed) is deleted by pre_free, or
 * left for GC if that fails.  A failed upload is not an error: the flush
 * puts the image itself. */
static void *pre_main(void *arg)
{
    struct l0_pre *p = arg;
    if (!p->built) {
        p->rc = build_l0(p->db, p->mem, &p->img, &p->info);
        p->built = true;
    }
    if (p->rc || p->build_only)
        return NULL;
    ulid_new(p->id);
    char key[PATH_KEY_MAX];
    sst_key(p->id, key, sizeof key);
    p->uploaded = !shale_objstore_put(p->db->store, key, p->img.data, p->img.len);
    return NULL;
}

static void pre_start(shale_db *db, memtable *mem, bool build_only)
{
    struct l0_pre *p = calloc(1, sizeof *p);
    if (!p)
        return;   /* the flush builds it, as without */
    p->db = db;
    p->mem = mem;
    p->count = memtable_count(mem);
    p->img = (shale_buf)SHALE_BUF_INIT;
    p->build_only = build_only;
    memtable_ref(p->mem);
    if (pthread_create(&p->th, NULL, pre_main, p)) {
        memtable_unref(p->mem);
        free(p);
        return;
    }
    p->running = true;
    db->pre = p;
}

/* Joins db->pre and takes it away; *p owned by the caller (pre_free). */
static struct l0_pre *pre_take(shale_db *db)
{
    struct l0_pre *p = db->pre;
    db->pre = NULL;
    if (p && p->running) {
        pthread_join(p->th, NULL);
        p->running = false;
    }
    return p;
}

static void pre_free(struct l0_pre *p);

void flush_prebuild_start(shale_db *db)
{
    if (!db->mem || !memtable_count(db->mem))
        return;
    if (db->pre && db->pre->build_only) {
        /* flush_prebuild_spec()'s image: the upload goes now when it is of
         * this memtable and nothing was added since (entries are only ever
         * added, so the count says it); else it is built again.  The join
         * waits for CPU only: that thread uploads nothing. */
        struct l0_pre *p = pre_take(db);
        if (!p->rc && p->mem == db->mem && p->count == memtable_count(db->mem)) {
            p->build_only = false;
            db->spec_prebuilt++;
            p->running = !pthread_create(&p->th, NULL, pre_main, p);
            db->pre = p;   /* not running: the flush uploads the image itself */
            return;
        }
        pre_free(p);
    }
    if (!db->pre)
        pre_start(db, db->mem, false);
}

void flush_prebuild_spec(shale_db *db, memtable *mem)
{
    if (!db->pre && mem && memtable_count(mem))
        pre_start(db, mem, true);
}

static void pre_free(struct l0_pre *p)
{
    if (!p)
        return;
    if (p->uploaded) {   /* not taken by a flush: nothing names it */
        char key[PATH_KEY_MAX];
        sst_key(p->id, key, sizeof key);
        (void)shale_objstore_delete(p->db->store, key);
    }
    memtable_unref(p->mem);
    buf_free(&p->img);
    sst_info_free(&p->info);
    free(p);
}

void flush_prebuild_drop(shale_db *db)
{
    pre_free(pre_take(db));
}

/* Writes a memtable as an SST in the main store; fills *h.  The open's
 * prebuilt image is used when it is of this memtable with no entry added
 * since (entries are only ever added, so the count says it). */
static shale_status write_l0(shale_db *db, memtable *mem, sst_handle *h)
{
    shale_buf img = SHALE_BUF_INIT;
    sst_info info;
    memset(&info, 0, sizeof info);
    struct l0_pre *p = pre_take(db);
    shale_status rc;
    bool uploaded = false;
    if (p && p->built && !p->rc && p->mem == mem && memtable_count(mem) == p->count) {
        img = p->img;
        info = p->info;
        p->img = (shale_buf)SHALE_BUF_INIT;
        memset(&p->info, 0, sizeof p->info);
        if ((uploaded = p->uploaded)) {
            memcpy(h->id, p->id, sizeof h->id);
            p->uploaded = false;   /* the flush's now: pre_free keeps it */
        }
        rc = SHALE_OK;
    } else {
        rc = build_l0(db, mem, &img, &info);
    }
    pre_free(p);
    if (rc)
        goto out;
    if (!uploaded) {
        ulid_new(h->id);
        char key[PATH_KEY_MAX];
        sst_key(h->id, key, sizeof key);
        rc = shale_objstore_put(db->store, key, img.data, img.len);
        if (rc) {
            shale_err_prefix(rc, "%s: flushing memtable to %s", db->uri, key);
            goto out;
        }
    }
    h->store_uri = NULL;
    h->size = img.len;
    h->entries = info.entries;
    h->tail = info.tail;
    h->first_key = info.first_key;
    h->first_klen = info.first_klen;
    h->last_key = info.last_key;
    h->last_klen = info.last_klen;
    info.first_key = info.last_key = NULL;
out:
    sst_info_free(&info);
    buf_free(&img);
    return rc;
}

/* Flushes imms[0].  Called with mu held; drops it during I/O. */
static void flush_one_locked(shale_db *db)
{
    imm_entry imm = db->imms[0];
    flush_cp *cp = imm.cp;
    db->imms[0].cp = NULL;   /* this flush owns it now */
    if (cp)
        cp->state = FCP_TAKEN;
    memtable_ref(imm.mem);
    db->flush_busy = true;
    uint64_t next_wal = db->durable_wal_id + 1;
    pthread_mutex_unlock(&db->mu);

    sst_handle h;
    memset(&h, 0, sizeof h);
    shale_status rc = SHALE_OK;
    bool empty = memtable_count(imm.mem) == 0;
    if (!empty)
        rc = write_l0(db, imm.mem, &h);
    shale_status brc = rc ? SHALE_OK : cp_barrier(db, cp);
    if (!rc) {
        l0_ctx c = {db->my_epoch, empty ? NULL : &h, imm.wal_id, memtable_max_seq(imm.mem),
                    next_wal, brc ? NULL : cp};
        rc = db_update_manifest(db, l0_mut, &c);
    }
    char msg[512] = "";
    if (rc)
        snprintf(msg, sizeof msg, "%s", shale_errmsg());
    sst_handle_clear(&h);
    memtable_unref(imm.mem);

    pthread_mutex_lock(&db->mu);
    db->flush_busy = false;
    if (rc) {
        if (cp)
            cp_finish_locked(db, cp, brc ? brc : rc, brc ? cp->msg : msg);
        db_set_bg_error_locked(db, rc);
        return;
    }
    memtable_unref(db->imms[0].mem);
    memmove(db->imms, db->imms + 1, (db->imm_count - 1) * sizeof *db->imms);
    db->imm_count--;
    db->flushed_wal_id = imm.wal_id;
    shale_status vrc = db_install_manifest_locked(db, db->man);  /* drop the imm */
    if (cp)
        cp_finish_locked(db, cp, brc, cp->msg);   /* the barrier's failure: its message */
    if (vrc)
        db_set_bg_error_locked(db, vrc);
    if (db->man->l0_count >= db->opts.l0_compaction_trigger)
        pthread_cond_signal(&db->cv_compact);
    pthread_cond_broadcast(&db->cv);
}

/* Re-reads the manifest to notice a newer writer.  mu held; dropped. */
static void poll_manifest_locked(shale_db *db)
{
    uint64_t hint = db->man->id;
    pthread_mutex_unlock(&db->mu);
    pthread_mutex_lock(&db->man_mu);
    manifest *latest = NULL;
    shale_status rc = manifest_store_load_latest(db->store, hint, &latest);
    pthread_mutex_lock(&db->mu);
    if (rc == SHALE_OK) {
        if (latest->writer_epoch > db->my_epoch) {
            shale_err(SHALE_FENCED, "%s: writer_epoch is now %llu", db->uri,
                      (unsigned long long)latest->writer_epoch);
            db_set_bg_error_locked(db, SHALE_FENCED);
            manifest_free(latest);
        } else if (latest->id > db->man->id) {
            /* Others (checkpoints, clones, GC) wrote newer versions. */
            if (db_install_manifest_locked(db, latest))
                manifest_free(latest);
        } else {
            manifest_free(latest);
        }
    }
    pthread_mutex_unlock(&db->man_mu);
    /* A failed poll is not fatal: the next write's own checks decide. */
}

void *db_flush_thread(void *arg)
{
    shale_db *db = arg;
    int64_t next_poll = mono_ms() + db->opts.manifest_poll_ms;
    pthread_mutex_lock(&db->mu);
    while (!db->closing) {
        if (db->fenced || db->bg_error) {
            pthread_cond_wait(&db->cv_flush, &db->mu);
            db->flush_thread_wakes++;
            continue;
        }
        bool ready = db->imm_count > 0 && db->imms[0].wal_id <= db->durable_wal_id;
        bool l0_full = db->opts.compactor && db->man->l0_count >= db->opts.l0_max_ssts;
        if (ready && !l0_full) {
            flush_one_locked(db);
            continue;
        }
        if (ready && l0_full)
            pthread_cond_signal(&db->cv_compact);
        /* Flushes first: a round of the WAL GC runs only when none is ready. */
        if (wal_gc_due_locked(db)) {
            wal_gc_round_locked(db);
            continue;
        }
        int64_t now = mono_ms();
        if (db->opts.manifest_poll_ms && now >= next_poll) {
            poll_manifest_locked(db);
            next_poll = mono_ms() + db->opts.manifest_poll_ms;
            continue;
        }
        db_cond_wait_ms(&db->cv_flush, &db->mu,
                        db->opts.manifest_poll_ms ? next_poll - now : 1000);
        db->flush_thread_wakes++;
    }
    wal_gc_at_close_locked(db);
    pthread_mutex_unlock(&db->mu);
    return NULL;
}
