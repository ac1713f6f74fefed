/*
 * bench.c -- `make bench`: Shale against RocksDB and LevelDB (their C APIs)
 * in one process, one after the other, with the same keys, on the same
 * disk; then the cost of a split against copying the data.
 *
 *   bench [--keys N] [--value-size B] [--split-mb M,M,...] [--json FILE] [--dir D]
 *
 * Durability is matched: Shale with await_durable off and fs_no_fsync, the
 * peers with sync=false (each acknowledges from memory; none fsyncs per
 * write).  Figures are ops/s (higher is better) with the ratio Shale/peer.
 */
#include "shale.h"

#include <jansson.h>
#include <leveldb/c.h>
#include <rocksdb/c.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NENGINES 3
static const char *const engine_names[NENGINES] = {"shale", "rocksdb", "leveldb"};

typedef struct figure {
    const char *name;
    double ops[NENGINES];         /* ops/s, indexed like engine_names */
    double p50[NENGINES], p99[NENGINES];  /* microseconds (0 = not measured) */
} figure;

static figure figs[16];
static int nfigs;
static uint64_t nkeys = 200000;
static size_t vsize = 100;
static const char *dir = "/tmp/shale-bench";
static bool shale_only;
static double shale_write_amp;

static figure *fig(const char *name)
{
    for (int i = 0; i < nfigs; i++)
        if (!strcmp(figs[i].name, name))
            return &figs[i];
    figs[nfigs].name = name;
    return &figs[nfigs++];
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Per-operation latencies of the current workload (ns), for percentiles. */
static uint32_t *lat;
static uint64_t nlat;

static void lat_add(double t0)
{
    double d = (now_s() - t0) * 1e9;
    lat[nlat++] = d > 4e9 ? 4000000000u : (uint32_t)d;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Records the percentiles of the latencies gathered since the last call. */
static void lat_store(figure *f, int engine)
{
    if (nlat) {
        qsort(lat, nlat, sizeof *lat, cmp_u32);
        f->p50[engine] = lat[nlat / 2] / 1000.0;
        f->p99[engine] = lat[(nlat * 99) / 100] / 1000.0;
    }
    nlat = 0;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void key_of(uint64_t i, char k[17])
{
    /* 16 decimal digits, written by hand (no truncation warnings). */
    for (int d = 15; d >= 0; d--, i /= 10)
        k[d] = (char)('0' + i % 10);
    k[16] = '\0';
}

static void value_of(uint64_t i, char *v)
{
    for (size_t j = 0; j < vsize; j++)
        v[j] = (char)('a' + (i + j) % 26);
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err : "failed");
    exit(1);
}

static void rm_rf(const char *path)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf %s", path);
    if (system(cmd)) {}
}

/* ---- the three engines behind one interface --------------------------------
 * Every workload below runs the same code against each engine, so the
 * figures differ only by the engine.  Each operation dies on an error. */

typedef struct kv_engine {
    int col;                                    /* index into engine_names */
    void *ctx;
    void (*put)(void *ctx, const char *k, const char *v);
    bool (*get)(void *ctx, const char *k);      /* true if found */
    uint64_t (*scan)(void *ctx);                /* entries seen */
    void (*settle)(void *ctx);                  /* after a write phase */
    void (*compact)(void *ctx);                 /* merge everything */
    void (*close)(void *ctx);
} kv_engine;

/* Shale: durable = await_durable with fsync; otherwise acknowledged from
 * memory (await_durable off, fs_no_fsync), like the peers' sync=false. */
typedef struct shale_ctx {
    shale_db *db;
    shale_objstats w0;   /* store counters at open, for write amplification */
} shale_ctx;

static void sh_put(void *c, const char *k, const char *v)
{
    if (shale_put(((shale_ctx *)c)->db, k, 16, v, vsize))
        die("shale_put", shale_errmsg());
}

static bool sh_get(void *c, const char *k)
{
    void *got = NULL;
    size_t gl;
    shale_status rc = shale_get(((shale_ctx *)c)->db, NULL, k, 16, &got, &gl);
    if (rc && rc != SHALE_NOT_FOUND)
        die("shale_get", shale_errmsg());
    shale_free(got);
    return rc == SHALE_OK;
}

static uint64_t sh_scan(void *c)
{
    shale_iter *it = NULL;
    uint64_t n = 0;
    if (shale_scan(((shale_ctx *)c)->db, NULL, NULL, 0, NULL, 0, &it))
        die("shale_scan", shale_errmsg());
    for (; shale_iter_valid(it); shale_iter_next(it))
        n++;
    if (shale_iter_status(it))
        die("shale_scan", shale_errmsg());
    shale_iter_free(it);
    return n;
}

static void sh_settle(void *c)
{
    if (shale_flush_wal(((shale_ctx *)c)->db))
        die("shale_flush_wal", shale_errmsg());
}

/* Also measures write amplification: everything written to the store since
 * open (WAL, L0, compaction) over the user bytes of fill + overwrite. */
static void sh_compact(void *c)
{
    shale_ctx *x = c;
    if (shale_compact(x->db, true))
        die("shale_compact", shale_errmsg());
    shale_objstats w1;
    shale_objstore_global_stats(&w1);
    shale_write_amp = (double)(w1.bytes_written - x->w0.bytes_written) /
                      (double)(2 * nkeys * (16 + vsize));
}

static void sh_close(void *c)
{
    if (shale_close(((shale_ctx *)c)->db))
        die("shale_close", shale_errmsg());
    free(c);
}

static kv_engine open_shale(const char *name, bool durable)
{
    char path[700], uri[720];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    rm_rf(path);
    snprintf(uri, sizeof uri, "file://%s", path);
    shale_options o;
    shale_options_init(&o);
    if (!durable) {
        o.await_durable = false;
        o.store.fs_no_fsync = true;
        o.memtable_bytes = 64u << 20;
    }
    o.block_cache_bytes = 256u << 20;
    shale_ctx *c = calloc(1, sizeof *c);
    if (!c || shale_open(uri, &o, &c->db))
        die("shale_open", shale_errmsg());
    shale_objstore_global_stats(&c->w0);
    return (kv_engine){0, c, sh_put, sh_get, sh_scan, sh_settle, sh_compact, sh_close};
}

/* RocksDB and LevelDB: 256 MiB LRU block cache, 10-bit bloom filters. */
typedef struct rocks_ctx {
    rocksdb_t *db;
    rocksdb_options_t *o;
    rocksdb_block_based_table_options_t *bo;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
} rocks_ctx;

static void rk_put(void *c, const char *k, const char *v)
{
    rocks_ctx *x = c;
    char *err = NULL;
    rocksdb_put(x->db, x->wo, k, 16, v, vsize, &err);
    if (err)
        die("rocksdb_put", err);
}

static bool rk_get(void *c, const char *k)
{
    rocks_ctx *x = c;
    char *err = NULL;
    size_t gl;
    char *got = rocksdb_get(x->db, x->ro, k, 16, &gl, &err);
    if (err)
        die("rocksdb_get", err);
    rocksdb_free(got);
    return got != NULL;
}

static uint64_t rk_scan(void *c)
{
    rocks_ctx *x = c;
    uint64_t n = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator(x->db, x->ro);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
        n++;
    rocksdb_iter_destroy(it);
    return n;
}

static void rk_compact(void *c)
{
    rocksdb_compact_range(((rocks_ctx *)c)->db, NULL, 0, NULL, 0);
}

static void rk_close(void *c)
{
    rocks_ctx *x = c;
    rocksdb_close(x->db);
    rocksdb_writeoptions_destroy(x->wo);
    rocksdb_readoptions_destroy(x->ro);
    rocksdb_options_destroy(x->o);
    rocksdb_block_based_options_destroy(x->bo);
    rocksdb_cache_destroy(x->cache);
    free(x);
}

static kv_engine open_rocks(const char *name, bool durable)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    rm_rf(path);
    rocks_ctx *x = calloc(1, sizeof *x);
    if (!x)
        die("calloc", NULL);
    x->o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(x->o, 1);
    rocksdb_options_increase_parallelism(x->o, 2);
    x->bo = rocksdb_block_based_options_create();
    x->cache = rocksdb_cache_create_lru(256u << 20);
    rocksdb_block_based_options_set_block_cache(x->bo, x->cache);
    rocksdb_block_based_options_set_filter_policy(x->bo, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(x->o, x->bo);
    char *err = NULL;
    x->db = rocksdb_open(x->o, path, &err);
    if (err)
        die("rocksdb_open", err);
    x->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(x->wo, durable);
    x->ro = rocksdb_readoptions_create();
    return (kv_engine){1, x, rk_put, rk_get, rk_scan, NULL, rk_compact, rk_close};
}

typedef struct level_ctx {
    leveldb_t *db;
    leveldb_options_t *o;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *fp;
    leveldb_writeoptions_t *wo;
    leveldb_readoptions_t *ro;
} level_ctx;

static void lv_put(void *c, const char *k, const char *v)
{
    level_ctx *x = c;
    char *err = NULL;
    leveldb_put(x->db, x->wo, k, 16, v, vsize, &err);
    if (err)
        die("leveldb_put", err);
}

static bool lv_get(void *c, const char *k)
{
    level_ctx *x = c;
    char *err = NULL;
    size_t gl;
    char *got = leveldb_get(x->db, x->ro, k, 16, &gl, &err);
    if (err)
        die("leveldb_get", err);
    leveldb_free(got);
    return got != NULL;
}

static uint64_t lv_scan(void *c)
{
    level_ctx *x = c;
    uint64_t n = 0;
    leveldb_iterator_t *it = leveldb_create_iterator(x->db, x->ro);
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it))
        n++;
    leveldb_iter_destroy(it);
    return n;
}

static void lv_compact(void *c)
{
    leveldb_compact_range(((level_ctx *)c)->db, NULL, 0, NULL, 0);
}

static void lv_close(void *c)
{
    level_ctx *x = c;
    leveldb_close(x->db);
    leveldb_writeoptions_destroy(x->wo);
    leveldb_readoptions_destroy(x->ro);
    leveldb_options_destroy(x->o);
    leveldb_cache_destroy(x->cache);
    leveldb_filterpolicy_destroy(x->fp);
    free(x);
}

static kv_engine open_level(const char *name, bool durable)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    rm_rf(path);
    level_ctx *x = calloc(1, sizeof *x);
    if (!x)
        die("calloc", NULL);
    x->o = leveldb_options_create();
    leveldb_options_set_create_if_missing(x->o, 1);
    x->cache = leveldb_cache_create_lru(256u << 20);
    leveldb_options_set_cache(x->o, x->cache);
    x->fp = leveldb_filterpolicy_create_bloom(10);
    leveldb_options_set_filter_policy(x->o, x->fp);
    char *err = NULL;
    x->db = leveldb_open(x->o, path, &err);
    if (err)
        die("leveldb_open", err);
    x->wo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(x->wo, durable);
    x->ro = leveldb_readoptions_create();
    return (kv_engine){2, x, lv_put, lv_get, lv_scan, NULL, lv_compact, lv_close};
}

typedef kv_engine (*engine_open_fn)(const char *name, bool durable);
static const engine_open_fn engine_open[NENGINES] = {open_shale, open_rocks, open_level};

static void settle(const kv_engine *e)
{
    if (e->settle)
        e->settle(e->ctx);
}

/* ---- the workloads ------------------------------------------------------------ */

static void run_workloads(const kv_engine *e)
{
    char k[17], *v = malloc(vsize);
    if (!v)
        die("malloc", NULL);
    double t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        key_of(i, k);
        value_of(i, v);
        e->put(e->ctx, k, v);
    }
    settle(e);
    fig("fillseq")->ops[e->col] = nkeys / (now_s() - t);

    figure *f = fig("overwrite (random)");
    uint64_t s = 42;
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        value_of(x + 1, v);
        double t0 = now_s();
        e->put(e->ctx, k, v);
        lat_add(t0);
    }
    settle(e);
    f->ops[e->col] = nkeys / (now_s() - t);
    lat_store(f, e->col);
    e->compact(e->ctx);

    f = fig("readrandom (warm)");
    s = 7;
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        key_of(rnd(&s) % nkeys, k);
        double t0 = now_s();
        bool found = e->get(e->ctx, k);
        lat_add(t0);
        if (!found)
            die(engine_names[e->col], "a key written by fillseq is missing");
    }
    f->ops[e->col] = nkeys / (now_s() - t);
    lat_store(f, e->col);

    t = now_s();
    uint64_t n = e->scan(e->ctx);
    fig("readseq (scan)")->ops[e->col] = n / (now_s() - t);
    if (n != nkeys)
        die(engine_names[e->col], "the scan did not see every key");

    s = 11;
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        if (x % 10 == 0) {
            value_of(x + 2, v);
            e->put(e->ctx, k, v);
        } else {
            e->get(e->ctx, k);
        }
    }
    settle(e);
    fig("mixed 90/10")->ops[e->col] = nkeys / (now_s() - t);
    free(v);
}

/* Durable acknowledgement, DUR_THREADS writers: Shale with await_durable
 * (writers that wait share one WAL SST) and fsync; the peers with
 * sync=true.  Same concurrency, distinct keys per thread. */
#define DUR_THREADS 4
typedef struct dur_arg {
    const kv_engine *e;
    int t;
    uint64_t n;
} dur_arg;

static void *dur_writer(void *p)
{
    dur_arg *a = p;
    char k[17], *v = malloc(vsize);
    if (!v)
        die("malloc", NULL);
    for (uint64_t i = 0; i < a->n; i++) {
        key_of((uint64_t)a->t * a->n + i, k);
        value_of(i, v);
        a->e->put(a->e->ctx, k, v);
    }
    free(v);
    return NULL;
}

static void run_durable(const kv_engine *e, uint64_t per)
{
    pthread_t th[DUR_THREADS];
    dur_arg a[DUR_THREADS];
    double t = now_s();
    for (int i = 0; i < DUR_THREADS; i++) {
        a[i] = (dur_arg){e, i, per};
        if (pthread_create(&th[i], NULL, dur_writer, &a[i]))
            die("pthread_create", NULL);
    }
    for (int i = 0; i < DUR_THREADS; i++)
        pthread_join(th[i], NULL);
    fig("durable put, 4 threads")->ops[e->col] = (double)per * DUR_THREADS / (now_s() - t);
}

/* ---- split vs copy ---------------------------------------------------------- */

typedef struct split_fig {
    int mb;
    double split_s, copy_s, cp_s;
    uint64_t keys, objects_written;
} split_fig;

static split_fig splits[8];
static int nsplits;

static void run_split(int mb)
{
    char base[600], cmd[1400], parent[700], wal[700], a[700], b[700], ca[700], cb[700];
    snprintf(base, sizeof base, "%s/split-%d", dir, mb);
    rm_rf(base);
    snprintf(parent, sizeof parent, "file://%s/parent", base);
    snprintf(wal, sizeof wal, "file://%s/wal", base);
    snprintf(a, sizeof a, "file://%s/a", base);
    snprintf(b, sizeof b, "file://%s/b", base);
    snprintf(ca, sizeof ca, "file://%s/copy-a", base);
    snprintf(cb, sizeof cb, "file://%s/copy-b", base);
    uint64_t keys = (uint64_t)mb * (1u << 20) / (vsize + 16);
    shale_options o;
    shale_options_init(&o);
    o.await_durable = false;
    o.wal_store_uri = wal;
    shale_db *db = NULL;
    if (shale_open(parent, &o, &db))
        die("split parent", shale_errmsg());
    char k[17], *v = malloc(vsize);
    shale_batch *bt = shale_batch_new();
    for (uint64_t i = 0; i < keys; i++) {
        key_of(i, k);
        value_of(i, v);
        if (shale_batch_put(bt, k, 16, v, vsize))
            die("split parent batch", shale_errmsg());
        if (shale_batch_count(bt) == 1000 || i + 1 == keys) {
            if (shale_write(db, bt))
                die("split parent write", shale_errmsg());
            shale_batch_clear(bt);
        }
    }
    shale_batch_free(bt);
    /* A serving shard has most of its data in SSTs. */
    if (shale_compact(db, true))
        die("split parent compact", shale_errmsg());
    /* The split: full-scope checkpoint + two range clones (what the agent's
     * FullFlush and Clone steps do), timed from the checkpoint. */
    shale_objstats before, after;
    shale_objstore_global_stats(&before);
    double t = now_s();
    shale_checkpoint cp;
    if (shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, "bench", &cp))
        die("checkpoint", shale_errmsg());
    key_of(keys / 2, k);
    shale_clone_spec sa = {parent, wal, cp.id, a, NULL, NULL, 0, k, 16};
    shale_clone_spec sb = {parent, wal, cp.id, b, NULL, k, 16, NULL, 0};
    if (shale_clone(&sa, &o, NULL) || shale_clone(&sb, &o, NULL))
        die("clone", shale_errmsg());
    double split_s = now_s() - t;
    shale_objstore_global_stats(&after);
    if (shale_close(db))
        die("split parent close", shale_errmsg());
    /* Naive copy: read every key, write it into one of two new databases. */
    t = now_s();
    shale_reader *r = NULL;
    shale_options co;
    shale_options_init(&co);
    co.await_durable = false;
    co.wal_store_uri = wal;
    shale_db *da = NULL, *dbb = NULL;
    shale_options no;
    shale_options_init(&no);
    no.await_durable = false;
    if (shale_reader_open(parent, &co, NULL, &r) || shale_open(ca, &no, &da) ||
        shale_open(cb, &no, &dbb))
        die("copy", shale_errmsg());
    shale_iter *it = NULL;
    if (shale_reader_scan(r, NULL, 0, NULL, 0, &it))
        die("copy scan", shale_errmsg());
    uint64_t n = 0;
    for (; shale_iter_valid(it); shale_iter_next(it), n++) {
        size_t kl, vl;
        const void *kk = shale_iter_key(it, &kl), *vv = shale_iter_value(it, &vl);
        if (shale_put(n < keys / 2 ? da : dbb, kk, kl, vv, vl))
            die("copy put", shale_errmsg());
    }
    if (shale_iter_status(it) || n != keys)
        die("copy scan", "the parent did not yield every key");
    shale_iter_free(it);
    if (shale_flush_memtable(da) || shale_flush_memtable(dbb) || shale_close(da) ||
        shale_close(dbb))
        die("copy flush", shale_errmsg());
    shale_reader_close(r);
    double copy_s = now_s() - t;
    t = now_s();
    snprintf(cmd, sizeof cmd, "cp -r %s/parent %s/plaincopy && sync", base, base);
    if (system(cmd)) {}
    double cp_s = now_s() - t;
    splits[nsplits++] = (split_fig){mb, split_s, copy_s, cp_s, keys,
                                    (after.requests[SHALE_OP_PUT][0] +
                                     after.requests[SHALE_OP_PUT_IF_ABSENT][0]) -
                                        (before.requests[SHALE_OP_PUT][0] +
                                         before.requests[SHALE_OP_PUT_IF_ABSENT][0])};
    free(v);
    rm_rf(base);
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void print_tables(void)
{
    printf("\n%-20s %14s %14s %8s %14s %8s\n", "workload (ops/s)", "shale", "rocksdb", "ratio",
           "leveldb", "ratio");
    for (int i = 0; i < nfigs; i++) {
        const double *o = figs[i].ops;
        printf("%-20s %14.0f %14.0f %7.2fx %14.0f %7.2fx\n", figs[i].name, o[0], o[1],
               o[0] / o[1], o[2], o[0] / o[2]);
    }
    printf("\n%-20s %16s %16s %16s\n", "latency p50/p99 us", "shale", "rocksdb", "leveldb");
    for (int i = 0; i < nfigs; i++)
        if (figs[i].p50[0] > 0)
            printf("%-20s %7.2f/%-8.2f %7.2f/%-8.2f %7.2f/%-8.2f\n", figs[i].name, figs[i].p50[0],
                   figs[i].p99[0], figs[i].p50[1], figs[i].p99[1], figs[i].p50[2],
                   figs[i].p99[2]);
    printf("\nshale write amplification (store bytes written / user bytes, fill + overwrite "
           "+ full compaction): %.2f\n", shale_write_amp);
}

static void print_splits(void)
{
    printf("\n%-10s %10s %12s %12s %12s %10s %10s\n", "parent", "keys", "split s",
           "naive copy s", "cp -r s", "vs copy", "objects");
    for (int i = 0; i < nsplits; i++)
        printf("%7d MB %10llu %12.4f %12.3f %12.3f %9.0fx %10llu\n", splits[i].mb,
               (unsigned long long)splits[i].keys, splits[i].split_s, splits[i].copy_s,
               splits[i].cp_s, splits[i].copy_s / splits[i].split_s,
               (unsigned long long)splits[i].objects_written);
}

/* The raw figures, for scripts/bench.sh's plot and for comparing runs. */
static void write_json(const char *path)
{
    json_t *ws = json_array(), *ss = json_array();
    for (int i = 0; i < nfigs; i++) {
        json_t *w = json_pack("{s:s}", "name", figs[i].name);
        for (int e = 0; e < NENGINES; e++) {
            json_object_set_new(w, engine_names[e], json_real(figs[i].ops[e]));
            if (figs[i].p50[e] > 0) {
                char key[32];
                snprintf(key, sizeof key, "%s_p50_us", engine_names[e]);
                json_object_set_new(w, key, json_real(figs[i].p50[e]));
                snprintf(key, sizeof key, "%s_p99_us", engine_names[e]);
                json_object_set_new(w, key, json_real(figs[i].p99[e]));
            }
        }
        json_array_append_new(ws, w);
    }
    for (int i = 0; i < nsplits; i++)
        json_array_append_new(ss, json_pack("{s:i, s:I, s:f, s:f, s:f, s:I}", "parent_mb",
                                            splits[i].mb, "keys", (json_int_t)splits[i].keys,
                                            "split_s", splits[i].split_s, "naive_copy_s",
                                            splits[i].copy_s, "cp_s", splits[i].cp_s,
                                            "objects_written",
                                            (json_int_t)splits[i].objects_written));
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    char leveldb_ver[16];
    snprintf(leveldb_ver, sizeof leveldb_ver, "%d.%d", leveldb_major_version(),
             leveldb_minor_version());
    json_t *root = json_pack("{s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:f, s:I}",
                             "keys", (json_int_t)nkeys, "value_size", (json_int_t)vsize,
                             "cpus", (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "memory_mb",
                             (json_int_t)(pages / 1024 * psz / 1024), "shale", SHALE_VERSION,
                             "rocksdb", "7.8.3", "leveldb", leveldb_ver, "dir", dir,
                             "workloads", ws, "splits", ss, "shale_write_amp",
                             shale_write_amp, "peak_rss_mb", (json_int_t)(peak_rss_kb() / 1024));
    if (!root || json_dump_file(root, path, JSON_INDENT(1)))
        die("writing", path);
    json_decref(root);
}

int main(int argc, char **argv)
{
    const char *json = NULL, *split_list = "16,64";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--keys") && i + 1 < argc)
            nkeys = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--value-size") && i + 1 < argc)
            vsize = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--split-mb") && i + 1 < argc)
            split_list = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--shale-only"))   /* for profiling */
            shale_only = true;
        else {
            fprintf(stderr, "usage: bench [--keys N] [--value-size B] [--split-mb M,M] "
                            "[--json FILE] [--dir D] [--shale-only]\n");
            return 2;
        }
    }
    if (nkeys == 0 || vsize == 0)
        die("usage", "--keys and --value-size must be positive");
    lat = malloc(nkeys * sizeof *lat);
    if (!lat)
        die("malloc", "latency buffer");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd)) {}
    printf("keys %llu, key 16 B, value %zu B, no sync per write (all three)\n",
           (unsigned long long)nkeys, vsize);
    uint64_t per = nkeys / 100 < 500 ? 500 : nkeys / 100;
    for (int e = 0; e < (shale_only ? 1 : NENGINES); e++) {
        kv_engine k = engine_open[e](engine_names[e], false);
        run_workloads(&k);
        k.close(k.ctx);
    }
    if (shale_only) {
        printf("shale write amplification %.2f\n", shale_write_amp);
        return 0;
    }
    for (int e = 0; e < NENGINES; e++) {
        char name[32];
        snprintf(name, sizeof name, "dur-%s", engine_names[e]);
        kv_engine k = engine_open[e](name, true);
        run_durable(&k, per);
        k.close(k.ctx);
    }
    print_tables();
    char *list = strdup(split_list);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        run_split(atoi(tok));
    free(list);
    print_splits();
    printf("\npeak RSS %ld MB\n", peak_rss_kb() / 1024);
    if (json)
        write_json(json);
    free(lat);
    return 0;
}
