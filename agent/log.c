/* log.c -- see log.h. */
#include "log.h"
#include "journal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_level = LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};

void log_set_level(int level)
{
    g_level = level;
}

static void vlog(int level, const char *split, const char *step, double duration_ms,
                 const log_field *f, size_t nf, const char *fmt, va_list ap)
{
    if (level < g_level || level < 0 || level > 3)
        return;
    char msg[2048], now[40];
    vsnprintf(msg, sizeof msg, fmt, ap);
    journal_now(now, sizeof now);
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(now));
    json_object_set_new(o, "level", json_string(names[level]));
    json_object_set_new(o, "msg", json_string(msg));
    if (split)
        json_object_set_new(o, "split", json_string(split));
    if (step)
        json_object_set_new(o, "step", json_string(step));
    if (duration_ms >= 0)
        json_object_set_new(o, "duration_ms", json_real(duration_ms));
    for (size_t i = 0; i < nf; i++)
        json_object_set_new(o, f[i].key, f[i].is_num ? json_integer((json_int_t)f[i].num)
                                                     : json_string(f[i].str ? f[i].str : ""));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    char *buf = malloc(n + 2);
    if (buf) {
        memcpy(buf, line, n);
        buf[n] = '\n';
        ssize_t w = write(STDERR_FILENO, buf, n + 1);
        (void)w;
        free(buf);
    }
    free(line);
}

void log_msg(int level, const char *split, const char *step, double duration_ms,
             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, split, step, duration_ms, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_fields(int level, const char *split, const char *step, double duration_ms,
                const log_field *f, size_t nf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, split, step, duration_ms, f, nf, fmt, ap);
    va_end(ap);
}
