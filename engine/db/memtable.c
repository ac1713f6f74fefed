/*
 * memtable.c -- skiplists in internal order over two arenas (LevelDB
 * style), in segments.
 *
 * Concurrency: one writer (the caller serialises memtable_add) and any
 * number of lock-free readers.  A node is fully built, its forward pointers
 * set from the level below up, and only then linked in with release
 * stores; readers follow links with acquire loads, so they see either the
 * old list or the new node complete.  A new segment (see SEG_ENTRIES) is
 * built whole, and its predecessor's bloom filter, before the segment
 * count is raised with a release store.  Nodes are never unlinked or freed
 * before the memtable itself (reference counted).
 *
 * Node layout in the node arena: the node header (key/value lengths, seq,
 * value pointer), the key bytes padded to 8, then `height` atomic next
 * pointers.  Values live in a value arena of their own.  Why (issue 19:
 * fillrandom at 1M keys): a search's visits below the top levels were
 * cache misses.  With the key beside the header and the values elsewhere,
 * a visit reads one compact record (48 bytes for a 16-byte key at height
 * 1, against 160 with a 100-byte value inline), and a segment's nodes fit
 * in a core's cache.  Arena blocks are 64 KiB from malloc for the first
 * four of each arena, then 2 MiB mapped directly (or one larger block for
 * a big entry).
 */
#include "db/memtable.h"
#include "table/bloom.h"
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

/* Segments: the memtable is a list of skiplists, and only the newest (the
 * active one) takes inserts.  When it holds SEG_ENTRIES entries it is
 * frozen and a new one started, so an insert searches a skiplist of at
 * most SEG_ENTRIES nodes (~1.6 MiB of nodes for 16-byte keys: it stays
 * in the core's cache) instead of one of the whole memtable's (450k
 * nodes at 64 MiB of 100-byte values, a cache miss per visit below the
 * top levels; issue 19: fillrandom).  A get checks each frozen segment's
 * bloom filter (one cache line) before searching it; an iterator merges
 * the segments.  From MAX_SEGS on, the last segment keeps growing. */
#define SEG_ENTRIES 32768u
#define MAX_SEGS 64u
#define BLOOM_LINES (SEG_ENTRIES * 16u / 512u)   /* 16 bits per key, 64 KiB */
#define SEG_PROBES 6

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

/* One segment: a skiplist of its own, and once frozen a blocked bloom
 * filter over its user keys (BLOOM_LINES cache lines, SEG_PROBES bits set
 * in one line per key: one cache miss per frozen segment a get skips). */
typedef struct seg {
    node *head;
    _Atomic int max_height;
    uint64_t *bloom;             /* BLOOM_LINES * 8 words, built at freezing */
    _Atomic uint64_t max_seq;    /* newest entry in the segment */
    uint32_t count;              /* entries; the writer's */
} seg;

struct memtable {
    _Atomic int refs;
    _Atomic unsigned nsegs;      /* segs[0..nsegs) exist; the last is active */
    arena nodes, values;
    _Atomic size_t bytes;
    _Atomic uint64_t count;
    _Atomic uint64_t max_seq;
    uint64_t rng;
    seg segs[MAX_SEGS];
};

/* n bytes aligned to `align` (a power of two, at most 64) from a. */
static void *arena_alloc(memtable *m, arena *a, size_t n, size_t align)
{
    arena_block *b = a->blocks;
    size_t pad = b ? (size_t)(-(uintptr_t)(b->data + b->used) & (align - 1)) : 0;
    if (!b || b->cap - b->used < n + pad) {
        bool big = a->nblocks >= SMALL_BLOCKS;
        size_t unit = big ? BIG_BLOCK - sizeof(arena_block) : ARENA_BLOCK;
        size_t cap = n > unit / 4 ? n + align : unit;
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
        pad = (size_t)(-(uintptr_t)b->data & (align - 1));
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

/* Sets up segs[i] (not yet published). */
static shale_status seg_init(memtable *m, unsigned i)
{
    seg *s = &m->segs[i];
    kv_entry none = {NULL, 0, 0, KV_DELETE, NULL, 0};
    if (!(s->head = new_node(m, &none, MAX_HEIGHT)))
        return SHALE_OOM();
    s->bloom = NULL;
    atomic_init(&s->max_height, 1);
    atomic_init(&s->max_seq, 0);
    s->count = 0;
    return SHALE_OK;
}

/* The bloom line of a key's hash and the SEG_PROBES bits it sets there. */
static inline const uint64_t *bloom_line(const seg *s, uint64_t h)
{
    return s->bloom + ((h >> 32) & (BLOOM_LINES - 1)) * 8;
}

static void bloom_add(seg *s, uint64_t h)
{
    uint64_t *line = (uint64_t *)(uintptr_t)bloom_line(s, h);
    uint32_t a = (uint32_t)h, d = (a >> 17) | (a << 15) | 1;
    for (int j = 0; j < SEG_PROBES; j++, a += d)
        line[(a & 511) >> 6] |= (uint64_t)1 << (a & 63);
}

static bool bloom_has(const seg *s, uint64_t h)
{
    const uint64_t *line = bloom_line(s, h);
    uint32_t a = (uint32_t)h, d = (a >> 17) | (a << 15) | 1;
    for (int j = 0; j < SEG_PROBES; j++, a += d)
        if (!(line[(a & 511) >> 6] & ((uint64_t)1 << (a & 63))))
            return false;
    return true;
}

/* Builds the bloom filter of the active segment before it is frozen: it
 * was just written, so its nodes are still in the cache, and a memtable
 * that never fills a segment (most small ones) pays nothing. */
static shale_status seg_build_bloom(memtable *m, seg *s)
{
    if (!(s->bloom = arena_alloc(m, &m->nodes, BLOOM_LINES * 64, 64)))
        return SHALE_OOM();
    memset(s->bloom, 0, BLOOM_LINES * 64);
    for (const node *x = atomic_load_explicit(&node_next(s->head)[0], memory_order_relaxed); x;
         x = atomic_load_explicit(&node_next(x)[0], memory_order_relaxed))
        bloom_add(s, bloom_hash(node_key(x), x->klen));
    return SHALE_OK;
}

memtable *memtable_new(void)
{
    memtable *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    random_bytes(&m->rng, sizeof m->rng);
    m->rng |= 1;
    if (seg_init(m, 0)) {
        arena_free(&m->nodes);
        free(m);
        return NULL;
    }
    atomic_init(&m->nsegs, 1);
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

/* First node of s >= (key, seq); fills prev[] when non-NULL. */
static node *find_ge(seg *s, const uint8_t *key, size_t klen, uint64_t seq, node **prev)
{
    node *x = s->head;
    int level = atomic_load_explicit(&s->max_height, memory_order_acquire) - 1;
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
    unsigned n = atomic_load_explicit(&m->nsegs, memory_order_relaxed);
    seg *s = &m->segs[n - 1];
    if (s->count >= SEG_ENTRIES && n < MAX_SEGS) {
        /* Freeze the active segment (its bloom is complete) and start the
         * next; readers see the new one only once it is whole. */
        if (seg_build_bloom(m, s) || seg_init(m, n)) {
            s->bloom = NULL;   /* built again, whole, at the next try */
            return SHALE_OOM();
        }
        atomic_store_explicit(&m->nsegs, n + 1, memory_order_release);
        s = &m->segs[n];
    }
    node *prev[MAX_HEIGHT];
    find_ge(s, e->key, e->klen, e->seq, prev);
    int h = random_height(m);
    int cur = atomic_load_explicit(&s->max_height, memory_order_relaxed);
    if (h > cur) {
        for (int i = cur; i < h; i++)
            prev[i] = s->head;
        atomic_store_explicit(&s->max_height, h, memory_order_release);
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
    s->count++;
    if (e->seq > atomic_load_explicit(&s->max_seq, memory_order_relaxed))
        atomic_store_explicit(&s->max_seq, e->seq, memory_order_relaxed);
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
    unsigned n = atomic_load_explicit(&m->nsegs, memory_order_acquire);
    uint64_t h = n > 1 ? bloom_hash(key, klen) : 0;
    /* The frozen segments' bloom lines are independent loads: start them
     * all before the active segment's search. */
    for (unsigned i = 0; i + 1 < n; i++)
        __builtin_prefetch(bloom_line(&m->segs[i], h));
    const node *best = NULL;
    /* Newest segment first: entries are added in seq order, so the first
     * hit is the answer and older segments (max_seq below it) are
     * skipped; the contract does not promise that order, so a segment
     * with newer entries is still searched. */
    for (unsigned i = n; i-- > 0;) {
        seg *s = &m->segs[i];
        if (best && atomic_load_explicit(&s->max_seq, memory_order_relaxed) <= best->seq)
            continue;
        if (i + 1 < n && !bloom_has(s, h))
            continue;
        node *x = find_ge(s, key, klen, max_seq, NULL);
        if (x && !kv_key_cmp(node_key(x), x->klen, key, klen) && (!best || x->seq > best->seq))
            best = x;
    }
    if (!best)
        return false;
    node_entry(best, out);
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

/* Over one segment; a memtable of several is their merge (iter.h).  The
 * segments are those that existed when the iterator was made: an entry
 * added later may or may not be seen, as with a single skiplist. */
typedef struct mem_iter {
    kv_iter base;
    memtable *m;
    seg *s;
    node *cur;
} mem_iter;

static void mi_seek_first(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    mi->cur = atomic_load_explicit(&node_next(mi->s->head)[0], memory_order_acquire);
}

static void mi_seek(kv_iter *it, const uint8_t *key, size_t klen)
{
    mem_iter *mi = (mem_iter *)it;
    mi->cur = find_ge(mi->s, key, klen, KV_MAX_SEQ, NULL);
}

static void mi_next(kv_iter *it)
{
    mem_iter *mi = (mem_iter *)it;
    node *x = atomic_load_explicit(&node_next(mi->cur)[0], memory_order_acquire);
    mi->cur = x;
    /* The merge compares this node's key at once (a miss there either way)
     * but reads its value only when the entry comes out, some steps later
     * in a merge of many segments: start that read now (a flush copies
     * every value, in key order, at random places of the value arena). */
    if (x && x->val)
        __builtin_prefetch(x->val);
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

static kv_iter *seg_iter_new(memtable *m, seg *s)
{
    mem_iter *mi = calloc(1, sizeof *mi);
    if (!mi)
        return NULL;
    mi->base.ops = &mem_iter_ops;
    memtable_ref(m);
    mi->m = m;
    mi->s = s;
    return &mi->base;
}

kv_iter *memtable_iter_new(memtable *m)
{
    unsigned n = atomic_load_explicit(&m->nsegs, memory_order_acquire);
    if (n == 1)
        return seg_iter_new(m, &m->segs[0]);
    kv_iter *kids[MAX_SEGS];
    for (unsigned i = 0; i < n; i++)
        if (!(kids[i] = seg_iter_new(m, &m->segs[i]))) {
            while (i-- > 0)
                kv_iter_destroy(kids[i]);
            return NULL;
        }
    return merge_iter_new(kids, n);
}
