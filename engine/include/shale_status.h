/*
 * shale_status.h -- status codes shared by every Shale call.
 *
 * Every fallible function in libshale returns a shale_status.  SHALE_OK is
 * zero, so `if (rc) goto out;` reads naturally.  "Not found" and
 * "precondition failed" are ordinary results, not crashes: callers are
 * expected to branch on them.
 *
 * Besides the code, the failing call leaves a human-readable message in a
 * thread-local buffer (which object, which call, what the store said), read
 * with shale_errmsg().  The message stays valid until the next failing call
 * on the same thread.
 *
 * Programs that wrap Shale calls (the agent, the CLI, an embedder's own
 * layer) leave their messages in the same slot with shale_error_set() and
 * shale_error_prefix(), so a failure reads as one chain from the engine's
 * detail up to the caller's context ("split s1: cloning child a: <what the
 * store said>") whoever set each part.
 *
 * Thread safety: all functions here are safe to call from any thread.
 */
#ifndef SHALE_STATUS_H
#define SHALE_STATUS_H

#include "shale_export.h"

SHALE_API_BEGIN

/* printf-style argument checking on the error setters below. */
#if defined(__GNUC__) || defined(__clang__)
#define SHALE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SHALE_PRINTF(a, b)
#endif

typedef enum shale_status {
    SHALE_OK = 0,
    SHALE_NOT_FOUND = 1,          /* object, key, checkpoint or database absent */
    SHALE_PRECONDITION_FAILED = 2,/* a conditional write lost: the object exists */
    SHALE_FENCED = 3,             /* a newer writer or compactor took over */
    SHALE_RETRYABLE = 4,          /* throttled or transient; retrying may work */
    SHALE_TIMEOUT = 5,            /* the operation or the store timed out */
    SHALE_IO = 6,                 /* the store or the OS failed */
    SHALE_CORRUPT = 7,            /* stored data failed a check; message names it */
    SHALE_INVALID_ARGUMENT = 8,   /* bad input: key, URI, option, request */
    SHALE_NO_MEMORY = 9,
    SHALE_UNAUTHORIZED = 10,      /* credentials refused (401/403) */
    SHALE_CONFLICT = 11,          /* exists with different arguments, or busy */
    SHALE_UNSUPPORTED = 12,       /* newer format, or a store lacking a feature */
    SHALE_CLOSED = 13             /* handle closed, fenced or in error state */
} shale_status;

#define SHALE_STATUS_COUNT 14

/* Short constant name of a code ("not found", ...).  Never NULL. */
const char *shale_strerror(shale_status rc);

/* Detailed message of the last failure on this thread ("" if none).
 * Borrowed: valid until the next failing Shale call on this thread. */
const char *shale_errmsg(void);

/* Sets this thread's message (printf-style, cut at 1023 bytes) and returns
 * code, so a wrapper reads `return shale_error_set(SHALE_INVALID_ARGUMENT,
 * "split %s: no children", name);`.  The arguments may include
 * shale_errmsg() itself (a caller rewording the message it got): the text
 * is formatted aside before the slot is written.  Only this thread's slot
 * changes; code is returned as given (SHALE_OK included). */
shale_status shale_error_set(shale_status code, const char *fmt, ...) SHALE_PRINTF(2, 3);

/* Puts context in front of this thread's current message: "<fmt>: <old
 * message>" (cut at 1023 bytes, the end of the old message first), and returns
 * code.  For a wrapper that passes on an engine failure with the step it
 * was in: `if (rc) return shale_error_prefix(rc, "cloning child %s", c);`.
 * The arguments may include shale_errmsg(). */
shale_status shale_error_prefix(shale_status code, const char *fmt, ...) SHALE_PRINTF(2, 3);

/* Empties this thread's message (shale_errmsg() returns ""). */
void shale_error_clear(void);

/* Frees memory that a Shale call handed to the caller (values, lists,
 * JSON text).  Accepts NULL. */
void shale_free(void *p);

SHALE_API_END
#endif /* SHALE_STATUS_H */
