/*
 * journal.h -- the split journal in the parent's store, and the status
 * document it doubles as.
 *
 * Each version of a split's journal is a complete JSON document (the status
 * shape of service.h plus the canonical request under "request"), stored at
 * splits/<name>/<version:020>.json with put-if-absent.  Version 1 is written
 * at Accept; every step writes "Running" before its side effects and "Done"
 * after.  Losing a put-if-absent means another agent writes this journal:
 * SHALE_CONFLICT, and this agent stops driving the split.
 *
 * Thread safety: plain functions; callers serialise per split.
 */
#ifndef SHALE_AGENT_JOURNAL_H
#define SHALE_AGENT_JOURNAL_H

#include <jansson.h>
#include <stdint.h>
#include "shale_objstore.h"

/* The steps, in order.  Index into the "steps" array of the document. */
enum {
    STEP_ACCEPT = 0, STEP_FENCE, STEP_FULL_FLUSH, STEP_WIPE_WAL, STEP_CLONE, STEP_VERIFY,
    STEP_COMPLETE, STEP_COUNT
};

const char *journal_step_name(int step);
/* The phase shown while a step runs ("Fencing", "Flushing", ...). */
const char *journal_step_phase(int step);

/* Writes doc as version *version + 1; on success *version is advanced. */
shale_status journal_save(shale_objstore *s, const char *name, uint64_t *version,
                          json_t *doc);

/* Loads the newest version of every journal under splits/.  Calls fn for
 * each (doc is a new reference the callee owns).  Journals that fail to
 * parse are reported through fn with doc NULL and the message in
 * shale_errmsg(), never skipped silently. */
typedef void (*journal_fn)(void *ctx, const char *name, uint64_t version, json_t *doc);
shale_status journal_load_all(shale_objstore *s, journal_fn fn, void *ctx);

/* Current time as RFC 3339 UTC with milliseconds, into buf (>= 32). */
void journal_now(char *buf, size_t n);

#endif
