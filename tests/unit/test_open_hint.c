/*
 * test_open_hint.c -- shale_open_at(): the writer's open given a manifest
 * id (right, stale, naming nothing, or naming a version whose successor a
 * GC removed) opens the latest version and fences the previous writer
 * exactly as shale_open() does; and the open's conditional-create probe,
 * whose two creates go out at once, still passes a store that honours
 * create-if-absent when one of them fails otherwise, and fails the open
 * when both fail.  shale_open_at_latest_fenced_after(): given the latest
 * version it lists nothing; given one the writer wrote after, it lists and
 * fences after the newest.
 */
#include "support/dbtest.h"
#include "objstore/objstore_fault.h"
#include "db/db_int.h"   /* spec_replayed */
#include "shale_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *backend(void **state)
{
    return *state ? (const char *)*state : "mem";
}

static uint64_t manifest_id(shale_db *db)
{
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    return info.manifest_id;
}

static uint64_t epoch(shale_db *db)
{
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));
    return info.writer_epoch;
}

/* The latest version's id as a plain listing finds it. */
static uint64_t latest_listed(const char *uri)
{
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    shale_manifest_view *v = NULL;
    TU_OK(shale_manifest_view_load(s, 0, &v));
    uint64_t id = v->id;
    shale_manifest_view_free(v);
    shale_objstore_close(s);
    return id;
}

/* a writes 0..n-1 at version ver (flushing its memtable: manifest writes),
 * then b opens with the hint: a is fenced, b holds everything a
 * acknowledged, and b's fence is the latest version, one epoch above a's. */
static void open_over(const char *uri, shale_options *o, shale_db *a, unsigned n,
                      uint64_t hint)
{
    for (unsigned i = 0; i < n; i++)
        dt_put(a, i, 1);
    TU_OK(shale_flush_memtable(a));           /* a manifest write after the hint */
    uint64_t a_epoch = epoch(a), a_latest = latest_listed(uri);
    shale_db *b = NULL;
    TU_OK(shale_open_at(uri, o, hint, &b));
    assert_int_equal(epoch(b), a_epoch + 1);
    assert_true(manifest_id(b) > a_latest);
    assert_int_equal(latest_listed(uri), manifest_id(b));   /* b's fence is the latest */
    for (unsigned i = 0; i < n; i++)
        dt_expect(b, i, 1);
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 5000), vl = dt_val(v, sizeof v, 5000, 1);
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));   /* never both acknowledge */
    dt_put(b, 5000, 2);
    shale_close(a);
    TU_OK(shale_close(b));
    TU_OK(shale_open(uri, o, &b));
    dt_expect(b, 5000, 2);
    for (unsigned i = 0; i < n; i++)
        dt_expect(b, i, 1);
    TU_OK(shale_close(b));
}

static void test_right_hint(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "hint_right", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL;
    TU_OK(shale_open(uri, &o, &a));
    for (unsigned i = 0; i < 20; i++)
        dt_put(a, i, 1);
    TU_OK(shale_flush_memtable(a));
    /* The hint is the latest version: read by it, nothing newer listed. */
    uint64_t a_epoch = epoch(a), hint = latest_listed(uri);
    shale_db *b = NULL;
    TU_OK(shale_open_at(uri, &o, hint, &b));
    assert_int_equal(epoch(b), a_epoch + 1);
    assert_int_equal(latest_listed(uri), manifest_id(b));
    assert_true(manifest_id(b) > hint);
    for (unsigned i = 0; i < 20; i++)
        dt_expect(b, i, 1);
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 7), vl = dt_val(v, sizeof v, 7, 9);
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));
    shale_close(a);
    TU_OK(shale_close(b));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* Versions written after the hint: the listing finds the newest. */
static void test_stale_hint(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "hint_stale", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL;
    TU_OK(shale_open(uri, &o, &a));
    uint64_t hint = manifest_id(a);
    dt_put(a, 100, 1);
    TU_OK(shale_flush_memtable(a));
    assert_true(latest_listed(uri) > hint);
    open_over(uri, &o, a, 40, hint);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* A hint naming no version: one never written, and one deleted. */
static void test_missing_hint(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "hint_missing", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL;
    TU_OK(shale_open(uri, &o, &a));
    open_over(uri, &o, a, 30, 1000000);       /* beyond the latest */
    TU_OK(shale_open(uri, &o, &a));
    /* Version 1 (neither latest nor pinned) deleted, as GC would. */
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    TU_OK(shale_objstore_delete(s, "manifest/00000000000000000001.manifest"));
    shale_objstore_close(s);
    open_over(uri, &o, a, 30, 1);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* The hinted version is there (a checkpoint may pin an old one) but the
 * one after it was deleted by a GC, and newer ones exist: a create of
 * hint + 1 would succeed, so the open must not trust the GET alone -- the
 * listing beside it finds the newest, and the fence goes after that. */
static void test_hint_with_successor_deleted(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "hint_gap", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL;
    TU_OK(shale_open(uri, &o, &a));
    uint64_t hint = manifest_id(a);
    for (unsigned r = 0; r < 3; r++) {
        dt_put(a, 200 + r, 1);
        TU_OK(shale_flush_memtable(a));
    }
    assert_true(latest_listed(uri) > hint + 1);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    char key[64];
    snprintf(key, sizeof key, "manifest/%020llu.manifest", (unsigned long long)(hint + 1));
    TU_OK(shale_objstore_delete(s, key));
    shale_objstore_close(s);
    open_over(uri, &o, a, 25, hint);
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* A database that does not exist yet: the hint names nothing and the open
 * creates it as shale_open() does. */
static void test_hint_on_new_database(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "hint_new", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL;
    TU_OK(shale_open_at(uri, &o, 5, &a));
    assert_int_equal(epoch(a), 1);
    dt_put(a, 1, 1);
    TU_OK(shale_close(a));
    o.create_if_missing = false;
    TU_OK(shale_open_at(uri, &o, 1, &a));
    dt_expect(a, 1, 1);
    TU_OK(shale_close(a));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* The probe's two creates at once: one refused otherwise (as S3 may refuse
 * one of two racing conditional writes) is settled by a sequential create,
 * which a store that honours create-if-absent refuses: the open passes.
 * Both refused: the open fails, and nothing was fenced. */
static void test_probe_creates_at_once(void **state)
{
    (void)state;
    shale_fault *f = NULL;
    char *u = tu_fault_mem_uri("hint_probe", &f);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(u, &o, &a));
    dt_put(a, 1, 1);
    uint64_t a_epoch = epoch(a);
    TU_OK(objstore_fault_parse(f, "put_if_absent:.probe/:nth=1:io"));
    TU_OK(shale_open(u, &o, &b));
    assert_int_equal(shale_fault_injected(f), 1);
    assert_int_equal(epoch(b), a_epoch + 1);
    dt_expect(b, 1, 1);
    shale_close(a);
    TU_OK(shale_close(b));
    shale_fault_clear(f);
    TU_OK(objstore_fault_parse(f, "put_if_absent:.probe/:count=2:io"));
    TU_RC(SHALE_IO, shale_open(u, &o, &b));
    assert_null(b);
    assert_non_null(strstr(shale_errmsg(), "probing conditional create"));
    shale_fault_clear(f);
    TU_OK(shale_open(u, &o, &b));
    assert_int_equal(epoch(b), a_epoch + 2);  /* the failed open raised nothing */
    dt_expect(b, 1, 1);
    TU_OK(shale_close(b));
    free(u);
}

/* shale_open_at_fenced_after()'s barrier: called once, after the reads
 * and before the fence write (the previous writer still writes then); a
 * failing one fails the open with its status and fences nothing; not
 * called when the probe fails. */
typedef struct barrier_ctx {
    shale_db *old;        /* the previous writer */
    const char *uri;
    uint64_t latest;      /* the latest version before the open */
    int calls;
    shale_status answer;
} barrier_ctx;

static shale_status barrier(void *arg)
{
    barrier_ctx *b = arg;
    b->calls++;
    assert_int_equal(latest_listed(b->uri), b->latest);   /* no fence write yet */
    dt_put(b->old, 900 + (unsigned)b->calls, 1);
    TU_OK(shale_flush_wal(b->old));                        /* not fenced yet */
    if (b->answer)
        return shale_error_set(b->answer, "the test's barrier says no");
    return SHALE_OK;
}

static void test_barrier_before_fence(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "hint_barrier", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(uri, &o, &a));
    uint64_t a_epoch = epoch(a);
    barrier_ctx bc = {a, uri, latest_listed(uri), 0, SHALE_CONFLICT};
    TU_RC(SHALE_CONFLICT, shale_open_at_fenced_after(uri, &o, bc.latest, barrier, &bc, &b));
    assert_null(b);
    assert_non_null(strstr(shale_errmsg(), "the test's barrier says no"));
    assert_int_equal(bc.calls, 1);
    assert_int_equal(latest_listed(uri), bc.latest);       /* nothing fenced */
    assert_int_equal(epoch(a), a_epoch);
    dt_put(a, 950, 1);
    TU_OK(shale_flush_wal(a));
    bc.answer = SHALE_OK;
    bc.calls = 0;
    bc.latest = latest_listed(uri);
    TU_OK(shale_open_at_fenced_after(uri, &o, bc.latest, barrier, &bc, &b));
    assert_int_equal(bc.calls, 1);
    assert_int_equal(epoch(b), a_epoch + 1);
    dt_expect(b, 901, 1);                   /* written at the barrier: kept */
    dt_expect(b, 950, 1);
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 960), vl = dt_val(v, sizeof v, 960, 1);
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));
    shale_close(a);
    TU_OK(shale_close(b));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

static void test_barrier_not_called_when_probe_fails(void **state)
{
    (void)state;
    shale_fault *f = NULL;
    char *u = tu_fault_mem_uri("hint_barrier_probe", &f);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(u, &o, &a));
    barrier_ctx bc = {a, u, 0, 0, SHALE_OK};
    TU_OK(objstore_fault_parse(f, "put_if_absent:.probe/:count=2:io"));
    TU_RC(SHALE_IO, shale_open_at_fenced_after(u, &o, 0, barrier, &bc, &b));
    assert_int_equal(bc.calls, 0);
    shale_fault_clear(f);
    TU_OK(shale_close(a));
    free(u);
}

/* Two stores (the WAL's apart): both probed, at once, and the open works. */
static void test_hint_with_wal_store(void **state)
{
    (void)state;
    dt_fixture *fx = dt_fixture_new("hint_wal");
    shale_db *a = NULL;
    TU_OK(shale_open(fx->uri, &fx->o, &a));
    uint64_t hint = manifest_id(a);
    open_over(fx->uri, &fx->o, a, 30, hint);
    dt_fixture_free(fx);
}

/* LISTs made by this process so far (every store, both outcomes). */
static uint64_t lists_made(void)
{
    shale_objstats st;
    shale_objstore_global_stats(&st);
    return st.requests[SHALE_OP_LIST][0] + st.requests[SHALE_OP_LIST][1];
}

/* shale_open_at_latest_fenced_after() given the latest version, read a
 * moment ago: the open lists nothing (a HEAD of the next version says
 * there is none) and fences the previous writer as shale_open() does.
 * Fails if the open lists the versions again. */
static void test_latest_hint_lists_nothing(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "latest_right", &dir);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(uri, &o, &a));
    for (unsigned i = 0; i < 20; i++)
        dt_put(a, i, 1);
    TU_OK(shale_flush_memtable(a));
    uint64_t a_epoch = epoch(a), hint = latest_listed(uri);
    uint64_t lists = lists_made();
    TU_OK(shale_open_at_latest_fenced_after(uri, &o, hint, NULL, NULL, &b));
    assert_int_equal(lists_made(), lists);
    assert_int_equal(epoch(b), a_epoch + 1);
    assert_true(manifest_id(b) > hint);
    assert_int_equal(latest_listed(uri), manifest_id(b));
    for (unsigned i = 0; i < 20; i++)
        dt_expect(b, i, 1);
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 7), vl = dt_val(v, sizeof v, 7, 9);
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));
    shale_close(a);
    TU_OK(shale_close(b));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* The writer wrote after the caller read its latest version (the race a
 * split's submit and Fence leave open): the next version is there, so the
 * open reads it (and the next, up to 3) or, further behind, lists, and
 * fences after the newest; nothing the previous writer acknowledged is
 * lost and it cannot write on.  The same for versions written inside the
 * open's barrier.  And a latest_id that names no version falls back to
 * the full listing. */
typedef struct late_write {
    shale_db *old;
    unsigned n;
} late_write;

static shale_status write_after_read(void *arg)
{
    late_write *w = arg;
    for (unsigned i = 0; i < w->n; i++)
        dt_put(w->old, 300 + i, 1);
    TU_OK(shale_flush_memtable(w->old));   /* versions after the open's reads */
    return SHALE_OK;
}

/* a writes versions after hint until the latest is at least `behind`
 * past it, then b opens given hint as the latest: b fences after the
 * newest with everything a wrote, and lists iff it was more than
 * FRESH_ROUNDS (3) versions behind. */
static void open_latest_behind(const char *uri, shale_options *o, unsigned behind)
{
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(uri, o, &a));
    uint64_t hint = latest_listed(uri), a_epoch = epoch(a);
    for (unsigned r = 0; latest_listed(uri) < hint + behind; r++) {
        dt_put(a, 100 + r, 1);
        TU_OK(shale_flush_memtable(a));   /* written after the caller's read */
    }
    uint64_t newest = latest_listed(uri);
    uint64_t lists = lists_made();
    TU_OK(shale_open_at_latest_fenced_after(uri, o, hint, NULL, NULL, &b));
    if (newest - hint <= 3)
        assert_int_equal(lists_made(), lists);   /* the next ones' GET and HEAD */
    else
        assert_true(lists_made() > lists);       /* too far behind: listed */
    assert_int_equal(epoch(b), a_epoch + 1);
    assert_true(manifest_id(b) > newest);
    assert_int_equal(latest_listed(uri), manifest_id(b));
    dt_expect(b, 100, 1);
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 99), vl = dt_val(v, sizeof v, 99, 1);
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));
    shale_close(a);
    TU_OK(shale_close(b));
}

static void test_latest_hint_written_since(void **state)
{
    char *dir, *uri = dt_store_uri(backend(state), "latest_stale", &dir);
    shale_options o;
    dt_small_options(&o);
    open_latest_behind(uri, &o, 1);
    open_latest_behind(uri, &o, 4);
    shale_db *a = NULL, *b = NULL;
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 101), vl = dt_val(v, sizeof v, 101, 1);
    uint64_t a_epoch;
    /* Written between the open's reads and its fence: the fence write's
     * create-if-absent finds the newer version and goes after it. */
    TU_OK(shale_open(uri, &o, &a));
    a_epoch = epoch(a);
    late_write w = {a, 10};
    TU_OK(shale_open_at_latest_fenced_after(uri, &o, latest_listed(uri), write_after_read, &w,
                                            &b));
    assert_int_equal(epoch(b), a_epoch + 1);
    assert_int_equal(latest_listed(uri), manifest_id(b));
    for (unsigned i = 0; i < 10; i++)
        dt_expect(b, 300 + i, 1);
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));
    shale_close(a);
    TU_OK(shale_close(b));
    /* A latest_id beyond every version: the full listing. */
    TU_OK(shale_open(uri, &o, &a));
    a_epoch = epoch(a);
    TU_OK(shale_open_at_latest_fenced_after(uri, &o, 1000000, NULL, NULL, &b));
    assert_int_equal(epoch(b), a_epoch + 1);
    assert_int_equal(latest_listed(uri), manifest_id(b));
    shale_close(a);
    TU_OK(shale_close(b));
    tu_rmtree(dir);
    free(dir);
    free(uri);
}

/* A takeover (an open with a barrier: a split's) builds the replayed
 * memtable into its SST and uploads it while the open's last manifest
 * write is in flight, so the flush after it is one manifest write (issue
 * 16: FullFlush off the chain by one round trip).  From the fault
 * wrapper's trace: the SST's put starts before the open returns, and the
 * flush puts no other SST.  An image a flush does not take (an entry
 * added after the open) is deleted: every SST left is one the manifest
 * names. */
static char trace_path[300];

static shale_status ok_barrier(void *arg)
{
    (void)arg;
    return SHALE_OK;
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Requests `op` of keys under `prefix` to the store named `store` in the
 * trace, started at or after `from`: how many, and the earliest start. */
static int traced(const char *op_want, const char *store, const char *prefix, long long from,
                  long long *first)
{
    FILE *f = fopen(trace_path, "r");
    assert_non_null(f);
    char line[1400], op[32], st[600], key[600];
    long long t0, t1;
    int n = 0;
    *first = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%lld %lld %*s %31s %599s %599s", &t0, &t1, op, st, key) == 5 &&
            t0 >= from && !strcmp(op, op_want) && !strcmp(st, store) &&
            !strncmp(key, prefix, strlen(prefix)) && (!n++ || t0 < *first))
            *first = t0;
    fclose(f);
    return n;
}

/* SST puts to the store named `store` in the trace: how many, and the
 * first one's start (after `from`). */
static int sst_puts(const char *store, long long from, long long *first)
{
    return traced("put", store, "compacted/", from, first);
}

/* Every SST in the store is one the manifest names. */
static void expect_ssts_named(const char *u)
{
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(u, NULL, &s));
    shale_manifest_view *v = NULL;
    TU_OK(shale_manifest_view_load(s, 0, &v));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, "compacted/", &l));
    size_t named = v->l0_count;
    for (size_t r = 0; r < v->run_count; r++)
        named += v->runs[r].count;
    assert_int_equal(l.count, named);
    shale_objlist_free(&l);
    shale_manifest_view_free(v);
    shale_objstore_close(s);
}

static void takeover(const char *u, shale_options *o, bool add_after)
{
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(u, o, &a));
    for (unsigned i = 0; i < 50; i++)
        dt_put(a, i, 1);
    TU_OK(shale_flush_wal(a));                 /* in the WAL, not in an SST */
    long long t0 = now_us();
    TU_OK(shale_open_at_fenced_after(u, o, latest_listed(u), ok_barrier, NULL, &b));
    long long t_open = now_us();
    if (add_after)
        dt_put(b, 100, 1);                     /* the prebuilt image is stale now */
    TU_OK(shale_flush_memtable(b));
    long long first;
    int puts = sst_puts(u, t0, &first);
    if (!add_after) {
        assert_int_equal(puts, 1);             /* the flush put nothing itself */
        assert_true(first > 0 && first < t_open);   /* beside the open's last write */
    } else {
        assert_int_equal(puts, 2);             /* the stale image, then the flush's */
    }
    shale_close(a);
    TU_OK(shale_close(b));
    expect_ssts_named(u);
    TU_OK(shale_open(u, o, &b));
    for (unsigned i = 0; i < 50; i++)
        dt_expect(b, i, 1);
    if (add_after)
        dt_expect(b, 100, 1);
    TU_OK(shale_close(b));
}

static void test_takeover_uploads_beside_open(void **state)
{
    (void)state;
    shale_fault *f = NULL;
    char *u = tu_fault_mem_uri("hint_takeover", &f);
    shale_options o;
    dt_small_options(&o);
    /* The open's manifest writes take 50 ms: time for the small build. */
    TU_OK(objstore_fault_parse(f, "put_if_absent:manifest/:latency=50:ok"));
    takeover(u, &o, false);
    free(u);
    u = tu_fault_mem_uri("hint_takeover_stale", &f);
    TU_OK(objstore_fault_parse(f, "put_if_absent:manifest/:latency=50:ok"));
    takeover(u, &o, true);
    free(u);
}

/* A takeover replays the WAL before its fence, while it waits at its
 * barrier (db_open.c spec_replay; issue 16): the replay's reads start
 * before the barrier is called, and what they read is kept -- when the
 * old writer adds WAL SSTs at the barrier, they are replayed after the
 * fence on top of it; when it flushes (the replay point moves), the
 * replay is made again from the fenced version.  Every entry is there
 * either way. */
typedef enum { AT_BARRIER_NOTHING, AT_BARRIER_WAL, AT_BARRIER_FLUSH } at_barrier;

typedef struct spec_ctx {
    shale_db *old;
    at_barrier what;
    long long called;     /* when the barrier ran */
} spec_ctx;

static shale_status spec_barrier(void *arg)
{
    spec_ctx *c = arg;
    c->called = now_us();
    if (c->what == AT_BARRIER_WAL || c->what == AT_BARRIER_FLUSH) {
        for (unsigned i = 50; i < 60; i++)
            dt_put(c->old, i, 1);
        TU_OK(c->what == AT_BARRIER_WAL ? shale_flush_wal(c->old)
                                         : shale_flush_memtable(c->old));
    }
    return SHALE_OK;
}

/* WAL SST GETs of store `store` in the trace after `from`: how many, and
 * the first one's start. */
static int wal_gets(const char *store, long long from, long long *first)
{
    return traced("get", store, "wal/", from, first);
}

static void spec_takeover(const char *name, at_barrier what, uint64_t want_kept,
                          uint64_t want_prebuilt)
{
    shale_fault *f = NULL;
    char *u = tu_fault_mem_uri(name, &f);
    shale_options o;
    dt_small_options(&o);
    shale_db *a = NULL, *b = NULL;
    TU_OK(shale_open(u, &o, &a));
    for (unsigned i = 0; i < 50; i++)
        dt_put(a, i, 1);
    TU_OK(shale_flush_wal(a));                 /* in the WAL, not in an SST */
    spec_ctx c = {a, what, 0};
    long long t0 = now_us();
    TU_OK(shale_open_at_fenced_after(u, &o, latest_listed(u), spec_barrier, &c, &b));
    long long first;
    assert_true(wal_gets(u, t0, &first) > 0);
    assert_true(first > 0 && first < c.called);   /* the replay began before the barrier */
    assert_int_equal(b->spec_replayed, want_kept);
    /* The SST built before the fence is the one uploaded only when the
     * fence added nothing to what was replayed. */
    assert_int_equal(b->spec_prebuilt, want_prebuilt);
    TU_OK(shale_flush_memtable(b));
    expect_ssts_named(u);
    for (unsigned i = 0; i < 60; i++)
        if (what != AT_BARRIER_NOTHING || i < 50)
            dt_expect(b, i, 1);
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, 70), vl = dt_val(v, sizeof v, 70, 1);
    TU_RC(SHALE_FENCED, shale_put(a, k, kl, v, vl));
    shale_close(a);
    TU_OK(shale_close(b));
    TU_OK(shale_open(u, &o, &b));              /* and durably so */
    for (unsigned i = 0; i < 60; i++)
        if (what != AT_BARRIER_NOTHING || i < 50)
            dt_expect(b, i, 1);
    TU_OK(shale_close(b));
    free(u);
}

static void test_takeover_replays_before_fence(void **state)
{
    (void)state;
    spec_takeover("spec_nothing", AT_BARRIER_NOTHING, 50, 1);   /* all of it kept */
    spec_takeover("spec_wal", AT_BARRIER_WAL, 50, 0);           /* kept, 10 more after */
    spec_takeover("spec_flush", AT_BARRIER_FLUSH, 0, 0);        /* replay point moved */
}

int main(void)
{
    /* Before any fault store is used: the trace is opened once. */
    snprintf(trace_path, sizeof trace_path, "/tmp/shale-open-hint-trace-%d.txt", (int)getpid());
    remove(trace_path);
    setenv("SHALE_FAULT_TRACE", trace_path, 1);
    static const char mem[] = "mem", file[] = "file";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_right_hint, (void *)mem),
        cmocka_unit_test_prestate(test_right_hint, (void *)file),
        cmocka_unit_test_prestate(test_stale_hint, (void *)mem),
        cmocka_unit_test_prestate(test_stale_hint, (void *)file),
        cmocka_unit_test_prestate(test_missing_hint, (void *)mem),
        cmocka_unit_test_prestate(test_missing_hint, (void *)file),
        cmocka_unit_test_prestate(test_hint_with_successor_deleted, (void *)mem),
        cmocka_unit_test_prestate(test_hint_with_successor_deleted, (void *)file),
        cmocka_unit_test_prestate(test_hint_on_new_database, (void *)mem),
        cmocka_unit_test_prestate(test_hint_on_new_database, (void *)file),
        cmocka_unit_test_prestate(test_barrier_before_fence, (void *)mem),
        cmocka_unit_test_prestate(test_barrier_before_fence, (void *)file),
        cmocka_unit_test(test_barrier_not_called_when_probe_fails),
        cmocka_unit_test(test_probe_creates_at_once),
        cmocka_unit_test(test_hint_with_wal_store),
        cmocka_unit_test_prestate(test_latest_hint_lists_nothing, (void *)mem),
        cmocka_unit_test_prestate(test_latest_hint_lists_nothing, (void *)file),
        cmocka_unit_test_prestate(test_latest_hint_written_since, (void *)mem),
        cmocka_unit_test_prestate(test_latest_hint_written_since, (void *)file),
        cmocka_unit_test(test_takeover_uploads_beside_open),
        cmocka_unit_test(test_takeover_replays_before_fence),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove(trace_path);
    return rc;
}
