/*
 * s3_xml.h -- parsing the S3 XML documents the backend reads (libxml2):
 * ListObjectsV2 results and error bodies -- and building the one document
 * it sends, a DeleteObjects request.
 */
#ifndef SHALE_S3_XML_H
#define SHALE_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include "shale_objstore.h"

/* Parses a ListObjectsV2 result.  Keys have `strip` (the store prefix,
 * "" for none) removed; keys not starting with it are skipped.  Fills
 * page->items/count and page->next_cursor (the NextContinuationToken when
 * IsTruncated).  url_encoded: the request asked for encoding-type=url
 * (keys come percent-encoded, so any byte survives XML).  SHALE_CORRUPT
 * with `where` in the message if the document is not a ListBucketResult. */
shale_status s3_xml_parse_list(const char *where, const char *xml, size_t len,
                               const char *strip, bool url_encoded, shale_objlist *page);

/* Extracts Code and Message from an S3 <Error> body into the buffers
 * ("" when absent or not XML). */
void s3_xml_parse_error(const char *xml, size_t len, char *code, size_t code_len,
                        char *message, size_t msg_len);

/* A DeleteObjects request body (Quiet: the answer lists only failures)
 * for `prefix` + keys[i], i < n, into a new buffer (*out, *len; the caller
 * frees it with free()).  SHALE_INVALID_ARGUMENT when a key cannot be
 * carried by an XML 1.0 document (a control character or bytes that are
 * not UTF-8): the caller deletes such keys one by one instead. */
shale_status s3_xml_build_delete(const char *prefix, const char *const *keys, size_t n,
                                 char **out, size_t *len);

/* One key a DeleteObjects answer reports as not deleted. */
typedef struct s3_delete_failure {
    char *key;          /* `strip` removed; malloc'd */
    char code[64];      /* S3's error Code, e.g. AccessDenied, InternalError */
    char message[256];
} s3_delete_failure;

/* Parses a DeleteObjects answer (DeleteResult) into the keys it failed to
 * delete (*fails, *nfails; none: NULL, 0).  Keys not starting with `strip`
 * are kept whole.  SHALE_CORRUPT with `where` in the message if the
 * document is not a DeleteResult. */
shale_status s3_xml_parse_delete(const char *where, const char *xml, size_t len,
                                 const char *strip, s3_delete_failure **fails, size_t *nfails);
void s3_xml_delete_failures_free(s3_delete_failure *fails, size_t n);

#endif
