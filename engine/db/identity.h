/*
 * identity.h -- store identity inside the engine (the public half is in
 * shale_admin.h; the object's format in docs/format.md "Store identity").
 *
 * The writer open (db.c) and the clone (clone.c) call identity_ensure() on
 * stores they already hold open; tools go through shale_admin.h, which
 * opens stores by URI without creating anything.
 *
 * Thread safety: reentrant; the store's put-if-absent decides races.
 */
#ifndef SHALE_DB_IDENTITY_H
#define SHALE_DB_IDENTITY_H

#include "db/paths.h"
#include "shale_admin.h"

#define IDENTITY_KEY PATH_IDENTITY

/* The canonical URI (shale_admin.h); o may be NULL.  *out malloc'd. */
shale_status identity_canonical(const char *uri, const shale_objstore_options *o,
                                char **out);

/* Reads the identity object of an open store.  SHALE_NOT_FOUND if none;
 * SHALE_CORRUPT naming the store if it does not parse. */
shale_status identity_read(shale_objstore *s, shale_store_identity *out);

/* For adopt: a child-claim of any owner may be turned into kind (the
 * clone, which runs under the claim its split made). */
extern const char identity_any_claim[];

/* Makes sure the open store s (named uri) carries an identity of kind:
 * writes a new one (create-if-absent) when it has none, turns a
 * child-claim into kind (same UUID, the claim kept: the clone under that
 * claim finished) when adopt allows it, and leaves any other identity as it
 * is (the engine does not refuse a store for a db or wal identity; the
 * tools check before they act).  adopt: identity_any_claim (the clone), a
 * claim's owner text (only that claim), or NULL (none).  A claim adopt does
 * not allow is SHALE_CONFLICT naming the claim -- also when it appeared
 * between the read and a create-if-absent that lost to it: a writer racing
 * a split's claim must not take the store. */
shale_status identity_ensure(shale_objstore *s, const char *uri,
                             const shale_objstore_options *o, shale_store_kind kind,
                             const char *adopt);

/* SHALE_CONFLICT naming uri and the split that claimed it (id a
 * child-claim): the store receives its database from that split's clone. */
shale_status identity_refuse_claim(const char *uri, const shale_store_identity *id);

/* identity_ensure() with its read done already: read_rc and *read are
 * identity_read()'s answer on s (*read taken over and cleared; it is only
 * meaningful when read_rc is SHALE_OK).  The writer open reads the
 * identity beside the conditional-write probe and writes (if it must) only
 * after the probe passed. */
shale_status identity_settle(shale_objstore *s, const char *uri,
                             const shale_objstore_options *o, shale_store_kind kind,
                             shale_status read_rc, shale_store_identity *read,
                             const char *adopt);

/* For clone.c, before a fresh clone writes its first manifest: SHALE_OK
 * if s may receive a new database (no identity, or a child-claim);
 * SHALE_CONFLICT naming uri when its identity says it is a database's
 * store or a WAL store already (the parent's own, or another one). */
shale_status identity_check_clone_target(shale_objstore *s, const char *uri);

#endif
