/*
 * bench_latency.c -- a split's critical path in round trips.
 *
 * On S3 a request costs 20-60 ms, so what a split costs there is the
 * number of requests it makes one after the other, not its time on
 * file://.  Here the parent's store and every child's are "fault+mem://"
 * stores whose every request first sleeps the injected latency (the fault
 * wrapper's latency rule); the parent's local WAL store is left plain (it
 * is the shard's local disk).  A split's time divided by the latency is
 * the number of sequential round trips it took: the figure issue 16 holds
 * to at most 20 (fenced window: 16) for 2, 8 and 32 children.  At 0 ms
 * the same split shows what the engine itself costs.  The same splits run
 * on the Ceph RGW scripts/bench.sh starts (real HTTP, no injected
 * latency), where the request counts are those of a real S3.
 *
 * Per step: time, round-trip equivalents and requests by type (taken
 * from the process's request counters when the splitter reports the step
 * done, so a step's count includes the journal write that started it).
 */
#include "bench.h"
#include "shale.h"
#include "request.h"
#include "splitter.h"
#include "support/s3test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAT_MAX_WAYS 32
static const char *const lsteps[] = {"Accept", "Fence", "FullFlush", "WipeLocalWAL",
                                     "Clone", "Verify", "Complete"};
#define LNSTEPS (int)(sizeof lsteps / sizeof lsteps[0])

typedef struct lat_trace {
    double secs[LNSTEPS], end[LNSTEPS];
    double completed;        /* when listeners first heard phase Complete (journalled) */
    uint64_t req[LNSTEPS][SHALE_OP_COUNT];
    shale_objstats last;
} lat_trace;

/* With SHALE_FAULT_TRACE set (the fault wrapper's request trace), the
 * split's start and every step's end go into the same file, on the same
 * clock, so the trace can be cut by step. */
static void trace_mark(const char *what)
{
    const char *p = getenv("SHALE_FAULT_TRACE");
    FILE *f = p && *p ? fopen(p, "a") : NULL;
    if (!f)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long us = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    fprintf(f, "%lld %lld 0 MARK - %s\n", us, us, what);
    fclose(f);
}

/* The longest chain of requests each of which started after the one
 * before it ended, from the trace between the last "submit" mark and the
 * end: the split's sequential round trips counted, not timed, so a loaded
 * machine (a stalled thread stretches the time, not the chain) reads the
 * same.  *steps[i] gets the chain up to step i's end.  -1 when there is no
 * trace. */
typedef struct treq {
    long long t0, t1;
} treq;

static int treq_by_start(const void *a, const void *b)
{
    const treq *x = a, *y = b;
    return x->t0 < y->t0 ? -1 : x->t0 > y->t0;
}

static long trace_chain(long steps[LNSTEPS], long *to_complete)
{
    *to_complete = -1;
    long long done_t = -1;
    for (int i = 0; i < LNSTEPS; i++)
        steps[i] = -1;
    const char *p = getenv("SHALE_FAULT_TRACE");
    FILE *f = p && *p ? fopen(p, "r") : NULL;
    if (!f)
        return -1;
    treq *rq = NULL;
    size_t n = 0, cap = 0;
    long long mark_t[LNSTEPS];
    for (int i = 0; i < LNSTEPS; i++)
        mark_t[i] = -1;
    char line[1400];
    bool ended = false;
    while (fgets(line, sizeof line, f)) {
        long long t0, t1;
        char op[32], what[1100];
        unsigned long tid;
        char store[600];
        if (sscanf(line, "%lld %lld %lu %31s %599s %1099[^\n]", &t0, &t1, &tid, op, store,
                   what) != 6)
            continue;
        if (ended && !(!strcmp(op, "MARK") && !strncmp(what, "submit", 6)))
            continue;
        if (!strcmp(op, "MARK")) {
            if (!strcmp(what, "end"))
                ended = true;
            if (!strncmp(what, "submit", 6)) {
                ended = false;
                done_t = -1;
                n = 0;
                for (int i = 0; i < LNSTEPS; i++)
                    mark_t[i] = -1;
            }
            for (int i = 0; i < LNSTEPS; i++)
                if (!strcmp(what, lsteps[i]))
                    mark_t[i] = t0;
            if (!strcmp(what, "Completed"))
                done_t = t0;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            treq *g = realloc(rq, cap * sizeof *g);
            if (!g)
                break;
            rq = g;
        }
        rq[n++] = (treq){t0, t1};
    }
    fclose(f);
    if (!n) {
        free(rq);
        return -1;
    }
    qsort(rq, n, sizeof *rq, treq_by_start);
    long *ch = calloc(n ? n : 1, sizeof *ch), best = 0;
    for (size_t i = 0; ch && i < n; i++) {
        long c = 0;
        for (size_t j = 0; j < i; j++)
            if (rq[j].t1 <= rq[i].t0 && ch[j] > c)
                c = ch[j];
        ch[i] = c + 1;
        if (ch[i] > best)
            best = ch[i];
        for (int s = 0; s < LNSTEPS; s++)
            if (mark_t[s] >= 0 && rq[i].t1 <= mark_t[s] && ch[i] > steps[s])
                steps[s] = ch[i];
        if (done_t >= 0 && rq[i].t1 <= done_t && ch[i] > *to_complete)
            *to_complete = ch[i];
    }
    free(ch);
    free(rq);
    return best;
}

static void lat_on_step(void *ctx, const char *step, double secs)
{
    lat_trace *t = ctx;
    trace_mark(step);
    shale_objstats now;
    shale_objstore_global_stats(&now);
    for (int i = 0; i < LNSTEPS; i++)
        if (!strcmp(step, lsteps[i])) {
            t->secs[i] += secs;
            t->end[i] = now_s();
            for (int op = 0; op < SHALE_OP_COUNT; op++)
                t->req[i][op] += now.requests[op][0] - t->last.requests[op][0];
        }
    t->last = now;
}

/* The split is Complete when its journal says so: listeners hear it right
 * after that write (the lease's release and its journal record follow). */
static void lat_on_status(void *ctx, const char *name, const char *status_json)
{
    (void)name;
    lat_trace *t = ctx;
    if (!t->completed && strstr(status_json, "\"phase\": \"Complete\"")) {
        t->completed = now_s();
        trace_mark("Completed");
    }
}

static void add_latency(const char *uri, unsigned ms)
{
    if (!ms)
        return;
    shale_fault *f = shale_fault_for_uri(uri, NULL);
    shale_fault_rule r;
    memset(&r, 0, sizeof r);
    r.status = SHALE_OK;
    r.latency_ms = ms;
    if (!f || shale_fault_add(f, &r, NULL))
        die("adding latency", shale_errmsg());
}

static void build(const char *parent, const char *wal, uint64_t keys)
{
    shale_options o;
    shale_options_init(&o);
    o.await_durable = false;
    o.wal_store_uri = wal;
    shale_db *db = NULL;
    if (shale_open(parent, &o, &db))
        die("latency split: opening the parent", shale_errmsg());
    bench_load_parent(db, keys, vsize, "latency split: loading the parent");
    char k[17];
    /* a tail in the memtable and the WAL, as a serving shard has */
    for (uint64_t i = 0; i < keys / 20; i++) {
        key_of(i * 7 % keys, k);
        if (shale_put(db, k, 16, value_of(i + 1), vsize))
            die("latency split: tail", shale_errmsg());
    }
    if (shale_flush_wal(db) || shale_close(db))
        die("latency split: closing the parent", shale_errmsg());
}

/* One split of a parent of `keys` keys into `ways` children, every store
 * of which but the WAL store waits ms per request. */
static void one(const char *backend, const char *root, unsigned ms, int ways, uint64_t keys,
                const char *verify, json_t *out)
{
    char parent[600], wal[600], child[LAT_MAX_WAYS][600];
    bool mem = !strcmp(backend, "mem");
    snprintf(parent, sizeof parent, "%s%s/parent", mem ? "fault+" : "", root);
    snprintf(wal, sizeof wal, "%s/wal", root);
    for (int i = 0; i < ways; i++)
        snprintf(child[i], sizeof child[i], "%s%s/child-%d", mem ? "fault+" : "", root, i);
    build(parent, wal, keys);
    add_latency(parent, ms);
    for (int i = 0; i < ways; i++)
        add_latency(child[i], ms);

    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;
    so.shard = "lat";
    so.store_uri = parent;
    so.wal_store_uri = wal;
    shale_options_init(&so.db);
    so.db.await_durable = false;
    splitter *sp = NULL;
    if (splitter_new(&so, &sp) || splitter_start(sp))
        die("latency split: splitter", shale_errmsg());
    if (splitter_wait_idle(sp, 600 * 1000))
        die("latency split", "the splitter did not settle");
    lat_trace tr;
    memset(&tr, 0, sizeof tr);
    splitter_on_step(sp, lat_on_step, &tr);
    if (splitter_add_listener(sp, lat_on_status, &tr))
        die("latency split: listener", shale_errmsg());
    size_t cap = 256 + (size_t)ways * 900;
    char *text = malloc(cap);
    if (!text)
        die("latency split", "out of memory");
    int n = snprintf(text, cap, "name: lat\nparent: {shard: lat}\nverify: %s\nchildren:\n",
                     verify);
    for (int i = 0; i < ways; i++) {
        char lo[17] = "", hi[17] = "";
        if (i > 0)
            key_of(keys * (uint64_t)i / (uint64_t)ways, lo);
        if (i + 1 < ways)
            key_of(keys * (uint64_t)(i + 1) / (uint64_t)ways, hi);
        n += snprintf(text + n, cap - (size_t)n,
                      "  - {name: c%d, store: \"%s\", range: {start: \"%s\", end: \"%s\"}}\n", i,
                      child[i], lo, hi);
    }
    split_request *rq = NULL;
    if (split_request_parse("lat", text, (size_t)n, &rq))
        die("latency split: request", shale_errmsg());
    free(text);
    split_service *svc = splitter_service(sp);
    bool created;
    char *status = NULL;
    shale_objstats before, after;
    shale_objstore_global_stats(&before);
    tr.last = before;
    char mark[64];
    snprintf(mark, sizeof mark, "submit %u ms %d ways", ms, ways);
    trace_mark(mark);
    double t = now_s();
    if (svc->ops->submit(svc, rq, &created, &status))
        die("latency split: submit", shale_errmsg());
    trace_mark("Accept");   /* journal version 1 written: the worker fences next */
    free(status);
    if (splitter_wait_idle(sp, 3600 * 1000))
        die("latency split", "not done within an hour");
    double total = now_s() - t;
    trace_mark("end");
    shale_objstore_global_stats(&after);
    if (svc->ops->get(svc, "lat", &status) || !strstr(status, "\"phase\": \"Complete\""))
        die("latency split: the split did not complete", status);
    free(status);
    splitter_free(sp);
    split_request_free(rq);
    /* The shard has no writer from the start of Fence (its end minus its
     * time) to the end. */
    double fenced = tr.end[1] > 0 ? t + total - (tr.end[1] - tr.secs[1]) : total;
    uint64_t req[SHALE_OP_COUNT], all = 0;
    for (int op = 0; op < SHALE_OP_COUNT; op++)
        all += req[op] = after.requests[op][0] - before.requests[op][0];
    double lat = ms / 1000.0;
    long chain_at[LNSTEPS];
    long to_complete = -1;
    /* Without latency every request ends before the next starts: the
     * chain would count them all, so it is left out (-1) at 0 ms. */
    long chain = trace_chain(chain_at, &to_complete);
    if (!ms)
        chain = to_complete = -1;
    double to_done = tr.completed > 0 ? tr.completed - t : total;
    /* fenced in chain terms: the whole chain less what ended before Fence
     * began (Accept's chain: the submit) */
    long fchain = chain >= 0 && chain_at[0] >= 0 ? chain - chain_at[0] : -1;
    printf("%-4s %4u %4d %-10s %7.3f %7.3f %7.1f %7.1f %5ld %5ld %6llu", backend, ms, ways,
           verify, total, fenced, lat > 0 ? total / lat : 0.0, lat > 0 ? fenced / lat : 0.0,
           chain, fchain, (unsigned long long)all);
    for (int op = 0; op < SHALE_OP_COUNT; op++)
        printf(" %5llu", (unsigned long long)req[op]);
    printf(" %9llu\n", (unsigned long long)(after.bytes_read - before.bytes_read));
    json_t *steps = json_object(), *rq_by = json_object();
    printf("       steps (s / round trips / requests):");
    for (int i = 0; i < LNSTEPS; i++) {
        uint64_t sn = 0;
        json_t *sr = json_object();
        for (int op = 0; op < SHALE_OP_COUNT; op++) {
            sn += tr.req[i][op];
            json_object_set_new(sr, shale_objop_name((shale_objop)op),
                                json_integer((json_int_t)tr.req[i][op]));
        }
        printf(" %s %.3f/%.0f/%llu", lsteps[i], tr.secs[i], lat > 0 ? tr.secs[i] / lat : 0.0,
               (unsigned long long)sn);
        json_object_set_new(steps, lsteps[i],
                            json_pack("{s:f, s:o}", "s", tr.secs[i], "requests", sr));
    }
    printf("\n");
    for (int op = 0; op < SHALE_OP_COUNT; op++)
        json_object_set_new(rq_by, shale_objop_name((shale_objop)op),
                            json_integer((json_int_t)req[op]));
    json_array_append_new(out, json_pack("{s:s, s:i, s:i, s:s, s:I, s:f, s:f, s:f, s:f, s:f, "
                                         "s:o, s:o, s:I}",
                                         "backend", backend, "latency_ms", (int)ms, "ways", ways,
                                         "verify", verify, "keys", (json_int_t)keys, "split_s",
                                         total, "to_complete_s", to_done, "fenced_s", fenced, "round_trips",
                                         lat > 0 ? total / lat : 0.0, "fenced_round_trips",
                                         lat > 0 ? fenced / lat : 0.0, "requests", rq_by,
                                         "steps", steps, "bytes_read",
                                         (json_int_t)(after.bytes_read - before.bytes_read)));
    if (chain >= 0) {
        json_t *last = json_array_get(out, json_array_size(out) - 1);
        json_object_set_new(last, "chain", json_integer(chain));
        json_object_set_new(last, "fenced_chain", json_integer(fchain));
        json_object_set_new(last, "chain_to_complete", json_integer(to_complete));
        printf("       chain at each step's end:");
        for (int i = 0; i < LNSTEPS; i++)
            printf(" %s %ld", lsteps[i], chain_at[i]);
        printf("; to Complete journalled: chain %ld, %.3f s (%.1f rt)\n", to_complete,
               to_done, lat > 0 ? to_done / lat : 0.0);
    }
}

void latency_bench(uint64_t keys, bool s3, json_t *out)
{
    /* The fault wrapper's request trace, for the chain column (read after
     * each split; the file is this run's own). */
    char tpath[300] = "";
    if (!getenv("SHALE_FAULT_TRACE")) {
        snprintf(tpath, sizeof tpath, "/tmp/shale-bench-trace-%d.txt", (int)getpid());
        remove(tpath);
        setenv("SHALE_FAULT_TRACE", tpath, 1);
    }
    printf("\nsplit latency: every request of the parent's and children's stores waits the\n"
           "injected latency (fault+mem://; the local WAL store plain), 'rt' = time / latency\n"
           "(sequential round trips; goal <= 20, fenced <= 16), %llu keys\n",
           (unsigned long long)keys);
    printf("%-4s %4s %4s %-10s %7s %7s %7s %7s %5s %5s %6s", "store", "ms", "ways", "verify",
           "split s", "fenced", "rt", "rt fenc", "chain", "ch fe", "reqs");
    for (int op = 0; op < SHALE_OP_COUNT; op++)
        printf(" %5.5s", shale_objop_name((shale_objop)op));
    printf(" %9s\n", "bytes rd");
    static const unsigned lats[] = {0, 20, 50};
    static const int ways[] = {2, 8, 32};
    const char *only = getenv("BENCH_LATENCY_MS");   /* one latency, for quick looks */
    /* BENCH_LATENCY_FULL=1: only the full-Verify row (20 ms, 8 children). */
    const char *full_only = getenv("BENCH_LATENCY_FULL");
    if (full_only && *full_only == '1')
        only = "-1";
    for (size_t l = 0; l < sizeof lats / sizeof *lats; l++)
        for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
            if (only && (unsigned)strtoul(only, NULL, 10) != lats[l])
                continue;
            char root[200];
            snprintf(root, sizeof root, "mem://lat-%u-%d-%d", lats[l], ways[w], (int)getpid());
            one("mem", root, lats[l], ways[w], keys, "references", out);
        }
    char root[200];
    snprintf(root, sizeof root, "mem://lat-full-%d", (int)getpid());
    if (!only || (full_only && *full_only == '1'))
        one("mem", root, 20, 8, keys, "full", out);
    if (*tpath)
        remove(tpath);   /* this run's own; the S3 splits are not traced */
    if (!s3 || only)
        return;   /* BENCH_LATENCY_FULL=1 leaves only set: no S3 rows either */
    s3test_server srv;
    if (s3test_rgw(&srv))
        die("finding the S3 server (scripts/bench.sh starts Ceph RGW)", shale_errmsg());
    s3test_env(&srv);
    for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
        snprintf(root, sizeof root, "s3://%s/lat-%d-%d", srv.bucket, ways[w], (int)getpid());
        one("s3", root, 0, ways[w], keys, "references", out);
    }
    s3test_stop(&srv);
}
