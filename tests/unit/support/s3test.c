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
        strcpy(root, ".");
    return root;
}

shale_status s3test_start(s3test_server *s, bool stub)
{
    memset(s, 0, sizeof *s);
    s->stub = stub;
    if (!g_atexit) {
        atexit(kill_all);
        g_atexit = true;
    }
    char prog[4200];
    snprintf(prog, sizeof prog, "%s/%s", root_dir(),
             stub ? "tests/tools/s3stub.js" : "tests/tools/node_modules/s3rver/bin/s3rver.js");
    if (access(prog, R_OK) != 0)
        return shale_err(SHALE_NOT_FOUND, "%s is missing: run `scripts/deps.sh test` (npm)",
                         prog);
    char *dir = stub ? NULL : tu_tmpdir("s3rver");
    if (!stub && !dir)
        return shale_err(SHALE_IO, "cannot make a directory for s3rver");
    if (dir) {
        snprintf(s->dir, sizeof s->dir, "%s", dir);
        free(dir);
    }
    /* The server's output goes to a log file: a pipe we stop reading
     * would fill up (or break) and stall the server. */
    char logpath[600];
    snprintf(logpath, sizeof logpath, "%s/%s-%d.log", getenv("SHALE_TEST_TMP") ?
             getenv("SHALE_TEST_TMP") : "/tmp", stub ? "s3stub" : "s3rver", (int)getpid());
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
        setenv("NODE_OPTIONS", "--openssl-legacy-provider", 1);
        if (stub)
            execlp("node", "node", prog, "0", (char *)NULL);
        else
            execlp("node", "node", prog, "-d", s->dir, "-a", "127.0.0.1", "-p", "0",
                   "--configure-bucket", "test", (char *)NULL);
        _exit(127);
    }
    close(logfd);
    track(pid, true);
    s->pid = pid;
    /* Wait for the "listening" line (bounded): readiness, not a guess. */
    char buf[4096] = "";
    int64_t deadline = mono_ms() + 30000;
    while (!s->port && mono_ms() < deadline && waitpid(pid, NULL, WNOHANG) == 0) {
        FILE *f = fopen(logpath, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        const char *m = strstr(buf, stub ? "LISTENING " : "listening on 127.0.0.1:");
        if (m && strchr(m, '\n'))
            s->port = atoi(m + (stub ? 10 : 23));
        else
            sleep_ms(20);
    }
    if (!s->port) {
        s3test_stop(s);
        return shale_err(SHALE_IO, "%s did not start (is node installed? output: %.200s)",
                         stub ? "s3stub" : "s3rver", buf);
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
    if (s->dir[0])
        tu_rmtree(s->dir);
}

void s3test_env(const s3test_server *s)
{
    setenv("AWS_ACCESS_KEY_ID", s->stub ? "STUBKEY" : "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", s->stub ? "STUBSECRET" : "S3RVER", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_ENDPOINT_URL", s->endpoint, 1);
}

bool s3test_stub_faults(const s3test_server *s, const char *json)
{
    CURL *h = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/__stub/faults", s->endpoint);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    long code = 0;
    bool ok = curl_easy_perform(h) == CURLE_OK &&
              curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
    curl_easy_cleanup(h);
    return ok;
}
