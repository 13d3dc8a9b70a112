#!/usr/bin/env bash
# Full-scale unsupervised MT (paper Table 2). Needs GPUs and the internet.
# Usage: ./run.sh en fr data|mlm|unmt|test   (also de en, en ro); settings: NGPU (8), WORK, INIT (unmt)
set -euo pipefail
case ${1:-} in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
A=$1; B=$2; STAGE=$3
NGPU=${NGPU:-8}
WORK=${WORK:-$PWD/unmt-$A-$B}
# the installed plugin folder, found without importing it (an import loads torch and fairseq: seconds)
USER_DIR=$(python -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('xlm_fairseq').origin))")
# the examples' mixed precision on a GPU (examples/recipes.py: CUDA_PRECISION)
PRECISION=$(python "$(dirname "$0")/../recipes.py" --train-device cuda)
LANGS=$(echo -e "$A\n$B" | sort | paste -sd,)
EPOCH=$((200000 * NGPU))
declare -A VALID=([en-fr]=wmt13 [de-en]=wmt13 [en-ro]=wmt16/dev)
declare -A TEST=([en-fr]=wmt14 [de-en]=wmt16 [en-ro]=wmt16)
PAIR=$(echo -e "$A\n$B" | sort | paste -sd-)
mkdir -p "$WORK"

data() {
  for l in $A $B; do
    for y in 2007 2008 2009 2010 2011 2012 2013 2014 2015 2016 2017; do
      wget -c -P "$WORK/news" "https://data.statmt.org/news-crawl/$l/news.$y.$l.shuffled.deduped.gz" || true
    done
    zcat "$WORK"/news/news.*."$l".shuffled.deduped.gz | head -n 5000000 > "$WORK/mono.$l"
    mkdir -p "$WORK/raw" && cp "$WORK/mono.$l" "$WORK/raw/train.$l"
  done
  xlm-preprocess wmt --direction "$A-$B" --testset "${VALID[$PAIR]}" --split valid --output "$WORK/raw" --also-mono
  xlm-preprocess wmt --direction "$A-$B" --testset "${TEST[$PAIR]}" --split test --output "$WORK/raw" --also-mono
  xlm-preprocess prepare "$WORK/raw" "$WORK/data-bin" --langs "$LANGS" --codes 60000 --alpha 0.5 --workers "$(nproc)"
}

common() {
  echo --user-dir "$USER_DIR" --langs "$LANGS" --arch xlm_mlm_enfr_1024 --dropout 0.1 --attention-dropout 0.1 \
    --optimizer xlm_adam --lr 1e-4 --clip-norm 5 --epoch-size "$EPOCH" --distributed-world-size "$NGPU" \
    --ddp-backend legacy_ddp $PRECISION --num-workers 4
}

# the original's en-fr MLM command: plain Adam (betas 0.9, 0.999) at a constant learning rate
mlm() {
  fairseq-train "$WORK/data-bin" --task xlm_cross_lingual_lm --mlm-steps "$A,$B" --criterion xlm_lm_loss \
    --tokens-per-sample 256 --batch-size 32 $(common) --adam-betas "(0.9,0.999)" --lr-scheduler fixed \
    --best-checkpoint-metric mlm_ppl --patience 10 --save-dir "$WORK/mlm"
}

unmt() {
  init=${INIT:-$WORK/mlm/checkpoint_best.pt}
  fairseq-train "$WORK/data-bin" --task xlm_unsupervised_mt --ae-steps "$A,$B" --bt-steps "$A-$B-$A,$B-$A-$B" \
    --word-shuffle 3 --word-dropout 0.1 --word-blank 0.1 --lambda-ae 0:1,100000:0.1,300000:0 \
    --reload-encoder "$init" --reload-decoder "$init" --criterion xlm_mt_loss --max-tokens 2000 $(common) \
    --adam-betas "(0.9,0.98)" --lr-scheduler inverse_sqrt --warmup-updates 4000 --warmup-init-lr 1e-7 \
    --eval-bleu --best-checkpoint-metric "$A-$B"_mt_bleu --maximize-best-checkpoint-metric --patience 10 \
    --save-dir "$WORK/unmt"
}

test() {
  for dir in "$A $B" "$B $A"; do set -- $dir
    fairseq-generate "$WORK/data-bin" --user-dir "$USER_DIR" --task xlm_unsupervised_mt --langs "$LANGS" \
      --source-lang "$1" --target-lang "$2" --path "$WORK/unmt/checkpoint_best.pt" --gen-subset test \
      --beam 1 --max-len-a 1.5 --max-len-b 10 --post-process subword_nmt --batch-size 128 | tail -1
  done
}

"$STAGE"
