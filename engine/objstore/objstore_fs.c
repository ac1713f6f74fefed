/* objstore_fs.c -- placeholder until the file backend lands. */
#include "objstore/objstore_int.h"
#include "util/status_int.h"

shale_status objstore_fs_open(const char *rest, const shale_objstore_options *o,
                              shale_objstore **out)
{
    (void)o;
    (void)out;
    return shale_err(SHALE_UNSUPPORTED, "file://%s: the file backend is not built yet", rest);
}
