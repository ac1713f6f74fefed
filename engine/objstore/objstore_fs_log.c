/*
 * objstore_fs_log.c -- the file:// store's WAL log mode (objstore_fs_log.h).
 *
 * Why: a WAL SST written as a file of its own costs a create, a write, an
 * fsync of the file (data and inode), a link and an fsync of the directory
 * -- about 470 us on ext4 here.  The same bytes written into space of a
 * file that is already allocated and zeroed, then fdatasync'ed, need no
 * metadata at all: about 130 us, less than RocksDB's append + fdatasync.
 *
 * Layout: <root>/.wal-log/<n:020>.seg, numbered from 1; the highest is the
 * current one, where records are appended.  (".wal-log" starts with a dot,
 * so list never shows it, and objstore_fs.c refuses keys under it.)  Log
 * mode is on for a root iff the directory exists, so every process that
 * opens the store agrees; it is turned on by creating it (fs_log_open with
 * create) and never off.  A segment is a chain of frames:
 *
 *   0  u32 magic "SWL1" (0x314c5753)   4  u32 kind (1 put, 2 tombstone)
 *   8  u64 id (of wal/<id:020>.sst)    16 u64 payload length (0: tombstone)
 *   24 u64 write time, ms since epoch  32 u64 prev: sum of the previous
 *   40 u64 sum = XXH3_64(payload, seed = XXH3_64(bytes 0..39))   frame, 0 first
 *   48 payload: the object's bytes
 *
 * all little-endian, frames back to back from offset 0.  A scan stops at
 * the first frame whose magic, kind, length, prev or sum is wrong: that is
 * the tail, where the next frame is written.  Ahead of the tail the file is
 * pre-zeroed in 1 MiB chunks (so a record's fdatasync flushes data only,
 * and the one after a chunk was added also makes the new size durable);
 * past 64 MiB the next frame goes to a new segment, created O_EXCL with a
 * directory fsync (once per segment).  Records of one id: the last put
 * wins; a tombstone deletes.  Segments are unlinked oldest first, and only
 * once every put in them is dead, so a tombstone is never dropped while a
 * record it covers survives.
 *
 * Create-if-absent and fencing.  An append takes flock(LOCK_EX) on the log
 * directory (a short section: no fsync inside but once per segment), reads
 * the frames other processes appended since this handle last looked, and
 * for put-if-absent refuses (SHALE_PRECONDITION_FAILED) when a live record
 * or a regular file wal/<id>.sst holds the id; else it pwrites the frame at
 * the tail, unlocks, fdatasyncs, and only then reports OK.  So among live
 * processes exactly one append claims an id (the check and the append are
 * one critical section), and an acknowledged record is durable.  After a
 * crash: fdatasync flushes the whole file, so an acknowledged record
 * implies every frame before it in its segment is durable; a torn or
 * garbage frame can only lie after the last acknowledged one, and the
 * scan stops there.  The next append is written at that torn point with
 * prev = the sum of the last good frame, so stale frames left beyond it
 * (valid on their own but chained to the torn one) fail the prev check and
 * are never read back as records.  A failed fdatasync is sticky like every
 * fsync of the store (fs_store.broken): nothing written afterwards is
 * acknowledged.
 *
 * Records become visible only once durable: a lookup that finds a record
 * another process wrote (or one this handle has not yet seen synced)
 * fdatasyncs the segment first, so a reader tailing the WAL never applies
 * a record that a crash could take back.
 *
 * Regular files written before the mode was on stay readable, listable
 * and deletable, and put-if-absent fails when either form holds the key.
 * A process that opened the store before the mode was turned on, or a
 * binary that predates it, writes regular files: each handle's first
 * put-if-absent of a WAL key (the writer's fence) is still a regular file,
 * linked and then checked against the log under the lock
 * (fs_log_check_claim), so a writer that does not know the log is fenced
 * by a file it sees.  docs/format.md "WAL log segments" has the same.
 */
#include "objstore/objstore_fs_log.h"
#include "objstore/objstore_int.h"
#include "util/coding.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#define LOG_DIR ".wal-log"
#define MAGIC 0x314c5753u
#define HDR 48u
#define KIND_PUT 1u
#define KIND_TOMB 2u
#define SEG_BOUND_DEFAULT (64ull << 20)
#define CHUNK (1ull << 20)
#define WINDOW (256u << 10)

/* The rotation bound, and its test hook (objstore_int.h). */
static _Atomic uint64_t g_seg_bound = SEG_BOUND_DEFAULT;

void objstore_fs_log_set_segment_bytes(uint64_t n)
{
    atomic_store(&g_seg_bound, n ? n : SEG_BOUND_DEFAULT);
}

typedef struct seg {
    uint64_t no;
    int fd;
    uint64_t tail;     /* end of the last valid frame scanned */
    uint64_t prev;     /* that frame's sum (0: none yet) */
    uint64_t size;     /* file size as last seen: [tail, size) pre-zeroed */
    uint64_t synced;   /* [0, synced) known durable */
    size_t live;       /* live put records held here */
} seg;

typedef struct rec {
    uint64_t id, segno, off, len;   /* payload at off in segment segno */
    int64_t mtime;
} rec;

struct fs_log {
    fs_log_host h;
    char *dir;                /* <root>/.wal-log */
    _Atomic int on;
    pthread_mutex_t mu;       /* everything below */
    bool loaded, claimed;
    int dfd;                  /* the log directory: flock, fsync */
    seg *segs;                /* ascending by number */
    size_t nsegs, capsegs;
    rec *recs;                /* ascending by id */
    size_t nrecs, caprecs;
    uint8_t *win;             /* scan window */
    uint64_t win_off;
    size_t win_len, win_cap;
    int win_fd;
};

bool fs_log_key(const char *key, uint64_t *id)
{
    if (strncmp(key, "wal/", 4) || strlen(key) != 4 + 20 + 4 || strcmp(key + 24, ".sst"))
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (key[i] < '0' || key[i] > '9')
            return false;
        uint64_t d = (uint64_t)(key[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *id = v;
    return v != 0;
}

static shale_status log_fail(fs_log *l, const char *call, const char *what, int e)
{
    shale_status c = e == ENOENT ? SHALE_NOT_FOUND
                     : e == EACCES || e == EPERM || e == EROFS ? SHALE_UNAUTHORIZED
                     : e == ENOMEM ? SHALE_NO_MEMORY : SHALE_IO;
    if (c == SHALE_NOT_FOUND)
        c = SHALE_IO;  /* a segment vanishing under the lock is not a result */
    return shale_err(c, "file://%s: WAL log: %s(%s): %s", l->h.root, call, what, strerror(e));
}

static void seg_name(uint64_t no, char *buf, size_t n)
{
    snprintf(buf, n, "%020llu.seg", (unsigned long long)no);
}

/* ---- the index ------------------------------------------------------- */

/* Index of id in recs, or where it would go (*hit false). */
static size_t rec_find(fs_log *l, uint64_t id, bool *hit)
{
    size_t lo = 0, hi = l->nrecs;
    if (hi && l->recs[hi - 1].id < id) {
        *hit = false;
        return hi;  /* the common case: ids grow */
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->recs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *hit = lo < l->nrecs && l->recs[lo].id == id;
    return lo;
}

static seg *seg_of(fs_log *l, uint64_t no)
{
    for (size_t i = l->nsegs; i-- > 0;)
        if (l->segs[i].no == no)
            return &l->segs[i];
    return NULL;
}

static shale_status apply(fs_log *l, seg *s, uint32_t kind, uint64_t id, uint64_t off,
                          uint64_t len, int64_t mtime)
{
    bool hit;
    size_t i = rec_find(l, id, &hit);
    if (hit) {
        seg *old = seg_of(l, l->recs[i].segno);
        if (old && old->live)
            old->live--;
        if (kind == KIND_TOMB) {
            memmove(&l->recs[i], &l->recs[i + 1], (l->nrecs - i - 1) * sizeof *l->recs);
            l->nrecs--;
            return SHALE_OK;
        }
    } else if (kind == KIND_TOMB) {
        return SHALE_OK;  /* its put was in a segment already unlinked */
    } else {
        if (l->nrecs == l->caprecs) {
            size_t nc = l->caprecs ? l->caprecs * 2 : 256;
            rec *nr = realloc(l->recs, nc * sizeof *nr);
            if (!nr)
                return SHALE_OOM();
            l->recs = nr;
            l->caprecs = nc;
        }
        memmove(&l->recs[i + 1], &l->recs[i], (l->nrecs - i) * sizeof *l->recs);
        l->nrecs++;
    }
    l->recs[i] = (rec){id, s->no, off, len, mtime};
    s->live++;
    return SHALE_OK;
}

/* ---- scanning -------------------------------------------------------- */

/* n bytes of s at off through the window, or NULL if the file is shorter. */
static const uint8_t *win_get(fs_log *l, seg *s, uint64_t off, size_t n)
{
    if (l->win_fd == s->fd && off >= l->win_off && off + n <= l->win_off + l->win_len)
        return l->win + (off - l->win_off);
    /* A header read takes a page (most tails are zeros: one small read);
     * a frame's read takes the frame and what follows, up to WINDOW. */
    size_t want = n <= HDR ? 4096 : n > WINDOW ? n : WINDOW;
    if (want > l->win_cap) {
        uint8_t *nw = realloc(l->win, want);
        if (!nw)
            return NULL;
        l->win = nw;
        l->win_cap = want;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(s->fd, l->win + got, want - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    l->win_fd = s->fd;
    l->win_off = off;
    l->win_len = got;
    return got >= n ? l->win : NULL;
}

static uint64_t frame_sum(const uint8_t *hdr, const void *payload, uint64_t len)
{
    static const uint8_t none[1];
    return XXH3_64bits_withSeed(len ? payload : none, (size_t)len, XXH3_64bits(hdr, 40));
}

/* Reads the frames of s from its tail on, into the index, up to the first
 * one that does not check (the tail).  Without the lock a frame being
 * written fails and is read again next time. */
static shale_status scan(fs_log *l, seg *s)
{
    l->win_fd = -1;  /* what lies past the tail may have changed */
    for (;;) {
        const uint8_t *h = win_get(l, s, s->tail, HDR);
        if (!h || get_u32le(h) != MAGIC)
            break;
        uint32_t kind = get_u32le(h + 4);
        uint64_t id = get_u64le(h + 8), len = get_u64le(h + 16);
        if ((kind != KIND_PUT && kind != KIND_TOMB) || (kind == KIND_TOMB && len) ||
            len > FS_LOG_MAX_RECORD || get_u64le(h + 32) != s->prev || !id)
            break;
        uint8_t hdr[HDR];
        memcpy(hdr, h, HDR);
        const uint8_t *p = win_get(l, s, s->tail, HDR + (size_t)len);
        if (!p || frame_sum(hdr, p + HDR, len) != get_u64le(hdr + 40))
            break;
        shale_status rc = apply(l, s, kind, id, s->tail + HDR, len, (int64_t)get_u64le(hdr + 24));
        if (rc)
            return rc;
        s->tail += HDR + len;
        s->prev = get_u64le(hdr + 40);
    }
    if (l->win_cap > WINDOW) {  /* a large record was read: do not keep its buffer */
        free(l->win);
        l->win = NULL;
        l->win_cap = 0;
        l->win_fd = -1;
    }
    return SHALE_OK;
}

/* Opens segment no: 0, ENOENT, or an errno. */
static int seg_open(fs_log *l, uint64_t no, bool create, int *fd)
{
    char name[32];
    seg_name(no, name, sizeof name);
    int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
    int f = openat(l->dfd, name, flags, 0644);
    if (f < 0 && !create && (errno == EACCES || errno == EROFS))
        f = openat(l->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);  /* a reader */
    if (f < 0)
        return errno;
    *fd = f;
    return 0;
}

static shale_status seg_add(fs_log *l, uint64_t no, int fd)
{
    if (l->nsegs == l->capsegs) {
        size_t nc = l->capsegs ? l->capsegs * 2 : 8;
        seg *ns = realloc(l->segs, nc * sizeof *ns);
        if (!ns) {
            close(fd);
            return SHALE_OOM();
        }
        l->segs = ns;
        l->capsegs = nc;
    }
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    l->segs[l->nsegs++] = (seg){no, fd, 0, 0, size, 0, 0};
    return SHALE_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Reads what other processes appended: the current segment's new frames,
 * and segments created after it (each checked for before the one before
 * it is read, so a segment is read to its end once a newer one exists). */
static shale_status refresh(fs_log *l)
{
    for (;;) {
        uint64_t next = l->nsegs ? l->segs[l->nsegs - 1].no + 1 : 1;
        int fd = -1, e = seg_open(l, next, false, &fd);
        if (e && e != ENOENT)
            return log_fail(l, "open", "next segment", e);
        if (l->nsegs) {
            shale_status rc = scan(l, &l->segs[l->nsegs - 1]);
            if (rc) {
                if (fd >= 0)
                    close(fd);
                return rc;
            }
        }
        if (fd < 0)
            return SHALE_OK;
        shale_status rc = seg_add(l, next, fd);
        if (rc)
            return rc;
    }
}

/* Builds the index at first use: every segment, oldest first. */
static shale_status load(fs_log *l)
{
    if (l->loaded)
        return SHALE_OK;
    if (l->dfd < 0 && (l->dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return log_fail(l, "open", LOG_DIR, errno);
    int dd = dup(l->dfd);
    DIR *d = dd < 0 ? NULL : fdopendir(dd);
    if (!d) {
        if (dd >= 0)
            close(dd);
        return log_fail(l, "opendir", LOG_DIR, errno);
    }
    rewinddir(d);  /* the duplicate shares dfd's position */
    uint64_t *nos = NULL;
    size_t n = 0, cap = 0;
    shale_status rc = SHALE_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t no = 0;
        const char *nm = de->d_name;
        if (strlen(nm) != 24 || strcmp(nm + 20, ".seg"))
            continue;
        bool ok = true;
        for (int i = 0; i < 20 && ok; i++)
            ok = nm[i] >= '0' && nm[i] <= '9' && no <= UINT64_MAX / 10 &&
                 (no = no * 10 + (uint64_t)(nm[i] - '0'), true);
        if (!ok || !no)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nn = realloc(nos, cap * sizeof *nn);
            if (!nn) {
                rc = SHALE_OOM();
                break;
            }
            nos = nn;
        }
        nos[n++] = no;
    }
    closedir(d);
    if (!rc && n > 1)
        qsort(nos, n, sizeof *nos, cmp_u64);
    for (size_t i = 0; i < n && !rc; i++) {
        int fd = -1, e = seg_open(l, nos[i], false, &fd);
        if (e == ENOENT)
            continue;  /* unlinked since the listing: every record in it was dead */
        if (e)
            rc = log_fail(l, "open", "segment", e);
        else if (!(rc = seg_add(l, nos[i], fd)))
            rc = scan(l, &l->segs[l->nsegs - 1]);
    }
    free(nos);
    if (!rc)
        rc = refresh(l);
    if (!rc) {
        l->loaded = true;
    } else {  /* start over next time */
        for (size_t i = 0; i < l->nsegs; i++)
            close(l->segs[i].fd);
        l->nsegs = l->nrecs = 0;
        l->win_fd = -1;
    }
    return rc;
}

/* ---- the lock, appends, syncs --------------------------------------- */

static shale_status lock_log(fs_log *l)
{
    while (flock(l->dfd, LOCK_EX) != 0)
        if (errno != EINTR)
            return log_fail(l, "flock", LOG_DIR, errno);
    return SHALE_OK;
}

static void unlock_log(fs_log *l)
{
    (void)flock(l->dfd, LOCK_UN);
}

static int write_at(int fd, const struct iovec *iov, int n, uint64_t off)
{
    struct iovec v[2];
    memcpy(v, iov, (size_t)n * sizeof *v);
    int i = 0;
    while (i < n) {
        ssize_t w = pwritev(fd, v + i, n - i, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        off += (uint64_t)w;
        while (i < n && (size_t)w >= v[i].iov_len) {
            w -= (ssize_t)v[i].iov_len;
            i++;
        }
        if (i < n) {
            v[i].iov_base = (uint8_t *)v[i].iov_base + w;
            v[i].iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Zeroes s from its size to a chunk past end, so the frames written up to
 * there change no metadata. */
static int prezero(seg *s, uint64_t end)
{
    static const uint8_t zeros[64 << 10];
    struct stat st;
    if (end <= s->size)
        return 0;
    if (fstat(s->fd, &st) == 0 && (uint64_t)st.st_size > s->size)
        s->size = (uint64_t)st.st_size;  /* another process zeroed ahead */
    if (end <= s->size)
        return 0;
    uint64_t target = (end / CHUNK + 1) * CHUNK;
    while (s->size < target) {
        size_t n = target - s->size < sizeof zeros ? (size_t)(target - s->size) : sizeof zeros;
        struct iovec v = {(void *)zeros, n};
        int e = write_at(s->fd, &v, 1, s->size);
        if (e)
            return e;
        s->size += n;
    }
    return 0;
}

/* Makes a segment the current one when the log has none, or when the next
 * frame (need bytes) would take the current one past SEG_BOUND.  Under the
 * lock.  The new segment's entry is made durable in the directory before
 * anything is written to it. */
static shale_status ensure_room(fs_log *l, uint64_t need, const char *key)
{
    if (l->nsegs && (l->segs[l->nsegs - 1].tail == 0 ||
                     l->segs[l->nsegs - 1].tail + need <= atomic_load(&g_seg_bound)))
        return SHALE_OK;
    uint64_t no = l->nsegs ? l->segs[l->nsegs - 1].no + 1 : 1;
    int fd = -1, e = seg_open(l, no, true, &fd);
    if (e)
        return log_fail(l, "create", "segment", e);
    if (!l->h.no_fsync && (e = objstore_fs_fsync(l->dfd, key, 2))) {
        close(fd);
        return l->h.sync_failed(l->h.ctx, "fsync(" LOG_DIR ")", key, e);
    }
    return seg_add(l, no, fd);
}

/* Appends one frame at the current segment's tail.  Under mu and the lock;
 * *segno, *end: where it went (for the sync). */
static shale_status append(fs_log *l, uint32_t kind, uint64_t id, const char *key,
                           const void *data, size_t len, uint64_t *segno, uint64_t *end)
{
    shale_status rc = ensure_room(l, HDR + len, key);
    if (rc)
        return rc;
    seg *s = &l->segs[l->nsegs - 1];
    uint8_t hdr[HDR];
    int64_t mtime = now_ms();
    put_u32le(hdr, MAGIC);
    put_u32le(hdr + 4, kind);
    put_u64le(hdr + 8, id);
    put_u64le(hdr + 16, len);
    put_u64le(hdr + 24, (uint64_t)mtime);
    put_u64le(hdr + 32, s->prev);
    uint64_t sum = frame_sum(hdr, data, len);
    put_u64le(hdr + 40, sum);
    int e = prezero(s, s->tail + HDR + len);
    struct iovec v[2] = {{hdr, HDR}, {(void *)data, len}};
    if (!e)
        e = write_at(s->fd, v, len ? 2 : 1, s->tail);
    if (e)
        return log_fail(l, "pwrite", key, e);  /* the tail stays: rewritten next time */
    if ((rc = apply(l, s, kind, id, s->tail + HDR, len, mtime)))
        return rc;
    s->tail += HDR + len;
    s->prev = sum;
    *segno = s->no;
    *end = s->tail;
    return SHALE_OK;
}

/* Makes segment segno durable up to end.  Called with mu held; drops it
 * around the fdatasync (on a descriptor of its own: the segment may be
 * unlinked meanwhile) and takes it again. */
static shale_status sync_seg(fs_log *l, uint64_t segno, uint64_t end, const char *key)
{
    seg *s = seg_of(l, segno);
    if (!s || s->synced >= end)
        return SHALE_OK;
    if (l->h.no_fsync) {
        s->synced = end;
        return SHALE_OK;
    }
    int fd = dup(s->fd);
    if (fd < 0)
        return log_fail(l, "dup", key, errno);
    pthread_mutex_unlock(&l->mu);
    int e = objstore_fs_fdatasync(fd, key);
    close(fd);
    pthread_mutex_lock(&l->mu);
    if (e)
        return l->h.sync_failed(l->h.ctx, "fdatasync(" LOG_DIR ")", key, e);
    if ((s = seg_of(l, segno)) && s->synced < end)
        s->synced = end;
    return SHALE_OK;
}

/* Unlinks the oldest segments whose puts are all dead (never the current
 * one), in order.  Under mu and the lock. */
static shale_status drop_dead(fs_log *l, const char *key)
{
    while (l->nsegs > 1 && l->segs[0].live == 0) {
        char name[32];
        seg_name(l->segs[0].no, name, sizeof name);
        if (unlinkat(l->dfd, name, 0) != 0 && errno != ENOENT)
            return log_fail(l, "unlink", name, errno);
        int e = l->h.no_fsync ? 0 : objstore_fs_fsync(l->dfd, key, 2);
        if (l->win_fd == l->segs[0].fd)
            l->win_fd = -1;
        close(l->segs[0].fd);
        memmove(&l->segs[0], &l->segs[1], (l->nsegs - 1) * sizeof *l->segs);
        l->nsegs--;
        if (e)
            return l->h.sync_failed(l->h.ctx, "fsync(" LOG_DIR ")", key, e);
    }
    return SHALE_OK;
}

/* A regular file holds key (older layout, or a first put). */
static bool regular_exists(fs_log *l, const char *key)
{
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/%s", l->h.root, key);
    return n > 0 && (size_t)n < sizeof path && lstat(path, &st) == 0;
}

/* ---- the API --------------------------------------------------------- */

shale_status fs_log_open(const fs_log_host *host, bool create, fs_log **out)
{
    fs_log *l = calloc(1, sizeof *l);
    size_t n = strlen(host->root) + sizeof "/" LOG_DIR;
    if (!l || !(l->dir = malloc(n))) {
        free(l);
        return SHALE_OOM();
    }
    snprintf(l->dir, n, "%s/" LOG_DIR, host->root);
    l->h = *host;
    l->dfd = -1;
    l->win_fd = -1;
    pthread_mutex_init(&l->mu, NULL);
    if (create) {
        int e = mkdir(l->dir, 0755) == 0 ? 0 : errno;
        if (!e && !host->no_fsync) {
            int rfd = open(host->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            e = rfd < 0 ? errno : objstore_fs_fsync(rfd, "", 2);
            if (rfd >= 0)
                close(rfd);
            if (e) {
                fs_log_close(l);
                return host->sync_failed(host->ctx, "fsync(root, new " LOG_DIR ")", "", e);
            }
        }
        if (e && e != EEXIST) {
            shale_status rc = log_fail(l, "mkdir", LOG_DIR, e);
            fs_log_close(l);
            return rc;
        }
    }
    (void)fs_log_on(l);
    *out = l;
    return SHALE_OK;
}

void fs_log_close(fs_log *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nsegs; i++)
        close(l->segs[i].fd);
    if (l->dfd >= 0)
        close(l->dfd);
    pthread_mutex_destroy(&l->mu);
    free(l->segs);
    free(l->recs);
    free(l->win);
    free(l->dir);
    free(l);
}

bool fs_log_on(fs_log *l)
{
    if (atomic_load(&l->on))
        return true;
    struct stat st;
    if (lstat(l->dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return false;
    atomic_store(&l->on, 1);
    return true;
}

shale_status fs_log_put(fs_log *l, const char *key, uint64_t id, const void *data, size_t len,
                        bool if_absent, bool *handled)
{
    *handled = false;
    if (len > FS_LOG_MAX_RECORD)
        return SHALE_OK;
    pthread_mutex_lock(&l->mu);
    if (if_absent && !l->claimed) {
        pthread_mutex_unlock(&l->mu);
        return SHALE_OK;
    }
    *handled = true;
    uint64_t segno = 0, end = 0;
    shale_status rc = l->h.check_writable(l->h.ctx, key);
    if (!rc)
        rc = load(l);
    if (!rc && !(rc = lock_log(l))) {
        bool hit = false;
        if (!(rc = refresh(l)) && if_absent) {
            (void)rec_find(l, id, &hit);
            if (hit || regular_exists(l, key))
                rc = SHALE_PRECONDITION_FAILED;
        }
        if (!rc)
            rc = append(l, KIND_PUT, id, key, data, len, &segno, &end);
        unlock_log(l);
    }
    if (!rc)
        rc = sync_seg(l, segno, end, key);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

shale_status fs_log_check_claim(fs_log *l, const char *key, uint64_t id)
{
    (void)key;  /* the regular file's existence is the caller's link */
    pthread_mutex_lock(&l->mu);
    shale_status rc = load(l);
    if (!rc && !(rc = lock_log(l))) {
        bool hit = false;
        if (!(rc = refresh(l))) {
            (void)rec_find(l, id, &hit);
            if (hit)
                rc = SHALE_PRECONDITION_FAILED;
            else
                l->claimed = true;
        }
        unlock_log(l);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

shale_status fs_log_find(fs_log *l, const char *key, uint64_t id, bool *found, int *fd,
                         uint64_t *base, uint64_t *size, int64_t *mtime_ms)
{
    *found = false;
    pthread_mutex_lock(&l->mu);
    shale_status rc = load(l);
    bool hit = false;
    size_t i = 0;
    if (!rc)
        i = rec_find(l, id, &hit);
    if (!rc && !hit && !(rc = refresh(l)))  /* another process may just have written it */
        i = rec_find(l, id, &hit);
    if (!rc && hit) {
        rec r = l->recs[i];
        rc = sync_seg(l, r.segno, r.off + r.len, key);
        seg *s = rc ? NULL : seg_of(l, r.segno);
        if (!rc && s) {
            if ((*fd = dup(s->fd)) < 0) {
                rc = log_fail(l, "dup", key, errno);
            } else {
                *found = true;
                *base = r.off;
                *size = r.len;
                *mtime_ms = r.mtime;
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

shale_status fs_log_del(fs_log *l, const char *key, uint64_t id)
{
    pthread_mutex_lock(&l->mu);
    uint64_t segno = 0, end = 0;
    shale_status rc = l->h.check_writable(l->h.ctx, key);
    if (!rc)
        rc = load(l);
    if (!rc && !(rc = lock_log(l))) {
        bool hit = false;
        if (!(rc = refresh(l))) {
            (void)rec_find(l, id, &hit);
            if (hit)
                rc = append(l, KIND_TOMB, id, key, NULL, 0, &segno, &end);
        }
        if (!rc)
            rc = drop_dead(l, key);
        unlock_log(l);
    }
    if (!rc && segno)
        rc = sync_seg(l, segno, end, key);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* The live records whose keys start with prefix and sort after cursor
 * (NULL: from the start), at most max, in key order, into a new array. */
static shale_status log_list(fs_log *l, const char *prefix, const char *cursor, size_t max,
                             shale_objinfo **items, size_t *count, bool *more)
{
    *items = NULL;
    *count = 0;
    *more = false;
    pthread_mutex_lock(&l->mu);
    shale_status rc = load(l);
    if (!rc)
        rc = refresh(l);
    /* Only durable records are shown: sync what is not known to be. */
    for (size_t i = 0; !rc && i < l->nsegs; i++)
        if (l->segs[i].synced < l->segs[i].tail)
            rc = sync_seg(l, l->segs[i].no, l->segs[i].tail, prefix);
    size_t plen = strlen(prefix), n = 0, cap = 0;
    shale_objinfo *out = NULL;
    for (size_t i = 0; !rc && i < l->nrecs; i++) {
        char key[32];
        snprintf(key, sizeof key, "wal/%020llu.sst", (unsigned long long)l->recs[i].id);
        seg *s = seg_of(l, l->recs[i].segno);
        if (strncmp(key, prefix, plen) || (cursor && strcmp(key, cursor) <= 0) || !s ||
            l->recs[i].off + l->recs[i].len > s->synced)
            continue;
        if (n == max) {
            *more = true;
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            shale_objinfo *no = realloc(out, nc * sizeof *no);
            if (!no) {
                rc = SHALE_OOM();
                break;
            }
            out = no;
            cap = nc;
        }
        if (!(out[n].key = xstrdup(key))) {
            rc = SHALE_OOM();
            break;
        }
        out[n].size = l->recs[i].len;
        out[n].mtime_ms = l->recs[i].mtime;
        n++;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(out[i].key);
        free(out);
        return rc;
    }
    *items = out;
    *count = n;
    return SHALE_OK;
}

shale_status fs_log_merge_list(fs_log *l, const char *prefix, const char *cursor, size_t max,
                               shale_objinfo **items, size_t *count, size_t *cap, bool *more)
{
    shale_objinfo *li = NULL, *out = NULL, *fi = *items;
    size_t ln = 0, n = 0, i = 0, j = 0, fn = *count;
    bool lmore = false;
    shale_status rc = log_list(l, prefix, cursor, max, &li, &ln, &lmore);
    if (rc || !ln)
        return rc;
    if (!(out = malloc((fn + ln) * sizeof *out))) {
        for (size_t k = 0; k < ln; k++)
            free(li[k].key);
        free(li);
        return SHALE_OOM();
    }
    /* Both lists hold the first max keys after the cursor, so the first
     * max of the merge are the page; a key held both ways shows once, as
     * the record (what get reads). */
    while (i < fn || j < ln) {
        int c = i == fn ? 1 : j == ln ? -1 : strcmp(fi[i].key, li[j].key);
        if (c == 0)
            free(fi[i++].key);
        else if (c < 0 && n < max)
            out[n++] = fi[i++];
        else if (c > 0 && n < max)
            out[n++] = li[j++];
        else
            free(c < 0 ? fi[i++].key : li[j++].key);  /* past this page */
    }
    *more = *more || lmore || fn + ln > n;
    free(fi);
    free(li);
    *items = out;
    *count = n;
    *cap = n;
    return SHALE_OK;
}
