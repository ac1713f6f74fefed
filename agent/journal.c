/* journal.c -- see journal.h. */
#include "journal.h"
#include "db/paths.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *step_names[STEP_COUNT] = {
    "Accept", "Fence", "FullFlush", "WipeLocalWAL", "Clone", "Verify", "Complete"};
static const char *step_phases[STEP_COUNT] = {
    "Accepted", "Fencing", "Flushing", "WipingWAL", "Cloning", "Verifying", "Complete"};

const char *journal_step_name(int step)
{
    return step >= 0 && step < STEP_COUNT ? step_names[step] : "?";
}

const char *journal_step_phase(int step)
{
    return step >= 0 && step < STEP_COUNT ? step_phases[step] : "?";
}

void journal_now(char *buf, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03ldZ", base, (long)(tv.tv_usec / 1000));
}

shale_status journal_save(shale_objstore *s, const char *name, uint64_t *version, json_t *doc)
{
    char key[PATH_JOURNAL_MAX];
    uint64_t v = *version + 1;
    if (!journal_key(name, v, key, sizeof key))
        return shale_err(SHALE_INVALID_ARGUMENT, "journal: split name '%s' cannot name a "
                                                 "journal key (empty, '/' or over %d bytes)",
                         name, PATH_JOURNAL_NAME_MAX);
    json_object_set_new(doc, "journalVersion", json_integer((json_int_t)v));
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text)
        return SHALE_OOM();
    shale_status rc = shale_objstore_put_if_absent(s, key, text, strlen(text));
    free(text);
    if (rc == SHALE_PRECONDITION_FAILED)
        return shale_err(SHALE_CONFLICT,
                         "journal %s/%s already exists: another agent is driving split %s",
                         shale_objstore_uri(s), key, name);
    if (rc)
        return shale_err_prefix(rc, "writing journal %s", key);
    *version = v;
    return SHALE_OK;
}

shale_status journal_load_all(shale_objstore *s, journal_fn fn, void *ctx)
{
    shale_objlist l;
    shale_status rc = shale_objstore_list_all(s, PATH_JOURNAL_DIR, &l);
    if (rc)
        return shale_err_prefix(rc, "listing split journals in %s", shale_objstore_uri(s));
    /* Keys sort by name then version: the last key of each name wins. */
    for (size_t i = 0; i < l.count; i++) {
        char name[PATH_JOURNAL_NAME_MAX + 1], next_name[PATH_JOURNAL_NAME_MAX + 1];
        uint64_t ver, nv;
        if (!journal_key_parse(l.items[i].key, name, sizeof name, &ver))
            continue;
        if (i + 1 < l.count &&
            journal_key_parse(l.items[i + 1].key, next_name, sizeof next_name, &nv) &&
            !strcmp(name, next_name))
            continue;
        void *data = NULL;
        size_t len = 0;
        rc = shale_objstore_get(s, l.items[i].key, &data, &len);
        if (rc) {
            shale_err_prefix(rc, "reading journal %s", l.items[i].key);
            fn(ctx, name, ver, NULL);
            continue;
        }
        json_error_t err;
        json_t *doc = json_loadb(data, len, 0, &err);
        free(data);
        if (!doc || !json_is_object(doc)) {
            shale_err(SHALE_CORRUPT, "journal %s: line %d column %d: %s", l.items[i].key,
                      err.line, err.column, doc ? "not an object" : err.text);
            json_decref(doc);
            fn(ctx, name, ver, NULL);
            continue;
        }
        fn(ctx, name, ver, doc);
    }
    shale_objlist_free(&l);
    return SHALE_OK;
}
