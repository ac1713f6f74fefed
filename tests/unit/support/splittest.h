/*
 * splittest.h -- the fixture of the split state machine's tests
 * (test_splitter*.c): a parent on file:// with a separate local WAL store,
 * holding n keys (dt_put version 1 + i % 3; much of it only in the WAL),
 * four child store/WAL URIs, and a splitter driven through its service API.
 */
#ifndef SHALE_SPLITTEST_H
#define SHALE_SPLITTEST_H

#include "support/dbtest.h"
#include "splitter.h"
#include "request.h"
#include "lease.h"

typedef struct sf_fx {
    char *dir, *parent, *wal;
    char *kid[4], *kidwal[4];
    shale_options o;
    splitter *sp;           /* NULL until sf_new_splitter */
    unsigned n;
} sf_fx;

/* cmocka setup/teardown: *state is the sf_fx.  sf_setup_fault_wal puts
 * the local WAL store behind a fault+ URI (the test adds rules through
 * shale_fault_for_uri(f->wal)).  Teardown frees the splitter and removes
 * the directory. */
int sf_setup(void **state);
int sf_setup_fault_wal(void **state);
int sf_teardown(void **state);

/* The agent's splitter for shard orders-0 on f->parent, test schemes
 * allowed; verify: the agent's default mode (SPLIT_VERIFY_DEFAULT leaves
 * its own); start: start its worker. */
void sf_new_splitter(sf_fx *f, bool start);
void sf_new_splitter_v(sf_fx *f, bool start, split_verify verify);

/* The agent's options for shard orders-0 on parent with the local WAL
 * store wal, test schemes allowed, the engine's options db (borrowed; its
 * WAL store left to the agent): what every splitter of the tests starts
 * from. */
void sf_splitter_options(splitter_options *so, const char *parent, const char *wal,
                         const shale_options *db);
/* Starts sp's worker, waits (up to 60 s) until it is idle, and fails the
 * test unless split name is then in phase (the status is shown). */
void sf_run_to_phase(splitter *sp, const char *name, const char *phase);

/* A request splitting at the given key indexes (k cuts -> k+1 children
 * kid-0..kid-k); verify: the request's verify mode, NULL to leave it to
 * the agent.  Caller frees with split_request_free. */
split_request *sf_request(sf_fx *f, const char *name, const unsigned *cuts, int ncuts,
                          bool dry);
split_request *sf_request_v(sf_fx *f, const char *name, const unsigned *cuts, int ncuts,
                            bool dry, const char *verify);

/* Submits r (borrowed) / gets a split's status; the status JSON is
 * malloc'd, the caller frees it. */
char *sf_submit(sf_fx *f, split_request *r, bool *created);
char *sf_get_status(sf_fx *f, const char *name);
/* Fails the test unless status says "phase": phase. */
void sf_expect_phase(const char *status, const char *phase);
/* Every child holds exactly the parent's keys of its range. */
void sf_check_children(sf_fx *f, const unsigned *cuts, int ncuts);
/* The lease of the shard whose main store is store_uri, as the store holds
 * it now (lease_read(); the view's owned parts freed, its flags kept). */
lease_view sf_lease_read(const char *store_uri);

#endif
