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

typedef struct figure {
    const char *name;
    double shale, rocks, level;   /* ops/s */
    double p50[3], p99[3];        /* microseconds, per engine (0 = not measured) */
} figure;

figure *fig(const char *name);

/* Per-operation latencies of the current workload (ns), for percentiles. */
static uint32_t *lat;
static uint64_t nlat;

static void lat_reset(void)
{
    nlat = 0;
}

static void lat_add(double t0)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double d = ((double)ts.tv_sec + ts.tv_nsec / 1e9 - t0) * 1e9;
    lat[nlat++] = d > 4e9 ? 4000000000u : (uint32_t)d;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void lat_store(const char *name, int engine)
{
    if (!nlat)
        return;
    qsort(lat, nlat, sizeof *lat, cmp_u32);
    figure *f = fig(name);
    f->p50[engine] = lat[nlat / 2] / 1000.0;
    f->p99[engine] = lat[(nlat * 99) / 100] / 1000.0;
}

static figure figs[16];
static int nfigs;
static uint64_t nkeys = 200000;
static size_t vsize = 100;
static const char *dir = "/tmp/shale-bench";
static bool shale_only;
static double shale_write_amp;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
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

figure *fig(const char *name)
{
    for (int i = 0; i < nfigs; i++)
        if (!strcmp(figs[i].name, name))
            return &figs[i];
    figs[nfigs].name = name;
    return &figs[nfigs++];
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err : "failed");
    exit(1);
}

/* ---- Shale ----------------------------------------------------------------- */

static void run_shale(void)
{
    char uri[600], cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s/shale", dir);
    if (system(cmd)) {}
    snprintf(uri, sizeof uri, "file://%s/shale", dir);
    shale_options o;
    shale_options_init(&o);
    o.await_durable = false;
    o.store.fs_no_fsync = true;
    o.memtable_bytes = 64u << 20;
    o.block_cache_bytes = 256u << 20;
    shale_db *db = NULL;
    if (shale_open(uri, &o, &db))
        die("shale_open", shale_errmsg());
    char k[17], *v = malloc(vsize);
    shale_objstats w0;
    shale_objstore_global_stats(&w0);
    double t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        key_of(i, k);
        value_of(i, v);
        if (shale_put(db, k, 16, v, vsize))
            die("shale_put", shale_errmsg());
    }
    shale_flush_wal(db);
    fig("fillseq")->shale = nkeys / (now_s() - t);
    uint64_t s = 42;
    lat_reset();
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        value_of(x + 1, v);
        double t0 = now_s();
        if (shale_put(db, k, 16, v, vsize))
            die("shale_put", shale_errmsg());
        lat_add(t0);
    }
    shale_flush_wal(db);
    fig("overwrite (random)")->shale = nkeys / (now_s() - t);
    lat_store("overwrite (random)", 0);
    shale_flush_memtable(db);
    shale_compact(db, true);
    shale_objstats w1;
    shale_objstore_global_stats(&w1);
    shale_write_amp = (double)(w1.bytes_written - w0.bytes_written) /
                      (double)(2 * nkeys * (16 + vsize));
    s = 7;
    lat_reset();
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        key_of(rnd(&s) % nkeys, k);
        void *got;
        size_t gl;
        double t0 = now_s();
        if (shale_get(db, NULL, k, 16, &got, &gl))
            die("shale_get", shale_errmsg());
        lat_add(t0);
        shale_free(got);
    }
    fig("readrandom (warm)")->shale = nkeys / (now_s() - t);
    lat_store("readrandom (warm)", 0);
    t = now_s();
    shale_iter *it = NULL;
    uint64_t n = 0;
    if (shale_scan(db, NULL, NULL, 0, NULL, 0, &it))
        die("shale_scan", shale_errmsg());
    for (; shale_iter_valid(it); shale_iter_next(it))
        n++;
    shale_iter_free(it);
    fig("readseq (scan)")->shale = n / (now_s() - t);
    s = 11;
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        if (x % 10 == 0) {
            value_of(x + 2, v);
            if (shale_put(db, k, 16, v, vsize))
                die("shale_put", shale_errmsg());
        } else {
            void *got;
            size_t gl;
            if (shale_get(db, NULL, k, 16, &got, &gl))
                die("shale_get", shale_errmsg());
            shale_free(got);
        }
    }
    fig("mixed 90/10")->shale = nkeys / (now_s() - t);
    shale_close(db);
    free(v);
}

/* ---- RocksDB ---------------------------------------------------------------- */

static void run_rocks(void)
{
    char path[600], cmd[700];
    snprintf(path, sizeof path, "%s/rocksdb", dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", path);
    if (system(cmd)) {}
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_increase_parallelism(o, 2);
    rocksdb_block_based_table_options_t *bo = rocksdb_block_based_options_create();
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(256u << 20);
    rocksdb_block_based_options_set_block_cache(bo, cache);
    rocksdb_block_based_options_set_filter_policy(bo, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(o, bo);
    char *err = NULL;
    rocksdb_t *db = rocksdb_open(o, path, &err);
    if (err)
        die("rocksdb_open", err);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 0);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char k[17], *v = malloc(vsize);
    double t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        key_of(i, k);
        value_of(i, v);
        rocksdb_put(db, wo, k, 16, v, vsize, &err);
        if (err)
            die("rocksdb_put", err);
    }
    fig("fillseq")->rocks = nkeys / (now_s() - t);
    uint64_t s = 42;
    lat_reset();
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        value_of(x + 1, v);
        double t0 = now_s();
        rocksdb_put(db, wo, k, 16, v, vsize, &err);
        lat_add(t0);
    }
    fig("overwrite (random)")->rocks = nkeys / (now_s() - t);
    lat_store("overwrite (random)", 1);
    rocksdb_compact_range(db, NULL, 0, NULL, 0);
    s = 7;
    lat_reset();
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        key_of(rnd(&s) % nkeys, k);
        size_t gl;
        double t0 = now_s();
        char *got = rocksdb_get(db, ro, k, 16, &gl, &err);
        lat_add(t0);
        if (!got)
            die("rocksdb_get", err ? err : "missing key");
        rocksdb_free(got);
    }
    fig("readrandom (warm)")->rocks = nkeys / (now_s() - t);
    lat_store("readrandom (warm)", 1);
    t = now_s();
    rocksdb_iterator_t *it = rocksdb_create_iterator(db, ro);
    uint64_t n = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
        n++;
    rocksdb_iter_destroy(it);
    fig("readseq (scan)")->rocks = n / (now_s() - t);
    s = 11;
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        if (x % 10 == 0) {
            value_of(x + 2, v);
            rocksdb_put(db, wo, k, 16, v, vsize, &err);
        } else {
            size_t gl;
            char *got = rocksdb_get(db, ro, k, 16, &gl, &err);
            rocksdb_free(got);
        }
    }
    fig("mixed 90/10")->rocks = nkeys / (now_s() - t);
    rocksdb_close(db);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_readoptions_destroy(ro);
    rocksdb_options_destroy(o);
    rocksdb_block_based_options_destroy(bo);
    rocksdb_cache_destroy(cache);
    free(v);
}

/* ---- LevelDB ---------------------------------------------------------------- */

static void run_level(void)
{
    char path[600], cmd[700];
    snprintf(path, sizeof path, "%s/leveldb", dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", path);
    if (system(cmd)) {}
    leveldb_options_t *o = leveldb_options_create();
    leveldb_options_set_create_if_missing(o, 1);
    leveldb_cache_t *cache = leveldb_cache_create_lru(256u << 20);
    leveldb_options_set_cache(o, cache);
    leveldb_filterpolicy_t *fp = leveldb_filterpolicy_create_bloom(10);
    leveldb_options_set_filter_policy(o, fp);
    char *err = NULL;
    leveldb_t *db = leveldb_open(o, path, &err);
    if (err)
        die("leveldb_open", err);
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(wo, 0);
    leveldb_readoptions_t *ro = leveldb_readoptions_create();
    char k[17], *v = malloc(vsize);
    double t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        key_of(i, k);
        value_of(i, v);
        leveldb_put(db, wo, k, 16, v, vsize, &err);
        if (err)
            die("leveldb_put", err);
    }
    fig("fillseq")->level = nkeys / (now_s() - t);
    uint64_t s = 42;
    lat_reset();
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        value_of(x + 1, v);
        double t0 = now_s();
        leveldb_put(db, wo, k, 16, v, vsize, &err);
        lat_add(t0);
    }
    fig("overwrite (random)")->level = nkeys / (now_s() - t);
    lat_store("overwrite (random)", 2);
    leveldb_compact_range(db, NULL, 0, NULL, 0);
    s = 7;
    lat_reset();
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        key_of(rnd(&s) % nkeys, k);
        size_t gl;
        double t0 = now_s();
        char *got = leveldb_get(db, ro, k, 16, &gl, &err);
        lat_add(t0);
        if (!got)
            die("leveldb_get", err ? err : "missing key");
        leveldb_free(got);
    }
    fig("readrandom (warm)")->level = nkeys / (now_s() - t);
    lat_store("readrandom (warm)", 2);
    t = now_s();
    leveldb_iterator_t *it = leveldb_create_iterator(db, ro);
    uint64_t n = 0;
    for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it))
        n++;
    leveldb_iter_destroy(it);
    fig("readseq (scan)")->level = n / (now_s() - t);
    s = 11;
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        if (x % 10 == 0) {
            value_of(x + 2, v);
            leveldb_put(db, wo, k, 16, v, vsize, &err);
        } else {
            size_t gl;
            char *got = leveldb_get(db, ro, k, 16, &gl, &err);
            leveldb_free(got);
        }
    }
    fig("mixed 90/10")->level = nkeys / (now_s() - t);
    leveldb_close(db);
    leveldb_writeoptions_destroy(wo);
    leveldb_readoptions_destroy(ro);
    leveldb_options_destroy(o);
    leveldb_cache_destroy(cache);
    leveldb_filterpolicy_destroy(fp);
    free(v);
}

/* ---- durable acknowledgement: 4 writer threads ------------------------------
 * Shale: await_durable (group commit: writers that wait share one WAL SST)
 * with fsync on; RocksDB and LevelDB: sync=true.  Same concurrency. */

#define DUR_THREADS 4
typedef struct dur_arg {
    int engine, t;
    void *db, *wo;
    uint64_t n;
} dur_arg;

static void *dur_writer(void *p)
{
    dur_arg *a = p;
    char k[17], *v = malloc(vsize), *err = NULL;
    for (uint64_t i = 0; i < a->n; i++) {
        key_of((uint64_t)a->t * a->n + i, k);
        value_of(i, v);
        if (a->engine == 0)
            shale_put(a->db, k, 16, v, vsize);
        else if (a->engine == 1)
            rocksdb_put(a->db, a->wo, k, 16, v, vsize, &err);
        else
            leveldb_put(a->db, a->wo, k, 16, v, vsize, &err);
    }
    free(v);
    return NULL;
}

static double dur_run(int engine, void *db, void *wo, uint64_t per)
{
    pthread_t th[DUR_THREADS];
    dur_arg a[DUR_THREADS];
    double t = now_s();
    for (int i = 0; i < DUR_THREADS; i++) {
        a[i] = (dur_arg){engine, i, db, wo, per};
        pthread_create(&th[i], NULL, dur_writer, &a[i]);
    }
    for (int i = 0; i < DUR_THREADS; i++)
        pthread_join(th[i], NULL);
    return (double)per * DUR_THREADS / (now_s() - t);
}

static void run_durable(uint64_t per)
{
    char path[700], cmd[800], *err = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf %s/dur-*", dir);
    if (system(cmd)) {}
    snprintf(path, sizeof path, "file://%s/dur-shale", dir);
    shale_options o;
    shale_options_init(&o);              /* await_durable on, fsync on */
    shale_db *db = NULL;
    if (shale_open(path, &o, &db))
        die("durable shale_open", shale_errmsg());
    fig("durable put, 4 threads")->shale = dur_run(0, db, NULL, per);
    shale_close(db);
    rocksdb_options_t *ro = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(ro, 1);
    snprintf(path, sizeof path, "%s/dur-rocksdb", dir);
    rocksdb_t *rdb = rocksdb_open(ro, path, &err);
    if (err)
        die("durable rocksdb_open", err);
    rocksdb_writeoptions_t *rwo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(rwo, 1);
    fig("durable put, 4 threads")->rocks = dur_run(1, rdb, rwo, per);
    rocksdb_close(rdb);
    rocksdb_writeoptions_destroy(rwo);
    rocksdb_options_destroy(ro);
    leveldb_options_t *lo = leveldb_options_create();
    leveldb_options_set_create_if_missing(lo, 1);
    snprintf(path, sizeof path, "%s/dur-leveldb", dir);
    leveldb_t *ldb = leveldb_open(lo, path, &err);
    if (err)
        die("durable leveldb_open", err);
    leveldb_writeoptions_t *lwo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(lwo, 1);
    fig("durable put, 4 threads")->level = dur_run(2, ldb, lwo, per);
    leveldb_close(ldb);
    leveldb_writeoptions_destroy(lwo);
    leveldb_options_destroy(lo);
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
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd)) {}
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
        shale_batch_put(bt, k, 16, v, vsize);
        if (shale_batch_count(bt) == 1000 || i + 1 == keys) {
            shale_write(db, bt);
            shale_batch_clear(bt);
        }
    }
    shale_batch_free(bt);
    shale_flush_memtable(db);    /* a serving shard has most data in SSTs */
    shale_compact(db, true);
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
    shale_close(db);
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
    shale_reader_scan(r, NULL, 0, NULL, 0, &it);
    uint64_t n = 0;
    for (; shale_iter_valid(it); shale_iter_next(it), n++) {
        size_t kl, vl;
        const void *kk = shale_iter_key(it, &kl), *vv = shale_iter_value(it, &vl);
        shale_put(n < keys / 2 ? da : dbb, kk, kl, vv, vl);
    }
    shale_iter_free(it);
    shale_flush_memtable(da);
    shale_flush_memtable(dbb);
    shale_close(da);
    shale_close(dbb);
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
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd)) {}
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
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
                            "[--json FILE] [--dir D]\n");
            return 2;
        }
    }
    lat = malloc(nkeys * sizeof *lat);
    if (!lat)
        die("malloc", "latency buffer");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd)) {}
    printf("keys %llu, key 16 B, value %zu B, no sync per write (all three)\n",
           (unsigned long long)nkeys, vsize);
    run_shale();
    if (shale_only) {
        printf("shale write amplification %.2f\n", shale_write_amp);
        return 0;
    }
    run_rocks();
    run_level();
    run_durable(nkeys / 100 < 500 ? 500 : nkeys / 100);
    printf("\n%-20s %14s %14s %8s %14s %8s\n", "workload (ops/s)", "shale", "rocksdb", "ratio",
           "leveldb", "ratio");
    for (int i = 0; i < nfigs; i++)
        printf("%-20s %14.0f %14.0f %7.2fx %14.0f %7.2fx\n", figs[i].name, figs[i].shale,
               figs[i].rocks, figs[i].shale / figs[i].rocks, figs[i].level,
               figs[i].shale / figs[i].level);
    printf("\n%-20s %16s %16s %16s\n", "latency p50/p99 us", "shale", "rocksdb", "leveldb");
    for (int i = 0; i < nfigs; i++)
        if (figs[i].p50[0] > 0)
            printf("%-20s %7.2f/%-8.2f %7.2f/%-8.2f %7.2f/%-8.2f\n", figs[i].name, figs[i].p50[0],
                   figs[i].p99[0], figs[i].p50[1], figs[i].p99[1], figs[i].p50[2],
                   figs[i].p99[2]);
    printf("\nshale write amplification (store bytes written / user bytes, fill + overwrite "
           "+ full compaction): %.2f\n", shale_write_amp);
    char *list = strdup(split_list);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        run_split(atoi(tok));
    free(list);
    printf("\n%-10s %10s %12s %12s %12s %10s %10s\n", "parent", "keys", "split s",
           "naive copy s", "cp -r s", "vs copy", "objects");
    for (int i = 0; i < nsplits; i++)
        printf("%7d MB %10llu %12.4f %12.3f %12.3f %9.0fx %10llu\n", splits[i].mb,
               (unsigned long long)splits[i].keys, splits[i].split_s, splits[i].copy_s,
               splits[i].cp_s, splits[i].copy_s / splits[i].split_s,
               (unsigned long long)splits[i].objects_written);
    printf("\npeak RSS %ld MB\n", peak_rss_kb() / 1024);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
            fprintf(f, "{\"keys\": %llu, \"value_size\": %zu, \"cpus\": %ld, "
                       "\"memory_mb\": %ld, \"shale\": \"%s\", \"rocksdb\": \"7.8.3\", "
                       "\"leveldb\": \"%d.%d\", \"dir\": \"%s\", \"workloads\": [",
                    (unsigned long long)nkeys, vsize, sysconf(_SC_NPROCESSORS_ONLN),
                    pages / 1024 * psz / 1024, SHALE_VERSION, leveldb_major_version(),
                    leveldb_minor_version(), dir);
            for (int i = 0; i < nfigs; i++)
                fprintf(f, "%s{\"name\": \"%s\", \"shale\": %.0f, \"rocksdb\": %.0f, "
                           "\"leveldb\": %.0f}", i ? ", " : "", figs[i].name, figs[i].shale,
                        figs[i].rocks, figs[i].level);
            fprintf(f, "], \"splits\": [");
            for (int i = 0; i < nsplits; i++)
                fprintf(f, "%s{\"parent_mb\": %d, \"keys\": %llu, \"split_s\": %.6f, "
                           "\"naive_copy_s\": %.6f, \"cp_s\": %.6f, \"objects_written\": %llu}",
                        i ? ", " : "", splits[i].mb, (unsigned long long)splits[i].keys,
                        splits[i].split_s, splits[i].copy_s, splits[i].cp_s,
                        (unsigned long long)splits[i].objects_written);
            fprintf(f, "], \"shale_write_amp\": %.3f, \"peak_rss_mb\": %ld}\n", shale_write_amp,
                    peak_rss_kb() / 1024);
            fclose(f);
        }
    }
    return 0;
}
