/*
 * sst_format.h -- constants of the SST layout shared by the builder and the
 * reader (docs/format.md "SST format"):
 *
 *   format 1, 2: [data block]...[filter][index block][properties][footer]
 *   format 3:    [data block]...[filter][index partition]...[top-level
 *                index][properties][footer]
 *
 * Every block is a stored block (block.h: content, maybe zstd, 13-byte
 * trailer with XXH3).  The footer is 72 bytes, little-endian:
 *   u64 filter_off, u64 filter_size, u64 index_off, u64 index_size,
 *   u64 props_off, u64 props_size, u32 format_version, u32 flags,
 *   u64 magic ("SHALESST"), u64 XXH3-64 of the 64 bytes before it.
 * filter_size 0 means "no filter".  The filter, index and properties
 * are contiguous.  In format 3 the "index" region is the index partitions
 * followed by the top-level index, and the u32 at 52 (flags, 0 before) is
 * the top-level index's stored size: a reader fetches top-level index and
 * properties with one ranged GET after the footer, without the filter or
 * a partition; the filter is read on the first point lookup that needs it
 * and each partition on the first seek into it.
 *
 * Index content: per data block, varint key length, the block's last user
 * key, varint offset, varint stored size; from format 2 on also varint
 * entries and varint key+value bytes of the block.
 * Format 3: every index partition's content is format-2 index entries
 * for a run of consecutive data blocks (cut at SST_PARTITION_BYTES); the
 * top-level index has per partition: varint key length, the partition's
 * last user key (its last block's), varint offset, varint stored size,
 * varint data blocks, varint entries, varint key+value bytes, varint
 * stored bytes of its data blocks.
 * Properties content: varint entries, varint min_seq, varint max_seq,
 * varint first key length, first key, varint last key length, last key.
 */
#ifndef SHALE_SST_FORMAT_H
#define SHALE_SST_FORMAT_H

#define SST_FOOTER_SIZE 72
#define SST_MAGIC 0x5453534C41485353ULL   /* "SSHALSST" little-endian bytes */
/* Written: 3.  Read: 1 (index entries without the block's entries and
 * key+value bytes), 2 (one index block) and 3 (partitioned index). */
#define SST_FORMAT_VERSION 3
#define SST_FORMAT_VERSION_MIN 1
#define SST_FORMAT_PARTITIONED 3
/* Target content bytes of an index partition: about 100 data blocks of
 * 4 KiB with 16-byte keys, so a seek into a 64 MB SST reads one 4 KiB
 * partition instead of the whole 0.5 MB index. */
#define SST_PARTITION_BYTES 4096

#endif
