/*
 * test_split_accept.c -- the submit's kept parent range (split_accept.c,
 * "The parent's range"; docs/agent.md "Submit." under "Round trips, step
 * by step").  The submit checks a request's ranges against the parent's
 * range as the worker's first pass read it, so that the lease's take need
 * not wait for the parent's manifest GET.  What must hold:
 *   - the kept range is used only for the store identity it was read
 *     beside: a range kept for another identity is not (the request is
 *     checked against the latest version, as before);
 *   - the version read beside the take still decides: a request the kept
 *     range passes and the parent's latest refuses is refused exactly as
 *     before, with no journal, its children untouched, and the lease it
 *     took released (take + release in the store), so the next split of
 *     the shard is accepted;
 *   - a failed GET of the parent's latest beside the take fails the submit
 *     with the store's error and releases the lease the same way.
 * The kept range is planted through splitter_int.h: a database's range
 * never changes, so the store cannot be made to disagree with it.
 */
#include "support/splittest.h"
#include "splitter_int.h"
#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replaces the kept range's start (NULL: unbounded) and, when uuid is not
 * NULL, its identity. */
static void plant(splitter *sp, const char *start, const char *uuid)
{
    pthread_mutex_lock(&sp->mu);
    assert_true(sp->prange_known);   /* the worker's first pass read it */
    free(sp->prange.s);
    sp->prange.s = start ? (uint8_t *)strdup(start) : NULL;
    sp->prange.sl = start ? strlen(start) : 0;
    if (uuid)
        snprintf(sp->prange_uuid, sizeof sp->prange_uuid, "%s", uuid);
    pthread_mutex_unlock(&sp->mu);
}

/* Two children over [lo, ""), cut at mid (key indexes). */
static split_request *upper_request(sf_fx *f, const char *name, unsigned lo, unsigned mid)
{
    char a[32], b[32], text[2048];
    dt_key(a, sizeof a, lo);
    dt_key(b, sizeof b, mid);
    int n = snprintf(text, sizeof text,
                     "name: %s\nparent: {shard: orders-0}\nchildren:\n"
                     "  - {name: kid-0, store: \"%s\", walStore: \"%s\", range: {start: \"%s\", "
                     "end: \"%s\"}}\n"
                     "  - {name: kid-1, store: \"%s\", walStore: \"%s\", range: {start: \"%s\", "
                     "end: \"\"}}\n",
                     name, f->kid[0], f->kidwal[0], a, b, f->kid[1], f->kidwal[1], b);
    split_request *r = NULL;
    TU_OK(split_request_parse("test", text, (size_t)n, &r));
    return r;
}

static void test_kept_range_of_another_identity_is_not_used(void **state)
{
    sf_fx *f = *state;
    sf_new_splitter(f, true);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    char k[32];
    dt_key(k, sizeof k, f->n / 2);
    /* A range that would refuse the request, kept for another store. */
    plant(f->sp, k, "00000000-0000-4000-8000-000000000000");
    unsigned cuts[] = {f->n / 3};
    split_request *r = sf_request(f, "other-id", cuts, 1, false);
    bool created = false;
    char *st = sf_submit(f, r, &created);
    assert_true(created);
    free(st);
    sf_run_to_phase(f->sp, "other-id", "Complete");
    sf_check_children(f, cuts, 1);
    /* Read again, for this store's identity: the root's whole key space. */
    pthread_mutex_lock(&f->sp->mu);
    assert_null(f->sp->prange.s);
    assert_string_not_equal(f->sp->prange_uuid, "00000000-0000-4000-8000-000000000000");
    pthread_mutex_unlock(&f->sp->mu);
    split_request_free(r);
}

static void test_range_refused_after_take_releases_lease(void **state)
{
    sf_fx *f = *state;
    sf_new_splitter(f, true);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    /* Kept: the parent starts at key n/2 (its store's identity kept), so
     * the take goes out; the parent's latest (the whole key space) then
     * refuses the request, as it would have before the take. */
    char k[32];
    dt_key(k, sizeof k, f->n / 2);
    plant(f->sp, k, NULL);
    split_request *r = upper_request(f, "late", f->n / 2, 3 * f->n / 4);
    split_service *svc = splitter_service(f->sp);
    bool created = true;
    char *st = NULL;
    assert_int_equal(svc->ops->submit(svc, r, &created, &st), SHALE_INVALID_ARGUMENT);
    if (!strstr(shale_errmsg(), "no child starts where the parent's range starts"))
        fail_msg("refused with: %s", shale_errmsg());
    assert_false(created);
    assert_null(st);
    /* Nothing left behind but the lease's take and its release. */
    assert_int_equal(dt_count(f->parent, "splits/late/"), 0);
    lease_view v = sf_lease_read(f->parent);
    assert_false(v.held);
    assert_int_equal(v.top, 2);
    assert_int_equal(dt_count(f->kid[0], ""), 0);
    assert_int_equal(dt_count(f->kid[1], ""), 0);
    split_request_free(r);
    /* The shard is free: the next split (the kept range right again) runs. */
    plant(f->sp, NULL, NULL);
    unsigned cuts[] = {f->n / 2};
    r = sf_request(f, "after", cuts, 1, false);
    st = sf_submit(f, r, &created);
    assert_true(created);
    free(st);
    sf_run_to_phase(f->sp, "after", "Complete");
    sf_check_children(f, cuts, 1);
    split_request_free(r);
}

/* The parent's GET beside the take fails (a store's error, not the
 * request's): the lease just taken is released and the submit fails with
 * the store's error, nothing journalled; the same request sent again is
 * accepted and runs. */
static void test_parent_read_failing_beside_take_releases_lease(void **state)
{
    sf_fx *f = *state;
    char *u = tu_fault_uri(f->parent);
    free(f->parent);
    f->parent = u;
    sf_new_splitter(f, true);
    TU_OK(splitter_wait_idle(f->sp, 60000));
    shale_fault *fc = shale_fault_for_uri(f->parent, NULL);
    assert_non_null(fc);
    shale_fault_rule rule;
    memset(&rule, 0, sizeof rule);
    rule.ops = SHALE_FAULT_OP(SHALE_OP_GET);
    rule.key_prefix = SHALE_MANIFEST_DIR;
    rule.nth = 1;
    rule.count = 1;
    rule.status = SHALE_IO;
    TU_OK(shale_fault_add(fc, &rule, NULL));
    unsigned cuts[] = {f->n / 2};
    split_request *r = sf_request(f, "flaky", cuts, 1, false);
    split_service *svc = splitter_service(f->sp);
    bool created = true;
    char *st = NULL;
    assert_int_equal(svc->ops->submit(svc, r, &created, &st), SHALE_IO);
    assert_false(created);
    assert_int_equal(shale_fault_injected(fc), 1);
    assert_int_equal(dt_count(f->parent, "splits/flaky/"), 0);
    lease_view v = sf_lease_read(f->parent);
    assert_false(v.held);
    assert_int_equal(v.top, 2);
    st = sf_submit(f, r, &created);
    assert_true(created);
    free(st);
    sf_run_to_phase(f->sp, "flaky", "Complete");
    sf_check_children(f, cuts, 1);
    split_request_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kept_range_of_another_identity_is_not_used,
                                        sf_setup, sf_teardown),
        cmocka_unit_test_setup_teardown(test_range_refused_after_take_releases_lease, sf_setup,
                                        sf_teardown),
        cmocka_unit_test_setup_teardown(test_parent_read_failing_beside_take_releases_lease,
                                        sf_setup, sf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
