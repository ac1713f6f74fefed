/*
 * wal_gc.c -- the writer deletes the WAL SSTs its own flushes made obsolete.
 *
 * A WAL SST is needed while its id is above replay_after_wal_id (its data
 * is not in L0 yet), or inside the WAL gap (replay_after_wal_id,
 * next_wal_sst_id) of a version a live checkpoint pins (a reader or a
 * clone at that checkpoint replays it).  Without this the WAL store only
 * shrank when someone ran the GC pass (shale_gc, whose min age is 5 min by
 * default) or a split wiped it: a writer that ran for a day left a day of
 * WAL, and a split's WipeLocalWAL listed and deleted all of it (166
 * objects / 524 MB for a 500 MB parent, docs/benchmarks.md 2026-12-02).
 *
 * The flush thread runs a round when no flush is ready, after a flush
 * committed a replay_after_wal_id above wal_gc_next, and the last rounds
 * at close: never on the put / acknowledgement path.  A round deletes at
 * most WAL_GC_BATCH ids in one shale_objstore_delete_many, then the thread
 * looks for a ready flush again.
 *
 * Which ids are this writer's to delete: only those ABOVE the fencing WAL
 * SST this open wrote (fence_wal_id), i.e. the ones it wrote itself.  A
 * fenced writer that has not noticed yet (a zombie) next writes at an id
 * that some later writer's fence holds (that is how it learns it was
 * fenced: put-if-absent fails), and every such fence id is at or below
 * ours, so deleting above ours never lets a zombie's WAL write succeed.
 * And this writer never deletes above a replay_after_wal_id it committed
 * itself: every later version (a newer writer's included) has one at least
 * as high, so what it deletes no later version replays.  The ids below our
 * fence (an earlier writer's tail and fences) and those a checkpoint's gap
 * held are the GC pass's (docs/gc.md).
 *
 * A checkpoint added after the version a round read pins a version at
 * least that new, whose gap starts above the replay_after_wal_id the round
 * deletes up to.  Latest-state readers that read the manifest before a
 * flush and the WAL after it re-check for a newer version (reader.c).
 */
#include "db/db_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAL_GC_BATCH 128
#define WAL_GC_BACKOFF_MS 1000

/* The WAL fields of a version a checkpoint pins: its gap. */
struct wal_gc_pin {
    uint64_t manifest_id;
    uint64_t replay_after, next;
};

bool wal_gc_due_locked(const shale_db *db)
{
    return !db->opts.keep_flushed_wal && !db->fenced && !db->bg_error && db->man &&
           db->wal_gc_next && db->wal_gc_next <= db->man->replay_after_wal_id &&
           mono_ms() >= db->wal_gc_retry_at;
}

static const struct wal_gc_pin *pin_find(const struct wal_gc_pin *p, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].manifest_id == id)
            return &p[i];
    return NULL;
}

/* The gaps of the versions ids[0..n) (pinned by the checkpoints of the
 * version `cur`), from the cache or one GET each; the cache is rebuilt to
 * hold exactly these.  Called without mu (the flush thread owns the cache). */
static shale_status resolve_pins(shale_db *db, const uint64_t *ids, size_t n,
                                 const struct wal_gc_pin *cur)
{
    struct wal_gc_pin *out = calloc(n ? n : 1, sizeof *out);
    if (!out)
        return SHALE_OOM();
    shale_status rc = SHALE_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const struct wal_gc_pin *had =
            ids[i] == cur->manifest_id ? cur : pin_find(db->wal_gc_pins, db->wal_gc_pin_count, ids[i]);
        if (had) {
            out[i] = *had;
            continue;
        }
        manifest *m = NULL;
        rc = manifest_store_load(db->store, ids[i], &m);
        if (rc) {
            shale_err_prefix(rc, "%s: WAL GC: reading manifest %llu a checkpoint pins", db->uri,
                             (unsigned long long)ids[i]);
            break;
        }
        out[i] = (struct wal_gc_pin){ids[i], m->replay_after_wal_id, m->next_wal_sst_id};
        manifest_free(m);
    }
    if (rc) {
        free(out);
        return rc;
    }
    free(db->wal_gc_pins);
    db->wal_gc_pins = out;
    db->wal_gc_pin_count = n;
    return SHALE_OK;
}

static bool in_a_gap(const struct wal_gc_pin *p, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (id > p[i].replay_after && id < p[i].next)
            return true;
    return false;
}

bool wal_gc_round_locked(shale_db *db)
{
    uint64_t lo = db->wal_gc_next, hi = db->man->replay_after_wal_id;
    if (lo <= db->fence_wal_id)
        lo = db->fence_wal_id + 1;   /* never ours (see the header) */
    if (hi >= lo + WAL_GC_BATCH)
        hi = lo + WAL_GC_BATCH - 1;
    if (lo > hi) {
        db->wal_gc_next = lo;
        return true;
    }
    size_t n = db->man->checkpoint_count;
    uint64_t *ids = calloc(n ? n : 1, sizeof *ids);
    struct wal_gc_pin cur = {db->man->id, db->man->replay_after_wal_id,
                             db->man->next_wal_sst_id};
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = db->man->checkpoints[i].manifest_id;
    db->wal_gc_busy = true;
    pthread_mutex_unlock(&db->mu);

    shale_status rc = ids ? resolve_pins(db, ids, n, &cur) : SHALE_OOM();
    free(ids);
    /* The round's keys, in one shale_objstore_delete_many: on file:// in
     * the WAL log mode one fdatasync for all their tombstones, where a
     * delete each made one each (a WAL SST per durable put doubled the
     * fdatasyncs of a small-put workload). */
    char keys[WAL_GC_BATCH][PATH_KEY_MAX];
    const char *kp[WAL_GC_BATCH];
    size_t nk = 0;
    for (uint64_t id = lo; !rc && id <= hi; id++) {
        /* Held by a checkpoint's gap: left to the GC pass, which deletes
         * it once the checkpoint is gone. */
        if (in_a_gap(db->wal_gc_pins, db->wal_gc_pin_count, id))
            continue;
        wal_key(id, keys[nk], sizeof keys[nk]);
        kp[nk] = keys[nk];
        nk++;
    }
    if (!rc && nk && (rc = shale_objstore_delete_many(db->wal_store, kp, nk)))
        shale_err_prefix(rc, "%s: WAL GC: deleting %s .. %s", db->uri, kp[0], kp[nk - 1]);
    uint64_t deleted = rc ? 0 : nk;

    pthread_mutex_lock(&db->mu);
    db->wal_gc_deleted += deleted;
    db->wal_gc_busy = false;
    pthread_cond_broadcast(&db->cv);   /* shale_wal_gc_stats_get waits for it */
    db->wal_gc_error = rc;
    if (rc)
        db->wal_gc_failed++;
    /* A failure only delays the WAL's shrinking: the data of these ids is
     * in L0 either way.  The round is tried again after the backoff. */
    db->wal_gc_next = rc ? lo : hi + 1;
    if (rc)
        db->wal_gc_retry_at = mono_ms() + WAL_GC_BACKOFF_MS;
    return rc == SHALE_OK;
}

/* At close, what the last flushes made obsolete: a writer closed after
 * its final flush leaves its fence and unflushed tail, not the WAL its
 * last rounds had no time for.  Bounded (WAL_GC_CLOSE_ROUNDS rounds: a
 * close on S3 waits for at most that many deletes); a failed round stops
 * it; what is left is the GC pass's. */
#define WAL_GC_CLOSE_ROUNDS 8

void wal_gc_at_close_locked(shale_db *db)
{
    for (int i = 0; i < WAL_GC_CLOSE_ROUNDS && wal_gc_due_locked(db); i++)
        if (!wal_gc_round_locked(db))
            break;
}

void wal_gc_free(shale_db *db)
{
    free(db->wal_gc_pins);
    db->wal_gc_pins = NULL;
    db->wal_gc_pin_count = 0;
}

shale_status shale_wal_gc_stats_get(shale_db *db, shale_wal_gc_stats *out)
{
    if (!db || !out)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_wal_gc_stats_get: %s is NULL",
                         db ? "out" : "db");
    pthread_mutex_lock(&db->mu);
    /* Counts at a round's boundary: a round's deletes are in the store
     * before its count is, so a caller that lists the store and then reads
     * these would miss what a round under way has deleted.  The wait is
     * one delete batch at most. */
    while (db->wal_gc_busy)
        pthread_cond_wait(&db->cv, &db->mu);
    out->deleted = db->wal_gc_deleted;
    out->failed_rounds = db->wal_gc_failed;
    out->last_error = db->wal_gc_error;
    pthread_mutex_unlock(&db->mu);
    return SHALE_OK;
}
