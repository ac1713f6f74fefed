/*
 * main.c -- shale-agent: the split sidecar (docs/agent.md).
 *
 *   shale-agent --config FILE [--set key=value]... [--port-file FILE]
 *   shale-agent --once --config FILE    (run what is pending, then exit)
 *   shale-agent --check-config --config FILE
 *   shale-agent --clear-journal NAME --config FILE   (docs/agent.md "Resume")
 *   shale-agent --version | --help
 *
 * Runs until SIGTERM or SIGINT, then stops the sources, lets the current
 * split step finish, and exits 0.  A bad configuration is reported with
 * file, line and column and the agent does not start (exit 2).
 */
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "source_local.h"
#include "source_kube.h"
#include "splitter.h"
#include "shale.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: shale-agent --config FILE [--set key=value]... [--port-file FILE]\n"
          "       shale-agent --once --config FILE      run pending splits, then exit\n"
          "       shale-agent --check-config --config FILE [--set key=value]...\n"
          "       shale-agent --clear-journal NAME --config FILE   clear a bad or failed "
          "split's journal and lease\n"
          "       shale-agent --version | --help\n"
          "\n"
          "Runs shard splits for one shard: watches the local request directory,\n"
          "serves the HTTP API, journals every step in the shard's store.\n"
          "Settings: docs/agent-config.md; API: docs/agent-http.md.\n",
          f);
}

static void log_engine_warning(const char *msg, void *ud)
{
    (void)ud;
    LOGW("%s", msg);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"set", required_argument, 0, 's'},
        {"check-config", no_argument, 0, 'k'}, {"port-file", required_argument, 0, 'p'},
        {"version", no_argument, 0, 'v'},      {"help", no_argument, 0, 'h'},
        {"once", no_argument, 0, 'o'},         {"clear-journal", required_argument, 0, 'C'},
        {0, 0, 0, 0}};
    const char *config_path = NULL, *port_file = NULL, *clear = NULL;
    const char *sets[64];
    int nsets = 0, check = 0, once = 0, c;
    while ((c = getopt_long(argc, argv, "c:s:kp:vho", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 's':
            if (nsets < 64)
                sets[nsets++] = optarg;
            break;
        case 'k': check = 1; break;
        case 'o': once = 1; break;
        case 'C': clear = optarg; break;
        case 'p': port_file = optarg; break;
        case 'v': printf("shale-agent %s\n", SHALE_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shale-agent: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    agent_config cfg;
    shale_status rc = agent_config_defaults(&cfg);
    if (!rc && config_path)
        rc = agent_config_load(&cfg, config_path);
    for (int i = 0; !rc && i < nsets; i++)
        rc = agent_config_set(&cfg, sets[i]);
    if (!rc)
        rc = agent_config_check(&cfg);
    if (rc) {
        fprintf(stderr, "shale-agent: bad configuration: %s\n", shale_errmsg());
        agent_config_free(&cfg);
        return 2;
    }
    if (check) {
        printf("configuration OK: shard %s, store %s\n", cfg.shard, cfg.store_uri);
        agent_config_free(&cfg);
        return 0;
    }
    log_set_level(cfg.log_level);
    /* The engine's warnings (credentials over plain http, a failed
     * credential refresh) become JSON log lines like the agent's own. */
    shale_set_warning_handler(log_engine_warning, NULL);

    /* Signals are taken synchronously by this thread; block them first so
     * every thread started below inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    splitter_options so;
    splitter_options_init(&so);
    so.shard = cfg.shard;
    so.store_uri = cfg.store_uri;
    so.wal_store_uri = cfg.wal_uri;
    so.db.store.s3_endpoint = cfg.s3_endpoint;
    so.db.store.s3_region = cfg.s3_region;
    so.db.store.s3_path_style = cfg.s3_path_style;
    so.db.store.s3_ca_file = cfg.s3_ca_file;
    if (cfg.s3_timeout_seconds) {  /* an S3 call that gets no answer fails within ~2x */
        so.db.store.deadline_ms = (int)(cfg.s3_timeout_seconds > 86400 ? 86400000
                                                                      : cfg.s3_timeout_seconds *
                                                                            1000);
        if (so.db.store.timeout_ms > so.db.store.deadline_ms)
            so.db.store.timeout_ms = so.db.store.deadline_ms;
    }
    so.step_timeout_s = cfg.step_seconds;
    so.verify = (split_verify)cfg.verify_mode;
    so.verify_cache_bytes = (size_t)cfg.verify_cache_mib << 20;
    so.verify_piece_bytes = (size_t)cfg.verify_piece_mib << 20;
    so.verify_meta_bytes = (size_t)cfg.verify_metadata_mib << 20;
    so.verify_threads = cfg.verify_threads;
    agent_config_policy(&cfg, &so.policy);
    if (clear) {
        rc = splitter_clear_journal(&so, clear);
        if (rc)
            LOGE("cannot clear the journal of split %s: %s: %s", clear, shale_strerror(rc),
                 shale_errmsg());
        else
            printf("cleared split %s in %s\n", clear, cfg.store_uri);
        agent_config_free(&cfg);
        return rc ? 1 : 0;
    }
    splitter *sp = NULL;
    source_local *local = NULL;
    source_kube *kube = NULL;
    http_server *http = NULL;
    int exit_code = 0;
    rc = splitter_new(&so, &sp);
    if (rc) {
        LOGE("cannot start: %s", shale_errmsg());
        exit_code = 1;
        goto out;
    }
    splitter_on_step(sp, metrics_observe_step, NULL);
    if (cfg.local_enabled) {
        rc = source_local_new(cfg.local_dir, cfg.local_poll_ms, splitter_service(sp), &local);
        if (!rc)
            rc = splitter_add_listener(sp, source_local_on_status, local);
        if (rc) {
            LOGE("local source: %s", shale_errmsg());
            exit_code = rc == SHALE_INVALID_ARGUMENT ? 2 : 1;
            goto out;
        }
    }
    if (cfg.kube_enabled) {
        rc = source_kube_new(&cfg, splitter_service(sp), &kube);
        if (!rc)
            rc = splitter_add_listener(sp, source_kube_on_status, kube);
        if (rc) {
            LOGE("kubernetes source: %s", shale_errmsg());
            exit_code = 1;
            goto out;
        }
    }
    /* One scan (and one list) before the worker starts, so cancel files,
     * aborts and deletions that arrived while the agent was down win over
     * resuming those splits. */
    if (local)
        source_local_scan_once(local);
    if (kube && !once)
        source_kube_list_once(kube);
    if ((rc = splitter_start(sp))) {
        LOGE("%s", shale_errmsg());
        exit_code = 1;
        goto out;
    }
    if (once) {
        /* Batch mode: take what the local directory holds, run every
         * pending or resumed split to its end, exit 0 if all completed. */
        rc = splitter_wait_idle(sp, (int64_t)cfg.step_seconds * 1000 * 8);
        splitter_stats st;
        splitter_get_stats(sp, &st);
        exit_code = rc ? 1 : st.failed ? 1 : 0;
        if (rc)
            LOGE("%s", shale_errmsg());
        goto out;
    }
    if (kube && (rc = source_kube_start(kube))) {
        LOGE("%s", shale_errmsg());
        exit_code = 1;
        goto out;
    }
    if (local && (rc = source_local_start(local))) {
        LOGE("%s", shale_errmsg());
        exit_code = 1;
        goto out;
    }
    if (cfg.http_enabled) {
        /* config.c already refused a listener beyond loopback without a
         * token; http_start() checks it again and reads the token file. */
        http_options ho;
        http_options_init(&ho);
        ho.listen = cfg.http_listen;
        ho.token = cfg.http_token;
        ho.token_file = cfg.http_token_file;
        ho.max_body = cfg.http_max_body;
        ho.max_connections = cfg.http_max_connections;
        ho.timeout_s = cfg.http_timeout_s;
        ho.allowed_origins = (const char *const *)cfg.http_origins;
        ho.allowed_origin_count = 0;
        while (cfg.http_origins && cfg.http_origins[ho.allowed_origin_count])
            ho.allowed_origin_count++;
        ho.ready_check_ms = cfg.http_ready_check_ms;
        ho.ready_timeout_ms = cfg.http_ready_timeout_ms;
        ho.probe_listen = cfg.http_probe_listen;
        rc = http_start(&ho, splitter_service(sp), sp, &http);
        if (rc) {
            LOGE("%s", shale_errmsg());
            exit_code = rc == SHALE_INVALID_ARGUMENT ? 2 : 1;
            goto out;
        }
        if (!strncmp(cfg.http_listen, "127.", 4) || !strncmp(cfg.http_listen, "[::1]", 5))
            LOGI("HTTP API on %s (loopback)%s", cfg.http_listen,
                 cfg.http_token || cfg.http_token_file ? ", bearer token required" : "");
        else
            LOGI("HTTP API on %s, bearer token required", cfg.http_listen);
        if (cfg.http_probe_listen)
            LOGI("probes (/healthz, /readyz) also on %s, port %u", cfg.http_probe_listen,
                 http_probe_port(http));
        if (port_file) {
            FILE *f = fopen(port_file, "w");
            if (f) {
                fprintf(f, "%u\n", http_port(http));
                fclose(f);
            }
        }
    }
    log_msg(LOG_INFO, NULL, NULL, -1, "shale-agent %s serving shard %s (store %s%s%s)",
            SHALE_VERSION, cfg.shard, cfg.store_uri, cfg.wal_uri ? ", local WAL " : "",
            cfg.wal_uri ? cfg.wal_uri : "");
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0 && errno == EINTR)
        ;
    LOGI("signal %d: shutting down", sig);
out:
    http_stop(http);
    /* The kube source's listener runs until the splitter stops: stop its
     * reconciling first, free it after the splitter. */
    source_kube_stop(kube);
    source_local_free(local);
    splitter_free(sp);
    source_kube_free(kube);
    agent_config_free(&cfg);
    return exit_code;
}
