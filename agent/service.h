/*
 * service.h -- the seam between request sources and the split engine.
 *
 * Request sources (local directory, HTTP, Kubernetes) turn what users send
 * into a split_request (request.h) and call these functions; the splitter
 * (splitter.c: the journaled state machine) implements them.  Sources never
 * touch stores themselves.  Status is always the same JSON document shape
 * (docs/agent.md "Status"), so every source reports the same thing:
 *
 *   { "name": "...", "uid": "...", "phase": "Pending|Accepted|Fencing|
 *     Flushing|WipingWAL|Cloning|Verifying|Completing|Stalled|Complete|
 *     Failed|Aborted",
 *     "dryRun": false, "message": "...", "reason": "...",
 *     "checkpointId": "...", "startTime": "RFC3339", "completionTime": "...",
 *     "steps": [ {"name": "Fence", "state": "Done|Running|Pending|Failed",
 *                 "startTime": "...", "endTime": "...", "message": "...",
 *                 "objectsCopied": n, "bytesCopied": n } ],
 *     "children": [ {"name": "...", "store": "...", "manifestId": n,
 *                    "keyCount": n, "sstsReferenced": n, "walSstsCopied": n} ],
 *     "plan": { ... dry-run plan ... },
 *     "stalled": {"step": "...", "error": "...", "retries": n,
 *                 "nextRetryTime": "RFC3339"},       (only while Stalled)
 *     "lease": {"state": "Held|Released|None", "record": "...", "seq": n} }
 *
 * The document is rendered from the typed state by split_status.c.  A
 * refused request is SHALE_CONFLICT with the split holding the lease named
 * in shale_errmsg(); journals that cannot be read yet refuse with
 * SHALE_RETRYABLE.
 *
 * Thread safety: every function may be called from any thread; the
 * implementation serialises what it must.
 */
#ifndef SHALE_AGENT_SERVICE_H
#define SHALE_AGENT_SERVICE_H

#include <stdbool.h>
#include "shale_status.h"
#include "request.h"

typedef struct split_service split_service;

typedef struct split_service_ops {
    /* Accepts a validated request.  Same name and same content as an
     * existing split: *created = false and its status (no-op).  Same name,
     * different content, or another split of this shard still running:
     * SHALE_CONFLICT with the reason in shale_errmsg().  On success
     * *status_json is the current status (malloc'd, shale_free()). */
    shale_status (*submit)(split_service *s, const split_request *req, bool *created,
                           char **status_json);
    /* Status of one split by name; SHALE_NOT_FOUND if unknown. */
    shale_status (*get)(split_service *s, const char *name, char **status_json);
    /* JSON array of every known split's status. */
    shale_status (*list)(split_service *s, char **json_array);
    /* Requests an abort.  SHALE_CONFLICT (with the reason) once the split
     * passed the point of no return (WipingWAL) or finished. */
    shale_status (*abort)(split_service *s, const char *name, char **status_json);
    /* True once the shard's stores answered (for /readyz). */
    bool (*ready)(split_service *s);
} split_service_ops;

struct split_service {
    const split_service_ops *ops;
};

/* A source may register to hear about every status change (to write a
 * status file or patch a Kubernetes object).  Called from the splitter's
 * thread with the new status document (borrowed for the call). */
typedef void (*split_status_cb)(void *ctx, const char *name, const char *status_json);

#endif
