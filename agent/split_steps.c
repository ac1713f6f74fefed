/*
 * split_steps.c -- the steps of a split (see splitter.c for the machine and
 * docs/agent.md for what each step guarantees).  Every step is idempotent:
 * a crash anywhere is followed by the same step again.
 */
#include "splitter_int.h"
#include "failpoint.h"
#include "journal.h"
#include "preflight.h"
#include "db/manifest.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
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

/* The wipe's deletes, on up to WIPE_THREADS threads: each is one request
 * (a round trip on S3, an unlink that frees the file's blocks on file://),
 * and they are independent, so they overlap.  The first failure stops the
 * rest; a redone wipe deletes what remains. */
#define WIPE_THREADS 8

typedef struct wipe_job {
    shale_objstore *w;
    const shale_objlist *l;
    size_t keep;                 /* index kept as the fence */
    size_t next;                 /* under mu */
    uint64_t deleted, bytes;     /* under mu */
    shale_status rc;             /* first failure, under mu */
    pthread_mutex_t mu;
    char msg[512];
} wipe_job;

static void *wipe_worker(void *arg)
{
    wipe_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->rc ? j->l->count : j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->l->count)
            return NULL;
        uint64_t id;
        if (i == j->keep || !wal_key_parse(j->l->items[i].key, &id))
            continue;
        shale_status rc = shale_objstore_delete(j->w, j->l->items[i].key);
        pthread_mutex_lock(&j->mu);
        if (rc && !j->rc) {
            j->rc = rc;
            snprintf(j->msg, sizeof j->msg, "%s", shale_errmsg());
        }
        bool first = !rc && ++j->deleted == 1;
        if (!rc)
            j->bytes += j->l->items[i].size;
        pthread_mutex_unlock(&j->mu);
        if (first)
            failpoint("WipeLocalWAL.mid");
    }
}

void release_checkpoint(run *r)
{
    pthread_mutex_lock(&r->sp->mu);
    char cp[37] = "";
    if (doc_str(r, "checkpointId"))
        snprintf(cp, sizeof cp, "%s", doc_str(r, "checkpointId"));
    pthread_mutex_unlock(&r->sp->mu);
    if (*cp) {
        shale_options o = db_opts(r->sp, parent_wal(r));
        shale_checkpoint_delete(parent_store(r), &o, cp);
    }
}

shale_status do_wipe(run *r, char *msg, size_t msglen)
{
    /* Pre-flight (preflight.h): every child store claimed before anything
     * is deleted; a refusal fails the split short of the point of no return. */
    shale_status prc = preflight_children(r->j->req, &r->sp->o.db, msg, msglen);
    if ((r->refused = prc != SHALE_OK))
        return shale_err_prefix(prc, "refused before the WAL wipe, nothing deleted");
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
    rc = shale_objstore_list_all(w, PATH_WAL_DIR, &l);
    if (rc) {
        shale_objstore_close(w);
        return rc;
    }
    uint64_t deleted = 0, bytes = 0;
    size_t keep = l.count;   /* index of the newest WAL object, kept as a fence */
    for (size_t i = 0; i < l.count; i++) {
        uint64_t id;
        if (!wal_key_parse(l.items[i].key, &id))
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
    wipe_job wj = {w, &l, keep, 0, 0, 0, SHALE_OK, PTHREAD_MUTEX_INITIALIZER, ""};
    pthread_t th[WIPE_THREADS];
    size_t started = 0;
    while (started + 1 < WIPE_THREADS && started * 16 < l.count &&
           !pthread_create(&th[started], NULL, wipe_worker, &wj))
        started++;
    wipe_worker(&wj);
    for (size_t t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&wj.mu);
    deleted = wj.deleted;
    bytes = wj.bytes;
    if ((rc = wj.rc)) {
        shale_err(rc, "%s", wj.msg);
        goto out;
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
                if (!sst_handle_overlaps(&h[k], c->start, c->start_len, c->end, c->end_len))
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

