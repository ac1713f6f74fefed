#!/usr/bin/env bash
# soak.sh -- `make soak SEEDS=N`: N seeded fault runs (tests/unit/test_sim.c),
# beyond the 200 that `make test` runs.  A failure prints its seed and the
# command that replays it.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s -j"$(nproc)" build/tests/test_sim
# Seeds from 1000 on: make test already covers 1..200.
SHALE_SIM_FIRST=${SHALE_SIM_FIRST:-1000} SHALE_SIM_SEEDS=${1:-1000} build/tests/test_sim 2>&1 | grep -v '^sim seed'
