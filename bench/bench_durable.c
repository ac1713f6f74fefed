/*
 * bench_durable.c -- durable puts (a synced acknowledgement per put) from
 * 1, 4 and 32 writer threads, each engine against the same disk in the
 * same minutes.
 *
 * Why rounds: the durable figures are fdatasync latencies, and on a shared
 * disk those swing by 5-10x for tens of seconds at a time (another
 * machine's writes, ext4's discards after a large delete).  Run one engine
 * after the other and such a spell lands on whichever engine it happens
 * to: the same build read 0.86x and 1.48x RocksDB at 4 threads in two runs
 * a minute apart, and its 1-thread p99 1572 against RocksDB's 1039 us in
 * the slow one (2026-12-03).  So every engine opens one database per
 * thread count up front, and the puts are made in rounds (20 by default:
 * a round of 2,000 puts at 1 thread takes ~0.2 s, shorter than the disk's
 * spells; with 5 rounds the 1-thread p99 ratio to RocksDB read 0.47-1.21,
 * over 1 in 2 of 4 runs, with 20 0.66-1.04, over 1 in 1 of 3, minutes
 * apart on a noisy disk),
 * every round running each engine once per thread count in a rotating
 * order; the figures pool the rounds: throughput is all puts over all
 * their time, p50 and p99 are of all puts' latencies.  The databases stay
 * open across the rounds, so each pays its start (a WAL file, a first
 * segment, its first spare) once, as one run did -- a fresh database per
 * round would count them once per round.  One process: the durable puts'
 * memory is not what peak RSS reports (the workloads' children measure
 * that).
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int dur_threads[DUR_COUNTS] = {1, 4, 32};

typedef struct dur_arg {
    const kv_engine *e;
    int t;
    uint64_t n;
    uint32_t *lat;   /* n latencies (ns) */
    uint64_t first;  /* the turn's first key: the rounds before it wrote below */
} dur_arg;

static void *dur_writer(void *p)
{
    dur_arg *a = p;
    char k[17];
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t x = a->first + (uint64_t)a->t * a->n + i;
        key_of(x, k);
        double t0 = now_s();
        a->e->put(a->e->ctx, k, value_of(x));
        double d = (now_s() - t0) * 1e9;
        a->lat[i] = d > 4e9 ? 4000000000u : (uint32_t)d;
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* One engine's turn at one thread count: per puts from each thread, keys
 * after every earlier round's (first), latencies to out. */
static double one_turn(const kv_engine *e, int threads, uint64_t per, uint64_t first,
                       uint32_t *out)
{
    pthread_t th[32];
    dur_arg a[32];
    double t = now_s();
    for (int i = 0; i < threads; i++) {
        a[i] = (dur_arg){e, i, per, out + per * (uint64_t)i, first};
        if (pthread_create(&th[i], NULL, dur_writer, &a[i]))
            die("pthread_create", NULL);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    return now_s() - t;
}

void durable_bench(int engines, int rounds, uint64_t total, dur_figure out[NENGINES][DUR_COUNTS])
{
    if (rounds < 1)
        rounds = 1;
    kv_engine db[NENGINES][DUR_COUNTS];
    char path[NENGINES][DUR_COUNTS][700];
    uint64_t per[DUR_COUNTS];
    uint32_t *lat[NENGINES][DUR_COUNTS];
    double secs[NENGINES][DUR_COUNTS] = {{0}};
    for (int c = 0; c < DUR_COUNTS; c++) {
        per[c] = total / (uint64_t)rounds / (uint64_t)dur_threads[c];
        if (per[c] < 16)
            per[c] = 16;
    }
    for (int e = 0; e < engines; e++)
        for (int c = 0; c < DUR_COUNTS; c++) {
            snprintf(path[e][c], sizeof path[e][c], "%s/dur-%s-%d", dir, engine_names[e],
                     dur_threads[c]);
            db[e][c] = engine_open[e](path[e][c], true, true);
            lat[e][c] = malloc((size_t)rounds * per[c] * (size_t)dur_threads[c] * sizeof(uint32_t));
            if (!lat[e][c])
                die("malloc", "durable puts");
        }
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < DUR_COUNTS; c++)
            for (int k = 0; k < engines; k++) {
                int e = (r + k) % engines;   /* each engine first in turn */
                uint64_t n = per[c] * (uint64_t)dur_threads[c];
                secs[e][c] += one_turn(&db[e][c], dur_threads[c], per[c], (uint64_t)r * n,
                                       lat[e][c] + (uint64_t)r * n);
            }
    for (int e = 0; e < engines; e++)
        for (int c = 0; c < DUR_COUNTS; c++) {
            db[e][c].close(db[e][c].ctx);
            rm_rf(path[e][c]);
            uint64_t n = (uint64_t)rounds * per[c] * (uint64_t)dur_threads[c];
            uint32_t *l = lat[e][c];
            qsort(l, n, sizeof *l, cmp_u32);
            out[e][c].threads = dur_threads[c];
            out[e][c].puts = n;
            out[e][c].ops = secs[e][c] > 0 ? (double)n / secs[e][c] : 0;
            out[e][c].p50_us = l[n / 2] / 1000.0;
            out[e][c].p99_us = l[(n * 99) / 100] / 1000.0;
            free(l);
        }
}
