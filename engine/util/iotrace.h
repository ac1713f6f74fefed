/*
 * iotrace.h -- a diagnostic timeline of the durable-put path and the I/O
 * beside it, for finding what makes the slowest puts slow
 * (docs/benchmarks.md).  Off unless SHALE_IOTRACE names a file: then each
 * event (a kind letter, its thread, start and end on CLOCK_MONOTONIC) is
 * kept in memory and appended to that file when a db closes.  Off, an
 * event costs one relaxed load.
 */
#ifndef SHALE_UTIL_IOTRACE_H
#define SHALE_UTIL_IOTRACE_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC, 0 when tracing is off. */
uint64_t iotrace_now(void);
/* Records event kind from t0 (iotrace_now) to now; nothing when t0 is 0. */
void iotrace_ev(char kind, uint64_t t0);
/* Appends the events kept so far to the file, and forgets them. */
void iotrace_dump(const char *label);

#endif
