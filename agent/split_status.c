/* split_status.c -- see split_status.h; the shape is service.h's. */
#include "split_status.h"
#include "journal.h"
#include "lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *time_or_null(int64_t ms)
{
    if (!ms)
        return json_null();
    char b[40];
    journal_format_time(ms, b, sizeof b);
    return json_string(b);
}

static json_t *plan_json(const split_plan *p)
{
    json_t *kids = json_array();
    for (size_t i = 0; i < p->child_count; i++) {
        const split_plan_child *c = &p->children[i];
        json_array_append_new(kids, json_pack("{s:s, s:s, s:I, s:I, s:I}", "name", c->name,
                                              "store", c->store, "sstsToReference",
                                              (json_int_t)c->ssts, "bytesReferenced",
                                              (json_int_t)c->bytes, "expectedKeys",
                                              (json_int_t)c->expected_keys));
    }
    return json_pack("{s:I, s:i, s:I, s:o}", "walSstsInGap", (json_int_t)p->wal_ssts_in_gap,
                     "walSstsToCopyAfterFullFlush", 0, "parentManifestId",
                     (json_int_t)p->parent_manifest_id, "children", kids);
}

/* The request's children (by name) and whether the agent computed their
 * ranges, from the canonical request the state carries. */
static json_t *request_of(const split_state *s)
{
    json_error_t e;
    return s->request_json ? json_loads(s->request_json, 0, &e) : NULL;
}

static json_t *range_of(json_t *req, const char *child)
{
    json_t *kids = json_object_get(req, "children"), *k;
    size_t i;
    json_array_foreach(kids, i, k) {
        const char *n = json_string_value(json_object_get(k, "name"));
        json_t *rg = json_object_get(k, "range");
        if (n && !strcmp(n, child) && json_is_object(rg))
            return json_deep_copy(rg);
    }
    return NULL;
}

json_t *split_status_json(const split_state *s)
{
    json_t *d = json_object();
    if (!d)
        return NULL;
    json_object_set_new(d, "name", json_string(s->name));
    json_object_set_new(d, "uid", json_string(s->name));
    json_object_set_new(d, "shard", json_string(s->shard));
    json_object_set_new(d, "phase", json_string(split_phase_name(s->phase)));
    json_object_set_new(d, "dryRun", json_boolean(s->dry_run));
    json_object_set_new(d, "message", json_string(s->message ? s->message : ""));
    json_object_set_new(d, "reason", json_string(s->reason ? s->reason : ""));
    json_object_set_new(d, "checkpointId",
                        *s->checkpoint_id ? json_string(s->checkpoint_id) : json_null());
    json_object_set_new(d, "startTime", time_or_null(s->start_ms));
    json_object_set_new(d, "completionTime", time_or_null(s->completion_ms));
    if (*s->checkpoint_id) {
        json_object_set_new(d, "replayAfterWalId", json_integer((json_int_t)s->replay_after_wal_id));
        json_object_set_new(d, "nextWalSstId", json_integer((json_int_t)s->next_wal_sst_id));
    }
    if (s->verify_mode != SPLIT_VERIFY_DEFAULT)
        json_object_set_new(d, "verifyMode", json_string(split_verify_name(s->verify_mode)));
    json_t *steps = json_array();
    for (int i = 0; i < STEP_COUNT; i++) {
        const split_step_rec *r = &s->steps[i];
        json_array_append_new(steps, json_pack("{s:s, s:s, s:o, s:o, s:s, s:I, s:I, s:I}",
                                               "name", split_step_name((split_step)i),
                                               "state", step_state_name(r->state),
                                               "startTime", time_or_null(r->start_ms),
                                               "endTime", time_or_null(r->end_ms),
                                               "message", r->message ? r->message : "",
                                               "objectsCopied", (json_int_t)r->objects_copied,
                                               "bytesCopied", (json_int_t)r->bytes_copied,
                                               "retries", (json_int_t)r->attempts));
    }
    json_object_set_new(d, "steps", steps);
    json_t *kids = json_array(), *req = request_of(s);
    for (size_t i = 0; i < s->child_count; i++) {
        const split_child_rec *c = &s->children[i];
        json_t *k = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "name", c->name, "store",
                              c->store, "manifestId", (json_int_t)c->manifest_id, "keyCount",
                              (json_int_t)c->key_count, "sstsReferenced",
                              (json_int_t)c->ssts_referenced, "walSstsCopied",
                              (json_int_t)c->wal_ssts_copied);
        json_t *rg = req ? range_of(req, c->name) : NULL;
        if (k && rg)
            json_object_set_new(k, "range", rg);
        else
            json_decref(rg);
        json_array_append_new(kids, k);
    }
    json_object_set_new(d, "children", kids);
    /* Whether the agent chose the ranges (a request without them). */
    json_object_set_new(d, "rangesComputed",
                        json_boolean(req && json_is_true(json_object_get(req, "rangesComputed"))));
    json_t *by = json_object_get(req, "splitBy");
    if (json_is_string(by))
        json_object_set_new(d, "splitBy", json_incref(by));
    json_decref(req);
    json_object_set_new(d, "childCount", json_integer((json_int_t)s->child_count));
    json_object_set_new(d, "journalVersion", json_integer((json_int_t)s->journal_version));
    if (s->plan)
        json_object_set_new(d, "plan", plan_json(s->plan));
    if (s->stalled.on)
        json_object_set_new(d, "stalled",
                            json_pack("{s:s, s:s, s:I, s:o}", "step",
                                      split_step_name(s->stalled.step), "error",
                                      s->stalled.error ? s->stalled.error : "", "retries",
                                      (json_int_t)s->stalled.retries, "nextRetryTime",
                                      time_or_null(s->stalled.next_retry_ms)));
    if (!s->dry_run) {
        char key[SHALE_KEY_MAX] = "";
        if (s->lease.seq)
            shale_lease_key(s->lease.seq, key, sizeof key);
        json_object_set_new(d, "lease", json_pack("{s:s, s:s, s:I}", "state",
                                                  lease_state_name(s->lease.state), "record",
                                                  key, "seq", (json_int_t)s->lease.seq));
    }
    return d;
}

char *split_status_text(const split_state *s)
{
    json_t *d = split_status_json(s);
    char *t = d ? json_dumps(d, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    return t;
}
