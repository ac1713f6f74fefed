/*
 * block.h -- data blocks: building, storing (compression + checksum) and
 * iterating.  Byte layout: docs/format.md "SST format".
 *
 * A block's content is a run of entries, each
 *     varint shared | varint unshared | varint value_len |
 *     key suffix[unshared] | u64 seq (LE) | u8 kind | value[value_len]
 * where `shared` bytes of the key are taken from the previous entry's key
 * (0 at every restart point, every 16 entries), followed by the restart
 * offsets (u32 LE each) and their count (u32 LE).
 *
 * A *stored* block is the content, zstd-compressed when that saves at least
 * 1/8, followed by a 13-byte trailer: u8 type (0 raw, 1 zstd), u32 content
 * length, u64 XXH3-64 of everything before the checksum.
 */
#ifndef SHALE_BLOCK_H
#define SHALE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"
#include "table/kv.h"
#include "util/buf.h"

#define BLOCK_RESTART_INTERVAL 16
#define BLOCK_TRAILER 13
#define BLOCK_MAX_CONTENT (256u << 20)

typedef struct block_builder {
    shale_buf data;
    shale_buf restarts;     /* u32 offsets */
    shale_buf last_key;
    uint32_t since_restart;
    uint32_t count;
} block_builder;

void block_builder_init(block_builder *b);
void block_builder_reset(block_builder *b);
void block_builder_free(block_builder *b);
shale_status block_builder_add(block_builder *b, const kv_entry *e);
size_t block_builder_size(const block_builder *b);
/* Appends the finished content (entries + restarts) to out. */
shale_status block_builder_finish(block_builder *b, shale_buf *out);

/* Appends content as a stored block (maybe compressed) to out. */
shale_status block_store(const uint8_t *content, size_t len, int zstd_level, shale_buf *out);

/* Verifies and decodes a stored block.  On success *content is malloc'd.
 * name/offset go into the SHALE_CORRUPT message. */
shale_status block_load(const char *name, uint64_t offset, const uint8_t *stored, size_t len,
                        uint8_t **content, size_t *content_len);

/* Iterator over one decoded block (content borrowed). */
typedef struct block_iter {
    const uint8_t *data;    /* entries region */
    size_t data_len;
    const uint8_t *restarts;
    uint32_t nrestarts;
    size_t next_off;        /* offset of the entry after the current */
    size_t cur_off;
    shale_buf key;          /* current full key */
    kv_entry e;
    bool valid;
    shale_status rc;
    const char *name;       /* for messages */
    uint64_t block_off;
} block_iter;

/* Checks the restart array; SHALE_CORRUPT if it does not fit. */
shale_status block_iter_init(block_iter *it, const char *name, uint64_t block_off,
                             const uint8_t *content, size_t len);
void block_iter_free(block_iter *it);
void block_iter_seek_first(block_iter *it);
/* First entry with user key >= key. */
void block_iter_seek(block_iter *it, const uint8_t *key, size_t klen);
void block_iter_next(block_iter *it);

#endif
