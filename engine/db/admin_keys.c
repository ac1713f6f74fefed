/*
 * admin_keys.c -- the public names (shale_admin.h) of what programs outside
 * the engine need from its internals: object keys (db/paths.c), key order
 * (table/kv.h) and deep-copied store options (db/env.c).  Each function is
 * a thin wrapper, so the agent and the engine cannot disagree on a key's
 * spelling or on which of two keys sorts first.
 */
#include "shale_admin.h"
#include "db/env.h"
#include "db/paths.h"
#include "table/kv.h"

#include <string.h>

/* The public constants are the engine's (a key the agent builds is one the
 * engine parses); the directory strings are compared in test_admin_api. */
_Static_assert(SHALE_KEY_MAX == PATH_KEY_MAX, "SHALE_KEY_MAX");
_Static_assert(SHALE_JOURNAL_NAME_MAX == PATH_JOURNAL_NAME_MAX, "SHALE_JOURNAL_NAME_MAX");
_Static_assert(SHALE_JOURNAL_KEY_MAX == PATH_JOURNAL_MAX, "SHALE_JOURNAL_KEY_MAX");
_Static_assert(sizeof SHALE_WAL_DIR == sizeof PATH_WAL_DIR, "SHALE_WAL_DIR");
_Static_assert(sizeof SHALE_MANIFEST_DIR == sizeof PATH_MANIFEST_DIR, "SHALE_MANIFEST_DIR");
_Static_assert(sizeof SHALE_SST_DIR == sizeof PATH_SST_DIR, "SHALE_SST_DIR");
_Static_assert(sizeof SHALE_JOURNAL_DIR == sizeof PATH_JOURNAL_DIR, "SHALE_JOURNAL_DIR");
_Static_assert(sizeof SHALE_LEASE_DIR == sizeof PATH_LEASE_DIR, "SHALE_LEASE_DIR");

void shale_manifest_key(uint64_t id, char *buf, size_t n)
{
    manifest_key(id, buf, n);
}

void shale_wal_key(uint64_t id, char *buf, size_t n)
{
    wal_key(id, buf, n);
}

bool shale_wal_key_parse(const char *key, uint64_t *id)
{
    return wal_key_parse(key, id);
}

void shale_sst_key(const char *ulid, char *buf, size_t n)
{
    sst_key(ulid, buf, n);
}

bool shale_journal_key(const char *name, uint64_t version, char *buf, size_t n)
{
    return journal_key(name, version, buf, n);
}

bool shale_journal_key_parse(const char *key, char *name, size_t nlen, uint64_t *version)
{
    return journal_key_parse(key, name, nlen, version);
}

void shale_lease_key(uint64_t seq, char *buf, size_t n)
{
    lease_key(seq, buf, n);
}

bool shale_lease_key_parse(const char *key, uint64_t *seq)
{
    return lease_key_parse(key, seq);
}

int shale_key_compare(const void *a, size_t alen, const void *b, size_t blen)
{
    return kv_key_cmp(a, alen, b, blen);
}

shale_status shale_objstore_options_copy(shale_objstore_options *dst,
                                         const shale_objstore_options *src)
{
    return db_env_store_options_copy(dst, src);
}

void shale_objstore_options_free(shale_objstore_options *o)
{
    if (!o)
        return;
    db_env_store_options_free(o);
    memset(o, 0, sizeof *o);
}
