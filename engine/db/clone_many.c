/*
 * clone_many.c -- shale_clone_many(): the clones of a split, all from one
 * parent checkpoint, at once (see clone.c for the steps of one clone).
 *
 * Phase 0 (all at once): every child's env and stores opened.  Phase 1
 * (all at once): every child's store read (its version 1 beside its
 * identity, or its manifest; the identity checks of a fresh clone), every
 * child's conditional-create probe unless the caller proved it already
 * (unsafe_allow_unconditional_store: the split's pre-flight did; the
 * probe's object is deleted in phase 2), and the parent's latest and
 * pinned versions (by id when spec.parent_manifest_id names one that
 * holds the checkpoint, else a LIST and a GET): nothing is written until
 * all of them are in (and, for the split, until its journal says Clone
 * Running: shale_clone_many_barrier's barrier).  Then every fresh child's
 * version 1 is built in memory.  Phase 2 (a thread per item): ONE write in
 * the parent adding every child's pin, beside the children's version 1
 * writes (uninitialised) and the probes' deletes; a clone that references
 * a grandparent pins after it through pin_parents() as shale_clone does.
 * Phase 3 (a thread per item): each child's WAL gap copied and
 * initialising write, beside its identity write.  Three round trips when
 * the parent's version is known.
 *
 * Why the pin may go beside version 1: a pin without its child's manifest
 * (a crash between) is not lost, because its id is the clone's own
 * (pin_id_for in clone.c: a hash of the parent store, the checkpoint, the
 * child and its range): the redone clone builds the same version 1 with
 * the same id, finds the pin in the parent and writes none.  A version 1
 * without the pin is what a crash between the two left before, resumed
 * the same way (an uninitialised child is pinned before it is
 * initialised).  The initialising write still waits for the pin: an
 * initialised child is always pinned, and until then the source
 * checkpoint pins the version either way (the pin write re-checks it).
 * Each clone's state is in its own store, so a crash between phases is
 * resumed by either call.
 */
#include "db/clone_int.h"
#include "db/checkpoint_int.h"
#include "db/paths.h"
#include "util/misc.h"
#include "util/crew.h"
#include "util/status_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A thread per item of a phase up to this many: phase 2 of a held batch
 * has 3 items per child and one (32 children: 97), and an item that waits
 * for a thread is a round trip more. */
#define CLONE_THREADS 128

typedef struct many_job {
    const shale_clone_spec *specs;
    const shale_options *opts;
    clone_run *runs;
    shale_objstore *ps;            /* the parent, for the shared loads */
    char (*probes)[PATH_KEY_MAX];  /* per child: its probe object's key, "" once gone */
    manifest *lat, *pin;           /* the parent's, shared read-only after phase 1 */
    size_t n, items;
    cp_pin_req *reqs;              /* phase 2's pins (many_pin_reqs), k of them */
    char (*names)[256];
    size_t k;
    int phase;
    bool held;                     /* shale_clone_many_held() */
    _Atomic size_t next;
    _Atomic bool failed;
    shale_status *rcs;             /* per item of a phase */
    char (*msgs)[512];             /* shale_errmsg() is per thread */
    /* Each phase runs on the engine's kept threads (util/crew.h): at 32
     * children, starting 64 threads at the first phase and joining them
     * after the last was CPU on the split's critical path. */
} many_job;

/* The parent's latest version and the one the checkpoint pins (when the
 * checkpoint is gone, each clone reports it or finds its child made). */
static shale_status many_load_parent(many_job *j)
{
    /* By id when the caller knows a version holding the checkpoint (the
     * split's writer does: it is the parent's only writer): one GET, not a
     * LIST and a GET.  It may be behind the latest; see many_pin_write. */
    uint64_t hint = j->specs[0].parent_manifest_id;
    if (hint) {
        shale_status hrc = manifest_store_load(j->ps, hint, &j->lat);
        if (hrc && hrc != SHALE_NOT_FOUND)
            return shale_err_prefix(hrc, "clone: loading the parent %s's manifest %llu",
                                    j->specs[0].parent_uri, (unsigned long long)hint);
        if (!hrc && !cp_find(j->lat, j->specs[0].parent_checkpoint_id)) {
            manifest_free(j->lat);
            j->lat = NULL;
        }
    }
    shale_status rc = j->lat ? SHALE_OK : manifest_store_load_latest(j->ps, 0, &j->lat);
    if (rc)
        return shale_err_prefix(rc, "clone: loading the parent %s", j->specs[0].parent_uri);
    const checkpoint_rec *r = cp_find(j->lat, j->specs[0].parent_checkpoint_id);
    if (r && r->manifest_id != j->lat->id &&
        (rc = manifest_store_load(j->ps, r->manifest_id, &j->pin)))
        return shale_err_prefix(rc, "clone: loading the parent's manifest %llu pinned by %s",
                                (unsigned long long)r->manifest_id, r->id);
    return SHALE_OK;
}

/* shale_objstore_probe_conditional() on child i's store, but the probe
 * object's delete is left to many_unprobe(), which phase 2 runs beside the
 * children's first writes: the probe costs two round trips of phase 1
 * (which waits on two reads anyway), not three. */
static shale_status many_probe(many_job *j, size_t i)
{
    if (j->opts && j->opts->unsafe_allow_unconditional_store)
        return SHALE_OK;
    shale_objstore *s = j->runs[i].child;
    char id[37], *key = j->probes[i];
    uuid_new(id);
    probe_key(id, key, PATH_KEY_MAX);
    shale_status rc = shale_objstore_put_if_absent(s, key, "1", 1);
    if (rc) {
        *key = '\0';
        return shale_err_prefix(rc, "probing conditional create on %s", shale_objstore_uri(s));
    }
    return probe_verdict(s, key, shale_objstore_put_if_absent(s, key, "2", 1));
}

/* Deletes child i's probe object, if any (best effort, as the probe's own
 * delete is: a leftover .probe/ object is garbage, never state). */
static void many_unprobe(many_job *j, size_t i)
{
    if (j->probes[i][0] && j->runs[i].child)
        shale_objstore_delete(j->runs[i].child, j->probes[i]);
    j->probes[i][0] = '\0';
}

static shale_status many_pin_write(many_job *j, const manifest *base);

static shale_status many_item(many_job *j, size_t i)
{
    if (j->phase == 0) {
        shale_status rc = clone_check_spec(&j->specs[i]);
        if (!rc)
            rc = clone_open(&j->runs[i], &j->specs[i], j->opts, false);
        j->runs[i].held = j->held;   /* clone_open zeroes the run */
        return rc;
    }
    if (j->phase == 1) {
        if (i == 2 * j->n)
            return many_load_parent(j);
        if (i >= j->n)
            return many_probe(j, i - j->n);
        return clone_read(&j->runs[i]);
    }
    if (j->phase == 2) {
        /* Item 0, taken first (so it runs whatever fails beside it): the
         * pins; then the children's version 1 writes, then the probes'
         * deletes, then the identities of the clones written initialised
         * (early). */
        if (i == 0)
            return many_pin_write(j, j->lat);
        if (--i >= 2 * j->n)
            return j->runs[i - 2 * j->n].early ? clone_identities(&j->runs[i - 2 * j->n])
                                                : SHALE_OK;
        if (i >= j->n) {
            many_unprobe(j, i - j->n);
            return SHALE_OK;
        }
        return clone_write(&j->runs[i], j->lat, j->pin ? j->pin : j->lat);
    }
    /* Phase 3: the initialising write and the identity at once.  The
     * identity may land first: a child whose identity says database but
     * whose manifest is not initialised is resumed like any unfinished
     * clone (clone_read finds its version 1 and goes on; nothing reads the
     * identity on that path), and no writer opens a child before the split
     * is Complete. */
    if (i >= j->n)
        return clone_identities(&j->runs[i - j->n]);
    return clone_finish(&j->runs[i]);
}

static void many_worker(void *arg)
{
    many_job *j = arg;
    for (size_t i; !atomic_load(&j->failed) && (i = atomic_fetch_add(&j->next, 1)) < j->items;)
        if ((j->rcs[i] = many_item(j, i))) {
            snprintf(j->msgs[i], sizeof j->msgs[i], "%s", shale_errmsg());
            atomic_store(&j->failed, true);
        }
}

/* *failed: the spec the first failing item belongs to. */
static shale_status many_phase(many_job *j, int phase, size_t *failed)
{
    j->phase = phase;
    j->items = phase == 0 ? j->n : phase == 1 ? 2 * j->n + 1 : phase == 2 ? 3 * j->n + 1
                                                                             : 2 * j->n;
    atomic_store(&j->next, 0);
    memset(j->rcs, 0, (3 * j->n + 1) * sizeof *j->rcs);
    /* One thread per item (this one included), at most CLONE_THREADS;
     * crew_for publishes the fields above to the threads it wakes. */
    crew_for(j->items < CLONE_THREADS ? j->items : CLONE_THREADS, many_worker, j);
    for (size_t i = 0; i < j->items; i++)
        if (j->rcs[i]) {
            if (failed)
                *failed = phase == 2 ? (i ? (i - 1) % j->n : 0)
                                     : i == 2 * j->n ? 0 : i % j->n;
            return shale_err(j->rcs[i], "%s", j->msgs[i]);
        }
    return SHALE_OK;
}

/* The direct parent's pins of every clone not yet initialised, for one
 * write (j->reqs): from the manifest each clone has or is about to write
 * (clone_prepare).  A clone that also references a grandparent is left to
 * many_pins_after (pin_parents, which reads its written version 1). */
static shale_status many_pin_reqs(many_job *j, bool raced_only)
{
    j->k = 0;
    for (size_t i = 0; i < j->n; i++) {
        clone_run *cr = &j->runs[i];
        const manifest *m = cr->cm ? cr->cm : cr->fresh;
        /* Held: a clone found initialised may be an early one whose pin a
         * crash kept from landing; its pin is asked for again (no write
         * when it is there: cp_add_pins). */
        if ((cr->res.already_done && !j->held) || !m || (raced_only && !cr->raced))
            continue;
        bool only_direct = true;
        for (size_t p = 0; p < m->parent_count; p++)
            if (strcmp(m->parents[p].store_uri, cr->spec->parent_uri))
                only_direct = false;
        if (!only_direct)
            continue;
        for (size_t p = 0; p < m->parent_count; p++) {
            snprintf(j->names[j->k], sizeof j->names[j->k], "clone:%s", cr->spec->child_uri);
            j->reqs[j->k].id = m->parents[p].final_checkpoint_id;
            j->reqs[j->k].name = j->names[j->k];
            j->k++;
        }
    }
    return SHALE_OK;
}

/* Phase 2's item beside the children's version 1 writes: every direct
 * pin in one conditional write on the parent, which re-checks there that
 * the source checkpoint still pins the version the clones reference.  The
 * pin may land before a child's version 1 does: its id is the clone's own
 * (pin_id_for in clone.c), so a redone clone builds the same id and finds
 * the pin made; and until the split's checkpoint is released (after the
 * clones are initialised) the parent's version is pinned by it anyway. */
static shale_status many_pin_write(many_job *j, const manifest *base)
{
    shale_status rc = SHALE_OK;
    if (j->k && (rc = cp_add_pins(j->ps, j->specs[0].parent_checkpoint_id, j->reqs, j->k,
                                  base)))
        shale_err_prefix(rc, "pinning parent %s", j->specs[0].parent_uri);
    return rc;
}

/* After phase 2: a clone that found another run's version 1 (its ids may
 * not be the ones just pinned) is pinned again from the parent's latest
 * (no write when they are there); grandparents one by one. */
static shale_status many_pins_after(many_job *j, size_t *failed)
{
    shale_status rc = many_pin_reqs(j, true);
    if (!rc)
        rc = many_pin_write(j, NULL);
    for (size_t i = 0; i < j->n && !rc; i++) {
        clone_run *cr = &j->runs[i];
        if (cr->res.already_done)
            continue;
        for (size_t p = 0; p < cr->cm->parent_count; p++)
            if (strcmp(cr->cm->parents[p].store_uri, cr->spec->parent_uri)) {
                if ((rc = pin_parents(cr, cr->cm)) && failed)
                    *failed = i;
                break;
            }
    }
    return rc;
}

shale_status shale_clone_many(const shale_clone_spec *specs, size_t n,
                              const shale_options *opts, shale_clone_result *out,
                              size_t *failed)
{
    return shale_clone_many_barrier(specs, n, opts, out, failed, NULL, NULL);
}

static shale_status many_run(const shale_clone_spec *specs, size_t n, const shale_options *opts,
                             shale_clone_result *out, size_t *failed,
                             shale_clone_barrier_fn before_write, void *ctx, bool held);

shale_status shale_clone_many_barrier(const shale_clone_spec *specs, size_t n,
                                      const shale_options *opts, shale_clone_result *out,
                                      size_t *failed, shale_clone_barrier_fn before_write,
                                      void *ctx)
{
    return many_run(specs, n, opts, out, failed, before_write, ctx, false);
}

shale_status shale_clone_many_held(const shale_clone_spec *specs, size_t n,
                                   const shale_options *opts, shale_clone_result *out,
                                   size_t *failed, shale_clone_barrier_fn before_write,
                                   void *ctx)
{
    return many_run(specs, n, opts, out, failed, before_write, ctx, true);
}

/* Held and fresh, into a store claimed for a child (the split's
 * pre-flight: clone_read resumes such a store whatever the identity write
 * beside version 1 left), with no WAL to copy and only the direct parent
 * referenced (a grandparent is pinned after version 1, pin_parents): the
 * version 1 clone_prepare built is written initialised. */
static void many_mark_early(many_job *j, clone_run *cr)
{
    manifest *m = cr->fresh;
    if (!j->held || !m || m->replay_after_wal_id + 1 < m->next_wal_sst_id)
        return;
    if (!cr->id_read || cr->id_rc != SHALE_OK ||
        !(cr->id.kind == SHALE_STORE_KIND_CHILD_CLAIM ||
          (cr->id.kind == SHALE_STORE_KIND_DB && cr->id.claim)))
        return;
    for (size_t p = 0; p < m->parent_count; p++)
        if (strcmp(m->parents[p].store_uri, cr->spec->parent_uri))
            return;
    m->initialized = true;
    cr->early = true;
}

static shale_status many_run(const shale_clone_spec *specs, size_t n, const shale_options *opts,
                             shale_clone_result *out, size_t *failed,
                             shale_clone_barrier_fn before_write, void *ctx, bool held)
{
    if (!specs && n)
        return shale_err(SHALE_INVALID_ARGUMENT, "clone: no specs");
    bool batch = n > 0 && specs[0].parent_uri && specs[0].parent_checkpoint_id;
    for (size_t i = 1; i < n && batch; i++)
        batch = specs[i].parent_uri && !strcmp(specs[i].parent_uri, specs[0].parent_uri) &&
                specs[i].parent_checkpoint_id &&
                !strcmp(specs[i].parent_checkpoint_id, specs[0].parent_checkpoint_id);
    if (!batch) {
        shale_status brc = before_write ? before_write(ctx) : SHALE_OK;
        if (brc) {
            if (failed)
                *failed = 0;
            return brc;
        }
        for (size_t i = 0; i < n; i++) {
            shale_status rc = shale_clone(&specs[i], opts, out ? &out[i] : NULL);
            if (rc) {
                if (failed)
                    *failed = i;
                return rc;
            }
        }
        return SHALE_OK;
    }
    many_job j;
    memset(&j, 0, sizeof j);
    j.specs = specs;
    j.opts = opts;
    j.n = n;
    j.held = held;
    j.runs = calloc(n, sizeof *j.runs);
    j.rcs = calloc(3 * n + 1, sizeof *j.rcs);
    j.msgs = calloc(3 * n + 1, sizeof *j.msgs);
    j.probes = calloc(n, sizeof *j.probes);
    j.reqs = calloc(n, sizeof *j.reqs);
    j.names = calloc(n, sizeof *j.names);
    shale_status rc = j.runs && j.rcs && j.msgs && j.probes && j.reqs && j.names
                          ? SHALE_OK : SHALE_OOM();
    if (!rc)
        rc = shale_objstore_open(specs[0].parent_uri, opts ? &opts->store : NULL, &j.ps);
    /* Phase 0: every child's env and stores, at once (an S3 store's open
     * may fetch credentials); the probes of phase 1 use the child's store. */
    if (!rc)
        rc = many_phase(&j, 0, failed);
    if (!rc)
        rc = many_phase(&j, 1, failed);
    if (!rc && before_write && (rc = before_write(ctx)) && failed)
        *failed = 0;
    /* Every fresh child's version 1 built here (no request: the parent's
     * versions are in), so that phase 2 writes them beside the pins. */
    for (size_t i = 0; i < n && !rc; i++) {
        const manifest *pin = j.pin ? j.pin : j.lat;
        if ((rc = clone_prepare(&j.runs[i], j.lat, pin)) && failed)
            *failed = i;
        else if (!rc)
            many_mark_early(&j, &j.runs[i]);
    }
    if (!rc)
        rc = many_pin_reqs(&j, false);
    if (!rc)
        rc = many_phase(&j, 2, failed);
    if (!rc)
        rc = many_pins_after(&j, failed);
    if (!rc)
        rc = many_phase(&j, 3, failed);
    for (size_t i = 0; j.runs && i < n; i++) {
        if (j.probes)
            many_unprobe(&j, i);   /* left by a failure before phase 2 */
        if (out)
            out[i] = j.runs[i].res;
        clone_close(&j.runs[i]);
    }
    free(j.probes);
    free(j.reqs);
    free(j.names);
    manifest_free(j.pin);
    manifest_free(j.lat);
    shale_objstore_close(j.ps);
    free(j.runs);
    free(j.rcs);
    free(j.msgs);
    return rc;
}
