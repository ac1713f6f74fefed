/* misc.c -- see misc.h. */
#include "util/misc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(uint32_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* getrandom cannot fail on Linux >= 3.17 once seeded; fall back
             * to a weak source rather than abort. */
            for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)rand();
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void ulid_new(char out[27])
{
    uint64_t t = (uint64_t)now_ms();
    uint8_t rnd[10];
    random_bytes(rnd, sizeof rnd);
    /* 48-bit time -> 10 chars, 80-bit randomness -> 16 chars. */
    for (int i = 9; i >= 0; i--) {
        out[i] = crockford[t & 31];
        t >>= 5;
    }
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++) hi = hi << 8 | rnd[i];
    for (int i = 5; i < 10; i++) lo = lo << 8 | rnd[i];
    for (int i = 17; i >= 10; i--) { out[i] = crockford[hi & 31]; hi >>= 5; }
    for (int i = 25; i >= 18; i--) { out[i] = crockford[lo & 31]; lo >>= 5; }
    out[26] = '\0';
}

int64_t ulid_time_ms(const char *ulid)
{
    int64_t t = 0;
    for (int i = 0; i < 10; i++) {
        const char *p = ulid[i] ? strchr(crockford, ulid[i]) : NULL;
        if (!p)
            return -1;
        t = t << 5 | (p - crockford);
    }
    return t;
}

void uuid_new(char out[37])
{
    uint8_t b[16];
    random_bytes(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}
