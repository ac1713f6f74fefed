/*
 * source_local.h -- the local-directory request source (the embedded
 * default, no cluster needed):
 *
 *   <dir>/requests/<file>.yaml|.yml|.json   split requests (YAML or JSON)
 *   <dir>/requests/<name>.cancel            abort split <name>
 *   <dir>/status/<name>.json                status, rewritten atomically
 *                                           (temp + fsync + rename) on every
 *                                           change
 *
 * A file is (re)submitted when it appears or its size/mtime change; the
 * same content again is a no-op by the service's rules.  A file that does
 * not parse or validate gets status/<file name>.json with phase Failed and
 * the reason, and is not retried until it changes.
 */
#ifndef SHALE_AGENT_SOURCE_LOCAL_H
#define SHALE_AGENT_SOURCE_LOCAL_H

#include <stdint.h>
#include "service.h"

typedef struct source_local source_local;

/* Creates requests/ and status/ under dir.  svc is borrowed. */
shale_status source_local_new(const char *dir, uint32_t poll_ms, split_service *svc,
                              source_local **out);
/* Starts the polling thread. */
shale_status source_local_start(source_local *s);
/* One scan of requests/ (also what the thread does each poll). */
void source_local_scan_once(source_local *s);
/* Status listener to register with the splitter (ctx = the source). */
void source_local_on_status(void *ctx, const char *name, const char *status_json);
void source_local_free(source_local *s);   /* stops the thread; NULL ok */

#endif
