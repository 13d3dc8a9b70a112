#!/usr/bin/env bash
# The project's GPU checks in one command, for a node with CUDA and torch but no package index (and anywhere else).
usage() {
  cat <<'EOF'
usage: bash benchmarks/gpu_suite.sh [--wheels DIR] [--out DIR] [--limits STAGE=S,...] [--dry-run] DATA_BIN

The project's GPU measurements and GPU tests in one command, sized for 9 minutes on one H100/H200. Stages, each
with its own time limit (a failure or a timeout is reported and the next stage runs):
  install  (--wheels DIR only) a virtualenv that sees this machine's torch (--system-site-packages, plus a .pth
           file naming the running python3's site-packages: where python3 is itself a virtualenv, the first alone
           sees the base interpreter's packages, not its torch), the wheels of DIR installed with --no-index;
           DIR comes from `make wheelhouse` on a machine with the index (see benchmarks/wheelhouse.py)
  step     the model step at the released xlm_mlm_enfr_1024's shape (6 x 1024, 8 heads, 64k words, 32 x 256
           tokens, fp16 autocast): ours, ours with --compile-layers, fairseq's masked_lm, transformers' XLM, MFU
           against a matmul timed in the same run (benchmarks/pretrain_throughput.py)
  e2e      fairseq-train end to end at that model shape on DATA_BIN: MLM (ours, compiled, --amp, fairseq's
           masked_lm, each beside its model step alone), MLM+TLM, UNMT with online back-translation beside fairseq's
           online_backtranslation (benchmarks/train_e2e.py)
  tests    tests/test_gpu.py (pytest-xdist, 4 processes)
Every log goes into the output folder (default gpu-suite-out/), and summary.md there, printed last, holds each
stage's status and time, the machine, and the figures.

  DATA_BIN      an xlm-preprocess data-bin with en, fr and en-fr; the DDTP one is ~14 MB without its work/ folder:
                xlm-preprocess ddtp --langs en,fr --out raw --disjoint-mono; xlm-preprocess prepare raw bin
                --langs en,fr --codes 8000
  --wheels DIR  install DIR's wheels into a new virtualenv first (offline node); without it, the current
                environment's python (PYTHON, default python3) runs everything
  --out DIR     where logs and the summary go (default gpu-suite-out)
  --limits ...  seconds per stage, e.g. step=150,e2e=240 (defaults install=60,step=120,e2e=210,tests=150)
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
declare -A LIMIT=([install]=60 [step]=120 [e2e]=210 [tests]=150)
for kv in ${LIMITS//,/ }; do
  key=${kv%%=*} value=${kv#*=}
  [[ -n "${LIMIT[$key]:-}" && "$value" =~ ^[0-9]+$ ]] || { echo "error: --limits $kv: use install|step|e2e|tests=SECONDS" >&2; exit 2; }
  LIMIT[$key]=$value
done

PY=${PYTHON:-python3}
mkdir -p "$OUT" && rm -f "$OUT"/*.log "$OUT/stages.tsv" "$OUT/summary.md"
OUT=$(cd "$OUT" && pwd)
DATA_BIN=$(cd "$DATA_BIN" && pwd)
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore

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
  local venv="$OUT/venv" node_sites venv_site
  rm -rf "$venv"
  "$PY" -m venv --system-site-packages "$venv" || return 1
  node_sites=$("$PY" -c "import site, sysconfig; print('\n'.join(dict.fromkeys(site.getsitepackages() + [sysconfig.get_paths()['purelib']])))")
  venv_site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "$node_sites" >"$venv_site/_node_site_packages.pth"
  echo "the running python's site-packages, seen from the new virtualenv: $node_sites"
  "$venv/bin/python" -m pip install --no-index --no-deps --no-cache-dir --no-compile "$WHEELS"/*.whl || return 1
  "$venv/bin/python" -c "import torch, fairseq, xlm_fairseq; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'from', torch.__file__)"
}

FAILED=0
if [ -n "$WHEELS" ]; then
  WHEELS=$(cd "$WHEELS" && pwd)
  export -f install_wheels && export OUT PY WHEELS  # timeout runs programs, not shell functions
  if stage install bash -c install_wheels; then PY="$OUT/venv/bin/python"; else FAILED=1; fi
fi
if [ "$FAILED" = 0 ]; then
  if [ "$DRY" = 1 ]; then
    stage step "$PY" benchmarks/pretrain_throughput.py --reps 1 --steps 2 --warmup 1 --dim 64 --layers 2 --heads 4 \
      --vocab 500 --bs 2 --slen 32 --threads 1 || FAILED=1
    stage e2e "$PY" benchmarks/train_e2e.py --data-bin "$DATA_BIN" --reps 1 --shape tiny --updates 12 --threads 1 || FAILED=1
    stage tests "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py || FAILED=1
  elif "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    stage step "$PY" benchmarks/pretrain_throughput.py --device cuda --dtype fp16 --shape base --reps 2 || FAILED=1
    stage e2e "$PY" benchmarks/train_e2e.py --data-bin "$DATA_BIN" --device cuda --shape base --reps 1 || FAILED=1
    stage tests "$PY" -m pytest -q -p no:cacheprovider -n 4 tests/test_gpu.py || FAILED=1
  else
    echo "error: $PY's torch sees no CUDA GPU (use --dry-run on a CPU)" | tee "$OUT/step.log" >&2
    FAILED=1
  fi
fi

{
  echo "# GPU suite, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  "$PY" -c "import platform, torch; gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU (CPU dry run)'; print(f'{gpu}; torch {torch.__version__}; Python {platform.python_version()}')" 2>&1
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo
  echo "| stage | status | seconds | limit |"
  echo "|---|---|---|---|"
  [ -f "$OUT/stages.tsv" ] && while IFS=$'\t' read -r name status secs limit; do echo "| $name | $status | $secs | $limit |"; done <"$OUT/stages.tsv"
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
