/*
 * bench.c -- `make bench`: Shale against RocksDB and LevelDB (their C APIs)
 * with the same keys on the same disk, one engine after the other, each in
 * a child process of its own (so peak RSS and bytes written are each
 * engine's alone); then the durable puts, the engines interleaved in
 * rounds (bench_durable.c); then the cost of a split against copying the
 * data (bench_split.c).
 *
 *   bench [--keys N] [--value-size B] [--split-mb M,M,...] [--s3-mb M]
 *         [--json FILE] [--dir D] [--shale-only] [--durable-only] [--no-durable]
 *         [--durable-rounds N]
 *
 * Durability is matched and stated in the output: (a) no sync per write
 * for every workload but one, (b) durable acknowledgement with 1, 4 and 32
 * writer threads, the engines interleaved in N rounds (bench_durable.c).  Figures are ops/s (higher is better) with the ratio Shale/peer.
 */
#include "bench.h"
#include "shale.h"

#include <fcntl.h>
#include <ftw.h>
#include <leveldb/c.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

size_t vsize = 100;
size_t shale_memtable_mb = 64;
size_t shale_unflushed_mb = 0;   /* 0: Shale's default */
const char *dir = "/tmp/shale-bench";
static uint64_t nkeys = 200000;

/* ---- shared helpers (bench.h) ------------------------------------------------ */

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void die(const char *what, const char *err)
{
    fprintf(stderr, "bench: %s: %s\n", what, err ? err : "failed");
    exit(1);
}

void rm_rf(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd))
        die("rm -rf", path);
}

void key_of(uint64_t i, char k[17])
{
    /* 16 decimal digits, written by hand (no truncation warnings). */
    for (int d = 15; d >= 0; d--, i /= 10)
        k[d] = (char)('0' + i % 10);
    k[16] = '\0';
}

#define VALBUF (1u << 20)
static char *valbuf;

void values_init(void)
{
    valbuf = malloc(VALBUF + vsize);
    if (!valbuf)
        die("malloc", "value buffer");
    uint64_t s = 0x9e3779b97f4a7c15ull;
    /* Like db_bench's RandomGenerator: in each 100-byte piece the first
     * half is random letters and the second repeats it. */
    for (size_t at = 0; at < VALBUF + vsize; at += 100)
        for (size_t j = 0; j < 100 && at + j < VALBUF + vsize; j++) {
            if (j < 50) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                valbuf[at + j] = (char)(' ' + s % 95);
            } else {
                valbuf[at + j] = valbuf[at + j - 50];
            }
        }
}

const char *value_of(uint64_t i)
{
    return valbuf + (i * 7919u) % VALBUF;
}

void bench_load_parent(void *handle, uint64_t keys, size_t vsize, const char *what)
{
    shale_db *db = handle;
    char k[17];
    shale_batch *bt = shale_batch_new();
    if (!bt)
        die("shale_batch_new", NULL);
    for (uint64_t i = 0; i < keys; i++) {
        key_of(i, k);
        if (shale_batch_put(bt, k, 16, value_of(i), vsize))
            die(what, shale_errmsg());
        if (shale_batch_count(bt) == 1000 || i + 1 == keys) {
            if (shale_write(db, bt))
                die(what, shale_errmsg());
            shale_batch_clear(bt);
        }
    }
    shale_batch_free(bt);
    if (shale_compact(db, true))
        die(what, shale_errmsg());
}

/* ---- figures -------------------------------------------------------------- */

/* Lives in a shared mapping: each engine runs in a child process that
 * writes its column here. */
typedef struct figure {
    char name[32];
    double ops[NENGINES];                 /* ops/s */
    double p50[NENGINES], p99[NENGINES];  /* microseconds (0 = not measured) */
} figure;

typedef struct engine_totals {
    double write_amp;   /* bytes the process wrote (write(2) and friends)
                           during fillseq + overwrite + full compaction,
                           over the user bytes of those writes */
    long peak_rss_kb;
    bool ran;
} engine_totals;

#define MAXFIGS 16
typedef struct shared_figs {
    figure f[MAXFIGS];
    int n;
    engine_totals tot[NENGINES];
} shared_figs;
static shared_figs *sh;

static figure *fig(const char *name)
{
    for (int i = 0; i < sh->n; i++)
        if (!strcmp(sh->f[i].name, name))
            return &sh->f[i];
    if (sh->n == MAXFIGS)
        die("figures", "too many");
    snprintf(sh->f[sh->n].name, sizeof sh->f[0].name, "%s", name);
    return &sh->f[sh->n++];
}

/* Per-operation latencies of the current workload (ns), for percentiles. */
static uint32_t *lat;
static uint64_t nlat;

static void lat_add(double t0)
{
    double d = (now_s() - t0) * 1e9;
    lat[nlat++] = d > 4e9 ? 4000000000u : (uint32_t)d;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Records ops/s and the percentiles of the latencies gathered since the
 * last call. */
static void record(const char *name, int col, uint64_t ops, double t)
{
    figure *f = fig(name);
    f->ops[col] = (double)ops / (now_s() - t);
    if (nlat) {
        qsort(lat, nlat, sizeof *lat, cmp_u32);
        f->p50[col] = lat[nlat / 2] / 1000.0;
        f->p99[col] = lat[(nlat * 99) / 100] / 1000.0;
    }
    nlat = 0;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* wchar of /proc/self/io: bytes this process passed to write(2) and its
 * kin, whatever the file (WAL, tables, manifest).  Same measure for all. */
static uint64_t bytes_written_by_process(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    unsigned long long v = 0;
    char line[128];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %llu", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* Drops a file's pages from the page cache (after writing back what is
 * dirty), so the next read comes from the disk: a cold read without root. */
static int evict_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (type != FTW_F)
        return 0;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    return 0;
}

/* ---- the workloads ------------------------------------------------------------ */

static void fill(const kv_engine *e, const char *name, const uint64_t *order)
{
    char k[17];
    double t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = order ? order[i] : i;
        key_of(x, k);
        e->put(e->ctx, k, value_of(x));
    }
    if (e->settle)
        e->settle(e->ctx);
    record(name, e->col, nkeys, t);
}

static void readrandom(const kv_engine *e, const char *name, uint64_t n, uint64_t seed)
{
    char k[17];
    double t = now_s();
    for (uint64_t i = 0; i < n; i++) {
        key_of(rnd(&seed) % nkeys, k);
        double t0 = now_s();
        bool found = e->get(e->ctx, k);
        lat_add(t0);
        if (!found)
            die(engine_names[e->col], "a key written by fillseq is missing");
    }
    record(name, e->col, n, t);
}

static void run_workloads(int col)
{
    char path[700];
    lat = malloc(nkeys * sizeof *lat);
    uint64_t *order = malloc(nkeys * sizeof *order);
    if (!lat || !order)
        die("malloc", "latency and order buffers");

    /* fillrandom: every key once, in a random order, into a new database. */
    for (uint64_t i = 0; i < nkeys; i++)
        order[i] = i;
    uint64_t s = 3;
    for (uint64_t i = nkeys - 1; i > 0; i--) {
        uint64_t j = rnd(&s) % (i + 1), x = order[i];
        order[i] = order[j], order[j] = x;
    }
    snprintf(path, sizeof path, "%s/%s-random", dir, engine_names[col]);
    kv_engine e = engine_open[col](path, false, true);
    fill(&e, "fillrandom", order);
    e.close(e.ctx);
    rm_rf(path);
    free(order);

    snprintf(path, sizeof path, "%s/%s", dir, engine_names[col]);
    e = engine_open[col](path, false, true);
    uint64_t w0 = bytes_written_by_process();
    fill(&e, "fillseq", NULL);

    char k[17];
    s = 42;
    double t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        double t0 = now_s();
        e.put(e.ctx, k, value_of(x + 1));
        lat_add(t0);
    }
    if (e.settle)
        e.settle(e.ctx);
    record("overwrite (random)", col, nkeys, t);
    e.compact(e.ctx);
    sh->tot[col].write_amp = (double)(bytes_written_by_process() - w0) /
                             (double)(2 * nkeys * (16 + vsize));

    readrandom(&e, "readrandom (warm)", nkeys, 7);

    t = now_s();
    uint64_t n = e.scan(e.ctx);
    record("readseq (scan)", col, n, t);
    if (n != nkeys)
        die(engine_names[col], "the scan did not see every key");

    s = 11;
    t = now_s();
    for (uint64_t i = 0; i < nkeys; i++) {
        uint64_t x = rnd(&s) % nkeys;
        key_of(x, k);
        if (x % 10 == 0)
            e.put(e.ctx, k, value_of(x + 2));
        else if (!e.get(e.ctx, k))
            die(engine_names[col], "a key is missing in the mixed workload");
    }
    if (e.settle)
        e.settle(e.ctx);
    record("mixed 90/10", col, nkeys, t);

    /* Cold: a new handle (empty block cache, tables not open) over files
     * the page cache no longer holds.  A tenth of the reads: the first ones
     * are the cold ones that matter. */
    e.close(e.ctx);
    nftw(path, evict_one, 16, FTW_PHYS);
    e = engine_open[col](path, false, false);
    readrandom(&e, "readrandom (cold)", nkeys / 10 ? nkeys / 10 : 1, 13);
    e.close(e.ctx);
    rm_rf(path);
    free(lat);
}

/* Runs one engine's whole share in a child process, so its peak RSS and
 * its bytes written are its own. */
static bool durable_only;   /* --durable-only: just the durable puts */
static bool no_durable;     /* --no-durable: all but the durable puts */
static int durable_rounds = 20;   /* --durable-rounds N (bench_durable.c) */

static void run_engine(int col)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", NULL);
    if (pid == 0) {
        if (!durable_only)
            run_workloads(col);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        sh->tot[col].peak_rss_kb = ru.ru_maxrss;
        sh->tot[col].ran = true;
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die(engine_names[col], "its benchmark process failed (see above)");
}

/* ---- output ----------------------------------------------------------------- */

static void print_tables(int engines)
{
    double mb = (16.0 + (double)vsize) / 1e6;
    printf("\n%-24s %11s %6s %11s %6s %7s %11s %6s %7s\n", "workload", "shale op/s", "MB/s",
           "rocksdb", "MB/s", "ratio", "leveldb", "MB/s", "ratio");
    for (int i = 0; i < sh->n; i++) {
        const double *o = sh->f[i].ops;
        printf("%-24s %11.0f %6.1f", sh->f[i].name, o[0], o[0] * mb);
        for (int e = 1; e < engines; e++)
            printf(" %11.0f %6.1f %6.2fx", o[e], o[e] * mb, o[0] / o[e]);
        printf("\n");
    }
    printf("\n%-24s %17s %17s %17s\n", "latency p50/p99 (us)", "shale", "rocksdb", "leveldb");
    for (int i = 0; i < sh->n; i++) {
        if (sh->f[i].p50[0] <= 0)
            continue;
        printf("%-24s", sh->f[i].name);
        for (int e = 0; e < engines; e++)
            printf("   %7.2f/%-7.2f", sh->f[i].p50[e], sh->f[i].p99[e]);
        printf("\n");
    }
    printf("\n%-24s", "write amplification");
    for (int e = 0; e < engines; e++)
        printf(" %17.2f", sh->tot[e].write_amp);
    printf("\n%-24s", "peak RSS (MiB)");
    for (int e = 0; e < engines; e++)
        printf(" %17ld", sh->tot[e].peak_rss_kb / 1024);
    printf("\n(write amplification: bytes each engine's process wrote during fillseq +\n"
           " overwrite + a full compaction, over the user bytes of those writes)\n");
}

static char *first_line_matching(const char *file, const char *prefix)
{
    FILE *f = fopen(file, "r");
    char line[512];
    char *out = NULL;
    while (f && !out && fgets(line, sizeof line, f))
        if (!strncmp(line, prefix, strlen(prefix))) {
            char *v = strchr(line, ':');
            v = v ? v + 1 : line + strlen(prefix);
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = '\0';
            out = strdup(v);
        }
    if (f)
        fclose(f);
    return out ? out : strdup("unknown");
}

/* The machine: CPU, cores, memory, the file system under dir, versions. */
static json_t *machine_json(void)
{
    char *cpu = first_line_matching("/proc/cpuinfo", "model name");
    char *mem = first_line_matching("/proc/meminfo", "MemTotal");
    struct statfs fs;
    char fstype[32] = "unknown";
    if (statfs(dir, &fs) == 0)
        snprintf(fstype, sizeof fstype, "0x%lx", (unsigned long)fs.f_type);
    char leveldb_ver[16];
    snprintf(leveldb_ver, sizeof leveldb_ver, "%d.%d", leveldb_major_version(),
             leveldb_minor_version());
    const char *rver = getenv("BENCH_ROCKSDB_VERSION");
    json_t *m = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "cpu", cpu, "cores",
                          (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "memory", mem,
                          "disk_fs_magic", fstype, "disk", getenv("BENCH_DISK") ?
                          getenv("BENCH_DISK") : "unknown", "shale", SHALE_VERSION, "rocksdb",
                          rver ? rver : "unknown", "leveldb", leveldb_ver, "compiler",
                          __VERSION__);
    free(cpu);
    free(mem);
    return m;
}

static void write_json(const char *path, json_t *splits, json_t *lat, int engines)
{
    json_t *ws = json_array(), *tot = json_object();
    for (int i = 0; i < sh->n; i++) {
        json_t *w = json_pack("{s:s}", "name", sh->f[i].name);
        for (int e = 0; e < engines; e++) {
            char key[48];
            json_object_set_new(w, engine_names[e], json_real(sh->f[i].ops[e]));
            snprintf(key, sizeof key, "%s_mb_s", engine_names[e]);
            json_object_set_new(w, key, json_real(sh->f[i].ops[e] * (16.0 + vsize) / 1e6));
            if (sh->f[i].p50[e] > 0) {
                snprintf(key, sizeof key, "%s_p50_us", engine_names[e]);
                json_object_set_new(w, key, json_real(sh->f[i].p50[e]));
                snprintf(key, sizeof key, "%s_p99_us", engine_names[e]);
                json_object_set_new(w, key, json_real(sh->f[i].p99[e]));
            }
        }
        json_array_append_new(ws, w);
    }
    for (int e = 0; e < engines; e++)
        json_object_set_new(tot, engine_names[e],
                            json_pack("{s:f, s:I}", "write_amp", sh->tot[e].write_amp,
                                      "peak_rss_mb", (json_int_t)(sh->tot[e].peak_rss_kb / 1024)));
    json_t *root = json_pack("{s:I, s:I, s:I, s:s, s:o, s:o, s:o, s:O}", "keys",
                             (json_int_t)nkeys, "key_size", (json_int_t)16, "value_size",
                             (json_int_t)vsize, "durability",
                             "no sync per write, except 'durable put' (synced, 1/4/32 threads)",
                             "machine", machine_json(), "workloads", ws, "engines", tot,
                             "splits", splits);
    if (root && lat)
        json_object_set(root, "latency_splits", lat);
    if (!root || json_dump_file(root, path, JSON_INDENT(1)))
        die("writing", path);
    json_decref(root);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench [--keys N] [--value-size B] [--split-mb M,M,...] "
                    "[--s3-mb M] [--json FILE] [--dir D] [--shale-only] "
                    "[--durable-only] [--no-durable] [--durable-rounds N] [--shale-memtable-mb M]\n"
                    "[--shale-max-unflushed-mb M]\n"
                    "[--latency-keys N] [--latency-only]\n"
                    "  --latency-keys N: splits at 0/20/50 ms injected latency x 2/8/32\n"
                    "  children of an N-key parent (with --s3-mb, also on the RGW)\n"
                    "  --split-mb \"\" and --s3-mb 0 skip the split benchmarks\n"
                    "  --split-bytes-mb 50,500 [--split-bytes-s3]: only references splits of\n"
                    "  parents of those sizes: bytes read, requests, time, ratios\n"
                    "  --split-bytes-repeat N: N splits of each size (each parent loaded once\n"
                    "  on file://, copied per split), alternating the order; ratios of medians\n"
                    "  --shale-memtable-mb: Shale's memtable size (default 64, RocksDB's;\n"
                    "  LevelDB's is 4), for experiments\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *json = NULL, *split_list = "16,64";
    int s3_mb = 0;
    uint64_t latency_keys = 0;
    bool latency_only = false;
    bool shale_only = false;
    const char *split_bytes_mb = NULL;
    bool split_bytes_s3 = false;
    int split_bytes_repeat = 1;
    for (int i = 1; i < argc; i++) {
        bool more = i + 1 < argc;
        if (!strcmp(argv[i], "--keys") && more)
            nkeys = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--value-size") && more)
            vsize = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--split-mb") && more)
            split_list = argv[++i];
        else if (!strcmp(argv[i], "--latency-keys") && more)
            latency_keys = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--latency-only"))
            latency_only = true;
        else if (!strcmp(argv[i], "--s3-mb") && more)
            s3_mb = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && more)
            json = argv[++i];
        else if (!strcmp(argv[i], "--dir") && more)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--split-bytes-mb") && more)   /* bench_splitbytes.c */
            split_bytes_mb = argv[++i];
        else if (!strcmp(argv[i], "--split-bytes-repeat") && more)
            split_bytes_repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--split-bytes-s3"))
            split_bytes_s3 = true;
        else if (!strcmp(argv[i], "--shale-only"))   /* for profiling */
            shale_only = true;
        else if (!strcmp(argv[i], "--durable-only"))   /* for experiments */
            durable_only = true;
        else if (!strcmp(argv[i], "--no-durable"))     /* repeated runs of the rest */
            no_durable = true;
        else if (!strcmp(argv[i], "--durable-rounds") && more)   /* bench_durable.c */
            durable_rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shale-max-unflushed-mb") && more)
            shale_unflushed_mb = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--shale-memtable-mb") && more)
            shale_memtable_mb = strtoul(argv[++i], NULL, 10);
        else
            usage();
    }
    if (nkeys < 10 || vsize == 0)
        die("usage", "--keys must be at least 10 and --value-size positive");
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("mmap", NULL);
    memset(sh, 0, sizeof *sh);
    values_init();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd))
        die("mkdir", dir);
    /* The durable puts: the same number at every thread count (4 x
     * max(500, keys/100), as the single 4-thread figure had), in rounds of
     * at least 16 puts per thread at 32 threads (fewer rounds for a small
     * --keys), so that every count makes the same puts. */
    uint64_t dur_total = 4 * (nkeys / 100 < 500 ? 500 : nkeys / 100);
    if (durable_rounds < 1)
        durable_rounds = 1;
    if ((uint64_t)durable_rounds > dur_total / (32 * 16))
        durable_rounds = dur_total / (32 * 16) ? (int)(dur_total / (32 * 16)) : 1;
    printf("keys %llu x 16 B, values %zu B (half compressible), in %s\n"
           "durability: no sync per write (Shale await_durable off, peers sync=false),\n"
           "except 'durable put': synced acknowledgement, 1/4/32 writer threads (Shale\n"
           "await_durable + group commit, peers sync=true), the engines interleaved\n"
           "in %d rounds\n",
           (unsigned long long)nkeys, vsize, dir, durable_rounds);
    json_t *splits = json_array(), *lat = json_array();
    if (latency_keys > 0)
        latency_bench(latency_keys, s3_mb > 0, lat);
    if (split_bytes_mb) {   /* alone: it writes no JSON of its own kind yet */
        json_t *sb = json_array();
        split_bytes_bench("file", split_bytes_mb, split_bytes_repeat, sb);
        if (split_bytes_s3)
            split_bytes_bench("s3", split_bytes_mb, split_bytes_repeat, sb);
        if (json) {
            json_t *doc = json_pack("{s:o}", "split_bytes", sb);
            json_dump_file(doc, json, JSON_INDENT(1));
            json_decref(doc);
        } else {
            json_decref(sb);
        }
        json_decref(splits);
        json_decref(lat);
        return 0;
    }
    if (latency_only) {
        if (json)
            write_json(json, splits, lat, 0);
        json_decref(splits);
        json_decref(lat);
        return 0;
    }
    int engines = shale_only ? 1 : NENGINES;
    for (int e = 0; e < engines && !durable_only; e++)
        run_engine(e);
    if (!no_durable) {
        dur_figure d[NENGINES][DUR_COUNTS];   /* interleaved: bench_durable.c */
        durable_bench(engines, durable_rounds, dur_total, d);
        for (int c = 0; c < DUR_COUNTS; c++) {
            char name[32];
            snprintf(name, sizeof name, "durable put, %d thread%s", d[0][c].threads,
                     d[0][c].threads > 1 ? "s" : "");
            figure *f = fig(name);
            for (int e = 0; e < engines; e++) {
                f->ops[e] = d[e][c].ops;
                f->p50[e] = d[e][c].p50_us;
                f->p99[e] = d[e][c].p99_us;
            }
        }
    }
    print_tables(engines);
    char *list = strdup(split_list);
    bool header = false;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (!header)
            split_bench_header(), header = true;
        split_bench("file", atoi(tok), splits);
    }
    free(list);
    if (s3_mb > 0) {
        if (!header)
            split_bench_header();
        split_bench("s3", s3_mb, splits);
    }
    if (json)
        write_json(json, splits, lat, engines);
    json_decref(splits);
    json_decref(lat);
    free(valbuf);
    return 0;
}
