/* s3_url.c -- see s3_url.h. */
#include "objstore/s3_url.h"
#include "util/misc.h"
#include "util/status_int.h"
#include "util/warn.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool starts_with(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

static bool ends_with(const char *s, const char *p)
{
    size_t n = strlen(s), m = strlen(p);
    return n >= m && !memcmp(s + n - m, p, m);
}

shale_status s3_bucket_check(const char *bucket)
{
    static const char *const bad_prefix[] = {"xn--", "sthree-", "amzn-s3-demo-"};
    static const char *const bad_suffix[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3",
                                             "--table-s3"};
    size_t n = bucket ? strlen(bucket) : 0;
    const char *why = NULL;
    if (n < 3 || n > 63)
        why = "must be 3 to 63 characters long";
    for (size_t i = 0; !why && i < n; i++) {
        char c = bucket[i];
        if (!is_lower_alnum(c) && c != '-' && c != '.')
            why = "may contain only lower-case letters, digits, '.' and '-'";
        else if (c == '.' && i + 1 < n && bucket[i + 1] == '.')
            why = "may not contain \"..\"";
    }
    if (!why && (!is_lower_alnum(bucket[0]) || !is_lower_alnum(bucket[n - 1])))
        why = "must start and end with a letter or digit";
    struct in_addr a4;
    if (!why && inet_pton(AF_INET, bucket, &a4) == 1)
        why = "may not be an IP address";
    for (size_t i = 0; !why && i < sizeof bad_prefix / sizeof *bad_prefix; i++)
        if (starts_with(bucket, bad_prefix[i]))
            why = "starts with a prefix S3 reserves (xn--, sthree-, amzn-s3-demo-)";
    for (size_t i = 0; !why && i < sizeof bad_suffix / sizeof *bad_suffix; i++)
        if (ends_with(bucket, bad_suffix[i]))
            why = "ends with a suffix S3 reserves (-s3alias, --ol-s3, .mrap, --x-s3, "
                  "--table-s3)";
    if (!why)
        return SHALE_OK;
    /* The name may hold anything (it came from a URI): print it escaped. */
    char *shown = s3_url_encode(bucket ? bucket : "", false);
    shale_status rc = shale_err(SHALE_INVALID_ARGUMENT, "s3 bucket name '%s' is not valid: it "
                                "%s (S3 bucket naming rules)", shown ? shown : "?", why);
    free(shown);
    return rc;
}

shale_status s3_region_check(const char *region)
{
    size_t n = strlen(region);
    bool ok = n >= 1 && n <= 32;
    for (size_t i = 0; ok && i < n; i++)
        ok = is_lower_alnum(region[i]) || region[i] == '-';
    if (ok)
        return SHALE_OK;
    char *shown = s3_url_encode(region, false);
    shale_status rc = shale_err(SHALE_INVALID_ARGUMENT, "s3 region '%s' is not valid: 1 to 32 "
                                "characters of a-z, 0-9 and '-'", shown ? shown : "?");
    free(shown);
    return rc;
}

/* A path segment (len bytes at s) that a URL parser would collapse. */
static bool dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

/* Checks every '/'-separated segment of s: not "." or "..", and (when
 * !allow_empty) not empty. */
static const char *segments_problem(const char *s, bool allow_empty)
{
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 && !allow_empty)
            return "has an empty path segment (\"//\" or a leading '/')";
        if (dot_segment(p, len))
            return "has a \".\" or \"..\" path segment";
        if (!e)
            return NULL;
        p = e + 1;
    }
}

shale_status s3_prefix_check(const char *bucket, const char *prefix)
{
    if (!*prefix)
        return SHALE_OK;
    const char *why = strlen(prefix) > 512 ? "is longer than 512 bytes" : NULL;
    for (const unsigned char *p = (const unsigned char *)prefix; !why && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            why = "contains a control character";
    if (!why)
        why = segments_problem(prefix, false);
    if (!why)
        return SHALE_OK;
    char *shown = s3_url_encode(prefix, true);
    shale_status rc = shale_err(SHALE_INVALID_ARGUMENT, "s3://%s/%s: the prefix %s", bucket,
                                shown ? shown : "?", why);
    free(shown);
    return rc;
}

char *s3_url_encode(const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

bool s3_url_host_is_loopback(const char *host)
{
    char buf[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if (!strcasecmp(buf, "localhost") || (n > 10 && !strcasecmp(buf + n - 10, ".localhost")))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, buf, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

static bool is_ip_literal(const char *host)
{
    struct in_addr a4;
    return host[0] == '[' || inet_pton(AF_INET, host, &a4) == 1;
}

/* Gets a part of u as a malloc'd string (NULL when absent). */
static char *part(CURLU *u, CURLUPart what)
{
    char *v = NULL;
    if (curl_url_get(u, what, &v, 0) != CURLUE_OK)
        return NULL;
    char *d = xstrdup(v);
    curl_free(v);
    return d;
}

static bool has_part(CURLU *u, CURLUPart what)
{
    char *v = NULL;
    CURLUcode uc = curl_url_get(u, what, &v, 0);
    curl_free(v);
    return uc == CURLUE_OK;
}

shale_status s3_url_target_init(s3_url_target *t, const char *endpoint, const char *bucket,
                                const char *prefix, int path_style)
{
    memset(t, 0, sizeof *t);
    shale_status rc = s3_bucket_check(bucket);
    if (rc)
        return rc;
    /* The prefix as the URI gives it, minus trailing slashes. */
    size_t pl = strlen(prefix);
    while (pl && prefix[pl - 1] == '/')
        pl--;
    char *pfx = strndup(prefix, pl);
    if (!pfx)
        return SHALE_OOM();
    rc = s3_prefix_check(bucket, pfx);
    if (rc) {
        free(pfx);
        return rc;
    }
    CURLU *u = curl_url();
    char *path = NULL;
    if (!u) {
        rc = SHALE_OOM();
        goto out;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, endpoint, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        rc = shale_err(SHALE_INVALID_ARGUMENT, "s3 endpoint '%s' is not a URL: %s", endpoint,
                       curl_url_strerror(uc));
        goto out;
    }
    t->scheme = part(u, CURLUPART_SCHEME);
    t->host = part(u, CURLUPART_HOST);
    t->port = part(u, CURLUPART_PORT);
    path = part(u, CURLUPART_PATH);
    const char *why = NULL;
    if (!t->scheme || (strcmp(t->scheme, "http") && strcmp(t->scheme, "https")))
        why = "must start with http:// or https://";
    else if (!t->host || !*t->host)
        why = "has no host";
    else if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD) ||
             has_part(u, CURLUPART_OPTIONS))
        why = "may not contain a user name or password (credentials come from the options or "
              "the environment)";
    else if (has_part(u, CURLUPART_QUERY) || has_part(u, CURLUPART_FRAGMENT))
        why = "may not contain a query or a fragment";
    else if (path && strcmp(path, "/") && strcmp(path, ""))
        why = "may not contain a path (give the bucket and prefix in the s3:// URI)";
    else if (!path_style && is_ip_literal(t->host))
        why = "is an IP address, which virtual-host style cannot address (use path style)";
    if (why) {
        /* Never echo userinfo: it may be a secret. */
        rc = shale_err(SHALE_INVALID_ARGUMENT, "s3 endpoint %s%s%s %s",
                       t->host ? "for host '" : "", t->host ? t->host : "",
                       t->host ? "'" : "", why);
        goto out;
    }
    t->bucket = xstrdup(bucket);
    size_t n = pl + 2;
    t->prefix = malloc(n);
    if (!t->bucket || !t->prefix) {
        rc = SHALE_OOM();
        goto out;
    }
    snprintf(t->prefix, n, "%s%s", pfx, pl ? "/" : "");
    t->path_style = path_style != 0;
    t->loopback = s3_url_host_is_loopback(t->host);
out:
    free(pfx);
    free(path);
    curl_url_cleanup(u);
    if (rc)
        s3_url_target_free(t);
    return rc;
}

void s3_url_target_free(s3_url_target *t)
{
    if (!t)
        return;
    free(t->scheme);
    free(t->host);
    free(t->port);
    free(t->bucket);
    free(t->prefix);
    memset(t, 0, sizeof *t);
}

static bool query_ok(const char *q)
{
    for (const unsigned char *p = (const unsigned char *)q; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || strchr("-_.~%=&", *p)))
            return false;
    return true;
}

/* curl 7.88's URL API stores a path or query set through it with its
 * escapes in lower case ("%3F" comes back as "%3f"; measured for every
 * byte).  SigV4 signs upper case, and servers that re-encode the path
 * before checking the signature (RGW, S3) then compute another canonical
 * request: every key with an escaped byte would fail with
 * SignatureDoesNotMatch.  %xx and %XX name the same byte (RFC 3986 2.1),
 * so the escapes after the authority are put back in upper case. */
static void upper_escapes(char *url)
{
    char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    for (; p && *p; p++)
        if (*p == '%' && p[1] && p[2]) {
            for (int i = 1; i <= 2; i++)
                if (p[i] >= 'a' && p[i] <= 'f')
                    p[i] = (char)(p[i] - 'a' + 'A');
            p += 2;
        }
}

/* Parses url back and checks it names t's host and port and path: the
 * last line of defence for the invariant in the header. */
static bool url_matches(const s3_url_target *t, const char *host, const char *url,
                        const char *path)
{
    CURLU *u = curl_url();
    if (!u)
        return false;
    bool ok = curl_url_set(u, CURLUPART_URL, url, CURLU_PATH_AS_IS) == CURLUE_OK;
    char *h = ok ? part(u, CURLUPART_HOST) : NULL;
    char *p = ok ? part(u, CURLUPART_PORT) : NULL;
    char *pa = ok ? part(u, CURLUPART_PATH) : NULL;
    ok = ok && h && !strcmp(h, host) && pa && !strcmp(pa, path) &&
         ((!p && !t->port) || (p && t->port && !strcmp(p, t->port))) &&
         !has_part(u, CURLUPART_USER) && !has_part(u, CURLUPART_FRAGMENT);
    free(h);
    free(p);
    free(pa);
    curl_url_cleanup(u);
    return ok;
}

shale_status s3_url_build(const s3_url_target *t, const char *key, const char *query,
                          char **out)
{
    *out = NULL;
    if (key && *key) {
        const char *why = segments_problem(key, true);
        if (why)
            return shale_err(SHALE_INVALID_ARGUMENT, "s3://%s/%s: key %s", t->bucket, t->prefix,
                             why);
    }
    if (query && !query_ok(query))
        return shale_err(SHALE_INVALID_ARGUMENT, "s3://%s: query '%s' is not encoded",
                         t->bucket, query);
    shale_status rc = SHALE_OK;
    char *full = NULL, *ek = NULL, *path = NULL, *host = NULL, *url = NULL;
    CURLU *u = curl_url();
    if (!u)
        return SHALE_OOM();
    if (key) {
        if (asprintf(&full, "%s%s", t->prefix, key) < 0)
            full = NULL;
        ek = full ? s3_url_encode(full, true) : NULL;
        if (!ek) {
            rc = SHALE_OOM();
            goto out;
        }
    }
    int pn = t->path_style ? asprintf(&path, "/%s/%s", t->bucket, ek ? ek : "")
                           : asprintf(&path, "/%s", ek ? ek : "");
    int hn = t->path_style ? asprintf(&host, "%s", t->host)
                           : asprintf(&host, "%s.%s", t->bucket, t->host);
    if (pn < 0 || hn < 0) {
        path = pn < 0 ? NULL : path;
        host = hn < 0 ? NULL : host;
        rc = SHALE_OOM();
        goto out;
    }
    /* Parts go in one by one: nothing in a key can become a host. */
    CURLUcode uc = curl_url_set(u, CURLUPART_SCHEME, t->scheme, 0);
    if (!uc)
        uc = curl_url_set(u, CURLUPART_HOST, host, 0);
    if (!uc && t->port)
        uc = curl_url_set(u, CURLUPART_PORT, t->port, 0);
    if (!uc)
        uc = curl_url_set(u, CURLUPART_PATH, path, 0);
    if (!uc && query)
        uc = curl_url_set(u, CURLUPART_QUERY, query, 0);
    char *cu = NULL;
    if (!uc)
        uc = curl_url_get(u, CURLUPART_URL, &cu, 0);
    if (uc) {
        rc = uc == CURLUE_OUT_OF_MEMORY ? SHALE_OOM()
             : shale_err(SHALE_INVALID_ARGUMENT, "s3://%s: cannot build a URL for key '%s': %s",
                         t->bucket, ek ? ek : "(bucket)", curl_url_strerror(uc));
        goto out;
    }
    url = xstrdup(cu);
    curl_free(cu);
    if (!url) {
        rc = SHALE_OOM();
        goto out;
    }
    upper_escapes(url);
    if (!url_matches(t, host, url, path)) {
        rc = shale_err(SHALE_INVALID_ARGUMENT, "s3://%s: the URL built for key '%s' does not "
                       "name the endpoint's host '%s'; refused", t->bucket, ek ? ek : "(bucket)",
                       t->host);
        goto out;
    }
    *out = url;
    url = NULL;
out:
    free(full);
    free(ek);
    free(path);
    free(host);
    free(url);
    curl_url_cleanup(u);
    return rc;
}

void s3_url_warn_plain_http(const s3_url_target *t)
{
    if (strcmp(t->scheme, "http") || t->loopback)
        return;
    /* Once per endpoint: a command opens many stores on the same one. */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char seen[16][160];
    static int nseen;
    char id[160];
    snprintf(id, sizeof id, "%s:%s", t->host, t->port ? t->port : "80");
    pthread_mutex_lock(&mu);
    bool first = true;
    for (int i = 0; i < nseen && first; i++)
        first = strcmp(seen[i], id) != 0;
    if (first && nseen < 16)
        snprintf(seen[nseen++], sizeof seen[0], "%s", id);
    pthread_mutex_unlock(&mu);
    if (first)
        shale_warn("s3://%s: signed requests (and any session token) go over plain http to %s, "
                   "which is not a loopback address: anyone on the path can read and replay "
                   "them; use https", t->bucket, id);
}
