/* agent_util.c -- see agent_util.h. */
#include "agent_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

char *agent_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t agent_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t agent_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

void agent_sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void agent_random_bytes(void *out, size_t n)
{
    uint8_t *p = out;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            /* Not reached on Linux >= 3.17; the bytes name Kubernetes
             * events, so a weak fill beats stopping the agent. */
            for (; n > 0; n--)
                *p++ = (uint8_t)rand();
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

shale_status agent_buf_append(agent_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return SHALE_OK;
    if (n > SIZE_MAX / 2 - b->len)
        return AGENT_OOM();
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d)
            return AGENT_OOM();
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return SHALE_OK;
}

shale_status agent_buf_append_u8(agent_buf *b, uint8_t v)
{
    return agent_buf_append(b, &v, 1);
}

void agent_buf_reset(agent_buf *b)
{
    b->len = 0;
}

void agent_buf_free(agent_buf *b)
{
    free(b->data);
    *b = (agent_buf)AGENT_BUF_INIT;
}

uint8_t *agent_buf_detach(agent_buf *b, size_t *len)
{
    uint8_t *p = b->data ? b->data : malloc(1);
    if (len)
        *len = b->len;
    *b = (agent_buf)AGENT_BUF_INIT;
    return p;
}
