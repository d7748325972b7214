#!/usr/bin/env bash
# cgrad vs PyTorch on the article's 3-vs-7 MNIST pipeline and on all ten digits
# of the full MNIST (see bench/README.md).
#
# Runs each phase of both sides alternately, N times, and prints per phase the
# median in-process seconds of each side, their ratio, the median process wall
# time and peak RSS. Phases: load, baseline, linear, mlp, and pipeline (the
# three cgrad CLI commands one after another vs one PyTorch process doing all),
# on MNIST_SAMPLE; ten_linear and ten_mlp (`cgrad train --model linear|mlp` on
# the 60,000 + 10,000 images of MNIST's IDX files vs bench/pytorch_ten.py),
# timed per epoch.
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
  --mnist DIR         the folder of MNIST's four .gz IDX files, for the ten_*
                      phases (default \$CGRAD_DATA/mnist)
  --threads T         threads for both sides (default \$BENCH_THREADS or 2)
  --phases "P ..."    subset of: load baseline linear mlp pipeline ten_linear
                      ten_mlp (default all; or \$BENCH_PHASES)
                      serve: bench/bench_serve.sh (wrk against cgrad serve),
                      run after the table
  --seed S            seed for the PyTorch side (default 42)
  --torch-blas WHICH  auto (default): run PyTorch on OpenBLAS (OpenMP build) when
                      the system BLAS is the slow reference one; system: as found
  --no-install        never apt-get install anything (time, libopenblas0-openmp)
  --keep DIR          keep every run's raw output in DIR
  --busy-max C        a run during which other processes (and the hypervisor's
                      steal) took more than C cores on average is "busy": it is
                      redone after a quiet moment, and left out of the medians
                      while the side has runs that were not (default 0.25; 0: off)
  --retries R         redo a busy run at most R times (default 2)
  --no-cnn-split      after the table, do not run bench_cnn (the CNN's step split
                      by layer beside the GEMM rate; run when ten_cnn is a phase)
environment: CGRAD_BIN (default $ROOT/build/cgrad), CGRAD_BENCH_LOAD (default
  bench_load beside CGRAD_BIN), CGRAD_BENCH_CNN (default bench_cnn beside
  CGRAD_BIN), CGRAD_BIN_BLAS (optional: a second cgrad, e.g.
  ./build-blas/cgrad, timed on every phase but load, in extra "+blas" rows),
  PYTHON (default /usr/bin/python3, Debian's, which has python3-torch), CGRAD_DATA.
EOF
}

RUNS=${BENCH_RUNS:-5}
THREADS=${BENCH_THREADS:-2}
PHASES=${BENCH_PHASES:-"load baseline linear mlp pipeline ten_linear ten_mlp ten_cnn serve"}
SEED=42
TORCH_BLAS=auto
INSTALL=1
KEEP=""
BUSY_MAX=0.25
RETRIES=2
CNN_SPLIT=1
PHASES_SET=0
DATA=""
MNIST=""
[ -n "${CGRAD_DATA:-}" ] && DATA="$CGRAD_DATA/mnist_sample" && MNIST="$CGRAD_DATA/mnist"
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--runs) RUNS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --mnist) MNIST=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --phases) PHASES=$2; PHASES_SET=1; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --torch-blas) TORCH_BLAS=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=$2; shift 2 ;;
    --busy-max) BUSY_MAX=$2; shift 2 ;;
    --retries) RETRIES=$2; shift 2 ;;
    --no-cnn-split) CNN_SPLIT=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_bench.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "run_bench.sh: --runs wants a positive integer" >&2; exit 2 ;; esac
case "$THREADS" in ''|*[!0-9]*|0) echo "run_bench.sh: --threads wants a positive integer" >&2; exit 2 ;; esac
case "$RETRIES" in ''|*[!0-9]*) echo "run_bench.sh: --retries wants a count" >&2; exit 2 ;; esac
awk -v c="$BUSY_MAX" 'BEGIN { exit !(c ~ /^[0-9]*\.?[0-9]+$/) }' ||
  { echo "run_bench.sh: --busy-max wants a number of cores (e.g. 0.25)" >&2; exit 2; }
CHOSEN=1; [ "$PHASES_SET" = 0 ] && [ -z "${BENCH_PHASES:-}" ] && CHOSEN=0
# serve is not a side-by-side phase: bench/bench_serve.sh, after the table.
RUN_SERVE=0
case " $PHASES " in *" serve "*)
  RUN_SERVE=1; PHASES=$(printf '%s\n' $PHASES | grep -vx serve | tr '\n' ' '); PHASES=${PHASES% } ;;
esac
if [ "$RUN_SERVE" = 1 ] && [ -z "$PHASES" ]; then
  exec "$ROOT/bench/bench_serve.sh" ${DATA:+--data "$DATA"}
fi
SAMPLE_PHASES="load baseline linear mlp pipeline" TEN_PHASES="ten_linear ten_mlp ten_cnn"
for p in $PHASES; do
  case " $SAMPLE_PHASES $TEN_PHASES " in *" $p "*) ;;
    *) echo "run_bench.sh: unknown phase '$p'" >&2; exit 2 ;; esac
done
# drop_phases "P ...": takes them out of $PHASES
drop_phases() {
  local p q keep=""
  for p in $PHASES; do
    for q in $1; do [ "$p" = "$q" ] && continue 2; done
    keep="$keep $p"
  done
  PHASES=${keep# }
}
wants() {  # wants "P ...": whether $PHASES has one of them
  local p q
  for p in $PHASES; do for q in $1; do [ "$p" = "$q" ] && return 0; done; done
  return 1
}
# Each data set is needed only by its phases. When it is missing, phases asked
# for by name (--phases, BENCH_PHASES) are an error; the default list (make
# bench) drops them with a note instead.
IDX_FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
if wants "$TEN_PHASES"; then
  for f in "${IDX_FILES[@]}"; do
    if [ -z "$MNIST" ] || [ ! -f "$MNIST/$f" ]; then
      msg="no MNIST IDX files at '${MNIST}' (wants $f): set CGRAD_DATA (its mnist/) or pass --mnist DIR"
      if [ "$CHOSEN" = 1 ]; then
        echo "run_bench.sh: $msg; or leave ten_linear and ten_mlp out of --phases" >&2; exit 2
      fi
      echo "run_bench.sh: $msg; skipping ten_linear and ten_mlp" >&2
      drop_phases "$TEN_PHASES"
      break
    fi
  done
fi
if wants "$SAMPLE_PHASES" && { [ -z "$DATA" ] || [ ! -d "$DATA/train/3" ]; }; then
  msg="no MNIST_SAMPLE at '${DATA}': set CGRAD_DATA (its mnist_sample/) or pass --data DIR"
  if [ "$CHOSEN" = 1 ] || ! wants "$TEN_PHASES"; then echo "run_bench.sh: $msg" >&2; exit 2; fi
  echo "run_bench.sh: $msg; skipping $SAMPLE_PHASES" >&2
  drop_phases "$SAMPLE_PHASES"
fi
if [ -z "$PHASES" ]; then echo "run_bench.sh: no phases to run" >&2; exit 2; fi
NEED_SAMPLE=0 NEED_MNIST=0   # which data the phases left read
wants "$SAMPLE_PHASES" && NEED_SAMPLE=1
wants "$TEN_PHASES" && NEED_MNIST=1
[ "$NEED_MNIST" = 1 ] && MNIST=$(cd "$MNIST" && pwd)
if [ "$NEED_SAMPLE" = 1 ]; then
  DATA=$(cd "$DATA" && pwd)
  # bench_load takes its data from $CGRAD_DATA/mnist_sample when --data is not understood
  export CGRAD_DATA=${CGRAD_DATA:-$(dirname "$DATA")}
  [ "$(basename "$DATA")" = mnist_sample ] && CGRAD_DATA=$(dirname "$DATA")
fi

CGRAD_BIN=${CGRAD_BIN:-$ROOT/build/cgrad}
BENCH_LOAD=${CGRAD_BENCH_LOAD:-$(dirname "$CGRAD_BIN")/bench_load}
BENCH_CNN=${CGRAD_BENCH_CNN:-$(dirname "$CGRAD_BIN")/bench_cnn}
PYTHON=${PYTHON:-/usr/bin/python3}
TORCH_REF="$ROOT/bench/pytorch_ref.py"
TORCH_TEN="$ROOT/bench/pytorch_ten.py"

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
PYMODS="torch, numpy"; [ "$NEED_SAMPLE" = 1 ] && PYMODS="$PYMODS, PIL"   # PIL: the PNG phases only
if ! "$PYTHON" -c "import $PYMODS" >/dev/null 2>&1; then
  HAVE_TORCH=0
  echo "run_bench.sh: $PYTHON cannot import $PYMODS; install with:" \
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
# cpu_busy: the jiffies the whole machine has spent busy so far (user, nice,
# system, irq, softirq, and steal: time the hypervisor gave our vCPUs to others)
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat 2>/dev/null; }
# wait_quiet MAX: waits (at most MAX seconds) for a second in which the machine
# is busy under 0.15 cores
wait_quiet() {
  local end=$((SECONDS + $1)) a b
  while [ "$SECONDS" -lt "$end" ]; do
    a=$(cpu_busy); sleep 1; b=$(cpu_busy)
    [ -n "$a" ] && [ -n "$b" ] && [ $((b - a)) -lt $((HZ * 15 / 100)) ] && return 0
  done
  return 1
}
# run_timed OUT ERR CMD...: sets T_RC, T_WALL (s, from bash's clock), T_RSS (KiB)
# and T_OTHERS: the cores that everything else took on average meanwhile (the
# machine's busy time less the command's user + system time, less two clock
# ticks for the counters' rounding, over the wall time; "-" when unknown)
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "$EPOCHREALTIME"; else date +%s.%N; fi; }
run_timed() {
  local out=$1 err=$2 t0 t1 b0 b1 us=""; shift 2
  b0=$(cpu_busy)
  t0=$(now)
  if [ -n "$TIME_BIN" ]; then
    "$TIME_BIN" -f '%M %U %S' -o "$TMP/rss" "$@" >"$out" 2>"$err"; T_RC=$?
    read -r T_RSS us <<<"$(tail -n1 "$TMP/rss" 2>/dev/null)"
    case "$T_RSS" in ''|*[!0-9]*) T_RSS=- us="" ;; esac
  else
    "$@" >"$out" 2>"$err"; T_RC=$?; T_RSS=-
  fi
  t1=$(now)
  b1=$(cpu_busy)
  T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  T_OTHERS=-
  if [ -n "$us" ] && [ -n "$b0" ] && [ -n "$b1" ]; then
    # shellcheck disable=SC2086  # $us is "USER SYS"
    T_OTHERS=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v w="$T_WALL" -v u="${us% *}" -v s="${us#* }" \
      'BEGIN { o = (d / hz - u - s - 2 / hz) / (w > 0.05 ? w : 0.05); printf "%.2f", o < 0 ? 0 : o }')
  fi
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
# epoch_stats FILE [PHASE]: "MEDIAN SUM COUNT" of the "seconds" of the per-epoch
# JSON lines (those with an "epoch" key; only phase PHASE's, when given), epoch 0
# left out (cgrad's row 0 scores the untrained model, it trains nothing); empty
# when there is none
epoch_stats() {
  awk -v ph="${2:-}" '
    function num(k,   s) {
      if (!match($0, "\"" k "\"[ \t]*:[ \t]*-?[0-9][0-9.]*([eE][-+]?[0-9]+)?")) return ""
      s = substr($0, RSTART, RLENGTH); sub(/^[^:]*:[ \t]*/, "", s); return s }
    ph != "" && $0 !~ ("\"phase\"[ \t]*:[ \t]*\"" ph "\"") { next }
    { e = num("epoch"); s = num("seconds") }
    e != "" && s != "" && e + 0 > 0 { n++; v[n] = s + 0; sum += s }
    END {
      if (n == 0) exit
      for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      printf "%.6f %.6f %d\n", med, sum, n }' "$1"
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

record() {  # record SIDE PHASE RUN SECONDS ACCURACY (uses T_RC T_WALL T_RSS T_OTHERS)
  local sec=${4:-} acc=${5:-} st=ok
  [ "$T_RC" = 0 ] || st="exit$T_RC"
  if [ -z "$sec" ]; then [ "$st" = ok ] && st=noparse; sec=-; fi
  [ -n "$acc" ] || acc=-
  if [ "$st" = ok ] && [ "$T_OTHERS" != - ] &&
     awk -v o="$T_OTHERS" -v m="$BUSY_MAX" 'BEGIN { exit !(m > 0 && o > m) }'; then
    st=busy
  fi
  LAST_STATUS=$st
  echo "$1 $2 $3 $sec $T_WALL $T_RSS $acc $st $T_OTHERS" >>"$RES"
  if [ "$st" != ok ] && [ "$st" != busy ] && [ ! -e "$TMP/warned.$1.$2" ]; then
    : >"$TMP/warned.$1.$2"
    echo "run_bench.sh: $1 $2 run $3 failed ($st); its last output:" >&2
    tail -n 5 "$TMP/out" "$TMP/err" 2>/dev/null | sed 's/^/    /' >&2
  fi
  if [ -n "$KEEP" ]; then
    cat "$TMP/out" >"$KEEP/$1-$2-$3.out"; cat "$TMP/err" >"$KEEP/$1-$2-$3.err"
  fi
}

# record_fit SIDE PHASE RUN SECONDS: the ten_* phases' second row, "PHASE:fit", the
# sum of the training epochs (same process, so the same wall, RSS and accuracy)
record_fit() {
  local sec=${4:-} st=$LAST_STATUS acc
  acc=$(tail -n1 "$RES" | cut -d' ' -f7)
  if [ -z "$sec" ]; then [ "$st" = ok ] || [ "$st" = busy ] && st=noparse; sec=-; fi
  echo "$1 $2:fit $3 $sec $T_WALL $T_RSS $acc $st $T_OTHERS" >>"$RES"
}

CENV=(env OMP_NUM_THREADS="$THREADS")
TENV=(env OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS")
[ -n "$TORCH_LDPATH" ] && TENV+=(LD_LIBRARY_PATH="$TORCH_LDPATH")
TCMD=("${TENV[@]}" "$PYTHON" "$TORCH_REF" --data "$DATA" --threads "$THREADS" --seed "$SEED" --json)
TTEN=("${TENV[@]}" "$PYTHON" "$TORCH_TEN" --data "$MNIST" --threads "$THREADS" --seed "$SEED" --json)

LOAD_ARGS=""   # the bench_load invocation that worked: json_data, json or plain
run_cgrad() {  # run_cgrad PHASE RUN [SIDE BINARY] (default: cgrad "$CGRAD_BIN")
  local o="$TMP/out" e="$TMP/err" sec acc med sum side=${3:-cgrad} bin=${4:-$CGRAD_BIN}
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
    ten_linear|ten_mlp|ten_cnn)
      # the default ten-class recipe; not --quiet: the epoch rows are the measure
      run_timed "$o" "$e" "${CENV[@]}" "$bin" train --model "${1#ten_}" --data "$MNIST" --json
      read -r med sum _ <<<"$(epoch_stats "$o")"
      record "$side" "$1" "$2" "$med" "$(json_num accuracy "$o")"
      record_fit "$side" "$1" "$2" "$sum" ;;
  esac
}
run_torch() {  # run_torch PHASE RUN
  local o="$TMP/out" e="$TMP/err" med sum
  if [ "$1" = pipeline ]; then
    run_timed "$o" "$e" "${TCMD[@]}" --phase all
    record pytorch pipeline "$2" "$T_WALL" ""
  elif [ "${1#ten_}" != "$1" ]; then
    run_timed "$o" "$e" "${TTEN[@]}" --phase "$1"
    read -r med sum _ <<<"$(epoch_stats "$o" "$1")"
    record pytorch "$1" "$2" "$med" "$(json_num accuracy "$o" "$1")"
    record_fit pytorch "$1" "$2" "$sum"
  else
    run_timed "$o" "$e" "${TCMD[@]}" --phase "$1"
    record pytorch "$1" "$2" "$(json_num seconds "$o" "$1")" "$(json_num accuracy "$o" "$1")"
  fi
}

# ---- the runs ---------------------------------------------------------------
[ -n "$KEEP" ] && mkdir -p "$KEEP"
# warm the page cache so that neither side's first load pays for the disk
[ "$NEED_SAMPLE" = 1 ] && find "$DATA" -name '*.png' -exec cat {} + >/dev/null 2>&1
[ "$NEED_MNIST" = 1 ] && (cd "$MNIST" && cat "${IDX_FILES[@]}" >/dev/null 2>&1)

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
used=""
[ "$NEED_SAMPLE" = 1 ] && used=" $DATA"
[ "$NEED_MNIST" = 1 ] && used="$used $MNIST"
echo "cgrad vs PyTorch: $RUNS runs per phase, $THREADS threads, data$used"
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
REDONE=0 LAST_STATUS=ok
# run_side SIDE PHASE RUN: one run, redone (up to $RETRIES times, after waiting
# for a quiet second) while other processes took more than $BUSY_MAX cores
run_side() {
  local try=0
  while :; do
    case "$1" in
      cgrad) run_cgrad "$2" "$3" ;;
      cgrad_blas) run_cgrad "$2" "$3" cgrad_blas "$CGRAD_BIN_BLAS" ;;
      pytorch) run_torch "$2" "$3" ;;
    esac
    [ "$LAST_STATUS" = busy ] && [ "$try" -lt "$RETRIES" ] || return 0
    try=$((try + 1)) REDONE=$((REDONE + 1))
    echo "  ($1 $2 run $3: others took $T_OTHERS cores; redoing it)" >&2
    awk -v s="$1" -v p="$2" -v r="$3" '!($1 == s && ($2 == p || $2 == p ":fit") && $3 == r)' \
      "$RES" >"$RES.tmp" && mv "$RES.tmp" "$RES"
    wait_quiet 60 || echo "  (still busy after 60 s; going on)" >&2
  done
}
for ((i = 1; i <= RUNS; i++)); do
  echo "  run $i/$RUNS ..." >&2
  for p in $PHASES; do
    # alternate which side goes first, so neither always inherits the other's caches
    if ((i % 2)); then
      [ "$HAVE_CGRAD" = 1 ] && run_side cgrad "$p" "$i"
      [ "$HAVE_BLAS" = 1 ] && [ "$p" != load ] && run_side cgrad_blas "$p" "$i"
      [ "$HAVE_TORCH" = 1 ] && run_side pytorch "$p" "$i"
    else
      [ "$HAVE_TORCH" = 1 ] && run_side pytorch "$p" "$i"
      [ "$HAVE_BLAS" = 1 ] && [ "$p" != load ] && run_side cgrad_blas "$p" "$i"
      [ "$HAVE_CGRAD" = 1 ] && run_side cgrad "$p" "$i"
    fi
  done
done

# ---- the table ----------------------------------------------------------------
# col SIDE PHASE FIELD: median over the runs that succeeded, "-" when none
median() { sort -g | awk '{ a[NR] = $1 } END {
  if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# runs SIDE PHASE: the statuses whose runs count: "ok", or "busy" when no run was ok
runs() {
  awk -v s="$1" -v p="$2" '$1 == s && $2 == p && $8 == "ok" { ok = 1 } END { print ok ? "ok" : "busy" }' "$RES"
}
col() {
  awk -v s="$1" -v p="$2" -v f="$3" -v st="$(runs "$1" "$2")" \
    '$1 == s && $2 == p && $8 == st && $f != "-" { print $f }' "$RES" | median
}
# pair_ratios SIDE PHASE: pytorch / SIDE for each run number both sides
# finished; the two ran back to back, so each ratio sees the same machine
pair_ratios() {
  awk -v s="$1" -v p="$2" -v cs="$(runs "$1" "$2")" -v ts="$(runs pytorch "$2")" '
    $2 == p && $4 != "-" {
      if ($1 == s && $8 == cs) c[$3] = $4; else if ($1 == "pytorch" && $8 == ts) t[$3] = $4 }
    END { for (r in c) if ((r in t) && c[r] > 0) print t[r] / c[r] }' "$RES"
}
fails() { awk -v s="$1" -v p="$2" '$1 == s && $2 == p && $8 != "ok" && $8 != "busy" { n++ } END { print n + 0 }' "$RES"; }
busies() { awk -v s="$1" -v p="$2" '$1 == s && $2 == p && $8 == "busy" { n++ } END { print n + 0 }' "$RES"; }
fmt() { case "$1" in -) echo - ;; *) awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }' ;; esac; }
mb() { case "$1" in -) echo - ;; *) awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }' ;; esac; }

echo
echo "phase seconds: in-process time of the phase, data loading excluded (pipeline: wall time);"
echo "wall: the whole process (start-up and loading included); ratio = pytorch / cgrad (>1: cgrad faster)"
echo "paired: the median over runs of pytorch / cgrad within each run (the two sides ran back to"
echo "back, so each ratio sees the same machine: steadier than 'ratio' when the machine drifts)"
[ "$HAVE_BLAS" = 1 ] && echo "PHASE+blas rows: the cgrad columns are $CGRAD_BIN_BLAS's (the PyTorch ones repeated)"
if [ "$NEED_MNIST" = 1 ]; then
  echo "ten_*: all ten digits, 60,000 training images, 10,000 scored after each epoch; seconds = the"
  echo "median over a run's epochs of one epoch's training + scoring (cgrad's row 0, which scores the"
  echo "untrained model, left out), then the median over runs; ten_*:fit: the sum of those epochs"
fi
W=9   # the phase column's width
for p in $PHASES; do
  l=$p; case "$p" in ten_*) l="$p:fit" ;; esac
  [ "$HAVE_BLAS" = 1 ] && [ "$p" != load ] && l="$l+blas"
  [ ${#l} -gt "$W" ] && W=${#l}
done
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
  cb=$(busies "$2" "$p"); tb=$(busies pytorch "$p")
  cs=$(fmt "$cs" %.3f); ts=$(fmt "$ts" %.3f)
  [ "$cf" != 0 ] && cs="$cs!$cf"
  [ "$tf" != 0 ] && ts="$ts!$tf"
  [ "$cb" != 0 ] && cs="$cs~$cb"
  [ "$tb" != 0 ] && ts="$ts~$tb"
  printf '%-*s %10s %10s %7s %7s %9s %9s %9s %9s %8s %8s\n' "$W" "$1" "$cs" "$ts" "$ratio" "$paired" \
    "$(fmt "$cw" %.3f)" "$(fmt "$tw" %.3f)" \
    "$(mb "$cr")" "$(mb "$tr")" \
    "$(fmt "$ca" %.4f)" "$(fmt "$ta" %.4f)"
}
for p in $PHASES; do
  row "$p" cgrad "$p"
  [ "$HAVE_BLAS" = 1 ] && [ "$p" != load ] && row "$p+blas" cgrad_blas "$p"
  case "$p" in ten_*)
    row "$p:fit" cgrad "$p:fit"
    [ "$HAVE_BLAS" = 1 ] && row "$p:fit+blas" cgrad_blas "$p:fit" ;;
  esac
done
if [ -e "$TMP/load_was_text" ]; then
  echo "(load: cgrad's bench_load printed no JSON; its seconds were read from text, best effort)"
fi
if awk '$8 != "ok" && $8 != "busy" { f = 1 } END { exit !f }' "$RES"; then
  echo "(!N: N runs of that side failed or printed no seconds; the median is over the rest)"
fi
if awk '$8 == "busy" { f = 1 } END { exit !f }' "$RES"; then
  echo "(~N: N runs of that side were busy - other processes took over $BUSY_MAX cores - even when"
  echo " redone; the median is over the others, or over those when every run was busy)"
fi
[ "$REDONE" -gt 0 ] && echo "($REDONE runs were redone because other processes took over $BUSY_MAX cores meanwhile)"
others=$(awk '$9 != "-" && $9 != "" { print $9 }' "$RES" | median)
[ "$others" != - ] && echo "(other processes took $others cores in the median run)"
[ -n "$KEEP" ] && cp "$RES" "$KEEP/results.txt" && echo "raw output in $KEEP"

# Where the CNN's epoch goes: its training step split by layer (forward and
# backward) beside cg_gemm's rate, from bench_cnn (see bench/README.md).
if [ "$CNN_SPLIT" = 1 ] && [ "$HAVE_CGRAD" = 1 ] && wants ten_cnn; then
  echo
  echo "== Where a CNN epoch goes (bench_cnn, $THREADS threads) =="
  if [ -x "$BENCH_CNN" ]; then
    if [ -n "$KEEP" ]; then
      env OMP_NUM_THREADS="$THREADS" "$BENCH_CNN" --threads "$THREADS" --mnist "$MNIST" 2>&1 |
        tee "$KEEP/bench_cnn.txt"
    else
      env OMP_NUM_THREADS="$THREADS" "$BENCH_CNN" --threads "$THREADS" --mnist "$MNIST" 2>&1
    fi || echo "(bench_cnn failed)"
  else
    echo "(no $BENCH_CNN: build it with cmake --build $(dirname "$CGRAD_BIN") --target bench_cnn," \
         "or set CGRAD_BENCH_CNN)"
  fi
fi

# cgrad serve under wrk (bench/bench_serve.sh; bench/README.md, "Serving").
if [ "$RUN_SERVE" = 1 ]; then
  echo
  CGRAD_BIN="$CGRAD_BIN" "$ROOT/bench/bench_serve.sh" ${DATA:+--data "$DATA"} ||
    echo "(bench_serve.sh failed)"
fi

# Data-parallel over MPI: 1 rank x T threads against T ranks x 1 thread, and
# the time per step in the allreduce (bench/bench_mpi.sh; BENCH_MPI=0: skip).
if [ "${BENCH_MPI:-1}" = 1 ] && [ "$HAVE_CGRAD" = 1 ]; then
  echo
  CGRAD_BIN="$CGRAD_BIN" "$ROOT/bench/bench_mpi.sh" --threads "$THREADS" --data "$DATA" ||
    echo "(bench_mpi failed)"
fi
exit 0
