/*
 * config.h -- the agent's configuration: one YAML file (docs/agent-config.md)
 * plus command-line overrides (--set key=value, dotted keys).
 *
 *   shard: orders-0                          # required
 *   store: {uri: "file:///data/orders-0", walUri: "file:///wal"}  # uri required
 *   s3: {endpoint: "", region: "", pathStyle: auto, caFile: ""}   # credentials: env only
 *   sources:
 *     local: {enabled: true, dir: "/var/lib/shale/splits", pollMs: 200}
 *     http: {enabled: true, listen: "127.0.0.1:8080", tokenFile: "", token: "",
 *            maxBodyBytes: 1048576, maxConnections: 32, timeoutSeconds: 30,
 *            allowedOrigins: [], readyCheckMs: 1000, readyTimeoutMs: 3000,
 *            probeListen: ""}
 *     kubernetes: {enabled: false, namespace: "", labelSelector: "",
 *                  kubeconfig: "", insecureSkipTlsVerify: false,
 *                  statusIntervalMs: 1000}
 *   logLevel: info                           # debug | info | warn | error
 *   timeouts: {stepSeconds: 600}
 *   verify: {mode: full,                     # full | references: for requests naming none
 *            cacheMiB: 8, pieceMiB: 64,      # Verify's memory (docs/agent.md)
 *            metadataMiB: 64, threads: 4}
 *   requests:
 *     allowSchemes: [file, s3]               # schemes requests may name for child stores
 *     childStorePrefixes: []                 # allowlist of child store prefixes; [] = any
 *   testing: {allowTestSchemes: false}       # also mem:// and fault+ child stores (tests)
 *
 * Every error names the file, line and column and what was wrong; unknown
 * keys are errors (a typo must not silently fall back to a default).
 * agent_config_check() fails closed on the HTTP API: listening beyond
 * loopback with neither token nor tokenFile is an error naming the setting.
 */
#ifndef SHALE_AGENT_CONFIG_H
#define SHALE_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"

/* Lists (a YAML sequence, or "a,b" with --set) are NULL-terminated arrays
 * of malloc'd strings; NULL when the key is not set. */

typedef struct agent_config {
    char *shard;
    char *store_uri;
    char *wal_uri;                 /* NULL: WAL in the main store */
    char *s3_endpoint, *s3_region;
    int s3_path_style;             /* -1 auto, 0, 1 */
    char *s3_ca_file;              /* PEM CA bundle for the S3 endpoint; NULL: AWS_CA_BUNDLE */
    uint32_t s3_timeout_seconds;   /* 0: the store default (deadline_ms) */
    bool local_enabled;
    char *local_dir;
    uint32_t local_poll_ms;
    bool http_enabled;
    char *http_listen;             /* "host:port" */
    char *http_token_file;         /* NULL: none; re-read when it changes */
    char *http_token;              /* inline token (tokenFile preferred); NULL: none */
    uint64_t http_max_body;
    uint32_t http_max_connections; /* concurrent connections (default 32) */
    uint32_t http_timeout_s;       /* idle and whole-request bound (default 30) */
    char **http_origins;           /* Origin values allowed, NULL-terminated
                                      (default NULL: none) */
    uint32_t http_ready_check_ms;  /* readiness check interval (default 1000) */
    uint32_t http_ready_timeout_ms;/* a check this slow means not ready (3000) */
    char *http_probe_listen;       /* NULL: probes on the API listener only */
    bool kube_enabled;
    char *kube_namespace, *kube_selector, *kubeconfig;
    bool kube_insecure;
    uint32_t kube_status_interval_ms;  /* least time between two status writes of one
                                          ShardSplit (final ones go at once) */
    int log_level;                 /* 0 debug .. 3 error */
    uint32_t step_seconds;
    int verify_mode;               /* split_verify (request.h); default full */
    uint32_t verify_cache_mib;     /* Verify's memory (docs/agent.md "Verify's */
    uint32_t verify_piece_mib;     /* memory"): 8, 64, 64 and 4 by default; */
    uint32_t verify_metadata_mib;  /* 0 = the default */
    uint32_t verify_threads;
    char **allow_schemes;          /* NULL-terminated; NULL: file and s3 */
    char **child_prefixes;         /* NULL-terminated; NULL or empty: any */
    bool testing_schemes;          /* testing.allowTestSchemes */
} agent_config;

/* Fills the documented defaults (no shard, no store). */
shale_status agent_config_defaults(agent_config *c);
/* Loads a YAML file over the current values.  Errors:
 * SHALE_INVALID_ARGUMENT "<path>:<line>:<column>: <what>". */
shale_status agent_config_load(agent_config *c, const char *path);
/* Applies "dotted.key=value" (as from --set). */
shale_status agent_config_set(agent_config *c, const char *assignment);
/* Checks required fields and consistency. */
shale_status agent_config_check(const agent_config *c);
void agent_config_free(agent_config *c);

/* The request policy the configuration describes (after
 * agent_config_check()).  p borrows c's strings: c must outlive it. */
struct split_policy;
void agent_config_policy(const agent_config *c, struct split_policy *p);

#endif
