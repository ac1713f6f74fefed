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
 * Positions: *marks maps a path ("children[1].range.end") to [line,
 * column], both 1-based.  JSON input gets no marks (jansson does not keep
 * them) except for syntax errors, which always carry line and column.
 */
#ifndef SHALE_AGENT_YAMLJSON_H
#define SHALE_AGENT_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>
#include "shale_status.h"

/* Parses text (YAML, or JSON if its first non-space byte is '{').  origin
 * names the source in messages.  On success *out (and *marks, if marks is
 * non-NULL) are new references.  Syntax errors: SHALE_INVALID_ARGUMENT
 * "origin: line L column C: what". */
shale_status yamljson_parse(const char *origin, const char *text, size_t len, json_t **out,
                            json_t **marks);

/* Formats " (line L, column C)" for path into buf, or "" if unknown. */
void yamljson_where(json_t *marks, const char *path, char *buf, size_t n);

#endif
