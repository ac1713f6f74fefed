/*
 * identity.c -- canonical store URIs and the identity object (see
 * shale_admin.h for the rules and docs/format.md "Store identity" for the
 * object).
 *
 * Canonical URIs are strings chosen so that "one store inside another" is
 * "one canonical URI is a prefix of the other at a '/'":
 *
 *   file:///real/path                      realpath of the longest existing
 *                                          prefix, then the rest lexically
 *   s3+https://host[:port][/path]/bucket[/prefix]
 *   mem://name                             flat: no store is inside another
 *
 * Nothing here creates anything: a file:// directory that does not exist is
 * answered "no identity" / "empty" without opening it (opening a file://
 * store makes its directory).
 *
 * Identity object (".shale/identity.json"):
 *   {"format":1,"uuid":"...","kind":"db"|"wal"|"child-claim",
 *    "uri":"<canonical at creation>","createdTime":"RFC 3339",
 *    "claim":"<owner>"}             -- claim only for claimed child stores
 */
#include "db/identity.h"
#include "util/crew.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define IDENTITY_FORMAT 1

const char *shale_store_kind_name(shale_store_kind k)
{
    switch (k) {
    case SHALE_STORE_KIND_DB: return "db";
    case SHALE_STORE_KIND_WAL: return "wal";
    case SHALE_STORE_KIND_CHILD_CLAIM: return "child-claim";
    default: return "unknown";
    }
}

static shale_store_kind kind_parse(const char *s)
{
    if (!s)
        return SHALE_STORE_KIND_UNKNOWN;
    if (!strcmp(s, "db"))
        return SHALE_STORE_KIND_DB;
    if (!strcmp(s, "wal"))
        return SHALE_STORE_KIND_WAL;
    if (!strcmp(s, "child-claim"))
        return SHALE_STORE_KIND_CHILD_CLAIM;
    return SHALE_STORE_KIND_UNKNOWN;
}

void shale_store_identity_clear(shale_store_identity *id)
{
    if (!id)
        return;
    free(id->uri);
    free(id->claim);
    memset(id, 0, sizeof *id);
}

/* ---- canonical URIs ------------------------------------------------------ */

/* Appends the segments of path to out (an absolute path, at least "/"),
 * dropping empty and "." segments and letting ".." pop one (never above
 * the root).  out has room for PATH_MAX + 1. */
static shale_status lexical_join(char *out, const char *path)
{
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            break;
        if (len == 1 && p[0] == '.') {
            /* nothing */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            char *slash = strrchr(out, '/');
            if (slash == out)
                out[1] = '\0';
            else if (slash)
                *slash = '\0';
            n = strlen(out);
        } else {
            if (n + (n > 1) + len >= PATH_MAX)
                return shale_err(SHALE_INVALID_ARGUMENT, "path '%s' is too long", path);
            if (n > 1)
                out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
            out[n] = '\0';
        }
        p += len;
    }
    return SHALE_OK;
}

/* The real path of an absolute path that may not exist yet: realpath of
 * its longest existing prefix, the rest joined lexically (as the file://
 * backend's mkdir -p would make it). */
static shale_status real_path(const char *path, char *out)
{
    size_t n = strlen(path);
    if (n >= PATH_MAX)
        return shale_err(SHALE_INVALID_ARGUMENT, "file://%s: path too long", path);
    char buf[PATH_MAX];
    memcpy(buf, path, n + 1);
    /* cut: where the untried rest starts in path. */
    size_t cut = n;
    for (;;) {
        buf[cut] = '\0';
        const char *try = cut ? buf : "/";
        if (realpath(try, out))
            return lexical_join(out, path + cut);
        if (cut == 0)
            break;
        while (cut > 0 && buf[cut - 1] == '/')
            cut--;
        while (cut > 0 && buf[cut - 1] != '/')
            cut--;
    }
    /* Not even "/" resolves: fall back to the lexical form. */
    snprintf(out, PATH_MAX, "/");
    return lexical_join(out, path);
}

static shale_status canon_file(const char *rest, const char *uri, char **out)
{
    if (rest[0] != '/')
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "store URI '%s': a file:// path must be absolute (file:///abs/dir)",
                         uri);
    char real[PATH_MAX];
    shale_status rc = real_path(rest, real);
    if (rc)
        return rc;
    size_t len = strlen(real) + 8;
    if (!(*out = malloc(len)))
        return SHALE_OOM();
    snprintf(*out, len, "file://%s", real);
    return SHALE_OK;
}

static const char *env_or(const char *opt, const char *env)
{
    if (opt && *opt)
        return opt;
    const char *e = getenv(env);
    return e && *e ? e : NULL;
}

/* "scheme://host[:port][/path]" of an endpoint, normalised: scheme and
 * host lowercased, the scheme's default port dropped, trailing '/' off. */
static shale_status canon_endpoint(const char *ep, char *out, size_t outlen)
{
    const char *sep = strstr(ep, "://");
    if (!sep)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "S3 endpoint '%s' must start with http:// or https://", ep);
    char scheme[8];
    size_t sl = (size_t)(sep - ep);
    if (sl >= sizeof scheme)
        return shale_err(SHALE_INVALID_ARGUMENT, "S3 endpoint '%s': bad scheme", ep);
    for (size_t i = 0; i < sl; i++)
        scheme[i] = (char)tolower((unsigned char)ep[i]);
    scheme[sl] = '\0';
    if (strcmp(scheme, "http") && strcmp(scheme, "https"))
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "S3 endpoint '%s' must start with http:// or https://", ep);
    const char *host = sep + 3, *at = NULL;
    const char *hend = host + strcspn(host, "/?#");
    for (const char *p = host; p < hend; p++)
        if (*p == '@')
            at = p;
    if (at)
        host = at + 1;   /* user info is no part of the store */
    const char *colon = NULL;
    for (const char *p = host; p < hend; p++)
        if (*p == ':')
            colon = p;
    if (host[0] == '[') {   /* [v6]:port */
        const char *rb = memchr(host, ']', (size_t)(hend - host));
        colon = rb && rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
    }
    const char *hostend = colon ? colon : hend;
    if (hostend == host)
        return shale_err(SHALE_INVALID_ARGUMENT, "S3 endpoint '%s' has no host", ep);
    char port[8] = "";
    if (colon) {
        size_t pl = (size_t)(hend - colon - 1);
        if (pl >= sizeof port)
            return shale_err(SHALE_INVALID_ARGUMENT, "S3 endpoint '%s': bad port", ep);
        memcpy(port, colon + 1, pl);
        port[pl] = '\0';
        for (size_t i = 0; i < pl; i++)
            if (!isdigit((unsigned char)port[i]))
                return shale_err(SHALE_INVALID_ARGUMENT, "S3 endpoint '%s': bad port", ep);
        while (port[0] == '0' && port[1])
            memmove(port, port + 1, strlen(port));
        if ((!strcmp(scheme, "http") && !strcmp(port, "80")) ||
            (!strcmp(scheme, "https") && !strcmp(port, "443")) || !*port)
            port[0] = '\0';
    }
    size_t pathlen = strcspn(hend, "?#");
    while (pathlen && hend[pathlen - 1] == '/')
        pathlen--;
    int w = snprintf(out, outlen, "%s://", scheme);
    for (const char *p = host; p < hostend && (size_t)w + 1 < outlen; p++)
        out[w++] = (char)tolower((unsigned char)*p);
    out[w] = '\0';
    int r = snprintf(out + w, outlen - (size_t)w, "%s%s%.*s", *port ? ":" : "", port,
                     (int)pathlen, hend);
    if (r < 0 || (size_t)(w + r) >= outlen)
        return shale_err(SHALE_INVALID_ARGUMENT, "S3 endpoint '%s' is too long", ep);
    return SHALE_OK;
}

static shale_status canon_s3(const char *rest, const char *uri, const shale_objstore_options *o,
                             char **out)
{
    const char *slash = strchr(rest, '/');
    size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (blen == 0 || blen > 63)
        return shale_err(SHALE_INVALID_ARGUMENT, "store URI '%s': missing or bad bucket name",
                         uri);
    char ep[512];
    const char *endpoint = env_or(o ? o->s3_endpoint : NULL, "AWS_ENDPOINT_URL");
    if (!endpoint) {
        const char *region = env_or(o ? o->s3_region : NULL, "AWS_REGION");
        char def[256];
        snprintf(def, sizeof def, "https://s3.%s.amazonaws.com", region ? region : "us-east-1");
        shale_status rc = canon_endpoint(def, ep, sizeof ep);
        if (rc)
            return rc;
    } else {
        shale_status rc = canon_endpoint(endpoint, ep, sizeof ep);
        if (rc)
            return rc;
    }
    size_t cap = strlen(ep) + strlen(rest) + 8;
    char *s = malloc(cap);
    if (!s)
        return SHALE_OOM();
    size_t n = (size_t)snprintf(s, cap, "s3+%s/", ep);
    for (size_t i = 0; i < blen; i++)
        s[n++] = (char)tolower((unsigned char)rest[i]);
    s[n] = '\0';
    /* The prefix without empty segments.  "." and ".." are literal in S3
     * keys, so a prefix holding them has no single reading: refused. */
    const char *p = slash ? slash + 1 : "";
    while (*p) {
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (!len)
            break;
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
            free(s);
            return shale_err(SHALE_INVALID_ARGUMENT,
                             "store URI '%s': an S3 prefix with a '.' or '..' segment is "
                             "ambiguous", uri);
        }
        s[n++] = '/';
        memcpy(s + n, p, len);
        n += len;
        s[n] = '\0';
        p += len;
    }
    *out = s;
    return SHALE_OK;
}

shale_status identity_canonical(const char *uri, const shale_objstore_options *o, char **out)
{
    *out = NULL;
    if (!uri || !*uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "store URI is empty");
    const char *u = uri;
    while (!strncmp(u, "fault+", 6))   /* the wrapper is over the same store */
        u += 6;
    if (!strncmp(u, "file://", 7))
        return canon_file(u + 7, uri, out);
    if (!strncmp(u, "s3://", 5))
        return canon_s3(u + 5, uri, o, out);
    if (!strncmp(u, "mem://", 6)) {
        if (!(*out = xstrdup(u)))
            return SHALE_OOM();
        return SHALE_OK;
    }
    return shale_err(SHALE_INVALID_ARGUMENT,
                     "store URI '%s': unknown scheme (file://, s3://, mem://)", uri);
}

shale_status shale_store_canonical_uri(const char *uri, const shale_options *opts, char **out)
{
    return identity_canonical(uri, opts ? &opts->store : NULL, out);
}

/* ---- the identity object -------------------------------------------------- */

static shale_status identity_decode(const char *where, const void *data, size_t len,
                                    shale_store_identity *out)
{
    memset(out, 0, sizeof *out);
    json_error_t err;
    json_t *j = json_loadb(data, len, 0, &err);
    const char *uuid = j ? json_string_value(json_object_get(j, "uuid")) : NULL;
    const char *kind = j ? json_string_value(json_object_get(j, "kind")) : NULL;
    const char *uri = j ? json_string_value(json_object_get(j, "uri")) : NULL;
    const char *created = j ? json_string_value(json_object_get(j, "createdTime")) : NULL;
    const char *claim = j ? json_string_value(json_object_get(j, "claim")) : NULL;
    json_int_t format = j ? json_integer_value(json_object_get(j, "format")) : 0;
    shale_status rc = SHALE_OK;
    if (!j)
        rc = shale_err(SHALE_CORRUPT, "%s/%s: not JSON (line %d: %s)", where, IDENTITY_KEY,
                       err.line, err.text);
    else if (format > IDENTITY_FORMAT)
        rc = shale_err(SHALE_UNSUPPORTED, "%s/%s: format %lld is newer than this version "
                                          "reads (%d)", where, IDENTITY_KEY,
                       (long long)format, IDENTITY_FORMAT);
    else if (format < 1 || !uuid || strlen(uuid) != 36 || !kind)
        rc = shale_err(SHALE_CORRUPT, "%s/%s: needs format, a 36-character uuid and kind",
                       where, IDENTITY_KEY);
    if (!rc && uuid) {
        memcpy(out->uuid, uuid, 36);
        out->uuid[36] = '\0';
        out->kind = kind_parse(kind);
        snprintf(out->created, sizeof out->created, "%s", created ? created : "");
        if ((uri && !(out->uri = xstrdup(uri))) || (claim && !(out->claim = xstrdup(claim)))) {
            shale_store_identity_clear(out);
            rc = SHALE_OOM();
        }
    }
    json_decref(j);
    return rc;
}

static shale_status identity_encode(const shale_store_identity *id, char **text)
{
    json_t *j = json_object();
    json_object_set_new(j, "format", json_integer(IDENTITY_FORMAT));
    json_object_set_new(j, "uuid", json_string(id->uuid));
    json_object_set_new(j, "kind", json_string(shale_store_kind_name(id->kind)));
    if (id->uri)
        json_object_set_new(j, "uri", json_string(id->uri));
    json_object_set_new(j, "createdTime", json_string(id->created));
    if (id->claim)
        json_object_set_new(j, "claim", json_string(id->claim));
    *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return *text ? SHALE_OK : SHALE_OOM();
}

shale_status identity_read(shale_objstore *s, shale_store_identity *out)
{
    memset(out, 0, sizeof *out);
    void *data = NULL;
    size_t len = 0;
    shale_status rc = shale_objstore_get(s, IDENTITY_KEY, &data, &len);
    if (rc == SHALE_NOT_FOUND)
        return shale_err(SHALE_NOT_FOUND, "%s has no identity object", shale_objstore_uri(s));
    if (rc)
        return shale_err_prefix(rc, "reading %s/%s", shale_objstore_uri(s), IDENTITY_KEY);
    rc = identity_decode(shale_objstore_uri(s), data, len, out);
    shale_free(data);
    return rc;
}

static void now_rfc3339(char *buf, size_t n)
{
    time_t t = (time_t)(now_ms() / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Writes id with put-if-absent (replace: unconditional put). */
static shale_status identity_write(shale_objstore *s, const shale_store_identity *id,
                                   bool replace)
{
    char *text = NULL;
    shale_status rc = identity_encode(id, &text);
    if (rc)
        return rc;
    rc = replace ? shale_objstore_put(s, IDENTITY_KEY, text, strlen(text))
                 : shale_objstore_put_if_absent(s, IDENTITY_KEY, text, strlen(text));
    free(text);
    return rc;
}

static shale_status identity_new(const char *uri, const shale_objstore_options *o,
                                 shale_store_kind kind, const char *claim,
                                 shale_store_identity *id)
{
    memset(id, 0, sizeof *id);
    uuid_new(id->uuid);
    id->kind = kind;
    now_rfc3339(id->created, sizeof id->created);
    shale_status rc = identity_canonical(uri, o, &id->uri);
    if (!rc && claim && !(id->claim = xstrdup(claim)))
        rc = SHALE_OOM();
    if (rc)
        shale_store_identity_clear(id);
    return rc;
}

const char identity_any_claim[] = "any claim";

shale_status identity_ensure(shale_objstore *s, const char *uri,
                             const shale_objstore_options *o, shale_store_kind kind,
                             const char *adopt)
{
    shale_store_identity id;
    shale_status rc = identity_read(s, &id);
    return identity_settle(s, uri, o, kind, rc, &id, adopt);
}

/* A claim the caller may not turn into kind: the store belongs to the
 * split that claimed it until that split's clone makes it a database. */
static bool claim_refused(const shale_store_identity *id, const char *adopt)
{
    return id->kind == SHALE_STORE_KIND_CHILD_CLAIM && adopt != identity_any_claim &&
           !(adopt && id->claim && !strcmp(adopt, id->claim));
}

shale_status identity_refuse_claim(const char *uri, const shale_store_identity *id)
{
    return shale_err(SHALE_CONFLICT,
                     "%s is claimed by a split (%s, since %s): it receives its database "
                     "from that split's clone, and no other writer may open it",
                     uri, id->claim ? id->claim : "?", id->created);
}

shale_status identity_settle(shale_objstore *s, const char *uri,
                             const shale_objstore_options *o, shale_store_kind kind,
                             shale_status read_rc, shale_store_identity *read,
                             const char *adopt)
{
    shale_store_identity id = *read;
    memset(read, 0, sizeof *read);
    shale_status rc = read_rc;
    if (rc == SHALE_NOT_FOUND) {
        if ((rc = identity_new(uri, o, kind, NULL, &id)))
            return rc;
        rc = identity_write(s, &id, false);
        shale_store_identity_clear(&id);
        if (rc == SHALE_PRECONDITION_FAILED) {
            /* Another opener wrote one first: that one stands -- unless it
             * is a split's claim, which a writer racing the claim must not
             * write under (the claim is what keeps the store the split's). */
            if ((rc = identity_read(s, &id)))
                return shale_err_prefix(rc, "reading the identity of %s", uri);
            rc = claim_refused(&id, adopt) ? identity_refuse_claim(uri, &id) : SHALE_OK;
            shale_store_identity_clear(&id);
            return rc;
        }
        if (rc)
            shale_err_prefix(rc, "writing the identity of %s", uri);
        return rc;
    }
    if (rc)
        return rc;
    if (claim_refused(&id, adopt)) {
        rc = identity_refuse_claim(uri, &id);
        shale_store_identity_clear(&id);
        return rc;
    }
    if (id.kind == SHALE_STORE_KIND_CHILD_CLAIM && kind != SHALE_STORE_KIND_CHILD_CLAIM) {
        /* The clone under this claim finished: the store is a database (or
         * its WAL store) now.  Same UUID, the claim kept as its origin. */
        id.kind = kind;
        rc = identity_write(s, &id, true);
        if (rc)
            shale_err_prefix(rc, "writing the identity of %s", uri);
    }
    shale_store_identity_clear(&id);
    return rc;
}

shale_status identity_check_clone_target(shale_objstore *s, const char *uri)
{
    shale_store_identity id;
    shale_status rc = identity_read(s, &id);
    if (rc == SHALE_NOT_FOUND)
        return SHALE_OK;
    if (rc)
        return rc;
    if (id.kind == SHALE_STORE_KIND_DB || id.kind == SHALE_STORE_KIND_WAL)
        rc = shale_err(SHALE_CONFLICT,
                       "clone: %s is already a %s store (identity %s, created %s as %s): "
                       "a clone needs a store of its own",
                       uri, id.kind == SHALE_STORE_KIND_DB ? "database's" : "WAL",
                       id.uuid, id.created, id.uri ? id.uri : "?");
    shale_store_identity_clear(&id);
    return rc;
}

/* ---- by URI, creating nothing ---------------------------------------------- */

/* True when uri is a file:// store (possibly behind fault+) whose
 * directory does not exist: it holds nothing, and opening it would make it. */
static bool file_store_absent(const char *uri)
{
    while (!strncmp(uri, "fault+", 6))
        uri += 6;
    if (strncmp(uri, "file://", 7))
        return false;
    char real[PATH_MAX];
    if (uri[7] != '/' || real_path(uri + 7, real))
        return false;
    struct stat st;
    return stat(real, &st) != 0 && errno == ENOENT;
}

static shale_status open_existing(const char *uri, const shale_options *opts,
                                  shale_objstore **s)
{
    shale_options d;
    if (!opts) {
        shale_options_init(&d);
        opts = &d;
    }
    return shale_objstore_open(uri, &opts->store, s);
}

shale_status shale_store_identity_read(const char *uri, const shale_options *opts,
                                       shale_store_identity *out)
{
    memset(out, 0, sizeof *out);
    if (!uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "store URI is NULL");
    if (file_store_absent(uri))
        return shale_err(SHALE_NOT_FOUND, "%s does not exist (no identity)", uri);
    shale_objstore *s = NULL;
    shale_status rc = open_existing(uri, opts, &s);
    if (!rc)
        rc = identity_read(s, out);
    shale_objstore_close(s);
    return rc;
}

shale_store_relation shale_store_relate_canonical(const char *ca, const char *cb)
{
    size_t la = strlen(ca), lb = strlen(cb);
    bool flat = !strncmp(ca, "mem://", 6) || !strncmp(cb, "mem://", 6);
    if (!strcmp(ca, cb))
        return SHALE_STORE_SAME;
    if (!flat && lb && la > lb && !strncmp(ca, cb, lb) && (ca[lb] == '/' || cb[lb - 1] == '/'))
        return SHALE_STORE_INSIDE;
    if (!flat && la && lb > la && !strncmp(cb, ca, la) && (cb[la] == '/' || ca[la - 1] == '/'))
        return SHALE_STORE_CONTAINS;
    return SHALE_STORE_APART;
}

shale_status shale_store_relate_uris(const char *a, const char *b, const shale_options *opts,
                                     shale_store_relation *rel)
{
    *rel = SHALE_STORE_APART;
    char *ca = NULL, *cb = NULL;
    shale_status rc = shale_store_canonical_uri(a, opts, &ca);
    if (!rc)
        rc = shale_store_canonical_uri(b, opts, &cb);
    if (!rc)
        *rel = shale_store_relate_canonical(ca, cb);
    free(ca);
    free(cb);
    return rc;
}

shale_status shale_store_relate(const char *a, const char *b, const shale_options *opts,
                                shale_store_relation *rel)
{
    shale_status rc = shale_store_relate_uris(a, b, opts, rel);
    if (!rc && *rel == SHALE_STORE_APART) {
        /* Spelled apart: the same store all the same if both carry one
         * identity (a bind mount, a second name of one endpoint). */
        shale_store_identity ia, ib;
        shale_status ra = shale_store_identity_read(a, opts, &ia);
        shale_status rb = ra ? ra : shale_store_identity_read(b, opts, &ib);
        if (!ra && !rb && !strcmp(ia.uuid, ib.uuid))
            *rel = SHALE_STORE_SAME;
        if (!ra)
            shale_store_identity_clear(&ia);
        if (!ra && !rb)
            shale_store_identity_clear(&ib);
        if ((ra && ra != SHALE_NOT_FOUND) || (!ra && rb && rb != SHALE_NOT_FOUND))
            rc = ra ? ra : rb;   /* cannot tell: say so rather than guess apart */
    }
    return rc;
}

static bool ignorable(const char *key)
{
    return !strcmp(key, IDENTITY_KEY) || !strncmp(key, ".probe/", 7);
}

/* The emptiness check on an open store (identity already read: none). */
static shale_status check_objects(shale_objstore *s, const char *uri)
{
    shale_objlist l;
    memset(&l, 0, sizeof l);
    shale_status rc = shale_objstore_list(s, "", NULL, 16, &l);
    if (rc)
        return shale_err_prefix(rc, "listing %s", uri);
    const char *first = NULL;
    for (size_t i = 0; i < l.count && !first; i++)
        if (!ignorable(l.items[i].key))
            first = l.items[i].key;
    if (first && !strncmp(first, "manifest/", 9))
        rc = shale_err(SHALE_CONFLICT, "%s holds a database (%s)", uri, first);
    else if (first && !strncmp(first, "wal/", 4))
        rc = shale_err(SHALE_CONFLICT, "%s holds a WAL (%s)", uri, first);
    else if (first)
        rc = shale_err(SHALE_CONFLICT, "%s is not empty (it holds %s)", uri, first);
    else if (l.next_cursor) {
        /* 16 ignorable objects and more: look further before saying empty. */
        shale_objlist all;
        memset(&all, 0, sizeof all);
        rc = shale_objstore_list_all(s, "", &all);
        for (size_t i = 0; !rc && i < all.count; i++)
            if (!ignorable(all.items[i].key))
                rc = shale_err(SHALE_CONFLICT, "%s is not empty (it holds %s)", uri,
                               all.items[i].key);
        shale_objlist_free(&all);
    }
    shale_objlist_free(&l);
    return rc;
}

/* What an identity that is not owner's says about the store, as a refusal. */
static shale_status refuse_identity(const char *uri, const shale_store_identity *id)
{
    if (id->kind == SHALE_STORE_KIND_CHILD_CLAIM)
        return shale_err(SHALE_CONFLICT, "%s is claimed by another split (%s, since %s)", uri,
                         id->claim ? id->claim : "?", id->created);
    const char *what = id->kind == SHALE_STORE_KIND_DB    ? "holds a database"
                       : id->kind == SHALE_STORE_KIND_WAL ? "is a database's WAL store"
                                                          : "has an identity of unknown kind";
    return shale_err(SHALE_CONFLICT, "%s %s (identity %s, created %s as %s)", uri, what,
                     id->uuid, id->created, id->uri ? id->uri : "?");
}

typedef struct objects_job {
    shale_objstore *s;
    const char *uri;
    shale_status rc;
    char msg[512];                 /* shale_errmsg() is per thread */
} objects_job;

static void objects_run(void *arg)
{
    objects_job *j = arg;
    if ((j->rc = check_objects(j->s, j->uri)))
        snprintf(j->msg, sizeof j->msg, "%s", shale_errmsg());
}

typedef struct idread_job {
    shale_objstore *s;
    shale_store_identity id;
    shale_status rc;
    char msg[512];
} idread_job;

static void idread_run(void *arg)
{
    idread_job *j = arg;
    if ((j->rc = identity_read(j->s, &j->id)) && j->rc != SHALE_NOT_FOUND)
        snprintf(j->msg, sizeof j->msg, "%s", shale_errmsg());
}

/* Checks an open store for a claim by owner: *ours when it is owner's.
 * The listing that judges a store without an identity runs beside the
 * identity's read (each a round trip on S3; a split checks every child
 * store this way at submit and again when it claims it), and is used only
 * when there is no identity.  The two run on the engine's kept threads
 * (crew_two), not a thread started per store. */
static shale_status check_open(shale_objstore *s, const char *uri, const char *owner,
                               bool *ours)
{
    *ours = false;
    objects_job oj = {s, uri, SHALE_OK, ""};
    idread_job ij = {.s = s};
    crew_two(objects_run, &oj, idread_run, &ij);
    shale_status rc = ij.rc;
    shale_store_identity id = ij.id;
    if (rc == SHALE_NOT_FOUND)
        return oj.rc ? shale_err(oj.rc, "%s", oj.msg) : SHALE_OK;
    if (rc)
        return shale_err(rc, "%s", ij.msg);
    if (owner && id.claim && !strcmp(id.claim, owner))
        *ours = true;
    else
        rc = refuse_identity(uri, &id);
    shale_store_identity_clear(&id);
    return rc;
}

shale_status shale_store_check_empty(const char *uri, const shale_options *opts,
                                     const char *owner)
{
    if (!uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "store URI is NULL");
    char *canon = NULL;
    shale_status rc = shale_store_canonical_uri(uri, opts, &canon);
    free(canon);
    if (rc || file_store_absent(uri))
        return rc;
    shale_objstore *s = NULL;
    bool ours;
    rc = open_existing(uri, opts, &s);
    if (!rc)
        rc = check_open(s, uri, owner, &ours);
    shale_objstore_close(s);
    return rc;
}

shale_status shale_store_claim_release(const char *uri, const shale_options *opts,
                                       const char *owner, bool *released)
{
    *released = false;
    if (!uri || !owner || !*owner)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "releasing a claim: a store URI and an owner are required");
    shale_objstore *s = NULL;
    shale_status rc = open_existing(uri, opts, &s);
    shale_store_identity id;
    memset(&id, 0, sizeof id);
    if (!rc)
        rc = identity_read(s, &id);
    bool ours = !rc && id.kind == SHALE_STORE_KIND_CHILD_CLAIM && id.claim &&
                !strcmp(id.claim, owner);
    if (rc == SHALE_NOT_FOUND)
        rc = SHALE_OK;   /* no identity: nothing claimed */
    if (!rc)
        shale_store_identity_clear(&id);
    /* A claim is replaced by nothing but its own clone's identity (a
     * writer's open and another owner's claim are refused by it), and no
     * clone runs for a split that ends short of its wipe: the delete after
     * the read removes this owner's claim only. */
    if (ours && !(rc = shale_objstore_delete(s, IDENTITY_KEY)))
        *released = true;
    else if (ours)
        shale_err_prefix(rc, "releasing the claim of %s (deleting %s)", uri, IDENTITY_KEY);
    shale_objstore_close(s);
    return rc;
}

shale_status shale_store_claim_checked(const char *uri, const shale_options *opts,
                                       const char *owner)
{
    if (!uri || !owner || !*owner)
        return shale_err(SHALE_INVALID_ARGUMENT, "claim: a store URI and an owner are required");
    shale_objstore *s = NULL;
    shale_store_identity id;
    bool ours = false;
    memset(&id, 0, sizeof id);
    shale_status rc = open_existing(uri, opts, &s);
    if (!rc)
        rc = identity_new(uri, opts ? &opts->store : NULL, SHALE_STORE_KIND_CHILD_CLAIM, owner,
                          &id);
    if (!rc) {
        rc = identity_write(s, &id, false);
        if (rc == SHALE_PRECONDITION_FAILED)   /* an identity already: whose? */
            rc = check_open(s, uri, owner, &ours);
        else if (rc)
            shale_err_prefix(rc, "claiming %s (writing %s)", uri, IDENTITY_KEY);
    }
    shale_store_identity_clear(&id);
    shale_objstore_close(s);
    return rc;
}

shale_status shale_store_claim(const char *uri, const shale_options *opts, const char *owner)
{
    if (!uri || !owner || !*owner)
        return shale_err(SHALE_INVALID_ARGUMENT, "claim: a store URI and an owner are required");
    shale_objstore *s = NULL;
    shale_store_identity id;
    bool ours = false;
    memset(&id, 0, sizeof id);
    shale_status rc = open_existing(uri, opts, &s);
    if (!rc)
        rc = check_open(s, uri, owner, &ours);
    if (!rc && !ours)
        rc = identity_new(uri, opts ? &opts->store : NULL, SHALE_STORE_KIND_CHILD_CLAIM, owner,
                          &id);
    if (!rc && !ours) {
        rc = identity_write(s, &id, false);
        if (rc == SHALE_PRECONDITION_FAILED)   /* someone claimed it first: who? */
            rc = check_open(s, uri, owner, &ours);
        else if (rc)
            shale_err_prefix(rc, "claiming %s (writing %s)", uri, IDENTITY_KEY);
    }
    shale_store_identity_clear(&id);
    shale_objstore_close(s);
    return rc;
}
