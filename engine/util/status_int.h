/*
 * status_int.h -- reporting failures inside libshale.
 */
#ifndef SHALE_STATUS_INT_H
#define SHALE_STATUS_INT_H

#include "shale_status.h"

#if defined(__GNUC__)
#define SHALE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SHALE_PRINTF(a, b)
#endif

/* Sets this thread's message (printf-style) and returns rc. */
shale_status shale_err(shale_status rc, const char *fmt, ...) SHALE_PRINTF(2, 3);
/* Prepends context ("opening manifest/...: ") to the current message. */
shale_status shale_err_prefix(shale_status rc, const char *fmt, ...) SHALE_PRINTF(2, 3);
void shale_err_clear(void);

/* Allocation failure is reported, never fatal. */
#define SHALE_OOM() shale_err(SHALE_NO_MEMORY, "out of memory at %s:%d", __FILE__, __LINE__)

#endif
