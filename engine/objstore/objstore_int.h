/*
 * objstore_int.h -- the backend interface behind shale_objstore.h.
 *
 * objstore.c validates keys, counts requests and dispatches through this
 * table, so a backend sees only valid keys and need not count anything.
 * Each backend lives in its own file (objstore_fs.c, objstore_mem.c,
 * objstore_s3.c, objstore_fault.c) and exports one constructor.
 *
 * Contract for every op (same as the public header): return SHALE_OK,
 * SHALE_NOT_FOUND or SHALE_PRECONDITION_FAILED as results, any other code
 * with a message set through shale_err() naming the store URI and key.
 */
#ifndef SHALE_OBJSTORE_INT_H
#define SHALE_OBJSTORE_INT_H

#include "shale_objstore.h"

typedef struct objstore_ops {
    const char *scheme;  /* "file", "s3", "mem", "fault" */
    shale_status (*put)(shale_objstore *s, const char *key, const void *data,
                        size_t len, bool if_absent);
    shale_status (*get_range)(shale_objstore *s, const char *key, uint64_t offset,
                              uint64_t len, bool whole, void **data, size_t *got);
    shale_status (*head)(shale_objstore *s, const char *key, uint64_t *size,
                         int64_t *mtime_ms);
    shale_status (*del)(shale_objstore *s, const char *key);
    shale_status (*list)(shale_objstore *s, const char *prefix, const char *cursor,
                         size_t max_keys, shale_objlist *page);
    void (*close)(shale_objstore *s);
    /* The backend retries transient failures itself (S3): the dispatcher
     * then does not retry on top. */
    bool self_retrying;
    /* Ranged reads through an open handle (shale_objreader), optional.  A
     * backend that leaves these NULL gets objstore.c's generic handle: a
     * HEAD at open (none with a size hint), then get_range on the key for
     * every read, so wrappers (fault) see each read as an ordinary call.
     * reader_open allocates a struct that starts with shale_objreader and
     * sets its size (objstore.c sets store and key), or returns
     * SHALE_NOT_FOUND; reader_read has get_range's contract and is called
     * from many threads at once; reader_close frees what reader_open
     * allocated (not the key). */
    shale_status (*reader_open)(shale_objstore *s, const char *key, uint64_t size_hint,
                                shale_objreader **out);
    shale_status (*reader_read)(shale_objreader *r, uint64_t offset, uint64_t len,
                                void **data, size_t *got);
    void (*reader_close)(shale_objreader *r);
    /* Deletes keys[0..n) together (shale_objstore_delete_many), optional:
     * NULL is n calls of del. */
    shale_status (*del_many)(shale_objstore *s, const char *const *keys, size_t n);
    /* Removes what crashed writes left behind and no list shows (file://:
     * ".tmp-*" files), modified before older_than_ms (wall clock, ms);
     * each(ctx, path relative to the root, size) for every one, removed or
     * (dry) not.  Optional: NULL has nothing to sweep. */
    shale_status (*sweep)(shale_objstore *s, int64_t older_than_ms, bool dry,
                          void (*each)(void *ctx, const char *rel, uint64_t size), void *ctx);
} objstore_ops;

/* s's sweep (objstore_ops.sweep), or nothing swept for a backend without
 * one.  For the GC pass (engine/db/gc.c). */
shale_status objstore_sweep(shale_objstore *s, int64_t older_than_ms, bool dry,
                            void (*each)(void *ctx, const char *rel, uint64_t size), void *ctx);

/* Every backend's handle starts with this header. */
struct shale_objstore {
    const objstore_ops *ops;
    char *uri;                 /* normalised URI, malloc'd, freed by objstore.c */
    /* Retry policy for SHALE_RETRYABLE / SHALE_TIMEOUT results, set by
     * objstore.c from the options (0 retries when not opened through
     * shale_objstore_open, e.g. a fault wrapper: its inner store retries). */
    int max_retries, retry_base_ms, retry_max_ms;
    /* The options' manifest_cache (borrowed; NULL: none), set by
     * objstore.c: manifest_store.c answers a version it holds. */
    struct shale_manifest_cache *mcache;
    /* What the cache keys this store's versions by (malloc'd, freed by
     * objstore.c): the URI, preceded by the S3 endpoint when one is set --
     * the same s3:// URI on two endpoints is two stores, and a cache shared
     * by both must not answer one's version with the other's bytes. */
    char *mcache_key;
};

/* Every reader handle starts with this header; the generic one is only
 * this. */
struct shale_objreader {
    shale_objstore *store;     /* borrowed: outlives the handle */
    char *key;                 /* malloc'd, freed by objstore.c */
    uint64_t size;             /* as known at open (see shale_objreader_size) */
};

/* Backend constructors.  `rest` is the URI after "scheme://".  On success
 * the backend fills (*out)->ops; objstore.c sets uri. */
shale_status objstore_fs_open(const char *rest, const shale_objstore_options *o,
                              shale_objstore **out);
shale_status objstore_mem_open(const char *rest, const shale_objstore_options *o,
                               shale_objstore **out);
shale_status objstore_s3_open(const char *rest, const shale_objstore_options *o,
                              shale_objstore **out);

/* "fault+<uri>": a proxy to the process-wide fault wrapper of <uri>
 * (objstore_faulturi.c).  `uri` is the whole fault URI. */
shale_status objstore_faulturi_open(const char *uri, const shale_objstore_options *o,
                                    shale_objstore **out);

/* file:// handles keep at most this many descriptors open in the process
 * (the default, n < 0, is half the RLIMIT_NOFILE soft limit); beyond it a
 * handle reads by path.  For tests of that fallback. */
void objstore_fs_set_max_fds(long n);

/* Read-around advices (posix_fadvise WILLNEED) file:// handles have made
 * in this process: each window once per handle.  For tests. */
long objstore_fs_read_around_advices(void);

/* Test hook, process-wide: from the nth matching call on, `count` fsync
 * calls (count < 0: all) that file:// makes for a key starting with
 * prefix report EIO after the real fsync ran.  kind: "file" (the object's
 * data), "dir" (its directory entry, a new directory, a deletion) or
 * "any"; NULL disarms.  The environment variable SHALE_TEST_FS_FSYNC_FAIL=
 * "kind:prefix[:nth]" arms the same rule (count -1) in a child process.
 * SHALE_INVALID_ARGUMENT for a bad kind or nth. */
shale_status objstore_fs_fail_fsync(const char *kind, const char *prefix, long nth, long count);
/* fsync failures the hook has reported so far in this process. */
long objstore_fs_fsync_failures(void);
/* For objstore_fs.c: fsync(fd) made for key (kind 1: the object's data, 2:
 * a directory), 0 or an errno, through the hook; and applying
 * SHALE_TEST_FS_FSYNC_FAIL (called when a file:// store opens). */
int objstore_fs_fsync(int fd, const char *key, int kind);
/* fdatasync(fd) of a WAL log segment for key (objstore_fs_log.c), through
 * the same hook as a kind-1 fsync. */
int objstore_fs_fdatasync(int fd, const char *key);
void objstore_fs_fsync_hook_from_env(void);

/* Tests only: the WAL log's segments rotate past n bytes (0: the default,
 * 64 MiB), process-wide. */
void objstore_fs_log_set_segment_bytes(uint64_t n);
/* Tests only: spare segments linked into WAL logs so far in the process
 * (objstore_fs_log_zero.c). */
uint64_t objstore_fs_log_spares_linked(void);
/* Tests only: sync_file_range write-backs of spares' zeroes so far in the
 * process (one per 2 MiB of a spare, objstore_fs_log_zero.c). */
uint64_t objstore_fs_log_spare_writebacks(void);
/* Tests only: spares asked of a zeroer so far in the process (the ask is
 * made under the handle's lock, in the append or claim that makes it). */
uint64_t objstore_fs_log_spares_asked(void);
/* Tests only: fn(step) is called during a WAL log's dead rotation
 * (objstore_fs_log.c drop_dead): step 1 once the delete's tombstones are
 * written and before the new segment is made, step 2 once the new segment
 * is durable and before the old one is unlinked.  A crash test kills its
 * process there.  NULL removes it. */
void objstore_fs_log_set_rotate_hook(void (*fn)(int step));

/* Tests only: fn is called at the start of every shale_objstore_open() in
 * the process with the URI and the options the store is opened with (after
 * NULL became the defaults), so a test can check that every store opened
 * on a database's behalf got its caller's options (tests/unit/test_env.c).
 * Set it while no store is being opened; fn NULL removes it. */
typedef void (*objstore_open_hook_fn)(void *ctx, const char *uri,
                                      const shale_objstore_options *opts);
void objstore_set_open_hook(objstore_open_hook_fn fn, void *ctx);

/* Counts one retry (backends that retry call this). */
void objstore_count_retry(void);
/* Adds bytes to the process-wide counters. */
void objstore_count_bytes(uint64_t read, uint64_t written);

#endif
