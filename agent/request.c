/*
 * request.c -- split requests: parse (through yamljson.c, so YAML and JSON
 * share one validator) and validate (see request.h for the rules).
 */
#include "request.h"
#include "yamljson.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHILDREN 64
#define MAX_NAME 63

typedef struct pctx {
    const char *origin;
    json_t *marks;
    shale_status rc;
} pctx;

static bool bad(pctx *c, const char *path, const char *what)
{
    if (!c->rc) {
        char where[64];
        yamljson_where(c->marks, path, where, sizeof where);
        c->rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s: field '%s'%s: %s", c->origin, path,
                                where, what);
    }
    return false;
}

/* Rejects keys of o that are not in allowed (NULL-terminated). */
static bool only_keys(pctx *c, json_t *o, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, k);
        if (!ok) {
            char p[256], msg[300];
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k);
            snprintf(msg, sizeof msg, "unknown field '%.200s'", k);
            return bad(c, p, msg);
        }
    }
    return true;
}

static bool get_str(pctx *c, json_t *o, const char *k, const char *path, bool required,
                    char **out)
{
    json_t *v = json_object_get(o, k);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return bad(c, path, "is required");
        return true;
    }
    if (!json_is_string(v))
        return bad(c, path, "must be a string");
    if (!(*out = agent_strdup(json_string_value(v)))) {
        c->rc = AGENT_OOM();
        return false;
    }
    return true;
}

static bool get_bool(pctx *c, json_t *o, const char *k, const char *path, bool *out)
{
    json_t *v = json_object_get(o, k);
    *out = false;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v))
        return bad(c, path, "must be true or false");
    *out = json_is_true(v);
    return true;
}

static bool get_bound(pctx *c, json_t *o, const char *k, const char *path, uint8_t **out,
                      size_t *len)
{
    char *s = NULL;
    *out = NULL;
    *len = 0;
    if (!get_str(c, o, k, path, false, &s))
        return false;
    if (!s || !*s) {
        free(s);
        return true;
    }
    *out = shale_key_unescape(s, len);
    free(s);
    if (!*out)
        return bad(c, path, "has a bad %XX escape");
    return true;
}

void split_request_free(split_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->child_count; i++) {
        free(r->children[i].name);
        free(r->children[i].store);
        free(r->children[i].wal_store);
        free(r->children[i].start);
        free(r->children[i].end);
    }
    free(r->children);
    free(r->name);
    free(r->parent_shard);
    free(r->parent_store);
    free(r->parent_wal_store);
    free(r);
}

const char *split_verify_name(split_verify v)
{
    return v == SPLIT_VERIFY_FULL ? "full" : v == SPLIT_VERIFY_REFERENCES ? "references"
                                                                          : "default";
}

const char *split_by_name(shale_split_by by)
{
    return by == SHALE_SPLIT_BY_KEYS ? "keys" : "bytes";
}

int split_by_parse(const char *name)
{
    if (!strcmp(name, "bytes"))
        return SHALE_SPLIT_BY_BYTES;
    if (!strcmp(name, "keys"))
        return SHALE_SPLIT_BY_KEYS;
    return -1;
}

int split_verify_parse(const char *name)
{
    if (!strcmp(name, "full"))
        return SPLIT_VERIFY_FULL;
    if (!strcmp(name, "references"))
        return SPLIT_VERIFY_REFERENCES;
    return -1;
}

shale_status split_request_parse(const char *origin, const char *text, size_t len,
                                 split_request **out)
{
    *out = NULL;
    json_t *j = NULL, *marks = NULL;
    shale_status rc = yamljson_parse(origin, text, len, &j, &marks);
    if (rc)
        return rc;
    pctx c = {origin, marks, SHALE_OK};
    split_request *r = calloc(1, sizeof *r);
    static const char *const top[] = {"name", "parent", "children", "dryRun", "abort",
                                     "verify", "splitBy", "rangesComputed", NULL};
    static const char *const par[] = {"shard", "store", "walStore", NULL};
    static const char *const kid[] = {"name", "store", "walStore", "range", NULL};
    static const char *const rng[] = {"start", "end", NULL};
    if (!r) {
        rc = AGENT_OOM();
        goto out;
    }
    if (!json_is_object(j)) {
        bad(&c, "(root)", "must be a mapping");
        goto out;
    }
    json_t *parent = json_object_get(j, "parent"), *kids = json_object_get(j, "children");
    if (!only_keys(&c, j, "", top) || !get_str(&c, j, "name", "name", true, &r->name) ||
        !get_bool(&c, j, "dryRun", "dryRun", &r->dry_run) ||
        !get_bool(&c, j, "abort", "abort", &r->abort))
        goto out;
    char *vm = NULL;
    if (!get_str(&c, j, "verify", "verify", false, &vm))
        goto out;
    if (vm) {
        int v = split_verify_parse(vm);
        free(vm);
        if (v < 0) {
            bad(&c, "verify", "must be full or references");
            goto out;
        }
        r->verify = (split_verify)v;
    }
    char *by = NULL;
    bool computed = false;
    if (!get_str(&c, j, "splitBy", "splitBy", false, &by) ||
        !get_bool(&c, j, "rangesComputed", "rangesComputed", &computed)) {
        free(by);
        goto out;
    }
    if (by) {
        int b = split_by_parse(by);
        free(by);
        if (b < 0) {
            bad(&c, "splitBy", "must be bytes or keys");
            goto out;
        }
        r->split_by = (shale_split_by)b;
    }
    bool by_named = json_object_get(j, "splitBy") && !json_is_null(json_object_get(j, "splitBy"));
    if (!json_is_object(parent)) {
        bad(&c, "parent", parent ? "must be a mapping" : "is required");
        goto out;
    }
    if (!only_keys(&c, parent, "parent", par) ||
        !get_str(&c, parent, "shard", "parent.shard", true, &r->parent_shard) ||
        !get_str(&c, parent, "store", "parent.store", false, &r->parent_store) ||
        !get_str(&c, parent, "walStore", "parent.walStore", false, &r->parent_wal_store))
        goto out;
    if (!json_is_array(kids)) {
        bad(&c, "children", kids ? "must be a list" : "is required");
        goto out;
    }
    size_t n = json_array_size(kids);
    if (n > MAX_CHILDREN) {
        bad(&c, "children", "has more than 64 entries");
        goto out;
    }
    if (!(r->children = calloc(n ? n : 1, sizeof *r->children))) {
        rc = AGENT_OOM();
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *k = json_array_get(kids, i), *range;
        split_child *ch = &r->children[i];
        char p[64], q[96];
        snprintf(p, sizeof p, "children[%zu]", i);
        r->child_count = i + 1;
        if (!json_is_object(k)) {
            bad(&c, p, "must be a mapping");
            goto out;
        }
#define Q(f) (snprintf(q, sizeof q, "%s.%s", p, f), q)
        if (!only_keys(&c, k, p, kid) || !get_str(&c, k, "name", Q("name"), true, &ch->name) ||
            !get_str(&c, k, "store", Q("store"), true, &ch->store) ||
            !get_str(&c, k, "walStore", Q("walStore"), false, &ch->wal_store))
            goto out;
        range = json_object_get(k, "range");
        bool has = range && !json_is_null(range);
        if (i == 0) {
            r->ranges_auto = !has;
        } else if (has == r->ranges_auto) {
            bad(&c, Q("range"), has ? "is given, but children[0] has none: give every child "
                                      "a range, or none (the agent then computes them)"
                                    : "is missing, but children[0] has one: give every child "
                                      "a range, or none (the agent then computes them)");
            goto out;
        }
        if (has) {
            if (!json_is_object(range)) {
                bad(&c, Q("range"), "must be a mapping with start and end");
                goto out;
            }
            if (!only_keys(&c, range, Q("range"), rng) ||
                !get_bound(&c, range, "start", Q("range.start"), &ch->start, &ch->start_len) ||
                !get_bound(&c, range, "end", Q("range.end"), &ch->end, &ch->end_len))
                goto out;
        }
#undef Q
    }
    if (n && r->ranges_auto && computed) {
        bad(&c, "rangesComputed", "is written by the agent together with the ranges it "
                                  "computed; leave it out");
        goto out;
    }
    if (n && !r->ranges_auto && computed)
        r->ranges_auto = r->ranges_computed = true;   /* a journal's own form */
    else if (n && !r->ranges_auto && by_named) {
        bad(&c, "splitBy", "only applies to children without ranges (the agent computes "
                           "them); this request gives the ranges");
        goto out;
    }
out:
    if (!rc)
        rc = c.rc;
    json_decref(j);
    json_decref(marks);
    if (rc) {
        split_request_free(r);
        return rc;
    }
    *out = r;
    return SHALE_OK;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !((ch == '-' || ch == '.') && i > 0 && i < n - 1))
            return false;
    }
    return true;
}

static bool uri_ok(const char *u)
{
    if (!strncmp(u, "fault+", 6))   /* a test store behind the fault injector */
        u += 6;
    return !strncmp(u, "file:///", 8) || (!strncmp(u, "s3://", 5) && u[5]) ||
           (!strncmp(u, "mem://", 6) && u[6]);
}

static shale_status vbad(const char *field, const char *what)
{
    return shale_error_set(SHALE_INVALID_ARGUMENT, "split request: field '%s': %s", field, what);
}

/* Compares bounds where NULL means -inf (as a start) or +inf (as an end). */
static int cmp_start(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    if (!a || !b)
        return (a != NULL) - (b != NULL);
    return shale_key_compare(a, al, b, bl);
}

static int cmp_end(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    if (!a || !b)
        return (a == NULL) - (b == NULL);
    return shale_key_compare(a, al, b, bl);
}

static int by_start(const void *x, const void *y)
{
    const split_child *a = *(split_child *const *)x, *b = *(split_child *const *)y;
    return cmp_start(a->start, a->start_len, b->start, b->start_len);
}

shale_status split_request_validate(split_request *r, const char *agent_shard,
                                    const char *agent_store, const char *agent_wal_store,
                                    const uint8_t *ps, size_t psl, const uint8_t *pe,
                                    size_t pel)
{
    char f[64], msg[512];
    if (!name_ok(r->name))
        return vbad("name", "must be 1-63 characters of a-z, 0-9, '-' and '.', starting and "
                            "ending with a letter or digit");
    if (agent_shard && strcmp(r->parent_shard, agent_shard)) {
        snprintf(msg, sizeof msg, "is '%.100s' but this agent serves shard '%.100s'",
                 r->parent_shard, agent_shard);
        return vbad("parent.shard", msg);
    }
    if (!r->parent_store && agent_store) {
        if (!(r->parent_store = agent_strdup(agent_store)) ||
            (agent_wal_store && !r->parent_wal_store &&
             !(r->parent_wal_store = agent_strdup(agent_wal_store))))
            return AGENT_OOM();
    }
    if (!r->parent_store || !uri_ok(r->parent_store))
        return vbad("parent.store", "must be a file:///, s3:// or mem:// URI");
    if (r->parent_wal_store && !uri_ok(r->parent_wal_store))
        return vbad("parent.walStore", "must be a file:///, s3:// or mem:// URI");
    if (r->child_count < 2)
        return vbad("children", "a split needs at least two children");
    for (size_t i = 0; i < r->child_count; i++) {
        split_child *c = &r->children[i];
        snprintf(f, sizeof f, "children[%zu].name", i);
        if (!name_ok(c->name))
            return vbad(f, "must be 1-63 characters of a-z, 0-9, '-' and '.'");
        snprintf(f, sizeof f, "children[%zu].store", i);
        if (!uri_ok(c->store))
            return vbad(f, "must be a file:///, s3:// or mem:// URI");
        if (!strcmp(c->store, r->parent_store) ||
            (r->parent_wal_store && !strcmp(c->store, r->parent_wal_store)))
            return vbad(f, "is the parent's store");
        snprintf(f, sizeof f, "children[%zu].walStore", i);
        if (c->wal_store && !uri_ok(c->wal_store))
            return vbad(f, "must be a file:///, s3:// or mem:// URI");
        if (c->start && c->end && shale_key_compare(c->start, c->start_len, c->end,
                                                    c->end_len) >= 0) {
            snprintf(f, sizeof f, "children[%zu].range", i);
            return vbad(f, "is empty (start must be below end)");
        }
        for (size_t j = 0; j < i; j++) {
            const split_child *o = &r->children[j];
            if (!strcmp(o->name, c->name)) {
                snprintf(f, sizeof f, "children[%zu].name", i);
                return vbad(f, "is used by another child");
            }
            bool same = !strcmp(o->store, c->store) ||
                        (c->wal_store && o->wal_store && !strcmp(o->wal_store, c->wal_store)) ||
                        (c->wal_store && !strcmp(o->store, c->wal_store)) ||
                        (o->wal_store && !strcmp(o->wal_store, c->store));
            if (same) {
                snprintf(f, sizeof f, "children[%zu].store", i);
                return vbad(f, "is used by another child");
            }
        }
    }
    /* Ranges still to be computed (split_auto.h): checked once filled. */
    if (r->ranges_auto && !r->ranges_computed)
        return SHALE_OK;
    /* Sorted by start, the ranges must chain: first start = parent start,
     * each end = next start, last end = parent end. */
    split_child **s = malloc(r->child_count * sizeof *s);
    if (!s)
        return AGENT_OOM();
    for (size_t i = 0; i < r->child_count; i++)
        s[i] = &r->children[i];
    qsort(s, r->child_count, sizeof *s, by_start);
    shale_status rc = SHALE_OK;
    if (cmp_start(s[0]->start, s[0]->start_len, ps, psl) != 0) {
        snprintf(msg, sizeof msg, "no child starts where the parent's range starts (child "
                                  "'%.60s' starts later or earlier)", s[0]->name);
        rc = vbad("children", msg);
    }
    for (size_t i = 0; !rc && i + 1 < r->child_count; i++) {
        const split_child *a = s[i], *b = s[i + 1];
        if (!a->end || !b->start || shale_key_compare(a->end, a->end_len, b->start, b->start_len)) {
            bool overlap = !a->end || (b->start && shale_key_compare(a->end, a->end_len, b->start,
                                                                     b->start_len) > 0);
            snprintf(msg, sizeof msg, "ranges of '%.60s' and '%.60s' %s", a->name, b->name,
                     overlap ? "overlap" : "leave a gap between them");
            rc = vbad("children", msg);
        }
    }
    const split_child *last = s[r->child_count - 1];
    if (!rc && cmp_end(last->end, last->end_len, pe, pel) != 0) {
        snprintf(msg, sizeof msg, "no child ends where the parent's range ends (child "
                                  "'%.60s')", last->name);
        rc = vbad("children", msg);
    }
    free(s);
    return rc;
}

static json_t *bound_json(const uint8_t *b, size_t n)
{
    if (!b)
        return json_string("");
    char *e = shale_key_escape(b, n);
    json_t *j = e ? json_string(e) : NULL;
    free(e);
    return j;
}

shale_status split_request_to_json(const split_request *r, char **json)
{
    json_t *o = json_object(), *p = json_object(), *kids = json_array();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(p, "shard", json_string(r->parent_shard));
    if (r->parent_store)
        json_object_set_new(p, "store", json_string(r->parent_store));
    if (r->parent_wal_store)
        json_object_set_new(p, "walStore", json_string(r->parent_wal_store));
    json_object_set_new(o, "parent", p);
    for (size_t i = 0; i < r->child_count; i++) {
        const split_child *c = &r->children[i];
        json_t *k = json_object(), *rg = json_object();
        json_object_set_new(k, "name", json_string(c->name));
        json_object_set_new(k, "store", json_string(c->store));
        if (c->wal_store)
            json_object_set_new(k, "walStore", json_string(c->wal_store));
        if (!r->ranges_auto || r->ranges_computed) {
            json_object_set_new(rg, "start", bound_json(c->start, c->start_len));
            json_object_set_new(rg, "end", bound_json(c->end, c->end_len));
            json_object_set_new(k, "range", rg);
        } else {
            json_decref(rg);
        }
        json_array_append_new(kids, k);
    }
    json_object_set_new(o, "children", kids);
    json_object_set_new(o, "dryRun", json_boolean(r->dry_run));
    /* Only when named: a request that leaves it to the agent stays the
     * same request whatever the agent's default. */
    if (r->verify != SPLIT_VERIFY_DEFAULT)
        json_object_set_new(o, "verify", json_string(split_verify_name(r->verify)));
    if (r->ranges_auto) {
        json_object_set_new(o, "splitBy", json_string(split_by_name(r->split_by)));
        if (r->ranges_computed)
            json_object_set_new(o, "rangesComputed", json_true());
    }
    *json = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    return *json ? SHALE_OK : AGENT_OOM();
}

/* Drops what the agent computed: every child's range, rangesComputed. */
static void strip_computed(json_t *o)
{
    json_t *kids = json_object_get(o, "children"), *k;
    size_t i;
    json_array_foreach(kids, i, k)
        json_object_del(k, "range");
    json_object_del(o, "rangesComputed");
}

bool split_request_json_same(const char *journalled, const char *offered)
{
    if (!journalled || !offered)
        return false;
    json_error_t e;
    json_t *x = json_loads(journalled, 0, &e), *y = json_loads(offered, 0, &e);
    bool same = false;
    if (x && y) {
        same = json_equal(x, y);
        /* The offered one leaves the ranges to the agent, the journalled
         * one has them computed: the same request, whatever they came to
         * (a parent that took writes since would give other ones). */
        json_t *k0 = json_array_get(json_object_get(y, "children"), 0);
        if (!same && json_is_true(json_object_get(x, "rangesComputed")) &&
            json_object_get(y, "splitBy") && k0 && !json_object_get(k0, "range")) {
            strip_computed(x);
            same = json_equal(x, y);
        }
    }
    json_decref(x);
    json_decref(y);
    return same;
}

split_request *split_request_dup(const split_request *r)
{
    char *json = NULL;
    split_request *d = NULL;
    if (split_request_to_json(r, &json))
        return NULL;
    split_request_parse("copy", json, strlen(json), &d);
    free(json);
    if (d)
        d->abort = r->abort;
    return d;
}
