/*
 * shale_admin.h -- what tools (the agent, the CLI) need from libshale beyond
 * reading and writing a database.  This part: store identity.
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

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif
#endif /* SHALE_ADMIN_H */
