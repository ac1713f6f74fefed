/*
 * test_split_bytes.c -- the bytes a references split reads do not grow
 * with the shard's size (issue 16), counted (never timed).
 *
 * Two parents with the same number of SSTs (NSSTS sorted-run SSTs, cut
 * by sst_target_bytes) but ten times the keys in each, split two ways
 * with verify: references through the agent's splitter, the process's
 * store counters read before the submit and after Complete.  Verify opens
 * every referenced SST from the parent's reader and each child's and reads
 * a window at a few keys of each: with the index partitioned (SST format
 * 3), the filter left alone (no point lookups) and the tables shared by
 * the readers of the process, what it reads is a partition and a block or
 * two per window.  Held:
 *   - the large parent's split reads less than its SSTs' filters and
 *     indexes (measured: half, with 6 MB SSTs; the share falls as SSTs
 *     grow): opening SSTs the old way (whole filter and index, once per
 *     reader: 3 readers here) read 3 times their size;
 *   - what the large parent's split reads beyond the small one's is less
 *     than PER_SST_GROWTH per SST, whatever the SSTs' size;
 *   - the requests differ by at most REQ_SLACK per SST.
 */
#include "support/dbtest.h"
#include "request.h"
#include "splitter.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSSTS 4
/* Verify reads 5 windows an SST (its first key, its last, 3 inside): in a
 * larger SST each may need an index partition more (4 KiB, one request). */
#define WINDOWS 5
#define PER_SST_GROWTH (WINDOWS * 5u << 10)
#define REQ_SLACK (WINDOWS + 1)

typedef struct split_cost {
    uint64_t bytes, requests, meta_bytes;   /* meta: the SSTs' filter + index bytes */
    uint64_t verify_bytes, verify_requests; /* the Verify step's share */
    size_t ssts;
    bool cut_at_sst_end;                    /* in: the children meet at the first SST's
                                               last key (else at the middle key) */
    unsigned windows;                       /* out: Verify's sampled windows */
} split_cost;

/* Filter + index bytes of one SST (from its footer). */
static uint64_t footer_meta(shale_objstore *s, const char *id, uint64_t size)
{
    char key[64];
    snprintf(key, sizeof key, "compacted/%s.sst", id);
    void *f = NULL;
    size_t got = 0;
    TU_OK(shale_objstore_get_range(s, key, size - 72, 72, &f, &got));
    assert_int_equal(got, 72);
    const uint8_t *p = f;
    uint64_t fs = 0, is = 0;
    for (int b = 7; b >= 0; b--) {
        fs = fs << 8 | p[8 + b];
        is = is << 8 | p[24 + b];
    }
    shale_free(f);
    return fs + is;
}

/* Filter + index bytes of the SSTs the latest manifest of uri names, and
 * how many there are. */
static void sst_meta_bytes(const char *uri, uint64_t *bytes, size_t *n)
{
    char *text = NULL;
    TU_OK(shale_manifest_show(uri, NULL, 0, &text));
    json_t *m = json_loads(text, 0, NULL);
    shale_free(text);
    assert_non_null(m);
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    *bytes = 0;
    *n = 0;
    json_t *runs = json_object_get(m, "sorted_runs"), *run, *sst;
    size_t i, j;
    json_array_foreach(runs, i, run)
        json_array_foreach(json_object_get(run, "ssts"), j, sst) {
            *bytes += footer_meta(s, json_string_value(json_object_get(sst, "id")),
                                  (uint64_t)json_integer_value(json_object_get(sst, "size")));
            (*n)++;
        }
    assert_int_equal(json_array_size(json_object_get(m, "l0")), 0);
    json_decref(m);
    shale_objstore_close(s);
}

/* 100 bytes that do not compress, for key i. */
static void put_incompressible(shale_db *db, unsigned i)
{
    char k[32];
    uint8_t v[100];
    size_t kl = dt_key(k, sizeof k, i);
    uint64_t x = 0x9E3779B97F4A7C15ULL * (i + 1);
    for (size_t b = 0; b < sizeof v; b++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[b] = (uint8_t)x;
    }
    TU_OK(shale_put(db, k, kl, v, sizeof v));
}

/* keys keys in SSTs of about sst_bytes (0: NSSTS SSTs whatever the keys). */
static void split_cost_of(unsigned keys, size_t sst_bytes, const char *tag, split_cost *out)
{
    bool cut_at_sst_end = out->cut_at_sst_end;
    memset(out, 0, sizeof *out);
    char root[128], parent[200], wal[200], child[2][200];
    snprintf(root, sizeof root, "mem://splitbytes-%s-%d", tag, (int)getpid());
    snprintf(parent, sizeof parent, "%s/parent", root);
    snprintf(wal, sizeof wal, "%s/wal", root);
    for (int i = 0; i < 2; i++)
        snprintf(child[i], sizeof child[i], "%s/child-%d", root, i);
    shale_options o;
    shale_options_init(&o);
    o.await_durable = false;
    o.wal_store_uri = wal;
    /* NSSTS SSTs whatever the keys: about 120 bytes an entry, stored. */
    o.sst_target_bytes = sst_bytes ? sst_bytes : (size_t)keys * 120 / NSSTS;
    shale_db *db = NULL;
    TU_OK(shale_open(parent, &o, &db));
    for (unsigned i = 0; i < keys; i++)
        put_incompressible(db, i);
    TU_OK(shale_compact(db, true));
    TU_OK(shale_close(db));
    sst_meta_bytes(parent, &out->meta_bytes, &out->ssts);

    splitter_options so;
    splitter_options_init(&so);
    so.policy.allow_test_schemes = true;
    so.shard = "bytes";
    so.store_uri = parent;
    so.wal_store_uri = wal;
    so.db = o;
    so.db.wal_store_uri = NULL;
    splitter *sp = NULL;
    TU_OK(splitter_new(&so, &sp));
    TU_OK(splitter_start(sp));
    TU_OK(splitter_wait_idle(sp, 60000));
    char text[2048], mid[64];
    dt_key(mid, sizeof mid, keys / 2);
    if (cut_at_sst_end) {
        shale_objstore *ps = NULL;
        shale_manifest_view *m = NULL;
        TU_OK(shale_objstore_open(parent, NULL, &ps));
        TU_OK(shale_manifest_view_load(ps, 0, &m));
        assert_true(m->run_count == 1 && m->runs[0].count > 1);
        const shale_manifest_sst *h = &m->runs[0].ssts[0];
        assert_true(h->last_klen < sizeof mid);
        memcpy(mid, h->last_key, h->last_klen);
        mid[h->last_klen] = 0;
        shale_manifest_view_free(m);
        shale_objstore_close(ps);
    }
    int n = snprintf(text, sizeof text,
                     "name: bytes\nparent: {shard: bytes}\nverify: references\nchildren:\n"
                     "  - {name: c0, store: \"%s\", range: {start: \"\", end: \"%s\"}}\n"
                     "  - {name: c1, store: \"%s\", range: {start: \"%s\", end: \"\"}}\n",
                     child[0], mid, child[1], mid);
    split_request *rq = NULL;
    TU_OK(split_request_parse("test", text, (size_t)n, &rq));
    dt_step_stats steps;
    memset(&steps, 0, sizeof steps);
    splitter_on_step(sp, dt_on_step, &steps);
    shale_objstats before, after;
    shale_objstore_global_stats(&before);
    split_service *svc = splitter_service(sp);
    bool created;
    char *status = NULL;
    TU_OK(svc->ops->submit(svc, rq, &created, &status));
    free(status);
    TU_OK(splitter_wait_idle(sp, 120000));
    shale_objstore_global_stats(&after);
    TU_OK(svc->ops->get(svc, "bytes", &status));
    assert_non_null(strstr(status, "\"phase\": \"Complete\""));
    const char *wm = strstr(status, "sampled windows");
    assert_non_null(wm);
    while (wm > status && wm[-1] == ' ')
        wm--;
    while (wm > status && wm[-1] >= '0' && wm[-1] <= '9')
        wm--;
    out->windows = (unsigned)strtoul(wm, NULL, 10);
    free(status);
    splitter_free(sp);
    split_request_free(rq);
    out->bytes = after.bytes_read - before.bytes_read;
    out->verify_bytes = steps.verify_end.bytes_read - steps.clone_end.bytes_read;
    for (int op = 0; op < SHALE_OP_COUNT; op++) {
        out->requests += after.requests[op][0] + after.requests[op][1] -
                         before.requests[op][0] - before.requests[op][1];
        out->verify_requests += steps.verify_end.requests[op][0] +
                                steps.verify_end.requests[op][1] -
                                steps.clone_end.requests[op][0] -
                                steps.clone_end.requests[op][1];
    }
    printf("# %u keys, %zu SSTs (filters + indexes %llu bytes): split read %llu bytes in "
           "%llu requests; Verify %llu bytes in %llu requests\n", keys, out->ssts,
           (unsigned long long)out->meta_bytes, (unsigned long long)out->bytes,
           (unsigned long long)out->requests, (unsigned long long)out->verify_bytes,
           (unsigned long long)out->verify_requests);
}

static void test_references_split_bytes_independent_of_size(void **state)
{
    (void)state;
    unsigned small = 20000;   /* also quick: under a second on mem:// */
    split_cost s = {0}, l = {0};
    split_cost_of(small, 0, "small", &s);
    split_cost_of(small * 10, 0, "large", &l);
    assert_true(s.ssts >= NSSTS - 1 && s.ssts <= NSSTS + 1);
    assert_int_equal(l.ssts, s.ssts);
    assert_true(l.bytes < l.meta_bytes);
    assert_true(l.bytes < s.bytes + (uint64_t)PER_SST_GROWTH * l.ssts);
    assert_true(l.requests <= s.requests + REQ_SLACK * l.ssts);
}

/* SSTs of one size, four times as many of them: what Verify reads does
 * not follow the number of SSTs.  Its windows go to the SSTs where the
 * children's ranges start (and end), whatever lies between, so the larger
 * parent costs one SST open more here (a 16 KiB tail read, a request: the
 * smaller one's ranges meet in its first SST) and a partition or two.  The
 * rest is the noise of windows that read one block at once (about 16 KiB
 * between runs).  Its HEADs (one per referenced object, no bytes) are
 * what grows: requests are held to one per SST more and six (runs differ by
 * one or two: two windows reading one block at once).  Sampling
 * over the whole key span opened an SST per window: 4-5 more opens here
 * (80 KiB and more), which fails this. */
#define MORE_SSTS_GROWTH (48u << 10)
#define MORE_SSTS_REQS 6   /* measured 4-5; the old sampling: 35 against 19 */

static void test_references_verify_reads_do_not_follow_the_sst_count(void **state)
{
    (void)state;
    unsigned few = 20000;
    size_t sst = (size_t)few * 120 / 2;   /* 2 SSTs, then 8 */
    split_cost s = {0}, l = {0};
    split_cost_of(few, sst, "few", &s);
    split_cost_of(few * 4, sst, "many", &l);
    assert_true(s.ssts >= 2 && s.ssts <= 3);
    assert_true(l.ssts >= 4 * s.ssts - 2);
    assert_true(l.verify_bytes < s.verify_bytes + MORE_SSTS_GROWTH);
    assert_true(l.verify_requests <= s.verify_requests + MORE_SSTS_REQS + (l.ssts - s.ssts));
}

/* A child whose range starts at the last key of its first SST still has
 * its windows inside its span: they go to the first SST with keys past
 * its start (in the first SST alone the span would be one key, and the
 * child would get none).  2 children: each a range-start window and
 * SPAN_SAMPLES (3) in its span, the first one's end window folded into
 * the second's start: 8 windows and the folded one counted, 9. */
static void test_references_windows_when_a_range_starts_at_an_sst_end(void **state)
{
    (void)state;
    unsigned keys = 20000;
    split_cost c;
    memset(&c, 0, sizeof c);
    c.cut_at_sst_end = true;
    split_cost_of(keys, (size_t)keys * 120 / 4, "sstend", &c);
    assert_true(c.ssts >= 3);
    assert_int_equal(c.windows, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_references_split_bytes_independent_of_size),
        cmocka_unit_test(test_references_verify_reads_do_not_follow_the_sst_count),
        cmocka_unit_test(test_references_windows_when_a_range_starts_at_an_sst_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
