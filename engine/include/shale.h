/*
 * shale.h -- the public API of libshale, an LSM key-value engine whose
 * durable state lives in an object store.
 *
 * A database is a store (see shale_objstore.h) holding a versioned manifest,
 * WAL SSTs and compacted SSTs; its WAL may live in a separate store (the
 * pod's local disk).  The model, and most semantics, follow SlateDB; the
 * object layout and formats are in docs/format.md.
 *
 * Handles are opaque.  Every fallible call returns a shale_status and leaves
 * a message for shale_errmsg().  Memory handed to the caller is freed with
 * shale_free() unless the comment says otherwise.  Destructors accept NULL.
 *
 * Thread safety: one shale_db writer handle may be used from many threads at
 * once (writes are serialised internally; reads run concurrently).  A
 * shale_iter or shale_batch must be used by one thread at a time.  A
 * shale_reader may be shared by threads.  Only one writer per database is
 * live at a time: opening a writer fences the previous one.
 */
#ifndef SHALE_H
#define SHALE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "shale_status.h"
#include "shale_objstore.h"

SHALE_API_BEGIN

#define SHALE_VERSION "0.1.0"

typedef struct shale_db shale_db;
typedef struct shale_reader shale_reader;
typedef struct shale_iter shale_iter;
typedef struct shale_batch shale_batch;
typedef struct shale_snapshot shale_snapshot;
typedef struct shale_cache shale_cache;

/* ---- Options ------------------------------------------------------------ */

typedef struct shale_options {
    /* sizeof(shale_options) as the caller's header declares it, set by
     * shale_options_init().  It lets a newer library take options from a
     * program built against an older header (fields the program does not
     * know keep their defaults) and refuse ones from a newer header that
     * set fields the library does not know (docs/library.md).  0 is
     * SHALE_INVALID_ARGUMENT: initialise options with shale_options_init(). */
    size_t struct_size;
    /* Store settings (S3 endpoint, region, credentials, path style,
     * retries, timeouts) for EVERY store the engine opens on the database's
     * behalf: its main store, its WAL store, the parent stores whose SSTs a
     * clone references (and their parents), the stores whose pins the
     * compactor releases, and those a clone, GC, verify or an admin call
     * touches.  One set of settings serves them all (docs/object-store.md,
     * "Who opens stores").  Strings are borrowed for the duration of the
     * call only: the engine keeps deep copies of what it keeps. */
    shale_objstore_options store;
    /* Separate WAL store URI, or NULL to keep WAL SSTs in the main store.
     * Recorded in the manifest on first use; changing a recorded one is an
     * error (SHALE_INVALID_ARGUMENT naming both).  Borrowed for the call
     * (copied). */
    const char *wal_store_uri;
    bool create_if_missing;        /* default true */
    bool await_durable;            /* default true: a write returns after its
                                      WAL SST is stored */
    uint32_t wal_flush_interval_ms;/* default 100: the WAL buffer is written at
                                      least this often (and at once when a
                                      durable writer waits: group commit) */
    size_t wal_flush_bytes;        /* default 4 MiB: write the WAL buffer at
                                      this size */
    size_t memtable_bytes;         /* default 64 MiB: freeze the memtable */
    size_t max_unflushed_bytes;    /* default 128 MiB: writers wait while the
                                      memtables not yet in L0 exceed this */
    uint32_t l0_compaction_trigger;/* default 4: compact when L0 holds this many */
    uint32_t l0_max_ssts;          /* default 16: memtable flushes wait above */
    uint32_t max_sorted_runs;      /* default 4: merge runs beyond this many */
    size_t block_size;             /* default 4096 */
    int compression_level;         /* zstd level -22..22; 0 = none; below 0
                                      zstd's fast levels; default -1 */
    uint32_t bloom_bits_per_key;   /* default 10; 0 = no filter */
    size_t block_cache_bytes;      /* default 64 MiB; 0 = no cache */
    /* A block cache shared with other handles (see shale_cache_new), used
     * instead of a cache of block_cache_bytes of the handle's own.  NULL by
     * default.  Borrowed: it must outlive every handle opened with it. */
    shale_cache *block_cache;
    size_t sst_target_bytes;       /* default 64 MiB: sorted-run SST size */
    bool compactor;                /* default true: compact in the background
                                      of the writer process */
    uint32_t manifest_poll_ms;     /* default 1000: the writer re-reads the
                                      manifest this often to notice fencing */
    /* The store does not honour put-if-absent (S3 servers that ignore
     * If-None-Match, such as test doubles): fencing is then
     * NOT safe against a concurrent writer.  Default false: opening a writer
     * on such a store fails with SHALE_UNSUPPORTED. */
    bool unsafe_allow_unconditional_store;
    /* Default false: once a memtable flush has committed a new
     * replay_after_wal_id, the writer deletes the WAL SSTs it wrote that
     * the flush made obsolete (above its own fencing WAL SST, at or below
     * replay_after_wal_id, outside every live checkpoint's WAL gap), on
     * its flush thread and at close, so the WAL store holds the unflushed
     * tail only (docs/gc.md "The writer's WAL GC").  True keeps them for
     * the GC pass (shale_gc) to delete. */
    bool keep_flushed_wal;
} shale_options;

/* Fills the documented defaults above, for a struct of `size` bytes (the
 * caller's sizeof): use shale_options_init(), which passes it.  New fields
 * are only ever added at the end of shale_options. */
void shale_options_init_size(shale_options *o, size_t size);
#define shale_options_init(o) shale_options_init_size((o), sizeof *(o))

/* A block cache (decoded blocks, LRU, bounded by capacity_bytes > 0) to
 * share between writers and readers of one process through
 * shale_options.block_cache.  Blocks are keyed by the object they come
 * from, so handles that read the same SST objects (a clone and its parent)
 * share its blocks.  Thread-safe.  Free it after every handle opened with
 * it is closed. */
shale_status shale_cache_new(size_t capacity_bytes, shale_cache **out);
/* Bytes the cache holds now. */
size_t shale_cache_usage(shale_cache *c);
void shale_cache_free(shale_cache *c);   /* accepts NULL */

/* ---- Writer ------------------------------------------------------------- */

/* Opens (creating if allowed) the database at uri as its writer.  Raises
 * writer_epoch, writes the fencing WAL SST and replays the WAL.  opts may
 * be NULL.  Close with shale_close(). */
shale_status shale_open(const char *uri, const shale_options *opts, shale_db **out);

/* shale_open() given the id of a manifest version the caller read lately
 * (a shale_manifest_view's id, say), so that the open reads that version
 * and lists only the versions after it at once (one round trip on S3)
 * instead of listing every version and then reading the latest (two).
 * The hint is only a hint: the listing decides which version is the
 * latest, as without one (a newer version is read next; a hint that names
 * no version -- deleted, or never written -- falls back to shale_open()'s
 * full listing), and the fence write is a create-if-absent of the next id
 * whatever was read.  0 is no hint (shale_open()).  Nothing is kept. */
shale_status shale_open_at(const char *uri, const shale_options *opts,
                           uint64_t manifest_id_hint, shale_db **out);

/* shale_open_at() with a barrier: before_fence(ctx) is called once, on
 * the calling thread, when the open's reads and its conditional-create
 * probe are in and before its first write that is state (the fence write,
 * a new database's first manifest, an identity write); only the probe's
 * objects (garbage, never state) may exist by then.  A caller that must
 * record its intent durably before the writer is fenced (the split's
 * journal) can start the open beside that record and wait for it here.
 * A failing barrier (its status and message, shale_error_set) fails the
 * open with nothing fenced.  Not called when the open fails before it.
 * NULL: none (shale_open_at()).  ctx is the caller's, used during the
 * call only.  With a barrier (a takeover, which flushes next) the open
 * replays the WAL and builds the replayed memtable's SST before the
 * barrier, while it waits (reads and CPU only; after the fence the replay
 * goes on from where it stopped, and both are made again if the old
 * writer flushed meanwhile), and uploads that SST beside its last
 * manifest write; the first flush takes that image if no write came since
 * (else it builds its own), so neither the replay's nor the build's CPU
 * is between the open's writes and the flush's.  The image is held until
 * that flush or the close. */
shale_status shale_open_at_fenced_after(const char *uri, const shale_options *opts,
                                        uint64_t manifest_id_hint,
                                        shale_status (*before_fence)(void *ctx), void *ctx,
                                        shale_db **out);

/* shale_open_at_fenced_after() given latest_id, the version the caller
 * read as the LATEST a moment ago (it listed the versions itself, seconds
 * before, not minutes): the open reads that version beside a HEAD of the
 * next one and lists nothing when there is none, so a caller that has
 * just listed the database's versions does not list them again.  Sound
 * because versions are written in order and a GC deletes only versions
 * older than its min_age (shale_gc_options, 5 minutes by default; run it
 * with at least a minute): a version written after the caller's read
 * cannot have been deleted yet, so no next version means no newer one.
 * A next version there (written since) is a moment old too: the same
 * from it (a GET and a HEAD, one round trip), up to 3 times, and then the
 * versions after it are listed, as shale_open_at() does; a latest_id that
 * names no version
 * falls back to the full listing; a barrier that holds the open more than
 * 10 s after its reads has them listed again before the fence write.  The
 * fence write is a create-if-absent of the next id whatever was read.
 * latest_id 0: shale_open_at_fenced_after() without a hint. */
shale_status shale_open_at_latest_fenced_after(const char *uri, const shale_options *opts,
                                               uint64_t latest_id,
                                               shale_status (*before_fence)(void *ctx),
                                               void *ctx, shale_db **out);

/* Flushes what await_durable promised, stops background work and frees the
 * handle.  Accepts NULL.  Returns the first error met while flushing. */
shale_status shale_close(shale_db *db);

shale_status shale_put(shale_db *db, const void *key, size_t klen,
                       const void *val, size_t vlen);
shale_status shale_delete(shale_db *db, const void *key, size_t klen);

/* Batches: applied atomically by shale_write().  A batch is a plain buffer:
 * it may be reused after shale_batch_clear(). */
shale_batch *shale_batch_new(void);
shale_status shale_batch_put(shale_batch *b, const void *key, size_t klen,
                             const void *val, size_t vlen);
shale_status shale_batch_delete(shale_batch *b, const void *key, size_t klen);
void shale_batch_clear(shale_batch *b);
size_t shale_batch_count(const shale_batch *b);
void shale_batch_free(shale_batch *b);
/* Applies every operation of b or none.  b is borrowed. */
shale_status shale_write(shale_db *db, const shale_batch *b);

/* Read options: snapshot NULL = latest. */
typedef struct shale_read_options {
    const shale_snapshot *snapshot;
} shale_read_options;

/* Looks a key up.  SHALE_NOT_FOUND if absent or deleted.  On SHALE_OK *val
 * is malloc'd (free with shale_free(); non-NULL even when empty).  ro may
 * be NULL. */
shale_status shale_get(shale_db *db, const shale_read_options *ro,
                       const void *key, size_t klen, void **val, size_t *vlen);

/* Forward scan of [start, end); a NULL bound (or length 0) is unbounded.
 * The iterator is positioned on the first key; free with shale_iter_free(). */
shale_status shale_scan(shale_db *db, const shale_read_options *ro,
                        const void *start, size_t slen, const void *end, size_t elen,
                        shale_iter **out);

/* Snapshots pin a sequence number in this writer handle. */
shale_snapshot *shale_snapshot_new(shale_db *db);
void shale_snapshot_release(shale_db *db, shale_snapshot *s);

/* Writes the WAL buffer now and waits until it is stored. */
shale_status shale_flush_wal(shale_db *db);
/* Freezes the memtable and waits until every memtable is in L0. */
shale_status shale_flush_memtable(shale_db *db);
/* Runs a compaction now (if any is due, or force=true to flush the
 * memtables and merge everything into one sorted run) and waits for it. */
shale_status shale_compact(shale_db *db, bool force);

/* A summary of the writer's current manifest and counters. */
typedef struct shale_db_info {
    uint64_t manifest_id;
    uint64_t writer_epoch, compactor_epoch;
    uint64_t replay_after_wal_id;
    uint64_t next_wal_sst_id;
    uint64_t last_l0_seq;      /* highest sequence number in L0 or runs */
    uint64_t last_seq;         /* highest sequence number assigned */
    uint32_t l0_count, sorted_run_count;
    uint64_t sst_count;        /* L0 + run SSTs */
    bool initialized;
    /* Writer only (0 from a reader).  A failed compaction does not stop
     * writes: the writer retries it with backoff, and compaction_error is
     * the last run's failure (SHALE_OK once one succeeds). */
    uint64_t compactions_done, compactions_failed;
    shale_status compaction_error;
} shale_db_info;
shale_status shale_db_info_get(shale_db *db, shale_db_info *out);

/* The writer's WAL GC (docs/gc.md "The writer's WAL GC"): WAL SSTs it
 * deleted since the open, its rounds that failed, and the last round's
 * failure (SHALE_OK once a round succeeds).  A failed round does not stop
 * writes -- the flushed data is in L0 either way -- and is tried again after
 * a second; only the WAL store stops shrinking, so this is where an
 * operator sees it.  The counts are taken between rounds (a call during
 * one waits for its deletes to end, one batch at most), so every WAL SST
 * the GC has deleted is in `deleted`.  A separate call (not in
 * shale_db_info) because that struct's layout is fixed within an ABI
 * version. */
typedef struct shale_wal_gc_stats {
    uint64_t deleted, failed_rounds;
    shale_status last_error;
} shale_wal_gc_stats;
shale_status shale_wal_gc_stats_get(shale_db *db, shale_wal_gc_stats *out);

/* ---- Iterators (shared by writer and reader) ---------------------------- */

bool shale_iter_valid(const shale_iter *it);
void shale_iter_next(shale_iter *it);
/* Key/value of the current entry, borrowed until the next call on it. */
const void *shale_iter_key(const shale_iter *it, size_t *klen);
const void *shale_iter_value(const shale_iter *it, size_t *vlen);
/* SHALE_OK, or the error that ended the iteration early. */
shale_status shale_iter_status(const shale_iter *it);
void shale_iter_free(shale_iter *it);

/* ---- Checkpoints --------------------------------------------------------- */

typedef enum shale_checkpoint_scope {
    /* What is durable now; WAL ids after replay_after_wal_id stay needed. */
    SHALE_CHECKPOINT_DURABLE = 0,
    /* Flush WAL buffer and every memtable to L0 first, then close the WAL
     * gap: replay_after_wal_id = next_wal_sst_id - 1.  Needs no WAL file. */
    SHALE_CHECKPOINT_ALL = 1
} shale_checkpoint_scope;

typedef struct shale_checkpoint {
    char id[37];                /* UUID text */
    uint64_t manifest_id;       /* the manifest version it pins */
    int64_t create_time_ms;
    int64_t expire_time_ms;     /* 0 = never */
    char name[128];             /* "" if none */
    /* WAL state of the pinned manifest version: */
    uint64_t replay_after_wal_id;
    uint64_t next_wal_sst_id;
} shale_checkpoint;

/* Creates a checkpoint through the writer.  lifetime_ms 0 = no expiry;
 * name may be NULL.  out may be NULL. */
shale_status shale_checkpoint_create(shale_db *db, shale_checkpoint_scope scope,
                                     uint64_t lifetime_ms, const char *name,
                                     shale_checkpoint *out);

/* A barrier: called once at a fixed point of a call that takes it; a
 * failure it returns (with its message, shale_error_set) stops the call
 * there with that status. */
typedef shale_status (*shale_barrier_fn)(void *ctx);

/* A Scope-All checkpoint whose memtable flush carries it: the active
 * memtable is frozen (with the WAL buffer, so it covers every WAL id
 * written, the fencing WAL's too), its SST uploaded, then ONE manifest
 * write adds the L0 SST, sets replay_after_wal_id = next_wal_sst_id - 1
 * (the WAL gap closed, when no write raced the call) and adds the record,
 * pinning that version.  shale_checkpoint_create(SCOPE_ALL) is this with
 * no barrier and no replaces.  Older frozen memtables flush first, each
 * in its own write, as they would anyway.
 *
 * before_commit(ctx), when not NULL, is called once on the caller's
 * thread after the SST is written and before the manifest write: the SST
 * is invisible until that write (no manifest names it; GC removes an
 * orphan), so a caller that must record its intent durably before the
 * checkpoint exists (the split's journal) runs that record beside the
 * upload and joins it here.  If it fails, the flush still commits, without
 * the record, and the call returns the barrier's status and message.
 * replaces: every checkpoint whose id or name is this string leaves in the
 * same write (a step redone after a crash replaces what it made before,
 * also one whose id it never got to record: by its name), or NULL; none
 * matching is fine.  lifetime_ms 0 = no
 * expiry; name may be NULL; all strings are the caller's, read during the
 * call only.  out (may be NULL) gets the record and its version's WAL
 * fields. */
shale_status shale_flush_checkpoint(shale_db *db, uint64_t lifetime_ms, const char *name,
                                    const char *replaces, shale_barrier_fn before_commit,
                                    void *ctx, shale_checkpoint *out);

/* Admin calls on a database by URI, without being its writer (they do not
 * fence it).  shale_admin_checkpoint_create() makes a Durable-scope one. */
shale_status shale_admin_checkpoint_create(const char *uri, const shale_options *opts,
                                           uint64_t lifetime_ms, const char *name,
                                           shale_checkpoint *out);
/* *out is malloc'd (shale_free), *n entries. */
shale_status shale_checkpoint_list(const char *uri, const shale_options *opts,
                                   shale_checkpoint **out, size_t *n);
/* Sets the expiry to now + lifetime_ms (0 = never). */
shale_status shale_checkpoint_refresh(const char *uri, const shale_options *opts,
                                      const char *id, uint64_t lifetime_ms);
shale_status shale_checkpoint_delete(const char *uri, const shale_options *opts,
                                     const char *id);

/* The manifest as pretty JSON text (id 0 = latest).  *json malloc'd. */
shale_status shale_manifest_show(const char *uri, const shale_options *opts,
                                 uint64_t id, char **json);

/* ---- Clones ------------------------------------------------------------- */

typedef struct shale_clone_spec {
    const char *parent_uri;
    const char *parent_wal_uri;       /* the parent's WAL store; NULL: its main
                                         store (pass the separate WAL store if
                                         the parent has one) */
    const char *parent_checkpoint_id; /* NULL: create a Durable checkpoint
                                         (300 s) on the parent */
    const char *child_uri;
    const char *child_wal_uri;        /* NULL: WAL in the child's main store */
    /* Visible key range [start, end); NULL/0-length = unbounded. */
    const void *range_start; size_t range_start_len;
    const void *range_end;   size_t range_end_len;
    /* A hint, 0 = none: a version of the parent's manifest that holds
     * parent_checkpoint_id (e.g. the writer's current one, shale_db_info's
     * manifest_id).  shale_clone_many() then GETs that version instead of
     * listing the parent's manifests (a LIST and a GET); a version that is
     * gone, or does not hold the checkpoint, falls back to the listing.  A
     * stale one is safe: the pin write is conditional on the parent's
     * latest version and re-checks the checkpoint there. */
    uint64_t parent_manifest_id;
} shale_clone_spec;

typedef struct shale_clone_result {
    uint64_t manifest_id;         /* child's manifest after initialisation */
    char checkpoint_id[37];       /* parent checkpoint the clone stands on */
    uint64_t ssts_referenced;     /* parent SSTs referenced, not copied */
    uint64_t wal_ssts_copied;
    uint64_t wal_ssts_skipped;    /* missing at the start of the range */
    uint64_t bytes_copied;
    bool already_done;            /* the same clone existed, initialised */
} shale_clone_result;

/* Creates (or resumes) a clone.  Same spec again: resumes or is a no-op;
 * a different spec for an existing child: SHALE_CONFLICT.  out may be NULL. */
shale_status shale_clone(const shale_clone_spec *spec, const shale_options *opts,
                         shale_clone_result *out);

/* n clones at once, as a split makes them: each child's work runs on its
 * own thread (up to 128 at a time: threads the library starts once and keeps
 * for the process's next call, up to 128 idle), the parent's manifest is
 * read once, and
 * the parent is pinned for every child in ONE manifest write instead of
 * one per clone.  The same guarantees as n calls of shale_clone() (each
 * clone resumable with the same spec, by shale_clone or this call); specs
 * with different parents, or without parent_checkpoint_id, are cloned one
 * by one.  out: n results (may be NULL).  On an error the first failing
 * spec's index is in *failed (may be NULL) and its message in
 * shale_errmsg(); the others may be done, half done or not started, and a
 * repeat of the call resumes them. */
shale_status shale_clone_many(const shale_clone_spec *specs, size_t n,
                              const shale_options *opts, shale_clone_result *out,
                              size_t *failed);

/* ---- Read-only reader --------------------------------------------------- */

/* Opens uri read-only at the latest state (checkpoint_id NULL) or at a
 * checkpoint.  It does not fence the writer and never writes to the store.
 * It replays the WAL SSTs its manifest version still needs into memory.  A
 * reader at latest holds no checkpoint: keep GC's min_age above the time a
 * reader may go without shale_reader_refresh(). */
shale_status shale_reader_open(const char *uri, const shale_options *opts,
                               const char *checkpoint_id, shale_reader **out);
shale_status shale_reader_get(shale_reader *r, const void *key, size_t klen,
                              void **val, size_t *vlen);
shale_status shale_reader_scan(shale_reader *r, const void *start, size_t slen,
                               const void *end, size_t elen, shale_iter **out);
/* Counts live keys in [start, end). */
shale_status shale_reader_count(shale_reader *r, const void *start, size_t slen,
                                const void *end, size_t elen, uint64_t *count);
/* Picks up the latest manifest and WAL (no-op at a checkpoint). */
shale_status shale_reader_refresh(shale_reader *r);
/* Summary of the manifest the reader stands on (the reader's twin of
 * shale_db_info_get()). */
shale_status shale_reader_info_get(shale_reader *r, shale_db_info *out);
/* Old name of shale_reader_info_get(), kept for callers that use it. */
shale_status shale_reader_info(shale_reader *r, shale_db_info *out);
void shale_reader_close(shale_reader *r);

/* ---- Garbage collection -------------------------------------------------- */

typedef struct shale_gc_options {
    uint64_t min_age_ms;   /* only objects older than this; default 300000 */
    bool dry_run;          /* report, delete nothing */
    /* Called for each object deleted (or that would be).  May be NULL. */
    void (*on_object)(void *ctx, const char *store_uri, const char *key,
                      const char *reason);
    void *ctx;
} shale_gc_options;

typedef struct shale_gc_result {
    uint64_t checkpoints_removed, wal_deleted, ssts_deleted, manifests_deleted;
    uint64_t bytes_deleted;
} shale_gc_result;

void shale_gc_options_init(shale_gc_options *g);
/* One GC pass over the database at uri (and its WAL store).  Never deletes
 * in another database's store.  out may be NULL. */
shale_status shale_gc(const char *uri, const shale_options *opts,
                      const shale_gc_options *g, shale_gc_result *out);

/* ---- Verification -------------------------------------------------------- */

typedef struct shale_verify_result {
    uint64_t ssts_checked, blocks_checked, wal_ssts_checked, bytes_checked;
} shale_verify_result;
/* Checks that every object the latest manifest names exists and every
 * block's checksum; SHALE_CORRUPT / SHALE_NOT_FOUND naming the first bad
 * object.  out may be NULL. */
shale_status shale_verify(const char *uri, const shale_options *opts,
                          shale_verify_result *out);

SHALE_API_END
#endif /* SHALE_H */
