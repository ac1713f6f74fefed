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
 *   splitBy: bytes                  # optional, only without ranges: bytes | keys
 *
 * Ranges are all given or all left out: without them the agent computes
 * balanced boundaries when it accepts the split (split_auto.h), fills the
 * children's ranges in that order (children[0] lowest) and journals the
 * request with them and "rangesComputed": true (the only form in which a
 * request may carry that field: a journal's, re-read at resume).  Some
 * children with a range and others without is refused, naming the field.
 *
 * Range bounds are strings; bytes outside printable ASCII are written %XX
 * (the manifest's key escaping, so '%' itself is %25).  Validation: the
 * children's ranges are non-empty, do not overlap and together cover the
 * parent's range exactly; names and stores are distinct; no child store
 * equals the parent's store; every URI has a known scheme.
 *
 * Stores (split_request_check_stores(), request_check.c) are compared by
 * canonical identity, never by spelling (shale_admin.h): the parent is the
 * agent's own -- a request naming parent.store or parent.walStore must name
 * the same stores as the agent's configuration, or it is refused; every
 * child store (and child WAL store) has an allowed scheme, lies under an
 * allowed prefix when an allowlist is configured, is apart from the
 * parent's store and WAL store (not the same, not inside, not containing)
 * and from the other children's stores, and -- for a new split
 * (split_request_check_children_empty()) -- holds no database, WAL or other
 * split's claim.  docs/agent.md "Validation of the stores" lists the rules.
 *
 * Thread safety: plain data; functions are reentrant.
 */
#ifndef SHALE_AGENT_REQUEST_H
#define SHALE_AGENT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale.h"
#include "shale_admin.h"

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
    /* The children came without ranges: the agent computes them
     * (split_auto.h).  ranges_computed: they have been (the ranges are
     * filled in and validated; from a journal, or after the accept). */
    bool ranges_auto, ranges_computed;
    shale_split_by split_by;      /* for ranges_auto; default bytes */
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
 * A request whose ranges are still to be computed (ranges_auto and not
 * ranges_computed) is validated without its ranges (coverage is checked
 * again once they are filled in).
 * parent_start/end: the parent's own visible range (NULL = unbounded).
 * SHALE_INVALID_ARGUMENT naming the field and the reason. */
shale_status split_request_validate(split_request *r, const char *agent_shard,
                                    const char *agent_store, const char *agent_wal_store,
                                    const uint8_t *parent_start, size_t parent_start_len,
                                    const uint8_t *parent_end, size_t parent_end_len);

/* Canonical JSON of the request (stable: used to tell "same request again"
 * from "same name, different content").  malloc'd. */
shale_status split_request_to_json(const split_request *r, char **json);

/* Which child stores requests may name (docs/agent-config.md "requests").
 * Strings borrowed: they must outlive every use of the policy (the
 * splitter keeps the pointer it was given for its whole life). */
typedef struct split_policy {
    bool allow_file;                    /* file:// (default true) */
    bool allow_s3;                      /* s3:// (default true) */
    bool allow_test_schemes;            /* mem:// and fault+<uri>: tests only
                                           (testing.allowTestSchemes; default false) */
    const char *const *child_prefixes;  /* NULL-terminated allowlist of store
                                           prefixes, compared canonically;
                                           NULL: any store */
} split_policy;

/* file and s3 allowed, no test schemes, no allowlist. */
void split_policy_init(split_policy *p);

/* The store checks above, run for every source before a split is accepted
 * and before anything is touched (it reads the file system and the stores'
 * identity objects, and writes nothing).  Afterwards r->parent_store and
 * r->parent_wal_store are the agent's own URIs (replaced or filled in).
 * agent_wal_store NULL: the agent's WAL is in its main store.  opts: the
 * agent's store options (S3 endpoint).  SHALE_INVALID_ARGUMENT "split
 * request: field 'children[1].store': ..." naming the field and why; a
 * store that cannot be read now is its own code (SHALE_IO, ...), so the
 * caller may retry. */
shale_status split_request_check_stores(split_request *r, const split_policy *p,
                                        const char *agent_store, const char *agent_wal_store,
                                        const shale_options *opts);

/* What split_request_check_stores_facts() found besides its verdict. */
typedef struct split_store_facts {
    bool check_empty;        /* in: check the children's emptiness too */
    bool parent_has_id;      /* out: the parent's store has an identity, */
    char parent_uuid[37];    /* ... this one */
    shale_status empty_rc;   /* out: split_request_check_children_empty()'s */
    char empty_msg[512];     /*      answer and message (SHALE_OK: empty) */
} split_store_facts;

/* split_request_check_stores() whose identity reads go out beside the
 * children's emptiness checks (facts->check_empty), one round trip
 * instead of two; the emptiness verdict is returned apart, in facts, so
 * that the caller reports it after the request's other errors, as when
 * the two ran one after the other.  Also tells the parent's identity (the
 * submit ties what it knows of the parent to it).  facts NULL:
 * split_request_check_stores(). */
shale_status split_request_check_stores_facts(split_request *r, const split_policy *p,
                                              const char *agent_store,
                                              const char *agent_wal_store,
                                              const shale_options *opts,
                                              split_store_facts *facts);

/* The children's stores are empty: no database, no WAL, no other split's
 * claim, no other object -- or claimed by this very split (so it is for a
 * new split; the same request again is recognised by name before this).
 * Reads only.  Errors as split_request_check_stores(). */
shale_status split_request_check_children_empty(const split_request *r,
                                                const shale_options *opts);

/* The owner string a split's claim of child i's stores carries ("split
 * <name> child <child> of <parent's canonical URI>"): the same for every
 * run of one split, so a resumed pre-flight finds its own claim.  *out is
 * malloc'd. */
shale_status split_request_claim_owner(const split_request *r, size_t i,
                                       const shale_options *opts, char **out);

/* Does an offered canonical request mean the same as a journalled one?
 * Equal JSON; or the offered one leaves the ranges to the agent and the
 * journalled one is that request with its ranges computed (ranges,
 * whatever they came to, aside).  Both as split_request_to_json() gives. */
bool split_request_json_same(const char *journalled, const char *offered);

/* "bytes" / "keys"; and the value a name means, or -1. */
const char *split_by_name(shale_split_by by);
int split_by_parse(const char *name);

split_request *split_request_dup(const split_request *r);
void split_request_free(split_request *r);

#endif
