/*
 * lease.h -- the shard's split lease, held in the parent's store.
 *
 * The right to split a shard is an ordered sequence of small records,
 *
 *   splits/_lease/<seq:020>.json   {"format":1, "seq":n, "op":"take"|"release",
 *                                   "split":"<name>", "shard":..., "time":...,
 *                                   "owner":"<host>:<pid>", "request":{...}}
 *
 * each written with put-if-absent, none ever rewritten or deleted.  The
 * record with the highest seq says who holds the lease: a "take" names the
 * split holding it, a "release" (or no record) means it is free.  Taking is
 * the create of seq top+1 as a take; releasing, by the holder only, is the
 * create of seq top+1 as a release.  Of racing writers (threads, agents,
 * restarted agents) exactly one creates a given seq; the losers read the new
 * top and decide again, so two splits of one shard can never both hold it.
 * Because nothing is deleted, there is no delete race and no ABA: a seq
 * once written stays the same record.  The take record carries the
 * canonical request, so a split whose agent died between taking the lease
 * and writing journal version 1 can still be accepted from it.
 *
 * Cost: one LIST of splits/_lease/ and one GET per decision; two records
 * per split, so the list grows by two per split (docs/agent.md).  A caller
 * that knows a record to be a release (it read or wrote it) may take after
 * it without reading (lease_take_seen): records are dense and never change,
 * so the create of the next seq is the check that it is still the top.
 *
 * Thread safety: plain functions over a thread-safe store handle.
 */
#ifndef SHALE_AGENT_LEASE_H
#define SHALE_AGENT_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_objstore.h"
#include "shale_admin.h"

#define LEASE_PREFIX SHALE_LEASE_DIR  /* shale_admin.h names the keys */

typedef struct lease_view {
    uint64_t top;          /* highest seq written, 0 for none */
    bool held;             /* the top record is a take */
    char holder[256];      /* the split holding it (when held) */
    char *request_json;    /* the holder's canonical request (malloc'd) or NULL */
    char owner[200];       /* "<host>:<pid>" that wrote the top record */
} lease_view;

/* This process's owner string (as written in records it takes). */
void lease_self(char *buf, size_t n);

void lease_view_free(lease_view *v);

/* Reads who holds the lease.  SHALE_CORRUPT naming the record when the top
 * record is bad (nobody may take the lease then: an operator looks). */
shale_status lease_read(shale_objstore *st, lease_view *out);

/* Takes the lease for split (request_json is its canonical request).
 * SHALE_OK with *fresh true: this call took it at *seq.  SHALE_OK with
 * *fresh false: split already holds it (taken at *seq earlier, by this
 * agent before a restart or by another one).  SHALE_CONFLICT when another
 * split holds it, its name in holder and in shale_errmsg(). */
shale_status lease_take(shale_objstore *st, const char *shard, const char *split,
                        const char *request_json, uint64_t *seq, bool *fresh,
                        char *holder, size_t holder_len);
/* lease_take() whose first round uses *seen, a view of the lease read
 * earlier (the submit reads it beside the request's other checks), instead
 * of reading it again: the take record's create-if-absent at seen->top + 1
 * is the check that nothing was written since (a record there means
 * someone was: the lease is read again, as every lost round is).  Only a
 * view of a free lease saves the read; NULL or a held one reads. */
shale_status lease_take_seen(shale_objstore *st, const char *shard, const char *split,
                             const char *request_json, const lease_view *seen, uint64_t *seq,
                             bool *fresh, char *holder, size_t holder_len);

/* Releases the lease split holds.  A lease that split no longer holds (it
 * was released already) is SHALE_OK with *release_seq 0.  Fires the
 * failpoint "Lease.released" after the write. */
shale_status lease_release(shale_objstore *st, const char *split, uint64_t *release_seq);
/* lease_release() for a split that took the lease at record taken_seq:
 * writes the release at taken_seq + 1 directly (create-if-absent: one
 * request, no read); when that record exists (someone else wrote after
 * the take: an operator's clear, another split) it falls back to
 * lease_release(), which reads the lease and releases it only if it is
 * still this split's. */
shale_status lease_release_after(shale_objstore *st, const char *split, uint64_t taken_seq,
                                 uint64_t *release_seq);

#endif
