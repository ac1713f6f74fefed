/*
 * split_auto.h -- the boundaries of a split request that leaves them to
 * the agent (request.h: children without ranges).
 *
 * At accept, before the lease is taken and before journal version 1 (so
 * before anything is touched; a dry run too), the splitter asks the
 * parent's SST block indexes for balanced split points
 * (shale_split_points_get(), shale_admin.h: by key + value bytes, or by
 * keys with splitBy: keys; no data block is read) over the parent's
 * visible range, and gives child i the range [boundary i-1, boundary i):
 * children[0] starts where the parent starts, the last child ends where it
 * ends.  The filled request is validated like one that came with ranges
 * and journalled with them ("rangesComputed": true), so a resume reads
 * them from the journal and never computes them again.
 *
 * What is counted is the parent's SSTs at that moment: writes still in the
 * memtable or the WAL (flushed later, by the FullFlush step) are not, so
 * a shard that took many writes just before the split may come out less
 * balanced than the SSTs say (docs/agent.md "Requests without ranges").
 *
 * Thread safety: reentrant; reads the parent's store only.
 */
#ifndef SHALE_AGENT_SPLIT_AUTO_H
#define SHALE_AGENT_SPLIT_AUTO_H

#include "request.h"
#include "shale.h"

/* Fills r's ranges (r->ranges_auto, not yet computed) from the split
 * points of the store at uri (opts: its options; may be NULL), then
 * validates r as split_request_validate() does with the parent's range.
 * A no-op for a request with ranges.  SHALE_INVALID_ARGUMENT "split
 * request: field 'children': ..." when the shard is too small for that
 * many children (or empty); store errors as the store reported them (the
 * caller may retry).  On failure r is unchanged. */
shale_status split_auto_fill(split_request *r, const char *uri, const shale_options *opts,
                             const char *agent_shard, const char *agent_store,
                             const char *agent_wal_store);

#endif
