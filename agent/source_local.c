/*
 * source_local.c -- see source_local.h.  Everything below the configured
 * directory is reached through three directory descriptors opened at
 * start; no path is ever built from a name read from the directory or a
 * request.
 */
#include "source_local.h"
#include "journal.h"
#include "log.h"
#include "request.h"
#include "agent_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST_BYTES (1u << 20)
#define MAX_SPLIT_NAME 63

typedef struct seen {
    char *file;
    int64_t mtime_ns;
    off_t size;
    ino_t ino;
    bool cancelled;
    bool waiting;            /* refused for now (transient): retried each scan */
    bool present;            /* found by the current scan */
    struct seen *next;
} seen;

struct source_local {
    char *dir;
    int base_fd, req_fd, status_fd, err_fd;
    uint32_t poll_ms;
    split_service *svc;
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    seen *files;
    atomic_uint tmp_seq;
};

/* The split-name rule (request.c): 1-63 of a-z, 0-9, '-' and '.', starting
 * and ending with a letter or digit.  Such a name is one path component
 * that is neither "." nor "..". */
static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > MAX_SPLIT_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !((ch == '-' || ch == '.') && i > 0 && i < n - 1))
            return false;
    }
    return true;
}

/* ---- atomic writes beneath a directory fd --------------------------------- */

static int write_atomic_at(source_local *s, int dfd, const char *name, const char *text)
{
    char tmp[320];
    snprintf(tmp, sizeof tmp, ".%s.tmp-%d-%u", name, (int)getpid(),
             atomic_fetch_add(&s->tmp_seq, 1));
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    size_t n = strlen(text);
    const char *p = text;
    int e = 0;
    while (n && !e) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            e = errno;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    /* renameat replaces the directory entry itself: a symlink planted at
     * the final name is replaced, never written through. */
    if (!e && renameat(dfd, tmp, dfd, name) != 0)
        e = errno;
    if (e) {
        unlinkat(dfd, tmp, 0);
        return e;
    }
    fsync(dfd);   /* the rename itself durable */
    return 0;
}

void source_local_on_status(void *ctx, const char *name, const char *status_json)
{
    source_local *s = ctx;
    if (!name || !name_ok(name, strlen(name))) {
        LOGE("local source: not writing a status for '%.80s': not a valid split name",
             name ? name : "");
        return;
    }
    char file[MAX_SPLIT_NAME + 8];
    snprintf(file, sizeof file, "%s.json", name);
    int e = write_atomic_at(s, s->status_fd, file, status_json);
    if (e)
        log_msg(LOG_ERROR, name, NULL, -1, "cannot write status file %s/status/%s: %s",
                s->dir, file, strerror(e));
}

/* errors/<file>.json: why requests/<file> was not taken. */
static void write_error(source_local *s, const char *file, const char *reason,
                        const char *message)
{
    char now[40], out[300];
    journal_now(now, sizeof now);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "file", file, "phase", "Failed",
                          "reason", reason, "message", message, "time", now);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    int n = snprintf(out, sizeof out, "%s.json", file);
    int e = !text ? ENOMEM : n >= (int)sizeof out ? ENAMETOOLONG
                                                  : write_atomic_at(s, s->err_fd, out, text);
    free(text);
    if (e)
        LOGE("cannot write %s/errors/%.200s.json: %s", s->dir, file, strerror(e));
}

/* Removes errors/<file>.json (also when this process did not write it: an
 * agent restarted after the file was fixed). */
static void clear_error(source_local *s, seen *x)
{
    char out[300];
    if (snprintf(out, sizeof out, "%s.json", x->file) < (int)sizeof out)
        unlinkat(s->err_fd, out, 0);
}

/* Refuses requests/<file>: an error file and one warning. */
static void refuse(source_local *s, seen *x, const char *file, const char *reason,
                   const char *message)
{
    LOGW("local source: requests/%.200s refused (%s): %s", file, reason, message);
    (void)x;
    write_error(s, file, reason, message);
}

/* ---- scanning -------------------------------------------------------------- */

/* Reads requests/<file> beneath the directory fd: never through a symlink
 * (O_NOFOLLOW), never a FIFO or device (O_NONBLOCK, then S_ISREG). */
static char *read_request(source_local *s, const char *file, size_t *len, const char **why)
{
    int fd = openat(s->req_fd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *why = errno == ELOOP ? "a symbolic link: request files must be regular files"
                              : "cannot be opened";
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *why = "not a regular file";
        return NULL;
    }
    char *buf = malloc(MAX_REQUEST_BYTES + 1);
    size_t n = 0;
    while (buf && n <= MAX_REQUEST_BYTES) {
        ssize_t r = read(fd, buf + n, MAX_REQUEST_BYTES + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0) {
                free(buf);
                buf = NULL;
                *why = "cannot be read";
            }
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (!buf) {
        if (!**why)
            *why = "out of memory";
        return NULL;
    }
    if (n > MAX_REQUEST_BYTES) {
        free(buf);
        *why = "larger than 1 MiB";
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static seen *track(source_local *s, const char *file)
{
    for (seen *x = s->files; x; x = x->next)
        if (!strcmp(x->file, file))
            return x;
    seen *x = calloc(1, sizeof *x);
    if (!x || !(x->file = agent_strdup(file))) {
        free(x);
        return NULL;
    }
    x->mtime_ns = -1;
    x->next = s->files;
    s->files = x;
    return x;
}

static void handle_request(source_local *s, seen *x, const char *file)
{
    size_t len = 0;
    const char *why = "";
    char *text = read_request(s, file, &len, &why);
    if (!text) {
        refuse(s, x, file, "Unreadable", why);
        return;
    }
    char origin[300];
    snprintf(origin, sizeof origin, "requests/%s", file);
    split_request *r = NULL;
    shale_status rc = split_request_parse(origin, text, len, &r);
    free(text);
    if (!rc && !name_ok(r->name, strlen(r->name)))
        rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s: field 'name': must be 1-63 characters of "
                                                     "a-z, 0-9, '-' and '.'", origin);
    if (rc) {
        refuse(s, x, file, "InvalidRequest", shale_errmsg());
        split_request_free(r);
        return;
    }
    bool created = false;
    char *st = NULL;
    rc = s->svc->ops->submit(s->svc, r, &created, &st);
    if (!rc && r->abort) {
        free(st);
        st = NULL;
        rc = s->svc->ops->abort(s->svc, r->name, &st);
    }
    if (rc == SHALE_RETRYABLE || rc == SHALE_IO || rc == SHALE_TIMEOUT) {
        /* Not the request's fault (the journals cannot be read yet, a store
         * did not answer): no error file; the next scan tries again. */
        if (!x->waiting)   /* once, not at every scan */
            log_msg(LOG_WARN, r->name, NULL, -1, "request %s not taken yet, will retry: %s: %s",
                    origin, shale_strerror(rc), shale_errmsg());
        x->waiting = true;
        x->mtime_ns = -1;
    } else if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", shale_errmsg());
        refuse(s, x, file, rc == SHALE_CONFLICT ? "Conflict" : "InvalidRequest", msg);
    } else {
        x->waiting = false;
        clear_error(s, x);
        if (created)
            log_msg(LOG_INFO, r->name, NULL, -1, "accepted split %s from %s", r->name, origin);
        if (st)
            source_local_on_status(s, r->name, st);
    }
    free(st);
    split_request_free(r);
}

static void handle_cancel(source_local *s, seen *x, const char *file, size_t stem)
{
    char name[MAX_SPLIT_NAME + 1];
    memcpy(name, file, stem);
    name[stem] = '\0';
    char *status = NULL;
    shale_status rc = s->svc->ops->abort(s->svc, name, &status);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", shale_errmsg());
        refuse(s, x, file, rc == SHALE_NOT_FOUND ? "NotFound" : "Conflict", msg);
    } else {
        clear_error(s, x);
        log_msg(LOG_INFO, name, NULL, -1, "abort of %s requested by requests/%s", name, file);
        source_local_on_status(s, name, status);
    }
    free(status);
}

/* pass 0: requests, pass 1: cancel files (so a request and its cancel
 * arriving together end cancelled, whatever readdir's order). */
static void scan_entry(source_local *s, const char *n, int pass)
{
    const char *ext = strrchr(n, '.');
    if (n[0] == '.' || !ext)
        return;
    bool cancel = !strcmp(ext, ".cancel");
    if (!cancel && strcmp(ext, ".yaml") && strcmp(ext, ".yml") && strcmp(ext, ".json"))
        return;
    if (cancel != (pass == 1))
        return;
    struct stat st;
    if (fstatat(s->req_fd, n, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;   /* gone since readdir */
    seen *x = track(s, n);
    if (!x)
        return;
    x->present = true;
    int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    bool changed = mt != x->mtime_ns || st.st_size != x->size || st.st_ino != x->ino;
    x->mtime_ns = mt;
    x->size = st.st_size;
    x->ino = st.st_ino;
    if (!changed)
        return;
    size_t stem = (size_t)(ext - n);
    if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode)) {
        refuse(s, x, n, "Refused", S_ISLNK(st.st_mode)
                                       ? "a symbolic link: request files must be regular "
                                         "files in requests/"
                                       : "not a regular file");
        return;
    }
    if (!name_ok(n, stem)) {
        refuse(s, x, n, "InvalidName", "file names must be <name>.yaml|.yml|.json|.cancel "
                                       "with <name> 1-63 characters of a-z, 0-9, '-' and '.'");
        return;
    }
    if (cancel) {
        if (!x->cancelled)
            handle_cancel(s, x, n, stem);
        x->cancelled = true;
        return;
    }
    handle_request(s, x, n);
}

void source_local_scan_once(source_local *s)
{
    /* A fresh open of the directory each scan: its own offset, beneath the
     * descriptor opened at start (a directory swapped in later is not
     * followed). */
    int fd = openat(s->req_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        LOGE("local source: cannot read %s/requests: %s", s->dir, strerror(errno));
        return;
    }
    for (seen *x = s->files; x; x = x->next)
        x->present = false;
    for (int pass = 0; pass < 2; pass++) {
        struct dirent *e;
        rewinddir(d);
        while ((e = readdir(d)))
            scan_entry(s, e->d_name, pass);
    }
    closedir(d);
    /* Files that went away: forget them, and their error files. */
    for (seen **p = &s->files; *p;) {
        seen *x = *p;
        if (x->present) {
            p = &x->next;
            continue;
        }
        clear_error(s, x);
        *p = x->next;
        free(x->file);
        free(x);
    }
}

static void *loop(void *arg)
{
    source_local *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        source_local_scan_once(s);
        pthread_mutex_lock(&s->mu);
        if (s->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)s->poll_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- start: the directories and who can write them ------------------------ */

static bool agent_has_group(gid_t g)
{
    if (g == getegid())
        return true;
    gid_t gs[256];
    int n = getgroups(256, gs);
    for (int i = 0; i < n; i++)
        if (gs[i] == g)
            return true;
    return false;
}

/* Refuses a directory that anyone but the agent (and root) can write. */
static shale_status check_dir(int fd, const char *dir, const char *sub)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return shale_error_set(SHALE_IO, "local source: %s%s: %s", dir, sub, strerror(errno));
    unsigned mode = (unsigned)st.st_mode & 07777;
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "local source: %s%s is owned by uid %u, not the agent (uid %u) or "
                               "root: its owner could submit splits ('sources.local.dir')",
                               dir, sub, (unsigned)st.st_uid, (unsigned)geteuid());
    if (mode & S_IWOTH)
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "local source: %s%s is writable by every user (mode %04o): anyone "
                               "on the host could submit or cancel splits; chmod o-w it or point "
                               "'sources.local.dir' at a private directory", dir, sub, mode);
    if ((mode & S_IWGRP) && !agent_has_group(st.st_gid))
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "local source: %s%s is writable by group %u (mode %04o), a group "
                               "the agent is not in: its members could submit splits; chmod g-w "
                               "it or chgrp it to the agent's group", dir, sub,
                               (unsigned)st.st_gid, mode);
    return SHALE_OK;
}

static shale_status open_sub(source_local *s, const char *sub, int *out)
{
    if (mkdirat(s->base_fd, sub, 0750) != 0 && errno != EEXIST)
        return shale_error_set(SHALE_IO, "local source: mkdir %s/%s: %s", s->dir, sub,
                               strerror(errno));
    struct stat st;
    if (fstatat(s->base_fd, sub, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "local source: %s/%s is a symbolic link: it "
                               "must be a directory of its own", s->dir, sub);
    int fd = openat(s->base_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return shale_error_set(errno == ELOOP || errno == ENOTDIR ? SHALE_INVALID_ARGUMENT : SHALE_IO,
                               "local source: %s/%s %s", s->dir, sub,
                               errno == ELOOP ? "is a symbolic link: it must be a directory of its "
                                                "own"
                               : errno == ENOTDIR ? "is not a directory" : strerror(errno));
    char label[32];
    snprintf(label, sizeof label, "/%s", sub);
    shale_status rc = check_dir(fd, s->dir, label);
    if (rc) {
        close(fd);
        return rc;
    }
    *out = fd;
    return SHALE_OK;
}

/* At start: error files whose request file went away while the agent was
 * down go too. */
static void sweep_errors(source_local *s)
{
    int fd = openat(s->err_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        char file[256];
        struct stat st;
        if (e->d_name[0] == '.' || n <= 5 || n - 5 >= sizeof file ||
            strcmp(e->d_name + n - 5, ".json"))
            continue;
        memcpy(file, e->d_name, n - 5);
        file[n - 5] = '\0';
        if (fstatat(s->req_fd, file, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
            unlinkat(s->err_fd, e->d_name, 0);
    }
    closedir(d);
}

shale_status source_local_new(const char *dir, uint32_t poll_ms, split_service *svc,
                              source_local **out)
{
    *out = NULL;
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "local source: directory name too long");
    /* mkdir -p of the configured directory (the operator's path). */
    for (char *q = p + 1; *q; q++)
        if (*q == '/') {
            *q = '\0';
            mkdir(p, 0750);
            *q = '/';
        }
    if (mkdir(p, 0750) != 0 && errno != EEXIST)
        return shale_error_set(SHALE_IO, "local source: mkdir %s: %s", p, strerror(errno));
    source_local *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = agent_strdup(dir))) {
        free(s);
        return AGENT_OOM();
    }
    s->base_fd = s->req_fd = s->status_fd = s->err_fd = -1;
    s->poll_ms = poll_ms ? poll_ms : 200;
    s->svc = svc;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    shale_status rc = SHALE_OK;
    s->base_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->base_fd < 0)
        rc = shale_error_set(SHALE_IO, "local source: %s: %s", dir, strerror(errno));
    if (!rc)
        rc = check_dir(s->base_fd, dir, "");
    if (!rc)
        rc = open_sub(s, "requests", &s->req_fd);
    if (!rc)
        rc = open_sub(s, "status", &s->status_fd);
    if (!rc)
        rc = open_sub(s, "errors", &s->err_fd);
    if (rc) {
        source_local_free(s);
        return rc;
    }
    sweep_errors(s);
    *out = s;
    return SHALE_OK;
}

shale_status source_local_start(source_local *s)
{
    if (pthread_create(&s->thread, NULL, loop, s))
        return shale_error_set(SHALE_IO, "local source: cannot start its thread");
    s->started = true;
    return SHALE_OK;
}

void source_local_free(source_local *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    while (s->files) {
        seen *x = s->files;
        s->files = x->next;
        free(x->file);
        free(x);
    }
    int fds[] = {s->base_fd, s->req_fd, s->status_fd, s->err_fd};
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->dir);
    free(s);
}
