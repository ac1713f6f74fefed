/*
 * bloom.h -- the per-SST bloom filter over user keys.
 *
 * Layout: u8 k (number of probes), then the bit array (bit i is byte i/8,
 * bit i%8).  Probes use double hashing of one XXH3-64 of the key: h1 = low
 * 32 bits, h2 = high 32 bits, probe j tests bit (h1 + j*h2) mod nbits.
 */
#ifndef SHALE_BLOOM_H
#define SHALE_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale_status.h"
#include "util/buf.h"

/* Builds a filter for n key hashes (XXH3_64bits of each user key). */
shale_status bloom_build(const uint64_t *hashes, size_t n, uint32_t bits_per_key,
                         shale_buf *out);
/* True unless the filter proves the key absent.  A malformed or empty
 * filter answers true (never a false negative). */
bool bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash);
uint64_t bloom_hash(const uint8_t *key, size_t klen);

#endif
