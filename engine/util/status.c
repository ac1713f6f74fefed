/*
 * status.c -- shale_strerror() and the thread-local last-error message.
 *
 * shale_err() is how every module reports a failure: it formats the detail
 * into this thread's buffer and returns the code, so a failure site reads
 * `return shale_err(SHALE_CORRUPT, "%s: bad footer at %llu", key, off);`.
 * shale_err() is the engine's short name for the public shale_error_set()
 * (status_int.h), which programs that wrap engine calls use for their own
 * messages in the same slot.
 */
#include "util/status_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char errbuf[1024];

const char *shale_strerror(shale_status rc)
{
    switch (rc) {
    case SHALE_OK: return "ok";
    case SHALE_NOT_FOUND: return "not found";
    case SHALE_PRECONDITION_FAILED: return "precondition failed";
    case SHALE_FENCED: return "fenced";
    case SHALE_RETRYABLE: return "throttled or retryable";
    case SHALE_TIMEOUT: return "timeout";
    case SHALE_IO: return "I/O error";
    case SHALE_CORRUPT: return "corrupt";
    case SHALE_INVALID_ARGUMENT: return "invalid argument";
    case SHALE_NO_MEMORY: return "out of memory";
    case SHALE_UNAUTHORIZED: return "unauthorized";
    case SHALE_CONFLICT: return "conflict";
    case SHALE_UNSUPPORTED: return "unsupported";
    case SHALE_CLOSED: return "closed";
    }
    return "unknown status";
}

const char *shale_errmsg(void)
{
    return errbuf;
}

void shale_free(void *p)
{
    free(p);
}

/* Formatted aside first: an argument may be shale_errmsg() itself (a
 * caller rewording the error it got), which vsnprintf must not read while
 * it writes the same buffer. */
static void set_v(const char *fmt, va_list ap)
{
    char tmp[sizeof errbuf];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    memcpy(errbuf, tmp, sizeof errbuf);
}

/* "<prefix>: <old>", the old message copied aside before the slot is
 * written (the prefix's arguments may point into it too). */
static void prefix_v(const char *fmt, va_list ap)
{
    char prefix[512], old[sizeof errbuf];
    memcpy(old, errbuf, sizeof old);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    size_t n = strlen(prefix);
    if (n > sizeof errbuf - 3)
        n = sizeof errbuf - 3;
    memcpy(errbuf, prefix, n);
    memcpy(errbuf + n, ": ", 2);
    size_t rest = sizeof errbuf - n - 3;
    size_t m = strnlen(old, rest);
    memcpy(errbuf + n + 2, old, m);
    errbuf[n + 2 + m] = '\0';
}

shale_status shale_error_set(shale_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_v(fmt, ap);
    va_end(ap);
    return code;
}

shale_status shale_error_prefix(shale_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    prefix_v(fmt, ap);
    va_end(ap);
    return code;
}

void shale_error_clear(void)
{
    errbuf[0] = '\0';
}
