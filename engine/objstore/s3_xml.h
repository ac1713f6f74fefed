/*
 * s3_xml.h -- parsing the S3 XML documents the backend reads (libxml2):
 * ListObjectsV2 results and error bodies.
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

#endif
