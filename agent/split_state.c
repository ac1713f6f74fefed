/* split_state.c -- see split_state.h. */
#include "split_state.h"
#include "agent_util.h"

#include <stdlib.h>
#include <string.h>

static const char *step_names[STEP_COUNT] = {
    "Accept", "Fence", "FullFlush", "WipeLocalWAL", "Clone", "Verify", "Complete"};
static const split_phase step_phases[STEP_COUNT] = {
    PHASE_ACCEPTED, PHASE_FENCING, PHASE_FLUSHING, PHASE_WIPING, PHASE_CLONING,
    PHASE_VERIFYING, PHASE_COMPLETING};
static const char *phase_names[PHASE_COUNT] = {
    "Pending", "Accepted", "Fencing", "Flushing", "WipingWAL", "Cloning", "Verifying",
    "Completing", "Stalled", "Complete", "Failed", "Aborted"};
static const char *state_names[STEP_STATE_COUNT] = {"Pending", "Running", "Done", "Failed"};
static const char *lease_names[LEASE_STATE_COUNT] = {"None", "Held", "Released"};

static int find(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

const char *split_step_name(split_step s)
{
    return (unsigned)s < STEP_COUNT ? step_names[s] : "?";
}

int split_step_parse(const char *name)
{
    return find(step_names, STEP_COUNT, name);
}

split_phase split_step_phase(split_step s)
{
    return (unsigned)s < STEP_COUNT ? step_phases[s] : PHASE_PENDING;
}

const char *split_phase_name(split_phase p)
{
    return (unsigned)p < PHASE_COUNT ? phase_names[p] : "?";
}

int split_phase_parse(const char *name)
{
    return find(phase_names, PHASE_COUNT, name);
}

const char *step_state_name(step_state s)
{
    return (unsigned)s < STEP_STATE_COUNT ? state_names[s] : "?";
}

int step_state_parse(const char *name)
{
    return find(state_names, STEP_STATE_COUNT, name);
}

const char *lease_state_name(lease_state s)
{
    return (unsigned)s < LEASE_STATE_COUNT ? lease_names[s] : "?";
}

int lease_state_parse(const char *name)
{
    return find(lease_names, LEASE_STATE_COUNT, name);
}

bool split_phase_terminal(split_phase p)
{
    return p == PHASE_COMPLETE || p == PHASE_FAILED || p == PHASE_ABORTED;
}

bool split_state_set_str(char **dst, const char *src)
{
    char *c = agent_strdup(src ? src : "");
    if (!c)
        return false;
    free(*dst);
    *dst = c;
    return true;
}

split_state *split_state_alloc(void)
{
    split_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    bool ok = split_state_set_str(&s->name, "") && split_state_set_str(&s->shard, "") &&
              split_state_set_str(&s->reason, "") && split_state_set_str(&s->message, "");
    for (int i = 0; ok && i < STEP_COUNT; i++)
        ok = split_state_set_str(&s->steps[i].message, "");
    if (!ok) {
        split_state_free(s);
        return NULL;
    }
    return s;
}

split_state *split_state_new(const split_request *r, const char *request_json, bool dry_run,
                             int64_t now)
{
    split_state *s = split_state_alloc();
    if (!s)
        return NULL;
    bool ok = split_state_set_str(&s->name, r->name) &&
              split_state_set_str(&s->shard, r->parent_shard) &&
              (!request_json || (s->request_json = agent_strdup(request_json)));
    s->dry_run = dry_run;
    s->phase = dry_run ? PHASE_PENDING : PHASE_ACCEPTED;
    s->start_ms = now;
    s->steps[STEP_ACCEPT].state = dry_run ? STEP_PENDING : STEP_DONE;
    s->steps[STEP_ACCEPT].start_ms = now;
    s->steps[STEP_ACCEPT].end_ms = now;
    s->children = calloc(r->child_count ? r->child_count : 1, sizeof *s->children);
    ok = ok && s->children;
    for (size_t i = 0; ok && i < r->child_count; i++) {
        s->child_count++;
        ok = (s->children[i].name = agent_strdup(r->children[i].name)) &&
             (s->children[i].store = agent_strdup(r->children[i].store));
    }
    if (!ok) {
        split_state_free(s);
        return NULL;
    }
    return s;
}

void split_plan_free(split_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->child_count; i++) {
        free(p->children[i].name);
        free(p->children[i].store);
    }
    free(p->children);
    free(p);
}

void split_state_free(split_state *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->shard);
    free(s->reason);
    free(s->message);
    for (int i = 0; i < STEP_COUNT; i++)
        free(s->steps[i].message);
    for (size_t i = 0; i < s->child_count; i++) {
        free(s->children[i].name);
        free(s->children[i].store);
    }
    free(s->children);
    split_plan_free(s->plan);
    free(s->stalled.error);
    free(s->request_json);
    free(s);
}

static bool dup_str(char **dst, const char *src)
{
    *dst = NULL;
    return !src || (*dst = agent_strdup(src));
}

split_state *split_state_dup(const split_state *s)
{
    split_state *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    *d = *s;
    d->name = d->shard = d->reason = d->message = d->request_json = d->stalled.error = NULL;
    d->children = NULL;
    d->child_count = 0;
    d->plan = NULL;
    for (int i = 0; i < STEP_COUNT; i++)
        d->steps[i].message = NULL;
    bool ok = dup_str(&d->name, s->name) && dup_str(&d->shard, s->shard) &&
              dup_str(&d->reason, s->reason) && dup_str(&d->message, s->message) &&
              dup_str(&d->request_json, s->request_json) &&
              dup_str(&d->stalled.error, s->stalled.error);
    for (int i = 0; ok && i < STEP_COUNT; i++)
        ok = dup_str(&d->steps[i].message, s->steps[i].message);
    if (ok && s->child_count) {
        ok = (d->children = calloc(s->child_count, sizeof *d->children)) != NULL;
        for (size_t i = 0; ok && i < s->child_count; i++) {
            d->children[i] = s->children[i];
            d->children[i].name = d->children[i].store = NULL;
            d->child_count++;
            ok = dup_str(&d->children[i].name, s->children[i].name) &&
                 dup_str(&d->children[i].store, s->children[i].store);
        }
    }
    if (ok && s->plan) {
        ok = (d->plan = calloc(1, sizeof *d->plan)) != NULL;
        if (ok) {
            *d->plan = *s->plan;
            d->plan->children = NULL;
            d->plan->child_count = 0;
            if (s->plan->child_count)
                ok = (d->plan->children = calloc(s->plan->child_count,
                                                 sizeof *d->plan->children)) != NULL;
            for (size_t i = 0; ok && i < s->plan->child_count; i++) {
                d->plan->children[i] = s->plan->children[i];
                d->plan->children[i].name = d->plan->children[i].store = NULL;
                d->plan->child_count++;
                ok = dup_str(&d->plan->children[i].name, s->plan->children[i].name) &&
                     dup_str(&d->plan->children[i].store, s->plan->children[i].store);
            }
        }
    }
    if (!ok) {
        split_state_free(d);
        return NULL;
    }
    return d;
}
