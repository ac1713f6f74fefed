/*
 * sst_table.h -- what an SST's readers share (internal to engine/table):
 * the footer, properties, index and filter of one SST object, loaded
 * once per process and piece by piece (docs/format.md "SST format").
 *
 * An sst_table is the decoded metadata of one SST.  Open loads only the
 * footer, the properties and the index's top level (format 3: a small
 * index of index partitions; formats 1 and 2: the whole index, as one
 * partition).  Index partitions are loaded on the first seek into them and
 * the bloom filter on the first point lookup that asks for it; each is
 * loaded once and kept for the table's life (read under a per-piece
 * load lock and published atomically: two readers that want one piece at
 * once make one read, and lookups of loaded pieces take no lock).  A table holds no store: every read goes through the sst_src of
 * the reader that asks, so a table loaded through one database handle's
 * store serves the readers of every other handle on the same object.
 *
 * Sharing: tables opened with an identity (the canonical URI of the store,
 * db/env.c) are registered process-wide by (identity, key, size), so the
 * parent's readers and every clone child's readers of one SST -- a
 * references split opens the parent's SSTs from each child's handle --
 * read its footer, index and filter once.  The registry holds no
 * reference: a table lives while a reader uses it.  SST objects are never
 * rewritten under a key (docs/format.md "Object layout"); the size is
 * part of the identity all the same.
 *
 * Thread safety: every function may be called from many threads at once.
 */
#ifndef SHALE_SST_TABLE_H
#define SHALE_SST_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_objstore.h"
#include "table/sst.h"

#define SST_LOAD_LOCKS 8
/* A reader's open reads this much of the object's end (or all of a smaller
 * object): footer, top-level index, properties and the last partitions of
 * an SST of 64 MB in one request (the top level of one is about 6 KB). */
#define SST_TAIL_READ (16u << 10)

/* Where a table's bytes come from: a reader's open object or image. */
typedef struct sst_src {
    const char *name;           /* for messages: "<store uri>/<key>" */
    shale_objreader *rd;        /* or */
    const uint8_t *image;       /* a whole in-memory image */
    uint64_t size;
} sst_src;

/* Reads [off, off+len) of src: *data is src's image (not owned) or
 * malloc'd (*owned).  Past the end is SHALE_CORRUPT naming the object. */
shale_status sst_src_read(const sst_src *src, uint64_t off, uint64_t len, uint8_t **data,
                          bool *owned);
shale_status sst_src_corrupt(const sst_src *src, const char *what, uint64_t off);

/* One data block as the index lists it. */
typedef struct sst_ientry {
    const uint8_t *last_key;    /* into the partition's content */
    size_t klen;
    uint64_t off, size;
    uint64_t entries, kv_bytes; /* format >= 2; else 0 */
} sst_ientry;

/* Search keys (sst_keys_build): every key of a sorted list shares its
 * first cp bytes, and pfx[i] holds the 8 bytes after them of key i,
 * big-endian, zero-padded.  A lookup's binary search compares these
 * (contiguous: a few cache lines for a partition of ~100 blocks) and reads
 * a key itself only where two prefixes are equal; comparing the keys
 * (pointers into the partition's content) missed the cache twice per step
 * and was the largest part of a cold lookup's index search
 * (docs/benchmarks.md). */
typedef struct sst_keys {
    const uint8_t *cpk;         /* the shared bytes (into the first key) */
    size_t cp;
    uint64_t *pfx;              /* NULL: none, search the keys */
} sst_keys;

typedef struct sst_part {
    uint8_t *content;
    sst_ientry *e;
    size_t n;
    sst_keys keys;
} sst_part;

/* One index partition as the top level lists it. */
typedef struct sst_top {
    const uint8_t *last_key;
    size_t klen;
    uint64_t off, size;         /* the stored partition */
    uint64_t blocks, entries, kv_bytes, data_bytes;
    size_t first_block;         /* global number of its first data block */
} sst_top;

typedef struct sst_filter {
    uint8_t *data;
    size_t len;
} sst_filter;

typedef struct sst_table {
    uint64_t size;
    uint32_t version;
    uint64_t filter_off, filter_size;
    uint64_t data_end;          /* data blocks end here (the filter's offset) */
    uint64_t parts_off, parts_end;  /* format 3: the partitions' region */
    _Atomic(sst_filter *) filter;   /* NULL until loaded */
    uint8_t *top_content;
    sst_top *top;
    sst_keys top_keys;          /* of top[].last_key */
    size_t nparts, nblocks;
    _Atomic(sst_part *) *parts; /* nparts slots, NULL until loaded */
    /* A second reader of a piece being read waits for the first one's
     * read instead of making its own (Verify reads one window through the
     * parent's reader and a child's at once).  Partition p: loading[p] is
     * set while it is read, under load_mu[p % SST_LOAD_LOCKS], and waiters
     * wait on load_cv[p % SST_LOAD_LOCKS]; the lock is not held during
     * the read, so loads of two partitions that share a lock go on at once
     * (Verify's windows load many partitions of one SST at once).  Without
     * the flags (formats 1 and 2: the one partition is loaded at open)
     * the lock is held for the read.  The filter: filter_mu is held. */
    pthread_mutex_t load_mu[SST_LOAD_LOCKS];
    pthread_cond_t load_cv[SST_LOAD_LOCKS];
    uint8_t *loading;           /* nparts flags, or NULL */
    pthread_mutex_t filter_mu;
    sst_info info;
    /* Registry (sst_table.c). */
    int refs;                   /* under the registry lock */
    int state;                  /* 0 loading, 1 ready */
    char *reg_key;              /* NULL: private to one reader */
    struct sst_table *next;
} sst_table;

/* A table for src: shared under (ident, key, src->size) when ident is not
 * NULL, else private.  Reads the last tail bytes (the manifest's count of
 * the top level, properties and footer; 0 = not known: SST_TAIL_READ, the
 * footer and most often top-level index and properties), then only if they were not
 * all in it, the top-level index and properties; partitions found whole in
 * the tail are kept.  With all_parts: the footer alone, then every index
 * partition, the top level and the properties in one read (no filter or
 * data bytes).  Another thread opening the same
 * SST at once waits for this load instead of making its own.  On SHALE_OK
 * *out is referenced (sst_table_unref). */
shale_status sst_table_open(const sst_src *src, const char *ident, const char *key,
                            bool all_parts, uint64_t tail, sst_table **out);
void sst_table_unref(sst_table *t);   /* accepts NULL */

/* Partition p, loaded through src if it is not yet (one ranged read). */
shale_status sst_table_part(sst_table *t, const sst_src *src, size_t p, const sst_part **out);
/* Every partition from p0 on not yet loaded, with one ranged read. */
shale_status sst_table_load_all(sst_table *t, const sst_src *src, size_t p0);
/* The filter (loaded through src on first use); *out NULL if the SST has
 * none. */
shale_status sst_table_filter(sst_table *t, const sst_src *src, const sst_filter **out);
/* First partition whose last key >= key (nparts if none). */
size_t sst_table_find_part(const sst_table *t, const uint8_t *key, size_t klen);
/* First block of a partition whose last key >= key (p->n if none). */
size_t sst_part_find(const sst_part *p, const uint8_t *key, size_t klen);

/* For tests, since the process started: tables in the registry, shared
 * opens and those that found the table loaded, index partitions and
 * filters loaded, and the ranged reads made for them after open
 * (lazy_reads: one per partition or filter, or per sst_table_load_all). */
typedef struct sst_table_stats {
    uint64_t tables, opens, shared_hits, part_loads, filter_loads, lazy_reads;
    uint64_t open_reads;        /* ranged reads made by table opens */
} sst_table_stats;
void sst_table_stats_get(sst_table_stats *out);

#endif
