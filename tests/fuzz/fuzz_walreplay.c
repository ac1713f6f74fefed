/*
 * fuzz_walreplay.c -- libFuzzer target: arbitrary bytes as the WAL SST a
 * reader must replay (wal/...1.sst of a database whose manifest says WAL 1
 * is needed).  Opening the reader replays it into a memtable; it must
 * either read back what the SST holds or fail with SHALE_CORRUPT naming
 * wal/00000000000000000001.sst, never crash.  One mem:// store is reused
 * (objects overwritten) so memory does not grow with the run.
 */
#include <stdlib.h>
#include <string.h>
#include "shale.h"
#include "db/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static shale_objstore *s;
    if (!s) {
        if (shale_objstore_open("mem://fuzz-walreplay", NULL, &s))
            return 0;
        manifest *m = manifest_new();
        m->id = 1;
        m->next_wal_sst_id = 2;          /* WAL 1 is in the replay gap */
        manifest_store_write(s, m);
        manifest_free(m);
    }
    shale_objstore_put(s, "wal/00000000000000000001.sst", data, size);
    shale_objstore_delete(s, "wal/00000000000000000002.sst");
    shale_reader *r = NULL;
    if (shale_reader_open("mem://fuzz-walreplay", NULL, NULL, &r) == SHALE_OK) {
        shale_iter *it = NULL;
        if (shale_reader_scan(r, NULL, 0, NULL, 0, &it) == SHALE_OK) {
            for (int n = 0; shale_iter_valid(it) && n < 100000; shale_iter_next(it), n++) {
                size_t kl;
                shale_iter_key(it, &kl);
            }
            shale_iter_free(it);
        }
        shale_reader_close(r);
    } else if (!strstr(shale_errmsg(), "wal/00000000000000000001.sst") &&
               !strstr(shale_errmsg(), "manifest")) {
        abort();   /* a failure must name what it failed on */
    }
    return 0;
}
