/*
 * manifest.c -- the manifest struct and its JSON form (jansson).
 *
 * The JSON is documented field by field in docs/format.md ("Manifest").
 * Decoding checks every field's presence and type and reports the first
 * problem as SHALE_CORRUPT "<object>: field '<path>' <what>"; a newer
 * format_version is SHALE_UNSUPPORTED.  Unknown fields are ignored, so a
 * version may grow compatible fields.  Integers are JSON integers (jansson:
 * signed 64-bit), so every counter is limited to 2^63-1.
 */
#include "db/manifest.h"
#include "table/kv.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <jansson.h>
#include <xxhash.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The checksum member as the encoder writes it (docs/format.md). */
#define CHECKSUM_PREFIX "{\n  \"checksum\": \"xxh3-64:"
#define CHECKSUM_ZERO "xxh3-64:0000000000000000"

static char *checksum_place(char *text, size_t n);

manifest *manifest_new(void)
{
    manifest *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->format_version = MANIFEST_FORMAT_VERSION;
    m->initialized = true;
    m->next_wal_sst_id = 1;
    return m;
}

void sst_handle_clear(sst_handle *h)
{
    if (!h)
        return;
    free(h->store_uri);
    free(h->first_key);
    free(h->last_key);
    memset(h, 0, sizeof *h);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    if (!p)
        return NULL;
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

bool sst_handle_overlaps(const sst_handle *h, const uint8_t *start, size_t start_len,
                         const uint8_t *end, size_t end_len)
{
    if (h->entries == 0 || !h->first_key)
        return false;
    if (end && end_len && kv_key_cmp(h->first_key, h->first_klen, end, end_len) >= 0)
        return false;
    if (start && start_len && kv_key_cmp(h->last_key, h->last_klen, start, start_len) < 0)
        return false;
    return true;
}

shale_status sst_handle_copy(sst_handle *dst, const sst_handle *src)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->id, src->id, sizeof dst->id);
    dst->size = src->size;
    dst->entries = src->entries;
    dst->tail = src->tail;
    dst->first_klen = src->first_klen;
    dst->last_klen = src->last_klen;
    if ((src->store_uri && !(dst->store_uri = xstrdup(src->store_uri))) ||
        (src->first_key && !(dst->first_key = dup_bytes(src->first_key, src->first_klen))) ||
        (src->last_key && !(dst->last_key = dup_bytes(src->last_key, src->last_klen)))) {
        sst_handle_clear(dst);
        return SHALE_OOM();
    }
    return SHALE_OK;
}

void manifest_free(manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->l0_count; i++)
        sst_handle_clear(&m->l0[i]);
    free(m->l0);
    for (size_t r = 0; r < m->run_count; r++) {
        for (size_t i = 0; i < m->runs[r].count; i++)
            sst_handle_clear(&m->runs[r].ssts[i]);
        free(m->runs[r].ssts);
    }
    free(m->runs);
    for (size_t i = 0; i < m->checkpoint_count; i++)
        free(m->checkpoints[i].name);
    free(m->checkpoints);
    for (size_t i = 0; i < m->parent_count; i++)
        free(m->parents[i].store_uri);
    free(m->parents);
    free(m->wal_store_uri);
    free(m->range_start);
    free(m->range_end);
    free(m->origin.parent_uri);
    free(m->origin.parent_checkpoint_id);
    free(m);
}

static shale_status copy_handles(sst_handle **dst, const sst_handle *src, size_t n)
{
    *dst = calloc(n ? n : 1, sizeof **dst);
    if (!*dst)
        return SHALE_OOM();
    for (size_t i = 0; i < n; i++)
        if (sst_handle_copy(&(*dst)[i], &src[i])) {
            for (size_t j = 0; j < i; j++)
                sst_handle_clear(&(*dst)[j]);
            free(*dst);
            *dst = NULL;
            return SHALE_OOM();
        }
    return SHALE_OK;
}

manifest *manifest_dup(const manifest *s)
{
    manifest *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    *m = *s;
    m->l0 = NULL;
    m->runs = NULL;
    m->checkpoints = NULL;
    m->parents = NULL;
    m->wal_store_uri = NULL;
    m->range_start = m->range_end = NULL;
    m->origin.parent_uri = m->origin.parent_checkpoint_id = NULL;
    m->l0_count = m->run_count = m->checkpoint_count = m->parent_count = 0;
    if (copy_handles(&m->l0, s->l0, s->l0_count))
        goto oom;
    m->l0_count = s->l0_count;
    if (!(m->runs = calloc(s->run_count ? s->run_count : 1, sizeof *m->runs)))
        goto oom;
    for (size_t r = 0; r < s->run_count; r++) {
        m->runs[r].id = s->runs[r].id;
        if (copy_handles(&m->runs[r].ssts, s->runs[r].ssts, s->runs[r].count))
            goto oom;
        m->runs[r].count = s->runs[r].count;
        m->run_count = r + 1;
    }
    if (!(m->checkpoints = calloc(s->checkpoint_count ? s->checkpoint_count : 1,
                                  sizeof *m->checkpoints)))
        goto oom;
    for (size_t i = 0; i < s->checkpoint_count; i++) {
        m->checkpoints[i] = s->checkpoints[i];
        m->checkpoints[i].name = NULL;
        m->checkpoint_count = i + 1;
        if (s->checkpoints[i].name && !(m->checkpoints[i].name = xstrdup(s->checkpoints[i].name)))
            goto oom;
    }
    if (!(m->parents = calloc(s->parent_count ? s->parent_count : 1, sizeof *m->parents)))
        goto oom;
    for (size_t i = 0; i < s->parent_count; i++) {
        m->parents[i] = s->parents[i];
        m->parents[i].store_uri = NULL;
        m->parent_count = i + 1;
        if (!(m->parents[i].store_uri = xstrdup(s->parents[i].store_uri)))
            goto oom;
    }
    if ((s->wal_store_uri && !(m->wal_store_uri = xstrdup(s->wal_store_uri))) ||
        (s->range_start && !(m->range_start = dup_bytes(s->range_start, s->range_start_len))) ||
        (s->range_end && !(m->range_end = dup_bytes(s->range_end, s->range_end_len))) ||
        (s->origin.parent_uri && !(m->origin.parent_uri = xstrdup(s->origin.parent_uri))) ||
        (s->origin.parent_checkpoint_id &&
         !(m->origin.parent_checkpoint_id = xstrdup(s->origin.parent_checkpoint_id))))
        goto oom;
    return m;
oom:
    manifest_free(m);
    return NULL;
}

/* ---- key escaping ----------------------------------------------------------- */

char *manifest_key_escape(const uint8_t *key, size_t len)
{
    char *out = malloc(len * 3 + 1), *p = out;
    if (!out)
        return NULL;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        uint8_t c = key[i];
        if (c >= 0x20 && c < 0x7f && c != '%') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

uint8_t *manifest_key_unescape(const char *text, size_t *len)
{
    size_t n = strlen(text);
    uint8_t *out = malloc(n ? n : 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (text[i] != '%') {
            out[o++] = (uint8_t)text[i];
            continue;
        }
        int a = i + 2 < n ? hexval(text[i + 1]) : -1;
        int b = a >= 0 ? hexval(text[i + 2]) : -1;
        if (a < 0 || b < 0) {
            free(out);
            return NULL;
        }
        out[o++] = (uint8_t)(a << 4 | b);
        i += 2;
    }
    *len = o;
    return out;
}

/* ---- encode ----------------------------------------------------------------- */

static json_t *key_json(const uint8_t *k, size_t n)
{
    if (!k)
        return json_null();
    char *e = manifest_key_escape(k, n);
    json_t *j = e ? json_string(e) : NULL;
    free(e);
    return j;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *sst_json(const sst_handle *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(h->id));
    json_object_set_new(o, "store_uri", str_or_null(h->store_uri));
    json_object_set_new(o, "size", json_integer((json_int_t)h->size));
    json_object_set_new(o, "entries", json_integer((json_int_t)h->entries));
    json_object_set_new(o, "first_key", key_json(h->first_key, h->first_klen));
    json_object_set_new(o, "last_key", key_json(h->last_key, h->last_klen));
    if (h->tail)
        json_object_set_new(o, "tail", json_integer((json_int_t)h->tail));
    return o;
}

shale_status manifest_encode(const manifest *m, char **json, size_t *len)
{
    json_t *o = json_object();
    if (!o)
        return SHALE_OOM();
    /* First member, so that it sits at a fixed place (checksum_place()). */
    json_object_set_new(o, "checksum", json_string(CHECKSUM_ZERO));
    json_object_set_new(o, "format_version", json_integer(m->format_version));
    json_object_set_new(o, "writer_epoch", json_integer((json_int_t)m->writer_epoch));
    json_object_set_new(o, "compactor_epoch", json_integer((json_int_t)m->compactor_epoch));
    json_object_set_new(o, "replay_after_wal_id",
                        json_integer((json_int_t)m->replay_after_wal_id));
    json_object_set_new(o, "next_wal_sst_id", json_integer((json_int_t)m->next_wal_sst_id));
    json_object_set_new(o, "last_l0_seq", json_integer((json_int_t)m->last_l0_seq));
    json_object_set_new(o, "next_run_id", json_integer(m->next_run_id));
    json_object_set_new(o, "initialized", json_boolean(m->initialized));
    json_object_set_new(o, "wal_store_uri", str_or_null(m->wal_store_uri));
    if (m->range_start || m->range_end) {
        json_t *r = json_object();
        json_object_set_new(r, "start", key_json(m->range_start, m->range_start_len));
        json_object_set_new(r, "end", key_json(m->range_end, m->range_end_len));
        json_object_set_new(o, "visible_range", r);
    } else {
        json_object_set_new(o, "visible_range", json_null());
    }
    json_t *l0 = json_array();
    for (size_t i = 0; i < m->l0_count; i++)
        json_array_append_new(l0, sst_json(&m->l0[i]));
    json_object_set_new(o, "l0", l0);
    json_t *runs = json_array();
    for (size_t r = 0; r < m->run_count; r++) {
        json_t *ro = json_object(), *ss = json_array();
        json_object_set_new(ro, "id", json_integer(m->runs[r].id));
        for (size_t i = 0; i < m->runs[r].count; i++)
            json_array_append_new(ss, sst_json(&m->runs[r].ssts[i]));
        json_object_set_new(ro, "ssts", ss);
        json_array_append_new(runs, ro);
    }
    json_object_set_new(o, "sorted_runs", runs);
    json_t *cps = json_array();
    for (size_t i = 0; i < m->checkpoint_count; i++) {
        const checkpoint_rec *c = &m->checkpoints[i];
        json_t *co = json_object();
        json_object_set_new(co, "id", json_string(c->id));
        json_object_set_new(co, "manifest_id", json_integer((json_int_t)c->manifest_id));
        json_object_set_new(co, "create_time_ms", json_integer(c->create_time_ms));
        json_object_set_new(co, "expire_time_ms", json_integer(c->expire_time_ms));
        json_object_set_new(co, "name", str_or_null(c->name));
        json_array_append_new(cps, co);
    }
    json_object_set_new(o, "checkpoints", cps);
    json_t *ps = json_array();
    for (size_t i = 0; i < m->parent_count; i++) {
        json_t *po = json_object();
        json_object_set_new(po, "store_uri", json_string(m->parents[i].store_uri));
        json_object_set_new(po, "source_checkpoint_id",
                            json_string(m->parents[i].source_checkpoint_id));
        json_object_set_new(po, "final_checkpoint_id",
                            json_string(m->parents[i].final_checkpoint_id));
        json_array_append_new(ps, po);
    }
    json_object_set_new(o, "parents", ps);
    if (m->origin.parent_uri) {
        json_t *co = json_object();
        json_object_set_new(co, "parent_uri", json_string(m->origin.parent_uri));
        json_object_set_new(co, "parent_checkpoint_id",
                            str_or_null(m->origin.parent_checkpoint_id));
        json_object_set_new(co, "has_range", json_boolean(m->origin.has_range));
        json_object_set_new(o, "clone_origin", co);
    } else {
        json_object_set_new(o, "clone_origin", json_null());
    }
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return SHALE_OOM();
    /* The checksum covers these exact bytes with its own 16 digits as '0'
     * (docs/format.md "Checksum"): written in place, nothing re-encoded. */
    size_t n = strlen(text);
    char *digits = checksum_place(text, n);
    if (!digits) {
        free(text);
        return shale_err(SHALE_IO, "manifest encoding: the checksum is not where the format "
                                   "puts it (jansson printed an unexpected layout)");
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits(text, n));
    memcpy(digits, hex, 16);
    *json = text;
    if (len)
        *len = strlen(text);
    return SHALE_OK;
}

/* ---- decode ----------------------------------------------------------------- */

typedef struct dec {
    const char *name;
    shale_status rc;
} dec;

static bool bad(dec *d, const char *path, const char *what)
{
    if (!d->rc)
        d->rc = shale_err(SHALE_CORRUPT, "%s: field '%s' %s", d->name, path, what);
    return false;
}

static bool get_u64(dec *d, json_t *o, const char *k, const char *path, uint64_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!v)
        return bad(d, path, "is missing");
    if (!json_is_integer(v))
        return bad(d, path, "is not an integer");
    if (json_integer_value(v) < 0)
        return bad(d, path, "is negative");
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool get_i64(dec *d, json_t *o, const char *k, const char *path, int64_t *out)
{
    json_t *v = json_object_get(o, k);
    if (!v)
        return bad(d, path, "is missing");
    if (!json_is_integer(v))
        return bad(d, path, "is not an integer");
    *out = json_integer_value(v);
    return true;
}

/* Optional string: NULL if null; *out malloc'd. */
static bool get_opt_str(dec *d, json_t *o, const char *k, const char *path, char **out)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return bad(d, path, "is not a string or null");
    if (!(*out = xstrdup(json_string_value(v)))) {
        d->rc = SHALE_OOM();
        return false;
    }
    return true;
}

static bool get_fixed(dec *d, json_t *o, const char *k, const char *path, char *out,
                      size_t want, bool ulid)
{
    json_t *v = json_object_get(o, k);
    if (!v)
        return bad(d, path, "is missing");
    const char *s = json_string_value(v);
    if (!s)
        return bad(d, path, "is not a string");
    size_t n = strlen(s);
    if (ulid ? n != 26 : (n != 36 && n != 0))
        return bad(d, path, ulid ? "is not a 26-character ULID" : "is not a 36-character UUID");
    if (ulid && ulid_time_ms(s) < 0)
        return bad(d, path, "is not a ULID");
    memcpy(out, s, n + 1);
    (void)want;
    return true;
}

static bool get_key(dec *d, json_t *o, const char *k, const char *path, uint8_t **out,
                    size_t *len)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    *len = 0;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return bad(d, path, "is not a string or null");
    if (!(*out = manifest_key_unescape(json_string_value(v), len)))
        return bad(d, path, "has a bad %XX escape");
    return true;
}

static bool dec_sst(dec *d, json_t *o, const char *path, sst_handle *h)
{
    char p[96];
    if (!json_is_object(o))
        return bad(d, path, "is not an object");
#define P(f) (snprintf(p, sizeof p, "%s.%s", path, f), p)
    return get_fixed(d, o, "id", P("id"), h->id, 26, true) &&
           get_opt_str(d, o, "store_uri", P("store_uri"), &h->store_uri) &&
           get_u64(d, o, "size", P("size"), &h->size) &&
           get_u64(d, o, "entries", P("entries"), &h->entries) &&
           get_key(d, o, "first_key", P("first_key"), &h->first_key, &h->first_klen) &&
           get_key(d, o, "last_key", P("last_key"), &h->last_key, &h->last_klen) &&
           (!json_object_get(o, "tail") || get_u64(d, o, "tail", P("tail"), &h->tail));
#undef P
}

static bool dec_ssts(dec *d, json_t *arr, const char *path, sst_handle **out, size_t *n)
{
    if (!json_is_array(arr))
        return bad(d, path, "is not an array");
    size_t cnt = json_array_size(arr);
    *out = calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out) {
        d->rc = SHALE_OOM();
        return false;
    }
    for (size_t i = 0; i < cnt; i++) {
        char p[64];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        *n = i + 1;
        if (!dec_sst(d, json_array_get(arr, i), p, &(*out)[i]))
            return false;
    }
    *n = cnt;
    return true;
}

static bool dec_body(dec *d, json_t *o, manifest *m)
{
    uint64_t v = 0;
    if (!get_u64(d, o, "writer_epoch", "writer_epoch", &m->writer_epoch) ||
        !get_u64(d, o, "compactor_epoch", "compactor_epoch", &m->compactor_epoch) ||
        !get_u64(d, o, "replay_after_wal_id", "replay_after_wal_id", &m->replay_after_wal_id) ||
        !get_u64(d, o, "next_wal_sst_id", "next_wal_sst_id", &m->next_wal_sst_id) ||
        !get_u64(d, o, "last_l0_seq", "last_l0_seq", &m->last_l0_seq) ||
        !get_u64(d, o, "next_run_id", "next_run_id", &v))
        return false;
    m->next_run_id = (uint32_t)v;
    if (m->next_wal_sst_id <= m->replay_after_wal_id)
        return bad(d, "next_wal_sst_id", "is not above replay_after_wal_id");
    json_t *init = json_object_get(o, "initialized");
    if (!json_is_boolean(init))
        return bad(d, "initialized", "is not a boolean");
    m->initialized = json_is_true(init);
    if (!get_opt_str(d, o, "wal_store_uri", "wal_store_uri", &m->wal_store_uri))
        return false;
    json_t *vr = json_object_get(o, "visible_range");
    if (vr && !json_is_null(vr)) {
        if (!json_is_object(vr))
            return bad(d, "visible_range", "is not an object or null");
        if (!get_key(d, vr, "start", "visible_range.start", &m->range_start,
                     &m->range_start_len) ||
            !get_key(d, vr, "end", "visible_range.end", &m->range_end, &m->range_end_len))
            return false;
    }
    if (!dec_ssts(d, json_object_get(o, "l0"), "l0", &m->l0, &m->l0_count))
        return false;
    json_t *runs = json_object_get(o, "sorted_runs");
    if (!json_is_array(runs))
        return bad(d, "sorted_runs", "is not an array");
    size_t nr = json_array_size(runs);
    if (!(m->runs = calloc(nr ? nr : 1, sizeof *m->runs))) {
        d->rc = SHALE_OOM();
        return false;
    }
    for (size_t r = 0; r < nr; r++) {
        char p[64];
        json_t *ro = json_array_get(runs, r);
        snprintf(p, sizeof p, "sorted_runs[%zu]", r);
        if (!json_is_object(ro))
            return bad(d, p, "is not an object");
        m->run_count = r + 1;
        snprintf(p, sizeof p, "sorted_runs[%zu].id", r);
        if (!get_u64(d, ro, "id", p, &v))
            return false;
        m->runs[r].id = (uint32_t)v;
        snprintf(p, sizeof p, "sorted_runs[%zu].ssts", r);
        if (!dec_ssts(d, json_object_get(ro, "ssts"), p, &m->runs[r].ssts, &m->runs[r].count))
            return false;
        for (size_t i = 1; i < m->runs[r].count; i++) {
            const sst_handle *a = &m->runs[r].ssts[i - 1], *b = &m->runs[r].ssts[i];
            if (a->last_key && b->first_key &&
                kv_key_cmp(a->last_key, a->last_klen, b->first_key, b->first_klen) >= 0) {
                snprintf(p, sizeof p, "sorted_runs[%zu].ssts[%zu]", r, i);
                return bad(d, p, "overlaps the SST before it");
            }
        }
    }
    json_t *cps = json_object_get(o, "checkpoints");
    if (!json_is_array(cps))
        return bad(d, "checkpoints", "is not an array");
    size_t nc = json_array_size(cps);
    if (!(m->checkpoints = calloc(nc ? nc : 1, sizeof *m->checkpoints))) {
        d->rc = SHALE_OOM();
        return false;
    }
    for (size_t i = 0; i < nc; i++) {
        json_t *co = json_array_get(cps, i);
        checkpoint_rec *c = &m->checkpoints[i];
        char p[64], q[128];
        snprintf(p, sizeof p, "checkpoints[%zu]", i);
        if (!json_is_object(co))
            return bad(d, p, "is not an object");
        m->checkpoint_count = i + 1;
#define Q(f) (snprintf(q, sizeof q, "%s.%s", p, f), q)
        if (!get_fixed(d, co, "id", Q("id"), c->id, 36, false) ||
            !get_u64(d, co, "manifest_id", Q("manifest_id"), &c->manifest_id) ||
            !get_i64(d, co, "create_time_ms", Q("create_time_ms"), &c->create_time_ms) ||
            !get_i64(d, co, "expire_time_ms", Q("expire_time_ms"), &c->expire_time_ms) ||
            !get_opt_str(d, co, "name", Q("name"), &c->name))
            return false;
        if (!c->id[0])
            return bad(d, Q("id"), "is empty");
    }
    json_t *ps = json_object_get(o, "parents");
    if (!json_is_array(ps))
        return bad(d, "parents", "is not an array");
    size_t np = json_array_size(ps);
    if (!(m->parents = calloc(np ? np : 1, sizeof *m->parents))) {
        d->rc = SHALE_OOM();
        return false;
    }
    for (size_t i = 0; i < np; i++) {
        json_t *po = json_array_get(ps, i);
        parent_rec *pr = &m->parents[i];
        char p[64], q[128];
        snprintf(p, sizeof p, "parents[%zu]", i);
        if (!json_is_object(po))
            return bad(d, p, "is not an object");
        m->parent_count = i + 1;
        if (!get_opt_str(d, po, "store_uri", Q("store_uri"), &pr->store_uri))
            return false;
        if (!pr->store_uri)
            return bad(d, Q("store_uri"), "is missing");
        if (!get_fixed(d, po, "source_checkpoint_id", Q("source_checkpoint_id"),
                       pr->source_checkpoint_id, 36, false) ||
            !get_fixed(d, po, "final_checkpoint_id", Q("final_checkpoint_id"),
                       pr->final_checkpoint_id, 36, false))
            return false;
#undef Q
    }
    json_t *co = json_object_get(o, "clone_origin");
    if (co && !json_is_null(co)) {
        if (!json_is_object(co))
            return bad(d, "clone_origin", "is not an object or null");
        if (!get_opt_str(d, co, "parent_uri", "clone_origin.parent_uri", &m->origin.parent_uri) ||
            !get_opt_str(d, co, "parent_checkpoint_id", "clone_origin.parent_checkpoint_id",
                         &m->origin.parent_checkpoint_id))
            return false;
        m->origin.has_range = json_is_true(json_object_get(co, "has_range"));
    }
    return true;
}

/* Verifies a manifest written before the byte-defined checksum: XXH3-64
 * of the document as jansson re-encodes it without the field (16 bare hex
 * digits).  Kept so that existing stores still open; nothing writes it. */
static bool legacy_checksum_ok(dec *d, json_t *o)
{
    json_t *c = json_object_get(o, "checksum");
    if (!c)
        return bad(d, "checksum", "is missing");
    const char *want = json_string_value(c);
    if (!want)
        return bad(d, "checksum", "is not a string");
    char keep[17];
    snprintf(keep, sizeof keep, "%s", want);
    json_incref(c);
    json_object_del(o, "checksum");
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_object_set_new(o, "checksum", c);
    if (!text) {
        d->rc = SHALE_OOM();
        return false;
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits(text, strlen(text)));
    free(text);
    if (strcmp(hex, keep))
        return bad(d, "checksum", "does not match the content (the manifest was damaged or "
                                  "edited by hand)");
    return true;
}

/* The byte-defined checksum: the object starts with exactly
 * CHECKSUM_PREFIX, 16 lowercase hex digits and a closing quote.  Returns
 * where the digits are, or NULL if the object does not start that way. */
static const char *checksum_digits(const char *text, size_t n)
{
    size_t p = sizeof CHECKSUM_PREFIX - 1;
    if (n < p + 17 || memcmp(text, CHECKSUM_PREFIX, p) || text[p + 16] != '"')
        return NULL;
    for (size_t i = 0; i < 16; i++) {
        char c = text[p + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return NULL;
    }
    return text + p;
}

static char *checksum_place(char *text, size_t n)
{
    return (char *)checksum_digits(text, n);
}

/* Verifies the manifest's checksum: XXH3-64 (seed 0) of the object's bytes
 * with the 16 digits of the checksum replaced by '0'.  Manifests from before
 * that definition carry 16 bare digits (legacy_checksum_ok()). */
static bool checksum_ok(dec *d, const uint8_t *data, size_t len, json_t *o)
{
    json_t *c = json_object_get(o, "checksum");
    if (!c)
        return bad(d, "checksum", "is missing");
    const char *want = json_string_value(c);
    if (!want)
        return bad(d, "checksum", "is not a string");
    if (strncmp(want, "xxh3-64:", 8))
        return legacy_checksum_ok(d, o);
    const char *digits = checksum_digits((const char *)data, len);
    if (!digits)
        return bad(d, "checksum", "is not the object's first member, written as "
                                  "'{\\n  \"checksum\": \"xxh3-64:<16 hex digits>\"' "
                                  "(docs/format.md)");
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        d->rc = SHALE_OOM();
        return false;
    }
    memcpy(copy, data, len);
    memset(copy + (digits - (const char *)data), '0', 16);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)XXH3_64bits(copy, len));
    free(copy);
    if (memcmp(hex, digits, 16))
        return bad(d, "checksum", "does not match the content (the manifest was damaged or "
                                  "edited by hand)");
    return true;
}

shale_status manifest_decode(const char *name, const uint8_t *data, size_t len, manifest **out)
{
    *out = NULL;
    json_error_t err;
    json_t *o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &err);
    if (!o)
        return shale_err(SHALE_CORRUPT, "%s: not valid JSON: line %d column %d: %s", name,
                         err.line, err.column, err.text);
    dec d = {name, SHALE_OK};
    manifest *m = calloc(1, sizeof *m);
    if (!m) {
        json_decref(o);
        return SHALE_OOM();
    }
    uint64_t fv = 0;
    if (!json_is_object(o)) {
        bad(&d, "(root)", "is not an object");
    } else if (!checksum_ok(&d, data, len, o)) {
        /* reported */
    } else if (get_u64(&d, o, "format_version", "format_version", &fv)) {
        if (fv > MANIFEST_FORMAT_VERSION)
            d.rc = shale_err(SHALE_UNSUPPORTED,
                             "%s: manifest format version %llu is newer than this build "
                             "supports (%d); upgrade Shale",
                             name, (unsigned long long)fv, MANIFEST_FORMAT_VERSION);
        else if (fv == 0)
            bad(&d, "format_version", "is 0");
        else {
            m->format_version = (uint32_t)fv;
            dec_body(&d, o, m);
        }
    }
    json_decref(o);
    if (d.rc) {
        manifest_free(m);
        return d.rc;
    }
    *out = m;
    return SHALE_OK;
}
