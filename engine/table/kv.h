/*
 * kv.h -- the internal entry: user key, sequence number, kind, value.
 *
 * Internal order (memtable, SSTs, iterators): user key bytewise ascending,
 * then sequence number DESCENDING, so the newest version of a key comes
 * first.  A tombstone (KV_DELETE) has no value.
 */
#ifndef SHALE_KV_H
#define SHALE_KV_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { KV_DELETE = 0, KV_PUT = 1 };

#define KV_MAX_SEQ UINT64_MAX

typedef struct kv_entry {
    const uint8_t *key;
    size_t klen;
    uint64_t seq;
    uint8_t kind;          /* KV_PUT or KV_DELETE */
    const uint8_t *val;    /* NULL/0 for KV_DELETE */
    size_t vlen;
} kv_entry;

/* Bytewise comparison of user keys; shorter prefix sorts first.  Returns
 * -1, 0 or 1.  Compares eight bytes at a time as big-endian words, inline:
 * keys are short and comparisons are hot (a memtable insert makes ~40 in
 * its skiplist search).  memcmp was a sixth of a fillrandom run's samples;
 * inlining took about 5 % off its puts (docs/benchmarks.md). */
static inline int kv_key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            x = __builtin_bswap64(x);
            y = __builtin_bswap64(y);
#endif
            return x < y ? -1 : 1;
        }
    }
    for (; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return al < bl ? -1 : al > bl;
}

/* Internal order: key ascending, seq descending. */
static inline int kv_cmp(const kv_entry *a, const kv_entry *b)
{
    int c = kv_key_cmp(a->key, a->klen, b->key, b->klen);
    if (c)
        return c;
    return a->seq > b->seq ? -1 : a->seq < b->seq;
}

#endif
