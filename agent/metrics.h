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
 * Thread-safe: the step histogram takes a mutex; the rest is read from the
 * splitter and the object-store counters when rendered.
 */
#ifndef SHALE_AGENT_METRICS_H
#define SHALE_AGENT_METRICS_H

#include "splitter.h"

void metrics_observe_step(void *ctx, const char *step, double seconds);
/* Another part's metrics (the Kubernetes source's), appended to every
 * render: render returns malloc'd exposition text.  One at a time; NULL
 * unregisters (before ctx is freed). */
void metrics_set_extra(char *(*render)(void *ctx), void *ctx);

/* Renders every metric; malloc'd text. */
char *metrics_render(splitter *sp);

#endif
