/*
 * test_identity.c -- store identity (shale_admin.h): canonical URIs of every
 * spelling of one store, the identity object written by the writer open and
 * the clone, relations by canonical URI and by UUID, emptiness checks and
 * claims that create nothing they should not.
 */
#include "support/dbtest.h"
#include "shale_admin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *canon(const char *uri, const shale_options *o)
{
    char *c = NULL;
    TU_OK(shale_store_canonical_uri(uri, o, &c));
    return c;
}

static char *fmt(const char *f, const char *a, const char *b)
{
    char *s = NULL;
    assert_true(asprintf(&s, f, a, b) > 0);
    return s;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Every file:// spelling of one directory has one canonical URI: the real
 * path, symlinks resolved, whether or not the directory exists yet. */
static void test_file_spellings_are_one_store(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    char *real = NULL;
    {
        char *p = fmt("%s/%s", dir, "db");
        assert_int_equal(mkdir(p, 0755), 0);
        char r[4096];
        assert_non_null(realpath(p, r));
        real = fmt("file://%s%s", r, "");
        free(p);
    }
    char *link = fmt("%s/%s", dir, "link");
    char *target = fmt("%s/%s", dir, "db");
    assert_int_equal(symlink(target, link), 0);
    const char *forms[] = {"file://%s/db/", "file://%s//db", "file://%s/./db",
                           "file://%s/x/../db", "file://%s/link", "file://%s/link/",
                           "file://%s/db/sub/.."};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        char *u = fmt(forms[i], dir, "");
        char *c = canon(u, NULL);
        if (strcmp(c, real))
            fail_msg("%s -> %s, want %s", u, c, real);
        free(c);
        free(u);
    }
    /* A path that does not exist yet: the existing prefix resolved, the
     * rest lexical; nothing is created. */
    char *u = fmt("file://%s/link/new//child/./x/..", dir, "");
    char *c = canon(u, NULL);
    char *want = fmt("%s/new/child", real, "");
    assert_string_equal(c, want);
    char *made = fmt("%s/db/new", dir, "");
    assert_false(exists(made));
    free(made);
    free(want);
    free(c);
    free(u);
    /* fault+ is the same store under a wrapper. */
    u = fmt("fault+file://%s/db/", dir, "");
    c = canon(u, NULL);
    assert_string_equal(c, real);
    free(c);
    free(u);
    TU_RC(SHALE_INVALID_ARGUMENT, shale_store_canonical_uri("file://relative/x", NULL, &c));
    TU_RC(SHALE_INVALID_ARGUMENT, shale_store_canonical_uri("ftp://x/y", NULL, &c));
    free(link);
    free(target);
    free(real);
    tu_rmtree(dir);
    free(dir);
}

/* S3: endpoint scheme and host case, default ports, bucket case and extra
 * slashes do not make another store; another endpoint does. */
static void test_s3_spellings_are_one_store(void **state)
{
    (void)state;
    shale_options a, b;
    shale_options_init(&a);
    shale_options_init(&b);
    a.store.s3_endpoint = "http://LocalHost:80/";
    b.store.s3_endpoint = "HTTP://localhost";
    char *ca = canon("s3://Orders//shards/p0/", &a);
    char *cb = canon("s3://orders/shards//p0", &b);
    assert_string_equal(ca, "s3+http://localhost/orders/shards/p0");
    assert_string_equal(ca, cb);
    free(cb);
    b.store.s3_endpoint = "https://localhost:443";
    cb = canon("s3://orders/shards/p0", &b);
    assert_string_equal(cb, "s3+https://localhost/orders/shards/p0");   /* https is other */
    free(cb);
    b.store.s3_endpoint = "http://localhost:9000";
    cb = canon("s3://orders/shards/p0", &b);
    assert_string_equal(cb, "s3+http://localhost:9000/orders/shards/p0");
    free(cb);
    /* "." and ".." are literal in S3 keys: such a prefix is refused. */
    TU_RC(SHALE_INVALID_ARGUMENT, shale_store_canonical_uri("s3://orders/a/../p0", &a, &cb));
    TU_RC(SHALE_INVALID_ARGUMENT, shale_store_canonical_uri("s3:///p0", &a, &cb));
    /* Inside / containing by prefix, on the canonical form. */
    shale_store_relation rel;
    TU_OK(shale_store_relate("s3://ORDERS/shards/p0/kid", "s3://orders//shards/p0/", &a,
                             &rel));
    assert_int_equal(rel, SHALE_STORE_INSIDE);
    TU_OK(shale_store_relate("s3://orders/shards", "s3://orders/shards/p0", &a, &rel));
    assert_int_equal(rel, SHALE_STORE_CONTAINS);
    TU_OK(shale_store_relate("s3://orders/shards/p0", "s3://ORDERS/shards/p0//", &a, &rel));
    assert_int_equal(rel, SHALE_STORE_SAME);
    free(ca);
}

static void test_relations_by_path(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    char *p = tu_file_uri(dir, "p"), *pk = tu_file_uri(dir, "p/kid");
    char *pp = tu_file_uri(dir, "pp"), *top = tu_file_uri(dir, NULL);
    shale_store_relation rel;
    TU_OK(shale_store_relate(pk, p, NULL, &rel));
    assert_int_equal(rel, SHALE_STORE_INSIDE);
    TU_OK(shale_store_relate(top, p, NULL, &rel));
    assert_int_equal(rel, SHALE_STORE_CONTAINS);
    TU_OK(shale_store_relate(pp, p, NULL, &rel));         /* "pp" is not inside "p" */
    assert_int_equal(rel, SHALE_STORE_APART);
    TU_OK(shale_store_relate("mem://a", "mem://a/b", NULL, &rel));   /* mem is flat */
    assert_int_equal(rel, SHALE_STORE_APART);
    TU_OK(shale_store_relate("fault+mem://a", "mem://a", NULL, &rel));
    assert_int_equal(rel, SHALE_STORE_SAME);
    /* Nothing was made by looking. */
    char *made = fmt("%s/%s", dir, "p");
    assert_false(exists(made));
    free(made);
    free(p);
    free(pk);
    free(pp);
    free(top);
    tu_rmtree(dir);
    free(dir);
}

/* The writer open writes kind db in the main store and kind wal in a
 * separate WAL store; a reopen keeps them; a store from before identities
 * gets one at its next writer open. */
static void test_writer_open_writes_identities(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    char *db_uri = tu_file_uri(dir, "db"), *wal = tu_file_uri(dir, "wal");
    shale_options o;
    dt_small_options(&o);
    o.wal_store_uri = wal;
    shale_db *db = NULL;
    TU_OK(shale_open(db_uri, &o, &db));
    dt_put(db, 1, 1);
    TU_OK(shale_close(db));
    shale_store_identity a, w;
    TU_OK(shale_store_identity_read(db_uri, &o, &a));
    TU_OK(shale_store_identity_read(wal, &o, &w));
    assert_int_equal(a.kind, SHALE_STORE_KIND_DB);
    assert_int_equal(w.kind, SHALE_STORE_KIND_WAL);
    assert_string_not_equal(a.uuid, w.uuid);
    char *c = canon(db_uri, NULL);
    assert_string_equal(a.uri, c);
    free(c);
    assert_int_equal(strlen(a.created), 20);                  /* 2026-01-01T00:00:00Z */
    dt_create(db_uri, &o);
    shale_store_identity again;
    TU_OK(shale_store_identity_read(db_uri, &o, &again));
    assert_string_equal(again.uuid, a.uuid);                  /* written once */
    shale_store_identity_clear(&again);
    /* An old store: no identity object.  It opens, and gets one. */
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(db_uri, NULL, &s));
    TU_OK(shale_objstore_delete(s, ".shale/identity.json"));
    shale_objstore_close(s);
    TU_RC(SHALE_NOT_FOUND, shale_store_identity_read(db_uri, &o, &again));
    TU_OK(shale_open(db_uri, &o, &db));
    dt_expect(db, 1, 1);
    TU_OK(shale_close(db));
    TU_OK(shale_store_identity_read(db_uri, &o, &again));
    assert_int_equal(again.kind, SHALE_STORE_KIND_DB);
    assert_string_not_equal(again.uuid, a.uuid);
    shale_store_identity_clear(&again);
    shale_store_identity_clear(&a);
    shale_store_identity_clear(&w);
    free(db_uri);
    free(wal);
    tu_rmtree(dir);
    free(dir);
}

/* Two canonical URIs, one store (here: the identity object carried over,
 * as a bind mount or a second endpoint name would show it): SAME. */
static void test_same_uuid_is_same_store(void **state)
{
    (void)state;
    char *a = tu_mem_uri("ida"), *b = tu_mem_uri("idb");
    shale_options o;
    dt_small_options(&o);
    dt_create(a, &o);
    shale_store_relation rel;
    TU_OK(shale_store_relate(a, b, NULL, &rel));
    assert_int_equal(rel, SHALE_STORE_APART);
    shale_objstore *sa = NULL, *sb = NULL;
    TU_OK(shale_objstore_open(a, NULL, &sa));
    TU_OK(shale_objstore_open(b, NULL, &sb));
    void *data = NULL;
    size_t len = 0;
    TU_OK(shale_objstore_get(sa, ".shale/identity.json", &data, &len));
    TU_OK(shale_objstore_put(sb, ".shale/identity.json", data, len));
    shale_free(data);
    TU_OK(shale_store_relate(a, b, NULL, &rel));
    assert_int_equal(rel, SHALE_STORE_SAME);
    /* A damaged identity is reported, not taken as "none". */
    TU_OK(shale_objstore_put(sb, ".shale/identity.json", "{oops", 5));
    shale_store_identity id;
    TU_RC(SHALE_CORRUPT, shale_store_identity_read(b, NULL, &id));
    assert_non_null(strstr(shale_errmsg(), ".shale/identity.json"));
    shale_objstore_close(sa);
    shale_objstore_close(sb);
    free(a);
    free(b);
}

/* Emptiness and claims: a missing directory is empty and stays missing;
 * a claim is repeatable by its owner only; a database, a WAL or any other
 * object refuses it. */
static void test_claims(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    char *kid = tu_file_uri(dir, "kid");
    char *path = fmt("%s/%s", dir, "kid");
    TU_OK(shale_store_check_empty(kid, NULL, NULL));
    assert_false(exists(path));                               /* looked, made nothing */
    TU_OK(shale_store_claim(kid, NULL, "split s1 child a"));
    TU_OK(shale_store_claim(kid, NULL, "split s1 child a"));  /* a resume */
    TU_OK(shale_store_check_empty(kid, NULL, "split s1 child a"));
    TU_RC(SHALE_CONFLICT, shale_store_claim(kid, NULL, "split s2 child a"));
    assert_non_null(strstr(shale_errmsg(), "claimed by another split (split s1 child a"));
    TU_RC(SHALE_CONFLICT, shale_store_check_empty(kid, NULL, NULL));
    shale_store_identity id;
    TU_OK(shale_store_identity_read(kid, NULL, &id));
    assert_int_equal(id.kind, SHALE_STORE_KIND_CHILD_CLAIM);
    assert_string_equal(id.claim, "split s1 child a");
    shale_store_identity_clear(&id);

    /* A store holding a database (no identity: from before identities). */
    char *db_uri = tu_file_uri(dir, "db");
    shale_options o;
    dt_small_options(&o);
    dt_create(db_uri, &o);
    TU_RC(SHALE_CONFLICT, shale_store_claim(db_uri, NULL, "split s1 child b"));
    assert_non_null(strstr(shale_errmsg(), "holds a database"));
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(db_uri, NULL, &s));
    TU_OK(shale_objstore_delete(s, ".shale/identity.json"));
    shale_objstore_close(s);
    TU_RC(SHALE_CONFLICT, shale_store_claim(db_uri, NULL, "split s1 child b"));
    assert_non_null(strstr(shale_errmsg(), "holds a database (manifest/"));
    /* A WAL and a stray object. */
    char *w = tu_file_uri(dir, "w"), *junk = tu_file_uri(dir, "junk");
    TU_OK(shale_objstore_open(w, NULL, &s));
    TU_OK(shale_objstore_put(s, "wal/00000000000000000001.sst", "x", 1));
    shale_objstore_close(s);
    TU_RC(SHALE_CONFLICT, shale_store_claim(w, NULL, "split s1 child c"));
    assert_non_null(strstr(shale_errmsg(), "holds a WAL"));
    TU_OK(shale_objstore_open(junk, NULL, &s));
    TU_OK(shale_objstore_put(s, "notes.txt", "x", 1));
    shale_objstore_close(s);
    TU_RC(SHALE_CONFLICT, shale_store_claim(junk, NULL, "split s1 child d"));
    assert_non_null(strstr(shale_errmsg(), "not empty (it holds notes.txt)"));
    TU_RC(SHALE_NOT_FOUND, shale_store_identity_read(junk, NULL, &id));   /* unclaimed */
    free(w);
    free(junk);
    free(db_uri);
    free(kid);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

typedef struct racer {
    const char *uri;
    char owner[32];
    shale_status rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    r->rc = shale_store_claim(r->uri, NULL, r->owner);
    return NULL;
}

/* Claims racing for one store: exactly one owner wins. */
static void test_racing_claims_one_wins(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    for (int round = 0; round < (tu_quick() ? 3 : 10); round++) {
        char sub[32];
        snprintf(sub, sizeof sub, "kid%d", round);
        char *kid = tu_file_uri(dir, sub);
        racer rs[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            rs[i].uri = kid;
            snprintf(rs[i].owner, sizeof rs[i].owner, "owner-%d", i);
            assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
        }
        int won = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            if (rs[i].rc == SHALE_OK)
                won++;
            else
                assert_int_equal(rs[i].rc, SHALE_CONFLICT);
        }
        assert_int_equal(won, 1);
        free(kid);
    }
    tu_rmtree(dir);
    free(dir);
}

/* The clone accepts a store that holds only a claim, and turns the claim
 * into the child's database identity (same UUID, the claim kept); it
 * refuses a store whose identity says database or WAL. */
static void test_clone_into_claimed_store(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    char *p = tu_file_uri(dir, "p"), *kid = tu_file_uri(dir, "kid");
    char *kidwal = tu_file_uri(dir, "kid-wal"), *other = tu_file_uri(dir, "other");
    shale_options o;
    dt_small_options(&o);
    dt_fill(p, &o, 50, 1);
    TU_OK(shale_store_claim(kid, NULL, "split s child k"));
    TU_OK(shale_store_claim(kidwal, NULL, "split s child k"));
    shale_store_identity before;
    TU_OK(shale_store_identity_read(kid, NULL, &before));
    shale_clone_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.parent_uri = p;
    spec.child_uri = kid;
    spec.child_wal_uri = kidwal;
    shale_clone_result res;
    TU_OK(shale_clone(&spec, &o, &res));
    shale_store_identity after, w;
    TU_OK(shale_store_identity_read(kid, NULL, &after));
    TU_OK(shale_store_identity_read(kidwal, NULL, &w));
    assert_int_equal(after.kind, SHALE_STORE_KIND_DB);
    assert_int_equal(w.kind, SHALE_STORE_KIND_WAL);
    assert_string_equal(after.uuid, before.uuid);
    assert_string_equal(after.claim, "split s child k");
    /* A repeat of the same clone passes (the claim's owner may re-check). */
    TU_OK(shale_clone(&spec, &o, &res));
    assert_true(res.already_done);
    TU_OK(shale_store_check_empty(kid, NULL, "split s child k"));
    /* A clone into another database's store is refused by its identity,
     * even with its manifests out of sight. */
    dt_create(other, &o);
    assert_true(dt_delete_all(other, "manifest/") > 0);
    spec.child_uri = other;
    spec.child_wal_uri = NULL;
    TU_RC(SHALE_CONFLICT, shale_clone(&spec, &o, &res));
    assert_non_null(strstr(shale_errmsg(), "already a database's store"));
    shale_store_identity_clear(&before);
    shale_store_identity_clear(&after);
    shale_store_identity_clear(&w);
    free(p);
    free(kid);
    free(kidwal);
    free(other);
    tu_rmtree(dir);
    free(dir);
}

/* A store a split claimed belongs to that split's clone: a writer's open
 * is refused and writes nothing there, as the database's store or as its
 * WAL store (a writer racing the claim would make the clone fail after
 * the split's point of no return). */
static void test_writer_refuses_claimed_store(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    char *kid = tu_file_uri(dir, "kid"), *kidwal = tu_file_uri(dir, "kidwal");
    char *fresh = tu_file_uri(dir, "fresh");
    TU_OK(shale_store_claim(kid, NULL, "split s child a"));
    TU_OK(shale_store_claim(kidwal, NULL, "split s child a"));
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_RC(SHALE_CONFLICT, shale_open(kid, &o, &db));
    assert_null(db);
    assert_non_null(strstr(shale_errmsg(), "is claimed by a split (split s child a"));
    assert_int_equal(dt_count(kid, "manifest/"), 0);   /* no version 1 under the claim */
    shale_store_identity id;
    TU_OK(shale_store_identity_read(kid, NULL, &id));
    assert_int_equal(id.kind, SHALE_STORE_KIND_CHILD_CLAIM);   /* still the split's */
    shale_store_identity_clear(&id);
    /* A new database whose WAL store is a claimed one. */
    o.wal_store_uri = kidwal;
    TU_RC(SHALE_CONFLICT, shale_open(fresh, &o, &db));
    assert_non_null(strstr(shale_errmsg(), "is claimed by a split (split s child a"));
    TU_OK(shale_store_identity_read(kidwal, NULL, &id));
    assert_int_equal(id.kind, SHALE_STORE_KIND_CHILD_CLAIM);
    shale_store_identity_clear(&id);
    free(kid);
    free(kidwal);
    free(fresh);
    tu_rmtree(dir);
    free(dir);
}

static shale_status claim_meanwhile(void *ctx)
{
    return shale_store_claim(ctx, NULL, "split s child race");
}

/* A split's claim that lands after a new database's open read the store
 * (here: at the open's barrier, after its reads, before its first write)
 * meets the open at the identity's create-if-absent: the open is refused
 * and leaves no version 1 in the claimed store, which would make the
 * split's clone fail after its point of no return. */
static void test_claim_racing_a_new_database_wins_cleanly(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    char *kid = tu_file_uri(dir, "kid");
    shale_options o;
    dt_small_options(&o);
    shale_db *db = NULL;
    TU_RC(SHALE_CONFLICT, shale_open_at_fenced_after(kid, &o, 0, claim_meanwhile, kid, &db));
    assert_null(db);
    assert_non_null(strstr(shale_errmsg(), "is claimed by a split (split s child race"));
    assert_int_equal(dt_count(kid, "manifest/"), 0);
    TU_OK(shale_store_check_empty(kid, NULL, "split s child race"));   /* still the split's */
    free(kid);
    tu_rmtree(dir);
    free(dir);
}

/* A store whose identity says database but which holds no manifest (its
 * manifests deleted by hand) opens as a new database under that identity:
 * the open's "no manifest" is not taken for an error. */
static void test_identity_without_manifest_opens_new(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("identity");
    char *u = tu_file_uri(dir, "db");
    shale_options o;
    dt_small_options(&o);
    dt_create(u, &o);
    shale_store_identity before, after;
    TU_OK(shale_store_identity_read(u, NULL, &before));
    assert_true(dt_delete_all(u, "manifest/") > 0);
    dt_create(u, &o);
    TU_OK(shale_store_identity_read(u, NULL, &after));
    assert_string_equal(after.uuid, before.uuid);
    shale_store_identity_clear(&before);
    shale_store_identity_clear(&after);
    free(u);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_spellings_are_one_store),
        cmocka_unit_test(test_s3_spellings_are_one_store),
        cmocka_unit_test(test_relations_by_path),
        cmocka_unit_test(test_writer_open_writes_identities),
        cmocka_unit_test(test_same_uuid_is_same_store),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_racing_claims_one_wins),
        cmocka_unit_test(test_clone_into_claimed_store),
        cmocka_unit_test(test_writer_refuses_claimed_store),
        cmocka_unit_test(test_claim_racing_a_new_database_wins_cleanly),
        cmocka_unit_test(test_identity_without_manifest_opens_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
