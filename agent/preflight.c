/*
 * preflight.c -- claims the children's stores before the WAL wipe (see
 * preflight.h).  Claims are made in request order and are never undone: a
 * split that fails here leaves the claims, and the same split run again
 * (resumed or re-sent) finds them its own; a different split must use
 * other stores (docs/agent.md "Pre-flight").
 */
#include "preflight.h"
#include "log.h"
#include "shale_admin.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The claim's message names the store; the prefix names the field. */
static shale_status claim_one(const char *uri, const char *owner, const char *field,
                              const shale_options *opts)
{
    shale_status rc = shale_store_claim(uri, opts, owner);
    if (rc)
        return shale_err_prefix(rc, "pre-flight: %s", field);
    return SHALE_OK;
}

shale_status preflight_children(const split_request *req, const shale_options *opts,
                                char *msg, size_t msglen)
{
    size_t claimed = 0;
    shale_status rc = SHALE_OK;
    for (size_t i = 0; !rc && i < req->child_count; i++) {
        const split_child *c = &req->children[i];
        char *owner = NULL, field[64];
        if ((rc = split_request_claim_owner(req, i, opts, &owner)))
            break;
        snprintf(field, sizeof field, "children[%zu].store", i);
        rc = claim_one(c->store, owner, field, opts);
        if (!rc)
            claimed++;
        if (!rc && c->wal_store) {
            shale_store_relation rel;
            rc = shale_store_relate(c->wal_store, c->store, opts, &rel);
            snprintf(field, sizeof field, "children[%zu].walStore", i);
            if (!rc && rel != SHALE_STORE_SAME && !(rc = claim_one(c->wal_store, owner, field,
                                                                   opts)))
                claimed++;
        }
        free(owner);
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
