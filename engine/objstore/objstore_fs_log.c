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
 *   0  u32 magic "SWL1" (0x314c5753)   4  u32 kind (1 put, 2 tombstone, 3 seal)
 *   8  u64 id (of wal/<id:020>.sst)    16 u64 payload length (0: tombstone)
 *   24 u64 write time, ms since epoch  32 u64 prev: sum of the previous
 *   40 u64 sum = XXH3_64(payload, seed = XXH3_64(bytes 0..39))   frame, 0 first
 *   48 payload: the object's bytes
 *
 * all little-endian, frames back to back from offset 0.  A scan stops at
 * the first frame whose magic, kind, length, prev or sum is wrong: that is
 * the tail, where the next frame is written.  Ahead of the tail the file is
 * pre-zeroed, so a record's fdatasync flushes data only: the writer's
 * segments are spares zeroed and synced on a thread of their own and linked
 * as the next segment when the current one's zeroed space runs out; other
 * handles grow the current segment by 1 MiB chunks under the lock
 * (objstore_fs_log_zero.c has why and how).  Past 64 MiB the next frame
 * goes to a new segment in any case, linked or created O_EXCL, with a
 * directory fsync (once per segment).  Records of one id: the last put
 * wins; a tombstone deletes.  Segments are unlinked oldest first, and only
 * once every put in them is dead, so a tombstone is never dropped while a
 * record it covers survives.  A delete that leaves nothing live rotates away
 * from a current segment past 4 MiB (drop_dead), so an open never reads
 * the dead frames of a log the writer emptied after its flushes.  Every
 * rotation seals the segment it leaves first (a last frame, not synced),
 * and no segment is unlinked unsealed, so a handle left behind by other
 * handles' rotations knows it (fsl_refresh) without a check per append.
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
#include "objstore/objstore_fs_log_int.h"
#include "objstore/objstore_int.h"
#include "util/coding.h"
#include "util/iotrace.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The rotation bound, and its test hook (objstore_int.h). */
static _Atomic uint64_t g_seg_bound = SEG_BOUND_DEFAULT;

void objstore_fs_log_set_segment_bytes(uint64_t n)
{
    atomic_store(&g_seg_bound, n ? n : SEG_BOUND_DEFAULT);
}

uint64_t fsl_seg_bound(void)
{
    return atomic_load(&g_seg_bound);
}

/* ---- the lock, appends, syncs --------------------------------------- */

static shale_status lock_log(fs_log *l)
{
    uint64_t t0 = iotrace_now();
    while (flock(l->dfd, LOCK_EX) != 0)
        if (errno != EINTR)
            return fsl_fail(l, "flock", LOG_DIR, errno);
    iotrace_ev('K', t0);
    return SHALE_OK;
}

static void unlock_log(fs_log *l)
{
    (void)flock(l->dfd, LOCK_UN);
}
/* Makes a segment the current one when the log has none, when the next
 * frame (need bytes) would take the current one past the rotation bound,
 * or when it would leave the current one's zeroed space and a spare is
 * ready (objstore_fs_log_zero.c).  Under mu and the lock.  The new
 * segment's entry is made durable in the directory before anything is
 * written to it.  A segment with no frame yet is never left. */
static shale_status new_segment(fs_log *l, uint64_t need, const char *key);
static void rotate_hook(int step);

static shale_status ensure_room(fs_log *l, uint64_t need, const char *key)
{
    seg *cur = l->nsegs ? &l->segs[l->nsegs - 1] : NULL;
    if (cur && !cur->sealed && (cur->tail == 0 ||
                (cur->tail + need <= fsl_seg_bound() &&
                 (cur->tail + need <= cur->size || l->spare_fd < 0 || need > l->spare_size))))
        return SHALE_OK;
    return new_segment(l, need, key);
}

/* Makes segment (current + 1) the current one: the spare linked if one
 * holds need bytes, else created O_EXCL; its entry durable in the
 * directory before anything is written to it or the caller goes on. */
static shale_status new_segment(fs_log *l, uint64_t need, const char *key)
{
    seg *cur = l->nsegs ? &l->segs[l->nsegs - 1] : NULL;
    uint64_t no = cur ? cur->no + 1 : 1;
    uint64_t t0 = iotrace_now();
    /* Sealed first, so a handle that never sees the new segment (it is
     * unlinked before that handle looks) knows it was left behind.  A seal
     * that cannot be written only keeps this segment from being unlinked
     * (drop_dead seals it again first). */
    if (cur && !cur->sealed)
        (void)fsl_seal(l, cur);
    rotate_hook(3);  /* sealed, the new segment not made yet */
    int fd = -1, e = fsl_spare_link(l, no, need, &fd);
    if (e && e != ENOENT && e != EEXIST)
        e = ENOENT;  /* the spare could not be linked: create the segment as before */
    if (e == ENOENT && (e = fsl_seg_open(l, no, true, &fd)))
        return fsl_fail(l, "create", "segment", e);
    if (e)
        return fsl_fail(l, "link", "spare segment", e);
    if (!l->h.no_fsync && (e = objstore_fs_fsync(l->dfd, key, 2))) {
        close(fd);
        return l->h.sync_failed(l->h.ctx, "fsync(" LOG_DIR ")", key, e);
    }
    iotrace_ev('N', t0);
    return fsl_seg_add(l, no, fd);
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
    uint64_t sum = fsl_frame_sum(hdr, data, len);
    put_u64le(hdr + 40, sum);
    uint64_t t0 = iotrace_now();
    int e = fsl_prezero(s, s->tail + HDR + len);
    struct iovec v[2] = {{hdr, HDR}, {(void *)data, len}};
    if (!e)
        e = fsl_write_at(s->fd, v, len ? 2 : 1, s->tail);
    iotrace_ev('A', t0);
    if (e)
        return fsl_fail(l, "pwrite", key, e);  /* the tail stays: rewritten next time */
    if ((rc = fsl_apply(l, s, kind, id, s->tail + HDR, len, mtime)))
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
    seg *s = fsl_seg_of(l, segno);
    if (!s || s->synced >= end)
        return SHALE_OK;
    if (l->h.no_fsync) {
        s->synced = end;
        return SHALE_OK;
    }
    int fd = dup(s->fd);
    if (fd < 0)
        return fsl_fail(l, "dup", key, errno);
    pthread_mutex_unlock(&l->mu);
    uint64_t t0 = iotrace_now();
    int e = objstore_fs_fdatasync(fd, key);
    iotrace_ev('D', t0);
    close(fd);
    pthread_mutex_lock(&l->mu);
    if (e)
        return l->h.sync_failed(l->h.ctx, "fdatasync(" LOG_DIR ")", key, e);
    if ((s = fsl_seg_of(l, segno)) && s->synced < end)
        s->synced = end;
    return SHALE_OK;
}

/* Tests only (objstore_int.h): called at the steps of a dead rotation. */
static void (*_Atomic g_rotate_hook)(int step);

void objstore_fs_log_set_rotate_hook(void (*fn)(int step))
{
    atomic_store(&g_rotate_hook, fn);
}

static void rotate_hook(int step)
{
    void (*fn)(int) = atomic_load(&g_rotate_hook);
    if (fn)
        fn(step);
}

/* Unlinks the oldest segments whose puts are all dead (never the current
 * one), in order.  Then, if no record is live at all and the current
 * segment holds more than a sixteenth of the rotation bound (4 MiB), a
 * dead rotation: a new current segment is made durable, and the old one,
 * now the oldest, is unlinked like the others -- so the next open's scan
 * reads an empty segment instead of up to 64 MiB of dead frames.  Sound
 * because nothing survives that its tombstones could still cover: every
 * older segment is gone first (each unlink made durable before the next),
 * and a crash between the steps leaves either the old segment (read
 * again, all dead, unlinked at the next delete) or the new empty one; the
 * log is never left without a segment, so numbers never restart.  Under
 * mu and the lock. */
static shale_status drop_dead(fs_log *l, const char *key)
{
    for (bool rotated = false;; rotated = true) {
        shale_status rc = SHALE_OK;
        while (l->nsegs > 1 && l->segs[0].live == 0 && !rc) {
            /* Never unlinked unsealed (a segment an older version left, or
             * whose seal failed): a handle left on it must see the seal. */
            if (!l->segs[0].sealed && fsl_seal(l, &l->segs[0]))
                break;
            char name[32];
            fsl_seg_name(l->segs[0].no, name, sizeof name);
            if (unlinkat(l->dfd, name, 0) != 0 && errno != ENOENT)
                return fsl_fail(l, "unlink", name, errno);
            int e = l->h.no_fsync ? 0 : objstore_fs_fsync(l->dfd, key, 2);
            if (l->win_fd == l->segs[0].fd)
                l->win_fd = -1;
            close(l->segs[0].fd);
            memmove(&l->segs[0], &l->segs[1], (l->nsegs - 1) * sizeof *l->segs);
            l->nsegs--;
            if (e)
                rc = l->h.sync_failed(l->h.ctx, "fsync(" LOG_DIR ")", key, e);
        }
        if (rc || rotated || l->nrecs || !l->nsegs ||
            l->segs[l->nsegs - 1].tail <= fsl_seg_bound() / 16)
            return rc;
        rotate_hook(1);  /* the tombstones written, nothing rotated yet */
        if ((rc = new_segment(l, HDR, key)))
            return rc;
        rotate_hook(2);  /* the new segment durable, the old one still there */
    }
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
    fsl_zero_init(l);
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
            shale_status rc = fsl_fail(l, "mkdir", LOG_DIR, e);
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
    fsl_zero_stop(l);
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
    uint64_t t0 = iotrace_now();
    pthread_mutex_lock(&l->mu);
    if (if_absent && !l->claimed) {
        pthread_mutex_unlock(&l->mu);
        return SHALE_OK;
    }
    *handled = true;
    iotrace_ev('M', t0);
    uint64_t segno = 0, end = 0;
    shale_status rc = l->h.check_writable(l->h.ctx, key);
    if (!rc)
        rc = fsl_load(l);
    if (!rc && !(rc = lock_log(l))) {
        bool hit = false;
        if (!(rc = fsl_refresh(l)) && if_absent) {
            (void)fsl_rec_find(l, id, &hit);
            if (hit || regular_exists(l, key))
                rc = SHALE_PRECONDITION_FAILED;
        }
        if (!rc)
            rc = append(l, KIND_PUT, id, key, data, len, &segno, &end);
        unlock_log(l);
    }
    if (!rc)
        rc = sync_seg(l, segno, end, key);
    if (!rc)
        fsl_spare_maybe_want(l, HDR + len);   /* the frame's bytes */
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* The writer's first segment, made at its claim (the open's fence) rather
 * than at its first put: created and its first chunk zeroed and made
 * durable, so that the first put's fdatasync writes data only.  Under mu
 * and the lock, with claimed set. */
static shale_status first_room(fs_log *l, const char *key)
{
    if (l->nsegs) {
        /* A reopened log may be half used already: its spare waits for
         * this handle's own appends (a split's takeover makes two). */
        fsl_spare_defer(l);
        fsl_spare_maybe_want(l, 0);
        return SHALE_OK;
    }
    shale_status rc = ensure_room(l, HDR, key);
    if (rc)
        return rc;
    seg *s = &l->segs[l->nsegs - 1];
    char what[64];
    snprintf(what, sizeof what, LOG_DIR "/%020llu.seg", (unsigned long long)s->no);
    int e = fsl_prezero(s, HDR);
    if (e)
        return fsl_fail(l, "pwrite", what, e);
    if (!l->h.no_fsync && (e = objstore_fs_fdatasync(s->fd, what)))
        return l->h.sync_failed(l->h.ctx, "fdatasync", what, e);
    return SHALE_OK;
}

shale_status fs_log_check_claim(fs_log *l, const char *key, uint64_t id)
{
    pthread_mutex_lock(&l->mu);
    shale_status rc = fsl_load(l);
    if (!rc && !(rc = lock_log(l))) {
        bool hit = false;
        if (!(rc = fsl_refresh(l))) {
            (void)fsl_rec_find(l, id, &hit);
            if (hit)
                rc = SHALE_PRECONDITION_FAILED;
            else if ((l->claimed = true), (rc = first_room(l, key)))
                l->claimed = false;
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
    shale_status rc = fsl_load(l);
    bool hit = false;
    size_t i = 0;
    if (!rc)
        i = fsl_rec_find(l, id, &hit);
    if (!rc && !hit && !(rc = fsl_refresh(l)))  /* another process may just have written it */
        i = fsl_rec_find(l, id, &hit);
    if (!rc && hit) {
        rec r = l->recs[i];
        rc = sync_seg(l, r.segno, r.off + r.len, key);
        seg *s = rc ? NULL : fsl_seg_of(l, r.segno);
        if (!rc && s) {
            if ((*fd = dup(s->fd)) < 0) {
                rc = fsl_fail(l, "dup", key, errno);
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
        rc = fsl_load(l);
    if (!rc && !(rc = lock_log(l))) {
        bool hit = false;
        if (!(rc = fsl_refresh(l))) {
            (void)fsl_rec_find(l, id, &hit);
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

shale_status fs_log_del_many(fs_log *l, const char *const *keys, const uint64_t *ids, size_t n)
{
    if (!n)
        return SHALE_OK;
    /* Where the tombstones went: each segment the run wrote to, synced up
     * to its last tombstone (one, unless the run crossed a segment's end). */
    struct { uint64_t segno, end; } *to = calloc(n, sizeof *to);
    if (!to)
        return SHALE_OOM();
    size_t nto = 0;
    pthread_mutex_lock(&l->mu);
    shale_status rc = l->h.check_writable(l->h.ctx, keys[0]);
    if (!rc)
        rc = fsl_load(l);
    if (!rc && !(rc = lock_log(l))) {
        if (!(rc = fsl_refresh(l)))
            for (size_t i = 0; i < n && !rc; i++) {
                bool hit = false;
                uint64_t sg = 0, e = 0;
                (void)fsl_rec_find(l, ids[i], &hit);
                if (!hit || (rc = append(l, KIND_TOMB, ids[i], keys[i], NULL, 0, &sg, &e)))
                    continue;
                if (!nto || to[nto - 1].segno != sg)
                    nto++;
                to[nto - 1].segno = sg;
                to[nto - 1].end = e;
            }
        if (!rc)
            rc = drop_dead(l, keys[0]);
        unlock_log(l);
    }
    for (size_t i = 0; i < nto && !rc; i++)
        rc = sync_seg(l, to[i].segno, to[i].end, keys[n - 1]);
    pthread_mutex_unlock(&l->mu);
    free(to);
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
    shale_status rc = fsl_load(l);
    if (!rc)
        rc = fsl_refresh(l);
    /* Only durable records are shown: sync what is not known to be. */
    for (size_t i = 0; !rc && i < l->nsegs; i++)
        if (l->segs[i].synced < l->segs[i].tail)
            rc = sync_seg(l, l->segs[i].no, l->segs[i].tail, prefix);
    size_t plen = strlen(prefix), n = 0, cap = 0;
    shale_objinfo *out = NULL;
    for (size_t i = 0; !rc && i < l->nrecs; i++) {
        char key[32];
        snprintf(key, sizeof key, "wal/%020llu.sst", (unsigned long long)l->recs[i].id);
        seg *s = fsl_seg_of(l, l->recs[i].segno);
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
