/* http_token.c -- see http_token.h. */
#include "http_token.h"
#include "log.h"
#include "agent_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TOKEN 4096

struct http_token {
    pthread_mutex_t mu;
    char *file;              /* NULL: inline token */
    char *token;             /* NULL with a file: the file is bad now */
    size_t len;
    struct stat seen;        /* the file as last read */
    bool broken_logged;
};

/* Reads and checks a token file: visible ASCII only (it goes in a header),
 * trailing white space stripped.  *why names the problem on failure. */
static char *read_token_file(const char *path, struct stat *st, const char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot be opened";
        return NULL;
    }
    char *buf = malloc(MAX_TOKEN + 1);
    ssize_t n = -1;
    if (buf && fstat(fd, st) == 0 && S_ISREG(st->st_mode))
        n = read(fd, buf, MAX_TOKEN + 1);
    close(fd);
    if (!buf || n < 0 || n > MAX_TOKEN) {
        *why = !buf ? "cannot be read (out of memory)"
               : n > MAX_TOKEN ? "is larger than 4096 bytes" : "cannot be read";
        free(buf);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                     buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e) {
            *why = "holds white space or control characters inside the token";
            free(buf);
            return NULL;
        }
    if (n == 0) {
        *why = "is empty";
        free(buf);
        return NULL;
    }
    return buf;
}

shale_status http_token_new(const char *token, const char *file, http_token **out)
{
    *out = NULL;
    http_token *t = calloc(1, sizeof *t);
    if (!t)
        return AGENT_OOM();
    pthread_mutex_init(&t->mu, NULL);
    if (file) {
        const char *why = "";
        if (!(t->file = agent_strdup(file)) || !(t->token = read_token_file(file, &t->seen,
                                                                            &why))) {
            http_token_free(t);
            return shale_error_set(SHALE_INVALID_ARGUMENT,
                                   "http: the bearer token file %s ('sources.http.tokenFile') %s",
                                   file, why);
        }
    } else if (token) {
        if (!*token || !(t->token = agent_strdup(token))) {
            http_token_free(t);
            return *token ? AGENT_OOM()
                          : shale_error_set(SHALE_INVALID_ARGUMENT, "http: the token is empty");
        }
    }
    t->len = t->token ? strlen(t->token) : 0;
    *out = t;
    return SHALE_OK;
}

bool http_token_required(const http_token *t)
{
    return t && (t->file || t->token);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* With the lock held: reads the file again if it is not the one last read. */
static void refresh_locked(http_token *t)
{
    struct stat st;
    if (stat(t->file, &st) == 0 && t->token && same_file(&st, &t->seen))
        return;
    const char *why = "cannot be read";
    struct stat got;
    char *fresh = read_token_file(t->file, &got, &why);
    if (fresh) {
        if (t->broken_logged || (t->token && strcmp(fresh, t->token)))
            LOGI("http: bearer token re-read from %s", t->file);
        if (t->token)
            explicit_bzero(t->token, t->len);
        free(t->token);
        t->token = fresh;
        t->len = strlen(fresh);
        t->seen = got;
        t->broken_logged = false;
        return;
    }
    /* Fail closed: no token in hand means nobody is let in. */
    free(t->token);
    t->token = NULL;
    t->len = 0;
    memset(&t->seen, 0, sizeof t->seen);
    if (!t->broken_logged)
        LOGE("http: the bearer token file %s %s: every API request is refused until it is "
             "fixed", t->file, why);
    t->broken_logged = true;
}

bool http_token_check(http_token *t, const char *authorization, const char **why)
{
    *why = "";
    if (!http_token_required(t))
        return true;
    if (!authorization || strncmp(authorization, "Bearer ", 7)) {
        *why = "an 'Authorization: Bearer <token>' header is required";
        return false;
    }
    const char *given = authorization + 7;
    size_t m = strlen(given);
    pthread_mutex_lock(&t->mu);
    if (t->file)
        refresh_locked(t);
    bool ok = false;
    if (!t->token) {
        *why = "the agent's token file cannot be read (see the agent's log)";
    } else {
        /* Constant time in the caller's input: every byte of the secret is
         * looked at, and only the final result branches. */
        unsigned char diff = (unsigned char)(t->len != m);
        for (size_t i = 0; i < t->len; i++)
            diff |= (unsigned char)(t->token[i] ^ (i < m ? given[i] : 0));
        ok = diff == 0;
        if (!ok)
            *why = "the bearer token is not the agent's";
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void http_token_free(http_token *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    if (t->token)
        explicit_bzero(t->token, t->len);
    free(t->token);
    free(t->file);
    free(t);
}
