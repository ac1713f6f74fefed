/*
 * manifest_store.c -- manifest versions in a store: the compare-and-swap.
 *
 * Version id N lives at manifest/<N:020>.manifest.  Writing version N+1
 * with put-if-absent is the CAS: exactly one writer wins each id.  The
 * latest version is found from a known id by listing only the keys after
 * it (one LIST per 1,000 newer versions, where a HEAD per version was one
 * round trip each on S3) and, without a hint, by listing manifest/ and
 * taking the highest id.
 */
#include "db/manifest.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPDATE_ATTEMPTS 32

shale_status manifest_store_load(shale_objstore *s, uint64_t id, manifest **out)
{
    char key[PATH_KEY_MAX];
    manifest_key(id, key, sizeof key);
    void *data = NULL;
    size_t len = 0;
    /* A version read or written before through this store's cache: the
     * same bytes (versions are immutable, manifest_cache.c). */
    bool cached = manifest_cache_get(s, id, &data, &len);
    shale_status rc = cached ? SHALE_OK : shale_objstore_get(s, key, &data, &len);
    if (rc == SHALE_NOT_FOUND)
        return shale_err(SHALE_NOT_FOUND, "%s: manifest version %s not found",
                         shale_objstore_uri(s), key);
    if (rc)
        return rc;
    char name[512];
    snprintf(name, sizeof name, "%s/%s", shale_objstore_uri(s), key);
    rc = manifest_decode(name, data, len, out);
    if (!rc && !cached)
        manifest_cache_put(s, id, data, len);   /* only what decodes */
    free(data);
    if (!rc)
        (*out)->id = id;
    return rc;
}

shale_status manifest_store_list_ids(shale_objstore *s, uint64_t **ids, size_t *n)
{
    shale_objlist l;
    *ids = NULL;
    *n = 0;
    shale_status rc = shale_objstore_list_all(s, PATH_MANIFEST_DIR, &l);
    if (rc)
        return rc;
    uint64_t *a = malloc((l.count ? l.count : 1) * sizeof *a);
    if (!a) {
        shale_objlist_free(&l);
        return SHALE_OOM();
    }
    size_t k = 0;
    for (size_t i = 0; i < l.count; i++) {
        uint64_t id;
        if (manifest_key_parse(l.items[i].key, &id))
            a[k++] = id;   /* keys are zero-padded: list order is id order */
    }
    shale_objlist_free(&l);
    *ids = a;
    *n = k;
    return SHALE_OK;
}

shale_status manifest_store_newest_after(shale_objstore *s, uint64_t after, uint64_t *newest)
{
    *newest = 0;
    char key[PATH_KEY_MAX];
    manifest_key(after, key, sizeof key);
    char *cursor = xstrdup(key);   /* the list cursor is a key on every backend */
    shale_status rc = cursor ? SHALE_OK : SHALE_OOM();
    while (!rc && cursor) {
        shale_objlist page;
        rc = shale_objstore_list(s, PATH_MANIFEST_DIR, cursor, 0, &page);
        free(cursor);
        cursor = NULL;
        if (rc)
            break;
        for (size_t i = 0; i < page.count; i++) {
            uint64_t id = 0;
            if (manifest_key_parse(page.items[i].key, &id) && id > after && id > *newest)
                *newest = id;
        }
        if (page.next_cursor && !(cursor = xstrdup(page.next_cursor)))
            rc = SHALE_OOM();
        shale_objlist_free(&page);
    }
    free(cursor);
    return rc;
}

shale_status manifest_store_load_latest(shale_objstore *s, uint64_t hint, manifest **out)
{
    *out = NULL;
    uint64_t latest = 0;
    shale_status rc;
    if (hint) {
        /* The versions after the hint, listed from it (the list cursor is a
         * key on every backend); none newer: the hint itself, if it is
         * still there. */
        char key[PATH_KEY_MAX];
        manifest_key(hint, key, sizeof key);
        if ((rc = manifest_store_newest_after(s, hint, &latest)))
            return rc;
        if (!latest) {
            rc = shale_objstore_head(s, key, NULL, NULL);
            if (rc == SHALE_OK)
                latest = hint;
            else if (rc != SHALE_NOT_FOUND)
                return rc;
        }
    }
    if (!latest) {
        uint64_t *ids = NULL;
        size_t n = 0;
        if ((rc = manifest_store_list_ids(s, &ids, &n)))
            return rc;
        latest = n ? ids[n - 1] : 0;
        free(ids);
    }
    if (!latest)
        return shale_err(SHALE_NOT_FOUND, "%s: no manifest (not a Shale database)",
                         shale_objstore_uri(s));
    rc = manifest_store_load(s, latest, out);
    if (rc == SHALE_NOT_FOUND)  /* deleted by GC between list and get: retry once */
        rc = manifest_store_load_latest(s, 0, out);
    return rc;
}

shale_status manifest_store_write(shale_objstore *s, const manifest *m)
{
    if (m->id == 0)
        return shale_err(SHALE_INVALID_ARGUMENT, "manifest id 0 is not a valid version");
    char *json = NULL;
    size_t len = 0;
    shale_status rc = manifest_encode(m, &json, &len);
    if (rc)
        return rc;
    char key[PATH_KEY_MAX];
    manifest_key(m->id, key, sizeof key);
    rc = shale_objstore_put_if_absent(s, key, json, len);
    if (rc == SHALE_PRECONDITION_FAILED) {
        /* A retried put whose first attempt took effect finds its own
         * bytes: that is a success, not a lost race. */
        void *got = NULL;
        size_t glen = 0;
        if (shale_objstore_get(s, key, &got, &glen) == SHALE_OK && glen == len &&
            !memcmp(got, json, len))
            rc = SHALE_OK;
        free(got);
    }
    if (rc == SHALE_OK)
        manifest_cache_put(s, m->id, json, len);   /* this process's own write */
    free(json);
    return rc;
}

shale_status manifest_store_update(shale_objstore *s, manifest **cur, manifest_mutator fn,
                                   void *ctx)
{
    manifest *base = cur && *cur ? manifest_dup(*cur) : NULL;
    shale_status rc = SHALE_OK;
    if (cur && *cur && !base)
        return SHALE_OOM();
    if (!base && (rc = manifest_store_load_latest(s, 0, &base)))
        return rc;
    for (int attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
        manifest *next = manifest_dup(base);
        if (!next) {
            rc = SHALE_OOM();
            break;
        }
        rc = fn(next, ctx);
        if (rc) {
            manifest_free(next);
            break;
        }
        next->id = base->id + 1;
        rc = manifest_store_write(s, next);
        if (rc == SHALE_OK) {
            manifest_free(base);
            if (cur) {
                manifest_free(*cur);
                *cur = next;
            } else {
                manifest_free(next);
            }
            return SHALE_OK;
        }
        manifest_free(next);
        if (rc != SHALE_PRECONDITION_FAILED)
            break;
        /* Lost the race: start again from the newest version. */
        manifest *latest = NULL;
        rc = manifest_store_load_latest(s, base->id + 1, &latest);
        if (rc)
            break;
        manifest_free(base);
        base = latest;
        rc = shale_err(SHALE_CONFLICT, "%s: manifest update lost the race %d times",
                       shale_objstore_uri(s), UPDATE_ATTEMPTS);
    }
    manifest_free(base);
    return rc;
}
