/* journal.c -- see journal.h. */
#include "journal.h"
#include "shale_admin.h"
#include "failpoint.h"
#include "agent_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

void journal_format_time(int64_t ms, char *buf, size_t n)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", base, (int)(ms % 1000));
}

void journal_now(char *buf, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    journal_format_time((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, buf, n);
}

/* "YYYY-MM-DDTHH:MM:SS[.mmm]Z" -> ms; -1 when it is not that. */
static int64_t parse_time(const char *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = t ? strptime(t, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!p)
        return -1;
    int ms = 0;
    if (*p == '.') {
        p++;
        for (int i = 0; i < 3; i++, p++) {
            if (*p < '0' || *p > '9')
                return -1;
            ms = ms * 10 + (*p - '0');
        }
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, "Z"))
        return -1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* ---- encoding ------------------------------------------------------------- */

static json_t *time_json(int64_t ms)
{
    if (!ms)
        return json_null();
    char b[40];
    journal_format_time(ms, b, sizeof b);
    return json_string(b);
}

static json_t *u64(uint64_t v)
{
    return json_integer((json_int_t)v);
}

shale_status journal_encode(const split_state *s, char **out)
{
    *out = NULL;
    json_t *d = json_object(), *steps = json_object(), *kids = json_array();
    json_object_set_new(d, "format", json_integer(JOURNAL_FORMAT));
    json_object_set_new(d, "journalVersion", u64(s->journal_version));
    json_object_set_new(d, "name", json_string(s->name));
    json_object_set_new(d, "shard", json_string(s->shard));
    json_object_set_new(d, "dryRun", json_boolean(s->dry_run));
    json_object_set_new(d, "phase", json_string(split_phase_name(s->phase)));
    json_object_set_new(d, "reason", json_string(s->reason));
    json_object_set_new(d, "message", json_string(s->message));
    json_object_set_new(d, "checkpointId",
                        *s->checkpoint_id ? json_string(s->checkpoint_id) : json_null());
    /* Written only while owed, so a journal that never owed one reads as
     * an earlier agent's did (the checkpoint released before Complete). */
    if (s->checkpoint_owed)
        json_object_set_new(d, "checkpointReleaseOwed", json_true());
    json_object_set_new(d, "replayAfterWalId", u64(s->replay_after_wal_id));
    json_object_set_new(d, "nextWalSstId", u64(s->next_wal_sst_id));
    json_object_set_new(d, "startTime", time_json(s->start_ms));
    json_object_set_new(d, "completionTime", time_json(s->completion_ms));
    if (s->verify_mode != SPLIT_VERIFY_DEFAULT)
        json_object_set_new(d, "verifyMode", json_string(split_verify_name(s->verify_mode)));
    for (int i = 0; i < STEP_COUNT; i++) {
        const split_step_rec *r = &s->steps[i];
        json_object_set_new(steps, split_step_name((split_step)i),
                            json_pack("{s:s, s:o, s:o, s:s, s:I, s:I, s:I}",
                                      "state", step_state_name(r->state),
                                      "startTime", time_json(r->start_ms),
                                      "endTime", time_json(r->end_ms),
                                      "message", r->message ? r->message : "",
                                      "objectsCopied", (json_int_t)r->objects_copied,
                                      "bytesCopied", (json_int_t)r->bytes_copied,
                                      "attempts", (json_int_t)r->attempts));
    }
    json_object_set_new(d, "steps", steps);
    for (size_t i = 0; i < s->child_count; i++) {
        const split_child_rec *c = &s->children[i];
        json_array_append_new(kids, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}",
                                              "name", c->name, "store", c->store,
                                              "manifestId", (json_int_t)c->manifest_id,
                                              "keyCount", (json_int_t)c->key_count,
                                              "sstsReferenced", (json_int_t)c->ssts_referenced,
                                              "walSstsCopied",
                                              (json_int_t)c->wal_ssts_copied));
    }
    json_object_set_new(d, "children", kids);
    if (s->stalled.on)
        json_object_set_new(d, "stalled",
                            json_pack("{s:s, s:s, s:I, s:o}",
                                      "step", split_step_name(s->stalled.step),
                                      "error", s->stalled.error ? s->stalled.error : "",
                                      "retries", (json_int_t)s->stalled.retries,
                                      "nextRetryTime", time_json(s->stalled.next_retry_ms)));
    json_object_set_new(d, "lease", json_pack("{s:s, s:I, s:I}",
                                              "state", lease_state_name(s->lease.state),
                                              "seq", (json_int_t)s->lease.seq,
                                              "releaseSeq", (json_int_t)s->lease.release_seq));
    json_error_t err;
    json_t *rq = s->request_json ? json_loads(s->request_json, 0, &err) : NULL;
    json_object_set_new(d, "request", rq ? rq : json_null());
    *out = json_dumps(d, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(d);
    return *out ? SHALE_OK : AGENT_OOM();
}

/* ---- decoding ------------------------------------------------------------- */

typedef struct dec {
    const char *origin;
    shale_status rc;
} dec;

static void bad(dec *d, const char *field, const char *why)
{
    if (!d->rc)
        d->rc = shale_error_set(SHALE_CORRUPT, "journal %s: field '%s': %s", d->origin, field, why);
}

/* Optional string (absent or null -> def). */
static const char *get_str(dec *d, json_t *o, const char *k, const char *def)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return def;
    if (!json_is_string(v)) {
        bad(d, k, "not a string");
        return def;
    }
    return json_string_value(v);
}

static uint64_t get_u64(dec *d, json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        bad(d, k, "not a non-negative integer");
        return 0;
    }
    return (uint64_t)json_integer_value(v);
}

static int64_t get_time(dec *d, json_t *o, const char *k)
{
    const char *t = get_str(d, o, k, NULL);
    if (!t || !*t)
        return 0;
    int64_t ms = parse_time(t);
    if (ms < 0) {
        bad(d, k, "not an RFC 3339 UTC time");
        return 0;
    }
    return ms;
}

static void set(dec *d, char **dst, const char *v)
{
    if (!split_state_set_str(dst, v) && !d->rc)
        d->rc = AGENT_OOM();
}

static void dec_step(dec *d, split_state *s, int i, json_t *st)
{
    split_step_rec *r = &s->steps[i];
    int state = step_state_parse(get_str(d, st, "state", "Pending"));
    if (state < 0)
        bad(d, "steps.state", "not Pending, Running, Done or Failed");
    r->state = state < 0 ? STEP_PENDING : (step_state)state;
    r->start_ms = get_time(d, st, "startTime");
    r->end_ms = get_time(d, st, "endTime");
    set(d, &r->message, get_str(d, st, "message", ""));
    r->objects_copied = get_u64(d, st, "objectsCopied");
    r->bytes_copied = get_u64(d, st, "bytesCopied");
    r->attempts = (uint32_t)get_u64(d, st, "attempts");
}

static void dec_steps(dec *d, split_state *s, json_t *steps, int format)
{
    if (format == 1 && json_is_array(steps)) {
        size_t i;
        json_t *st;
        json_array_foreach(steps, i, st) {
            int k = split_step_parse(get_str(d, st, "name", NULL));
            if (k < 0)
                bad(d, "steps[].name", "not a step name");
            else
                dec_step(d, s, k, st);
        }
        return;
    }
    if (!json_is_object(steps)) {
        bad(d, "steps", "not an object keyed by step name");
        return;
    }
    const char *k;
    json_t *st;
    json_object_foreach(steps, k, st) {
        int i = split_step_parse(k);
        if (i < 0)
            bad(d, "steps", "names an unknown step");
        else if (!json_is_object(st))
            bad(d, "steps", "a step is not an object");
        else
            dec_step(d, s, i, st);
    }
}

static void dec_children(dec *d, split_state *s, json_t *kids)
{
    if (!kids || json_is_null(kids))
        return;
    if (!json_is_array(kids)) {
        bad(d, "children", "not an array");
        return;
    }
    size_t n = json_array_size(kids);
    if (!n)
        return;
    s->children = calloc(n, sizeof *s->children);
    if (!s->children) {
        d->rc = AGENT_OOM();
        return;
    }
    for (size_t i = 0; i < n && !d->rc; i++) {
        json_t *c = json_array_get(kids, i);
        split_child_rec *r = &s->children[i];
        s->child_count++;
        set(d, &r->name, get_str(d, c, "name", ""));
        set(d, &r->store, get_str(d, c, "store", ""));
        r->manifest_id = get_u64(d, c, "manifestId");
        r->key_count = get_u64(d, c, "keyCount");
        r->ssts_referenced = get_u64(d, c, "sstsReferenced");
        r->wal_ssts_copied = get_u64(d, c, "walSstsCopied");
    }
}

shale_status journal_decode(const char *origin, const void *data, size_t len,
                            split_state **out)
{
    *out = NULL;
    json_error_t err;
    json_t *doc = json_loadb(data, len, 0, &err);
    if (!doc || !json_is_object(doc)) {
        shale_status rc = shale_error_set(SHALE_CORRUPT,
                                          "journal %s: line %d column %d: %s", origin,
                                          err.line, err.column, doc ? "not an object" : err.text);
        json_decref(doc);
        return rc;
    }
    dec d = {origin, SHALE_OK};
    uint64_t format = json_object_get(doc, "format") ? get_u64(&d, doc, "format") : 1;
    if (!d.rc && (format < 1 || format > JOURNAL_FORMAT)) {
        d.rc = shale_error_set(SHALE_UNSUPPORTED,
                               "journal %s has format %llu; this agent reads "
                               "formats 1 to %d (a newer agent wrote it)", origin,
                               (unsigned long long)format, JOURNAL_FORMAT);
        json_decref(doc);
        return d.rc;
    }
    split_state *s = split_state_alloc();
    if (!s) {
        json_decref(doc);
        return AGENT_OOM();
    }
    s->journal_version = get_u64(&d, doc, "journalVersion");
    set(&d, &s->name, get_str(&d, doc, "name", ""));
    set(&d, &s->shard, get_str(&d, doc, "shard", ""));
    json_t *dry = json_object_get(doc, "dryRun");
    s->dry_run = dry && json_is_true(dry);
    int ph = split_phase_parse(get_str(&d, doc, "phase", "Pending"));
    if (ph < 0)
        bad(&d, "phase", "not a phase");
    s->phase = ph < 0 ? PHASE_PENDING : (split_phase)ph;
    set(&d, &s->reason, get_str(&d, doc, "reason", ""));
    set(&d, &s->message, get_str(&d, doc, "message", ""));
    const char *cp = get_str(&d, doc, "checkpointId", "");
    if (strlen(cp) >= sizeof s->checkpoint_id)
        bad(&d, "checkpointId", "too long");
    else
        snprintf(s->checkpoint_id, sizeof s->checkpoint_id, "%s", cp);
    json_t *owed = json_object_get(doc, "checkpointReleaseOwed");
    if (owed && !json_is_boolean(owed))
        bad(&d, "checkpointReleaseOwed", "not a boolean");
    s->checkpoint_owed = owed && json_is_true(owed) && *s->checkpoint_id;
    s->replay_after_wal_id = get_u64(&d, doc, "replayAfterWalId");
    s->next_wal_sst_id = get_u64(&d, doc, "nextWalSstId");
    s->start_ms = get_time(&d, doc, "startTime");
    s->completion_ms = get_time(&d, doc, "completionTime");
    const char *vm = get_str(&d, doc, "verifyMode", NULL);
    if (vm) {
        int m = split_verify_parse(vm);
        if (m < 0)
            bad(&d, "verifyMode", "not full or references");
        else
            s->verify_mode = (split_verify)m;
    }
    dec_steps(&d, s, json_object_get(doc, "steps"), (int)format);
    /* Version 1 journals FullFlush Running ahead, with Fence (the accept:
     * a resumed FullFlush fences again).  A step after the first one not
     * Done has not started: it shows Pending. */
    int first = STEP_FENCE;
    while (first < STEP_COUNT && s->steps[first].state == STEP_DONE)
        first++;
    for (int i = first + 1; i < STEP_COUNT; i++)
        if (s->steps[i].state == STEP_RUNNING) {
            s->steps[i].state = STEP_PENDING;
            s->steps[i].start_ms = 0;
        }
    dec_children(&d, s, json_object_get(doc, "children"));
    json_t *stl = json_object_get(doc, "stalled");
    if (json_is_object(stl)) {
        int k = split_step_parse(get_str(&d, stl, "step", NULL));
        if (k < 0)
            bad(&d, "stalled.step", "not a step name");
        s->stalled.on = k >= 0;
        s->stalled.step = k < 0 ? STEP_ACCEPT : (split_step)k;
        set(&d, &s->stalled.error, get_str(&d, stl, "error", ""));
        s->stalled.retries = (uint32_t)get_u64(&d, stl, "retries");
        s->stalled.next_retry_ms = get_time(&d, stl, "nextRetryTime");
    }
    json_t *ls = json_object_get(doc, "lease");
    if (json_is_object(ls)) {
        int k = lease_state_parse(get_str(&d, ls, "state", "None"));
        if (k < 0)
            bad(&d, "lease.state", "not None, Held or Released");
        s->lease.state = k < 0 ? LEASE_NONE : (lease_state)k;
        s->lease.seq = get_u64(&d, ls, "seq");
        s->lease.release_seq = get_u64(&d, ls, "releaseSeq");
    }
    /* Format 1 showed phase Complete while the Complete step ran: that
     * split has not finished (its checkpoint may still be on the parent). */
    if (s->phase == PHASE_COMPLETE && !s->dry_run && s->steps[STEP_COMPLETE].state != STEP_DONE)
        s->phase = PHASE_COMPLETING;
    json_t *rq = json_object_get(doc, "request");
    if (rq && json_is_object(rq) && !(s->request_json = json_dumps(rq, JSON_SORT_KEYS)) &&
        !d.rc)
        d.rc = AGENT_OOM();
    if (!d.rc && !s->request_json && !split_phase_terminal(s->phase))
        bad(&d, "request", "missing in an unfinished split");
    json_decref(doc);
    if (d.rc) {
        split_state_free(s);
        return d.rc;
    }
    *out = s;
    return SHALE_OK;
}

/* ---- the store ------------------------------------------------------------ */

static shale_status put_version(shale_objstore *st, const char *name, uint64_t v,
                                const char *text)
{
    char key[SHALE_JOURNAL_KEY_MAX];
    if (!shale_journal_key(name, v, key, sizeof key))
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "journal: split name '%s' cannot name a "
                               "journal key (empty, '/', a leading '_' or "
                               "over %d bytes)", name, SHALE_JOURNAL_NAME_MAX);
    shale_status rc = shale_objstore_put_if_absent(st, key, text, strlen(text));
    if (rc == SHALE_PRECONDITION_FAILED)
        return shale_error_set(SHALE_CONFLICT,
                               "journal %s/%s already exists: another agent is driving split %s",
                               shale_objstore_uri(st), key, name);
    if (rc)
        return shale_error_prefix(rc, "writing journal %s", key);
    return SHALE_OK;
}

shale_status journal_save(shale_objstore *st, split_state *s)
{
    uint64_t old = s->journal_version;
    s->journal_version = old + 1;
    char *text = NULL;
    shale_status rc = journal_encode(s, &text);
    if (!rc)
        rc = put_version(st, s->name, s->journal_version, text);
    free(text);
    if (rc) {
        s->journal_version = old;
        return rc;
    }
    char fp[64];
    snprintf(fp, sizeof fp, "Journal.%llu", (unsigned long long)s->journal_version);
    failpoint(fp);
    return SHALE_OK;
}

/* "splits/<name>/<20 digits>.json" (paths.c; lease records are not
 * journals): 0, or -1 for another key. */
static int parse_key(const char *key, char *name, size_t nlen, uint64_t *version)
{
    return shale_journal_key_parse(key, name, nlen, version) ? 0 : -1;
}

static shale_status read_version(shale_objstore *st, const char *key, split_state **out)
{
    void *data = NULL;
    size_t len = 0;
    shale_status rc = shale_objstore_get(st, key, &data, &len);
    if (rc)
        return shale_error_prefix(rc == SHALE_NOT_FOUND ? SHALE_IO : rc, "reading journal %s",
                                  key);
    rc = journal_decode(key, data, len, out);
    free(data);
    return rc;
}

shale_status journal_load_all(shale_objstore *st, journal_fn fn, void *ctx)
{
    shale_objlist l;
    shale_status rc = shale_objstore_list_all(st, SHALE_JOURNAL_DIR, &l);
    if (rc)
        return shale_error_prefix(rc, "listing split journals in %s", shale_objstore_uri(st));
    /* Keys sort by name then version: the last key of each name wins. */
    for (size_t i = 0; i < l.count; i++) {
        char name[SHALE_JOURNAL_NAME_MAX + 1], next_name[SHALE_JOURNAL_NAME_MAX + 1];
        uint64_t ver, nv;
        if (parse_key(l.items[i].key, name, sizeof name, &ver))
            continue;
        if (i + 1 < l.count && !parse_key(l.items[i + 1].key, next_name, sizeof next_name, &nv) &&
            !strcmp(name, next_name))
            continue;
        split_state *s = NULL;
        rc = read_version(st, l.items[i].key, &s);
        if (!rc && (strcmp(s->name, name) || s->journal_version != ver)) {
            rc = shale_error_set(SHALE_CORRUPT, "journal %s names split %s version %llu",
                                 l.items[i].key, s->name, (unsigned long long)s->journal_version);
            split_state_free(s);
            s = NULL;
        }
        fn(ctx, name, ver, rc, s);
    }
    shale_objlist_free(&l);
    return SHALE_OK;
}

shale_status journal_load(shale_objstore *st, const char *name, uint64_t *version,
                          split_state **out)
{
    *out = NULL;
    *version = 0;
    char prefix[SHALE_JOURNAL_KEY_MAX];
    snprintf(prefix, sizeof prefix, SHALE_JOURNAL_DIR "%s/", name);
    shale_objlist l;
    shale_status rc = shale_objstore_list_all(st, prefix, &l);
    if (rc)
        return shale_error_prefix(rc, "listing journal %s", prefix);
    const char *last = NULL;
    char nm[SHALE_JOURNAL_NAME_MAX + 1];
    for (size_t i = 0; i < l.count; i++)
        if (!parse_key(l.items[i].key, nm, sizeof nm, version) && !strcmp(nm, name))
            last = l.items[i].key;
    if (!last)
        rc = shale_error_set(SHALE_NOT_FOUND, "no journal for split %s", name);
    else
        rc = read_version(st, last, out);
    shale_objlist_free(&l);
    return rc;
}

shale_status journal_load_if_any(shale_objstore *st, const char *name, uint64_t *version,
                                 split_state **out)
{
    *out = NULL;
    *version = 0;
    char key[SHALE_JOURNAL_KEY_MAX];
    if (!shale_journal_key(name, 1, key, sizeof key))
        return shale_error_set(SHALE_INVALID_ARGUMENT, "split name %s cannot name a journal",
                               name);
    /* Version 1 is the first every journal writes (journal_save, from
     * journal_version 0; the same keys since the first format) and no
     * version is ever deleted (journal_clear writes one more): without
     * version 1 there is no journal of that name. */
    shale_status rc = shale_objstore_head(st, key, NULL, NULL);
    if (rc == SHALE_NOT_FOUND)
        return shale_error_set(SHALE_NOT_FOUND, "no journal for split %s", name);
    if (rc)
        return shale_error_prefix(rc, "reading journal %s", key);
    return journal_load(st, name, version, out);
}

shale_status journal_clear(shale_objstore *st, const char *name, int64_t now)
{
    uint64_t v = 0;
    split_state *old = NULL;
    shale_status rc = journal_load(st, name, &v, &old);
    if (rc == SHALE_NOT_FOUND)
        return rc;
    if (!rc && !split_phase_terminal(old->phase)) {
        split_state_free(old);
        return shale_error_set(SHALE_CONFLICT, "split %s is unfinished (%s): it is resumed, not "
                                               "cleared", name, split_phase_name(old->phase));
    }
    if (rc && rc != SHALE_CORRUPT && rc != SHALE_UNSUPPORTED)
        return rc;   /* cannot read it now: nothing is known to clear */
    char why[600];
    snprintf(why, sizeof why, "cleared by an operator: %s",
             old ? (old->message ? old->message : "") : shale_errmsg());
    split_state *s = old ? old : split_state_alloc();
    if (!s)
        return AGENT_OOM();
    if (!old && !split_state_set_str(&s->name, name)) {
        split_state_free(s);
        return AGENT_OOM();
    }
    s->phase = PHASE_FAILED;
    s->stalled.on = false;
    s->completion_ms = s->completion_ms ? s->completion_ms : now;
    s->journal_version = v;
    if (!split_state_set_str(&s->reason, "ClearedByOperator") ||
        !split_state_set_str(&s->message, why))
        rc = AGENT_OOM();
    else
        rc = journal_save(st, s);
    split_state_free(s);
    return rc;
}
