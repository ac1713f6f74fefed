/*
 * status_int.h -- reporting failures inside libshale.
 */
#ifndef SHALE_STATUS_INT_H
#define SHALE_STATUS_INT_H

#include "shale_status.h"

/* The engine's short names for the public setters (shale_status.h): the
 * same functions, the same per-thread slot that shale_errmsg() reads.
 *   shale_err(rc, fmt, ...)         sets the message, returns rc
 *   shale_err_prefix(rc, fmt, ...)  "<fmt>: <current message>", returns rc
 *   shale_err_clear()               empties it */
#define shale_err shale_error_set
#define shale_err_prefix shale_error_prefix
#define shale_err_clear shale_error_clear

/* Allocation failure is reported, never fatal. */
#define SHALE_OOM() shale_err(SHALE_NO_MEMORY, "out of memory at %s:%d", __FILE__, __LINE__)

#endif
