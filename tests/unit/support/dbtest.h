/*
 * dbtest.h -- helpers for engine tests: small options, key/value makers, a
 * model of expected contents, and store URIs per backend.
 */
#ifndef SHALE_DBTEST_H
#define SHALE_DBTEST_H

#include "support/testutil.h"

/* Options that make every level appear with little data: tiny memtables,
 * small blocks and SSTs, compaction after 3 L0s, no fsync. */
void dt_small_options(shale_options *o);

/* "k%08u" / "v%08u-%u" into buf; returns the length. */
size_t dt_key(char *buf, size_t n, unsigned i);
size_t dt_val(char *buf, size_t n, unsigned i, unsigned version);

/* Puts/deletes with assertion of success. */
void dt_put(shale_db *db, unsigned i, unsigned version);
void dt_del(shale_db *db, unsigned i);
/* Asserts key i reads version v (v == 0: absent). */
void dt_expect(shale_db *db, unsigned i, unsigned version);
void dt_expect_reader(shale_reader *r, unsigned i, unsigned version);
/* Opens uri with o, asserts keys 0..n-1 read version, closes: what a
 * reopen after a crash or a failure must find. */
void dt_reopen_expect(const char *uri, const shale_options *o, unsigned n, unsigned version);

/* A database at uri holding keys 0..n-1 at version (dt_put), made by
 * opening it with o, writing, and closing (n 0: a new empty database).
 * Unflushed: with o's WAL store the keys are in that store only. */
void dt_fill(const char *uri, const shale_options *o, unsigned n, unsigned version);
/* The same, but the database is left open: the caller closes it. */
shale_db *dt_open_fill(const char *uri, const shale_options *o, unsigned n, unsigned version);
/* dt_fill of no keys: a new database at uri (opened and closed). */
void dt_create(const char *uri, const shale_options *o);
/* dt_fill at version 1, then a checkpoint of scope named name (NULL: none)
 * taken before the close, into *cp. */
void dt_fill_checkpoint(const char *uri, const shale_options *o, unsigned n,
                        shale_checkpoint_scope scope, const char *name, shale_checkpoint *cp);
/* How many objects the store at uri holds under prefix. */
size_t dt_count(const char *uri, const char *prefix);
/* Deletes every object under prefix in the store at uri (a wiped WAL, a
 * database's manifests gone); returns how many there were. */
size_t dt_delete_all(const char *uri, const char *prefix);

/* A model: version[i] (0 = absent) for keys 0..n-1. */
typedef struct dt_model {
    unsigned *version;
    unsigned n;
} dt_model;

void dt_model_init(dt_model *m, unsigned n);
void dt_model_free(dt_model *m);
/* Checks every key with get, and a full scan against the model. */
void dt_model_check(shale_db *db, const dt_model *m);
void dt_model_check_reader(shale_reader *r, const dt_model *m);

/* One database on file:// for a test: dir (a fresh tu_tmpdir), uri =
 * file://dir/db, wal_uri = file://dir/wal, o = dt_small_options() with the
 * WAL in wal_uri.  dt_fixture_free() removes dir and frees everything. */
typedef struct dt_fixture {
    char *dir;
    char *uri;
    char *wal_uri;
    shale_options o;
} dt_fixture;

dt_fixture *dt_fixture_new(const char *name);
/* The same with the stores at file://dir/<db> and file://dir/<wal> (a test
 * that spells their paths itself names them). */
dt_fixture *dt_fixture_at(const char *name, const char *db, const char *wal);
void dt_fixture_free(dt_fixture *f);

/* A fresh store URI for the named backend ("mem" or "file"); the file
 * variant lives under *dir (created; caller frees dir and URI). */
char *dt_store_uri(const char *backend, const char *name, char **dir);

/* The process's store counters at the end of a split's Clone and Verify
 * steps (the Verify step's share lies between them): pass dt_on_step and
 * a dt_step_stats to splitter_on_step. */
typedef struct dt_step_stats {
    shale_objstats clone_end, verify_end;
} dt_step_stats;
void dt_on_step(void *ctx, const char *step, double secs);

#endif
