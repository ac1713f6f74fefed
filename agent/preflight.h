/*
 * preflight.h -- the last check before the point of no return.
 *
 * Just before WipeLocalWAL deletes the parent's local WAL, every child
 * store (and child WAL store) is reached and proven writable and empty by
 * claiming it: a conditional create of its identity object of kind
 * child-claim naming the split and the child (shale_store_claim()).  A
 * claim this split made before (a resumed run) passes; another split's
 * claim, a database, a WAL or any other object is refused.  So what can
 * still fail after the wipe is transient: the stores were there, writable
 * and ours a moment before.  The clone accepts a store holding only the
 * claim and turns the claim into the child's database identity.
 *
 * Thread safety: reentrant.
 */
#ifndef SHALE_AGENT_PREFLIGHT_H
#define SHALE_AGENT_PREFLIGHT_H

#include <stddef.h>
#include "request.h"
#include "shale.h"

/* Claims every child's stores for req (validated: parent_store is the
 * agent's).  opts: store options for every open (borrowed).  On SHALE_OK
 * msg receives a line for status.  On failure nothing was deleted and
 * shale_errmsg() names the child, the field and why ("pre-flight:
 * children[1].store 'file:///x': ... holds a database"); SHALE_CONFLICT
 * for a store that is not empty or is another's, SHALE_INVALID_ARGUMENT
 * for a URI that names no store, a store's own code (SHALE_IO,
 * SHALE_UNAUTHORIZED, ...) when it could not be reached or written. */
shale_status preflight_children(const split_request *req, const shale_options *opts,
                                char *msg, size_t msglen);
/* preflight_children() in two phases: every store's reads (which stores
 * are apart; no emptiness listing -- the submit made it, and the claim's
 * create-if-absent refuses any identity found since), then barrier(ctx),
 * then the claims' creates alone.  The split's WipeLocalWAL passes the join of its
 * "Running" journal write, which runs beside the checks; a barrier failure
 * stops it before any claim.  barrier NULL: preflight_children(). */
shale_status preflight_children_after(const split_request *req, const shale_options *opts,
                                      char *msg, size_t msglen,
                                      shale_status (*barrier)(void *), void *ctx);

/* The pre-flight also proves each child's store honours conditional
 * create (the probe shale_objstore_probe_conditional() makes, its two
 * creates beside the checks and the claims), so that the clone after the
 * wipe need not: a store that ignores If-None-Match is refused before the
 * point of no return, SHALE_UNSUPPORTED (skipped when
 * opts->unsafe_allow_unconditional_store).  The probe object's key names
 * the claim (preflight_probe_key, buf of 64 bytes at least), so the step
 * after deletes it (preflight_unprobe: best effort, every child at once; a
 * leftover ".probe/" object is garbage, never state). */
shale_status preflight_probe_key(const split_request *req, size_t i, const shale_options *opts,
                                 char *buf, size_t n);
void preflight_unprobe(const split_request *req, const shale_options *opts);

/* Undoes what a split that ends short of the WAL wipe (failed, refused or
 * aborted) claimed: every child store (and child WAL store) whose identity
 * is a child-claim naming req's claim owner loses it (read, then delete:
 * nothing else can replace a claim meanwhile -- a writer's open and
 * another split's claim are refused by it -- so the delete removes only
 * this split's), and the probe objects go too.  Another split may then use
 * those stores.  Best effort, every child at once: a claim left behind
 * (a store unreachable now) only refuses other splits, as it did before
 * claims were released. */
void preflight_release(const split_request *req, const shale_options *opts);

#endif
