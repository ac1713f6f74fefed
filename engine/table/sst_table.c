/*
 * sst_table.c -- the shared, lazily loaded metadata of an SST (see
 * sst_table.h) and the process-wide registry of it.
 *
 * Every offset and size read from the object is bounds-checked and every
 * block's checksum verified before use; any inconsistency is SHALE_CORRUPT
 * naming the object and the offset.
 */
#include "table/sst_table.h"
#include "table/block.h"
#include "table/sst_format.h"
#include "table/kv.h"
#include "util/coding.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define REG_BUCKETS 1024

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_loaded = PTHREAD_COND_INITIALIZER;
static sst_table *g_reg[REG_BUCKETS];
static uint64_t g_tables, g_opens, g_hits;          /* under g_mu */
static _Atomic uint64_t g_part_loads, g_filter_loads, g_index_reads, g_open_reads;

shale_status sst_src_corrupt(const sst_src *src, const char *what, uint64_t off)
{
    return shale_err(SHALE_CORRUPT, "%s: %s at offset %llu", src->name, what,
                     (unsigned long long)off);
}

shale_status sst_src_read(const sst_src *src, uint64_t off, uint64_t len, uint8_t **data,
                          bool *owned)
{
    if (off > src->size || len > src->size - off)
        return sst_src_corrupt(src, "block extends past the end of the object", off);
    if (src->image) {
        *data = (uint8_t *)src->image + off;
        *owned = false;
        return SHALE_OK;
    }
    void *p = NULL;
    size_t got = 0;
    shale_status rc = shale_objreader_read(src->rd, off, len, &p, &got);
    if (rc == SHALE_INVALID_ARGUMENT)  /* offset past the end: truncated */
        return sst_src_corrupt(src, "object shorter than expected (truncated?)", off);
    if (rc)
        return shale_err_prefix(rc, "%s", src->name);
    if (got != len) {
        free(p);
        return sst_src_corrupt(src, "object shorter than its index says (truncated?)",
                               off + got);
    }
    *data = p;
    *owned = true;
    return SHALE_OK;
}

/* ---- search keys ---------------------------------------------------------- */

/* The 8 bytes of key from `at` (zero past its end), big-endian. */
static inline uint64_t key_prefix(const uint8_t *key, size_t klen, size_t at)
{
    uint64_t v = 0;
    for (size_t j = 0; j < 8; j++)
        v = v << 8 | (at + j < klen ? key[at + j] : 0);
    return v;
}

/* Search keys of n sorted keys, key i at *(keys + i * stride) with its
 * length at *(lens + i * stride) (an sst_ientry or sst_top array).  Out of
 * memory leaves pfx NULL: the search then compares the keys. */
static void keys_build(sst_keys *k, const uint8_t *const *keys, const size_t *lens, size_t n,
                       size_t stride)
{
    memset(k, 0, sizeof *k);
    if (!n || !(k->pfx = malloc(n * sizeof *k->pfx)))
        return;
#define KEY(i) (*(const uint8_t *const *)((const char *)keys + (i) * stride))
#define LEN(i) (*(const size_t *)((const char *)lens + (i) * stride))
    /* Sorted: the first and last keys' shared bytes are every key's. */
    const uint8_t *a = KEY(0), *b = KEY(n - 1);
    size_t al = LEN(0), bl = LEN(n - 1), cp = 0;
    while (cp < al && cp < bl && a[cp] == b[cp])
        cp++;
    k->cpk = a;
    k->cp = cp;
    for (size_t i = 0; i < n; i++)
        k->pfx[i] = key_prefix(KEY(i), LEN(i), cp);
#undef KEY
#undef LEN
}

/* First i in [0, n) whose key >= key (n if none); see sst_keys. */
static size_t keys_find(const sst_keys *k, const uint8_t *const *keys, const size_t *lens,
                        size_t n, size_t stride, const uint8_t *key, size_t klen)
{
#define KEY(i) (*(const uint8_t *const *)((const char *)keys + (i) * stride))
#define LEN(i) (*(const size_t *)((const char *)lens + (i) * stride))
    size_t lo = 0, hi = n;
    if (!k->pfx) {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (kv_key_cmp(KEY(mid), LEN(mid), key, klen) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
    /* Against the shared bytes first: a key below them is below every
     * key (also a key that is a proper prefix of them), above them above
     * every key. */
    size_t m = klen < k->cp ? klen : k->cp;
    int c = memcmp(key, k->cpk, m);
    if (c < 0 || (c == 0 && klen < k->cp))
        return 0;
    if (c > 0)
        return n;
    uint64_t want = key_prefix(key, klen, k->cp);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t have = k->pfx[mid];
        /* Padded prefixes that differ order the keys as the keys do; equal
         * ones need the keys. */
        if (have < want || (have == want && kv_key_cmp(KEY(mid), LEN(mid), key, klen) < 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
#undef KEY
#undef LEN
}

/* ---- decoding ------------------------------------------------------------ */

static bool varint_at(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
    size_t k = get_varint(p + *i, len - *i, v);
    *i += k;
    return k != 0;
}

/* Index entries (format 1/2 index block, format 3 partition) of content
 * p[0..len), stored at `at`.  Keys point into p. */
static shale_status parse_entries(const sst_table *t, const sst_src *src, const uint8_t *p,
                                  size_t len, uint64_t at, sst_part *out)
{
    size_t cap = 16, n = 0, i = 0;
    sst_ientry *ix = malloc(cap * sizeof *ix);
    if (!ix)
        return SHALE_OOM();
    while (i < len) {
        uint64_t klen, off, size, entries = 0, kv_bytes = 0;
        if (!varint_at(p, len, &i, &klen) || klen > len - i)
            goto bad;
        const uint8_t *key = p + i;
        i += klen;
        if (!varint_at(p, len, &i, &off) || !varint_at(p, len, &i, &size))
            goto bad;
        if (t->version >= 2 && (!varint_at(p, len, &i, &entries) ||
                                !varint_at(p, len, &i, &kv_bytes) || !entries))
            goto bad;
        if (off > t->data_end || size > t->data_end - off || size < BLOCK_TRAILER)
            goto bad;
        if (n == cap) {
            cap *= 2;
            sst_ientry *nx = realloc(ix, cap * sizeof *nx);
            if (!nx) {
                free(ix);
                return SHALE_OOM();
            }
            ix = nx;
        }
        ix[n++] = (sst_ientry){key, klen, off, size, entries, kv_bytes};
    }
    out->e = ix;
    out->n = n;
    keys_build(&out->keys, &ix[0].last_key, &ix[0].klen, n, sizeof *ix);
    return SHALE_OK;
bad:
    free(ix);
    return sst_src_corrupt(src, "malformed index entry", at + i);
}

/* Format 3 top level: one entry per partition. */
static shale_status parse_top(sst_table *t, const sst_src *src, const uint8_t *p, size_t len,
                              uint64_t at)
{
    size_t cap = 8, n = 0, i = 0, blocks = 0;
    sst_top *top = malloc(cap * sizeof *top);
    if (!top)
        return SHALE_OOM();
    while (i < len) {
        uint64_t klen, v[6];
        if (!varint_at(p, len, &i, &klen) || klen > len - i)
            goto bad;
        const uint8_t *key = p + i;
        i += klen;
        for (int j = 0; j < 6; j++)
            if (!varint_at(p, len, &i, &v[j]))
                goto bad;
        /* v: offset, stored size, blocks, entries, key+value bytes, data bytes */
        if (v[0] < t->parts_off || v[0] > t->parts_end || v[1] > t->parts_end - v[0] ||
            v[1] < BLOCK_TRAILER || !v[2] || v[3] < v[2] || v[2] > t->data_end ||
            v[5] > t->data_end)
            goto bad;
        if (n == cap) {
            cap *= 2;
            sst_top *nt = realloc(top, cap * sizeof *nt);
            if (!nt) {
                free(top);
                return SHALE_OOM();
            }
            top = nt;
        }
        top[n++] = (sst_top){key, klen, v[0], v[1], v[2], v[3], v[4], v[5], blocks};
        blocks += v[2];
    }
    t->top = top;
    t->nparts = n;
    t->nblocks = blocks;
    keys_build(&t->top_keys, &top[0].last_key, &top[0].klen, n, sizeof *top);
    return SHALE_OK;
bad:
    free(top);
    return sst_src_corrupt(src, "malformed top-level index entry", at + i);
}

static shale_status parse_props(sst_table *t, const sst_src *src, const uint8_t *p, size_t len,
                                uint64_t at)
{
    uint64_t v[3], kl;
    size_t i = 0;
    for (int j = 0; j < 3; j++)
        if (!varint_at(p, len, &i, &v[j]))
            return sst_src_corrupt(src, "malformed properties", at);
    t->info.entries = v[0];
    t->info.min_seq = v[1];
    t->info.max_seq = v[2];
    t->info.size = t->size;
    for (int j = 0; j < 2; j++) {
        if (!varint_at(p, len, &i, &kl) || kl > len - i)
            return sst_src_corrupt(src, "malformed properties key", at);
        uint8_t *key = malloc(kl ? kl : 1);
        if (!key)
            return SHALE_OOM();
        memcpy(key, p + i, kl);
        i += kl;
        if (j == 0) {
            t->info.first_key = key;
            t->info.first_klen = kl;
        } else {
            t->info.last_key = key;
            t->info.last_klen = kl;
        }
    }
    if (t->info.entries == 0) {
        sst_info_free(&t->info);
        t->info.first_klen = t->info.last_klen = 0;
    }
    return SHALE_OK;
}

static void part_free(sst_part *p)
{
    if (p) {
        free(p->content);
        free(p->e);
        free(p->keys.pfx);
        free(p);
    }
}

/* Decodes stored partition p from bytes (its stored block) and publishes
 * it unless another thread did first. */
static shale_status part_decode(sst_table *t, const sst_src *src, size_t p,
                                const uint8_t *stored)
{
    const sst_top *tp = &t->top[p];
    sst_part *np = calloc(1, sizeof *np);
    if (!np)
        return SHALE_OOM();
    size_t clen = 0;
    shale_status rc = block_load(src->name, tp->off, stored, tp->size, &np->content, &clen);
    if (!rc)
        rc = parse_entries(t, src, np->content, clen, tp->off, np);
    if (!rc && np->n != tp->blocks)
        rc = sst_src_corrupt(src, "index partition lists another number of data blocks "
                                  "than the top-level index", tp->off);
    if (rc) {
        part_free(np);
        return rc;
    }
    atomic_fetch_add_explicit(&g_part_loads, 1, memory_order_relaxed);
    sst_part *expect = NULL;
    if (!atomic_compare_exchange_strong(&t->parts[p], &expect, np))
        part_free(np);   /* a racing loader published the same partition */
    return SHALE_OK;
}

shale_status sst_table_part(sst_table *t, const sst_src *src, size_t p, const sst_part **out)
{
    sst_part *cur = atomic_load_explicit(&t->parts[p], memory_order_acquire);
    if (!cur) {
        pthread_mutex_t *mu = &t->load_mu[p % SST_LOAD_LOCKS];
        pthread_mutex_lock(mu);
        while (!(cur = atomic_load_explicit(&t->parts[p], memory_order_acquire)) &&
               t->loading && t->loading[p])
            pthread_cond_wait(&t->load_cv[p % SST_LOAD_LOCKS], mu);
        if (cur) {   /* another reader's load, finished while this one waited */
            pthread_mutex_unlock(mu);
            *out = cur;
            return SHALE_OK;
        }
        if (t->loading) {   /* read outside the lock (sst_table.h) */
            t->loading[p] = 1;
            pthread_mutex_unlock(mu);
        }
        uint8_t *stored = NULL;
        bool owned = false;
        shale_status rc = sst_src_read(src, t->top[p].off, t->top[p].size, &stored, &owned);
        atomic_fetch_add_explicit(&g_index_reads, 1, memory_order_relaxed);
        if (!rc)
            rc = part_decode(t, src, p, stored);
        if (owned)
            free(stored);
        if (t->loading) {
            pthread_mutex_lock(mu);
            t->loading[p] = 0;   /* a failed read: the next waiter reads */
            pthread_cond_broadcast(&t->load_cv[p % SST_LOAD_LOCKS]);
        }
        pthread_mutex_unlock(mu);
        if (rc)
            return rc;
        cur = atomic_load_explicit(&t->parts[p], memory_order_acquire);
    }
    *out = cur;
    return SHALE_OK;
}

/* Every missing partition from the region [from, from + len) held in buf. */
static shale_status parts_from(sst_table *t, const sst_src *src, const uint8_t *buf,
                               uint64_t from, uint64_t len, size_t p0)
{
    shale_status rc = SHALE_OK;
    for (size_t p = p0; p < t->nparts && !rc; p++) {
        if (atomic_load_explicit(&t->parts[p], memory_order_acquire))
            continue;
        const sst_top *tp = &t->top[p];
        if (tp->off < from || tp->off + tp->size > from + len)
            rc = sst_src_corrupt(src, "index partition outside the index region", tp->off);
        else
            rc = part_decode(t, src, p, buf + (tp->off - from));
    }
    return rc;
}

shale_status sst_table_load_all(sst_table *t, const sst_src *src, size_t p0)
{
    if (t->version < SST_FORMAT_PARTITIONED || !t->nparts)
        return SHALE_OK;   /* formats 1 and 2 load their one index at open */
    while (p0 < t->nparts && atomic_load_explicit(&t->parts[p0], memory_order_acquire))
        p0++;
    if (p0 == t->nparts)
        return SHALE_OK;
    uint64_t from = t->top[p0].off, end = t->parts_end;
    uint8_t *buf = NULL;
    bool owned = false;
    shale_status rc = sst_src_read(src, from, end - from, &buf, &owned);
    atomic_fetch_add_explicit(&g_index_reads, 1, memory_order_relaxed);
    if (!rc)
        rc = parts_from(t, src, buf, from, end - from, p0);
    if (owned)
        free(buf);
    return rc;
}

shale_status sst_table_filter(sst_table *t, const sst_src *src, const sst_filter **out)
{
    *out = NULL;
    if (!t->filter_size)
        return SHALE_OK;
    sst_filter *f = atomic_load_explicit(&t->filter, memory_order_acquire);
    if (!f) {
        pthread_mutex_lock(&t->filter_mu);
        if ((f = atomic_load_explicit(&t->filter, memory_order_acquire))) {
            pthread_mutex_unlock(&t->filter_mu);
            *out = f;
            return SHALE_OK;
        }
        uint8_t *stored = NULL;
        bool owned = false;
        sst_filter *nf = calloc(1, sizeof *nf);
        if (!nf) {
            pthread_mutex_unlock(&t->filter_mu);
            return SHALE_OOM();
        }
        shale_status rc = sst_src_read(src, t->filter_off, t->filter_size, &stored, &owned);
        atomic_fetch_add_explicit(&g_index_reads, 1, memory_order_relaxed);
        if (!rc)
            rc = block_load(src->name, t->filter_off, stored, t->filter_size, &nf->data,
                            &nf->len);
        if (owned)
            free(stored);
        if (rc) {
            pthread_mutex_unlock(&t->filter_mu);
            free(nf);
            return rc;
        }
        atomic_fetch_add_explicit(&g_filter_loads, 1, memory_order_relaxed);
        atomic_store_explicit(&t->filter, nf, memory_order_release);
        pthread_mutex_unlock(&t->filter_mu);
        f = nf;
    }
    *out = f;
    return SHALE_OK;
}

size_t sst_table_find_part(const sst_table *t, const uint8_t *key, size_t klen)
{
    if (!t->nparts)
        return 0;
    return keys_find(&t->top_keys, &t->top[0].last_key, &t->top[0].klen, t->nparts,
                     sizeof *t->top, key, klen);
}

size_t sst_part_find(const sst_part *p, const uint8_t *key, size_t klen)
{
    if (!p->n)
        return 0;
    return keys_find(&p->keys, &p->e[0].last_key, &p->e[0].klen, p->n, sizeof *p->e, key,
                     klen);
}

/* ---- open ---------------------------------------------------------------- */

static sst_table *table_new(void)
{
    sst_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    for (int i = 0; i < SST_LOAD_LOCKS; i++) {
        pthread_mutex_init(&t->load_mu[i], NULL);
        pthread_cond_init(&t->load_cv[i], NULL);
    }
    pthread_mutex_init(&t->filter_mu, NULL);
    t->refs = 1;
    return t;
}

static void table_free(sst_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < SST_LOAD_LOCKS; i++) {
        pthread_mutex_destroy(&t->load_mu[i]);
        pthread_cond_destroy(&t->load_cv[i]);
    }
    free(t->loading);
    pthread_mutex_destroy(&t->filter_mu);
    for (size_t p = 0; t->parts && p < t->nparts; p++)
        part_free(atomic_load(&t->parts[p]));
    free(t->parts);
    sst_filter *f = atomic_load(&t->filter);
    if (f) {
        free(f->data);
        free(f);
    }
    free(t->top_content);
    free(t->top);
    free(t->top_keys.pfx);
    sst_info_free(&t->info);
    free(t->reg_key);
    free(t);
}

/* Footer, then top-level index (or the whole index of formats 1 and 2)
 * and properties in one read -- the partitions too with all_parts.  tail_hint:
 * the manifest's count of the bytes from the top level to the end, or 0. */
static shale_status table_load(sst_table *t, const sst_src *src, bool all_parts,
                               uint64_t tail_hint)
{
    t->size = src->size;
    if (t->size < SST_FOOTER_SIZE)
        return sst_src_corrupt(src, "object too short for an SST footer", 0);
    uint64_t foff = t->size - SST_FOOTER_SIZE;
    /* A reader's open reads the object's last SST_TAIL_READ bytes: the
     * footer, and behind it most often the top-level index, the properties
     * and the last partitions -- one request where two would be sequential
     * round trips on S3.  Index-only opens read exactly what they use (no
     * filter or data block bytes: split facts).  Where the manifest says
     * how long the top level, properties and footer are, the open reads
     * exactly that: the 16 KiB were 3.6 times what a 64 MiB SST of 16-byte
     * keys needs, and a references split opens one SST more when the
     * parent has more than one (issue 16: a split's bytes constant in the
     * parent's size).  A tail too short only costs the read below. */
    uint64_t want = tail_hint >= SST_FOOTER_SIZE ? tail_hint : SST_TAIL_READ;
    uint64_t tail_len = all_parts ? SST_FOOTER_SIZE : t->size < want ? t->size : want;
    uint64_t tail_off = t->size - tail_len;
    uint8_t *tail = NULL;
    bool tail_owned = false;
    shale_status rc = sst_src_read(src, tail_off, tail_len, &tail, &tail_owned);
    atomic_fetch_add_explicit(&g_open_reads, 1, memory_order_relaxed);
    if (rc)
        return rc;
    uint8_t footer[SST_FOOTER_SIZE];
    memcpy(footer, tail + tail_len - SST_FOOTER_SIZE, SST_FOOTER_SIZE);
    bool owned = false;
    if (get_u64le(footer + 56) != SST_MAGIC) {
        rc = sst_src_corrupt(src, "bad magic number in the footer (not an SST)", foff);
        goto done;
    }
    if (get_u64le(footer + 64) != XXH3_64bits(footer, 64)) {
        rc = sst_src_corrupt(src, "footer checksum mismatch", foff);
        goto done;
    }
    uint32_t ver = get_u32le(footer + 48);
    if (ver < SST_FORMAT_VERSION_MIN || ver > SST_FORMAT_VERSION) {
        rc = shale_err(SHALE_UNSUPPORTED, "%s: SST format version %u is not supported by "
                                            "this build (%d to %d)", src->name, ver,
                         SST_FORMAT_VERSION_MIN, SST_FORMAT_VERSION);
        goto done;
    }
    t->version = ver;
    uint64_t fo = get_u64le(footer), fs = get_u64le(footer + 8), io = get_u64le(footer + 16),
             is = get_u64le(footer + 24), po = get_u64le(footer + 32),
             ps = get_u64le(footer + 40), ts = get_u32le(footer + 52);
    if (fo > foff || fs > foff - fo || io != fo + fs || is > foff - io || po != io + is ||
        ps > foff - po || po + ps != foff || is < BLOCK_TRAILER || ps < BLOCK_TRAILER ||
        (ver >= SST_FORMAT_PARTITIONED && (ts < BLOCK_TRAILER || ts > is)) ||
        (ver < SST_FORMAT_PARTITIONED && ts)) {
        rc = sst_src_corrupt(src, "footer offsets are inconsistent", foff);
        goto done;
    }
    t->filter_off = fo;
    t->filter_size = fs;
    t->data_end = fo;
    /* The top level: the whole index before format 3. */
    uint64_t to = ver >= SST_FORMAT_PARTITIONED ? po - ts : io, tsz = po - to;
    t->parts_off = io;
    t->parts_end = to;
    uint64_t from = all_parts ? io : to;
    uint8_t *meta = NULL;
    if (from >= tail_off) {
        meta = tail + (from - tail_off);   /* in the tail already */
    } else {
        if ((rc = sst_src_read(src, from, foff - from, &meta, &owned)))
            goto done;
        atomic_fetch_add_explicit(&g_open_reads, 1, memory_order_relaxed);
    }
    uint8_t *content = NULL;
    size_t clen = 0;
    if ((rc = block_load(src->name, to, meta + (to - from), tsz, &t->top_content, &clen)))
        goto out;
    if (ver >= SST_FORMAT_PARTITIONED) {
        if ((rc = parse_top(t, src, t->top_content, clen, to)))
            goto out;
        if (!(t->parts = calloc(t->nparts ? t->nparts : 1, sizeof *t->parts)) ||
            !(t->loading = calloc(t->nparts ? t->nparts : 1, 1))) {
            rc = SHALE_OOM();
            goto out;
        }
        if (all_parts && (rc = parts_from(t, src, meta, from, to - from, 0)))
            goto out;
        /* Partitions the tail holds whole come free.  One that does not
         * decode is left for the seek into it to read and report. */
        for (size_t p = t->nparts; !all_parts && p-- > 0;) {
            if (t->top[p].off < tail_off)
                break;
            (void)part_decode(t, src, p, tail + (t->top[p].off - tail_off));
        }
    } else {
        /* The one index block is partition 0, loaded now. */
        sst_part *p = calloc(1, sizeof *p);
        t->top = calloc(1, sizeof *t->top);
        t->parts = calloc(1, sizeof *t->parts);
        if (!p || !t->top || !t->parts) {
            free(p);
            rc = SHALE_OOM();
            goto out;
        }
        if ((rc = parse_entries(t, src, t->top_content, clen, to, p))) {
            free(p);
            goto out;
        }
        p->content = t->top_content;   /* the partition owns it now */
        t->top_content = NULL;
        t->nblocks = p->n;
        if (p->n) {
            atomic_init(&t->parts[0], p);
            t->nparts = 1;
            t->top[0] = (sst_top){p->e[p->n - 1].last_key, p->e[p->n - 1].klen, to, tsz,
                                  p->n, 0, 0, 0, 0};
        } else {
            part_free(p);   /* no data blocks: no partition */
        }
    }
    if ((rc = block_load(src->name, po, meta + (po - from), ps, &content, &clen)))
        goto out;
    rc = parse_props(t, src, content, clen, po);
    if (!rc && t->info.entries && !t->nblocks)
        rc = sst_src_corrupt(src, "entries but no data blocks", io);
out:
    free(content);
    if (owned)
        free(meta);
done:
    if (tail_owned)
        free(tail);
    return rc;
}

static size_t reg_bucket(const char *k)
{
    return (size_t)(XXH3_64bits(k, strlen(k)) % REG_BUCKETS);
}

static shale_status table_new_private(const sst_src *src, bool all_parts, uint64_t tail,
                                      sst_table **out)
{
    sst_table *t = table_new();
    if (!t)
        return SHALE_OOM();
    t->state = 1;
    shale_status rc = table_load(t, src, all_parts, tail);
    if (rc) {
        table_free(t);
        return rc;
    }
    *out = t;
    return SHALE_OK;
}

shale_status sst_table_open(const sst_src *src, const char *ident, const char *key,
                            bool all_parts, uint64_t tail, sst_table **out)
{
    *out = NULL;
    if (!ident)
        return table_new_private(src, all_parts, tail, out);
    /* identity, key and size: an object is never rewritten, but a size
     * that differs names another object all the same. */
    size_t n = strlen(ident) + strlen(key) + 32;
    char *rk = malloc(n);
    if (!rk)
        return SHALE_OOM();
    snprintf(rk, n, "%s\n%s\n%llu", ident, key, (unsigned long long)src->size);
    size_t b = reg_bucket(rk);
    pthread_mutex_lock(&g_mu);
    g_opens++;
    for (;;) {
        sst_table *t = g_reg[b];
        while (t && strcmp(t->reg_key, rk))
            t = t->next;
        if (!t)
            break;
        if (t->state == 1) {
            t->refs++;
            g_hits++;
            pthread_mutex_unlock(&g_mu);
            free(rk);
            shale_status rc = all_parts ? sst_table_load_all(t, src, 0) : SHALE_OK;
            if (rc) {
                sst_table_unref(t);
                return rc;
            }
            *out = t;
            return SHALE_OK;
        }
        pthread_cond_wait(&g_loaded, &g_mu);   /* being loaded: then look again */
    }
    sst_table *t = table_new();
    if (!t) {
        pthread_mutex_unlock(&g_mu);
        free(rk);
        return SHALE_OOM();
    }
    t->reg_key = rk;
    t->next = g_reg[b];
    g_reg[b] = t;
    g_tables++;
    pthread_mutex_unlock(&g_mu);
    /* Load outside the lock (it does I/O); openers of other SSTs go on. */
    shale_status rc = table_load(t, src, all_parts, tail);
    pthread_mutex_lock(&g_mu);
    if (rc) {
        for (sst_table **pp = &g_reg[b]; *pp; pp = &(*pp)->next)
            if (*pp == t) {
                *pp = t->next;
                break;
            }
        g_tables--;
    } else {
        t->state = 1;
    }
    pthread_cond_broadcast(&g_loaded);
    pthread_mutex_unlock(&g_mu);
    if (rc) {
        table_free(t);   /* a waiter retries the load itself */
        return rc;
    }
    *out = t;
    return SHALE_OK;
}

void sst_table_unref(sst_table *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&g_mu);
    bool last = --t->refs == 0;
    if (last && t->reg_key) {
        for (sst_table **pp = &g_reg[reg_bucket(t->reg_key)]; *pp; pp = &(*pp)->next)
            if (*pp == t) {
                *pp = t->next;
                break;
            }
        g_tables--;
    }
    pthread_mutex_unlock(&g_mu);
    if (last)
        table_free(t);
}

void sst_table_stats_get(sst_table_stats *out)
{
    pthread_mutex_lock(&g_mu);
    out->tables = g_tables;
    out->opens = g_opens;
    out->shared_hits = g_hits;
    pthread_mutex_unlock(&g_mu);
    out->part_loads = atomic_load(&g_part_loads);
    out->filter_loads = atomic_load(&g_filter_loads);
    out->lazy_reads = atomic_load(&g_index_reads);
    out->open_reads = atomic_load(&g_open_reads);
}
