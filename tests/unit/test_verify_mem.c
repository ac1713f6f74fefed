/*
 * test_verify_mem.c -- full Verify's memory is bounded by its limits, not
 * by the shard (issue 19; docs/agent.md "Verify's memory"), and walking in
 * pieces still compares every key.
 *
 * A parent of many small SSTs with small blocks (so its SST indexes, which
 * a reader keeps for every SST it opened, are large for its size) is split
 * 2-way with full Verify in a child process of its own.  The growth of the
 * process's peak resident set during Verify (VmHWM, reset through
 * /proc/self/clear_refs when Clone ends; ru_maxrss cannot be reset) must
 * stay under VERIFY_GROWTH_MAX with the test's limits, and the same split
 * with pieces as large as the shard -- one reader per child for its whole
 * range, as Verify walked before -- must exceed it: the bound is one the
 * measurement can see broken.  Memory, not time: nothing here is timed.
 *
 * The parent is built in a child process too, so the processes that
 * measure start small.
 */
#include "support/crashtest.h"
#include "support/dbtest.h"
#include "splitter.h"
#include "request.h"
#include "db/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYS 600000u
#define KEYS_DAMAGED 60000u             /* a few pieces per child */
#define VSIZE 100
/* The test's limits: pieces of 1 MiB of SSTs, 2 walkers, a 1 MiB cache. */
#define PIECE_BYTES (1u << 20)
#define THREADS 2
#define CACHE_BYTES (1u << 20)
/* What Verify may add to the peak (KiB).  Measured: about 6.5 MiB with
 * the limits above, about 20 MiB with one piece per child (600k keys).
 * 300k keys were enough before SST metadata was shared by every reader of
 * a process and filters loaded lazily (SST format 3): one piece per child
 * then grew the peak by only 11 MiB, too close to the bound for the
 * control to mean anything. */
#define VERIFY_GROWTH_MAX (11u << 10)

/* AddressSanitizer keeps freed memory in quarantine (hundreds of MiB), so
 * a peak measured under it says nothing about Verify: there the splits
 * still run (for the sanitizers' checks and every key compared) and the
 * memory assertions are skipped, reported as skipped. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

static void skip_under_asan(void)
{
    if (UNDER_ASAN) {
        print_message("AddressSanitizer's quarantine holds freed memory: the peak is not "
                      "Verify's; memory assertion skipped\n");
        skip();
    }
}

typedef struct fx {
    char *dir, *parent, *wal, *kid[2];
    unsigned n;
} fx;

static void key_of(unsigned i, char k[17])
{
    snprintf(k, 17, "key%013u", i);
}

static void db_options(shale_options *o, const char *wal)
{
    shale_options_init(o);
    o->wal_store_uri = wal;
    o->await_durable = false;
    o->block_size = 256;            /* the least: large indexes for the bytes */
    o->sst_target_bytes = 1u << 20; /* many SSTs: many pieces */
    o->memtable_bytes = 8u << 20;
    o->block_cache_bytes = 1u << 20;
}

/* In a child process: the parent, bulk loaded and compacted into one
 * sorted run.  Values half random, half repeated (they compress as a
 * serving shard's might). */
static int build_parent_in(const fx *f);

/* A ct_body: exits with build_parent_in's status, saying why on stderr. */
static void build_parent_proc(void *arg, int fd)
{
    (void)fd;
    int rc = build_parent_in(arg);
    if (rc)
        ct_die(rc, "building the parent");
}

static int build_parent_in(const fx *f)
{
    shale_options o;
    db_options(&o, f->wal);
    shale_db *db = NULL;
    if (shale_open(f->parent, &o, &db))
        return 1;
    shale_batch *b = shale_batch_new();
    uint64_t s = 88172645463325252ull;
    char k[17], v[VSIZE];
    for (unsigned i = 0; b && i < f->n; i++) {
        for (int j = 0; j < VSIZE; j++) {
            if (j < VSIZE / 2) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                v[j] = (char)(' ' + s % 95);
            } else {
                v[j] = v[j - VSIZE / 2];
            }
        }
        key_of(i, k);
        if (shale_batch_put(b, k, 16, v, VSIZE))
            return 1;
        if (shale_batch_count(b) == 1000 || i + 1 == f->n) {
            if (shale_write(db, b))
                return 1;
            shale_batch_clear(b);
        }
    }
    shale_batch_free(b);
    if (!b || shale_compact(db, true) || shale_close(db))
        return 1;
    return 0;
}

/* /proc/self/status field (kB), or -1. */
static long proc_kb(const char *field)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fp && fgets(line, sizeof line, fp))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    if (fp)
        fclose(fp);
    return v;
}

typedef struct outcome {
    int ok;                      /* 1: the split ran and the numbers are set */
    long rss_at_clone, peak;     /* kB: resident at the end of Clone, peak after */
    unsigned long long keys;     /* the children's keyCount, summed */
    char phase[32];
    char msg[400];
} outcome;

typedef struct probe {
    const fx *f;
    long damage;                 /* >= 0: delete this key from kid-1 */
    bool reset;
    long rss;
    shale_status damage_rc;
} probe;

/* After Clone: the damage, if any, then the peak starts again from what
 * is resident now. */
static void on_step(void *ctx, const char *step, double secs)
{
    (void)secs;
    probe *p = ctx;
    if (strcmp(step, "Clone"))
        return;
    if (p->damage >= 0) {
        shale_options o;
        db_options(&o, NULL);
        shale_db *db = NULL;
        char k[17];
        key_of((unsigned)p->damage, k);
        p->damage_rc = shale_open(p->f->kid[1], &o, &db);
        if (!p->damage_rc)
            p->damage_rc = shale_delete(db, k, 16);
        shale_status crc = shale_close(db);
        if (!p->damage_rc)
            p->damage_rc = crc;
    }
    FILE *fp = fopen("/proc/self/clear_refs", "w");
    p->reset = fp && fputs("5", fp) >= 0;
    if (fp && fclose(fp))
        p->reset = false;
    p->rss = proc_kb("VmRSS");
}

static unsigned long long sum_key_counts(const char *st)
{
    unsigned long long n = 0;
    for (const char *p = st; (p = strstr(p, "\"keyCount\": ")); p += 12)
        n += strtoull(p + 12, NULL, 10);
    return n;
}

/* What run_split's child does. */
typedef struct split_job {
    const fx *f;
    size_t piece_bytes;
    long damage;
} split_job;

/* In a child process (a ct_body): a 2-way split at the middle key with full
 * Verify and the given piece size; sends the outcome on fd. */
static void split_proc(void *arg, int fd)
{
    const split_job *j = arg;
    const fx *f = j->f;
    size_t piece_bytes = j->piece_bytes;
    long damage = j->damage;
    outcome out;
    memset(&out, 0, sizeof out);
    splitter_options so;
    splitter_options_init(&so);
    so.shard = "mem-0";
    so.store_uri = f->parent;
    so.wal_store_uri = f->wal;
    db_options(&so.db, NULL);
    so.verify = SPLIT_VERIFY_FULL;
    so.verify_cache_bytes = CACHE_BYTES;
    so.verify_piece_bytes = piece_bytes;
    so.verify_meta_bytes = (size_t)1 << 40;   /* THREADS is the limit here */
    so.verify_threads = THREADS;
    splitter *sp = NULL;
    probe pr = {f, damage, false, -1, SHALE_OK};
    char mid[17], text[2048];
    key_of(f->n / 2, mid);
    int len = snprintf(text, sizeof text,
                       "name: mem\nparent: {shard: mem-0}\nchildren:\n"
                       "  - {name: kid-0, store: \"%s\", range: {start: \"\", end: \"%s\"}}\n"
                       "  - {name: kid-1, store: \"%s\", range: {start: \"%s\", end: \"\"}}\n",
                       f->kid[0], mid, f->kid[1], mid);
    split_request *r = NULL;
    char *st = NULL;
    bool created = false;
    shale_status rc = splitter_new(&so, &sp);
    if (!rc) {
        splitter_on_step(sp, on_step, &pr);
        rc = splitter_start(sp);
    }
    if (!rc)
        rc = split_request_parse("test", text, (size_t)len, &r);
    split_service *svc = rc ? NULL : splitter_service(sp);
    if (!rc)
        rc = svc->ops->submit(svc, r, &created, &st);
    free(st);
    st = NULL;
    if (!rc)
        rc = splitter_wait_idle(sp, 300000);
    if (!rc)
        rc = svc->ops->get(svc, "mem", &st);
    if (rc) {
        snprintf(out.msg, sizeof out.msg, "%s: %s", shale_strerror(rc), shale_errmsg());
    } else {
        const char *ph = strstr(st, "\"phase\": \"");
        if (ph)
            sscanf(ph + 10, "%31[A-Za-z]", out.phase);
        const char *m = strstr(st, "\"message\": ");
        snprintf(out.msg, sizeof out.msg, "%s", m ? m : st);
        out.keys = sum_key_counts(st);
        out.rss_at_clone = pr.rss;
        out.peak = proc_kb("VmHWM");
        out.ok = pr.reset && pr.rss > 0 && out.peak > 0 && !pr.damage_rc;
        if (pr.damage_rc)
            snprintf(out.msg, sizeof out.msg, "damaging kid-1 failed: %s",
                     shale_strerror(pr.damage_rc));
        else if (!pr.reset)
            snprintf(out.msg, sizeof out.msg, "could not reset the peak through "
                                              "/proc/self/clear_refs");
    }
    free(st);
    split_request_free(r);
    splitter_free(sp);
    ct_ack(fd, &out, sizeof out);
}

/* Runs the split in a process of its own (forked from the test's, which
 * stays small) and collects its outcome. */
static void run_split(const fx *f, size_t piece_bytes, long damage, outcome *out)
{
    split_job j = {f, piece_bytes, damage};
    ct_child c;
    ct_start(&c, split_proc, &j);
    memset(out, 0, sizeof *out);
    bool got = ct_recv(&c, out, sizeof *out);
    ct_close(&c);
    ct_expect_exit(&c, 0);   /* a crash or a failed exit is named here */
    if (!got)
        fail_msg("the split's process exited without its outcome");
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("verify_mem");
    f->n = KEYS;   /* also under SHALE_TEST_QUICK: smaller would not tell */
    *state = f;
    return 0;
}

/* Fresh stores under dir/<tag>, the parent built there. */
static void stores(fx *f, const char *tag)
{
    char sub[64];
    free(f->parent);
    free(f->wal);
    free(f->kid[0]);
    free(f->kid[1]);
    snprintf(sub, sizeof sub, "%s/parent", tag);
    f->parent = tu_file_uri(f->dir, sub);
    snprintf(sub, sizeof sub, "%s/wal", tag);
    f->wal = tu_file_uri(f->dir, sub);
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/kid-%d", tag, i);
        f->kid[i] = tu_file_uri(f->dir, sub);
    }
    ct_child c;
    ct_start(&c, build_parent_proc, f);
    ct_close(&c);
    ct_expect_exit(&c, 0);   /* building the parent succeeded */
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->parent);
    free(f->wal);
    free(f->kid[0]);
    free(f->kid[1]);
    free(f);
    return 0;
}

static void expect_complete(const fx *f, const outcome *o)
{
    if (strcmp(o->phase, "Complete"))
        fail_msg("the split did not complete (phase '%s'): %s", o->phase, o->msg);
    if (!o->ok)
        fail_msg("no memory figures: %s", o->msg);
    if (o->keys != f->n)
        fail_msg("full Verify compared %llu keys, the parent holds %u", o->keys, f->n);
}

/* Pieces of PIECE_BYTES: every key compared, and Verify adds less than
 * VERIFY_GROWTH_MAX to the peak. */
static void test_full_verify_memory_is_bounded(void **state)
{
    fx *f = *state;
    stores(f, "pieces");
    outcome o;
    run_split(f, PIECE_BYTES, -1, &o);
    expect_complete(f, &o);
    skip_under_asan();
    long grew = o.peak - o.rss_at_clone;
    print_message("full Verify of %u keys in pieces: resident %ld kB at Clone, peak %ld kB "
                  "(+%ld kB)\n", f->n, o.rss_at_clone, o.peak, grew);
    if (grew >= (long)VERIFY_GROWTH_MAX)
        fail_msg("full Verify grew the peak by %ld kB (bound %u kB)", grew, VERIFY_GROWTH_MAX);
}

/* One piece per child (as Verify walked before): the same measurement sees
 * the readers' SST metadata grow with the shard past the bound. */
static void test_one_piece_per_child_exceeds_the_bound(void **state)
{
    fx *f = *state;
    stores(f, "whole");
    outcome o;
    run_split(f, (size_t)1 << 40, -1, &o);
    expect_complete(f, &o);
    skip_under_asan();
    long grew = o.peak - o.rss_at_clone;
    print_message("full Verify of %u keys, one piece per child: +%ld kB\n", f->n, grew);
    if (grew < (long)VERIFY_GROWTH_MAX)
        fail_msg("one reader per child grew the peak by only %ld kB (bound %u kB): the "
                 "shard is too small for the bound to mean anything", grew, VERIFY_GROWTH_MAX);
}

/* A key missing from the last piece of kid-1's range is found and named:
 * the pieces cover the range, not just its first part. */
static void test_pieces_find_a_missing_key(void **state)
{
    fx *f = *state;
    f->n = KEYS_DAMAGED;
    stores(f, "damaged");
    outcome o;
    unsigned gone = f->n / 8 * 7;
    char k[17], want[64];
    key_of(gone, k);
    snprintf(want, sizeof want, "lacks key '%s'", k);
    run_split(f, PIECE_BYTES, gone, &o);
    if (strcmp(o.phase, "Failed") || !strstr(o.msg, "kid-1") || !strstr(o.msg, want))
        fail_msg("expected the split to fail naming kid-1 and \"%s\" (phase '%s'): %s", want,
                 o.phase, o.msg);
}

/* With a cut at every SST of the parent's run, a key missing at a cut --
 * an SST's last key, which neither piece's scan reads but one looks up --
 * is found and named. */
static void test_a_missing_cut_key_is_found(void **state)
{
    fx *f = *state;
    f->n = KEYS_DAMAGED;
    stores(f, "cut");
    shale_objstore *st = NULL;
    manifest *m = NULL;
    TU_OK(shale_objstore_open(f->parent, NULL, &st));
    TU_OK(manifest_store_load_latest(st, 0, &m));
    shale_objstore_close(st);
    assert_true(m->run_count == 1 && m->runs[0].count >= 4);
    /* An SST's last key inside kid-1's range (the upper half). */
    const sst_handle *h = &m->runs[0].ssts[m->runs[0].count * 3 / 4];
    char k[17];
    assert_int_equal(h->last_klen, 16);
    memcpy(k, h->last_key, 16);
    k[16] = 0;
    unsigned gone = (unsigned)strtoul(k + 3, NULL, 10);
    manifest_free(m);
    assert_true(gone > f->n / 2 && gone + 1 < f->n);
    char want[64];
    snprintf(want, sizeof want, "lacks key '%s'", k);
    outcome o;
    run_split(f, 1, gone, &o);
    if (strcmp(o.phase, "Failed") || !strstr(o.msg, "kid-1") || !strstr(o.msg, want))
        fail_msg("expected the split to fail naming kid-1 and \"%s\" (phase '%s'): %s", want,
                 o.phase, o.msg);
}

/* The same cuts on an undamaged parent: every key counted once, the cut
 * keys included. */
static void test_cuts_count_every_key_once(void **state)
{
    fx *f = *state;
    f->n = KEYS_DAMAGED;
    stores(f, "cuts");
    outcome o;
    run_split(f, 1, -1, &o);
    if (strcmp(o.phase, "Complete"))
        fail_msg("the split did not complete (phase '%s'): %s", o.phase, o.msg);
    if (o.keys != f->n)
        fail_msg("full Verify compared %llu keys, the parent holds %u", o.keys, f->n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_verify_memory_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_piece_per_child_exceeds_the_bound, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pieces_find_a_missing_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_missing_cut_key_is_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cuts_count_every_key_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
