#!/usr/bin/env bash
# The project's GPU checks in one command, for a node with CUDA and torch but no package index (and anywhere else).
usage() {
  cat <<'EOF'
usage: bash benchmarks/gpu_suite.sh [--wheels DIR] [--out DIR] [--limits STAGE=S,...] [--dry-run] DATA_BIN

The project's GPU measurements and GPU tests in one command, sized for 9 minutes on one H100/H200. With --wheels,
first the node's Python is checked against the wheels (compiled wheels are for one Python: cp312 = 3.12); a
mismatch stops here with one line (exit status 2). Then stages, each with its own time limit (a failure or a
timeout is reported and the next stage runs):
  install  (--wheels DIR only) a virtualenv that sees this machine's torch (--system-site-packages, plus a .pth
           file naming the running python3's site-packages: where python3 is itself a virtualenv, the first alone
           sees the base interpreter's packages, not its torch), made without pip (the node's python may lack
           ensurepip); the wheels of DIR installed with --no-index by pip run from DIR's pip wheel (else the
           node's pip); then every requirement checked installed in an accepted version (wheelhouse.py
           --check-installed: its line goes into summary.md). DIR comes from `make wheelhouse` on a machine
           with the index (see benchmarks/wheelhouse.py)
  compile  torch.compile of a one-line function on the device, run once: inductor on CUDA needs Triton to build
           its launcher with a C compiler and Python's headers. If it fails, summary.md says why in one line and
           the compiled rows of step and e2e are skipped with that reason
  step     the model step at the released xlm_mlm_enfr_1024's shape (6 x 1024, 8 heads, 64k words, 32 x 256
           tokens, fp16 autocast): ours, ours with --compile-layers, fairseq's masked_lm, transformers' XLM, MFU
           against a matmul timed in the same run (benchmarks/pretrain_throughput.py)
  e2e      fairseq-train end to end at that model shape on DATA_BIN: MLM (ours, compiled, --amp, fairseq's
           masked_lm, each beside its model step alone), MLM+TLM, UNMT with online back-translation beside fairseq's
           online_backtranslation (benchmarks/train_e2e.py)
  tests    tests/test_gpu.py (pytest-xdist, 8 processes)
In step and e2e a row that fails is reported with its error line and the other rows are still measured. Every log
goes into the output folder (default gpu-suite-out/), and summary.md there, printed last, holds each stage's status
and time, the machine, the requirements and torch.compile lines, and the figures.

  DATA_BIN      an xlm-preprocess data-bin with en, fr and en-fr; the DDTP one is ~14 MB without its work/ folder:
                xlm-preprocess ddtp --langs en,fr --out raw --disjoint-mono; xlm-preprocess prepare raw bin
                --langs en,fr --codes 8000
  --wheels DIR  install DIR's wheels into a new virtualenv first (offline node); without it, the current
                environment's python (PYTHON, default python3) runs everything
  --out DIR     where logs and the summary go (default gpu-suite-out)
  --limits ...  seconds per stage, e.g. step=150,e2e=240 (defaults install=40,compile=40,step=165,e2e=225,tests=70:
                540 s in all; the reasons are beside LIMIT in this script)
  --dry-run     the same stages on the CPU at tiny shapes (tests/test_benchmarks.py runs it)
EOF
}

set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0 WHEELS="" OUT="gpu-suite-out" LIMITS="" DATA_BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dry-run) DRY=1 ;;
    --wheels) WHEELS=${2:?--wheels needs a folder}; shift ;;
    --out) OUT=${2:?--out needs a folder}; shift ;;
    --limits) LIMITS=${2:?--limits needs STAGE=SECONDS,...}; shift ;;
    -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$DATA_BIN" ] || { echo "error: one DATA_BIN only, got $DATA_BIN and $1" >&2; exit 2; }; DATA_BIN=$1 ;;
  esac
  shift
done
[ -n "$DATA_BIN" ] || { usage >&2; exit 2; }
[ -f "$DATA_BIN/dict.txt" ] || { echo "error: $DATA_BIN/dict.txt not found: give an xlm-preprocess data-bin" >&2; exit 2; }
if [ -n "$WHEELS" ] && ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  echo "error: --wheels $WHEELS: no .whl files there (make wheelhouse writes them)" >&2; exit 2
fi
# Estimates for one H100/H200 (no GPU run of this suite has timed them yet), 540 s in all:
# install  pip of up to ~98 MiB of wheels without byte-compiling (~15 s), the requirements and import checks (~10 s)
# compile  a first torch.compile: 13 s cold on a 2-core CPU; on CUDA Triton's launcher (gcc, Python's headers) and
#          one kernel, ~20 s; what it builds is cached for the compiled rows after it
# step     2 repetitions of 4 rows, each a fresh process (~10 s: imports, CUDA, 13 steps), and the compiled row's
#          cold compile of the layers (30-90 s) in the first; the second finds inductor's caches warm
# e2e      9 fairseq-train runs and 3 steps alone of ~15-20 s each (start-up, 240 updates of ~25 ms), and the
#          compiled run's own cold compile (30-90 s: --fp16 halves the weights, so its graphs are not the step's)
# tests    tests/test_gpu.py's 9 tests on 8 processes: the longest, UNMT, is 4 fairseq processes in a row (~50 s),
#          after the workers' start (~10 s)
declare -A LIMIT=([install]=40 [compile]=40 [step]=165 [e2e]=225 [tests]=70)
for kv in ${LIMITS//,/ }; do
  key=${kv%%=*} value=${kv#*=}
  [[ -n "${LIMIT[$key]:-}" && "$value" =~ ^[0-9]+$ ]] || { echo "error: --limits $kv: use install|compile|step|e2e|tests=SECONDS" >&2; exit 2; }
  LIMIT[$key]=$value
done

PY=${PYTHON:-python3}
mkdir -p "$OUT" && rm -f "$OUT"/*.log "$OUT/stages.tsv" "$OUT/summary.md"
OUT=$(cd "$OUT" && pwd)
DATA_BIN=$(cd "$DATA_BIN" && pwd)
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore

# stop: one line on stderr and as summary.md (the suite is often run remotely and read there)
stop() {
  echo "$1" | tee "$OUT/summary.md" >&2
  exit 2
}

# "3.12 NAME.whl" for each wheel of DIR built for one CPython (ABI tag cp312); pure (none) and abi3 wheels run on any
wheel_pythons() {
  local f abi
  for f in "$WHEELS"/*.whl; do
    f=${f##*/} abi=${f%-*}  # NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl
    abi=${abi##*-}
    if [[ $abi =~ ^cp3([0-9]+) ]]; then echo "3.${BASH_REMATCH[1]} $f"; fi
  done
}

NODE_PY=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>&1) || stop "error: PYTHON=$PY does not run: ${NODE_PY##*$'\n'}"
if [ -n "$WHEELS" ]; then
  BUILT_FOR=$(wheel_pythons | cut -d' ' -f1 | sort -u | paste -sd' ' -)
  if [ -n "$BUILT_FOR" ] && [ "$BUILT_FOR" != "$NODE_PY" ]; then
    example=$(wheel_pythons | grep -v "^$NODE_PY " | head -1 | cut -d' ' -f2)
    other=""
    command -v "python$BUILT_FOR" >/dev/null 2>&1 && other=", or run with PYTHON=python$BUILT_FOR (this node has it)"
    stop "error: --wheels $WHEELS holds wheels for Python ${BUILT_FOR// / and } (e.g. $example), but this node's $PY is Python $NODE_PY: build the wheelhouse for it on a machine with the package index, make wheelhouse NODE_PYTHON=$NODE_PY (and your NODE_PACKAGES)$other"
  fi
fi

# stage NAME COMMAND...: runs under its time limit, output in $OUT/NAME.log, one status row in stages.tsv
stage() {
  local name=$1 start rc status
  shift
  start=$(date +%s)
  echo "[$(date +%T)] $name (limit ${LIMIT[$name]} s): $*"
  timeout --kill-after=10 "${LIMIT[$name]}" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status="timed out" ;;
    *) status="failed ($rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(($(date +%s) - start))" "${LIMIT[$name]}" >>"$OUT/stages.tsv"
  echo "[$(date +%T)] $name: $status"
  return $rc
}

install_wheels() {
  local venv="$OUT/venv" node_sites venv_site pip_wheel pip
  rm -rf "$venv"
  # without pip: making a virtualenv with pip runs the base interpreter's ensurepip, which Debian's python3 lacks
  "$PY" -m venv --without-pip --system-site-packages "$venv" || return 1
  node_sites=$("$PY" -c "import site, sysconfig; print('\n'.join(dict.fromkeys(site.getsitepackages() + [sysconfig.get_paths()['purelib']])))")
  venv_site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "$node_sites" >"$venv_site/_node_site_packages.pth"
  echo "the running python's site-packages, seen from the new virtualenv: $node_sites"
  pip_wheel=$(ls "$WHEELS"/pip-*.whl 2>/dev/null | tail -1)
  if [ -n "$pip_wheel" ]; then
    pip=("$venv/bin/python" "$pip_wheel/pip")  # a wheel is importable from its path: pip runs from its own wheel
  else
    pip=("$venv/bin/python" -m pip)  # a wheelhouse without pip's wheel (--project-only): the node's pip, seen from the venv
  fi
  echo "pip: ${pip[*]}"
  "${pip[@]}" install --no-index --no-deps --no-cache-dir --no-compile "$WHEELS"/*.whl || return 1
  "$venv/bin/python" benchmarks/wheelhouse.py --check-installed || return 1
  "$venv/bin/python" -c "import torch, fairseq, xlm_fairseq; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'from', torch.__file__)"
}

# torch.compile of a one-line function on the device (sys.argv[1]), run once; its first error line is the reason the
# compiled rows are skipped
COMPILE_SMOKE='
import sys, torch
device = sys.argv[1]
try:
    x = torch.linspace(0, 1, 64, device=device)
    y = torch.compile(lambda t: torch.sin(t) * 2 + 1)(x)
    assert torch.allclose(y, torch.sin(x) * 2 + 1), "the compiled function computes other values than eager"
except Exception as e:
    print(f"torch.compile unusable on this node: {type(e).__name__}: {(str(e).strip().splitlines() or [str()])[0]}")
    sys.exit(1)
print(f"torch.compile works on {device}")'

# compile_check DEVICE: the compile stage; sets SKIP (--skip-compiled REASON for step and e2e) where it fails
SKIP=() COMPILE_NOTE=""
compile_check() {
  local rc
  stage compile "$PY" - "$1" <<<"$COMPILE_SMOKE" && return 0  # the script on stdin: its log line stays short
  rc=$?
  FAILED=1
  COMPILE_NOTE=$(grep -m1 '^torch.compile unusable' "$OUT/compile.log")
  if [ -z "$COMPILE_NOTE" ]; then
    case $rc in
      124|137) COMPILE_NOTE="torch.compile unusable on this node: no answer within ${LIMIT[compile]} s" ;;
      *) COMPILE_NOTE="torch.compile unusable on this node: $(grep . "$OUT/compile.log" | tail -1)" ;;
    esac
  fi
  SKIP=(--skip-compiled "$COMPILE_NOTE")
}

FAILED=0
if [ -n "$WHEELS" ]; then
  WHEELS=$(cd "$WHEELS" && pwd)
  export -f install_wheels && export OUT PY WHEELS  # timeout runs programs, not shell functions
  if stage install bash -c install_wheels; then PY="$OUT/venv/bin/python"; else FAILED=1; fi
fi
if [ "$FAILED" = 0 ]; then
  if [ "$DRY" = 1 ]; then
    compile_check cpu
    stage step "$PY" benchmarks/pretrain_throughput.py --reps 1 --steps 2 --warmup 1 --dim 64 --layers 2 --heads 4 \
      --vocab 500 --bs 2 --slen 32 --threads 1 ${SKIP[@]+"${SKIP[@]}"} || FAILED=1
    stage e2e "$PY" benchmarks/train_e2e.py --data-bin "$DATA_BIN" --reps 1 --shape tiny --updates 12 --threads 1 \
      ${SKIP[@]+"${SKIP[@]}"} || FAILED=1
    stage tests "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py || FAILED=1
  elif "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    compile_check cuda
    stage step "$PY" benchmarks/pretrain_throughput.py --device cuda --dtype fp16 --shape base --reps 2 \
      ${SKIP[@]+"${SKIP[@]}"} || FAILED=1
    stage e2e "$PY" benchmarks/train_e2e.py --data-bin "$DATA_BIN" --device cuda --shape base --reps 1 \
      ${SKIP[@]+"${SKIP[@]}"} || FAILED=1
    stage tests "$PY" -m pytest -q -p no:cacheprovider -n 8 tests/test_gpu.py || FAILED=1
  else
    echo "error: $PY's torch sees no CUDA GPU (use --dry-run on a CPU)" | tee "$OUT/step.log" >&2
    FAILED=1
  fi
fi

{
  echo "# GPU suite, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  "$PY" -c "import platform, torch; gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU (CPU dry run)'; print(f'{gpu}; torch {torch.__version__}; Python {platform.python_version()}')" 2>&1 | tail -1
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo
  if [ -f "$OUT/install.log" ]; then
    grep -h -m1 '^requirements:' "$OUT/install.log" || echo "requirements: not checked (the install stopped before; its log's last lines below)"
    echo
  fi
  if [ -n "$COMPILE_NOTE" ]; then
    echo "$COMPILE_NOTE"
    echo
  elif [ -f "$OUT/compile.log" ]; then
    grep -h -m1 '^torch.compile' "$OUT/compile.log"
    echo
  fi
  echo "| stage | status | seconds | limit |"
  echo "|---|---|---|---|"
  [ -f "$OUT/stages.tsv" ] && while IFS=$'\t' read -r name status secs limit; do echo "| $name | $status | $secs | $limit |"; done <"$OUT/stages.tsv"
  if [ -f "$OUT/install.log" ] && ! grep -q '^install	ok' "$OUT/stages.tsv"; then
    echo
    echo "## install ($OUT/install.log)"
    echo '```'
    tail -5 "$OUT/install.log"
    echo '```'
  fi
  for name in step e2e; do
    if [ -f "$OUT/$name.log" ]; then
      echo
      echo "## $name ($OUT/$name.log)"
      echo '```'
      # the result table, or what each repetition printed before a time limit stopped it
      grep -E "^(shape|fp|bf|implementation|ours|fairseq|transformers|speedup|e2e_|run |rep |error|.*failed)" "$OUT/$name.log" | tail -40
      echo '```'
    fi
  done
  if [ -f "$OUT/tests.log" ]; then
    echo
    echo "## tests ($OUT/tests.log)"
    echo '```'
    grep -E "passed|failed|error|skipped|FAILED|ERROR" "$OUT/tests.log" | tail -15
    echo '```'
  fi
} >"$OUT/summary.md"
cat "$OUT/summary.md"
exit $FAILED
