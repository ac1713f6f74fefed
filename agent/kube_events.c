/* kube_events.c -- see kube_events.h.  Linked lists: an agent has a
 * handful of objects and events. */
#include "kube_events.h"
#include "agent_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_WINDOW_MS (10 * 60 * 1000)   /* repeats within it are aggregated */
#define EV_BURST 25.0
#define EV_REFILL_MS (5 * 60 * 1000)    /* one more event per 5 minutes */

typedef struct evrec {
    struct evrec *next;
    char *uid, *key;          /* key: type \n reason \n message */
    char name[300];
    int count;
    int64_t last_ms;
} evrec;

typedef struct bucket {
    struct bucket *next;
    char *uid;
    double tokens;
    int64_t at_ms;
} bucket;

struct kube_evagg {
    evrec *recs;
    bucket *buckets;
};

kube_evagg *kube_evagg_new(void)
{
    return calloc(1, sizeof(kube_evagg));
}

static void evrec_free(evrec *r)
{
    free(r->uid);
    free(r->key);
    free(r);
}

void kube_evagg_forget(kube_evagg *a, const char *uid)
{
    for (evrec **p = &a->recs; *p;) {
        if (!strcmp((*p)->uid, uid)) {
            evrec *r = *p;
            *p = r->next;
            evrec_free(r);
        } else {
            p = &(*p)->next;
        }
    }
    for (bucket **p = &a->buckets; *p; p = &(*p)->next)
        if (!strcmp((*p)->uid, uid)) {
            bucket *b = *p;
            *p = b->next;
            free(b->uid);
            free(b);
            break;
        }
}

void kube_evagg_free(kube_evagg *a)
{
    if (!a)
        return;
    while (a->recs) {
        evrec *r = a->recs;
        a->recs = r->next;
        evrec_free(r);
    }
    while (a->buckets) {
        bucket *b = a->buckets;
        a->buckets = b->next;
        free(b->uid);
        free(b);
    }
    free(a);
}

kube_ev_action kube_evagg_decide(kube_evagg *a, const char *uid, const char *objname,
                                 const char *type, const char *reason, const char *message,
                                 int64_t now_ms, char *name_out, size_t n, int *count)
{
    size_t kl = strlen(type) + strlen(reason) + strlen(message) + 3;
    char *key = malloc(kl);
    if (!key)
        return KUBE_EV_DROP;
    snprintf(key, kl, "%s\n%s\n%s", type, reason, message);
    /* Old records go: a repeat after the window is a new event. */
    for (evrec **p = &a->recs; *p;) {
        if (now_ms - (*p)->last_ms > EV_WINDOW_MS) {
            evrec *r = *p;
            *p = r->next;
            evrec_free(r);
        } else {
            p = &(*p)->next;
        }
    }
    for (evrec *r = a->recs; r; r = r->next)
        if (!strcmp(r->uid, uid) && !strcmp(r->key, key)) {
            free(key);
            r->count++;
            r->last_ms = now_ms;
            snprintf(name_out, n, "%s", r->name);
            *count = r->count;
            return KUBE_EV_PATCH;   /* aggregated: costs no token */
        }
    bucket *b = a->buckets;
    while (b && strcmp(b->uid, uid))
        b = b->next;
    if (!b && (b = calloc(1, sizeof *b)) && (b->uid = agent_strdup(uid))) {
        b->tokens = EV_BURST;
        b->at_ms = now_ms;
        b->next = a->buckets;
        a->buckets = b;
    } else if (b && !b->uid) {
        free(b);
        b = NULL;
    }
    if (!b) {
        free(key);
        return KUBE_EV_DROP;
    }
    b->tokens += (double)(now_ms - b->at_ms) / EV_REFILL_MS;
    if (b->tokens > EV_BURST)
        b->tokens = EV_BURST;
    b->at_ms = now_ms;
    if (b->tokens < 1.0) {
        free(key);
        return KUBE_EV_DROP;
    }
    b->tokens -= 1.0;
    evrec *r = calloc(1, sizeof *r);
    if (!r || !(r->uid = agent_strdup(uid))) {
        free(r);
        free(key);
        return KUBE_EV_DROP;
    }
    r->key = key;
    r->count = 1;
    r->last_ms = now_ms;
    uint64_t rnd;
    agent_random_bytes(&rnd, sizeof rnd);
    snprintf(r->name, sizeof r->name, "%.200s.%016" PRIx64, objname, rnd);
    r->next = a->recs;
    a->recs = r;
    snprintf(name_out, n, "%s", r->name);
    *count = 1;
    return KUBE_EV_POST;
}

