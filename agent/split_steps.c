/*
 * split_steps.c -- the steps of a split (see splitter.c for the machine and
 * docs/agent.md for what each step guarantees).  Every step is idempotent:
 * a crash anywhere is followed by the same step again.
 */
#include "splitter_int.h"
#include "failpoint.h"
#include "journal.h"
#include "db/manifest.h"
#include "table/kv.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

shale_options db_opts(const splitter *sp, const char *wal)
{
    shale_options o = sp->o.db;
    o.wal_store_uri = wal;
    return o;
}

const char *parent_store(const run *r)
{
    return r->j->req->parent_store ? r->j->req->parent_store : r->sp->store_uri;
}

const char *parent_wal(const run *r)
{
    return r->j->req->parent_store ? r->j->req->parent_wal_store : r->sp->wal_uri;
}

static shale_status ensure_writer(run *r)
{
    if (r->db)
        return SHALE_OK;
    shale_options o = db_opts(r->sp, parent_wal(r));
    return shale_open(parent_store(r), &o, &r->db);
}

shale_status do_fence(run *r)
{
    return ensure_writer(r);
}

const char *doc_str(run *r, const char *k)
{
    return json_string_value(json_object_get(r->j->doc, k));
}

shale_status do_full_flush(run *r)
{
    splitter *sp = r->sp;
    shale_status rc = ensure_writer(r);
    if (rc)
        return rc;
    pthread_mutex_lock(&sp->mu);
    const char *old = doc_str(r, "checkpointId");
    char prev[37] = "";
    if (old)
        snprintf(prev, sizeof prev, "%s", old);
    pthread_mutex_unlock(&sp->mu);
    if (*prev) {
        /* Redone after a crash: the old checkpoint may or may not exist;
         * a new full-scope one is taken either way (nothing was written
         * since, so it is the same state) and the old one released. */
        shale_options o = db_opts(sp, parent_wal(r));
        shale_checkpoint_delete(parent_store(r), &o, prev);
    }
    char name[300];
    snprintf(name, sizeof name, "split:%s", r->j->name);
    shale_checkpoint cp;
    rc = shale_checkpoint_create(r->db, SHALE_CHECKPOINT_ALL, 0, name, &cp);
    if (rc)
        return rc;
    if (cp.replay_after_wal_id != cp.next_wal_sst_id - 1)
        return shale_err(SHALE_CONFLICT,
                         "full flush left a WAL gap (replay_after_wal_id %llu, "
                         "next_wal_sst_id %llu): a write raced the split",
                         (unsigned long long)cp.replay_after_wal_id,
                         (unsigned long long)cp.next_wal_sst_id);
    pthread_mutex_lock(&sp->mu);
    set_str(r->j->doc, "checkpointId", cp.id);
    json_object_set_new(r->j->doc, "replayAfterWalId",
                        json_integer((json_int_t)cp.replay_after_wal_id));
    json_object_set_new(r->j->doc, "nextWalSstId", json_integer((json_int_t)cp.next_wal_sst_id));
    pthread_mutex_unlock(&sp->mu);
    return SHALE_OK;
}

static int parse_wal_id(const char *key, uint64_t *id)
{
    if (strncmp(key, "wal/", 4) || strlen(key) != 4 + 20 + 4 || strcmp(key + 24, ".sst"))
        return -1;
    uint64_t x = 0;
    for (int i = 4; i < 24; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(key[i] - '0');
    }
    *id = x;
    return 0;
}

shale_status do_wipe(run *r, char *msg, size_t msglen)
{
    const char *wal = parent_wal(r);
    if (!wal || !strcmp(wal, parent_store(r))) {
        snprintf(msg, msglen, "WAL is in the main store: no local WAL to wipe");
        return SHALE_OK;
    }
    pthread_mutex_lock(&r->sp->mu);
    uint64_t replay_after = (uint64_t)json_integer_value(json_object_get(r->j->doc,
                                                                         "replayAfterWalId"));
    pthread_mutex_unlock(&r->sp->mu);
    shale_objstore *w = NULL;
    shale_status rc = shale_objstore_open(wal, &r->sp->o.db.store, &w);
    if (rc)
        return rc;
    shale_objlist l;
    rc = shale_objstore_list_all(w, "wal/", &l);
    if (rc) {
        shale_objstore_close(w);
        return rc;
    }
    uint64_t deleted = 0, bytes = 0;
    size_t keep = l.count;   /* index of the newest WAL object, kept as a fence */
    for (size_t i = 0; i < l.count; i++) {
        uint64_t id;
        if (parse_wal_id(l.items[i].key, &id))
            continue;
        if (id > replay_after) {
            rc = shale_err(SHALE_CONFLICT,
                           "refusing to wipe the local WAL: %s/%s is above "
                           "replay_after_wal_id %llu, so its data is not in L0 (data loss)",
                           wal, l.items[i].key, (unsigned long long)replay_after);
            goto out;
        }
        keep = i;
    }
    for (size_t i = 0; i < l.count; i++) {
        uint64_t id;
        if (i == keep || parse_wal_id(l.items[i].key, &id))
            continue;
        if ((rc = shale_objstore_delete(w, l.items[i].key)))
            goto out;
        deleted++;
        bytes += l.items[i].size;
        if (deleted == 1)
            failpoint("WipeLocalWAL.mid");
    }
    snprintf(msg, msglen, "deleted %llu WAL objects (%llu bytes) at or below %llu; kept the "
                          "newest as a fence", (unsigned long long)deleted,
             (unsigned long long)bytes, (unsigned long long)replay_after);
out:
    shale_objlist_free(&l);
    shale_objstore_close(w);
    return rc;
}

shale_status do_clone(run *r)
{
    splitter *sp = r->sp;
    const split_request *q = r->j->req;
    pthread_mutex_lock(&sp->mu);
    char cp[37];
    snprintf(cp, sizeof cp, "%s", doc_str(r, "checkpointId") ? doc_str(r, "checkpointId") : "");
    pthread_mutex_unlock(&sp->mu);
    if (!*cp)
        return shale_err(SHALE_CORRUPT, "journal of %s has no checkpointId at Clone", r->j->name);
    for (size_t i = 0; i < q->child_count; i++) {
        const split_child *c = &q->children[i];
        shale_clone_spec s;
        memset(&s, 0, sizeof s);
        s.parent_uri = parent_store(r);
        s.parent_wal_uri = parent_wal(r);
        s.parent_checkpoint_id = cp;
        s.child_uri = c->store;
        s.child_wal_uri = c->wal_store;
        s.range_start = c->start;
        s.range_start_len = c->start_len;
        s.range_end = c->end;
        s.range_end_len = c->end_len;
        shale_clone_result res;
        shale_status rc = shale_clone(&s, &sp->o.db, &res);
        if (rc)
            return shale_err_prefix(rc, "cloning child %s into %s", c->name, c->store);
        add_copied(sp, r->j, STEP_CLONE, res.wal_ssts_copied, res.bytes_copied);
        pthread_mutex_lock(&sp->mu);
        json_t *k = json_array_get(json_object_get(r->j->doc, "children"), i);
        json_object_set_new(k, "manifestId", json_integer((json_int_t)res.manifest_id));
        json_object_set_new(k, "sstsReferenced", json_integer((json_int_t)res.ssts_referenced));
        json_object_set_new(k, "walSstsCopied", json_integer((json_int_t)res.wal_ssts_copied));
        pthread_mutex_unlock(&sp->mu);
        if (i == 0)
            failpoint("Clone.mid");
    }
    return SHALE_OK;
}

/* Names a key in a message: the manifest's escaped form, cut short. */
static void key_text(const void *k, size_t kl, char *out, size_t outlen)
{
    char *e = manifest_key_escape(k, kl > 64 ? 64 : kl);
    snprintf(out, outlen, "'%s'%s", e ? e : "?", kl > 64 ? "..." : "");
    free(e);
}

/* Walks the parent's range [start, end) at the checkpoint and the child's
 * whole contents side by side: every key and every value must be equal, so
 * the key counts are equal too.  This reads the data twice (once through
 * each), where counting both and reading back a sample took four passes and
 * checked less. */
static shale_status compare_child(shale_reader *parent, shale_reader *child,
                                  const split_child *c, uint64_t *count)
{
    shale_iter *pi = NULL, *ci = NULL;
    shale_status rc = shale_reader_scan(parent, c->start, c->start_len, c->end, c->end_len, &pi);
    if (!rc)
        rc = shale_reader_scan(child, NULL, 0, NULL, 0, &ci);
    uint64_t n = 0;
    char kt[200];
    while (!rc) {
        bool pv = shale_iter_valid(pi), cv = shale_iter_valid(ci);
        if (!pv && !cv)
            break;
        size_t pkl = 0, ckl = 0, pvl = 0, cvl = 0;
        const void *pk = pv ? shale_iter_key(pi, &pkl) : NULL;
        const void *ck = cv ? shale_iter_key(ci, &ckl) : NULL;
        int cmp = !pv ? 1 : !cv ? -1 : memcmp(pk, ck, pkl < ckl ? pkl : ckl);
        if (pv && cv && cmp == 0 && pkl != ckl)
            cmp = pkl < ckl ? -1 : 1;
        if (cmp < 0) {
            key_text(pk, pkl, kt, sizeof kt);
            rc = shale_err(SHALE_CORRUPT, "verify: child %s lacks key %s of its range (after "
                                          "%llu equal keys)", c->name, kt, (unsigned long long)n);
        } else if (cmp > 0) {
            key_text(ck, ckl, kt, sizeof kt);
            rc = shale_err(SHALE_CORRUPT, "verify: child %s holds key %s, which the parent "
                                          "does not have in the child's range (after %llu "
                                          "equal keys)", c->name, kt, (unsigned long long)n);
        } else {
            const void *pval = shale_iter_value(pi, &pvl), *cval = shale_iter_value(ci, &cvl);
            if (pvl != cvl || memcmp(pval, cval, pvl)) {
                key_text(pk, pkl, kt, sizeof kt);
                rc = shale_err(SHALE_CORRUPT, "verify: child %s returns a different value for "
                                              "key %s (%zu bytes; the parent %zu)", c->name, kt,
                               cvl, pvl);
            }
        }
        if (rc)
            break;
        n++;
        shale_iter_next(pi);
        shale_iter_next(ci);
    }
    if (!rc)
        rc = shale_iter_status(pi);
    if (!rc)
        rc = shale_iter_status(ci);
    shale_iter_free(pi);
    shale_iter_free(ci);
    *count = n;
    return rc;
}

/* One child's verification, on a thread of its own. */
typedef struct verify_job {
    run *r;
    shale_reader *parent;            /* shared: readers may be used by threads */
    _Atomic size_t *next;            /* next child to take */
    _Atomic bool *failed;
    uint64_t *counts;                /* per child */
    shale_status *rcs;               /* per child */
    char (*msgs)[512];               /* per child: shale_errmsg() is per thread */
} verify_job;

static shale_status verify_child(run *r, shale_reader *parent, size_t i, uint64_t *cn)
{
    const split_child *c = &r->j->req->children[i];
    shale_options co = db_opts(r->sp, c->wal_store);
    shale_reader *child = NULL;
    shale_status rc = shale_reader_open(c->store, &co, NULL, &child);
    if (rc)
        return shale_err_prefix(rc, "verify: opening child %s", c->name);
    shale_db_info info;
    rc = shale_reader_info(child, &info);
    if (!rc && !info.initialized)
        rc = shale_err(SHALE_CORRUPT, "verify: child %s is not initialized", c->name);
    if (!rc)
        rc = compare_child(parent, child, c, cn);
    shale_reader_close(child);
    return rc;
}

static void *verify_worker(void *arg)
{
    verify_job *v = arg;
    size_t n = v->r->j->req->child_count;
    for (size_t i; !atomic_load(v->failed) && (i = atomic_fetch_add(v->next, 1)) < n;) {
        v->rcs[i] = verify_child(v->r, v->parent, i, &v->counts[i]);
        if (v->rcs[i]) {
            snprintf(v->msgs[i], sizeof v->msgs[i], "%s", shale_errmsg());
            atomic_store(v->failed, true);
        }
    }
    return NULL;
}

/* Each child against the parent's range at the checkpoint, key by key, on
 * up to one thread per core (each child is a separate read of its range).
 * The children's ranges were validated to cover the parent's range
 * exactly, so children that each equal their range hold the parent's
 * keys, each once: their counts add up by construction. */
shale_status do_verify(run *r, char *msg, size_t msglen)
{
    splitter *sp = r->sp;
    const split_request *q = r->j->req;
    pthread_mutex_lock(&sp->mu);
    char cp[37];
    snprintf(cp, sizeof cp, "%s", doc_str(r, "checkpointId") ? doc_str(r, "checkpointId") : "");
    pthread_mutex_unlock(&sp->mu);
    shale_options po = db_opts(sp, parent_wal(r));
    shale_reader *parent = NULL;
    shale_status rc = shale_reader_open(parent_store(r), &po, cp, &parent);
    if (rc)
        return shale_err_prefix(rc, "verify: opening the parent at checkpoint %s", cp);
    size_t n = q->child_count;
    uint64_t *counts = calloc(n, sizeof *counts);
    shale_status *rcs = calloc(n, sizeof *rcs);
    char (*msgs)[512] = calloc(n, sizeof *msgs);
    if (!counts || !rcs || !msgs) {
        rc = SHALE_OOM();
        goto out;
    }
    _Atomic size_t next = 0;
    _Atomic bool failed = false;
    verify_job v = {r, parent, &next, &failed, counts, rcs, msgs};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nthreads = cores < 1 ? 1 : (size_t)cores;
    if (nthreads > n)
        nthreads = n;
    if (nthreads > 8)
        nthreads = 8;
    pthread_t th[8];
    size_t started = 0;
    while (started + 1 < nthreads && !pthread_create(&th[started], NULL, verify_worker, &v))
        started++;
    verify_worker(&v);   /* this thread works too */
    for (size_t t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    uint64_t total = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (rcs[i])
            rc = shale_err(rcs[i], "%s", msgs[i]);
    for (size_t i = 0; i < n && !rc; i++) {
        total += counts[i];
        pthread_mutex_lock(&sp->mu);
        json_t *k = json_array_get(json_object_get(r->j->doc, "children"), i);
        json_object_set_new(k, "keyCount", json_integer((json_int_t)counts[i]));
        pthread_mutex_unlock(&sp->mu);
    }
    if (!rc)
        snprintf(msg, msglen, "%llu keys in %zu children equal the parent's, key by key",
                 (unsigned long long)total, n);
out:
    free(counts);
    free(rcs);
    free(msgs);
    shale_reader_close(parent);
    return rc;
}

shale_status do_complete(run *r)
{
    /* The children pin what they reference; the split's own checkpoint is
     * no longer needed. */
    pthread_mutex_lock(&r->sp->mu);
    char cp[37];
    snprintf(cp, sizeof cp, "%s", doc_str(r, "checkpointId") ? doc_str(r, "checkpointId") : "");
    pthread_mutex_unlock(&r->sp->mu);
    shale_close(r->db);
    r->db = NULL;
    if (*cp) {
        shale_options o = db_opts(r->sp, parent_wal(r));
        shale_status rc = shale_checkpoint_delete(parent_store(r), &o, cp);
        if (rc && rc != SHALE_NOT_FOUND)
            return rc;
    }
    return SHALE_OK;
}

/* The dry-run plan: what each child would reference and copy. */
shale_status do_plan(run *r)
{
    splitter *sp = r->sp;
    const split_request *q = r->j->req;
    shale_objstore *s = NULL;
    manifest *m = NULL;
    shale_reader *pr = NULL;
    shale_options po = db_opts(sp, parent_wal(r));
    shale_status rc = shale_objstore_open(parent_store(r), &sp->o.db.store, &s);
    if (!rc)
        rc = manifest_store_load_latest(s, 0, &m);
    if (!rc)
        rc = shale_reader_open(parent_store(r), &po, NULL, &pr);
    json_t *plan = json_object(), *kids = json_array();
    for (size_t i = 0; i < q->child_count && !rc; i++) {
        const split_child *c = &q->children[i];
        uint64_t ssts = 0, bytes = 0, keys = 0;
        for (size_t l = 0; l <= m->run_count; l++) {
            const sst_handle *h = l == 0 ? m->l0 : m->runs[l - 1].ssts;
            size_t n = l == 0 ? m->l0_count : m->runs[l - 1].count;
            for (size_t k = 0; k < n; k++) {
                if (!h[k].first_key)
                    continue;
                if (c->end && kv_key_cmp(h[k].first_key, h[k].first_klen, c->end,
                                         c->end_len) >= 0)
                    continue;
                if (c->start && kv_key_cmp(h[k].last_key, h[k].last_klen, c->start,
                                           c->start_len) < 0)
                    continue;
                ssts++;
                bytes += h[k].size;
            }
        }
        rc = shale_reader_count(pr, c->start, c->start_len, c->end, c->end_len, &keys);
        json_t *k = json_object();
        set_str(k, "name", c->name);
        set_str(k, "store", c->store);
        json_object_set_new(k, "sstsToReference", json_integer((json_int_t)ssts));
        json_object_set_new(k, "bytesReferenced", json_integer((json_int_t)bytes));
        json_object_set_new(k, "expectedKeys", json_integer((json_int_t)keys));
        json_array_append_new(kids, k);
    }
    if (!rc) {
        /* Before the full flush the WAL gap is what a Durable clone would
         * copy; the split's full flush makes it zero. */
        json_object_set_new(plan, "walSstsInGap",
                            json_integer((json_int_t)(m->next_wal_sst_id - 1 -
                                                      m->replay_after_wal_id)));
        json_object_set_new(plan, "walSstsToCopyAfterFullFlush", json_integer(0));
        json_object_set_new(plan, "parentManifestId", json_integer((json_int_t)m->id));
        json_object_set_new(plan, "children", kids);
        pthread_mutex_lock(&sp->mu);
        json_object_set_new(r->j->doc, "plan", plan);
        pthread_mutex_unlock(&sp->mu);
    } else {
        json_decref(kids);
        json_decref(plan);
    }
    shale_reader_close(pr);
    manifest_free(m);
    shale_objstore_close(s);
    return rc;
}

