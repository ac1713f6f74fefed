/*
 * test_split_budget.c -- what a split costs in requests, counted (never
 * timed): a references split of 2 and of 8 children through fault+mem://
 * stores, with the process's request counters (shale_objstore_global_stats)
 * read before the submit and after Complete.  Held:
 *   - requests grow at most linearly in the children, with a small
 *     constant: total <= PER_CHILD * children + BASE, LISTs <= LIST_BASE +
 *     LIST_PER_CHILD * children (each child's store is listed once, the
 *     parent and its local WAL a fixed number of times: no margin);
 *   - the parent's manifest is written a fixed number of times whatever
 *     the number of children: the Clone step pins every child in ONE
 *     parent write (shale_clone_many), not one per child;
 *   - the journal is written a fixed number of versions (docs/agent.md
 *     "Journal"): each is a sequential round trip on S3;
 *   - the split's sequential round trips (the longest chain of requests
 *     one after the other, counted from the fault wrapper's trace with a
 *     latency injected so that overlap shows) stay at most CHAIN_MAX.
 * The bounds are today's figures with a margin (docs/benchmarks.md "Split
 * latency" has the breakdown); a change that makes a split do per-child
 * work one child after another, or re-read what it wrote, fails here.
 */
#include "support/dbtest.h"
#include "request.h"
#include "splitter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Measured 120-121 requests for 2 children and 281-282 for 8 (27 per
 * child, 67 of base) with the latency below on SST format 2, 113 and 257
 * with main's format 3: Verify's windows that read one block at once each
 * read it, more of them the more they overlap in time.  Before the third
 * pass: 112 and 256 without latency. */
#define PER_CHILD 28
#define BASE 72
/* Sequential round trips: the longest chain of requests each of which
 * started after the one before it ended, from the fault wrapper's trace
 * (SHALE_FAULT_TRACE) with 10 ms injected per request, submit to idle
 * (Complete, the lease released).  Measured 32-35 for 2 and 8 children
 * (53-55 before issue 16's third pass); the margin is for a loaded machine,
 * where a thread that starts late can put one more request in a chain.
 * 30-31 since Verify Done and Complete Done are one journal write and the
 * checkpoint's and the lease's releases go at once after it (h/chainrt);
 * the final flush carrying the checkpoint saves one more (h/flushrt).
 * 23 for 2 and 8 children once Verify opens its readers by version, reads
 * every level of a window at once and samples a fixed set per child
 * (h/verifyrt); Fence's open at the submit's manifest version and beside
 * journal version 1 saves two more (h/fenceacc), Clone in 3 round trips
 * (the probe in the pre-flight, the parent's version by id, the pin beside
 * the children's version 1: h/clonert) two more: 5 of margin. */
/* 19 measured after h/clonert and h/fenceacc together (plain build);
 * under ASan with make test's other suites on the 2 cores, 19-23 and
 * once above 24, so the sanitizer build gets more room. */
/* 15 since the pre-flight runs beside Fence and FullFlush (h/preflight;
 * 16 before): one less of room. */
/* 13 with Clone in 2 and Verify in 1 (seventh session): 5 of room, 8
 * under ASan. */
#ifdef __SANITIZE_ADDRESS__
#define CHAIN_MAX 21
#else
#define CHAIN_MAX 18
#endif
/* The submit's own round trips, from the call to its return (journal
 * version 1 durable): (1) the stores' identities beside the children's
 * emptiness checks, the parent's manifest LIST and the journal's version 1
 * HEAD; (2) the lease's take (the parent's manifest GET beside it: the
 * request was checked against the range the worker's first pass kept);
 * (3) version 1, Fence's open's reads beside it.  4 before h/accept. */
/* Under ASan on a loaded machine a thread that starts a round trip late
 * can put one more request in the chain (seen once at load 9.6): one of
 * room there. */
#ifdef __SANITIZE_ADDRESS__
#define SUBMIT_CHAIN_MAX 4
#else
#define SUBMIT_CHAIN_MAX 3
#endif
/* 20 ms, not 10: a thread that starts a few ms late (ASan, a loaded
 * machine) lets a request that overlaps another start after it ended and
 * lengthens the chain; the more latency, the less that jitter shows. */
#define CHAIN_LATENCY_MS 20
/* LISTs, measured 4 for 2 children and 10 for 8 (2 + 1 per child, every
 * run alike), under the goal "3 plus one per child store": per
 * child store the submit's emptiness check only (the pre-flight lists
 * nothing, the claim refuses what takes a store; Verify opens each child at
 * the version Clone wrote, by id); the parent's request validation (its
 * latest version, whose range the request must cover); the local WAL
 * (WipeLocalWAL, whose listing is what finds a WAL object above the
 * checkpoint).  Since h/lists (2026-12-02) the submit HEADs the journal's
 * version 1 instead of listing the journal, takes the lease after the
 * record this process last saw free without listing it, and Fence's open
 * HEADs the version after the one the submit listed instead of listing
 * again; since h/vbytes Verify reads the parent's latest (the pin write)
 * by id with a HEAD of the next version.  8 and 15 before those (the lease
 * now and then listed twice by the worker's first pass, which
 * splitter_wait_idle now waits for); 17 and 41 before h/verifyrt.  Any of
 * them back fails here (2 children: 5 > 4).  3 since h/vbytes2 (the
 * goal's own bound, "3 plus one per child store"): Verify checks the
 * referenced SSTs of a store that holds two or more by one LIST of its SSTs
 * instead of a HEAD each (measured 5 and 11: a HEAD per SST grew with the
 * shard, 7 at 500 MB against 1 at 50 MB). */
#define LIST_BASE 3
#define LIST_PER_CHILD 1
/* Verify (references, in the process that ran Clone) lists no manifest:
 * each child at the version Clone wrote, the parent at its writer's
 * version and its latest (the pin write after it) by id, each with a HEAD
 * of the next version (h/vbytes; it listed the parent's manifests once
 * before).  Its one LIST is of the parent's SSTs, the existence and size
 * of every referenced object (h/vbytes2; a HEAD each before: the parent
 * here has more than one SST). */
#define VERIFY_LISTS 1
/* the writer's fence, a WAL position, the final flush carrying the
 * split's checkpoint (one write since 2026-12-02, shale_flush_checkpoint:
 * measured 5, was 6 with the checkpoint a write of its own), the
 * children's pins (one write), the checkpoint's release */
#define PARENT_MANIFEST_WRITES 5
#define JOURNAL_VERSIONS 6   /* version 1 records the accept, Fence Running and
                                FullFlush Running; one version records Verify Done and
                                Complete Done (issue 16, h/chainrt) */

/* GETs of manifest versions from the submit to idle (the trace's "get"
 * lines under manifest/).  The parent: the submit's read of its latest,
 * once -- Fence's open, Clone and Verify take the versions the accept read
 * and the split's writer and Clone wrote from the run's manifest cache
 * (shale_manifest_cache, h/mfread; 5 before: the submit, Fence's open,
 * Clone's read of the writer's version, Verify's of it and of the pin).
 * A child: Clone's look for a version 1 of an earlier attempt (not found)
 * only; Verify's read of the version Clone wrote is cached (2 before). */
#define PARENT_MANIFEST_GETS 1
#define CHILD_MANIFEST_GETS 1

/* Sequential round trips per step: the chain of traced requests between
 * the previous step's end (the submit's return for Fence) and this step's,
 * so the journal write that starts a step is its own.  Measured (plain
 * build, 2 and 8 children, 20 ms): Fence 2, FullFlush 1-2, WipeLocalWAL 1,
 * Clone 2, Verify 1 (the requests wholly inside each window).  WipeLocalWAL was 2 before its pre-flight moved beside
 * Fence and FullFlush (h/preflight: the claims' creates were a round trip
 * after its "Running", the checks one beside it); a pre-flight back on the
 * wipe's path fails here.  The others get one of margin for a request
 * that starts late on a loaded machine (ASan: two). */
static const char *const step_names[] = {"Fence", "FullFlush", "WipeLocalWAL", "Clone",
                                         "Verify"};
#define STEPS 5
#ifdef __SANITIZE_ADDRESS__
#define STEP_SLACK 2
#else
#define STEP_SLACK 1
#endif
/* Clone 2 since its children's version 1 is written initialised beside
 * the pin (shale_clone_many_held; 3 before), Verify 1 since its reads are
 * made beside Clone (verify_warm.h; 3 before): measured exactly that in
 * every run, so no slack in the plain build -- either change undone fails
 * here. */
#ifdef __SANITIZE_ADDRESS__
#define EXACT_SLACK 1
#else
#define EXACT_SLACK 0
#endif
static const long step_chain_max[STEPS] = {2 + STEP_SLACK, 2 + STEP_SLACK, 1,
                                           2 + EXACT_SLACK, 1 + EXACT_SLACK};

/* Each step's end time, beside dt_on_step's counters. */
typedef struct step_times {
    dt_step_stats stats;
    long long end_us[STEPS];
} step_times;

static long long mono_us(void);

static void on_step(void *ctx, const char *step, double secs)
{
    step_times *t = ctx;
    dt_on_step(&t->stats, step, secs);
    for (int i = 0; i < STEPS; i++)
        if (!strcmp(step, step_names[i]))
            t->end_us[i] = mono_us();
}

typedef struct cost {
    uint64_t req[SHALE_OP_COUNT], total;
    size_t parent_manifest_gets, child_manifest_gets;
    uint64_t verify_lists;   /* the Verify step's LISTs */
    size_t parent_manifests, journal_versions;
    long chain, submit_chain;
    long step_chain[STEPS];      /* per step, from the previous step's end */
} cost;

static char trace_path[600];

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct treq {
    long long t0, t1;
} treq;

static int by_start(const void *a, const void *b)
{
    const treq *x = a, *y = b;
    return x->t0 < y->t0 ? -1 : x->t0 > y->t0;
}

/* The longest chain of traced requests within [from, to], each starting
 * after the previous one ended (bench/bench_latency.c counts the same). */
static long chain_between(long long from, long long to)
{
    FILE *f = fopen(trace_path, "r");
    assert_non_null(f);
    treq *rq = NULL;
    size_t n = 0, cap = 0;
    char line[1400];
    while (fgets(line, sizeof line, f)) {
        long long t0, t1;
        if (sscanf(line, "%lld %lld", &t0, &t1) != 2 || t0 < from || t1 > to)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            rq = realloc(rq, cap * sizeof *rq);
            assert_non_null(rq);
        }
        rq[n++] = (treq){t0, t1};
    }
    fclose(f);
    qsort(rq, n, sizeof *rq, by_start);
    long *ch = calloc(n ? n : 1, sizeof *ch), best = 0;
    assert_non_null(ch);
    for (size_t i = 0; i < n; i++) {
        long c = 0;
        for (size_t j = 0; j < i; j++)
            if (rq[j].t1 <= rq[i].t0 && ch[j] > c)
                c = ch[j];
        ch[i] = c + 1;
        if (ch[i] > best)
            best = ch[i];
    }
    free(ch);
    free(rq);
    return best;
}

/* The traced GETs of manifest/ keys within [from, to]: the parent's store
 * (its URI ends in "/parent") and the children's. */
static void manifest_gets_between(long long from, long long to, cost *out)
{
    FILE *f = fopen(trace_path, "r");
    assert_non_null(f);
    char line[1400];
    while (fgets(line, sizeof line, f)) {
        long long t0, t1;
        char op[32], store[700], key[700];
        if (sscanf(line, "%lld %lld %*s %31s %699s %699s", &t0, &t1, op, store, key) != 5 ||
            t0 < from || t1 > to || strcmp(op, "get") || strncmp(key, "manifest/", 9))
            continue;
        size_t sl = strlen(store);
        if (sl >= 7 && !strcmp(store + sl - 7, "/parent"))
            out->parent_manifest_gets++;
        else
            out->child_manifest_gets++;
    }
    fclose(f);
}

static void add_latency(const char *uri)
{
    shale_fault *f = shale_fault_for_uri(uri, NULL);
    assert_non_null(f);
    shale_fault_rule r;
    memset(&r, 0, sizeof r);
    r.status = SHALE_OK;
    r.latency_ms = CHAIN_LATENCY_MS;
    TU_OK(shale_fault_add(f, &r, NULL));
}

static void split_cost(int ways, cost *out)
{
    memset(out, 0, sizeof *out);
    char root[128], parent[200], wal[200], child[8][200];
    snprintf(root, sizeof root, "mem://budget-%d-%d", ways, (int)getpid());
    snprintf(parent, sizeof parent, "fault+%s/parent", root);
    snprintf(wal, sizeof wal, "%s/wal", root);
    for (int i = 0; i < ways; i++)
        snprintf(child[i], sizeof child[i], "fault+%s/child-%d", root, i);
    shale_options o;
    shale_options_init(&o);   /* the defaults: a serving shard's sizes */
    o.await_durable = false;
    o.wal_store_uri = wal;
    shale_db *db = NULL;
    TU_OK(shale_open(parent, &o, &db));
    for (unsigned i = 0; i < 2000; i++)
        dt_put(db, i, 1);
    TU_OK(shale_flush_memtable(db));
    for (unsigned i = 0; i < 100; i++)
        dt_put(db, i * 7, 2);   /* a tail in the WAL only */
    TU_OK(shale_flush_wal(db));
    TU_OK(shale_close(db));

    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;
    so.shard = "budget";
    so.store_uri = parent;
    so.wal_store_uri = wal;
    so.db = o;
    so.db.wal_store_uri = NULL;
    splitter *sp = NULL;
    TU_OK(splitter_new(&so, &sp));
    TU_OK(splitter_start(sp));
    TU_OK(splitter_wait_idle(sp, 60000));
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "name: budget\nparent: {shard: budget}\nverify: references\nchildren:\n");
    for (int i = 0; i < ways; i++) {
        char lo[32] = "", hi[32] = "";
        if (i > 0)
            dt_key(lo, sizeof lo, 2000u * (unsigned)i / (unsigned)ways);
        if (i + 1 < ways)
            dt_key(hi, sizeof hi, 2000u * (unsigned)(i + 1) / (unsigned)ways);
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "  - {name: c%d, store: \"%s\", range: {start: \"%s\", end: \"%s\"}}\n", i,
                      child[i], lo, hi);
    }
    split_request *rq = NULL;
    TU_OK(split_request_parse("test", text, (size_t)n, &rq));
    size_t manifests_before = dt_count(parent, "manifest/");
    add_latency(parent);
    for (int i = 0; i < ways; i++)
        add_latency(child[i]);
    step_times times;
    memset(&times, 0, sizeof times);
    splitter_on_step(sp, on_step, &times);
    dt_step_stats *stp = &times.stats;
    shale_objstats before, after;
    shale_objstore_global_stats(&before);
    long long t_submit = mono_us();
    split_service *svc = splitter_service(sp);
    bool created;
    char *status = NULL;
    TU_OK(svc->ops->submit(svc, rq, &created, &status));
    long long t_accepted = mono_us();
    out->submit_chain = chain_between(t_submit, t_accepted);
    free(status);
    TU_OK(splitter_wait_idle(sp, 120000));
    long long t_idle = mono_us();
    out->chain = chain_between(t_submit, t_idle);
    for (int i = 0; i < STEPS; i++)
        out->step_chain[i] = chain_between(i ? times.end_us[i - 1] : t_accepted,
                                           times.end_us[i]);
    manifest_gets_between(t_submit, t_idle, out);
    shale_objstore_global_stats(&after);
    TU_OK(svc->ops->get(svc, "budget", &status));
    assert_non_null(strstr(status, "\"phase\": \"Complete\""));
    free(status);
    splitter_free(sp);
    split_request_free(rq);
    for (int op = 0; op < SHALE_OP_COUNT; op++) {
        out->req[op] = after.requests[op][0] + after.requests[op][1] - before.requests[op][0] -
                       before.requests[op][1];
        out->total += out->req[op];
    }
    out->verify_lists = stp->verify_end.requests[SHALE_OP_LIST][0] +
                        stp->verify_end.requests[SHALE_OP_LIST][1] -
                        stp->clone_end.requests[SHALE_OP_LIST][0] -
                        stp->clone_end.requests[SHALE_OP_LIST][1];
    out->parent_manifests = dt_count(parent, "manifest/") - manifests_before;
    out->journal_versions = dt_count(parent, "splits/budget/");
    printf("# %d children: %llu requests (%llu LIST, Verify's %llu), parent manifest +%zu, "
           "journal %zu versions, %ld sequential round trips (the submit %ld)\n", ways,
           (unsigned long long)out->total, (unsigned long long)out->req[SHALE_OP_LIST],
           (unsigned long long)out->verify_lists, out->parent_manifests,
           out->journal_versions, out->chain, out->submit_chain);
    printf("#   round trips per step:");
    for (int i = 0; i < STEPS; i++)
        printf(" %s %ld", step_names[i], out->step_chain[i]);
    printf("\n");
    printf("#   manifest GETs: parent %zu, children %zu\n", out->parent_manifest_gets,
           out->child_manifest_gets);
    for (int op = 0; op < SHALE_OP_COUNT; op++)
        printf("#   %s %llu\n", shale_objop_name((shale_objop)op),
               (unsigned long long)out->req[op]);
}

static void check(int ways, const cost *c)
{
    assert_true(c->total <= (uint64_t)(PER_CHILD * ways + BASE));
    assert_true(c->req[SHALE_OP_LIST] <= (uint64_t)(LIST_BASE + LIST_PER_CHILD * ways));
    assert_int_equal(c->verify_lists, VERIFY_LISTS);
    assert_true(c->parent_manifests <= PARENT_MANIFEST_WRITES);
    assert_int_equal(c->journal_versions, JOURNAL_VERSIONS);
    assert_int_equal(c->parent_manifest_gets, PARENT_MANIFEST_GETS);
    assert_true(c->child_manifest_gets <= (size_t)(CHILD_MANIFEST_GETS * ways));
    assert_true(c->chain > 0 && c->chain <= CHAIN_MAX);
    for (int i = 0; i < STEPS; i++)
        if (c->step_chain[i] > step_chain_max[i])
            fail_msg("%d children: %s took %ld sequential round trips (at most %ld)", ways,
                     step_names[i], c->step_chain[i], step_chain_max[i]);
    if (c->submit_chain > SUBMIT_CHAIN_MAX)
        fail_msg("the submit took %ld sequential round trips (at most %d)", c->submit_chain,
                 SUBMIT_CHAIN_MAX);
}

static void test_budget_2_and_8_children(void **state)
{
    (void)state;
    cost two, eight;
    split_cost(2, &two);
    split_cost(8, &eight);
    check(2, &two);
    check(8, &eight);
    /* The parent's share does not grow with the children: the parent's
     * manifest writes and the journal are the same for 2 and 8. */
    assert_int_equal(two.parent_manifests, eight.parent_manifests);
    assert_int_equal(two.journal_versions, eight.journal_versions);
}

int main(void)
{
    /* Before any store is opened: the fault wrapper reads it once. */
    char *dir = tu_tmpdir("split-budget");
    snprintf(trace_path, sizeof trace_path, "%s/trace.txt", dir);
    free(dir);
    setenv("SHALE_FAULT_TRACE", trace_path, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_2_and_8_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
