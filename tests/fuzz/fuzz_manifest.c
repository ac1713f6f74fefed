/*
 * fuzz_manifest.c -- libFuzzer target: arbitrary bytes as a manifest
 * object.  Decoding must reject bad input as SHALE_CORRUPT/UNSUPPORTED;
 * what decodes must encode and decode again to the same JSON.
 */
#include <stdlib.h>
#include <string.h>
#include "db/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    manifest *m = NULL;
    if (manifest_decode("manifest/fuzz", data, size, &m) != SHALE_OK)
        return 0;
    char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    manifest *m2 = NULL;
    if (manifest_encode(m, &a, &al) == SHALE_OK &&
        manifest_decode("manifest/fuzz2", (const uint8_t *)a, al, &m2) == SHALE_OK &&
        manifest_encode(m2, &b, &bl) == SHALE_OK) {
        if (al != bl || memcmp(a, b, al))
            abort();  /* encode/decode is not a fixed point */
    }
    free(a);
    free(b);
    manifest_free(m2);
    manifest_free(m);
    return 0;
}
