/* split_auto.c -- see split_auto.h. */
#include "split_auto.h"
#include "log.h"
#include "shale_admin.h"
#include "agent_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *dup_key(const shale_key *k, size_t *len)
{
    *len = 0;
    if (!k || !k->len)
        return NULL;   /* unbounded */
    uint8_t *d = malloc(k->len);
    if (d) {
        memcpy(d, k->data, k->len);
        *len = k->len;
    }
    return d;
}

shale_status split_auto_fill(split_request *r, const char *uri, const shale_options *opts,
                             const char *agent_shard, const char *agent_store,
                             const char *agent_wal_store)
{
    if (!r->ranges_auto || r->ranges_computed)
        return SHALE_OK;
    size_t n = r->child_count;
    shale_shard_info info;
    shale_split_points pts;
    memset(&info, 0, sizeof info);
    memset(&pts, 0, sizeof pts);
    /* The visible range first (the manifest; no SST is read for it beyond
     * what the figures need), then the points inside it. */
    shale_status rc = shale_shard_info_get(uri, opts, &info);
    if (rc)
        return shale_error_prefix(rc, "split request: computing the children's ranges");
    rc = shale_split_points_get(uri, opts, (uint32_t)n, r->split_by, &pts);
    if (rc == SHALE_INVALID_ARGUMENT) {
        rc = shale_error_set(SHALE_INVALID_ARGUMENT,
                             "split request: field 'children': the shard is too small to split %zu "
                             "ways by %s (%llu %s in %llu data blocks of its SSTs; unflushed writes "
                             "are not counted): %s; give the ranges, or fewer children",
                             n, split_by_name(r->split_by),
                             (unsigned long long)(r->split_by == SHALE_SPLIT_BY_KEYS
                                                ? info.approx_keys : info.kv_bytes),
                             r->split_by == SHALE_SPLIT_BY_KEYS ? "keys" : "bytes",
                             (unsigned long long)info.data_blocks, shale_errmsg());
        shale_shard_info_clear(&info);
        return rc;
    }
    if (rc) {
        shale_shard_info_clear(&info);
        return shale_error_prefix(rc, "split request: computing the children's ranges");
    }
    /* Fill a copy, so a failure leaves r as it was. */
    split_child *kids = calloc(n, sizeof *kids);
    bool oom = !kids;
    for (size_t i = 0; !oom && i < n; i++) {
        const shale_key *lo = i ? &pts.boundaries[i - 1] : &info.range_start;
        const shale_key *hi = i + 1 < n ? &pts.boundaries[i] : &info.range_end;
        kids[i].start = dup_key(lo, &kids[i].start_len);
        kids[i].end = dup_key(hi, &kids[i].end_len);
        oom = (lo->len && !kids[i].start) || (hi->len && !kids[i].end);
    }
    if (oom) {
        for (size_t i = 0; kids && i < n; i++) {
            free(kids[i].start);
            free(kids[i].end);
        }
        free(kids);
        shale_shard_info_clear(&info);
        shale_split_points_clear(&pts);
        return AGENT_OOM();
    }
    for (size_t i = 0; i < n; i++) {
        split_child *c = &r->children[i];
        c->start = kids[i].start;
        c->start_len = kids[i].start_len;
        c->end = kids[i].end;
        c->end_len = kids[i].end_len;
    }
    free(kids);
    r->ranges_computed = true;
    rc = split_request_validate(r, agent_shard, agent_store, agent_wal_store,
                                info.range_start.data, info.range_start.len,
                                info.range_end.data, info.range_end.len);
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            split_child *c = &r->children[i];
            free(c->start);
            free(c->end);
            c->start = c->end = NULL;
            c->start_len = c->end_len = 0;
        }
        r->ranges_computed = false;
    } else {
        char bounds[700] = "";
        size_t off = 0;
        for (uint32_t i = 0; i + 1 < pts.ways && off + 4 < sizeof bounds; i++) {
            char *e = shale_key_escape(pts.boundaries[i].data, pts.boundaries[i].len);
            int w = snprintf(bounds + off, sizeof bounds - off, "%s\"%s\"", i ? ", " : "",
                             e ? e : "?");
            shale_free(e);
            off += w > 0 ? (size_t)w : 0;
        }
        if (off >= sizeof bounds)
            off = sizeof bounds - 1;
        log_fields(LOG_INFO, r->name, "Accept", -1,
                   (log_field[]){LOG_S("splitBy", split_by_name(r->split_by)),
                                 LOG_N("ways", pts.ways), LOG_N("total", pts.total),
                                 LOG_N("manifestId", info.manifest_id),
                                 LOG_S("boundaries", bounds)},
                   5, "computed the children's ranges from the parent's SST indexes");
    }
    shale_shard_info_clear(&info);
    shale_split_points_clear(&pts);
    return rc;
}
