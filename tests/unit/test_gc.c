/*
 * test_gc.c -- one GC pass (shale_gc) against a real engine on file://.
 *
 * Every test writes a database with tiny options and the background
 * compactor off (so the manifest only changes when the test asks), closes
 * the writer, runs GC with min_age_ms 0 and checks the stores object by
 * object against the manifest versions that must stay readable:
 *   - compacted SSTs no live version names are deleted; those a checkpoint
 *     pins survive until the checkpoint is deleted;
 *   - WAL SSTs at or below replay_after_wal_id go, later ones stay;
 *   - expired checkpoints leave the manifest; the latest manifest stays;
 *   - a dry run deletes nothing and reports the same objects;
 *   - a missing pinned manifest version stops the pass before any deletion;
 *   - the default min_age (5 min) spares fresh objects;
 *   - temporaries a killed put left (".tmp-*", never listed) go in both
 *     stores once older than min_age; a fresh one stays;
 *   - every key still reads its value afterwards.
 * And shale_verify: each kind of damage (SST size, missing SST, missing
 * needed WAL SST, missing pinned version) is reported naming the object.
 */
#include "support/dbtest.h"
#include "db/db_int.h"
#include "db/manifest.h"
#include "db/view.h"
#include "shale_objstore.h"
#include "util/misc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef dt_fixture fixture;

static int setup(void **state)
{
    fixture *f = dt_fixture_new("gc");
    f->o.compactor = false;
    /* The pass's own WAL rules are under test: the writer leaves its
     * flushed WAL SSTs for it (test_wal_gc.c tests the writer's GC). */
    f->o.keep_flushed_wal = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    dt_fixture_free(*state);
    return 0;
}

/* The keys under prefix in the store at uri, as one "\n"-joined string
 * (for comparison), and their number. */
static size_t gc_list(const char *uri, const char *prefix, char **joined)
{
    shale_objstore *s = NULL;
    shale_objlist l;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    TU_OK(shale_objstore_list_all(s, prefix, &l));
    size_t n = l.count, len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(l.items[i].key) + 1;
    if (joined) {
        *joined = calloc(1, len);
        for (size_t i = 0; i < n; i++) {
            strcat(*joined, l.items[i].key);
            strcat(*joined, "\n");
        }
    }
    shale_objlist_free(&l);
    shale_objstore_close(s);
    return n;
}

static bool gc_exists(const char *uri, const char *key)
{
    shale_objstore *s = NULL;
    shale_objlist l;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    TU_OK(shale_objstore_list_all(s, key, &l));
    bool found = false;
    for (size_t i = 0; i < l.count; i++)
        found |= !strcmp(l.items[i].key, key);
    shale_objlist_free(&l);
    shale_objstore_close(s);
    return found;
}

static manifest *gc_load(const char *uri, uint64_t id)
{
    shale_objstore *s = NULL;
    manifest *m = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    TU_OK(id ? manifest_store_load(s, id, &m) : manifest_store_load_latest(s, 0, &m));
    shale_objstore_close(s);
    return m;
}

/* Asserts every own SST of version m exists (present) or is gone. */
static void gc_expect_ssts(const char *uri, const manifest *m, bool present)
{
    char key[64];
    for (size_t i = 0; i < m->l0_count; i++) {
        sst_key(m->l0[i].id, key, sizeof key);
        assert_int_equal(gc_exists(uri, key), present);
    }
    for (size_t r = 0; r < m->run_count; r++)
        for (size_t i = 0; i < m->runs[r].count; i++) {
            sst_key(m->runs[r].ssts[i].id, key, sizeof key);
            assert_int_equal(gc_exists(uri, key), present);
        }
}

static size_t gc_sst_count(const manifest *m)
{
    size_t n = m->l0_count;
    for (size_t r = 0; r < m->run_count; r++)
        n += m->runs[r].count;
    return n;
}

typedef struct gc_seen {
    char *keys;   /* "\n"-joined, in call order */
    size_t n;
} gc_seen;

static void gc_on_object(void *ctx, const char *store_uri, const char *key, const char *reason)
{
    gc_seen *s = ctx;
    assert_non_null(store_uri);
    assert_non_null(reason);
    assert_true(strlen(reason) > 0);
    size_t old = s->keys ? strlen(s->keys) : 0;
    s->keys = realloc(s->keys, old + strlen(store_uri) + strlen(key) + 3);
    s->keys[old] = '\0';
    strcat(s->keys, store_uri);
    strcat(s->keys, " ");
    strcat(s->keys, key);
    strcat(s->keys, "\n");
    s->n++;
}

static shale_gc_result gc_run_once(fixture *f, bool dry, gc_seen *seen)
{
    shale_gc_options g;
    shale_gc_options_init(&g);
    g.min_age_ms = 0;
    g.dry_run = dry;
    g.on_object = seen ? gc_on_object : NULL;
    g.ctx = seen;
    shale_gc_result res;
    memset(&res, 0xff, sizeof res);
    TU_OK(shale_gc(f->uri, &f->o, &g, &res));
    return res;
}

static void gc_write_l0s(shale_db *db, dt_model *m, unsigned version, unsigned rounds)
{
    for (unsigned r = 0; r < rounds; r++) {
        for (unsigned i = r; i < m->n; i += rounds) {
            dt_put(db, i, version);
            m->version[i] = version;
        }
        TU_OK(shale_flush_memtable(db));
    }
}

static void test_gc_options_init(void **state)
{
    (void)state;
    shale_gc_options g;
    memset(&g, 0x5a, sizeof g);
    shale_gc_options_init(&g);
    assert_int_equal(g.min_age_ms, 300000);
    assert_false(g.dry_run);
    assert_null(g.on_object);
}

/* Compaction inputs go, a checkpoint's SSTs stay until it is deleted, WAL
 * at or below replay_after goes, dry run matches the real pass. */
static void test_gc_ssts_wal_checkpoint_pin(void **state)
{
    fixture *f = *state;
    unsigned n = tu_quick() ? 200 : 600;
    dt_model model;
    dt_model_init(&model, n);
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    gc_write_l0s(db, &model, 1, 3);
    TU_OK(shale_compact(db, true));
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, "pin", &cp));
    gc_write_l0s(db, &model, 2, 3);
    TU_OK(shale_compact(db, true));
    for (unsigned i = 0; i < n; i += 7) {   /* some data only in the WAL */
        dt_put(db, i, 3);
        model.version[i] = 3;
    }
    TU_OK(shale_flush_wal(db));
    TU_OK(shale_close(db));

    manifest *pinned = gc_load(f->uri, cp.manifest_id);
    manifest *latest = gc_load(f->uri, 0);
    assert_true(gc_sst_count(pinned) > 0);
    assert_true(gc_sst_count(latest) > 0);
    char *before_sst, *before_wal, *before_man;
    size_t nsst = gc_list(f->uri, "compacted/", &before_sst);
    size_t nwal = gc_list(f->wal_uri, "wal/", &before_wal);
    size_t nman = gc_list(f->uri, "manifest/", &before_man);
    /* Compaction inputs of the second round are garbage. */
    assert_true(nsst > gc_sst_count(pinned) + gc_sst_count(latest));
    assert_true(nman > 2);

    /* Dry run: reports, deletes nothing. */
    gc_seen dry = {0};
    shale_gc_result dr = gc_run_once(f, true, &dry);
    assert_int_equal(dr.checkpoints_removed, 0);
    assert_int_equal(dr.ssts_deleted, nsst - gc_sst_count(pinned) - gc_sst_count(latest));
    assert_true(dr.wal_deleted > 0);
    assert_true(dr.manifests_deleted > 0);
    assert_true(dr.bytes_deleted > 0);
    assert_int_equal(dry.n, dr.wal_deleted + dr.ssts_deleted + dr.manifests_deleted);
    char *now_sst, *now_wal, *now_man;
    assert_int_equal(gc_list(f->uri, "compacted/", &now_sst), nsst);
    assert_int_equal(gc_list(f->wal_uri, "wal/", &now_wal), nwal);
    assert_int_equal(gc_list(f->uri, "manifest/", &now_man), nman);
    assert_string_equal(now_sst, before_sst);
    assert_string_equal(now_wal, before_wal);
    assert_string_equal(now_man, before_man);
    free(now_sst);
    free(now_wal);
    free(now_man);

    /* The real pass deletes exactly what the dry run reported. */
    gc_seen real = {0};
    shale_gc_result rr = gc_run_once(f, false, &real);
    assert_int_equal(rr.ssts_deleted, dr.ssts_deleted);
    assert_int_equal(rr.wal_deleted, dr.wal_deleted);
    assert_int_equal(rr.manifests_deleted, dr.manifests_deleted);
    assert_int_equal(rr.bytes_deleted, dr.bytes_deleted);
    assert_string_equal(real.keys, dry.keys);
    assert_int_equal(gc_list(f->uri, "compacted/", NULL),
                     gc_sst_count(pinned) + gc_sst_count(latest));
    gc_expect_ssts(f->uri, pinned, true);
    gc_expect_ssts(f->uri, latest, true);
    /* Manifests left: the latest and the pinned one. */
    char key[64];
    manifest_key(latest->id, key, sizeof key);
    assert_true(gc_exists(f->uri, key));
    manifest_key(cp.manifest_id, key, sizeof key);
    assert_true(gc_exists(f->uri, key));
    assert_int_equal(gc_list(f->uri, "manifest/", NULL), 2);
    /* WAL: nothing at or below replay_after is left, everything above is. */
    for (uint64_t id = 1; id < latest->next_wal_sst_id; id++) {
        wal_key(id, key, sizeof key);
        bool had = strstr(before_wal, key) != NULL;
        if (id <= latest->replay_after_wal_id)
            assert_false(gc_exists(f->wal_uri, key));
        else
            assert_int_equal(gc_exists(f->wal_uri, key), had);
    }
    /* A second pass finds nothing. */
    shale_gc_result again = gc_run_once(f, false, NULL);
    assert_int_equal(again.ssts_deleted + again.wal_deleted + again.manifests_deleted, 0);

    /* The checkpoint still reads its state. */
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, cp.id, &r));
    for (unsigned i = 0; i < n; i += 13)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);

    /* Deleting the checkpoint frees its SSTs and manifest. */
    TU_OK(shale_checkpoint_delete(f->uri, &f->o, cp.id));
    manifest_free(latest);
    latest = gc_load(f->uri, 0);
    shale_gc_result after = gc_run_once(f, false, NULL);
    assert_int_equal(after.ssts_deleted, gc_sst_count(pinned));
    gc_expect_ssts(f->uri, pinned, false);
    gc_expect_ssts(f->uri, latest, true);
    assert_int_equal(gc_list(f->uri, "manifest/", NULL), 1);
    manifest_key(latest->id, key, sizeof key);
    assert_true(gc_exists(f->uri, key));

    TU_OK(shale_verify(f->uri, &f->o, NULL));
    TU_OK(shale_open(f->uri, &f->o, &db));
    dt_model_check(db, &model);
    TU_OK(shale_close(db));

    free(before_sst);
    free(before_wal);
    free(before_man);
    free(dry.keys);
    free(real.keys);
    manifest_free(pinned);
    manifest_free(latest);
    dt_model_free(&model);
}

/* A Durable checkpoint pins the WAL of its gap even when the latest
 * version has moved past it. */
static void test_gc_keeps_wal_gap_of_checkpoint(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 30; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_wal(db));
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 0, NULL, &cp));
    assert_true(cp.replay_after_wal_id < cp.next_wal_sst_id - 1);
    TU_OK(shale_flush_memtable(db));
    for (unsigned i = 0; i < 30; i++)
        dt_put(db, i, 2);
    TU_OK(shale_flush_memtable(db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    TU_OK(shale_close(db));
    assert_true(info.replay_after_wal_id >= cp.next_wal_sst_id - 1);

    gc_run_once(f, false, NULL);
    char key[64];
    for (uint64_t id = cp.replay_after_wal_id + 1; id < cp.next_wal_sst_id; id++) {
        wal_key(id, key, sizeof key);
        assert_true(gc_exists(f->wal_uri, key));
    }
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, cp.id, &r));
    for (unsigned i = 0; i < 30; i++)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
}

/* Expired checkpoints leave the manifest (dry run: only reported). */
static void test_gc_removes_expired_checkpoints(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    dt_put(db, 1, 1);
    TU_OK(shale_close(db));
    shale_checkpoint keep, gone;
    TU_OK(shale_admin_checkpoint_create(f->uri, &f->o, 0, "keep", &keep));
    TU_OK(shale_admin_checkpoint_create(f->uri, &f->o, 1, "gone", &gone));
    while (now_ms() <= gone.expire_time_ms)   /* let the 1 ms lifetime pass */
        sleep_ms(1);

    gc_seen dry = {0};
    shale_gc_result dr = gc_run_once(f, true, &dry);
    assert_int_equal(dr.checkpoints_removed, 1);
    assert_non_null(strstr(dry.keys, gone.id));
    shale_checkpoint *list = NULL;
    size_t n = 0;
    TU_OK(shale_checkpoint_list(f->uri, &f->o, &list, &n));
    assert_int_equal(n, 2);
    shale_free(list);

    gc_seen real = {0};
    shale_gc_result rr = gc_run_once(f, false, &real);
    assert_int_equal(rr.checkpoints_removed, 1);
    assert_int_equal(rr.manifests_deleted, dr.manifests_deleted);
    TU_OK(shale_checkpoint_list(f->uri, &f->o, &list, &n));
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, keep.id);
    shale_free(list);
    /* The surviving checkpoint's version is still there. */
    char key[64];
    manifest_key(keep.manifest_id, key, sizeof key);
    assert_true(gc_exists(f->uri, key));
    free(dry.keys);
    free(real.keys);
}

/* A pinned manifest version that is missing stops GC before it deletes
 * anything, with a message naming the version. */
static void test_gc_missing_pinned_version_is_error(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    dt_model model;
    dt_model_init(&model, 100);
    gc_write_l0s(db, &model, 1, 2);
    dt_model_free(&model);
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    for (unsigned i = 0; i < 100; i++)
        dt_put(db, i, 2);
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_compact(db, true));
    TU_OK(shale_close(db));

    char key[64];
    manifest_key(cp.manifest_id, key, sizeof key);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->uri, NULL, &s));
    TU_OK(shale_objstore_delete(s, key));
    shale_objstore_close(s);

    char *sst0, *wal0, *man0;
    gc_list(f->uri, "compacted/", &sst0);
    gc_list(f->wal_uri, "wal/", &wal0);
    gc_list(f->uri, "manifest/", &man0);
    shale_gc_options g;
    shale_gc_options_init(&g);
    g.min_age_ms = 0;
    shale_status rc = shale_gc(f->uri, &f->o, &g, NULL);
    assert_int_not_equal(rc, SHALE_OK);
    char idtext[32];
    snprintf(idtext, sizeof idtext, "%llu", (unsigned long long)cp.manifest_id);
    assert_non_null(strstr(shale_errmsg(), idtext));
    char *sst1, *wal1, *man1;
    gc_list(f->uri, "compacted/", &sst1);
    gc_list(f->wal_uri, "wal/", &wal1);
    gc_list(f->uri, "manifest/", &man1);
    assert_string_equal(sst0, sst1);
    assert_string_equal(wal0, wal1);
    assert_string_equal(man0, man1);
    free(sst0); free(wal0); free(man0);
    free(sst1); free(wal1); free(man1);
}

/* WAL SSTs past replay_after_wal_id hold data not yet in L0: GC, run
 * while the writer is open, keeps every one of them. */
static void test_gc_keeps_wal_tail(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 20; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    for (unsigned i = 0; i < 20; i++)
        dt_put(db, i, 2);
    TU_OK(shale_flush_wal(db));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    /* The manifest's next_wal_sst_id is only advanced by flushes: find the
     * WAL SSTs written since by listing. */
    char *before;
    gc_list(f->wal_uri, "wal/", &before);
    size_t tail = 0;
    for (const char *p = before; (p = strstr(p, "wal/")); p += 4)
        tail += strtoull(p + 4, NULL, 10) > info.replay_after_wal_id;
    assert_true(tail > 0);
    shale_gc_result res = gc_run_once(f, false, NULL);
    assert_true(res.wal_deleted > 0);
    for (const char *p = before; (p = strstr(p, "wal/")); p += 4) {
        char key[64];
        snprintf(key, sizeof key, "%.28s", p);
        assert_int_equal(gc_exists(f->wal_uri, key),
                         strtoull(p + 4, NULL, 10) > info.replay_after_wal_id);
    }
    assert_int_equal(gc_list(f->wal_uri, "wal/", NULL), tail);
    free(before);
    for (unsigned i = 0; i < 20; i++)
        dt_expect(db, i, 2);
    TU_OK(shale_close(db));
    dt_reopen_expect(f->uri, &f->o, 20, 2);
}

/* shale_verify: counts on a sound database, then each kind of damage is
 * reported with the object's name: an SST of the wrong size, a missing SST,
 * a missing WAL SST still needed for replay, a missing pinned version. */
static void test_verify_names_damage(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 200; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    for (unsigned i = 0; i < 20; i++)
        dt_put(db, i, 2);
    TU_OK(shale_flush_wal(db));
    /* A Durable checkpoint records the WAL position: the latest version
     * now needs WAL SSTs (replay_after_wal_id, next_wal_sst_id). */
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 0, NULL, NULL));
    shale_objstore *s = NULL, *w = NULL;
    TU_OK(shale_objstore_open(f->uri, NULL, &s));
    TU_OK(shale_objstore_open(f->wal_uri, NULL, &w));
    manifest *m = gc_load(f->uri, 0);
    assert_true(m->next_wal_sst_id - 1 > m->replay_after_wal_id);
    char key[64];
    void *data = NULL;
    size_t len = 0;
    shale_verify_result vr;
    TU_OK(shale_verify(f->uri, &f->o, &vr));
    assert_true(vr.wal_ssts_checked >= m->next_wal_sst_id - 1 - m->replay_after_wal_id);
    wal_key(m->replay_after_wal_id + 1, key, sizeof key);
    TU_OK(shale_objstore_get(w, key, &data, &len));
    TU_OK(shale_objstore_delete(w, key));
    TU_RC(SHALE_NOT_FOUND, shale_verify(f->uri, &f->o, NULL));
    assert_non_null(strstr(shale_errmsg(), key));
    TU_OK(shale_objstore_put(w, key, data, len));
    free(data);
    TU_OK(shale_verify(f->uri, &f->o, NULL));
    manifest_free(m);
    TU_OK(shale_close(db));

    TU_OK(shale_verify(f->uri, &f->o, &vr));
    m = gc_load(f->uri, 0);
    assert_int_equal(vr.ssts_checked, gc_sst_count(m));
    assert_true(vr.blocks_checked >= vr.ssts_checked);
    assert_true(vr.bytes_checked > 0);
    assert_true(m->l0_count > 0);
    sst_key(m->l0[0].id, key, sizeof key);
    TU_OK(shale_objstore_get(s, key, &data, &len));
    TU_OK(shale_objstore_put(s, key, data, len - 1));   /* truncated */
    TU_RC(SHALE_CORRUPT, shale_verify(f->uri, &f->o, NULL));
    assert_non_null(strstr(shale_errmsg(), key));
    TU_OK(shale_objstore_delete(s, key));               /* missing */
    TU_RC(SHALE_NOT_FOUND, shale_verify(f->uri, &f->o, NULL));
    assert_non_null(strstr(shale_errmsg(), key));
    TU_OK(shale_objstore_put(s, key, data, len));       /* repaired */
    TU_OK(shale_verify(f->uri, &f->o, NULL));
    free(data);

    /* The first checkpoint's pinned version. */
    assert_true(cp.manifest_id != m->id);
    manifest_key(cp.manifest_id, key, sizeof key);
    TU_OK(shale_objstore_delete(s, key));
    TU_RC(SHALE_NOT_FOUND, shale_verify(f->uri, &f->o, NULL));
    assert_non_null(strstr(shale_errmsg(), key));
    assert_non_null(strstr(shale_errmsg(), cp.id));
    manifest_free(m);
    shale_objstore_close(s);
    shale_objstore_close(w);
}

/* With the default min_age nothing fresh is touched. */
static void test_gc_min_age_spares_fresh_objects(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 200; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_compact(db, true));
    TU_OK(shale_close(db));
    size_t nsst = gc_list(f->uri, "compacted/", NULL);
    size_t nwal = gc_list(f->wal_uri, "wal/", NULL);
    size_t nman = gc_list(f->uri, "manifest/", NULL);
    shale_gc_result res;
    TU_OK(shale_gc(f->uri, &f->o, NULL, &res));
    assert_int_equal(res.ssts_deleted + res.wal_deleted + res.manifests_deleted, 0);
    assert_int_equal(gc_list(f->uri, "compacted/", NULL), nsst);
    assert_int_equal(gc_list(f->wal_uri, "wal/", NULL), nwal);
    assert_int_equal(gc_list(f->uri, "manifest/", NULL), nman);
}

/* A put killed between writing its temporary and linking it leaves
 * ".tmp-<random>" beside the key, which no list shows: the pass removes
 * those older than min_age in both stores (and reports them), keeps a
 * fresh one (a put may still be writing it) and those of another store
 * inside its directory, and a dry run keeps all. */
static void tmp_file(const char *dir, const char *rel, size_t size, int64_t age_s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < size; i++)
        fputc('x', fp);
    fclose(fp);
    struct timespec t[2];
    clock_gettime(CLOCK_REALTIME, &t[0]);
    t[0].tv_sec -= age_s;
    t[1] = t[0];
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static bool file_there(const char *dir, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return access(path, F_OK) == 0;
}

static void test_gc_sweeps_old_temporaries(void **state)
{
    fixture *f = *state;
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 50; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_close(db));
    tmp_file(f->dir, "db/compacted/.tmp-00000000000000a1", 100, 3600);
    tmp_file(f->dir, "db/manifest/.tmp-00000000000000a2", 20, 3600);
    tmp_file(f->dir, "wal/wal/.tmp-00000000000000a3", 7, 3600);
    tmp_file(f->dir, "db/manifest/.tmp-00000000000000a4", 5, 0);    /* fresh */
    tmp_file(f->dir, "db/manifest/.keep-00000000000000a5", 3, 3600); /* not a temporary */
    /* Another store inside this one's directory (its own identity): its
     * temporaries are its own GC's. */
    char nested[1024];
    snprintf(nested, sizeof nested, "%s/db/other", f->dir);
    assert_int_equal(mkdir(nested, 0755), 0);
    snprintf(nested, sizeof nested, "%s/db/other/.shale", f->dir);
    assert_int_equal(mkdir(nested, 0755), 0);
    tmp_file(f->dir, "db/other/.shale/identity.json", 2, 3600);
    tmp_file(f->dir, "db/other/.tmp-00000000000000a6", 11, 3600);
    shale_gc_options g;
    shale_gc_options_init(&g);   /* min age 5 min */
    gc_seen seen = {0};
    g.on_object = gc_on_object;
    g.ctx = &seen;
    g.dry_run = true;
    shale_gc_result res;
    TU_OK(shale_gc(f->uri, &f->o, &g, &res));
    assert_int_equal(seen.n, 3);
    assert_int_equal(res.bytes_deleted, 127);
    assert_true(file_there(f->dir, "db/compacted/.tmp-00000000000000a1"));
    free(seen.keys);
    seen = (gc_seen){0};
    g.dry_run = false;
    TU_OK(shale_gc(f->uri, &f->o, &g, &res));
    assert_int_equal(seen.n, 3);
    assert_non_null(strstr(seen.keys, "compacted/.tmp-00000000000000a1"));
    assert_non_null(strstr(seen.keys, "manifest/.tmp-00000000000000a2"));
    assert_non_null(strstr(seen.keys, "wal/.tmp-00000000000000a3"));
    assert_int_equal(res.bytes_deleted, 127);
    free(seen.keys);
    assert_false(file_there(f->dir, "db/compacted/.tmp-00000000000000a1"));
    assert_false(file_there(f->dir, "db/manifest/.tmp-00000000000000a2"));
    assert_false(file_there(f->dir, "wal/wal/.tmp-00000000000000a3"));
    assert_true(file_there(f->dir, "db/manifest/.tmp-00000000000000a4"));
    assert_true(file_there(f->dir, "db/manifest/.keep-00000000000000a5"));
    assert_true(file_there(f->dir, "db/other/.tmp-00000000000000a6"));
    /* The database is as it was. */
    TU_OK(shale_open(f->uri, &f->o, &db));
    for (unsigned i = 0; i < 50; i++)
        dt_expect(db, i, 1);
    TU_OK(shale_close(db));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_options_init),
        cmocka_unit_test_setup_teardown(test_gc_ssts_wal_checkpoint_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_keeps_wal_gap_of_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_keeps_wal_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_removes_expired_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_missing_pinned_version_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_min_age_spares_fresh_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_sweeps_old_temporaries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
