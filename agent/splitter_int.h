/*
 * splitter_int.h -- what the splitter's files share:
 *
 *   splitter.c      the service (get/list/abort) and the lifecycle
 *   split_accept.c  the service's submit: the reads, the lease, version 1
 *   split_run.c     the worker: runs a split's steps, applies their results,
 *                   retries, stalls, finishes and releases the lease
 *   split_load.c    loading journals at start and reconciling them with the
 *                   lease (resume, "cannot read now", "corrupt")
 *   split_settle.c  what a finished split still owes: its checkpoint's and
 *                   its lease's release, and their journal record
 *   split_steps.c   the steps themselves; verify.c the Verify step
 *
 * Locking rule: sp->mu guards the job list and every job's split_state.
 * Only splitter files take it.  Steps never do: they get a `run` (the
 * request, which never changes, and a copy of the state fields they read)
 * and return a step_result, which split_run.c applies under sp->mu.  No
 * one holds sp->mu across store I/O.  sp->submit_mu serialises accepts of
 * one agent (taken before sp->mu, never while holding it).
 */
#ifndef SHALE_AGENT_SPLITTER_INT_H
#define SHALE_AGENT_SPLITTER_INT_H

#include <pthread.h>
#include "splitter.h"
#include "split_state.h"

#define MAX_LISTENERS 8
#define STEP_ATTEMPTS 3      /* tries of a failing step before the point of no return */
#define ADOPT_GRACE_MS 5000  /* a lease without a journal for this long is adopted */

/* How a job's journal was had at start. */
typedef enum job_load {
    JOB_LOADED = 0,
    JOB_UNREADABLE,          /* could not be read now: retried by the worker */
    JOB_CORRUPT              /* bad: left in place, reported, blocks new splits */
} job_load;

typedef struct job {
    split_state *st;         /* under sp->mu; while the worker runs the job only
                                the worker changes it */
    split_request *req;      /* NULL for a record without one (cleared, bad) */
    char *req_json;          /* canonical request, to recognise a repeat */
    job_load load;
    char *load_error;        /* why, for JOB_UNREADABLE / JOB_CORRUPT */
    bool abort_requested;
    bool orphaned;           /* another agent drives its journal: status is
                                read from the store, the worker leaves it */
    bool unsaved;            /* the last journal write failed */
    bool tried;              /* worker's mark within one pass over the jobs */
    int64_t added_ms;        /* when this agent learnt of it (dry-run expiry) */
    int64_t lease_taken_ms;  /* agent_mono_ms() when this process's accept took the
                                lease and wrote version 1 (0: not here) */
    bool fence_journalled;   /* version 1 recorded Fence Running and FullFlush
                                Running: the worker's first Fence and the
                                FullFlush after it need no journal write of
                                their own */
    uint64_t parent_manifest_id; /* the parent's version the accept read (0:
                                    none): Fence's open is hinted with it */
    struct preopen *preopen; /* Fence's open, started beside version 1 and
                                waiting for the worker's Fence (split_preopen.h);
                                owned, freed (cancelled) by run_job's end */
    struct shale_manifest_cache *mcache; /* the manifest versions the accept
                                        read and the run's steps read or
                                        write (owned; made by the accept or
                                        by run_job, freed at run_job's end
                                        after every handle using it) */
    struct job *next;
} job;

/* A lease this process took at accept less than this long ago is not read
 * again before the first step (a round trip on S3): nothing but this
 * process could have changed it in between but an operator's clear. */
#define LEASE_FRESH_MS 5000

typedef struct listener {
    split_status_cb cb;
    void *ctx;
} listener;

/* A key range as a manifest states it: owned copies of its bounds, NULL
 * for unbounded on that side (split_accept.c keeps the parent's). */
typedef struct prange {
    uint8_t *s, *e;
    size_t sl, el;
} prange;

struct splitter {
    split_service svc;       /* first: the service pointer is the splitter */
    splitter_options o;
    char *shard, *store_uri, *wal_uri;
    shale_objstore *store;
    pthread_mutex_t mu;
    pthread_mutex_t submit_mu;   /* one accept at a time in this agent */
    pthread_mutex_t notify_mu;   /* orders status deliveries to listeners */
    pthread_cond_t cv;
    job *jobs;
    bool loaded;             /* the journal list was read (else retried) */
    bool lease_adopted;      /* a lease without a journal was looked for */
    uint64_t adopt_seq;      /* the take record seen without a journal */
    int64_t adopt_seen_ms;   /* when (mono_ms) */
    /* A free lease record this process saw or wrote (under mu): record
     * lease_free_top of splits/_lease/ is a release, or there is none
     * (lease_free_known with top 0).  Lease records are never rewritten or
     * deleted and each seq is written only after the one before it, so
     * this stays true of that record forever; the submit's take is the
     * create-if-absent of lease_free_top + 1 (lease_take_seen), which
     * fails when anything was written since, and only then lists the
     * lease: a split accepted after another one in this process lists
     * nothing (issue 16). */
    uint64_t lease_free_top;
    bool lease_free_known;
    /* The parent's visible range as this process read it (under mu), with
     * the identity UUID of the parent's store it was read beside: the
     * submit checks a request's ranges against it without waiting for the
     * parent's manifest (split_accept.c, "The parent's range"). */
    bool prange_known;
    char prange_uuid[37];
    prange prange;
    bool adopt_tried;        /* splitter_adopt_lease ran once (under mu):
                                splitter_wait_idle waits for it, so that its
                                read is not counted in what comes next */
    char load_error[512];
    uint32_t load_tries;
    bool stop, busy, started;
    job *current;            /* the job the worker runs (never expired) */
    pthread_t worker;
    listener listeners[MAX_LISTENERS];
    int nlisteners;
    char *uncertain[16];     /* names whose version 1 write failed here (it
                                may have landed): a re-send may drive them */
    size_t nuncertain;       /* under mu */
    splitter_step_cb step_cb;
    void *step_ctx;
    splitter_stats stats;
};

typedef struct async_save async_save;

/* What a step reads: the request and a copy of the state it needs. */
typedef struct run {
    splitter *sp;            /* options and URIs only (never sp->mu) */
    const split_request *req;
    const char *name;
    char checkpoint_id[40];
    uint64_t replay_after_wal_id;
    shale_db *db;            /* the parent, opened as writer at Fence */
    uint64_t *child_manifest_ids; /* per child (NULL: none): the manifest
                                     version Clone wrote (the journal's
                                     manifestId; 0: unknown), copied from the
                                     state by begin_step: Verify reads it by
                                     id, no LIST (verify.c) */
    uint64_t manifest_hint;  /* shale_open_at()'s hint for that open (0: none) */
    struct preopen *preopen; /* the job's, borrowed: Fence finishes it */
    struct shale_manifest_cache *mcache; /* the manifest versions this run
                                        read or wrote (the job's, borrowed;
                                        NULL: none): run_opts() puts it in
                                        every store this run opens, so no
                                        step GETs a version again */
    struct shale_manifest_view *parent_latest; /* the parent's latest version as Verify
                                        read it (owned; NULL: not read by this
                                        run): Complete writes on it */
    struct async_save *pending;  /* this step's "Running" journal write, in
                                    flight beside it (split_run.c); joined by
                                    step_loop before the step's result counts */
    struct verify_warm *warm;    /* Verify's reads of the parent made ahead,
                                    beside Clone (verify_warm.h; owned,
                                    taken by Verify) */
    bool refused;            /* the step refused before any side effect (the
                                WAL wipe's pre-flight): it fails, it does not
                                roll forward */
    struct early_pf *early;  /* the pre-flight started beside Fence (owned;
                                NULL: none, WipeLocalWAL runs it itself):
                                split_steps.c */
} run;

typedef struct step_child_result {
    bool cloned, verified;
    uint64_t manifest_id, ssts_referenced, wal_ssts_copied, key_count;
} step_child_result;

/* What a step returns, applied by split_run.c under sp->mu (also after a
 * failure: what was done stays recorded). */
typedef struct step_result {
    char message[512];
    bool mismatch;           /* Verify: a child's content differs (retrying
                                cannot pass); read errors are not this */
    bool has_checkpoint;
    char checkpoint_id[40];
    uint64_t replay_after_wal_id, next_wal_sst_id;
    uint64_t objects_copied, bytes_copied;
    step_child_result *children;   /* req->child_count entries */
    split_verify verify_mode;      /* set by Verify */
    split_plan *plan;              /* dry run: handed over to the state */
} step_result;

/* Step helpers and steps (split_steps.c, verify.c).  Each returns SHALE_OK
 * or a code with shale_errmsg() set, and fills *res. */
shale_options db_opts(const splitter *sp, const char *wal);
/* db_opts() with the run's manifest cache (r->mcache): what every store
 * and database the run's steps open is given, so a manifest version read
 * or written by one step (or the accept) is not read again by another.
 * run_store_opts(): the same for a bare shale_objstore_open(). */
shale_options run_opts(const run *r, const char *wal);
shale_objstore_options run_store_opts(const run *r);
const char *parent_store(const run *r);
const char *parent_wal(const run *r);
shale_status do_fence(run *r, step_result *res);
shale_status do_full_flush(run *r, step_result *res);
shale_status do_wipe(run *r, step_result *res);
shale_status do_clone(run *r, step_result *res);
shale_status do_verify(run *r, step_result *res);
/* Complete's one action, made after the split is journalled Complete
 * (split_settle.c): removes the split's checkpoint checkpoint_id from the
 * agent's parent store, writing on latest (the parent's latest version as
 * Verify read it, borrowed) when given -- one conditional write instead of
 * a LIST, a GET and the write -- else on a fresh read.  A checkpoint gone
 * already is SHALE_OK.  Fires the failpoint "Complete.mid" after it. */
shale_status complete_release_checkpoint(const splitter *sp, const char *checkpoint_id,
                                         const struct shale_manifest_view *latest);
shale_status do_plan(run *r, step_result *res);
/* WipeLocalWAL's pre-flight (preflight.h), started on a thread of its own
 * once Fence is journalled Running, so its round trips overlap Fence and
 * FullFlush instead of starting the wipe; do_wipe joins it and reports its
 * refusal as if it had run it.  A run that does not start at Fence (a
 * resume) does not start it: do_wipe runs the pre-flight itself. */
void preflight_early_start(run *r);
/* For a split that ends short of the wipe (failed, refused, aborted):
 * joins the early pre-flight, if any, then releases this split's claims
 * (preflight_release), whichever run made them. */
void preflight_release_claims(run *r);
/* Joins and frees the early pre-flight, if any (claims kept). */
void preflight_early_free(run *r);
/* Deletes the split's checkpoint from the parent, if it took one (best
 * effort: a failure leaves it for `shale checkpoint delete`). */
void release_checkpoint(run *r);

/* split_run.c */
/* Waits for the step's "Running" journal write if it is in flight beside
 * the step (run.pending); a step calls it before its first side effect.
 * SHALE_OK once it is durable; else the write's error (made again once). */
shale_status run_barrier(run *r);
void *splitter_worker(void *arg);
job *next_runnable_locked(splitter *sp);
/* Tells every listener; sp->mu must NOT be held. */
void splitter_notify(splitter *sp, job *j);
/* Journals the state (not for dry runs) and tells listeners. */
shale_status splitter_save(splitter *sp, job *j);

/* split_load.c */
/* Lists and loads the journals; on a list failure sp->loaded stays false
 * (the worker tries again).  Call without sp->mu. */
void splitter_load_journals(splitter *sp);
/* Retries what could not be read; true if something is still unreadable. */
bool splitter_retry_unreadable(splitter *sp);
/* A lease held by a split that has no journal (its agent died between the
 * two writes): writes journal version 1 from the lease's request. */
void splitter_adopt_lease(splitter *sp);
/* Reads the parent's range and identity for the submits to come (the
 * worker's first pass; best effort: a submit without it reads the parent's
 * manifest first, as before). */
void splitter_parent_prime(splitter *sp);
/* Validates a request against the parent's manifest. */
shale_status validate_against_parent(splitter *sp, split_request *r);
/* A job for a decoded state (consumed) or a placeholder; NULL on OOM. */
job *job_from_state(splitter *sp, const char *name, split_state *st, shale_status rc);
void job_free(job *j);
job *find_locked(splitter *sp, const char *name);
void append_locked(splitter *sp, job *j);
/* Whether the split's lease should be released at its end. */
bool lease_releasable(const split_state *s);
/* Records that lease record top is a release (or, top 0, that there is
 * no record), as read or written by this process: the hint of the next
 * take (splitter.lease_free_top).  A lower top than the one kept is
 * ignored.  Call without sp->mu. */
void splitter_lease_free_seen(splitter *sp, uint64_t top);
/* Forgets that hint: a take was written above it. */
void splitter_lease_taken(splitter *sp, uint64_t seq);

/* split_settle.c */
/* True when terminal job j still owes a release (its checkpoint, once
 * Complete; its lease) and is this agent's to settle.  sp->mu held. */
bool split_settle_due(const job *j);
/* After j's terminal journal write: the releases it owes, at once, then one
 * journal write recording them (a failure leaves them owed: the worker
 * tries again, splitter_settle_due).  r: the run that finished it (its
 * view of the parent), or NULL.  sp->mu not held. */
void split_settle(splitter *sp, job *j, const run *r);
/* Settles every terminal job that still owes something (a kill between
 * the terminal journal and the releases, or a release that failed). */
void splitter_settle_due(splitter *sp);

/* splitter.c, shared with split_accept.c (sp->mu as each says) */
int64_t splitter_clock_now(const splitter *sp);
/* Drops finished dry runs beyond the count and age bounds; sp->mu held. */
void expire_dry_runs_locked(splitter *sp);
/* Re-reads a job another agent drives from its journal; sp->mu not held. */
void refresh_remote(splitter *sp, job *j);
/* j's status document (malloc'd); sp->mu not held. */
shale_status status_of(splitter *sp, job *j, char **out);

/* split_accept.c: the service's submit (splitter.h). */
shale_status splitter_svc_submit(split_service *svc, const split_request *req, bool *created,
                                 char **status_json);

/* Log helpers (split_run.c). */
void log_refusal(splitter *sp, const char *split, shale_status rc, const char *why);

#endif
