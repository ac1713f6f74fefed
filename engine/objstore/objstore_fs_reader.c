/*
 * objstore_fs_reader.c -- reader handles of the file:// store
 * (shale_objreader) and their read-around.
 *
 * Open does the store's checks once (no symbolic link on the key's path,
 * O_NOFOLLOW, a regular file) and keeps the descriptor, so each read is a
 * pread() and not a path walk, open, fstat and close.  An object is never
 * modified in place -- put renames a new file over the key, delete unlinks
 * it -- so a descriptor keeps reading exactly the object it opened,
 * whatever happens to the key later, and the size measured at open stays
 * true.  For SSTs (immutable, named by ULID, never rewritten) that is the
 * right thing; the disk space of a deleted SST comes back when its last
 * handle closes.  Descriptors held by handles are counted process-wide and
 * capped (half the RLIMIT_NOFILE soft limit by default); a handle opened
 * past the cap keeps no descriptor and reads by path, as get_range does.
 * A key the WAL log holds (objstore_fs_log.c) reads its record in the
 * log's segment file through the same descriptor, from the record's
 * offset.
 */
#include "objstore/objstore_fs_int.h"
#include "util/status_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct fs_reader {
    shale_objreader base;
    int fd;                  /* -1: past the descriptor cap, reads by path */
    uint64_t base_off;       /* where the object starts in fd (a log record) */
    /* Read-around windows already advised through this handle, one bit per
     * READ_AROUND window of fd counted from base_off's window (NULL: none
     * allocated, read-around off for this handle).  Atomic: a handle is
     * read by many threads at once; a lost race costs one extra advice. */
    _Atomic uint64_t *advised;
    uint64_t advised_words;
} fs_reader;

/* Descriptors held by reader handles in this process, and the cap. */
static _Atomic long g_reader_fds;
static _Atomic long g_reader_fds_max = -1;  /* -1: not yet set */
static pthread_once_t g_fds_once = PTHREAD_ONCE_INIT;

static void fds_default(void)
{
    long want = 512;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        want = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 21) ? (1L << 20)
                                                                       : (long)rl.rlim_cur / 2;
    long unset = -1;
    atomic_compare_exchange_strong(&g_reader_fds_max, &unset, want);
}

void objstore_fs_set_max_fds(long n)
{
    pthread_once(&g_fds_once, fds_default);
    if (n < 0) {
        atomic_store(&g_reader_fds_max, -1);
        fds_default();
    } else {
        atomic_store(&g_reader_fds_max, n);
    }
}

/* Takes one descriptor slot; false when the cap is reached. */
static bool fds_take(void)
{
    pthread_once(&g_fds_once, fds_default);
    if (atomic_fetch_add(&g_reader_fds, 1) < atomic_load(&g_reader_fds_max))
        return true;
    atomic_fetch_sub(&g_reader_fds, 1);
    return false;
}


/* Read-around: a small read through a handle (a block-cache miss of a
 * point lookup; scans read 64 KiB and more) first asks the kernel to bring
 * the READ_AROUND-aligned window that holds it into the page cache, where
 * the next misses nearby find it -- what LevelDB gets from mmap's
 * fault-around, and what makes its cold random reads fast.  One disk
 * request either way (a 128 KiB read costs about what a 4 KiB one does
 * here), nothing is copied or decoded beyond the block, and on a warm page
 * cache it is one cheap call.  file:// only: on S3 every byte is a
 * transfer and a block stays one request.  SHALE_FS_READ_AROUND=0 turns
 * it off (for measuring). */
#define READ_AROUND (128u << 10)
static int g_read_around = -1;   /* -1: not yet read from the environment */
static _Atomic long g_fadvise_calls;

long objstore_fs_read_around_advices(void)
{
    return atomic_load(&g_fadvise_calls);
}

/* Each window is advised once per handle: a second miss in a window the
 * kernel was already asked for finds it in the page cache (or on its way
 * there), and the advice itself was 9 % of a cold readrandom's CPU when
 * made on every miss (docs/benchmarks.md).  If the page cache has since
 * dropped the window, the read still reads its block; only the
 * read-around is lost. */
static void read_around_init(fs_reader *r)
{
    if (g_read_around < 0) {
        const char *v = getenv("SHALE_FS_READ_AROUND");
        g_read_around = !(v && !strcmp(v, "0"));
    }
    if (!g_read_around || r->fd < 0 || r->base.size <= READ_AROUND)
        return;
    uint64_t first = r->base_off / READ_AROUND;
    uint64_t last = (r->base_off + r->base.size - 1) / READ_AROUND;
    uint64_t words = (last - first) / 64 + 1;
    r->advised = calloc(words, sizeof *r->advised);  /* NULL: no read-around */
    r->advised_words = r->advised ? words : 0;
}

static void read_around(fs_reader *r, uint64_t offset, uint64_t len)
{
    if (!r->advised || len >= READ_AROUND / 2)
        return;
    uint64_t w = offset / READ_AROUND - r->base_off / READ_AROUND;
    if (w / 64 >= r->advised_words)
        return;
    uint64_t bit = (uint64_t)1 << (w % 64);
    if (atomic_load_explicit(&r->advised[w / 64], memory_order_relaxed) & bit)
        return;
    if (atomic_fetch_or_explicit(&r->advised[w / 64], bit, memory_order_relaxed) & bit)
        return;
    atomic_fetch_add_explicit(&g_fadvise_calls, 1, memory_order_relaxed);
    (void)posix_fadvise(r->fd, (off_t)(offset & ~(uint64_t)(READ_AROUND - 1)), READ_AROUND,
                        POSIX_FADV_WILLNEED);
}


/* ---- reader handles: one descriptor, one pread per read ------------------ */

shale_status objfs_reader_open(shale_objstore *s, const char *key, uint64_t size_hint,
                               shale_objreader **out)
{
    (void)size_hint;  /* fstat is free: the measured size is used */
    fs_store *fs = (fs_store *)s;
    fs_reader *r = calloc(1, sizeof *r);
    if (!r)
        return SHALE_OOM();
    uint64_t wid;
    int64_t mt;
    bool found = false;
    shale_status rc = objfs_check_not_log(fs, key);
    if (!rc && objfs_log_key(fs, key, &wid))
        rc = fs_log_find(fs->log, key, wid, &found, &r->fd, &r->base_off, &r->base.size, &mt);
    if (!rc && !found)
        rc = objfs_open_for_read(fs, key, &r->fd, &r->base.size);
    if (rc) {
        free(r);
        return rc;
    }
    if (!fds_take()) {
        close(r->fd);  /* past the cap: read by path */
        r->fd = -1;
    }
    read_around_init(r);
    *out = &r->base;
    return SHALE_OK;
}

shale_status objfs_reader_read(shale_objreader *rd, uint64_t offset, uint64_t len,
                               void **data, size_t *got)
{
    fs_reader *r = (fs_reader *)rd;
    if (r->fd < 0)
        return objfs_get_range(rd->store, rd->key, offset, len, false, data, got);
    read_around(r, r->base_off + offset, len);
    return objfs_read_at((fs_store *)rd->store, rd->key, r->fd, r->base_off, rd->size, offset,
                         len, data, got);
}

void objfs_reader_close(shale_objreader *rd)
{
    fs_reader *r = (fs_reader *)rd;
    if (r->fd >= 0) {
        close(r->fd);
        atomic_fetch_sub(&g_reader_fds, 1);
    }
    free((void *)r->advised);
    free(r);
}

