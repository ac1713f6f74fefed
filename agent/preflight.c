/*
 * preflight.c -- claims the children's stores before the WAL wipe (see
 * preflight.h).  Claims are made in parallel.  A split that ends short
 * of the wipe (failed, refused, aborted) releases its own
 * (preflight_release); one that is only interrupted keeps them, and the
 * same split run again (resumed or re-sent) finds them its own
 * (docs/agent.md "Pre-flight").
 */
#include "preflight.h"
#include "log.h"
#include "par.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The claim's message names the store; the prefix names the field.
 * checked: shale_store_check_empty() passed for this owner a moment ago
 * (phase 1), so only the create is left. */
static shale_status claim_one(const char *uri, const char *owner, const char *field,
                              const shale_options *opts, bool checked)
{
    shale_status rc = checked ? shale_store_claim_checked(uri, opts, owner)
                              : shale_store_claim(uri, opts, owner);
    if (rc)
        return shale_error_prefix(rc, "pre-flight: %s", field);
    return SHALE_OK;
}

typedef struct pf_ctx {
    const split_request *req;
    const shale_options *opts;
    int phase;                   /* 1: the checks (reads); 2: the claims */
    bool *wal_apart;             /* per child: its WAL store is another store */
    size_t *claimed;
    bool *probe_again;           /* per child: its probe's first create landed */
} pf_ctx;

/* FNV-1a, for a probe key that names the claim (preflight_probe_key). */
static uint64_t fnv64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

shale_status preflight_probe_key(const split_request *req, size_t i, const shale_options *opts,
                                 char *buf, size_t n)
{
    char *owner = NULL;
    shale_status rc = split_request_claim_owner(req, i, opts, &owner);
    if (rc)
        return rc;
    snprintf(buf, n, ".probe/claim-%016llx", (unsigned long long)fnv64(owner));
    free(owner);
    return SHALE_OK;
}

/* The conditional-create probe of child i's store, in two halves (first:
 * the first create; else the second, if the first landed): the same proof
 * as shale_objstore_probe_conditional(), whose three requests in a row
 * the clone used to make after the wipe, split over the two phases that
 * make requests anyway.  Its key names the claim, so the clone deletes
 * the object without being told it (preflight_unprobe).  A create refused
 * as existing, first or second, is the proof: a store that ignores
 * If-None-Match never refuses one (the first is refused when an earlier
 * run's object is still there). */
static shale_status probe_child(pf_ctx *c, size_t i, bool first)
{
    if (c->opts && c->opts->unsafe_allow_unconditional_store)
        return SHALE_OK;
    if (!first && !c->probe_again[i])
        return SHALE_OK;
    const split_child *ch = &c->req->children[i];
    char key[96];
    shale_objstore *s = NULL;
    shale_status rc = preflight_probe_key(c->req, i, c->opts, key, sizeof key);
    if (!rc)
        rc = shale_objstore_open(ch->store, c->opts ? &c->opts->store : NULL, &s);
    if (!rc)
        rc = shale_objstore_put_if_absent(s, key, first ? "1" : "2", 1);
    shale_objstore_close(s);
    c->probe_again[i] = first && rc == SHALE_OK;
    if (rc == SHALE_PRECONDITION_FAILED || (first && rc == SHALE_OK))
        return SHALE_OK;
    if (rc == SHALE_OK)
        return shale_error_set(SHALE_UNSUPPORTED,
                               "pre-flight: children[%zu].store %s does not honour "
                               "create-if-absent (If-None-Match: *): a second conditional "
                               "create of %s succeeded; fencing is unsafe (set "
                               "unsafe_allow_unconditional_store to proceed anyway)",
                               i, ch->store, key);
    return shale_error_prefix(rc, "pre-flight: children[%zu].store: probing conditional create",
                              i);
}

static shale_status unprobe_one(void *ctx, size_t i)
{
    pf_ctx *c = ctx;
    char key[96];
    shale_objstore *s = NULL;
    if (!preflight_probe_key(c->req, i, c->opts, key, sizeof key) &&
        !shale_objstore_open(c->req->children[i].store, c->opts ? &c->opts->store : NULL, &s))
        shale_objstore_delete(s, key);
    shale_objstore_close(s);
    return SHALE_OK;
}

void preflight_unprobe(const split_request *req, const shale_options *opts)
{
    if (opts && opts->unsafe_allow_unconditional_store)
        return;
    pf_ctx c = {req, opts, 0, NULL, NULL, NULL};
    par_for(req->child_count, unprobe_one, &c, NULL);
}

static void release_store(const char *uri, const char *owner, const shale_options *opts)
{
    bool released = false;
    if (shale_store_claim_release(uri, opts, owner, &released))
        log_msg(LOG_WARN, NULL, NULL, -1, "could not release the split's claim of %s: %s",
                uri, shale_errmsg());
    else if (released)
        log_msg(LOG_INFO, NULL, NULL, -1, "released the split's claim of %s", uri);
}

static shale_status release_one(void *ctx, size_t i)
{
    pf_ctx *c = ctx;
    const split_child *ch = &c->req->children[i];
    char *owner = NULL;
    if (split_request_claim_owner(c->req, i, c->opts, &owner))
        return SHALE_OK;
    release_store(ch->store, owner, c->opts);
    if (ch->wal_store)
        release_store(ch->wal_store, owner, c->opts);
    free(owner);
    if (!(c->opts && c->opts->unsafe_allow_unconditional_store))
        unprobe_one(ctx, i);
    return SHALE_OK;
}

void preflight_release(const split_request *req, const shale_options *opts)
{
    pf_ctx c = {req, opts, 0, NULL, NULL, NULL};
    par_for(req->child_count, release_one, &c, NULL);
}

/* Phase 1, child i: whether its WAL store is a store of its own (an
 * identity read or two).  No emptiness listing: the submit listed every
 * child store before the parent was fenced, and from then on what can
 * take a store is refused by the claim itself -- a writer's open leaves an
 * identity (kind db or wal) that the claim's create-if-absent finds and
 * refuses, another split's claim likewise, and a writer that opens the
 * store after the claim is refused by the engine (docs/format.md "Store
 * identity").  What no identity marks -- an object put there by something
 * that is not Shale -- is looked for only at the submit (docs/agent.md
 * "Pre-flight"); it cannot harm the child, whose objects the clone writes
 * with create-if-absent under its own keys.  Reads only. */
static shale_status check_child(pf_ctx *c, size_t i)
{
    const split_child *ch = &c->req->children[i];
    if (!ch->wal_store)
        return SHALE_OK;
    shale_store_relation rel;
    shale_status rc = shale_store_relate(ch->wal_store, ch->store, c->opts, &rel);
    c->wal_apart[i] = !rc && rel != SHALE_STORE_SAME;
    if (rc) {
        char field[64];
        snprintf(field, sizeof field, "children[%zu].walStore", i);
        shale_error_prefix(rc, "pre-flight: %s", field);
    }
    return rc;
}

/* Phase 2, child i: the claims (create-if-absent); *claimed counts them. */
static shale_status claim_child(pf_ctx *c, size_t i, bool checked)
{
    const split_child *ch = &c->req->children[i];
    char *owner = NULL, field[64];
    shale_status rc = split_request_claim_owner(c->req, i, c->opts, &owner);
    if (rc)
        return rc;
    snprintf(field, sizeof field, "children[%zu].store", i);
    rc = claim_one(ch->store, owner, field, c->opts, checked);
    if (!rc)
        c->claimed[i]++;
    if (!rc && ch->wal_store) {
        bool apart = c->wal_apart[i];
        if (!checked) {
            shale_store_relation rel;
            rc = shale_store_relate(ch->wal_store, ch->store, c->opts, &rel);
            apart = !rc && rel != SHALE_STORE_SAME;
        }
        snprintf(field, sizeof field, "children[%zu].walStore", i);
        if (!rc && apart && !(rc = claim_one(ch->wal_store, owner, field, c->opts, checked)))
            c->claimed[i]++;
    }
    free(owner);
    return rc;
}

static shale_status pf_one(void *ctx, size_t i)
{
    pf_ctx *c = ctx;
    if (c->phase == 3) {
        shale_status rc = claim_child(c, i, false);
        if (!rc && !(rc = probe_child(c, i, true)))
            rc = probe_child(c, i, false);
        return rc;
    }
    return c->phase == 1 ? check_child(c, i) : claim_child(c, i, true);
}

static shale_status pf_probe(void *ctx, size_t i)
{
    pf_ctx *c = ctx;
    return probe_child(c, i, c->phase == 1);
}

typedef struct beside {
    pf_ctx *c;
    size_t failed;
    shale_status rc;
    char msg[1024];              /* shale_errmsg() is per thread */
} beside;

static void *beside_run(void *arg)
{
    beside *b = arg;
    b->rc = par_for(b->c->req->child_count, pf_probe, b->c, &b->failed);
    if (b->rc)
        snprintf(b->msg, sizeof b->msg, "%s", shale_errmsg());
    return NULL;
}

/* A phase's items (pf_one) and its probe halves at once: two par_for()s
 * on two threads, so a phase of n children stays one wave of requests
 * (n + n threads, not 2n items on PAR_THREADS).  The lower index's error
 * is the one reported, the item's before the probe's. */
static shale_status pf_phase(pf_ctx *c)
{
    size_t n = c->req->child_count, failed = 0;
    beside b = {c, 0, SHALE_OK, ""};
    pthread_t th;
    bool threaded = c->phase != 3 && !pthread_create(&th, NULL, beside_run, &b);
    shale_status rc = par_for(n, pf_one, c, &failed);
    char msg[1024] = "";
    if (rc)
        snprintf(msg, sizeof msg, "%s", shale_errmsg());
    if (threaded)
        pthread_join(th, NULL);
    else if (c->phase != 3)
        beside_run(&b);
    if (rc && (!b.rc || failed <= b.failed))
        return shale_error_set(rc, "%s", msg);
    return b.rc ? shale_error_set(b.rc, "%s", b.msg) : SHALE_OK;
}

/* The children's checks and claims are independent requests to independent
 * stores: they run at once (par.h), so the step costs one child's round
 * trips, not the sum.  The first refusal in request order is the one
 * reported. */
shale_status preflight_children_after(const split_request *req, const shale_options *opts,
                                      char *msg, size_t msglen,
                                      shale_status (*barrier)(void *), void *ctx)
{
    size_t n = req->child_count, claimed = 0;
    pf_ctx c = {req, opts, 1, calloc(n ? n : 1, sizeof(bool)),
                calloc(n ? n : 1, sizeof(size_t)), calloc(n ? n : 1, sizeof(bool))};
    shale_status rc = c.claimed && c.wal_apart && c.probe_again ? SHALE_OK : AGENT_OOM();
    if (!rc && barrier) {
        /* The checks are reads: they go beside the journal write that
         * starts the step; the claims, its first writes, after it.  The
         * probe's first create goes with the checks (its object is under
         * ".probe/", garbage that the checks and every reader ignore, as
         * the clone's probe before its barrier was), its second with the
         * claims. */
        rc = pf_phase(&c);
        shale_status brc = barrier(ctx);
        if (!rc && brc)
            rc = brc;
        c.phase = 2;
    } else {
        c.phase = 3;   /* the claim's own checks, then the claim, the probe */
    }
    if (!rc)
        rc = pf_phase(&c);
    for (size_t i = 0; c.claimed && i < n; i++)
        claimed += c.claimed[i];
    free(c.claimed);
    free(c.wal_apart);
    free(c.probe_again);
    if (rc) {
        /* No clone follows a refusal to delete the probes (the message
         * kept: the deletes may leave their own). */
        char why[1024];
        snprintf(why, sizeof why, "%s", shale_errmsg());
        preflight_unprobe(req, opts);
        shale_error_set(rc, "%s", why);
    }
    if (rc) {
        log_msg(LOG_WARN, req->name, "WipeLocalWAL", -1,
                "pre-flight refused the split before the point of no return (nothing "
                "deleted): %s", shale_errmsg());
        return rc;
    }
    if (msg && msglen)
        snprintf(msg, msglen, "pre-flight: %zu child stores reachable, writable and claimed",
                 claimed);
    return SHALE_OK;
}

shale_status preflight_children(const split_request *req, const shale_options *opts,
                                char *msg, size_t msglen)
{
    return preflight_children_after(req, opts, msg, msglen, NULL, NULL);
}
