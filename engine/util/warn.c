/* warn.c -- see warn.h. */
#include "util/warn.h"
#include "shale_objstore.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static shale_warning_fn g_fn;
static void *g_ud;

void shale_set_warning_handler(shale_warning_fn fn, void *ud)
{
    pthread_mutex_lock(&g_mu);
    g_fn = fn;
    g_ud = ud;
    pthread_mutex_unlock(&g_mu);
}

void shale_warn(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_mu);
    shale_warning_fn fn = g_fn;
    void *ud = g_ud;
    pthread_mutex_unlock(&g_mu);
    if (fn)
        fn(msg, ud);
    else
        fprintf(stderr, "shale: warning: %s\n", msg);
}
