/*
 * memtable.c -- a skiplist in internal order over two arenas (LevelDB style).
 *
 * Concurrency: one writer (the caller serialises memtable_add) and any
 * number of lock-free readers.  A node is fully built, its forward pointers
 * set from the level below up, and only then linked in with release
 * stores; readers follow links with acquire loads, so they see either the
 * old list or the new node complete.  Nodes are never unlinked or freed
 * before the memtable itself (reference counted).
 *
 * Node layout in the node arena: the node header (key/value lengths, seq,
 * value pointer), the key bytes padded to 8, then `height` atomic next
 * pointers.  Values live in a value arena of their own.  Why (issue 19:
 * fillrandom at 1M keys): a search visits ~30 nodes and almost every
 * visit below the top levels was a cache miss.  With the key beside the
 * header and the values elsewhere, a visit reads one compact record (48
 * bytes for a 16-byte key at height 1, against 160 with a 100-byte value
 * inline), and the nodes of a 64 MiB memtable take a third of the memory,
 * so far more of them stay in the caches.  Arena blocks are 64 KiB from
 * malloc for the first four of each arena, then 2 MiB mapped directly
 * (or one larger block for a big entry).
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
    const uint8_t *val;      /* in the value arena; NULL for a tombstone */
    /* key bytes, padded to 8, then the next pointers */
} node;

/* A put's empty value: a tombstone is told from a put by val == NULL. */
static const uint8_t empty_value[1];

/* Blocks after the first few are mapped directly (BIG_BLOCK each, aligned
 * to BIG_BLOCK) and unmapped when the memtable goes: a flushed 64 MiB
 * memtable then gives its memory back to the system at once, instead of
 * leaving a thousand freed 64 KiB chunks in a malloc arena, where they
 * stayed resident (issue 19: peak RSS).  Small memtables (tests, readers'
 * replays) stay on malloc.
 *
 * The mapped blocks are 2 MiB, aligned, and marked MADV_HUGEPAGE: an
 * insert into a big memtable visits ~30 nodes at random places in 64 MiB,
 * and with 4 KiB pages nearly every visit was a TLB miss (a nested page
 * walk under a hypervisor) on top of the cache miss -- find_ge's first
 * touch of a node was 80 % of its samples (issue 19: fillrandom).  The
 * hint costs nothing where transparent huge pages are off. */
#define BIG_BLOCK (2u << 20)
#define SMALL_BLOCKS 4

typedef struct arena_block {
    struct arena_block *prev;
    size_t used, cap;
    size_t mapped;           /* bytes mapped with mmap, 0 = malloc'd */
    alignas(16) uint8_t data[];
} arena_block;

/* An anonymous mapping of len bytes (a multiple of the page size) aligned
 * to BIG_BLOCK when len is at least that: map more, trim both ends. */
static void *map_aligned(size_t len)
{
    if (len < BIG_BLOCK) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    size_t span = len + BIG_BLOCK;
    uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t a = ((uintptr_t)p + BIG_BLOCK - 1) & ~(uintptr_t)(BIG_BLOCK - 1);
    uint8_t *q = (uint8_t *)a;
    if (q > p)
        munmap(p, (size_t)(q - p));
    if (p + span > q + len)
        munmap(q + len, (size_t)(p + span - (q + len)));
#ifdef MADV_HUGEPAGE
    madvise(q, len, MADV_HUGEPAGE);   /* a hint: failure changes nothing */
#endif
    return q;
}

static arena_block *block_new(size_t cap, bool map)
{
    arena_block *nb;
    size_t total = sizeof *nb + cap;
    if (map) {
        total = (total + 4095) & ~(size_t)4095;
        void *p = map_aligned(total);
        if (!p)
            return NULL;
        nb = p;
        nb->mapped = total;
        cap = total - sizeof *nb;
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

typedef struct arena {
    arena_block *blocks;     /* newest first */
    unsigned nblocks;        /* blocks allocated so far */
} arena;

struct memtable {
    _Atomic int refs;
    node *head;
    _Atomic int max_height;
    arena nodes, values;
    _Atomic size_t bytes;
    _Atomic uint64_t count;
    _Atomic uint64_t max_seq;
    uint64_t rng;
};

/* n bytes aligned to `align` (a power of two, at most 16) from a. */
static void *arena_alloc(memtable *m, arena *a, size_t n, size_t align)
{
    arena_block *b = a->blocks;
    size_t pad = b ? (align - (b->used & (align - 1))) & (align - 1) : 0;
    if (!b || b->cap - b->used < n + pad) {
        bool big = a->nblocks >= SMALL_BLOCKS;
        size_t unit = big ? BIG_BLOCK - sizeof(arena_block) : ARENA_BLOCK;
        size_t cap = n > unit / 4 ? n : unit;
        arena_block *nb = block_new(cap, big || cap > ARENA_BLOCK);
        if (!nb)
            return NULL;
        a->nblocks++;
        if (n > unit / 4 && b) {
            /* A big entry gets its own block behind the current one, so
             * the current block's free space is not wasted. */
            nb->prev = b->prev;
            b->prev = nb;
        } else {
            nb->prev = b;
            a->blocks = nb;
        }
        b = nb;
        pad = 0;
    }
    void *p = b->data + b->used + pad;
    b->used += n + pad;
    /* Count what entries use, not what blocks reserve: a 64 KiB block must
     * not make a small memtable look full. */
    atomic_fetch_add_explicit(&m->bytes, n + pad, memory_order_relaxed);
    return p;
}

static void arena_free(arena *a)
{
    arena_block *b = a->blocks;
    while (b) {
        arena_block *p = b->prev;
        block_free(b);
        b = p;
    }
}

static inline const uint8_t *node_key(const node *x)
{
    return (const uint8_t *)(x + 1);
}

static inline size_t key_room(size_t klen)
{
    return (klen + 7) & ~(size_t)7;
}

static inline _Atomic(node *) *node_next(const node *x)
{
    return (_Atomic(node *) *)((uint8_t *)(uintptr_t)(x + 1) + key_room(x->klen));
}

static node *new_node(memtable *m, const kv_entry *e, int height)
{
    const uint8_t *val = NULL;
    if (e->kind == KV_PUT) {
        uint8_t *v = e->vlen ? arena_alloc(m, &m->values, e->vlen, 1) : NULL;
        if (e->vlen && !v)
            return NULL;
        if (v)
            memcpy(v, e->val, e->vlen);
        val = v ? v : empty_value;
    }
    size_t sz = sizeof(node) + key_room(e->klen) + (size_t)height * sizeof(_Atomic(node *));
    node *x = arena_alloc(m, &m->nodes, sz, 8);
    if (!x)
        return NULL;   /* the value's bytes stay in the arena unused */
    x->klen = (uint32_t)e->klen;
    x->vlen = e->kind == KV_PUT ? (uint32_t)e->vlen : 0;
    x->seq = e->seq;
    x->val = val;
    if (e->klen)
        memcpy((uint8_t *)(x + 1), e->key, e->klen);
    _Atomic(node *) *next = node_next(x);
    for (int i = 0; i < height; i++)
        atomic_init(&next[i], NULL);
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
    kv_entry none = {NULL, 0, 0, KV_DELETE, NULL, 0};
    m->head = new_node(m, &none, MAX_HEIGHT);
    if (!m->head) {
        arena_free(&m->nodes);
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
    arena_free(&m->nodes);
    arena_free(&m->values);
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
        node *next = atomic_load_explicit(&node_next(x)[level], memory_order_acquire);
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
    _Atomic(node *) *xn = node_next(x);
    for (int i = 0; i < h; i++) {
        _Atomic(node *) *pn = node_next(prev[i]);
        atomic_store_explicit(&xn[i], atomic_load_explicit(&pn[i], memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&pn[i], x, memory_order_release);
    }
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    uint64_t ms = atomic_load_explicit(&m->max_seq, memory_order_relaxed);
    if (e->seq > ms)
        atomic_store_explicit(&m->max_seq, e->seq, memory_order_relaxed);
    return SHALE_OK;
}

static void node_entry(const node *x, kv_entry *out)
{
    out->key = node_key(x);
    out->klen = x->klen;
    out->seq = x->seq;
    out->kind = x->val ? KV_PUT : KV_DELETE;
    out->val = x->val;
    out->vlen = x->vlen;
}

bool memtable_get(memtable *m, const uint8_t *key, size_t klen, uint64_t max_seq,
                  kv_entry *out)
{
    node *x = find_ge(m, key, klen, max_seq, NULL);
    if (!x || kv_key_cmp(node_key(x), x->klen, key, klen))
        return false;
    node_entry(x, out);
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
    mi->cur = atomic_load_explicit(&node_next(mi->m->head)[0], memory_order_acquire);
}

static void mi_seek(kv_iter *it, const uint8_t *key, size_t klen)
{
    mem_iter *mi = (mem_iter *)it;
    mi->cur = find_ge(mi->m, key, klen, KV_MAX_SEQ, NULL);
}

static void mi_next(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    mi->cur = atomic_load_explicit(&node_next(mi->cur)[0], memory_order_acquire);
}

static bool mi_valid(const kv_iter *it)
{
    return ((const mem_iter *)it)->cur != NULL;
}

static void mi_entry(const kv_iter *it, kv_entry *e)
{
    node_entry(((const mem_iter *)it)->cur, e);
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
