/*
 * splitter_int.h -- what splitter.c (jobs, worker, service) and
 * split_steps.c (the steps themselves) share.  See splitter.c's header
 * comment for the state machine and the locking rule: sp->mu guards the job
 * list and every job's document; steps take it only to update documents.
 */
#ifndef SHALE_AGENT_SPLITTER_INT_H
#define SHALE_AGENT_SPLITTER_INT_H

#include <jansson.h>
#include <pthread.h>
#include "splitter.h"

#define MAX_LISTENERS 8
#define STEP_ATTEMPTS 3

typedef struct job {
    char *name;
    split_request *req;
    char *req_json;          /* canonical request, to recognise a repeat */
    json_t *doc;             /* status + journal document (under sp->mu) */
    uint64_t version;        /* journal version; 0 for a dry run */
    bool dry_run;
    bool terminal;
    bool abort_requested;
    bool orphaned;           /* another agent owns its journal */
    struct job *next;
} job;

typedef struct listener {
    split_status_cb cb;
    void *ctx;
} listener;

struct splitter {
    split_service svc;       /* first: the service pointer is the splitter */
    splitter_options o;
    char *shard, *store_uri, *wal_uri;
    shale_objstore *store;
    pthread_mutex_t mu;
    pthread_mutex_t notify_mu;   /* orders status deliveries to listeners */
    pthread_cond_t cv;
    job *jobs;
    bool stop, busy, started;
    pthread_t worker;
    listener listeners[MAX_LISTENERS];
    int nlisteners;
    splitter_step_cb step_cb;
    void *step_ctx;
    splitter_stats stats;
};

typedef struct run {
    splitter *sp;
    job *j;
    shale_db *db;            /* the parent, opened as writer at Fence */
    bool refused;            /* the step refused before any side effect (the
                                WAL wipe's pre-flight): it fails, it does not
                                roll forward */
} run;


/* Document helpers (split_steps.c calls them with sp->mu held). */
json_t *step_obj(job *j, int step);
void set_str(json_t *o, const char *k, const char *v);
void add_copied(splitter *sp, job *j, int step, uint64_t objects, uint64_t bytes);

/* Step helpers and steps (split_steps.c).  Each returns SHALE_OK or a code
 * with shale_errmsg() set; msg (where given) receives a line for status. */
shale_options db_opts(const splitter *sp, const char *wal);
const char *parent_store(const run *r);
const char *parent_wal(const run *r);
const char *doc_str(run *r, const char *k);
shale_status do_fence(run *r);
shale_status do_full_flush(run *r);
shale_status do_wipe(run *r, char *msg, size_t msglen);
/* Deletes the split's checkpoint from the parent, if it took one (best
 * effort: a failure leaves it for `shale checkpoint delete`). */
void release_checkpoint(run *r);
shale_status do_clone(run *r);
shale_status do_verify(run *r, char *msg, size_t msglen);
shale_status do_complete(run *r);
shale_status do_plan(run *r);

#endif
