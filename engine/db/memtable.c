/*
 * memtable.c -- a skiplist in internal order over an arena (LevelDB style).
 *
 * Concurrency: one writer (the caller serialises memtable_add) and any
 * number of lock-free readers.  A node is fully built, its forward pointers
 * set from the level below up, and only then linked in with release
 * stores; readers follow links with acquire loads, so they see either the
 * old list or the new node complete.  Nodes are never unlinked or freed
 * before the memtable itself (reference counted).
 *
 * Node layout in the arena: the node header (key/value lengths, seq, kind,
 * height), then `height` atomic next pointers, then key bytes, then value
 * bytes.  Arena blocks are 64 KiB from malloc for the first four, then
 * 1 MiB mapped directly (or one larger block for a big entry).
 */
#include "db/memtable.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_HEIGHT 12
#define BRANCHING 4
#define ARENA_BLOCK (64u << 10)

typedef struct node {
    uint32_t klen;
    uint32_t vlen;
    uint64_t seq;
    uint8_t kind;
    uint8_t height;
    _Atomic(struct node *) next[];   /* height entries, then key, value */
} node;

/* Blocks after the first few are mapped directly (BIG_BLOCK each) and
 * unmapped when the memtable goes: a flushed 64 MiB memtable then gives its
 * memory back to the system at once, instead of leaving a thousand freed
 * 64 KiB chunks in a malloc arena, where they stayed resident (issue 19:
 * peak RSS).  Small memtables (tests, readers' replays) stay on malloc. */
#define BIG_BLOCK (1u << 20)
#define SMALL_BLOCKS 4

typedef struct arena_block {
    struct arena_block *prev;
    size_t used, cap;
    size_t mapped;           /* bytes mapped with mmap, 0 = malloc'd */
    alignas(16) uint8_t data[];
} arena_block;

static arena_block *block_new(size_t cap, bool map)
{
    arena_block *nb;
    size_t total = sizeof *nb + cap;
    if (map) {
        void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        nb = p;
        nb->mapped = total;
    } else {
        if (!(nb = malloc(total)))
            return NULL;
        nb->mapped = 0;
    }
    nb->cap = cap;
    nb->used = 0;
    return nb;
}

static void block_free(arena_block *b)
{
    if (b->mapped)
        munmap(b, b->mapped);
    else
        free(b);
}

struct memtable {
    _Atomic int refs;
    node *head;
    _Atomic int max_height;
    arena_block *blocks;
    _Atomic size_t bytes;
    _Atomic uint64_t count;
    _Atomic uint64_t max_seq;
    uint64_t rng;
    unsigned nblocks;        /* blocks allocated so far */
};

static void *arena_alloc(memtable *m, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block *b = m->blocks;
    if (!b || b->cap - b->used < n) {
        bool big = m->nblocks >= SMALL_BLOCKS;
        size_t unit = big ? BIG_BLOCK - sizeof(arena_block) : ARENA_BLOCK;
        size_t cap = n > unit / 4 ? n : unit;
        arena_block *nb = block_new(cap, big || cap > ARENA_BLOCK);
        if (!nb)
            return NULL;
        m->nblocks++;
        if (n > unit / 4 && b) {
            /* A big entry gets its own block behind the current one, so
             * the current block's free space is not wasted. */
            nb->prev = b->prev;
            b->prev = nb;
        } else {
            nb->prev = b;
            m->blocks = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    /* Count what entries use, not what blocks reserve: a 64 KiB block must
     * not make a small memtable look full. */
    atomic_fetch_add_explicit(&m->bytes, n, memory_order_relaxed);
    return p;
}

static inline uint8_t *node_key(const node *x)
{
    return (uint8_t *)&x->next[x->height];
}

static inline uint8_t *node_val(const node *x)
{
    return node_key(x) + x->klen;
}

static node *new_node(memtable *m, const kv_entry *e, int height)
{
    size_t sz = sizeof(node) + (size_t)height * sizeof(_Atomic(node *)) + e->klen + e->vlen;
    node *x = arena_alloc(m, sz);
    if (!x)
        return NULL;
    x->klen = (uint32_t)e->klen;
    x->vlen = (uint32_t)e->vlen;
    x->seq = e->seq;
    x->kind = e->kind;
    x->height = (uint8_t)height;
    for (int i = 0; i < height; i++)
        atomic_init(&x->next[i], NULL);
    if (e->klen)
        memcpy(node_key(x), e->key, e->klen);
    if (e->vlen)
        memcpy(node_val(x), e->val, e->vlen);
    return x;
}

memtable *memtable_new(void)
{
    memtable *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    atomic_init(&m->max_height, 1);
    random_bytes(&m->rng, sizeof m->rng);
    m->rng |= 1;
    kv_entry none = {NULL, 0, 0, 0, NULL, 0};
    m->head = new_node(m, &none, MAX_HEIGHT);
    if (!m->head) {
        free(m);
        return NULL;
    }
    return m;
}

void memtable_ref(memtable *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void memtable_unref(memtable *m)
{
    if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    arena_block *b = m->blocks;
    while (b) {
        arena_block *p = b->prev;
        block_free(b);
        b = p;
    }
    free(m);
}

static int random_height(memtable *m)
{
    int h = 1;
    for (;;) {
        m->rng ^= m->rng << 13;
        m->rng ^= m->rng >> 7;
        m->rng ^= m->rng << 17;
        if (h >= MAX_HEIGHT || (m->rng & (BRANCHING - 1)))
            break;
        h++;
    }
    return h;
}

/* Internal-order comparison of a node with (key, seq). */
static inline int node_cmp(const node *x, const uint8_t *key, size_t klen, uint64_t seq)
{
    int c = kv_key_cmp(node_key(x), x->klen, key, klen);
    if (c)
        return c;
    return x->seq > seq ? -1 : x->seq < seq;
}

/* First node >= (key, seq); fills prev[] when non-NULL. */
static node *find_ge(memtable *m, const uint8_t *key, size_t klen, uint64_t seq, node **prev)
{
    node *x = m->head;
    int level = atomic_load_explicit(&m->max_height, memory_order_acquire) - 1;
    for (;;) {
        node *next = atomic_load_explicit(&x->next[level], memory_order_acquire);
        if (next && node_cmp(next, key, klen, seq) < 0) {
            x = next;
        } else {
            if (prev)
                prev[level] = x;
            if (level == 0)
                return next;
            level--;
        }
    }
}

shale_status memtable_add(memtable *m, const kv_entry *e)
{
    if (e->klen > UINT32_MAX || e->vlen > UINT32_MAX)
        return shale_err(SHALE_INVALID_ARGUMENT, "memtable: entry too large");
    node *prev[MAX_HEIGHT];
    find_ge(m, e->key, e->klen, e->seq, prev);
    int h = random_height(m);
    int cur = atomic_load_explicit(&m->max_height, memory_order_relaxed);
    if (h > cur) {
        for (int i = cur; i < h; i++)
            prev[i] = m->head;
        atomic_store_explicit(&m->max_height, h, memory_order_release);
    }
    node *x = new_node(m, e, h);
    if (!x)
        return SHALE_OOM();
    for (int i = 0; i < h; i++) {
        atomic_store_explicit(&x->next[i],
                              atomic_load_explicit(&prev[i]->next[i], memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&prev[i]->next[i], x, memory_order_release);
    }
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    uint64_t ms = atomic_load_explicit(&m->max_seq, memory_order_relaxed);
    if (e->seq > ms)
        atomic_store_explicit(&m->max_seq, e->seq, memory_order_relaxed);
    return SHALE_OK;
}

bool memtable_get(memtable *m, const uint8_t *key, size_t klen, uint64_t max_seq,
                  kv_entry *out)
{
    node *x = find_ge(m, key, klen, max_seq, NULL);
    if (!x || kv_key_cmp(node_key(x), x->klen, key, klen))
        return false;
    out->key = node_key(x);
    out->klen = x->klen;
    out->seq = x->seq;
    out->kind = x->kind;
    out->val = x->kind == KV_PUT ? node_val(x) : NULL;
    out->vlen = x->kind == KV_PUT ? x->vlen : 0;
    return true;
}

size_t memtable_bytes(const memtable *m)
{
    return atomic_load_explicit(&((memtable *)m)->bytes, memory_order_relaxed);
}

uint64_t memtable_count(const memtable *m)
{
    return atomic_load_explicit(&((memtable *)m)->count, memory_order_relaxed);
}

uint64_t memtable_max_seq(const memtable *m)
{
    return atomic_load_explicit(&((memtable *)m)->max_seq, memory_order_relaxed);
}

/* ---- iterator ------------------------------------------------------------ */

typedef struct mem_iter {
    kv_iter base;
    memtable *m;
    node *cur;
} mem_iter;

static void mi_seek_first(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    mi->cur = atomic_load_explicit(&mi->m->head->next[0], memory_order_acquire);
}

static void mi_seek(kv_iter *it, const uint8_t *key, size_t klen)
{
    mem_iter *mi = (mem_iter *)it;
    mi->cur = find_ge(mi->m, key, klen, KV_MAX_SEQ, NULL);
}

static void mi_next(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    mi->cur = atomic_load_explicit(&mi->cur->next[0], memory_order_acquire);
}

static bool mi_valid(const kv_iter *it)
{
    return ((const mem_iter *)it)->cur != NULL;
}

static void mi_entry(const kv_iter *it, kv_entry *e)
{
    const node *x = ((const mem_iter *)it)->cur;
    e->key = node_key(x);
    e->klen = x->klen;
    e->seq = x->seq;
    e->kind = x->kind;
    e->val = x->kind == KV_PUT ? node_val(x) : NULL;
    e->vlen = x->kind == KV_PUT ? x->vlen : 0;
}

static shale_status mi_status(const kv_iter *it)
{
    (void)it;
    return SHALE_OK;
}

static void mi_destroy(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    memtable_unref(mi->m);
    free(mi);
}

static const kv_iter_ops mem_iter_ops = {mi_seek_first, mi_seek, mi_next, mi_valid,
                                         mi_entry, mi_status, mi_destroy};

kv_iter *memtable_iter_new(memtable *m)
{
    mem_iter *mi = calloc(1, sizeof *mi);
    if (!mi)
        return NULL;
    mi->base.ops = &mem_iter_ops;
    memtable_ref(m);
    mi->m = m;
    return &mi->base;
}
