/*
 * fslogtest.h -- helpers for the tests of the file:// store's WAL log mode
 * (objstore_fs_log.c): store roots under one directory per test binary,
 * WAL keys by id, and looks at the segment files under <root>/.wal-log/.
 */
#ifndef SHALE_FSLOGTEST_H
#define SHALE_FSLOGTEST_H

#include "support/testutil.h"

/* A frame's header bytes (docs/format.md, "WAL log segments"): the tests that cut
 * or poke segments compute offsets with it. */
#define FL_HDR 48

/* fl_init makes the directory every fl_new_root lives under (a tu_tmpdir
 * named name); fl_done removes it. */
void fl_init(const char *name);
void fl_done(void);

/* A new store root, created and closed once; log: in the WAL log mode from
 * the start (else explicitly off).  *uri (its file:// URI) and the returned
 * path are malloc'd, the caller frees both. */
char *fl_new_root(char **uri, bool log);
/* Opens uri with default options, fsync on or off; asserts success. */
shale_objstore *fl_open(const char *uri, bool fsync);

/* "wal/<id, 20 digits>.sst" into buf. */
void fl_wk(uint64_t id, char *buf, size_t n);
/* Puts v (a string) at WAL id; asserts success. */
void fl_put_id(shale_objstore *s, uint64_t id, const char *v);
/* Asserts WAL id reads exactly want; fl_expect_missing: get and head both
 * say not-found. */
void fl_expect(shale_objstore *s, uint64_t id, const char *want);
void fl_expect_missing(shale_objstore *s, uint64_t id);

/* Whether root/rel exists (lstat: a dangling link counts). */
bool fl_file_exists(const char *root, const char *rel);
/* root/.wal-log/<no, 20 digits>.seg; malloc'd. */
char *fl_seg_path(const char *root, uint64_t no);
/* Segments numbered 1..999 that exist. */
int fl_count_segs(const char *root);
/* Files in .wal-log other than segments (a spare left behind is one). */
int fl_count_other_files(const char *root);

#endif
