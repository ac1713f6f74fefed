/*
 * objstore_fs_log_zero.c -- zeroed space for the WAL log's appends.
 *
 * A record's fdatasync is cheap (data only: ~0.3 ms here) when the frame
 * lands in space that is already allocated, zeroed and part of the file's
 * durable size.  When it is not, the same fdatasync also writes the
 * zeroes and commits the new size: measured 2.4-7.3 ms, 5-20x a plain
 * one, and every put of the group waiting on it (32 at 32 threads) pays
 * it -- that was the durable-put p99 at 32 threads (docs/benchmarks.md).
 *
 * So the writer's appends get their space from a spare: an unnamed file
 * (O_TMPFILE) in the log directory that a thread of the handle's own
 * zeroes in pieces and fdatasyncs, off the ack path.  When the current
 * segment has no zeroed space left for a frame, the spare is linked as the
 * next segment (linkat, which fails if the name exists, so the segment
 * is still created at most once) and the directory fsynced -- once per
 * segment, as a segment's creation always cost.  Its zeroes are in another
 * inode, so they are never written back by an append's fdatasync of the
 * current segment.  Spares double in size from 2 MiB up to the rotation
 * bound, so a small WAL does not zero 64 MiB; a handle asks for the next
 * one when its current segment is half used (a handle that claims a log
 * already past half waits for its own appends: fsl_spare_defer).  A
 * crash leaves no spare behind: an unnamed file is freed with its last
 * descriptor (or by the file system's recovery).
 *
 * Where spares do not work (no O_TMPFILE, no /proc/self/fd for linkat),
 * and for handles that are not the writer, the current segment grows as
 * before: fsl_prezero zeroes the next 1 MiB chunk under the lock, and the
 * append's fdatasync makes it durable.
 */
#include "objstore/objstore_fs_log_int.h"
#include "objstore/objstore_int.h"
#include "util/iotrace.h"
#include "util/status_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIECE (256u << 10)   /* zeroes written at a time */
#define BURST (2ull << 20)   /* zeroes written back at a time (make_spare) */

static const uint8_t zeros[64 << 10];
static _Atomic uint64_t g_spares_linked;   /* tests: objstore_int.h */
static _Atomic uint64_t g_spare_writebacks;
static _Atomic uint64_t g_spares_asked;

uint64_t objstore_fs_log_spares_linked(void)
{
    return atomic_load(&g_spares_linked);
}

uint64_t objstore_fs_log_spare_writebacks(void)
{
    return atomic_load(&g_spare_writebacks);
}

uint64_t objstore_fs_log_spares_asked(void)
{
    return atomic_load(&g_spares_asked);
}

int fsl_write_at(int fd, const struct iovec *iov, int n, uint64_t off)
{
    struct iovec v[4] = {{0}};
    if (n < 0 || n > 4)
        return EINVAL;  /* callers pass at most 4 pieces: a header and a payload, or zeros */
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

/* Writes n (<= PIECE) zero bytes at off. */
static int write_zeros(int fd, uint64_t off, size_t n)
{
    struct iovec v[4];
    int k = 0;
    while (n) {
        size_t m = n < sizeof zeros ? n : sizeof zeros;
        v[k++] = (struct iovec){(void *)zeros, m};
        n -= m;
    }
    return fsl_write_at(fd, v, k, off);
}

int fsl_prezero(seg *s, uint64_t end)
{
    struct stat st;
    if (end <= s->size)
        return 0;
    if (fstat(s->fd, &st) == 0 && (uint64_t)st.st_size > s->size)
        s->size = (uint64_t)st.st_size;  /* another process zeroed ahead */
    if (end <= s->size)
        return 0;
    uint64_t target = (end / CHUNK + 1) * CHUNK;
    while (s->size < target) {
        size_t n = target - s->size < PIECE ? (size_t)(target - s->size) : PIECE;
        int e = write_zeros(s->fd, s->size, n);
        if (e)
            return e;
        s->size += n;
    }
    return 0;
}

/* Makes a spare of size bytes: 0 and *out, or an errno (*sync_err: it was
 * the fdatasync).  Without mu.  The zeroes are written back a BURST at a
 * time, so no more than a burst is ever dirty.
 *
 * Why bursts and not a trickle: on this disk every byte written adds to
 * the next cache flush, and the next flush is a record's fdatasync.  Each
 * 256 KiB piece written back on its own slowed the one or two appends
 * whose fdatasync it overlapped by ~0.3 ms: 8 pieces per 2 MiB spare, so
 * 8-13 consecutive slow puts per spare, 18-22 of a 1-thread run's 80
 * slowest (the p99) in SHALE_IOTRACE timelines (docs/benchmarks.md).  One
 * write-back per 2 MiB slows one or two appends by ~2.5 ms instead: the
 * same disk time, on fewer puts. */
static int make_spare(fs_log *l, uint64_t size, int *out, bool *sync_err)
{
    *sync_err = false;
    int fd = openat(l->dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int e = 0;
    uint64_t wb = 0;   /* [0, wb) written back */
    for (uint64_t off = 0; off < size && !e; off += PIECE) {
        if (atomic_load(&l->zstop)) {
            e = ECANCELED;
            break;
        }
        size_t n = size - off < PIECE ? (size_t)(size - off) : PIECE;
        uint64_t t0 = iotrace_now();
        e = write_zeros(fd, off, n);
        iotrace_ev('Z', t0);
        if (e || l->h.no_fsync || (off + n - wb < BURST && off + n < size))
            continue;
        t0 = iotrace_now();
        atomic_fetch_add(&g_spare_writebacks, 1);
        if (sync_file_range(fd, (off_t)wb, (off_t)(off + n - wb),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER) != 0 &&
            errno != ENOSYS && errno != EINVAL)
            e = errno;
        iotrace_ev('R', t0);
        wb = off + n;
    }
    uint64_t t0 = iotrace_now();
    if (!e && !l->h.no_fsync && (e = objstore_fs_fdatasync(fd, LOG_DIR "/spare")))
        *sync_err = true;
    iotrace_ev('T', t0);
    if (e) {
        close(fd);
        return e;
    }
    *out = fd;
    return 0;
}

static void *zeroer(void *arg)
{
    fs_log *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!atomic_load(&l->zstop) && !l->spare_want)
            pthread_cond_wait(&l->zcv, &l->mu);
        if (atomic_load(&l->zstop))
            break;
        uint64_t size = l->spare_want;
        l->spare_want = 0;
        l->zbusy = true;
        pthread_mutex_unlock(&l->mu);
        int fd = -1;
        bool sync_err = false;
        int e = make_spare(l, size, &fd, &sync_err);
        pthread_mutex_lock(&l->mu);
        l->zbusy = false;
        if (!e) {
            l->spare_fd = fd;
            l->spare_size = size;
        } else if (sync_err) {
            /* Sticky like every failed sync of the store: nothing written
             * after it is acknowledged (the spare itself held no record). */
            (void)l->h.sync_failed(l->h.ctx, "fdatasync(" LOG_DIR " spare)", LOG_DIR, e);
            l->spare_off = true;
        } else if (e != ECANCELED) {
            l->spare_off = true;  /* no O_TMPFILE here, or no room: grow in place */
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Why a claim defers the spare: a writer that claims a log whose current
 * segment is half used -- or has no zeroed room at all, as the empty
 * segment a dead rotation leaves without a spare ready -- asked for its
 * spare at once, so the spare was zeroed and written back during its
 * first writes, and freed (an unlinked file's blocks, 1-3 ms) at its
 * close.  For a split's takeover, which appends a fence and a tombstone
 * and closes, that was 2 MiB written back across the fenced window (five
 * fsyncs beside it slowed from ~0.2 to ~1.4 ms each) and the close's
 * 1-3 ms, in a 15 ms split, for no record ever written to the spare; and
 * it happened to the 500 MB parent of bench --split-bytes-mb, whose load
 * ended on a dead rotation, and not to the 50 MB one, whose segment was a
 * whole zeroed spare (strace of both).  So a claim waits for half the
 * zeroed room left, at least SPARE_MIN_LEAD and at most SPARE_LEAD of the
 * handle's own appends.  With no room left, the appends grow the segment
 * in place by CHUNK (as every handle without a spare does) and the spare
 * is asked SPARE_MIN_LEAD into that chunk, with the rest of it as its
 * lead; a handle with traffic asks as before, half the room ahead. */
#define SPARE_LEAD (1ull << 20)
#define SPARE_MIN_LEAD (CHUNK / 4)

void fsl_spare_defer(fs_log *l)
{
    l->spare_defer = 0;
    if (!l->nsegs)
        return;
    const seg *s = &l->segs[l->nsegs - 1];
    uint64_t bound = fsl_seg_bound(), room = s->size < bound ? s->size : bound;
    uint64_t left = room > s->tail ? room - s->tail : 0;
    uint64_t d = left / 2;
    if (d < SPARE_MIN_LEAD)
        d = SPARE_MIN_LEAD;
    l->spare_defer = d < SPARE_LEAD ? d : SPARE_LEAD;
}

void fsl_spare_maybe_want(fs_log *l, uint64_t appended)
{
    l->spare_defer = l->spare_defer > appended ? l->spare_defer - appended : 0;
    if (!l->claimed || l->spare_off || l->spare_fd >= 0 || l->zbusy || l->spare_want ||
        !l->nsegs || l->h.no_fsync || l->spare_defer)
        return;
    const seg *s = &l->segs[l->nsegs - 1];
    uint64_t bound = fsl_seg_bound(), room = s->size < bound ? s->size : bound;
    if (s->tail < room / 2)
        return;
    uint64_t size = s->size * 2 < 2 * CHUNK ? 2 * CHUNK : s->size * 2;
    if (size > bound)
        size = bound;
    size = (size + 4095) & ~4095ull;
    if (!l->zt_started) {
        if (pthread_create(&l->zt, NULL, zeroer, l) != 0) {
            l->spare_off = true;
            return;
        }
        l->zt_started = true;
    }
    l->spare_want = size;
    atomic_fetch_add(&g_spares_asked, 1);
    pthread_cond_signal(&l->zcv);
}

int fsl_spare_link(fs_log *l, uint64_t no, uint64_t need, int *fd)
{
    if (l->spare_fd < 0 || need > l->spare_size)
        return ENOENT;
    char proc[64], name[32];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", l->spare_fd);
    fsl_seg_name(no, name, sizeof name);
    int e = linkat(AT_FDCWD, proc, l->dfd, name, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
    if (e) {
        close(l->spare_fd);
        l->spare_off = true;
    } else {
        *fd = l->spare_fd;
        atomic_fetch_add(&g_spares_linked, 1);
    }
    l->spare_fd = -1;
    return e;
}

void fsl_zero_init(fs_log *l)
{
    pthread_cond_init(&l->zcv, NULL);
    l->spare_fd = -1;
}

void fsl_zero_stop(fs_log *l)
{
    pthread_mutex_lock(&l->mu);
    atomic_store(&l->zstop, 1);
    pthread_cond_signal(&l->zcv);
    pthread_mutex_unlock(&l->mu);
    if (l->zt_started)
        pthread_join(l->zt, NULL);
    l->zt_started = false;
    if (l->spare_fd >= 0)
        close(l->spare_fd);
    l->spare_fd = -1;
    pthread_cond_destroy(&l->zcv);
}
