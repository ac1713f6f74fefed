/* s3_xml.c -- see s3_xml.h. */
#include "objstore/s3_xml.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static xmlDocPtr parse(const char *xml, size_t len)
{
    if (len > (64u << 20))
        return NULL;
    /* No network, no entities, no DTD loading: the body comes from a
     * server and is data, never instructions. */
    return xmlReadMemory(xml, (int)len, "s3.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, (const xmlChar *)name);
}

static char *text_of(const xmlNode *n)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *s = xstrdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

/* "2026-11-24T20:01:02.000Z" -> ms since the epoch (0 if unparsable). */
static int64_t parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* A key from a list answered with encoding-type=url: percent-decoded,
 * '+' is a space (S3 encodes a literal '+' as %2B).  NULL on a bad
 * escape or an embedded NUL. */
static char *url_decode(const char *s)
{
    size_t n = strlen(s);
    char *plus = malloc(n + 1);
    if (!plus)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        plus[i] = s[i] == '+' ? ' ' : s[i];
    int outlen = 0;
    char *d = curl_easy_unescape(NULL, plus, (int)n, &outlen);
    free(plus);
    if (!d)
        return NULL;
    char *out = (size_t)outlen == strlen(d) ? xstrdup(d) : NULL;
    curl_free(d);
    return out;
}

shale_status s3_xml_parse_list(const char *where, const char *xml, size_t len,
                               const char *strip, bool url_encoded, shale_objlist *page)
{
    memset(page, 0, sizeof *page);
    xmlDocPtr doc = parse(xml, len);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || !is(root, "ListBucketResult")) {
        xmlFreeDoc(doc);
        return shale_err(SHALE_CORRUPT, "%s: ListObjectsV2 answer is not a ListBucketResult",
                         where);
    }
    size_t cap = 0, slen = strlen(strip);
    bool truncated = false;
    char *token = NULL;
    shale_status rc = SHALE_OK;
    for (xmlNode *n = root->children; n && !rc; n = n->next) {
        if (is(n, "IsTruncated")) {
            char *t = text_of(n);
            truncated = t && !strcmp(t, "true");
            free(t);
        } else if (is(n, "NextContinuationToken")) {
            free(token);
            token = text_of(n);
        } else if (is(n, "Contents")) {
            char *key = NULL, *size = NULL, *mod = NULL;
            for (xmlNode *c = n->children; c; c = c->next) {
                if (is(c, "Key")) {
                    free(key);
                    key = text_of(c);
                    if (key && url_encoded) {
                        char *d = url_decode(key);
                        if (!d)
                            rc = shale_err(SHALE_CORRUPT, "%s: list answer has a badly "
                                                          "encoded key '%.200s'", where, key);
                        free(key);
                        key = d;
                    }
                }
                else if (is(c, "Size")) { free(size); size = text_of(c); }
                else if (is(c, "LastModified")) { free(mod); mod = text_of(c); }
            }
            if (key && !strncmp(key, strip, slen) && key[slen]) {
                if (page->count == cap) {
                    cap = cap ? cap * 2 : 64;
                    shale_objinfo *ni = realloc(page->items, cap * sizeof *ni);
                    if (!ni)
                        rc = SHALE_OOM();
                    else
                        page->items = ni;
                }
                if (!rc) {
                    shale_objinfo *o = &page->items[page->count];
                    o->key = xstrdup(key + slen);
                    o->size = size ? strtoull(size, NULL, 10) : 0;
                    o->mtime_ms = mod ? parse_time(mod) : 0;
                    if (!o->key)
                        rc = SHALE_OOM();
                    else
                        page->count++;
                }
            }
            free(key);
            free(size);
            free(mod);
        }
    }
    xmlFreeDoc(doc);
    if (!rc && truncated) {
        if (!token || !*token)
            rc = shale_err(SHALE_CORRUPT, "%s: truncated list without a continuation token",
                           where);
        else {
            page->next_cursor = token;
            token = NULL;
        }
    }
    free(token);
    if (rc)
        shale_objlist_free(page);
    return rc;
}

void s3_xml_parse_error(const char *xml, size_t len, char *code, size_t code_len,
                        char *message, size_t msg_len)
{
    code[0] = message[0] = '\0';
    xmlDocPtr doc = len ? parse(xml, len) : NULL;
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    for (xmlNode *n = root && is(root, "Error") ? root->children : NULL; n; n = n->next) {
        char *t = NULL;
        if (is(n, "Code") && (t = text_of(n)))
            snprintf(code, code_len, "%s", t);
        else if (is(n, "Message") && (t = text_of(n)))
            snprintf(message, msg_len, "%s", t);
        free(t);
    }
    xmlFreeDoc(doc);
}

/* Whether a key can be the text of an XML 1.0 element as it is: UTF-8 and
 * no control character (XML 1.0 has no way to write most of them, and a
 * parser normalises a carriage return). */
static bool xml_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return xmlCheckUTF8((const xmlChar *)s) != 0;
}

shale_status s3_xml_build_delete(const char *prefix, const char *const *keys, size_t n,
                                 char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++)
        if (!xml_safe(keys[i]))
            return shale_err(SHALE_INVALID_ARGUMENT, "key '%.200s' cannot be written in a "
                                                     "DeleteObjects request", keys[i]);
    if (!xml_safe(prefix))
        return shale_err(SHALE_INVALID_ARGUMENT, "prefix '%.200s' cannot be written in a "
                                                 "DeleteObjects request", prefix);
    /* The tree API escapes what must be escaped (&, <, >) in each key. */
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr root = doc ? xmlNewNode(NULL, (const xmlChar *)"Delete") : NULL;
    bool ok = root != NULL;
    if (ok) {
        xmlDocSetRootElement(doc, root);
        ok = xmlNewProp(root, (const xmlChar *)"xmlns",
                        (const xmlChar *)"http://s3.amazonaws.com/doc/2006-03-01/") &&
             xmlNewTextChild(root, NULL, (const xmlChar *)"Quiet", (const xmlChar *)"true");
    } else if (doc) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    size_t plen = strlen(prefix);
    for (size_t i = 0; ok && i < n; i++) {
        size_t kl = strlen(keys[i]);
        char *full = malloc(plen + kl + 1);
        xmlNodePtr o = full ? xmlNewChild(root, NULL, (const xmlChar *)"Object", NULL) : NULL;
        if (full) {
            memcpy(full, prefix, plen);
            memcpy(full + plen, keys[i], kl + 1);
        }
        ok = o && xmlNewTextChild(o, NULL, (const xmlChar *)"Key", (const xmlChar *)full);
        free(full);
    }
    xmlChar *mem = NULL;
    int ml = 0;
    if (ok)
        xmlDocDumpMemoryEnc(doc, &mem, &ml, "UTF-8");
    xmlFreeDoc(doc);
    if (!mem || ml <= 0) {
        xmlFree(mem);
        return SHALE_OOM();
    }
    *out = malloc((size_t)ml + 1);
    if (*out) {
        memcpy(*out, mem, (size_t)ml + 1);
        *len = (size_t)ml;
    }
    xmlFree(mem);
    return *out ? SHALE_OK : SHALE_OOM();
}

void s3_xml_delete_failures_free(s3_delete_failure *fails, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(fails[i].key);
    free(fails);
}

shale_status s3_xml_parse_delete(const char *where, const char *xml, size_t len,
                                 const char *strip, s3_delete_failure **fails, size_t *nfails)
{
    *fails = NULL;
    *nfails = 0;
    xmlDocPtr doc = parse(xml, len);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || !is(root, "DeleteResult")) {
        xmlFreeDoc(doc);
        return shale_err(SHALE_CORRUPT, "%s: DeleteObjects answer is not a DeleteResult", where);
    }
    size_t cap = 0, slen = strlen(strip), n = 0;
    s3_delete_failure *f = NULL;
    shale_status rc = SHALE_OK;
    for (xmlNode *e = root->children; e && !rc; e = e->next) {
        if (!is(e, "Error"))
            continue;  /* Deleted: what Quiet leaves out, if a server sends it anyway */
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            s3_delete_failure *nf = realloc(f, cap * sizeof *nf);
            if (!nf) {
                rc = SHALE_OOM();
                break;
            }
            f = nf;
        }
        s3_delete_failure *d = &f[n];
        memset(d, 0, sizeof *d);
        char *key = NULL;
        for (xmlNode *c = e->children; c; c = c->next) {
            char *t = NULL;
            if (is(c, "Key")) {
                free(key);
                key = text_of(c);
            } else if (is(c, "Code") && (t = text_of(c))) {
                snprintf(d->code, sizeof d->code, "%s", t);
            } else if (is(c, "Message") && (t = text_of(c))) {
                snprintf(d->message, sizeof d->message, "%s", t);
            }
            free(t);
        }
        if (!key || !*key) {
            free(key);
            rc = shale_err(SHALE_CORRUPT, "%s: DeleteObjects answer has an Error without a Key "
                                          "(%s)", where, d->code[0] ? d->code : "no Code");
            break;
        }
        d->key = xstrdup(strncmp(key, strip, slen) ? key : key + slen);
        free(key);
        if (!d->key) {
            rc = SHALE_OOM();
            break;
        }
        n++;
    }
    xmlFreeDoc(doc);
    if (rc) {
        s3_xml_delete_failures_free(f, n);
        return rc;
    }
    *fails = f;
    *nfails = n;
    return SHALE_OK;
}
