/* objstore_s3.c -- placeholder until the S3 backend lands. */
#include "objstore/objstore_int.h"
#include "util/status_int.h"

shale_status objstore_s3_open(const char *rest, const shale_objstore_options *o,
                              shale_objstore **out)
{
    (void)o;
    (void)out;
    return shale_err(SHALE_UNSUPPORTED, "s3://%s: the S3 backend is not built yet", rest);
}
