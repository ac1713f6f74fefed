/*
 * yamljson.h -- YAML (libyaml) or JSON (jansson) text into one jansson tree,
 * with the source position of every node, so that requests and configs are
 * validated by one code path whatever their syntax.
 *
 * YAML plain scalars become JSON values as YAML 1.2's core schema reads
 * them: true/false, null/~/empty, integers, everything else a string;
 * quoted scalars are always strings.  Anchors, aliases and tags are
 * refused (a request or config has no use for them, and aliases invite
 * billion-laughs expansion).  Mapping keys must be scalars and unique.
 *
 * Limits, checked by a pre-scan of libyaml's event stream that stops at the
 * first event past one, before the document loader (quadratic in flow
 * nesting) runs: at most YAMLJSON_MAX_BYTES, 32 levels of nesting, 65,536
 * values.  1 MiB of "[[[[" is refused in about a millisecond.
 *
 * Positions: *marks maps a path ("children[1].range.end") to [line,
 * column], both 1-based.  JSON input gets no marks (jansson does not keep
 * them) except for syntax errors, which always carry line and column.
 */
#ifndef SHALE_AGENT_YAMLJSON_H
#define SHALE_AGENT_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>
#include "shale_status.h"

#define YAMLJSON_MAX_BYTES (8u << 20)

/* Parses text (YAML, or JSON if its first non-space byte is '{').  origin
 * names the source in messages.  On success *out (and *marks, if marks is
 * non-NULL) are new references.  Syntax errors: SHALE_INVALID_ARGUMENT
 * "origin: line L column C: what". */
shale_status yamljson_parse(const char *origin, const char *text, size_t len, json_t **out,
                            json_t **marks);

/* Formats " (line L, column C)" for path into buf, or "" if unknown. */
void yamljson_where(json_t *marks, const char *path, char *buf, size_t n);

#endif
