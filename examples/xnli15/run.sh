#!/usr/bin/env bash
# Full-scale XNLI-15 (paper Table 1). Needs GPUs and the internet.
# Usage: ./run.sh data|mlm|tlm|xnli   settings: NGPU (8), WORK, MODEL (xnli)
set -euo pipefail
case ${1:-} in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
NGPU=${NGPU:-8}
WORK=${WORK:-$PWD/xnli15-work}
# the installed plugin folder, found without importing it (an import loads torch and fairseq: seconds)
USER_DIR=$(python -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('xlm_fairseq').origin))")
# the examples' mixed precision on a GPU (examples/recipes.py: CUDA_PRECISION)
PRECISION=$(python "$(dirname "$0")/../recipes.py" --train-device cuda)
LANGS=ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh
PAIRS="ar bg de el es fr hi ru sw th tr ur vi zh"
EPOCH=$((200000 * NGPU))
mkdir -p "$WORK"

data() {
  for l in ${LANGS//,/ }; do
    xlm-preprocess wikipedia --lang "$l" --download --dump-dir "$WORK/dumps" --output "$WORK/raw"
  done
  for l in $PAIRS; do
    xlm-preprocess opus --pair "en-$l" --download --download-dir "$WORK/opus" --output "$WORK/raw" \
      --corpus MultiUN/v1 --corpus EUbookshop/v2 --corpus Tanzil/v1 --corpus GlobalVoices/v2018q4 \
      --corpus OpenSubtitles/v2018 || echo "some OPUS corpora do not exist for en-$l; the others are kept"
  done
  xlm-preprocess prepare "$WORK/raw" "$WORK/data-bin" --langs "$LANGS" --codes 80000 --max-vocab 95000 \
    --alpha 0.5 --lowercase-strip-accents --workers "$(nproc)"
  # XNLI-1.0 (dev/test) and XNLI-MT-1.0 (English train): https://dl.fbaipublicfiles.com/XNLI/
  wget -c -P "$WORK" https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip https://dl.fbaipublicfiles.com/XNLI/XNLI-MT-1.0.zip
  (cd "$WORK" && unzip -o -q XNLI-1.0.zip && unzip -o -q XNLI-MT-1.0.zip)
  xlm-preprocess xnli --xnli-dir "$WORK/XNLI-1.0" --mt-dir "$WORK/XNLI-MT-1.0" \
    --out "$WORK/xnli-raw"
  xlm-preprocess classification --input-dir "$WORK/xnli-raw" --destdir "$WORK/xnli-bin" \
    --codes-file "$WORK/data-bin/work/codes" --dict "$WORK/data-bin/dict.txt" --lowercase-strip-accents \
    --labels contradiction,neutral,entailment --workers "$(nproc)"
}

pretrain_flags() {
  echo --user-dir "$USER_DIR" --langs "$LANGS" --arch xlm_mlm_xnli15_1024 --dropout 0.1 --attention-dropout 0.1 \
    --criterion xlm_lm_loss --tokens-per-sample 256 --batch-size 32 --lg-sampling-factor 0.7 \
    --optimizer xlm_adam --adam-betas "(0.9,0.98)" --lr 1e-4 --lr-scheduler inverse_sqrt --warmup-updates 4000 \
    --warmup-init-lr 1e-7 --clip-norm 5 --epoch-size "$EPOCH" --distributed-world-size "$NGPU" \
    --ddp-backend legacy_ddp $PRECISION --num-workers 4 --best-checkpoint-metric mlm_ppl --patience 10
}

mlm() {
  fairseq-train "$WORK/data-bin" --task xlm_cross_lingual_lm --mlm-steps "$LANGS" $(pretrain_flags) \
    --save-dir "$WORK/mlm" --tensorboard-logdir "$WORK/mlm/tb"
}

tlm() {
  steps=$LANGS
  for l in $PAIRS; do steps="$steps,en-$l,$l-en"; done
  fairseq-train "$WORK/data-bin" --task xlm_tlm --mlm-steps "$steps" --max-tokens 4000 $(pretrain_flags) \
    --finetune-from-model "$WORK/mlm/checkpoint_best.pt" --save-dir "$WORK/mlm-tlm" --tensorboard-logdir "$WORK/mlm-tlm/tb"
}

xnli() {
  model=${MODEL:-$WORK/mlm-tlm/checkpoint_best.pt}
  fairseq-train "$WORK/xnli-bin" --user-dir "$USER_DIR" --task xlm_classification --langs "$LANGS" \
    --train-langs en --arch xlm_mlm_xnli15_1024 --dropout 0.1 --attention-dropout 0.1 \
    --criterion xlm_classification_loss --finetune-from-model "$model" --max-len 256 \
    --batch-size 8 --optimizer xlm_adam --lr 5e-6 --epoch-size 20000 --max-epoch 250 \
    --valid-subset valid,test --best-checkpoint-metric acc --maximize-best-checkpoint-metric --patience 10 \
    --save-dir "$WORK/xnli" --num-workers 2
}

"${1:?usage: ./run.sh data|mlm|tlm|xnli}"
