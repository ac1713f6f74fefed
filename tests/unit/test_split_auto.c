/*
 * test_split_auto.c -- split requests that leave the boundaries to the
 * agent (agent/split_auto.h), through the splitter's service API on
 * file:// stores: 2, 4 and 8 ways on a uniform and on a skewed shard (a
 * tenth of the keys holding most of the bytes) complete, and the children,
 * scanned afterwards, are within 5 % of each other by key + value bytes;
 * the ranges are journalled, so a restart resumes with the same ones even
 * when the parent changed meanwhile, and the same request again is the
 * same split; a dry run shows them; mixed, misplaced and too-small
 * requests are refused with the field named.
 */
#include "support/dbtest.h"
#include "splitter.h"
#include "request.h"
#include "shale_admin.h"
#include "shard_facts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx {
    char *dir, *parent, *wal;
    shale_options o;
    splitter *sp;
    unsigned n;
    int run;                 /* distinct child stores per split */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("split_auto");
    f->parent = tu_file_uri(f->dir, "parent");
    f->wal = tu_file_uri(f->dir, "local-wal");
    shale_options_init(&f->o);
    f->o.memtable_bytes = 1u << 20;
    f->o.compression_level = 0;
    f->o.await_durable = false;
    f->o.wal_store_uri = f->wal;
    f->n = 30000;   /* fewer keys, fewer blocks per child: a coarser balance */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    splitter_free(f->sp);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->parent);
    free(f->wal);
    free(f);
    return 0;
}

/* Keys 0..n-1 in a shuffled order, flushed to SSTs (incompressible
 * values: uniform 100 B, or skewed: the tenth [45 %, 55 %) 2000 B and the
 * others 20 B).  first..n only: extra writes for the restart test. */
static void load(fx *f, bool skewed, unsigned first, unsigned vl_override)
{
    shale_db *db = NULL;
    TU_OK(shale_open(f->parent, &f->o, &db));
    uint64_t st = 42 + first;
    uint8_t *val = malloc(2000);
    for (unsigned c = first; c < f->n; c++) {
        /* Shuffled order; an override rewrites the keys from `first` up
         * in key order, so "the upper half" is the upper half of the keys
         * (with the shuffle it was a random half, whose bytes moved the
         * boundaries so little that compaction timing could undo it). */
        unsigned i = vl_override ? c : (unsigned)((c * 7919ull) % f->n);
        char k[32];
        size_t kl = dt_key(k, sizeof k, i), vl = 100;
        if (skewed)
            vl = (i >= f->n * 45 / 100 && i < f->n * 55 / 100) ? 2000 : 20;
        if (vl_override)
            vl = vl_override;
        for (size_t b = 0; b < vl; b++)
            val[b] = (uint8_t)tu_rand(&st);
        TU_OK(shale_put(db, k, kl, val, vl));
    }
    free(val);
    TU_OK(shale_flush_memtable(db));
    TU_OK(shale_close(db));
}

static void new_splitter(fx *f, bool start)
{
    splitter_options so;
    splitter_options_init(&so);
    so.shard = "orders-0";
    so.store_uri = f->parent;
    so.wal_store_uri = f->wal;
    so.db = f->o;
    so.db.wal_store_uri = NULL;
    so.verify = SPLIT_VERIFY_REFERENCES;   /* full is test_splitter's */
    TU_OK(splitter_new(&so, &f->sp));
    if (start)
        TU_OK(splitter_start(f->sp));
}

static char *kid_uri(fx *f, int run, unsigned i, bool wal)
{
    char sub[64];
    snprintf(sub, sizeof sub, "run%d-kid%u%s", run, i, wal ? "-wal" : "");
    return tu_file_uri(f->dir, sub);
}

/* A request for `ways` children without ranges (by: NULL leaves splitBy
 * out).  extra: more top-level YAML. */
static char *request_text(fx *f, int run, const char *name, unsigned ways, bool dry,
                          const char *by)
{
    size_t cap = 8192, n;
    char *t = malloc(cap);
    n = (size_t)snprintf(t, cap, "name: %s\nparent: {shard: orders-0}\ndryRun: %s\n%s%s%s"
                                 "children:\n", name, dry ? "true" : "false",
                         by ? "splitBy: " : "", by ? by : "", by ? "\n" : "");
    for (unsigned i = 0; i < ways; i++) {
        char *s = kid_uri(f, run, i, false), *w = kid_uri(f, run, i, true);
        n += (size_t)snprintf(t + n, cap - n, "  - {name: kid-%u, store: \"%s\", walStore: "
                                              "\"%s\"}\n", i, s, w);
        free(s);
        free(w);
    }
    return t;
}

static split_request *parse(const char *text)
{
    split_request *r = NULL;
    TU_OK(split_request_parse("test", text, strlen(text), &r));
    return r;
}

static json_t *status_of(fx *f, const char *name)
{
    char *s = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->get(svc, name, &s));
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    assert_non_null(j);
    free(s);
    return j;
}

static void expect_phase(json_t *st, const char *phase)
{
    const char *p = json_string_value(json_object_get(st, "phase"));
    if (!p || strcmp(p, phase)) {
        char *d = json_dumps(st, JSON_INDENT(2));
        fail_msg("status is not %s:\n%s", phase, d);
    }
}

/* The ranges of status children[] as "start|end" strings, joined by ";". */
static char *ranges_of(json_t *st)
{
    static char buf[4096];
    size_t n = 0;
    json_t *kids = json_object_get(st, "children"), *k;
    size_t i;
    buf[0] = '\0';
    json_array_foreach(kids, i, k) {
        json_t *rg = json_object_get(k, "range");
        assert_true(json_is_object(rg));
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s|%s;",
                              json_string_value(json_object_get(rg, "start")),
                              json_string_value(json_object_get(rg, "end")));
    }
    return buf;
}

/* Scans child i of run: key + value bytes and keys. */
static void scan_child(fx *f, int run, unsigned i, uint64_t *bytes, uint64_t *keys)
{
    char *s = kid_uri(f, run, i, false), *w = kid_uri(f, run, i, true);
    shale_options o = f->o;
    o.wal_store_uri = w;
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(s, &o, NULL, &r));
    shale_iter *it = NULL;
    TU_OK(shale_reader_scan(r, NULL, 0, NULL, 0, &it));
    *bytes = *keys = 0;
    for (; shale_iter_valid(it); shale_iter_next(it)) {
        size_t kl, vl;
        shale_iter_key(it, &kl);
        shale_iter_value(it, &vl);
        *bytes += kl + vl;
        (*keys)++;
    }
    TU_OK(shale_iter_status(it));
    shale_iter_free(it);
    shale_reader_close(r);
    free(s);
    free(w);
}

/* Runs one split of `ways` children without ranges and checks it. */
static void split_balanced(fx *f, unsigned ways, const char *tag)
{
    int run = ++f->run;
    char name[32];
    snprintf(name, sizeof name, "auto-%u", ways);
    char *text = request_text(f, run, name, ways, false, NULL);
    split_request *r = parse(text);
    assert_true(r->ranges_auto);
    bool created = false;
    char *out = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->submit(svc, r, &created, &out));
    assert_true(created);
    free(out);
    TU_OK(splitter_wait_idle(f->sp, 120000));
    json_t *st = status_of(f, name);
    expect_phase(st, "Complete");
    assert_true(json_is_true(json_object_get(st, "rangesComputed")));
    assert_string_equal(json_string_value(json_object_get(st, "splitBy")), "bytes");
    char *rg = ranges_of(st);
    assert_true(!strncmp(rg, "|", 1));                 /* first starts unbounded */
    assert_true(rg[strlen(rg) - 2] == '|');            /* last ends unbounded */
    json_decref(st);
    uint64_t minv = UINT64_MAX, maxv = 0, keys_total = 0;
    for (unsigned i = 0; i < ways; i++) {
        uint64_t b, k;
        scan_child(f, run, i, &b, &k);
        minv = b < minv ? b : minv;
        maxv = b > maxv ? b : maxv;
        keys_total += k;
    }
    assert_int_equal(keys_total, f->n);
    double spread = (double)(maxv - minv) / (double)minv;
    print_message("%s %u ways: children %llu..%llu bytes (spread %.2f %%)\n", tag, ways,
                  (unsigned long long)minv, (unsigned long long)maxv, spread * 100);
    assert_true(spread <= 0.05);
    /* The same request again is the same split: its status, not a
     * conflict (even though the ranges were never in it). */
    created = true;
    TU_OK(svc->ops->submit(svc, r, &created, &out));
    assert_false(created);
    free(out);
    split_request_free(r);
    free(text);
}

static void balanced(fx *f, bool skewed)
{
    load(f, skewed, 0, 0);
    new_splitter(f, true);
    const unsigned ways[] = {2, 4, 8};
    for (size_t i = 0; i < 3; i++)
        split_balanced(f, ways[i], skewed ? "skewed" : "uniform");
}

static void test_uniform_2_4_8(void **state)
{
    balanced(*state, false);
}

static void test_skewed_2_4_8(void **state)
{
    balanced(*state, true);
}

/* Accepted (journalled with its ranges) by one agent that stops before
 * running it; the parent then takes writes that would move the
 * boundaries; the next agent resumes with the journalled ranges. */
static void test_resume_keeps_the_journalled_ranges(void **state)
{
    fx *f = *state;
    load(f, false, 0, 0);
    new_splitter(f, false);
    char *text = request_text(f, 1, "auto-resume", 4, false, "bytes");
    split_request *r = parse(text);
    bool created = false;
    char *out = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->submit(svc, r, &created, &out));
    assert_true(created);
    free(out);
    json_t *st = status_of(f, "auto-resume");
    char first[4096];
    snprintf(first, sizeof first, "%s", ranges_of(st));
    json_decref(st);
    splitter_free(f->sp);
    f->sp = NULL;
    /* Big values for the upper half: computed now, the boundaries would
     * move up. */
    load(f, false, f->n / 2, 1500);
    shale_split_points pts;
    TU_OK(shale_split_points_get(f->parent, NULL, 4, SHALE_SPLIT_BY_BYTES, &pts));
    char *b0 = shale_key_escape(pts.boundaries[0].data, pts.boundaries[0].len);
    char want[256];
    snprintf(want, sizeof want, "|%s;", b0);
    assert_null(strstr(first, want));   /* a recomputation would differ */
    shale_free(b0);
    shale_split_points_clear(&pts);
    new_splitter(f, true);
    TU_OK(splitter_wait_idle(f->sp, 120000));
    st = status_of(f, "auto-resume");
    expect_phase(st, "Complete");
    assert_string_equal(ranges_of(st), first);
    assert_true(json_is_true(json_object_get(st, "rangesComputed")));
    json_decref(st);
    /* Re-sent after the restart: the same split. */
    svc = splitter_service(f->sp);
    created = true;
    TU_OK(svc->ops->submit(svc, r, &created, &out));
    assert_false(created);
    free(out);
    uint64_t keys_total = 0;
    for (unsigned i = 0; i < 4; i++) {
        uint64_t b, k;
        scan_child(f, 1, i, &b, &k);
        keys_total += k;
    }
    assert_int_equal(keys_total, f->n);
    split_request_free(r);
    free(text);
}

/* A dry run shows the ranges (and by keys) and touches no child store. */
static void test_dry_run_shows_the_ranges(void **state)
{
    fx *f = *state;
    load(f, true, 0, 0);
    new_splitter(f, true);
    char *text = request_text(f, 1, "auto-dry", 4, true, "keys");
    split_request *r = parse(text);
    bool created = false;
    char *out = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->submit(svc, r, &created, &out));
    free(out);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    json_t *st = status_of(f, "auto-dry");
    expect_phase(st, "Complete");
    assert_true(json_is_true(json_object_get(st, "rangesComputed")));
    assert_string_equal(json_string_value(json_object_get(st, "splitBy")), "keys");
    assert_non_null(json_object_get(st, "plan"));
    /* By keys on the skewed shard: the boundaries are the key quartiles
     * (keys are dt_key(i), split points are block ends: near, not at). */
    shale_split_points pts;
    TU_OK(shale_split_points_get(f->parent, NULL, 4, SHALE_SPLIT_BY_KEYS, &pts));
    char *b1 = shale_key_escape(pts.boundaries[1].data, pts.boundaries[1].len);
    char want[256];
    snprintf(want, sizeof want, "|%s;%s|", b1, b1);
    assert_non_null(strstr(ranges_of(st), want));
    shale_free(b1);
    shale_split_points_clear(&pts);
    json_decref(st);
    for (unsigned i = 0; i < 4; i++) {
        char *s = kid_uri(f, 1, i, false);
        TU_OK(shale_store_check_empty(s, NULL, NULL));
        free(s);
    }
    split_request_free(r);
    free(text);
}

static void expect_parse_error(const char *text, const char *field)
{
    split_request *r = NULL;
    TU_RC(SHALE_INVALID_ARGUMENT, split_request_parse("test", text, strlen(text), &r));
    assert_null(r);
    if (!strstr(shale_errmsg(), field))
        fail_msg("error does not name %s: %s", field, shale_errmsg());
}

static void test_bad_requests_refused(void **state)
{
    fx *f = *state;
    (void)f;
    const char *head = "name: x\nparent: {shard: orders-0}\n";
    char t[1024];
    snprintf(t, sizeof t, "%schildren:\n  - {name: a, store: \"file:///a\", range: {start: "
                          "\"\", end: m}}\n  - {name: b, store: \"file:///b\"}\n", head);
    expect_parse_error(t, "children[1].range");
    snprintf(t, sizeof t, "%schildren:\n  - {name: a, store: \"file:///a\"}\n  - {name: b, "
                          "store: \"file:///b\", range: {start: m, end: \"\"}}\n", head);
    expect_parse_error(t, "children[1].range");
    snprintf(t, sizeof t, "%ssplitBy: rows\nchildren:\n  - {name: a, store: \"file:///a\"}\n"
                          "  - {name: b, store: \"file:///b\"}\n", head);
    expect_parse_error(t, "splitBy");
    snprintf(t, sizeof t, "%ssplitBy: keys\nchildren:\n  - {name: a, store: \"file:///a\", "
                          "range: {start: \"\", end: m}}\n  - {name: b, store: \"file:///b\", "
                          "range: {start: m, end: \"\"}}\n", head);
    expect_parse_error(t, "splitBy");
    snprintf(t, sizeof t, "%srangesComputed: true\nchildren:\n  - {name: a, store: "
                          "\"file:///a\"}\n  - {name: b, store: \"file:///b\"}\n", head);
    expect_parse_error(t, "rangesComputed");
    /* A canonical round trip keeps a request without ranges one. */
    snprintf(t, sizeof t, "%schildren:\n  - {name: a, store: \"file:///a\"}\n  - {name: b, "
                          "store: \"file:///b\"}\n", head);
    split_request *r = parse(t), *d = split_request_dup(r);
    assert_true(d->ranges_auto && !d->ranges_computed);
    assert_null(d->children[0].start);
    split_request_free(r);
    split_request_free(d);
}

/* Too small for the ways asked: refused at accept, nothing touched. */
static void test_too_small_refused(void **state)
{
    fx *f = *state;
    f->n = 20;
    load(f, false, 0, 0);
    new_splitter(f, true);
    char *text = request_text(f, 1, "auto-small", 8, false, NULL);
    split_request *r = parse(text);
    bool created = false;
    char *out = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_RC(SHALE_INVALID_ARGUMENT, svc->ops->submit(svc, r, &created, &out));
    assert_non_null(strstr(shale_errmsg(), "too small to split 8 ways"));
    assert_non_null(strstr(shale_errmsg(), "field 'children'"));
    assert_false(created);
    char *s = NULL;
    TU_RC(SHALE_NOT_FOUND, svc->ops->get(svc, "auto-small", &s));
    char *k0 = kid_uri(f, 1, 0, false);
    TU_OK(shale_store_check_empty(k0, NULL, NULL));
    free(k0);
    split_request_free(r);
    free(text);
}

/* The documents of GET /v1/shard and /v1/shard/split-points (shard_facts.h),
 * against the engine's own answers. */
static void test_shard_facts_documents(void **state)
{
    fx *f = *state;
    load(f, false, 0, 0);
    new_splitter(f, true);
    shard_facts sf;
    TU_OK(shard_facts_read(f->sp, &sf));
    char *t = shard_facts_json(f->sp, &sf);
    shard_facts_clear(&sf);
    json_error_t e;
    json_t *j = json_loads(t, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "approxKeys")), f->n);
    assert_string_equal(json_string_value(json_object_get(j, "shard")), "orders-0");
    assert_true(json_is_false(json_object_get(json_object_get(j, "split"), "inProgress")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "split"), "holder")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "range"), "end")), "");
    json_decref(j);
    free(t);
    TU_OK(shard_split_points_json(f->sp, 4, SHALE_SPLIT_BY_KEYS, &t));
    j = json_loads(t, 0, &e);
    assert_non_null(j);
    shale_split_points pts;
    TU_OK(shale_split_points_get(f->parent, NULL, 4, SHALE_SPLIT_BY_KEYS, &pts));
    json_t *b = json_object_get(j, "boundaries");
    assert_int_equal(json_array_size(b), 3);
    for (size_t i = 0; i < 3; i++) {
        char *k = shale_key_escape(pts.boundaries[i].data, pts.boundaries[i].len);
        assert_string_equal(json_string_value(json_array_get(b, i)), k);
        shale_free(k);
    }
    assert_int_equal(json_integer_value(json_object_get(j, "total")), pts.total);
    assert_string_equal(json_string_value(json_object_get(j, "by")), "keys");
    shale_split_points_clear(&pts);
    json_decref(j);
    free(t);
    TU_RC(SHALE_INVALID_ARGUMENT, shard_split_points_json(f->sp, 1000, SHALE_SPLIT_BY_BYTES, &t));
    assert_non_null(strstr(shale_errmsg(), "cannot be split 1000 ways"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_bad_requests_refused),
        T(test_shard_facts_documents),
        T(test_too_small_refused),
        T(test_dry_run_shows_the_ranges),
        T(test_resume_keeps_the_journalled_ranges),
        T(test_uniform_2_4_8),
        T(test_skewed_2_4_8),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
