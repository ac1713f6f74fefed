/*
 * iotrace.c -- the diagnostic timeline (iotrace.h).
 */
#include "util/iotrace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAXEV (1u << 20)

typedef struct ev {
    uint64_t t0, t1;
    int tid;
    char kind;
} ev;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static _Atomic int g_on;
static const char *g_path;
static ev *g_ev;
static _Atomic uint32_t g_n;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void init(void)
{
    g_path = getenv("SHALE_IOTRACE");
    if (g_path && *g_path && (g_ev = calloc(MAXEV, sizeof *g_ev)))
        atomic_store(&g_on, 1);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t iotrace_now(void)
{
    pthread_once(&g_once, init);
    return atomic_load_explicit(&g_on, memory_order_relaxed) ? mono_ns() : 0;
}

void iotrace_ev(char kind, uint64_t t0)
{
    if (!t0)
        return;
    uint64_t t1 = mono_ns();
    uint32_t i = atomic_fetch_add(&g_n, 1);
    if (i >= MAXEV)
        return;
    static _Thread_local int tid;
    if (!tid)
        tid = (int)syscall(SYS_gettid);
    g_ev[i] = (ev){t0, t1, tid, kind};
}

void iotrace_dump(const char *label)
{
    pthread_once(&g_once, init);
    if (!atomic_load(&g_on))
        return;
    pthread_mutex_lock(&g_mu);
    uint32_t n = atomic_exchange(&g_n, 0);
    if (n > MAXEV)
        n = MAXEV;
    FILE *f = fopen(g_path, "a");
    if (f) {
        fprintf(f, "# %s %u\n", label ? label : "", n);
        for (uint32_t i = 0; i < n; i++)
            fprintf(f, "%c %d %llu %llu\n", g_ev[i].kind, g_ev[i].tid,
                    (unsigned long long)g_ev[i].t0, (unsigned long long)g_ev[i].t1);
        fclose(f);
    }
    pthread_mutex_unlock(&g_mu);
}
