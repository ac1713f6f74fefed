/* test_cache.c -- the block cache: hits, references, LRU eviction by bytes,
 * and how evenly blocks spread over shards and buckets. */
#include "support/testutil.h"
#include "table/cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *block_of(size_t len, uint8_t fill)
{
    uint8_t *d = malloc(len);
    assert_non_null(d);
    memset(d, fill, len);
    return d;
}

static void test_insert_then_lookup(void **state)
{
    (void)state;
    block_cache *c = block_cache_new(1 << 20);
    uint64_t f = block_cache_file_id("file:///s", "compacted/a.sst");
    const cached_block *b = block_cache_insert(c, f, 4096, block_of(100, 7), 100);
    assert_non_null(b);
    block_cache_release(c, b);
    const cached_block *h = block_cache_lookup(c, f, 4096);
    assert_non_null(h);
    assert_int_equal(h->len, 100);
    assert_int_equal(h->data[99], 7);
    block_cache_release(c, h);
    assert_null(block_cache_lookup(c, f, 0));                     /* other offset */
    assert_null(block_cache_lookup(c, f + 1, 4096));              /* other file */
    /* Inserting a key already present keeps the first block. */
    const cached_block *d = block_cache_insert(c, f, 4096, block_of(50, 9), 50);
    assert_int_equal(d->len, 100);
    block_cache_release(c, d);
    block_cache_free(c);
}

static void test_file_ids_differ_by_store_and_key(void **state)
{
    (void)state;
    uint64_t a = block_cache_file_id("file:///s", "compacted/a.sst");
    assert_true(a == block_cache_file_id("file:///s", "compacted/a.sst"));
    assert_true(a != block_cache_file_id("file:///t", "compacted/a.sst"));
    assert_true(a != block_cache_file_id("file:///s", "compacted/b.sst"));
}

static void test_eviction_keeps_usage_bounded(void **state)
{
    (void)state;
    /* 16 shards of 64 KiB; 4 KiB blocks. */
    block_cache *c = block_cache_new(1 << 20);
    for (uint64_t i = 0; i < 2000; i++) {
        const cached_block *b = block_cache_insert(c, 1, i * 4096, block_of(4096, 1), 4096);
        assert_non_null(b);
        block_cache_release(c, b);
    }
    assert_true(block_cache_usage(c) <= (1 << 20));
    assert_true(block_cache_usage(c) > (1 << 19));
    /* The newest block survived, the oldest was evicted. */
    const cached_block *n = block_cache_lookup(c, 1, 1999 * 4096);
    assert_non_null(n);
    block_cache_release(c, n);
    assert_null(block_cache_lookup(c, 1, 0));
    block_cache_free(c);
}

static void test_referenced_block_outlives_eviction(void **state)
{
    (void)state;
    block_cache *c = block_cache_new(16 * 4096);
    const cached_block *held = block_cache_insert(c, 9, 0, block_of(4096, 42), 4096);
    for (uint64_t i = 1; i < 500; i++)
        block_cache_release(c, block_cache_insert(c, 9, i * 4096, block_of(4096, 0), 4096));
    assert_int_equal(held->data[4095], 42);   /* still readable (ASan checks) */
    block_cache_release(c, held);
    block_cache_free(c);
}

/* Blocks of a few SSTs at 4 KiB offsets (what readers insert) must spread
 * over all shards and buckets, and a cache has buckets for the blocks its
 * capacity holds.  An earlier hash took the shard and the bucket from the
 * same bits, so each shard used 1/16 of its buckets (chains of ~64 here);
 * a fixed 1,024 buckets per shard gave chains of ~15 (4 per bucket on
 * average).  At 1 GiB there is a bucket per 4 KiB of capacity: 65,536
 * blocks over 262,144 buckets, the longest chain about 5. */
static void test_blocks_spread_over_buckets(void **state)
{
    (void)state;
    block_cache *c = block_cache_new((size_t)1 << 30);
    for (uint64_t f = 0; f < 16; f++) {
        uint64_t id = block_cache_file_id("file:///s", (char[]){(char)('a' + f), 0});
        for (uint64_t off = 0; off < 4096; off++) {
            const cached_block *b = block_cache_insert(c, id, off * 4096, block_of(1, 0), 1);
            block_cache_release(c, b);
        }
    }
    size_t longest = block_cache_longest_chain(c);
    assert_true(longest >= 1);
    if (longest > 8)
        fail_msg("longest hash chain %zu for 65,536 blocks in a 1 GiB cache", longest);
    block_cache_free(c);
}

/* Second chance: a block looked up since it was inserted survives the
 * eviction that takes it when nobody looked (the same sequence in a
 * second cache without the lookup is the control); usage stays bounded. */
/* Enough new blocks that the oldest one's shard evicts it (deterministic:
 * the hash is fixed). */
enum { EXTRA = 160 };

static void second_chance_run(bool look, bool *survived)
{
    block_cache *c = block_cache_new(1 << 20);    /* 16 blocks per shard */
    for (uint64_t i = 0; i < 128; i++)
        block_cache_release(c, block_cache_insert(c, 5, i * 4096, block_of(4096, 1), 4096));
    const cached_block *a = block_cache_lookup(c, 5, 0);   /* the oldest */
    assert_non_null(a);
    block_cache_release(c, a);
    if (!look) {   /* the control: start again without the lookup */
        block_cache_free(c);
        c = block_cache_new(1 << 20);
        for (uint64_t i = 0; i < 128; i++)
            block_cache_release(c, block_cache_insert(c, 5, i * 4096, block_of(4096, 1), 4096));
    }
    for (uint64_t i = 128; i < 128 + EXTRA; i++)
        block_cache_release(c, block_cache_insert(c, 5, i * 4096, block_of(4096, 1), 4096));
    assert_true(block_cache_usage(c) <= (1 << 20));
    a = block_cache_lookup(c, 5, 0);
    *survived = a != NULL;
    block_cache_release(c, a);
    block_cache_free(c);
}

static void test_hit_block_gets_second_chance(void **state)
{
    (void)state;
    bool with = false, without = true;
    second_chance_run(true, &with);
    second_chance_run(false, &without);
    assert_true(with);
    assert_false(without);
}

/* Every block inserted into a growing cache that holds them all is found
 * again, with its bytes, however the lookups are interleaved. */
static void test_lookup_after_growth(void **state)
{
    (void)state;
    enum { N = 40000 };
    block_cache *c = block_cache_new((size_t)N * 64 * 2);   /* room for uneven shards */
    for (uint64_t i = 0; i < N; i++) {
        block_cache_release(c, block_cache_insert(c, i % 37, i * 4096, block_of(64, (uint8_t)(i % 251)), 64));
        if (i % 1000 == 999)   /* an earlier block, while it grows */
            for (uint64_t j = 0; j <= i; j += 97) {
                const cached_block *b = block_cache_lookup(c, j % 37, j * 4096);
                assert_non_null(b);
                block_cache_release(c, b);
            }
    }
    for (uint64_t i = 0; i < N; i++) {
        const cached_block *b = block_cache_lookup(c, i % 37, i * 4096);
        assert_non_null(b);
        assert_int_equal(b->len, 64);
        assert_int_equal(b->data[63], (uint8_t)(i % 251));
        block_cache_release(c, b);
    }
    assert_int_equal(block_cache_usage(c), (size_t)N * 64);
    block_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_then_lookup),
        cmocka_unit_test(test_file_ids_differ_by_store_and_key),
        cmocka_unit_test(test_eviction_keeps_usage_bounded),
        cmocka_unit_test(test_referenced_block_outlives_eviction),
        cmocka_unit_test(test_hit_block_gets_second_chance),
        cmocka_unit_test(test_lookup_after_growth),
        cmocka_unit_test(test_blocks_spread_over_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
