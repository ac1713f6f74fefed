/*
 * fuzz_request.c -- libFuzzer target: arbitrary bytes as a split request
 * (YAML or JSON, as the HTTP API and the local directory receive them).
 */
#include <stdlib.h>
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    split_request *r = NULL;
    if (split_request_parse("fuzz", (const char *)data, size, &r) != SHALE_OK)
        return 0;
    split_request_validate(r, "orders-0", "file:///tmp/p", "file:///tmp/w", NULL, 0, NULL, 0);
    char *json = NULL;
    if (split_request_to_json(r, &json) == SHALE_OK)
        free(json);
    split_request_free(r);
    return 0;
}
