/* fslogtest.c -- see fslogtest.h. */
#include "support/fslogtest.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *g_dir;
static int g_seq;

void fl_init(const char *name)
{
    g_dir = tu_tmpdir(name);
    assert_non_null(g_dir);
}

void fl_done(void)
{
    tu_rmtree(g_dir);
    free(g_dir);
    g_dir = NULL;
}

char *fl_new_root(char **uri, bool log)
{
    char sub[32];
    snprintf(sub, sizeof sub, "r%d", g_seq++);
    *uri = tu_file_uri(g_dir, sub);
    size_t n = strlen(g_dir) + strlen(sub) + 2;
    char *root = malloc(n);
    assert_non_null(root);
    snprintf(root, n, "%s/%s", g_dir, sub);
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_wal_log = log ? 1 : -1;
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(*uri, &o, &s));
    shale_objstore_close(s);
    return root;
}

shale_objstore *fl_open(const char *uri, bool fsync)
{
    shale_objstore_options o;
    shale_objstore_options_init(&o);
    o.fs_no_fsync = !fsync;
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, &o, &s));
    return s;
}

void fl_wk(uint64_t id, char *buf, size_t n)
{
    snprintf(buf, n, "wal/%020llu.sst", (unsigned long long)id);
}

void fl_put_id(shale_objstore *s, uint64_t id, const char *v)
{
    char k[64];
    fl_wk(id, k, sizeof k);
    TU_OK(shale_objstore_put(s, k, v, strlen(v)));
}

void fl_expect(shale_objstore *s, uint64_t id, const char *want)
{
    char k[64];
    fl_wk(id, k, sizeof k);
    void *got = NULL;
    size_t n = 0;
    TU_OK(shale_objstore_get(s, k, &got, &n));
    assert_int_equal(n, strlen(want));
    assert_memory_equal(got, want, n);
    shale_free(got);
}

void fl_expect_missing(shale_objstore *s, uint64_t id)
{
    char k[64];
    fl_wk(id, k, sizeof k);
    void *got = NULL;
    size_t n = 0;
    TU_RC(SHALE_NOT_FOUND, shale_objstore_get(s, k, &got, &n));
    TU_RC(SHALE_NOT_FOUND, shale_objstore_head(s, k, NULL, NULL));
}

bool fl_file_exists(const char *root, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    struct stat st;
    return lstat(p, &st) == 0;
}

char *fl_seg_path(const char *root, uint64_t no)
{
    size_t n = strlen(root) + 64;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/.wal-log/%020llu.seg", root, (unsigned long long)no);
    return p;
}

int fl_count_segs(const char *root)
{
    int n = 0;
    for (uint64_t no = 1; no < 1000; no++) {
        char *p = fl_seg_path(root, no);
        struct stat st;
        n += stat(p, &st) == 0;
        free(p);
    }
    return n;
}

int fl_count_other_files(const char *root)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/.wal-log", root);
    DIR *d = opendir(p);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
             (strlen(de->d_name) != 24 || strcmp(de->d_name + 20, ".seg"));
    closedir(d);
    return n;
}
