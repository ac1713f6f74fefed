/*
 * shard_facts.h -- what the agent tells about its own shard, so that a
 * controller can decide when and where to split (docs/agent-http.md
 * "Shard facts"):
 *
 *   - the figures of shale_shard_info_get() for the agent's store (bytes,
 *     key + value bytes, approximate keys, SSTs, L0 and sorted runs, data
 *     blocks, WAL position, visible range), from the SSTs' indexes and
 *     properties (no data block is read; the memtable and the WAL are not
 *     counted: flushed writes only);
 *   - whether a split holds the shard (the split lease, lease.h: its
 *     holder's name);
 *   - balanced split points (shale_split_points_get()).
 *
 * Every function reads the store (a LIST, the manifest, two ranged GETs
 * per SST, the lease records): call them from an API request or from the
 * background refresher (http_ready.h), never from a probe or /metrics.
 *
 * Thread safety: reentrant; reads only the splitter's fixed settings.
 */
#ifndef SHALE_AGENT_SHARD_FACTS_H
#define SHALE_AGENT_SHARD_FACTS_H

#include <stdbool.h>
#include <stdint.h>
#include "shale_admin.h"
#include "splitter.h"

typedef struct shard_facts {
    shale_shard_info info;       /* clear with shard_facts_clear() */
    bool split_held;
    char holder[256];            /* the split holding the lease ("" when none) */
} shard_facts;

/* Reads the figures and the lease.  On failure *out holds nothing to
 * clear and shale_errmsg() says which read failed. */
shale_status shard_facts_read(splitter *sp, shard_facts *out);
void shard_facts_clear(shard_facts *f);

/* The /v1/shard document (malloc'd JSON; docs/agent-http.md). */
char *shard_facts_json(splitter *sp, const shard_facts *f);

/* The /v1/shard/split-points document for ways (2..1024) and by:
 * {"ways", "by", "boundaries": [escaped keys], "weights", "total"}.
 * SHALE_INVALID_ARGUMENT when the shard is too small for that many ways. */
shale_status shard_split_points_json(splitter *sp, uint32_t ways, shale_split_by by,
                                     char **out);

#endif
