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

/* Bytes the batch will take in memtables (for stall accounting). */
size_t batch_bytes(const shale_batch *b);

#endif
