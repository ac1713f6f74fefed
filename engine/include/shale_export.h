/*
 * shale_export.h -- what leaves libshale.so.
 *
 * libshale is built with -fvisibility=hidden: a symbol is exported only if
 * it is declared between SHALE_API_BEGIN and SHALE_API_END, which every
 * public header (shale.h, shale_status.h, shale_objstore.h, shale_admin.h)
 * puts around its declarations.  Internal modules (util/, table/, db/,
 * objstore/) declare their functions in private headers and stay hidden, so
 * an embedder's own buf_append or wal_key never clashes with ours.  The
 * install test (tests/integration/install.sh) checks that every exported
 * symbol starts with shale_ and that every function a public header
 * declares is exported.
 *
 * The macros also open and close extern "C" for C++ callers.
 */
#ifndef SHALE_EXPORT_H
#define SHALE_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define SHALE_PRAGMA_(x) _Pragma(#x)
#define SHALE_VISIBILITY_PUSH_ SHALE_PRAGMA_(GCC visibility push(default))
#define SHALE_VISIBILITY_POP_  SHALE_PRAGMA_(GCC visibility pop)
#else
#define SHALE_VISIBILITY_PUSH_
#define SHALE_VISIBILITY_POP_
#endif

#ifdef __cplusplus
#define SHALE_API_BEGIN extern "C" { SHALE_VISIBILITY_PUSH_
#define SHALE_API_END   SHALE_VISIBILITY_POP_ }
#else
#define SHALE_API_BEGIN SHALE_VISIBILITY_PUSH_
#define SHALE_API_END   SHALE_VISIBILITY_POP_
#endif

#endif /* SHALE_EXPORT_H */
