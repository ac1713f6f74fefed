#!/usr/bin/env bash
# fuzz.sh -- `make fuzz`: builds every tests/fuzz/fuzz_*.c with clang's
# libFuzzer (+ASan/UBSan) and runs each for FUZZ_SECONDS (default 60) on its
# corpus in tests/fuzz/corpus/<name>/.  New crashes land in
# tests/fuzz/crashes/<name>/ ; copy each into the corpus once fixed so that
# `make test` replays it as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
out=build-fuzz
mkdir -p "$out"
make -s -j"$(nproc)" CC=clang BUILD=build-fuzz-lib OPT="-O1 -g" \
  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" \
  EXTRA_LDFLAGS="-fsanitize=address,undefined" build-fuzz-lib/libshale.a build-fuzz-lib/libshale-agent.a
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iengine/include -Iengine -Iagent $(pkg-config --cflags libxml-2.0)"
libs="build-fuzz-lib/libshale-agent.a build-fuzz-lib/libshale.a $(pkg-config --libs libcurl jansson yaml-0.1 libzstd libxxhash libxml-2.0 libmicrohttpd libcrypto) -lpthread -lm"
total=0
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c); name=${name#fuzz_}
  clang $flags -o "$out/fuzz_$name" "$src" $libs
  # New inputs go to the first corpus directory: a working copy under
  # build-fuzz/, so the committed corpus changes only when someone copies a
  # crash (or a good input) into it on purpose.
  mkdir -p "tests/fuzz/corpus/$name" "tests/fuzz/crashes/$name" "$out/corpus/$name"
  echo "== fuzz $name for ${secs}s"
  "$out/fuzz_$name" -max_total_time="$secs" -artifact_prefix="tests/fuzz/crashes/$name/" \
    "$out/corpus/$name" "tests/fuzz/corpus/$name" 2>&1 | tail -3
done
