/*
 * objstore_fault.h -- the fault wrapper's text form of rules, for tests and
 * for the SHALE_FAULTS environment variable (fault+ URIs).
 *
 * Grammar: rules separated by ';', each "op:prefix[:option...]":
 *   op       put | put_if_absent | get | get_range | head | list | delete |
 *            write (put and put_if_absent) | read (get, get_range, head,
 *            list) | any
 *   prefix   key prefix the rule applies to ("" = any key)
 *   options  nth=N       act on the Nth matching call (1-based)
 *            every=N     act on every Nth matching call
 *            count=N     act N times then retire (default: every time,
 *                        or once when nth is given)
 *            latency=MS  sleep MS before the call
 *            after       perform the call, then report the error
 *            unconditional  a put_if_absent is made as a plain put (a store
 *                        that ignores If-None-Match)
 *            io | retryable | timeout | unauthorized | corrupt | notfound |
 *            ok          the status to return (default io)
 * Example: "put_if_absent:wal/:nth=3:io;get:manifest/:count=2:retryable"
 */
#ifndef SHALE_OBJSTORE_FAULT_H
#define SHALE_OBJSTORE_FAULT_H

#include "shale_objstore.h"

/* Adds the rules in spec to f.  SHALE_INVALID_ARGUMENT naming the bad
 * token; rules before it stay added. */
shale_status objstore_fault_parse(shale_fault *f, const char *spec);

#endif
