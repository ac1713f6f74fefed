/* lease.c -- see lease.h. */
#include "lease.h"
#include "shale_admin.h"
#include "failpoint.h"
#include "journal.h"
#include "agent_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE_FORMAT 1
/* A take that keeps losing races to other takes gives up after this many
 * rounds (each lost round means someone else's record landed). */
#define LEASE_ROUNDS 64

void lease_view_free(lease_view *v)
{
    if (v) {
        free(v->request_json);
        v->request_json = NULL;
    }
}

void lease_self(char *buf, size_t n)
{
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(buf, n, "%s:%ld", host, (long)getpid());
}

/* The seq of "splits/_lease/<20 digits>.json", or 0. */
static uint64_t parse_seq(const char *key)
{
    uint64_t x = 0;
    return shale_lease_key_parse(key, &x) ? x : 0;
}

shale_status lease_read(shale_objstore *st, lease_view *out)
{
    memset(out, 0, sizeof *out);
    shale_objlist l;
    shale_status rc = shale_objstore_list_all(st, LEASE_PREFIX, &l);
    if (rc)
        return shale_error_prefix(rc, "listing the split lease in %s", shale_objstore_uri(st));
    uint64_t top = 0;
    for (size_t i = 0; i < l.count; i++) {
        uint64_t s = parse_seq(l.items[i].key);
        if (s > top)
            top = s;
    }
    shale_objlist_free(&l);
    out->top = top;
    if (!top)
        return SHALE_OK;
    char key[128];
    shale_lease_key(top, key, sizeof key);
    void *data = NULL;
    size_t len = 0;
    rc = shale_objstore_get(st, key, &data, &len);
    if (rc)   /* listed, so it exists: any failure is "cannot read now" */
        return shale_error_prefix(rc == SHALE_NOT_FOUND ? SHALE_IO : rc,
                                  "reading the split lease %s", key);
    json_error_t err;
    json_t *d = json_loadb(data, len, 0, &err);
    free(data);
    const char *op = json_string_value(json_object_get(d, "op"));
    const char *split = json_string_value(json_object_get(d, "split"));
    json_t *seq = json_object_get(d, "seq");
    if (!d || !op || !split || !json_is_integer(seq) ||
        (uint64_t)json_integer_value(seq) != top || (strcmp(op, "take") && strcmp(op, "release")) ||
        strlen(split) >= sizeof out->holder) {
        json_decref(d);
        return shale_error_set(SHALE_CORRUPT, "split lease record %s/%s is not a lease record "
                                              "(docs/agent.md \"The split lease\")",
                               shale_objstore_uri(st), key);
    }
    out->held = !strcmp(op, "take");
    snprintf(out->holder, sizeof out->holder, "%s", split);
    const char *owner = json_string_value(json_object_get(d, "owner"));
    snprintf(out->owner, sizeof out->owner, "%s", owner ? owner : "");
    json_t *rq = json_object_get(d, "request");
    if (out->held && json_is_object(rq))
        out->request_json = json_dumps(rq, JSON_SORT_KEYS);
    json_decref(d);
    return SHALE_OK;
}

static shale_status put_record(shale_objstore *st, uint64_t seq, const char *op,
                               const char *shard, const char *split, const char *request_json)
{
    char now[40], owner[200], key[128];
    journal_now(now, sizeof now);
    lease_self(owner, sizeof owner);
    json_error_t err;
    json_t *rq = request_json ? json_loads(request_json, 0, &err) : NULL;
    json_t *d = json_pack("{s:i, s:I, s:s, s:s, s:s, s:s, s:o}", "format", LEASE_FORMAT, "seq",
                          (json_int_t)seq, "op", op, "split", split, "time", now, "owner",
                          owner, "request", rq ? rq : json_null());
    if (d && shard)
        json_object_set_new(d, "shard", json_string(shard));
    char *text = d ? json_dumps(d, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    if (!text)
        return AGENT_OOM();
    shale_lease_key(seq, key, sizeof key);
    shale_status rc = shale_objstore_put_if_absent(st, key, text, strlen(text));
    free(text);
    if (rc && rc != SHALE_PRECONDITION_FAILED)
        shale_error_prefix(rc, "writing the split lease %s", key);
    return rc;
}

shale_status lease_take(shale_objstore *st, const char *shard, const char *split,
                        const char *request_json, uint64_t *seq, bool *fresh, char *holder,
                        size_t holder_len)
{
    return lease_take_seen(st, shard, split, request_json, NULL, seq, fresh, holder,
                           holder_len);
}

shale_status lease_take_seen(shale_objstore *st, const char *shard, const char *split,
                             const char *request_json, const lease_view *seen, uint64_t *seq,
                             bool *fresh, char *holder, size_t holder_len)
{
    *fresh = false;
    *seq = 0;
    if (holder_len)
        *holder = '\0';
    for (int round = 0; round < LEASE_ROUNDS; round++) {
        lease_view v;
        shale_status rc = SHALE_OK;
        if (round == 0 && seen && !seen->held) {
            memset(&v, 0, sizeof v);
            v.top = seen->top;
        } else if ((rc = lease_read(st, &v))) {
            return rc;
        }
        lease_view_free(&v);
        if (v.held) {
            snprintf(holder, holder_len, "%s", v.holder);
            if (!strcmp(v.holder, split)) {
                *seq = v.top;
                return SHALE_OK;
            }
            return shale_error_set(SHALE_CONFLICT,
                                   "shard %s is being split by %s (it holds the split "
                                   "lease, %s%020llu.json); one split at a time",
                                   shard ? shard : "?", v.holder, LEASE_PREFIX,
                                   (unsigned long long)v.top);
        }
        rc = put_record(st, v.top + 1, "take", shard, split, request_json);
        if (rc == SHALE_PRECONDITION_FAILED)
            continue;   /* another writer took seq top+1: look again */
        if (rc)
            return rc;
        *seq = v.top + 1;
        *fresh = true;
        snprintf(holder, holder_len, "%s", split);
        failpoint("Lease.taken");
        return SHALE_OK;
    }
    return shale_error_set(SHALE_RETRYABLE, "split lease: lost %d races in a row; try again",
                           LEASE_ROUNDS);
}

shale_status lease_release(shale_objstore *st, const char *split, uint64_t *release_seq)
{
    *release_seq = 0;
    for (int round = 0; round < LEASE_ROUNDS; round++) {
        lease_view v;
        shale_status rc = lease_read(st, &v);
        if (rc)
            return rc;
        lease_view_free(&v);
        if (!v.held || strcmp(v.holder, split))
            return SHALE_OK;   /* not ours (any more) */
        rc = put_record(st, v.top + 1, "release", NULL, split, NULL);
        if (rc == SHALE_PRECONDITION_FAILED)
            continue;
        if (rc)
            return rc;
        *release_seq = v.top + 1;
        failpoint("Lease.released");
        return SHALE_OK;
    }
    return shale_error_set(SHALE_RETRYABLE, "split lease: lost %d races in a row releasing it",
                           LEASE_ROUNDS);
}

shale_status lease_release_after(shale_objstore *st, const char *split, uint64_t taken_seq,
                                 uint64_t *release_seq)
{
    *release_seq = 0;
    if (!taken_seq)
        return lease_release(st, split, release_seq);
    shale_status rc = put_record(st, taken_seq + 1, "release", NULL, split, NULL);
    if (rc == SHALE_PRECONDITION_FAILED)
        return lease_release(st, split, release_seq);
    if (rc)
        return rc;
    *release_seq = taken_seq + 1;
    failpoint("Lease.released");
    return SHALE_OK;
}
