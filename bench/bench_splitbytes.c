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
 *
 * A split on file:// takes tens of ms, most of it fsyncs, which swing by
 * several ms from one to the next on a shared disk: one split per size
 * gave time ratios of 0.3 to 2.1 for the same build.  --split-bytes-repeat N
 * makes N splits of each size, every other round in the reverse order (the
 * process's first split is not always the smallest), and takes the ratios
 * of the medians; on file:// each parent is loaded once and each split
 * runs on a fresh copy of it (clone_tree), so repeats cost seconds, not a
 * load each (on S3 one split per size: see split_bytes_bench).  The step
 * shares are the bench's own clock between step ends (they add up to the
 * split's time), not the agent's whole-ms step times.
 */
#include "bench.h"
#include "shale.h"
#include "request.h"
#include "splitter.h"
#include "support/s3test.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
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
    double secs;   /* the step's share: its end less the previous step's
                      (Accept's: less the submit), so the shares add up to
                      the split's time -- the journal writes between steps
                      included, which the agent's own step time leaves out */
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
    shale_objstats end[SB_STEPS];
    double t0, at[SB_STEPS];   /* now_s() at the submit and at each step's end */
    bool seen[SB_STEPS];
} sb_steps;

static void sb_on_step(void *ctx, const char *step, double secs)
{
    (void)secs;   /* the agent's, in whole ms: the bench takes its own clock */
    sb_steps *s = ctx;
    if (!strcmp(step, "Clone"))
        shale_objstore_global_stats(&s->clone_end);
    if (!strcmp(step, "Verify"))
        shale_objstore_global_stats(&s->verify_end);
    for (size_t i = 0; i < SB_STEPS; i++)
        if (!strcmp(step, sb_step_names[i])) {
            shale_objstore_global_stats(&s->end[i]);
            s->at[i] = now_s();
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
    double prev_at = st->t0;
    for (size_t i = 0; i < SB_STEPS; i++) {
        if (!st->seen[i])
            continue;
        sb_step *o = &r->step[i];
        o->bytes = st->end[i].bytes_read - prev->bytes_read;
        for (int op = 0; op < SHALE_OP_COUNT; op++)
            o->requests += sb_reqs(&st->end[i], prev, op);
        o->deletes = sb_reqs(&st->end[i], prev, SHALE_OP_DELETE);
        o->lists = sb_reqs(&st->end[i], prev, SHALE_OP_LIST);
        o->secs = st->at[i] - prev_at;
        prev = &st->end[i];
        prev_at = st->at[i];
    }
}

static double sb_ratio(double a, double b)
{
    return b > 0 ? a / b : 0.0;
}

/* The per-step table for the smallest and largest parent, and their ratios. */
static void sb_print_steps(int firstmb, const sb_result *first, int lastmb, const sb_result *last)
{
    printf("per step (bytes read / requests (DELETE, LIST) / ms since the previous step's end): "
           "%d MB | %d MB | ratio\n",
           firstmb, lastmb);
    for (size_t i = 0; i < SB_STEPS; i++) {
        const sb_step *a = &first->step[i], *b = &last->step[i];
        printf("  %-12s %10llu %5llu (%3llu,%2llu) %7.2f | %10llu %5llu (%3llu,%2llu) %7.2f | "
               "bytes %5.2f reqs %5.2f time %5.2f\n",
               sb_step_names[i], (unsigned long long)a->bytes, (unsigned long long)a->requests,
               (unsigned long long)a->deletes, (unsigned long long)a->lists, a->secs * 1e3,
               (unsigned long long)b->bytes, (unsigned long long)b->requests,
               (unsigned long long)b->deletes, (unsigned long long)b->lists, b->secs * 1e3,
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

/* The stores' URIs under root: with SHALE_FAULT_TRACE set, the parent's
 * and the children's go through the fault wrapper (no rule: each request
 * as it is), so the trace lists every request of the split, step by step. */
typedef struct sb_uris {
    char parent[640], wal[640], child[2][660];
} sb_uris;

static void sb_uris_of(const char *root, sb_uris *u)
{
    const char *fw = getenv("SHALE_FAULT_TRACE") ? "fault+" : "";
    snprintf(u->parent, sizeof u->parent, "%s%s/parent", fw, root);
    snprintf(u->wal, sizeof u->wal, "%s/wal", root);
    for (int i = 0; i < 2; i++)
        snprintf(u->child[i], sizeof u->child[i], "%s%s/child-%d", fw, root, i);
}

static shale_options sb_opts(const sb_uris *u)
{
    shale_options o;
    shale_options_init(&o);
    o.await_durable = false;
    o.wal_store_uri = u->wal;
    return o;
}

/* A parent of mb MB under root: one sorted run of 64 MiB SSTs, the
 * writer closed (its WAL all flushed by the compaction: nothing for the
 * split's takeover to replay, at any size). */
static void sb_load(const char *root, int mb, sb_result *r)
{
    sb_uris u;
    sb_uris_of(root, &u);
    r->keys = (uint64_t)mb * (1u << 20) / (vsize + 16);
    shale_options o = sb_opts(&u);
    shale_db *db = NULL;
    if (shale_open(u.parent, &o, &db))
        die("split bytes: opening the parent", shale_errmsg());
    bench_load_parent(db, r->keys, vsize, "split bytes: loading the parent");
    if (shale_close(db))
        die("split bytes: closing the parent", shale_errmsg());
    meta_of(u.parent, &o, r);
}

/* file:// repeats: the loaded tree is kept aside (renamed: the manifest
 * records the WAL store's URI, so a split runs at the path the parent was
 * loaded at) and each split gets a fresh copy of it there.  The SSTs under
 * compacted/ are hard links: written once, never changed, and a
 * references split only reads them; every other file (manifests, the
 * journal's directory, the WAL log's segments, appended in place) is
 * copied byte for byte, zeros included: a segment's space ahead of its
 * tail is written zeros (objstore_fs_log.c), so a record's fdatasync
 * flushes data only, where a hole or an unwritten extent would make the
 * split's WAL writes (the fence, the wipe's tombstones) convert extents. */
static const char *ct_src, *ct_dst;

static int clone_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    char to[1200];
    snprintf(to, sizeof to, "%s%s", ct_dst, path + strlen(ct_src));
    if (type == FTW_D)
        return mkdir(to, 0755) && errno != EEXIST ? -1 : 0;
    if (type != FTW_F)
        return 0;
    if (strstr(path, "/compacted/"))
        return link(path, to);
    int in = open(path, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) {
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
        return -1;
    }
    static char buf[1 << 16];
    ssize_t got;
    while ((got = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)got) != got)
            break;
    close(in);
    close(out);
    return got == 0 ? 0 : -1;
}

static void clone_tree(const char *src, const char *dst)
{
    ct_src = src, ct_dst = dst;
    if (nftw(src, clone_one, 16, FTW_PHYS))
        die("split bytes: copying the loaded parent", dst);
}

/* One references split, 2 ways, of the parent under root (loaded; r's
 * keys and meta fields set by sb_load). */
static void sb_split(const char *root, sb_result *r)
{
    sb_uris u;
    sb_uris_of(root, &u);
    shale_options o = sb_opts(&u);
    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;
    so.shard = "bytes";
    so.store_uri = u.parent;
    so.wal_store_uri = u.wal;
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
                     u.child[0], mid, u.child[1], mid);
    shale_objstats before, after;
    sb_steps steps;
    memset(&steps, 0, sizeof steps);
    splitter_on_step(sp, sb_on_step, &steps);
    steps.t0 = now_s();
    r->secs = bench_split_run(sp, "bytes", text, (size_t)n, &before, &after);
    splitter_free(sp);
    r->bytes = after.bytes_read - before.bytes_read;
    r->verify_bytes = steps.verify_end.bytes_read - steps.clone_end.bytes_read;
    sb_fill_steps(&steps, &before, r);
    r->verify_secs = r->step[5].secs;   /* Verify's share (sb_step_names) */
    for (int op = 0; op < SHALE_OP_COUNT; op++) {
        r->requests += after.requests[op][0] + after.requests[op][1] - before.requests[op][0] -
                       before.requests[op][1];
        r->verify_requests += steps.verify_end.requests[op][0] +
                              steps.verify_end.requests[op][1] -
                              steps.clone_end.requests[op][0] - steps.clone_end.requests[op][1];
    }
}

/* Every object under an s3:// root, deleted (the memstore RGW holds them
 * in RAM: a repeat's parents would otherwise fill it). */
static void s3_rm(const char *root)
{
    shale_options o;
    shale_options_init(&o);
    shale_objstore *s = NULL;
    shale_objlist l = {0};
    if (shale_objstore_open(root, &o.store, &s) || shale_objstore_list_all(s, "", &l))
        die("split bytes: listing the S3 root", shale_errmsg());
    const char **keys = calloc(l.count ? l.count : 1, sizeof *keys);
    if (!keys)
        die("split bytes", "out of memory");
    for (size_t i = 0; i < l.count; i++)
        keys[i] = l.items[i].key;
    if (shale_objstore_delete_many(s, keys, l.count))
        die("split bytes: deleting the S3 root", shale_errmsg());
    free(keys);
    shale_objlist_free(&l);
    shale_objstore_close(s);
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, dbl_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define SB_MAX_SIZES 8
#define SB_MAX_REPEAT 32

/* The median split of rs[0..n) field by field (each field's own median:
 * the runs swing by fsyncs, not by what a split reads). */
static void sb_median(const sb_result *rs, int n, sb_result *m)
{
    double v[SB_MAX_REPEAT];
    *m = rs[0];
#define MED(f)                                                                                 \
    do {                                                                                       \
        for (int i = 0; i < n; i++)                                                            \
            v[i] = (double)rs[i].f;                                                            \
        m->f = median(v, n);                                                                   \
    } while (0)
    MED(bytes);
    MED(requests);
    MED(secs);
    MED(verify_bytes);
    MED(verify_requests);
    MED(verify_secs);
    for (size_t k = 0; k < SB_STEPS; k++) {
        MED(step[k].bytes);
        MED(step[k].requests);
        MED(step[k].deletes);
        MED(step[k].lists);
        MED(step[k].secs);
    }
#undef MED
}

void split_bytes_bench(const char *backend, const char *mb_list, int repeat, json_t *out)
{
    bool file = !strcmp(backend, "file");
    char bucket[64] = "";
    if (!file) {
        s3test_server srv;
        if (s3test_rgw(&srv))
            die("split bytes: finding the S3 server", shale_errmsg());
        s3test_env(&srv);
        snprintf(bucket, sizeof bucket, "%s", srv.bucket);
    }
    if (repeat < 1)
        repeat = 1;
    if (repeat > SB_MAX_REPEAT)
        repeat = SB_MAX_REPEAT;
    if (getenv("SHALE_FAULT_TRACE") && repeat > 1) {
        /* A fault store stays open for the process once made, with what it
         * knew of the directories a repeat removes: a traced repeat
         * failed its second split's child probe, or hung. */
        printf("\n(SHALE_FAULT_TRACE: one split per size)\n");
        repeat = 1;
    }
    if (!file && repeat > 1) {
        /* The tests' RGW keeps objects in a 2 GB memstore and frees a
         * deleted object's data only at its GC, hours later: a second
         * 500 MB parent stalls it (DELETEs time out).  One split per size
         * per server. */
        printf("\n(s3: one split per size: the RGW's memstore does not free deleted "
               "objects in time for a repeat)\n");
        repeat = 1;
    }
    int mbs[SB_MAX_SIZES], nsizes = 0;
    char *list = strdup(mb_list);
    for (char *tok = strtok(list, ","); tok && nsizes < SB_MAX_SIZES; tok = strtok(NULL, ","))
        mbs[nsizes++] = atoi(tok);
    free(list);
    printf("\nreferences split, 2 children: bytes read, requests, time from submit to "
           "Complete (%s); the Verify step's share after the '|'\n%-5s %8s %3s %5s %12s %12s "
           "%9s %8s | %10s %8s %8s\n", backend, "store", "parent", "run", "SSTs", "filt+idx B",
           "bytes read", "requests", "time s", "V bytes", "V reqs", "V s");
    static sb_result res[SB_MAX_SIZES][SB_MAX_REPEAT];
    sb_result loaded[SB_MAX_SIZES];
    char roots[SB_MAX_SIZES][600], srcs[SB_MAX_SIZES][620];
    for (int k = 0; k < nsizes; k++) {
        /* The pid too: two sessions' benches on one machine would
         * otherwise load and split into the same directory. */
        if (file) {
            snprintf(roots[k], sizeof roots[k], "file://%s/splitbytes-%d-%d-%d", dir, mbs[k],
                     (int)getpid(), k);
            snprintf(srcs[k], sizeof srcs[k], "%s.loaded", roots[k] + strlen("file://"));
            memset(&loaded[k], 0, sizeof loaded[k]);
            sb_load(roots[k], mbs[k], &loaded[k]);
            if (rename(roots[k] + strlen("file://"), srcs[k]))
                die("split bytes: setting the loaded parent aside", srcs[k]);
        }
    }
    for (int rep = 0; rep < repeat; rep++)
        for (int j = 0; j < nsizes; j++) {
            /* Every other round in the reverse order: neither size is
             * always the process's first split. */
            int k = rep % 2 ? nsizes - 1 - j : j;
            sb_result *r = &res[k][rep];
            char root[640];
            if (file) {
                snprintf(root, sizeof root, "%s", roots[k]);
                *r = loaded[k];
                clone_tree(srcs[k], root + strlen("file://"));
                nftw(root + strlen("file://"), drop_pages, 16, FTW_PHYS);
                sync();   /* the copy's and the last split's removal's metadata */
            } else {
                snprintf(root, sizeof root, "s3://%s/splitbytes-%d-%d-%d-%d", bucket, mbs[k],
                         (int)getpid(), k, rep);
                memset(r, 0, sizeof *r);
                sb_load(root, mbs[k], r);
            }
            sb_split(root, r);
            printf("%-5s %5d MB %3d %5llu %12llu %12llu %9llu %8.4f | %10llu %8llu %8.4f\n",
                   backend, mbs[k], rep + 1, (unsigned long long)r->ssts,
                   (unsigned long long)r->meta_bytes, (unsigned long long)r->bytes,
                   (unsigned long long)r->requests, r->secs,
                   (unsigned long long)r->verify_bytes, (unsigned long long)r->verify_requests,
                   r->verify_secs);
            fflush(stdout);
            json_array_append_new(out, json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:f}",
                                                 "backend", backend, "parent_mb", mbs[k], "run",
                                                 rep + 1, "ssts", (json_int_t)r->ssts,
                                                 "sst_filter_index_bytes",
                                                 (json_int_t)r->meta_bytes, "bytes_read",
                                                 (json_int_t)r->bytes, "requests",
                                                 (json_int_t)r->requests, "split_s", r->secs));
            if (file) {
                rm_rf(root + strlen("file://"));
                sync();   /* its blocks freed (and discarded) now, not in the next split */
            } else {
                s3_rm(root);
            }
        }
    for (int k = 0; file && k < nsizes; k++)
        rm_rf(srcs[k]);
    if (nsizes < 2)
        return;
    sb_result first, last;
    sb_median(res[0], repeat, &first);
    sb_median(res[nsizes - 1], repeat, &last);
    int firstmb = mbs[0], lastmb = mbs[nsizes - 1];
    if (repeat > 1) {
        /* Every size's median, in load order: a size given twice
         * ("50,500,50": the second 50 MB parent loaded after the 500 MB
         * one) tells the shard's size from where and when it was loaded. */
        printf("medians of %d runs, in load order:", repeat);
        for (int k = 0; k < nsizes; k++) {
            sb_result m;
            sb_median(res[k], repeat, &m);
            printf(" %d MB %.4f s%s", mbs[k], m.secs, k + 1 < nsizes ? "," : "\n");
        }
    }
    printf("ratio %d MB / %d MB: bytes %.2f, requests %.2f, time %.2f (goal: each < 1.2)%s\n",
           lastmb, firstmb, sb_ratio((double)last.bytes, (double)first.bytes),
           sb_ratio((double)last.requests, (double)first.requests),
           sb_ratio(last.secs, first.secs), repeat > 1 ? " (of the medians)" : "");
    sb_print_steps(firstmb, &first, lastmb, &last);
    if (first.verify_requests && first.verify_bytes)
        printf("Verify step alone: bytes %.2f, requests %.2f, time %.2f\n",
               sb_ratio((double)last.verify_bytes, (double)first.verify_bytes),
               sb_ratio((double)last.verify_requests, (double)first.verify_requests),
               sb_ratio(last.verify_secs, first.verify_secs));
}
