/* yamljson.c -- see yamljson.h. */
#include "yamljson.h"
#include "agent_util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 32          /* collections inside collections */
#define MAX_NODES 65536       /* a request or config has a few hundred */

typedef struct conv {
    const char *origin;
    yaml_document_t *doc;
    json_t *marks;
    shale_status rc;
} conv;

static void mark(conv *c, const char *path, const yaml_node_t *n)
{
    if (!c->marks)
        return;
    json_object_set_new(c->marks, path[0] ? path : "(root)",
                        json_pack("[ii]", (int)n->start_mark.line + 1,
                                  (int)n->start_mark.column + 1));
}

static json_t *fail(conv *c, const yaml_node_t *n, const char *what)
{
    if (!c->rc)
        c->rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s: line %d column %d: %s", c->origin,
                                (int)n->start_mark.line + 1, (int)n->start_mark.column + 1, what);
    return NULL;
}

static json_t *scalar(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(v, len);
    if (len == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
        !strcmp(v, "NULL"))
        return json_null();
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
        return json_true();
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
        return json_false();
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*v && !*end && !errno && (v[0] != '0' || len == 1))
        return json_integer(x);
    return json_stringn(v, len);
}

static json_t *node_json(conv *c, yaml_node_t *n, const char *path, int depth)
{
    if (!n)
        return NULL;
    if (depth > MAX_DEPTH)
        return fail(c, n, "nesting too deep");
    if (n->tag && strncmp((const char *)n->tag, "tag:yaml.org,2002:", 18))
        return fail(c, n, "YAML tags are not supported");
    mark(c, path, n);
    char sub[512];
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return scalar(n);
    case YAML_SEQUENCE_NODE: {
        json_t *a = json_array();
        size_t i = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             it < n->data.sequence.items.top; it++, i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            json_t *v = node_json(c, yaml_document_get_node(c->doc, *it), sub, depth + 1);
            if (!v) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                json_decref(o);
                return fail(c, k ? k : n, "mapping keys must be scalars");
            }
            const char *key = (const char *)k->data.scalar.value;
            if (json_object_get(o, key)) {
                json_decref(o);
                char msg[300];
                snprintf(msg, sizeof msg, "duplicate key '%.200s'", key);
                return fail(c, k, msg);
            }
            snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
            json_t *v = node_json(c, yaml_document_get_node(c->doc, p->value), sub, depth + 1);
            if (!v) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, key, v);
        }
        return o;
    }
    default:
        return fail(c, n, "empty document");
    }
}

/* The pre-scan: one pass over libyaml's event stream, refusing what the
 * loader must never see: aliases and anchors (libyaml would expand them),
 * nesting deeper than MAX_DEPTH and more than MAX_NODES nodes.  It stops
 * at the first event past a limit.  Why events and not a byte scan: libyaml
 * is quadratic in flow nesting only while it builds a deep document (each
 * token looks at every open flow level); the event parser reads at most
 * 1,024 bytes ahead of the event it returns (a simple key's lookahead), so
 * stopping at depth 33 costs milliseconds whatever follows (1 MiB of '['
 * is refused in under 1 ms; the loader took minutes on it).  A byte-level
 * YAML lexer would have to agree with libyaml on quotes, comments and
 * block scalars to count brackets, and where it disagreed it could be
 * walked past; the event stream is libyaml's own reading. */
static shale_status prescan(const char *origin, const char *text, size_t len)
{
    if (len > YAMLJSON_MAX_BYTES)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "%s: larger than %u bytes", origin,
                               (unsigned)YAMLJSON_MAX_BYTES);
    yaml_parser_t p;
    yaml_event_t ev;
    if (!yaml_parser_initialize(&p))
        return AGENT_OOM();
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    shale_status rc = SHALE_OK;
    int depth = 0;
    size_t nodes = 0;
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s: line %d column %d: %s", origin,
                                 (int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1,
                                 p.problem ? p.problem : "YAML syntax error");
            break;
        }
        yaml_event_type_t t = ev.type;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        bool anchored = (t == YAML_SCALAR_EVENT && ev.data.scalar.anchor) ||
                        (t == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor) ||
                        (t == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor);
        yaml_event_delete(&ev);
        if (t == YAML_ALIAS_EVENT || anchored) {
            rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s: line %d column %d: YAML anchors and "
                                                         "aliases are not supported", origin, line,
                                 col);
            break;
        }
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > MAX_DEPTH) {
                rc = shale_error_set(SHALE_INVALID_ARGUMENT,
                                     "%s: line %d column %d: nesting deeper "
                                     "than %d levels", origin, line, col,
                                     MAX_DEPTH);
                break;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        if ((t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
             t == YAML_MAPPING_START_EVENT) && ++nodes > MAX_NODES) {
            rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s: line %d column %d: more than %d "
                                                         "values", origin, line, col, MAX_NODES);
            break;
        }
        if (t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    return rc;
}

shale_status yamljson_parse(const char *origin, const char *text, size_t len, json_t **out,
                            json_t **marks)
{
    *out = NULL;
    if (marks)
        *marks = NULL;
    if (len > YAMLJSON_MAX_BYTES)
        return shale_error_set(SHALE_INVALID_ARGUMENT, "%s: larger than %u bytes", origin,
                               (unsigned)YAMLJSON_MAX_BYTES);
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i < len && text[i] == '{') {
        json_error_t err;
        json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
        if (!j)
            return shale_error_set(SHALE_INVALID_ARGUMENT, "%s: line %d column %d: %s", origin,
                                   err.line, err.column, err.text);
        *out = j;
        if (marks)
            *marks = json_object();
        return SHALE_OK;
    }
    shale_status rc = prescan(origin, text, len);
    if (rc)
        return rc;
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p))
        return AGENT_OOM();
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s: line %d column %d: %s", origin,
                             (int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1,
                             p.problem ? p.problem : "YAML syntax error");
        yaml_parser_delete(&p);
        return rc;
    }
    conv c = {origin, &doc, marks ? json_object() : NULL, SHALE_OK};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    json_t *j = root ? node_json(&c, root, "", 0) : NULL;
    if (!root)
        c.rc = shale_error_set(SHALE_INVALID_ARGUMENT, "%s: the document is empty", origin);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    if (c.rc || !j) {
        json_decref(j);
        json_decref(c.marks);
        return c.rc ? c.rc : AGENT_OOM();
    }
    *out = j;
    if (marks)
        *marks = c.marks;
    return SHALE_OK;
}

void yamljson_where(json_t *marks, const char *path, char *buf, size_t n)
{
    json_t *m = marks ? json_object_get(marks, path) : NULL;
    if (m && json_array_size(m) == 2)
        snprintf(buf, n, " (line %d, column %d)", (int)json_integer_value(json_array_get(m, 0)),
                 (int)json_integer_value(json_array_get(m, 1)));
    else if (n)
        buf[0] = '\0';
}
