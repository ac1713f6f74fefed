/*
 * fuzz_s3xml.c -- libFuzzer target: arbitrary bytes as an S3
 * ListObjectsV2 answer, as a DeleteObjects answer and as an S3 error body
 * (libxml2 underneath).
 */
#include <stdlib.h>
#include "objstore/s3_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shale_objlist page;
    if (s3_xml_parse_list("fuzz", (const char *)data, size, "pre/", size % 2, &page) == SHALE_OK)
        shale_objlist_free(&page);
    s3_delete_failure *f = NULL;
    size_t nf = 0;
    if (s3_xml_parse_delete("fuzz", (const char *)data, size, "pre/", &f, &nf) == SHALE_OK)
        s3_xml_delete_failures_free(f, nf);
    char code[64], msg[256];
    s3_xml_parse_error((const char *)data, size, code, sizeof code, msg, sizeof msg);
    return 0;
}
