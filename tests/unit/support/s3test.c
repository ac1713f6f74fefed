/* s3test.c -- see s3test.h. */
#include "support/s3test.h"
#include "support/testutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/misc.h"
#include "util/status_int.h"

#define MAX_SERVERS 8
static pid_t g_pids[MAX_SERVERS];
static bool g_atexit;

static void kill_all(void)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (g_pids[i] > 0) {
            kill(-g_pids[i], SIGKILL);
            waitpid(g_pids[i], NULL, 0);
            g_pids[i] = 0;
        }
}

static void track(pid_t p, bool add)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (add ? g_pids[i] == 0 : g_pids[i] == p) {
            g_pids[i] = add ? p : 0;
            return;
        }
}

static const char *root_dir(void)
{
    static char root[4096];
    if (!root[0] && !getcwd(root, sizeof root))
        snprintf(root, sizeof root, ".");
    return root;
}

static bool env_copy(char *dst, size_t n, const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v || strlen(v) >= n)
        return false;
    snprintf(dst, n, "%s", v);
    return true;
}

shale_status s3test_rgw(s3test_server *s)
{
    memset(s, 0, sizeof *s);
    if (!env_copy(s->endpoint, sizeof s->endpoint, "SHALE_TEST_S3_ENDPOINT") ||
        !env_copy(s->bucket, sizeof s->bucket, "SHALE_TEST_S3_BUCKET") ||
        !env_copy(s->access, sizeof s->access, "AWS_ACCESS_KEY_ID") ||
        !env_copy(s->secret, sizeof s->secret, "AWS_SECRET_ACCESS_KEY"))
        return shale_err(SHALE_IO, "no S3 server: SHALE_TEST_S3_ENDPOINT, SHALE_TEST_S3_BUCKET, "
                                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set "
                                   "(tests/run.sh starts Ceph RGW; by hand: "
                                   "eval \"$(tests/tools/rgw.sh start DIR)\")");
    if (!env_copy(s->region, sizeof s->region, "AWS_REGION"))
        snprintf(s->region, sizeof s->region, "us-east-1");
    return SHALE_OK;
}

shale_status s3test_start_stub(s3test_server *s)
{
    memset(s, 0, sizeof *s);
    s->stub = true;
    snprintf(s->bucket, sizeof s->bucket, "test");
    snprintf(s->access, sizeof s->access, "STUBKEY");
    snprintf(s->secret, sizeof s->secret, "STUBSECRET");
    snprintf(s->region, sizeof s->region, "us-east-1");
    if (!g_atexit) {
        atexit(kill_all);
        g_atexit = true;
    }
    char prog[4200];
    snprintf(prog, sizeof prog, "%s/tests/tools/s3stub.js", root_dir());
    if (access(prog, R_OK) != 0)
        return shale_err(SHALE_NOT_FOUND, "%s is missing", prog);
    /* The server's output goes to a log file: a pipe we stop reading
     * would fill up (or break) and stall the server. */
    char logpath[600];
    snprintf(logpath, sizeof logpath, "%s/s3stub-%d.log", getenv("SHALE_TEST_TMP") ?
             getenv("SHALE_TEST_TMP") : "/tmp", (int)getpid());
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (logfd < 0)
        return shale_err(SHALE_IO, "%s: %s", logpath, strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return shale_err(SHALE_IO, "fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        close(logfd);
        execlp("node", "node", prog, "0", (char *)NULL);
        _exit(127);
    }
    close(logfd);
    track(pid, true);
    s->pid = pid;
    /* Wait for the "LISTENING" line (bounded): readiness, not a guess. */
    char buf[4096] = "";
    int64_t deadline = mono_ms() + 30000;
    while (!s->port && mono_ms() < deadline && waitpid(pid, NULL, WNOHANG) == 0) {
        FILE *f = fopen(logpath, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        const char *m = strstr(buf, "LISTENING ");
        if (m && strchr(m, '\n'))
            s->port = (int)strtol(m + 10, NULL, 10);
        else
            sleep_ms(20);
    }
    if (!s->port) {
        s3test_stop(s);
        return shale_err(SHALE_IO, "s3stub did not start (is node installed? output: %.200s)",
                         buf);
    }
    snprintf(s->endpoint, sizeof s->endpoint, "http://127.0.0.1:%d", s->port);
    return SHALE_OK;
}

void s3test_stop(s3test_server *s)
{
    if (s->pid > 0) {
        kill(-s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        track(s->pid, false);
        s->pid = 0;
    }
}

void s3test_env(const s3test_server *s)
{
    setenv("AWS_ACCESS_KEY_ID", s->access, 1);
    setenv("AWS_SECRET_ACCESS_KEY", s->secret, 1);
    setenv("AWS_REGION", s->region, 1);
    setenv("AWS_ENDPOINT_URL", s->endpoint, 1);
    unsetenv("AWS_SESSION_TOKEN");
}

char *s3test_uri(const s3test_server *s, const char *name)
{
    char id[37], *u = NULL;
    uuid_new(id);
    if (asprintf(&u, "s3://%s/%s-%s", s->bucket, name, id) < 0)
        u = NULL;
    return u;
}

long s3test_stub_requests(const s3test_server *s)
{
    CURL *h = curl_easy_init();
    char url[300];
    snprintf(url, sizeof url, "%s/__stub/stats", s->endpoint);
    FILE *mem = tmpfile();
    long n = -1;
    if (h && mem) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
        if (curl_easy_perform(h) == CURLE_OK) {
            char buf[128] = "";
            rewind(mem);
            size_t k = fread(buf, 1, sizeof buf - 1, mem);
            buf[k] = '\0';
            const char *p = strstr(buf, "\"requests\":");
            if (p)
                n = strtol(p + 11, NULL, 10);
        }
    }
    if (mem)
        fclose(mem);
    curl_easy_cleanup(h);
    return n;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

bool s3test_stub_faults(const s3test_server *s, const char *json)
{
    CURL *h = curl_easy_init();
    char url[300];
    snprintf(url, sizeof url, "%s/__stub/faults", s->endpoint);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long code = 0;
    bool ok = curl_easy_perform(h) == CURLE_OK &&
              curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
    curl_easy_cleanup(h);
    return ok;
}

int s3test_start_both(s3test_server *rgw, s3test_server *stub)
{
    if (s3test_rgw(rgw) || s3test_start_stub(stub)) {
        fprintf(stderr, "cannot start the S3 test servers: %s\n", shale_errmsg());
        return -1;
    }
    return 0;
}
