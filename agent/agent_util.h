/*
 * agent_util.h -- the few helpers shale-agent needs that are not the
 * engine's business: a strdup, clocks, a sleep, random bytes, a growable
 * buffer, and the out-of-memory report.
 *
 * The agent is a program on the engine's public API (it builds with
 * -Iengine/include only, docs/library.md): the engine's own util/ helpers
 * are hidden inside libshale, so the agent keeps these small ones of its
 * own.  Errors go to the engine's per-thread message slot through the
 * public shale_error_set(), so an engine failure and the agent's context
 * read as one message (shale_errmsg()).
 *
 * Thread safety: every function is reentrant; an agent_buf belongs to one
 * thread at a time.
 */
#ifndef SHALE_AGENT_UTIL_H
#define SHALE_AGENT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"

/* Allocation failure is reported (SHALE_NO_MEMORY naming the place), never
 * fatal. */
#define AGENT_OOM() \
    shale_error_set(SHALE_NO_MEMORY, "out of memory at %s:%d", __FILE__, __LINE__)

/* A malloc'd copy of s; NULL when s is NULL or memory is short (callers
 * report AGENT_OOM() when s was not NULL).  Free with free(). */
char *agent_strdup(const char *s);

/* Wall-clock milliseconds since the epoch (timestamps people read). */
int64_t agent_now_ms(void);
/* Monotonic milliseconds (timeouts, intervals, backoff). */
int64_t agent_mono_ms(void);
/* Sleeps ms milliseconds, resumed after signals (backoff only: never
 * used to wait for another thread). */
void agent_sleep_ms(uint32_t ms);
/* n random bytes from the kernel (getrandom). */
void agent_random_bytes(void *out, size_t n);

/* A growable byte buffer.  An append that fails (overflow, no memory)
 * leaves the buffer as it was and returns SHALE_NO_MEMORY. */
typedef struct agent_buf {
    uint8_t *data;   /* malloc'd, or NULL while empty */
    size_t len;
    size_t cap;
} agent_buf;

#define AGENT_BUF_INIT {NULL, 0, 0}

shale_status agent_buf_append(agent_buf *b, const void *p, size_t n);
shale_status agent_buf_append_u8(agent_buf *b, uint8_t v);
void agent_buf_reset(agent_buf *b);      /* len = 0, keeps the memory */
void agent_buf_free(agent_buf *b);       /* frees, back to AGENT_BUF_INIT */
/* Hands the bytes to the caller (malloc'd, never NULL unless out of
 * memory; free()), *len their count (len may be NULL); b is empty after. */
uint8_t *agent_buf_detach(agent_buf *b, size_t *len);

#endif
