/*
 * db_open.c -- the writer's open: stores, manifest, fencing, WAL replay
 * (the steps are listed in db.c's header; SlateDB's fencing protocol,
 * docs/format.md).  shale_open() (db.c) allocates the handle, calls
 * db_open_inner() and starts the threads.
 */
#include "db/db_int.h"
#include "db/identity.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fence_ctx {
    const shale_db *db;
    const char *wal_uri;   /* to record when none is */
    uint64_t epoch, cepoch;
} fence_ctx;

/* An open whose barrier (before_fence) held it longer than this after its
 * reads lists the versions after the one it read again before fencing:
 * the GC's min_age (5 minutes by default) is what makes a read a moment
 * old good enough for the fence write (load_latest_fresh). */
#define OPEN_READ_FRESH_MS 10000

/* A takeover's replay made before its fence (issue 16).  A split's open
 * waits at its barrier (before_fence) while the split's journal is
 * written; replaying the WAL only after the fence write put the replay's
 * CPU and local reads between two of the chain's manifest writes.  So the
 * open replays what the WAL holds as soon as it has the manifest it read,
 * into a memtable of its own, while its probe and the barrier wait; after
 * the fence the replay goes on from the first id this one did not find
 * (the old writer may have written more until the fence stopped it).  The
 * memtable is kept only if the fenced version has the same replay point
 * (replay_after_wal_id and last_l0_seq) as the version replayed over: a
 * flush by the old writer in between moved it, and the replay is then
 * made again from the fenced version as before.  Reading the WAL is no
 * side effect, and nothing of this is visible before the fence.  A
 * replay that would fill more than one memtable (the real one freezes
 * memtables as it goes) or fails is dropped: the replay after the fence
 * then does all of it, and reports what failed. */
typedef struct spec_replay {
    memtable *mem;                 /* owned; NULL when none is kept */
    uint64_t replay_after, last_l0_seq;   /* of the version replayed over */
    uint64_t first_free, last_seq;
    size_t limit;
} spec_replay;

static shale_status spec_entry(void *ctx, const kv_entry *e)
{
    spec_replay *s = ctx;
    return wal_replay_add(s->mem, s->last_l0_seq, &s->last_seq, e);
}

static shale_status spec_after_sst(void *ctx, uint64_t id)
{
    spec_replay *s = ctx;
    (void)id;
    return memtable_bytes(s->mem) >= s->limit ? SHALE_CONFLICT : SHALE_OK;
}

static void spec_replay_run(shale_db *db, const manifest *m, spec_replay *s)
{
    memset(s, 0, sizeof *s);
    if (!(s->mem = memtable_new()))
        return;
    s->replay_after = m->replay_after_wal_id;
    s->last_l0_seq = s->last_seq = m->last_l0_seq;
    s->limit = db->opts.memtable_bytes;
    wal_replay_cb cb = {spec_entry, spec_after_sst, s};
    if (wal_read_range(db->wal_store, db->uri, m, 0, &cb, &s->first_free)) {
        memtable_unref(s->mem);   /* the replay after the fence says why */
        s->mem = NULL;
        return;
    }
    /* Its SST's CPU goes here too, beside the barrier's wait: with no
     * entry added by the fence, the flush that follows the open uploads
     * it at once (flush_prebuild_start). */
    flush_prebuild_spec(db, s->mem);
}

/* The fenced version's memtable: the speculative one when its replay
 * point is db->man's (db->last_seq and replay_next_id follow it), else a
 * new one.  NULL on OOM. */
static memtable *spec_replay_take(shale_db *db, spec_replay *s)
{
    memtable *mem = s->mem;
    s->mem = NULL;
    if (mem && db->man->replay_after_wal_id == s->replay_after &&
        db->man->last_l0_seq == s->last_l0_seq) {
        db->last_seq = s->last_seq;
        db->replay_next_id = s->first_free;
        db->spec_replayed = memtable_count(mem);
        return mem;
    }
    memtable_unref(mem);
    db->last_seq = db->man->last_l0_seq;
    return memtable_new();
}

static shale_status check_wal_store(const shale_db *db, const manifest *m);
static shale_status check_initialized(const shale_db *db, const manifest *m);

static shale_status fence_mut(manifest *m, void *arg)
{
    fence_ctx *c = arg;
    /* The open checked the version it read; a lost race (or a stale
     * shale_open_at() hint) raises a newer one: the same checks on it. */
    shale_status rc = check_initialized(c->db, m);
    if (!rc)
        rc = check_wal_store(c->db, m);
    if (rc)
        return rc;
    m->writer_epoch++;
    m->compactor_epoch++;
    c->epoch = m->writer_epoch;
    c->cepoch = m->compactor_epoch;
    if (c->wal_uri && !m->wal_store_uri && !(m->wal_store_uri = xstrdup(c->wal_uri)))
        return SHALE_OOM();
    return SHALE_OK;
}

typedef struct next_wal_ctx {
    uint64_t epoch, next;
} next_wal_ctx;

static shale_status next_wal_mut(manifest *m, void *arg)
{
    next_wal_ctx *c = arg;
    if (m->writer_epoch != c->epoch)
        return shale_err(SHALE_FENCED, "manifest writer_epoch %llu is not ours (%llu)",
                         (unsigned long long)m->writer_epoch, (unsigned long long)c->epoch);
    if (m->next_wal_sst_id < c->next)
        m->next_wal_sst_id = c->next;
    return SHALE_OK;
}

/* Checks the WAL-store rules: None -> Some allowed (recorded by the fence
 * write), Some(a) -> Some(b) or Some(a) -> None refused. */
static shale_status check_wal_store(const shale_db *db, const manifest *m)
{
    const char *rec = m->wal_store_uri;
    if (!rec)
        return SHALE_OK;
    if (!db->wal_uri)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "%s: the manifest records WAL store '%s' but none was given; open "
                         "with wal_store_uri = '%s'",
                         db->uri, rec, rec);
    if (strcmp(rec, db->wal_uri))
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "%s: WAL store reconfiguration refused: the manifest records '%s', "
                         "the caller gave '%s'",
                         db->uri, rec, db->wal_uri);
    return SHALE_OK;
}

static shale_status check_initialized(const shale_db *db, const manifest *m)
{
    if (m->initialized)
        return SHALE_OK;
    return shale_err(SHALE_INVALID_ARGUMENT,
                     "%s: this database is a clone that was not finished "
                     "(initialized=false); re-run the same clone to complete it",
                     db->uri);
}

/* The hinted version's GET, on its own thread (beside the listing). */
typedef struct hinted_get {
    shale_objstore *s;
    uint64_t id;
    manifest *m;
    shale_status rc;
    char msg[512];
} hinted_get;

static void *hinted_get_main(void *arg)
{
    hinted_get *g = arg;
    g->rc = manifest_store_load(g->s, g->id, &g->m);
    if (g->rc && g->rc != SHALE_NOT_FOUND)
        snprintf(g->msg, sizeof g->msg, "%s", shale_errmsg());
    return NULL;
}

/* The latest manifest version, given shale_open_at()'s hint: the hinted
 * version's GET beside a listing of the versions after it (one round trip,
 * where the full listing and then the GET are two).  The listing decides
 * which version is the latest, exactly as manifest_store_load_latest()'s
 * does: a newer version listed is read next, and a hint that names no
 * version (deleted, or never written) falls back to the full listing.  The
 * fence write that follows is a create-if-absent of the next id, so a
 * version written after the listing makes it fail and re-read, as without
 * a hint.  0: no hint. */
static shale_status load_latest_hinted(shale_objstore *s, uint64_t hint, manifest **out)
{
    *out = NULL;
    if (!hint)
        return manifest_store_load_latest(s, 0, out);
    hinted_get g = {s, hint, NULL, SHALE_OK, ""};
    pthread_t th;
    bool threaded = !pthread_create(&th, NULL, hinted_get_main, &g);
    if (!threaded)
        hinted_get_main(&g);
    uint64_t newer = 0;
    shale_status rc = manifest_store_newest_after(s, hint, &newer);
    if (threaded)
        pthread_join(th, NULL);
    if (rc) {
        manifest_free(g.m);
        return rc;
    }
    if (newer) {
        /* The hint was stale: the newest version listed (gone by now, to
         * a GC that found a newer one still: the full listing). */
        manifest_free(g.m);
        rc = manifest_store_load(s, newer, out);
        return rc == SHALE_NOT_FOUND ? manifest_store_load_latest(s, 0, out) : rc;
    }
    if (g.rc == SHALE_NOT_FOUND)
        return manifest_store_load_latest(s, 0, out);   /* the hint names nothing */
    if (g.rc)
        return shale_err(g.rc, "%s", g.msg);
    *out = g.m;
    return SHALE_OK;
}

/* Rounds of load_latest_fresh() before it lists. */
#define FRESH_ROUNDS 3

/* The latest version given shale_open_at_latest_fenced_after()'s latest_id
 * (the caller read it as the latest a moment ago): its GET beside a HEAD
 * of the version after it, and no listing when there is none.  That
 * stands because versions are written in order (each the create-if-absent
 * of the one after the latest) and a GC deletes only versions older than
 * its min_age (5 minutes by default): any version after latest_id was
 * written after the caller's read, so if one existed and another after
 * it, the first could not have been deleted yet.  A version after it
 * there (the database written since) is a moment old too: the same again
 * from it, up to FRESH_ROUNDS times (one round trip each, where the
 * listing and then the newest's GET are two), then the listing
 * (load_latest_hinted()).  A HEAD that fails, or a version that names
 * nothing, lists too. */
static shale_status load_latest_fresh(shale_objstore *s, uint64_t latest_id, manifest **out)
{
    *out = NULL;
    uint64_t at = latest_id;
    for (int round = 0; at && round < FRESH_ROUNDS; round++) {
        hinted_get g = {s, at, NULL, SHALE_OK, ""};
        pthread_t th;
        bool threaded = !pthread_create(&th, NULL, hinted_get_main, &g);
        if (!threaded)
            hinted_get_main(&g);
        char key[PATH_KEY_MAX];
        manifest_key(at + 1, key, sizeof key);
        shale_status hrc = shale_objstore_head(s, key, NULL, NULL);
        if (threaded)
            pthread_join(th, NULL);
        if (hrc == SHALE_NOT_FOUND && g.rc == SHALE_OK) {
            *out = g.m;
            return SHALE_OK;
        }
        manifest_free(g.m);
        if (hrc == SHALE_NOT_FOUND && g.rc != SHALE_NOT_FOUND)
            return shale_err(g.rc, "%s", g.msg);
        if (hrc != SHALE_OK)
            break;   /* at names nothing (or the HEAD failed): list */
        at++;        /* written since: the next one */
    }
    return load_latest_hinted(s, at, out);
}

static shale_status load_or_create(shale_db *db, manifest **out)
{
    shale_status rc = manifest_store_load_latest(db->store, 0, out);
    if (rc != SHALE_NOT_FOUND)
        return rc;
    if (!db->opts.create_if_missing)
        return shale_err(SHALE_NOT_FOUND, "%s: no database here (no manifest) and "
                                          "create_if_missing is off", db->uri);
    manifest *m = manifest_new();
    if (!m)
        return SHALE_OOM();
    m->id = 1;
    rc = manifest_store_write(db->store, m);
    manifest_free(m);
    if (rc && rc != SHALE_PRECONDITION_FAILED)
        return rc;
    return manifest_store_load_latest(db->store, 1, out);
}

static shale_status write_fence_wal(shale_db *db, uint64_t *id)
{
    shale_buf img = SHALE_BUF_INIT;
    wal_buf empty = {0};   /* a fence: a WAL SST of no entries */
    shale_status rc = wal_encode(db->opts.block_size, db->opts.compression_level, &empty, &img);
    while (!rc) {
        char key[PATH_KEY_MAX];
        wal_key(*id, key, sizeof key);
        rc = shale_objstore_put_if_absent(db->wal_store, key, img.data, img.len);
        if (rc != SHALE_PRECONDITION_FAILED)
            break;
        /* Someone wrote this id after our probe: the old writer, still
         * alive, or a newer writer.  A newer epoch means we lost. */
        manifest *latest = NULL;
        rc = manifest_store_load_latest(db->store, db->man->id, &latest);
        if (rc)
            break;
        bool lost = latest->writer_epoch > db->my_epoch;
        manifest_free(latest);
        if (lost) {
            rc = shale_err(SHALE_FENCED, "%s: a newer writer took over while opening",
                           db->uri);
            break;
        }
        uint64_t next = 0;
        rc = wal_replay(db, &next);   /* picks up the id just written */
        if (!rc)
            *id = next;
    }
    buf_free(&img);
    return rc;
}

/* The conditional-create probe of the open's stores, on its own thread
 * (shale_errmsg() is per thread: the message is carried back in msg), and
 * the identity read on another.  The probe is shale_objstore_probe_
 * conditional()'s two creates; its object's delete is left to
 * probe_cleanup(), which runs beside the fence write: the probe costs the
 * open two round trips (as the manifest's LIST and GET do), not three. */
typedef struct open_probe {
    shale_db *db;
    shale_status rc;
    char msg[512];
    char keys[2][PATH_KEY_MAX];    /* probe objects to delete ("" none) */
    shale_objstore *stores[2];
    shale_status id_rc;            /* the identity read's answer */
    shale_store_identity id;
} open_probe;

/* One conditional create of the probe, on its own thread. */
typedef struct probe_create {
    shale_objstore *s;
    const char *key, *val;
    shale_status rc;
    char msg[512];
} probe_create;

static void *probe_create_main(void *arg)
{
    probe_create *c = arg;
    c->rc = shale_objstore_put_if_absent(c->s, c->key, c->val, 1);
    if (c->rc && c->rc != SHALE_PRECONDITION_FAILED)
        snprintf(c->msg, sizeof c->msg, "%s", shale_errmsg());
    return NULL;
}

/* shale_objstore_probe_conditional()'s test, in one round trip: the two
 * creates of one new key go out at once.  A store that honours
 * create-if-absent lets exactly one of them create the key and refuses the
 * other (412); one that ignores it lets both succeed.  Any other answer
 * (S3 may refuse one of two racing conditional writes with 409: retry) is
 * settled by the sequential test: a create of the key, which exists once
 * either succeeded, must then be refused. */
static shale_status probe_one(open_probe *p, int k, shale_objstore *s)
{
    char uid[37];
    uuid_new(uid);
    probe_key(uid, p->keys[k], sizeof p->keys[k]);
    p->stores[k] = s;
    probe_create a = {s, p->keys[k], "1", SHALE_OK, ""}, b = {s, p->keys[k], "2", SHALE_OK, ""};
    pthread_t th;
    bool threaded = !pthread_create(&th, NULL, probe_create_main, &a);
    if (!threaded)
        probe_create_main(&a);
    probe_create_main(&b);
    if (threaded)
        pthread_join(th, NULL);
    if (a.rc == SHALE_OK && b.rc == SHALE_OK)
        return probe_verdict(s, p->keys[k], SHALE_OK);   /* both created it */
    bool created = a.rc == SHALE_OK || b.rc == SHALE_OK;
    shale_status other = a.rc == SHALE_OK ? b.rc : a.rc;
    if (created && other == SHALE_PRECONDITION_FAILED)
        return SHALE_OK;
    if (!created) {
        /* Neither created the key: the probe fails as its first create
         * did (a 412 with no success means the key was there: keep it
         * for the delete). */
        const probe_create *e = a.rc != SHALE_PRECONDITION_FAILED ? &a : &b;
        if (a.rc != SHALE_PRECONDITION_FAILED && b.rc != SHALE_PRECONDITION_FAILED)
            p->keys[k][0] = '\0';
        if (e->rc == SHALE_PRECONDITION_FAILED)
            return shale_err(SHALE_IO, "probing conditional create on %s: a new key %s "
                                       "was refused as existing",
                             shale_objstore_uri(s), p->keys[k]);
        return shale_err(e->rc, "probing conditional create on %s: %s",
                         shale_objstore_uri(s), e->msg);
    }
    /* One created it, the other failed otherwise: the sequential test. */
    return probe_verdict(s, p->keys[k], shale_objstore_put_if_absent(s, p->keys[k], "2", 1));
}

/* The stores' probes at once (the WAL store's beside the main one's). */
typedef struct probe_wal {
    open_probe *p;
    shale_status rc;
    char msg[512];
} probe_wal;

static void *probe_wal_main(void *arg)
{
    probe_wal *w = arg;
    w->rc = probe_one(w->p, 1, w->p->db->wal_store);
    if (w->rc)
        snprintf(w->msg, sizeof w->msg, "%s", shale_errmsg());
    return NULL;
}

static void *probe_main(void *arg)
{
    open_probe *p = arg;
    probe_wal w = {p, SHALE_OK, ""};
    pthread_t th;
    bool two = p->db->wal_store != p->db->store;
    bool threaded = two && !pthread_create(&th, NULL, probe_wal_main, &w);
    p->rc = probe_one(p, 0, p->db->store);
    if (p->rc)
        snprintf(p->msg, sizeof p->msg, "%s", shale_errmsg());
    if (threaded)
        pthread_join(th, NULL);
    else if (two && !p->rc)
        probe_wal_main(&w);
    if (!p->rc && w.rc) {
        p->rc = w.rc;
        snprintf(p->msg, sizeof p->msg, "%s", w.msg);
    }
    return NULL;
}

static void *identity_main(void *arg)
{
    open_probe *p = arg;
    p->id_rc = identity_read(p->db->store, &p->id);
    return NULL;
}

/* Deletes the probe objects (best effort, as the probe's own delete is: a
 * leftover .probe/ object is garbage, never state). */
static void *probe_cleanup(void *arg)
{
    open_probe *p = arg;
    for (int k = 0; k < 2; k++)
        if (p->keys[k][0])
            shale_objstore_delete(p->stores[k], p->keys[k]);
    return NULL;
}

static shale_status db_open_fence(shale_db *db, const db_open_args *a, manifest *m,
                                  shale_status rc, const char *msg, const open_probe *pr_,
                                  shale_status id_rc, shale_store_identity *idp,
                                  int64_t read_ms, spec_replay *sr);

/* opts: the caller's, read only here (the env copies what is kept). */
shale_status db_open_inner(shale_db *db, const shale_options *opts, const db_open_args *a)
{
    shale_options eo = *opts;
    eo.wal_store_uri = db->wal_uri;
    shale_status rc = db_env_open(db->uri, &eo, &db->env);
    if (rc)
        return rc;
    /* From here on the handle's options are the env's copies. */
    db->opts.store = db_env_options(db->env)->store;
    db->store = db_env_main(db->env);
    db->wal_store = db->store;
    if (db->wal_uri && strcmp(db->wal_uri, db->uri) &&
        (rc = db_env_store(db->env, db->wal_uri, &db->wal_store)))
        return rc;
    /* The probe (3 requests) and the reads an open needs (the latest
     * manifest, 2; the identity, 1) are independent: run the probe on its
     * own thread beside the reads, so they cost 3 round trips, not 6.
     * Nothing is written before the probe has passed: the reads only
     * read, and a new database's first manifest and any identity write
     * come after the join. */
    open_probe pr;
    memset(&pr, 0, sizeof pr);
    pr.db = db;
    pthread_t th, ith, cth;
    bool probing = !db->opts.unsafe_allow_unconditional_store;
    bool threaded = probing && !pthread_create(&th, NULL, probe_main, &pr);
    if (probing && !threaded)
        probe_main(&pr);
    /* The identity on its own thread too: three reads and two creates in
     * two round trips. */
    bool id_threaded = !pthread_create(&ith, NULL, identity_main, &pr);
    manifest *m = NULL;
    rc = a->hint_latest ? load_latest_fresh(db->store, a->hint, &m)
                        : load_latest_hinted(db->store, a->hint, &m);
    int64_t read_ms = mono_ms();
    char msg[512] = "";
    if (rc && rc != SHALE_NOT_FOUND)
        snprintf(msg, sizeof msg, "%s", shale_errmsg());
    /* A takeover replays now, while its probe is out (spec_replay). */
    spec_replay sr;
    memset(&sr, 0, sizeof sr);
    if (!rc && a->before_fence) {
        spec_replay_run(db, m, &sr);
        shale_err_clear();   /* a dropped replay's message is not the open's */
    }
    if (id_threaded)
        pthread_join(ith, NULL);
    else
        identity_main(&pr);
    shale_store_identity id = pr.id;
    shale_status id_rc = rc && rc != SHALE_NOT_FOUND ? rc : pr.id_rc;
    if (rc && rc != SHALE_NOT_FOUND && pr.id_rc == SHALE_OK)
        shale_store_identity_clear(&id);   /* not used on this path */
    if (threaded)
        pthread_join(th, NULL);
    /* The probe objects go beside what follows (joined below). */
    bool cleaning = !pthread_create(&cth, NULL, probe_cleanup, &pr);
    if (!cleaning)
        probe_cleanup(&pr);
    rc = db_open_fence(db, a, m, rc, msg, &pr, id_rc, &id, read_ms, &sr);
    memtable_unref(sr.mem);   /* not taken: the open failed first */
    if (cleaning)
        pthread_join(cth, NULL);
    return rc;
}

/* The rest of db_open_inner() once the probe and the reads are in: m and
 * rc the manifest read's (m owned), id_rc / *id the identity read's (*id
 * owned when id_rc is SHALE_OK). */
static shale_status db_open_fence(shale_db *db, const db_open_args *a, manifest *m,
                                  shale_status rc, const char *msg, const open_probe *pr_,
                                  shale_status id_rc, shale_store_identity *idp, int64_t read_ms,
                                  spec_replay *sr)
{
    const open_probe pr = *pr_;
    shale_store_identity id = *idp;
    shale_status brc = SHALE_OK;
    if (!pr.rc && a->before_fence)
        brc = a->before_fence(a->ctx);   /* nothing written yet but probe objects */
    if (!pr.rc && !brc && !rc && a->before_fence && mono_ms() - read_ms > OPEN_READ_FRESH_MS) {
        /* The barrier held the open long: what it read may be older than a
         * GC's min_age allows by the fence write (load_latest_fresh), so
         * the versions after it are listed again first. */
        manifest *m2 = NULL;
        shale_status lrc = manifest_store_load_latest(db->store, m->id, &m2);
        if (lrc) {
            manifest_free(m);
            if (id_rc == SHALE_OK)
                shale_store_identity_clear(&id);
            /* Never "a new database": the store held a version a moment ago. */
            return shale_err_prefix(lrc == SHALE_NOT_FOUND ? SHALE_IO : lrc,
                                    "%s: reading the latest version again before the fence",
                                    db->uri);
        }
        manifest_free(m);
        m = m2;
    }
    if (pr.rc || brc) {
        manifest_free(m);
        if (id_rc == SHALE_OK)
            shale_store_identity_clear(&id);
        if (brc)
            return brc;   /* the barrier's message stands */
        return shale_err(pr.rc, "%s", pr.msg);
    }
    bool created = rc == SHALE_NOT_FOUND, id_settled = false;
    if (created && id_rc == SHALE_OK &&
        (id.kind == SHALE_STORE_KIND_CHILD_CLAIM || (id.kind == SHALE_STORE_KIND_DB && id.claim))) {
        /* A split claimed this store for a child: only its clone may make
         * the database there (and a writer's version 1 would make the
         * clone fail after the split's point of no return).  A database
         * identity made from a claim over a store with no version is that
         * clone half done (shale_clone_many_held writes the identity beside
         * version 1). */
        rc = identity_refuse_claim(db->uri, &id);
    } else if (created) {
        /* A new database's identity goes before its version 1: a split's
         * claim racing this open meets it at the same create-if-absent, so
         * exactly one of them takes the store -- the claim is refused, or
         * this open is, with no manifest left in the claimed store. */
        rc = SHALE_OK;   /* the manifest read's NOT_FOUND: a new database */
        if (id_rc == SHALE_NOT_FOUND) {
            rc = identity_settle(db->store, db->uri, &db->opts.store, SHALE_STORE_KIND_DB,
                                 SHALE_NOT_FOUND, &id, NULL);
            id_settled = true;
        }
        if (!rc)
            rc = load_or_create(db, &m);   /* lists again: a new database only */
    } else if (rc)
        rc = shale_err(rc, "%s", msg);
    if (rc) {
        shale_store_identity_clear(&id);
        return rc;
    }
    db->man = m;
    rc = check_initialized(db, m);
    if (!rc)
        rc = check_wal_store(db, m);
    if (rc) {
        shale_store_identity_clear(&id);
        return rc;
    }
    /* Both stores carry an identity (shale_admin.h); older ones get it now.
     * A claim is adopted only where the database already was (a finished
     * clone under it: its manifest is initialised), and the WAL store's
     * only when it is the same split's claim as the database's origin. */
    char *origin = id_rc == SHALE_OK && id.claim ? strdup(id.claim) : NULL;
    rc = id_settled                          ? SHALE_OK
         : id_rc && id_rc != SHALE_NOT_FOUND ? id_rc
                                             : identity_settle(db->store, db->uri,
                                                               &db->opts.store,
                                                               SHALE_STORE_KIND_DB, id_rc, &id,
                                                               created ? NULL
                                                                       : identity_any_claim);
    shale_store_identity_clear(&id);
    if (!rc && db->wal_store != db->store)
        rc = identity_ensure(db->wal_store, db->wal_uri, &db->opts.store, SHALE_STORE_KIND_WAL,
                             origin);
    free(origin);
    if (rc)
        return rc;
    fence_ctx fc = {db, db->wal_uri, 0, 0};
    rc = manifest_store_update(db->store, &db->man, fence_mut, &fc);
    if (rc)
        return shale_err_prefix(rc, "%s: raising writer_epoch", db->uri);
    db->my_epoch = fc.epoch;
    db->my_compactor_epoch = fc.cepoch;
    db->mem = spec_replay_take(db, sr);   /* sets db->last_seq */
    db->walbuf = wal_buf_new();
    if (!db->mem || !db->walbuf)
        return SHALE_OOM();
    db->flushed_wal_id = db->man->replay_after_wal_id;
    uint64_t fence_id = 0;
    rc = wal_replay(db, &fence_id);
    if (rc)
        return rc;
    rc = wal_log_enable(shale_objstore_uri(db->wal_store), &db->opts.store);
    if (!rc)
        rc = write_fence_wal(db, &fence_id);
    if (rc)
        return rc;
    db->next_wal_id = fence_id + 1;
    db->durable_wal_id = fence_id;
    /* The writer's WAL GC deletes only ids above its own fence (wal_gc.c). */
    db->fence_wal_id = fence_id;
    db->wal_gc_next = fence_id + 1;
    db->durable_seq = db->last_seq;
    /* A takeover (the barrier is a split's) flushes next: the replayed
     * memtable, final now, is built into its SST beside the write below
     * and uploaded -- only uploaded when the image built before the fence
     * is of it still (flush_prebuild_spec). */
    if (a->before_fence)
        flush_prebuild_start(db);
    next_wal_ctx nc = {db->my_epoch, fence_id + 1};
    rc = manifest_store_update(db->store, &db->man, next_wal_mut, &nc);
    if (rc)
        return rc;
    return db_rebuild_view_locked(db);
}
