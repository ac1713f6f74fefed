/*
 * objstore_fault.c -- a store that forwards to another and fails calls by
 * rule (SQLite's test6.c and LevelDB's fault_injection_test in spirit).
 *
 * Rules are checked in the order added; the first that matches a call (op
 * in its mask, key starting with its prefix, and, with nth, being the nth
 * such call) acts: optional latency, then either the injected status
 * instead of the call, or -- with after_effect -- the real call followed by
 * the injected status (the write happened, the caller saw an error).  A
 * rule with a count retires after acting that many times.  All state is
 * under one mutex; latency sleeps outside it.
 */
#include "objstore/objstore_fault.h"
#include "objstore/objstore_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* SHALE_FAULT_TRACE=<file>: every call through a fault store is appended
 * to the file as "start_us end_us thread op store key" (monotonic
 * microseconds), to find a split's chain of sequential requests
 * (bench/bench_latency.c, docs/benchmarks.md).  Off unless set. */
static FILE *trace_fp;
static void trace_open(void)
{
    const char *p = getenv("SHALE_FAULT_TRACE");
    if (p && *p && (trace_fp = fopen(p, "a")))
        setvbuf(trace_fp, NULL, _IOLBF, 0);
}
static FILE *trace_file(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, trace_open);
    return trace_fp;
}
/* The injected latency runs to an absolute deadline from the call's entry
 * (clock_nanosleep TIMER_ABSTIME), not for a relative time from after
 * decide(): with 32-128 calls entering at once, the wait for decide()'s
 * mutex and the thread's scheduling before its sleep began otherwise
 * added to the latency, so a wide phase's slowest request ran late in
 * proportion to its width -- a cost of the wrapper, not of the store it
 * models (a bench-fidelity fix: docs/benchmarks.md, 2026-12-02). */
static struct timespec deadline_after(const struct timespec *t0, uint32_t ms)
{
    struct timespec d = *t0;
    d.tv_sec += ms / 1000;
    d.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (d.tv_nsec >= 1000000000L) {
        d.tv_sec++;
        d.tv_nsec -= 1000000000L;
    }
    return d;
}
static void sleep_until(const struct timespec *d)
{
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, d, NULL) == EINTR)
        ;
}

static int64_t trace_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static void trace_call(const shale_objstore *s, shale_objop op, const char *key, int64_t t0)
{
    FILE *f = trace_file();
    if (f)
        fprintf(f, "%lld %lld %lu %s %s %s\n", (long long)t0, (long long)trace_us(),
                (unsigned long)pthread_self(), shale_objop_name(op), s->uri ? s->uri : "-",
                key && *key ? key : "-");
}

typedef struct rule {
    shale_fault_rule r;
    char *prefix;
    uint64_t seen;          /* matching calls so far */
    uint64_t acted;
    bool unconditional;     /* "unconditional" (parse only): a put_if_absent it
                               acts on is made as a plain put */
} rule;

struct shale_fault {
    pthread_mutex_t mu;
    rule *rules;
    size_t count, cap;
    uint64_t calls, injected;
};

typedef struct fault_store {
    shale_objstore base;
    shale_objstore *inner;
    shale_fault ctl;
} fault_store;

/* Decides what to do with a call.  Returns true and fills the action when
 * a rule acts. */
static bool decide(shale_fault *f, shale_objop op, const char *key, shale_status *status,
                   bool *after, uint32_t *latency, bool *uncond)
{
    bool act = false;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    for (size_t i = 0; i < f->count && !act; i++) {
        rule *r = &f->rules[i];
        if (r->r.ops && !(r->r.ops & SHALE_FAULT_OP(op)))
            continue;
        if (r->prefix && strncmp(key ? key : "", r->prefix, strlen(r->prefix)))
            continue;
        uint64_t limit = r->r.count ? r->r.count : (r->r.nth ? 1 : 0);
        if (limit && r->acted >= limit)
            continue;
        r->seen++;
        if (r->r.nth && r->seen < r->r.nth)
            continue;
        if (r->r.every && r->seen % r->r.every)
            continue;
        r->acted++;
        act = true;
        *status = r->r.status;
        *after = r->r.after_effect;
        *latency = r->r.latency_ms;
        *uncond = r->unconditional;
        if (*status != SHALE_OK)
            f->injected++;
    }
    pthread_mutex_unlock(&f->mu);
    return act;
}

#define FAULT_CALL(op, key, call)                                                          \
    do {                                                                                   \
        fault_store *fs = (fault_store *)s;                                                \
        shale_status st = SHALE_OK;                                                        \
        bool after = false;                                                                \
        uint32_t lat = 0;                                                                  \
        bool uncond_ = false;                                                              \
        struct timespec entry_;                                                            \
        clock_gettime(CLOCK_MONOTONIC, &entry_);                                           \
        int64_t t0_ = trace_file() ? (int64_t)entry_.tv_sec * 1000000 +                    \
                                         entry_.tv_nsec / 1000 : 0;                        \
        bool act = decide(&fs->ctl, op, key, &st, &after, &lat, &uncond_);                 \
        (void)uncond_;                                                                     \
        if (lat) {                                                                         \
            struct timespec d_ = deadline_after(&entry_, lat);                             \
            sleep_until(&d_);                                                              \
        }                                                                                  \
        if (act && st != SHALE_OK && !after)                                               \
            return shale_err(st, "%s: injected %s on %s %s", s->uri ? s->uri : "fault",     \
                             shale_strerror(st), shale_objop_name(op), key ? key : "");    \
        shale_status rc = (call);                                                          \
        if (t0_)                                                                           \
            trace_call(s, op, key, t0_);                                                   \
        if (act && st != SHALE_OK && after && rc == SHALE_OK)                              \
            return shale_err(st, "%s: injected %s after %s %s took effect",                \
                             s->uri ? s->uri : "fault", shale_strerror(st),                \
                             shale_objop_name(op), key ? key : "");                        \
        return rc;                                                                         \
    } while (0)

static shale_status f_put(shale_objstore *s, const char *key, const void *data, size_t len,
                          bool if_absent)
{
    shale_objstore *in = ((fault_store *)s)->inner;
    FAULT_CALL(if_absent ? SHALE_OP_PUT_IF_ABSENT : SHALE_OP_PUT, key,
               in->ops->put(in, key, data, len, if_absent && !(act && uncond_)));
}

static shale_status f_get_range_call(shale_objstore *s, const char *key, uint64_t off,
                                     uint64_t len, bool whole, void **data, size_t *got)
{
    shale_objstore *in = ((fault_store *)s)->inner;
    FAULT_CALL(whole ? SHALE_OP_GET : SHALE_OP_GET_RANGE, key,
               in->ops->get_range(in, key, off, len, whole, data, got));
}

/* In the trace, a read's offset and the bytes it returned on a line of its
 * own ("bytes store key off got"), to find what a split reads (bench's
 * split-bytes mode). */
static shale_status f_get_range(shale_objstore *s, const char *key, uint64_t off,
                                uint64_t len, bool whole, void **data, size_t *got)
{
    shale_status rc = f_get_range_call(s, key, off, len, whole, data, got);
    FILE *f = trace_file();
    if (f && !rc)
        fprintf(f, "bytes %s %s %llu %zu\n", s->uri ? s->uri : "-", key,
                (unsigned long long)(whole ? 0 : off), *got);
    return rc;
}

static shale_status f_head(shale_objstore *s, const char *key, uint64_t *size, int64_t *mt)
{
    shale_objstore *in = ((fault_store *)s)->inner;
    FAULT_CALL(SHALE_OP_HEAD, key, in->ops->head(in, key, size, mt));
}

static shale_status f_del(shale_objstore *s, const char *key)
{
    shale_objstore *in = ((fault_store *)s)->inner;
    FAULT_CALL(SHALE_OP_DELETE, key, in->ops->del(in, key));
}

static shale_status f_list(shale_objstore *s, const char *prefix, const char *cursor,
                           size_t max_keys, shale_objlist *page)
{
    shale_objstore *in = ((fault_store *)s)->inner;
    FAULT_CALL(SHALE_OP_LIST, prefix, in->ops->list(in, prefix, cursor, max_keys, page));
}

/* Not a request of the object-store API (no rule applies): the inner
 * store's own housekeeping, passed through. */
static shale_status f_sweep(shale_objstore *s, int64_t older_than_ms, bool dry,
                             void (*each)(void *, const char *, uint64_t), void *ctx)
{
    return objstore_sweep(((fault_store *)s)->inner, older_than_ms, dry, each, ctx);
}

static void f_close(shale_objstore *s)
{
    fault_store *fs = (fault_store *)s;
    shale_fault_clear(&fs->ctl);
    free(fs->ctl.rules);
    pthread_mutex_destroy(&fs->ctl.mu);
    shale_objstore_close(fs->inner);
    free(fs);
}

/* No reader ops: a handle opened on the wrapper is objstore.c's generic
 * one, whose reads come through f_get_range and so meet the rules (a
 * file:// inner store's descriptor would bypass them). */
static const objstore_ops fault_ops = {
    .scheme = "fault", .put = f_put, .get_range = f_get_range, .head = f_head,
    .del = f_del, .list = f_list, .close = f_close, .self_retrying = false,
    .sweep = f_sweep,
};

shale_status shale_objstore_fault_wrap(shale_objstore *inner, shale_objstore **out,
                                       shale_fault **ctl)
{
    fault_store *fs = calloc(1, sizeof *fs);
    size_t n = strlen(shale_objstore_uri(inner)) + 8;
    char *uri = malloc(n);
    if (!fs || !uri) {
        free(fs);
        free(uri);
        return SHALE_OOM();
    }
    snprintf(uri, n, "fault+%s", shale_objstore_uri(inner));
    fs->base.ops = &fault_ops;
    fs->base.uri = uri;
    fs->inner = inner;
    pthread_mutex_init(&fs->ctl.mu, NULL);
    *out = &fs->base;
    if (ctl)
        *ctl = &fs->ctl;
    return SHALE_OK;
}

shale_status shale_fault_add(shale_fault *f, const shale_fault_rule *r, int *id)
{
    char *prefix = r->key_prefix && *r->key_prefix ? xstrdup(r->key_prefix) : NULL;
    if (r->key_prefix && *r->key_prefix && !prefix)
        return SHALE_OOM();
    pthread_mutex_lock(&f->mu);
    if (f->count == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        rule *n = realloc(f->rules, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&f->mu);
            free(prefix);
            return SHALE_OOM();
        }
        f->rules = n;
        f->cap = cap;
    }
    rule *nr = &f->rules[f->count];
    memset(nr, 0, sizeof *nr);
    nr->r = *r;
    nr->r.key_prefix = NULL;
    nr->prefix = prefix;
    if (id)
        *id = (int)f->count;
    f->count++;
    pthread_mutex_unlock(&f->mu);
    return SHALE_OK;
}

void shale_fault_clear(shale_fault *f)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->count; i++)
        free(f->rules[i].prefix);
    f->count = 0;
    pthread_mutex_unlock(&f->mu);
}

uint64_t shale_fault_calls(const shale_fault *f)
{
    shale_fault *m = (shale_fault *)f;
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->calls;
    pthread_mutex_unlock(&m->mu);
    return n;
}

uint64_t shale_fault_injected(const shale_fault *f)
{
    shale_fault *m = (shale_fault *)f;
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->injected;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ---- text form ------------------------------------------------------------ */

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!*s || *s == '-')
        return false;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end)
        return false;
    *v = x;
    return true;
}

static shale_status parse_rule(shale_fault *f, char *text)
{
    shale_fault_rule r;
    memset(&r, 0, sizeof r);
    r.status = SHALE_IO;
    bool uncond = false;
    /* strsep, not strtok: an empty prefix ("list::count=1") is a field. */
    char *cur = text;
    char *op = strsep(&cur, ":");
    char *prefix = cur ? strsep(&cur, ":") : NULL;
    static const struct { const char *name; unsigned mask; } ops[] = {
        {"put", SHALE_FAULT_OP(SHALE_OP_PUT)},
        {"put_if_absent", SHALE_FAULT_OP(SHALE_OP_PUT_IF_ABSENT)},
        {"get", SHALE_FAULT_OP(SHALE_OP_GET)},
        {"get_range", SHALE_FAULT_OP(SHALE_OP_GET_RANGE)},
        {"head", SHALE_FAULT_OP(SHALE_OP_HEAD)},
        {"list", SHALE_FAULT_OP(SHALE_OP_LIST)},
        {"delete", SHALE_FAULT_OP(SHALE_OP_DELETE)},
        {"write", SHALE_FAULT_OP(SHALE_OP_PUT) | SHALE_FAULT_OP(SHALE_OP_PUT_IF_ABSENT)},
        {"read", SHALE_FAULT_OP(SHALE_OP_GET) | SHALE_FAULT_OP(SHALE_OP_GET_RANGE) |
                     SHALE_FAULT_OP(SHALE_OP_HEAD) | SHALE_FAULT_OP(SHALE_OP_LIST)},
        {"any", 0},
    };
    bool found = false;
    for (size_t i = 0; op && i < sizeof ops / sizeof *ops; i++)
        if (!strcmp(op, ops[i].name)) {
            r.ops = ops[i].mask;
            found = true;
        }
    if (!found)
        return shale_err(SHALE_INVALID_ARGUMENT, "fault spec: unknown operation '%s'",
                         op ? op : "");
    r.key_prefix = prefix;
    static const struct { const char *name; shale_status st; } sts[] = {
        {"io", SHALE_IO}, {"retryable", SHALE_RETRYABLE}, {"timeout", SHALE_TIMEOUT},
        {"unauthorized", SHALE_UNAUTHORIZED}, {"corrupt", SHALE_CORRUPT},
        {"notfound", SHALE_NOT_FOUND}, {"ok", SHALE_OK},
    };
    for (char *opt; cur && (opt = strsep(&cur, ":"));) {
        if (!*opt)
            continue;
        bool ok = false;
        uint64_t v;
        if (!strncmp(opt, "nth=", 4) && parse_u64(opt + 4, &v) && v > 0) {
            r.nth = v;
            ok = true;
        } else if (!strncmp(opt, "every=", 6) && parse_u64(opt + 6, &v) && v > 0) {
            r.every = v;
            ok = true;
        } else if (!strncmp(opt, "count=", 6) && parse_u64(opt + 6, &v)) {
            r.count = v;
            ok = true;
        } else if (!strncmp(opt, "latency=", 8) && parse_u64(opt + 8, &v) && v < 600000) {
            r.latency_ms = (uint32_t)v;
            ok = true;
        } else if (!strcmp(opt, "after")) {
            r.after_effect = true;
            ok = true;
        } else if (!strcmp(opt, "unconditional")) {
            uncond = true;
            ok = true;
        }
        for (size_t i = 0; !ok && i < sizeof sts / sizeof *sts; i++)
            if (!strcmp(opt, sts[i].name)) {
                r.status = sts[i].st;
                ok = true;
            }
        if (!ok)
            return shale_err(SHALE_INVALID_ARGUMENT, "fault spec: bad option '%s'", opt);
    }
    int id = -1;
    shale_status rc = shale_fault_add(f, &r, &id);
    if (!rc && uncond && id >= 0) {
        pthread_mutex_lock(&f->mu);
        f->rules[id].unconditional = true;
        pthread_mutex_unlock(&f->mu);
    }
    return rc;
}

shale_status objstore_fault_parse(shale_fault *f, const char *spec)
{
    char *copy = xstrdup(spec ? spec : "");
    if (!copy)
        return SHALE_OOM();
    shale_status rc = SHALE_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok && !rc; tok = strtok_r(NULL, ";", &save))
        if (*tok)
            rc = parse_rule(f, tok);
    free(copy);
    return rc;
}
