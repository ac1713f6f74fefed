/*
 * paths.h -- every object key the engine (and the agent) writes, named and
 * parsed in one place (LevelDB db/filename.h, SlateDB paths.rs).
 *
 * The layout of a store (docs/format.md, "Object layout"):
 *
 *   manifest/<id:20 digits>.manifest   manifest versions, id >= 1
 *   wal/<id:20 digits>.sst             WAL SSTs (main or WAL store), id >= 1
 *   compacted/<ULID>.sst               L0 and sorted-run SSTs (26 Crockford
 *                                      base32 characters, time first)
 *   splits/<name>/<version:20>.json    shale-agent's split journal
 *   .probe/<uuid>                      put-if-absent probes (removed at once)
 *
 * Ids are zero-padded to 20 digits so that key order is id order (a LIST
 * returns versions oldest first, and "start-after" an id works).
 *
 * Formatters write into a caller's buffer; PATH_KEY_MAX bytes fit every
 * engine key (a journal key needs PATH_JOURNAL_MAX).  Parsers are strict:
 * a key is taken only if it matches its pattern exactly (prefix, digit
 * count, digits only, no overflow, suffix, nothing after); anything else
 * returns false and leaves the output untouched.  No parser maps a
 * malformed key to id 0.
 *
 * Thread safety: pure functions.
 */
#ifndef SHALE_PATHS_H
#define SHALE_PATHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shale_objstore.h"

#define PATH_MANIFEST_DIR "manifest/"
#define PATH_WAL_DIR "wal/"
#define PATH_SST_DIR "compacted/"
#define PATH_JOURNAL_DIR "splits/"
#define PATH_LEASE_DIR "splits/_lease/"   /* split names never start with '_' */
#define PATH_PROBE_DIR ".probe/"
#define PATH_IDENTITY ".shale/identity.json"   /* identity.c; fs_sweep stops at another store's */

#define PATH_KEY_MAX 64         /* every manifest, WAL, SST and probe key */
#define PATH_ULID_LEN 26
#define PATH_JOURNAL_NAME_MAX 253  /* a split name (a Kubernetes name) */
#define PATH_JOURNAL_MAX (sizeof PATH_JOURNAL_DIR + PATH_JOURNAL_NAME_MAX + 1 + 20 + 5 + 1)

/* "manifest/<id:020>.manifest" into buf (n >= PATH_KEY_MAX). */
void manifest_key(uint64_t id, char *buf, size_t n);
/* "wal/<id:020>.sst" into buf (n >= PATH_KEY_MAX). */
void wal_key(uint64_t id, char *buf, size_t n);
/* "compacted/<ulid>.sst" into buf (n >= PATH_KEY_MAX). */
void sst_key(const char *ulid, char *buf, size_t n);
/* ".probe/<id>" into buf (n >= PATH_KEY_MAX; id at most 36 characters). */
void probe_key(const char *id, char *buf, size_t n);
/* The probe's verdict (objstore.c) from rc, the answer to a second
 * conditional create of the probe object key, which exists: SHALE_OK if
 * it was refused; SHALE_UNSUPPORTED, with the message operators read, if it
 * succeeded (the store ignores If-None-Match); else rc with context. */
shale_status probe_verdict(shale_objstore *s, const char *key, shale_status rc);
/* "splits/<name>/<version:020>.json" into buf.  False (buf "") if name is
 * empty, longer than PATH_JOURNAL_NAME_MAX, holds '/', starts with '_'
 * (the lease's directory), or n is too small. */
bool journal_key(const char *name, uint64_t version, char *buf, size_t n);
/* "splits/_lease/<seq:020>.json" into buf (n >= PATH_KEY_MAX): one record
 * of a shard's split lease (agent/lease.h). */
void lease_key(uint64_t seq, char *buf, size_t n);

/* Strict parsers (see above).  A manifest or WAL id of 0 is refused too:
 * both start at 1, so a zero key is not one the engine wrote. */
bool manifest_key_parse(const char *key, uint64_t *id);
bool wal_key_parse(const char *key, uint64_t *id);
/* ulid receives the 26 characters and a NUL; only Crockford base32
 * upper-case characters are accepted, the first at most '7' (48-bit time). */
bool sst_key_parse(const char *key, char ulid[PATH_ULID_LEN + 1]);
/* name receives the split's name (nlen bytes with the NUL).  Lease records
 * are not journals: false for them. */
bool journal_key_parse(const char *key, char *name, size_t nlen, uint64_t *version);
/* The seq of a lease record key (>= 1). */
bool lease_key_parse(const char *key, uint64_t *seq);

/* True when id is a well-formed ULID as sst_key_parse accepts it. */
bool path_ulid_valid(const char *id);

#endif
