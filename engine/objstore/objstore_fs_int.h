/*
 * objstore_fs_int.h -- what the file:// store's files share (internal to
 * engine/objstore): the store itself (objstore_fs.c: paths, writes, list)
 * and its reader handles (objstore_fs_reader.c: one descriptor per handle,
 * read-around).  Nothing outside those two files includes it.
 */
#ifndef SHALE_OBJSTORE_FS_INT_H
#define SHALE_OBJSTORE_FS_INT_H

#include "objstore/objstore_fs_log.h"
#include "objstore/objstore_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct fs_store {
    shale_objstore base;
    char *root;
    bool no_fsync;
    /* A failed fsync, sticky (the lesson PostgreSQL learnt: after fsync
     * reports EIO the kernel may have dropped the dirty pages and marked
     * them clean, so a retried fsync succeeds without the data reaching
     * the disk).  Once set, every put and delete is refused with
     * SHALE_CLOSED naming the first failure, until the store is reopened
     * (by reopening the database).  Reads go on. */
    _Atomic int broken;
    pthread_mutex_t broken_mu;
    char broken_msg[384];
    fs_log *log;             /* the WAL log mode (on iff .wal-log exists) */
} fs_store;

/* Keys under ".wal-log/" are the log's own files, not objects:
 * SHALE_INVALID_ARGUMENT for them, else SHALE_OK. */
shale_status objfs_check_not_log(fs_store *fs, const char *key);
/* A key the WAL log holds now: *id set. */
bool objfs_log_key(fs_store *fs, const char *key, uint64_t *id);
/* Opens key's file for reading after the symlink checks; on success *fd
 * (the caller's to close) and *size (a regular file's size). */
shale_status objfs_open_for_read(fs_store *fs, const char *key, int *fd, uint64_t *size);
/* Reads [offset, offset+len) of an object of `size` bytes that starts at
 * `base` in fd: what exists of it, into a new buffer (*data, malloc'd,
 * the caller's; get_range's contract). */
shale_status objfs_read_at(fs_store *fs, const char *key, int fd, uint64_t base,
                           uint64_t size, uint64_t offset, uint64_t len, void **data,
                           size_t *got);
/* get_range by path: opens, reads, closes (whole: the whole object). */
shale_status objfs_get_range(shale_objstore *s, const char *key, uint64_t offset,
                             uint64_t len, bool whole, void **data, size_t *got);

/* Reader handles (objstore_fs_reader.c), the ops table's. */
shale_status objfs_reader_open(shale_objstore *s, const char *key, uint64_t size_hint,
                               shale_objreader **out);
shale_status objfs_reader_read(shale_objreader *rd, uint64_t offset, uint64_t len,
                               void **data, size_t *got);
void objfs_reader_close(shale_objreader *rd);

#endif
