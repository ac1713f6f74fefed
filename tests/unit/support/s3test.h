/*
 * s3test.h -- S3-protocol servers for tests, on 127.0.0.1 only:
 *   s3rver (npm, tests/tools/node_modules) for ordinary object calls, and
 *   tests/tools/s3stub.js for what s3rver does not do (SigV4 checks,
 *   If-None-Match, throttling).
 * Each is started on a free port, waited for by reading its "listening"
 * line (no sleeps), and killed with its process group at stop and at exit.
 * A missing node or s3rver is a test failure, never a skip.
 */
#ifndef SHALE_S3TEST_H
#define SHALE_S3TEST_H

#include <stdbool.h>
#include <sys/types.h>
#include "shale_status.h"

typedef struct s3test_server {
    pid_t pid;
    int port;
    char dir[512];
    char endpoint[64];       /* http://127.0.0.1:<port> */
    bool stub;
} s3test_server;

/* stub false: s3rver with bucket "test" (key S3RVER/S3RVER);
 * stub true: s3stub.js (key STUBKEY/STUBSECRET). */
shale_status s3test_start(s3test_server *s, bool stub);
void s3test_stop(s3test_server *s);
/* Sets AWS_* for the server's credentials and endpoint. */
void s3test_env(const s3test_server *s);
/* POSTs a fault-control JSON document to the stub. */
bool s3test_stub_faults(const s3test_server *s, const char *json);

#endif
