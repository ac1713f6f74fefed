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

/* The claim's message names the store; the prefix names the field. */
static shale_status claim_one(const char *uri, const char *owner, const char *field,
                              const shale_options *opts)
{
    shale_status rc = shale_store_claim(uri, opts, owner);
    if (rc)
        return shale_error_prefix(rc, "pre-flight: %s", field);
    return SHALE_OK;
}

/* One child's claims; *claimed counts them. */
static shale_status claim_child(const split_request *req, size_t i, const shale_options *opts,
                                size_t *claimed)
{
    const split_child *c = &req->children[i];
    char *owner = NULL, field[64];
    shale_status rc = split_request_claim_owner(req, i, opts, &owner);
    if (rc)
        return rc;
    snprintf(field, sizeof field, "children[%zu].store", i);
    rc = claim_one(c->store, owner, field, opts);
    if (!rc)
        (*claimed)++;
    if (!rc && c->wal_store) {
        shale_store_relation rel;
        rc = shale_store_relate(c->wal_store, c->store, opts, &rel);
        snprintf(field, sizeof field, "children[%zu].walStore", i);
        if (!rc && rel != SHALE_STORE_SAME && !(rc = claim_one(c->wal_store, owner, field, opts)))
            (*claimed)++;
    }
    free(owner);
    return rc;
}

typedef struct pf_ctx {
    const split_request *req;
    const shale_options *opts;
    size_t *claimed;
} pf_ctx;

static shale_status pf_one(void *ctx, size_t i)
{
    pf_ctx *c = ctx;
    return claim_child(c->req, i, c->opts, &c->claimed[i]);
}

/* The children's claims are independent requests to independent stores:
 * they run at once (par.h), so the step costs one child's round trips,
 * not the sum.  The first refusal in request order is the one reported. */
shale_status preflight_children(const split_request *req, const shale_options *opts,
                                char *msg, size_t msglen)
{
    size_t n = req->child_count, claimed = 0;
    pf_ctx c = {req, opts, calloc(n ? n : 1, sizeof(size_t))};
    shale_status rc = c.claimed ? par_for(n, pf_one, &c, NULL) : AGENT_OOM();
    for (size_t i = 0; c.claimed && i < n; i++)
        claimed += c.claimed[i];
    free(c.claimed);
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
