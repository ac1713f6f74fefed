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
 * the slow one (2026-12-03).  So the puts of each engine and thread count
 * are made in rounds (5 by default), every round running each engine once
 * in a rotating order, and the figures pool the rounds: throughput is all
 * puts over all their time, p50 and p99 are of all puts' latencies.  Each
 * engine runs in a child process per round (its threads and caches its
 * own), on a fresh database that the child opens before its clock starts
 * and removes after it stops.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const int dur_threads[DUR_COUNTS] = {1, 4, 32};

typedef struct dur_arg {
    const kv_engine *e;
    int t;
    uint64_t n;
    uint32_t *lat;   /* n latencies (ns) */
} dur_arg;

static void *dur_writer(void *p)
{
    dur_arg *a = p;
    char k[17];
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t x = (uint64_t)a->t * a->n + i;
        key_of(x, k);
        double t0 = now_s();
        a->e->put(a->e->ctx, k, value_of(x));
        double d = (now_s() - t0) * 1e9;
        a->lat[i] = d > 4e9 ? 4000000000u : (uint32_t)d;
    }
    return NULL;
}

/* What the children write and the parent pools: per engine and thread
 * count, every put's latency and the seconds their rounds took. */
typedef struct dur_shared {
    double secs[NENGINES][DUR_COUNTS];
    uint64_t n[NENGINES][DUR_COUNTS];   /* latencies written so far */
    uint32_t lat[];                     /* [engine][count][cap] */
} dur_shared;

static uint32_t *lat_of(dur_shared *s, uint64_t cap, int e, int c)
{
    return s->lat + ((uint64_t)e * DUR_COUNTS + (uint64_t)c) * cap;
}

/* One engine's round, in its own process: per thread count, per_thread
 * puts from each thread on a fresh database. */
static void one_round(dur_shared *s, uint64_t cap, int col, uint64_t round_puts)
{
    for (int c = 0; c < DUR_COUNTS; c++) {
        int threads = dur_threads[c];
        uint64_t per = round_puts / (uint64_t)threads;
        if (per < 16)
            per = 16;
        if (s->n[col][c] + per * (uint64_t)threads > cap)
            die("durable puts", "more latencies than the buffer holds");
        char path[700];
        snprintf(path, sizeof path, "%s/dur-%s", dir, engine_names[col]);
        kv_engine e = engine_open[col](path, true, true);
        pthread_t th[32];
        dur_arg a[32];
        uint32_t *out = lat_of(s, cap, col, c) + s->n[col][c];
        double t = now_s();
        for (int i = 0; i < threads; i++) {
            a[i] = (dur_arg){&e, i, per, out + per * (uint64_t)i};
            if (pthread_create(&th[i], NULL, dur_writer, &a[i]))
                die("pthread_create", NULL);
        }
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        s->secs[col][c] += now_s() - t;
        s->n[col][c] += per * (uint64_t)threads;
        e.close(e.ctx);
        rm_rf(path);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void durable_bench(int engines, int rounds, uint64_t total, dur_figure out[NENGINES][DUR_COUNTS])
{
    if (rounds < 1)
        rounds = 1;
    uint64_t round_puts = total / (uint64_t)rounds;
    /* Room for every round's puts at the largest per-thread floor. */
    uint64_t cap = (uint64_t)rounds * (round_puts + 32 * 16);
    size_t bytes = sizeof(dur_shared) + (size_t)NENGINES * DUR_COUNTS * cap * sizeof(uint32_t);
    dur_shared *s = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        die("mmap", "durable puts");
    memset(s, 0, sizeof *s);
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < engines; k++) {
            int col = (r + k) % engines;   /* each engine first in turn */
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0)
                die("fork", NULL);
            if (pid == 0) {
                one_round(s, cap, col, round_puts);
                _exit(0);
            }
            int st;
            if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                die(engine_names[col], "its durable-put round failed (see above)");
        }
    for (int e = 0; e < engines; e++)
        for (int c = 0; c < DUR_COUNTS; c++) {
            uint64_t n = s->n[e][c];
            uint32_t *l = lat_of(s, cap, e, c);
            qsort(l, n, sizeof *l, cmp_u32);
            out[e][c].threads = dur_threads[c];
            out[e][c].puts = n;
            out[e][c].ops = s->secs[e][c] > 0 ? (double)n / s->secs[e][c] : 0;
            out[e][c].p50_us = n ? l[n / 2] / 1000.0 : 0;
            out[e][c].p99_us = n ? l[(n * 99) / 100] / 1000.0 : 0;
        }
    munmap(s, bytes);
}
