/*
 * wal_writer.c -- WAL SSTs: encoding, the writer thread, and replay.
 *
 * A WAL SST is an ordinary SST (table/sst.h) of one sealed WAL buffer, at
 * wal/<id:020>.sst in the WAL store, written with put-if-absent.  Ids are
 * consecutive; one WAL write is in flight at a time, so ids land in order
 * and durable_seq covers a contiguous prefix.
 *
 * When a put fails with an error that may hide success (a timeout after the
 * store took the write), the retry finds the id taken; the object is then
 * read back and compared byte for byte: equal means it was our write, not a
 * rival's.  A different object at our id means a newer writer fenced us.
 *
 * Replay reads ids replay_after_wal_id+1, +2, ... until the first missing
 * one.  Ids below the manifest's next_wal_sst_id were written by an earlier
 * writer and must exist; a missing one fails the open with SHALE_NOT_FOUND
 * naming the object, since silently stopping there would lose data.
 */
#include "db/db_int.h"
#include "table/sst.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAL_WRITE_ATTEMPTS 8

shale_status wal_encode(shale_db *db, memtable *buf, shale_buf *out)
{
    /* WAL SSTs are read whole at replay: no bloom filter, light compression
     * only where the options ask for it. */
    sst_options so = {db->opts.block_size, db->opts.compression_level, 0};
    kv_iter *it = memtable_iter_new(buf);
    if (!it)
        return SHALE_OOM();
    shale_status rc = sst_build_from_iter(&so, it, out, NULL);
    kv_iter_destroy(it);
    return rc;
}

/* Writes one sealed buffer.  Called without mu. */
static shale_status wal_write(shale_db *db, wal_seal *s)
{
    char key[PATH_KEY_MAX];
    wal_key(s->id, key, sizeof key);
    shale_buf img = SHALE_BUF_INIT;
    shale_status rc = wal_encode(db, s->buf, &img);
    if (rc)
        goto out;
    for (int attempt = 0; attempt < WAL_WRITE_ATTEMPTS; attempt++) {
        rc = shale_objstore_put_if_absent(db->wal_store, key, img.data, img.len);
        if (rc == SHALE_OK)
            goto out;
        if (rc == SHALE_PRECONDITION_FAILED) {
            void *got = NULL;
            size_t glen = 0;
            shale_status grc = shale_objstore_get(db->wal_store, key, &got, &glen);
            bool ours = grc == SHALE_OK && glen == img.len && !memcmp(got, img.data, glen);
            free(got);
            if (ours) {
                rc = SHALE_OK;
                goto out;
            }
            if (attempt == 0 || grc == SHALE_OK) {
                rc = shale_err(SHALE_FENCED,
                               "%s: %s already exists: a newer writer fenced this one",
                               shale_objstore_uri(db->wal_store), key);
                goto out;
            }
            continue;
        }
        if (rc != SHALE_IO && rc != SHALE_TIMEOUT && rc != SHALE_RETRYABLE)
            break;
        sleep_ms(20u << (attempt < 6 ? attempt : 6));
    }
    shale_err_prefix(rc, "writing WAL SST %s to %s", key, shale_objstore_uri(db->wal_store));
out:
    buf_free(&img);
    return rc;
}

void *db_wal_thread(void *arg)
{
    shale_db *db = arg;
    pthread_mutex_lock(&db->mu);
    for (;;) {
        bool stopped = db->fenced || db->bg_error;
        if (db->closing && (stopped || (!db->seal_head && !db->wal_busy)))
            break;
        if (stopped) {
            pthread_cond_wait(&db->cv_wal, &db->mu);
            continue;
        }
        if (!db->seal_head) {
            if (memtable_count(db->walbuf) > 0) {
                int64_t due = db->walbuf_first_ms + db->opts.wal_flush_interval_ms;
                if (db->durable_waiters > 0 || db->closing || mono_ms() >= due) {
                    shale_status rc = db_seal_wal_locked(db);
                    if (rc)
                        db_set_bg_error_locked(db, rc);
                    continue;
                }
                db_cond_wait_ms(&db->cv_wal, &db->mu, due - mono_ms());
            } else {
                pthread_cond_wait(&db->cv_wal, &db->mu);
            }
            continue;
        }
        wal_seal *s = db->seal_head;
        db->wal_busy = true;
        pthread_mutex_unlock(&db->mu);
        shale_status rc = wal_write(db, s);
        pthread_mutex_lock(&db->mu);
        db->wal_busy = false;
        if (rc) {
            db_set_bg_error_locked(db, rc);
            continue;
        }
        db->seal_head = s->next;
        if (!db->seal_head)
            db->seal_tail = NULL;
        db->durable_wal_id = s->id;
        if (s->max_seq > db->durable_seq)
            db->durable_seq = s->max_seq;
        memtable_unref(s->buf);
        free(s);
        pthread_cond_broadcast(&db->cv);
        pthread_cond_signal(&db->cv_flush);
    }
    pthread_cond_broadcast(&db->cv);
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

/* Feeds every entry of one WAL SST image to cb->entry. */
static shale_status replay_one(const char *key, uint8_t *data, size_t len,
                               const wal_replay_cb *cb)
{
    sst_reader *r = NULL;
    shale_status rc = sst_reader_open_mem(key, data, len, true, &r);
    if (rc)
        return rc;
    kv_iter *it = sst_iter_new(r);
    if (!it) {
        sst_reader_unref(r);
        return SHALE_OOM();
    }
    for (kv_iter_seek_first(it); kv_iter_valid(it) && !rc; kv_iter_next(it)) {
        kv_entry e;
        kv_iter_entry(it, &e);
        rc = cb->entry(cb->ctx, &e);
    }
    if (!rc)
        rc = kv_iter_status(it);
    kv_iter_destroy(it);
    sst_reader_unref(r);
    return rc;
}

shale_status wal_read_range(shale_objstore *w, const char *db_uri, const manifest *m,
                            uint64_t from, const wal_replay_cb *cb, uint64_t *first_free)
{
    uint64_t id = from <= m->replay_after_wal_id ? m->replay_after_wal_id + 1 : from;
    for (;; id++) {
        char key[PATH_KEY_MAX];
        wal_key(id, key, sizeof key);
        void *data = NULL;
        size_t len = 0;
        shale_status rc = shale_objstore_get(w, key, &data, &len);
        if (rc == SHALE_NOT_FOUND) {
            if (id < m->next_wal_sst_id)
                return shale_err(SHALE_NOT_FOUND,
                                 "%s: WAL SST %s/%s is needed for replay (replay_after_wal_id="
                                 "%llu, next_wal_sst_id=%llu) but is missing: wrong WAL store "
                                 "or lost data",
                                 db_uri, shale_objstore_uri(w), key,
                                 (unsigned long long)m->replay_after_wal_id,
                                 (unsigned long long)m->next_wal_sst_id);
            break;
        }
        if (rc)
            return shale_err_prefix(rc, "%s: replaying %s", db_uri, key);
        rc = replay_one(key, data, len, cb);
        if (!rc && cb->after_sst)
            rc = cb->after_sst(cb->ctx, id);
        if (rc)
            return shale_err_prefix(rc, "%s: replaying %s", db_uri, key);
    }
    *first_free = id;
    return SHALE_OK;
}

static shale_status db_replay_entry(void *ctx, const kv_entry *e)
{
    shale_db *db = ctx;
    if (e->seq <= db->man->last_l0_seq)
        return SHALE_OK;  /* already in L0 */
    shale_status rc = memtable_add(db->mem, e);
    if (!rc && e->seq > db->last_seq)
        db->last_seq = e->seq;
    return rc;
}

static shale_status db_replay_after_sst(void *ctx, uint64_t id)
{
    shale_db *db = ctx;
    shale_status rc = SHALE_OK;
    db->next_wal_id = id + 1;
    if (memtable_bytes(db->mem) >= db->opts.memtable_bytes) {
        pthread_mutex_lock(&db->mu);
        rc = db_freeze_locked(db);
        pthread_mutex_unlock(&db->mu);
    }
    return rc;
}

shale_status wal_replay(shale_db *db, uint64_t *first_free)
{
    wal_replay_cb cb = {db_replay_entry, db_replay_after_sst, db};
    shale_status rc = wal_read_range(db->wal_store, db->uri, db->man, db->replay_next_id, &cb,
                                     first_free);
    if (!rc)
        db->replay_next_id = *first_free;
    return rc;
}
