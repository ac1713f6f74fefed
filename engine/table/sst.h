/*
 * sst.h -- sorted string tables: the one on-disk table format, used for WAL
 * SSTs (wal/<id>.sst) and compacted SSTs (compacted/<ulid>.sst).
 *
 * Byte layout: docs/format.md.  In short: data blocks (prefix-compressed
 * entries with restart points, zstd where it shrinks the block), a bloom
 * filter block, an index block, a properties block and a fixed footer with
 * magic and format version; every block carries an XXH3 checksum which the
 * reader verifies before use.  A check that fails is SHALE_CORRUPT with the
 * object name and byte offset in the message; bad data is never returned.
 *
 * An SST may be empty (0 entries): the fencing WAL SST is one.
 *
 * Thread safety: a builder is single-threaded.  An sst_reader may be used
 * by many threads at once (get and iterators; what it loads lazily is
 * published atomically); it is reference counted.
 */
#ifndef SHALE_SST_H
#define SHALE_SST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_objstore.h"
#include "table/iter.h"
#include "table/cache.h"
#include "util/buf.h"

typedef struct sst_options {
    size_t block_size;          /* target uncompressed data-block size */
    int compression_level;      /* zstd level (below 0: its fast levels); 0 = raw */
    uint32_t bloom_bits_per_key;/* 0 = no filter */
} sst_options;

/* Summary of an SST (from the builder, or the properties block). */
typedef struct sst_info {
    uint64_t entries;
    uint64_t size;              /* total object size in bytes */
    uint64_t min_seq, max_seq;  /* 0/0 when empty */
    uint8_t *first_key;         /* malloc'd (NULL when empty) */
    size_t first_klen;
    uint8_t *last_key;          /* malloc'd (NULL when empty) */
    size_t last_klen;
    uint64_t tail;              /* the bytes an open must read at the object's
                                   end: top-level index (formats 1-2: the
                                   index), properties, footer */
} sst_info;

void sst_info_free(sst_info *i);   /* frees the keys; accepts NULL */

typedef struct sst_builder sst_builder;

/* NULL on allocation failure.  Writes the current format (3). */
sst_builder *sst_builder_new(const sst_options *o);
/* For tests of old-format reads: write format 1 or 2 instead (before the
 * first add).  SHALE_INVALID_ARGUMENT for any other version. */
shale_status sst_builder_set_format(sst_builder *b, uint32_t format);
/* Adds an entry; entries must come in strictly increasing internal order
 * (kv.h), else SHALE_INVALID_ARGUMENT.  The entry's bytes are copied. */
shale_status sst_builder_add(sst_builder *b, const kv_entry *e);
uint64_t sst_builder_entries(const sst_builder *b);
/* Bytes the finished SST would take if finished now (approximate). */
size_t sst_builder_size_estimate(const sst_builder *b);
/* Writes the whole SST image to *out (appended) and fills *info (may be
 * NULL).  The builder cannot be used afterwards except to free it. */
shale_status sst_builder_finish(sst_builder *b, shale_buf *out, sst_info *info);
void sst_builder_free(sst_builder *b);

/* Builds a whole SST from every entry of it (seek_first onward; the
 * iterator is borrowed and must yield internal order).  info may be NULL. */
shale_status sst_build_from_iter(const sst_options *o, kv_iter *it, shale_buf *out,
                                 sst_info *info);

typedef struct sst_reader sst_reader;

/* Opens the SST stored at key in s.  size is the object size if known (from
 * the manifest), else 0 and the object is looked up and measured.  Opens a
 * shale_objreader on the object, kept until the reader is freed (on file://
 * an open descriptor: every later block read is one pread), then reads the
 * object's last 16 KiB (footer, and most often the top-level index, the
 * properties and the last index partitions) and, only if they were not
 * all in it, the top-level index and the properties (format 3; formats 1
 * and 2: the whole index), and checks them.  The filter is read on the first sst_reader_get() or
 * sst_reader_may_contain(), each index partition on the first seek into
 * it; neither is read by scans, seeks elsewhere or split facts.  cache may
 * be NULL.  The store and cache are borrowed and must outlive the reader. */
shale_status sst_reader_open(shale_objstore *s, const char *key, uint64_t size,
                             block_cache *cache, sst_reader **out);
/* sst_reader_open(), sharing what is read of the SST's metadata (footer,
 * index partitions, filter) with every other reader in the process opened
 * with the same ident, key and size (table/sst_table.h): ident names the
 * store whatever URI reached it (db/env.c passes the canonical URI).  NULL
 * ident: not shared. */
shale_status sst_reader_open_shared(shale_objstore *s, const char *ident, const char *key,
                                    uint64_t size, block_cache *cache, sst_reader **out);
/* sst_reader_open_shared() with the manifest's tail (sst_info.tail: the
 * bytes from the top-level index to the end): the open reads exactly that
 * much, one request, instead of SST_TAIL_READ.  0 = not known. */
shale_status sst_reader_open_tail(shale_objstore *s, const char *ident, const char *key,
                                  uint64_t size, uint64_t tail, block_cache *cache,
                                  sst_reader **out);
/* Opens the SST at key for what its index says, reading only the footer
 * and the index and properties blocks (two ranged reads; format 3: every
 * partition with the top level and the properties in the second; no
 * filter, no data block): shard facts and split points (shard_stats.c).
 * Reads through it still work, without a bloom filter. */
shale_status sst_reader_open_index(shale_objstore *s, const char *key, uint64_t size,
                                   sst_reader **out);
/* The data blocks as the index lists them (only for readers from
 * sst_reader_open_index(), which hold every partition). */
typedef struct sst_block_info {
    const uint8_t *last_key;    /* borrowed from the reader */
    size_t klen;
    uint64_t stored_size;       /* with its trailer */
    bool has_counts;            /* SST format >= 2: the two below are known */
    uint64_t entries;           /* entries (versions, tombstones) in the block */
    uint64_t kv_bytes;          /* their user key + value bytes */
} sst_block_info;
size_t sst_reader_block_count(const sst_reader *r);
void sst_reader_block(const sst_reader *r, size_t i, sst_block_info *out);

/* Opens an SST from a complete in-memory image (WAL replay, verify).  name
 * is used in messages.  If own, the reader frees data (malloc'd). */
shale_status sst_reader_open_mem(const char *name, uint8_t *data, size_t len, bool own,
                                 sst_reader **out);
void sst_reader_ref(sst_reader *r);
void sst_reader_unref(sst_reader *r);      /* frees at zero; accepts NULL */

const sst_info *sst_reader_info(const sst_reader *r);
const char *sst_reader_name(const sst_reader *r);

/* Whether block reads on the calling thread insert the blocks they decode
 * into the block cache (default true).  The compactor turns it off while it
 * merges: its inputs are read once, and filling the cache with them took
 * the cache to its limit during every compaction (issue 19: ~200 MiB of a
 * 1M-key run's peak RSS; RocksDB's compaction reads with fill_cache off
 * too).  Blocks already cached are still used. */
void sst_thread_fill_cache(bool fill);

/* Bytes the first block read after a seek covers on the calling thread (0,
 * the default: that block alone): with bytes > 0 it reads the block and
 * those after it up to bytes in one request, and the iterator takes the
 * next ones from that read.  A prefetch (shale_reader_prefetch) of a
 * short window sets it, so a window that crosses one block boundary costs
 * one round trip, not two. */
void sst_thread_seek_read(uint32_t bytes);

/* Scans on the calling thread read whole ranges (shale_thread_scan_
 * readahead): a seek's first read covers up to bytes (to its index
 * partition's end, as with sst_thread_seek_read), and every readahead
 * window after it starts at bytes (capped at the iterator's largest, 1 MiB)
 * instead of ramping up from 64 KiB.  0, the default: the ramp.  A
 * prefetch's sst_thread_seek_read() on the same thread takes precedence
 * for its seeks and leaves this setting as it was. */
void sst_thread_scan_readahead(uint32_t bytes);

/* False only if the bloom filter proves key absent.  Loads the filter on
 * first use; if that read fails the answer is true, and sst_reader_get()
 * reports the error. */
bool sst_reader_may_contain(sst_reader *r, const uint8_t *key, size_t klen);

/* Finds the newest entry for key with seq <= max_seq.  SHALE_OK: *e filled,
 * with e->key/e->val pointing into *scratch (caller-owned buffer, reset by
 * the call).  SHALE_NOT_FOUND: no such entry (tombstones ARE returned, as
 * KV_DELETE entries).  Other codes: read or corruption errors. */
shale_status sst_reader_get(sst_reader *r, const uint8_t *key, size_t klen,
                            uint64_t max_seq, kv_entry *e, shale_buf *scratch);

/* Iterator over every entry in internal order; holds a reference on r.
 * NULL on allocation failure. */
kv_iter *sst_iter_new(sst_reader *r);

/* Reads and checks every block; counts them in *blocks (may be NULL). */
shale_status sst_reader_verify(sst_reader *r, uint64_t *blocks);

#endif
