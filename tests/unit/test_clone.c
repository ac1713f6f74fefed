/*
 * test_clone.c -- range clones: the seed's tests, range semantics against a
 * model, partitions, resumption, pins and GC, clone of a clone.
 */
#include "support/dbtest.h"
#include "db/manifest.h"
#include "objstore/objstore_fault.h"
#include "util/crew.h"
#include "shale_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The parent and its WAL store are base's (f->o is base's options, the
 * WAL in parent_wal); the children are beside them. */
typedef struct fixture {
    dt_fixture *base;
    const char *parent, *parent_wal;   /* base's */
    char *child, *child_wal;
    char *child2, *child2_wal;
    shale_options o;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->base = dt_fixture_at("clone", "parent", "parent-wal");
    f->parent = f->base->uri;
    f->parent_wal = f->base->wal_uri;
    f->child = tu_file_uri(f->base->dir, "child");
    f->child_wal = tu_file_uri(f->base->dir, "child-wal");
    f->child2 = tu_file_uri(f->base->dir, "child2");
    f->child2_wal = tu_file_uri(f->base->dir, "child2-wal");
    f->o = f->base->o;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_fixture_free(f->base);
    free(f->child);
    free(f->child_wal);
    free(f->child2);
    free(f->child2_wal);
    free(f);
    return 0;
}

static shale_options with_wal(const fixture *f, const char *wal)
{
    shale_options o = f->o;
    o.wal_store_uri = wal;
    return o;
}

/* The clone of the parent (and its WAL) at checkpoint cp_id (borrowed)
 * into child and child_wal: what most cases clone. */
static shale_clone_spec spec_to_child(const fixture *f, const char *cp_id)
{
    shale_clone_spec sp = {0};
    sp.parent_uri = f->parent;
    sp.parent_wal_uri = f->parent_wal;
    sp.parent_checkpoint_id = cp_id;
    sp.child_uri = f->child;
    sp.child_wal_uri = f->child_wal;
    return sp;
}

/* Seed: the clone replays the parent's WAL SSTs it copied, takes writes,
 * flushes, and keeps everything across a reopen. */
static void clone_replays_wal_and_continues_writing(void **state)
{
    fixture *f = *state;
    shale_db *p = NULL;
    TU_OK(shale_open(f->parent, &f->o, &p));
    for (unsigned i = 0; i < 50; i++)
        dt_put(p, i, 1);                     /* only in the WAL */
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(p, SHALE_CHECKPOINT_DURABLE, 0, NULL, &cp));
    assert_true(cp.replay_after_wal_id < cp.next_wal_sst_id - 1);
    shale_clone_spec sp = spec_to_child(f, cp.id);
    shale_clone_result res;
    TU_OK(shale_clone(&sp, &f->o, &res));
    assert_true(res.wal_ssts_copied > 0);
    assert_false(res.already_done);
    TU_OK(shale_close(p));
    shale_options co = with_wal(f, f->child_wal);
    shale_db *c = NULL;
    TU_OK(shale_open(f->child, &co, &c));
    for (unsigned i = 0; i < 50; i++)
        dt_expect(c, i, 1);
    for (unsigned i = 50; i < 80; i++)
        dt_put(c, i, 2);
    TU_OK(shale_flush_memtable(c));
    TU_OK(shale_close(c));
    TU_OK(shale_open(f->child, &co, &c));
    for (unsigned i = 0; i < 50; i++)
        dt_expect(c, i, 1);
    for (unsigned i = 50; i < 80; i++)
        dt_expect(c, i, 2);
    TU_OK(shale_close(c));
}

/* Seed: after a full-scope checkpoint the parent's WAL store can be wiped
 * (the split's local-WAL wipe) and the clone still succeeds with all data. */
static void clone_succeeds_after_parent_wal_cleanup(void **state)
{
    fixture *f = *state;
    shale_db *p = dt_open_fill(f->parent, &f->o, 120, 1);
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(p, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    assert_int_equal(cp.replay_after_wal_id, cp.next_wal_sst_id - 1);
    /* Wipe every WAL object of the parent. */
    assert_true(dt_delete_all(f->parent_wal, "wal/") > 0);
    shale_clone_spec sp = spec_to_child(f, cp.id);
    shale_clone_result res;
    TU_OK(shale_clone(&sp, &f->o, &res));
    assert_int_equal(res.wal_ssts_copied, 0);
    assert_true(res.ssts_referenced > 0);
    shale_reader *r = NULL;
    shale_options co = with_wal(f, f->child_wal);
    TU_OK(shale_reader_open(f->child, &co, NULL, &r));
    for (unsigned i = 0; i < 120; i++)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
    shale_close(p);
}

/* Seed: cloning a parent whose WAL lives in a separate store without
 * naming that store fails with not-found naming the missing WAL path. */
static void clone_should_fail_when_wal_store_is_not_provided(void **state)
{
    fixture *f = *state;
    shale_checkpoint cp;
    dt_fill_checkpoint(f->parent, &f->o, 10, SHALE_CHECKPOINT_DURABLE, NULL, &cp);
    shale_clone_spec sp = {0};
    sp.parent_uri = f->parent;
    sp.parent_wal_uri = NULL;                /* not provided */
    sp.parent_checkpoint_id = cp.id;
    sp.child_uri = f->child;
    TU_RC(SHALE_NOT_FOUND, shale_clone(&sp, &f->o, NULL));
    char want[128];
    snprintf(want, sizeof want, "%s/wal/%020llu.sst", f->parent,
             (unsigned long long)(cp.replay_after_wal_id + 1));
    if (!strstr(shale_errmsg(), want))
        fail_msg("message '%s' does not name %s", shale_errmsg(), want);
}

/* Range clones against a model of thousands of random keys; two clones
 * partition the parent; out-of-range writes refused; repeat is a no-op. */
static void test_range_clones_partition_parent(void **state)
{
    fixture *f = *state;
    unsigned n = tu_quick() ? 1500 : 5000;
    dt_model m;
    dt_model_init(&m, n);
    uint64_t rng = 7;
    shale_db *p = NULL;
    TU_OK(shale_open(f->parent, &f->o, &p));
    for (unsigned j = 0; j < n * 2; j++) {
        unsigned i = (unsigned)(tu_rand(&rng) % n);
        if (tu_rand(&rng) % 5 == 0) {
            dt_del(p, i);
            m.version[i] = 0;
        } else {
            unsigned v = 1 + (unsigned)(tu_rand(&rng) % 9);
            dt_put(p, i, v);
            m.version[i] = v;
        }
        if (j == n)
            TU_OK(shale_compact(p, true));
    }
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(p, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    char mid[32];
    size_t midl = dt_key(mid, sizeof mid, n / 3);
    shale_clone_spec a = {0}, b = {0};
    a.parent_uri = b.parent_uri = f->parent;
    a.parent_wal_uri = b.parent_wal_uri = f->parent_wal;
    a.parent_checkpoint_id = b.parent_checkpoint_id = cp.id;
    a.child_uri = f->child;
    a.child_wal_uri = f->child_wal;
    a.range_end = mid;
    a.range_end_len = midl;
    b.child_uri = f->child2;
    b.child_wal_uri = f->child2_wal;
    b.range_start = mid;
    b.range_start_len = midl;
    shale_clone_result ra, rb;
    TU_OK(shale_clone(&a, &f->o, &ra));
    TU_OK(shale_clone(&b, &f->o, &rb));
    assert_int_equal(ra.wal_ssts_copied + rb.wal_ssts_copied, 0);
    /* Repeating is a no-op; another range for the same child is refused. */
    shale_clone_result again;
    TU_OK(shale_clone(&a, &f->o, &again));
    assert_true(again.already_done);
    shale_clone_spec bad = a;
    bad.range_end = "k9";
    bad.range_end_len = 2;
    TU_RC(SHALE_CONFLICT, shale_clone(&bad, &f->o, NULL));
    /* Each child sees exactly the model's keys in its range. */
    dt_model ma, mb;
    dt_model_init(&ma, n);
    dt_model_init(&mb, n);
    for (unsigned i = 0; i < n; i++) {
        if (i < n / 3)
            ma.version[i] = m.version[i];
        else
            mb.version[i] = m.version[i];
    }
    shale_reader *r = NULL;
    shale_options oa = with_wal(f, f->child_wal), ob = with_wal(f, f->child2_wal);
    TU_OK(shale_reader_open(f->child, &oa, NULL, &r));
    dt_model_check_reader(r, &ma);
    uint64_t ca = 0, cb = 0, cp_count = 0;
    TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &ca));
    shale_reader_close(r);
    TU_OK(shale_reader_open(f->child2, &ob, NULL, &r));
    dt_model_check_reader(r, &mb);
    TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &cb));
    shale_reader_close(r);
    for (unsigned i = 0; i < n; i++)
        cp_count += m.version[i] != 0;
    assert_int_equal(ca + cb, cp_count);
    /* A writer on a child refuses keys outside its range, and compaction
     * drops the parent's out-of-range keys and releases the parent. */
    shale_db *c = NULL;
    TU_OK(shale_open(f->child, &oa, &c));
    char k[32];
    size_t kl = dt_key(k, sizeof k, n - 1);
    TU_RC(SHALE_INVALID_ARGUMENT, shale_put(c, k, kl, "x", 1));
    TU_OK(shale_compact(c, true));
    dt_model_check(c, &ma);
    TU_OK(shale_close(c));
    shale_objstore *cs = NULL;
    manifest *cm = NULL;
    TU_OK(shale_objstore_open(f->child, NULL, &cs));
    TU_OK(manifest_store_load_latest(cs, 0, &cm));
    for (size_t r2 = 0; r2 < cm->run_count; r2++)      /* no parent SST left */
        for (size_t i = 0; i < cm->runs[r2].count; i++)
            assert_null(cm->runs[r2].ssts[i].store_uri);
    assert_int_equal(cm->l0_count, 0);
    assert_int_equal(cm->parent_count, 0);              /* parent released */
    manifest_free(cm);
    shale_objstore_close(cs);
    /* ... and its pin in the parent is gone; child b still holds its own. */
    shale_checkpoint *cps = NULL;
    size_t ncp = 0;
    TU_OK(shale_checkpoint_list(f->parent, &f->o, &cps, &ncp));
    unsigned pins = 0;
    for (size_t i = 0; i < ncp; i++)
        pins += !strncmp(cps[i].name, "clone:", 6);
    assert_int_equal(pins, 1);
    shale_free(cps);
    TU_OK(shale_close(p));
    dt_model_free(&m);
    dt_model_free(&ma);
    dt_model_free(&mb);
}

/* GC on the parent never removes an SST a child reads. */
static void test_gc_after_clone_keeps_child_data(void **state)
{
    fixture *f = *state;
    shale_db *p = dt_open_fill(f->parent, &f->o, 400, 1);
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(p, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    shale_clone_spec sp = spec_to_child(f, cp.id);
    TU_OK(shale_clone(&sp, &f->o, NULL));
    /* The parent moves on: overwrites, compaction, its own checkpoint
     * deleted; GC with min age 0 collects what only the old state used. */
    for (unsigned i = 0; i < 400; i++)
        dt_put(p, i, 2);
    TU_OK(shale_compact(p, true));
    TU_OK(shale_close(p));
    TU_OK(shale_checkpoint_delete(f->parent, &f->o, cp.id));
    shale_gc_options g;
    shale_gc_options_init(&g);
    g.min_age_ms = 0;
    shale_gc_result gr;
    TU_OK(shale_gc(f->parent, &f->o, &g, &gr));
    shale_reader *r = NULL;
    shale_options co = with_wal(f, f->child_wal);
    TU_OK(shale_reader_open(f->child, &co, NULL, &r));
    for (unsigned i = 0; i < 400; i++)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
    TU_OK(shale_verify(f->child, &co, NULL));
}

/* A clone of a clone reads through two levels of parents. */
static void test_clone_of_clone(void **state)
{
    fixture *f = *state;
    shale_checkpoint cp;
    dt_fill_checkpoint(f->parent, &f->o, 300, SHALE_CHECKPOINT_ALL, NULL, &cp);
    char lo[32], hi[32];
    size_t lol = dt_key(lo, sizeof lo, 100), hil = dt_key(hi, sizeof hi, 200);
    shale_clone_spec a = spec_to_child(f, cp.id);
    a.range_start = lo;
    a.range_start_len = lol;
    TU_OK(shale_clone(&a, &f->o, NULL));
    shale_options oa = with_wal(f, f->child_wal);
    shale_db *c = NULL;
    TU_OK(shale_open(f->child, &oa, &c));
    for (unsigned i = 150; i < 160; i++)
        dt_put(c, i, 2);
    shale_checkpoint ccp;
    TU_OK(shale_checkpoint_create(c, SHALE_CHECKPOINT_ALL, 0, NULL, &ccp));
    TU_OK(shale_close(c));
    shale_clone_spec b = {0};
    b.parent_uri = f->child;
    b.parent_wal_uri = f->child_wal;
    b.parent_checkpoint_id = ccp.id;
    b.child_uri = f->child2;
    b.child_wal_uri = f->child2_wal;
    b.range_end = hi;
    b.range_end_len = hil;
    TU_OK(shale_clone(&b, &f->o, NULL));
    shale_reader *r = NULL;
    shale_options ob = with_wal(f, f->child2_wal);
    TU_OK(shale_reader_open(f->child2, &ob, NULL, &r));
    for (unsigned i = 0; i < 300; i++) {
        unsigned want = (i < 100 || i >= 200) ? 0 : (i >= 150 && i < 160) ? 2 : 1;
        dt_expect_reader(r, i, want);
    }
    shale_reader_close(r);
}

/* A half-made clone is refused by writers and readers, and resumed by
 * running the same clone again. */
static void test_uninitialized_clone_refused_then_resumed(void **state)
{
    fixture *f = *state;
    shale_checkpoint cp;
    dt_fill_checkpoint(f->parent, &f->o, 30, SHALE_CHECKPOINT_DURABLE, NULL, &cp);
    /* First attempt: the parent WAL store is missing its WAL objects. */
    shale_clone_spec sp = spec_to_child(f, cp.id);
    sp.parent_wal_uri = f->child2;   /* an empty store: the copy fails */
    TU_RC(SHALE_NOT_FOUND, shale_clone(&sp, &f->o, NULL));
    shale_options co = with_wal(f, f->child_wal);
    shale_db *c = NULL;
    shale_reader *r = NULL;
    TU_RC(SHALE_INVALID_ARGUMENT, shale_open(f->child, &co, &c));
    assert_non_null(strstr(shale_errmsg(), "initialized"));
    TU_RC(SHALE_INVALID_ARGUMENT, shale_reader_open(f->child, &co, NULL, &r));
    /* The same clone with the right WAL store completes it. */
    sp.parent_wal_uri = f->parent_wal;
    shale_clone_result res;
    TU_OK(shale_clone(&sp, &f->o, &res));
    assert_true(res.wal_ssts_copied > 0);
    TU_OK(shale_reader_open(f->child, &co, NULL, &r));
    for (unsigned i = 0; i < 30; i++)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
}

/* A clone fails at its k-th write (to the child or to the parent's pin),
 * for every k until it gets through unharmed, both before and after the
 * write takes effect; running the same clone again must finish it with
 * exactly the parent's data. */
static void test_clone_interrupted_at_every_write_resumes(void **state)
{
    (void)state;
    char *pm = tu_mem_uri("ip"), *pwm = tu_mem_uri("ipw"), *parent = NULL, *pwal = NULL;
    assert_non_null(parent = tu_fault_uri(pm));
    assert_non_null(pwal = tu_fault_uri(pwm));
    shale_options o;
    dt_small_options(&o);
    o.wal_store_uri = pwal;
    shale_db *p = dt_open_fill(parent, &o, 300, 1);
    TU_OK(shale_flush_memtable(p));
    for (unsigned i = 300; i < 330; i++)
        dt_put(p, i, 1);                       /* some data only in the WAL */
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(p, SHALE_CHECKPOINT_DURABLE, 0, NULL, &cp));
    TU_OK(shale_close(p));
    shale_fault *pf = shale_fault_for_uri(parent, NULL);
    unsigned runs = 0;
    for (int after = 0; after < 2; after++) {
        for (int target = 0; target < 2; target++) {   /* 0: child, 1: parent */
            for (unsigned k = 1;; k++) {
                char *cm = tu_mem_uri("ic"), *cwm = tu_mem_uri("icw"), *child = NULL,
                     *cwal = NULL;
                assert_non_null(child = tu_fault_uri(cm));
                assert_non_null(cwal = tu_fault_uri(cwm));
                shale_fault *cf = shale_fault_for_uri(child, NULL);
                char spec[96];
                snprintf(spec, sizeof spec, "write::nth=%u:io%s", k, after ? ":after" : "");
                shale_fault *f = target ? pf : cf;
                shale_fault_clear(f);
                TU_OK(objstore_fault_parse(f, spec));
                uint64_t injected = shale_fault_injected(f);
                shale_clone_spec sp = {0};
                sp.parent_uri = parent;
                sp.parent_wal_uri = pwal;
                sp.parent_checkpoint_id = cp.id;
                sp.child_uri = child;
                sp.child_wal_uri = cwal;
                shale_status rc = shale_clone(&sp, &o, NULL);
                bool hit = shale_fault_injected(f) > injected;
                shale_fault_clear(f);
                if (rc)
                    TU_OK(shale_clone(&sp, &o, NULL));    /* resume */
                shale_options co;
                dt_small_options(&co);
                co.wal_store_uri = cwal;
                shale_reader *r = NULL;
                TU_OK(shale_reader_open(child, &co, NULL, &r));
                for (unsigned i = 0; i < 330; i += 11)
                    dt_expect_reader(r, i, 1);
                uint64_t n = 0;
                TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &n));
                assert_int_equal(n, 330);
                shale_reader_close(r);
                free(child);
                free(cwal);
                free(cm);
                free(cwm);
                runs++;
                if (!hit)
                    break;   /* the clone made fewer than k writes there */
            }
        }
    }
    assert_true(runs > 8);
    free(parent);
    free(pwal);
    free(pm);
    free(pwm);
}

/* A clone and its parent read the same SST objects, so with one shared
 * cache (shale_options.block_cache) a scan of the clone after the same scan
 * of the parent reads no data block from the store, and no footer or index
 * either: the parent's reader, still open, loaded them and the process
 * shares them (table/sst_table.h).  With a cache each, the clone's scan
 * reads its blocks again (the control, which shows the check can fail).  The agent's full Verify relies
 * on this.  *ssts: the SSTs the clone references. */
static unsigned clone_scan_reads(const char *parent, const char *child, shale_options *o,
                                 unsigned lo, unsigned hi, uint64_t *ssts)
{
    shale_reader *pr = NULL, *cr = NULL;
    TU_OK(shale_reader_open(parent, o, NULL, &pr));
    TU_OK(shale_reader_open(child, o, NULL, &cr));
    shale_db_info info;
    TU_OK(shale_reader_info_get(cr, &info));
    *ssts = info.sst_count;
    char a[32], b[32];
    size_t al = dt_key(a, sizeof a, lo), bl = dt_key(b, sizeof b, hi);
    uint64_t n = 0;
    TU_OK(shale_reader_count(pr, a, al, b, bl, &n));
    assert_int_equal(n, hi - lo);
    shale_objstats s0, s1;
    shale_objstore_global_stats(&s0);
    TU_OK(shale_reader_count(cr, NULL, 0, NULL, 0, &n));
    shale_objstore_global_stats(&s1);
    assert_int_equal(n, hi - lo);
    shale_reader_close(cr);
    shale_reader_close(pr);
    return (unsigned)(s1.requests[SHALE_OP_GET_RANGE][0] - s0.requests[SHALE_OP_GET_RANGE][0]);
}

static void test_shared_cache_serves_clone_from_parent_blocks(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("sharedcache");
    char *parent = tu_file_uri(dir, "parent"), *child = tu_file_uri(dir, "child");
    shale_options o;
    dt_small_options(&o);
    unsigned n = tu_quick() ? 1000 : 3000, lo = n / 4, hi = 3 * n / 4;
    shale_db *db = dt_open_fill(parent, &o, n, 1);
    TU_OK(shale_compact(db, true));
    TU_OK(shale_close(db));
    char a[32], b[32];
    size_t al = dt_key(a, sizeof a, lo), bl = dt_key(b, sizeof b, hi);
    shale_clone_spec sp = {0};
    sp.parent_uri = parent;
    sp.child_uri = child;
    sp.range_start = a;
    sp.range_start_len = al;
    sp.range_end = b;
    sp.range_end_len = bl;
    shale_clone_result res;
    TU_OK(shale_clone(&sp, &o, &res));
    assert_true(res.ssts_referenced > 0);
    uint64_t ssts = 0;
    unsigned own = clone_scan_reads(parent, child, &o, lo, hi, &ssts);     /* a cache each */
    shale_cache *c = NULL;
    TU_RC(SHALE_INVALID_ARGUMENT, shale_cache_new(0, &c));
    TU_OK(shale_cache_new(16u << 20, &c));
    o.block_cache = c;
    unsigned shared = clone_scan_reads(parent, child, &o, lo, hi, &ssts);  /* one, shared */
    assert_true(ssts > 0);
    /* The parent's reader is open while the clone's scans: the clone's
     * readers share its SSTs' footer and index (table/sst_table.h), so
     * what is left to read is data blocks -- none with the shared cache. */
    if (shared != 0 || own == 0)
        fail_msg("the clone's scan made %u ranged reads with a shared cache and %u with its "
                 "own, for %llu SSTs: a shared cache and the shared tables must leave none",
                 shared, own, (unsigned long long)ssts);
    assert_true(shale_cache_usage(c) > 0);
    shale_cache_free(c);
    tu_rmtree(dir);
    free(dir);
    free(parent);
    free(child);
}

/* shale_clone_many: four range clones of one checkpoint at once; the
 * parent gets every pin in ONE manifest write; a repeat is a no-op that
 * finds them all done and writes nothing; each child holds exactly its
 * range; a spec that differs from an existing child is refused naming its
 * index. */
static void test_clone_many_pins_once_and_resumes(void **state)
{
    fixture *f = *state;
    shale_checkpoint cp;
    dt_fill_checkpoint(f->parent, &f->o, 400, SHALE_CHECKPOINT_ALL, "split", &cp);
    enum { N = 4 };
    char *kids[N], bounds[N + 1][32];
    shale_clone_spec specs[N];
    memset(specs, 0, sizeof specs);
    for (int i = 0; i <= N; i++)
        dt_key(bounds[i], sizeof bounds[i], 100u * (unsigned)i);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "kid%d", i);
        kids[i] = tu_file_uri(f->base->dir, name);
        specs[i].parent_uri = f->parent;
        specs[i].parent_wal_uri = f->parent_wal;
        specs[i].parent_checkpoint_id = cp.id;
        specs[i].child_uri = kids[i];
        specs[i].range_start = i ? bounds[i] : NULL;
        specs[i].range_start_len = i ? strlen(bounds[i]) : 0;
        specs[i].range_end = i + 1 < N ? bounds[i + 1] : NULL;
        specs[i].range_end_len = i + 1 < N ? strlen(bounds[i + 1]) : 0;
    }
    shale_objstore *ps = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &ps));
    uint64_t *ids = NULL;
    size_t before = 0, after = 0;
    TU_OK(manifest_store_list_ids(ps, &ids, &before));
    free(ids);
    shale_clone_result res[N];
    size_t failed = 99;
    TU_OK(shale_clone_many(specs, N, &f->o, res, &failed));
    TU_OK(manifest_store_list_ids(ps, &ids, &after));
    free(ids);
    assert_int_equal(after, before + 1);   /* one write pinned all four */
    shale_checkpoint *cps = NULL;
    size_t ncp = 0;
    TU_OK(shale_checkpoint_list(f->parent, &f->o, &cps, &ncp));
    size_t pins = 0;
    for (size_t i = 0; i < ncp; i++)
        pins += !strncmp(cps[i].name, "clone:", 6) && cps[i].manifest_id == cp.manifest_id;
    shale_free(cps);
    assert_int_equal(pins, N);
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        assert_false(res[i].already_done);
        shale_reader *r = NULL;
        uint64_t c = 0;
        TU_OK(shale_reader_open(kids[i], &f->o, NULL, &r));
        TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &c));
        shale_reader_close(r);
        assert_int_equal(c, 100);
        total += c;
    }
    assert_int_equal(total, 400);
    /* The phases ran on kept threads: the widest (2N + 1 items, this
     * thread and 2N crew threads) left them all idle. */
    size_t started = crew_started();
    assert_true(crew_idle() >= 2 * N);
    /* Again: every clone is found done; nothing is written to the parent. */
    TU_OK(shale_clone_many(specs, N, &f->o, res, &failed));
    assert_int_equal(crew_started(), started);   /* no thread started anew */
    for (int i = 0; i < N; i++)
        assert_true(res[i].already_done);
    TU_OK(manifest_store_list_ids(ps, &ids, &before));
    free(ids);
    assert_int_equal(before, after);
    /* A clone another spec refuses names its index. */
    specs[2].range_end = bounds[4];
    specs[2].range_end_len = strlen(bounds[4]);
    assert_int_equal(shale_clone_many(specs, N, &f->o, res, &failed), SHALE_CONFLICT);
    assert_int_equal(failed, 2);
    assert_non_null(strstr(shale_errmsg(), "another key range"));
    shale_objstore_close(ps);
    for (int i = 0; i < N; i++)
        free(kids[i]);
}

/* shale_clone_many writes the parent's pins beside the children's version
 * 1: a failure (a kill) can leave the pins without any child manifest.
 * The clone redone finds them (the pin ids are derived from the clone, not
 * drawn at random) and writes no pin again: the parent ends with exactly
 * one pin per child, each the one its child names, and one pin write in
 * all.  With random ids the redo would add a second set no child names,
 * pinning the parent's version for good. */
static void test_clone_many_pins_before_children_resume(void **state)
{
    fixture *f = *state;
    shale_checkpoint cp;
    dt_fill_checkpoint(f->parent, &f->o, 200, SHALE_CHECKPOINT_ALL, "split", &cp);
    enum { N = 2 };
    char *mem[N], *kids[N], mid[32];
    shale_clone_spec specs[N];
    memset(specs, 0, sizeof specs);
    dt_key(mid, sizeof mid, 100);
    for (int i = 0; i < N; i++) {
        assert_non_null(mem[i] = tu_mem_uri(i ? "pk1" : "pk0"));
        assert_non_null(kids[i] = tu_fault_uri(mem[i]));
        TU_OK(objstore_fault_parse(shale_fault_for_uri(kids[i], NULL), "write:manifest/:io"));
        specs[i].parent_uri = f->parent;
        specs[i].parent_wal_uri = f->parent_wal;
        specs[i].parent_checkpoint_id = cp.id;
        specs[i].parent_manifest_id = cp.manifest_id;
        specs[i].child_uri = kids[i];
        specs[i].range_start = i ? mid : NULL;
        specs[i].range_start_len = i ? strlen(mid) : 0;
        specs[i].range_end = i ? NULL : mid;
        specs[i].range_end_len = i ? 0 : strlen(mid);
    }
    shale_objstore *ps = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &ps));
    uint64_t *ids = NULL;
    size_t before = 0, after = 0;
    TU_OK(manifest_store_list_ids(ps, &ids, &before));
    free(ids);
    size_t failed = 99;
    assert_int_equal(shale_clone_many(specs, N, &f->o, NULL, &failed), SHALE_IO);
    shale_checkpoint *cps = NULL;
    size_t ncp = 0, pins = 0;
    TU_OK(shale_checkpoint_list(f->parent, &f->o, &cps, &ncp));
    for (size_t i = 0; i < ncp; i++)
        pins += !strncmp(cps[i].name, "clone:", 6);
    shale_free(cps);
    assert_int_equal(pins, N);   /* the pins landed, no child's version 1 did */
    for (int i = 0; i < N; i++)
        shale_fault_clear(shale_fault_for_uri(kids[i], NULL));
    shale_clone_result res[N];
    TU_OK(shale_clone_many(specs, N, &f->o, res, &failed));
    TU_OK(manifest_store_list_ids(ps, &ids, &after));
    free(ids);
    assert_int_equal(after, before + 1);   /* the redo wrote no pin */
    TU_OK(shale_checkpoint_list(f->parent, &f->o, &cps, &ncp));
    pins = 0;
    for (int k = 0; k < N; k++) {
        shale_manifest_view *m = NULL;
        shale_objstore *cs = NULL;
        TU_OK(shale_objstore_open(kids[k], NULL, &cs));
        TU_OK(shale_manifest_view_load(cs, 0, &m));
        assert_int_equal(m->parent_count, 1);
        for (size_t i = 0; i < ncp; i++)
            pins += !strcmp(cps[i].id, m->parents[0].final_checkpoint_id) &&
                    cps[i].manifest_id == cp.manifest_id;
        shale_manifest_view_free(m);
        shale_objstore_close(cs);
        shale_reader *r = NULL;
        uint64_t c = 0;
        TU_OK(shale_reader_open(kids[k], &f->o, NULL, &r));
        TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &c));
        shale_reader_close(r);
        assert_int_equal(c, 100);
    }
    size_t named = 0;
    for (size_t i = 0; i < ncp; i++)
        named += !strncmp(cps[i].name, "clone:", 6);
    shale_free(cps);
    assert_int_equal(pins, N);
    assert_int_equal(named, N);
    shale_objstore_close(ps);
    for (int i = 0; i < N; i++) {
        free(kids[i]);
        free(mem[i]);
    }
}

/* A clone made without a checkpoint from a parent whose writer closed
 * without a manifest update since its writes (a bulk load): the acknowledged
 * writes live only in WAL SSTs past the manifest's next_wal_sst_id.  The
 * checkpoint the clone makes must cover them (found by looking in the
 * parent's WAL store), or the child silently lacks them. */
static void test_clone_without_checkpoint_sees_every_acknowledged_write(void **state)
{
    fixture *f = *state;
    shale_options po = f->o;
    po.memtable_bytes = 64u << 20;   /* nothing reaches L0: all of it is WAL */
    po.max_unflushed_bytes = 256u << 20;
    shale_db *db = NULL;
    TU_OK(shale_open(f->parent, &po, &db));
    shale_db_info before;
    TU_OK(shale_db_info_get(db, &before));
    for (unsigned i = 0; i < 300; i++)
        dt_put(db, i, 1);
    TU_OK(shale_close(db));
    shale_clone_spec spec = {0};
    spec.parent_uri = f->parent;
    spec.parent_wal_uri = f->parent_wal;
    spec.child_uri = f->child;
    spec.child_wal_uri = f->child_wal;
    shale_clone_result res;
    TU_OK(shale_clone(&spec, NULL, &res));
    assert_true(res.wal_ssts_copied >= 2);   /* the fencing SST and the data */
    shale_options co = with_wal(f, f->child_wal);
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->child, &co, NULL, &r));
    uint64_t n = 0;
    TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &n));
    assert_int_equal(n, 300);
    for (unsigned i = 0; i < 300; i += 37)
        dt_expect_reader(r, i, 1);
    shale_reader_close(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(clone_replays_wal_and_continues_writing),
        T(clone_succeeds_after_parent_wal_cleanup),
        T(clone_should_fail_when_wal_store_is_not_provided),
        T(test_range_clones_partition_parent),
        T(test_gc_after_clone_keeps_child_data),
        T(test_clone_of_clone),
        T(test_uninitialized_clone_refused_then_resumed),
        T(test_clone_interrupted_at_every_write_resumes),
        T(test_clone_many_pins_once_and_resumes),
        T(test_clone_many_pins_before_children_resume),
        T(test_clone_without_checkpoint_sees_every_acknowledged_write),
        cmocka_unit_test(test_shared_cache_serves_clone_from_parent_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
