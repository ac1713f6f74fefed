/* bloom.c -- see bloom.h. */
#include "table/bloom.h"
#include "util/status_int.h"

#include <string.h>
#include <xxhash.h>

uint64_t bloom_hash(const uint8_t *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

shale_status bloom_build(const uint64_t *hashes, size_t n, uint32_t bits_per_key,
                         shale_buf *out)
{
    uint32_t k = (uint32_t)(bits_per_key * 0.69);   /* ln 2 */
    if (k < 1)
        k = 1;
    if (k > 30)
        k = 30;
    uint64_t nbits = (uint64_t)n * bits_per_key;
    if (nbits < 64)
        nbits = 64;
    size_t nbytes = (size_t)((nbits + 7) / 8);
    nbits = (uint64_t)nbytes * 8;
    size_t start = out->len;
    shale_status rc = buf_append_u8(out, (uint8_t)k);
    if (!rc)
        rc = buf_reserve(out, nbytes);
    if (rc)
        return rc;
    uint8_t *bits = out->data + start + 1;
    memset(bits, 0, nbytes);
    out->len += nbytes;
    for (size_t i = 0; i < n; i++) {
        uint32_t h1 = (uint32_t)hashes[i], h2 = (uint32_t)(hashes[i] >> 32);
        for (uint32_t j = 0; j < k; j++) {
            uint64_t bit = ((uint64_t)h1 + (uint64_t)j * h2) % nbits;
            bits[bit / 8] |= (uint8_t)(1u << (bit % 8));
        }
    }
    return SHALE_OK;
}

bool bloom_may_contain(const uint8_t *filter, size_t len, uint64_t hash)
{
    if (len < 2)
        return true;
    uint32_t k = filter[0];
    if (k < 1 || k > 30)
        return true;
    uint64_t nbits = (uint64_t)(len - 1) * 8;
    const uint8_t *bits = filter + 1;
    uint32_t h1 = (uint32_t)hash, h2 = (uint32_t)(hash >> 32);
    for (uint32_t j = 0; j < k; j++) {
        uint64_t bit = ((uint64_t)h1 + (uint64_t)j * h2) % nbits;
        if (!(bits[bit / 8] & (1u << (bit % 8))))
            return false;
    }
    return true;
}
