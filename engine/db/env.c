/*
 * env.c -- the store pool, the copied options and the table cache of a
 * database handle (see env.h).
 */
#include "db/env.h"
#include "db/db_int.h"
#include "db/identity.h"
#include "db/paths.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define TC_BUCKETS 1024

/* Every string field of shale_objstore_options.  A field added to the
 * struct must be added here too, or the env would keep a caller's pointer:
 * the size assertion below fails the build until this list is looked at. */
static const size_t g_store_strings[] = {
    offsetof(shale_objstore_options, s3_endpoint),
    offsetof(shale_objstore_options, s3_region),
    offsetof(shale_objstore_options, s3_access_key),
    offsetof(shale_objstore_options, s3_secret_key),
    offsetof(shale_objstore_options, s3_session_token),
    offsetof(shale_objstore_options, s3_ca_file),
};
#define STORE_STRINGS (sizeof g_store_strings / sizeof g_store_strings[0])
_Static_assert(offsetof(shale_objstore_options, fs_no_fsync) ==
                       5 * sizeof(char *) + 6 * sizeof(int) &&
                   offsetof(shale_objstore_options, reserved) ==
                       offsetof(shale_objstore_options, s3_ca_file) + 2 * sizeof(void *) + 8,
               "shale_objstore_options changed: list its string fields in g_store_strings "
               "(engine/db/env.c), then update this assertion");

typedef struct tc_entry {
    char *uri;              /* NULL = main store */
    char id[PATH_ULID_LEN + 1];
    sst_reader *reader;
    struct tc_entry *next;
} tc_entry;

typedef struct pool_entry {
    char *uri;
    shale_objstore *store;
    char *ident;            /* store_ident(), made on first SST open */
} pool_entry;

struct db_env {
    _Atomic int refs;
    shale_options opts;        /* strings owned (see db_env_options) */
    char *wal_store_uri;       /* opts.wal_store_uri points here */
    shale_objstore *main;
    char *main_ident;          /* store_ident() of main, made on first SST open */
    pthread_mutex_t mu;
    block_cache *cache;        /* under mu until set; then fixed */
    bool own_cache;            /* false: the caller's shared cache */
    bool cache_made;           /* made (or none wanted): do not try again */
    pool_entry *pool; size_t pool_count, pool_cap;
    tc_entry *buckets[TC_BUCKETS];
    /* SSTs being opened now (under mu; their reader is NULL): a second
     * opener waits on opened instead of reading the same index and filter
     * again (a split's Verify opens one SST from many threads at once). */
    tc_entry *opening;
    pthread_cond_t opened;
};

static const char **str_at(shale_objstore_options *o, size_t i)
{
    return (const char **)((char *)o + g_store_strings[i]);
}

void db_env_store_options_free(shale_objstore_options *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < STORE_STRINGS; i++) {
        char *s = (char *)*str_at(o, i);
        if (s) {
            explicit_bzero(s, strlen(s));
            free(s);
        }
        *str_at(o, i) = NULL;
    }
}

shale_status db_env_store_options_copy(shale_objstore_options *dst,
                                       const shale_objstore_options *src)
{
    *dst = *src;
    for (size_t i = 0; i < STORE_STRINGS; i++)
        *str_at(dst, i) = NULL;
    for (size_t i = 0; i < STORE_STRINGS; i++) {
        const char *s = *str_at((shale_objstore_options *)src, i);
        if (s && !(*str_at(dst, i) = xstrdup(s))) {
            db_env_store_options_free(dst);
            return SHALE_OOM();
        }
    }
    return SHALE_OK;
}

/* Length of uri without trailing '/' (objstore.c normalises the same way). */
static size_t uri_len(const char *uri)
{
    size_t n = strlen(uri);
    while (n > 1 && uri[n - 1] == '/')
        n--;
    return n;
}

static bool uri_eq(const char *a, const char *b)
{
    size_t n = uri_len(a);
    return n == uri_len(b) && !memcmp(a, b, n);
}

static void env_free(db_env *e)
{
    for (size_t i = 0; i < TC_BUCKETS; i++) {
        tc_entry *t = e->buckets[i];
        while (t) {
            tc_entry *n = t->next;
            sst_reader_unref(t->reader);
            free(t->uri);
            free(t);
            t = n;
        }
    }
    for (size_t i = 0; i < e->pool_count; i++) {
        shale_objstore_close(e->pool[i].store);
        free(e->pool[i].uri);
        free(e->pool[i].ident);
    }
    free(e->main_ident);
    free(e->pool);
    shale_objstore_close(e->main);
    if (e->own_cache)
        block_cache_free(e->cache);
    db_env_store_options_free(&e->opts.store);
    free(e->wal_store_uri);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->opened);
    free(e);
}

shale_status db_env_open(const char *uri, const shale_options *opts, db_env **out)
{
    *out = NULL;
    if (!uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "store URI is NULL");
    db_env *e = calloc(1, sizeof *e);
    if (!e)
        return SHALE_OOM();
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->opened, NULL);
    atomic_init(&e->refs, 1);
    shale_status irc = options_import(opts, &e->opts);
    if (irc) {
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->opened);
        free(e);
        return irc;
    }
    /* e->opts holds the caller's pointers until they are replaced here. */
    shale_objstore_options given = e->opts.store;
    const char *given_wal = e->opts.wal_store_uri;
    e->opts.wal_store_uri = NULL;
    shale_status rc = db_env_store_options_copy(&e->opts.store, &given);
    if (rc) {
        memset(&e->opts.store, 0, sizeof e->opts.store);
        env_free(e);
        return rc;
    }
    if (given_wal && !(e->wal_store_uri = xstrdup(given_wal))) {
        env_free(e);
        return SHALE_OOM();
    }
    e->opts.wal_store_uri = e->wal_store_uri;
    if ((rc = shale_objstore_open(uri, &e->opts.store, &e->main))) {
        env_free(e);
        return rc;
    }
    *out = e;
    return SHALE_OK;
}

void db_env_ref(db_env *e)
{
    atomic_fetch_add(&e->refs, 1);
}

void db_env_unref(db_env *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        env_free(e);
}

shale_objstore *db_env_main(db_env *e)
{
    return e->main;
}

const shale_options *db_env_options(const db_env *e)
{
    return &e->opts;
}

block_cache *db_env_cache(db_env *e)
{
    pthread_mutex_lock(&e->mu);
    if (!e->cache && !e->cache_made) {
        e->own_cache = !e->opts.block_cache;
        e->cache = e->opts.block_cache ? e->opts.block_cache
                                       : block_cache_new(e->opts.block_cache_bytes);
        e->cache_made = e->cache || !e->opts.block_cache_bytes;  /* 0: no cache */
    }
    block_cache *c = e->cache;
    pthread_mutex_unlock(&e->mu);
    return c;
}

/* Called with e->mu held. */
static shale_status env_store_locked(db_env *e, const char *uri, shale_objstore **out)
{
    if (!uri || uri_eq(uri, shale_objstore_uri(e->main))) {
        *out = e->main;
        return SHALE_OK;
    }
    for (size_t i = 0; i < e->pool_count; i++)
        if (uri_eq(e->pool[i].uri, uri)) {
            *out = e->pool[i].store;
            return SHALE_OK;
        }
    if (e->pool_count == e->pool_cap) {
        size_t cap = e->pool_cap ? e->pool_cap * 2 : 4;
        pool_entry *p = realloc(e->pool, cap * sizeof *p);
        if (!p)
            return SHALE_OOM();
        e->pool = p;
        e->pool_cap = cap;
    }
    shale_objstore *s = NULL;
    shale_status rc = shale_objstore_open(uri, &e->opts.store, &s);
    if (rc)
        return shale_err_prefix(rc, "opening store %s for %s", uri,
                                shale_objstore_uri(e->main));
    char *u = xstrdup(uri);
    if (!u) {
        shale_objstore_close(s);
        return SHALE_OOM();
    }
    e->pool[e->pool_count++] = (pool_entry){u, s, NULL};
    *out = s;
    return SHALE_OK;
}

shale_status db_env_store(db_env *e, const char *uri, shale_objstore **out)
{
    pthread_mutex_lock(&e->mu);
    shale_status rc = env_store_locked(e, uri, out);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static bool same_uri(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static size_t tc_bucket(const char *uri, const char *id)
{
    uint64_t h = XXH3_64bits(id, strlen(id));
    if (uri)
        h ^= XXH3_64bits(uri, strlen(uri)) * 31;
    return (size_t)(h % TC_BUCKETS);
}

/* What names a store's SSTs to the process-wide table registry
 * (table/sst_table.h), so that readers of one SST through any handle and
 * any spelling of its store's URI share its footer, index and filter: the
 * canonical URI (db/identity.c).  A fault+ URI is its own store (one fault
 * wrapper per URI, objstore_faulturi.c), so it is taken as it is.  NULL
 * (not shared) if it cannot be made. */
static char *store_ident(const char *uri, const shale_objstore_options *o)
{
    if (!strncmp(uri, "fault+", 6)) {
        char *c = malloc(uri_len(uri) + 1);
        if (c) {
            memcpy(c, uri, uri_len(uri));
            c[uri_len(uri)] = '\0';
        }
        return c;
    }
    char *c = NULL;
    if (identity_canonical(uri, o, &c))
        return NULL;
    return c;
}

/* The identity of store s of e (main or pooled), made once.  Called with
 * e->mu held. */
static const char *env_ident_locked(db_env *e, shale_objstore *s)
{
    char **slot = NULL;
    if (s == e->main)
        slot = &e->main_ident;
    for (size_t i = 0; !slot && i < e->pool_count; i++)
        if (e->pool[i].store == s)
            slot = &e->pool[i].ident;
    if (slot && !*slot)
        *slot = store_ident(shale_objstore_uri(s), &e->opts.store);
    return slot ? *slot : NULL;
}

shale_status db_env_sst(db_env *e, const sst_handle *h, sst_reader **out)
{
    const char *uri = h->store_uri;
    if (uri && uri_eq(uri, shale_objstore_uri(e->main)))
        uri = NULL;
    block_cache *cache = db_env_cache(e);
    size_t b = tc_bucket(uri, h->id);
    pthread_mutex_lock(&e->mu);
    for (;;) {
        for (tc_entry *t = e->buckets[b]; t; t = t->next)
            if (!strcmp(t->id, h->id) && same_uri(t->uri, uri)) {
                sst_reader_ref(t->reader);
                *out = t->reader;
                pthread_mutex_unlock(&e->mu);
                return SHALE_OK;
            }
        bool busy = false;
        for (tc_entry *t = e->opening; t && !busy; t = t->next)
            busy = !strcmp(t->id, h->id) && same_uri(t->uri, uri);
        if (!busy)
            break;
        pthread_cond_wait(&e->opened, &e->mu);   /* then look again */
    }
    /* On the opening list while this thread opens it (uri borrowed: the
     * entry lives only until the open below returns). */
    tc_entry *mark = calloc(1, sizeof *mark);
    shale_objstore *s = NULL;
    const char *ident = NULL;   /* lives as long as the env */
    shale_status rc = mark ? env_store_locked(e, uri, &s) : SHALE_OOM();
    if (!rc)
        ident = env_ident_locked(e, s);
    if (!rc) {
        memcpy(mark->id, h->id, sizeof mark->id);
        mark->uri = (char *)uri;
        mark->next = e->opening;
        e->opening = mark;
    }
    pthread_mutex_unlock(&e->mu);
    if (rc) {
        free(mark);
        return rc;
    }
    /* Open outside the lock: it does I/O.  A racing opener may insert the
     * same SST; the loser's reader is dropped below. */
    char key[PATH_KEY_MAX];
    sst_key(h->id, key, sizeof key);
    sst_reader *r = NULL;
    rc = sst_reader_open_tail(s, ident, key, h->size, h->tail, cache, &r);
    pthread_mutex_lock(&e->mu);
    for (tc_entry **pp = &e->opening; *pp; pp = &(*pp)->next)
        if (*pp == mark) {
            *pp = mark->next;
            break;
        }
    pthread_cond_broadcast(&e->opened);
    pthread_mutex_unlock(&e->mu);
    free(mark);
    if (rc)
        return rc;
    tc_entry *t = calloc(1, sizeof *t);
    if (!t || (uri && !(t->uri = xstrdup(uri)))) {
        free(t);
        *out = r;  /* usable, just not cached */
        return SHALE_OK;
    }
    memcpy(t->id, h->id, sizeof t->id);
    t->reader = r;
    pthread_mutex_lock(&e->mu);
    for (tc_entry *o = e->buckets[b]; o; o = o->next)
        if (!strcmp(o->id, h->id) && same_uri(o->uri, uri)) {
            sst_reader_ref(o->reader);
            *out = o->reader;
            pthread_mutex_unlock(&e->mu);
            sst_reader_unref(r);
            free(t->uri);
            free(t);
            return SHALE_OK;
        }
    t->next = e->buckets[b];
    e->buckets[b] = t;
    sst_reader_ref(r);
    *out = r;
    pthread_mutex_unlock(&e->mu);
    return SHALE_OK;
}

static bool manifest_names(const manifest *m, const tc_entry *t, const char *main_uri)
{
    const char *tu = t->uri ? t->uri : main_uri;
    for (size_t i = 0; i < m->l0_count; i++) {
        const sst_handle *h = &m->l0[i];
        if (!strcmp(h->id, t->id) && uri_eq(h->store_uri ? h->store_uri : main_uri, tu))
            return true;
    }
    for (size_t r = 0; r < m->run_count; r++)
        for (size_t i = 0; i < m->runs[r].count; i++) {
            const sst_handle *h = &m->runs[r].ssts[i];
            if (!strcmp(h->id, t->id) && uri_eq(h->store_uri ? h->store_uri : main_uri, tu))
                return true;
        }
    return false;
}

void db_env_retain_only(db_env *e, const manifest *m)
{
    const char *main_uri = shale_objstore_uri(e->main);
    pthread_mutex_lock(&e->mu);
    for (size_t b = 0; b < TC_BUCKETS; b++) {
        tc_entry **pp = &e->buckets[b];
        while (*pp) {
            tc_entry *t = *pp;
            if (!manifest_names(m, t, main_uri)) {
                *pp = t->next;
                sst_reader_unref(t->reader);  /* views still reading hold refs */
                free(t->uri);
                free(t);
            } else {
                pp = &t->next;
            }
        }
    }
    pthread_mutex_unlock(&e->mu);
}
