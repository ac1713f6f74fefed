/*
 * request.h -- a split request: parse (YAML or JSON) and validate.
 *
 * The same shape arrives from every source (docs/agent.md "Request"):
 *
 *   name: orders-split-1            # unique per shard; [a-z0-9]([-a-z0-9.]*[a-z0-9])?, <= 63
 *   parent:
 *     shard: orders-0               # must equal the agent's shard
 *     store: file:///data/orders-0  # optional: defaults to the agent's store
 *     walStore: file:///wal         # optional: defaults to the agent's WAL store
 *   children:                       # two or more
 *     - name: orders-0a
 *       store: file:///data/orders-0a
 *       walStore: file:///wal-0a    # optional
 *       range: {start: "", end: "m"}   # [start, end); "" = unbounded
 *     - name: orders-0b
 *       store: file:///data/orders-0b
 *       range: {start: "m", end: ""}
 *   dryRun: false
 *   abort: false
 *   verify: full                    # optional: full | references (the agent's default)
 *
 * Range bounds are strings; bytes outside printable ASCII are written %XX
 * (the manifest's key escaping, so '%' itself is %25).  Validation: the
 * children's ranges are non-empty, do not overlap and together cover the
 * parent's range exactly; names and stores are distinct; no child store
 * equals the parent's store; every URI has a known scheme.
 *
 * Thread safety: plain data; functions are reentrant.
 */
#ifndef SHALE_AGENT_REQUEST_H
#define SHALE_AGENT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"

typedef struct split_child {
    char *name;
    char *store;
    char *wal_store;         /* NULL: WAL in the child's main store */
    uint8_t *start; size_t start_len;   /* NULL/0: unbounded */
    uint8_t *end;   size_t end_len;     /* NULL/0: unbounded */
} split_child;

/* How Verify checks the children (docs/agent.md "Verify"). */
typedef enum split_verify {
    SPLIT_VERIFY_DEFAULT = 0,     /* not named in the request: the agent's */
    SPLIT_VERIFY_FULL,            /* every key and value against the parent */
    SPLIT_VERIFY_REFERENCES       /* manifests, objects and sampled reads */
} split_verify;

/* "full" / "references" ("default" for SPLIT_VERIFY_DEFAULT). */
const char *split_verify_name(split_verify v);
/* The mode a name means; -1 for any other text. */
int split_verify_parse(const char *name);

typedef struct split_request {
    char *name;
    char *parent_shard;
    char *parent_store;      /* NULL: the agent's configured store */
    char *parent_wal_store;  /* NULL: the agent's configured WAL store */
    split_child *children;
    size_t child_count;
    bool dry_run;
    bool abort;
    split_verify verify;
} split_request;

/* Parses a request document.  Content sniffing: a body whose first
 * non-space byte is '{' is JSON (jansson), anything else YAML (libyaml).
 * origin names the source in messages ("requests/x.yaml", "HTTP body").
 * SHALE_INVALID_ARGUMENT with "origin: line L column C: ..." for syntax
 * errors and "origin: field 'children[1].range.end': ..." for bad fields.
 * *out is malloc'd; free with split_request_free(). */
shale_status split_request_parse(const char *origin, const char *text, size_t len,
                                 split_request **out);

/* Fills defaults (parent store/WAL store from the agent) and validates.
 * parent_start/end: the parent's own visible range (NULL = unbounded).
 * SHALE_INVALID_ARGUMENT naming the field and the reason. */
shale_status split_request_validate(split_request *r, const char *agent_shard,
                                    const char *agent_store, const char *agent_wal_store,
                                    const uint8_t *parent_start, size_t parent_start_len,
                                    const uint8_t *parent_end, size_t parent_end_len);

/* Canonical JSON of the request (stable: used to tell "same request again"
 * from "same name, different content").  malloc'd. */
shale_status split_request_to_json(const split_request *r, char **json);

split_request *split_request_dup(const split_request *r);
void split_request_free(split_request *r);

#endif
