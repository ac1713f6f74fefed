/*
 * objstore_fs_log_index.c -- the WAL log's index: scanning segments
 * (frames checked by magic, kind, length, prev and sum, up to the first that
 * fails: the tail) into the records by id, and following what other
 * processes append.  The layout is in objstore_fs_log.c; what the files of
 * the log mode share is objstore_fs_log_int.h.
 */
#include "objstore/objstore_fs_log_int.h"
#include "util/coding.h"
#include "util/status_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

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

shale_status fsl_fail(fs_log *l, const char *call, const char *what, int e)
{
    shale_status c = e == ENOENT ? SHALE_NOT_FOUND
                     : e == EACCES || e == EPERM || e == EROFS ? SHALE_UNAUTHORIZED
                     : e == ENOMEM ? SHALE_NO_MEMORY : SHALE_IO;
    if (c == SHALE_NOT_FOUND)
        c = SHALE_IO;  /* a segment vanishing under the lock is not a result */
    return shale_err(c, "file://%s: WAL log: %s(%s): %s", l->h.root, call, what, strerror(e));
}

void fsl_seg_name(uint64_t no, char *buf, size_t n)
{
    snprintf(buf, n, "%020llu.seg", (unsigned long long)no);
}

/* ---- the index ------------------------------------------------------- */

/* Index of id in recs, or where it would go (*hit false). */
size_t fsl_rec_find(fs_log *l, uint64_t id, bool *hit)
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

seg *fsl_seg_of(fs_log *l, uint64_t no)
{
    for (size_t i = l->nsegs; i-- > 0;)
        if (l->segs[i].no == no)
            return &l->segs[i];
    return NULL;
}

shale_status fsl_apply(fs_log *l, seg *s, uint32_t kind, uint64_t id, uint64_t off,
                          uint64_t len, int64_t mtime)
{
    bool hit;
    size_t i = fsl_rec_find(l, id, &hit);
    if (hit) {
        seg *old = fsl_seg_of(l, l->recs[i].segno);
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

uint64_t fsl_frame_sum(const uint8_t *hdr, const void *payload, uint64_t len)
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
        if ((kind != KIND_PUT && kind != KIND_TOMB && kind != KIND_SEAL) ||
            (kind != KIND_PUT && len) ||
            len > FS_LOG_MAX_RECORD || get_u64le(h + 32) != s->prev || !id)
            break;
        uint8_t hdr[HDR];
        memcpy(hdr, h, HDR);
        const uint8_t *p = win_get(l, s, s->tail, HDR + (size_t)len);
        if (!p || fsl_frame_sum(hdr, p + HDR, len) != get_u64le(hdr + 40))
            break;
        shale_status rc = kind == KIND_SEAL ? SHALE_OK
                          : fsl_apply(l, s, kind, id, s->tail + HDR, len,
                                      (int64_t)get_u64le(hdr + 24));
        if (rc)
            return rc;
        if (kind == KIND_SEAL)
            s->sealed = true;
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
int fsl_seg_open(fs_log *l, uint64_t no, bool create, int *fd)
{
    char name[32];
    fsl_seg_name(no, name, sizeof name);
    int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
    int f = openat(l->dfd, name, flags, 0644);
    if (f < 0 && !create && (errno == EACCES || errno == EROFS))
        f = openat(l->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);  /* a reader */
    if (f < 0)
        return errno;
    *fd = f;
    return 0;
}

shale_status fsl_seg_add(fs_log *l, uint64_t no, int fd)
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
    l->segs[l->nsegs++] = (seg){no, fd, 0, 0, size, 0, 0, false};
    return SHALE_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void drop_index(fs_log *l)
{
    for (size_t i = 0; i < l->nsegs; i++)
        close(l->segs[i].fd);
    l->nsegs = l->nrecs = 0;
    l->win_fd = -1;
    l->loaded = false;
}

/* Whether the handle's current segment was unlinked behind it (fstat:
 * no link left). */
static bool cur_unlinked(fs_log *l)
{
    struct stat st;
    return l->nsegs && fstat(l->segs[l->nsegs - 1].fd, &st) == 0 && st.st_nlink == 0;
}

int fsl_seal(fs_log *l, seg *s)
{
    uint8_t hdr[HDR];
    put_u32le(hdr, MAGIC);
    put_u32le(hdr + 4, KIND_SEAL);
    put_u64le(hdr + 8, s->no + 1);   /* where the log went on (informative) */
    put_u64le(hdr + 16, 0);
    put_u64le(hdr + 24, 0);
    put_u64le(hdr + 32, s->prev);
    uint64_t sum = fsl_frame_sum(hdr, NULL, 0);
    put_u64le(hdr + 40, sum);
    struct iovec v = {hdr, HDR};
    int e = fsl_write_at(s->fd, &v, 1, s->tail);
    if (e)
        return e;
    if (l->win_fd == s->fd)
        l->win_fd = -1;
    s->tail += HDR;
    s->prev = sum;
    if (s->size < s->tail)
        s->size = s->tail;
    s->sealed = true;
    return 0;
}

/* Reads what other processes appended: the current segment's new frames,
 * and segments created after it (each checked for before the one before
 * it is read, so a segment is read to its end once a newer one exists).
 *
 * A handle left behind: other handles rotated past its current segment
 * and unlinked the segments in between (a dead rotation, or all-dead
 * segments), so there is no next segment to find; what it holds may be
 * covered by tombstones it never saw, and an append to its current
 * segment would be lost.  Every rotation seals the segment it leaves
 * before it makes the next one, and no segment is unlinked unsealed
 * (drop_dead), so such a handle reads a seal at its current segment's
 * end: only then is the file checked for a link (one fstat; a sealed
 * segment still linked is a rotation that crashed before its new segment,
 * or one under way), and if it has none the index is built again from
 * the directory.  An unsealed current segment costs no check. */
shale_status fsl_refresh(fs_log *l)
{
    for (;;) {
        uint64_t next = l->nsegs ? l->segs[l->nsegs - 1].no + 1 : 1;
        int fd = -1, e = fsl_seg_open(l, next, false, &fd);
        if (e && e != ENOENT)
            return fsl_fail(l, "open", "next segment", e);
        if (l->nsegs) {
            shale_status rc = scan(l, &l->segs[l->nsegs - 1]);
            if (rc) {
                if (fd >= 0)
                    close(fd);
                return rc;
            }
        }
        if (fd < 0) {
            if (!l->loaded || !l->nsegs || !l->segs[l->nsegs - 1].sealed || !cur_unlinked(l))
                return SHALE_OK;
            drop_index(l);
            return fsl_load(l);
        }
        shale_status rc = fsl_seg_add(l, next, fd);
        if (rc)
            return rc;
    }
}

/* Builds the index at first use: every segment, oldest first. */
shale_status fsl_load(fs_log *l)
{
    if (l->loaded)
        return SHALE_OK;
    if (l->dfd < 0 && (l->dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return fsl_fail(l, "open", LOG_DIR, errno);
    int dd = dup(l->dfd);
    DIR *d = dd < 0 ? NULL : fdopendir(dd);
    if (!d) {
        if (dd >= 0)
            close(dd);
        return fsl_fail(l, "opendir", LOG_DIR, errno);
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
        int fd = -1, e = fsl_seg_open(l, nos[i], false, &fd);
        if (e == ENOENT)
            continue;  /* unlinked since the listing: every record in it was dead */
        if (e)
            rc = fsl_fail(l, "open", "segment", e);
        else if (!(rc = fsl_seg_add(l, nos[i], fd)))
            rc = scan(l, &l->segs[l->nsegs - 1]);
    }
    free(nos);
    if (!rc)
        rc = fsl_refresh(l);
    if (!rc)
        l->loaded = true;
    else  /* start over next time */
        drop_index(l);
    return rc;
}
