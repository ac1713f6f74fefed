#!/usr/bin/env bash
# public_headers.sh -- programs on the engine (shale-agent, the shale CLI)
# use its public headers only (engine/include; docs/library.md, "What tools
# get").  Two checks: no source under agent/ or engine/cli/ includes an
# engine-private header, and the compile command make uses for them finds
# none (a private include fails the build), while a public one compiles.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
T=$(tmpdir)

hits=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(util|db|table|objstore)/' \
         agent engine/cli 2>/dev/null)
if [ -z "$hits" ]; then ok "no engine-private include under agent/ or engine/cli/"
else notok "engine-private includes: $(echo "$hits" | head -5 | tr '\n' ' ')"; fi

printf '#include "util/misc.h"\nint probe(void) { return 0; }\n' >"$T/private.c"
printf '#include "db/manifest.h"\nint probe(void) { return 0; }\n' >"$T/private_db.c"
printf '#include "shale.h"\n#include "shale_admin.h"\nint probe(void) { return shale_key_compare("a", 1, "b", 1); }\n' >"$T/public.c"

# The command make runs for one object, with the probe file in its place.
compile_cmd() {  # compile_cmd OBJ SRC
  make -s -n -B "$1" 2>/dev/null | grep -E "(^| )-c $2( |$)" | head -1
}
for pair in build/agent/log.o:agent/log.c build/engine/cli/shale.o:engine/cli/shale.c; do
  obj=${pair%%:*} src=${pair#*:}
  cmd=$(compile_cmd "$obj" "$src")
  if [ -z "$cmd" ]; then notok "make -n prints the compile command of $obj"; continue; fi
  case " $cmd " in
    *" -Iengine "*) notok "$src compiles with -Iengine: $cmd" ;;
    *) ok "$src compiles without -Iengine" ;;
  esac
  for probe in private private_db public; do
    run=${cmd/ -c $src / -c $T/$probe.c }
    run=${run/ -o $obj/ -o $T/$probe.o}
    if (eval "$run") >"$T/$probe.log" 2>&1; then built=yes; else built=no; fi
    case $probe in
      public) check "a public include compiles with the flags of $obj" test "$built" = yes ;;
      *) check "a private include ($probe.c) fails with the flags of $obj" \
           bash -c "test $built = no && grep -q 'No such file' '$T/$probe.log'" ;;
    esac
  done
done
rm -rf "$T"
finish
