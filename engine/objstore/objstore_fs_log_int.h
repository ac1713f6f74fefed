/*
 * objstore_fs_log_int.h -- what the WAL log mode's files share
 * (objstore_fs_log.c: the API, appends and syncs; objstore_fs_log_index.c:
 * scanning segments into the index; objstore_fs_log_zero.c: zeroed space
 * -- the pre-zeroing of the current segment and the spare segment made
 * ahead on a thread of its own).  Not for anyone else: objstore_fs.c uses
 * objstore_fs_log.h.  The layout is described in objstore_fs_log.c.
 */
#ifndef SHALE_OBJSTORE_FS_LOG_INT_H
#define SHALE_OBJSTORE_FS_LOG_INT_H

#include "objstore/objstore_fs_log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define LOG_DIR ".wal-log"
#define MAGIC 0x314c5753u
#define HDR 48u
#define KIND_PUT 1u
#define KIND_TOMB 2u
#define KIND_SEAL 3u   /* the last frame of a segment a handle rotated away from */
#define SEG_BOUND_DEFAULT (64ull << 20)
#define CHUNK (1ull << 20)
#define WINDOW (256u << 10)

typedef struct seg {
    uint64_t no;
    int fd;
    uint64_t tail;     /* end of the last valid frame scanned */
    uint64_t prev;     /* that frame's sum (0: none yet) */
    uint64_t size;     /* file size as last seen: [tail, size) pre-zeroed */
    uint64_t synced;   /* [0, synced) known durable */
    size_t live;       /* live put records held here */
    bool sealed;       /* a seal frame was read or written: no frame follows */
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
    /* The spare (objstore_fs_log_zero.c): an unnamed file (O_TMPFILE) in
     * the log directory, zeroed and made durable by the zeroer thread,
     * linked as the next segment when the current one runs out of zeroed
     * space.  Only a handle that claimed the log (the writer) asks for one. */
    pthread_t zt;
    bool zt_started;
    pthread_cond_t zcv;       /* the zeroer waits on it for work or stop */
    _Atomic int zstop;        /* fs_log_close: stop, abandon a spare half made */
    uint64_t spare_want;      /* size asked for (0: nothing asked) */
    bool zbusy;               /* the zeroer is making a spare */
    bool spare_off;           /* spares do not work here: the current segment grows */
    int spare_fd;             /* -1: none ready */
    uint64_t spare_size;
    uint64_t spare_defer;     /* bytes this handle appends before it may ask (fsl_spare_defer) */
};

/* The rotation bound (objstore_fs_log_set_segment_bytes). */
uint64_t fsl_seg_bound(void);

/* Reports errno e of call on what as a shale_status with a message. */
shale_status fsl_fail(fs_log *l, const char *call, const char *what, int e);
void fsl_seg_name(uint64_t no, char *buf, size_t n);
uint64_t fsl_frame_sum(const uint8_t *hdr, const void *payload, uint64_t len);

/* ---- the index (objstore_fs_log_index.c); all under mu ---------------- */

/* Index of id in recs, or where it would go (*hit false). */
size_t fsl_rec_find(fs_log *l, uint64_t id, bool *hit);
seg *fsl_seg_of(fs_log *l, uint64_t no);
/* Applies a frame of s (kind, id, payload at off, len bytes) to the index. */
shale_status fsl_apply(fs_log *l, seg *s, uint32_t kind, uint64_t id, uint64_t off, uint64_t len,
                       int64_t mtime);
/* Opens segment no (create: O_EXCL): 0, ENOENT, or an errno. */
int fsl_seg_open(fs_log *l, uint64_t no, bool create, int *fd);
/* Under mu and the lock: writes a seal frame at s's tail (no sync: it only
 * informs live handles, see objstore_fs_log_index.c).  0 or an errno. */
int fsl_seal(fs_log *l, seg *s);
/* Adds segment no (fd, now owned by the index) as the newest. */
shale_status fsl_seg_add(fs_log *l, uint64_t no, int fd);
/* Reads what other processes appended (under the lock for an append). */
shale_status fsl_refresh(fs_log *l);
/* Builds the index at first use. */
shale_status fsl_load(fs_log *l);

/* ---- zeroed space (objstore_fs_log_zero.c) ----------------------------- */

/* pwritev of all of iov (n <= 4) at off: 0 or an errno (EINVAL past 4). */
int fsl_write_at(int fd, const struct iovec *iov, int n, uint64_t off);
/* Zeroes s from its size to a chunk past end (under the lock), so the frames
 * written up to there change no metadata: 0 or an errno. */
int fsl_prezero(seg *s, uint64_t end);
/* Under mu and the lock: links the spare as segment no if one is ready and
 * holds need bytes: 0 and *fd (its descriptor, now the caller's); ENOENT:
 * none (the caller creates the segment); another errno: the link failed
 * (spares are off for this handle from now on). */
int fsl_spare_link(fs_log *l, uint64_t no, uint64_t need, int *fd);
/* Under mu, for the writer after an append of appended bytes (0: at its
 * claim): asks the zeroer for the next spare once the current segment is
 * half used (and none is ready or being made), and once the handle has
 * appended what fsl_spare_defer set. */
void fsl_spare_maybe_want(fs_log *l, uint64_t appended);
/* Under mu, at the claim of a log whose segment is already in use (a
 * reopened writer, a split's takeover): defers the first ask until this
 * handle has appended half the zeroed room left, at least 256 KiB and at
 * most 1 MiB. */
void fsl_spare_defer(fs_log *l);
/* fs_log_open and fs_log_close: set up, and stop the zeroer (without mu). */
void fsl_zero_init(fs_log *l);
void fsl_zero_stop(fs_log *l);

#endif
