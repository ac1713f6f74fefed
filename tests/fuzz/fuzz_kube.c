/*
 * fuzz_kube.c -- libFuzzer target for the Kubernetes source: the input is
 * split at the first NUL into a kubeconfig (YAML) and a watch stream (JSON
 * event lines).  The kubeconfig is loaded (credentials, CA, client cert);
 * the stream is fed through the same handling as a live watch (the watch
 * cache's line parser, then the reconcile of every object that changed,
 * on the calling thread), with a service that accepts everything and an
 * API server address that refuses connections at once (127.0.0.1:1), so
 * nothing leaves the machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "source_kube.h"

static shale_status f_submit(split_service *s, const split_request *r, bool *c, char **st)
{
    (void)s; (void)r;
    *c = false;
    *st = NULL;
    return SHALE_OK;
}
static shale_status f_get(split_service *s, const char *n, char **st)
{
    (void)s; (void)n;
    *st = NULL;
    return SHALE_NOT_FOUND;
}
static shale_status f_list(split_service *s, char **o)
{
    (void)s;
    *o = NULL;
    return SHALE_OK;
}
static shale_status f_abort(split_service *s, const char *n, char **st)
{
    (void)s; (void)n;
    *st = NULL;
    return SHALE_CONFLICT;
}
static bool f_ready(split_service *s)
{
    (void)s;
    return true;
}
static const split_service_ops ops = {f_submit, f_get, f_list, f_abort, f_ready};
static split_service svc = {&ops};

static const char fixed_kubeconfig[] =
    "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster: {server: \"https://127.0.0.1:1\"}\n"
    "users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: c\n"
    "  context: {cluster: t, user: u, namespace: ns}\ncurrent-context: c\n";

static source_kube *load(const char *text, size_t len)
{
    char path[] = "/tmp/shale-fuzz-kubeconfig-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    ssize_t w = write(fd, text, len);
    close(fd);
    agent_config c;
    source_kube *k = NULL;
    if (w == (ssize_t)len && agent_config_defaults(&c) == SHALE_OK) {
        c.shard = strdup("orders-0");
        c.kubeconfig = strdup(path);
        source_kube_new(&c, &svc, &k);
        agent_config_free(&c);
    }
    unlink(path);
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t klen = nul ? (size_t)(nul - data) : size;
    source_kube *k = load((const char *)data, klen);
    source_kube_free(k);
    if (!nul)
        return 0;
    /* The stream against a fixed, valid kubeconfig. */
    k = load(fixed_kubeconfig, sizeof fixed_kubeconfig - 1);
    if (k)
        source_kube_feed(k, (const char *)nul + 1, size - klen - 1);
    source_kube_free(k);
    return 0;
}
