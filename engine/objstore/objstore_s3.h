/*
 * objstore_s3.h -- what the S3 backend (objstore_s3.c) shows besides its
 * constructor (objstore_int.h): a count of the HTTP requests it made, and
 * its reader handles with readahead (s3_readahead.c).
 */
#ifndef SHALE_OBJSTORE_S3_H
#define SHALE_OBJSTORE_S3_H

#include <stdint.h>
#include "shale_objstore.h"

/* HTTP requests made by every s3:// store in the process (retries,
 * read-backs and bucket checks included; reads served from a reader's
 * readahead window are not requests).  For tests and metrics. */
uint64_t objstore_s3_requests(void);

/* The objstore_ops reader entries of the S3 backend (contract in
 * objstore_int.h).  A size hint is trusted; without one the object is
 * HEADed. */
shale_status objstore_s3_reader_open(shale_objstore *st, const char *key, uint64_t size_hint,
                                     shale_objreader **out);
shale_status objstore_s3_reader_read(shale_objreader *rd, uint64_t offset, uint64_t len,
                                     void **data, size_t *got);
void objstore_s3_reader_close(shale_objreader *rd);

#endif
