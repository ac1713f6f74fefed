/*
 * batch.h -- the write batch's encoding, for the writer.
 *
 * A batch is a byte buffer of records: u8 kind (KV_PUT/KV_DELETE), varint
 * key length, key, and for puts varint value length and value.  It is
 * applied as one unit: consecutive sequence numbers, one WAL SST.
 */
#ifndef SHALE_BATCH_H
#define SHALE_BATCH_H

#include "shale.h"
#include "table/kv.h"
#include "util/buf.h"

struct shale_batch {
    shale_buf buf;
    size_t count;
};

/* Iterates a batch's records: *pos starts at 0; returns false at the end.
 * The entry's pointers borrow from the batch; seq is left 0. */
bool batch_next(const shale_batch *b, size_t *pos, kv_entry *e);

/* The checks shale_batch_put/delete make on one record (key present, not
 * empty, key and value sizes within bounds); a single put or delete is
 * applied from them without building a batch. */
shale_status batch_check(uint8_t kind, const void *key, size_t klen, const void *val,
                         size_t vlen);

/* Bytes the batch will take in memtables (for stall accounting). */
size_t batch_bytes(const shale_batch *b);

#endif
