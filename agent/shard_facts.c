/* shard_facts.c -- see shard_facts.h. */
#include "shard_facts.h"
#include "lease.h"
#include "request.h"
#include "splitter_int.h"
#include "agent_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shale_status shard_facts_read(splitter *sp, shard_facts *out)
{
    memset(out, 0, sizeof *out);
    shale_status rc = shale_shard_info_get(sp->store_uri, &sp->o.db, &out->info);
    if (rc)
        return shale_error_prefix(rc, "shard %s: reading its SST indexes", sp->shard);
    lease_view v;
    rc = lease_read(sp->store, &v);
    if (rc) {
        shale_shard_info_clear(&out->info);
        memset(out, 0, sizeof *out);
        return shale_error_prefix(rc, "shard %s: reading its split lease", sp->shard);
    }
    out->split_held = v.held;
    if (v.held)
        snprintf(out->holder, sizeof out->holder, "%s", v.holder);
    lease_view_free(&v);
    return SHALE_OK;
}

void shard_facts_clear(shard_facts *f)
{
    if (f)
        shale_shard_info_clear(&f->info);
}

static json_t *key_json(const shale_key *k)
{
    char *e = shale_key_escape(k->data, k->len);
    json_t *j = e ? json_string(e) : NULL;
    shale_free(e);
    return j;
}

char *shard_facts_json(splitter *sp, const shard_facts *f)
{
    const shale_shard_info *i = &f->info;
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:{s:I, s:I}, s:{s:o, s:o}, "
        "s:{s:b, s:o}, s:s}",
        "shard", sp->shard, "store", sp->store_uri, "initialized", i->initialized,
        "manifestId", (json_int_t)i->manifest_id, "bytes", (json_int_t)i->bytes, "kvBytes",
        (json_int_t)i->kv_bytes, "approxKeys", (json_int_t)i->approx_keys, "ssts",
        (json_int_t)i->sst_count, "dataBlocks", (json_int_t)i->data_blocks, "l0",
        (int)i->l0_count, "sortedRuns", (int)i->sorted_run_count, "wal", "replayAfterWalId",
        (json_int_t)i->replay_after_wal_id, "nextWalSstId", (json_int_t)i->next_wal_sst_id,
        "range", "start", key_json(&i->range_start), "end", key_json(&i->range_end), "split",
        "inProgress", f->split_held, "holder",
        f->split_held ? json_string(f->holder) : json_null(), "counted",
        "flushed SSTs only: writes still in the memtable or the WAL are not counted");
    char *t = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return t;
}

shale_status shard_split_points_json(splitter *sp, uint32_t ways, shale_split_by by,
                                     char **out)
{
    *out = NULL;
    shale_split_points p;
    shale_status rc = shale_split_points_get(sp->store_uri, &sp->o.db, ways, by, &p);
    if (rc)
        return rc == SHALE_INVALID_ARGUMENT
                   ? shale_error_set(SHALE_INVALID_ARGUMENT, "shard %s cannot be split %u ways by "
                                                             "%s: %s", sp->shard, ways,
                                     split_by_name(by), shale_errmsg())
                   : rc;
    json_t *b = json_array(), *w = json_array();
    for (uint32_t i = 0; i + 1 < p.ways; i++)
        json_array_append_new(b, key_json(&p.boundaries[i]));
    for (uint32_t i = 0; i < p.ways; i++)
        json_array_append_new(w, json_integer((json_int_t)p.weights[i]));
    json_t *o = json_pack("{s:i, s:s, s:o, s:o, s:I}", "ways", (int)p.ways, "by",
                          split_by_name(p.by), "boundaries", b, "weights", w, "total",
                          (json_int_t)p.total);
    shale_split_points_clear(&p);
    *out = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return *out ? SHALE_OK : AGENT_OOM();
}
