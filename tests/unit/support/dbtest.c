/* dbtest.c -- see dbtest.h. */
#include "support/dbtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/misc.h"

void dt_small_options(shale_options *o)
{
    shale_options_init(o);
    o->memtable_bytes = 16 << 10;
    o->max_unflushed_bytes = 256 << 10;
    o->wal_flush_bytes = 4 << 10;
    o->wal_flush_interval_ms = 5;
    o->block_size = 512;
    o->sst_target_bytes = 8 << 10;
    o->l0_compaction_trigger = 3;
    o->l0_max_ssts = 8;
    o->max_sorted_runs = 2;
    o->block_cache_bytes = 1 << 20;
    o->manifest_poll_ms = 50;
    o->store.fs_no_fsync = true;
    o->store.retry_base_ms = 1;   /* injected transient faults retry fast */
    o->store.retry_max_ms = 4;
}

size_t dt_key(char *buf, size_t n, unsigned i)
{
    return (size_t)snprintf(buf, n, "k%08u", i);
}

size_t dt_val(char *buf, size_t n, unsigned i, unsigned version)
{
    return (size_t)snprintf(buf, n, "v%08u-%u-padding-to-make-values-a-little-longer", i,
                            version);
}

void dt_put(shale_db *db, unsigned i, unsigned version)
{
    char k[32], v[96];
    size_t kl = dt_key(k, sizeof k, i), vl = dt_val(v, sizeof v, i, version);
    TU_OK(shale_put(db, k, kl, v, vl));
}

void dt_del(shale_db *db, unsigned i)
{
    char k[32];
    size_t kl = dt_key(k, sizeof k, i);
    TU_OK(shale_delete(db, k, kl));
}

static void dt_check_value(shale_status rc, void *got, size_t glen, unsigned i,
                         unsigned version)
{
    if (version == 0) {
        if (rc != SHALE_NOT_FOUND)
            fail_msg("key %u: expected absent, got %s (%.*s)", i, shale_strerror(rc),
                     (int)glen, rc ? "" : (char *)got);
    } else {
        char v[96];
        size_t vl = dt_val(v, sizeof v, i, version);
        if (rc != SHALE_OK)
            fail_msg("key %u: expected version %u, got %s: %s", i, version, shale_strerror(rc),
                     shale_errmsg());
        if (glen != vl || memcmp(got, v, vl))
            fail_msg("key %u: expected '%s', got '%.*s'", i, v, (int)glen, (char *)got);
    }
    shale_free(got);
}

void dt_expect(shale_db *db, unsigned i, unsigned version)
{
    char k[32];
    size_t kl = dt_key(k, sizeof k, i);
    void *got = NULL;
    size_t glen = 0;
    shale_status rc = shale_get(db, NULL, k, kl, &got, &glen);
    dt_check_value(rc, got, glen, i, version);
}

void dt_expect_reader(shale_reader *r, unsigned i, unsigned version)
{
    char k[32];
    size_t kl = dt_key(k, sizeof k, i);
    void *got = NULL;
    size_t glen = 0;
    shale_status rc = shale_reader_get(r, k, kl, &got, &glen);
    dt_check_value(rc, got, glen, i, version);
}

void dt_model_init(dt_model *m, unsigned n)
{
    m->version = calloc(n, sizeof *m->version);
    m->n = n;
    assert_non_null(m->version);
}

void dt_model_free(dt_model *m)
{
    free(m->version);
    m->version = NULL;
}

static void check_scan(shale_iter *it, const dt_model *m)
{
    unsigned want = 0;
    for (; shale_iter_valid(it); shale_iter_next(it)) {
        while (want < m->n && m->version[want] == 0)
            want++;
        if (want >= m->n)
            fail_msg("scan returned more keys than the model holds");
        size_t kl, vl;
        const void *k = shale_iter_key(it, &kl);
        const void *v = shale_iter_value(it, &vl);
        char ek[32], ev[96];
        size_t ekl = dt_key(ek, sizeof ek, want), evl = dt_val(ev, sizeof ev, want,
                                                               m->version[want]);
        if (kl != ekl || memcmp(k, ek, kl))
            fail_msg("scan: expected key %s, got %.*s", ek, (int)kl, (const char *)k);
        if (vl != evl || memcmp(v, ev, vl))
            fail_msg("scan: key %s expected %s, got %.*s", ek, ev, (int)vl, (const char *)v);
        want++;
    }
    TU_OK(shale_iter_status(it));
    while (want < m->n && m->version[want] == 0)
        want++;
    if (want != m->n)
        fail_msg("scan ended early: key %u missing", want);
}

void dt_model_check(shale_db *db, const dt_model *m)
{
    for (unsigned i = 0; i < m->n; i++)
        dt_expect(db, i, m->version[i]);
    shale_iter *it = NULL;
    TU_OK(shale_scan(db, NULL, NULL, 0, NULL, 0, &it));
    check_scan(it, m);
    shale_iter_free(it);
}

void dt_model_check_reader(shale_reader *r, const dt_model *m)
{
    for (unsigned i = 0; i < m->n; i++)
        dt_expect_reader(r, i, m->version[i]);
    shale_iter *it = NULL;
    TU_OK(shale_reader_scan(r, NULL, 0, NULL, 0, &it));
    check_scan(it, m);
    shale_iter_free(it);
}

shale_db *dt_open_fill(const char *uri, const shale_options *o, unsigned n, unsigned version)
{
    shale_db *db = NULL;
    TU_OK(shale_open(uri, o, &db));
    for (unsigned i = 0; i < n; i++)
        dt_put(db, i, version);
    return db;
}

void dt_fill(const char *uri, const shale_options *o, unsigned n, unsigned version)
{
    TU_OK(shale_close(dt_open_fill(uri, o, n, version)));
}

void dt_reopen_expect(const char *uri, const shale_options *o, unsigned n, unsigned version)
{
    shale_db *db = NULL;
    TU_OK(shale_open(uri, o, &db));
    for (unsigned i = 0; i < n; i++)
        dt_expect(db, i, version);
    TU_OK(shale_close(db));
}

void dt_create(const char *uri, const shale_options *o)
{
    dt_fill(uri, o, 0, 1);
}

void dt_fill_checkpoint(const char *uri, const shale_options *o, unsigned n,
                        shale_checkpoint_scope scope, const char *name, shale_checkpoint *cp)
{
    shale_db *db = dt_open_fill(uri, o, n, 1);
    TU_OK(shale_checkpoint_create(db, scope, 0, name, cp));
    TU_OK(shale_close(db));
}

size_t dt_count(const char *uri, const char *prefix)
{
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, prefix, &l));
    size_t n = l.count;
    shale_objlist_free(&l);
    shale_objstore_close(s);
    return n;
}

size_t dt_delete_all(const char *uri, const char *prefix)
{
    shale_objstore *s = NULL;
    TU_OK(shale_objstore_open(uri, NULL, &s));
    shale_objlist l;
    TU_OK(shale_objstore_list_all(s, prefix, &l));
    for (size_t i = 0; i < l.count; i++)
        TU_OK(shale_objstore_delete(s, l.items[i].key));
    size_t n = l.count;
    shale_objlist_free(&l);
    shale_objstore_close(s);
    return n;
}

char *dt_store_uri(const char *backend, const char *name, char **dir)
{
    *dir = NULL;
    if (!strcmp(backend, "mem"))
        return tu_mem_uri(name);
    if (!strcmp(backend, "fault")) {
        /* mem:// behind the fault injector: every 7th call of any kind
         * fails with a retryable error; the engine must not notice. */
        shale_fault *f = NULL;
        char *u = tu_fault_mem_uri(name, &f);
        shale_fault_rule r = {0};
        r.every = 7;
        r.status = SHALE_RETRYABLE;
        TU_OK(shale_fault_add(f, &r, NULL));
        return u;
    }
    *dir = tu_tmpdir(name);
    assert_non_null(*dir);
    return tu_file_uri(*dir, "db");
}

dt_fixture *dt_fixture_new(const char *name)
{
    return dt_fixture_at(name, "db", "wal");
}

dt_fixture *dt_fixture_at(const char *name, const char *db, const char *wal)
{
    dt_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_non_null(f->dir = tu_tmpdir(name));
    f->uri = tu_file_uri(f->dir, db);
    f->wal_uri = tu_file_uri(f->dir, wal);
    dt_small_options(&f->o);
    f->o.wal_store_uri = f->wal_uri;
    return f;
}

void dt_fixture_free(dt_fixture *f)
{
    if (!f)
        return;
    tu_rmtree(f->dir);
    free(f->dir);
    free(f->uri);
    free(f->wal_uri);
    free(f);
}

void dt_on_step(void *ctx, const char *step, double secs)
{
    (void)secs;
    dt_step_stats *s = ctx;
    if (!strcmp(step, "Clone"))
        shale_objstore_global_stats(&s->clone_end);
    if (!strcmp(step, "Verify"))
        shale_objstore_global_stats(&s->verify_end);
}
