#!/usr/bin/env bash
# Paper Table 4 (low-resource language modelling) in miniature: a causal LM of a small language (TARGET)
# trained alone, with a distant language, with a related language, and with both; each variant stops early
# on the target's valid perplexity and its best checkpoint is evaluated on the target's test set.
#
#   bash examples/lowres-lm/run.sh                      # DDTP: Czech, + English, + Slovak, + both
#   DATA_BIN=my-bin TARGET=ne DISTANT=en RELATED=hi bash examples/lowres-lm/run.sh
#   DEVICE=cuda bash examples/lowres-lm/run.sh          # on a GPU (the default: one if torch sees it)
#
# Every setting is an environment variable (defaults below); see README.md.
set -euo pipefail
case ${1:-} in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "error: run.sh takes no arguments (its settings are environment variables; see --help)" >&2; exit 2 ;;
esac
HERE=$(cd "$(dirname "$0")" && pwd)

TARGET=${TARGET:-cs}
DISTANT=${DISTANT:-en}
RELATED=${RELATED:-sk}
OUT=${OUT:-lowres-lm-out}
DATA_BIN=${DATA_BIN:-}            # empty: build the DDTP miniature into $OUT/data-bin
DDTP_LISTS=${DDTP_LISTS:-}        # a folder of apt lists already fetched (xlm-preprocess ddtp --from-lists)
CODES=${CODES:-10000}             # BPE merges of the DDTP data-bin
VARIANTS=${VARIANTS:-"target distant related both"}
ARCH=${ARCH:-xlm_small}
MODEL_ARGS=${MODEL_ARGS:-"--n-layers 3"}   # xlm_small: 256 dims, 4 heads; 3 layers
TOKENS_PER_SAMPLE=${TOKENS_PER_SAMPLE:-128}
BATCH_SIZE=${BATCH_SIZE:-16}      # streams per update
LR=${LR:-5e-4}
WARMUP=${WARMUP:-400}
VALID_EVERY=${VALID_EVERY:-100}   # updates between validations (the fairseq "epoch" of this recipe)
PATIENCE=${PATIENCE:-5}           # stop after this many validations without a better target ppl
MAX_UPDATE=${MAX_UPDATE:-20000}   # a cap; early stopping normally ends training well before
LG_SAMPLING=${LG_SAMPLING:--1}    # --lg-sampling-factor: -1 = every training language equally often
SEED=${SEED:-1}
EXTRA_TRAIN_ARGS=${EXTRA_TRAIN_ARGS:-}
DEVICE=${DEVICE:-}                # cpu or cuda; empty: cuda if torch sees a GPU
NUM_WORKERS=${NUM_WORKERS:-}      # loader processes; empty: the examples' choice for the device (0 on a CPU)

PY=${PYTHON:-python}
# the installed plugin folder, found without importing it (an import loads torch and fairseq: seconds)
USER_DIR=$($PY -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('xlm_fairseq').origin))")
if command -v xlm-eval-lm >/dev/null 2>&1; then EVAL_LM=(xlm-eval-lm); else EVAL_LM=($PY -m xlm_fairseq.eval_lm); fi
if [ -z "$DEVICE" ]; then
  DEVICE=cpu
  if $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then DEVICE=cuda; fi
fi
# the device's training flags (--cpu, or the examples' GPU precision) and loader workers: examples/recipes.py
read -r -a TRAIN_DEVICE_ARGS <<< "$($PY "$HERE/../recipes.py" --train-device "$DEVICE")"
if [ -z "$NUM_WORKERS" ]; then NUM_WORKERS=$($PY "$HERE/../recipes.py" --loader-workers "$DEVICE"); fi
DEVICE_ARGS=()                    # xlm-eval-lm's
if [ "$DEVICE" = cpu ]; then DEVICE_ARGS=(--cpu); fi
LANGS=$(printf '%s\n' "$TARGET" "$DISTANT" "$RELATED" | sort -u | paste -sd, -)
mkdir -p "$OUT"

# 1. data ---------------------------------------------------------------------------------------------------
if [ -z "$DATA_BIN" ]; then
  DATA_BIN=$OUT/data-bin
  if [ ! -f "$DATA_BIN/manifest.json" ]; then
    if [ -n "$DDTP_LISTS" ]; then FETCH=(--from-lists "$DDTP_LISTS"); else FETCH=(--lists "$OUT/apt-lists"); fi
    xlm-preprocess ddtp --langs "$LANGS" --out "$OUT/ddtp" "${FETCH[@]}"
    # the LM needs the monolingual files only: leave the parallel and classification files out
    mkdir -p "$OUT/raw"
    for split in train valid test; do
      for lang in ${LANGS//,/ }; do ln -sf "$(cd "$OUT/ddtp" && pwd)/$split.$lang" "$OUT/raw/$split.$lang"; done
    done
    xlm-preprocess prepare "$OUT/raw" "$DATA_BIN" --langs "$LANGS" --codes "$CODES"
  fi
fi
for lang in ${LANGS//,/ }; do
  for split in train valid; do
    if [ ! -f "$DATA_BIN/$split.$lang.bin" ] && [ ! -f "$DATA_BIN/$split.$lang-None.$lang.bin" ]; then
      echo "error: $DATA_BIN/$split.$lang.bin is missing: the data-bin needs train and valid of $LANGS" \
        "with one dict.txt" >&2
      exit 2
    fi
  done
done
if [ ! -f "$DATA_BIN/test.$TARGET.bin" ] && [ ! -f "$DATA_BIN/test.$TARGET-None.$TARGET.bin" ]; then
  echo "error: $DATA_BIN/test.$TARGET.bin is missing: the target language needs a test split" >&2
  exit 2
fi

# 2. train the variants -------------------------------------------------------------------------------------
steps_of() {
  case $1 in
    target) echo "$TARGET" ;;
    distant) echo "$TARGET,$DISTANT" ;;
    related) echo "$TARGET,$RELATED" ;;
    both) echo "$TARGET,$DISTANT,$RELATED" ;;
    *) echo "error: unknown variant '$1' in VARIANTS (choose from target distant related both)" >&2; exit 2 ;;
  esac
}
mkdir -p "$OUT/ckpt" "$OUT/logs" "$OUT/results"
for variant in $VARIANTS; do
  steps=$(steps_of "$variant")
  name=${steps//,/+}
  save=$OUT/ckpt/${steps//,/_}
  if [ -f "$save/done" ]; then echo "== $name: trained already ($save/done)"; continue; fi
  echo "== $name: training (log: $OUT/logs/${steps//,/_}.log)"
  log=$OUT/logs/${steps//,/_}.log
  # shellcheck disable=SC2086  # MODEL_ARGS and EXTRA_TRAIN_ARGS are lists of flags
  fairseq-train "$DATA_BIN" --user-dir "$USER_DIR" --task xlm_cross_lingual_lm \
    --langs "$LANGS" --clm-steps "$steps" --lg-sampling-factor "$LG_SAMPLING" \
    --arch "$ARCH" $MODEL_ARGS --criterion xlm_lm_loss \
    --tokens-per-sample "$TOKENS_PER_SAMPLE" --batch-size "$BATCH_SIZE" --epoch-size $((VALID_EVERY * BATCH_SIZE)) \
    --optimizer xlm_adam --adam-betas '(0.9,0.98)' --lr "$LR" --lr-scheduler inverse_sqrt --warmup-updates "$WARMUP" \
    --clip-norm 5 --max-update "$MAX_UPDATE" \
    --best-checkpoint-metric "${TARGET}_clm_ppl" --patience "$PATIENCE" --no-epoch-checkpoints \
    --save-dir "$save" --seed "$SEED" --num-workers "$NUM_WORKERS" --log-format simple --log-interval 50 \
    --no-progress-bar "${TRAIN_DEVICE_ARGS[@]}" $EXTRA_TRAIN_ARGS > "$log" 2>&1 \
    || { echo "error: fairseq-train failed for $name; see $log" >&2; tail -5 "$log" >&2; exit 1; }
  touch "$save/done"
done

# 3. evaluate each best checkpoint on the target's valid and test sets ----------------------------------------
RESULTS=()
for variant in $VARIANTS; do
  steps=$(steps_of "$variant")
  result=$OUT/results/${steps//,/_}.json
  "${EVAL_LM[@]}" "$OUT/ckpt/${steps//,/_}/checkpoint_best.pt" "$DATA_BIN" --lang "$TARGET" --split valid,test \
    ${DEVICE_ARGS[@]+"${DEVICE_ARGS[@]}"} --json > "$result.tmp"
  mv "$result.tmp" "$result"
  RESULTS+=("$result")
done

# 4. the table ------------------------------------------------------------------------------------------------
$PY - "$TARGET" "${RESULTS[@]}" <<'EOF' | tee "$OUT/table.md"
import json, os, sys
target, paths = sys.argv[1], sys.argv[2:]
print(f"| Training languages | {target} valid ppl | {target} test ppl | best at update |")
print("|---|---|---|---|")
for path in paths:
    r = json.load(open(path))
    langs = os.path.basename(path)[:-len(".json")].replace("_", " + ")
    s = r["splits"]
    print(f"| {langs} | {s['valid']['ppl']:.1f} | {s['test']['ppl']:.1f} | {r.get('num_updates', '?')} |")
EOF
