#!/usr/bin/env bash
# Full-scale supervised ro-en (+BT) (paper Table 3). Needs GPUs and the internet.
# Usage: ./run.sh data | ./run.sh mlm | [BT=1] ./run.sh mt ro-en[,en-ro] | ./run.sh test
# Settings: NGPU (8), WORK, INIT (mt)
set -euo pipefail
case ${1:-} in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
STAGE=$1
NGPU=${NGPU:-8}
WORK=${WORK:-$PWD/supervised-ro-en}
# the installed plugin folder, found without importing it (an import loads torch and fairseq: seconds)
USER_DIR=$(python -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('xlm_fairseq').origin))")
# the examples' mixed precision on a GPU (examples/recipes.py: CUDA_PRECISION)
PRECISION=$(python "$(dirname "$0")/../recipes.py" --train-device cuda)
EPOCH=$((200000 * NGPU))
mkdir -p "$WORK"

data() {
  xlm-preprocess opus --pair en-ro --download --download-dir "$WORK/opus" --corpus Europarl/v8 --corpus SETIMES/v2 \
    --output "$WORK/raw" --valid-size 0 --test-size 0
  xlm-preprocess wmt --direction ro-en --testset wmt16/dev --split valid --output "$WORK/raw" --also-mono
  xlm-preprocess wmt --direction ro-en --testset wmt16 --split test --output "$WORK/raw" --also-mono
  for l in en ro; do
    for y in 2015 2016 2017; do
      wget -c -P "$WORK/news" "https://data.statmt.org/news-crawl/$l/news.$y.$l.shuffled.deduped.gz" || true
    done
    zcat "$WORK"/news/news.*."$l".shuffled.deduped.gz | head -n 5000000 > "$WORK/raw/train.$l"
  done
  xlm-preprocess prepare "$WORK/raw" "$WORK/data-bin" --langs en,ro --codes 60000 --workers "$(nproc)"
}

common() {
  echo --user-dir "$USER_DIR" --langs en,ro --arch xlm_mlm_enro_1024 --dropout 0.1 --attention-dropout 0.1 \
    --optimizer xlm_adam --adam-betas "(0.9,0.98)" --lr 1e-4 --lr-scheduler inverse_sqrt --warmup-updates 4000 \
    --warmup-init-lr 1e-7 --clip-norm 5 --epoch-size "$EPOCH" --distributed-world-size "$NGPU" \
    --ddp-backend legacy_ddp $PRECISION --num-workers 4
}

mlm() {
  fairseq-train "$WORK/data-bin" --task xlm_cross_lingual_lm --mlm-steps en,ro --criterion xlm_lm_loss \
    --tokens-per-sample 256 --batch-size 32 $(common) --best-checkpoint-metric mlm_ppl --patience 10 --save-dir "$WORK/mlm"
}

mt() {
  steps=${2:?give the MT steps, e.g. ro-en or ro-en,en-ro}
  bt=()
  if [ "${BT:-0}" = 1 ]; then bt=(--bt-steps en-ro-en,ro-en-ro); fi
  init=${INIT:-$WORK/mlm/checkpoint_best.pt}
  fairseq-train "$WORK/data-bin" --task xlm_unsupervised_mt --mt-steps "$steps" "${bt[@]}" \
    --reload-encoder "$init" --reload-decoder "$init" --criterion xlm_mt_loss --max-tokens 2000 $(common) \
    --eval-bleu --best-checkpoint-metric ro-en_mt_bleu --maximize-best-checkpoint-metric --patience 10 \
    --save-dir "$WORK/mt-${steps//,/_}${BT:+-bt}"
}

test() {
  for ck in "$WORK"/mt-*/checkpoint_best.pt; do
    echo "$ck"
    fairseq-generate "$WORK/data-bin" --user-dir "$USER_DIR" --task xlm_unsupervised_mt --langs en,ro \
      --source-lang ro --target-lang en --path "$ck" --gen-subset test --beam 4 --max-len-a 1.5 --max-len-b 10 \
      --post-process subword_nmt --batch-size 128 | tail -1
  done
}

"$STAGE" "$@"
