/*
 * split_state.h -- the state of one split as a C struct.
 *
 * This is what the splitter keeps per split, what journal.c encodes into
 * the parent's store (docs/agent.md "Journal") and what split_status.c
 * renders as the status document of service.h.  Nothing else reads or
 * writes JSON for a split.
 *
 * Who writes it: only the splitter, under its lock (splitter.c).  Steps
 * (split_steps.c, verify.c) read a copy of what they need and return a
 * step_result (splitter_int.h) that the splitter applies.
 *
 * Times are milliseconds since the Unix epoch, 0 for "not yet".  Strings
 * are owned by the struct (malloc'd); split_state_free() frees them.
 *
 * Thread safety: plain data; callers serialise.
 */
#ifndef SHALE_AGENT_SPLIT_STATE_H
#define SHALE_AGENT_SPLIT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "request.h"

/* The steps, in order. */
typedef enum split_step {
    STEP_ACCEPT = 0, STEP_FENCE, STEP_FULL_FLUSH, STEP_WIPE_WAL, STEP_CLONE, STEP_VERIFY,
    STEP_COMPLETE, STEP_COUNT
} split_step;

/* What status shows.  PHASE_COMPLETING is the Complete step running (the
 * split's checkpoint is being released): not yet terminal. */
typedef enum split_phase {
    PHASE_PENDING = 0, PHASE_ACCEPTED, PHASE_FENCING, PHASE_FLUSHING, PHASE_WIPING,
    PHASE_CLONING, PHASE_VERIFYING, PHASE_COMPLETING, PHASE_STALLED, PHASE_COMPLETE,
    PHASE_FAILED, PHASE_ABORTED, PHASE_COUNT
} split_phase;

typedef enum step_state {
    STEP_PENDING = 0, STEP_RUNNING, STEP_DONE, STEP_FAILED, STEP_STATE_COUNT
} step_state;

/* Where the split's lease stands (lease.h). */
typedef enum lease_state {
    LEASE_NONE = 0,      /* a dry run, or a journal from before leases */
    LEASE_HELD,
    LEASE_RELEASED,
    LEASE_STATE_COUNT
} lease_state;

typedef struct split_step_rec {
    step_state state;
    int64_t start_ms, end_ms;
    char *message;                 /* "" when none; never NULL once set */
    uint64_t objects_copied, bytes_copied;
    uint32_t attempts;             /* failed attempts of this step so far */
} split_step_rec;

typedef struct split_child_rec {
    char *name, *store;
    uint64_t manifest_id, key_count, ssts_referenced, wal_ssts_copied;
} split_child_rec;

typedef struct split_plan_child {
    char *name, *store;
    uint64_t ssts, bytes, expected_keys;
} split_plan_child;

/* The dry-run plan. */
typedef struct split_plan {
    uint64_t wal_ssts_in_gap, parent_manifest_id;
    split_plan_child *children;
    size_t child_count;
} split_plan;

/* A step past the point of no return that failed and waits to be retried. */
typedef struct split_stalled {
    bool on;
    split_step step;
    char *error;
    uint32_t retries;
    int64_t next_retry_ms;
} split_stalled;

typedef struct split_lease_rec {
    lease_state state;
    uint64_t seq;                  /* the record that took it */
    uint64_t release_seq;          /* the record that released it, 0 if none */
} split_lease_rec;

typedef struct split_state {
    char *name, *shard;
    bool dry_run;
    split_phase phase;
    char *reason, *message;        /* "" when none */
    char checkpoint_id[40];        /* "" until FullFlush */
    bool checkpoint_owed;          /* Complete is journalled and the split's
                                      checkpoint is still to be released (the
                                      release follows the terminal journal
                                      write, beside the lease's: split_run.c) */
    uint64_t replay_after_wal_id, next_wal_sst_id;
    int64_t start_ms, completion_ms;
    split_verify verify_mode;      /* SPLIT_VERIFY_DEFAULT until Verify ran */
    split_step_rec steps[STEP_COUNT];
    split_child_rec *children;
    size_t child_count;
    split_plan *plan;              /* dry runs, once planned */
    split_stalled stalled;
    split_lease_rec lease;
    uint64_t journal_version;      /* newest version written (0: none) */
    char *request_json;            /* the canonical request (journal only) */
} split_state;

const char *split_step_name(split_step s);
/* The step a name means, or -1. */
int split_step_parse(const char *name);
/* The phase shown while a step runs. */
split_phase split_step_phase(split_step s);
const char *split_phase_name(split_phase p);
int split_phase_parse(const char *name);
const char *step_state_name(step_state s);
int step_state_parse(const char *name);
const char *lease_state_name(lease_state s);
int lease_state_parse(const char *name);
bool split_phase_terminal(split_phase p);

/* A new state for a request: Accept done at now_ms (Pending for a dry
 * run), every other step Pending, a child record per child.  request_json
 * is copied.  NULL on out of memory. */
split_state *split_state_new(const split_request *r, const char *request_json, bool dry_run,
                             int64_t now_ms);
/* An empty state (for decoders); NULL on out of memory. */
split_state *split_state_alloc(void);
void split_state_free(split_state *s);
/* A deep copy; NULL on out of memory. */
split_state *split_state_dup(const split_state *s);

/* Replaces *dst with a copy of src ("" for NULL).  false on out of memory. */
bool split_state_set_str(char **dst, const char *src);
void split_plan_free(split_plan *p);

#endif
