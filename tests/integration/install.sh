#!/usr/bin/env bash
# install.sh -- libshale as an embedder gets it: `make install` into a
# temporary prefix (with DESTDIR), the example built from the installed
# files through pkg-config and run, the soname, and the exported surface:
# every dynamic symbol of libshale.so starts with shale_, and every function
# the public headers declare is exported.  Then `make uninstall` leaves
# nothing behind.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
T=$(tmpdir)
PREFIX=/opt/shale-test
DEST=$T/dest
if make -s install DESTDIR="$DEST" PREFIX="$PREFIX" >"$T/install.log" 2>&1; then
  ok "make install DESTDIR=… PREFIX=$PREFIX"
else
  notok "make install"; cat "$T/install.log"; finish
fi
LIB=$DEST$PREFIX/lib
for f in include/shale.h include/shale_status.h include/shale_objstore.h include/shale_export.h \
         lib/libshale.a lib/libshale.so lib/pkgconfig/shale.pc bin/shale bin/shale-agent; do
  check "installed $f" test -e "$DEST$PREFIX/$f"
done
real=$(readlink -f "$LIB/libshale.so")
case $real in *libshale.so.[0-9]*.[0-9]*.[0-9]*) ok "libshale.so -> versioned file ${real##*/}" ;;
  *) notok "libshale.so is not a link to a versioned file ($real)" ;; esac
soname=$(readelf -d "$LIB/libshale.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
case $soname in libshale.so.[0-9]*) ok "soname $soname" ;; *) notok "soname '$soname'" ;; esac
check "the soname's link exists in libdir" test -e "$LIB/$soname"

# The exported surface.
nm -D --defined-only "$LIB/libshale.so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u >"$T/exported"
stray=$(grep -v '^shale_' "$T/exported" | head -20)
if [ -z "$stray" ] && [ -s "$T/exported" ]; then ok "every exported symbol starts with shale_ ($(wc -l <"$T/exported") symbols)"
else notok "symbols exported without the shale_ prefix: $(echo $stray)"; fi
# Functions the public headers declare (a name followed by '(' at the start
# of a declaration, not by '(*': that is a function-pointer type returning
# a shale_ type), preprocessed so comments do not count.
gcc -E -P -D_GNU_SOURCE -I"$DEST$PREFIX/include" -x c - <<<'#include <shale.h>
#include <shale_admin.h>' 2>/dev/null >"$T/pp.c" ||
  gcc -E -P -D_GNU_SOURCE -I"$DEST$PREFIX/include" -x c - <<<'#include <shale.h>' >"$T/pp.c"
grep -oE '\bshale_[a-z0-9_]+ *\([^*]' "$T/pp.c" | sed -E 's/ *\(.*//' | sort -u >"$T/declared"
missing=$(comm -23 "$T/declared" "$T/exported" | head -20)
if [ -z "$missing" ] && [ -s "$T/declared" ]; then ok "every function of the public headers is exported ($(wc -l <"$T/declared"))"
else notok "declared in the public headers but not exported: $(echo $missing)"; fi

if make -s uninstall DESTDIR="$DEST" PREFIX="$PREFIX" >/dev/null 2>&1 &&
   [ -z "$(find "$DEST" -type f -o -type l)" ]; then ok "make uninstall removes every installed file"
else notok "make uninstall left: $(find "$DEST" -type f -o -type l | head)"; fi

# The example, built from files installed in a prefix of their own (no
# DESTDIR: shale.pc then names the real paths, as after a package install).
PREFIX=$T/prefix
make -s install PREFIX="$PREFIX" >"$T/install2.log" 2>&1 || { notok "make install PREFIX=$PREFIX"; cat "$T/install2.log"; }
LIB=$PREFIX/lib
export PKG_CONFIG_PATH=$LIB/pkgconfig
cflags=$(pkg-config --cflags shale) && libs=$(pkg-config --libs shale)
case "$cflags $libs" in *"$PREFIX/include"*"-lshale"*) ok "pkg-config --cflags --libs shale: $cflags $libs" ;;
  *) notok "pkg-config gave '$cflags' '$libs'" ;; esac
check "pkg-config --modversion matches shale.h" test "$(pkg-config --modversion shale)" = \
  "$(sed -n 's/^#define SHALE_VERSION "\(.*\)"/\1/p' engine/include/shale.h)"
rm -f examples/embed
if make -s -C examples embed >"$T/ex.log" 2>&1; then ok "examples/embed builds from the installed library"
else notok "examples/embed does not build"; cat "$T/ex.log"; fi
# It must not have picked up the source tree's headers.
check "the example needs nothing from the source tree" \
  bash -c "! grep -q 'engine/include' '$T/ex.log'"
check "embed links the installed libshale.so.N" \
  bash -c "LD_LIBRARY_PATH='$LIB' ldd examples/embed | grep -q '$LIB/$soname'"
mkdir -p "$T/run"
if LD_LIBRARY_PATH=$LIB examples/embed "$T/run" >"$T/run.out" 2>&1; then ok "embed runs"
else notok "embed failed"; cat "$T/run.out"; fi
check "embed read a key back" grep -q '^get user0042 = value-42$' "$T/run.out"
check "embed scanned three keys" test "$(grep -c '^scan ' "$T/run.out")" -eq 3
check "the left clone holds 500 keys" grep -q "left: 500 keys" "$T/run.out"
check "the right clone holds 500 keys" grep -q "right: 500 keys" "$T/run.out"
check "the clones copied no bytes" bash -c "! grep -E 'clone .*bytes copied' '$T/run.out' | grep -vq ' 0 bytes copied'"
# The static library through pkg-config --static.
rm -f examples/embed
if make -s -C examples embed STATIC=1 >"$T/ex-static.log" 2>&1 && ! ldd examples/embed | grep -q libshale; then
  ok "examples/embed links the static library through pkg-config --static"
else notok "static example"; cat "$T/ex-static.log"; fi
rm -f examples/embed
rm -rf "$T"
finish
