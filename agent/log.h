/*
 * log.h -- the agent's log: one JSON object per line on stderr (time, level,
 * msg, and split/step/duration_ms when given).  Lines are built with
 * jansson and written with one write(2), so threads never interleave.
 * Secrets are never passed in: callers log URIs and names, not tokens.
 */
#ifndef SHALE_AGENT_LOG_H
#define SHALE_AGENT_LOG_H

#include <stddef.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(int level);
/* split, step may be NULL; duration_ms < 0 means none. */
void log_msg(int level, const char *split, const char *step, double duration_ms,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Extra typed fields of a line ("result", "retries", "error", ...).  Built
 * with LOG_S / LOG_N; strings are borrowed for the call. */
typedef struct log_field {
    const char *key;
    const char *str;         /* a string field (NULL logs "") */
    long long num;           /* a number field */
    int is_num;
} log_field;
#define LOG_S(k, v) ((log_field){(k), (v), 0, 0})
#define LOG_N(k, v) ((log_field){(k), NULL, (long long)(v), 1})

/* log_msg with nf extra fields after split/step/duration_ms. */
void log_fields(int level, const char *split, const char *step, double duration_ms,
                const log_field *f, size_t nf, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#define LOGI(...) log_msg(LOG_INFO, NULL, NULL, -1, __VA_ARGS__)
#define LOGW(...) log_msg(LOG_WARN, NULL, NULL, -1, __VA_ARGS__)
#define LOGE(...) log_msg(LOG_ERROR, NULL, NULL, -1, __VA_ARGS__)

#endif
