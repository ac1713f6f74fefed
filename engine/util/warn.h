/*
 * warn.h -- warnings from inside libshale: things that are not errors of
 * the call that notices them but that an operator must see (credentials
 * over plain http to a non-loopback host, a credential refresh failing
 * while the old credentials still hold).  They go to the handler set with
 * shale_set_warning_handler() (shale_objstore.h), by default one line
 * "shale: warning: ..." on stderr.  Messages never carry secrets.
 */
#ifndef SHALE_WARN_H
#define SHALE_WARN_H

#include "util/status_int.h"

/* Formats and delivers one warning (at most 1 KiB).  Thread-safe. */
void shale_warn(const char *fmt, ...) SHALE_PRINTF(1, 2);

#endif
