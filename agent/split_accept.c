/*
 * split_accept.c -- accepting a split: the submit's reads, the lease's
 * take and journal version 1 (splitter.h's submit; docs/agent.md "The
 * split lease").
 *   1. the request is validated against the parent (nothing touched):
 *      its stores, their emptiness (beside the identity reads) and its
 *      ranges, against the parent's range as this process kept it ("The
 *      parent's range" below) or, without one, as its latest version says;
 *   2. one accept at a time in this agent (submit_mu);
 *   3. a split of that name known here, or journalled in the store by any
 *      agent: the same request gets its current status, another one
 *      Conflict;
 *   4. journals that cannot be read yet, or a corrupt one, refuse it;
 *   4b. a request without ranges gets them now, from the parent's SST
 *      indexes (split_auto.h), and is validated with them;
 *   5. the shard's split lease is taken (lease.h): another split holding
 *      it refuses the request with Conflict naming that split; the
 *      parent's latest, read beside the take, is checked against the
 *      request, and a failure releases the lease and refuses it;
 *   6. journal version 1 is written (create-if-absent), then the worker
 *      runs it.  Nothing has a side effect on the parent before 6: Fence's
 *      open starts beside 6's write, but only reads (and writes its
 *      probe's garbage objects) until the worker's Fence lets it fence
 *      (split_preopen.h).
 */
#include "splitter_int.h"
#include "split_preopen.h"
#include "journal.h"
#include "shale_admin.h"
#include "lease.h"
#include "log.h"
#include "par.h"
#include "split_auto.h"
#include "split_status.h"
#include "agent_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The parent's latest version as the submit listed it is handed to
 * Fence's open as the latest only if read less than this long before the
 * open starts (well within a GC's min_age). */
#define SUBMIT_READ_FRESH_MS 5000

/* Two canonical requests mean the same (the journal's copy is re-dumped;
 * a request without ranges matches its journalled, computed form). */
static bool same_request(const char *a, const char *b)
{
    return split_request_json_same(a, b);
}

/* A request without ranges gets them now, at accept, before the lease and
 * the journal (split_auto.h); canon is re-made with them. */
static shale_status fill_ranges(splitter *sp, split_request *r, char **canon)
{
    if (!r->ranges_auto || r->ranges_computed)
        return SHALE_OK;
    shale_status rc = split_auto_fill(r, sp->store_uri, &sp->o.db, sp->shard, sp->store_uri,
                                      sp->wal_uri);
    char *c = NULL;
    if (!rc)
        rc = split_request_to_json(r, &c);
    if (!rc) {
        free(*canon);
        *canon = c;
    }
    return rc;
}

/* A split journalled in the store that this process accepted: unfinished,
 * holding the lease, whose take record this process wrote. */
/* Names whose journal version 1 this splitter wrote but saw fail (it may
 * have landed): only those are accepted_here.  Another splitter of the
 * same process (same lease owner string) that is sent the same request
 * shows it from the store and does not drive it: version 1 records Fence
 * Running, so the acceptor fences without another journal write first,
 * and a second driver would fence beside it. */
static bool uncertain_take(splitter *sp, const char *name)
{
    pthread_mutex_lock(&sp->mu);
    bool found = false;
    for (size_t i = 0; i < sp->nuncertain && !found; i++)
        if (!strcmp(sp->uncertain[i], name)) {
            free(sp->uncertain[i]);
            sp->uncertain[i] = sp->uncertain[--sp->nuncertain];
            found = true;
        }
    pthread_mutex_unlock(&sp->mu);
    return found;
}

static void uncertain_add(splitter *sp, const char *name)
{
    pthread_mutex_lock(&sp->mu);
    char *c = agent_strdup(name);
    if (c && sp->nuncertain < sizeof sp->uncertain / sizeof *sp->uncertain)
        sp->uncertain[sp->nuncertain++] = c;
    else
        free(c);
    pthread_mutex_unlock(&sp->mu);
}

static bool accepted_here(splitter *sp, const split_state *st)
{
    if (split_phase_terminal(st->phase) || st->lease.state != LEASE_HELD ||
        !uncertain_take(sp, st->name))
        return false;
    lease_view v;
    if (lease_read(sp->store, &v))
        return false;
    char self[200];
    lease_self(self, sizeof self);
    bool mine = v.held && !strcmp(v.holder, st->name) && v.top == st->lease.seq &&
                !strcmp(v.owner, self);
    lease_view_free(&v);
    return mine;
}

static shale_status refuse(splitter *sp, const char *name, shale_status rc)
{
    log_refusal(sp, name, rc, shale_errmsg());
    return rc;
}

/* The parent's range (issue 16: one round trip off the submit).  A
 * database's visible range is fixed when it is made -- a root's is the
 * whole key space, a clone's is set by the clone -- and every manifest
 * version carries it unchanged, so once read it checks the ranges of every
 * later request.  It is kept with the identity UUID of the parent's store
 * it was read beside (the worker's first pass, or a submit that read the
 * parent's manifest) and used only when the submit's own identity read,
 * its first round trip, finds that UUID again: another database made in
 * the store since has another identity.  The submit still reads the
 * parent's latest version (Fence's open takes it as its hint, and the run's
 * manifest cache its bytes), but the lease's take no longer waits for that
 * GET; what it reads is checked again before version 1 (accept_parent_join). */
static void prange_free(prange *p)
{
    free(p->s);
    free(p->e);
    memset(p, 0, sizeof *p);
}

static bool bytes_dup(uint8_t **out, const uint8_t *b, size_t n)
{
    *out = NULL;
    if (!b)
        return true;
    if (!(*out = malloc(n ? n : 1)))
        return false;
    memcpy(*out, b, n);
    return true;
}

static void prange_keep(splitter *sp, const char *uuid, const shale_manifest_view *m)
{
    uint8_t *ns = NULL, *ne = NULL;
    if (!bytes_dup(&ns, m->range_start, m->range_start_len) ||
        !bytes_dup(&ne, m->range_end, m->range_end_len)) {
        free(ns);
        free(ne);
        return;
    }
    pthread_mutex_lock(&sp->mu);
    prange_free(&sp->prange);
    sp->prange = (prange){ns, ne, m->range_start_len, m->range_end_len};
    snprintf(sp->prange_uuid, sizeof sp->prange_uuid, "%s", uuid);
    sp->prange_known = true;
    pthread_mutex_unlock(&sp->mu);
}

/* The kept range, when it was read beside this identity. */
static bool prange_get(splitter *sp, const char *uuid, prange *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&sp->mu);
    bool ok = sp->prange_known && !strcmp(sp->prange_uuid, uuid) &&
              bytes_dup(&out->s, sp->prange.s, sp->prange.sl) &&
              bytes_dup(&out->e, sp->prange.e, sp->prange.el);
    out->sl = sp->prange.sl;
    out->el = sp->prange.el;
    pthread_mutex_unlock(&sp->mu);
    if (!ok)
        prange_free(out);
    return ok;
}

typedef struct prime_reads {
    splitter *sp;
    shale_store_identity id;
    shale_manifest_view *m;
} prime_reads;

static shale_status prime_one(void *ctx, size_t i)
{
    prime_reads *x = ctx;
    if (i == 0)
        return shale_store_identity_read(x->sp->store_uri, &x->sp->o.db, &x->id);
    shale_objstore *s = NULL;
    shale_status rc = shale_objstore_open(x->sp->store_uri, &x->sp->o.db.store, &s);
    if (!rc)
        rc = shale_manifest_view_load(s, 0, &x->m);
    shale_objstore_close(s);
    return rc;
}

void splitter_parent_prime(splitter *sp)
{
    prime_reads x;
    memset(&x, 0, sizeof x);
    x.sp = sp;
    shale_status rc = par_for(2, prime_one, &x, NULL);
    if (!rc)
        prange_keep(sp, x.id.uuid, x.m);
    else   /* a submit reads the parent then; nothing to report here */
        log_fields(LOG_DEBUG, NULL, NULL, -1, (log_field[]){LOG_S("error", shale_errmsg())}, 1,
                   "the parent's range not read ahead of the first submit");
    shale_store_identity_clear(&x.id);
    shale_manifest_view_free(x.m);
}

/* What the submit reads at once, before submit_mu (each a round trip or
 * two on S3, independent of each other): the request's stores (the
 * policy's checks on their spellings first, before any is opened, then
 * their identities, then the emptiness of the children's), the parent's
 * latest manifest (its range validates the request), this split's journal
 * (known in the store?) and the shard's lease.  The last two are only
 * hints for accept(): the lease is taken by a create-if-absent after the
 * record seen, which fails if anything was written since, and journal
 * version 1 is a create-if-absent too, so a hint gone stale costs a
 * re-read, never a second split. */
typedef struct submit_reads {
    splitter *sp;
    split_request *r;
    bool check_empty;        /* a split not known here: its stores must be empty */
    bool journal_hints;      /* not a dry run: read the journal and the lease */
    shale_manifest_view *m;  /* the parent's latest */
    shale_manifest_cache *mc; /* holds m's bytes (owned; NULL: none): a new
                                 split's job takes it, so Fence's open does
                                 not GET that version again */
    int64_t m_ms;            /* when it was read (agent_mono_ms) */
    shale_status jrc;        /* journal_load's answer, or -1: not read */
    uint64_t jv;
    split_state *jst;
    shale_status lrc;        /* lease_read's answer, or -1: not read */
    lease_view lv;
    shale_status erc;        /* the children's emptiness */
    char emsg[1024];
    split_store_facts facts; /* the stores' check: the parent's identity */
    /* The parent's latest on a thread of its own (parent_read), so that a
     * request checked against the kept range (prange) need not wait for
     * its GET: joined by accept_parent_join before version 1. */
    pthread_t mthr;
    bool mthr_started, mthr_joined;
    shale_status mrc;
    char mmsg[512];
    prange pr;               /* the range the request was checked against */
    bool pr_kept;            /* ... the kept one: m is checked after the take */
} submit_reads;

static void *parent_read(void *arg)
{
    submit_reads *x = arg;
    splitter *sp = x->sp;
    shale_objstore *s = NULL;
    shale_objstore_options so = sp->o.db.store;
    so.manifest_cache = x->mc;
    shale_status rc = shale_objstore_open(sp->store_uri, &so, &s);
    if (!rc)
        rc = shale_manifest_view_load(s, 0, &x->m);
    x->m_ms = agent_mono_ms();
    shale_objstore_close(s);
    if (rc == SHALE_NOT_FOUND)
        rc = shale_error_set(SHALE_INVALID_ARGUMENT, "parent store %s holds no database",
                             sp->store_uri);
    if ((x->mrc = rc))
        snprintf(x->mmsg, sizeof x->mmsg, "%s", shale_errmsg());
    return NULL;
}

/* The parent's latest as parent_read left it (joined once). */
static shale_status parent_join(submit_reads *x)
{
    if (!x->mthr_started)
        parent_read(x);   /* the thread could not start: read here */
    else if (!x->mthr_joined)
        pthread_join(x->mthr, NULL);
    x->mthr_started = x->mthr_joined = true;
    return x->mrc ? shale_error_set(x->mrc, "%s", x->mmsg) : SHALE_OK;
}

static shale_status submit_read_one(void *ctx, size_t i)
{
    submit_reads *x = ctx;
    splitter *sp = x->sp;
    shale_status rc = SHALE_OK;
    if (i == 0) {
        /* The identities beside the children's emptiness checks; the
         * latter reported after the request's validation, as before (an
         * invalid request is told so first). */
        x->facts.check_empty = x->check_empty;
        rc = split_request_check_stores_facts(x->r, &sp->o.policy, sp->store_uri, sp->wal_uri,
                                              &sp->o.db, &x->facts);
        if (!rc && (x->erc = x->facts.empty_rc))
            snprintf(x->emsg, sizeof x->emsg, "%s", x->facts.empty_msg);
    } else if (i == 1) {
        /* Version 1's HEAD: a new split's journal costs no LIST. */
        x->jrc = journal_load_if_any(sp->store, x->r->name, &x->jv, &x->jst);
    } else {
        x->lrc = lease_read(sp->store, &x->lv);
        if (!x->lrc && !x->lv.held)
            splitter_lease_free_seen(sp, x->lv.top);
    }
    return rc;
}

static void submit_reads_free(submit_reads *x)
{
    (void)parent_join(x);
    prange_free(&x->pr);
    shale_manifest_view_free(x->m);
    shale_manifest_cache_free(x->mc);
    split_state_free(x->jst);
    lease_view_free(&x->lv);
}

/* After the lease's take, before version 1: the parent's latest, read
 * beside the take when the request was checked against the kept range
 * (prange), and the request checked against that version's range.  Only
 * a store that changed under the agent (its manifest gone, a range that
 * differs) or a failed GET fails here: the lease just taken is released
 * (nothing else was written) and the request refused with that error, as
 * before the take.  A kill between the take and that release leaves a take
 * without a journal, as a kill before version 1 always could: an agent that
 * finds it validates its request against the parent as it then is
 * (splitter_adopt_lease).  seq 0: a dry run, which took no lease, is
 * checked the same way. */
static shale_status accept_parent_join(splitter *sp, split_request *r, submit_reads *pre,
                                       uint64_t seq)
{
    if (!pre->pr_kept)
        return SHALE_OK;   /* read and checked before the take */
    shale_status rc = parent_join(pre);
    if (!rc)
        rc = split_request_validate(r, sp->shard, sp->store_uri, sp->wal_uri,
                                    pre->m->range_start, pre->m->range_start_len,
                                    pre->m->range_end, pre->m->range_end_len);
    if (!rc)
        return SHALE_OK;
    if (!seq)
        return rc;   /* a dry run: no lease taken */
    char why[1024];
    snprintf(why, sizeof why, "%s", shale_errmsg());
    uint64_t rs = 0;
    shale_status lr = lease_release_after(sp->store, r->name, seq, &rs);
    if (!lr && rs)
        splitter_lease_free_seen(sp, rs);
    log_fields(LOG_WARN, r->name, split_step_name(STEP_ACCEPT), -1,
               (log_field[]){LOG_S("result", lr ? "LeaseKept" : "LeaseReleased"),
                             LOG_N("leaseSeq", seq), LOG_S("error", why)},
               3, "the parent's latest version refused the request after the lease's take");
    if (lr)
        return shale_error_set(rc, "%s (the split lease taken at %llu could not be released: "
                                   "%s; an agent releases it or accepts the split from it)",
                               why, (unsigned long long)seq, shale_errmsg());
    return shale_error_set(rc, "%s", why);
}

/* Steps 3 to 6 of the header comment, under submit_mu.  Consumes r and
 * canon. */
static shale_status accept(splitter *sp, split_request *r, char *canon, bool *created,
                           char **status_json, submit_reads *pre)
{
    shale_status rc = SHALE_OK;
    job *j = NULL;
    pthread_mutex_lock(&sp->mu);
    expire_dry_runs_locked(sp);
    job *old = find_locked(sp, r->name);
    bool remote = old && old->orphaned && old->load == JOB_LOADED;
    const char *blocked = NULL;
    char why[700] = "";
    if (old && old->load != JOB_LOADED) {
        snprintf(why, sizeof why, "split %s: %s", r->name, old->load_error);
        blocked = why;
    }
    for (job *k = sp->jobs; !r->dry_run && !old && !blocked && k; k = k->next)
        if (k->load == JOB_CORRUPT) {
            snprintf(why, sizeof why, "the journal of split %s is corrupt (%s): new splits of "
                                      "shard %s are refused until an operator clears it "
                                      "(shale-agent --clear-journal %s)",
                     k->st->name, k->load_error, sp->shard, k->st->name);
            blocked = why;
        }
    bool unreadable = false;
    for (job *k = sp->jobs; !r->dry_run && !old && !blocked && k; k = k->next)
        if (k->load == JOB_UNREADABLE)
            unreadable = true;
    if (!r->dry_run && !old && !blocked && (!sp->loaded || unreadable)) {
        snprintf(why, sizeof why, "the split journals of shard %s could not all be read yet "
                                  "(%s); new splits are refused until they are", sp->shard,
                 !sp->loaded ? sp->load_error : "a journal is unreadable");
        pthread_mutex_unlock(&sp->mu);
        rc = refuse(sp, r->name, shale_error_set(SHALE_RETRYABLE, "%s", why));
        goto out;
    }
    pthread_mutex_unlock(&sp->mu);
    if (blocked) {
        rc = refuse(sp, r->name, shale_error_set(SHALE_CONFLICT, "%s", why));
        goto out;
    }
    if (old) {
        if (remote)
            refresh_remote(sp, old);
        pthread_mutex_lock(&sp->mu);
        bool same = same_request(old->req_json ? old->req_json : old->st->request_json, canon);
        pthread_mutex_unlock(&sp->mu);
        if (!same) {
            rc = refuse(sp, r->name, shale_error_set(SHALE_CONFLICT, "split %s exists with a "
                                                                   "different request", r->name));
            goto out;
        }
        rc = status_of(sp, old, status_json);
        goto out;
    }
    if (!r->dry_run) {
        /* Known to the store (another agent, or a split this agent's
         * earlier self finished): its status, never a second run. */
        uint64_t v;
        split_state *st = NULL;
        if (pre->jrc == SHALE_OK || pre->jrc == SHALE_NOT_FOUND) {
            /* Read beside the request's checks (submit_reads) */
            rc = pre->jrc;
            v = pre->jv;
            st = pre->jst;
            pre->jst = NULL;
            pre->jrc = (shale_status)-1;
        } else {
            rc = journal_load(sp->store, r->name, &v, &st);
        }
        if (!rc) {
            bool same = same_request(st->request_json, canon);
            if (!same) {
                split_state_free(st);
                rc = refuse(sp, r->name, shale_error_set(SHALE_CONFLICT, "split %s exists with a "
                                                                       "different request",
                                                         r->name));
                goto out;
            }
            j = calloc(1, sizeof *j);
            if (!j) {
                split_state_free(st);
                rc = AGENT_OOM();
                goto out;
            }
            j->st = st;
            j->orphaned = !accepted_here(sp, st);
            if (!j->orphaned && r->ranges_auto && !r->ranges_computed) {
                /* Ours to run with the ranges its journal recorded. */
                split_request *jr = NULL;
                char *jc = NULL;
                rc = split_request_parse(st->name, st->request_json, strlen(st->request_json),
                                         &jr);
                if (!rc)
                    rc = validate_against_parent(sp, jr);
                if (!rc)
                    rc = split_request_to_json(jr, &jc);
                if (rc) {
                    split_request_free(jr);
                    job_free(j);
                    j = NULL;
                    rc = refuse(sp, r->name, rc);
                    goto out;
                }
                split_request_free(r);
                r = jr;
                free(canon);
                canon = jc;
            }
            if (!j->orphaned) {
                /* This process took its lease and wrote version 1 (the
                 * write reported a failure but landed): it is ours to run. */
                j->req = r;
                r = NULL;
                log_fields(LOG_INFO, st->name, split_step_name(STEP_ACCEPT), -1, NULL, 0,
                           "split accepted on re-send (its journal had been written)");
            }
            j->req_json = canon;
            canon = NULL;
            j->added_ms = splitter_clock_now(sp);
            pthread_mutex_lock(&sp->mu);
            append_locked(sp, j);
            pthread_cond_broadcast(&sp->cv);
            pthread_mutex_unlock(&sp->mu);
            rc = status_of(sp, j, status_json);
            goto out;
        }
        if (rc != SHALE_NOT_FOUND) {
            rc = refuse(sp, r->name, rc);
            goto out;
        }
        if ((rc = fill_ranges(sp, r, &canon))) {
            rc = refuse(sp, r->name, rc);
            goto out;
        }
        uint64_t seq;
        bool fresh;
        char holder[256];
        rc = lease_take_seen(sp->store, sp->shard, r->name, canon,
                             pre->lrc == SHALE_OK ? &pre->lv : NULL, &seq, &fresh, holder,
                             sizeof holder);
        if (rc) {
            rc = refuse(sp, r->name, rc);
            goto out;
        }
        splitter_lease_taken(sp, seq);
        if ((rc = accept_parent_join(sp, r, pre, seq))) {
            rc = refuse(sp, r->name, rc);
            goto out;
        }
        if (!(j = calloc(1, sizeof *j)) ||
            !(j->st = split_state_new(r, canon, false, agent_now_ms()))) {
            free(j);
            j = NULL;
            rc = AGENT_OOM();
            goto out;
        }
        j->st->lease.state = LEASE_HELD;
        j->st->lease.seq = seq;
        j->mcache = pre->mc;   /* the submit's read of the parent, for the run */
        pre->mc = NULL;
        /* Accept: the journal exists before any side effect.  Version 1
         * also records Fence Running (the worker's first step), so the
         * worker does not write a version of its own before fencing: one
         * round trip fewer, and Fence is journalled before its side
         * effects all the same.  Listeners still hear Accepted first (the
         * state in memory); a kill after this write resumes at Fence.
         * It records FullFlush Running too, journalled ahead: FullFlush
         * opens the writer itself (a resumed one fences again), so the
         * step after Fence needs no journal write of its own before its
         * side effects either, and Fence's Done goes out with FullFlush's
         * (journal_decode shows a step Running after an unfinished one as
         * Pending). */
        split_state *v1 = split_state_dup(j->st);
        if (!v1) {
            job_free(j);
            j = NULL;
            rc = AGENT_OOM();
            goto out;
        }
        v1->steps[STEP_FENCE].state = STEP_RUNNING;
        v1->steps[STEP_FENCE].start_ms = agent_now_ms();
        v1->steps[STEP_FULL_FLUSH].state = STEP_RUNNING;
        v1->steps[STEP_FULL_FLUSH].start_ms = v1->steps[STEP_FENCE].start_ms;
        v1->phase = split_step_phase(STEP_FENCE);
        /* Fence's open starts now, beside this write: its reads and probe
         * go out at once with it, and it waits before the fence write for
         * the worker's Fence, which runs only once this version is
         * durable (split_preopen.h).  The parent and its WAL store as
         * Fence's ensure_writer names them (parent_store, parent_wal); the
         * hint only when that parent is the store the submit read. */
        const char *puri = r->parent_store ? r->parent_store : sp->store_uri;
        shale_options oo = db_opts(sp, r->parent_store ? r->parent_wal_store : sp->wal_uri);
        oo.store.manifest_cache = j->mcache;   /* lives until the preopen is freed */
        uint64_t hint = pre->m && !strcmp(puri, sp->store_uri) ? pre->m->id : 0;
        /* Listed by this submit a moment ago (a lease take that lost many
         * rounds aside): the open HEADs the next version instead of listing
         * again (shale_open_at_latest_fenced_after says why that holds). */
        bool latest = hint && agent_mono_ms() - pre->m_ms < SUBMIT_READ_FRESH_MS;
        struct preopen *po = preopen_start(puri, &oo, hint, latest);
        rc = journal_save(sp->store, v1);
        if (rc)
            preopen_free(po);   /* cancelled at its barrier: nothing fenced */
        else
            j->preopen = po;
        if (!rc) {
            j->st->journal_version = v1->journal_version;
            j->fence_journalled = true;
            /* The version the submit read: Fence's open reads it and lists
             * what came after at once (shale_open_at), a round trip fewer. */
            j->parent_manifest_id = pre->m ? pre->m->id : 0;
        }
        split_state_free(v1);
        if (rc == SHALE_CONFLICT) {
            /* Another agent wrote version 1 first: its status. */
            job_free(j);
            j = NULL;
            split_state *st2 = NULL;
            rc = journal_load(sp->store, r->name, &v, &st2);
            if (!rc) {
                *status_json = split_status_text(st2);
                rc = *status_json ? SHALE_OK : AGENT_OOM();
            }
            split_state_free(st2);
            goto out;
        }
        if (rc) {
            /* The write may have landed although it failed here, so the
             * lease stays with this split: re-sending the request finishes
             * the accept (the lease names it), and an agent that finds the
             * lease without a journal later accepts it from the record. */
            uncertain_add(sp, r->name);
            rc = shale_error_prefix(rc, "accepting split %s (it holds the split lease; re-send "
                                        "the request)", r->name);
            job_free(j);
            j = NULL;
            goto out;
        }
        log_fields(LOG_INFO, r->name, split_step_name(STEP_ACCEPT), -1,
                   (log_field[]){LOG_S("result", "Done"), LOG_N("leaseSeq", seq)}, 2,
                   "split accepted; the shard's split lease is held");
        j->lease_taken_ms = agent_mono_ms();
    } else if ((rc = accept_parent_join(sp, r, pre, 0)) || (rc = fill_ranges(sp, r, &canon))) {
        rc = refuse(sp, r->name, rc);
        goto out;
    } else if (!(j = calloc(1, sizeof *j)) || !(j->st = split_state_new(r, canon, true,
                                                                        agent_now_ms()))) {
        free(j);
        j = NULL;
        rc = AGENT_OOM();
        goto out;
    }
    j->req = r;
    j->req_json = canon;
    j->added_ms = splitter_clock_now(sp);
    r = NULL;
    canon = NULL;
    pthread_mutex_lock(&sp->mu);
    append_locked(sp, j);
    *status_json = split_status_text(j->st);
    *created = true;
    pthread_mutex_unlock(&sp->mu);
    /* Listeners hear "Accepted" before the worker is woken for this job. */
    splitter_notify(sp, j);
    pthread_mutex_lock(&sp->mu);
    pthread_cond_broadcast(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
    rc = *status_json ? SHALE_OK : AGENT_OOM();
out:
    split_request_free(r);
    free(canon);
    return rc;
}

shale_status splitter_svc_submit(split_service *svc, const split_request *req, bool *created,
                                  char **status_json)
{
    splitter *sp = (splitter *)svc;
    *created = false;
    *status_json = NULL;
    split_request *r = split_request_dup(req);
    if (!r)
        return AGENT_OOM();
    /* A new split needs empty child stores; a known name is answered
     * below (its status, or a conflict) whatever its stores hold now. */
    pthread_mutex_lock(&sp->mu);
    bool known = find_locked(sp, r->name) != NULL;
    pthread_mutex_unlock(&sp->mu);
    submit_reads pre;
    memset(&pre, 0, sizeof pre);
    pre.sp = sp;
    pre.r = r;
    pre.check_empty = !known;
    pre.journal_hints = !known && !r->dry_run;
    pre.jrc = pre.lrc = (shale_status)-1;
    if (pre.journal_hints)   /* none: the run reads the parent's version again */
        (void)shale_manifest_cache_new(0, &pre.mc);
    /* The lease as this process last saw it free (splitter.lease_free_top):
     * then it is not listed here; the take's create-if-absent after it is
     * the check (lease_take_seen). */
    pthread_mutex_lock(&sp->mu);
    if (pre.journal_hints && sp->lease_free_known) {
        pre.lrc = SHALE_OK;
        pre.lv.top = sp->lease_free_top;
    }
    pthread_mutex_unlock(&sp->mu);
    size_t reads = !pre.journal_hints ? 1 : pre.lrc == SHALE_OK ? 2 : 3;
    /* validate_against_parent()'s checks and the accept's reads at once
     * (submit_reads), the parent's latest on its own thread beside them:
     * the request's error comes first, as in that order. */
    pre.mthr_started = !pthread_create(&pre.mthr, NULL, parent_read, &pre);
    shale_status rc = par_for(reads, submit_read_one, &pre, NULL);
    /* The range the request must cover: the kept one, when the parent's
     * store still has the identity it was read beside (the lease's take
     * then goes out without waiting for the parent's GET, which is checked
     * against it before version 1), else the latest version's. */
    if (!rc)
        pre.pr_kept = pre.facts.parent_has_id && prange_get(sp, pre.facts.parent_uuid, &pre.pr);
    if (!rc && !pre.pr_kept && !(rc = parent_join(&pre))) {
        if (pre.facts.parent_has_id)
            prange_keep(sp, pre.facts.parent_uuid, pre.m);
        if (!bytes_dup(&pre.pr.s, pre.m->range_start, pre.m->range_start_len) ||
            !bytes_dup(&pre.pr.e, pre.m->range_end, pre.m->range_end_len))
            rc = AGENT_OOM();
        pre.pr.sl = pre.m->range_start_len;
        pre.pr.el = pre.m->range_end_len;
    }
    if (!rc)
        rc = split_request_validate(r, sp->shard, sp->store_uri, sp->wal_uri, pre.pr.s,
                                    pre.pr.sl, pre.pr.e, pre.pr.el);
    if (!rc && pre.erc)
        rc = shale_error_set(pre.erc, "%s", pre.emsg);
    char *canon = NULL;
    if (!rc)
        rc = split_request_to_json(r, &canon);
    if (rc) {
        free(canon);
        log_fields(LOG_WARN, req->name, NULL, -1,
                   (log_field[]){LOG_S("result", shale_strerror(rc)),
                                 LOG_S("error", shale_errmsg())},
                   2, "request refused");
        split_request_free(r);
        submit_reads_free(&pre);
        return rc;
    }
    pthread_mutex_lock(&sp->submit_mu);
    rc = accept(sp, r, canon, created, status_json, &pre);
    pthread_mutex_unlock(&sp->submit_mu);
    submit_reads_free(&pre);
    return rc;
}
