/*
 * admin.c -- inspection by URI: manifest show and verify.
 *
 * Verify checks what a reader would need: every SST the latest manifest
 * names exists (in its own store or a parent's), has the recorded size and
 * passes every block checksum; every WAL SST in the gap exists and
 * verifies; every checkpoint's pinned manifest version exists.  The first
 * failure is returned, naming the object.
 */
#include "db/db_int.h"
#include "table/sst.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shale_status shale_manifest_show(const char *uri, const shale_options *opts, uint64_t id,
                                 char **json)
{
    *json = NULL;
    db_env *env = NULL;
    shale_objstore *s = NULL;
    manifest *m = NULL;
    shale_status rc = db_env_open(uri, opts, &env);
    if (!rc)
        s = db_env_main(env);
    if (!rc)
        rc = id ? manifest_store_load(s, id, &m) : manifest_store_load_latest(s, 0, &m);
    if (!rc) {
        char *text = NULL;
        rc = manifest_encode(m, &text, NULL);
        if (!rc) {
            /* Add the version id (implied by the object name) for people. */
            json_error_t err;
            json_t *j = json_loads(text, JSON_PRESERVE_ORDER, &err);
            free(text);
            text = NULL;
            if (j) {
                json_t *out = json_object();
                json_object_set_new(out, "manifest_id", json_integer((json_int_t)m->id));
                json_object_update(out, j);
                text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                json_decref(out);
                json_decref(j);
            }
            if (!text)
                rc = SHALE_OOM();
            *json = text;
        }
    }
    manifest_free(m);
    db_env_unref(env);
    return rc;
}

static shale_status verify_sst(db_env *env, const sst_handle *h, shale_verify_result *res)
{
    shale_objstore *s = NULL;
    shale_status rc = db_env_store(env, h->store_uri, &s);
    if (rc)
        return rc;
    char key[PATH_KEY_MAX];
    sst_key(h->id, key, sizeof key);
    uint64_t size = 0;
    rc = shale_objstore_head(s, key, &size, NULL);
    if (rc == SHALE_NOT_FOUND)
        return shale_err(SHALE_NOT_FOUND, "verify: %s/%s is named by the manifest but missing",
                         shale_objstore_uri(s), key);
    if (rc)
        return rc;
    if (size != h->size)
        return shale_err(SHALE_CORRUPT, "verify: %s/%s is %llu bytes, the manifest says %llu",
                         shale_objstore_uri(s), key, (unsigned long long)size,
                         (unsigned long long)h->size);
    sst_reader *r = NULL;
    if ((rc = sst_reader_open(s, key, size, NULL, &r)))
        return rc;
    uint64_t blocks = 0;
    rc = sst_reader_verify(r, &blocks);
    if (!rc && sst_reader_info(r)->entries != h->entries)
        rc = shale_err(SHALE_CORRUPT, "verify: %s has %llu entries, the manifest says %llu",
                       sst_reader_name(r), (unsigned long long)sst_reader_info(r)->entries,
                       (unsigned long long)h->entries);
    sst_reader_unref(r);
    res->ssts_checked++;
    res->blocks_checked += blocks;
    res->bytes_checked += size;
    return rc;
}

shale_status shale_verify(const char *uri, const shale_options *opts, shale_verify_result *out)
{
    shale_verify_result res;
    memset(&res, 0, sizeof res);
    shale_objstore *s = NULL, *w = NULL;
    manifest *m = NULL;
    db_env *env = NULL;
    /* Every store verify reads -- this one, its WAL store, the parents a
     * clone references -- comes from one env with the caller's options. */
    shale_status rc = db_env_open(uri, opts, &env);
    if (!rc)
        s = db_env_main(env);
    if (!rc)
        rc = manifest_store_load_latest(s, 0, &m);
    for (size_t i = 0; !rc && i < m->l0_count; i++)
        rc = verify_sst(env, &m->l0[i], &res);
    for (size_t r = 0; !rc && r < m->run_count; r++)
        for (size_t i = 0; !rc && i < m->runs[r].count; i++)
            rc = verify_sst(env, &m->runs[r].ssts[i], &res);
    for (size_t i = 0; !rc && i < m->checkpoint_count; i++) {
        char key[PATH_KEY_MAX];
        manifest_key(m->checkpoints[i].manifest_id, key, sizeof key);
        rc = shale_objstore_head(s, key, NULL, NULL);
        if (rc == SHALE_NOT_FOUND)
            rc = shale_err(SHALE_NOT_FOUND, "verify: %s/%s is pinned by checkpoint %s but "
                                            "missing", uri, key, m->checkpoints[i].id);
    }
    const char *owal = env ? db_env_options(env)->wal_store_uri : NULL;
    const char *wuri = owal ? owal : m ? m->wal_store_uri : NULL;
    if (!rc && wuri && strcmp(wuri, uri))
        rc = db_env_store(env, wuri, &w);
    /* Ids below next_wal_sst_id must exist; later ones are checked while
     * they do (a writer records next_wal_sst_id only at manifest writes). */
    for (uint64_t id = m ? m->replay_after_wal_id + 1 : 0; !rc && m; id++) {
        char key[PATH_KEY_MAX];
        wal_key(id, key, sizeof key);
        void *data = NULL;
        size_t len = 0;
        shale_objstore *ws = w ? w : s;
        rc = shale_objstore_get(ws, key, &data, &len);
        if (rc == SHALE_NOT_FOUND && id >= m->next_wal_sst_id) {
            rc = SHALE_OK;
            break;
        }
        if (rc == SHALE_NOT_FOUND) {
            rc = shale_err(SHALE_NOT_FOUND, "verify: WAL SST %s/%s is needed for replay but "
                                            "missing", shale_objstore_uri(ws), key);
            break;
        }
        if (rc)
            break;
        char name[512];
        snprintf(name, sizeof name, "%s/%s", shale_objstore_uri(ws), key);
        sst_reader *r = NULL;
        rc = sst_reader_open_mem(name, data, len, true, &r);
        if (!rc)
            rc = sst_reader_verify(r, NULL);
        sst_reader_unref(r);
        res.wal_ssts_checked++;
        res.bytes_checked += len;
    }
    manifest_free(m);
    db_env_unref(env);   /* closes s and w */
    if (out)
        *out = res;
    return rc;
}
