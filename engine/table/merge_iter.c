/*
 * merge_iter.c -- k-way merge of internal iterators (a binary min-heap in
 * internal order, ties broken by child index), and the array iterator.
 *
 * The first child that fails ends the merge: valid() turns false and
 * status() returns that child's error, so a read error is never mistaken
 * for the end of the data.
 */
#include "table/iter.h"

#include <stdlib.h>
#include <string.h>

typedef struct merge_iter {
    kv_iter base;
    kv_iter **kids;
    size_t n;
    size_t *heap;       /* child indexes; heap[0] is the smallest */
    size_t hn;
    shale_status rc;
} merge_iter;

static bool less(merge_iter *m, size_t a, size_t b)
{
    kv_entry ea, eb;
    kv_iter_entry(m->kids[a], &ea);
    kv_iter_entry(m->kids[b], &eb);
    int c = kv_cmp(&ea, &eb);
    return c < 0 || (c == 0 && a < b);
}

static void sift_down(merge_iter *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < m->hn && less(m, m->heap[l], m->heap[s]))
            s = l;
        if (r < m->hn && less(m, m->heap[r], m->heap[s]))
            s = r;
        if (s == i)
            return;
        size_t t = m->heap[i];
        m->heap[i] = m->heap[s];
        m->heap[s] = t;
        i = s;
    }
}

/* Rebuilds the heap from every valid child; notes the first error. */
static void rebuild(merge_iter *m)
{
    m->hn = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (kv_iter_valid(m->kids[i]))
            m->heap[m->hn++] = i;
        else if (!m->rc)
            m->rc = kv_iter_status(m->kids[i]);
    }
    for (size_t i = m->hn / 2; i-- > 0;)
        sift_down(m, i);
}

static void mg_seek_first(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    m->rc = SHALE_OK;
    for (size_t i = 0; i < m->n; i++)
        kv_iter_seek_first(m->kids[i]);
    rebuild(m);
}

static void mg_seek(kv_iter *it, const uint8_t *key, size_t klen)
{
    merge_iter *m = (merge_iter *)it;
    m->rc = SHALE_OK;
    for (size_t i = 0; i < m->n; i++)
        kv_iter_seek(m->kids[i], key, klen);
    rebuild(m);
}

static void mg_next(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    if (!m->hn || m->rc)
        return;
    size_t top = m->heap[0];
    kv_iter_next(m->kids[top]);
    if (!kv_iter_valid(m->kids[top])) {
        shale_status rc = kv_iter_status(m->kids[top]);
        if (rc) {
            m->rc = rc;
            return;
        }
        m->heap[0] = m->heap[--m->hn];
    }
    if (m->hn)
        sift_down(m, 0);
}

static bool mg_valid(const kv_iter *it)
{
    const merge_iter *m = (const merge_iter *)it;
    return !m->rc && m->hn > 0;
}

static void mg_entry(const kv_iter *it, kv_entry *e)
{
    const merge_iter *m = (const merge_iter *)it;
    kv_iter_entry(m->kids[m->heap[0]], e);
}

static shale_status mg_status(const kv_iter *it)
{
    return ((const merge_iter *)it)->rc;
}

static void mg_destroy(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (size_t i = 0; i < m->n; i++)
        kv_iter_destroy(m->kids[i]);
    free(m->kids);
    free(m->heap);
    free(m);
}

static const kv_iter_ops merge_ops = {mg_seek_first, mg_seek, mg_next, mg_valid,
                                      mg_entry, mg_status, mg_destroy};

kv_iter *merge_iter_new(kv_iter **children, size_t n)
{
    merge_iter *m = calloc(1, sizeof *m);
    if (m) {
        m->kids = malloc((n ? n : 1) * sizeof *m->kids);
        m->heap = malloc((n ? n : 1) * sizeof *m->heap);
    }
    if (!m || !m->kids || !m->heap) {
        for (size_t i = 0; i < n; i++)
            kv_iter_destroy(children[i]);
        if (m) {
            free(m->kids);
            free(m->heap);
        }
        free(m);
        return NULL;
    }
    memcpy(m->kids, children, n * sizeof *children);
    m->n = n;
    m->base.ops = &merge_ops;
    return &m->base;
}

/* ---- array iterator ------------------------------------------------------ */

typedef struct array_iter {
    kv_iter base;
    const kv_entry *e;
    size_t n, pos;
} array_iter;

static void ar_seek_first(kv_iter *it)
{
    ((array_iter *)it)->pos = 0;
}

static void ar_seek(kv_iter *it, const uint8_t *key, size_t klen)
{
    array_iter *a = (array_iter *)it;
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kv_key_cmp(a->e[mid].key, a->e[mid].klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    a->pos = lo;
}

static void ar_next(kv_iter *it)
{
    ((array_iter *)it)->pos++;
}

static bool ar_valid(const kv_iter *it)
{
    const array_iter *a = (const array_iter *)it;
    return a->pos < a->n;
}

static void ar_entry(const kv_iter *it, kv_entry *e)
{
    const array_iter *a = (const array_iter *)it;
    *e = a->e[a->pos];
}

static shale_status ar_status(const kv_iter *it)
{
    (void)it;
    return SHALE_OK;
}

static void ar_destroy(kv_iter *it)
{
    free(it);
}

static const kv_iter_ops array_ops = {ar_seek_first, ar_seek, ar_next, ar_valid,
                                      ar_entry, ar_status, ar_destroy};

kv_iter *array_iter_new(const kv_entry *entries, size_t n)
{
    array_iter *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->base.ops = &array_ops;
    a->e = entries;
    a->n = n;
    a->pos = n;
    return &a->base;
}
