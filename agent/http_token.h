/*
 * http_token.h -- the HTTP API's bearer token: held in memory, or read
 * from a file and read again whenever the file changes (a Kubernetes
 * Secret volume swaps its files by symlink, so a rotated Secret is picked
 * up without a restart).
 *
 * The check is "Authorization: Bearer <token>" compared in constant time
 * (the loop runs over the secret's length whatever the caller sent).  A
 * token file that becomes unreadable or empty fails closed: every request
 * is refused until the file is good again, and the change is logged once.
 * The token itself is never logged.
 *
 * Thread safety: http_token_check() may be called from any thread.
 */
#ifndef SHALE_AGENT_HTTP_TOKEN_H
#define SHALE_AGENT_HTTP_TOKEN_H

#include <stdbool.h>
#include "shale_status.h"

typedef struct http_token http_token;

/* token (inline) or file (path; its first line, trailing white space
 * stripped); both NULL: no token, every caller passes.  The file must be
 * readable and hold a token now: SHALE_INVALID_ARGUMENT naming it.
 * Strings are copied. */
shale_status http_token_new(const char *token, const char *file, http_token **out);
/* True when a token is configured. */
bool http_token_required(const http_token *t);
/* True if authorization (the header's value, may be NULL) carries the
 * token.  On false *why says what was wrong (static text, no secret). */
bool http_token_check(http_token *t, const char *authorization, const char **why);
void http_token_free(http_token *t);   /* NULL ok */

#endif
