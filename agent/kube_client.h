/*
 * kube_client.h -- the Kubernetes API client of the agent: where the API
 * server is, how to authenticate, and one request (or one watch stream) at
 * a time over libcurl.  It knows nothing about ShardSplits.
 *
 * Configuration comes from a kubeconfig (server, certificate-authority or
 * certificate-authority-data, token or tokenFile, client-certificate[-data]
 * with client-key[-data], insecure-skip-tls-verify, the context's
 * namespace) or, without one, from the pod's service account:
 * KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT (an IPv6 host is
 * bracketed: https://[fd00::1]:443) and the files token, ca.crt and
 * namespace under /var/run/secrets/kubernetes.io/serviceaccount.  The
 * environment variable SHALE_KUBE_SA_DIR replaces that directory: it is a
 * test-only override (tests/integration/kube_kubectl.sh runs the in-cluster
 * path with it) and is logged when used.
 *
 * A token file is read again before every request: projected service
 * account tokens rotate (about hourly) and the old one stops working.  TLS
 * is verified against the cluster CA unless insecure is set (a warning is
 * logged by the caller).  Tokens and keys are never logged.
 *
 * Thread safety: after kube_client_new, every function may be called from
 * any thread at the same time (each request uses its own curl handle).
 */
#ifndef SHALE_AGENT_KUBE_CLIENT_H
#define SHALE_AGENT_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"
#include "agent_util.h"

typedef struct kube_client kube_client;

#define KUBE_SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

/* kubeconfig: path or NULL for the in-cluster service account.
 * ns: the namespace to use, or NULL/"" for the kubeconfig's context or the
 * service account's namespace file ("default" if neither names one).
 * Errors name the file and the field. */
shale_status kube_client_new(const char *kubeconfig, const char *ns, bool insecure,
                             kube_client **out);
void kube_client_free(kube_client *c);   /* NULL ok */

const char *kube_client_namespace(const kube_client *c);
const char *kube_client_server(const kube_client *c);
bool kube_client_insecure(const kube_client *c);
/* Requests sent so far (every answer or failure counts once). */
uint64_t kube_client_requests(const kube_client *c);

/* Names the shard in the User-Agent ("shale-agent/0.1.0 (shard orders-0)"),
 * so audit logs and request counters tell agents apart.  Call before
 * sharing the client between threads. */
void kube_client_set_shard(kube_client *c, const char *shard);

/* Aborts requests in flight and refuses new ones (SHALE_CLOSED): for
 * shutdown, so no thread waits out a watch. */
void kube_client_cancel(kube_client *c);

/* The API server URL for an in-cluster host and port: "https://h:p", with
 * an IPv6 literal in brackets.  *out malloc'd.  SHALE_INVALID_ARGUMENT for
 * an empty host or a port that is not 1-65535. */
shale_status kube_in_cluster_url(const char *host, const char *port, char **out);

/* One answer.  body is always NUL-terminated (body.data may be printed as
 * a string once the request returned; "" if there was none). */
typedef struct kube_resp {
    long status;            /* HTTP status; 0 if no answer */
    uint32_t retry_after_s; /* Retry-After of a 429/503 answer, else 0 */
    agent_buf body;
} kube_resp;

#define KUBE_RESP_INIT {0, 0, AGENT_BUF_INIT}
void kube_resp_free(kube_resp *r);
/* "HTTP 409 Conflict: the object has been modified" from a Status body,
 * bounded to n bytes; for logs and messages. */
void kube_resp_describe(const kube_resp *r, char *buf, size_t n);

/* Sends one request (path with query, relative to the server).  SHALE_OK
 * when an HTTP answer arrived, whatever its status (see r->status);
 * SHALE_IO (message naming the method, path and curl's reason) when none
 * did; SHALE_CLOSED after kube_client_cancel. */
shale_status kube_request(kube_client *c, const char *method, const char *path,
                          const char *body, const char *content_type, long timeout_s,
                          kube_resp *r);

/* A watch: a GET whose 200 answer is read as JSON lines, each handed to fn
 * as it arrives (line without its newline, not NUL-terminated).  fn
 * returns false to end the stream.  A non-200 answer is collected in
 * r->body instead.  Returns as kube_request does; a stream ended by fn or
 * by the server's timeout is SHALE_OK. */
typedef bool (*kube_line_fn)(void *ctx, const char *line, size_t len);
shale_status kube_stream(kube_client *c, const char *path, long timeout_s, kube_line_fn fn,
                         void *ctx, kube_resp *r);

/* URL-escapes s (for label selectors and names in queries); malloc'd. */
char *kube_escape(const char *s);

#endif
