/*
 * cache.c -- the block cache: 16 shards, each an LRU list (with second
 * chance for entries hit since their last pass, see evict) plus a chained
 * hash table under its own mutex.  Entries are reference counted: eviction
 * only unlinks an entry, and the last release frees it, so a block in use
 * is never freed under a reader.  Usage counts entries still linked.
 */
#include "table/cache.h"
#include "shale.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SHARDS 16
/* Buckets per shard: one per 4 KiB (the default block size) of the shard's
 * capacity, a power of two, so a full cache of default blocks has chains of
 * about one.  A fixed 1024 gave chains of 4 at 256 MiB, and walking them
 * was 30 % of a warm scan (perf, docs/benchmarks.md). */
#define BUCKET_BYTES 4096u
#define MIN_BUCKETS 64u
#define MAX_BUCKETS (1u << 20)

typedef struct centry {
    cached_block b;          /* first: handles are centry pointers */
    uint64_t file_id, offset;
    int refs;                /* under the shard mutex */
    bool linked;
    bool hit;                /* looked up since it last reached the LRU tail */
    struct centry *hnext;    /* hash chain */
    struct centry *prev, *next;  /* LRU: head = most recent */
} centry;

typedef struct shard {
    pthread_mutex_t mu;
    centry **buckets;
    size_t mask;             /* buckets - 1 */
    centry *head, *tail;
    size_t usage, capacity;
} shard;

struct shale_cache {
    shard shards[SHARDS];
};

uint64_t block_cache_file_id(const char *store_uri, const char *key)
{
    uint64_t seed = XXH3_64bits(store_uri, strlen(store_uri));
    return XXH3_64bits_withSeed(key, strlen(key), seed);
}

block_cache *block_cache_new(size_t capacity)
{
    if (!capacity)
        return NULL;
    block_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t per = capacity / SHARDS ? capacity / SHARDS : 1, nb = MIN_BUCKETS;
    while (nb < MAX_BUCKETS && nb * BUCKET_BYTES < per)
        nb *= 2;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        if (!(s->buckets = calloc(nb, sizeof *s->buckets))) {
            while (i-- > 0) {
                free(c->shards[i].buckets);
                pthread_mutex_destroy(&c->shards[i].mu);
            }
            free(c);
            return NULL;
        }
        s->mask = nb - 1;
        pthread_mutex_init(&s->mu, NULL);
        s->capacity = per;
    }
    return c;
}

static void entry_free(centry *e)
{
    free((void *)e->b.data);
    free(e);
}

void block_cache_free(block_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        for (centry *e = s->head; e;) {
            centry *n = e->next;
            entry_free(e);   /* callers released everything before */
            e = n;
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

/* splitmix64's finaliser over both halves of the key.  The shard is taken
 * from the high bits and the bucket from the low bits: with the same bits
 * for both (as an earlier version had), every shard used only
 * 1/SHARDS of its buckets and chains grew 16 times longer. */
static uint64_t mix_of(uint64_t file_id, uint64_t offset)
{
    uint64_t z = file_id * 0x9E3779B97F4A7C15ULL ^ offset;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t hash_of(uint64_t file_id, uint64_t offset)
{
    return (size_t)(mix_of(file_id, offset) & 0xffffffffu);
}

static shard *shard_of(block_cache *c, uint64_t file_id, uint64_t offset)
{
    return &c->shards[(mix_of(file_id, offset) >> 48) % SHARDS];
}

static void lru_unlink(shard *s, centry *e)
{
    if (e->prev) e->prev->next = e->next; else s->head = e->next;
    if (e->next) e->next->prev = e->prev; else s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(shard *s, centry *e)
{
    e->next = s->head;
    e->prev = NULL;
    if (s->head) s->head->prev = e;
    s->head = e;
    if (!s->tail) s->tail = e;
}

static void table_remove(shard *s, centry *e)
{
    centry **pp = &s->buckets[hash_of(e->file_id, e->offset) & s->mask];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
}

/* Evicts least recently used entries until usage fits (mu held).  A hit
 * does not move its entry (that wrote to both LRU neighbours and the head,
 * three more cache misses per lookup of a large cache, perf in
 * docs/benchmarks.md); it marks it, and an entry marked when it reaches
 * the tail goes back to the head unmarked instead (second chance: what
 * was looked up since its last pass survives what was not).  Each entry
 * moves at most once per call, so this ends. */
static void evict(shard *s)
{
    centry *e = s->tail;
    while (e && s->usage > s->capacity) {
        centry *prev = e->prev;
        if (e->hit && prev) {
            e->hit = false;
            lru_unlink(s, e);
            lru_push_front(s, e);
            e = prev;
            continue;
        }
        lru_unlink(s, e);
        table_remove(s, e);
        e->linked = false;
        s->usage -= e->b.len;
        if (--e->refs == 0)
            entry_free(e);
        e = prev;
    }
}

const cached_block *block_cache_lookup(block_cache *c, uint64_t file_id, uint64_t offset)
{
    if (!c)
        return NULL;
    shard *s = shard_of(c, file_id, offset);
    pthread_mutex_lock(&s->mu);
    centry *e = s->buckets[hash_of(file_id, offset) & s->mask];
    while (e && (e->file_id != file_id || e->offset != offset))
        e = e->hnext;
    if (e) {
        e->refs++;
        e->hit = true;
    }
    pthread_mutex_unlock(&s->mu);
    return e ? &e->b : NULL;
}

const cached_block *block_cache_insert(block_cache *c, uint64_t file_id, uint64_t offset,
                                       uint8_t *data, size_t len)
{
    centry *e = calloc(1, sizeof *e);
    if (!e) {
        free(data);
        return NULL;
    }
    e->b.data = data;
    e->b.len = len;
    e->file_id = file_id;
    e->offset = offset;
    e->refs = 2;  /* the cache's and the caller's */
    shard *s = shard_of(c, file_id, offset);
    pthread_mutex_lock(&s->mu);
    size_t bk = hash_of(file_id, offset) & s->mask;
    for (centry *o = s->buckets[bk]; o; o = o->hnext)
        if (o->file_id == file_id && o->offset == offset) {
            o->refs++;
            o->hit = true;
            pthread_mutex_unlock(&s->mu);
            entry_free(e);
            return &o->b;
        }
    e->hnext = s->buckets[bk];
    s->buckets[bk] = e;
    e->linked = true;
    lru_push_front(s, e);
    s->usage += len;
    evict(s);
    pthread_mutex_unlock(&s->mu);
    return &e->b;
}

void block_cache_release(block_cache *c, const cached_block *b)
{
    if (!c || !b)
        return;
    centry *e = (centry *)b;
    shard *s = shard_of(c, e->file_id, e->offset);
    pthread_mutex_lock(&s->mu);
    bool dead = --e->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (dead)
        entry_free(e);
}

size_t block_cache_usage(block_cache *c)
{
    size_t n = 0;
    if (!c)
        return 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        n += c->shards[i].usage;
        pthread_mutex_unlock(&c->shards[i].mu);
    }
    return n;
}

size_t block_cache_longest_chain(block_cache *c)
{
    size_t longest = 0;
    if (!c)
        return 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        for (size_t b = 0; b <= c->shards[i].mask; b++) {
            size_t n = 0;
            for (centry *e = c->shards[i].buckets[b]; e; e = e->hnext)
                n++;
            if (n > longest)
                longest = n;
        }
        pthread_mutex_unlock(&c->shards[i].mu);
    }
    return longest;
}

/* ---- the public handle (shale.h) ----------------------------------------- */

shale_status shale_cache_new(size_t capacity_bytes, shale_cache **out)
{
    *out = NULL;
    if (capacity_bytes == 0)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_cache_new: capacity must be > 0");
    if (!(*out = block_cache_new(capacity_bytes)))
        return SHALE_OOM();
    return SHALE_OK;
}

size_t shale_cache_usage(shale_cache *c)
{
    return block_cache_usage(c);
}

void shale_cache_free(shale_cache *c)
{
    block_cache_free(c);
}
