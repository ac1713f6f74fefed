/*
 * checkpoint_int.h -- checkpoint records in a store's manifest, for the
 * public checkpoint calls, clones (which pin their parents) and GC.
 *
 * A checkpoint is a record in the manifest that pins one manifest version:
 * GC keeps that version, every SST it names and the WAL ids it still needs.
 * A checkpoint is added in the same manifest write that becomes the version
 * it pins (manifest_id = the new version's id), so the pinned state is
 * exactly the state the checkpoint was taken on.
 */
#ifndef SHALE_CHECKPOINT_INT_H
#define SHALE_CHECKPOINT_INT_H

#include "shale.h"
#include "db/manifest.h"

/* Adds a checkpoint to the latest manifest of store s.  id: a fixed id (for
 * a clone's pin, so a retry is idempotent: an existing record with that id
 * is kept and returned) or NULL for a new UUID.  lifetime_ms 0 = never
 * expires.  min_next_wal: raise next_wal_sst_id to at least this (a
 * writer's durable WAL position), 0 = leave.  On success *out describes it
 * (out may be NULL). */
shale_status cp_add(shale_objstore *s, const char *id, uint64_t lifetime_ms,
                    const char *name, uint64_t min_next_wal, shale_checkpoint *out);

/* The first WAL id at or above `from` that the WAL store w does not hold:
 * where the durable WAL ends when no writer says so (a Durable checkpoint
 * made from outside the writer covers every WAL SST written since the last
 * manifest update: acknowledged writes may live only there). */
shale_status cp_first_missing_wal(shale_objstore *w, uint64_t from, uint64_t *out);

/* Like cp_add, but pins an existing manifest version (pin_id) instead of
 * the version the write creates: a clone pins exactly the parent version
 * whose SSTs it references. */
shale_status cp_add_pin(shale_objstore *s, const char *id, uint64_t pin_id,
                        const char *name, shale_checkpoint *out);

/* One pin of a batch: checkpoint id (fixed, no expiry) named name. */
typedef struct cp_pin_req {
    const char *id;
    const char *name;
} cp_pin_req;

/* Adds every pin of reqs not yet in the latest manifest of s, all on the
 * version that checkpoint src_id pins, in ONE manifest write (none when
 * all exist: a repeat is idempotent).  SHALE_NOT_FOUND when a pin is
 * missing and src_id is gone too.  A batch of clones from one checkpoint
 * pins its parent with this instead of a write per clone.  base: the
 * latest version as the caller read it (NULL: read here); the write goes
 * on it, and a newer version found by the conditional write is re-read
 * and the pins applied to it (manifest_store_update). */
shale_status cp_add_pins(shale_objstore *s, const char *src_id, const cp_pin_req *reqs,
                         size_t n, const manifest *base);

/* Removes checkpoint id from the latest manifest.  SHALE_NOT_FOUND if no
 * such checkpoint (missing_ok makes that SHALE_OK). */
shale_status cp_remove(shale_objstore *s, const char *id, bool missing_ok);
/* cp_remove() on base, the latest version as the caller read it (NULL:
 * read here): the write goes on it, and a newer version found by the
 * conditional write is re-read and the removal applied to it, as
 * cp_add_pins() does.  A caller that holds the latest version saves the
 * LIST and the GET (two round trips on S3). */
shale_status cp_remove_on(shale_objstore *s, const char *id, bool missing_ok,
                          const manifest *base);

/* Finds a checkpoint record by id in m; NULL if absent. */
const checkpoint_rec *cp_find(const manifest *m, const char *id);

/* Fills a public checkpoint description from a record and the manifest
 * version it pins (pinned may be NULL: WAL fields left 0). */
void cp_describe(const checkpoint_rec *r, const manifest *pinned, shale_checkpoint *out);

#endif
