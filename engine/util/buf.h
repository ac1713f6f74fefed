/*
 * buf.h -- a growable byte buffer (in the manner of curl's dynbuf).
 *
 * Every append checks for overflow and allocation failure and returns a
 * status; a failed append leaves the buffer as it was.
 */
#ifndef SHALE_BUF_H
#define SHALE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"

typedef struct shale_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} shale_buf;

#define SHALE_BUF_INIT {NULL, 0, 0}

shale_status buf_reserve(shale_buf *b, size_t extra);
shale_status buf_append(shale_buf *b, const void *p, size_t n);
shale_status buf_append_u8(shale_buf *b, uint8_t v);
shale_status buf_append_u32le(shale_buf *b, uint32_t v);
shale_status buf_append_u64le(shale_buf *b, uint64_t v);
shale_status buf_append_varint(shale_buf *b, uint64_t v);
void buf_reset(shale_buf *b);          /* len = 0, keeps memory */
void buf_free(shale_buf *b);           /* frees memory, back to INIT */
/* Hands the bytes to the caller (malloc'd; free()) and resets b.  A buffer
 * of 1 MiB or more is mapped, not malloc'd (buf.c): it is copied into a
 * malloc'd one, and on failure NULL is returned with b unchanged.  Code
 * outside buf.c never frees or reallocs data itself. */
uint8_t *buf_detach(shale_buf *b, size_t *len);

#endif
