#!/usr/bin/env bash
# `cgrad serve` under load (bench/README.md, "Serving"): for each model kind,
# a model trained for one epoch on MNIST_SAMPLE is served on loopback and wrk
# POSTs 784-byte images to /predict from many connections at once. Prints per
# kind: requests/s, median and 99th-percentile latency, errors (socket
# errors and non-2xx answers: there must be none), the cores the server's
# process kept busy (one thread serves; a CNN's kernels may use OpenMP's),
# and its resident memory after a 1 s warm-up and after the run (flat: no
# growth with the requests served).
#
# Tools: wrk (Debian package wrk; scripts/install-deps.sh --bench), bash, awk.
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<USAGE
usage: bench/bench_serve.sh [options]
  --data DIR          MNIST_SAMPLE (default \$CGRAD_DATA/mnist_sample)
  --models "K ..."    model kinds to serve (default "linear mlp cnn")
  --duration S        seconds of load per kind (default 10)
  --connections C     wrk's connections (default 64)
  --wrk-threads T     wrk's threads (default 2)
environment: CGRAD_BIN (default $ROOT/build/cgrad)
USAGE
}

DATA=""; [ -n "${CGRAD_DATA:-}" ] && DATA="$CGRAD_DATA/mnist_sample"
MODELS="linear mlp cnn" DURATION=10 CONNS=64 WRK_THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --wrk-threads) WRK_THREADS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_serve.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
CGRAD_BIN=${CGRAD_BIN:-$ROOT/build/cgrad}
die() { echo "bench_serve.sh: $*" >&2; exit 2; }
command -v wrk >/dev/null || die "no wrk (apt-get install wrk, or scripts/install-deps.sh --bench)"
[ -x "$CGRAD_BIN" ] || die "no $CGRAD_BIN (build first, or set CGRAD_BIN)"
[ -n "$DATA" ] && [ -d "$DATA/train/3" ] ||
  die "no MNIST_SAMPLE at '$DATA': set CGRAD_DATA or pass --data DIR"

TMP=$(mktemp -d)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo -; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }  # utime+stime
HZ=$(getconf CLK_TCK)

echo "== cgrad serve under wrk: POST /predict, 784-byte body, $CONNS connections," \
     "$WRK_THREADS wrk threads, ${DURATION} s per model =="
printf '%-8s %10s %9s %9s %7s %6s %9s %9s\n' model "req/s" "p50 ms" "p99 ms" errors cores \
  "RSS0 MB" "RSS1 MB"
status=0
for kind in $MODELS; do
  model="$TMP/$kind.cgm"
  if ! "$CGRAD_BIN" train --model "$kind" --data "$DATA" --epochs 1 --seed 1 --quiet \
       --save "$model" >"$TMP/train.log" 2>&1; then
    echo "$kind: cgrad train failed:"; cat "$TMP/train.log"; status=1; continue
  fi
  # --per-ip and --max-connections above wrk's connections: all of them come
  # from 127.0.0.1, and none must be turned away.
  limit=$((CONNS + 16))
  "$CGRAD_BIN" serve "$model" --port 0 --per-ip "$limit" --max-connections "$limit" \
    >"$TMP/serve.out" 2>"$TMP/serve.err" &
  SERVER=$!
  port=""
  for _ in $(seq 100); do
    port=$(sed -n 's|^serving http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$TMP/serve.out")
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "$kind: cgrad serve did not start:"; cat "$TMP/serve.err"; status=1; continue
  fi
  url="http://127.0.0.1:$port/predict"
  wrk -t"$WRK_THREADS" -c"$CONNS" -d1s -s "$ROOT/bench/serve_post.lua" "$url" >/dev/null 2>&1
  rss0=$(rss_kb "$SERVER") cpu0=$(cpu_ticks "$SERVER")
  wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$ROOT/bench/serve_post.lua" \
    "$url" >"$TMP/wrk.out" 2>&1
  rss1=$(rss_kb "$SERVER") cpu1=$(cpu_ticks "$SERVER")
  kill -TERM "$SERVER"; wait "$SERVER"; SERVER=""
  line=$(grep '^RESULT ' "$TMP/wrk.out")
  if [ -z "$line" ]; then echo "$kind: wrk failed:"; cat "$TMP/wrk.out"; status=1; continue; fi
  echo "$line" | awk -v k="$kind" -v r0="$rss0" -v r1="$rss1" -v t=$((cpu1 - cpu0)) -v hz="$HZ" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    err = v["connect_err"] + v["read_err"] + v["write_err"] + v["timeouts"] + v["non2xx"]
    printf "%-8s %10.0f %9.3f %9.3f %7d %6.2f %9.1f %9.1f\n", k, v["rps"], v["p50_ms"],
           v["p99_ms"], err, t / hz / v["seconds"], r0 / 1024, r1 / 1024
    exit err > 0
  }' || { status=1; echo "  errors: $line"; }
  # The server's own account: what it logged while under load.
  grep -v '^cgrad serve: stopped on' "$TMP/serve.err" | head -5
done
exit $status
