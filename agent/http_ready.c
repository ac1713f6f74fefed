/* http_ready.c -- see http_ready.h. */
#include "http_ready.h"
#include "log.h"
#include "shard_facts.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct http_ready {
    split_service *svc;
    uint32_t interval_ms, timeout_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* CLOCK_MONOTONIC */
    bool stop;
    /* The snapshot (under mu). */
    bool answered;               /* at least one check finished */
    bool ok;                     /* the last finished check passed */
    bool checking;
    int64_t check_started_ms;    /* agent_mono_ms() of the running check */
    char reason[512];            /* why the last finished check failed */
    /* The shard figures (under mu; refreshed by facts_thread). */
    splitter *sp;
    pthread_t facts_thread;
    bool facts_started;
    shard_gauges gauges;
    int64_t facts_ms;            /* agent_mono_ms() of the last successful refresh */
    bool facts_failing;          /* logged once per failing stretch */
};

static void wait_ms_locked(http_ready *r, uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static void *loop(void *arg)
{
    http_ready *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        r->checking = true;
        r->check_started_ms = agent_mono_ms();
        pthread_mutex_unlock(&r->mu);
        shale_error_clear();
        bool ok = r->svc->ops->ready(r->svc);
        char why[sizeof r->reason];
        const char *msg = shale_errmsg();
        snprintf(why, sizeof why, "the shard's store did not answer: %s",
                 msg && *msg ? msg : "its check failed");
        pthread_mutex_lock(&r->mu);
        if (ok != r->ok || !r->answered) {
            if (ok)
                LOGI("ready: the shard's store answers");
            else
                LOGW("not ready: %s", why);
        }
        r->checking = false;
        r->answered = true;
        r->ok = ok;
        memcpy(r->reason, why, sizeof why);
        pthread_cond_broadcast(&r->cv);
        if (!r->stop)
            wait_ms_locked(r, r->interval_ms);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Refreshes the shard figures every interval, off every request path. */
static void *facts_loop(void *arg)
{
    http_ready *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mu);
        shard_facts f;
        shale_status rc = shard_facts_read(r->sp, &f);
        char why[512] = "";
        if (rc)
            snprintf(why, sizeof why, "%s", shale_errmsg());
        pthread_mutex_lock(&r->mu);
        if (!rc) {
            shard_gauges *g = &r->gauges;
            g->known = g->ok = true;
            g->bytes = f.info.bytes;
            g->kv_bytes = f.info.kv_bytes;
            g->keys = f.info.approx_keys;
            g->ssts = f.info.sst_count;
            g->data_blocks = f.info.data_blocks;
            g->manifest_id = f.info.manifest_id;
            g->l0 = f.info.l0_count;
            g->sorted_runs = f.info.sorted_run_count;
            g->split_in_progress = f.split_held;
            r->facts_ms = agent_mono_ms();
            shard_facts_clear(&f);
            if (r->facts_failing)
                LOGI("shard figures refreshed again");
            r->facts_failing = false;
        } else {
            r->gauges.ok = false;
            if (!r->facts_failing)
                LOGW("cannot refresh the shard's figures (shale_shard_* gauges keep the last "
                     "ones; shale_shard_facts_ok 0): %s", why);
            r->facts_failing = true;
        }
        if (!r->stop)
            wait_ms_locked(r, r->interval_ms);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

void http_ready_shard(http_ready *r, shard_gauges *g)
{
    pthread_mutex_lock(&r->mu);
    *g = r->gauges;
    g->age_ms = g->known ? agent_mono_ms() - r->facts_ms : 0;
    pthread_mutex_unlock(&r->mu);
}

shale_status http_ready_start(split_service *svc, splitter *sp, uint32_t interval_ms,
                              uint32_t timeout_ms, http_ready **out)
{
    *out = NULL;
    http_ready *r = calloc(1, sizeof *r);
    if (!r)
        return AGENT_OOM();
    r->svc = svc;
    r->interval_ms = interval_ms ? interval_ms : 1000;
    r->timeout_ms = timeout_ms ? timeout_ms : 3000;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    if (pthread_create(&r->thread, NULL, loop, r)) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return shale_error_set(SHALE_IO, "http: cannot start the readiness checker");
    }
    r->sp = sp;
    if (sp && !pthread_create(&r->facts_thread, NULL, facts_loop, r))
        r->facts_started = true;
    else if (sp)
        LOGW("http: cannot start the shard figures refresher: no shale_shard_* gauges");
    /* Bounded wait for the first answer (a hung store does not hold up
     * the start beyond the timeout; /readyz then says why). */
    int64_t deadline = agent_mono_ms() + r->timeout_ms;
    pthread_mutex_lock(&r->mu);
    while (!r->answered && agent_mono_ms() < deadline)
        wait_ms_locked(r,
                       (uint32_t)(deadline - agent_mono_ms() > 0 ? deadline - agent_mono_ms() : 1));
    pthread_mutex_unlock(&r->mu);
    *out = r;
    return SHALE_OK;
}

bool http_ready_get(http_ready *r, char *why, size_t n)
{
    if (n)
        why[0] = '\0';
    pthread_mutex_lock(&r->mu);
    int64_t running = r->checking ? agent_mono_ms() - r->check_started_ms : 0;
    bool ready = false;
    if (r->checking && running > (int64_t)r->timeout_ms)
        snprintf(why, n, "the shard's store has not answered a check for %lld ms (limit "
                         "%u ms: 'sources.http.readyTimeoutMs')", (long long)running,
                 r->timeout_ms);
    else if (!r->answered)
        snprintf(why, n, "starting: the first check of the shard's store is running");
    else if (!r->ok)
        snprintf(why, n, "%s", r->reason);
    else
        ready = true;
    pthread_mutex_unlock(&r->mu);
    return ready;
}

void http_ready_stop(http_ready *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    if (r->facts_started)
        pthread_join(r->facts_thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
