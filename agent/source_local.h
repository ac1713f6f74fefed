/*
 * source_local.h -- the local-directory request source (the embedded
 * default, no cluster needed):
 *
 *   <dir>/requests/<file>.yaml|.yml|.json   split requests (YAML or JSON)
 *   <dir>/requests/<name>.cancel            abort split <name>
 *   <dir>/status/<name>.json                the status of split <name>, from
 *                                           the splitter only
 *   <dir>/errors/<file>.json                why requests/<file> was not taken
 *
 * Trust (docs/security.md "Local request directory"): whoever can write
 * requests/ can split and abort this shard, so at start the directory and
 * its three subdirectories must be owned by the agent's user or root, and
 * writable by nobody else: world-writable (o+w, sticky or not) is refused,
 * group-writable only when the group is one the agent runs with (its
 * effective or a supplementary group, e.g. a pod's fsGroup).  The
 * subdirectories are opened once, without following symlinks, and every
 * file is reached beneath those descriptors (openat/fstatat/renameat, no
 * path concatenation); request files must be regular files opened with
 * O_NOFOLLOW (a symlink is refused), named <split-name rules>.<ext>.
 *
 * Status and error files are written atomically: a hidden temporary in the
 * same directory, fsync, renameat over the old one, fsync of the directory.
 * A request file that cannot be taken (unreadable, not parsed, invalid,
 * refused) gets errors/<file>.json and a log line, never a status/ file:
 * status/<name>.json belongs to the split <name> alone, so a garbage file
 * named like a finished split cannot overwrite its status.  The error file
 * goes when the request file is taken or removed (also across restarts).
 *
 * A file is (re)submitted when it appears or its size/mtime change; the
 * same content again is a no-op by the service's rules.
 */
#ifndef SHALE_AGENT_SOURCE_LOCAL_H
#define SHALE_AGENT_SOURCE_LOCAL_H

#include <stdint.h>
#include "service.h"

typedef struct source_local source_local;

/* Creates dir and requests/, status/, errors/ under it (mode 0750) where
 * missing, opens them and checks who can write them.
 * SHALE_INVALID_ARGUMENT naming the directory and its mode or owner when
 * others can write it, or a subdirectory is a symlink.  svc is borrowed. */
shale_status source_local_new(const char *dir, uint32_t poll_ms, split_service *svc,
                              source_local **out);
/* Starts the polling thread. */
shale_status source_local_start(source_local *s);
/* One scan of requests/ (also what the thread does each poll). */
void source_local_scan_once(source_local *s);
/* Status listener to register with the splitter (ctx = the source).  A
 * name that breaks the split-name rules is logged, never written. */
void source_local_on_status(void *ctx, const char *name, const char *status_json);
void source_local_free(source_local *s);   /* stops the thread; NULL ok */

#endif
