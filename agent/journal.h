/*
 * journal.h -- the split journal in the parent's store: the encoder and
 * decoder of split_state (split_state.h).
 *
 * Each version of a split's journal is one JSON document holding the whole
 * state, stored at splits/<name>/<version:020>.json with put-if-absent.
 * Version 1 is written at Accept (after the lease is taken, lease.h); every
 * step writes "Running" before its side effects and "Done" after; a retry
 * past the point of no return writes the stalled record; the end writes the
 * terminal phase and then the released lease.  Losing a put-if-absent means
 * another agent writes this journal: SHALE_CONFLICT, and this agent stops
 * driving the split.
 *
 * Format (docs/agent.md "Journal"): "format": 2, steps keyed by name.
 * Journals without "format" (format 1: steps as a positional array, each
 * naming itself) are read too, so stores written by earlier agents resume.
 * A format newer than JOURNAL_FORMAT is refused with SHALE_UNSUPPORTED.
 *
 * Thread safety: plain functions; callers serialise per split.
 */
#ifndef SHALE_AGENT_JOURNAL_H
#define SHALE_AGENT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include "shale_objstore.h"
#include "split_state.h"

#define JOURNAL_FORMAT 2

/* The document of s (malloc'd text in *out). */
shale_status journal_encode(const split_state *s, char **out);
/* Decodes a journal version.  origin names it in messages (its key).
 * SHALE_CORRUPT naming the field for a bad document, SHALE_UNSUPPORTED for
 * a newer format.  *out is new (split_state_free()). */
shale_status journal_decode(const char *origin, const void *data, size_t len,
                            split_state **out);

/* Writes s as version s->journal_version + 1; on success the version is
 * advanced.  Fires the failpoint "Journal.<version>" after the write. */
shale_status journal_save(shale_objstore *st, split_state *s);

/* Loads the newest version of every journal under splits/ and calls fn for
 * each.  rc is SHALE_OK with a decoded state (the callee owns it), or the
 * reason it could not be had with state NULL and the message in
 * shale_errmsg(): SHALE_CORRUPT / SHALE_UNSUPPORTED (the journal is bad:
 * it stays in place for an operator) or any other code (it could not be
 * read now: try again).  Returns an error only when the list fails. */
typedef void (*journal_fn)(void *ctx, const char *name, uint64_t version, shale_status rc,
                           split_state *state);
shale_status journal_load_all(shale_objstore *st, journal_fn fn, void *ctx);

/* The newest version of one split's journal: SHALE_NOT_FOUND if it has
 * none, else as journal_fn's rc.  *version is the newest version's number
 * even when it does not decode. */
shale_status journal_load(shale_objstore *st, const char *name, uint64_t *version,
                          split_state **out);
/* journal_load() that first asks for version 1 alone (a HEAD): a split
 * not journalled, the usual case at a submit, costs that one request and
 * no LIST; one that is journalled is then listed and read as by
 * journal_load() (a round trip more).  Sound because every journal starts
 * at version 1 and none of its versions is ever deleted. */
shale_status journal_load_if_any(shale_objstore *st, const char *name, uint64_t *version,
                                 split_state **out);

/* Writes the "cleared by an operator" record for a split whose newest
 * journal is bad (or that failed after the point of no return): version
 * newest + 1, phase Failed, reason ClearedByOperator.  SHALE_CONFLICT if the
 * newest version decodes and is not terminal (a live split is not cleared). */
shale_status journal_clear(shale_objstore *st, const char *name, int64_t now_ms);

/* Current time as RFC 3339 UTC with milliseconds, into buf (>= 32). */
void journal_now(char *buf, size_t n);
/* ms since the epoch as RFC 3339 UTC with milliseconds (>= 32 bytes). */
void journal_format_time(int64_t ms, char *buf, size_t n);

#endif
