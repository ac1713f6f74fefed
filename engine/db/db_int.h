/*
 * db_int.h -- the writer handle's internals, shared by db.c (open, close,
 * writes, reads), wal_writer.c (the WAL pipeline), flush.c (memtables to
 * L0), compactor.c and checkpoint.c.
 *
 * Write path and its invariants
 * -----------------------------
 * A write takes db->mu, gets consecutive sequence numbers, goes into the
 * active memtable and is appended to the current WAL buffer (wal_buf, in
 * seq order; wal_encode sorts it into a WAL SST on the WAL thread).  The
 * WAL buffer is *sealed* -- given the next WAL id -- when it is big
 * enough, when the flush interval
 * passes, when a durable writer waits, or when the memtable freezes.  Sealed
 * buffers are written strictly in id order by one WAL thread with
 * put-if-absent; durable_seq only advances over a contiguous prefix of
 * written ids, so an acknowledged write is in a WAL SST that replay reaches.
 *
 * A memtable is frozen together with sealing the WAL buffer, under mu, so
 * the frozen memtable holds exactly the data of WAL ids <= its wal_id (=
 * next_wal_id - 1 at the freeze, which also covers the fencing WAL).  The
 * flush thread writes frozen memtables to L0 oldest first, each only after
 * its WAL ids are durable, and commits replay_after_wal_id = wal_id with the
 * new L0 in one manifest version.  An empty frozen memtable writes no SST
 * but still advances replay_after_wal_id: that is how a full-scope
 * checkpoint closes the WAL gap the fencing WAL opened (seed bug).
 *
 * Fencing: a WAL put-if-absent that finds its id taken, or a manifest whose
 * writer_epoch moved past ours, sets db->fenced; from then on every write
 * fails with SHALE_FENCED.  Any other background failure that may leave
 * memory and store out of step sets db->bg_error (sticky) and writes fail
 * with it until the handle is reopened.
 *
 * Lock order: db->mu, then table-cache / store-pool mutexes.  No store I/O
 * is done while holding db->mu, except where noted.
 */
#ifndef SHALE_DB_INT_H
#define SHALE_DB_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "shale.h"
#include "db/manifest.h"
#include "db/memtable.h"
#include "db/view.h"
#include "db/wal.h"
#include "table/cache.h"

/* A checkpoint that rides a memtable's flush (shale_flush_checkpoint,
 * checkpoint.c): the flush thread writes the memtable's SST, hands the
 * caller its barrier (run on the caller's thread, while the flush thread
 * waits), then commits the new L0 AND the checkpoint record in ONE
 * manifest write.  It lives on the caller's stack; the flush thread stops
 * touching it once it sets FCP_DONE (under mu), and the caller does not
 * return before that unless the flush thread never took it (FCP_QUEUED:
 * the caller unhooks it from its imm_entry under mu). */
typedef enum flush_cp_state {
    FCP_QUEUED,    /* hooked on an imm_entry, not taken yet */
    FCP_TAKEN,     /* the flush thread is writing the SST */
    FCP_BARRIER,   /* SST written: the caller runs before_commit */
    FCP_COMMIT,    /* barrier run (barrier_rc): the flush thread commits */
    FCP_DONE       /* rc / msg / desc final */
} flush_cp_state;

typedef struct flush_cp {
    manifest_mutator add;          /* adds the record (checkpoint.c) */
    void *add_ctx;
    const char *id;                /* the record's id, to describe it */
    shale_status (*before_commit)(void *ctx);   /* NULL: none */
    void *barrier_ctx;
    flush_cp_state state;          /* under mu */
    shale_status barrier_rc;       /* under mu, set with FCP_COMMIT */
    shale_status rc;               /* under mu, set with FCP_DONE */
    char msg[512];                 /* rc's message */
    shale_checkpoint desc;         /* on success: the record and its version */
} flush_cp;

/* A frozen memtable waiting for its flush to L0. */
typedef struct imm_entry {
    memtable *mem;
    uint64_t wal_id;       /* its data is exactly WAL ids <= wal_id */
    flush_cp *cp;          /* a checkpoint its flush carries, or NULL */
} imm_entry;

/* What a finished WAL write leaves to do once the mutex is dropped
 * (wal_writer.c): the durable waiters to signal, the written seals to
 * free.  Zero-initialised by the caller. */
#define DB_WAKE_MAX 64
typedef struct db_wakes {
    size_t n;
    pthread_cond_t *cv[DB_WAKE_MAX];
    struct wal_seal *done;
} db_wakes;

/* A sealed WAL buffer waiting to be written. */
typedef struct wal_seal {
    uint64_t id;
    wal_buf *buf;          /* entries, in seq order */
    uint64_t max_seq;      /* highest seq in it (0 if empty) */
    struct wal_seal *next;
} wal_seal;

struct l0_pre;
struct shale_db {
    shale_options opts;            /* copy; strings below are owned */
    /* The replayed memtable's SST image, built by the open while its last
     * write is in flight (flush_prebuild_start); the first flush takes it
     * when the memtable is unchanged.  Set before the background threads
     * start, then the flush thread's (write_l0) or db_free's. */
    struct l0_pre *pre;
    char *uri;
    char *wal_uri;                 /* NULL = WAL in the main store */
    shale_objstore *store;
    shale_objstore *wal_store;     /* == store when no separate WAL store */
    db_env *env;                   /* every store (store and wal_store are its),
                                      table cache, block cache; opts.store
                                      points at its copies */

    pthread_mutex_t mu;
    pthread_mutex_t man_mu;        /* serialises this process's manifest
                                      updates; taken before mu, never under */
    pthread_cond_t cv;             /* state changed: writers and waiters */
    pthread_cond_t cv_wal;         /* wakes the WAL thread */
    pthread_cond_t cv_flush;       /* wakes the flush thread */
    pthread_cond_t cv_compact;     /* wakes the compactor thread */

    /* ---- under mu ---- */
    manifest *man;                 /* latest version we wrote or read */
    uint64_t my_epoch;             /* writer_epoch we own */
    uint64_t my_compactor_epoch;
    memtable *mem;                 /* active memtable */
    imm_entry *imms; size_t imm_count, imm_cap;   /* oldest first */
    db_view *view;                 /* current read view */
    wal_buf *walbuf;               /* current WAL buffer */
    uint64_t walbuf_max_seq;
    int64_t walbuf_first_ms;       /* mono time of its first entry */
    wal_seal *seal_head, *seal_tail;
    uint64_t next_wal_id;          /* id the next seal gets */
    uint64_t replay_next_id;       /* open: next WAL id replay reads */
    uint64_t spec_replayed;        /* open: entries its replay before the fence kept
                                      (db_open.c spec_replay; tests read it) */
    uint64_t spec_prebuilt;        /* open: 1 when the SST built before the fence
                                      was the one uploaded (flush.c; tests) */
    uint64_t durable_wal_id;       /* every id <= this is written */
    uint64_t last_seq;             /* highest seq assigned */
    uint64_t durable_seq;          /* every seq <= this is in a written WAL */
    uint64_t flushed_wal_id;       /* replay_after_wal_id we committed */
    uint32_t durable_waiters;      /* writers waiting for durable_seq */
    struct dur_waiter *dur_waiters; /* those writers, ascending seq, each woken on its own (wal_writer.c) */
    struct dur_waiter *dur_spare;   /* their entries not in use, kept for the next ones */
    bool wal_busy;                 /* a WAL write is in flight */
    /* Times the WAL and flush threads returned from a wait (mu held):
     * tests check that a durable put does not wake them for nothing. */
    uint64_t wal_thread_wakes, flush_thread_wakes;
    /* Durable waiters woken by finished writes once mu was dropped, and
     * under mu (past DB_WAKE_MAX); waiter entries allocated (the rest
     * reused).  Under mu, for tests. */
    uint64_t dur_wakes_deferred, dur_wakes_locked, dur_waiter_allocs;
    bool flush_busy;
    bool compact_busy;
    bool compact_requested, compact_force;
    uint64_t compactions_done;
    uint64_t compact_requests_done;
    shale_status compact_request_rc;   /* result of the last requested run */
    char compact_request_msg[512];
    /* A failed compaction does not stop writes (see db_compact_thread):
     * its error is kept here, cleared by the next success, and the
     * compactor retries after compact_backoff_ms. */
    shale_status compact_error;
    char compact_errmsg[512];
    uint64_t compactions_failed;
    uint32_t compact_backoff_ms;
    int64_t compact_retry_at;          /* mono ms */
    uint64_t *snapshots; size_t snapshot_count, snapshot_cap;  /* live seqs */
    bool fenced;
    shale_status bg_error;         /* sticky background failure */
    char bg_errmsg[512];
    bool closing;

    /* The writer's WAL GC (wal_gc.c): the flush thread deletes WAL ids in
     * [wal_gc_next, replay_after_wal_id] outside every checkpoint's gap;
     * only ids above fence_wal_id (this open's fencing WAL SST) are ever
     * its to delete.  wal_gc_pins caches the WAL fields of the versions
     * checkpoints pin (immutable), touched by the flush thread only. */
    uint64_t fence_wal_id;
    uint64_t wal_gc_next;
    int64_t wal_gc_retry_at;           /* mono ms: after a failed round */
    uint64_t wal_gc_deleted;           /* objects deleted (shale_wal_gc_stats_get) */
    uint64_t wal_gc_failed;            /* rounds that failed */
    bool wal_gc_busy;                  /* a round's deletes are under way (db->cv at its end) */
    shale_status wal_gc_error;         /* the last round's (SHALE_OK after a success) */
    struct wal_gc_pin *wal_gc_pins; size_t wal_gc_pin_count;

    pthread_t wal_thread, flush_thread, compact_thread;
    bool threads_started;
};

/* Waits on cv (initialised with CLOCK_MONOTONIC) for at most ms. */
void db_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

/* Copies the caller's options (NULL = defaults) into the library's own
 * struct by the caller's struct_size: fields an older header lacks keep
 * their defaults; fields of a newer header must be zero.  Every public
 * entry point that takes shale_options goes through it (via db_env_open or
 * shale_open).  Strings are still the caller's. */
shale_status options_import(const shale_options *in, shale_options *out);
/* Runs a manifest update under man_mu on a copy of db->man and installs
 * the result.  Called WITHOUT mu held. */
shale_status db_update_manifest(shale_db *db, manifest_mutator fn, void *ctx);

/* ---- wal_gc.c ---- */
/* A round of the writer's WAL GC is due (mu held). */
bool wal_gc_due_locked(const shale_db *db);
/* Runs one round (mu held on entry and return, dropped for the I/O):
 * deletes up to a batch of obsolete WAL SSTs.  Returns false when the
 * round could not finish (a pinned version or a delete failed: retried
 * after a backoff; never fatal to the writer). */
bool wal_gc_round_locked(shale_db *db);
/* The rounds still due at close (mu held), a bounded number. */
void wal_gc_at_close_locked(shale_db *db);
void wal_gc_free(shale_db *db);

/* ---- db.c ---- */
/* Fails with the sticky state (fenced / background error / closed), copying
 * its message.  Called with mu held. */
shale_status db_check_writable_locked(shale_db *db);
/* Records a background failure (keeps the first).  Called with mu held. */
void db_set_bg_error_locked(shale_db *db, shale_status rc);
/* Installs a new manifest (owned) and rebuilds the read view.  mu held. */
shale_status db_install_manifest_locked(shale_db *db, manifest *m);
/* Rebuilds the read view from db->man and the memtables (mu held). */
shale_status db_rebuild_view_locked(shale_db *db);
/* shale_open_at_fenced_after()'s arguments: the manifest id hint (0 none),
 * whether it was the latest a moment ago (shale_open_at_latest_fenced_after:
 * a HEAD of the next version instead of a listing) and the barrier before
 * the open's first write (NULL none). */
typedef struct db_open_args {
    uint64_t hint;
    bool hint_latest;
    shale_status (*before_fence)(void *ctx);
    void *ctx;
} db_open_args;
/* Starts building db->mem's SST image on a thread of its own, for the
 * first flush (a split's takeover flushes right after its open): the
 * CPU of the build goes beside the open's last manifest write instead of
 * between that write and the flush's upload.  Nothing when the memtable
 * is empty or no thread can be had. */
void flush_prebuild_start(shale_db *db);
/* The same for a takeover's memtable replayed before its fence (db_open.c
 * spec_replay), built only: nothing is uploaded before the fence.  The
 * flush_prebuild_start() after the fence uploads that image when it is of
 * db->mem with no entry added since, else builds db->mem's. */
void flush_prebuild_spec(shale_db *db, memtable *mem);
/* Joins and frees db->pre, unused (db_free). */
void flush_prebuild_drop(shale_db *db);
/* The writer's open after the handle is allocated: stores, manifest,
 * fencing, WAL replay (db_open.c).  opts: the caller's, read only. */
shale_status db_open_inner(shale_db *db, const shale_options *opts, const db_open_args *a);
/* Freezes the active memtable (even if empty) and seals the WAL buffer.
 * mu held.  Wakes the flush and WAL threads. */
shale_status db_freeze_locked(shale_db *db);
/* Seals the current WAL buffer if it has entries (mu held) and wakes the
 * WAL thread to write it. */
shale_status db_seal_wal_locked(shale_db *db);
/* The same without waking the WAL thread: for a durable writer that leads
 * its group and writes the seal itself before it drops mu
 * (db_await_durable_locked) -- the wake-up would find the write in flight
 * and go back to sleep, two context switches per put for nothing. */
shale_status db_seal_wal_quiet_locked(shale_db *db);
/* Waits (mu held) until every frozen memtable is in L0. */
shale_status db_wait_flushed_locked(shale_db *db);
/* A memtable flush cannot happen now: L0 is at l0_max_ssts and the last
 * compaction failed (writes would wait for a success that may not come).
 * Returns that compaction's code with a message saying so, or SHALE_OK.
 * what: the caller's action, for the message.  mu held. */
shale_status db_check_compaction_stall_locked(shale_db *db, const char *what);
/* Oldest live snapshot seq, or UINT64_MAX when none (mu held). */
uint64_t db_oldest_snapshot_locked(shale_db *db);

/* ---- wal_writer.c ---- */
void *db_wal_thread(void *arg);
/* Waits (mu held) until seq is durable, writing the WAL on the caller's
 * thread when no WAL write is in flight (wal_writer.c); the writer's error
 * when it stopped first. */
shale_status db_await_durable_locked(shale_db *db, uint64_t seq, db_wakes *wakes);
/* Signals the waiters a finished WAL write left in wakes and frees its
 * seals; called without mu (or with it: the signals are the same). */
void db_wakes_signal(db_wakes *wakes);
/* Frees the durable waiters' spare entries (db_free). */
void db_free_dur_waiters(shale_db *db);
/* Wakes every writer waiting for durability (under mu): an error,
 * fencing.  A finished write wakes only some, through db_wakes. */
void db_wake_durable_all_locked(shale_db *db);
/* Replays WAL ids after replay_after_wal_id into the memtable on open;
 * sets *first_free to the first id not present. */
shale_status wal_replay(shale_db *db, uint64_t *first_free);
/* One replayed WAL entry into mem, unless its seq is at or below
 * l0_seq (already in L0); *last_seq follows the highest added.  The
 * writer's replay and the takeover's replay before its fence (db_open.c)
 * share it. */
shale_status wal_replay_add(memtable *mem, uint64_t l0_seq, uint64_t *last_seq,
                            const kv_entry *e);

/* ---- flush.c ---- */
void *db_flush_thread(void *arg);

/* ---- compactor.c ---- */
void *db_compact_thread(void *arg);

#endif
