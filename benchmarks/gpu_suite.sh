#!/usr/bin/env bash
# The project's GPU measurements in one command, sized for 8 minutes of device time on one H100/H200:
#   1. the model step at the shape of the released xlm_mlm_enfr_1024 (6 x 1024, 8 heads, 64k words), --fp16 autocast:
#      ours, fairseq's masked_lm (RoBERTa) and transformers' XLM, MFU against a matmul timed in the same run
#      (benchmarks/pretrain_throughput.py);
#   2. fairseq-train end to end at that model shape with --fp16 on DATA_BIN: MLM (ours beside masked_lm, with the
#      step alone beside each), MLM+TLM, and UNMT with online back-translation (ours beside fairseq's
#      online_backtranslation) (benchmarks/train_e2e.py).
# DATA_BIN: an `xlm-preprocess prepare` data-bin with en, fr and en-fr (the DDTP one is about 14 MB without its
# work/ folder: `xlm-preprocess ddtp --langs en,fr --out raw --disjoint-mono` then
# `xlm-preprocess prepare raw gpu-bin --langs en,fr --codes 8000`, then carry gpu-bin to the device).
#
#   bash benchmarks/gpu_suite.sh DATA_BIN              # on a GPU
#   bash benchmarks/gpu_suite.sh --dry-run DATA_BIN    # the same steps on the CPU at tiny shapes (a test runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
DATA_BIN=${1:?usage: bash benchmarks/gpu_suite.sh [--dry-run] DATA_BIN}
PY=${PYTHON:-python}
[ -f "$DATA_BIN/dict.txt" ] || { echo "error: $DATA_BIN/dict.txt not found: give an xlm-preprocess data-bin" >&2; exit 2; }

if [ "$DRY" = 1 ]; then
  $PY benchmarks/pretrain_throughput.py --reps 1 --steps 2 --warmup 1 --dim 64 --layers 2 --heads 4 --vocab 500 \
    --bs 2 --slen 32
  $PY benchmarks/train_e2e.py --data-bin "$DATA_BIN" --reps 1 --shape tiny --updates 12
else
  $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'error: no CUDA GPU (use --dry-run on a CPU)')"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  timeout 200 $PY benchmarks/pretrain_throughput.py --device cuda --dtype fp16 --shape base --reps 3
  timeout 270 $PY benchmarks/train_e2e.py --data-bin "$DATA_BIN" --device cuda --shape base --reps 1
fi
