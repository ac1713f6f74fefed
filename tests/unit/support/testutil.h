/*
 * testutil.h -- helpers shared by the cmocka unit tests.
 *
 * Every test gets its own directory under $SHALE_TEST_TMP (default
 * tests/tmp/work), named after the test and a random suffix, so tests can
 * run in parallel and leave evidence behind when they fail.
 */
#ifndef SHALE_TESTUTIL_H
#define SHALE_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

#include "shale.h"

/* A fresh empty directory for this test; returns a malloc'd absolute path. */
char *tu_tmpdir(const char *name);
/* "file://" + dir + "/" + sub (sub may be NULL); malloc'd. */
char *tu_file_uri(const char *dir, const char *sub);
/* A unique "mem://name-<random>" URI; malloc'd. */
char *tu_mem_uri(const char *name);
/* "fault+" + uri: the store behind the process-wide fault wrapper of that
 * URI (shale_fault_for_uri() gives its controller); malloc'd. */
char *tu_fault_uri(const char *uri);
/* A fresh mem://name-<random> store behind the fault wrapper: returns its
 * "fault+mem://..." URI (malloc'd, the caller frees it) and sets *ctl to
 * the wrapper's controller (asserted non-NULL; owned by the process). */
char *tu_fault_mem_uri(const char *name, shale_fault **ctl);
/* Removes a directory tree (best effort). */
void tu_rmtree(const char *dir);
/* True when SHALE_TEST_QUICK is set (sanitizer runs): shrink loops. */
bool tu_quick(void);
/* Waits for the child pid and fails the test unless it exited with code
 * (a signal or another code fails, naming what happened). */
void tu_expect_exit(int pid, int code);
/* Deterministic PRNG for tests (xorshift64*); seed 0 picks 1. */
uint64_t tu_rand(uint64_t *state);

/* assert rc == SHALE_OK and print shale_errmsg() when not. */
#define TU_OK(expr) do { shale_status tu_rc_ = (expr); \
    if (tu_rc_ != SHALE_OK) fail_msg("%s -> %s: %s", #expr, shale_strerror(tu_rc_), shale_errmsg()); \
} while (0)
#define TU_RC(want, expr) do { shale_status tu_rc_ = (expr); \
    if (tu_rc_ != (want)) fail_msg("%s -> %s (want %s): %s", #expr, shale_strerror(tu_rc_), \
                                   shale_strerror(want), shale_errmsg()); \
} while (0)

#endif
