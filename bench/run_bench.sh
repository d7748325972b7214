#!/usr/bin/env bash
# cgrad vs PyTorch on the article's 3-vs-7 MNIST pipeline (see bench/README.md).
#
# Runs each phase of both sides alternately, N times, and prints per phase the
# median in-process seconds of each side, their ratio, the median process wall
# time and peak RSS. Phases: load, baseline, linear, mlp, and pipeline (the
# three cgrad CLI commands one after another vs one PyTorch process doing all).
# With CGRAD_BIN_BLAS set (a cgrad built with -DCGRAD_BLAS=openblas), that binary
# runs the GEMM phases too, as a third side shown in "PHASE+blas" rows.
#
# Only public tools: bash, /usr/bin/time (Debian package `time`), python3, awk.
set -u
export LC_ALL=C   # '.' as decimal separator in EPOCHREALTIME, printf and awk

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<EOF
usage: bench/run_bench.sh [options]
  -n, --runs N        runs of each phase per side (default \$BENCH_RUNS or 5)
  --data DIR          the MNIST_SAMPLE folder (default \$CGRAD_DATA/mnist_sample)
  --threads T         threads for both sides (default \$BENCH_THREADS or 2)
  --phases "P ..."    subset of: load baseline linear mlp pipeline (default all;
                      or \$BENCH_PHASES)
  --seed S            seed for the PyTorch side (default 42)
  --torch-blas WHICH  auto (default): run PyTorch on OpenBLAS (OpenMP build) when
                      the system BLAS is the slow reference one; system: as found
  --no-install        never apt-get install anything (time, libopenblas0-openmp)
  --keep DIR          keep every run's raw output in DIR
environment: CGRAD_BIN (default $ROOT/build/cgrad), CGRAD_BENCH_LOAD (default
  bench_load beside CGRAD_BIN), CGRAD_BIN_BLAS (optional: a second cgrad, e.g.
  ./build-blas/cgrad, timed on every phase but load, in extra "+blas" rows),
  PYTHON (default /usr/bin/python3, Debian's, which has python3-torch), CGRAD_DATA.
EOF
}

RUNS=${BENCH_RUNS:-5}
THREADS=${BENCH_THREADS:-2}
PHASES=${BENCH_PHASES:-"load baseline linear mlp pipeline"}
SEED=42
TORCH_BLAS=auto
INSTALL=1
KEEP=""
DATA=""
[ -n "${CGRAD_DATA:-}" ] && DATA="$CGRAD_DATA/mnist_sample"
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--runs) RUNS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --phases) PHASES=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --torch-blas) TORCH_BLAS=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_bench.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "run_bench.sh: --runs wants a positive integer" >&2; exit 2 ;; esac
case "$THREADS" in ''|*[!0-9]*|0) echo "run_bench.sh: --threads wants a positive integer" >&2; exit 2 ;; esac
for p in $PHASES; do
  case "$p" in load|baseline|linear|mlp|pipeline) ;;
    *) echo "run_bench.sh: unknown phase '$p'" >&2; exit 2 ;; esac
done
if [ -z "$DATA" ] || [ ! -d "$DATA/train/3" ]; then
  echo "run_bench.sh: no MNIST_SAMPLE at '${DATA}': set CGRAD_DATA (its mnist_sample/) or pass --data DIR" >&2
  exit 2
fi
DATA=$(cd "$DATA" && pwd)
# bench_load takes its data from $CGRAD_DATA/mnist_sample when --data is not understood
export CGRAD_DATA=${CGRAD_DATA:-$(dirname "$DATA")}
[ "$(basename "$DATA")" = mnist_sample ] && CGRAD_DATA=$(dirname "$DATA")

CGRAD_BIN=${CGRAD_BIN:-$ROOT/build/cgrad}
BENCH_LOAD=${CGRAD_BENCH_LOAD:-$(dirname "$CGRAD_BIN")/bench_load}
PYTHON=${PYTHON:-/usr/bin/python3}
TORCH_REF="$ROOT/bench/pytorch_ref.py"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgrad-bench.XXXXXX") || exit 1
# shellcheck disable=SC2317  # called by the trap
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
RES="$TMP/results"   # side phase run seconds wall_s rss_kb accuracy status
: >"$RES"

is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {   # apt_install PKG...: as root only; returns non-zero when it could not
  [ "$INSTALL" = 1 ] && is_root && command -v apt-get >/dev/null || return 1
  echo "run_bench.sh: apt-get install -y $*" >&2
  apt-get install -y --no-install-recommends "$@" >"$TMP/apt.log" 2>&1 && return 0
  apt-get update >"$TMP/apt.log" 2>&1 && apt-get install -y --no-install-recommends "$@" >>"$TMP/apt.log" 2>&1
}

# ---- tools ----------------------------------------------------------------
TIME_BIN=/usr/bin/time
if [ ! -x "$TIME_BIN" ]; then
  apt_install time || true
  if [ ! -x "$TIME_BIN" ]; then
    TIME_BIN=""
    echo "run_bench.sh: /usr/bin/time missing (install: apt-get install time, as root);" \
         "timing with bash alone, peak RSS not measured" >&2
  fi
fi

HAVE_CGRAD=1
if [ ! -x "$CGRAD_BIN" ]; then
  HAVE_CGRAD=0
  echo "run_bench.sh: no cgrad binary at $CGRAD_BIN (build it, or set CGRAD_BIN); PyTorch side only" >&2
fi
HAVE_TORCH=1
if ! "$PYTHON" -c 'import torch, numpy, PIL' >/dev/null 2>&1; then
  HAVE_TORCH=0
  echo "run_bench.sh: $PYTHON cannot import torch/numpy/PIL; install with:" \
       "apt-get install python3-torch python3-pil (or set PYTHON); cgrad side only" >&2
fi
CGRAD_BIN_BLAS=${CGRAD_BIN_BLAS:-}
HAVE_BLAS=0
if [ -n "$CGRAD_BIN_BLAS" ]; then
  if [ -x "$CGRAD_BIN_BLAS" ]; then HAVE_BLAS=1; else
    echo "run_bench.sh: CGRAD_BIN_BLAS=$CGRAD_BIN_BLAS is not an executable; no +blas rows" >&2
  fi
fi
if [ "$HAVE_CGRAD" = 0 ] && [ "$HAVE_TORCH" = 0 ]; then
  echo "run_bench.sh: neither side can run" >&2; exit 1
fi

# PyTorch's BLAS: Debian's python3-torch calls sgemm through libblas.so.3, which
# by default is netlib's reference BLAS (no blocking, no SIMD): matmul then runs
# ~25x slower than OpenBLAS and the MLP phase ~10x, a strawman. OpenBLAS's OpenMP
# build shares libgomp's thread pool with torch, so OMP_NUM_THREADS=T bounds both
# (the pthread build would add its own T threads and oversubscribe the cores).
# It is used through LD_LIBRARY_PATH, for the PyTorch processes only.
torch_blas_lib() {  # prints the BLAS shared object torch maps in this environment
  env ${TORCH_LDPATH:+LD_LIBRARY_PATH="$TORCH_LDPATH"} "$PYTHON" -c '
import torch
libs = [l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.split()[-1]]
print(libs[0] if libs else "(none: MKL or built in)")' 2>/dev/null
}
TORCH_LDPATH=""
TORCH_BLAS_NAME="-"
if [ "$HAVE_TORCH" = 1 ]; then
  TORCH_BLAS_NAME=$(torch_blas_lib)
  # the reference BLAS, or OpenBLAS's pthread build: use the OpenMP build instead
  if [ "$TORCH_BLAS" = auto ] &&
     case "$TORCH_BLAS_NAME" in */blas/libblas.so* | *openblas-pthread*) true ;; *) false ;; esac; then
    find_ob() { local d; for d in /usr/lib/*/openblas-openmp; do [ -e "$d/libblas.so.3" ] && { echo "$d"; return; }; done; }
    ob=$(find_ob)
    if [ -z "$ob" ] && apt_install libopenblas0-openmp; then ob=$(find_ob); fi
    if [ -n "$ob" ]; then
      TORCH_LDPATH="$ob${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      TORCH_BLAS_NAME=$(torch_blas_lib)
    else
      echo "run_bench.sh: WARNING: PyTorch runs on $TORCH_BLAS_NAME;" \
           "with the reference BLAS its matmul-heavy phases look ~10x slower than with OpenBLAS." \
           "Install one: apt-get install libopenblas0-openmp" >&2
    fi
  fi
fi

# ---- running and parsing --------------------------------------------------
# run_timed OUT ERR CMD...: sets T_RC, T_WALL (s, from bash's clock) and T_RSS (KiB)
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }
run_timed() {
  local out=$1 err=$2 t0 t1; shift 2
  t0=$(now)
  if [ -n "$TIME_BIN" ]; then
    "$TIME_BIN" -f '%M' -o "$TMP/rss" "$@" >"$out" 2>"$err"; T_RC=$?
    T_RSS=$(tail -n1 "$TMP/rss" 2>/dev/null)
    case "$T_RSS" in ''|*[!0-9]*) T_RSS=- ;; esac
  else
    "$@" >"$out" 2>"$err"; T_RC=$?; T_RSS=-
  fi
  t1=$(now)
  T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

# json_num KEY FILE [PHASE]: the number under "KEY" on the last line that has it
# (only lines whose "phase" is PHASE, when given); empty when none
json_num() {
  awk -v k="$1" -v ph="${3:-}" '
    ph != "" && $0 !~ ("\"phase\"[ \t]*:[ \t]*\"" ph "\"") { next }
    match($0, "\"" k "\"[ \t]*:[ \t]*-?[0-9][0-9.]*([eE][-+]?[0-9]+)?") {
      s = substr($0, RSTART, RLENGTH); sub(/^[^:]*:[ \t]*/, "", s); v = s }
    END { if (v != "") print v }' "$2"
}
# loose_seconds FILE: for a bench_load without --json (best effort): the first
# "<number> s" on a line naming "$THREADS thread(s)", else the first anywhere
loose_seconds() {
  awk -v t="$THREADS" '
    function secs(line) {
      if (match(line, /[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?[ \t]*s(ec(onds?)?)?([^a-zA-Z]|$)/)) {
        line = substr(line, RSTART, RLENGTH); sub(/[ \t]*s.*$/, "", line); return line }
      return "" }
    { v = secs($0)
      if (v != "" && first == "") first = v
      if (v != "" && pref == "" && $0 ~ ("(^|[^0-9])" t " threads?([^a-zA-Z]|$)")) pref = v }
    END { if (pref != "") print pref; else if (first != "") print first }' "$1"
}

record() {  # record SIDE PHASE RUN SECONDS ACCURACY (uses T_RC T_WALL T_RSS)
  local sec=${4:-} acc=${5:-} st=ok
  [ "$T_RC" = 0 ] || st="exit$T_RC"
  if [ -z "$sec" ]; then [ "$st" = ok ] && st=noparse; sec=-; fi
  [ -n "$acc" ] || acc=-
  echo "$1 $2 $3 $sec $T_WALL $T_RSS $acc $st" >>"$RES"
  if [ "$st" != ok ] && [ ! -e "$TMP/warned.$1.$2" ]; then
    : >"$TMP/warned.$1.$2"
    echo "run_bench.sh: $1 $2 run $3 failed ($st); its last output:" >&2
    tail -n 5 "$TMP/out" "$TMP/err" 2>/dev/null | sed 's/^/    /' >&2
  fi
  if [ -n "$KEEP" ]; then
    cat "$TMP/out" >"$KEEP/$1-$2-$3.out"; cat "$TMP/err" >"$KEEP/$1-$2-$3.err"
  fi
}

CENV=(env OMP_NUM_THREADS="$THREADS")
TENV=(env OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS")
[ -n "$TORCH_LDPATH" ] && TENV+=(LD_LIBRARY_PATH="$TORCH_LDPATH")
TCMD=("${TENV[@]}" "$PYTHON" "$TORCH_REF" --data "$DATA" --threads "$THREADS" --seed "$SEED" --json)

LOAD_ARGS=""   # the bench_load invocation that worked: json_data, json or plain
run_cgrad() {  # run_cgrad PHASE RUN [SIDE BINARY] (default: cgrad "$CGRAD_BIN")
  local o="$TMP/out" e="$TMP/err" sec acc side=${3:-cgrad} bin=${4:-$CGRAD_BIN}
  case "$1" in
    load)
      local try
      for try in ${LOAD_ARGS:-json_data json plain}; do
        case "$try" in
          json_data) run_timed "$o" "$e" "${CENV[@]}" "$BENCH_LOAD" --json --data "$DATA" ;;
          json) run_timed "$o" "$e" "${CENV[@]}" "$BENCH_LOAD" --json ;;
          plain) run_timed "$o" "$e" "${CENV[@]}" "$BENCH_LOAD" ;;
        esac
        sec=$(json_num seconds "$o")
        [ -z "$sec" ] && [ "$T_RC" = 0 ] && sec=$(loose_seconds "$o")
        if [ "$T_RC" = 0 ] && [ -n "$sec" ]; then LOAD_ARGS=$try; break; fi
      done
      json_num seconds "$o" | grep -q . || : >"$TMP/load_was_text"
      record "$side" load "$2" "$sec" "" ;;
    baseline|linear|mlp)
      if [ "$1" = baseline ]; then
        run_timed "$o" "$e" "${CENV[@]}" "$bin" baseline --data "$DATA" --json
      else
        run_timed "$o" "$e" "${CENV[@]}" "$bin" train --model "$1" --data "$DATA" --json --quiet
      fi
      record "$side" "$1" "$2" "$(json_num seconds "$o")" "$(json_num accuracy "$o")" ;;
    pipeline)
      # shellcheck disable=SC2016  # $0/$1 belong to the inner bash
      run_timed "$o" "$e" "${CENV[@]}" bash -c '
        "$0" baseline --data "$1" --json &&
        "$0" train --model linear --data "$1" --json --quiet &&
        "$0" train --model mlp --data "$1" --json --quiet' "$bin" "$DATA"
      record "$side" pipeline "$2" "$T_WALL" "" ;;
  esac
}
run_torch() {  # run_torch PHASE RUN
  local o="$TMP/out" e="$TMP/err"
  if [ "$1" = pipeline ]; then
    run_timed "$o" "$e" "${TCMD[@]}" --phase all
    record pytorch pipeline "$2" "$T_WALL" ""
  else
    run_timed "$o" "$e" "${TCMD[@]}" --phase "$1"
    record pytorch "$1" "$2" "$(json_num seconds "$o" "$1")" "$(json_num accuracy "$o" "$1")"
  fi
}

# ---- the runs ---------------------------------------------------------------
[ -n "$KEEP" ] && mkdir -p "$KEEP"
# warm the page cache so that neither side's first load pays for the disk
find "$DATA" -name '*.png' -exec cat {} + >/dev/null 2>&1

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "cgrad vs PyTorch: $RUNS runs per phase, $THREADS threads, data $DATA"
echo "  machine: $(nproc) cores${cpu:+, $cpu}"
[ "$HAVE_CGRAD" = 1 ] && echo "  cgrad:   $CGRAD_BIN (load: $BENCH_LOAD)"
[ "$HAVE_BLAS" = 1 ] && echo "  +blas:   $CGRAD_BIN_BLAS (no load phase: it has no GEMM)"
[ "$HAVE_TORCH" = 1 ] && echo "  pytorch: $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)" \
  "via $PYTHON, BLAS $TORCH_BLAS_NAME"
load1=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null)
if [ -n "$load1" ] && awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
  echo "  WARNING: the machine is busy (load average $load1 on $(nproc) cores): timings will be" \
       "noisy, and OpenMP code (both sides) slows down far more than in proportion"
fi
for ((i = 1; i <= RUNS; i++)); do
  echo "  run $i/$RUNS ..." >&2
  for p in $PHASES; do
    # alternate which side goes first, so neither always inherits the other's caches
    if ((i % 2)); then
      [ "$HAVE_CGRAD" = 1 ] && run_cgrad "$p" "$i"
      [ "$HAVE_BLAS" = 1 ] && [ "$p" != load ] && run_cgrad "$p" "$i" cgrad_blas "$CGRAD_BIN_BLAS"
      [ "$HAVE_TORCH" = 1 ] && run_torch "$p" "$i"
    else
      [ "$HAVE_TORCH" = 1 ] && run_torch "$p" "$i"
      [ "$HAVE_BLAS" = 1 ] && [ "$p" != load ] && run_cgrad "$p" "$i" cgrad_blas "$CGRAD_BIN_BLAS"
      [ "$HAVE_CGRAD" = 1 ] && run_cgrad "$p" "$i"
    fi
  done
done

# ---- the table ----------------------------------------------------------------
# col SIDE PHASE FIELD: median over the runs that succeeded, "-" when none
median() { sort -g | awk '{ a[NR] = $1 } END {
  if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() {
  awk -v s="$1" -v p="$2" -v f="$3" '$1 == s && $2 == p && $8 == "ok" && $f != "-" { print $f }' "$RES" | median
}
# pair_ratios SIDE PHASE: pytorch / SIDE for each run number both sides
# finished; the two ran back to back, so each ratio sees the same machine
pair_ratios() {
  awk -v s="$1" -v p="$2" '$2 == p && $8 == "ok" && $4 != "-" {
      if ($1 == s) c[$3] = $4; else if ($1 == "pytorch") t[$3] = $4 }
    END { for (r in c) if ((r in t) && c[r] > 0) print t[r] / c[r] }' "$RES"
}
fails() { awk -v s="$1" -v p="$2" '$1 == s && $2 == p && $8 != "ok" { n++ } END { print n + 0 }' "$RES"; }
fmt() { case "$1" in -) echo - ;; *) awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }' ;; esac; }
mb() { case "$1" in -) echo - ;; *) awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }' ;; esac; }

echo
echo "phase seconds: in-process time of the phase, data loading excluded (pipeline: wall time);"
echo "wall: the whole process (start-up and loading included); ratio = pytorch / cgrad (>1: cgrad faster)"
echo "paired: the median over runs of pytorch / cgrad within each run (the two sides ran back to"
echo "back, so each ratio sees the same machine: steadier than 'ratio' when the machine drifts)"
[ "$HAVE_BLAS" = 1 ] && echo "PHASE+blas rows: the cgrad columns are $CGRAD_BIN_BLAS's (the PyTorch ones repeated)"
W=9; [ "$HAVE_BLAS" = 1 ] && W=14   # the phase column's width
printf '%-*s %10s %10s %7s %7s %9s %9s %9s %9s %8s %8s\n' "$W" \
  phase cgrad_s torch_s ratio paired cgrad_wall torch_wall cgrad_MB torch_MB cgrad_acc torch_acc
row() {  # row LABEL CGRAD_SIDE PHASE: one line of the table
  local p=$3 cs ts cw tw cr tr ca ta ratio paired cf tf
  cs=$(col "$2" "$p" 4); ts=$(col pytorch "$p" 4)
  cw=$(col "$2" "$p" 5); tw=$(col pytorch "$p" 5)
  cr=$(col "$2" "$p" 6); tr=$(col pytorch "$p" 6)
  ca=$(col "$2" "$p" 7); ta=$(col pytorch "$p" 7)
  ratio=-
  [ "$cs" != - ] && [ "$ts" != - ] && ratio=$(awk -v a="$ts" -v b="$cs" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  paired=$(pair_ratios "$2" "$p" | median)
  [ "$paired" != - ] && paired=$(fmt "$paired" %.2f)
  cf=$(fails "$2" "$p"); tf=$(fails pytorch "$p")
  cs=$(fmt "$cs" %.3f); ts=$(fmt "$ts" %.3f)
  [ "$cf" != 0 ] && cs="$cs!$cf"
  [ "$tf" != 0 ] && ts="$ts!$tf"
  printf '%-*s %10s %10s %7s %7s %9s %9s %9s %9s %8s %8s\n' "$W" "$1" "$cs" "$ts" "$ratio" "$paired" \
    "$(fmt "$cw" %.3f)" "$(fmt "$tw" %.3f)" \
    "$(mb "$cr")" "$(mb "$tr")" \
    "$(fmt "$ca" %.4f)" "$(fmt "$ta" %.4f)"
}
for p in $PHASES; do
  row "$p" cgrad "$p"
  [ "$HAVE_BLAS" = 1 ] && [ "$p" != load ] && row "$p+blas" cgrad_blas "$p"
done
if [ -e "$TMP/load_was_text" ]; then
  echo "(load: cgrad's bench_load printed no JSON; its seconds were read from text, best effort)"
fi
if grep -qv ' ok$' "$RES"; then
  echo "(!N: N runs of that side failed or printed no seconds; the median is over the rest)"
fi
[ -n "$KEEP" ] && cp "$RES" "$KEEP/results.txt" && echo "raw output in $KEEP"
exit 0
