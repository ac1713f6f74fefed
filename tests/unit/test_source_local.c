/*
 * test_source_local.c -- the local request directory (agent/source_local.c)
 * against a recording fake of the split service:
 * - a directory others can write (world, or a group the agent is not in),
 *   and a subdirectory that is a symlink, are refused at start, naming it;
 * - a symlinked request file is refused (and the file it points to is
 *   never read); names that break the split-name rules never become paths;
 *   a status for a name like "../x" is not written anywhere;
 * - a garbage request file named like a finished split leaves the split's
 *   status as it was: the problem goes to errors/<file>.json;
 * - status files are replaced atomically and a symlink planted at a
 *   status path is replaced, not written through.
 */
#include "support/testutil.h"
#include "source_local.h"
#include "util/status_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

typedef struct fake {
    split_service base;
    int submits, aborts;
    char last[128];
} fake;

static shale_status f_submit(split_service *s, const split_request *r, bool *created,
                             char **st)
{
    fake *f = (fake *)s;
    /* The real service validates names (request.c) before anything. */
    for (const char *p = r->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return shale_err(SHALE_INVALID_ARGUMENT, "field 'name': bad");
    f->submits++;
    snprintf(f->last, sizeof f->last, "%s", r->name);
    *created = true;
    return asprintf(st, "{\"name\": \"%s\", \"phase\": \"Accepted\"}", r->name) > 0
               ? SHALE_OK : SHALE_NO_MEMORY;
}

static shale_status f_get(split_service *s, const char *name, char **st)
{
    (void)s;
    (void)name;
    *st = NULL;
    return SHALE_NOT_FOUND;
}

static shale_status f_list(split_service *s, char **out)
{
    (void)s;
    *out = strdup("[]");
    return SHALE_OK;
}

static shale_status f_abort(split_service *s, const char *name, char **st)
{
    fake *f = (fake *)s;
    if (strcmp(name, f->last))   /* the real one knows only splits it took */
        return shale_err(SHALE_NOT_FOUND, "no split named %s", name);
    f->aborts++;
    return asprintf(st, "{\"name\": \"%s\", \"phase\": \"Aborted\"}", name) > 0
               ? SHALE_OK : SHALE_NO_MEMORY;
}

static bool f_ready(split_service *s)
{
    (void)s;
    return true;
}

static const split_service_ops fake_ops = {f_submit, f_get, f_list, f_abort, f_ready};

static char *path(const char *dir, const char *rel)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
    return p;
}

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = path(dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

/* The file's content, or NULL if absent (malloc'd). */
static char *slurp(const char *dir, const char *rel)
{
    char *p = path(dir, rel);
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *REQ = "name: %s\nparent: {shard: s0}\nchildren:\n"
                         "  - {name: a, store: \"file:///tmp/a\", range: {start: \"\", end: m}}\n"
                         "  - {name: b, store: \"file:///tmp/b\", range: {start: m, end: \"\"}}\n";

static void put_request(const char *dir, const char *rel, const char *name)
{
    char text[1024];
    snprintf(text, sizeof text, REQ, name);
    put(dir, rel, text);
}

static void test_dirs_others_can_write_are_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("local-perm");
    fake f = {{&fake_ops}, 0, 0, ""};
    source_local *s = NULL;
    char *base = path(dir, "splits");
    TU_OK(source_local_new(base, 10, &f.base, &s));   /* created private: fine */
    source_local_free(s);
    struct { const char *sub; unsigned mode; const char *want; } cases[] = {
        {"", 0777, "writable by every user"},
        {"", 01777, "writable by every user"},          /* sticky does not help */
        {"/requests", 0773, "writable by every user"},
        {"/status", 0757, "writable by every user"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *p = NULL;
        assert_true(asprintf(&p, "%s%s", base, cases[i].sub) > 0);
        assert_int_equal(chmod(p, cases[i].mode), 0);
        TU_RC(SHALE_INVALID_ARGUMENT, source_local_new(base, 10, &f.base, &s));
        assert_null(s);
        if (!strstr(shale_errmsg(), cases[i].want) || !strstr(shale_errmsg(), p))
            fail_msg("case %zu: %s", i, shale_errmsg());
        assert_int_equal(chmod(p, 0750), 0);
        free(p);
    }
    /* Group-writable: refused for a group the agent is not in, taken for
     * its own. */
    gid_t other = 54321;
    if (getegid() != 0 || geteuid() != 0) {
        /* chgrp to a foreign group needs root; cover the allowed half. */
        assert_int_equal(chmod(base, 0770), 0);
        TU_OK(source_local_new(base, 10, &f.base, &s));
        source_local_free(s);
    } else {
        assert_int_equal(chown(base, (uid_t)-1, other), 0);
        assert_int_equal(chmod(base, 0770), 0);
        TU_RC(SHALE_INVALID_ARGUMENT, source_local_new(base, 10, &f.base, &s));
        assert_non_null(strstr(shale_errmsg(), "a group the agent is not in"));
        assert_int_equal(chown(base, (uid_t)-1, getegid()), 0);
        TU_OK(source_local_new(base, 10, &f.base, &s));
        source_local_free(s);
        /* Owned by another user: refused. */
        assert_int_equal(chmod(base, 0750), 0);
        assert_int_equal(chown(base, 4242, (gid_t)-1), 0);
        TU_RC(SHALE_INVALID_ARGUMENT, source_local_new(base, 10, &f.base, &s));
        assert_non_null(strstr(shale_errmsg(), "owned by uid 4242"));
        assert_int_equal(chown(base, geteuid(), (gid_t)-1), 0);
    }
    /* requests/ replaced by a symlink to a directory anyone can fill. */
    char *req = path(base, "requests"), *elsewhere = path(dir, "elsewhere");
    assert_int_equal(mkdir(elsewhere, 0700), 0);
    assert_int_equal(rmdir(req), 0);
    assert_int_equal(symlink(elsewhere, req), 0);
    TU_RC(SHALE_INVALID_ARGUMENT, source_local_new(base, 10, &f.base, &s));
    assert_non_null(strstr(shale_errmsg(), "symbolic link"));
    free(req);
    free(elsewhere);
    free(base);
    tu_rmtree(dir);
    free(dir);
}

typedef struct fx {
    char *dir;
    fake f;
    source_local *s;
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    x->dir = tu_tmpdir("local");
    x->f.base.ops = &fake_ops;
    TU_OK(source_local_new(x->dir, 10, &x->f.base, &x->s));
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    source_local_free(x->s);
    tu_rmtree(x->dir);
    free(x->dir);
    free(x);
    return 0;
}

static void test_symlinked_request_is_refused(void **state)
{
    fx *x = *state;
    char *outside = path(x->dir, "outside.yaml"), *link = path(x->dir, "requests/evil.yaml");
    put_request(x->dir, "outside.yaml", "evil");
    assert_int_equal(symlink(outside, link), 0);
    source_local_scan_once(x->s);
    assert_int_equal(x->f.submits, 0);
    char *err = slurp(x->dir, "errors/evil.yaml.json");
    assert_non_null(err);
    assert_non_null(strstr(err, "symbolic link"));
    assert_null(slurp(x->dir, "status/evil.json"));
    /* A symlinked cancel file is refused too. */
    char *cl = path(x->dir, "requests/some.cancel");
    assert_int_equal(symlink(outside, cl), 0);
    source_local_scan_once(x->s);
    assert_int_equal(x->f.aborts, 0);
    free(err);
    free(cl);
    free(outside);
    free(link);
}

static void test_names_never_become_paths(void **state)
{
    fx *x = *state;
    /* A request whose name would climb out of status/. */
    put_request(x->dir, "requests/climb.yaml", "../../escape");
    /* File names outside the rules: not even read. */
    put_request(x->dir, "requests/Bad_Name.yaml", "ok-name");
    put(x->dir, "requests/UPPER.cancel", "");
    source_local_scan_once(x->s);
    assert_int_equal(x->f.submits, 0);
    assert_int_equal(x->f.aborts, 0);
    char *e1 = slurp(x->dir, "errors/climb.yaml.json");
    char *e2 = slurp(x->dir, "errors/Bad_Name.yaml.json");
    assert_non_null(e1);
    assert_non_null(e2);
    assert_non_null(strstr(e1, "InvalidRequest"));
    assert_non_null(strstr(e2, "InvalidName"));
    /* The status listener refuses such names as well (a split from any
     * source passes through it). */
    source_local_on_status(x->s, "../../escape", "{}");
    source_local_on_status(x->s, "..", "{}");
    source_local_on_status(x->s, "a/b", "{}");
    char *parent = strdup(x->dir);
    *strrchr(parent, '/') = '\0';
    char *esc = slurp(parent, "escape.json");
    assert_null(esc);
    assert_null(slurp(x->dir, "status/...json"));
    char *sd = path(x->dir, "status");
    DIR *d = opendir(sd);
    free(sd);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 0);   /* nothing written in status/ at all */
    free(parent);
    free(e1);
    free(e2);
}

static void test_garbage_never_overwrites_a_finished_status(void **state)
{
    fx *x = *state;
    const char *done = "{\"name\": \"h1\", \"phase\": \"Complete\"}";
    source_local_on_status(x->s, "h1", done);
    char *before = slurp(x->dir, "status/h1.json");
    assert_string_equal(before, done);
    /* Same file name as the split, garbage inside; then an invalid request
     * naming h1; then a .json file of that name. */
    put(x->dir, "requests/h1.yaml", "{{{{ not a request");
    put(x->dir, "requests/h1.json", "{\"name\": \"h1\"}");
    source_local_scan_once(x->s);
    char *after = slurp(x->dir, "status/h1.json");
    assert_string_equal(after, done);
    char *e1 = slurp(x->dir, "errors/h1.yaml.json"), *e2 = slurp(x->dir, "errors/h1.json.json");
    assert_non_null(e1);
    assert_non_null(e2);
    assert_non_null(strstr(e1, "\"file\": \"h1.yaml\""));
    /* Fixed: taken, and its error file goes. */
    put_request(x->dir, "requests/h1.yaml", "h2");
    source_local_scan_once(x->s);
    assert_int_equal(x->f.submits, 1);
    assert_string_equal(x->f.last, "h2");
    char *gone = slurp(x->dir, "errors/h1.yaml.json");
    assert_null(gone);
    char *st = slurp(x->dir, "status/h2.json");
    assert_non_null(st);
    /* Removed: its error file goes too. */
    char *p = path(x->dir, "requests/h1.json");
    assert_int_equal(unlink(p), 0);
    source_local_scan_once(x->s);
    assert_null(slurp(x->dir, "errors/h1.json.json"));
    free(p);
    free(st);
    free(before);
    free(after);
    free(e1);
    free(e2);
}

static void test_status_replaced_atomically_not_through_links(void **state)
{
    fx *x = *state;
    put(x->dir, "victim", "precious");
    char *victim = path(x->dir, "victim"), *st = path(x->dir, "status/s1.json");
    assert_int_equal(symlink(victim, st), 0);
    source_local_on_status(x->s, "s1", "{\"phase\": \"Accepted\"}");
    char *v = slurp(x->dir, "victim");
    assert_string_equal(v, "precious");           /* not written through */
    struct stat sb;
    assert_int_equal(lstat(st, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));              /* the link was replaced */
    for (int i = 0; i < 50; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"phase\": \"Step%d\"}", i);
        source_local_on_status(x->s, "s1", text);
    }
    char *last = slurp(x->dir, "status/s1.json");
    assert_string_equal(last, "{\"phase\": \"Step49\"}");
    /* No temporary left behind. */
    char *sd = path(x->dir, "status");
    DIR *d = opendir(sd);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    assert_int_equal(n, 1);
    free(sd);
    free(last);
    free(v);
    free(victim);
    free(st);
}

/* Error files follow their request file across a restart of the agent. */
static void test_error_files_across_restarts(void **state)
{
    fx *x = *state;
    put(x->dir, "requests/g.yaml", "garbage: [");
    put(x->dir, "requests/k.yaml", "garbage: [");
    source_local_scan_once(x->s);
    char *e = slurp(x->dir, "errors/g.yaml.json");
    assert_non_null(e);
    free(e);
    source_local_free(x->s);
    x->s = NULL;
    /* While the agent is down: g.yaml removed, k.yaml fixed. */
    char *g = path(x->dir, "requests/g.yaml");
    assert_int_equal(unlink(g), 0);
    free(g);
    put_request(x->dir, "requests/k.yaml", "k1");
    TU_OK(source_local_new(x->dir, 10, &x->f.base, &x->s));
    assert_null(slurp(x->dir, "errors/g.yaml.json"));
    source_local_scan_once(x->s);
    assert_int_equal(x->f.submits, 1);
    assert_null(slurp(x->dir, "errors/k.yaml.json"));
}

static void test_cancel_and_requests_are_taken(void **state)
{
    fx *x = *state;
    put_request(x->dir, "requests/r1.yaml", "r1");
    put(x->dir, "requests/r1.cancel", "");
    put(x->dir, "requests/notes.txt", "ignored");
    source_local_scan_once(x->s);
    source_local_scan_once(x->s);   /* unchanged files are not taken again */
    assert_int_equal(x->f.submits, 1);
    assert_int_equal(x->f.aborts, 1);
    char *st = slurp(x->dir, "status/r1.json");
    assert_non_null(st);
    free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dirs_others_can_write_are_refused),
        cmocka_unit_test_setup_teardown(test_symlinked_request_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_never_become_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_never_overwrites_a_finished_status, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status_replaced_atomically_not_through_links,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_requests_are_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_files_across_restarts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
