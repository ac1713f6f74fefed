/*
 * split_status.h -- the status document of service.h, rendered from a
 * split_state at the edge (what listeners, GET /v1/splits/<name> and the
 * status files deliver).  The journal's own encoding is journal.c's.
 *
 * Thread safety: plain functions.
 */
#ifndef SHALE_AGENT_SPLIT_STATUS_H
#define SHALE_AGENT_SPLIT_STATUS_H

#include <jansson.h>
#include "split_state.h"

/* The status object (new reference), NULL on out of memory. */
json_t *split_status_json(const split_state *s);
/* The same as indented text (malloc'd), NULL on out of memory. */
char *split_status_text(const split_state *s);

#endif
