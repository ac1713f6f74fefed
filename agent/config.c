/*
 * config.c -- the agent configuration (see config.h).
 *
 * One table describes every key: its dotted path, type and field.  The
 * file is read into a tree by yamljson.c (keeping line/column per path),
 * then walked against the table; --set uses the same table, so the file
 * and the command line cannot disagree on names or types.
 */
#include "config.h"
#include "http.h"
#include "request.h"
#include "yamljson.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_STR, T_BOOL, T_U32, T_U64, T_LEVEL, T_STYLE, T_VERIFY, T_LIST } ktype;

typedef struct key {
    const char *path;
    ktype type;
    size_t off;
} key;

#define F(f) offsetof(agent_config, f)
static const key keys[] = {
    {"shard", T_STR, F(shard)},
    {"store.uri", T_STR, F(store_uri)},
    {"store.walUri", T_STR, F(wal_uri)},
    {"s3.endpoint", T_STR, F(s3_endpoint)},
    {"s3.region", T_STR, F(s3_region)},
    {"s3.pathStyle", T_STYLE, F(s3_path_style)},
    {"s3.caFile", T_STR, F(s3_ca_file)},
    {"s3.timeoutSeconds", T_U32, F(s3_timeout_seconds)},
    {"sources.local.enabled", T_BOOL, F(local_enabled)},
    {"sources.local.dir", T_STR, F(local_dir)},
    {"sources.local.pollMs", T_U32, F(local_poll_ms)},
    {"sources.http.enabled", T_BOOL, F(http_enabled)},
    {"sources.http.listen", T_STR, F(http_listen)},
    {"sources.http.tokenFile", T_STR, F(http_token_file)},
    {"sources.http.token", T_STR, F(http_token)},
    {"sources.http.maxBodyBytes", T_U64, F(http_max_body)},
    {"sources.http.maxConnections", T_U32, F(http_max_connections)},
    {"sources.http.timeoutSeconds", T_U32, F(http_timeout_s)},
    {"sources.http.allowedOrigins", T_LIST, F(http_origins)},
    {"sources.http.readyCheckMs", T_U32, F(http_ready_check_ms)},
    {"sources.http.readyTimeoutMs", T_U32, F(http_ready_timeout_ms)},
    {"sources.http.probeListen", T_STR, F(http_probe_listen)},
    {"sources.kubernetes.enabled", T_BOOL, F(kube_enabled)},
    {"sources.kubernetes.namespace", T_STR, F(kube_namespace)},
    {"sources.kubernetes.labelSelector", T_STR, F(kube_selector)},
    {"sources.kubernetes.kubeconfig", T_STR, F(kubeconfig)},
    {"sources.kubernetes.insecureSkipTlsVerify", T_BOOL, F(kube_insecure)},
    {"sources.kubernetes.statusIntervalMs", T_U32, F(kube_status_interval_ms)},
    {"logLevel", T_LEVEL, F(log_level)},
    {"timeouts.stepSeconds", T_U32, F(step_seconds)},
    {"verify.mode", T_VERIFY, F(verify_mode)},
    {"verify.cacheMiB", T_U32, F(verify_cache_mib)},
    {"verify.pieceMiB", T_U32, F(verify_piece_mib)},
    {"verify.metadataMiB", T_U32, F(verify_metadata_mib)},
    {"verify.threads", T_U32, F(verify_threads)},
    {"requests.allowSchemes", T_LIST, F(allow_schemes)},
    {"requests.childStorePrefixes", T_LIST, F(child_prefixes)},
    {"testing.allowTestSchemes", T_BOOL, F(testing_schemes)},
};
#undef F
#define NKEYS (sizeof keys / sizeof *keys)

shale_status agent_config_defaults(agent_config *c)
{
    memset(c, 0, sizeof *c);
    c->s3_path_style = -1;
    c->local_enabled = true;
    c->local_dir = agent_strdup("/var/lib/shale/splits");
    c->local_poll_ms = 200;
    c->kube_status_interval_ms = 1000;
    c->http_enabled = true;
    c->http_listen = agent_strdup("127.0.0.1:8080");
    c->http_max_body = 1u << 20;
    c->http_max_connections = 32;
    c->http_timeout_s = 30;
    c->http_ready_check_ms = 1000;
    c->http_ready_timeout_ms = 3000;
    c->log_level = 1;
    c->step_seconds = 600;
    c->verify_mode = SPLIT_VERIFY_FULL;
    c->verify_cache_mib = 8;       /* verify.h's defaults */
    c->verify_piece_mib = 64;
    c->verify_metadata_mib = 64;
    c->verify_threads = 8;
    if (!c->local_dir || !c->http_listen)
        return AGENT_OOM();
    return SHALE_OK;
}

static void list_free(char **l)
{
    for (size_t i = 0; l && l[i]; i++)
        free(l[i]);
    free(l);
}

void agent_config_free(agent_config *c)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].type == T_STR) {
            char **p = (char **)((char *)c + keys[i].off);
            free(*p);
            *p = NULL;
        } else if (keys[i].type == T_LIST) {
            char ***p = (char ***)((char *)c + keys[i].off);
            list_free(*p);
            *p = NULL;
        }
}

static shale_status set_list_items(char ***field, json_t *v, const char **why);

/* A list of strings (YAML sequence) into a NULL-terminated array. */
static shale_status set_list(char ***field, json_t *v, const char **why)
{
    json_t *split = NULL;
    if (json_is_string(v)) {
        /* --set key=a,b: a comma-separated list. */
        split = json_array();
        const char *p = json_string_value(v);
        while (split && *p) {
            size_t n = strcspn(p, ",");
            json_array_append_new(split, json_stringn(p, n));
            p += n + (p[n] == ',');
        }
        v = split;
    }
    if (!json_is_array(v)) {
        *why = "must be a list of strings";
        return SHALE_INVALID_ARGUMENT;
    }
    shale_status rc = set_list_items(field, v, why);
    json_decref(split);
    return rc;
}

static shale_status set_list_items(char ***field, json_t *v, const char **why)
{
    size_t n = json_array_size(v);
    if (n > 64) {
        *why = "has more than 64 entries";
        return SHALE_INVALID_ARGUMENT;
    }
    char **l = calloc(n + 1, sizeof *l);
    if (!l)
        return AGENT_OOM();
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (!s || !*s) {
            list_free(l);
            *why = "must be a list of non-empty strings";
            return SHALE_INVALID_ARGUMENT;
        }
        if (!(l[i] = agent_strdup(s))) {
            list_free(l);
            return AGENT_OOM();
        }
    }
    list_free(*field);
    *field = l;
    return SHALE_OK;
}

/* Sets one key from a JSON value; *why receives the problem. */
static shale_status set_value(agent_config *c, const key *k, json_t *v, const char **why)
{
    void *field = (char *)c + k->off;
    const char *s = json_string_value(v);
    switch (k->type) {
    case T_STR: {
        if (!json_is_string(v) && !json_is_null(v)) {
            *why = "must be a string";
            return SHALE_INVALID_ARGUMENT;
        }
        char *d = s && *s ? agent_strdup(s) : NULL;
        if (s && *s && !d)
            return AGENT_OOM();
        free(*(char **)field);
        *(char **)field = d;
        return SHALE_OK;
    }
    case T_BOOL:
        if (!json_is_boolean(v)) {
            *why = "must be true or false";
            return SHALE_INVALID_ARGUMENT;
        }
        *(bool *)field = json_is_true(v);
        return SHALE_OK;
    case T_U32:
    case T_U64:
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (k->type == T_U32 && json_integer_value(v) > (json_int_t)UINT32_MAX)) {
            *why = "must be a non-negative integer";
            return SHALE_INVALID_ARGUMENT;
        }
        if (k->type == T_U32)
            *(uint32_t *)field = (uint32_t)json_integer_value(v);
        else
            *(uint64_t *)field = (uint64_t)json_integer_value(v);
        return SHALE_OK;
    case T_LEVEL: {
        static const char *lv[] = {"debug", "info", "warn", "error"};
        for (int i = 0; s && i < 4; i++)
            if (!strcmp(s, lv[i])) {
                *(int *)field = i;
                return SHALE_OK;
            }
        *why = "must be one of debug, info, warn, error";
        return SHALE_INVALID_ARGUMENT;
    }
    case T_STYLE:
        if (s && !strcmp(s, "auto")) {
            *(int *)field = -1;
            return SHALE_OK;
        }
        if (json_is_boolean(v)) {
            *(int *)field = json_is_true(v);
            return SHALE_OK;
        }
        *why = "must be auto, true or false";
        return SHALE_INVALID_ARGUMENT;
    case T_LIST:
        return set_list((char ***)field, v, why);
    case T_VERIFY: {
        int m = s ? split_verify_parse(s) : -1;
        if (m < 0) {
            *why = "must be full or references";
            return SHALE_INVALID_ARGUMENT;
        }
        *(int *)field = m;
        return SHALE_OK;
    }
    }
    return SHALE_INVALID_ARGUMENT;
}

typedef struct walk {
    agent_config *c;
    const char *file;
    json_t *marks;
    shale_status rc;
} walk;

static void fail_at(walk *w, const char *path, const char *what)
{
    if (w->rc)
        return;
    json_t *m = json_object_get(w->marks, path[0] ? path : "(root)");
    int line = m ? (int)json_integer_value(json_array_get(m, 0)) : 0;
    int col = m ? (int)json_integer_value(json_array_get(m, 1)) : 0;
    w->rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s:%d:%d: '%s' %s", w->file, line, col,
                            path[0] ? path : "(document)", what);
}

static void walk_obj(walk *w, json_t *o, const char *prefix)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
        const key *found = NULL;
        bool is_section = false;
        size_t pl = strlen(path);
        for (size_t i = 0; i < NKEYS; i++) {
            if (!strcmp(keys[i].path, path))
                found = &keys[i];
            else if (!strncmp(keys[i].path, path, pl) && keys[i].path[pl] == '.')
                is_section = true;
        }
        if (found) {
            const char *why = "has a bad value";
            shale_status rc = set_value(w->c, found, v, &why);
            if (rc == SHALE_INVALID_ARGUMENT)
                fail_at(w, path, why);
            else if (rc && !w->rc)
                w->rc = rc;
        } else if (is_section && json_is_object(v)) {
            walk_obj(w, v, path);
        } else if (is_section) {
            fail_at(w, path, "must be a mapping");
        } else {
            fail_at(w, path, "is not a known setting (see docs/agent-config.md)");
        }
        if (w->rc)
            return;
    }
}

shale_status agent_config_load(agent_config *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return shale_error_set(SHALE_NOT_FOUND, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (1u << 20)) {
                fclose(f);
                free(text);
                return shale_error_set(SHALE_INVALID_ARGUMENT, "%s: larger than 1 MiB", path);
            }
            char *n = realloc(text, cap);
            if (!n) {
                fclose(f);
                free(text);
                return AGENT_OOM();
            }
            text = n;
        }
        size_t r = fread(text + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    fclose(f);
    json_t *j = NULL, *marks = NULL;
    shale_status rc = yamljson_parse(path, text ? text : "", len, &j, &marks);
    free(text);
    if (rc)
        return rc;
    walk w = {c, path, marks, SHALE_OK};
    if (!json_is_object(j))
        fail_at(&w, "", "must be a mapping of settings");
    else
        walk_obj(&w, j, "");
    json_decref(j);
    json_decref(marks);
    return w.rc;
}

shale_status agent_config_set(agent_config *c, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "--set %s: expected key=value", assignment);
    size_t kl = (size_t)(eq - assignment);
    for (size_t i = 0; i < NKEYS; i++) {
        if (strlen(keys[i].path) != kl || strncmp(keys[i].path, assignment, kl))
            continue;
        /* Read the value as YAML would: true/false/numbers typed. */
        json_t *v = NULL;
        const char *val = eq + 1;
        if (keys[i].type == T_STR || keys[i].type == T_LEVEL || keys[i].type == T_VERIFY)
            v = json_string(val);
        else if (keys[i].type == T_LIST && val[0] != '[') {
            /* --set key=a,b: comma-separated; empty: the empty list.
             * (--set key=[a, b] is read as YAML below.) */
            v = json_array();
            for (const char *p = val; v && *p;) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                json_array_append_new(v, json_stringn(p, n));
                p += n + (comma ? 1 : 0);
            }
        }
        else if (yamljson_parse("--set", val, strlen(val), &v, NULL))
            return shale_error_set(SHALE_INVALID_ARGUMENT, "--set %s: bad value", assignment);
        const char *why = "has a bad value";
        shale_status rc = set_value(c, &keys[i], v, &why);
        json_decref(v);
        if (rc == SHALE_INVALID_ARGUMENT)
            return shale_error_set(rc, "--set %s: %s", assignment, why);
        return rc;
    }
    return shale_error_set(SHALE_INVALID_ARGUMENT, "--set %s: '%.*s' is not a known setting",
                           assignment, (int)kl, assignment);
}

/* The HTTP API fails closed: beyond loopback it needs a token. */
static shale_status check_http(const agent_config *c)
{
    bool loopback = false;
    if (http_listen_parse(c->http_listen, NULL, &loopback))
        return shale_error_prefix(SHALE_INVALID_ARGUMENT, "config: 'sources.http.listen': ");
    bool probe_lo;
    if (c->http_probe_listen && http_listen_parse(c->http_probe_listen, NULL, &probe_lo))
        return shale_error_prefix(SHALE_INVALID_ARGUMENT, "config: 'sources.http.probeListen': ");
    if (c->http_token && c->http_token_file)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "config: set 'sources.http.tokenFile' or "
                                                       "'sources.http.token', not both");
    if (!loopback && !c->http_token && !c->http_token_file)
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "config: 'sources.http.listen' is %s, beyond loopback, and neither "
                               "'sources.http.tokenFile' nor 'sources.http.token' is set: anyone "
                               "who can reach the port could split or abort this shard. Set a "
                               "bearer token, or listen on 127.0.0.1 (docs/agent-http.md)",
                               c->http_listen);
    if (c->http_max_connections < 4 || c->http_max_connections > 1024)
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "config: 'sources.http.maxConnections' must be 4..1024");
    if (c->http_timeout_s < 1 || c->http_timeout_s > 3600)
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "config: 'sources.http.timeoutSeconds' must be 1..3600");
    if (c->http_ready_check_ms < 10 || c->http_ready_timeout_ms < 10)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "config: 'sources.http.readyCheckMs' and "
                                                       "'readyTimeoutMs' must be at least 10");
    for (size_t i = 0; c->http_origins && c->http_origins[i]; i++)
        if (!strcmp(c->http_origins[i], "*") || !strcmp(c->http_origins[i], "null"))
            return shale_error_set(SHALE_INVALID_ARGUMENT,
                                   "config: 'sources.http.allowedOrigins' item '%s': name each "
                                   "origin (scheme://host[:port]); '*' and 'null' are refused",
                                   c->http_origins[i]);
    return SHALE_OK;
}

shale_status agent_config_check(const agent_config *c)
{
    if (!c->shard)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "config: 'shard' is required");
    if (!c->store_uri)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "config: 'store.uri' is required");
    if (c->local_enabled && !c->local_dir)
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "config: 'sources.local.dir' is required when the local source is on");
    if (c->http_enabled && (!c->http_listen || !strchr(c->http_listen, ':')))
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "config: 'sources.http.listen' must be host:port");
    if (!c->local_enabled && !c->http_enabled && !c->kube_enabled)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "config: every request source is disabled");
    if (c->http_max_body < 1024)
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "config: 'sources.http.maxBodyBytes' must be at least 1024");
    for (size_t i = 0; c->allow_schemes && c->allow_schemes[i]; i++) {
        const char *s = c->allow_schemes[i];
        if (!strcmp(s, "mem") || !strcmp(s, "fault"))
            return shale_error_set(SHALE_INVALID_ARGUMENT,
                                   "config: 'requests.allowSchemes' names '%s': mem and fault "
                                   "stores are for tests only (testing.allowTestSchemes: true)", s);
        if (strcmp(s, "file") && strcmp(s, "s3"))
            return shale_error_set(SHALE_INVALID_ARGUMENT,
                                   "config: 'requests.allowSchemes' names '%s': must be file or s3",
                                   s);
    }
    if (c->allow_schemes && !c->allow_schemes[0] && !c->testing_schemes)
        return shale_error_set(SHALE_INVALID_ARGUMENT,
                               "config: 'requests.allowSchemes' is empty: no split could name a "
                               "child store");
    for (size_t i = 0; c->child_prefixes && c->child_prefixes[i]; i++) {
        char *canon = NULL;
        shale_options o;
        shale_options_init(&o);
        o.store.s3_endpoint = c->s3_endpoint;
        o.store.s3_region = c->s3_region;
        shale_status rc = shale_store_canonical_uri(c->child_prefixes[i], &o, &canon);
        free(canon);
        if (rc)
            return shale_error_set(SHALE_INVALID_ARGUMENT,
                                   "config: 'requests.childStorePrefixes[%zu]': %s", i,
                                   shale_errmsg());
    }
    if (c->http_enabled)
        return check_http(c);
    return SHALE_OK;
}

void agent_config_policy(const agent_config *c, split_policy *p)
{
    split_policy_init(p);
    if (c->allow_schemes) {
        p->allow_file = p->allow_s3 = false;
        for (size_t i = 0; c->allow_schemes[i]; i++) {
            p->allow_file |= !strcmp(c->allow_schemes[i], "file");
            p->allow_s3 |= !strcmp(c->allow_schemes[i], "s3");
        }
    }
    p->allow_test_schemes = c->testing_schemes;
    if (c->child_prefixes && c->child_prefixes[0])
        p->child_prefixes = (const char *const *)c->child_prefixes;
}
