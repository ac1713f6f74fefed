/*
 * test_admin_api.c -- the public API that programs outside the engine use
 * instead of its private headers (shale_status.h error setters,
 * shale_admin.h object keys, key order, manifest view, options copy).
 * Everything but the constant comparison goes through public headers only.
 */
#include "support/dbtest.h"
#include "shale_admin.h"
#include "db/paths.h"   /* only to compare the public constants with the engine's */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- error setters ------------------------------------------------------ */

static void error_set_and_prefix(void **state)
{
    (void)state;
    shale_error_clear();
    assert_string_equal(shale_errmsg(), "");
    assert_int_equal(shale_error_set(SHALE_CONFLICT, "split %s: %d children", "s1", 3),
                     SHALE_CONFLICT);
    assert_string_equal(shale_errmsg(), "split s1: 3 children");
    assert_int_equal(shale_error_prefix(SHALE_IO, "step %s", "Clone"), SHALE_IO);
    assert_string_equal(shale_errmsg(), "step Clone: split s1: 3 children");
    /* SHALE_OK is returned as given: a setter never invents a failure. */
    assert_int_equal(shale_error_set(SHALE_OK, "note"), SHALE_OK);
    shale_error_clear();
    assert_string_equal(shale_errmsg(), "");
}

/* The past bug: a wrapper rewording shale_errmsg() into the same slot got
 * garbled text, because the message was formatted into the buffer it was
 * read from.  Both setters take the message as an argument intact. */
static void error_reword_own_message(void **state)
{
    (void)state;
    shale_error_set(SHALE_NOT_FOUND, "object %s is missing", "wal/00000000000000000007.sst");
    shale_error_set(SHALE_INVALID_ARGUMENT, "refused: %s (twice: %s)", shale_errmsg(),
                    shale_errmsg());
    assert_string_equal(shale_errmsg(),
                        "refused: object wal/00000000000000000007.sst is missing (twice: "
                        "object wal/00000000000000000007.sst is missing)");
    shale_error_set(SHALE_IO, "inner");
    shale_error_prefix(SHALE_IO, "outer[%s]", shale_errmsg());
    assert_string_equal(shale_errmsg(), "outer[inner]: inner");
}

/* A message set by an engine call flows through a wrapper's prefix and
 * rewording unchanged. */
static void error_wraps_engine_message(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("admin_api_err");
    char *uri = tu_file_uri(dir, "nodb");
    shale_reader *r = NULL;
    shale_status rc = shale_reader_open(uri, NULL, NULL, &r);
    assert_int_not_equal(rc, SHALE_OK);
    char engine[1024];
    snprintf(engine, sizeof engine, "%s", shale_errmsg());
    assert_true(strlen(engine) > 0);
    assert_int_equal(shale_error_prefix(rc, "verify: child %s", "a"), rc);
    char want[1200];
    snprintf(want, sizeof want, "verify: child a: %s", engine);
    assert_string_equal(shale_errmsg(), want);
    shale_error_set(rc, "split s1 failed (%s)", shale_errmsg());
    snprintf(want, sizeof want, "split s1 failed (verify: child a: %s)", engine);
    assert_string_equal(shale_errmsg(), want);
    tu_rmtree(dir);
    free(uri);
    free(dir);
}

/* Long messages are cut at the slot's size, the prefix kept whole. */
static void error_long_messages_cut(void **state)
{
    (void)state;
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    shale_error_set(SHALE_IO, "%s", big);
    assert_int_equal(strlen(shale_errmsg()), 1023);
    shale_error_prefix(SHALE_IO, "ctx");
    assert_int_equal(strlen(shale_errmsg()), 1023);
    assert_memory_equal(shale_errmsg(), "ctx: xxx", 8);
}

static void *other_thread(void *arg)
{
    (void)arg;
    shale_error_set(SHALE_TIMEOUT, "the other thread's message");
    return NULL;
}

static void error_slot_per_thread(void **state)
{
    (void)state;
    shale_error_set(SHALE_IO, "mine");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    pthread_join(t, NULL);
    assert_string_equal(shale_errmsg(), "mine");
}

/* ---- object keys and key order ------------------------------------------ */

static void keys_build_and_parse(void **state)
{
    (void)state;
    assert_string_equal(SHALE_WAL_DIR, PATH_WAL_DIR);
    assert_string_equal(SHALE_MANIFEST_DIR, PATH_MANIFEST_DIR);
    assert_string_equal(SHALE_SST_DIR, PATH_SST_DIR);
    assert_string_equal(SHALE_JOURNAL_DIR, PATH_JOURNAL_DIR);
    assert_string_equal(SHALE_LEASE_DIR, PATH_LEASE_DIR);

    char k[SHALE_KEY_MAX];
    uint64_t id = 0;
    shale_wal_key(7, k, sizeof k);
    assert_string_equal(k, "wal/00000000000000000007.sst");
    assert_true(shale_wal_key_parse(k, &id));
    assert_true(id == 7);
    id = 99;
    assert_false(shale_wal_key_parse("wal/00000000000000000000.sst", &id));
    assert_false(shale_wal_key_parse("wal/0000000000000000007.sst", &id));
    assert_false(shale_wal_key_parse("wal/00000000000000000007.sst.tmp", &id));
    assert_true(id == 99);   /* untouched on refusal */

    shale_sst_key("01HZZZZZZZZZZZZZZZZZZZZZZZ", k, sizeof k);
    assert_string_equal(k, "compacted/01HZZZZZZZZZZZZZZZZZZZZZZZ.sst");

    char jk[SHALE_JOURNAL_KEY_MAX], name[SHALE_JOURNAL_NAME_MAX + 1];
    uint64_t v = 0;
    assert_true(shale_journal_key("orders-split-1", 3, jk, sizeof jk));
    assert_string_equal(jk, "splits/orders-split-1/00000000000000000003.json");
    assert_true(shale_journal_key_parse(jk, name, sizeof name, &v));
    assert_string_equal(name, "orders-split-1");
    assert_true(v == 3);
    assert_false(shale_journal_key("_lease", 1, jk, sizeof jk));
    assert_false(shale_journal_key("a/b", 1, jk, sizeof jk));

    uint64_t seq = 0;
    shale_lease_key(12, k, sizeof k);
    assert_string_equal(k, "splits/_lease/00000000000000000012.json");
    assert_true(shale_lease_key_parse(k, &seq));
    assert_true(seq == 12);
    /* A lease record is not a journal, a journal not a lease record. */
    assert_false(shale_journal_key_parse(k, name, sizeof name, &v));
    assert_false(shale_lease_key_parse(jk, &seq));
}

static void key_compare_order(void **state)
{
    (void)state;
    assert_int_equal(shale_key_compare("a", 1, "ab", 2), -1);
    assert_int_equal(shale_key_compare("b", 1, "ab", 2), 1);
    assert_int_equal(shale_key_compare("abcdefghij", 10, "abcdefghij", 10), 0);
    assert_int_equal(shale_key_compare("abcdefghiz", 10, "abcdefghij", 10), 1);
    assert_int_equal(shale_key_compare(NULL, 0, "", 0), 0);
    assert_int_equal(shale_key_compare(NULL, 0, "\x00", 1), -1);
    /* Bytes are unsigned: 0xff sorts after 'z'. */
    assert_int_equal(shale_key_compare("\xff", 1, "z", 1), 1);
}

/* ---- manifest view --------------------------------------------------------- */

static void put_range(shale_db *db, unsigned from, unsigned to)
{
    for (unsigned i = from; i < to; i++)
        dt_put(db, i, 1);
}

static void manifest_view_matches_database(void **state)
{
    (void)state;
    dt_fixture *f = dt_fixture_new("admin_api_view");
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    put_range(db, 0, 200);
    TU_OK(shale_compact(db, true));          /* one sorted run */
    put_range(db, 200, 260);
    TU_OK(shale_flush_memtable(db));         /* and L0 */
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 0, "for-view", &cp));
    shale_db_info info;
    TU_OK(shale_db_info_get(db, &info));

    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->uri, &f->o.store, &s));
    shale_manifest_view *v = NULL;
    TU_OK(shale_manifest_view_load(s, 0, &v));
    assert_true(v->struct_size == sizeof *v);
    assert_true(v->id == info.manifest_id);
    assert_true(v->writer_epoch == info.writer_epoch);
    assert_true(v->replay_after_wal_id == info.replay_after_wal_id);
    assert_true(v->initialized);
    assert_int_equal(v->l0_count, info.l0_count);
    assert_int_equal(v->run_count, info.sorted_run_count);
    assert_true(v->l0_count >= 1 && v->run_count >= 1);
    assert_null(v->origin.parent_uri);
    assert_int_equal(v->parent_count, 0);
    assert_null(v->range_start);

    /* Every SST is an object of the recorded size; the entries add up to the
     * keys written (one version each, no deletes). */
    uint64_t entries = 0, ssts = 0;
    for (size_t l = 0; l <= v->run_count; l++) {
        const shale_manifest_sst *h = l == 0 ? v->l0 : v->runs[l - 1].ssts;
        size_t n = l == 0 ? v->l0_count : v->runs[l - 1].count;
        for (size_t i = 0; i < n; i++) {
            char key[SHALE_KEY_MAX];
            uint64_t size = 0;
            shale_sst_key(h[i].id, key, sizeof key);
            TU_OK(shale_objstore_head(s, key, &size, NULL));
            assert_true(size == h[i].size);
            assert_null(h[i].store_uri);
            assert_true(shale_key_compare(h[i].first_key, h[i].first_klen, h[i].last_key,
                                          h[i].last_klen) <= 0);
            entries += h[i].entries;
            ssts++;
        }
    }
    assert_true(ssts == info.sst_count);
    assert_true(entries == 260);

    /* The run holds k00000000..k00000199: [k00000300, end) misses it. */
    const shale_manifest_sst *r0 = &v->runs[0].ssts[0];
    assert_true(shale_manifest_sst_overlaps(r0, NULL, 0, NULL, 0));
    assert_true(shale_manifest_sst_overlaps(r0, r0->first_key, r0->first_klen, NULL, 0));
    assert_false(shale_manifest_sst_overlaps(r0, "k00000300", 9, NULL, 0));
    assert_false(shale_manifest_sst_overlaps(r0, NULL, 0, r0->first_key, r0->first_klen));

    const shale_manifest_checkpoint *c = shale_manifest_view_checkpoint(v, cp.id);
    assert_non_null(c);
    assert_true(c->manifest_id == cp.manifest_id);
    assert_string_equal(c->name, "for-view");
    assert_null(shale_manifest_view_checkpoint(v, "00000000-0000-4000-8000-000000000000"));

    /* A given version, and one that does not exist. */
    shale_manifest_view *v1 = NULL;
    TU_OK(shale_manifest_view_load(s, 1, &v1));
    assert_true(v1->id == 1);
    shale_manifest_view_free(v1);
    v1 = (shale_manifest_view *)1;
    TU_RC(SHALE_NOT_FOUND, shale_manifest_view_load(s, v->id + 100, &v1));
    assert_null(v1);

    /* A reader's view is the version it stands on. */
    shale_reader *rd = NULL;
    TU_OK(shale_reader_open(f->uri, &f->o, NULL, &rd));
    shale_db_info ri;
    TU_OK(shale_reader_info_get(rd, &ri));
    shale_manifest_view *rv = NULL;
    TU_OK(shale_reader_manifest_view(rd, &rv));
    assert_true(rv->id == ri.manifest_id);
    assert_int_equal(rv->l0_count, ri.l0_count);
    shale_manifest_view_free(rv);
    shale_reader_close(rd);

    shale_manifest_view_free(v);
    shale_manifest_view_free(NULL);
    shale_objstore_close(s);
    TU_OK(shale_close(db));
    dt_fixture_free(f);
}

static void manifest_view_of_a_clone(void **state)
{
    (void)state;
    dt_fixture *f = dt_fixture_new("admin_api_clone");
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    put_range(db, 0, 100);
    TU_OK(shale_compact(db, true));
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, NULL, &cp));
    TU_OK(shale_close(db));

    char *child = tu_file_uri(f->dir, "child");
    shale_clone_spec sp = {0};
    sp.parent_uri = f->uri;
    sp.parent_wal_uri = f->wal_uri;
    sp.parent_checkpoint_id = cp.id;
    sp.child_uri = child;
    sp.range_start = "k00000050";
    sp.range_start_len = 9;
    shale_options o = f->o;
    o.wal_store_uri = NULL;
    TU_OK(shale_clone(&sp, &o, NULL));

    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(child, &o.store, &s));
    shale_manifest_view *v = NULL;
    TU_OK(shale_manifest_view_load(s, 0, &v));
    assert_non_null(v->origin.parent_uri);
    assert_string_equal(v->origin.parent_checkpoint_id, cp.id);
    assert_true(v->origin.has_range);
    assert_int_equal(v->parent_count, 1);
    assert_non_null(v->parents[0].store_uri);
    assert_string_equal(v->parents[0].source_checkpoint_id, cp.id);
    assert_int_equal(v->range_start_len, 9);
    assert_memory_equal(v->range_start, "k00000050", 9);
    assert_null(v->range_end);
    assert_true(v->run_count >= 1);
    /* The child's SSTs are the parent's objects, named by its store. */
    assert_non_null(v->runs[0].ssts[0].store_uri);
    assert_string_equal(v->runs[0].ssts[0].store_uri, v->parents[0].store_uri);
    shale_manifest_view_free(v);
    shale_objstore_close(s);
    free(child);
    dt_fixture_free(f);
}

/* ---- store options copy ---------------------------------------------------- */

/* The calls the split uses: a checkpoint removed on a view the caller
 * holds (and again: a redone removal passes), an SST's block count from
 * its index, an SST opened in a reader's cache, and a claim whose checks
 * were made already (ours passes again, another owner's is refused). */
static void split_helpers(void **state)
{
    (void)state;
    dt_fixture *f = dt_fixture_new("admin_api_split");
    shale_db *db = NULL;
    TU_OK(shale_open(f->uri, &f->o, &db));
    put_range(db, 0, 300);
    TU_OK(shale_compact(db, true));
    shale_checkpoint cp;
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_DURABLE, 0, "to-drop", &cp));
    TU_OK(shale_close(db));

    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(f->uri, &f->o.store, &s));
    shale_manifest_view *v = NULL;
    TU_OK(shale_manifest_view_load(s, 0, &v));
    assert_non_null(shale_manifest_view_checkpoint(v, cp.id));
    assert_true(v->run_count >= 1 && v->runs[0].count >= 1);
    const shale_manifest_sst *h = &v->runs[0].ssts[0];
    char key[SHALE_KEY_MAX];
    shale_sst_key(h->id, key, sizeof key);
    uint64_t blocks = 0;
    TU_OK(shale_sst_block_count(s, key, h->size, &blocks));
    assert_true(blocks >= 1);
    TU_RC(SHALE_NOT_FOUND, shale_sst_block_count(s, "compacted/none.sst", 100, &blocks));

    shale_options ro = f->o;
    shale_reader *r = NULL;
    TU_OK(shale_reader_open(f->uri, &ro, NULL, &r));
    TU_OK(shale_reader_open_sst(r, h));
    shale_reader_close(r);

    TU_OK(shale_checkpoint_delete_on(s, cp.id, v));
    TU_OK(shale_checkpoint_delete_on(s, cp.id, v));   /* on a stale view: redone */
    shale_manifest_view *after = NULL;
    TU_OK(shale_manifest_view_load(s, 0, &after));
    assert_null(shale_manifest_view_checkpoint(after, cp.id));
    assert_true(after->id > v->id);
    shale_manifest_view_free(after);
    shale_manifest_view_free(v);
    shale_objstore_close(s);

    char *dir = tu_tmpdir("admin_api_claim");
    char *kid = tu_file_uri(dir, "kid");
    TU_OK(shale_store_check_empty(kid, NULL, "split a"));
    TU_OK(shale_store_claim_checked(kid, NULL, "split a"));
    TU_OK(shale_store_claim_checked(kid, NULL, "split a"));
    TU_RC(SHALE_CONFLICT, shale_store_claim_checked(kid, NULL, "split b"));
    /* Released by its owner only; then another split may claim it. */
    bool released = true;
    TU_OK(shale_store_claim_release(kid, NULL, "split b", &released));
    assert_false(released);
    TU_RC(SHALE_CONFLICT, shale_store_claim_checked(kid, NULL, "split b"));
    TU_OK(shale_store_claim_release(kid, NULL, "split a", &released));
    assert_true(released);
    shale_store_identity id;
    TU_RC(SHALE_NOT_FOUND, shale_store_identity_read(kid, NULL, &id));
    TU_OK(shale_store_claim_release(kid, NULL, "split a", &released));
    assert_false(released);   /* nothing left to release */
    TU_OK(shale_store_claim_checked(kid, NULL, "split b"));
    free(kid);
    free(dir);
    dt_fixture_free(f);
}

static void options_copy_is_deep(void **state)
{
    (void)state;
    char endpoint[] = "http://127.0.0.1:9000", secret[] = "s3cr3t";
    shale_objstore_options src;
    memset(&src, 0, sizeof src);
    src.s3_endpoint = endpoint;
    src.s3_secret_key = secret;
    src.s3_path_style = 1;
    shale_objstore_options dst;
    TU_OK(shale_objstore_options_copy(&dst, &src));
    endpoint[0] = 'X';
    secret[0] = 'X';
    assert_string_equal(dst.s3_endpoint, "http://127.0.0.1:9000");
    assert_string_equal(dst.s3_secret_key, "s3cr3t");
    assert_null(dst.s3_region);
    assert_int_equal(dst.s3_path_style, 1);
    assert_true(dst.s3_endpoint != src.s3_endpoint);
    shale_objstore_options_free(&dst);
    assert_null(dst.s3_endpoint);
    assert_null(dst.s3_secret_key);
    assert_int_equal(dst.s3_path_style, 0);
    shale_objstore_options_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_set_and_prefix),
        cmocka_unit_test(error_reword_own_message),
        cmocka_unit_test(error_wraps_engine_message),
        cmocka_unit_test(error_long_messages_cut),
        cmocka_unit_test(error_slot_per_thread),
        cmocka_unit_test(keys_build_and_parse),
        cmocka_unit_test(key_compare_order),
        cmocka_unit_test(manifest_view_matches_database),
        cmocka_unit_test(manifest_view_of_a_clone),
        cmocka_unit_test(split_helpers),
        cmocka_unit_test(options_copy_is_deep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
