/*
 * objstore_fs.c -- file:///abs/dir: a local directory as an object store.
 *
 * Key "a/b/c" is the file <root>/a/b/c.  Writes are atomic: the bytes go
 * to a temporary file ".tmp-<random>" in the target directory, are fsynced,
 * then renamed over the key (put) or hard-linked to it (put-if-absent:
 * link() fails with EEXIST if the key exists, so of racing processes
 * exactly one wins), and the directory is fsynced; new directories are
 * fsynced in their parents and deletions in their directory.  A failed
 * fsync is sticky: the store refuses every later write (see fs_store.broken)
 * so nothing written after it can be acknowledged.  Readers never see a
 * partial object.  Temporary files are invisible to list and are left
 * behind only by a crash mid-write (harmless; list ignores them; the GC
 * pass removes old ones through fs_sweep).
 *
 * Escaping the root: keys are validated by objstore.c (no "..", no leading
 * '/', no empty or "." segments); every directory on a key's path is
 * lstat'ed and a symbolic link refused (ELOOP -> SHALE_INVALID_ARGUMENT),
 * and files are opened with O_NOFOLLOW, so a link planted under the root
 * is never followed to read or overwrite anything elsewhere.
 *
 * Reader handles (shale_objreader, one descriptor each) and their
 * read-around are in objstore_fs_reader.c.
 *
 * WAL log mode (objstore_fs_log.c): while <root>/.wal-log exists, the
 * objects wal/<id:020>.sst are records in its segment files; put, get,
 * head, delete, list and reader handles of those keys go there first and
 * fall back to a regular file of the key (the older layout).  Keys under
 * ".wal-log/" are refused.
 */
#include "db/paths.h"
#include "objstore/objstore_fs_int.h"
#include "objstore/objstore_fs_log.h"
#include "objstore/objstore_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static shale_status errno_status(int e)
{
    switch (e) {
    case ENOENT: case ENOTDIR: return SHALE_NOT_FOUND;
    case EEXIST: return SHALE_PRECONDITION_FAILED;
    case EACCES: case EPERM: case EROFS: return SHALE_UNAUTHORIZED;
    case ENOMEM: return SHALE_NO_MEMORY;
    case ELOOP: return SHALE_INVALID_ARGUMENT;
    default: return SHALE_IO;
    }
}

static shale_status fs_fail(fs_store *fs, const char *call, const char *key, int e)
{
    return shale_err(errno_status(e), "file://%s: %s(%s): %s", fs->root, call, key,
                     strerror(e));
}

static char *path_of(fs_store *fs, const char *key)
{
    size_t n = strlen(fs->root) + strlen(key) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", fs->root, key);
    return p;
}

/* A key the WAL log holds now: *id set. */
bool objfs_log_key(fs_store *fs, const char *key, uint64_t *id)
{
    return fs->log && fs_log_key(key, id) && fs_log_on(fs->log);
}

/* Keys under ".wal-log/" are the log's own files, not objects. */
shale_status objfs_check_not_log(fs_store *fs, const char *key)
{
    if (strncmp(key, ".wal-log", 8) || (key[8] && key[8] != '/'))
        return SHALE_OK;
    return shale_err(SHALE_INVALID_ARGUMENT, "file://%s: key %s: .wal-log/ holds the WAL log's "
                                             "segments and is not for objects", fs->root, key);
}

/* Refuses a key whose directories pass through a symbolic link under the
 * root (O_NOFOLLOW guards only the last component): ELOOP, else 0. */
static int check_dirs(fs_store *fs, char *path)
{
    size_t rootlen = strlen(fs->root);
    for (char *p = path + rootlen + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        struct stat st;
        int r = lstat(path, &st);
        *p = '/';
        if (r == 0 && S_ISLNK(st.st_mode))
            return ELOOP;
    }
    return 0;
}

/* mkdir -p of every directory above `path` (which is under root); each
 * directory it creates is made durable in its parent (fsync of the parent)
 * before the object's own rename or link, which a crash could otherwise
 * leave in a directory that no longer exists.  0 or an errno; *fsync_failed
 * when the errno came from an fsync. */
static int fsync_dir_of(const char *path, const char *key);
static int make_parents(fs_store *fs, char *path, const char *key, bool *fsync_failed)
{
    size_t rootlen = strlen(fs->root);
    *fsync_failed = false;
    for (char *p = path + rootlen + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        int r = mkdir(path, 0755);
        int e = errno;
        if (r == 0 && !fs->no_fsync && (e = fsync_dir_of(path, key))) {
            *p = '/';
            *fsync_failed = true;
            return e;
        }
        *p = '/';
        if (r != 0 && e != EEXIST)
            return e;
    }
    return 0;
}

/* ---- fsync: through objstore_fs_fsync(), where tests make it fail ----- */

/* Records the first fsync failure; the store refuses writes from now on. */
static shale_status fs_fsync_failed(fs_store *fs, const char *what, const char *key, int e)
{
    pthread_mutex_lock(&fs->broken_mu);
    if (!atomic_load(&fs->broken)) {
        snprintf(fs->broken_msg, sizeof fs->broken_msg, "%s(%s): %s", what, key, strerror(e));
        atomic_store(&fs->broken, 1);
    }
    pthread_mutex_unlock(&fs->broken_mu);
    return shale_err(SHALE_IO, "file://%s: %s(%s): %s; the store refuses writes from now on "
                               "(a failed fsync may have lost data that a retry would not "
                               "notice): reopen it", fs->root, what, key, strerror(e));
}

/* SHALE_CLOSED once an fsync has failed, else SHALE_OK. */
static shale_status fs_check_writable(fs_store *fs, const char *key)
{
    if (!atomic_load(&fs->broken))
        return SHALE_OK;
    pthread_mutex_lock(&fs->broken_mu);
    shale_status rc = shale_err(SHALE_CLOSED, "file://%s: refusing to write %s: an earlier "
                                              "%s; reopen the store", fs->root, key,
                                fs->broken_msg);
    pthread_mutex_unlock(&fs->broken_mu);
    return rc;
}

/* fsyncs the directory holding path (for key): 0 or an errno. */
static int fsync_dir_of(const char *path, const char *key)
{
    char *dir = xstrdup(path);
    if (!dir)
        return ENOMEM;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (!*dir) {
        dir[0] = '/';
        dir[1] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = fd < 0 ? errno : objstore_fs_fsync(fd, key, 2);
    if (fd >= 0)
        close(fd);
    free(dir);
    return e;
}

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static shale_status fs_put(shale_objstore *s, const char *key, const void *data, size_t len,
                           bool if_absent)
{
    fs_store *fs = (fs_store *)s;
    shale_status rc = SHALE_OK;
    char *path = path_of(fs, key), *tmp = NULL;
    int fd = -1, e;
    bool sync_failed = false, handled = false;
    uint64_t wid;
    if (!path)
        return SHALE_OOM();
    if ((rc = fs_check_writable(fs, key)) || (rc = objfs_check_not_log(fs, key)))
        goto out;
    if (objfs_log_key(fs, key, &wid) &&
        ((rc = fs_log_put(fs->log, key, wid, data, len, if_absent, &handled)) || handled))
        goto out;
    if ((e = check_dirs(fs, path)) || (e = make_parents(fs, path, key, &sync_failed))) {
        rc = sync_failed ? fs_fsync_failed(fs, "fsync(new dir)", key, e)
                         : fs_fail(fs, e == ELOOP ? "symlink in path" : "mkdir", key, e);
        goto out;
    }
    uint64_t r;
    random_bytes(&r, sizeof r);
    size_t n = strlen(path) + 40;
    if (!(tmp = malloc(n))) {
        rc = SHALE_OOM();
        goto out;
    }
    char *slash = strrchr(path, '/');
    snprintf(tmp, n, "%.*s/.tmp-%016llx", (int)(slash - path), path, (unsigned long long)r);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = fs_fail(fs, "open", key, errno);
        goto out;
    }
    if ((e = write_all(fd, data, len))) {
        rc = fs_fail(fs, "write", key, e);
        goto out;
    }
    if (!fs->no_fsync && (e = objstore_fs_fsync(fd, key, 1))) {
        rc = fs_fsync_failed(fs, "fsync", key, e);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = fs_fail(fs, "close", key, errno);
        goto out;
    }
    fd = -1;
    if (if_absent) {
        if (link(tmp, path) != 0) {
            e = errno;
            rc = e == EEXIST ? SHALE_PRECONDITION_FAILED : fs_fail(fs, "link", key, e);
            goto out;
        }
        /* Linked; a record in the WAL log may still hold the id (appended
         * under the log's lock before our link): then it won. */
        if (objfs_log_key(fs, key, &wid) && (rc = fs_log_check_claim(fs->log, key, wid))) {
            unlink(path);
            goto out;
        }
    } else if (rename(tmp, path) != 0) {
        rc = fs_fail(fs, "rename", key, errno);
        goto out;
    } else {
        free(tmp);
        tmp = NULL;  /* renamed: nothing to unlink */
        /* Too large for a record: a record of the key would be read
         * before this file, so it goes. */
        if (objfs_log_key(fs, key, &wid) && (rc = fs_log_del(fs->log, key, wid)))
            goto out;
    }
    /* A failed directory fsync leaves the new entry visible but maybe not
     * durable: the put fails, and the store refuses every later write, so a
     * retry cannot find the entry in place and report success. */
    if (!fs->no_fsync && (e = fsync_dir_of(path, key)))
        rc = fs_fsync_failed(fs, "fsync(dir)", key, e);
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(path);
    return rc;
}

/* Opens key's file for reading after the symlink checks; on success *fd
 * and *size (a regular file's size). */
shale_status objfs_open_for_read(fs_store *fs, const char *key, int *fd, uint64_t *size)
{
    shale_status rc = SHALE_OK;
    int f = -1;
    struct stat st;
    *fd = -1;
    *size = 0;
    char *path = path_of(fs, key);
    if (!path)
        return SHALE_OOM();
    if (check_dirs(fs, path)) {
        rc = fs_fail(fs, "symlink in path", key, ELOOP);
        goto out;
    }
    if ((f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        rc = fs_fail(fs, "open", key, errno);
        goto out;
    }
    if (fstat(f, &st) != 0) {
        rc = fs_fail(fs, "fstat", key, errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = shale_err(SHALE_NOT_FOUND, "file://%s: %s is not a regular file", fs->root, key);
        goto out;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    f = -1;
out:
    if (f >= 0)
        close(f);
    free(path);
    return rc;
}

/* Reads [offset, offset+len) of an object of `size` bytes from fd: what
 * exists of it, into a new buffer (get_range's contract).  A loop, as
 * pread may be interrupted or return less than asked. */
shale_status objfs_read_at(fs_store *fs, const char *key, int fd, uint64_t base,
                           uint64_t size, uint64_t offset, uint64_t len, void **data,
                           size_t *got)
{
    shale_status rc = SHALE_OK;
    uint8_t *buf = NULL;
    if (offset > size) {
        rc = shale_err(SHALE_INVALID_ARGUMENT, "file://%s: range offset %llu past the end of "
                                               "%s (%llu bytes)", fs->root,
                       (unsigned long long)offset, key, (unsigned long long)size);
        goto out;
    }
    if (len > size - offset)
        len = size - offset;
    if (len > SIZE_MAX - 1 || !(buf = malloc(len ? (size_t)len : 1))) {
        rc = SHALE_OOM();
        goto out;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, buf + done, (size_t)len - done, (off_t)(base + offset + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = fs_fail(fs, "pread", key, errno);
            goto out;
        }
        if (r == 0)
            break;  /* truncated behind our back: return what exists */
        done += (size_t)r;
    }
    *data = buf;
    *got = done;
    buf = NULL;
out:
    free(buf);
    return rc;
}

shale_status objfs_get_range(shale_objstore *s, const char *key, uint64_t offset,
                             uint64_t len, bool whole, void **data, size_t *got)
{
    fs_store *fs = (fs_store *)s;
    int fd = -1;
    uint64_t size = 0, base = 0, wid;
    int64_t mt;
    bool found = false;
    shale_status rc = objfs_check_not_log(fs, key);
    if (!rc && objfs_log_key(fs, key, &wid))
        rc = fs_log_find(fs->log, key, wid, &found, &fd, &base, &size, &mt);
    if (!rc && !found)
        rc = objfs_open_for_read(fs, key, &fd, &size);
    if (rc)
        return rc;
    if (whole) {
        offset = 0;
        len = size;
    }
    rc = objfs_read_at(fs, key, fd, base, size, offset, len, data, got);
    close(fd);
    return rc;
}

static shale_status fs_head(shale_objstore *s, const char *key, uint64_t *size,
                            int64_t *mtime_ms)
{
    fs_store *fs = (fs_store *)s;
    uint64_t wid, base;
    bool found = false;
    int fd = -1;
    shale_status rc = objfs_check_not_log(fs, key);
    if (!rc && objfs_log_key(fs, key, &wid))
        rc = fs_log_find(fs->log, key, wid, &found, &fd, &base, size, mtime_ms);
    if (fd >= 0)
        close(fd);
    if (rc || found)
        return rc;
    char *path = path_of(fs, key);
    if (!path)
        return SHALE_OOM();
    struct stat st;
    int r = check_dirs(fs, path) ? (errno = ELOOP, -1) : lstat(path, &st);
    free(path);
    if (r != 0)
        return fs_fail(fs, "stat", key, errno);
    if (!S_ISREG(st.st_mode))
        return shale_err(SHALE_NOT_FOUND, "file://%s: %s is not a regular file", fs->root, key);
    *size = (uint64_t)st.st_size;
    *mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return SHALE_OK;
}

/* The regular file of key, if any (after its log record, if any). */
static shale_status fs_del_file(fs_store *fs, const char *key);

static shale_status fs_del(shale_objstore *s, const char *key)
{
    fs_store *fs = (fs_store *)s;
    uint64_t wid;
    shale_status rc = fs_check_writable(fs, key);
    if (!rc)
        rc = objfs_check_not_log(fs, key);
    if (!rc && objfs_log_key(fs, key, &wid))
        rc = fs_log_del(fs->log, key, wid);  /* then the regular file, if any */
    return rc ? rc : fs_del_file(fs, key);
}

/* The log's records of the keys first, their tombstones made durable by
 * one fdatasync (fs_log_del_many), then each key's regular file as fs_del
 * does (a WAL key in the log mode rarely has one: ENOENT, no fsync). */
static shale_status fs_del_many(shale_objstore *s, const char *const *keys, size_t n)
{
    fs_store *fs = (fs_store *)s;
    const char **lk = calloc(n ? n : 1, sizeof *lk);
    uint64_t *ids = calloc(n ? n : 1, sizeof *ids);
    shale_status rc = lk && ids ? SHALE_OK : SHALE_OOM();
    size_t m = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = fs_check_writable(fs, keys[i]);
        if (!rc)
            rc = objfs_check_not_log(fs, keys[i]);
        if (!rc && objfs_log_key(fs, keys[i], &ids[m]))
            lk[m++] = keys[i];
    }
    if (!rc && m)
        rc = fs_log_del_many(fs->log, lk, ids, m);
    free(lk);
    free(ids);
    for (size_t i = 0; i < n && !rc; i++)
        rc = fs_del_file(fs, keys[i]);
    return rc;
}

static shale_status fs_del_file(fs_store *fs, const char *key)
{
    shale_status rc = SHALE_OK;
    char *path = path_of(fs, key);
    if (!path)
        return SHALE_OOM();
    int r = check_dirs(fs, path) ? (errno = ELOOP, -1) : unlink(path);
    int e = errno;
    /* The deletion is made durable before it is reported, so the store
     * keeps the object-store contract (gone means gone, also after a
     * crash).  No engine invariant needs it today -- a wiped WAL SST that
     * came back is at or below replay_after_wal_id and never replayed, an
     * old manifest loses to a newer one -- so this one flush per delete is
     * a cost GC and the WAL wipe could batch (one directory fsync per
     * directory) if it shows in a benchmark. */
    if (r == 0 && !fs->no_fsync && (e = fsync_dir_of(path, key))) {
        rc = fs_fsync_failed(fs, "fsync(dir)", key, e);
    } else if (r != 0 && e != ENOENT) {
        rc = fs_fail(fs, "unlink", key, e);
    }
    free(path);
    return rc;
}

/* ---- list: a sorted walk of the directories the prefix can match ------- */

typedef struct walk {
    fs_store *fs;
    const char *prefix;
    const char *cursor;
    size_t max;
    shale_objinfo *items;
    size_t count, cap;
    bool more;
} walk;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Visits directory `rel` ("" or "a/b/") in key order. */
static shale_status walk_dir(walk *w, const char *rel)
{
    size_t plen = strlen(w->prefix), rlen = strlen(rel);
    char *dirpath = path_of(w->fs, rel);
    if (!dirpath)
        return SHALE_OOM();
    if (rlen)
        dirpath[strlen(dirpath) - 1] = '\0';  /* drop the trailing '/' */
    DIR *d = opendir(dirpath);
    free(dirpath);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? SHALE_OK
                                                   : fs_fail(w->fs, "opendir", rel, errno);
    char **names = NULL;
    size_t n = 0, cap = 0;
    shale_status rc = SHALE_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;  /* ".", "..", and ".tmp-*" temporaries */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = SHALE_OOM();
                break;
            }
            names = nn;
        }
        /* Directories are named "x/" so that sorting the names sorts the
         * keys they produce ("a-c" < "a/b" bytewise). */
        size_t nl = strlen(e->d_name);
        if (!(names[n] = malloc(nl + 2))) {
            rc = SHALE_OOM();
            break;
        }
        memcpy(names[n], e->d_name, nl + 1);
        bool isdir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            char *k = malloc(rlen + nl + 1), *full = NULL;
            if (k) {
                memcpy(k, rel, rlen);
                memcpy(k + rlen, e->d_name, nl + 1);
                full = path_of(w->fs, k);
            }
            struct stat st;
            isdir = full && lstat(full, &st) == 0 && S_ISDIR(st.st_mode);
            free(full);
            free(k);
        }
        if (isdir)
            memcpy(names[n] + nl, "/", 2);
        n++;
    }
    closedir(d);
    if (!rc && n > 1)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && !rc && !w->more; i++) {
        size_t klen = rlen + strlen(names[i]);
        char *key = malloc(klen + 1);
        if (!key) {
            rc = SHALE_OOM();
            break;
        }
        memcpy(key, rel, rlen);
        memcpy(key + rlen, names[i], klen - rlen + 1);
        if (key[klen - 1] == '/') {
            /* Descend if keys under it can match the prefix and some can
             * sort after the cursor. */
            size_t m = klen < plen ? klen : plen;
            bool before_cursor = w->cursor && strcmp(key, w->cursor) < 0 &&
                                 strncmp(w->cursor, key, klen) != 0;
            if (!strncmp(key, w->prefix, m) && !before_cursor)
                rc = walk_dir(w, key);
            free(key);
            continue;
        }
        struct stat st;
        char *full = NULL;
        if (strncmp(key, w->prefix, plen) || (w->cursor && strcmp(key, w->cursor) <= 0) ||
            !(full = path_of(w->fs, key)) || lstat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(full);
            free(key);
            continue;
        }
        free(full);
        if (w->count == w->max) {
            w->more = true;
            free(key);
            break;
        }
        if (w->count == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 64;
            shale_objinfo *ni = realloc(w->items, nc * sizeof *ni);
            if (!ni) {
                free(key);
                rc = SHALE_OOM();
                break;
            }
            w->items = ni;
            w->cap = nc;
        }
        w->items[w->count].key = key;
        w->items[w->count].size = (uint64_t)st.st_size;
        w->items[w->count].mtime_ms =
            (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        w->count++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static shale_status fs_list(shale_objstore *s, const char *prefix, const char *cursor,
                            size_t max_keys, shale_objlist *page)
{
    fs_store *fs = (fs_store *)s;
    walk w = {fs, prefix, cursor && *cursor ? cursor : NULL, max_keys, NULL, 0, 0, false};
    shale_status rc = walk_dir(&w, "");
    size_t pl = strlen(prefix);
    if (!rc && fs->log && !strncmp(prefix, "wal/", pl < 4 ? pl : 4) && fs_log_on(fs->log))
        rc = fs_log_merge_list(fs->log, prefix, w.cursor, w.max, &w.items, &w.count, &w.cap,
                               &w.more);
    page->items = w.items;
    page->count = w.count;
    if (!rc && w.more && w.count > 0 && !(page->next_cursor = xstrdup(w.items[w.count - 1].key)))
        rc = SHALE_OOM();
    if (rc)
        shale_objlist_free(page);
    return rc;
}

static void fs_close(shale_objstore *s)
{
    fs_store *fs = (fs_store *)s;
    fs_log_close(fs->log);
    pthread_mutex_destroy(&fs->broken_mu);
    free(fs->root);
    free(fs);
}

static shale_status log_check_writable(void *ctx, const char *key)
{
    return fs_check_writable(ctx, key);
}

static shale_status log_sync_failed(void *ctx, const char *what, const char *key, int e)
{
    return fs_fsync_failed(ctx, what, key, e);
}

/* ---- sweep: temporaries a crashed put left ---------------------------- */

/* A put writes ".tmp-<random>" beside its key and links or renames it into
 * place; a process killed in between leaves it, and no list shows it (the
 * walk skips dot names), so only this finds it.  Old enough means no put
 * can still be writing it -- and a put whose temporary is removed under it
 * fails its link or rename, it never reports a write it did not make. */
typedef struct sweep_ctx {
    int64_t before_ms;
    bool dry;
    size_t rootlen;
    void (*each)(void *, const char *, uint64_t);
    void *ctx;
    int err;
} sweep_ctx;
static _Thread_local sweep_ctx *g_sweep;

static int sweep_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    sweep_ctx *c = g_sweep;
    /* A directory below the root with an identity object is another
     * store's root: its temporaries are its own GC's (a pass never deletes
     * in another database's store). */
    if (type == FTW_D && ftw->level > 0) {
        char id[PATH_MAX];
        struct stat is;
        int n = snprintf(id, sizeof id, "%s/" PATH_IDENTITY, path);
        return n > 0 && (size_t)n < sizeof id && lstat(id, &is) == 0 ? FTW_SKIP_SUBTREE
                                                                     : FTW_CONTINUE;
    }
    int64_t mt = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
    if (type != FTW_F || strncmp(path + ftw->base, ".tmp-", 5) || mt >= c->before_ms)
        return FTW_CONTINUE;
    if (!c->dry && unlink(path) != 0) {
        if (errno != ENOENT && !c->err)
            c->err = errno;
        return FTW_CONTINUE;
    }
    if (c->each)
        c->each(c->ctx, path + c->rootlen + 1, (uint64_t)st->st_size);
    return FTW_CONTINUE;
}

static shale_status fs_sweep(shale_objstore *s, int64_t older_than_ms, bool dry,
                             void (*each)(void *, const char *, uint64_t), void *ctx)
{
    fs_store *fs = (fs_store *)s;
    sweep_ctx c = {older_than_ms, dry, strlen(fs->root), each, ctx, 0};
    g_sweep = &c;
    int r = nftw(fs->root, sweep_one, 16, FTW_PHYS | FTW_ACTIONRETVAL);
    int e = r ? errno : c.err;
    g_sweep = NULL;
    if (r && e == ENOENT)
        return SHALE_OK;   /* no store directory yet: nothing to sweep */
    return e ? fs_fail(fs, r ? "nftw" : "unlink", ".tmp-*", e) : SHALE_OK;
}

static const objstore_ops fs_ops = {
    .scheme = "file", .put = fs_put, .get_range = objfs_get_range, .head = fs_head,
    .del = fs_del, .list = fs_list, .close = fs_close, .self_retrying = false,
    .del_many = fs_del_many,
    .reader_open = objfs_reader_open, .reader_read = objfs_reader_read,
    .reader_close = objfs_reader_close, .sweep = fs_sweep,
};

shale_status objstore_fs_open(const char *rest, const shale_objstore_options *o,
                              shale_objstore **out)
{
    if (rest[0] != '/')
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "file://%s: the path must be absolute (file:///abs/dir)", rest);
    fs_store *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->root = xstrdup(rest))) {
        free(fs);
        return SHALE_OOM();
    }
    size_t n = strlen(fs->root);
    while (n > 1 && fs->root[n - 1] == '/')
        fs->root[--n] = '\0';
    fs->no_fsync = o->fs_no_fsync;
    pthread_mutex_init(&fs->broken_mu, NULL);
    objstore_fs_fsync_hook_from_env();
    /* mkdir -p the root; each directory created is fsynced in its parent. */
    for (char *p = fs->root + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            int r = mkdir(fs->root, 0755);
            int e = r == 0 ? 0 : errno;
            const char *what = "mkdir";
            if (r == 0 && !fs->no_fsync && (e = fsync_dir_of(fs->root, "")))
                what = "fsync of the new directory's parent";
            *p = c;
            if (e && e != EEXIST) {
                shale_status rc = shale_err(errno_status(e), "file://%s: %s: %s", fs->root,
                                            what, strerror(e));
                fs_close(&fs->base);
                return rc;
            }
        }
        if (!c)
            break;
    }
    fs_log_host host = {fs->root, fs->no_fsync, log_check_writable, log_sync_failed, fs};
    shale_status lrc = fs_log_open(&host, o->fs_wal_log > 0, &fs->log);
    if (lrc) {
        fs_close(&fs->base);
        return lrc;
    }
    fs->base.ops = &fs_ops;
    *out = &fs->base;
    return SHALE_OK;
}
