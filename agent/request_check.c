/*
 * request_check.c -- the store rules of a split request (request.h):
 * the parent is the agent's own, and every child store is allowed, apart
 * from the parent's stores and from each other, and empty.
 *
 * Why by identity: a store has many spellings (a trailing slash, "//",
 * "." and "..", a symlink, an S3 host in capitals), and a child that is
 * the parent's WAL store under another name completes a split whose child
 * shares the parent's WAL namespace.  Every store the request names is
 * looked at once: first all by canonical URI (shale_admin.h; a refusal a
 * spelling shows comes before any store is read), then each one's identity
 * object is read once and UUIDs compared; nothing compares URI strings.
 * Nothing is written: the claim that proves a child store writable is the
 * pre-flight's (preflight.c), just before the WAL wipe.
 */
#include "par.h"
#include "request.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void split_policy_init(split_policy *p)
{
    memset(p, 0, sizeof *p);
    p->allow_file = true;
    p->allow_s3 = true;
}

static shale_status refuse(const char *field, const char *fmt, ...) SHALE_PRINTF(2, 3);

static shale_status refuse(const char *field, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return shale_error_set(SHALE_INVALID_ARGUMENT, "split request: field '%s': %s", field, what);
}

/* A store's failure to answer is not the request's fault: pass it on
 * (the caller may retry); a URI that names no store is. */
static shale_status store_error(shale_status rc, const char *field)
{
    if (rc == SHALE_INVALID_ARGUMENT || rc == SHALE_CORRUPT || rc == SHALE_UNSUPPORTED ||
        rc == SHALE_CONFLICT)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "split request: field '%s': %s", field,
                               shale_errmsg());
    return shale_error_prefix(rc, "split request: field '%s'", field);
}

static shale_status scheme_allowed(const split_policy *p, const char *uri, const char *field)
{
    if (!strncmp(uri, "fault+", 6) || !strncmp(uri, "mem://", 6)) {
        if (p->allow_test_schemes)
            return SHALE_OK;
        return refuse(field, "'%.300s': mem:// and fault+ stores are for tests only "
                             "(testing.allowTestSchemes)", uri);
    }
    if (!strncmp(uri, "file://", 7)) {
        if (p->allow_file)
            return SHALE_OK;
    } else if (!strncmp(uri, "s3://", 5)) {
        if (p->allow_s3)
            return SHALE_OK;
    } else {
        return refuse(field, "'%.300s' has an unknown scheme (file://, s3://)", uri);
    }
    return refuse(field, "'%.300s': this agent does not allow the scheme for child stores "
                         "(requests.allowSchemes)", uri);
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
                         "(requests.childStorePrefixes)", uri);
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
    return *out ? SHALE_OK : AGENT_OOM();
}

/* Every store the request names, looked at once: its canonical URI, and
 * (second pass) its identity UUID when it has one. */
typedef struct fact {
    const char *uri;
    char field[40];          /* "children[3].walStore"; "" for the parent's */
    char what[48];           /* how a refusal names it as the other store */
    int child;               /* index of the child; -1 for the parent's stores */
    char *canon;
    bool has_id;
    char uuid[37];
} fact;

static shale_status refuse_pair(const fact *a, const fact *b, shale_store_relation rel,
                                bool by_id)
{
    char what[512];
    const char *how = rel == SHALE_STORE_SAME     ? "is"
                      : rel == SHALE_STORE_INSIDE ? "is inside"
                                                  : "contains";
    snprintf(what, sizeof what, "%s %s (%s%s%s)", how, b->what, b->uri,
             by_id ? ", same identity " : "", by_id ? b->uuid : "");
    return refuse(a->field, "'%.300s' %.500s", a->uri, what);
}

/* Checks every pair a (a child's store) / b (anything named before it). */
static shale_status check_pairs(const fact *f, size_t n, bool by_id)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].child < 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            shale_store_relation rel;
            if (by_id)
                rel = f[i].has_id && f[j].has_id && !strcmp(f[i].uuid, f[j].uuid)
                          ? SHALE_STORE_SAME
                          : SHALE_STORE_APART;
            else
                rel = shale_store_relate_canonical(f[i].canon, f[j].canon);
            if (rel == SHALE_STORE_APART)
                continue;
            /* A child's WAL store may spell its own main store (the WAL
             * then lives there); it may not lie inside it or hold it. */
            if (rel == SHALE_STORE_SAME && f[i].child == f[j].child)
                continue;
            return refuse_pair(&f[i], &f[j], rel, by_id);
        }
    }
    return SHALE_OK;
}

/* Items 0..n-1 read the stores' identities; with erc set, items n.. are
 * the children's emptiness checks, beside them
 * (split_request_check_stores_facts), whose results are kept apart (erc,
 * emsg) so that a refusal by identity is still reported first. */
typedef struct id_ctx {
    fact *f;
    size_t n;
    const shale_options *o;
    const split_request *r;
    shale_status *erc;       /* per child: its emptiness check */
    char (*emsg)[512];
} id_ctx;

typedef struct empty_ctx {
    const split_request *r;
    const shale_options *o;
} empty_ctx;

static shale_status empty_one(void *ctx, size_t i);

static shale_status id_one(void *ctx, size_t i)
{
    id_ctx *c = ctx;
    if (i >= c->n) {
        empty_ctx e = {c->r, c->o};
        size_t k = i - c->n;
        if ((c->erc[k] = empty_one(&e, k)))
            snprintf(c->emsg[k], sizeof c->emsg[k], "%s", shale_errmsg());
        return SHALE_OK;
    }
    fact *x = &c->f[i];
    shale_store_identity id;
    shale_status ir = shale_store_identity_read(x->uri, c->o, &id);
    if (ir == SHALE_OK) {
        x->has_id = true;
        memcpy(x->uuid, id.uuid, sizeof x->uuid);
        shale_store_identity_clear(&id);
    } else if (ir != SHALE_NOT_FOUND) {
        return store_error(ir, x->child < 0 ? "parent.store" : x->field);
    }
    return SHALE_OK;
}

static shale_status check_children(const split_request *r, const split_policy *p,
                                   const shale_options *o, split_store_facts *out)
{
    size_t n = 0, cap = 2 + 2 * r->child_count;
    fact *f = calloc(cap, sizeof *f);
    if (!f)
        return AGENT_OOM();
    f[n].uri = r->parent_store;
    f[n].child = -1;
    snprintf(f[n++].what, sizeof f->what, "the parent's store");
    if (r->parent_wal_store) {
        f[n].uri = r->parent_wal_store;
        f[n].child = -1;
        snprintf(f[n++].what, sizeof f->what, "the parent's WAL store");
    }
    shale_status rc = SHALE_OK;
    for (size_t i = 0; i < r->child_count; i++) {
        const split_child *c = &r->children[i];
        for (int w = 0; w < 2; w++) {
            const char *uri = w ? c->wal_store : c->store;
            if (!uri)
                continue;
            fact *x = &f[n++];
            x->uri = uri;
            x->child = (int)i;
            snprintf(x->field, sizeof x->field, "children[%zu].%s", i, w ? "walStore" : "store");
            snprintf(x->what, sizeof x->what, "the %sstore of children[%zu]", w ? "WAL " : "",
                     i);
        }
    }
    /* Pass 0: schemes, canonical forms, the allowlist, then every pair by
     * canonical URI: everything a spelling shows, before any store is read. */
    for (size_t i = 0; !rc && i < n; i++) {
        const char *field = f[i].child < 0 ? (i == 0 ? "parent.store" : "parent.walStore")
                                           : f[i].field;
        if (f[i].child >= 0 && (rc = scheme_allowed(p, f[i].uri, field)))
            break;
        if ((rc = shale_store_canonical_uri(f[i].uri, o, &f[i].canon))) {
            rc = store_error(rc, field);
            break;
        }
        if (f[i].child >= 0)
            rc = in_allowlist(p, f[i].uri, field, o);
    }
    if (!rc)
        rc = check_pairs(f, n, false);
    /* Pass 1: identities, each store read once; a same UUID under two
     * canonical URIs is one store all the same. */
    /* The reads run at once (par.h): one request each, to its own store;
     * with out->check_empty the children's emptiness checks beside them
     * (a store refused by identity below is only read, never written). */
    bool empty = out && out->check_empty && r->child_count;
    id_ctx ic = {f, n, o, r, NULL, NULL};
    if (!rc && empty &&
        (!(ic.erc = calloc(r->child_count, sizeof *ic.erc)) ||
         !(ic.emsg = calloc(r->child_count, sizeof *ic.emsg))))
        rc = AGENT_OOM();
    if (!rc && n)
        rc = par_for(n + (empty ? r->child_count : 0), id_one, &ic, NULL);
    if (!rc)
        rc = check_pairs(f, n, true);
    if (!rc && out) {
        out->parent_has_id = f[0].has_id;
        memcpy(out->parent_uuid, f[0].uuid, sizeof out->parent_uuid);
        /* The lowest failing child, as split_request_check_children_empty
         * reports it. */
        for (size_t i = 0; empty && i < r->child_count && !out->empty_rc; i++)
            if (ic.erc[i]) {
                out->empty_rc = ic.erc[i];
                snprintf(out->empty_msg, sizeof out->empty_msg, "%s", ic.emsg[i]);
            }
    }
    free(ic.erc);
    free(ic.emsg);
    for (size_t i = 0; i < n; i++)
        free(f[i].canon);
    free(f);
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

static shale_status empty_one(void *ctx, size_t i)
{
    const empty_ctx *e = ctx;
    const split_child *c = &e->r->children[i];
    char field[64];
    snprintf(field, sizeof field, "children[%zu].store", i);
    shale_status rc = check_empty(e->r, i, c->store, field, e->o);
    if (!rc && c->wal_store) {
        snprintf(field, sizeof field, "children[%zu].walStore", i);
        rc = check_empty(e->r, i, c->wal_store, field, e->o);
    }
    return rc;
}

/* Every child at once (par.h): a request or two each, to its own store. */
shale_status split_request_check_children_empty(const split_request *r,
                                                const shale_options *opts)
{
    empty_ctx e = {r, opts};
    return r->child_count ? par_for(r->child_count, empty_one, &e, NULL) : SHALE_OK;
}

shale_status split_request_check_stores(split_request *r, const split_policy *p,
                                        const char *agent_store, const char *agent_wal_store,
                                        const shale_options *opts)
{
    return split_request_check_stores_facts(r, p, agent_store, agent_wal_store, opts, NULL);
}

shale_status split_request_check_stores_facts(split_request *r, const split_policy *p,
                                              const char *agent_store,
                                              const char *agent_wal_store,
                                              const shale_options *opts,
                                              split_store_facts *facts)
{
    if (facts) {
        facts->parent_has_id = false;
        facts->empty_rc = SHALE_OK;
        facts->empty_msg[0] = '\0';
    }
    split_policy dp;
    if (!p) {
        split_policy_init(&dp);
        p = &dp;
    }
    if (!agent_store)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "split request: the agent has no store");
    const char *agent_wal = agent_wal_store ? agent_wal_store : agent_store;
    shale_status rc = SHALE_OK;
    if (r->parent_store)
        rc = same_as_agent(r->parent_store, agent_store, "parent.store", opts);
    if (!rc && r->parent_wal_store)
        rc = same_as_agent(r->parent_wal_store, agent_wal, "parent.walStore", opts);
    if (rc)
        return rc;
    /* From here on the parent is named the agent's way. */
    char *ps = agent_strdup(agent_store),
    *pw = agent_wal_store ? agent_strdup(agent_wal_store) : NULL;
    if (!ps || (agent_wal_store && !pw)) {
        free(ps);
        free(pw);
        return AGENT_OOM();
    }
    free(r->parent_store);
    free(r->parent_wal_store);
    r->parent_store = ps;
    r->parent_wal_store = pw;
    return check_children(r, p, opts, facts);
}
