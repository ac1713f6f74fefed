/* crashtest.c -- see crashtest.h. */
#include "support/crashtest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void ct_start(ct_child *c, ct_body *body, void *arg)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);   /* nothing buffered is written twice by the child */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka's handlers for crash signals would jump back into the
         * test in the child: a crash must end the child, for the parent to
         * see it. */
        static const int crash[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT};
        for (size_t i = 0; i < sizeof crash / sizeof *crash; i++)
            signal(crash[i], SIG_DFL);
        close(fds[0]);
        body(arg, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    c->pid = (int)pid;
    c->fd = fds[0];
    c->status = 0;
}

void ct_ack(int ack_fd, const void *rec, size_t n)
{
    if (write(ack_fd, rec, n) != (ssize_t)n)
        _exit(CT_EXIT_PIPE);
}

_Noreturn void ct_die(int code, const char *what)
{
    fprintf(stderr, "crash child %d: %s: %s\n", (int)getpid(), what, shale_errmsg());
    _exit(code);
}

bool ct_recv(ct_child *c, void *rec, size_t n)
{
    if (c->fd < 0)
        return false;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(c->fd, (char *)rec + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return true;
    ct_close(c);
    if (got)
        fail_msg("child %d: a record cut short (%zu of %zu bytes)", c->pid, got, n);
    return false;
}

static void reap(ct_child *c)
{
    assert_true(c->pid > 0);
    int st = 0;
    assert_int_equal(waitpid((pid_t)c->pid, &st, 0), c->pid);
    c->status = st;
}

/* Fails unless the reaped child was ended by the SIGKILL or (code >= 0)
 * exited with code. */
static void expect_killed(ct_child *c, int code)
{
    int st = c->status;
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        return;
    if (code >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == code)
        return;
    if (WIFEXITED(st))
        fail_msg("child %d exited with code %d, not killed (see its stderr)", c->pid,
                 WEXITSTATUS(st));
    fail_msg("child %d died of signal %d, not of SIGKILL", c->pid,
             WIFSIGNALED(st) ? WTERMSIG(st) : -1);
}

void ct_kill(ct_child *c)
{
    kill((pid_t)c->pid, SIGKILL);
    reap(c);
    expect_killed(c, -1);
}

void ct_kill_or_exit(ct_child *c, int code)
{
    kill((pid_t)c->pid, SIGKILL);
    reap(c);
    expect_killed(c, code);
}

int ct_wait(ct_child *c)
{
    reap(c);
    return WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -WTERMSIG(c->status);
}

void ct_expect_killed(ct_child *c)
{
    reap(c);
    expect_killed(c, -1);
}

void ct_expect_exit(ct_child *c, int code)
{
    int pid = c->pid, rc = ct_wait(c);
    if (rc < 0)
        fail_msg("child %d died of signal %d, want exit %d", pid, -rc, code);
    if (rc != code)
        fail_msg("child %d exited with %d, want %d (see its stderr)", pid, rc, code);
}

void ct_close(ct_child *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}
