/*
 * s3_url.h -- where an S3 request goes: bucket-name and prefix rules, the
 * endpoint, and request URLs built with curl's URL API (CURLU).
 *
 * The one invariant: every URL this module returns names the configured
 * endpoint's scheme, host and port, with the bucket (path style) or
 * "bucket." + host (virtual-host style) and a path made only of the
 * percent-encoded store prefix and key.  No key, prefix, bucket or query
 * can move a signed request to another host: the bucket is checked against
 * S3's naming rules (which leave no room for '@', ':', '/' or '#'), the
 * endpoint may not carry userinfo, a path, a query or a fragment, every byte
 * of a key outside SigV4's unreserved set is percent-encoded, and the URL is
 * parsed back and its host compared before it is returned.
 *
 * Encoding follows SigV4's canonical URI for S3: A-Z a-z 0-9 - _ . ~ are
 * kept, '/' is kept in paths, every other byte is %XX (upper-case hex).
 * curl signs the path exactly as given, so what goes on the wire is what is
 * signed.  "." and ".." segments are refused (a URL parser would collapse
 * them, and the signature would then cover another path).
 *
 * Thread safety: a target is immutable after s3_url_target_init(); any
 * number of threads may build URLs from it at once.
 */
#ifndef SHALE_S3_URL_H
#define SHALE_S3_URL_H

#include <stdbool.h>
#include "shale_status.h"

typedef struct s3_url_target {
    char *scheme;     /* "http" or "https" */
    char *host;       /* the endpoint's host, as curl normalises it ("[::1]" for IPv6) */
    char *port;       /* NULL: the scheme's default */
    char *bucket;
    char *prefix;     /* "" or "a/b/" (always ends in '/' when non-empty) */
    bool path_style;
    bool loopback;    /* host is localhost, 127.0.0.0/8 or ::1 */
} s3_url_target;

/* SHALE_OK if bucket follows S3's rules for bucket names (3-63 characters
 * of a-z 0-9 '.' '-', starting and ending with a letter or digit, no "..",
 * not an IPv4 address, no reserved prefix "xn--", "sthree-", "amzn-s3-demo-",
 * no reserved suffix "-s3alias", "--ol-s3", ".mrap", "--x-s3",
 * "--table-s3"); else SHALE_INVALID_ARGUMENT naming the bucket and the rule. */
shale_status s3_bucket_check(const char *bucket);

/* SHALE_OK if prefix ("" or "a/b", without a trailing '/') can prefix keys:
 * at most 512 bytes, no "." or ".." segment, no empty segment, no leading
 * '/', no control byte.  Else SHALE_INVALID_ARGUMENT naming bucket and
 * prefix. */
shale_status s3_prefix_check(const char *bucket, const char *prefix);

/* SHALE_OK if region ("eu-west-1") is 1-32 characters of a-z 0-9 '-': it
 * becomes part of a host name (s3.<region>.amazonaws.com) and of the SigV4
 * scope.  Else SHALE_INVALID_ARGUMENT naming it. */
shale_status s3_region_check(const char *region);

/* Parses and checks endpoint ("https://host[:port]", an optional trailing
 * '/' allowed) and fills *t for bucket and prefix (the URI's path after the
 * bucket; trailing slashes dropped), both checked as above.  path_style 1
 * or 0.  Virtual-host style needs a DNS name: an IP-address endpoint is
 * refused.  On error *t is left empty (s3_url_target_free is still safe).
 * Strings are copied. */
shale_status s3_url_target_init(s3_url_target *t, const char *endpoint, const char *bucket,
                                const char *prefix, int path_style);
void s3_url_target_free(s3_url_target *t);

/* Percent-encodes s by the rules above ('/' kept when keep_slash).
 * malloc'd; NULL when out of memory. */
char *s3_url_encode(const char *s, bool keep_slash);

/* The URL for key (NULL: the bucket itself, as ListObjectsV2 needs) with an
 * already encoded query ("a=1&b=x%2F", or NULL).  key is the store's key
 * (the prefix is added here).  *out is malloc'd (free()).  Errors:
 * SHALE_INVALID_ARGUMENT for a key with a "." or ".." segment or a query
 * with a byte outside the unreserved set and "%=&", SHALE_NO_MEMORY. */
shale_status s3_url_build(const s3_url_target *t, const char *key, const char *query,
                          char **out);

/* Warns (shale_warn, once per process and endpoint) when t sends signed
 * requests over plain http to a host that is not loopback: the signature
 * does not protect the data, and a session token travels in clear. */
void s3_url_warn_plain_http(const s3_url_target *t);

/* True if host (a host name or an IP literal, IPv6 with or without
 * brackets) is localhost or a loopback address. */
bool s3_url_host_is_loopback(const char *host);

#endif
