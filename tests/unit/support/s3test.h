/*
 * s3test.h -- the S3 servers of the tests, on 127.0.0.1 only:
 *   the real one, Ceph RGW, started once per test run by tests/run.sh
 *   (tests/tools/rgw.sh) and found through SHALE_TEST_S3_ENDPOINT,
 *   SHALE_TEST_S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 *   AWS_REGION; tests make unique prefixes inside its bucket;
 *   and tests/tools/s3stub.js, started per binary, for what a real server
 *   cannot do on demand (throttling, 5xx, hangs, torn connections).
 * A missing RGW environment or node is a test failure, never a skip.
 */
#ifndef SHALE_S3TEST_H
#define SHALE_S3TEST_H

#include <stdbool.h>
#include <sys/types.h>
#include "shale_status.h"

typedef struct s3test_server {
    pid_t pid;               /* the stub's process; 0 for RGW (not ours) */
    int port;
    char endpoint[256];      /* http://127.0.0.1:<port> */
    char bucket[64];
    char access[128], secret[128], region[64];
    bool stub;
} s3test_server;

/* The run's RGW, from the environment tests/run.sh exports.  SHALE_IO with
 * a message saying how to start it when the environment is missing. */
shale_status s3test_rgw(s3test_server *s);
/* Starts s3stub.js (bucket "test", key STUBKEY/STUBSECRET). */
shale_status s3test_start_stub(s3test_server *s);
/* A cmocka group's set-up for files that use both: the run's RGW and a
 * stub of their own.  -1, after saying why on stderr, when either is
 * missing: the group fails, it is never skipped. */
int s3test_start_both(s3test_server *rgw, s3test_server *stub);
/* Stops the stub (nothing for RGW: tests/run.sh stops it). */
void s3test_stop(s3test_server *s);
/* Sets AWS_* (keys, region, AWS_ENDPOINT_URL) for the server. */
void s3test_env(const s3test_server *s);
/* A fresh "s3://<bucket>/<name>-<uuid>" (malloc'd). */
char *s3test_uri(const s3test_server *s, const char *name);
/* POSTs a fault-control JSON document to the stub. */
bool s3test_stub_faults(const s3test_server *s, const char *json);
/* Signed S3 requests the stub has seen (-1 on error). */
long s3test_stub_requests(const s3test_server *s);

#endif
