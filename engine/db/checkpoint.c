/*
 * checkpoint.c -- creating, listing, refreshing and deleting checkpoints.
 *
 * Scope All through a writer (the seed's fix lives here):
 *   1. under the writer's lock, seal the WAL buffer and freeze the active
 *      memtable -- even when it is empty.  The frozen memtable's wal_id is
 *      next_wal_id - 1 at that instant, which covers every WAL id written
 *      so far, including the empty fencing WAL SST that open wrote;
 *   2. hook the checkpoint on that frozen memtable: its flush (flush.c)
 *      writes its SST (none when empty), runs the caller's barrier if any,
 *      and commits in ONE manifest write the L0 SST, replay_after_wal_id =
 *      its wal_id and the checkpoint record pinning that same version.
 *      (Until 2026-12 the checkpoint was a second manifest write after the
 *      flush's: a round trip more on S3.)
 * So replay_after_wal_id == next_wal_sst_id - 1 in the pinned version when
 * no write raced the checkpoint: the checkpoint needs no WAL file at all,
 * and a split may wipe the local WAL before cloning.  (SlateDB before the
 * fix left the fencing WAL inside the gap when the memtable was empty.)
 *
 * Scope Durable records what is durable now: it raises the manifest's
 * next_wal_sst_id to the writer's durable WAL position so that a clone
 * knows which WAL SSTs to copy, and keeps the gap.
 */
#include "db/checkpoint_int.h"
#include "db/db_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const checkpoint_rec *cp_find(const manifest *m, const char *id)
{
    for (size_t i = 0; i < m->checkpoint_count; i++)
        if (!strcmp(m->checkpoints[i].id, id))
            return &m->checkpoints[i];
    return NULL;
}

void cp_describe(const checkpoint_rec *r, const manifest *pinned, shale_checkpoint *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", r->id);
    out->manifest_id = r->manifest_id;
    out->create_time_ms = r->create_time_ms;
    out->expire_time_ms = r->expire_time_ms;
    snprintf(out->name, sizeof out->name, "%s", r->name ? r->name : "");
    if (pinned) {
        out->replay_after_wal_id = pinned->replay_after_wal_id;
        out->next_wal_sst_id = pinned->next_wal_sst_id;
    }
}

typedef struct add_ctx {
    const char *id;          /* fixed id or NULL */
    char new_id[37];
    uint64_t lifetime_ms;
    const char *name;
    uint64_t min_next_wal;
    uint64_t epoch;          /* writer epoch to check, 0 = none */
    uint64_t min_replay_after; /* scope All: the gap must be closed to this */
    uint64_t pin_id;         /* version to pin; 0 = the one being written */
    const char *replaces;    /* records whose id or name this is leave in the
                                same write, or NULL */
    bool existed;
    shale_checkpoint desc;   /* the record as the written version holds it */
    bool described;
} add_ctx;

/* Removes every record of m whose id or name is what (none: nothing to
 * do), but keep (the record being added). */
static void cp_drop(manifest *m, const char *what, const char *keep)
{
    for (size_t i = 0; i < m->checkpoint_count;) {
        const checkpoint_rec *r = &m->checkpoints[i];
        bool hit = !strcmp(r->id, what) || (r->name && !strcmp(r->name, what));
        if (!hit || !strcmp(r->id, keep)) {
            i++;
            continue;
        }
        free(m->checkpoints[i].name);
        memmove(&m->checkpoints[i], &m->checkpoints[i + 1],
                (m->checkpoint_count - i - 1) * sizeof *m->checkpoints);
        m->checkpoint_count--;
    }
}

static shale_status add_mut(manifest *m, void *arg)
{
    add_ctx *c = arg;
    if (c->epoch && m->writer_epoch != c->epoch)
        return shale_err(SHALE_FENCED, "writer_epoch %llu is not ours (%llu)",
                         (unsigned long long)m->writer_epoch, (unsigned long long)c->epoch);
    const char *id = c->id ? c->id : c->new_id;
    const checkpoint_rec *had = cp_find(m, id);
    if (had) {
        c->existed = true;
        if (!c->described && had->manifest_id == m->id) {   /* an earlier try landed */
            cp_describe(had, m, &c->desc);
            c->described = true;
        }
        return SHALE_OK;  /* written again unchanged; harmless */
    }
    c->existed = false;
    if (c->replaces)
        cp_drop(m, c->replaces, id);
    if (c->min_next_wal > m->next_wal_sst_id)
        m->next_wal_sst_id = c->min_next_wal;
    if (c->min_replay_after > m->replay_after_wal_id) {
        /* The flush committed it already; this only guards the invariant. */
        m->replay_after_wal_id = c->min_replay_after;
        if (m->next_wal_sst_id <= m->replay_after_wal_id)
            m->next_wal_sst_id = m->replay_after_wal_id + 1;
    }
    checkpoint_rec *n = realloc(m->checkpoints, (m->checkpoint_count + 1) * sizeof *n);
    if (!n)
        return SHALE_OOM();
    m->checkpoints = n;
    checkpoint_rec *r = &m->checkpoints[m->checkpoint_count];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    r->manifest_id = c->pin_id ? c->pin_id : m->id + 1;  /* default: this write */
    r->create_time_ms = now_ms();
    r->expire_time_ms = c->lifetime_ms ? r->create_time_ms + (int64_t)c->lifetime_ms : 0;
    if (c->name && *c->name && !(r->name = xstrdup(c->name)))
        return SHALE_OOM();
    m->checkpoint_count++;
    /* Described from the version being written (the one it pins when
     * pin_id is 0): a lost race re-runs this on the newer base, so the
     * last description is the written one, whatever the writer's flush or
     * compaction commits after it. */
    if (!c->pin_id) {
        cp_describe(r, m, &c->desc);
        c->described = true;
    }
    return SHALE_OK;
}

/* Describes checkpoint id after an update that left the latest in *cur. */
static shale_status describe_from(shale_objstore *s, const manifest *cur, const char *id,
                                  shale_checkpoint *out)
{
    if (!out)
        return SHALE_OK;
    const checkpoint_rec *r = cp_find(cur, id);
    if (!r)
        return shale_err(SHALE_NOT_FOUND, "%s: checkpoint %s vanished", shale_objstore_uri(s),
                         id);
    if (r->manifest_id == cur->id) {
        cp_describe(r, cur, out);
        return SHALE_OK;
    }
    manifest *pinned = NULL;
    shale_status rc = manifest_store_load(s, r->manifest_id, &pinned);
    if (rc)
        return shale_err_prefix(rc, "%s: loading manifest %llu pinned by checkpoint %s",
                                shale_objstore_uri(s), (unsigned long long)r->manifest_id, id);
    cp_describe(r, pinned, out);
    manifest_free(pinned);
    return SHALE_OK;
}

static shale_status cp_add_ctx(shale_objstore *s, add_ctx *c, shale_checkpoint *out);

shale_status cp_add(shale_objstore *s, const char *id, uint64_t lifetime_ms,
                    const char *name, uint64_t min_next_wal, shale_checkpoint *out)
{
    add_ctx c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.lifetime_ms = lifetime_ms;
    c.name = name;
    c.min_next_wal = min_next_wal;
    return cp_add_ctx(s, &c, out);
}

shale_status cp_add_pin(shale_objstore *s, const char *id, uint64_t pin_id,
                        const char *name, shale_checkpoint *out)
{
    add_ctx c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.name = name;
    c.pin_id = pin_id;
    return cp_add_ctx(s, &c, out);
}

static shale_status cp_add_ctx(shale_objstore *s, add_ctx *cx, shale_checkpoint *out)
{
    add_ctx c = *cx;
    const char *id = c.id;
    uuid_new(c.new_id);
    manifest *cur = NULL;
    shale_status rc = manifest_store_load_latest(s, 0, &cur);
    if (rc)
        return shale_err_prefix(rc, "%s: adding a checkpoint", shale_objstore_uri(s));
    if (id && cp_find(cur, id)) {
        rc = describe_from(s, cur, id, out);
        manifest_free(cur);
        return rc;
    }
    rc = manifest_store_update(s, &cur, add_mut, &c);
    if (!rc)
        rc = describe_from(s, cur, id ? id : c.new_id, out);
    manifest_free(cur);
    return rc;
}

typedef struct pins_ctx {
    const char *src_id;
    const cp_pin_req *reqs;
    size_t n;
    bool none_missing;   /* the version read holds every pin: nothing to write */
} pins_ctx;

static shale_status pins_mut(manifest *m, void *arg)
{
    pins_ctx *c = arg;
    const checkpoint_rec *src = cp_find(m, c->src_id);
    uint64_t pin_id = src ? src->manifest_id : 0;
    size_t missing = 0;
    for (size_t i = 0; i < c->n; i++)
        missing += cp_find(m, c->reqs[i].id) == NULL;
    /* A base behind the latest (the caller's guess) may lack pins the
     * latest has: found there after the conflict, nothing is written. */
    if ((c->none_missing = missing == 0))
        return SHALE_NOT_FOUND;   /* abort: nothing to write */
    for (size_t i = 0; i < c->n; i++) {
        if (cp_find(m, c->reqs[i].id))
            continue;
        if (!pin_id)
            return shale_err(SHALE_NOT_FOUND, "no checkpoint %s pins the version the clones "
                                              "reference (pin %s missing)", c->src_id,
                             c->reqs[i].id);
        checkpoint_rec *nr = realloc(m->checkpoints, (m->checkpoint_count + 1) * sizeof *nr);
        if (!nr)
            return SHALE_OOM();
        m->checkpoints = nr;
        checkpoint_rec *r = &m->checkpoints[m->checkpoint_count];
        memset(r, 0, sizeof *r);
        snprintf(r->id, sizeof r->id, "%s", c->reqs[i].id);
        r->manifest_id = pin_id;
        r->create_time_ms = now_ms();
        if (c->reqs[i].name && *c->reqs[i].name && !(r->name = xstrdup(c->reqs[i].name)))
            return SHALE_OOM();
        m->checkpoint_count++;
    }
    return SHALE_OK;
}

shale_status cp_add_pins(shale_objstore *s, const char *src_id, const cp_pin_req *reqs,
                         size_t n, const manifest *base)
{
    manifest *cur = base ? manifest_dup(base) : NULL;
    shale_status rc = base ? (cur ? SHALE_OK : SHALE_OOM()) : manifest_store_load_latest(s, 0, &cur);
    if (rc)
        return shale_err_prefix(rc, "%s: adding pins", shale_objstore_uri(s));
    size_t missing = 0;
    for (size_t i = 0; i < n; i++)
        missing += cp_find(cur, reqs[i].id) == NULL;
    pins_ctx c = {src_id, reqs, n, false};
    if (missing && (rc = manifest_store_update(s, &cur, pins_mut, &c)) == SHALE_NOT_FOUND &&
        c.none_missing)
        rc = SHALE_OK;
    manifest_free(cur);
    return rc;
}

typedef struct rm_ctx {
    const char *id;
    bool found;
    bool refresh;
    uint64_t lifetime_ms;
} rm_ctx;

static shale_status rm_mut(manifest *m, void *arg)
{
    rm_ctx *c = arg;
    c->found = false;
    for (size_t i = 0; i < m->checkpoint_count; i++) {
        if (strcmp(m->checkpoints[i].id, c->id))
            continue;
        c->found = true;
        if (c->refresh) {
            m->checkpoints[i].expire_time_ms =
                c->lifetime_ms ? now_ms() + (int64_t)c->lifetime_ms : 0;
        } else {
            free(m->checkpoints[i].name);
            memmove(&m->checkpoints[i], &m->checkpoints[i + 1],
                    (m->checkpoint_count - i - 1) * sizeof *m->checkpoints);
            m->checkpoint_count--;
        }
        return SHALE_OK;
    }
    return SHALE_NOT_FOUND;  /* abort: nothing to write */
}

static shale_status rm_or_refresh_on(shale_objstore *s, rm_ctx *c, bool missing_ok,
                                     const manifest *base)
{
    manifest *cur = base ? manifest_dup(base) : NULL;
    shale_status rc = base ? (cur ? SHALE_OK : SHALE_OOM()) : manifest_store_load_latest(s, 0, &cur);
    if (!rc)
        rc = manifest_store_update(s, &cur, rm_mut, c);
    manifest_free(cur);
    if (rc == SHALE_NOT_FOUND && !c->found) {
        if (missing_ok)
            return SHALE_OK;
        return shale_err(SHALE_NOT_FOUND, "%s: no checkpoint %s", shale_objstore_uri(s),
                         c->id);
    }
    return rc;
}

static shale_status rm_or_refresh(shale_objstore *s, rm_ctx *c, bool missing_ok)
{
    return rm_or_refresh_on(s, c, missing_ok, NULL);
}

shale_status cp_remove(shale_objstore *s, const char *id, bool missing_ok)
{
    rm_ctx c = {id, false, false, 0};
    return rm_or_refresh(s, &c, missing_ok);
}

shale_status cp_remove_on(shale_objstore *s, const char *id, bool missing_ok,
                          const manifest *base)
{
    rm_ctx c = {id, false, false, 0};
    return rm_or_refresh_on(s, &c, missing_ok, base);
}

/* ---- public calls ----------------------------------------------------- */

/* Scope All through the writer: the memtable frozen (the WAL buffer
 * sealed with it, so its wal_id covers every WAL id written, the fencing
 * WAL's too) and its flush made to carry the record: one SST upload and
 * ONE manifest write with the L0 SST, replay_after_wal_id = that wal_id
 * and the record pinning that version (flush.c).  Older frozen memtables
 * flush first, as they would. */
static shale_status cp_flushed(shale_db *db, add_ctx *c,
                               shale_status (*before_commit)(void *), void *bctx,
                               shale_checkpoint *out)
{
    flush_cp fc;
    memset(&fc, 0, sizeof fc);
    fc.add = add_mut;
    fc.add_ctx = c;
    fc.id = c->new_id;
    fc.before_commit = before_commit;
    fc.barrier_ctx = bctx;
    pthread_mutex_lock(&db->mu);
    shale_status rc = db_check_writable_locked(db);
    if (!rc)
        rc = db_freeze_locked(db);
    if (!rc) {
        imm_entry *e = &db->imms[db->imm_count - 1];
        c->min_replay_after = e->wal_id;
        c->epoch = db->my_epoch;
        c->min_next_wal = db->durable_wal_id + 1;
        e->cp = &fc;
        fc.state = FCP_QUEUED;
    }
    while (!rc && fc.state != FCP_DONE) {
        if (fc.state == FCP_BARRIER) {
            /* The SST is written and invisible; the flush thread waits. */
            pthread_mutex_unlock(&db->mu);
            shale_status brc = before_commit(bctx);
            if (brc)
                snprintf(fc.msg, sizeof fc.msg, "%s", shale_errmsg());
            pthread_mutex_lock(&db->mu);
            fc.barrier_rc = brc;
            fc.state = FCP_COMMIT;
            pthread_cond_broadcast(&db->cv);
            continue;
        }
        if (fc.state == FCP_QUEUED) {
            /* Not taken: a stop now unhooks it (the flush thread never
             * sees it) and fails the call. */
            rc = db_check_writable_locked(db);
            if (!rc)
                rc = db_check_compaction_stall_locked(db, "flush not possible now");
            if (rc) {
                for (size_t i = 0; i < db->imm_count; i++)
                    if (db->imms[i].cp == &fc)
                        db->imms[i].cp = NULL;
                break;
            }
        }
        pthread_cond_wait(&db->cv, &db->mu);
    }
    pthread_mutex_unlock(&db->mu);
    if (rc)
        return rc;
    if (fc.rc)
        return shale_err(fc.rc, "%s", fc.msg);
    if (out)
        *out = fc.desc;
    return SHALE_OK;
}

shale_status shale_flush_checkpoint(shale_db *db, uint64_t lifetime_ms, const char *name,
                                    const char *replaces, shale_barrier_fn before_commit,
                                    void *ctx, shale_checkpoint *out)
{
    if (!db)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_flush_checkpoint: db is NULL");
    add_ctx c;
    memset(&c, 0, sizeof c);
    uuid_new(c.new_id);
    c.lifetime_ms = lifetime_ms;
    c.name = name;
    c.replaces = replaces && *replaces ? replaces : NULL;
    shale_status rc = cp_flushed(db, &c, before_commit, ctx, out);
    return rc ? shale_err_prefix(rc, "%s: creating a flushed checkpoint", db->uri) : SHALE_OK;
}

shale_status shale_checkpoint_create(shale_db *db, shale_checkpoint_scope scope,
                                     uint64_t lifetime_ms, const char *name,
                                     shale_checkpoint *out)
{
    if (!db)
        return shale_err(SHALE_INVALID_ARGUMENT, "shale_checkpoint_create: db is NULL");
    if (scope != SHALE_CHECKPOINT_ALL && scope != SHALE_CHECKPOINT_DURABLE)
        return shale_err(SHALE_INVALID_ARGUMENT, "checkpoint scope %d is not All or Durable",
                         (int)scope);
    if (scope == SHALE_CHECKPOINT_ALL)
        return shale_flush_checkpoint(db, lifetime_ms, name, NULL, NULL, NULL, out);
    add_ctx c;
    memset(&c, 0, sizeof c);
    uuid_new(c.new_id);
    c.lifetime_ms = lifetime_ms;
    c.name = name;
    pthread_mutex_lock(&db->mu);
    shale_status rc = db_check_writable_locked(db);
    c.epoch = db->my_epoch;
    c.min_next_wal = db->durable_wal_id + 1;
    pthread_mutex_unlock(&db->mu);
    if (rc)
        return rc;
    rc = db_update_manifest(db, add_mut, &c);
    if (rc)
        return shale_err_prefix(rc, "%s: creating checkpoint", db->uri);
    if (out) {
        /* Not from db->man: a flush or compaction may have committed a
         * newer version since (which failed this call spuriously before). */
        if (c.described)
            *out = c.desc;
        else
            rc = shale_err(SHALE_NOT_FOUND, "%s: checkpoint %s not in the manifest after "
                                            "creating it", db->uri, c.new_id);
    }
    return rc;
}

/* The admin calls' stores come from one env with the caller's options
 * (env.h); *s is its main store, closed by db_env_unref(*env). */
static shale_status open_env(const char *uri, const shale_options *opts, db_env **env,
                             shale_objstore **s)
{
    *s = NULL;
    shale_status rc = db_env_open(uri, opts, env);
    if (!rc)
        *s = db_env_main(*env);
    return rc;
}

shale_status cp_first_missing_wal(shale_objstore *w, uint64_t from, uint64_t *out)
{
    for (uint64_t id = from;; id++) {
        char key[PATH_KEY_MAX];
        wal_key(id, key, sizeof key);
        shale_status rc = shale_objstore_head(w, key, NULL, NULL);
        if (rc == SHALE_NOT_FOUND) {
            *out = id;
            return SHALE_OK;
        }
        if (rc)
            return rc;
    }
}

shale_status shale_admin_checkpoint_create(const char *uri, const shale_options *opts,
                                           uint64_t lifetime_ms, const char *name,
                                           shale_checkpoint *out)
{
    shale_objstore *s = NULL, *w = NULL;
    manifest *m = NULL;
    db_env *env = NULL;
    shale_status rc = open_env(uri, opts, &env, &s);
    if (rc)
        return rc;
    /* Durable scope without a writer: WAL SSTs written after the last
     * manifest update are durable too; find where they end. */
    rc = manifest_store_load_latest(s, 0, &m);
    if (rc)
        goto out;
    const char *wuri = opts && opts->wal_store_uri ? opts->wal_store_uri : m->wal_store_uri;
    uint64_t next = 0;
    if (wuri && strcmp(wuri, uri)) {
        rc = db_env_store(env, wuri, &w);
        if (rc)
            goto out;
    }
    rc = cp_first_missing_wal(w ? w : s, m->next_wal_sst_id, &next);
    if (!rc)
        rc = cp_add(s, NULL, lifetime_ms, name, next, out);
out:
    manifest_free(m);
    db_env_unref(env);
    return rc;
}

shale_status shale_checkpoint_list(const char *uri, const shale_options *opts,
                                   shale_checkpoint **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    shale_objstore *s = NULL;
    manifest *m = NULL;
    db_env *env = NULL;
    shale_status rc = open_env(uri, opts, &env, &s);
    if (!rc)
        rc = manifest_store_load_latest(s, 0, &m);
    if (!rc) {
        shale_checkpoint *a = calloc(m->checkpoint_count ? m->checkpoint_count : 1, sizeof *a);
        if (!a)
            rc = SHALE_OOM();
        for (size_t i = 0; !rc && i < m->checkpoint_count; i++) {
            const checkpoint_rec *r = &m->checkpoints[i];
            manifest *pinned = NULL;
            if (r->manifest_id != m->id) {
                rc = manifest_store_load(s, r->manifest_id, &pinned);
                if (rc)
                    shale_err_prefix(rc, "%s: checkpoint %s pins manifest %llu", uri, r->id,
                                     (unsigned long long)r->manifest_id);
            }
            if (!rc)
                cp_describe(r, pinned ? pinned : m, &a[i]);
            manifest_free(pinned);
        }
        if (rc) {
            free(a);
        } else {
            *out = a;
            *n = m->checkpoint_count;
        }
    }
    manifest_free(m);
    db_env_unref(env);
    return rc;
}

shale_status shale_checkpoint_refresh(const char *uri, const shale_options *opts,
                                      const char *id, uint64_t lifetime_ms)
{
    if (!id)
        return shale_err(SHALE_INVALID_ARGUMENT, "checkpoint id is NULL");
    shale_objstore *s = NULL;
    db_env *env = NULL;
    shale_status rc = open_env(uri, opts, &env, &s);
    if (!rc) {
        rm_ctx c = {id, false, true, lifetime_ms};
        rc = rm_or_refresh(s, &c, false);
    }
    db_env_unref(env);
    return rc;
}

shale_status shale_checkpoint_delete(const char *uri, const shale_options *opts,
                                     const char *id)
{
    if (!id)
        return shale_err(SHALE_INVALID_ARGUMENT, "checkpoint id is NULL");
    shale_objstore *s = NULL;
    db_env *env = NULL;
    shale_status rc = open_env(uri, opts, &env, &s);
    if (!rc)
        rc = cp_remove(s, id, false);
    db_env_unref(env);
    return rc;
}
