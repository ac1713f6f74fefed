/*
 * preflight.c -- claims the children's stores before the WAL wipe (see
 * preflight.h).  Claims are made in parallel and are never undone: a
 * split that fails here leaves the claims, and the same split run again
 * (resumed or re-sent) finds them its own; a different split must use
 * other stores (docs/agent.md "Pre-flight").
 */
#include "preflight.h"
#include "log.h"
#include "par.h"
#include "shale_admin.h"
#include "agent_util.h"

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
} pf_ctx;

/* Phase 1, child i: its stores empty or claimed by this split already
 * (shale_store_check_empty(): the identity read beside the listing), and
 * whether its WAL store is a store of its own.  Reads only. */
static shale_status check_child(pf_ctx *c, size_t i)
{
    const split_child *ch = &c->req->children[i];
    char *owner = NULL, field[64];
    shale_status rc = split_request_claim_owner(c->req, i, c->opts, &owner);
    if (rc)
        return rc;
    snprintf(field, sizeof field, "children[%zu].store", i);
    if ((rc = shale_store_check_empty(ch->store, c->opts, owner)))
        shale_error_prefix(rc, "pre-flight: %s", field);
    if (!rc && ch->wal_store) {
        shale_store_relation rel;
        rc = shale_store_relate(ch->wal_store, ch->store, c->opts, &rel);
        snprintf(field, sizeof field, "children[%zu].walStore", i);
        c->wal_apart[i] = !rc && rel != SHALE_STORE_SAME;
        if (!rc && c->wal_apart[i] && (rc = shale_store_check_empty(ch->wal_store, c->opts, owner)))
            shale_error_prefix(rc, "pre-flight: %s", field);
    }
    free(owner);
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
    return c->phase == 1 ? check_child(c, i) : claim_child(c, i, c->phase == 2);
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
                calloc(n ? n : 1, sizeof(size_t))};
    shale_status rc = c.claimed && c.wal_apart ? SHALE_OK : AGENT_OOM();
    if (!rc && barrier) {
        /* The checks are reads: they go beside the journal write that
         * starts the step; the claims, its first writes, after it. */
        rc = par_for(n, pf_one, &c, NULL);
        shale_status brc = barrier(ctx);
        if (!rc && brc)
            rc = brc;
        c.phase = 2;
    } else {
        c.phase = 3;   /* the claim's own checks, then the claim */
    }
    if (!rc)
        rc = par_for(n, pf_one, &c, NULL);
    for (size_t i = 0; c.claimed && i < n; i++)
        claimed += c.claimed[i];
    free(c.claimed);
    free(c.wal_apart);
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
