/*
 * bench_splitbytes.c -- does a references split cost the same whatever the
 * shard's size?  (issue 16: "bytes moved by a references split independent
 * of the shard's size", a 500 MB / 50 MB ratio under 1.2 for bytes,
 * requests and time.)
 *
 * For each parent size: a parent of that many MB (bench_load_parent: one
 * sorted run of 64 MiB SSTs, the writer closed, on file:// its pages
 * dropped from the page cache), split 2 ways with verify: references
 * through the agent's splitter.  Measured from submit to Complete: bytes
 * read from the stores, requests, time; then the ratios of the largest
 * parent to the smallest.  The SSTs' filter + index bytes are shown beside
 * (what opening each SST once per reader used to read).
 */
#include "bench.h"
#include "shale.h"
#include "request.h"
#include "splitter.h"
#include "support/s3test.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The split's steps in order (agent/split_state.c), for the per-step
 * table: each step's share is the counters at its end less those at the
 * previous step's end (Accept's: less those at the submit). */
static const char *const sb_step_names[] = {"Accept", "Fence", "FullFlush", "WipeLocalWAL",
                                            "Clone", "Verify", "Complete"};
#define SB_STEPS (sizeof sb_step_names / sizeof *sb_step_names)

typedef struct sb_step {
    uint64_t bytes, requests, deletes, lists;
    double secs;
} sb_step;

typedef struct sb_result {
    uint64_t bytes, requests, keys, meta_bytes, ssts;
    uint64_t verify_bytes, verify_requests;   /* the Verify step's share */
    double secs, verify_secs;
    sb_step step[SB_STEPS];
} sb_result;

/* The process's counters at each step's end: the Verify step's share is
 * the difference between Clone's end and Verify's. */
typedef struct sb_steps {
    shale_objstats clone_end, verify_end;
    double verify_secs;
    shale_objstats end[SB_STEPS];
    double secs[SB_STEPS];
    bool seen[SB_STEPS];
} sb_steps;

static void sb_on_step(void *ctx, const char *step, double secs)
{
    sb_steps *s = ctx;
    if (!strcmp(step, "Clone"))
        shale_objstore_global_stats(&s->clone_end);
    if (!strcmp(step, "Verify")) {
        shale_objstore_global_stats(&s->verify_end);
        s->verify_secs = secs;
    }
    for (size_t i = 0; i < SB_STEPS; i++)
        if (!strcmp(step, sb_step_names[i])) {
            shale_objstore_global_stats(&s->end[i]);
            s->secs[i] = secs;
            s->seen[i] = true;
        }
}

static uint64_t sb_reqs(const shale_objstats *a, const shale_objstats *b, int op)
{
    return a->requests[op][0] + a->requests[op][1] - b->requests[op][0] - b->requests[op][1];
}

/* Each step's share, from the counters at the step ends. */
static void sb_fill_steps(const sb_steps *st, const shale_objstats *before, sb_result *r)
{
    const shale_objstats *prev = before;
    for (size_t i = 0; i < SB_STEPS; i++) {
        if (!st->seen[i])
            continue;
        sb_step *o = &r->step[i];
        o->bytes = st->end[i].bytes_read - prev->bytes_read;
        for (int op = 0; op < SHALE_OP_COUNT; op++)
            o->requests += sb_reqs(&st->end[i], prev, op);
        o->deletes = sb_reqs(&st->end[i], prev, SHALE_OP_DELETE);
        o->lists = sb_reqs(&st->end[i], prev, SHALE_OP_LIST);
        o->secs = st->secs[i];
        prev = &st->end[i];
    }
}

static double sb_ratio(double a, double b)
{
    return b > 0 ? a / b : 0.0;
}

/* The per-step table for the smallest and largest parent, and their ratios. */
static void sb_print_steps(int firstmb, const sb_result *first, int lastmb, const sb_result *last)
{
    printf("per step (bytes read / requests (DELETE, LIST) / step s): %d MB | %d MB | ratio\n",
           firstmb, lastmb);
    for (size_t i = 0; i < SB_STEPS; i++) {
        const sb_step *a = &first->step[i], *b = &last->step[i];
        printf("  %-12s %10llu %5llu (%3llu,%2llu) %7.3f | %10llu %5llu (%3llu,%2llu) %7.3f | "
               "bytes %5.2f reqs %5.2f time %5.2f\n",
               sb_step_names[i], (unsigned long long)a->bytes, (unsigned long long)a->requests,
               (unsigned long long)a->deletes, (unsigned long long)a->lists, a->secs,
               (unsigned long long)b->bytes, (unsigned long long)b->requests,
               (unsigned long long)b->deletes, (unsigned long long)b->lists, b->secs,
               sb_ratio((double)b->bytes, (double)a->bytes),
               sb_ratio((double)b->requests, (double)a->requests), sb_ratio(b->secs, a->secs));
    }
}

static int drop_pages(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (type == FTW_F) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
    return 0;
}

/* Filter + index bytes of every SST the parent's latest manifest names. */
static void meta_of(const char *uri, const shale_options *o, sb_result *r)
{
    char *text = NULL;
    if (shale_manifest_show(uri, o, 0, &text))
        die("split bytes: manifest", shale_errmsg());
    json_t *m = json_loads(text, 0, NULL);
    shale_free(text);
    shale_objstore *s = NULL;
    if (!m || shale_objstore_open(uri, &o->store, &s))
        die("split bytes: parent store", shale_errmsg());
    json_t *runs = json_object_get(m, "sorted_runs"), *run, *sst;
    size_t i, j;
    json_array_foreach(runs, i, run)
        json_array_foreach(json_object_get(run, "ssts"), j, sst) {
            char key[64];
            snprintf(key, sizeof key, "compacted/%s.sst",
                     json_string_value(json_object_get(sst, "id")));
            uint64_t size = (uint64_t)json_integer_value(json_object_get(sst, "size"));
            void *f = NULL;
            size_t got = 0;
            if (shale_objstore_get_range(s, key, size - 72, 72, &f, &got) || got != 72)
                die("split bytes: SST footer", shale_errmsg());
            const uint8_t *p = f;
            uint64_t fs = 0, is = 0;
            for (int b = 7; b >= 0; b--) {
                fs = fs << 8 | p[8 + b];
                is = is << 8 | p[24 + b];
            }
            shale_free(f);
            r->meta_bytes += fs + is;
            r->ssts++;
        }
    json_decref(m);
    shale_objstore_close(s);
}

static void split_bytes_once(const char *backend, const char *root, int mb, sb_result *r)
{
    memset(r, 0, sizeof *r);
    char parent[640], wal[640], child[2][660];
    /* With SHALE_FAULT_TRACE set, the parent's and the children's stores
     * go through the fault wrapper (no rule: each request as it is), so
     * the trace lists every request of the split, step by step. */
    const char *fw = getenv("SHALE_FAULT_TRACE") ? "fault+" : "";
    snprintf(parent, sizeof parent, "%s%s/parent", fw, root);
    snprintf(wal, sizeof wal, "%s/wal", root);
    for (int i = 0; i < 2; i++)
        snprintf(child[i], sizeof child[i], "%s%s/child-%d", fw, root, i);
    r->keys = (uint64_t)mb * (1u << 20) / (vsize + 16);
    shale_options o;
    shale_options_init(&o);
    o.await_durable = false;
    o.wal_store_uri = wal;
    shale_db *db = NULL;
    if (shale_open(parent, &o, &db))
        die("split bytes: opening the parent", shale_errmsg());
    bench_load_parent(db, r->keys, vsize, "split bytes: loading the parent");
    if (shale_close(db))
        die("split bytes: closing the parent", shale_errmsg());
    meta_of(parent, &o, r);
    if (!strcmp(backend, "file"))
        nftw(root + strlen("file://"), drop_pages, 16, FTW_PHYS);

    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;
    so.shard = "bytes";
    so.store_uri = parent;
    so.wal_store_uri = wal;
    so.db = o;
    so.db.wal_store_uri = NULL;
    splitter *sp = NULL;
    if (splitter_new(&so, &sp) || splitter_start(sp) || splitter_wait_idle(sp, 600000))
        die("split bytes: splitter", shale_errmsg());
    char text[2048], mid[17];
    key_of(r->keys / 2, mid);
    int n = snprintf(text, sizeof text,
                     "name: bytes\nparent: {shard: bytes}\nverify: references\nchildren:\n"
                     "  - {name: c0, store: \"%s\", range: {start: \"\", end: \"%s\"}}\n"
                     "  - {name: c1, store: \"%s\", range: {start: \"%s\", end: \"\"}}\n",
                     child[0], mid, child[1], mid);
    shale_objstats before, after;
    sb_steps steps;
    memset(&steps, 0, sizeof steps);
    splitter_on_step(sp, sb_on_step, &steps);
    r->secs = bench_split_run(sp, "bytes", text, (size_t)n, &before, &after);
    splitter_free(sp);
    r->bytes = after.bytes_read - before.bytes_read;
    r->verify_bytes = steps.verify_end.bytes_read - steps.clone_end.bytes_read;
    r->verify_secs = steps.verify_secs;
    sb_fill_steps(&steps, &before, r);
    for (int op = 0; op < SHALE_OP_COUNT; op++) {
        r->requests += after.requests[op][0] + after.requests[op][1] - before.requests[op][0] -
                       before.requests[op][1];
        r->verify_requests += steps.verify_end.requests[op][0] +
                              steps.verify_end.requests[op][1] -
                              steps.clone_end.requests[op][0] - steps.clone_end.requests[op][1];
    }
}

void split_bytes_bench(const char *backend, const char *mb_list, json_t *out)
{
    char bucket[64] = "";
    if (strcmp(backend, "file")) {
        s3test_server srv;
        if (s3test_rgw(&srv))
            die("split bytes: finding the S3 server", shale_errmsg());
        s3test_env(&srv);
        snprintf(bucket, sizeof bucket, "%s", srv.bucket);
    }
    printf("\nreferences split, 2 children: bytes read, requests, time from submit to "
           "Complete (%s); the Verify step's share after the '|'\n%-5s %8s %5s %12s %12s %9s "
           "%8s | %10s %8s %8s\n", backend, "store", "parent", "SSTs", "filt+idx B",
           "bytes read", "requests", "time s", "V bytes", "V reqs", "V s");
    char *list = strdup(mb_list);
    sb_result first = {0}, last = {0};
    int firstmb = 0, lastmb = 0, count = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int mb = atoi(tok);
        char root[600];
        if (!strcmp(backend, "file"))
            /* The pid too: two sessions' benches on one machine would
             * otherwise load and split into the same directory. */
            snprintf(root, sizeof root, "file://%s/splitbytes-%d-%d", dir, mb, (int)getpid());
        else
            snprintf(root, sizeof root, "s3://%s/splitbytes-%d-%d", bucket, mb, (int)getpid());
        sb_result r;
        split_bytes_once(backend, root, mb, &r);
        printf("%-5s %5d MB %5llu %12llu %12llu %9llu %8.3f | %10llu %8llu %8.3f\n", backend,
               mb, (unsigned long long)r.ssts, (unsigned long long)r.meta_bytes,
               (unsigned long long)r.bytes, (unsigned long long)r.requests, r.secs,
               (unsigned long long)r.verify_bytes, (unsigned long long)r.verify_requests,
               r.verify_secs);
        json_array_append_new(out, json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:f}", "backend",
                                             backend, "parent_mb", mb, "ssts",
                                             (json_int_t)r.ssts, "sst_filter_index_bytes",
                                             (json_int_t)r.meta_bytes, "bytes_read",
                                             (json_int_t)r.bytes, "requests",
                                             (json_int_t)r.requests, "split_s", r.secs));
        if (!count++)
            first = r, firstmb = mb;
        last = r, lastmb = mb;
        if (!strcmp(backend, "file")) {
            rm_rf(root + strlen("file://"));
        }
    }
    free(list);
    if (count > 1)
        printf("ratio %d MB / %d MB: bytes %.2f, requests %.2f, time %.2f (goal: each < 1.2)\n",
               lastmb, firstmb, (double)last.bytes / (double)first.bytes,
               (double)last.requests / (double)first.requests, last.secs / first.secs);
    if (count > 1)
        sb_print_steps(firstmb, &first, lastmb, &last);
    if (count > 1 && first.verify_requests && first.verify_bytes)
        printf("Verify step alone: bytes %.2f, requests %.2f, time %.2f\n",
               (double)last.verify_bytes / (double)first.verify_bytes,
               (double)last.verify_requests / (double)first.verify_requests,
               first.verify_secs > 0 ? last.verify_secs / first.verify_secs : 0.0);
}
