/* source_local.c -- see source_local.h. */
#include "source_local.h"
#include "log.h"
#include "request.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST_BYTES (1u << 20)

typedef struct seen {
    char *file;
    int64_t mtime_ns;
    off_t size;
    bool cancelled;
    struct seen *next;
} seen;

struct source_local {
    char *dir;
    uint32_t poll_ms;
    split_service *svc;
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    seen *files;
};

static int write_atomic(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    size_t n = strlen(text);
    const char *p = text;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return e;
        }
        p += w;
        n -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return e;
    }
    return 0;
}

void source_local_on_status(void *ctx, const char *name, const char *status_json)
{
    source_local *s = ctx;
    char path[4096];
    snprintf(path, sizeof path, "%s/status/%s.json", s->dir, name);
    int e = write_atomic(path, status_json);
    if (e)
        LOGE("cannot write status file %s: %s", path, strerror(e));
}

static void write_failed(source_local *s, const char *file, const char *reason,
                         const char *message)
{
    char name[256];
    snprintf(name, sizeof name, "%s", file);
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = '\0';
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "phase", "Failed", "reason",
                          reason, "message", message);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    if (text)
        source_local_on_status(s, name, text);
    free(text);
    json_decref(o);
}

static char *read_file(const char *path, size_t *len, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = "cannot open";
        return NULL;
    }
    char *buf = malloc(MAX_REQUEST_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_REQUEST_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf) {
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
    if (!x || !(x->file = xstrdup(file))) {
        free(x);
        return NULL;
    }
    x->mtime_ns = -1;
    x->next = s->files;
    s->files = x;
    return x;
}

static void handle_request(source_local *s, const char *file, const char *path)
{
    size_t len = 0;
    const char *why = NULL;
    char *text = read_file(path, &len, &why);
    if (!text) {
        write_failed(s, file, "Unreadable", why);
        return;
    }
    char origin[512];
    snprintf(origin, sizeof origin, "requests/%s", file);
    split_request *r = NULL;
    shale_status rc = split_request_parse(origin, text, len, &r);
    free(text);
    if (rc) {
        write_failed(s, file, "InvalidRequest", shale_errmsg());
        LOGW("rejected %s: %s", origin, shale_errmsg());
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
    if (rc) {
        /* Never overwrite the status of an existing split of that name:
         * the refusal then goes to <name>.rejected.json. */
        char msg[1024], *existing = NULL, name[300];
        snprintf(msg, sizeof msg, "%s", shale_errmsg());
        bool taken = s->svc->ops->get(s->svc, r->name, &existing) == SHALE_OK;
        free(existing);
        snprintf(name, sizeof name, "%s%s.json", r->name, taken ? ".rejected" : "");
        write_failed(s, name, rc == SHALE_CONFLICT ? "Conflict" : "InvalidRequest", msg);
        LOGW("request %s refused: %s", origin, msg);
    } else if (created) {
        LOGI("accepted split %s from %s", r->name, origin);
    }
    if (st)
        source_local_on_status(s, r->name, st);
    free(st);
    split_request_free(r);
}

void source_local_scan_once(source_local *s)
{
    char dirpath[4096];
    snprintf(dirpath, sizeof dirpath, "%s/requests", s->dir);
    DIR *d = opendir(dirpath);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name, *ext = strrchr(n, '.');
        if (n[0] == '.' || !ext)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dirpath, n);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        seen *x = track(s, n);
        if (!x)
            continue;
        int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        bool changed = mt != x->mtime_ns || st.st_size != x->size;
        x->mtime_ns = mt;
        x->size = st.st_size;
        if (!strcmp(ext, ".cancel")) {
            if (x->cancelled)
                continue;
            x->cancelled = true;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(ext - n), n);
            char *status = NULL;
            shale_status rc = s->svc->ops->abort(s->svc, name, &status);
            if (rc)
                LOGW("cancel of %s refused: %s", name, shale_errmsg());
            else
                source_local_on_status(s, name, status);
            free(status);
            continue;
        }
        if (changed && (!strcmp(ext, ".yaml") || !strcmp(ext, ".yml") || !strcmp(ext, ".json")))
            handle_request(s, n, path);
    }
    closedir(d);
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

shale_status source_local_new(const char *dir, uint32_t poll_ms, split_service *svc,
                              source_local **out)
{
    *out = NULL;
    char p[4096];
    const char *subs[] = {"", "/requests", "/status"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", dir, subs[i]);
        /* mkdir -p for the base directory */
        for (char *q = p + 1; i == 0 && *q; q++)
            if (*q == '/') {
                *q = '\0';
                mkdir(p, 0755);
                *q = '/';
            }
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return shale_err(SHALE_IO, "local source: mkdir %s: %s", p, strerror(errno));
    }
    source_local *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = xstrdup(dir))) {
        free(s);
        return SHALE_OOM();
    }
    s->poll_ms = poll_ms ? poll_ms : 200;
    s->svc = svc;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *out = s;
    return SHALE_OK;
}

shale_status source_local_start(source_local *s)
{
    if (pthread_create(&s->thread, NULL, loop, s))
        return shale_err(SHALE_IO, "local source: cannot start its thread");
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
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->dir);
    free(s);
}
