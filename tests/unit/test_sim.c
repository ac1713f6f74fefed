/*
 * test_sim.c -- seeded fault runs (FoundationDB-style, scaled down).
 *
 * From a seed, each run: a writer process writes unique keys with
 * await_durable and reports every acknowledgement; a split (2 to 4
 * children, random cut points) runs in another process, sometimes while the
 * writer is still writing (it gets fenced), sometimes killed at a random
 * step (SHALE_FAILPOINTS) and restarted, sometimes aborted; object-store
 * faults are injected through fault+ URIs (retryable errors every Nth call,
 * latency); the writer is sometimes SIGKILLed; GC runs with min age 0.
 * Then it checks:
 *   - Complete: every acknowledged key is in exactly one child, in that
 *     child's range, with its value; the children hold no key the writer
 *     did not write; each child and the parent pass shale_verify;
 *   - Aborted: every acknowledged key is in the parent;
 *   - always: the parent passes shale_verify after GC.
 * A failing run prints its seed and the command that replays it:
 *   SHALE_SIM_SEED=<seed> build/tests/test_sim
 * SHALE_SIM_SEEDS=N sets the number of runs (make soak SEEDS=N).
 */
#include "support/crashtest.h"
#include "support/dbtest.h"
#include "request.h"
#include "splitter.h"
#include "util/misc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_KEYS 1500

typedef struct run {
    uint64_t seed, rng;
    char *dir;
    char parent[600], wal[600];
    int nkids;
    unsigned cuts[3];
    char kid[4][600];
    unsigned char acked[MAX_KEYS];
    unsigned written;           /* keys the writer may have attempted */
    bool aborted;
    unsigned faults_every;      /* 0: no injected faults */
} run;

static uint64_t rnd(run *r, uint64_t n)
{
    return n ? tu_rand(&r->rng) % n : 0;
}

static void options(const run *r, shale_options *o)
{
    dt_small_options(o);
    o->wal_store_uri = r->wal;
}

/* The writer (a ct_body): unique keys in order from r->written, each key's
 * number on the pipe once its durable put returned. */
static void write_keys(void *arg, int ack)
{
    run *r = arg;
    shale_options o;
    options(r, &o);
    shale_db *db = NULL;
    if (shale_open(r->parent, &o, &db))
        ct_die(3, "open");
    for (unsigned i = r->written; i < MAX_KEYS; i++) {
        char k[32], v[96];
        size_t kl = dt_key(k, sizeof k, i), vl = dt_val(v, sizeof v, i, 1);
        if (shale_put(db, k, kl, v, vl))
            _exit(0);   /* fenced by the split: stop */
        ct_ack(ack, &i, sizeof i);
    }
    shale_close(db);
}

/* Reads acknowledgements until want have come (0: until the writer's end
 * closes). */
static void drain_acks(run *r, ct_child *w, unsigned want)
{
    unsigned i, got = 0;
    while ((want == 0 || got < want) && ct_recv(w, &i, sizeof i)) {
        if (i < MAX_KEYS)
            r->acked[i] = 1;
        if (i + 1 > r->written)
            r->written = i + 1;
        got++;
    }
}

/* Kills the writer (it may have finished or been fenced already: exit 0)
 * and takes what it acknowledged before it died. */
static void kill_writer(run *r, ct_child *w)
{
    ct_kill_or_exit(w, 0);
    drain_acks(r, w, 0);
    r->written += 1;     /* the killed put may have landed */
}

static char *request_text(run *r, const char *name)
{
    static char text[4096];
    int n = snprintf(text, sizeof text, "name: %s\nparent: {shard: sim}\nchildren:\n", name);
    for (int c = 0; c < r->nkids; c++) {
        char lo[32] = "", hi[32] = "";
        if (c > 0)
            dt_key(lo, sizeof lo, r->cuts[c - 1]);
        if (c < r->nkids - 1)
            dt_key(hi, sizeof hi, r->cuts[c]);
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "  - {name: c%d, store: \"%s\", range: {start: \"%s\", end: \"%s\"}}\n", c,
                      r->kid[c], lo, hi);
    }
    return text;
}

/* The split's process (a ct_body): the split named in request_text,
 * started and waited for; exits 0 (Complete), 10 (Aborted) or 9 (neither),
 * or a failpoint kills it. */
typedef struct split_job {
    run *r;
    const char *failpoint;
    bool abort_it;
} split_job;

static void split_proc(void *arg, int ack)
{
    (void)ack;
    const split_job *j = arg;
    run *r = j->r;
    if (j->failpoint)
        setenv("SHALE_FAILPOINTS", j->failpoint, 1);
    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;   /* mem:// and fault+ children (tests) */
    so.shard = "sim";
    so.store_uri = r->parent;
    so.wal_store_uri = r->wal;
    dt_small_options(&so.db);
    splitter *sp = NULL;
    if (splitter_new(&so, &sp))
        ct_die(5, "splitter_new");
    split_request *rq = NULL;
    const char *t = request_text(r, "simsplit");
    if (split_request_parse("sim", t, strlen(t), &rq))
        ct_die(6, "split_request_parse");
    split_service *svc = splitter_service(sp);
    bool created;
    char *st = NULL;
    if (svc->ops->submit(svc, rq, &created, &st))
        ct_die(7, "submit");
    free(st);
    if (j->abort_it) {
        st = NULL;
        svc->ops->abort(svc, "simsplit", &st);   /* may be refused: fine */
        free(st);
    }
    if (splitter_start(sp) || splitter_wait_idle(sp, 120000))
        ct_die(8, "splitter_start / wait_idle");
    st = NULL;
    svc->ops->get(svc, "simsplit", &st);
    int code = st && (strstr(st, "\"phase\": \"Complete\"") ||
                      strstr(st, "\"phase\": \"Aborted\""))
                   ? (strstr(st, "Aborted") ? 10 : 0)
                   : 9;
    if (code == 9)   /* say why in the test's log */
        fprintf(stderr, "seed's split ended neither Complete nor Aborted: %s\n",
                st ? st : "(no status)");
    _exit(code);
}

/* The split in its own process; failpoint may kill it; returns 0 when the
 * split reached a terminal phase (Complete or Aborted). */
static int run_split(run *r, const char *failpoint, bool abort_it)
{
    split_job j = {r, failpoint, abort_it};
    ct_child c;
    ct_start(&c, split_proc, &j);
    ct_close(&c);
    int code = ct_wait(&c);
    if (code < 0)
        return -1;            /* killed at the failpoint */
    if (code == 10)
        r->aborted = true;
    return code == 10 ? 0 : code;
}

static void check_run(run *r)
{
    shale_options o;
    dt_small_options(&o);
    shale_options pv;
    options(r, &pv);
    TU_OK(shale_verify(r->parent, &pv, NULL));   /* the parent passes verify too */
    if (r->aborted) {
        shale_options po;
        options(r, &po);
        shale_reader *rd = NULL;
        TU_OK(shale_reader_open(r->parent, &po, NULL, &rd));
        for (unsigned i = 0; i < r->written; i++)
            if (r->acked[i])
                dt_expect_reader(rd, i, 1);
        shale_reader_close(rd);
        return;
    }
    unsigned char *seen = calloc(MAX_KEYS, 1);
    for (int c = 0; c < r->nkids; c++) {
        shale_reader *rd = NULL;
        TU_OK(shale_reader_open(r->kid[c], &o, NULL, &rd));
        unsigned lo = c ? r->cuts[c - 1] : 0, hi = c < r->nkids - 1 ? r->cuts[c] : MAX_KEYS;
        shale_iter *it = NULL;
        TU_OK(shale_reader_scan(rd, NULL, 0, NULL, 0, &it));
        for (; shale_iter_valid(it); shale_iter_next(it)) {
            size_t kl;
            const char *k = shale_iter_key(it, &kl);
            char kb[32];   /* keys are not NUL-terminated: copy before parsing */
            snprintf(kb, sizeof kb, "%.*s", (int)(kl < 31 ? kl : 31), k);
            unsigned i = (unsigned)strtoul(kb + 1, NULL, 10);
            if (i < lo || i >= hi || i >= MAX_KEYS)
                fail_msg("seed %llu: child c%d holds key %u outside [%u, %u)",
                         (unsigned long long)r->seed, c, i, lo, hi);
            if (seen[i]++)
                fail_msg("seed %llu: key %u is in two children", (unsigned long long)r->seed, i);
            if (i >= r->written + 1)
                fail_msg("seed %llu: key %u was never written", (unsigned long long)r->seed, i);
        }
        TU_OK(shale_iter_status(it));
        shale_iter_free(it);
        for (unsigned i = lo; i < hi && i < r->written; i++)
            if (r->acked[i])
                dt_expect_reader(rd, i, 1);
        shale_reader_close(rd);
        TU_OK(shale_verify(r->kid[c], &o, NULL));
    }
    for (unsigned i = 0; i < r->written; i++)
        if (r->acked[i] && !seen[i])
            fail_msg("seed %llu: acknowledged key %u is in no child", (unsigned long long)r->seed,
                     i);
    free(seen);
}

static const char *points[] = {
    NULL, "Fence.before", "Fence.after", "FullFlush.before", "FullFlush.after",
    "WipeLocalWAL.mid", "WipeLocalWAL.after", "Clone.before", "Clone.mid", "Clone.after",
    "Verify.before", "Complete.before",
};

static void one_run(uint64_t seed, uint64_t *faults)
{
    run *r = calloc(1, sizeof *r);
    r->seed = seed;
    r->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    r->dir = tu_tmpdir("sim");
    r->faults_every = rnd(r, 3) == 0 ? 0 : 5 + (unsigned)rnd(r, 20);
    const char *pre = r->faults_every ? "fault+" : "";
    snprintf(r->parent, sizeof r->parent, "%sfile://%s/parent", pre, r->dir);
    snprintf(r->wal, sizeof r->wal, "%sfile://%s/wal", pre, r->dir);
    r->nkids = 2 + (int)rnd(r, 3);
    unsigned prev = 0;
    for (int c = 0; c < r->nkids - 1; c++) {
        prev += 1 + (unsigned)rnd(r, MAX_KEYS / r->nkids);
        r->cuts[c] = prev;
    }
    for (int c = 0; c < r->nkids; c++)
        snprintf(r->kid[c], sizeof r->kid[c], "file://%s/c%d", r->dir, c);
    char spec[128];
    snprintf(spec, sizeof spec, "any::every=%u:retryable;write::every=%u:latency=1",
             r->faults_every ? r->faults_every : 1000000, r->faults_every ? r->faults_every * 3 : 1000000);
    setenv("SHALE_FAULTS", spec, 1);   /* read by each process's first fault+ open */
    if (r->faults_every)
        (*faults)++;
    /* Phase 1: writes, maybe killed, maybe restarted. */
    ct_child w;
    ct_start(&w, write_keys, r);
    drain_acks(r, &w, 20 + (unsigned)rnd(r, 200));
    if (rnd(r, 2)) {
        kill_writer(r, &w);
        ct_start(&w, write_keys, r);
        drain_acks(r, &w, 10 + (unsigned)rnd(r, 100));
    }
    /* Phase 2: the split, with the writer still running in half the runs. */
    bool concurrent = rnd(r, 2);
    if (!concurrent)
        kill_writer(r, &w);
    const char *fp = points[rnd(r, sizeof points / sizeof *points)];
    bool abort_it = rnd(r, 6) == 0;
    int rc = run_split(r, fp, abort_it);
    if (concurrent) {
        /* The writer is fenced by now: it stops on its own. */
        drain_acks(r, &w, 0);
        ct_expect_exit(&w, 0);
        r->written += 1;
    }
    if (r->written > MAX_KEYS)
        r->written = MAX_KEYS;
    if (rc < 0)
        rc = run_split(r, NULL, false);   /* restart after the kill */
    if (rc != 0)
        fail_msg("seed %llu: the split did not finish (code %d); replay: SHALE_SIM_SEED=%llu "
                 "build/tests/test_sim", (unsigned long long)seed, rc, (unsigned long long)seed);
    unsetenv("SHALE_FAULTS");
    /* GC on the parent must not take what the children read. */
    shale_options po;
    options(r, &po);
    shale_gc_options g;
    shale_gc_options_init(&g);
    g.min_age_ms = 0;
    TU_OK(shale_gc(r->parent, &po, &g, NULL));
    check_run(r);
    tu_rmtree(r->dir);
    free(r->dir);
    free(r);
}

static void test_seeded_fault_runs(void **state)
{
    (void)state;
    const char *one = getenv("SHALE_SIM_SEED"), *many = getenv("SHALE_SIM_SEEDS");
    const char *from = getenv("SHALE_SIM_FIRST");
    uint64_t first = one ? strtoull(one, NULL, 10) : from ? strtoull(from, NULL, 10) : 1;
    uint64_t n = one ? 1 : many ? strtoull(many, NULL, 10) : tu_quick() ? 40 : 200;
    uint64_t faults = 0;
    for (uint64_t s = first; s < first + n; s++) {
        fprintf(stderr, "sim seed %llu\n", (unsigned long long)s);
        one_run(s, &faults);
    }
    fprintf(stderr, "sim: %llu runs passed, %llu with injected store faults\n",
            (unsigned long long)n, (unsigned long long)faults);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeded_fault_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
