/*
 * crashtest.h -- the crash harness of the kill tests: a child process does
 * the work (durable writes, a split) and reports each thing it has
 * acknowledged on a pipe; the parent reads those acknowledgements, SIGKILLs
 * the child at the point it chose, reaps it, and then reopens the stores to
 * check that nothing acknowledged was lost.
 *
 *     ct_child c;
 *     ct_start(&c, writer, &arg);          // writer calls ct_ack per ack
 *     while (got < want && ct_recv(&c, &rec, sizeof rec)) ...
 *     ct_kill(&c);                          // fails unless SIGKILL ended it
 *     while (ct_recv(&c, &rec, sizeof rec)) ...   // acked before it died
 *
 * The pipe outlives the child: records written before the kill landed are
 * still read after it, and ct_recv says false (and closes the parent's end)
 * once they are all read.  A child that died some other way (its open
 * failed, it crashed) fails the test with its exit code or signal, and what
 * it said through ct_die is on stderr, instead of a bare "signalled" check.
 */
#ifndef SHALE_CRASHTEST_H
#define SHALE_CRASHTEST_H

#include "support/testutil.h"

/* The exit code of a child whose acknowledgement could not be written. */
#define CT_EXIT_PIPE 120

typedef struct ct_child {
    int pid;      /* the child's process id */
    int fd;       /* the parent's (read) end of the pipe; -1 once closed */
    int status;   /* waitpid's status, once reaped */
} ct_child;

/* The child's work, run in the forked child with the pipe's write end.  It
 * must not use cmocka's assertions (a failure would jump back into the
 * parent's copy of the test inside the child): it ends with ct_die on a
 * failure, or returns (the child then exits 0).  A crash (SIGSEGV, an
 * abort) ends the child with that signal: cmocka's handlers are reset. */
typedef void ct_body(void *arg, int ack_fd);

/* Forks a child running body(arg, write end); in the parent, c holds the
 * child and the pipe's read end.  Asserts the pipe and fork succeed. */
void ct_start(ct_child *c, ct_body *body, void *arg);

/* In the child: writes one record of n bytes (n <= PIPE_BUF, so a record
 * is never torn by the kill); exits CT_EXIT_PIPE when it cannot. */
void ct_ack(int ack_fd, const void *rec, size_t n);
/* In the child: says what failed (and shale_errmsg()) on stderr, then
 * _exit(code).  The parent's ct_kill/ct_expect_exit name the code. */
_Noreturn void ct_die(int code, const char *what);

/* In the parent: the next record of n bytes into rec; false when the
 * child's end is closed and every record has been read (the parent's end
 * is closed then).  A record cut short fails the test. */
bool ct_recv(ct_child *c, void *rec, size_t n);

/* SIGKILLs the child and reaps it; fails the test unless the SIGKILL is
 * what ended it (a child that exited or died of another signal first is
 * named with its code).  Records sent before the kill stay readable. */
void ct_kill(ct_child *c);
/* The same, for a child that may also have finished by itself first: an
 * exit with code is accepted too. */
void ct_kill_or_exit(ct_child *c, int code);
/* Waits for the child to end by itself: its exit code, or -N when signal N
 * ended it (a failpoint's SIGKILL, say). */
int ct_wait(ct_child *c);
/* Waits for a child that kills itself (a failpoint, a hook that raises
 * SIGKILL) and fails the test unless SIGKILL is what ended it. */
void ct_expect_killed(ct_child *c);
/* Waits and fails the test unless the child exited with code. */
void ct_expect_exit(ct_child *c, int code);
/* Closes the parent's end of the pipe if it is still open (after reading
 * only part of what the child sent); does not reap. */
void ct_close(ct_child *c);

#endif
