/*
 * s3_creds.h -- S3 credentials found the way the AWS SDKs find them.
 *
 * Sources, first match wins (docs/object-store.md "Credentials"):
 *   1. options: s3_access_key + s3_secret_key (+ s3_session_token);
 *   2. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 *      (+ AWS_SESSION_TOKEN);
 *   3. web identity (IRSA on EKS): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE
 *      (+ AWS_ROLE_SESSION_NAME) exchanged at STS AssumeRoleWithWebIdentity
 *      for temporary credentials.  STS is https://sts.<region>.amazonaws.com
 *      (.amazonaws.com.cn for cn-* regions), or AWS_STS_ENDPOINT (tests).
 * Half a pair (a key without its secret, a role without its token file) is
 * an error naming what is missing, never a silent fall-through.
 *
 * Web-identity credentials are fetched when the provider is made (so a bad
 * token file or role shows at open, not at the first write) and again when
 * fewer than S3_CREDS_REFRESH_MS remain before their Expiration.  The token
 * file is read on every fetch: the kubelet rotates it.  A refresh that fails
 * while the old credentials are still valid is a warning (shale_warn) and is
 * tried again at most every S3_CREDS_RETRY_MS; once they have expired it is
 * the error of the request that needed them.  One thread fetches at a time;
 * the others keep using the still-valid credentials or, once they have
 * expired, wait for the fetch.
 *
 * Providers for the same role, token file, session name, STS endpoint and
 * CA are shared within the process (reference-counted), so the many stores
 * an engine opens (parents of a clone, GC, verify) make one STS call per
 * refresh, not one each.
 *
 * Thread safety: s3_creds_get() may be called from any number of threads.
 * Secrets are kept in memory only and wiped before they are freed.
 */
#ifndef SHALE_S3_CREDS_H
#define SHALE_S3_CREDS_H

#include <stdbool.h>
#include <stdint.h>
#include "shale_status.h"

#define S3_CREDS_REFRESH_MS (5 * 60 * 1000)  /* refresh this long before expiry */
#define S3_CREDS_RETRY_MS   (10 * 1000)      /* early refresh failed: wait this long */

typedef struct s3_creds s3_creds;

typedef enum s3_creds_source {
    S3_CREDS_OPTIONS = 0,       /* explicit options */
    S3_CREDS_ENV,               /* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY */
    S3_CREDS_WEB_IDENTITY,      /* AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE via STS */
} s3_creds_source;

/* What to look at.  Strings are borrowed for s3_creds_new() only. */
typedef struct s3_creds_config {
    const char *access_key, *secret_key, *session_token;  /* explicit; NULL: none */
    const char *region;         /* picks the regional STS endpoint; NULL: us-east-1 */
    const char *ca_file;        /* CA bundle for STS over https; NULL: system */
    long timeout_ms;            /* one STS request; <= 0: 10000 */
    /* Wall clock in ms since the epoch, for tests; NULL: the real one. */
    int64_t (*clock_ms)(void *ud);
    void *clock_ud;
} s3_creds_config;

/* Finds credentials per the list above and, for web identity, fetches the
 * first set.  `where` (e.g. the store URI) starts every error message.  On
 * success *out is a provider the caller releases with s3_creds_release().
 * Errors: SHALE_UNAUTHORIZED when none are found, half a pair is set, or
 * STS refused (with STS's Code and Message); SHALE_INVALID_ARGUMENT for an
 * unreadable token file or a bad session name; SHALE_CORRUPT for an STS
 * answer that is not the XML it should be; SHALE_IO / SHALE_TIMEOUT when STS
 * cannot be reached. */
shale_status s3_creds_new(const s3_creds_config *cfg, const char *where, s3_creds **out);

/* Drops the caller's reference.  Accepts NULL. */
void s3_creds_release(s3_creds *c);

s3_creds_source s3_creds_source_of(const s3_creds *c);

/* The STS endpoint a web-identity provider uses ("" for the others).
 * Borrowed from the provider. */
const char *s3_creds_sts_endpoint(const s3_creds *c);

/* One request's worth of credentials, owned by the caller. */
typedef struct s3_cred {
    char *userpwd;        /* "access:secret", for CURLOPT_USERPWD */
    char *token_header;   /* "x-amz-security-token: ...", or NULL without a session token */
    char access_key[128]; /* for logs and tests: the key id is not a secret */
    int64_t expires_ms;   /* 0: static credentials */
} s3_cred;

/* Copies the current credentials into *out, refreshing them first when
 * they are near expiry (see above).  Free with s3_cred_clear().  Errors as
 * s3_creds_new() when the credentials have expired and cannot be renewed;
 * *out is then empty. */
shale_status s3_creds_get(s3_creds *c, s3_cred *out);

/* Wipes and frees what *c holds.  Accepts an empty or zeroed struct. */
void s3_cred_clear(s3_cred *c);

/* The regional STS endpoint for region (NULL: us-east-1):
 * "https://sts.<region>.amazonaws.com/", ".amazonaws.com.cn" for cn-*.
 * *out malloc'd.  SHALE_INVALID_ARGUMENT for a region that is not 1-32 of
 * a-z 0-9 '-'. */
shale_status s3_creds_regional_sts(const char *region, char **out);

/* Number of STS calls the process has made (tests, metrics). */
uint64_t s3_creds_sts_calls(void);

#endif
