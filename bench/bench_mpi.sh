#!/usr/bin/env bash
# Data-parallel training over MPI on one machine: `cgrad train` as 1 rank x
# T threads against T ranks x 1 thread (mpirun -np T), for the book's mlp
# (the article's 3-vs-7 recipe) and ch.13's CNN on MNIST_SAMPLE. Prints, per
# setup, the median over N alternating runs of the seconds per epoch (steps
# and validation), the milliseconds per step spent in the gradient
# allreduce (from --json's allreduce_seconds: the transfer plus the wait for
# the slower rank), its share of the epoch, and the accuracy reached.
# First bench_allreduce (the collective alone, by size). See docs/scaling.md
# for what the figures mean at cluster scale.
#
# usage: bench/bench_mpi.sh [-n RUNS] [--threads T] [--data DIR]
# environment: CGRAD_BIN (default build/cgrad), CGRAD_BENCH_ALLREDUCE (default
#   bench_allreduce beside CGRAD_BIN), CGRAD_DATA, MPIRUN (default mpirun)
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=3
THREADS=2
DATA=${CGRAD_DATA:+$CGRAD_DATA/mnist_sample}
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--runs) RUNS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench_mpi.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
CGRAD_BIN=${CGRAD_BIN:-$ROOT/build/cgrad}
MPIRUN=${MPIRUN:-mpirun}

if ! command -v "$MPIRUN" >/dev/null; then
  echo "bench_mpi: no $MPIRUN (Debian: openmpi-bin); skipped"; exit 0
fi
if [ -z "$DATA" ] || [ ! -d "$DATA" ]; then
  echo "bench_mpi: no MNIST_SAMPLE folder (set CGRAD_DATA or --data); skipped"; exit 0
fi
# A cgrad built without MPI refuses to run under mpirun with more than one rank.
probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
root_flag=""
[ "$(id -u)" = 0 ] && root_flag="--allow-run-as-root"
mpi() {  # mpi NP ARGS...: cgrad under mpirun on this machine alone, bounded
  timeout 600 "$MPIRUN" --oversubscribe $root_flag --mca btl self,vader \
    --mca btl_vader_single_copy_mechanism none -np "$@"
}
if ! mpi 2 "$CGRAD_BIN" train --model linear --epochs 1 --data "$DATA" --quiet --json \
     >"$probe" 2>&1 || ! grep -q '"ranks":2' "$probe"; then
  echo "bench_mpi: $CGRAD_BIN does not train under mpirun (built without MPI?); skipped"
  tail -3 "$probe"; exit 0
fi

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other processes share these cores)"
# The allreduce alone, by size: what a step pays without waiting for a slower rank.
BENCH_ALLREDUCE=${CGRAD_BENCH_ALLREDUCE:-$(dirname "$CGRAD_BIN")/bench_allreduce}
if [ -x "$BENCH_ALLREDUCE" ]; then
  OMP_NUM_THREADS=1 mpi "$THREADS" "$BENCH_ALLREDUCE" || echo "(bench_allreduce failed)"
  echo
fi

json_num() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" | tail -1; }
median() {
  sort -g | awk '{ a[NR] = $1 }
    END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2); else print "-" }'
}

# model epochs bs: the recipe's batch size, so steps = ceil(12396 / bs) per epoch
n_train=$(find "$DATA/train" -name '*.png' | wc -l)
declare -A SEC RED ACC
setups="1x$THREADS ${THREADS}x1"
for model in mlp cnn; do
  case $model in mlp) epochs=5 bs=256 ;; cnn) epochs=1 bs=512 ;; esac
  steps=$(( epochs * ((n_train + bs - 1) / bs) ))
  for run in $(seq "$RUNS"); do
    for setup in $setups; do
      args=(train --model "$model" --epochs "$epochs" --bs "$bs" --data "$DATA" --json --quiet)
      if [ "$setup" = "1x$THREADS" ]; then
        out=$(OMP_NUM_THREADS=$THREADS "$CGRAD_BIN" "${args[@]}" --threads "$THREADS" 2>&1)
      else
        out=$(OMP_NUM_THREADS=1 mpi "$THREADS" "$CGRAD_BIN" "${args[@]}" --threads 1 2>&1)
      fi
      s=$(json_num seconds <<<"$out")
      r=$(json_num allreduce_seconds <<<"$out")
      a=$(json_num accuracy <<<"$out")
      if [ -z "$s" ]; then
        echo "bench_mpi: $model $setup failed: $(tail -2 <<<"$out")"; continue
      fi
      SEC[$model.$setup]+="$(awk -v s="$s" -v e="$epochs" 'BEGIN { print s / e }') "
      RED[$model.$setup]+="$(awk -v r="$r" -v n="$steps" 'BEGIN { print 1000 * r / n }') "
      ACC[$model.$setup]+="$a "
    done
  done
  echo "== $model on MNIST_SAMPLE ($n_train images, bs $bs, $steps steps in $epochs epochs," \
       "median of $RUNS) =="
  printf "%-16s %10s %12s %18s %16s %9s\n" "ranks x threads" "s/epoch" "ms/step" \
         "allreduce ms/step" "allreduce share" accuracy
  for setup in $setups; do
    s=$(tr ' ' '\n' <<<"${SEC[$model.$setup]:-}" | grep . | median)
    r=$(tr ' ' '\n' <<<"${RED[$model.$setup]:-}" | grep . | median)
    a=$(tr ' ' '\n' <<<"${ACC[$model.$setup]:-}" | grep . | median)
    awk -v l="$setup" -v s="$s" -v r="$r" -v a="$a" -v n="$steps" -v e="$epochs" 'BEGIN {
      if (s == "-") { printf "%-16s %10s\n", l, "failed"; exit }
      ms = 1000 * s * e / n
      printf "%-16s %10.3f %12.2f %18.2f %15.0f%% %9.4f\n", l, s, ms, r, 100 * r / ms, a }'
  done
  echo
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
