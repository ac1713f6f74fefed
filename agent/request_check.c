/*
 * request_check.c -- the store rules of a split request (request.h):
 * the parent is the agent's own, and every child store is allowed, apart
 * from the parent's stores and from each other, and empty.
 *
 * Why by identity: a store has many spellings (a trailing slash, "//",
 * "." and "..", a symlink, an S3 host in capitals), and a child that is
 * the parent's WAL store under another name completes a split whose child
 * shares the parent's WAL namespace.  Every comparison here goes through
 * shale_store_relate() (canonical URIs, then identity UUIDs); nothing
 * compares URI strings.  Nothing is written: the claim that proves a child
 * store writable is the pre-flight's (preflight.c), just before the WAL
 * wipe.
 */
#include "request.h"
#include "shale_admin.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void split_policy_init(split_policy *p)
{
    memset(p, 0, sizeof *p);
    p->allow_file = true;
    p->allow_s3 = true;
}

static shale_status refuse(const char *field, const char *fmt, const char *a, const char *b)
{
    char what[1024];
    snprintf(what, sizeof what, fmt, a, b);
    return shale_err(SHALE_INVALID_ARGUMENT, "split request: field '%s': %s", field, what);
}

/* A store's failure to answer is not the request's fault: pass it on
 * (the caller may retry); a URI that names no store is. */
static shale_status store_error(shale_status rc, const char *field)
{
    if (rc == SHALE_INVALID_ARGUMENT || rc == SHALE_CORRUPT || rc == SHALE_UNSUPPORTED ||
        rc == SHALE_CONFLICT)
        return shale_err(SHALE_INVALID_ARGUMENT, "split request: field '%s': %s", field,
                         shale_errmsg());
    return shale_err_prefix(rc, "split request: field '%s'", field);
}

static shale_status scheme_allowed(const split_policy *p, const char *uri, const char *field)
{
    if (!strncmp(uri, "fault+", 6) || !strncmp(uri, "mem://", 6)) {
        if (p->allow_test_schemes)
            return SHALE_OK;
        return refuse(field, "'%.300s': mem:// and fault+ stores are for tests only "
                             "(testing.allowTestSchemes)%s", uri, "");
    }
    if (!strncmp(uri, "file://", 7)) {
        if (p->allow_file)
            return SHALE_OK;
    } else if (!strncmp(uri, "s3://", 5)) {
        if (p->allow_s3)
            return SHALE_OK;
    } else {
        return refuse(field, "'%.300s' has an unknown scheme (file://, s3://)%s", uri, "");
    }
    return refuse(field, "'%.300s': this agent does not allow the scheme for child stores "
                         "(requests.allowSchemes)%s", uri, "");
}

/* Is the named parent store the agent's own? */
static shale_status same_as_agent(const char *named, const char *agent, const char *field,
                                  const shale_options *o)
{
    shale_store_relation rel;
    shale_status rc = shale_store_relate(named, agent, o, &rel);
    if (rc)
        return store_error(rc, field);
    if (rel != SHALE_STORE_SAME)
        return refuse(field, "names '%.300s', which is not this agent's store (%.300s); a "
                             "split only ever splits the agent's own database, so leave the "
                             "field out or name the same store", named, agent);
    return SHALE_OK;
}

/* by_identity false: canonical URIs only (no store read), so every
 * refusal a spelling shows comes before any store is asked. */
static shale_status apart_from(const char *uri, const char *other, const char *what,
                               const char *field, const shale_options *o, bool by_identity)
{
    shale_store_relation rel;
    shale_status rc = by_identity ? shale_store_relate(uri, other, o, &rel)
                                  : shale_store_relate_uris(uri, other, o, &rel);
    if (rc)
        return store_error(rc, field);
    char w[400];
    switch (rel) {
    case SHALE_STORE_SAME:
        snprintf(w, sizeof w, "is %s (%s)", what, other);
        break;
    case SHALE_STORE_INSIDE:
        snprintf(w, sizeof w, "is inside %s (%s)", what, other);
        break;
    case SHALE_STORE_CONTAINS:
        snprintf(w, sizeof w, "contains %s (%s)", what, other);
        break;
    default:
        return SHALE_OK;
    }
    return refuse(field, "'%.300s' %.500s", uri, w);
}

static shale_status in_allowlist(const split_policy *p, const char *uri, const char *field,
                                 const shale_options *o)
{
    if (!p->child_prefixes)
        return SHALE_OK;
    for (const char *const *pre = p->child_prefixes; *pre; pre++) {
        shale_store_relation rel;
        /* Canonical only: an allowlist names places, not stores. */
        shale_status rc = shale_store_relate_uris(uri, *pre, o, &rel);
        if (rc)
            return store_error(rc, field);
        if (rel == SHALE_STORE_INSIDE || rel == SHALE_STORE_SAME)
            return SHALE_OK;
    }
    return refuse(field, "'%.300s' is not under any allowed child store prefix "
                         "(requests.childStorePrefixes)%s", uri, "");
}

shale_status split_request_claim_owner(const split_request *r, size_t i,
                                       const shale_options *opts, char **out)
{
    *out = NULL;
    char *canon = NULL;
    shale_status rc = shale_store_canonical_uri(r->parent_store, opts, &canon);
    if (rc)
        return rc;
    size_t n = strlen(r->name) + strlen(r->children[i].name) + strlen(canon) + 32;
    if ((*out = malloc(n)))
        snprintf(*out, n, "split %s child %s of %s", r->name, r->children[i].name, canon);
    free(canon);
    return *out ? SHALE_OK : SHALE_OOM();
}

/* One child store (its main store, or its WAL store): every rule. */
static shale_status check_child_store(const split_request *r, size_t i, const char *uri,
                                      const char *field, const split_policy *p,
                                      const shale_options *o)
{
    shale_status rc = scheme_allowed(p, uri, field);
    if (!rc) {
        char *canon = NULL;
        rc = shale_store_canonical_uri(uri, o, &canon);
        free(canon);
        if (rc)
            return store_error(rc, field);
    }
    if (!rc)
        rc = in_allowlist(p, uri, field, o);
    for (int pass = 0; pass < 2 && !rc; pass++) {
        bool by_id = pass == 1;
        rc = apart_from(uri, r->parent_store, "the parent's store", field, o, by_id);
        if (!rc && r->parent_wal_store)
            rc = apart_from(uri, r->parent_wal_store, "the parent's WAL store", field, o,
                            by_id);
        for (size_t j = 0; !rc && j < i; j++) {
            const split_child *c = &r->children[j];
            char what[64];
            snprintf(what, sizeof what, "the store of children[%zu]", j);
            rc = apart_from(uri, c->store, what, field, o, by_id);
            if (!rc && c->wal_store) {
                snprintf(what, sizeof what, "the WAL store of children[%zu]", j);
                rc = apart_from(uri, c->wal_store, what, field, o, by_id);
            }
        }
    }
    return rc;
}

/* Empty, or claimed by this very split. */
static shale_status check_empty(const split_request *r, size_t i, const char *uri,
                                const char *field, const shale_options *o)
{
    char *owner = NULL;
    shale_status rc = split_request_claim_owner(r, i, o, &owner);
    if (rc)
        return rc;
    rc = shale_store_check_empty(uri, o, owner);
    free(owner);
    return rc ? store_error(rc, field) : SHALE_OK;
}

shale_status split_request_check_children_empty(const split_request *r,
                                                const shale_options *opts)
{
    shale_status rc = SHALE_OK;
    for (size_t i = 0; !rc && i < r->child_count; i++) {
        const split_child *c = &r->children[i];
        char field[64];
        snprintf(field, sizeof field, "children[%zu].store", i);
        rc = check_empty(r, i, c->store, field, opts);
        if (!rc && c->wal_store) {
            snprintf(field, sizeof field, "children[%zu].walStore", i);
            rc = check_empty(r, i, c->wal_store, field, opts);
        }
    }
    return rc;
}

shale_status split_request_check_stores(split_request *r, const split_policy *p,
                                        const char *agent_store, const char *agent_wal_store,
                                        const shale_options *opts)
{
    split_policy dp;
    if (!p) {
        split_policy_init(&dp);
        p = &dp;
    }
    if (!agent_store)
        return shale_err(SHALE_INVALID_ARGUMENT, "split request: the agent has no store");
    const char *agent_wal = agent_wal_store ? agent_wal_store : agent_store;
    shale_status rc = SHALE_OK;
    if (r->parent_store)
        rc = same_as_agent(r->parent_store, agent_store, "parent.store", opts);
    if (!rc && r->parent_wal_store)
        rc = same_as_agent(r->parent_wal_store, agent_wal, "parent.walStore", opts);
    if (rc)
        return rc;
    /* From here on the parent is named the agent's way. */
    char *ps = xstrdup(agent_store), *pw = agent_wal_store ? xstrdup(agent_wal_store) : NULL;
    if (!ps || (agent_wal_store && !pw)) {
        free(ps);
        free(pw);
        return SHALE_OOM();
    }
    free(r->parent_store);
    free(r->parent_wal_store);
    r->parent_store = ps;
    r->parent_wal_store = pw;
    for (size_t i = 0; !rc && i < r->child_count; i++) {
        const split_child *c = &r->children[i];
        char field[64];
        if (!c->store)
            continue;   /* split_request_validate() names it */
        snprintf(field, sizeof field, "children[%zu].store", i);
        rc = check_child_store(r, i, c->store, field, p, opts);
        if (!rc && c->wal_store) {
            snprintf(field, sizeof field, "children[%zu].walStore", i);
            shale_store_relation rel;
            /* Its own WAL store may be its main store spelled out; it may
             * not hold it or lie inside it. */
            rc = shale_store_relate(c->wal_store, c->store, opts, &rel);
            if (rc)
                rc = store_error(rc, field);
            else if (rel == SHALE_STORE_INSIDE || rel == SHALE_STORE_CONTAINS)
                rc = refuse(field, "'%.300s' %s the child's own store", c->wal_store,
                            rel == SHALE_STORE_INSIDE ? "is inside" : "contains");
            else if (rel != SHALE_STORE_SAME)
                rc = check_child_store(r, i, c->wal_store, field, p, opts);
        }
    }
    return rc;
}
