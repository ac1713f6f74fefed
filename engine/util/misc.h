/*
 * misc.h -- clocks, random identifiers (ULID, UUID) and small helpers.
 */
#ifndef SHALE_MISC_H
#define SHALE_MISC_H

#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"

/* Wall-clock milliseconds since the epoch. */
int64_t now_ms(void);
/* Monotonic milliseconds (for timeouts and intervals). */
int64_t mono_ms(void);
/* Sleeps ms milliseconds (used for backoff and injected latency only). */
void sleep_ms(uint32_t ms);

/* Fills buf with n random bytes (getrandom). */
void random_bytes(void *buf, size_t n);

/* A new ULID (26 Crockford base32 chars + NUL): time-ordered, unique. */
void ulid_new(char out[27]);
/* Millisecond timestamp encoded in a ULID; -1 if malformed. */
int64_t ulid_time_ms(const char *ulid);

/* A new random UUID v4 in canonical text form (36 chars + NUL). */
void uuid_new(char out[37]);

/* strdup that reports failure with SHALE_NO_MEMORY via *rc (may be NULL). */
char *xstrdup(const char *s);

#endif
