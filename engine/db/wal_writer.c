/*
 * wal_writer.c -- the WAL writer thread, and the writer's replay on open.
 * The format (keys, encoding, reading a range) is wal.c.
 *
 * Sealed WAL buffers are written strictly in id order, one at a time, with
 * put-if-absent, so ids land in order and durable_seq covers a contiguous
 * prefix.  One at a time: by the WAL thread, or by a writer waiting for
 * durability that leads its group (db_await_durable_locked); wal_busy
 * says a write is in flight.  Writers waiting for durability are listed in
 * seq order, each with its own condition variable: a finished write wakes
 * the first one it did not cover (the next leader) and the ones it did,
 * once it has dropped the mutex (db_wakes); an error or fencing wakes
 * them all (db_set_bg_error_locked).
 *
 * When a put fails with an error that may hide success (a timeout after the
 * store took the write), the retry finds the id taken; the object is then
 * read back and compared byte for byte: equal means it was our write, not a
 * rival's.  A different object at our id means a newer writer fenced us.
 * A store that refuses writes after a failed fsync (file://, SHALE_CLOSED)
 * is not retried: the writer stops with its error.
 */
#include "db/db_int.h"
#include "table/sst.h"
#include "util/iotrace.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAL_WRITE_ATTEMPTS 8

/* The zstd level of WAL SSTs: the options' for a remote WAL store (S3,
 * where bytes cost an upload), raw blocks otherwise (a local disk or
 * memory, where compression is CPU on the durable path for nothing).  The
 * uri may carry a wrapper's scheme ("fault+s3://..."). */
static int wal_compression_level(const shale_db *db)
{
    return strstr(shale_objstore_uri(db->wal_store), "s3://") ? db->opts.compression_level : 0;
}

/* Writes one sealed buffer.  Called without mu. */
static shale_status wal_write(shale_db *db, wal_seal *s)
{
    char key[PATH_KEY_MAX];
    wal_key(s->id, key, sizeof key);
    shale_buf img = SHALE_BUF_INIT;
    uint64_t t0 = iotrace_now();
    shale_status rc = wal_encode(db->opts.block_size, wal_compression_level(db), s->buf, &img);
    iotrace_ev('E', t0);
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

/* A writer waiting for durability.  Each has its own condition variable
 * so that a finished group wakes only the writers it acknowledged and the
 * one that leads the next group: with one broadcast every waiter woke, and
 * at 32 threads on 2 cores half of them went back to sleep while the next
 * leader queued behind them for the mutex.  The db owns them (a free list,
 * freed by db_free) rather than the waiter's stack, so that a finished
 * write may signal them after it drops the mutex: a waiter that has
 * already left leaves its cv to the next one, who at worst wakes once for
 * nothing and waits again. */
typedef struct dur_waiter {
    uint64_t seq;
    pthread_cond_t cv;
    struct dur_waiter *next;   /* in db->dur_waiters, or db->dur_spare */
} dur_waiter;

/* The waiters a finished write wakes are signalled once the mutex is
 * dropped (db_wakes_signal).  Signalling ~16 of them under the mutex at
 * 32 threads kept it ~100 µs after each write: every woken waiter (and on
 * 2 cores it can preempt the signaller) blocked on the mutex the
 * signaller held, and so did the next group's leader, woken first but
 * unable to start its write -- a third of the wall time at 32 threads
 * with no write in flight.  Past DB_WAKE_MAX the rest are signalled under
 * the mutex, as before.  The written seals are freed there too. */
static void wake_add_locked(shale_db *db, db_wakes *wl, dur_waiter *x, const dur_waiter *self)
{
    if (x == self)
        return;
    if (wl->n < DB_WAKE_MAX) {
        wl->cv[wl->n++] = &x->cv;
        db->dur_wakes_deferred++;
    } else {
        pthread_cond_signal(&x->cv);
        db->dur_wakes_locked++;
    }
}

void db_wakes_signal(db_wakes *wl)
{
    for (size_t i = 0; i < wl->n; i++)
        pthread_cond_signal(wl->cv[i]);
    wl->n = 0;
    while (wl->done) {
        wal_seal *s = wl->done;
        wl->done = s->next;
        wal_buf_free(s->buf);
        free(s);
    }
}

void db_free_dur_waiters(shale_db *db)
{
    while (db->dur_spare) {
        dur_waiter *x = db->dur_spare;
        db->dur_spare = x->next;
        pthread_cond_destroy(&x->cv);
        free(x);
    }
}

/* Whether a durable waiter is not yet covered: it leads the next group
 * and writes what is sealed or buffered (db_await_durable_locked). */
static bool db_durable_leader_waits_locked(const shale_db *db)
{
    for (const dur_waiter *x = db->dur_waiters; x; x = x->next)
        if (x->seq > db->durable_seq)
            return true;
    return false;
}

/* The durable waiters to wake now (under mu): those durable_seq covers,
 * and before them the first it does not (the next leader: it has I/O to
 * start).  self, the caller's own, needs no signal. */
static void collect_wakes_locked(shale_db *db, db_wakes *wl, const dur_waiter *self)
{
    for (dur_waiter *x = db->dur_waiters; x; x = x->next)
        if (x->seq > db->durable_seq) {
            wake_add_locked(db, wl, x, self);
            break;
        }
    for (dur_waiter *w = db->dur_waiters; w && w->seq <= db->durable_seq; w = w->next)
        wake_add_locked(db, wl, w, self);
}

/* Writes the sealed buffer at the head of the queue and publishes it
 * durable.  Called with mu held and no WAL write in flight; drops mu
 * around the write.  Whoever calls it (the WAL thread, or a writer waiting
 * for durability that leads its group) is the only WAL writer meanwhile:
 * wal_busy keeps the other out.  The durable waiters to wake are added to
 * wl, for the caller to signal once it drops mu. */
static void write_head_locked(shale_db *db, db_wakes *wl, const dur_waiter *self)
{
    wal_seal *s = db->seal_head;
    db->wal_busy = true;
    pthread_mutex_unlock(&db->mu);
    uint64_t t0 = iotrace_now();
    shale_status rc = wal_write(db, s);
    iotrace_ev('G', t0);
    pthread_mutex_lock(&db->mu);
    db->wal_busy = false;
    if (rc) {
        pthread_cond_signal(&db->cv_wal);
        db_set_bg_error_locked(db, rc);
        return;
    }
    db->seal_head = s->next;
    if (!db->seal_head)
        db->seal_tail = NULL;
    db->durable_wal_id = s->id;
    if (s->max_seq > db->durable_seq)
        db->durable_seq = s->max_seq;
    /* Wake only threads that have work: each needless wake-up is two
     * context switches and a turn on the mutex, on the put's path (at 1
     * thread, 8 context switches per put against RocksDB's 3: the WAL
     * and flush threads were woken by every put and went back to sleep).
     * The WAL thread has work when something is left that no durable
     * waiter will write: a waiter not covered leads the next group
     * (collect_wakes_locked wakes it first).  The flush thread has work
     * when this write made the oldest frozen memtable flushable. */
    if ((db->seal_head || wal_buf_count(db->walbuf) > 0 || db->closing) &&
        !db_durable_leader_waits_locked(db))
        pthread_cond_signal(&db->cv_wal);
    collect_wakes_locked(db, wl, self);
    pthread_cond_broadcast(&db->cv);
    if (db->imm_count > 0 && db->imms[0].wal_id <= db->durable_wal_id)
        pthread_cond_signal(&db->cv_flush);
    s->next = wl->done;   /* freed once mu is dropped */
    wl->done = s;
}

void db_wake_durable_all_locked(shale_db *db)
{
    for (dur_waiter *w = db->dur_waiters; w; w = w->next)
        pthread_cond_signal(&w->cv);
}

shale_status db_await_durable_locked(shale_db *db, uint64_t seq, db_wakes *wakes)
{
    /* The group's leader: when no WAL write is in flight, the waiting
     * writer seals what is buffered (its own entries and those of every
     * writer that came before) and writes it on its own thread -- no hand
     * off to the WAL thread and back, which costs two wake-ups per durable
     * put, more than the write itself on a busy machine.  Writers that
     * arrive meanwhile wait, and one of them leads the next group. */
    shale_status rc = SHALE_OK;
    dur_waiter *me = db->dur_spare, **at = &db->dur_waiters;
    if (me) {
        db->dur_spare = me->next;
    } else {
        /* The entries are in memory and buffered for the WAL, but not
         * acknowledged: the caller learns nothing about their durability. */
        if (!(me = malloc(sizeof *me)))
            return SHALE_OOM();
        pthread_cond_init(&me->cv, NULL);
        db->dur_waiter_allocs++;
    }
    me->seq = seq;
    while (*at && (*at)->seq <= seq)
        at = &(*at)->next;
    me->next = *at;
    *at = me;
    db->durable_waiters++;
    while (db->durable_seq < seq && !db->fenced && !db->bg_error) {
        if (!db->wal_busy && !db->seal_head && wal_buf_count(db->walbuf) > 0 &&
            (rc = db_seal_wal_quiet_locked(db))) {
            db_set_bg_error_locked(db, rc);
            break;
        }
        if (!db->wal_busy && db->seal_head) {
            write_head_locked(db, wakes, me);
            if (wakes->n && db->durable_seq < seq) {
                /* Not ours yet: let the ones woken go before the next write. */
                pthread_mutex_unlock(&db->mu);
                db_wakes_signal(wakes);
                pthread_mutex_lock(&db->mu);
            }
        } else {
            pthread_cond_wait(&me->cv, &db->mu);
        }
    }
    db->durable_waiters--;
    for (at = &db->dur_waiters; *at != me; at = &(*at)->next)
        ;
    *at = me->next;
    me->next = db->dur_spare;
    db->dur_spare = me;
    return db->durable_seq < seq ? db_check_writable_locked(db) : SHALE_OK;
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
            db->wal_thread_wakes++;
            continue;
        }
        if (!db->seal_head) {
            if (wal_buf_count(db->walbuf) > 0) {
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
            db->wal_thread_wakes++;
            continue;
        }
        if (db->wal_busy) {   /* a waiting writer is writing the head */
            pthread_cond_wait(&db->cv_wal, &db->mu);
            db->wal_thread_wakes++;
            continue;
        }
        db_wakes wl = {0};
        write_head_locked(db, &wl, NULL);
        pthread_mutex_unlock(&db->mu);
        db_wakes_signal(&wl);
        pthread_mutex_lock(&db->mu);
    }
    pthread_cond_broadcast(&db->cv);
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

shale_status wal_replay_add(memtable *mem, uint64_t l0_seq, uint64_t *last_seq,
                            const kv_entry *e)
{
    if (e->seq <= l0_seq)
        return SHALE_OK;  /* already in L0 */
    shale_status rc = memtable_add(mem, e);
    if (!rc && e->seq > *last_seq)
        *last_seq = e->seq;
    return rc;
}

static shale_status db_replay_entry(void *ctx, const kv_entry *e)
{
    shale_db *db = ctx;
    return wal_replay_add(db->mem, db->man->last_l0_seq, &db->last_seq, e);
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
