/*
 * embed.c -- a program that embeds libshale, built from the installed
 * library through pkg-config (examples/Makefile):
 *
 *   cc embed.c $(pkg-config --cflags --libs shale) -o embed
 *   ./embed /tmp/demo          # uses file:///tmp/demo/{shard,wal,left,right}
 *
 * It opens a store with a separate WAL store, writes and reads keys, scans a
 * range, makes a checkpoint that closes the WAL gap, and clones two key
 * ranges of it into their own stores: the split Shale exists for, without
 * the agent.  It uses nothing but the public headers.
 */
#include <shale.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                   \
    do {                                                                              \
        shale_status rc_ = (call);                                                    \
        if (rc_ != SHALE_OK) {                                                        \
            fprintf(stderr, "embed: %s: %s (%s)\n", #call, shale_strerror(rc_),       \
                    shale_errmsg());                                                  \
            return 1;                                                                 \
        }                                                                             \
    } while (0)

static int count_range(const char *uri, const char *start, const char *end, uint64_t *n)
{
    shale_reader *r = NULL;
    CHECK(shale_reader_open(uri, NULL, NULL, &r));
    shale_status rc = shale_reader_count(r, start, strlen(start), end, strlen(end), n);
    shale_reader_close(r);
    CHECK(rc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: embed DIR   (an absolute path; four stores are made in it)\n");
        return 2;
    }
    char shard[4096], wal[4096], left[4096], right[4096];
    snprintf(shard, sizeof shard, "file://%s/shard", argv[1]);
    snprintf(wal, sizeof wal, "file://%s/wal", argv[1]);
    snprintf(left, sizeof left, "file://%s/left", argv[1]);
    snprintf(right, sizeof right, "file://%s/right", argv[1]);

    shale_options o;
    shale_options_init(&o);
    o.wal_store_uri = wal;
    shale_db *db = NULL;
    CHECK(shale_open(shard, &o, &db));

    /* Writes are durable when they return (await_durable is on). */
    char key[32], val[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "user%04d", i);
        snprintf(val, sizeof val, "value-%d", i);
        CHECK(shale_put(db, key, strlen(key), val, strlen(val)));
    }
    void *v = NULL;
    size_t vlen = 0;
    CHECK(shale_get(db, NULL, "user0042", 8, &v, &vlen));
    printf("get user0042 = %.*s\n", (int)vlen, (const char *)v);
    shale_free(v);

    shale_iter *it = NULL;
    CHECK(shale_scan(db, NULL, "user0100", 8, "user0103", 8, &it));
    for (; shale_iter_valid(it); shale_iter_next(it)) {
        size_t kl, vl;
        const char *k = shale_iter_key(it, &kl), *vv = shale_iter_value(it, &vl);
        printf("scan %.*s = %.*s\n", (int)kl, k, (int)vl, vv);
    }
    shale_status irc = shale_iter_status(it);
    shale_iter_free(it);
    CHECK(irc);

    /* Scope All: everything in L0 and the WAL gap closed, so the clones
     * need no WAL file of the parent. */
    shale_checkpoint cp;
    CHECK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, "embed-split", &cp));
    printf("checkpoint %s pins manifest %llu\n", cp.id, (unsigned long long)cp.manifest_id);
    CHECK(shale_close(db));

    const char *children[2] = {left, right};
    const char *bounds[3] = {"", "user0500", ""};
    for (int c = 0; c < 2; c++) {
        shale_clone_spec spec = {0};
        spec.parent_uri = shard;
        spec.parent_wal_uri = wal;
        spec.parent_checkpoint_id = cp.id;
        spec.child_uri = children[c];
        spec.range_start = bounds[c];
        spec.range_start_len = strlen(bounds[c]);
        spec.range_end = bounds[c + 1];
        spec.range_end_len = strlen(bounds[c + 1]);
        shale_clone_result res;
        CHECK(shale_clone(&spec, NULL, &res));
        uint64_t n = 0;
        if (count_range(children[c], "", "", &n))
            return 1;
        printf("clone %s: %llu keys, %llu SSTs referenced, %llu bytes copied\n", children[c],
               (unsigned long long)n, (unsigned long long)res.ssts_referenced,
               (unsigned long long)res.bytes_copied);
    }
    return 0;
}
