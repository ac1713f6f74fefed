/*
 * manifest.h -- the manifest: a database's durable state, one JSON object
 * per version at manifest/<id:020>.manifest (jansson).  Byte-level schema:
 * docs/format.md.
 *
 * A new version is written at id+1 with put-if-absent: that is the
 * compare-and-swap.  manifest_store_update() re-reads and re-applies a
 * mutation when it loses the race.
 *
 * User keys are stored as JSON strings in a lossless escaped form:
 * printable ASCII except '%' as itself, every other byte as %XX.
 *
 * Thread safety: a manifest struct is plain data owned by one thread at a
 * time; the store functions are safe to call from many threads.
 */
#ifndef SHALE_MANIFEST_H
#define SHALE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_objstore.h"
#include "db/paths.h"

#define MANIFEST_FORMAT_VERSION 1

/* A compacted SST (L0 or sorted run member). */
typedef struct sst_handle {
    char id[27];          /* ULID: object compacted/<id>.sst */
    char *store_uri;      /* NULL: this database's store; else a parent's */
    uint64_t size;        /* object bytes */
    uint64_t entries;
    uint8_t *first_key; size_t first_klen;   /* malloc'd; NULL if empty */
    uint8_t *last_key;  size_t last_klen;
    uint64_t tail;        /* bytes an open reads at the end (sst_info.tail);
                             0 = not recorded (manifests before it) */
} sst_handle;

typedef struct sorted_run {
    uint32_t id;          /* higher = newer */
    sst_handle *ssts;     /* key-ordered, non-overlapping */
    size_t count;
} sorted_run;

typedef struct checkpoint_rec {
    char id[37];          /* UUID */
    uint64_t manifest_id; /* version it pins */
    int64_t create_time_ms;
    int64_t expire_time_ms;   /* 0 = never */
    char *name;               /* NULL if none */
} checkpoint_rec;

/* A database whose SSTs this one references (a clone's parent, and the
 * parent's own parents, carried over). */
typedef struct parent_rec {
    char *store_uri;
    char source_checkpoint_id[37];  /* checkpoint the clone was made from */
    char final_checkpoint_id[37];   /* the pin this database holds there */
} parent_rec;

/* Arguments a clone was made with, so a repeat can be recognised. */
typedef struct clone_origin {
    char *parent_uri;
    char *parent_checkpoint_id;
    bool has_range;
} clone_origin;

typedef struct manifest {
    uint64_t id;                  /* version; not stored in JSON: the key is */
    uint32_t format_version;
    uint64_t writer_epoch;
    uint64_t compactor_epoch;
    uint64_t replay_after_wal_id; /* WAL ids <= this are in L0/runs */
    uint64_t next_wal_sst_id;     /* first WAL id not yet written */
    uint64_t last_l0_seq;         /* highest seq flushed to L0 */
    uint32_t next_run_id;
    bool initialized;             /* false while a clone is half made */
    char *wal_store_uri;          /* NULL: WAL in the main store */
    sst_handle *l0;  size_t l0_count;   /* newest first */
    sorted_run *runs; size_t run_count; /* newest first */
    checkpoint_rec *checkpoints; size_t checkpoint_count;
    parent_rec *parents; size_t parent_count;
    /* Visible key range [start, end); NULL = unbounded on that side. */
    uint8_t *range_start; size_t range_start_len;
    uint8_t *range_end;   size_t range_end_len;
    clone_origin origin;          /* set in a clone; parent_uri NULL otherwise */
} manifest;

/* A new empty manifest (id 0, format version current, initialized true,
 * next_wal_sst_id 1).  NULL on OOM. */
manifest *manifest_new(void);
void manifest_free(manifest *m);          /* accepts NULL */
/* Deep copy.  NULL on OOM. */
manifest *manifest_dup(const manifest *m);

/* Encodes as pretty JSON (malloc'd, NUL-terminated; *len excludes NUL). */
shale_status manifest_encode(const manifest *m, char **json, size_t *len);
/* Decodes; name (the object key) goes into messages.  SHALE_CORRUPT for bad
 * JSON or fields, naming the field; SHALE_UNSUPPORTED for a newer
 * format_version.  On success *out is new (id = 0; the caller sets it). */
shale_status manifest_decode(const char *name, const uint8_t *data, size_t len,
                             manifest **out);

/* Does SST h hold keys of [start, end)?  NULL (or length 0) = unbounded on
 * that side.  An SST with no entries overlaps nothing.  The one test a
 * clone (which SSTs it references), a split's plan and its Verify share. */
bool sst_handle_overlaps(const sst_handle *h, const uint8_t *start, size_t start_len,
                         const uint8_t *end, size_t end_len);

/* Copies an sst_handle's contents (deep). */
shale_status sst_handle_copy(sst_handle *dst, const sst_handle *src);
void sst_handle_clear(sst_handle *h);

/* Key escaping used by the JSON form (also handy for messages and CLI).
 * Returns malloc'd NUL-terminated text / bytes; NULL on OOM or bad input. */
char *manifest_key_escape(const uint8_t *key, size_t len);
uint8_t *manifest_key_unescape(const char *text, size_t *len);

/* ---- Versions in a store ------------------------------------------------ */


/* Loads the newest version.  hint: a version known to exist (0 = none):
 * only the keys after it are listed (one request for up to 1,000 newer
 * versions), with a full LIST as the fallback when it is gone.  SHALE_NOT_FOUND if
 * the store has no manifest. */
shale_status manifest_store_load_latest(shale_objstore *s, uint64_t hint, manifest **out);
/* The newest version id after `after` (0 if none), by listing the keys
 * after its key (one request per 1,000 versions). */
shale_status manifest_store_newest_after(shale_objstore *s, uint64_t after, uint64_t *newest);
/* Loads one version. */
shale_status manifest_store_load(shale_objstore *s, uint64_t id, manifest **out);
/* The store's manifest cache (manifest_cache.c; none: false / nothing):
 * version id's bytes as read or written before (*data malloc'd, a copy),
 * and a version's bytes as just read or written. */
bool manifest_cache_get(shale_objstore *s, uint64_t id, void **data, size_t *len);
void manifest_cache_put(shale_objstore *s, uint64_t id, const void *data, size_t len);
/* Writes m at m->id with put-if-absent.  SHALE_PRECONDITION_FAILED if that
 * version exists. */
shale_status manifest_store_write(shale_objstore *s, const manifest *m);

/* A mutation for manifest_store_update(): edits m in place (m is a fresh
 * copy of the latest version).  Return SHALE_OK to write it, another code
 * to abort with that code (e.g. SHALE_FENCED). */
typedef shale_status (*manifest_mutator)(manifest *m, void *ctx);

/* Read-modify-write with retry: loads the latest version (starting from
 * *cur if given: it is used first and reloaded only on conflict), applies
 * fn, writes at id+1, and on SHALE_PRECONDITION_FAILED reloads and repeats
 * (bounded attempts).  On success *cur (if non-NULL) is replaced by the
 * written version (the old one freed). */
shale_status manifest_store_update(shale_objstore *s, manifest **cur,
                                   manifest_mutator fn, void *ctx);

/* Every version id in the store, ascending (malloc'd array). */
shale_status manifest_store_list_ids(shale_objstore *s, uint64_t **ids, size_t *n);

#endif
