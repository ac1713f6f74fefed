/*
 * env.h -- one owner of every store a database touches (LevelDB's Env,
 * SlateDB's ObjectStores).
 *
 * A db_env is made once per handle that works on a database -- the writer
 * (shale_open), a reader, a clone run, a GC pass, verify, an admin
 * checkpoint call -- from the shale_options that handle was given.  It
 * holds:
 *
 *   - a deep copy of those options: every string of opts->store (endpoint,
 *     region, keys, session token, and any string field the struct gains)
 *     and wal_store_uri, so nothing the engine keeps points into caller
 *     memory after the call that made the env returns;
 *   - the database's main store, opened at db_env_open();
 *   - a pool of every other store it touches, by URI, each opened once on
 *     first use with the copied options: the WAL store, the parent stores
 *     whose SSTs a clone references (and their parents), the stores the
 *     compactor releases pins in, a clone's child and parent stores;
 *   - the table cache (open sst_readers by (store URI, SST id)) and the
 *     block cache (the caller's shared one, or one of block_cache_bytes,
 *     made on first use).  The readers are the env's own (each holds its
 *     object open through the env's store), but what they load of an SST
 *     -- footer, index partitions, filter -- is shared with every other
 *     env of the process that reads the same SST, by the canonical URI of
 *     its store (db_env_sst, table/sst_table.h).
 *
 * Nothing in the engine opens a store any other way, so "the options a
 * database is opened with reach every store opened on its behalf" holds by
 * construction; tests/unit/test_env.c checks it through objstore.c's open
 * hook for each path (clone reads, compactor pins, clone-of-clone, GC,
 * verify, reader).
 *
 * The table cache has no count limit: it holds a reader for every SST the
 * current manifest names (db_env_retain_only drops the rest).  Each reader
 * keeps its object open (on file:// a descriptor); objstore_fs.c caps those
 * descriptors per process and reads by path beyond the cap.
 *
 * Lifetime: reference-counted.  db_env_open() returns one reference; every
 * db_view takes one, so an env outlives the views (and iterators) made on
 * it.  Stores handed out by db_env_main() / db_env_store() are borrowed
 * until the last reference goes.
 *
 * Thread safety: every function may be called from many threads at once
 * (one mutex guards the pool and the table cache; stores are opened under
 * it, so two threads asking for one URI get one handle).  Lock order:
 * after db->mu.
 */
#ifndef SHALE_ENV_H
#define SHALE_ENV_H

#include "shale.h"
#include "db/manifest.h"
#include "table/cache.h"
#include "table/sst.h"

typedef struct db_env db_env;

/* Copies opts (NULL = shale_options_init defaults) deeply and opens the
 * main store at uri.  On SHALE_OK *out holds one reference. */
shale_status db_env_open(const char *uri, const shale_options *opts, db_env **out);
void db_env_ref(db_env *e);
/* Drops a reference; the last one closes every store and reader and wipes
 * the copied secrets.  Accepts NULL. */
void db_env_unref(db_env *e);

/* The main store.  Borrowed. */
shale_objstore *db_env_main(db_env *e);
/* The options as copied: every string is the env's own, valid while the
 * env lives.  wal_store_uri is the caller's (copied) value or NULL. */
const shale_options *db_env_options(const db_env *e);

/* The store for a URI (NULL, or the main store's URI = the main store),
 * opened on first use with the env's options and kept until the env goes.
 * URIs are compared without trailing '/'.  Borrowed. */
shale_status db_env_store(db_env *e, const char *uri, shale_objstore **out);

/* An SST reader for a handle (referenced; sst_reader_unref when done). */
shale_status db_env_sst(db_env *e, const sst_handle *h, sst_reader **out);
/* Drops cached readers whose SST is no longer named by m (after a
 * compaction), so memory does not grow with dead SSTs. */
void db_env_retain_only(db_env *e, const manifest *m);
/* The block cache (made on first use); NULL when block_cache_bytes is 0
 * and no shared cache was given (or when out of memory: reads then go
 * uncached). */
block_cache *db_env_cache(db_env *e);

/* Deep copy of store options: dst gets malloc'd copies of every string of
 * src (NULL stays NULL).  Free with db_env_store_options_free(), which
 * zeroes the strings first (they hold secrets). */
shale_status db_env_store_options_copy(shale_objstore_options *dst,
                                       const shale_objstore_options *src);
void db_env_store_options_free(shale_objstore_options *o);

#endif
