/*
 * bench_engines.c -- Shale, RocksDB and LevelDB behind bench.h's kv_engine.
 *
 * Settings are matched where the engines have the same knob: a 256 MiB LRU
 * block cache, 10-bit bloom filters, each engine's default compression
 * (Shale zstd level 1, RocksDB and LevelDB Snappy), 4 KiB blocks.  Without
 * durability none fsyncs per write: Shale with await_durable off and
 * fs_no_fsync, the peers with sync=false.
 */
#include "bench.h"
#include "shale.h"

#include <leveldb/c.h>
#include <rocksdb/c.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const engine_names[NENGINES] = {"shale", "rocksdb", "leveldb"};

/* Shale: durable = await_durable with fsync; otherwise acknowledged from
 * memory (await_durable off, fs_no_fsync), like the peers' sync=false. */
typedef struct shale_ctx {
    shale_db *db;
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

static void sh_compact(void *c)
{
    if (shale_compact(((shale_ctx *)c)->db, true))
        die("shale_compact", shale_errmsg());
}

static void sh_close(void *c)
{
    if (shale_close(((shale_ctx *)c)->db))
        die("shale_close", shale_errmsg());
    free(c);
}

static kv_engine open_shale(const char *path, bool durable, bool fresh)
{
    char uri[720];
    if (fresh)
        rm_rf(path);
    snprintf(uri, sizeof uri, "file://%s", path);
    shale_options o;
    shale_options_init(&o);
    if (!durable) {
        o.await_durable = false;
        o.store.fs_no_fsync = true;
        o.memtable_bytes = shale_memtable_mb << 20;
        if (shale_unflushed_mb)
            o.max_unflushed_bytes = shale_unflushed_mb << 20;
    }
    o.block_cache_bytes = 256u << 20;
    /* SHALE_BENCH_WAL_LOG=0: WAL SSTs as files of their own (the layout
     * before the WAL log mode), for comparing. */
    const char *wl = getenv("SHALE_BENCH_WAL_LOG");
    if (wl && !strcmp(wl, "0"))
        o.store.fs_wal_log = -1;
    shale_ctx *c = calloc(1, sizeof *c);
    if (!c || shale_open(uri, &o, &c->db))
        die("shale_open", shale_errmsg());
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
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err)
        die("rocksdb scan", err);
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

static kv_engine open_rocks(const char *path, bool durable, bool fresh)
{
    if (fresh)
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
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    if (err)
        die("leveldb scan", err);
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

static kv_engine open_level(const char *path, bool durable, bool fresh)
{
    if (fresh)
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

const engine_open_fn engine_open[NENGINES] = {open_shale, open_rocks, open_level};
