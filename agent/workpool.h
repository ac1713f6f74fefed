/*
 * workpool.h -- threads kept for the process's next batch of store work.
 *
 * A split runs each phase's per-child requests at once (par.h), and a
 * 32-child split has several such phases: starting and joining 32 threads
 * per phase costs a clone(), an mmap of a stack, its page faults and, once
 * glibc's stack cache is full, a munmap with its TLB shootdown -- CPU that
 * lands between one round trip's end and the next one's start on a 2-core
 * machine.  A pool thread, once started, waits for the next task instead of
 * ending; the next phase (of this split or the next) wakes it.
 *
 * workpool_run() never queues a task behind another: the task gets an idle
 * thread or a new one, so tasks handed over together run at once (the
 * callers' items wait on the network, and a phase must stay one wave of
 * requests).  Threads beyond WORKPOOL_IDLE_MAX idle ones end instead of
 * waiting.
 *
 * Thread safety: every function may be called from any thread, pool
 * threads included.
 */
#ifndef SHALE_AGENT_WORKPOOL_H
#define SHALE_AGENT_WORKPOOL_H

#include <stdbool.h>
#include <stddef.h>

#define WORKPOOL_IDLE_MAX 160

typedef struct workpool_task {
    void (*fn)(void *arg);
    void (*done)(void *arg);      /* may be NULL: after fn, once the thread
                                   * counts as idle (so a batch whose done
                                   * calls are all in finds its threads idle) */
    void *arg;
    struct workpool_task *next;   /* the pool's; the caller leaves it */
} workpool_task;

/* Runs t->fn(t->arg), then t->done(t->arg), on a pool thread.  *t is the
 * caller's and must stay valid until done is called.
 * False when no thread could be had (no idle one, pthread_create failed):
 * the caller runs the work itself. */
bool workpool_run(workpool_task *t);

/* worker(arg) on nthreads threads at once -- the caller's and nthreads - 1
 * pool threads (fewer if none can be had) -- returning once every call has
 * returned; the pool threads are then idle.  worker typically takes items
 * from a shared counter until none is left, so fewer threads only mean
 * less at once.  nthreads is capped at WORKPOOL_BATCH_MAX. */
#define WORKPOOL_BATCH_MAX 128
void workpool_for(size_t nthreads, void (*worker)(void *arg), void *arg);

/* Threads started since the process began, and those idle now: for tests
 * (a second batch of the same size must start none). */
size_t workpool_started(void);
size_t workpool_idle(void);

#endif
