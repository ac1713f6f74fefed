/*
 * config.h -- the agent's configuration: one YAML file (docs/agent-config.md)
 * plus command-line overrides (--set key=value, dotted keys).
 *
 *   shard: orders-0                          # required
 *   store: {uri: "file:///data/orders-0", walUri: "file:///wal"}  # uri required
 *   s3: {endpoint: "", region: "", pathStyle: auto}   # credentials: env only
 *   sources:
 *     local: {enabled: true, dir: "/var/lib/shale/splits", pollMs: 200}
 *     http: {enabled: true, listen: "127.0.0.1:8080", tokenFile: "",
 *            maxBodyBytes: 1048576}
 *     kubernetes: {enabled: false, namespace: "", labelSelector: "",
 *                  kubeconfig: "", insecureSkipTlsVerify: false}
 *   logLevel: info                           # debug | info | warn | error
 *   timeouts: {stepSeconds: 600}
 *   verify: {mode: full}                     # full | references: for requests naming none
 *
 * Every error names the file, line and column and what was wrong; unknown
 * keys are errors (a typo must not silently fall back to a default).
 */
#ifndef SHALE_AGENT_CONFIG_H
#define SHALE_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include "shale_status.h"

typedef struct agent_config {
    char *shard;
    char *store_uri;
    char *wal_uri;                 /* NULL: WAL in the main store */
    char *s3_endpoint, *s3_region;
    int s3_path_style;             /* -1 auto, 0, 1 */
    uint32_t s3_timeout_seconds;   /* 0: the store default (deadline_ms) */
    bool local_enabled;
    char *local_dir;
    uint32_t local_poll_ms;
    bool http_enabled;
    char *http_listen;             /* "host:port" */
    char *http_token_file;         /* NULL: no auth */
    uint64_t http_max_body;
    bool kube_enabled;
    char *kube_namespace, *kube_selector, *kubeconfig;
    bool kube_insecure;
    int log_level;                 /* 0 debug .. 3 error */
    uint32_t step_seconds;
    int verify_mode;               /* split_verify (request.h); default full */
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

#endif
