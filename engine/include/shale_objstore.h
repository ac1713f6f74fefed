/*
 * shale_objstore.h -- the object-store seam under the engine.
 *
 * A store is a flat namespace of keys ("manifest/00000000000000000001.manifest")
 * holding immutable-by-convention byte objects.  Backends are chosen by URI:
 *
 *   file:///abs/dir        a local directory (atomic writes, O_EXCL/link create)
 *   s3://bucket/prefix     S3 or an S3-protocol server (libcurl SigV4)
 *   mem://name             in-process, shared by name within a process (tests)
 *
 * and shale_objstore_fault_wrap() puts a fault-injecting layer over any of
 * them.  Every backend returns the same shale_status codes; see
 * docs/object-store.md for the retry policy and what each code means.
 *
 * Keys are validated by every call: non-empty, at most 1024 bytes, no NUL,
 * no leading '/', no "." or ".." path segment, no "//".  A key can never
 * name anything outside the store's root.
 *
 * Thread safety: a shale_objstore handle may be used from many threads at
 * once, and so may a shale_objreader (below).  The fault controller may be
 * changed while calls are in flight.
 */
#ifndef SHALE_OBJSTORE_H
#define SHALE_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "shale_status.h"

SHALE_API_BEGIN

typedef struct shale_objstore shale_objstore;
typedef struct shale_manifest_cache shale_manifest_cache;   /* below */

/* Options for opening a store.  Strings are borrowed for the duration of
 * shale_objstore_open() only (the store copies what it keeps).  NULL or 0
 * means "use the default", which for S3 settings is the environment
 * (AWS_REGION, AWS_ENDPOINT_URL, AWS_CA_BUNDLE).  Credentials come from the
 * options (access and secret key together, optional session token), else
 * AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else web
 * identity: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE
 * (+ AWS_ROLE_SESSION_NAME, AWS_STS_ENDPOINT) through STS, renewed before
 * they expire (docs/object-store.md "Credentials").  The bucket must
 * follow S3's naming rules; the endpoint may not carry userinfo, a path or
 * a query. */
typedef struct shale_objstore_options {
    const char *s3_endpoint;      /* e.g. "http://127.0.0.1:4568"; default AWS */
    const char *s3_region;        /* default "us-east-1" */
    const char *s3_access_key;
    const char *s3_secret_key;
    const char *s3_session_token;
    int s3_path_style;            /* 1 path-style, 0 virtual-host; -1 (default):
                                     path-style iff an endpoint is set */
    int max_retries;              /* retries of retryable failures; default 6 */
    int retry_base_ms;            /* first backoff, doubled each time; default 50 */
    int retry_max_ms;             /* backoff cap; default 2000 */
    int timeout_ms;               /* S3: a request that moves no bytes for this
                                     long fails (a stall, not a size bound);
                                     default 20000 */
    int deadline_ms;              /* S3: no retry starts later than this after
                                     a call began, so a call that never gets an
                                     answer fails within deadline_ms +
                                     timeout_ms; default 60000 */
    bool fs_no_fsync;             /* file://: skip fsync (tests, benchmarks only) */
    const char *s3_ca_file;       /* PEM CA bundle for https endpoints (and STS)
                                     with a private CA; default AWS_CA_BUNDLE,
                                     else the system's */
    /* file://: the WAL log mode (docs/format.md "WAL log segments"): the
     * objects wal/<id:020>.sst kept as records in segment files under
     * <root>/.wal-log/, so a durable put is a pwrite and an fdatasync.  The
     * mode is on for a root iff that directory exists, whatever this field
     * says (every process opening the store must agree).  1: create it at
     * open (turn the mode on); 0 (default): the store only follows the
     * directory, and a database writer turns the mode on for its WAL store
     * on file://; -1: neither the store nor the writer turns it on (for
     * comparisons and for WAL stores that older binaries still write). */
    int fs_wal_log;
    uint32_t reserved_pad;        /* zero */
    /* Manifest versions this process already read or wrote, answered
     * without a GET (shale_manifest_cache_new below); NULL (default): none.
     * Borrowed: it must outlive every store and database handle opened
     * with these options. */
    shale_manifest_cache *manifest_cache;
    /* Zero.  shale_options embeds this struct, so its size is fixed within
     * an ABI version (SHALE_OBJSTORE_OPTIONS_SIZE bytes): a new field takes
     * its place from here, and every older program still passes zeros
     * (= the default) for it. */
    uint64_t reserved[12];
} shale_objstore_options;

#define SHALE_OBJSTORE_OPTIONS_SIZE 192

/* A cache of manifest versions (manifest/<id>.manifest, docs/format.md)
 * for one bounded job, such as one split run: a version is immutable once
 * written (create-if-absent at its id; only a GC deletes it, and only an
 * old one), so the bytes of version N of a store, once read or written by
 * this process through a store opened with the cache (the options'
 * manifest_cache), answer the next read of N without a GET.  What decides
 * the LATEST version -- LISTs, HEADs of the next id, the create-if-absent
 * of a write -- still goes to the store: the cache only saves re-reading a
 * version by id.  Keyed by the store's URI as spelled; a version the cache
 * holds is answered even if deleted since, so scope one cache to a job
 * that keeps what it reads (a pin, or seconds) and never to a store that
 * may be wiped and rebuilt while the cache lives.  max_bytes bounds the
 * manifests held (0: 16 MiB); the oldest go first.  Thread safety: one
 * cache may be used by many stores and threads at once.  Free it after the
 * last handle using it is closed. */
shale_status shale_manifest_cache_new(size_t max_bytes, shale_manifest_cache **out);
void shale_manifest_cache_free(shale_manifest_cache *c);   /* accepts NULL */
/* GETs the cache answered since it was made (for tests and benchmarks). */
uint64_t shale_manifest_cache_hits(const shale_manifest_cache *c);

/* Warnings the library cannot return as the error of a call but an
 * operator must see: S3 credentials sent over plain http to a host that is
 * not loopback, a credential refresh that failed while the old temporary
 * credentials still hold.  By default each is one line
 * "shale: warning: <msg>" on stderr; a handler receives the message
 * (borrowed for the call, never containing a secret) from whichever thread
 * noticed it.  fn NULL restores the default.  Process-wide; set it before
 * opening stores. */
typedef void (*shale_warning_fn)(const char *msg, void *ud);
void shale_set_warning_handler(shale_warning_fn fn, void *ud);

/* Fills documented defaults (all zero/NULL, s3_path_style -1, ...). */
void shale_objstore_options_init(shale_objstore_options *o);

/* Opens the store named by uri.  opts may be NULL (defaults).  On success
 * *out is a new handle; the caller closes it with shale_objstore_close().
 * file:// creates the directory if it does not exist. */
shale_status shale_objstore_open(const char *uri, const shale_objstore_options *opts,
                                 shale_objstore **out);

/* Closes the handle.  Accepts NULL. */
void shale_objstore_close(shale_objstore *s);

/* The URI the store was opened with (normalised: no trailing '/').
 * Borrowed from the handle. */
const char *shale_objstore_uri(const shale_objstore *s);

/* Writes (creates or replaces) an object atomically: readers see the old or
 * the new content, never a mix.  data may be NULL when len is 0. */
shale_status shale_objstore_put(shale_objstore *s, const char *key,
                                const void *data, size_t len);

/* Creates the object only if no object has that key.  Returns
 * SHALE_PRECONDITION_FAILED if one exists.  Of several racing callers
 * (threads or processes) exactly one gets SHALE_OK. */
shale_status shale_objstore_put_if_absent(shale_objstore *s, const char *key,
                                          const void *data, size_t len);

/* Reads a whole object.  On SHALE_OK *data is malloc'd (free with
 * shale_free(); never NULL, even for an empty object) and *len its size. */
shale_status shale_objstore_get(shale_objstore *s, const char *key,
                                void **data, size_t *len);

/* Reads bytes [offset, offset+len) of an object.  Reading past the end
 * returns the bytes that exist (possibly 0); an offset past the end is
 * SHALE_INVALID_ARGUMENT.  Ownership as shale_objstore_get(). */
shale_status shale_objstore_get_range(shale_objstore *s, const char *key,
                                      uint64_t offset, uint64_t len,
                                      void **data, size_t *got);

/* Size (and modification time, ms since the epoch) of an object.  Either
 * out-pointer may be NULL. */
shale_status shale_objstore_head(shale_objstore *s, const char *key,
                                 uint64_t *size, int64_t *mtime_ms);

/* Deletes an object.  Deleting a missing object is SHALE_OK. */
shale_status shale_objstore_delete(shale_objstore *s, const char *key);
/* Deletes keys[0..n) (the caller's, read during the call), as n calls of
 * shale_objstore_delete() would: missing ones are SHALE_OK, each is
 * counted as one DELETE, and each deletion is durable when the call
 * returns.  A backend may do them together: on file:// the WAL log mode
 * appends the records' tombstones in one run and makes them durable with
 * one fdatasync (where n deletes made n); on s3:// it is one DeleteObjects
 * request per 1,000 keys.  On failure any of the keys may have been
 * deleted (the others of a batch are), none is known to be. */
shale_status shale_objstore_delete_many(shale_objstore *s, const char *const *keys, size_t n);

typedef struct shale_objinfo {
    char *key;          /* full key, including the prefix */
    uint64_t size;
    int64_t mtime_ms;   /* last modification, ms since the epoch */
} shale_objinfo;

typedef struct shale_objlist {
    shale_objinfo *items;  /* sorted by key, bytewise ascending */
    size_t count;
    char *next_cursor;     /* NULL when this was the last page */
} shale_objlist;

/* Lists one page of objects whose key starts with prefix ("" = all), in key
 * order.  cursor is NULL for the first page, else the previous page's
 * next_cursor, which on every backend is that page's last key: any key may
 * be given, and the page then starts after it (to list what is newer than
 * a key one knows, in one request).  max_keys 0 means the backend's default (1000).  The caller
 * frees the page with shale_objlist_free(). */
shale_status shale_objstore_list(shale_objstore *s, const char *prefix,
                                 const char *cursor, size_t max_keys,
                                 shale_objlist *page);

/* Lists every object under prefix, following pages.  Free with
 * shale_objlist_free(). */
shale_status shale_objstore_list_all(shale_objstore *s, const char *prefix,
                                     shale_objlist *out);

/* Frees the contents of a list (not the struct itself).  Accepts NULL. */
void shale_objlist_free(shale_objlist *l);

/* Returns SHALE_OK if key is acceptable, else SHALE_INVALID_ARGUMENT with a
 * message that says why. */
shale_status shale_objstore_check_key(const char *key);

/* Checks once that the store honours put-if-absent (writes and removes a
 * probe object under ".probe/").  SHALE_UNSUPPORTED if a second conditional
 * create of the probe succeeded. */
shale_status shale_objstore_probe_conditional(shale_objstore *s);

/* ---- Ranged reads through an open handle ---------------------------------
 * A shale_objreader reads one object by ranges without naming it again.  On
 * file:// it holds an open file descriptor, so a read is one pread() where
 * shale_objstore_get_range() walks the path, opens, fstats and closes the
 * file each time.  An s3:// handle reads ahead once reads are sequential
 * (each starts where the previous ended: verify, scans): it fetches a window
 * (256 KiB doubling to 4 MiB, freed once read to its end) and serves the
 * reads inside it without a request; random reads are one ranged GET each.  Every other backend
 * (mem://, fault wrappers) gets a generic handle that remembers the key and
 * makes one ranged GET per read, exactly as shale_objstore_get_range()
 * would; in particular a fault wrapper's rules see (and can fail) every
 * read of a handle opened on it.
 *
 * Handles are meant for objects that are never rewritten (SSTs).  What a
 * handle reads after its key is replaced or deleted depends on the backend:
 * file:// keeps reading the object it opened (writes rename a new file over
 * the key, so the descriptor still names the old one), the generic handle
 * reads whatever the key holds now (SHALE_NOT_FOUND once deleted).
 *
 * Requests are counted in shale_objstats as the calls they stand for: an
 * open that looks at the object is one HEAD, every read one GET_RANGE (with
 * its bytes), and both are retried like those calls.
 *
 * Thread safety: a handle may be used by many threads at once (reads are
 * positional, nothing moves); shale_objreader_close() must not race with a
 * read of the same handle.  The store must outlive its handles.
 */
typedef struct shale_objreader shale_objreader;

/* Opens key in s for ranged reads.  size_hint is the object's size when the
 * caller knows it (from a manifest), else 0.  Without a hint the object is
 * looked at (a HEAD): SHALE_NOT_FOUND if it does not exist.  With a hint a
 * backend that would need a request only to learn the size (all but
 * file://) makes none and takes the hint on trust, so a missing object
 * shows as SHALE_NOT_FOUND from the first read instead; file:// always
 * opens the file and reports a missing one here.  On SHALE_OK *out is a new
 * handle (close with shale_objreader_close()); s is borrowed, key copied.
 * At most about half the process's descriptor limit (RLIMIT_NOFILE) is held
 * by file:// handles at once; past that a handle reads by path like
 * shale_objstore_get_range(), slower but correct. */
shale_status shale_objreader_open(shale_objstore *s, const char *key, uint64_t size_hint,
                                  shale_objreader **out);
/* Old name of shale_objreader_open(), kept for callers that use it. */
shale_status shale_objstore_reader_open(shale_objstore *s, const char *key,
                                        uint64_t size_hint, shale_objreader **out);

/* Reads bytes [offset, offset+len) of the handle's object, with the
 * contract of shale_objstore_get_range(): a range that runs past the end
 * returns the bytes that exist (*got < len, possibly 0: a short read, not
 * an error); an offset past the end is SHALE_INVALID_ARGUMENT.  On SHALE_OK
 * *data is malloc'd (free with shale_free(); never NULL, even when *got is
 * 0).  Safe to call from many threads on one handle. */
shale_status shale_objreader_read(shale_objreader *r, uint64_t offset, uint64_t len,
                                  void **data, size_t *got);

/* The object's size as known at open (measured by file:// and by a HEAD,
 * else the caller's hint).  No request. */
uint64_t shale_objreader_size(const shale_objreader *r);

/* Closes the handle (and its descriptor).  Accepts NULL. */
void shale_objreader_close(shale_objreader *r);

/* Counters of requests by operation and result, for metrics. */
typedef enum shale_objop {
    SHALE_OP_PUT = 0, SHALE_OP_PUT_IF_ABSENT, SHALE_OP_GET, SHALE_OP_GET_RANGE,
    SHALE_OP_HEAD, SHALE_OP_LIST, SHALE_OP_DELETE, SHALE_OP_COUNT
} shale_objop;

const char *shale_objop_name(shale_objop op);

/* Process-wide counters: requests[op][0] succeeded (incl. NOT_FOUND and
 * PRECONDITION_FAILED results), requests[op][1] failed; bytes read and
 * written.  Safe to read at any time (relaxed atomics). */
typedef struct shale_objstats {
    uint64_t requests[SHALE_OP_COUNT][2];
    uint64_t bytes_read, bytes_written, retries;
} shale_objstats;
void shale_objstore_global_stats(shale_objstats *out);

/* ---- Fault injection ------------------------------------------------------
 * shale_objstore_fault_wrap() returns a store that forwards to inner and
 * fails calls according to rules.  The wrapper takes ownership of inner.
 * Rules are checked in the order added; the first that matches a call acts.
 */
typedef struct shale_fault shale_fault;

#define SHALE_FAULT_OPS_ALL 0xffu
#define SHALE_FAULT_OP(op) (1u << (op))

typedef struct shale_fault_rule {
    unsigned ops;            /* mask of SHALE_FAULT_OP(op); 0 = all */
    const char *key_prefix;  /* NULL or "" = any key (copied) */
    uint64_t nth;            /* act on the nth matching call (1-based); 0 = every */
    uint64_t count;          /* act this many times, then retire; 0 = unlimited */
    shale_status status;     /* code to return (e.g. SHALE_IO, SHALE_RETRYABLE) */
    bool after_effect;       /* perform the call first, then report status:
                                "the write took effect but the caller saw an error" */
    uint32_t latency_ms;     /* sleep this long before the call (status may be OK) */
    uint64_t every;          /* act on every Nth matching call (0 = off) */
} shale_fault_rule;

/* *ctl is owned by the wrapper store and lives until it is closed. */
shale_status shale_objstore_fault_wrap(shale_objstore *inner, shale_objstore **out,
                                       shale_fault **ctl);
/* Adds a rule; returns its id (>= 0) in *id if id != NULL. */
shale_status shale_fault_add(shale_fault *f, const shale_fault_rule *rule, int *id);
void shale_fault_clear(shale_fault *f);
/* How many calls the wrapper has seen / failed so far. */
uint64_t shale_fault_calls(const shale_fault *f);
uint64_t shale_fault_injected(const shale_fault *f);

/* ---- Fault URIs -----------------------------------------------------------
 * "fault+<uri>" (e.g. "fault+file:///tmp/db") opens <uri> behind a fault
 * wrapper.  Every handle opened on the same fault URI in a process shares
 * one wrapper and so one set of rules, which is how a test injects faults
 * into stores the engine opens itself (clones, readers, the agent).  When
 * the shared wrapper is first made, rules from the environment variable
 * SHALE_FAULTS are added (grammar: docs/object-store.md).
 *
 * Returns the controller for a fault URI, creating the shared wrapper if
 * needed (opts as for shale_objstore_open, may be NULL).  NULL on error,
 * with shale_errmsg() set.  The controller lives until the process ends. */
shale_fault *shale_fault_for_uri(const char *fault_uri, const shale_objstore_options *opts);

SHALE_API_END
#endif /* SHALE_OBJSTORE_H */
