/*
 * clone_int.h -- the steps of a range clone (clone.c), for shale_clone()
 * and shale_clone_many() (clone_many.c), which runs them for many children
 * at once.  Each step may be repeated after a crash (see clone.c).
 */
#ifndef SHALE_CLONE_INT_H
#define SHALE_CLONE_INT_H

#include "shale.h"
#include "shale_admin.h"
#include "db/env.h"
#include "db/manifest.h"

/* One clone's run.  Not shared between threads. */
typedef struct clone_run {
    const shale_clone_spec *spec;
    shale_options opts;        /* strings: the env's copies */
    db_env *env;               /* every store below is the env's (borrowed) */
    shale_objstore *parent, *parent_wal, *child, *child_wal;
    manifest *cm;              /* the child's manifest once read or written (owned) */
    manifest *fresh;           /* a fresh clone's version 1, built by clone_prepare,
                                  not yet written (owned; NULL once written) */
    manifest *spent;           /* the fresh version 1 once not kept (another run's
                                  found, or its write failed): owned, freed by
                                  clone_close -- shale_clone_many's pin write, beside
                                  clone_write, reads its pin requests' strings */
    bool raced;                /* clone_write found version 1 written by another run
                                  of this clone: cm is that one */
    /* shale_clone_many_held(): the caller keeps the source checkpoint
     * until a call returns SHALE_OK and calls again after any failure.
     * early: this fresh clone's version 1 is written initialised (no WAL
     * to copy, only the direct parent referenced), beside the pin and
     * its identity (identity_done once written). */
    bool held, early, identity_done;
    shale_clone_result res;
    /* The child store's identity as clone_read() found it (id_read: it
     * was read; id_rc its answer, id owned when SHALE_OK): nothing but this
     * clone writes a claimed child, so the identity step writes on it
     * without reading it again (identity_settle). */
    bool id_read;
    shale_status id_rc;
    shale_store_identity id;
} clone_run;

/* The spec's own consistency (no request). */
shale_status clone_check_spec(const shale_clone_spec *spec);
/* Fills cr for spec: an env on the child, the four stores; probe: check
 * that the child honours conditional create (3 requests) first. */
shale_status clone_open(clone_run *cr, const shale_clone_spec *spec, const shale_options *opts,
                        bool probe);
/* The child's side, reads only: its manifest (the same clone to resume;
 * else SHALE_CONFLICT) into cr->cm, or, fresh, the identity checks. */
shale_status clone_read(clone_run *cr);
/* A fresh clone (cr->cm NULL): the child's manifest version 1, from the
 * parent's versions shared_latest / shared_pinned when given (borrowed),
 * else loaded here. */
shale_status clone_write(clone_run *cr, const manifest *shared_latest,
                         const manifest *shared_pinned);
/* clone_write's first half, no write: cr->fresh built (cr->cm NULL only). */
shale_status clone_prepare(clone_run *cr, const manifest *shared_latest,
                           const manifest *shared_pinned);
/* A pin in every store the child manifest m references, one write each. */
shale_status pin_parents(clone_run *cr, const manifest *m);
/* After the pins: the WAL gap copied, initialised, the result filled. */
shale_status clone_finish(clone_run *cr);
/* The child's stores marked a database and its WAL store. */
shale_status clone_identities(clone_run *cr);
/* Frees what cr holds (cr itself is the caller's). */
void clone_close(clone_run *cr);

/* shale_clone_many_barrier() is public (shale_admin.h). */

#endif
