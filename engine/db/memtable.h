/*
 * memtable.h -- the in-memory write buffer: skiplists in internal order
 * (kv.h) over arenas, in segments of at most 32768 entries (the newest takes
 * the inserts; gets consult each older one's bloom filter first).
 *
 * Thread safety: one writer at a time (the caller serialises memtable_add),
 * any number of concurrent readers and iterators without locks: nodes are
 * published with release stores and never freed before the memtable.
 * Reference counted: the db, frozen-memtable list, iterators and flushes
 * each hold a reference.
 */
#ifndef SHALE_MEMTABLE_H
#define SHALE_MEMTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"
#include "table/iter.h"

typedef struct memtable memtable;

memtable *memtable_new(void);              /* refcount 1; NULL on OOM */
void memtable_ref(memtable *m);
void memtable_unref(memtable *m);          /* frees at zero; accepts NULL */

/* Copies the entry in.  The same (key, seq) must not be added twice. */
shale_status memtable_add(memtable *m, const kv_entry *e);

/* Newest entry for key with seq <= max_seq (tombstones included, as
 * KV_DELETE).  Returns true and fills *out (bytes borrowed from the
 * memtable, valid while the caller holds a reference) if found. */
bool memtable_get(memtable *m, const uint8_t *key, size_t klen, uint64_t max_seq,
                  kv_entry *out);

/* Iterator over all entries; holds a reference.  NULL on OOM.  Entries
 * added while it is open may or may not be seen (those of a segment begun
 * after it was made are not). */
kv_iter *memtable_iter_new(memtable *m);

size_t memtable_bytes(const memtable *m);      /* approximate memory use */
uint64_t memtable_count(const memtable *m);    /* entries */
uint64_t memtable_max_seq(const memtable *m);  /* 0 when empty */

#endif
