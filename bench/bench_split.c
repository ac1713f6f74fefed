/*
 * bench_split.c -- what a split costs, against copying the parent.
 *
 * For each parent size: build a parent the way a serving shard looks (most
 * data in sorted runs after a full compaction, a tail of recent overwrites
 * in the memtable and the WAL, the WAL in a store of its own), keep its
 * writer open, and split it through the agent's own splitter (the code
 * shale-agent runs: Fence, FullFlush, WipeLocalWAL, Clone, Verify), 2-way
 * and 8-way.  Measured: total time from submit to done, each step, the
 * time the shard has no writer (from the start of Fence to done) and that
 * time beyond the final memtable flush, and object-store requests by type.
 * Baselines on file://: the naive copy (every key read from the parent and
 * written into two new databases, flushed) and `cp -r` of the parent's
 * stores.  Each split gets a parent of its own (a copied store would not
 * do: its manifest names the WAL store it was built with).  On s3:// (the
 * Ceph RGW scripts/bench.sh starts on 127.0.0.1, a real S3 that checks
 * signatures and honours conditional create) only the split runs.
 */
#include "bench.h"
#include "shale.h"
#include "request.h"
#include "splitter.h"
#include "support/s3test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WAYS 8
static const char *const step_names[] = {"Accept", "Fence", "FullFlush", "WipeLocalWAL",
                                         "Clone", "Verify", "Complete"};
#define NSTEPS (int)(sizeof step_names / sizeof step_names[0])

typedef struct step_times {
    double s[NSTEPS];
} step_times;

static void on_step(void *ctx, const char *step, double secs)
{
    step_times *t = ctx;
    for (int i = 0; i < NSTEPS; i++)
        if (!strcmp(step, step_names[i]))
            t->s[i] += secs;
}

typedef struct stores {
    char parent[600], wal[600], child[MAX_WAYS][600];
} stores;

static char g_bucket[64] = "test";

static void stores_for(const char *backend, int mb, const char *tag, stores *st)
{
    char root[520];
    if (!strcmp(backend, "file"))
        snprintf(root, sizeof root, "file://%s/split-%d-%s", dir, mb, tag);
    else
        snprintf(root, sizeof root, "s3://%s/bench-%d-%s-%d", g_bucket, mb, tag, (int)getpid());
    snprintf(st->parent, sizeof st->parent, "%s/parent", root);
    snprintf(st->wal, sizeof st->wal, "%s/wal", root);
    for (int i = 0; i < MAX_WAYS; i++)
        snprintf(st->child[i], sizeof st->child[i], "%s/child-%d", root, i);
}

static void base_options(const char *backend, shale_options *o)
{
    shale_options_init(o);
    o->await_durable = false;
    (void)backend;  /* RGW honours If-None-Match: the default, safe path */
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Returns the parent's writer, open, with a tail of TAIL_WRITES overwrites
 * in the memtable and (flushed) in the WAL.  The tail is the same for every
 * size: what a shard has not flushed is bounded by its memtable, not by
 * its data, and the figure of interest is how the split grows with data. */
#define TAIL_WRITES 10000u
static shale_db *build_parent(const char *backend, const stores *st, uint64_t keys)
{
    shale_options o;
    base_options(backend, &o);
    o.wal_store_uri = st->wal;
    shale_db *db = NULL;
    if (shale_open(st->parent, &o, &db))
        die("split: opening the parent", shale_errmsg());
    bench_load_parent(db, keys, vsize, "split: loading the parent");
    char k[17];
    /* A serving shard's GC keeps its WAL to what it wrote lately: the WAL
     * of the bulk load, in L0 and compacted, goes as it would. */
    shale_gc_options g;
    shale_gc_options_init(&g);
    g.min_age_ms = 0;
    if (shale_gc(st->parent, &o, &g, NULL))
        die("split: parent GC", shale_errmsg());
    uint64_t s = 99;
    for (uint64_t i = 0; i < TAIL_WRITES; i++) {
        uint64_t x = rnd(&s) % keys;
        key_of(x, k);
        if (shale_put(db, k, 16, value_of(x + 1), vsize))
            die("split: parent tail", shale_errmsg());
    }
    if (shale_flush_wal(db))
        die("split: parent WAL flush", shale_errmsg());
    return db;
}

/* Naive copy: read every key of the parent and write it into one of two
 * new databases, flushed and closed. */
static double naive_copy(int mb, const stores *st, uint64_t keys)
{
    char a[620], b[620], path[600];
    snprintf(path, sizeof path, "%s/split-%d-naive", dir, mb);
    snprintf(a, sizeof a, "file://%s/a", path);
    snprintf(b, sizeof b, "file://%s/b", path);
    double t = now_s();
    shale_options o;
    base_options("file", &o);
    shale_options ro = o;
    ro.wal_store_uri = st->wal;
    shale_reader *r = NULL;
    shale_db *da = NULL, *dbb = NULL;
    if (shale_reader_open(st->parent, &ro, NULL, &r) || shale_open(a, &o, &da) ||
        shale_open(b, &o, &dbb))
        die("naive copy: open", shale_errmsg());
    shale_iter *it = NULL;
    if (shale_reader_scan(r, NULL, 0, NULL, 0, &it))
        die("naive copy: scan", shale_errmsg());
    uint64_t n = 0;
    for (; shale_iter_valid(it); shale_iter_next(it), n++) {
        size_t kl, vl;
        const void *kk = shale_iter_key(it, &kl), *vv = shale_iter_value(it, &vl);
        if (shale_put(n < keys / 2 ? da : dbb, kk, kl, vv, vl))
            die("naive copy: put", shale_errmsg());
    }
    if (shale_iter_status(it) || n != keys)
        die("naive copy", "the parent did not yield every key");
    shale_iter_free(it);
    if (shale_flush_memtable(da) || shale_flush_memtable(dbb) || shale_close(da) ||
        shale_close(dbb))
        die("naive copy: flush", shale_errmsg());
    shale_reader_close(r);
    double s = now_s() - t;
    rm_rf(path);
    return s;
}

/* `cp -r` of the parent's two stores (store and WAL), synced. */
static double plain_copy(int mb)
{
    char cmd[2000], to[700];
    snprintf(to, sizeof to, "%s/split-%d-cp", dir, mb);
    snprintf(cmd, sizeof cmd, "cp -r '%s/split-%d-a' '%s' && sync", dir, mb, to);
    double t = now_s();
    if (system(cmd))
        die("cp -r", cmd);
    double s = now_s() - t;
    rm_rf(to);
    return s;
}

typedef struct split_result {
    double total_s, fenced_s;
    step_times steps;
    shale_objstats delta;
    splitter_stats agent;
    uint64_t child_keys;
} split_result;

/* Splits the parent ways-way through the agent's splitter and checks that
 * the children hold every key exactly once (outside the timing). */
static void split_once(const char *backend, const stores *st, int ways, uint64_t keys,
                       const char *verify, split_result *res)
{
    memset(res, 0, sizeof *res);
    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;   /* mem:// and fault+ children (tests) */
    so.shard = "bench";
    so.store_uri = st->parent;
    so.wal_store_uri = st->wal;
    base_options(backend, &so.db);
    splitter *sp = NULL;
    if (splitter_new(&so, &sp) || splitter_start(sp))
        die("splitter", shale_errmsg());
    splitter_on_step(sp, on_step, &res->steps);
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "name: bench-split\nparent: {shard: bench}\nverify: %s\nchildren:\n", verify);
    for (int i = 0; i < ways; i++) {
        char lo[17] = "", hi[17] = "";
        if (i > 0)
            key_of(keys * (uint64_t)i / (uint64_t)ways, lo);
        if (i + 1 < ways)
            key_of(keys * (uint64_t)(i + 1) / (uint64_t)ways, hi);
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "  - {name: c%d, store: \"%s\", range: {start: \"%s\", end: \"%s\"}}\n", i,
                      st->child[i], lo, hi);
    }
    shale_objstats before, after;
    res->total_s = bench_split_run(sp, "bench-split", text, (size_t)n, &before, &after);
    splitter_get_stats(sp, &res->agent);
    splitter_free(sp);
    for (int op = 0; op < SHALE_OP_COUNT; op++)
        res->delta.requests[op][0] = after.requests[op][0] - before.requests[op][0];
    res->delta.bytes_read = after.bytes_read - before.bytes_read;
    res->delta.bytes_written = after.bytes_written - before.bytes_written;
    /* The shard has no writer from the start of Fence to the end. */
    res->fenced_s = res->total_s - res->steps.s[0];
    shale_options o;
    base_options(backend, &o);
    for (int i = 0; i < ways; i++) {
        shale_reader *r = NULL;
        uint64_t c = 0;
        if (shale_reader_open(st->child[i], &o, NULL, &r) ||
            shale_reader_count(r, NULL, 0, NULL, 0, &c))
            die("reading a child", shale_errmsg());
        shale_reader_close(r);
        res->child_keys += c;
    }
    if (res->child_keys != keys)
        die("split", "the children do not hold exactly the parent's keys");
}

void split_bench_header(void)
{
    printf("\nsplit: time from submit to done through the agent's splitter; 'ready' is\n"
           "to the end of Clone (the children exist, Verify not yet run); 'no writer'\n"
           "from the start of Fence to done, 'beyond flush' the same minus FullFlush\n");
    printf("%-5s %7s %4s %-10s %9s %8s %8s %9s %9s %10s %8s %8s %7s %6s\n", "store", "parent",
           "ways", "verify", "keys", "split s", "ready s", "no writer", "beyond fl", "naive cp s",
           "cp -r s", "vs naive", "objs wr", "copied");
}

static void report(const char *backend, int mb, int ways, const char *verify, uint64_t keys,
                   const split_result *r, double naive_s, double cp_s, json_t *out)
{
    const uint64_t *q = &r->delta.requests[0][0];
    uint64_t written = q[SHALE_OP_PUT * 2] + q[SHALE_OP_PUT_IF_ABSENT * 2];
    double beyond = r->fenced_s - r->steps.s[2];
    double ready = r->total_s - r->steps.s[5] - r->steps.s[6];   /* minus Verify, Complete */
    printf("%-5s %4d MB %4d %-10s %9llu %8.3f %8.3f %9.3f %9.3f", backend, mb, ways, verify,
           (unsigned long long)keys, r->total_s, ready, r->fenced_s, beyond);
    if (naive_s > 0)
        printf(" %10.3f %8.3f %7.1fx", naive_s, cp_s, naive_s / r->total_s);
    else
        printf(" %10s %8s %8s", "-", "-", "-");
    printf(" %7llu %6llu\n", (unsigned long long)written,
           (unsigned long long)r->agent.objects_copied);
    printf("      steps:");
    for (int i = 0; i < NSTEPS; i++)
        printf(" %s %.3f", step_names[i], r->steps.s[i]);
    printf("\n      requests:");
    json_t *req = json_object(), *steps = json_object();
    for (int op = 0; op < SHALE_OP_COUNT; op++) {
        uint64_t c = r->delta.requests[op][0];
        printf(" %s %llu", shale_objop_name((shale_objop)op), (unsigned long long)c);
        json_object_set_new(req, shale_objop_name((shale_objop)op), json_integer((json_int_t)c));
    }
    printf("\n");
    for (int i = 0; i < NSTEPS; i++)
        json_object_set_new(steps, step_names[i], json_real(r->steps.s[i]));
    json_t *j = json_pack("{s:s, s:i, s:i, s:I, s:f, s:f, s:f, s:f, s:o, s:o, s:I, s:I, s:I, "
                          "s:I}",
                          "backend", backend, "parent_mb", mb, "ways", ways, "keys",
                          (json_int_t)keys, "split_s", r->total_s, "ready_s", ready,
                          "no_writer_s", r->fenced_s,
                          "no_writer_beyond_flush_s", beyond, "steps_s", steps, "requests",
                          req, "bytes_read", (json_int_t)r->delta.bytes_read, "bytes_written",
                          (json_int_t)r->delta.bytes_written, "objects_copied",
                          (json_int_t)r->agent.objects_copied, "bytes_copied",
                          (json_int_t)r->agent.bytes_copied);
    json_object_set_new(j, "verify", json_string(verify));
    if (naive_s > 0) {
        json_object_set_new(j, "naive_copy_s", json_real(naive_s));
        json_object_set_new(j, "cp_s", json_real(cp_s));
    }
    json_array_append_new(out, j);
}

void split_bench(const char *backend, int mb, json_t *out)
{
    uint64_t keys = (uint64_t)mb * (1u << 20) / (vsize + 16);
    bool file = !strcmp(backend, "file");
    s3test_server srv;
    if (!file) {
        if (s3test_rgw(&srv))
            die("finding the S3 server (scripts/bench.sh starts Ceph RGW)", shale_errmsg());
        s3test_env(&srv);
        snprintf(g_bucket, sizeof g_bucket, "%s", srv.bucket);
    }
    static const int ways[2] = {2, 8};
    static const char *const modes[2] = {"references", "full"};
    stores st;
    double naive_s = 0, cp_s = 0;
    for (int w = 0; w < 2; w++) {
        const char *tag = w == 0 ? "a" : "b";
        char root[700], snap[720], cmd[1600];
        snprintf(root, sizeof root, "%s/split-%d-%s", dir, mb, tag);
        snprintf(snap, sizeof snap, "%s.snap", root);
        for (int m = 0; m < 2; m++) {
            /* Each split needs the parent as built.  On file:// the first
             * build is kept (stores and WAL, the writer's tail flushed to
             * the WAL) and put back at the same paths for the second mode
             * (untimed): the split's own writer replays the WAL either way.
             * On s3:// the (small) parent is built again. */
            static const char *const s3tags[2][2] = {{"a", "c"}, {"b", "d"}};
            stores_for(backend, mb, file ? tag : s3tags[w][m], &st);
            shale_db *db = NULL;
            if (m == 0 || !file) {
                db = build_parent(backend, &st, keys);
                if (file && w == 0) {
                    naive_s = naive_copy(mb, &st, keys);
                    cp_s = plain_copy(mb);
                }
                if (file) {
                    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", root, snap);
                    if (system(cmd))
                        die("keeping the parent", cmd);
                }
            } else {
                rm_rf(root);
                snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", snap, root);
                if (system(cmd))
                    die("restoring the parent", cmd);
            }
            split_result r;
            split_once(backend, &st, ways[w], keys, modes[m], &r);
            shale_close(db);   /* fenced by the split: its error is expected */
            report(backend, mb, ways[w], modes[m], keys, &r, w == 0 ? naive_s : 0, cp_s, out);
        }
        if (file) {
            rm_rf(root);
            rm_rf(snap);
        }
    }
    if (!file)
        s3test_stop(&srv);
}

double bench_split_run(splitter *sp, const char *name, const char *text, size_t n,
                       shale_objstats *before, shale_objstats *after)
{
    split_request *rq = NULL;
    if (split_request_parse("bench", text, n, &rq))
        die("split request", shale_errmsg());
    split_service *svc = splitter_service(sp);
    bool created;
    char *status = NULL;
    shale_objstore_global_stats(before);
    double t = now_s();
    if (svc->ops->submit(svc, rq, &created, &status))
        die("split submit", shale_errmsg());
    free(status);
    if (splitter_wait_idle(sp, 3600 * 1000))
        die("split", "not done within an hour");
    double secs = now_s() - t;
    shale_objstore_global_stats(after);
    status = NULL;
    if (svc->ops->get(svc, name, &status) || !strstr(status, "\"phase\": \"Complete\""))
        die("the split did not complete", status ? status : shale_errmsg());
    free(status);
    split_request_free(rq);
    return secs;
}
