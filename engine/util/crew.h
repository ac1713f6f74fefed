/*
 * crew.h -- threads the engine keeps for its next wide batch of requests.
 *
 * shale_clone_many runs each phase's per-child requests at once on up to
 * 64 threads.  Until 2026-12-02 it started them at its first phase and
 * joined them after its last: at 32 children that was 4-5 ms of CPU
 * before the first request and as much again after the last response, on
 * a 2-core machine -- between one journalled step and the next, on the
 * split's critical path.  A crew thread, once started, stays for the
 * process's next batch (this call's next phase or the next call) instead
 * of ending.  It is the engine's own copy of what agent/workpool.c does for
 * the agent (the agent may use only the engine's public headers, and the
 * engine may not depend on the agent).  Its other users: a reader's
 * prefetch (one batch per Verify window) and the store identity check
 * (crew_two, per child store at a split's submit and pre-flight).
 *
 * Threads are made with the default attributes (the curl/S3 paths the
 * workers take need glibc's default stack); beyond CREW_IDLE_MAX idle ones,
 * a thread ends instead of waiting.
 *
 * A forked child's crew starts empty (its parent's threads are not in it).
 *
 * Thread safety: any thread may call crew_for, crew threads included.
 */
#ifndef SHALE_UTIL_CREW_H
#define SHALE_UTIL_CREW_H

#include <stddef.h>

#define CREW_IDLE_MAX 128
#define CREW_BATCH_MAX 128

/* worker(arg) on nthreads threads at once -- the caller's and up to
 * nthreads - 1 crew threads (fewer when pthread_create fails: the worker
 * typically takes items from a shared counter, so fewer threads only mean
 * less at once) -- returning once every call has returned.  nthreads is
 * capped at CREW_BATCH_MAX. */
void crew_for(size_t nthreads, void (*worker)(void *arg), void *arg);

/* a(aa) and b(ba) at once: one on the caller's thread, the other on a
 * crew thread (both on the caller's, one after the other, when no thread
 * could be had), returning once both have returned.  Either may run on
 * either thread, so each must keep its own status and message
 * (shale_errmsg() is per thread).  For a request beside another (the
 * identity GET beside a LIST or a manifest GET) made per child store in a
 * split's phases: a thread started and joined for each was CPU on the
 * split's critical path at 32 children. */
void crew_two(void (*a)(void *), void *aa, void (*b)(void *), void *ba);

/* Threads started since the process began, and those idle now: for tests
 * (a second batch no wider than the first starts none). */
size_t crew_started(void);
size_t crew_idle(void);

#endif
