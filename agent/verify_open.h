/*
 * verify_open.h -- Verify's SST opens, all at once, before its windows.
 *
 * A window's scan opens the SSTs of its levels one after the other as it
 * seeks (footer, then metadata: two round trips each on S3), and a window
 * that crosses from one SST of a run into the next opens that one too.
 * verify_open_ssts() opens every SST each reader will touch (the parent's
 * reader: every SST of the version the split's checkpoint pins; a child's:
 * every SST its manifest references) on a pool sized for the store, so the
 * opens cost two round trips whatever the number of SSTs and children.
 * The same SSTs are opened either way (each window touches every level it
 * overlaps), so this reads no more bytes; each reader's table cache keeps
 * them for the windows (reader_open_sst, engine/db/view.h).
 *
 * Thread safety: the readers may be used by other threads meanwhile.
 */
#ifndef SHALE_AGENT_VERIFY_OPEN_H
#define SHALE_AGENT_VERIFY_OPEN_H

#include <stddef.h>
#include "shale.h"
#include "shale_admin.h"

/* Opens in parent every SST of pinned, and in children[i] every SST of
 * cms[i] (all borrowed).  The first failure is returned (the caller may go
 * on: a window opens what it needs itself). */
shale_status verify_open_ssts(shale_reader *parent, const shale_manifest_view *pinned,
                              shale_reader *const *children, const shale_manifest_view *const *cms,
                              size_t n);

#endif
