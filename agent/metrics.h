/*
 * metrics.h -- the agent's Prometheus metrics (text exposition 0.0.4):
 *   shale_splits_total{result="complete|failed|aborted"}      counter
 *   shale_split_step_seconds{step}                             histogram
 *   shale_split_bytes_copied_total, shale_split_objects_copied_total
 *   shale_objectstore_requests_total{op,result="ok|error"}     counter
 *   shale_objectstore_retries_total                            counter
 *   shale_split_retries_total                                  counter
 *   shale_split_stalled                                        gauge
 *   shale_split_refused_total                                  counter
 *   shale_split_journals{state="unreadable|corrupt"}           gauge
 *   shale_shard_bytes, shale_shard_kv_bytes, shale_shard_keys,
 *   shale_shard_ssts, shale_shard_l0, shale_shard_sorted_runs,
 *   shale_shard_data_blocks, shale_shard_manifest_id,
 *   shale_shard_split_in_progress                              gauges
 *   shale_shard_facts_ok, shale_shard_facts_age_seconds        gauges
 * The shard gauges come from a snapshot the background refresher keeps
 * (http_ready.h), never from a store call made while rendering.
 * Thread-safe: the step histogram takes a mutex; the rest is read from the
 * splitter and the object-store counters when rendered.
 */
#ifndef SHALE_AGENT_METRICS_H
#define SHALE_AGENT_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include "splitter.h"

void metrics_observe_step(void *ctx, const char *step, double seconds);
/* Another part's metrics (the Kubernetes source's), appended to every
 * render: render returns malloc'd exposition text.  One at a time; NULL
 * unregisters (before ctx is freed). */
void metrics_set_extra(char *(*render)(void *ctx), void *ctx);

/* The shard's figures as last refreshed (shard_facts.h). */
typedef struct shard_gauges {
    bool known;                  /* a refresh has succeeded */
    bool ok;                     /* the last refresh succeeded */
    int64_t age_ms;              /* since the last successful refresh */
    uint64_t bytes, kv_bytes, keys, ssts, data_blocks, manifest_id;
    uint32_t l0, sorted_runs;
    bool split_in_progress;
} shard_gauges;

/* The shard gauges as exposition text (malloc'd). */
char *metrics_render_shard(const shard_gauges *g);

/* Renders every metric; malloc'd text. */
char *metrics_render(splitter *sp);

#endif
