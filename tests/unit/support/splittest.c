/* splittest.c -- see splittest.h. */
#include "support/splittest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup_with(void **state, bool fault_wal)
{
    sf_fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tmpdir("splitter");
    f->parent = tu_file_uri(f->dir, "parent");
    f->wal = tu_file_uri(f->dir, "local-wal");
    if (fault_wal) {
        char *u = tu_fault_uri(f->wal);
        free(f->wal);
        f->wal = u;
    }
    for (int i = 0; i < 4; i++) {
        char sub[32];
        snprintf(sub, sizeof sub, "child%d", i);
        f->kid[i] = tu_file_uri(f->dir, sub);
        snprintf(sub, sizeof sub, "child%d-wal", i);
        f->kidwal[i] = tu_file_uri(f->dir, sub);
    }
    dt_small_options(&f->o);
    f->o.wal_store_uri = f->wal;
    f->n = tu_quick() ? 600 : 3000;
    shale_db *db = NULL;
    assert_int_equal(shale_open(f->parent, &f->o, &db), SHALE_OK);
    for (unsigned i = 0; i < f->n; i++)
        dt_put(db, i, 1 + i % 3);
    TU_OK(shale_close(db));  /* much of it only in the WAL */
    *state = f;
    return 0;
}

int sf_setup(void **state)
{
    return setup_with(state, false);
}

int sf_setup_fault_wal(void **state)
{
    return setup_with(state, true);
}

int sf_teardown(void **state)
{
    sf_fx *f = *state;
    splitter_free(f->sp);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->parent);
    free(f->wal);
    for (int i = 0; i < 4; i++) {
        free(f->kid[i]);
        free(f->kidwal[i]);
    }
    free(f);
    return 0;
}

void sf_splitter_options(splitter_options *so, const char *parent, const char *wal,
                         const shale_options *db)
{
    splitter_options_init(so);
    so->policy.allow_test_schemes = true;   /* mem:// and fault+ children (tests) */
    so->shard = "orders-0";
    so->store_uri = parent;
    so->wal_store_uri = wal;
    so->db = *db;
    so->db.wal_store_uri = NULL;
}

void sf_run_to_phase(splitter *sp, const char *name, const char *phase)
{
    TU_OK(splitter_start(sp));
    TU_OK(splitter_wait_idle(sp, 60000));
    char *st = NULL;
    split_service *svc = splitter_service(sp);
    TU_OK(svc->ops->get(svc, name, &st));
    sf_expect_phase(st, phase);
    free(st);
}

void sf_new_splitter_v(sf_fx *f, bool start, split_verify verify)
{
    splitter_options so;
    sf_splitter_options(&so, f->parent, f->wal, &f->o);
    if (verify != SPLIT_VERIFY_DEFAULT)
        so.verify = verify;
    TU_OK(splitter_new(&so, &f->sp));
    if (start)
        TU_OK(splitter_start(f->sp));
}

void sf_new_splitter(sf_fx *f, bool start)
{
    sf_new_splitter_v(f, start, SPLIT_VERIFY_DEFAULT);
}

split_request *sf_request_v(sf_fx *f, const char *name, const unsigned *cuts, int ncuts,
                            bool dry, const char *verify)
{
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "name: %s\nparent:\n  shard: orders-0\ndryRun: %s\n%s%s%s"
                                "children:\n", name, dry ? "true" : "false",
                                verify ? "verify: " : "", verify ? verify : "",
                                verify ? "\n" : "");
    for (int i = 0; i <= ncuts; i++) {
        char lo[32] = "", hi[32] = "";
        if (i > 0)
            dt_key(lo, sizeof lo, cuts[i - 1]);
        if (i < ncuts)
            dt_key(hi, sizeof hi, cuts[i]);
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "  - name: kid-%d\n    store: %s\n    walStore: %s\n"
                              "    range: {start: \"%s\", end: \"%s\"}\n",
                              i, f->kid[i], f->kidwal[i], lo, hi);
    }
    split_request *r = NULL;
    TU_OK(split_request_parse("test", text, n, &r));
    return r;
}

split_request *sf_request(sf_fx *f, const char *name, const unsigned *cuts, int ncuts,
                          bool dry)
{
    return sf_request_v(f, name, cuts, ncuts, dry, NULL);
}

char *sf_submit(sf_fx *f, split_request *r, bool *created)
{
    char *status = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->submit(svc, r, created, &status));
    return status;
}

void sf_expect_phase(const char *status, const char *phase)
{
    char want[64];
    snprintf(want, sizeof want, "\"phase\": \"%s\"", phase);
    if (!strstr(status, want))
        fail_msg("status is not %s:\n%s", phase, status);
}

char *sf_get_status(sf_fx *f, const char *name)
{
    char *s = NULL;
    split_service *svc = splitter_service(f->sp);
    TU_OK(svc->ops->get(svc, name, &s));
    return s;
}

void sf_check_children(sf_fx *f, const unsigned *cuts, int ncuts)
{
    uint64_t total = 0;
    for (int c = 0; c <= ncuts; c++) {
        shale_options o = f->o;
        o.wal_store_uri = f->kidwal[c];
        shale_reader *r = NULL;
        TU_OK(shale_reader_open(f->kid[c], &o, NULL, &r));
        unsigned lo = c ? cuts[c - 1] : 0, hi = c < ncuts ? cuts[c] : f->n;
        for (unsigned i = 0; i < f->n; i += 7)
            dt_expect_reader(r, i, i >= lo && i < hi ? 1 + i % 3 : 0);
        uint64_t cnt = 0;
        TU_OK(shale_reader_count(r, NULL, 0, NULL, 0, &cnt));
        assert_int_equal(cnt, hi - lo);
        total += cnt;
        shale_reader_close(r);
    }
    assert_int_equal(total, f->n);
}

lease_view sf_lease_read(const char *store_uri)
{
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(store_uri, NULL, &s));
    lease_view v;
    TU_OK(lease_read(s, &v));
    lease_view_free(&v);
    shale_objstore_close(s);
    return v;
}
