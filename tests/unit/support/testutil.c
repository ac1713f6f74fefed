/* testutil.c -- see testutil.h. */
#include "support/testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/misc.h"

char *tu_tmpdir(const char *name)
{
    const char *base = getenv("SHALE_TEST_TMP");
    char root[4096];
    if (!base || !*base) {
        if (!getcwd(root, sizeof root - 32))
            return NULL;
        strcat(root, "/tests/tmp/work");
        base = root;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", base);
    if (system(cmd) != 0)
        return NULL;
    char id[37];
    uuid_new(id);
    id[8] = '\0';
    char *path = NULL;
    if (asprintf(&path, "%s/%s-%s", base, name, id) < 0)
        return NULL;
    if (mkdir(path, 0755) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

char *tu_file_uri(const char *dir, const char *sub)
{
    char *u = NULL;
    if (asprintf(&u, "file://%s%s%s", dir, sub ? "/" : "", sub ? sub : "") < 0)
        return NULL;
    return u;
}

char *tu_fault_uri(const char *uri)
{
    char *u = NULL;
    if (asprintf(&u, "fault+%s", uri) < 0)
        return NULL;
    return u;
}

char *tu_fault_mem_uri(const char *name, shale_fault **ctl)
{
    char *m = tu_mem_uri(name), *u = NULL;
    assert_non_null(m);
    assert_non_null(u = tu_fault_uri(m));
    free(m);
    assert_non_null(*ctl = shale_fault_for_uri(u, NULL));
    return u;
}

char *tu_mem_uri(const char *name)
{
    char id[37], *u = NULL;
    uuid_new(id);
    if (asprintf(&u, "mem://%s-%s", name, id) < 0)
        return NULL;
    return u;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

void tu_rmtree(const char *dir)
{
    if (dir)
        nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

bool tu_quick(void)
{
    const char *q = getenv("SHALE_TEST_QUICK");
    return q && *q && strcmp(q, "0");
}

uint64_t tu_rand(uint64_t *s)
{
    if (!*s)
        *s = 1;
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

void tu_expect_exit(int pid, int code)
{
    int st = 0;
    assert_int_equal(waitpid((pid_t)pid, &st, 0), pid);
    if (!WIFEXITED(st))
        fail_msg("child %d did not exit: %s %d", pid, WIFSIGNALED(st) ? "signal" : "status",
                 WIFSIGNALED(st) ? WTERMSIG(st) : st);
    if (WEXITSTATUS(st) != code)
        fail_msg("child %d exited with %d, want %d", pid, WEXITSTATUS(st), code);
}
