/*
 * splitter.h -- the split sequence as a journaled, resumable state machine.
 *
 * One splitter serves one shard (the agent's).  It implements the
 * split_service interface (service.h) that request sources call, runs
 * splits one at a time on a worker thread, and journals every step in the
 * parent's store before its side effects:
 *
 *   splits/<name>/<version:020>.json   (put-if-absent: the CAS that stops
 *                                       two agents driving one split)
 *
 * Steps: Accept -> Fence -> FullFlush -> WipeLocalWAL -> Clone -> Verify
 *        -> Complete.  Abort is possible before WipeLocalWAL; from there on
 * the split only rolls forward.  A restarted agent lists the journals and
 * resumes every unfinished split from its last finished step (a step that
 * was running is redone, Complete included; each step is idempotent).
 * The right to split the shard is a lease in the same store (lease.h),
 * taken before journal version 1 and released at the end, so no set of
 * agents, sources and restarts runs two different splits of one shard.  docs/agent.md has the
 * diagram and the journal format.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef SHALE_AGENT_SPLITTER_H
#define SHALE_AGENT_SPLITTER_H

#include <stdbool.h>
#include <stdint.h>
#include "shale.h"
#include "service.h"

typedef struct splitter splitter;

typedef struct splitter_options {
    const char *shard;            /* this agent's shard (required) */
    const char *store_uri;        /* the shard's main store (required) */
    const char *wal_store_uri;    /* its local WAL store, or NULL */
    shale_options db;             /* engine options for every open */
    uint32_t step_timeout_s;      /* reserved: per-step deadline */
    split_verify verify;          /* Verify for requests that name none
                                     (default SPLIT_VERIFY_FULL) */
    split_policy policy;          /* which child stores requests may name
                                     (request.h; its strings borrowed for
                                     the splitter's life) */
    /* A step past the point of no return that fails is retried after
     * retry_base_ms, doubled each time up to retry_max_ms (defaults 1000
     * and 60000); the same backoff paces re-reading journals that could not
     * be read at start. */
    uint32_t retry_base_ms, retry_max_ms;
    /* Dry-run records kept in memory: at most dry_run_keep (default 100),
     * none older than dry_run_max_age_s (default 3600). */
    uint32_t dry_run_keep, dry_run_max_age_s;
    /* Test hook: the clock for dry-run ages (ms since the epoch); NULL is
     * the real one. */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    /* Verify's memory (docs/agent.md "Verify's memory"); 0 = the default. */
    size_t verify_cache_bytes;    /* the block cache every Verify reader
                                     shares (8 MiB) */
    size_t verify_piece_bytes;    /* full: a piece of a child's range, in
                                     bytes of the parent's largest sorted
                                     run (64 MiB) */
    size_t verify_meta_bytes;     /* full: estimated SST metadata of the
                                     pieces walked at once (64 MiB) */
    uint32_t verify_threads;      /* full: pieces walked at once, at most (4) */
} splitter_options;

void splitter_options_init(splitter_options *o);

/* Creates the splitter (options copied) and loads the journals of earlier
 * splits; call splitter_start() to run (and resume) them. */
shale_status splitter_new(const splitter_options *o, splitter **out);
shale_status splitter_start(splitter *sp);
/* Stops the worker after the current step, frees everything.  NULL ok. */
void splitter_free(splitter *sp);

split_service *splitter_service(splitter *sp);

/* Registers a status listener (called on every status change, from the
 * worker or the submitting thread).  At most 8. */
shale_status splitter_add_listener(splitter *sp, split_status_cb cb, void *ctx);

/* Waits until no split is pending or running, at most timeout_ms.
 * SHALE_TIMEOUT otherwise.  For tests and the demo. */
shale_status splitter_wait_idle(splitter *sp, int64_t timeout_ms);

/* Metrics hooks: totals so far. */
typedef struct splitter_stats {
    uint64_t completed, failed, aborted;
    uint64_t bytes_copied, objects_copied;
    uint64_t retries;             /* failed step attempts that were retried */
    uint64_t refused;             /* valid requests refused (lease held, journals
                                     blocking or not read yet) */
    uint64_t stalled;             /* gauge: splits now Stalled */
    uint64_t journals_unreadable; /* gauge: journals not read yet */
    uint64_t journals_corrupt;    /* gauge: bad journals waiting for an operator */
} splitter_stats;
void splitter_get_stats(splitter *sp, splitter_stats *out);

/* The operator's way out (shale-agent --clear-journal NAME): writes the
 * "cleared by an operator" journal version for a split whose newest
 * journal is bad, or that failed after the point of no return, and
 * releases the shard's split lease if that split holds it.  SHALE_CONFLICT
 * for an unfinished split (it is resumed, never cleared); SHALE_NOT_FOUND
 * if there is no such journal.  Needs no running splitter. */
shale_status splitter_clear_journal(const splitter_options *o, const char *name);

/* Called after each step with its duration (for the step histogram). */
typedef void (*splitter_step_cb)(void *ctx, const char *step, double seconds);
void splitter_on_step(splitter *sp, splitter_step_cb cb, void *ctx);

#endif
