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

/* Bytewise comparison of user keys; shorter prefix sorts first. */
static inline int kv_key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
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
