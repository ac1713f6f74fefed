/*
 * objstore_fs_log.h -- "WAL log mode" of the file:// store: the objects
 * whose keys are wal/<id:020>.sst kept as records in append-only segment
 * files under <root>/.wal-log/ instead of one file each, so that a durable
 * put is one pwrite into pre-zeroed space and one fdatasync (no inode, no
 * directory entry to make durable).  objstore_fs.c dispatches to it; every
 * other key, and every wal/ key while the mode is off, stays a regular
 * file.  The format and why create-if-absent and fencing hold are in
 * objstore_fs_log.c and docs/format.md ("WAL log segments").
 *
 * Ownership: fs_log_open() returns a handle owned by the file:// store
 * (closed with fs_log_close()); the host's strings and callbacks are
 * borrowed for the handle's life.  Thread safety: every call may be made
 * from many threads at once (a mutex per handle; other handles, in this
 * process or another, are excluded by flock on the log directory).
 */
#ifndef SHALE_OBJSTORE_FS_LOG_H
#define SHALE_OBJSTORE_FS_LOG_H

#include "shale_objstore.h"

typedef struct fs_log fs_log;

/* What the log needs from the file:// store that owns it. */
typedef struct fs_log_host {
    const char *root;        /* the store's root directory, no trailing '/' */
    bool no_fsync;           /* fs_no_fsync: skip fdatasync and dir fsync */
    /* SHALE_CLOSED once an fsync failed in this store (sticky), else OK. */
    shale_status (*check_writable)(void *ctx, const char *key);
    /* Records a failed fsync/fdatasync (the store refuses writes from now
     * on) and returns the SHALE_IO error to report. */
    shale_status (*sync_failed)(void *ctx, const char *what, const char *key, int e);
    void *ctx;
} fs_log_host;

/* The key form the log holds: "wal/" 20 decimal digits ".sst", id > 0
 * (the same form as wal_key_parse in db/paths.c, parsed here so the store
 * does not depend on the engine). */
bool fs_log_key(const char *key, uint64_t *id);

/* A handle for the store's root.  create: make <root>/.wal-log (and make
 * it durable in the root) so log mode is on for every process that opens
 * the store from now on.  Reads nothing else: the index is built at first
 * use. */
shale_status fs_log_open(const fs_log_host *host, bool create, fs_log **out);
void fs_log_close(fs_log *l);  /* accepts NULL */

/* Whether log mode is on for the root: <root>/.wal-log exists.  Checked
 * again (one stat) while it is off, so a process that opened the store
 * before another turned the mode on follows it from its next WAL call. */
bool fs_log_on(fs_log *l);

/* put / put-if-absent of a log key (id from fs_log_key).  *handled false:
 * the caller writes a regular file instead (the object is too large for a
 * record, or this is the handle's first create-if-absent -- see
 * fs_log_check_claim) and nothing was done. */
shale_status fs_log_put(fs_log *l, const char *key, uint64_t id, const void *data, size_t len,
                        bool if_absent, bool *handled);

/* After a create-if-absent that linked a regular file for key: under the
 * log's lock, SHALE_PRECONDITION_FAILED if a live record holds the id (the
 * caller removes its file: the record came first), else SHALE_OK. */
shale_status fs_log_check_claim(fs_log *l, const char *key, uint64_t id);

/* Finds the live record of id.  *found false: no record (the caller looks
 * for a regular file).  On found: *fd a new descriptor on the segment (the
 * caller closes it), the record's bytes at [*base, *base + *size), and its
 * write time.  A record is reported only once it is durable: one written
 * by another process and not yet known durable is fdatasync'ed first. */
shale_status fs_log_find(fs_log *l, const char *key, uint64_t id, bool *found, int *fd,
                         uint64_t *base, uint64_t *size, int64_t *mtime_ms);

/* Deletes id's record (a tombstone frame) if there is one; then unlinks
 * the oldest segments whose records are all deleted.  The caller deletes
 * a regular file of the key as well. */
shale_status fs_log_del(fs_log *l, const char *key, uint64_t id);
/* fs_log_del() of keys[i] / ids[i] for i < n, the tombstones appended
 * under one hold of the lock and made durable by one fdatasync per
 * segment they went to (one, but for a segment's end). */
shale_status fs_log_del_many(fs_log *l, const char *const *keys, const uint64_t *ids, size_t n);

/* Merges the live records whose keys start with prefix and sort after
 * cursor (NULL: from the start) into a page of regular files (*items,
 * *count of them in key order, array capacity *cap, *more: the walk had
 * more than max): the page becomes the first max keys of both, each key
 * once (a record shadows a regular file of its key), and *more is set
 * when anything was left out.  The array is replaced (its keys move). */
shale_status fs_log_merge_list(fs_log *l, const char *prefix, const char *cursor, size_t max,
                               shale_objinfo **items, size_t *count, size_t *cap, bool *more);

/* Objects larger than this are written as regular files even in log mode. */
#define FS_LOG_MAX_RECORD (16u << 20)

#endif
