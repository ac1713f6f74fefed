#!/usr/bin/env bash
# bench.sh -- `make bench` / `make bench-quick`: builds bench/bench.c against
# libshale and Debian's RocksDB and LevelDB, runs it, keeps the raw figures
# in build/bench.json.  Never part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j"$(nproc)" build/libshale.a
pc="libcurl jansson yaml-0.1 libzstd libxxhash libxml-2.0 libmicrohttpd"
gcc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Iengine/include -Iengine \
  -o build/bench bench/bench.c build/libshale.a $(pkg-config --libs $pc) \
  -lrocksdb -lleveldb -lpthread -lm
dir=$(mktemp -d /var/tmp/shale-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
if [ "${1:-bench}" = bench-quick ]; then
  build/bench --keys 100000 --split-mb 8,32 --dir "$dir" --json build/bench.json
else
  build/bench --keys 1000000 --split-mb 64,256,1024 --dir "$dir" --json build/bench.json
fi
echo "raw figures: build/bench.json"
