/* metrics.c -- see metrics.h. */
#include "metrics.h"
#include "split_state.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_extra_mu = PTHREAD_MUTEX_INITIALIZER;
static char *(*g_extra)(void *ctx);
static void *g_extra_ctx;

void metrics_set_extra(char *(*render)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&g_extra_mu);
    g_extra = render;
    g_extra_ctx = ctx;
    pthread_mutex_unlock(&g_extra_mu);
}

static const double buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                                 600};
#define NB (sizeof buckets / sizeof *buckets)

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_counts[STEP_COUNT][NB + 1];
static double g_sums[STEP_COUNT];
static uint64_t g_totals[STEP_COUNT];

void metrics_observe_step(void *ctx, const char *step, double seconds)
{
    (void)ctx;
    for (int s = 0; s < STEP_COUNT; s++) {
        if (strcmp(step, split_step_name((split_step)s)))
            continue;
        pthread_mutex_lock(&g_mu);
        size_t b = 0;
        while (b < NB && seconds > buckets[b])
            b++;
        g_counts[s][b]++;
        g_sums[s] += seconds;
        g_totals[s]++;
        pthread_mutex_unlock(&g_mu);
        return;
    }
}

static void put(agent_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(agent_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        agent_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

char *metrics_render(splitter *sp)
{
    agent_buf b = AGENT_BUF_INIT;
    splitter_stats st;
    memset(&st, 0, sizeof st);
    if (sp)
        splitter_get_stats(sp, &st);
    put(&b, "# HELP shale_splits_total Splits finished, by result.\n");
    put(&b, "# TYPE shale_splits_total counter\n");
    put(&b, "shale_splits_total{result=\"complete\"} %llu\n", (unsigned long long)st.completed);
    put(&b, "shale_splits_total{result=\"failed\"} %llu\n", (unsigned long long)st.failed);
    put(&b, "shale_splits_total{result=\"aborted\"} %llu\n", (unsigned long long)st.aborted);
    put(&b, "# HELP shale_split_bytes_copied_total Bytes copied by splits (WAL SSTs only).\n");
    put(&b, "# TYPE shale_split_bytes_copied_total counter\n");
    put(&b, "shale_split_bytes_copied_total %llu\n", (unsigned long long)st.bytes_copied);
    put(&b, "# HELP shale_split_objects_copied_total Objects copied by splits.\n");
    put(&b, "# TYPE shale_split_objects_copied_total counter\n");
    put(&b, "shale_split_objects_copied_total %llu\n", (unsigned long long)st.objects_copied);
    put(&b, "# HELP shale_split_retries_total Failed split step attempts that were retried.\n");
    put(&b, "# TYPE shale_split_retries_total counter\n");
    put(&b, "shale_split_retries_total %llu\n", (unsigned long long)st.retries);
    put(&b, "# HELP shale_split_stalled Splits past the point of no return whose step keeps "
            "failing (phase Stalled).\n");
    put(&b, "# TYPE shale_split_stalled gauge\n");
    put(&b, "shale_split_stalled %llu\n", (unsigned long long)st.stalled);
    put(&b, "# HELP shale_split_refused_total Split requests refused after validation (the "
            "lease is held, journals block new splits or cannot be read yet).\n");
    put(&b, "# TYPE shale_split_refused_total counter\n");
    put(&b, "shale_split_refused_total %llu\n", (unsigned long long)st.refused);
    put(&b, "# HELP shale_split_journals Split journals that could not be used, by state.\n");
    put(&b, "# TYPE shale_split_journals gauge\n");
    put(&b, "shale_split_journals{state=\"unreadable\"} %llu\n",
        (unsigned long long)st.journals_unreadable);
    put(&b, "shale_split_journals{state=\"corrupt\"} %llu\n",
        (unsigned long long)st.journals_corrupt);
    put(&b, "# HELP shale_split_step_seconds Duration of split steps.\n");
    put(&b, "# TYPE shale_split_step_seconds histogram\n");
    pthread_mutex_lock(&g_mu);
    for (int s = 0; s < STEP_COUNT; s++) {
        uint64_t cum = 0;
        const char *name = split_step_name((split_step)s);
        for (size_t i = 0; i < NB; i++) {
            cum += g_counts[s][i];
            put(&b, "shale_split_step_seconds_bucket{step=\"%s\",le=\"%g\"} %llu\n", name,
                buckets[i], (unsigned long long)cum);
        }
        cum += g_counts[s][NB];
        put(&b, "shale_split_step_seconds_bucket{step=\"%s\",le=\"+Inf\"} %llu\n", name,
            (unsigned long long)cum);
        put(&b, "shale_split_step_seconds_sum{step=\"%s\"} %.6f\n", name, g_sums[s]);
        put(&b, "shale_split_step_seconds_count{step=\"%s\"} %llu\n", name,
            (unsigned long long)g_totals[s]);
    }
    pthread_mutex_unlock(&g_mu);
    shale_objstats os;
    shale_objstore_global_stats(&os);
    put(&b, "# HELP shale_objectstore_requests_total Object-store requests by operation "
            "and result.\n");
    put(&b, "# TYPE shale_objectstore_requests_total counter\n");
    for (int op = 0; op < SHALE_OP_COUNT; op++)
        for (int r = 0; r < 2; r++)
            put(&b, "shale_objectstore_requests_total{op=\"%s\",result=\"%s\"} %llu\n",
                shale_objop_name((shale_objop)op), r ? "error" : "ok",
                (unsigned long long)os.requests[op][r]);
    put(&b, "# HELP shale_objectstore_retries_total Object-store retries.\n");
    put(&b, "# TYPE shale_objectstore_retries_total counter\n");
    put(&b, "shale_objectstore_retries_total %llu\n", (unsigned long long)os.retries);
    pthread_mutex_lock(&g_extra_mu);
    char *extra = g_extra ? g_extra(g_extra_ctx) : NULL;
    pthread_mutex_unlock(&g_extra_mu);
    if (extra)
        agent_buf_append(&b, extra, strlen(extra));
    free(extra);
    agent_buf_append_u8(&b, 0);
    return (char *)agent_buf_detach(&b, NULL);
}

char *metrics_render_shard(const shard_gauges *g)
{
    agent_buf b = AGENT_BUF_INIT;
    put(&b, "# HELP shale_shard_facts_ok 1 when the last refresh of the shard's figures "
            "(its SST indexes and split lease) succeeded.\n# TYPE shale_shard_facts_ok "
            "gauge\nshale_shard_facts_ok %d\n", g->ok ? 1 : 0);
    if (g->known) {
        static const struct { const char *name, *help; } m[] = {
            {"shale_shard_bytes", "Stored bytes of the shard's SST data blocks in its range."},
            {"shale_shard_kv_bytes", "Key + value bytes in the shard's SSTs (flushed only)."},
            {"shale_shard_keys", "Approximate entries in the shard's SSTs (flushed only)."},
            {"shale_shard_ssts", "SSTs in the shard's manifest (L0 + sorted runs)."},
            {"shale_shard_l0", "L0 SSTs of the shard."},
            {"shale_shard_sorted_runs", "Sorted runs of the shard."},
            {"shale_shard_data_blocks", "Data blocks counted in shale_shard_bytes."},
            {"shale_shard_manifest_id", "The manifest version the figures come from."},
            {"shale_shard_split_in_progress", "1 while a split holds the shard's split lease."},
            {"shale_shard_facts_age_seconds", "Seconds since the figures were refreshed."},
        };
        double v[] = {(double)g->bytes, (double)g->kv_bytes, (double)g->keys,
                      (double)g->ssts, (double)g->l0, (double)g->sorted_runs,
                      (double)g->data_blocks, (double)g->manifest_id,
                      g->split_in_progress ? 1.0 : 0.0, (double)g->age_ms / 1000.0};
        for (size_t i = 0; i < sizeof m / sizeof *m; i++)
            put(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", m[i].name, m[i].help,
                m[i].name, m[i].name, v[i]);
    }
    agent_buf_append_u8(&b, 0);
    return (char *)agent_buf_detach(&b, NULL);
}
