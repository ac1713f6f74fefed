/*
 * objstore_s3.h -- what the S3 backend (objstore_s3.c) shows besides its
 * constructor (objstore_int.h): a count of the HTTP requests it made.
 */
#ifndef SHALE_OBJSTORE_S3_H
#define SHALE_OBJSTORE_S3_H

#include <stdint.h>

/* HTTP requests made by every s3:// store in the process (retries,
 * read-backs and bucket checks included; reads served from a reader's
 * readahead window are not requests).  For tests and metrics. */
uint64_t objstore_s3_requests(void);

#endif
