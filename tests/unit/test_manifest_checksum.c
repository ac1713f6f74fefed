/*
 * test_manifest_checksum.c -- the manifest checksum is defined over bytes
 * (docs/format.md "Checksum"): XXH3-64, seed 0, of the object's bytes with
 * the 16 digits of its first member "checksum": "xxh3-64:<hex>" replaced by
 * '0'.  These tests compute it as the docs say, from the raw bytes in the
 * store, without manifest.c; check that any change of a byte (even one that
 * keeps the JSON equal, like whitespace) is caught; and that manifests
 * written before this definition (16 bare digits over jansson's re-encoding)
 * are still read.
 */
#include "support/testutil.h"
#include "db/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

/* The newest manifest object of a file:// database, raw. */
static char *latest_manifest(const char *dir, size_t *len)
{
    char path[4096];
    for (int id = 100; id > 0; id--) {
        snprintf(path, sizeof path, "%s/db/manifest/%020d.manifest", dir, id);
        char *b = slurp(path, len);
        if (b)
            return b;
    }
    return NULL;
}

/* The definition, independently of manifest.c. */
static void checksum_by_the_docs(const char *bytes, size_t len, char got[17], char want[17])
{
    const char *prefix = "{\n  \"checksum\": \"xxh3-64:";
    size_t p = strlen(prefix);
    assert_true(len > p + 17);
    assert_memory_equal(bytes, prefix, p);
    memcpy(want, bytes + p, 16);
    want[16] = 0;
    char *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, bytes, len);
    memset(copy + p, '0', 16);
    snprintf(got, 17, "%016llx", (unsigned long long)XXH3_64bits(copy, len));
    free(copy);
}

static char *make_db(const char *name)
{
    char *dir = tu_tmpdir(name);
    char *uri = tu_file_uri(dir, "db");
    shale_db *db = NULL;
    TU_OK(shale_open(uri, NULL, &db));
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%03d", i);
        TU_OK(shale_put(db, k, strlen(k), "v", 1));
    }
    TU_OK(shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, 0, "ck \"quoted\" é", NULL));
    TU_OK(shale_close(db));
    free(uri);
    return dir;
}

static void test_checksum_reproducible_from_bytes(void **state)
{
    (void)state;
    char *dir = make_db("checksum_bytes");
    size_t len = 0;
    char *bytes = latest_manifest(dir, &len);
    assert_non_null(bytes);
    char got[17], want[17];
    checksum_by_the_docs(bytes, len, got, want);
    assert_string_equal(got, want);
    manifest *m = NULL;
    TU_OK(manifest_decode("m", (const uint8_t *)bytes, len, &m));
    assert_true(m->l0_count + m->run_count > 0);
    manifest_free(m);
    free(bytes);
    tu_rmtree(dir);
    free(dir);
}

/* A change that keeps the JSON value the same (a space, a reordering) is a
 * change of bytes: the checksum says what was stored, not what it means. */
static void test_checksum_catches_every_byte(void **state)
{
    (void)state;
    char *dir = make_db("checksum_every_byte");
    size_t len = 0;
    char *bytes = latest_manifest(dir, &len);
    assert_non_null(bytes);
    int detected = 0, tried = 0;
    for (size_t i = 0; i < len; i += (len / 97) + 1) {
        char *copy = malloc(len + 1);
        memcpy(copy, bytes, len);
        copy[i] ^= 0x01;
        manifest *m = NULL;
        shale_status rc = manifest_decode("m", (const uint8_t *)copy, len, &m);
        tried++;
        if (rc == SHALE_CORRUPT)
            detected++;
        manifest_free(m);
        free(copy);
    }
    assert_int_equal(detected, tried);
    /* Whitespace added after the checksum member: same JSON, other bytes. */
    char *spaced = malloc(len + 2);
    const char *comma = strchr(bytes, ',');
    size_t at = (size_t)(comma - bytes) + 1;
    memcpy(spaced, bytes, at);
    spaced[at] = ' ';
    memcpy(spaced + at + 1, bytes + at, len - at);
    manifest *m = NULL;
    assert_int_equal(manifest_decode("m", (const uint8_t *)spaced, len + 1, &m), SHALE_CORRUPT);
    assert_non_null(strstr(shale_errmsg(), "checksum"));
    free(spaced);
    free(bytes);
    tu_rmtree(dir);
    free(dir);
}

/* A checksum that is not the first member is refused with a message that
 * says where it must be. */
static void test_checksum_must_come_first(void **state)
{
    (void)state;
    const char *text = "{\n  \"format_version\": 1,\n  \"checksum\": \"xxh3-64:0000000000000000\"\n}";
    manifest *m = NULL;
    assert_int_equal(manifest_decode("manifest/x", (const uint8_t *)text, strlen(text), &m),
                     SHALE_CORRUPT);
    assert_non_null(strstr(shale_errmsg(), "first member"));
}

/* Manifests written before the byte-defined checksum still open; damage to
 * them is still caught. */
static void test_legacy_checksum_still_read(void **state)
{
    (void)state;
    size_t len = 0;
    char *bytes = slurp("tests/unit/data/manifest-v1-legacy-checksum.json", &len);
    assert_non_null(bytes);
    assert_null(strstr(bytes, "xxh3-64:"));
    manifest *m = NULL;
    TU_OK(manifest_decode("legacy", (const uint8_t *)bytes, len, &m));
    assert_true(m->l0_count > 0);
    assert_int_equal(m->checkpoint_count, 1);
    /* Re-encoded, it carries the new checksum and decodes to the same. */
    char *again = NULL;
    size_t alen = 0;
    TU_OK(manifest_encode(m, &again, &alen));
    assert_non_null(strstr(again, "\"checksum\": \"xxh3-64:"));
    manifest *m2 = NULL;
    TU_OK(manifest_decode("again", (const uint8_t *)again, alen, &m2));
    assert_int_equal(m2->l0_count, m->l0_count);
    manifest_free(m2);
    free(again);
    manifest_free(m);
    char *p = strstr(bytes, "\"last_l0_seq\": ");
    assert_non_null(p);
    p[strlen("\"last_l0_seq\": ")] ^= 0x01;
    assert_int_equal(manifest_decode("legacy", (const uint8_t *)bytes, len, &m), SHALE_CORRUPT);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_reproducible_from_bytes),
        cmocka_unit_test(test_checksum_catches_every_byte),
        cmocka_unit_test(test_checksum_must_come_first),
        cmocka_unit_test(test_legacy_checksum_still_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
