/*
 * shale_admin.h -- what tools (the agent, the CLI) need from libshale beyond
 * reading and writing a database: store identity (below), shard facts and
 * balanced split points (second part), object keys and key order (third),
 * a read-only view of a manifest version (fourth) and a deep copy of store
 * options (last).  A program outside the engine (shale-agent, the CLI)
 * builds with -Iengine/include only: what it needs is here.
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

/* shale_store_claim() for a caller that made its checks already
 * (shale_store_check_empty() with the same owner passed a moment before,
 * e.g. beside another write): only the claim's create-if-absent; an
 * identity found there is judged as the claim judges it (this owner's
 * claim passes, anything else is SHALE_CONFLICT).  The split's pre-flight
 * makes the checks beside the journal write that starts its step and the
 * claims after it. */
shale_status shale_store_claim_checked(const char *uri, const shale_options *opts,
                                       const char *owner);

/* Undoes owner's claim of the store at uri (shale_store_claim), for a
 * split that ends short of its WAL wipe: the identity object is deleted
 * when it is a child claim naming owner, and *released says so; any other
 * identity, or none, is left as it is (SHALE_OK, *released false).  The
 * store's own error when it cannot be read or the delete fails.  owner is
 * borrowed. */
shale_status shale_store_claim_release(const char *uri, const shale_options *opts,
                                       const char *owner, bool *released);

/* ---- Clones with a barrier -------------------------------------------------- */

/* shale_clone_many() with a barrier: before_write(ctx), when given, is
 * called once after every read of the batch's first phase (and the
 * conditional-write probes, whose objects are garbage, never state) and
 * before its first write; a failure it returns stops the batch there with
 * that status and message.  A caller that must record its intent durably
 * before the clones write anything (the split's journal write of Clone
 * "Running") runs that write beside the reads and joins it here.
 * before_write NULL: shale_clone_many(). */
typedef shale_status (*shale_clone_barrier_fn)(void *ctx);
shale_status shale_clone_many_barrier(const shale_clone_spec *specs, size_t n,
                                      const shale_options *opts, shale_clone_result *out,
                                      size_t *failed, shale_clone_barrier_fn before_write,
                                      void *ctx);

/* shale_clone_many_barrier() for a caller that keeps the source checkpoint
 * until a call has returned SHALE_OK, and after any failure or crash calls
 * again with the same specs before it lets the checkpoint go (a split: its
 * journal redoes the Clone step, and only Complete releases the
 * checkpoint).  A fresh child with no WAL to copy that references only the
 * parent then gets its version 1 written initialised, beside the parent's
 * pin and its stores' identities: one round trip, not two (an initialised
 * child was always pinned first, so that nothing but the pin keeps the
 * parent's SSTs it references; here the caller's checkpoint keeps them
 * until every pin is in).  A crash between those writes leaves an
 * initialised child without its pin, or a child's claim turned into a
 * database's identity over a store with no version: the next call pins
 * the first and resumes the second, which no writer opens meanwhile
 * (shale_open refuses a database identity made from a claim with no
 * manifest).  The child stores must be empty or claimed for this batch
 * (shale_store_claim). */
shale_status shale_clone_many_held(const shale_clone_spec *specs, size_t n,
                                   const shale_options *opts, shale_clone_result *out,
                                   size_t *failed, shale_clone_barrier_fn before_write,
                                   void *ctx);

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

/* ---- Object keys and key order --------------------------------------------
 * The layout of a store (docs/format.md, "Object layout"): manifest
 * versions under SHALE_MANIFEST_DIR, WAL SSTs under SHALE_WAL_DIR,
 * compacted SSTs under SHALE_SST_DIR, shale-agent's split journals under
 * SHALE_JOURNAL_DIR and its split lease under SHALE_LEASE_DIR.  Ids are
 * zero-padded to 20 digits so that key order is id order.  Builders write
 * into the caller's buffer; parsers are strict (the exact pattern, no
 * overflow, no id 0 for manifests and WAL SSTs) and leave their outputs
 * untouched when they return false.  Pure functions. */

#define SHALE_MANIFEST_DIR "manifest/"
#define SHALE_WAL_DIR "wal/"
#define SHALE_SST_DIR "compacted/"
#define SHALE_JOURNAL_DIR "splits/"
#define SHALE_LEASE_DIR "splits/_lease/"   /* split names never start with '_' */
#define SHALE_KEY_MAX 64                   /* every manifest, WAL, SST and lease key */
#define SHALE_JOURNAL_NAME_MAX 253         /* a split's name (a Kubernetes name) */
#define SHALE_JOURNAL_KEY_MAX (sizeof SHALE_JOURNAL_DIR + SHALE_JOURNAL_NAME_MAX + 1 + 20 + 5 + 1)

/* "manifest/<id:020>.manifest" into buf (n >= SHALE_KEY_MAX): manifest
 * version id.  A tool that knows a version's id checks whether a newer one
 * exists with one HEAD of id + 1 (versions are written put-if-absent at
 * the next id, so the ids of a database have no gaps). */
void shale_manifest_key(uint64_t id, char *buf, size_t n);
/* "wal/<id:020>.sst" into buf (n >= SHALE_KEY_MAX). */
void shale_wal_key(uint64_t id, char *buf, size_t n);
/* The id of a WAL SST key (>= 1); false for any other key. */
bool shale_wal_key_parse(const char *key, uint64_t *id);
/* "compacted/<ulid>.sst" into buf (n >= SHALE_KEY_MAX); ulid as a
 * shale_manifest_sst's id. */
void shale_sst_key(const char *ulid, char *buf, size_t n);
/* "splits/<name>/<version:020>.json" into buf (n >= SHALE_JOURNAL_KEY_MAX).
 * False (buf "") if name is empty, longer than SHALE_JOURNAL_NAME_MAX,
 * holds '/', starts with '_' (the lease's directory), or n is too small. */
bool shale_journal_key(const char *name, uint64_t version, char *buf, size_t n);
/* The split name (nlen bytes with the NUL) and version of a journal key;
 * false for lease records and any other key. */
bool shale_journal_key_parse(const char *key, char *name, size_t nlen, uint64_t *version);
/* "splits/_lease/<seq:020>.json" into buf (n >= SHALE_KEY_MAX): one record
 * of a shard's split lease. */
void shale_lease_key(uint64_t seq, char *buf, size_t n);
/* The seq (>= 1) of a lease record key. */
bool shale_lease_key_parse(const char *key, uint64_t *seq);

/* The engine's key order: bytewise, a shorter prefix first.  -1, 0 or 1. */
int shale_key_compare(const void *a, size_t alen, const void *b, size_t blen);

/* ---- A manifest version, read-only ----------------------------------------
 * What a tool checks in a database's manifest (docs/format.md, "Manifest")
 * without being its writer: the SSTs of L0 and of each sorted run with
 * their key ranges, the WAL state, checkpoints, parents a clone references
 * and how it was made.  The view is one allocation tree owned by the
 * caller: every pointer in it (strings, keys, arrays) stays valid until
 * shale_manifest_view_free() and is never changed by the library.
 *
 * Compatibility: the library fills struct_size with its own sizeof
 * (shale_manifest_view); later versions only append fields, so a program
 * reads the fields its header knows.  The element structs
 * (shale_manifest_sst, _run, _checkpoint, _parent) keep their layout:
 * per-element facts a later version adds arrive as new arrays at the end
 * of shale_manifest_view.
 *
 * Thread safety: a view is immutable; threads may read one at once. */

typedef struct shale_manifest_sst {
    char id[27];                  /* ULID: the object shale_sst_key(id) */
    const char *store_uri;        /* NULL: this database's store; else the
                                     parent's store holding the object */
    uint64_t size;                /* object bytes */
    uint64_t entries;
    const uint8_t *first_key; size_t first_klen;   /* NULL when empty */
    const uint8_t *last_key;  size_t last_klen;
} shale_manifest_sst;

typedef struct shale_manifest_run {
    uint32_t id;                  /* higher = newer */
    const shale_manifest_sst *ssts;   /* key-ordered, non-overlapping */
    size_t count;
} shale_manifest_run;

typedef struct shale_manifest_checkpoint {
    char id[37];                  /* UUID */
    uint64_t manifest_id;         /* the version it pins */
    int64_t create_time_ms;
    int64_t expire_time_ms;       /* 0 = never */
    const char *name;             /* NULL if none */
} shale_manifest_checkpoint;

/* A database whose SSTs this one references (a clone's parent, and the
 * parent's own parents). */
typedef struct shale_manifest_parent {
    const char *store_uri;
    char source_checkpoint_id[37];    /* the checkpoint the clone was made from */
    char final_checkpoint_id[37];     /* the pin this database holds there */
} shale_manifest_parent;

/* The arguments a clone was made with (parent_uri NULL: not a clone). */
typedef struct shale_manifest_origin {
    const char *parent_uri;
    const char *parent_checkpoint_id;
    bool has_range;
} shale_manifest_origin;

typedef struct shale_manifest_view {
    size_t struct_size;           /* the library's sizeof (see above) */
    uint64_t id;                  /* the version */
    uint32_t format_version;
    uint64_t writer_epoch, compactor_epoch;
    uint64_t replay_after_wal_id; /* WAL ids <= this are in L0 or the runs */
    uint64_t next_wal_sst_id;     /* first WAL id not yet recorded */
    uint64_t last_l0_seq;
    bool initialized;             /* false while a clone is half made */
    const char *wal_store_uri;    /* recorded WAL store; NULL: the main store */
    const shale_manifest_sst *l0; size_t l0_count;      /* newest first */
    const shale_manifest_run *runs; size_t run_count;   /* newest first */
    const shale_manifest_checkpoint *checkpoints; size_t checkpoint_count;
    const shale_manifest_parent *parents; size_t parent_count;
    /* Visible key range [start, end); NULL = unbounded on that side. */
    const uint8_t *range_start; size_t range_start_len;
    const uint8_t *range_end;   size_t range_end_len;
    shale_manifest_origin origin;
} shale_manifest_view;

/* Reads manifest version id (0: the latest) of the database in store s
 * (borrowed; opened with shale_objstore_open()).  SHALE_NOT_FOUND when the
 * store holds no manifest (or not that version); SHALE_CORRUPT naming the
 * object when it does not decode. */
shale_status shale_manifest_view_load(shale_objstore *s, uint64_t id,
                                      shale_manifest_view **out);
/* Opens uri read-only at manifest version manifest_id (>= 1), read by
 * one GET of that object: no LIST, no latest version, no checkpoint
 * lookup -- for a caller that knows the id (one it wrote, or one a
 * checkpoint names), on S3 a round trip instead of two or three.  The view
 * stays at that version (shale_reader_refresh() is a no-op), as a reader
 * at a checkpoint does.  WAL: a version that records WAL ids to replay
 * (replay_after_wal_id + 1 < next_wal_sst_id) has them replayed, and, as a
 * checkpoint reader does, the WAL SSTs that follow them; one that records
 * none makes no WAL request at all (what a writer wrote after that version
 * is not part of it).  The reader holds no pin: the caller keeps the
 * version from GC (a checkpoint on it, or it being the latest; GC's
 * min_age covers a version a moment old).  SHALE_NOT_FOUND when the store
 * holds no such version; SHALE_INVALID_ARGUMENT for an uninitialised
 * clone's version (reads are refused, as by shale_reader_open()) or id 0.
 * opts as for shale_reader_open(); *out closed with shale_reader_close(). */
shale_status shale_reader_open_version(const char *uri, const shale_options *opts,
                                       uint64_t manifest_id, shale_reader **out);
/* The manifest version reader r stands on (the one its open or last
 * refresh loaded; no store is read). */
shale_status shale_reader_manifest_view(shale_reader *r, shale_manifest_view **out);
void shale_manifest_view_free(shale_manifest_view *v);   /* accepts NULL */

/* The checkpoint with this id in v, or NULL.  Borrowed from v. */
const shale_manifest_checkpoint *shale_manifest_view_checkpoint(const shale_manifest_view *v,
                                                                const char *id);
/* Removes checkpoint id from the database in store s, writing on latest
 * -- the latest version as the caller read it (NULL: read here) -- so a
 * caller that holds it saves a LIST and a GET (two round trips on S3).  A
 * newer version found by the conditional write is re-read and the removal
 * applied to it.  SHALE_OK also when no such checkpoint exists (a removal
 * redone after a crash).  latest is borrowed. */
shale_status shale_checkpoint_delete_on(shale_objstore *s, const char *id,
                                        const shale_manifest_view *latest);

/* The number of data blocks of the SST object key (size bytes) in store s,
 * from its footer and index alone (no data block, no filter): how a tool
 * estimates what a reader of that SST holds in memory. */
shale_status shale_sst_block_count(shale_objstore *s, const char *key, uint64_t size,
                                   uint64_t *blocks);

/* Opens SST h (from a view of r's database) in reader r's table cache
 * (footer, then metadata: two requests), so that a scan reaching it later
 * finds it open.  A tool that will scan many SSTs opens them all at once
 * first instead of one after the other as the scan seeks.  h borrowed. */
shale_status shale_reader_open_sst(shale_reader *r, const shale_manifest_sst *h);

/* Reads into r's block cache, all at once, what a scan of r from key
 * (NULL: from the first key; before the visible range: from its start)
 * reads first in every level of r's view -- each L0 SST and each sorted
 * run that holds keys at or after key: the SST's open if not yet made, the
 * index partition, and the data blocks of the next `entries` entries (0
 * counts as 1).  A scan iterator seeks its levels one after the other (on
 * S3, a round trip or two each); after a prefetch, a scan of up to about
 * `entries` keys from key finds them in the cache, so a short window costs
 * the round trips of one level, not the sum.  The levels run on up to 16
 * threads, made and joined within the call.  Useful only when r has a
 * block cache (shale_options.block_cache).  Returns the first read error
 * (named); either way nothing about r changes: a later scan reads what it
 * lacks itself and reports its own errors.  key is borrowed. */
shale_status shale_reader_prefetch(shale_reader *r, const void *key, size_t klen,
                                   size_t entries);

/* Scans made on the calling thread from now on read ahead in windows of
 * `bytes` (at most 1 MiB, larger is 1 MiB) from their seek on: the first
 * read after a seek covers up to `bytes` (to the end of its index
 * partition) and every window after it is `bytes`.  0, the default: the
 * engine's ramp (the first two blocks after a seek read alone, then 64 KiB
 * doubling to 1 MiB), which keeps short range reads short.  For a caller
 * that scans long ranges from end to end (the split's full Verify walks
 * every key of each child): on S3 each window is a round trip, and the
 * ramp cost six or so per SST scanned before its windows reached 1 MiB.
 * Per thread: other threads' scans are not changed; each iterator holds a
 * window (up to `bytes`) per SST it is reading.  A value, no state to
 * free. */
void shale_thread_scan_readahead(size_t bytes);

/* Does SST h hold keys of [start, end)?  NULL (or length 0) = unbounded on
 * that side; an SST without entries holds none. */
bool shale_manifest_sst_overlaps(const shale_manifest_sst *h, const void *start,
                                 size_t start_len, const void *end, size_t end_len);

/* ---- Store options ----------------------------------------------------------
 * A program that keeps store options beyond one call (shale_options says
 * the engine borrows their strings only for the call) keeps its own deep
 * copy. */

/* Copies src into *dst, every string duplicated (NULL stays NULL).  On
 * SHALE_NO_MEMORY the strings of *dst are NULL (nothing to free).  Free with
 * shale_objstore_options_free(), which zeroes the strings first (they hold
 * secrets) and leaves *dst all zero. */
shale_status shale_objstore_options_copy(shale_objstore_options *dst,
                                         const shale_objstore_options *src);
void shale_objstore_options_free(shale_objstore_options *o);   /* accepts NULL */

SHALE_API_END
#endif /* SHALE_ADMIN_H */
