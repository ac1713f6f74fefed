/*
 * verify.h -- what the Verify step's two files share (docs/agent.md
 * "Verify"): verify.c runs the step (both modes, the references checks),
 * verify_full.c the full mode's walk in bounded memory.
 *
 * Memory (docs/agent.md "Verify's memory"): every reader Verify opens uses
 * one block cache (splitter_options.verify_cache_bytes); full mode walks
 * the children's ranges in pieces of about verify_piece_bytes of the
 * parent's SSTs, each with readers of its own (so the SST indexes and
 * filters a reader keeps are those of one piece, not of the shard), on at
 * most verify_threads threads, fewer when the pieces' estimated metadata
 * would pass verify_meta_bytes.  The defaults are below.
 *
 * Thread safety: verify_compare may run on many threads at once (readers
 * are thread-safe); verify_full_walk is called by the splitter's worker.
 */
#ifndef SHALE_AGENT_VERIFY_H
#define SHALE_AGENT_VERIFY_H

#include "splitter_int.h"
#include "shale_admin.h"

#include <stdbool.h>
#include <stdint.h>

/* Defaults of splitter_options' verify_* limits (0 there picks these). */

/* The block cache every Verify reader shares.  A child's SSTs are the
 * parent's own objects and full mode steps the two scans in lockstep, so
 * the child finds the block the parent decoded a moment before: the cache
 * only has to hold the blocks the walkers have in hand, not the shard. */
#define VERIFY_CACHE_BYTES (8u << 20)
/* Full mode: a piece of a child's range spans about this many bytes of the
 * parent's largest sorted run (cut at its SST boundaries). */
#define VERIFY_PIECE_BYTES (64ull << 20)
/* Full mode: pieces walked at once, at most.  Each holds two readers' SST
 * metadata for its piece (the SSTs that overlap it: in every sorted run
 * about one VERIFY_PIECE_BYTES, and all of L0) and a readahead window (1
 * MiB) per level it reads; fewer walk at once when the pieces' estimated
 * metadata would exceed VERIFY_META_BUDGET or their windows
 * VERIFY_READAHEAD_BUDGET.  8: a store's requests are round trips, so
 * pieces walked at once cost one walk's time (8 children: one piece
 * each, one round of walks instead of two). */
#define VERIFY_FULL_THREADS 8
#define VERIFY_META_BUDGET (64ull << 20)
/* Full mode: the walkers' readahead windows, at most (1 MiB per level a
 * walker reads: fewer walk at once when the parent has many levels). */
#define VERIFY_READAHEAD_BUDGET (16ull << 20)
#define VERIFY_MAX_THREADS 64      /* verify_threads above this is this */

/* Names a key in a message: the manifest's escaped form in quotes, cut
 * short. */
void verify_key_text(const void *k, size_t kl, char *out, size_t outlen);

/* Walks the parent's range [max(from, c->start), min(to, c->end)) at the
 * checkpoint and the child's [from, to) side by side (NULL from/to: the
 * child's own start/end, so a child serving a key outside its range fails
 * here), for at most `limit` keys (0: to the end): every key and every
 * value must be equal.  A difference is SHALE_CORRUPT naming the child and
 * the key; a read error is returned as it is, naming the child.
 * concurrent: the two scans are opened at once (the child's on a thread of
 * its own).  *count receives the equal keys seen. */
shale_status verify_compare(shale_reader *parent, shale_reader *child, const split_child *c,
                            const void *from, size_t from_len, const void *to, size_t to_len,
                            uint64_t limit, bool concurrent, uint64_t *count);

/* Full mode: every child's range against the parent's (pinned: the
 * parent's version at the split's checkpoint, borrowed), walked in pieces
 * with readers of their own that use `cache` (borrowed), the parent's read
 * at pinned's version by id and child i's at child_ids[i] (its latest
 * version as the caller found it; 0 or child_ids NULL: opened at its
 * latest, a LIST and a GET; borrowed).  keys[i] receives child i's key
 * count, *pieces and *walkers how it was walked (for the
 * step's message).  A mismatch is reported before any other error. */
shale_status verify_full_walk(run *r, shale_cache *cache, const shale_manifest_view *pinned,
                              const uint64_t *child_ids, uint64_t *keys, size_t *pieces,
                              size_t *walkers);

#endif
