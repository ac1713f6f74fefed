/*
 * sst_format.h -- constants of the SST layout shared by the builder and the
 * reader (docs/format.md "SST format"):
 *
 *   [data block]...[filter block][index block][properties block][footer]
 *
 * Every block is a stored block (block.h: content, maybe zstd, 13-byte
 * trailer with XXH3).  The footer is 72 bytes, little-endian:
 *   u64 filter_off, u64 filter_size, u64 index_off, u64 index_size,
 *   u64 props_off, u64 props_size, u32 format_version, u32 flags,
 *   u64 magic ("SHALESST"), u64 XXH3-64 of the 64 bytes before it.
 * filter_size 0 means "no filter".  The filter, index and properties
 * blocks are contiguous, so a reader fetches them with one ranged GET.
 *
 * Index content: per data block, varint key length, the block's last user
 * key, varint offset, varint stored size; from format 2 on also varint
 * entries and varint key+value bytes of the block.
 * Properties content: varint entries, varint min_seq, varint max_seq,
 * varint first key length, first key, varint last key length, last key.
 */
#ifndef SHALE_SST_FORMAT_H
#define SHALE_SST_FORMAT_H

#define SST_FOOTER_SIZE 72
#define SST_MAGIC 0x5453534C41485353ULL   /* "SSHALSST" little-endian bytes */
/* Written: 2.  Read: 1 (index entries without the block's entries and
 * key+value bytes) and 2. */
#define SST_FORMAT_VERSION 2
#define SST_FORMAT_VERSION_MIN 1

#endif
