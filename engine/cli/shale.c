/*
 * shale.c -- the `shale` command: inspect and operate a database by URI.
 *
 *   shale [--wal-store URI] [--unsafe-store] [--no-await-durable] [--ca-file PEM]
 *         [--s3-timeout SECONDS] COMMAND ...
 *
 * Keys and values on the command line accept %XX escapes; output escapes
 * bytes outside printable ASCII (and '%') the same way, so any key can be
 * copied back in.  Exit codes: 0 ok, 1 the operation failed (or get found
 * nothing), 2 usage error.  Errors: "shale: <command>: <status>: <detail>".
 */
#include "shale.h"
#include "shale_admin.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: shale [--wal-store URI] [--unsafe-store] [--no-await-durable] [--ca-file PEM]\n"
    "             [--s3-timeout SECONDS] COMMAND ...\n"
    "  --s3-timeout: an S3 call that gets no answer fails within about this long\n"
    "                (no retry starts later; default 60)\n"
    "\n"
    "commands:\n"
    "  put URI KEY VALUE              write one key\n"
    "  get URI KEY                    print the value (exit 1 if absent)\n"
    "  delete URI KEY                 delete one key\n"
    "  scan URI [--start K] [--end K] [--limit N] [--count]\n"
    "                                 print key<TAB>value lines in [start, end)\n"
    "  load URI --count N [--value-size B] [--prefix P]\n"
    "                                 write N generated keys P%010u (for demos, benchmarks)\n"
    "  flush URI                      flush the WAL and memtables to L0\n"
    "  compact URI                    merge everything into one sorted run\n"
    "  manifest show URI [--id N]     the manifest as JSON\n"
    "  checkpoint create URI [--scope all|durable] [--lifetime SECONDS] [--name N]\n"
    "  checkpoint list URI\n"
    "  checkpoint delete URI ID\n"
    "  clone PARENT CHILD [--range START:END] [--checkpoint ID] [--parent-wal URI]\n"
    "                     [--child-wal URI]\n"
    "  gc URI [--dry-run] [--min-age SECONDS]\n"
    "  verify URI                     check every SST's checksums and every reference\n"
    "  info URI                       shard facts: bytes, keys, SSTs, WAL position, range\n"
    "  split-points URI --ways N [--by bytes|keys]\n"
    "                                 N-1 balanced boundaries from the SST indexes\n"
    "  store show URI                 the store's canonical URI and identity object\n"
    "  version | help\n"
    "\n"
    "URIs: file:///abs/dir, s3://bucket/prefix (AWS_* environment), mem://name.\n"
    "--ca-file: CA bundle for an https S3 endpoint with a private CA (or AWS_CA_BUNDLE).\n"
    "Keys and values accept %XX escapes.\n";

static shale_options g_opts;

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

static int fail(const char *cmd, shale_status rc)
{
    fprintf(stderr, "shale: %s: %s: %s\n", cmd, shale_strerror(rc), shale_errmsg());
    return 1;
}

static uint8_t *arg_bytes(const char *s, size_t *len)
{
    uint8_t *b = shale_key_unescape(s, len);
    if (!b) {
        fprintf(stderr, "shale: bad %%XX escape in '%s'\n", s);
        exit(2);
    }
    return b;
}

static void print_escaped(const void *p, size_t n)
{
    char *e = shale_key_escape(p, n);
    if (e)
        fputs(e, stdout);
    free(e);
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    unsigned long long x = strtoull(s, &end, 10);
    *v = x;
    return !*end;
}

/* Subcommand options, parsed with getopt_long (GNU order: options may come
 * before or after the positional arguments; "--" ends options).  Unknown
 * options and missing values are usage errors.  The .val of each option
 * says which field it fills. */
typedef struct sub_args {
    const char *start, *end, *limit, *count, *value_size, *prefix, *id;
    const char *scope, *lifetime, *name;
    const char *range, *checkpoint, *parent_wal, *child_wal, *min_age;
    const char *ways, *by;
    bool count_flag, dry_run;
    int npos;      /* positional arguments */
    char **pos;
} sub_args;

enum { O_START = 256, O_END, O_LIMIT, O_COUNT_FLAG, O_COUNT, O_VALUE_SIZE, O_PREFIX, O_ID,
       O_SCOPE, O_LIFETIME, O_NAME, O_RANGE, O_CHECKPOINT, O_PARENT_WAL, O_CHILD_WAL,
       O_MIN_AGE, O_DRY_RUN, O_WAYS, O_BY };

/* argv[0] is the command's name (getopt's messages start with it). */
static bool sub_parse(int argc, char **argv, const struct option *lo, sub_args *a)
{
    memset(a, 0, sizeof *a);
    optind = 0;  /* glibc: full re-initialisation for a new argv */
    int c;
    while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
        switch (c) {
        case O_START: a->start = optarg; break;
        case O_END: a->end = optarg; break;
        case O_LIMIT: a->limit = optarg; break;
        case O_COUNT_FLAG: a->count_flag = true; break;
        case O_COUNT: a->count = optarg; break;
        case O_VALUE_SIZE: a->value_size = optarg; break;
        case O_PREFIX: a->prefix = optarg; break;
        case O_ID: a->id = optarg; break;
        case O_SCOPE: a->scope = optarg; break;
        case O_LIFETIME: a->lifetime = optarg; break;
        case O_NAME: a->name = optarg; break;
        case O_RANGE: a->range = optarg; break;
        case O_CHECKPOINT: a->checkpoint = optarg; break;
        case O_PARENT_WAL: a->parent_wal = optarg; break;
        case O_CHILD_WAL: a->child_wal = optarg; break;
        case O_MIN_AGE: a->min_age = optarg; break;
        case O_DRY_RUN: a->dry_run = true; break;
        case O_WAYS: a->ways = optarg; break;
        case O_BY: a->by = optarg; break;
        case ':':
            fprintf(stderr, "shale: %s: option '%s' needs a value\n", argv[0], argv[optind - 1]);
            return false;
        default:
            fprintf(stderr, "shale: %s: unknown option '%s'\n", argv[0], argv[optind - 1]);
            return false;
        }
    }
    a->pos = argv + optind;
    a->npos = argc - optind;
    return true;
}

static const struct option no_opts[] = {{0, 0, 0, 0}};

static int cmd_put_del(const char *cmd, int argc, char **argv, bool del)
{
    sub_args sa;
    if (!sub_parse(argc, argv, no_opts, &sa) || sa.npos != (del ? 2 : 3))
        return usage();
    argv = sa.pos;
    size_t kl, vl = 0;
    uint8_t *k = arg_bytes(argv[1], &kl), *v = del ? NULL : arg_bytes(argv[2], &vl);
    shale_db *db = NULL;
    shale_status rc = shale_open(argv[0], &g_opts, &db);
    if (!rc)
        rc = del ? shale_delete(db, k, kl) : shale_put(db, k, kl, v, vl);
    shale_status crc = shale_close(db);
    free(k);
    free(v);
    if (!rc)
        rc = crc;
    return rc ? fail(cmd, rc) : 0;
}

static int cmd_get(int argc, char **argv)
{
    sub_args sa;
    if (!sub_parse(argc, argv, no_opts, &sa) || sa.npos != 2)
        return usage();
    argv = sa.pos;
    size_t kl, vl;
    uint8_t *k = arg_bytes(argv[1], &kl);
    shale_reader *r = NULL;
    void *v = NULL;
    shale_status rc = shale_reader_open(argv[0], &g_opts, NULL, &r);
    if (!rc)
        rc = shale_reader_get(r, k, kl, &v, &vl);
    shale_reader_close(r);
    free(k);
    if (rc == SHALE_NOT_FOUND) {
        fprintf(stderr, "shale: get: not found\n");
        return 1;
    }
    if (rc)
        return fail("get", rc);
    print_escaped(v, vl);
    putchar('\n');
    shale_free(v);
    return 0;
}

static int cmd_scan(int argc, char **argv)
{
    static const struct option lo[] = {{"start", required_argument, 0, O_START},
                                       {"end", required_argument, 0, O_END},
                                       {"limit", required_argument, 0, O_LIMIT},
                                       {"count", no_argument, 0, O_COUNT_FLAG},
                                       {0, 0, 0, 0}};
    sub_args sa;
    if (!sub_parse(argc, argv, lo, &sa) || sa.npos != 1)
        return usage();
    argv = sa.pos;
    const char *s = sa.start, *e = sa.end, *lim = sa.limit;
    bool count_only = sa.count_flag;
    uint64_t limit = UINT64_MAX;
    if (lim && !parse_u64(lim, &limit))
        return usage();
    size_t sl = 0, el = 0;
    uint8_t *sb = s ? arg_bytes(s, &sl) : NULL, *eb = e ? arg_bytes(e, &el) : NULL;
    shale_reader *r = NULL;
    shale_iter *it = NULL;
    uint64_t n = 0;
    shale_status rc = shale_reader_open(argv[0], &g_opts, NULL, &r);
    if (!rc)
        rc = shale_reader_scan(r, sb, sl, eb, el, &it);
    for (; !rc && shale_iter_valid(it) && n < limit; shale_iter_next(it), n++) {
        if (count_only)
            continue;
        size_t kl, vl;
        const void *k = shale_iter_key(it, &kl), *v = shale_iter_value(it, &vl);
        print_escaped(k, kl);
        putchar('\t');
        print_escaped(v, vl);
        putchar('\n');
    }
    if (!rc)
        rc = shale_iter_status(it);
    shale_iter_free(it);
    shale_reader_close(r);
    free(sb);
    free(eb);
    if (rc)
        return fail("scan", rc);
    if (count_only)
        printf("%llu\n", (unsigned long long)n);
    return 0;
}

static int cmd_load(int argc, char **argv)
{
    static const struct option lo[] = {{"count", required_argument, 0, O_COUNT},
                                       {"value-size", required_argument, 0, O_VALUE_SIZE},
                                       {"prefix", required_argument, 0, O_PREFIX},
                                       {0, 0, 0, 0}};
    sub_args sa;
    if (!sub_parse(argc, argv, lo, &sa))
        return usage();
    argv = sa.pos;
    uint64_t count = 0, vsize = 100;
    const char *c = sa.count, *vs = sa.value_size, *prefix = sa.prefix;
    if (sa.npos != 1 || !c || !parse_u64(c, &count) || (vs && !parse_u64(vs, &vsize)) ||
        vsize > (1u << 20))
        return usage();
    if (!prefix)
        prefix = "key";
    shale_options o = g_opts;
    o.await_durable = false;  /* one durable flush at the end */
    shale_db *db = NULL;
    shale_status rc = shale_open(argv[0], &o, &db);
    char *val = malloc(vsize + 1);
    shale_batch *b = shale_batch_new();
    if (!val || !b)
        rc = SHALE_NO_MEMORY;
    for (uint64_t i = 0; !rc && i < count; i++) {
        char key[256];
        int kl = snprintf(key, sizeof key, "%s%010llu", prefix, (unsigned long long)i);
        for (uint64_t j = 0; j < vsize; j++)
            val[j] = (char)('a' + (i * 7 + j) % 26);
        rc = shale_batch_put(b, key, (size_t)kl, val, vsize);
        if (!rc && (shale_batch_count(b) == 1000 || i + 1 == count)) {
            rc = shale_write(db, b);
            shale_batch_clear(b);
        }
    }
    if (!rc)
        rc = shale_flush_wal(db);
    shale_status crc = shale_close(db);
    shale_batch_free(b);
    free(val);
    if (!rc)
        rc = crc;
    if (rc)
        return fail("load", rc);
    printf("loaded %llu keys\n", (unsigned long long)count);
    return 0;
}

static int cmd_writer_op(const char *cmd, int argc, char **argv)
{
    sub_args sa;
    if (!sub_parse(argc, argv, no_opts, &sa) || sa.npos != 1)
        return usage();
    argv = sa.pos;
    shale_db *db = NULL;
    shale_status rc = shale_open(argv[0], &g_opts, &db);
    if (!rc)
        rc = !strcmp(cmd, "flush") ? shale_flush_memtable(db) : shale_compact(db, true);
    shale_status crc = shale_close(db);
    if (!rc)
        rc = crc;
    return rc ? fail(cmd, rc) : 0;
}

static int cmd_manifest(int argc, char **argv)
{
    static const struct option lo[] = {{"id", required_argument, 0, O_ID}, {0, 0, 0, 0}};
    sub_args sa;
    if (argc < 2 || strcmp(argv[1], "show") || !sub_parse(argc - 1, argv + 1, lo, &sa) ||
        sa.npos != 1)
        return usage();
    uint64_t id = 0;
    const char *ids = sa.id;
    if (ids && !parse_u64(ids, &id))
        return usage();
    char *json = NULL;
    shale_status rc = shale_manifest_show(sa.pos[0], &g_opts, id, &json);
    if (rc)
        return fail("manifest show", rc);
    puts(json);
    shale_free(json);
    return 0;
}

static void print_key_line(const char *label, const shale_key *k)
{
    printf("%-20s", label);
    if (k->len)
        print_escaped(k->data, k->len);
    else
        fputs("(unbounded)", stdout);
    putchar('\n');
}

static int cmd_info(int argc, char **argv)
{
    sub_args sa;
    if (!sub_parse(argc, argv, no_opts, &sa) || sa.npos != 1)
        return usage();
    shale_shard_info in;
    shale_status rc = shale_shard_info_get(sa.pos[0], &g_opts, &in);
    if (rc)
        return fail("info", rc);
    printf("%-20s%llu\n", "manifest_id", (unsigned long long)in.manifest_id);
    printf("%-20s%llu\n", "bytes", (unsigned long long)in.bytes);
    printf("%-20s%llu\n", "kv_bytes", (unsigned long long)in.kv_bytes);
    printf("%-20s%llu\n", "approx_keys", (unsigned long long)in.approx_keys);
    printf("%-20s%llu\n", "ssts", (unsigned long long)in.sst_count);
    printf("%-20s%u\n", "l0", in.l0_count);
    printf("%-20s%u\n", "sorted_runs", in.sorted_run_count);
    printf("%-20s%llu\n", "data_blocks", (unsigned long long)in.data_blocks);
    printf("%-20s%llu\n", "replay_after_wal_id", (unsigned long long)in.replay_after_wal_id);
    printf("%-20s%llu\n", "next_wal_sst_id", (unsigned long long)in.next_wal_sst_id);
    print_key_line("range_start", &in.range_start);
    print_key_line("range_end", &in.range_end);
    shale_shard_info_clear(&in);
    return 0;
}

static int cmd_split_points(int argc, char **argv)
{
    static const struct option lo[] = {{"ways", required_argument, 0, O_WAYS},
                                       {"by", required_argument, 0, O_BY},
                                       {0, 0, 0, 0}};
    sub_args sa;
    uint64_t ways = 0;
    if (!sub_parse(argc, argv, lo, &sa) || sa.npos != 1 || !parse_u64(sa.ways, &ways) ||
        ways < 2 || ways > 1024)
        return usage();
    shale_split_by by = SHALE_SPLIT_BY_BYTES;
    if (sa.by && !strcmp(sa.by, "keys"))
        by = SHALE_SPLIT_BY_KEYS;
    else if (sa.by && strcmp(sa.by, "bytes")) {
        fprintf(stderr, "shale: split-points: --by is 'bytes' or 'keys', not '%s'\n", sa.by);
        return 2;
    }
    shale_split_points sp;
    shale_status rc = shale_split_points_get(sa.pos[0], &g_opts, (uint32_t)ways, by, &sp);
    if (rc)
        return fail("split-points", rc);
    for (uint32_t i = 0; i + 1 < sp.ways; i++) {
        print_escaped(sp.boundaries[i].data, sp.boundaries[i].len);
        putchar('\n');
    }
    shale_split_points_clear(&sp);
    return 0;
}

static void print_checkpoint(const shale_checkpoint *c)
{
    printf("%s\tmanifest=%llu\tcreated=%lld\texpires=%lld\treplay_after_wal_id=%llu\t"
           "next_wal_sst_id=%llu\tname=%s\n",
           c->id, (unsigned long long)c->manifest_id, (long long)c->create_time_ms,
           (long long)c->expire_time_ms, (unsigned long long)c->replay_after_wal_id,
           (unsigned long long)c->next_wal_sst_id, c->name);
}

static int cmd_checkpoint(int argc, char **argv)
{
    static const struct option lo_create[] = {{"scope", required_argument, 0, O_SCOPE},
                                              {"lifetime", required_argument, 0, O_LIFETIME},
                                              {"name", required_argument, 0, O_NAME},
                                              {0, 0, 0, 0}};
    if (argc < 2)
        return usage();
    const char *sub = argv[1];
    sub_args sa;
    if (!sub_parse(argc - 1, argv + 1, !strcmp(sub, "create") ? lo_create : no_opts, &sa) ||
        sa.npos < 1)
        return usage();
    const char *uri = sa.pos[0];
    shale_status rc;
    if (!strcmp(sub, "create") && sa.npos == 1) {
        const char *scope = sa.scope, *name = sa.name, *life = sa.lifetime;
        uint64_t secs = 0;
        if ((life && !parse_u64(life, &secs)) ||
            (scope && strcmp(scope, "all") && strcmp(scope, "durable")))
            return usage();
        shale_checkpoint cp;
        if (scope && !strcmp(scope, "all")) {
            shale_db *db = NULL;
            rc = shale_open(uri, &g_opts, &db);
            if (!rc)
                rc = shale_checkpoint_create(db, SHALE_CHECKPOINT_ALL, secs * 1000, name, &cp);
            shale_status crc = shale_close(db);
            if (!rc)
                rc = crc;
        } else {
            rc = shale_admin_checkpoint_create(uri, &g_opts, secs * 1000, name, &cp);
        }
        if (rc)
            return fail("checkpoint create", rc);
        print_checkpoint(&cp);
        return 0;
    }
    if (!strcmp(sub, "list") && sa.npos == 1) {
        shale_checkpoint *list = NULL;
        size_t n = 0;
        if ((rc = shale_checkpoint_list(uri, &g_opts, &list, &n)))
            return fail("checkpoint list", rc);
        for (size_t i = 0; i < n; i++)
            print_checkpoint(&list[i]);
        shale_free(list);
        return 0;
    }
    if (!strcmp(sub, "delete") && sa.npos == 2) {
        if ((rc = shale_checkpoint_delete(uri, &g_opts, sa.pos[1])))
            return fail("checkpoint delete", rc);
        return 0;
    }
    return usage();
}

static int cmd_clone(int argc, char **argv)
{
    static const struct option lo[] = {{"range", required_argument, 0, O_RANGE},
                                       {"checkpoint", required_argument, 0, O_CHECKPOINT},
                                       {"parent-wal", required_argument, 0, O_PARENT_WAL},
                                       {"child-wal", required_argument, 0, O_CHILD_WAL},
                                       {0, 0, 0, 0}};
    sub_args sa;
    if (!sub_parse(argc, argv, lo, &sa) || sa.npos != 2)
        return usage();
    shale_clone_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.parent_uri = sa.pos[0];
    sp.child_uri = sa.pos[1];
    sp.parent_checkpoint_id = sa.checkpoint;
    sp.parent_wal_uri = sa.parent_wal;
    sp.child_wal_uri = sa.child_wal;
    const char *range = sa.range;
    uint8_t *s = NULL, *e = NULL;
    if (range) {
        const char *colon = strchr(range, ':');
        if (!colon)
            return usage();
        char *start = strndup(range, (size_t)(colon - range));
        if (*start)
            s = arg_bytes(start, &sp.range_start_len);
        if (colon[1])
            e = arg_bytes(colon + 1, &sp.range_end_len);
        free(start);
        sp.range_start = s;
        sp.range_end = e;
    }
    shale_clone_result res;
    shale_status rc = shale_clone(&sp, &g_opts, &res);
    free(s);
    free(e);
    if (rc)
        return fail("clone", rc);
    printf("clone %s: manifest %llu, %llu SSTs referenced, %llu WAL SSTs copied (%llu bytes), "
           "checkpoint %s%s\n", sp.child_uri, (unsigned long long)res.manifest_id,
           (unsigned long long)res.ssts_referenced, (unsigned long long)res.wal_ssts_copied,
           (unsigned long long)res.bytes_copied, res.checkpoint_id,
           res.already_done ? " (already done)" : "");
    return 0;
}

static void gc_print(void *ctx, const char *store, const char *key, const char *reason)
{
    printf("%s %s/%s (%s)\n", *(bool *)ctx ? "would delete" : "deleted", store, key, reason);
}

static int cmd_gc(int argc, char **argv)
{
    static const struct option lo[] = {{"dry-run", no_argument, 0, O_DRY_RUN},
                                       {"min-age", required_argument, 0, O_MIN_AGE},
                                       {0, 0, 0, 0}};
    sub_args sa;
    if (!sub_parse(argc, argv, lo, &sa) || sa.npos != 1)
        return usage();
    argv = sa.pos;
    shale_gc_options g;
    shale_gc_options_init(&g);
    g.dry_run = sa.dry_run;
    const char *age = sa.min_age;
    uint64_t secs;
    if (age) {
        if (!parse_u64(age, &secs))
            return usage();
        g.min_age_ms = secs * 1000;
    }
    g.on_object = gc_print;
    g.ctx = &g.dry_run;
    shale_gc_result res;
    shale_status rc = shale_gc(argv[0], &g_opts, &g, &res);
    if (rc)
        return fail("gc", rc);
    printf("gc%s: %llu checkpoints, %llu WAL SSTs, %llu SSTs, %llu manifests, %llu bytes\n",
           g.dry_run ? " (dry run)" : "", (unsigned long long)res.checkpoints_removed,
           (unsigned long long)res.wal_deleted, (unsigned long long)res.ssts_deleted,
           (unsigned long long)res.manifests_deleted, (unsigned long long)res.bytes_deleted);
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    sub_args sa;
    if (!sub_parse(argc, argv, no_opts, &sa) || sa.npos != 1)
        return usage();
    argv = sa.pos;
    shale_verify_result res;
    shale_status rc = shale_verify(argv[0], &g_opts, &res);
    if (rc)
        return fail("verify", rc);
    printf("ok: %llu SSTs (%llu blocks), %llu WAL SSTs, %llu bytes checked\n",
           (unsigned long long)res.ssts_checked, (unsigned long long)res.blocks_checked,
           (unsigned long long)res.wal_ssts_checked, (unsigned long long)res.bytes_checked);
    return 0;
}

/* The store's canonical URI and identity (docs/format.md "Store identity"):
 * what an operator looks at before removing a split's stale claim. */
static int cmd_store(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "show"))
        return usage();
    char *canon = NULL;
    shale_status rc = shale_store_canonical_uri(argv[2], &g_opts, &canon);
    if (rc)
        return fail("store show", rc);
    printf("canonical: %s\n", canon);
    shale_free(canon);
    shale_store_identity id;
    rc = shale_store_identity_read(argv[2], &g_opts, &id);
    if (rc == SHALE_NOT_FOUND) {
        printf("identity: none\n");
        return 0;
    }
    if (rc)
        return fail("store show", rc);
    printf("identity: %s\nkind: %s\ncreated: %s\nuri at creation: %s\n", id.uuid,
           shale_store_kind_name(id.kind), id.created, id.uri ? id.uri : "");
    if (id.claim)
        printf("claim: %s\n", id.claim);
    shale_store_identity_clear(&id);
    return 0;
}

int main(int argc, char **argv)
{
    shale_options_init(&g_opts);
    static const struct option opts[] = {{"wal-store", required_argument, 0, 'w'},
                                         {"unsafe-store", no_argument, 0, 'u'},
                                         {"no-await-durable", no_argument, 0, 'n'},
                                         {"ca-file", required_argument, 0, 'C'},
                                         {"s3-timeout", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    uint64_t secs;
    while ((c = getopt_long(argc, argv, "+w:unhC:t:", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!parse_u64(optarg, &secs) || secs == 0 || secs > 86400) {
                fprintf(stderr, "shale: --s3-timeout '%s': want whole seconds, 1 to 86400\n",
                        optarg);
                return 2;
            }
            /* The deadline for retries; a stall alone may use it all. */
            g_opts.store.deadline_ms = (int)(secs * 1000);
            if (g_opts.store.timeout_ms > g_opts.store.deadline_ms)
                g_opts.store.timeout_ms = g_opts.store.deadline_ms;
            break;
        case 'w': g_opts.wal_store_uri = optarg; break;
        case 'u': g_opts.unsafe_allow_unconditional_store = true; break;
        case 'n': g_opts.await_durable = false; break;
        case 'C': g_opts.store.s3_ca_file = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return usage();
        }
    }
    if (optind >= argc)
        return usage();
    const char *cmd = argv[optind];
    int n = argc - optind;   /* the command's argv, its name first */
    char **a = argv + optind;
    if (!strcmp(cmd, "put")) return cmd_put_del(cmd, n, a, false);
    if (!strcmp(cmd, "delete")) return cmd_put_del(cmd, n, a, true);
    if (!strcmp(cmd, "get")) return cmd_get(n, a);
    if (!strcmp(cmd, "scan")) return cmd_scan(n, a);
    if (!strcmp(cmd, "load")) return cmd_load(n, a);
    if (!strcmp(cmd, "flush") || !strcmp(cmd, "compact")) return cmd_writer_op(cmd, n, a);
    if (!strcmp(cmd, "manifest")) return cmd_manifest(n, a);
    if (!strcmp(cmd, "checkpoint")) return cmd_checkpoint(n, a);
    if (!strcmp(cmd, "clone")) return cmd_clone(n, a);
    if (!strcmp(cmd, "gc")) return cmd_gc(n, a);
    if (!strcmp(cmd, "verify")) return cmd_verify(n, a);
    if (!strcmp(cmd, "info")) return cmd_info(n, a);
    if (!strcmp(cmd, "split-points")) return cmd_split_points(n, a);
    if (!strcmp(cmd, "store")) return cmd_store(n, a);
    if (!strcmp(cmd, "version")) {
        printf("shale %s\n", SHALE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    fprintf(stderr, "shale: unknown command '%s'\n", cmd);
    return usage();
}
