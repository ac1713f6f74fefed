/*
 * shale_admin.h -- what tools (the agent, the CLI) need from libshale beyond
 * reading and writing a database: store identity (below), and shard facts
 * and balanced split points (second part).
 *
 * Store identity (docs/format.md "Store identity").  A store is named by a
 * URI, and one store can be spelled many ways (file:///a/b/, file:///a//b,
 * file:///a/./c/../b, a symlink to /a/b; s3://B//p/ with an endpoint written
 * http://HOST:80).  Two things make aliases visible:
 *
 *   - The canonical URI: file:// -> the real path (realpath of the longest
 *     existing prefix, the rest normalised lexically); s3:// ->
 *     "s3+<scheme>://<host>[:<port>]/<bucket>/<prefix>" (host and bucket
 *     lowercased, default port and empty/trailing slashes dropped; the
 *     endpoint is the options' or AWS_ENDPOINT_URL, else AWS's for the
 *     region); mem://name -> itself; fault+<uri> -> the canonical URI of
 *     <uri> (the fault wrapper is over the same store).
 *   - The identity object, key ".shale/identity.json" in the store, written
 *     create-if-absent: a random UUID, what the store is (a database, a WAL
 *     store, or a child store claimed by a split), its canonical URI at
 *     creation and the creation time.  A writer open writes it in the
 *     database's store and in its separate WAL store when missing (stores
 *     made before identities existed get theirs then); a clone writes it in
 *     the child's stores when it initialises.  Two spellings whose
 *     identities carry the same UUID are one store, whatever their
 *     canonical URIs say (a bind mount, a second endpoint name).
 *
 * Status codes: SHALE_INVALID_ARGUMENT for a URI that cannot name a store;
 * SHALE_NOT_FOUND for "no identity object"; SHALE_CONFLICT for a store that
 * is not what the caller needs (names what it holds); SHALE_CORRUPT for an
 * identity object that does not parse (names the store); store failures
 * (SHALE_IO, SHALE_UNAUTHORIZED, ...) as the store reported them.
 *
 * Thread safety: every function is reentrant; none keeps state between
 * calls.  Concurrent claims of one store are decided by the store's
 * put-if-absent (exactly one owner wins).
 */
#ifndef SHALE_ADMIN_H
#define SHALE_ADMIN_H

#include "shale.h"

SHALE_API_BEGIN

typedef enum shale_store_kind {
    SHALE_STORE_KIND_UNKNOWN = 0,      /* a kind this version does not know */
    SHALE_STORE_KIND_DB,               /* "db": a database's main store */
    SHALE_STORE_KIND_WAL,              /* "wal": a database's separate WAL store */
    SHALE_STORE_KIND_CHILD_CLAIM       /* "child-claim": taken by a split for a child */
} shale_store_kind;

/* "db", "wal", "child-claim" ("unknown" otherwise).  Never NULL. */
const char *shale_store_kind_name(shale_store_kind k);

typedef struct shale_store_identity {
    char uuid[37];
    shale_store_kind kind;
    char *uri;              /* canonical URI when the identity was written */
    char created[32];       /* RFC 3339 UTC */
    char *claim;            /* the owner that claimed the store for a child
                               (kept when the clone turns it into a db); or NULL */
} shale_store_identity;

/* Frees what an identity owns (not the struct).  Accepts NULL. */
void shale_store_identity_clear(shale_store_identity *id);

/* The canonical URI of uri (see above).  Reads the file system (realpath)
 * but creates nothing.  opts may be NULL (defaults; the S3 endpoint from
 * opts->store or the environment).  *out is malloc'd: free with
 * shale_free().  SHALE_INVALID_ARGUMENT naming the URI when it cannot name
 * a store (no scheme, relative file path, no bucket). */
shale_status shale_store_canonical_uri(const char *uri, const shale_options *opts,
                                       char **out);

/* Reads the store's identity object.  Creates nothing (a file:// directory
 * that does not exist has no identity: SHALE_NOT_FOUND).  On SHALE_OK *out
 * holds the identity (clear it with shale_store_identity_clear()). */
shale_status shale_store_identity_read(const char *uri, const shale_options *opts,
                                       shale_store_identity *out);

/* How store a relates to store b. */
typedef enum shale_store_relation {
    SHALE_STORE_APART = 0,     /* neither holds the other */
    SHALE_STORE_SAME,          /* one store: same canonical URI, or same identity UUID */
    SHALE_STORE_INSIDE,        /* a's objects live under b's root (a is inside b) */
    SHALE_STORE_CONTAINS       /* b is inside a */
} shale_store_relation;

/* How canonical URI a relates to canonical URI b (as returned by
 * shale_store_canonical_uri()): pure string logic, no I/O. */
shale_store_relation shale_store_relate_canonical(const char *a, const char *b);

/* Compares two stores by canonical URI only (no store is read; "one store
 * under two canonical URIs" is not seen: shale_store_relate() sees it). */
shale_status shale_store_relate_uris(const char *a, const char *b, const shale_options *opts,
                                     shale_store_relation *rel);

/* Compares two stores by canonical URI and, when both have one, by identity
 * UUID (so two spellings of one store are SAME even when their canonical
 * URIs differ).  Creates nothing.  mem:// stores are flat: two names are
 * SAME or APART. */
shale_status shale_store_relate(const char *a, const char *b, const shale_options *opts,
                                shale_store_relation *rel);

/* SHALE_OK if the store can become a new database's store: it holds no
 * object except the identity (and leftover ".probe/" objects of the
 * conditional-write probe), or its identity was claimed by owner (a claim,
 * or the database a clone under that claim made: a repeat of the same
 * work).  owner may be NULL (no claim is ours).  Otherwise SHALE_CONFLICT
 * naming what the store holds: a database (manifest/ or an identity of kind
 * db), a WAL (wal/ or kind wal), another owner's claim, or the first other
 * object.  Creates nothing: a file:// directory that does not exist is
 * empty. */
shale_status shale_store_check_empty(const char *uri, const shale_options *opts,
                                     const char *owner);

/* Claims an empty store for owner (a non-empty string naming the work, e.g.
 * "split orders-split-1 child a of file:///data/orders-0"): checks it as
 * shale_store_check_empty() does, then creates its identity of kind
 * child-claim naming owner with put-if-absent.  SHALE_OK when the store is
 * now, or already was, claimed by owner (so a redone claim passes);
 * SHALE_CONFLICT when it is not empty or another owner won.  This proves
 * the store is reachable and writable.  owner is borrowed. */
shale_status shale_store_claim(const char *uri, const shale_options *opts, const char *owner);

/* ---- Shard facts and split points ----------------------------------------
 * Everything here reads the manifest and the SSTs' footers, indexes and
 * properties, never a data block: on S3 a call costs a LIST and a GET for
 * the manifest plus two ranged GETs per SST.  Memory handed out is freed
 * with the matching _clear() function. */


/* A key: bytes and length (data malloc'd, or NULL when len is 0). */
typedef struct shale_key {
    uint8_t *data;
    size_t len;
} shale_key;

/* Facts about the shard at its latest manifest version, from its SSTs (not
 * its memtable or WAL: flush first for data written since).  The figures
 * count the data blocks that hold keys of the visible range (for a clone,
 * only the part of its parent's SSTs it sees; a block across a bound
 * counts in proportion): bytes as stored (compressed), kv_bytes as user
 * key + value bytes, approx_keys as entries.  Versions not yet compacted
 * away and tombstones count too, so they are estimates of what a scan
 * would see.  (SSTs of format 1 carry no per-block counts: their kv_bytes
 * is their stored bytes and their entries are spread by size.) */
typedef struct shale_shard_info {
    uint64_t manifest_id;
    uint64_t bytes;
    uint64_t kv_bytes;
    uint64_t approx_keys;
    uint64_t sst_count;                 /* L0 + sorted-run SSTs */
    uint64_t data_blocks;               /* data blocks counted in bytes */
    uint32_t l0_count, sorted_run_count;
    uint64_t replay_after_wal_id, next_wal_sst_id;
    bool initialized;
    /* The visible range [start, end); an empty key is unbounded. */
    shale_key range_start, range_end;
} shale_shard_info;

/* Fills *out (caller-provided; free its keys with shale_shard_info_clear).
 * opts may be NULL. */
shale_status shale_shard_info_get(const char *uri, const shale_options *opts,
                                  shale_shard_info *out);
void shale_shard_info_clear(shale_shard_info *i);   /* accepts NULL */

typedef enum shale_split_by {
    SHALE_SPLIT_BY_BYTES = 0,   /* key + value bytes (kv_bytes above) */
    SHALE_SPLIT_BY_KEYS = 1     /* entries (approx_keys above) */
} shale_split_by;

/* Boundaries that cut the shard's visible range into `ways` children of
 * about equal weight, and each child's estimated weight. */
typedef struct shale_split_points {
    uint32_t ways;
    shale_split_by by;
    shale_key *boundaries;      /* ways - 1 keys, strictly ascending, each
                                   inside the visible range */
    uint64_t *weights;          /* ways entries: child i's estimated bytes
                                   or keys */
    uint64_t total;             /* sum of weights */
} shale_split_points;

/* Computes split points from the SSTs' block indexes (no data block is
 * read).  A boundary is the last key of some data block: the one where the
 * weight below it (whole blocks, plus an interpolated part of the blocks
 * it falls inside) is nearest each i/ways share; the same manifest always
 * gives the same answer.  ways is 2..1024.  SHALE_INVALID_ARGUMENT when the
 * shard holds too few blocks to give `ways` distinct boundaries (an empty
 * shard has none).  Free with shale_split_points_clear. */
shale_status shale_split_points_get(const char *uri, const shale_options *opts, uint32_t ways,
                                    shale_split_by by, shale_split_points *out);
void shale_split_points_clear(shale_split_points *p);   /* accepts NULL */

/* Keys as text, the way the CLI, the manifest and split requests write
 * them: printable ASCII except '%' as itself, every other byte as %XX.
 * Both return malloc'd memory (shale_free) or NULL: escape only when out
 * of memory, unescape also for a malformed %XX (then *len is untouched). */
char *shale_key_escape(const void *key, size_t len);
uint8_t *shale_key_unescape(const char *text, size_t *len);

SHALE_API_END
#endif /* SHALE_ADMIN_H */
