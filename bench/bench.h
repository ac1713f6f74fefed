/*
 * bench.h -- what the parts of `make bench` share.
 *
 *   bench.c          options, the engine workloads, the tables, the JSON
 *   bench_engines.c  Shale, RocksDB and LevelDB behind one kv_engine table
 *   bench_split.c    split cost (the agent's splitter) against copying
 *   bench_splitbytes.c  a references split's bytes, requests, time by size
 *   bench_durable.c  durable puts, the engines interleaved in rounds
 *
 * Not part of libshale and never run by `make test`: a program that dies
 * with a message on the first error (a benchmark that skips a failed
 * operation reports a figure that means nothing).
 */
#ifndef SHALE_BENCH_H
#define SHALE_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NENGINES 3
extern const char *const engine_names[NENGINES];   /* shale, rocksdb, leveldb */

/* Settings of this run (bench.c). */
extern size_t vsize;        /* value bytes; keys are always 16 bytes */
extern size_t shale_unflushed_mb;  /* Shale's max_unflushed_bytes in MiB (0: default) */
extern size_t shale_memtable_mb;   /* Shale's memtable_bytes, in MiB (default 64) */
extern const char *dir;     /* working directory (removed piece by piece) */

/* One engine behind function pointers, so that every workload runs the
 * same code against each engine.  Every operation dies on an error. */
typedef struct kv_engine {
    int col;                                    /* index into engine_names */
    void *ctx;
    void (*put)(void *ctx, const char *k, const char *v);
    bool (*get)(void *ctx, const char *k);      /* true if found */
    uint64_t (*scan)(void *ctx);                /* entries seen, first to last */
    void (*settle)(void *ctx);                  /* after a write phase; may be NULL */
    void (*compact)(void *ctx);                 /* merge everything */
    void (*close)(void *ctx);                   /* frees ctx */
} kv_engine;

/* Opens the engine's database in directory path: fresh removes what is
 * there first; durable asks for a synced acknowledgement of each write
 * (Shale: await_durable with fsync; peers: sync=true), otherwise all three
 * acknowledge from memory.  All three get a 256 MiB block cache and 10-bit
 * bloom filters. */
typedef kv_engine (*engine_open_fn)(const char *path, bool durable, bool fresh);
extern const engine_open_fn engine_open[NENGINES];

double now_s(void);
void die(const char *what, const char *err) __attribute__((noreturn));
void rm_rf(const char *path);
/* The 16-byte key of index i (decimal digits, so keys sort like i). */
void key_of(uint64_t i, char k[17]);
/* A value of vsize bytes for index i: db_bench's kind (half of each value
 * random, half a repeat, so zstd and Snappy can halve it, no more).
 * Points into a shared buffer: do not free. */
const char *value_of(uint64_t i);
void values_init(void);
/* A split benchmark's parent: keys 0..keys-1 (key_of, vsize bytes of
 * value_of) in batches of 1,000, then compacted into one sorted run.
 * db is a shale_db * (void * here: bench.h does not include shale.h).
 * what names the caller in die() messages. */
void bench_load_parent(void *db, uint64_t keys, size_t vsize, const char *what);

/* Runs the split benchmark for a parent of mb MiB on backend "file" (under
 * dir) or "s3" (the Ceph RGW scripts/bench.sh starts, found through
 * SHALE_TEST_S3_ENDPOINT and the AWS_* keys it exports): 2-way
 * and 8-way splits through the agent's splitter, and for "file" the naive
 * copies.  Prints one table row per split and appends the raw figures to
 * out (a JSON array). */
/* One split through a started splitter: parses request text (n bytes,
 * the split named name), submits it, waits until the splitter is idle and
 * dies unless the split is Complete.  *before / *after: the process's
 * object-store counters around it.  Returns the seconds from submit to
 * idle. */
struct splitter;
struct shale_objstats;
double bench_split_run(struct splitter *sp, const char *name, const char *text, size_t n,
                       struct shale_objstats *before, struct shale_objstats *after);
void split_bench(const char *backend, int mb, json_t *out);
void split_bench_header(void);

/* Splits of a parent of keys keys into 2, 8 and 32 children with 0, 20 and
 * 50 ms injected per request (bench_latency.c), and when s3 the same on the
 * RGW; one table row per split, raw figures appended to out. */
void latency_bench(uint64_t keys, bool s3, json_t *out);

/* References splits (2 children) of parents of each size in mb_list
 * (comma-separated MB) on backend "file" or "s3": bytes read, requests and
 * time from submit to Complete, and the largest / smallest ratios
 * (bench_splitbytes.c); raw figures appended to out. */
void split_bytes_bench(const char *backend, const char *mb_list, int repeat, json_t *out);
/* Durable puts from 1, 4 and 32 threads (bench_durable.c): total puts per
 * engine and thread count, made in rounds that run each of the first
 * engines engines once in a rotating order; out gets the pooled figures. */
#define DUR_COUNTS 3
typedef struct dur_figure {
    int threads;
    uint64_t puts;
    double ops, p50_us, p99_us;
} dur_figure;
void durable_bench(int engines, int rounds, uint64_t total, dur_figure out[NENGINES][DUR_COUNTS]);

#endif
