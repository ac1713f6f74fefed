/*
 * test_env.c -- one owner of store access (engine/db/env.c) and object keys
 * (engine/db/paths.c).
 *
 * How "the caller's options reach every store" is checked without S3:
 * objstore.c's test hook (objstore_set_open_hook) sees every
 * shale_objstore_open() in the process with the options it got.  Each test
 * hands the engine options carrying marker values in every field (endpoint,
 * region, keys, token, path style, retries, timeout), in strings the test
 * malloc'd, and overwrites and frees those strings as soon as the call
 * returns.  The hook compares every open's options with the markers, kept
 * apart: an open with default options (NULL endpoint), with options copied
 * shallowly (the caller's strings, now freed: ASan reports it, and without
 * ASan the overwritten bytes do not match) or with the strings dropped
 * (what db_env_new did) is a failure naming the URI.  The hook also
 * records which URIs were opened, so each test asserts that the path it
 * covers (parent SST reads, pin release, grandparent pins, GC, verify, the
 * reader) did open the store it is about, after the caller's strings were
 * gone.  The negative control shows the hook catches a default-options open.
 */
#include "support/dbtest.h"
#include "db/env.h"
#include "db/paths.h"
#include "objstore/objstore_int.h"
#include "request.h"
#include "splitter.h"
#include "util/misc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- markers and the recorder ------------------------------------------ */

static const char M_ENDPOINT[] = "http://127.0.0.1:9/env-test";
static const char M_REGION[] = "env-test-1";
static const char M_ACCESS[] = "AKIDENVTEST";
static const char M_SECRET[] = "env/test/secret";
static const char M_TOKEN[] = "env-test-session-token";
#define M_PATH_STYLE 1
#define M_RETRIES 3
#define M_TIMEOUT 4321

typedef struct recorder {
    pthread_mutex_t mu;
    bool on;
    unsigned opens, bad;
    char first_bad[512];
    char uris[64][256];
    unsigned nuris;
} recorder;

static recorder g_rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool str_is(const char *got, const char *want)
{
    return got && !strcmp(got, want);
}

static void hook(void *ctx, const char *uri, const shale_objstore_options *o)
{
    recorder *r = ctx;
    pthread_mutex_lock(&r->mu);
    if (r->on) {
        r->opens++;
        const char *why = !str_is(o->s3_endpoint, M_ENDPOINT)       ? "s3_endpoint"
                          : !str_is(o->s3_region, M_REGION)         ? "s3_region"
                          : !str_is(o->s3_access_key, M_ACCESS)     ? "s3_access_key"
                          : !str_is(o->s3_secret_key, M_SECRET)     ? "s3_secret_key"
                          : !str_is(o->s3_session_token, M_TOKEN)   ? "s3_session_token"
                          : o->s3_path_style != M_PATH_STYLE        ? "s3_path_style"
                          : o->max_retries != M_RETRIES             ? "max_retries"
                          : o->timeout_ms != M_TIMEOUT              ? "timeout_ms"
                                                                    : NULL;
        if (why && !r->bad++)
            snprintf(r->first_bad, sizeof r->first_bad, "%s opened with the wrong %s (%s)", uri,
                     why, o->s3_endpoint ? "strings set" : "endpoint NULL: defaults");
        bool seen = false;
        for (unsigned i = 0; i < r->nuris && !seen; i++)
            seen = !strcmp(r->uris[i], uri);
        if (!seen && r->nuris < 64)
            snprintf(r->uris[r->nuris++], sizeof r->uris[0], "%s", uri);
    }
    pthread_mutex_unlock(&r->mu);
}

static void rec_start(void)
{
    pthread_mutex_lock(&g_rec.mu);
    g_rec.on = true;
    g_rec.opens = g_rec.bad = g_rec.nuris = 0;
    g_rec.first_bad[0] = '\0';
    pthread_mutex_unlock(&g_rec.mu);
}

static void rec_stop(void)
{
    pthread_mutex_lock(&g_rec.mu);
    g_rec.on = false;
    pthread_mutex_unlock(&g_rec.mu);
}

/* Every open since rec_start() had the markers. */
static void rec_assert_clean(const char *what)
{
    pthread_mutex_lock(&g_rec.mu);
    unsigned bad = g_rec.bad;
    char first[512];
    snprintf(first, sizeof first, "%s", g_rec.first_bad);
    pthread_mutex_unlock(&g_rec.mu);
    if (bad)
        fail_msg("%s: %u store open(s) without the caller's options; first: %s", what, bad,
                 first);
}

/* uri was opened since rec_start(). */
static void rec_assert_opened(const char *uri, const char *what)
{
    bool seen = false;
    pthread_mutex_lock(&g_rec.mu);
    for (unsigned i = 0; i < g_rec.nuris && !seen; i++)
        seen = !strcmp(g_rec.uris[i], uri);
    unsigned n = g_rec.nuris;
    pthread_mutex_unlock(&g_rec.mu);
    if (!seen)
        fail_msg("%s: %s was not opened (%u other URIs were): the path under test did not "
                 "run", what, uri, n);
}

static unsigned rec_opens(void)
{
    pthread_mutex_lock(&g_rec.mu);
    unsigned n = g_rec.opens;
    pthread_mutex_unlock(&g_rec.mu);
    return n;
}

/* ---- caller-owned option strings --------------------------------------- */

typedef struct caller {
    shale_options o;
    char *s[6];
} caller;

static char *dup_str(const char *s)
{
    char *p = malloc(strlen(s) + 1);
    assert_non_null(p);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

/* Options as an application would build them: base's settings, the
 * markers in every store field, every string in memory the caller frees. */
static void caller_init(caller *c, const shale_options *base, const char *wal_uri)
{
    c->o = *base;
    c->o.store.s3_endpoint = c->s[0] = dup_str(M_ENDPOINT);
    c->o.store.s3_region = c->s[1] = dup_str(M_REGION);
    c->o.store.s3_access_key = c->s[2] = dup_str(M_ACCESS);
    c->o.store.s3_secret_key = c->s[3] = dup_str(M_SECRET);
    c->o.store.s3_session_token = c->s[4] = dup_str(M_TOKEN);
    c->o.store.s3_path_style = M_PATH_STYLE;
    c->o.store.max_retries = M_RETRIES;
    c->o.store.timeout_ms = M_TIMEOUT;
    c->s[5] = wal_uri ? dup_str(wal_uri) : NULL;
    c->o.wal_store_uri = c->s[5];
}

/* The caller is done with its options: overwrite, then free, every string. */
static void caller_scrub(caller *c)
{
    for (size_t i = 0; i < 6; i++) {
        if (c->s[i]) {
            memset(c->s[i], 'X', strlen(c->s[i]));
            free(c->s[i]);
        }
        c->s[i] = NULL;
    }
}

/* ---- fixture ----------------------------------------------------------- */

typedef struct fixture {
    char *dir;
    char *parent, *parent_wal, *child, *child_wal, *child2, *child2_wal;
    shale_options o;        /* small options, no markers (the test's own) */
    char cp[37];            /* a full-scope checkpoint on the parent */
} fixture;

#define NKEYS 300

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("env");
    f->parent = tu_file_uri(f->dir, "parent");
    f->parent_wal = tu_file_uri(f->dir, "parent-wal");
    f->child = tu_file_uri(f->dir, "child");
    f->child_wal = tu_file_uri(f->dir, "child-wal");
    f->child2 = tu_file_uri(f->dir, "child2");
    f->child2_wal = tu_file_uri(f->dir, "child2-wal");
    dt_small_options(&f->o);
    objstore_set_open_hook(hook, &g_rec);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    rec_stop();
    objstore_set_open_hook(NULL, NULL);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->parent);
    free(f->parent_wal);
    free(f->child);
    free(f->child_wal);
    free(f->child2);
    free(f->child2_wal);
    free(f);
    return 0;
}

/* A parent whose keys live in L0 SSTs and sorted runs (so a clone's reads
 * are reads of the parent's SSTs), with a full-scope checkpoint. */
static void make_parent(fixture *f)
{
    shale_options o = f->o;
    o.wal_store_uri = f->parent_wal;
    shale_db *p = NULL;
    TU_OK(shale_open(f->parent, &o, &p));
    for (unsigned i = 0; i < NKEYS; i++)
        dt_put(p, i, 1);
    TU_OK(shale_compact(p, true));
    for (unsigned i = 0; i < NKEYS; i += 3)
        dt_put(p, i, 2);
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(p, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    snprintf(f->cp, sizeof f->cp, "%s", cp.id);
    TU_OK(shale_close(p));
}

static unsigned parent_version(unsigned i)
{
    return i % 3 == 0 ? 2 : 1;
}

/* Clones parent -> child through caller options, checking its opens. */
static void clone_child(fixture *f)
{
    caller c;
    caller_init(&c, &f->o, NULL);
    shale_clone_spec sp = {0};
    sp.parent_uri = f->parent;
    sp.parent_wal_uri = f->parent_wal;
    sp.parent_checkpoint_id = f->cp;
    sp.child_uri = f->child;
    sp.child_wal_uri = f->child_wal;
    rec_start();
    TU_OK(shale_clone(&sp, &c.o, NULL));
    caller_scrub(&c);
    rec_assert_clean("shale_clone");
    rec_assert_opened(f->parent, "shale_clone");
    rec_stop();
}

/* Is there a checkpoint named "clone:<child>" in store uri? */
static bool has_pin(const fixture *f, const char *uri, const char *child)
{
    shale_checkpoint *cps = NULL;
    size_t n = 0;
    TU_OK(shale_checkpoint_list(uri, &f->o, &cps, &n));
    char want[256];
    snprintf(want, sizeof want, "clone:%s", child);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= !strcmp(cps[i].name, want);
    shale_free(cps);
    return found;
}

/* ---- paths ------------------------------------------------------------- */

static void test_paths_format_and_parse(void **state)
{
    (void)state;
    char k[PATH_KEY_MAX];
    uint64_t id = 0;
    manifest_key(42, k, sizeof k);
    assert_string_equal(k, "manifest/00000000000000000042.manifest");
    assert_true(manifest_key_parse(k, &id));
    assert_int_equal(id, 42);
    wal_key(UINT64_MAX, k, sizeof k);
    assert_string_equal(k, "wal/18446744073709551615.sst");
    assert_true(wal_key_parse(k, &id));
    assert_true(id == UINT64_MAX);
    char ulid[27], got[27];
    ulid_new(ulid);
    sst_key(ulid, k, sizeof k);
    assert_int_equal(strncmp(k, "compacted/", 10), 0);
    assert_true(sst_key_parse(k, got));
    assert_string_equal(got, ulid);
    probe_key("abc", k, sizeof k);
    assert_string_equal(k, ".probe/abc");
    char j[PATH_JOURNAL_MAX], name[PATH_JOURNAL_NAME_MAX + 1];
    assert_true(journal_key("split-a", 7, j, sizeof j));
    assert_string_equal(j, "splits/split-a/00000000000000000007.json");
    assert_true(journal_key_parse(j, name, sizeof name, &id));
    assert_string_equal(name, "split-a");
    assert_int_equal(id, 7);
    /* Names the journal cannot hold are refused, not truncated. */
    assert_false(journal_key("a/b", 1, j, sizeof j));
    assert_false(journal_key("", 1, j, sizeof j));
    char small[20];
    assert_false(journal_key("split-a", 1, small, sizeof small));
    assert_string_equal(small, "");
}

/* Every malformed key is refused and leaves the output alone: nothing is
 * taken as id 0. */
static void test_paths_parsers_are_strict(void **state)
{
    (void)state;
    static const char *bad_manifest[] = {
        "manifest/00000000000000000000.manifest",   /* id 0 is never written */
        "manifest/0000000000000000001.manifest",    /* 19 digits */
        "manifest/000000000000000000001.manifest",  /* 21 digits */
        "manifest/0000000000000000000a.manifest",
        "manifest/-0000000000000000001.manifest",
        "manifest/ 0000000000000000001.manifest",
        "manifest/99999999999999999999.manifest",   /* > UINT64_MAX */
        "manifest/00000000000000000001.manifest.tmp",
        "manifest/00000000000000000001.manifes",
        "manifests/0000000000000000001.manifest",
        "x/manifest/00000000000000000001.manifest",
        "manifest/00000000000000000001.sst",
        "",
    };
    for (size_t i = 0; i < sizeof bad_manifest / sizeof *bad_manifest; i++) {
        uint64_t id = 12345;
        if (manifest_key_parse(bad_manifest[i], &id) || id != 12345)
            fail_msg("manifest_key_parse took '%s'", bad_manifest[i]);
    }
    static const char *bad_wal[] = {
        "wal/00000000000000000000.sst", "wal/0000000000000000001.sst",
        "wal/00000000000000000001.sst.bak", "wal/00000000000000000001.SST",
        "wal/0000000000000000000x.sst", "wal/18446744073709551616.sst",
        "wal/00000000000000000001", "compacted/00000000000000000001.sst",
    };
    for (size_t i = 0; i < sizeof bad_wal / sizeof *bad_wal; i++) {
        uint64_t id = 12345;
        if (wal_key_parse(bad_wal[i], &id) || id != 12345)
            fail_msg("wal_key_parse took '%s'", bad_wal[i]);
    }
    assert_false(manifest_key_parse(NULL, &(uint64_t){0}));
    static const char *bad_sst[] = {
        "compacted/01HZX3K9Q4W8Y6T2V0N5R7M1AB.ss",   /* suffix */
        "compacted/01HZX3K9Q4W8Y6T2V0N5R7M1A.sst",   /* 25 chars */
        "compacted/01HZX3K9Q4W8Y6T2V0N5R7M1ABC.sst", /* 27 chars */
        "compacted/01hzx3k9q4w8y6t2v0n5r7m1ab.sst",  /* lower case */
        "compacted/01HZX3K9Q4W8Y6T2V0N5R7M1AI.sst",  /* I is not Crockford */
        "compacted/01HZX3K9Q4W8Y6T2V0N5R7M1AU.sst",  /* nor U */
        "compacted/81HZX3K9Q4W8Y6T2V0N5R7M1AB.sst",  /* time > 48 bits */
        "compacted/01HZX3K9Q4W8Y6T2V0N5R7M1AB.sst.tmp",
        "wal/01HZX3K9Q4W8Y6T2V0N5R7M1AB.sst",
    };
    for (size_t i = 0; i < sizeof bad_sst / sizeof *bad_sst; i++) {
        char id[27] = "untouched";
        if (sst_key_parse(bad_sst[i], id) || strcmp(id, "untouched"))
            fail_msg("sst_key_parse took '%s'", bad_sst[i]);
    }
    char id[27];
    assert_true(sst_key_parse("compacted/01HZX3K9Q4W8Y6T2V0N5R7M1AB.sst", id));
    static const char *bad_journal[] = {
        "splits//00000000000000000001.json", "splits/a/0000000000000000001.json",
        "splits/a/00000000000000000001.json.tmp", "splits/a/b/00000000000000000001.json",
        "splits/a/0000000000000000000x.json", "split/a/00000000000000000001.json",
        "splits/a",
    };
    for (size_t i = 0; i < sizeof bad_journal / sizeof *bad_journal; i++) {
        char name[64] = "untouched";
        uint64_t v = 12345;
        if (journal_key_parse(bad_journal[i], name, sizeof name, &v) || v != 12345 ||
            strcmp(name, "untouched"))
            fail_msg("journal_key_parse took '%s'", bad_journal[i]);
    }
    /* A name longer than the caller's buffer is refused, not cut. */
    char tiny[3];
    uint64_t v;
    assert_false(journal_key_parse("splits/abc/00000000000000000001.json", tiny, sizeof tiny, &v));
}

/* ---- the env itself ---------------------------------------------------- */

/* The hook itself catches an open with default options. */
static void test_hook_catches_default_options(void **state)
{
    fixture *f = *state;
    rec_start();
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &s));
    shale_objstore_close(s);
    rec_stop();
    pthread_mutex_lock(&g_rec.mu);
    unsigned bad = g_rec.bad;
    pthread_mutex_unlock(&g_rec.mu);
    assert_int_equal(bad, 1);
}

typedef struct race {
    db_env *e;
    const char *uri;
    shale_objstore *got;
    shale_status rc;
} race;

static void *race_store(void *arg)
{
    race *r = arg;
    r->rc = db_env_store(r->e, r->uri, &r->got);
    return NULL;
}

/* The env keeps its own copies of every string, opens each URI once
 * (also when threads ask at once), and hands out the main store for its
 * own URI, with or without a trailing '/'. */
static void test_env_copies_options_and_pools_stores(void **state)
{
    fixture *f = *state;
    caller c;
    caller_init(&c, &f->o, f->parent_wal);
    rec_start();
    db_env *e = NULL;
    TU_OK(db_env_open(f->parent, &c.o, &e));
    caller_scrub(&c);
    const shale_options *o = db_env_options(e);
    assert_string_equal(o->store.s3_endpoint, M_ENDPOINT);
    assert_string_equal(o->store.s3_secret_key, M_SECRET);
    assert_string_equal(o->store.s3_session_token, M_TOKEN);
    assert_string_equal(o->wal_store_uri, f->parent_wal);
    race r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (race){e, f->child, NULL, SHALE_IO};
        assert_int_equal(pthread_create(&t[i], NULL, race_store, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        TU_OK(r[i].rc);
        assert_ptr_equal(r[i].got, r[0].got);
    }
    char slash[512];
    snprintf(slash, sizeof slash, "%s/", f->child);
    shale_objstore *s = NULL;
    TU_OK(db_env_store(e, slash, &s));
    assert_ptr_equal(s, r[0].got);
    TU_OK(db_env_store(e, f->parent, &s));
    assert_ptr_equal(s, db_env_main(e));
    TU_OK(db_env_store(e, NULL, &s));
    assert_ptr_equal(s, db_env_main(e));
    assert_int_equal(rec_opens(), 2);   /* the main store and the child, once each */
    rec_assert_clean("db_env");
    rec_stop();
    db_env_unref(e);
}

/* ---- every path that opens a store on a database's behalf --------------- */

/* The writer of a clone reads its parent's SSTs, and its compactor releases
 * the pin in the parent, after the caller's option strings are gone. */
static void test_clone_writer_reads_and_compactor_pins(void **state)
{
    fixture *f = *state;
    make_parent(f);
    clone_child(f);
    assert_true(has_pin(f, f->parent, f->child));
    caller c;
    caller_init(&c, &f->o, f->child_wal);
    rec_start();
    shale_db *db = NULL;
    TU_OK(shale_open(f->child, &c.o, &db));
    caller_scrub(&c);
    for (unsigned i = 0; i < NKEYS; i++)
        dt_expect(db, i, parent_version(i));
    rec_assert_opened(f->parent, "the clone's reads of parent SSTs");
    for (unsigned i = 0; i < 40; i++)
        dt_put(db, i, 3);
    /* The compactor thread merges the parent's SSTs into the child's own
     * and, with no SST left in the parent, deletes the pin there. */
    TU_OK(shale_compact(db, true));
    for (unsigned i = 0; i < NKEYS; i++)
        dt_expect(db, i, i < 40 ? 3 : parent_version(i));
    TU_OK(shale_close(db));
    rec_assert_clean("the clone's writer and compactor");
    rec_stop();
    assert_false(has_pin(f, f->parent, f->child));
}

/* A clone of a clone pins its grandparent (a store the clone run opens by
 * the URI in the parent's manifest) and reads its SSTs. */
static void test_clone_of_clone(void **state)
{
    fixture *f = *state;
    make_parent(f);
    clone_child(f);
    shale_options oc = f->o;
    oc.wal_store_uri = f->child_wal;
    shale_db *c1 = NULL;
    TU_OK(shale_open(f->child, &oc, &c1));
    for (unsigned i = 0; i < 10; i++)
        dt_put(c1, i, 4);
    shale_checkpoint ccp;
    TU_OK(shale_checkpoint_create(c1, SHALE_CHECKPOINT_ALL, 0, NULL, &ccp));
    TU_OK(shale_close(c1));

    caller c;
    caller_init(&c, &f->o, NULL);
    shale_clone_spec sp = {0};
    sp.parent_uri = f->child;
    sp.parent_wal_uri = f->child_wal;
    sp.parent_checkpoint_id = ccp.id;
    sp.child_uri = f->child2;
    sp.child_wal_uri = f->child2_wal;
    rec_start();
    TU_OK(shale_clone(&sp, &c.o, NULL));
    caller_scrub(&c);
    rec_assert_opened(f->parent, "the grandparent's pin");
    rec_assert_clean("clone of a clone");
    rec_stop();
    assert_true(has_pin(f, f->parent, f->child2));

    caller_init(&c, &f->o, f->child2_wal);
    rec_start();
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->child2, &c.o, NULL, &r));
    caller_scrub(&c);
    for (unsigned i = 0; i < NKEYS; i++)
        dt_expect_reader(r, i, i < 10 ? 4 : parent_version(i));
    rec_assert_opened(f->parent, "the grandchild's reads of grandparent SSTs");
    shale_reader_close(r);
    rec_assert_clean("the grandchild's reader");
    rec_stop();
}

/* A reader of a clone opens the parent store lazily, at its first read of
 * a parent SST: after shale_reader_open returned. */
static void test_reader_parent_reads(void **state)
{
    fixture *f = *state;
    make_parent(f);
    clone_child(f);
    caller c;
    caller_init(&c, &f->o, f->child_wal);
    rec_start();
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->child, &c.o, NULL, &r));
    caller_scrub(&c);
    for (unsigned i = 0; i < NKEYS; i++)
        dt_expect_reader(r, i, parent_version(i));
    uint64_t n = 0;
    TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &n));
    assert_int_equal(n, NKEYS);
    TU_OK(shale_reader_refresh(r));
    rec_assert_opened(f->parent, "the reader's parent SST reads");
    shale_reader_close(r);
    rec_assert_clean("the reader");
    rec_stop();
}

/* shale_verify reads the parent's SSTs the clone names; shale_gc opens the
 * database and its WAL store; the admin checkpoint calls open the store. */
static void test_verify_gc_and_admin(void **state)
{
    fixture *f = *state;
    make_parent(f);
    clone_child(f);
    shale_options oc = f->o;
    oc.wal_store_uri = f->child_wal;
    shale_db *db = NULL;
    TU_OK(shale_open(f->child, &oc, &db));   /* records the child's WAL store */
    dt_put(db, 1, 5);
    TU_OK(shale_close(db));

    caller c;
    caller_init(&c, &f->o, NULL);
    rec_start();
    shale_verify_result vr;
    TU_OK(shale_verify(f->child, &c.o, &vr));
    assert_true(vr.ssts_checked > 0);
    rec_assert_opened(f->parent, "verify of the parent's SSTs");
    rec_assert_opened(f->child_wal, "verify of the WAL");
    shale_gc_options g;
    shale_gc_options_init(&g);
    g.min_age_ms = 0;
    shale_gc_result gr;
    TU_OK(shale_gc(f->child, &c.o, &g, &gr));
    TU_OK(shale_gc(f->parent, &c.o, &g, &gr));
    rec_assert_opened(f->parent_wal, "GC of the parent's WAL store");
    shale_checkpoint cp;
    TU_OK(shale_admin_checkpoint_create(f->child, &c.o, 60000, "env-test", &cp));
    TU_OK(shale_checkpoint_refresh(f->child, &c.o, cp.id, 0));
    TU_OK(shale_checkpoint_delete(f->child, &c.o, cp.id));
    char *json = NULL;
    TU_OK(shale_manifest_show(f->child, &c.o, 0, &json));
    shale_free(json);
    caller_scrub(&c);
    rec_assert_clean("verify, GC and admin calls");
    rec_stop();
    /* GC kept what the clone reads. */
    caller_init(&c, &f->o, f->child_wal);
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->child, &c.o, NULL, &r));
    caller_scrub(&c);
    for (unsigned i = 0; i < NKEYS; i++)
        dt_expect_reader(r, i, i == 1 ? 5 : parent_version(i));
    shale_reader_close(r);
}

/* ---- the agent's split: Fence .. Verify through the engine -------------- */

/* A 2-way split through shale-agent's state machine with the endpoint and
 * keys only in the agent's options (as the Helm chart's ConfigMap gives
 * them): every store any step opens -- the journal, the parent for fencing
 * and flushing, the WAL wipe, the clone, Verify's readers of the children
 * (which read the parent's SSTs) and its reference checks -- gets them,
 * after the strings the agent was configured with are gone. */
static void split_with_options(fixture *f, split_verify mode)
{
    shale_options op = f->o;
    op.wal_store_uri = f->parent_wal;
    shale_db *db = NULL;
    TU_OK(shale_open(f->parent, &op, &db));
    for (unsigned i = 0; i < NKEYS; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    for (unsigned i = 0; i < NKEYS; i += 5)
        dt_put(db, i, 2);          /* only in the WAL */
    TU_OK(shale_close(db));

    caller c;
    caller_init(&c, &f->o, NULL);
    char *shard = dup_str("orders-0"), *store = dup_str(f->parent), *wal = dup_str(f->parent_wal);
    splitter_options so;
    splitter_options_init(&so);
    so.shard = shard;
    so.store_uri = store;
    so.wal_store_uri = wal;
    so.db = c.o;
    so.db.wal_store_uri = NULL;
    so.verify = mode;
    rec_start();
    splitter *sp = NULL;
    TU_OK(splitter_new(&so, &sp));
    caller_scrub(&c);
    memset(shard, 'X', strlen(shard));
    memset(store, 'X', strlen(store));
    memset(wal, 'X', strlen(wal));
    free(shard);
    free(store);
    free(wal);
    TU_OK(splitter_start(sp));
    char lo[32], text[2048];
    dt_key(lo, sizeof lo, NKEYS / 2);
    size_t n = (size_t)snprintf(
        text, sizeof text,
        "name: env-split\nparent:\n  shard: orders-0\nchildren:\n"
        "  - name: a\n    store: %s\n    walStore: %s\n    range: {start: \"\", end: \"%s\"}\n"
        "  - name: b\n    store: %s\n    walStore: %s\n    range: {start: \"%s\", end: \"\"}\n",
        f->child, f->child_wal, lo, f->child2, f->child2_wal, lo);
    split_request *r = NULL;
    TU_OK(split_request_parse("test", text, n, &r));
    split_service *svc = splitter_service(sp);
    bool created = false;
    char *st = NULL;
    TU_OK(svc->ops->submit(svc, r, &created, &st));
    free(st);
    split_request_free(r);
    TU_OK(splitter_wait_idle(sp, 120000));
    TU_OK(svc->ops->get(svc, "env-split", &st));
    if (!strstr(st, "\"phase\": \"Complete\""))
        fail_msg("the split did not complete:\n%s", st);
    free(st);
    splitter_free(sp);
    rec_assert_opened(f->child, "the split's clone and Verify");
    rec_assert_opened(f->child2_wal, "the split's clone and Verify");
    rec_assert_clean(mode == SPLIT_VERIFY_REFERENCES ? "split, Verify by references"
                                                     : "split, full Verify");
    rec_stop();
    const char *kid[2] = {f->child, f->child2}, *kwal[2] = {f->child_wal, f->child2_wal};
    for (int k = 0; k < 2; k++) {
        shale_options o = f->o;
        o.wal_store_uri = kwal[k];
        shale_reader *rd = NULL;
        TU_OK(shale_reader_open(kid[k], &o, NULL, &rd));
        for (unsigned i = 0; i < NKEYS; i++) {
            bool mine = k == 0 ? i < NKEYS / 2 : i >= NKEYS / 2;
            dt_expect_reader(rd, i, mine ? (i % 5 == 0 ? 2 : 1) : 0);
        }
        shale_reader_close(rd);
    }
}

static void test_split_full_verify(void **state)
{
    split_with_options(*state, SPLIT_VERIFY_FULL);
}

static void test_split_verify_by_references(void **state)
{
    split_with_options(*state, SPLIT_VERIFY_REFERENCES);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_format_and_parse),
        cmocka_unit_test(test_paths_parsers_are_strict),
        T(test_hook_catches_default_options),
        T(test_env_copies_options_and_pools_stores),
        T(test_clone_writer_reads_and_compactor_pins),
        T(test_clone_of_clone),
        T(test_reader_parent_reads),
        T(test_verify_gc_and_admin),
        T(test_split_full_verify),
        T(test_split_verify_by_references),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
