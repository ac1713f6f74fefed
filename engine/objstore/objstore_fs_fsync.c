/*
 * objstore_fs_fsync.c -- the file:// store's fsync, and the test hook that
 * makes it fail.
 *
 * objstore_fs_fail_fsync() (or SHALE_TEST_FS_FSYNC_FAIL, applied when a
 * store opens and the value changed) arms a rule: the nth and following
 * fsync calls of a kind ("file", "dir" or "any") made for a key starting
 * with a prefix report EIO.  The real fsync is still called first -- the
 * hook only replaces its result -- so every caller is tested on the code
 * path a disk error takes.  The WAL log's fdatasync (objstore_fs_log.c)
 * goes through the same rule as a "file" sync of the record's key.  Process-wide; one rule at a time.
 */
#include "objstore/objstore_int.h"
#include "util/iotrace.h"
#include "util/status_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t g_hook_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_hook_env[256];     /* the SHALE_TEST_FS_FSYNC_FAIL value applied */
static struct {
    bool armed;
    int kind;            /* 0 any, 1 file, 2 dir */
    char prefix[128];
    long skip, count;    /* calls to let through first; failures left (<0: all) */
    long failed;
} g_hook;

static shale_status hook_set(const char *kind, const char *prefix, long nth, long count)
{
    int k = !strcmp(kind, "any") ? 0 : !strcmp(kind, "file") ? 1 : !strcmp(kind, "dir") ? 2 : -1;
    if (k < 0 || strlen(prefix) >= sizeof g_hook.prefix || nth < 1)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "fsync failure rule: kind '%s' (want any, file or dir), prefix of "
                         "%zu bytes (at most %zu), nth %ld (at least 1)",
                         kind, strlen(prefix), sizeof g_hook.prefix - 1, nth);
    pthread_mutex_lock(&g_hook_mu);
    g_hook.armed = true;
    g_hook.kind = k;
    memcpy(g_hook.prefix, prefix, strlen(prefix) + 1);
    g_hook.skip = nth - 1;
    g_hook.count = count;
    pthread_mutex_unlock(&g_hook_mu);
    return SHALE_OK;
}

/* SHALE_TEST_FS_FSYNC_FAIL="kind:prefix[:nth]", for tests whose writer is
 * a child process (the agent, crash tests): applied when a file:// store
 * opens and the value differs from the one last applied. */
void objstore_fs_fsync_hook_from_env(void)
{
    const char *v = getenv("SHALE_TEST_FS_FSYNC_FAIL");
    char buf[sizeof g_hook_env];
    if (!v || !*v || strlen(v) >= sizeof buf)
        return;
    pthread_mutex_lock(&g_hook_mu);
    bool same = !strcmp(v, g_hook_env);
    if (!same)
        memcpy(g_hook_env, v, strlen(v) + 1);
    pthread_mutex_unlock(&g_hook_mu);
    if (same)
        return;
    memcpy(buf, v, strlen(v) + 1);
    char *c1 = strchr(buf, ':');
    if (!c1)
        return;
    *c1 = '\0';
    char *prefix = c1 + 1, *c2 = strchr(prefix, ':');
    long nth = 1;
    if (c2) {
        *c2 = '\0';
        char *end;
        nth = strtol(c2 + 1, &end, 10);
        if (*end)
            return;
    }
    (void)hook_set(buf, prefix, nth, -1);
}

shale_status objstore_fs_fail_fsync(const char *kind, const char *prefix, long nth, long count)
{
    if (!kind) {
        pthread_mutex_lock(&g_hook_mu);
        g_hook.armed = false;
        pthread_mutex_unlock(&g_hook_mu);
        return SHALE_OK;
    }
    return hook_set(kind, prefix ? prefix : "", nth, count);
}

long objstore_fs_fsync_failures(void)
{
    pthread_mutex_lock(&g_hook_mu);
    long n = g_hook.failed;
    pthread_mutex_unlock(&g_hook_mu);
    return n;
}

static int hooked(int e, const char *key, int kind);

int objstore_fs_fsync(int fd, const char *key, int kind)
{
    uint64_t t0 = iotrace_now();
    int e = fsync(fd) != 0 ? errno : 0;
    iotrace_ev(kind == 2 ? 'F' : 'f', t0);
    return hooked(e, key, kind);
}

/* The WAL log's sync (objstore_fs_log.c): data only, the kind "file". */
int objstore_fs_fdatasync(int fd, const char *key)
{
    return hooked(fdatasync(fd) != 0 ? errno : 0, key, 1);
}

/* Replaces the real call's result e when the rule matches. */
static int hooked(int e, const char *key, int kind)
{
    pthread_mutex_lock(&g_hook_mu);
    if (g_hook.armed && (g_hook.kind == 0 || g_hook.kind == kind) &&
        !strncmp(key, g_hook.prefix, strlen(g_hook.prefix))) {
        if (g_hook.skip > 0) {
            g_hook.skip--;
        } else if (g_hook.count != 0) {
            if (g_hook.count > 0)
                g_hook.count--;
            g_hook.failed++;
            e = EIO;
        }
    }
    pthread_mutex_unlock(&g_hook_mu);
    return e;
}

