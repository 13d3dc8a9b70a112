"""MLM+TLM pretraining with fairseq's `--fp16` learns as fp32 does: the real fairseq-train, the recipes' optimizer
(`xlm_adam`), the same flags and seed in both precisions, fairseq's loss-scaled fp16 optimizer with fp32 master
weights. Runs here on the CPU (torch computes in fp16 there too; fairseq's flattened fp32 copy is CUDA-only, so
`--fp16-no-flatten-grads`); tests/test_gpu.py runs the same check with the flattened copy and with `--amp`.

The check is powered to see a broken half-precision path, not noise: 40% of the words predicted, as the demo's
pretraining (with 15% of 4 streams x 32 tokens, ~19 predictions per batch, `--fp16`'s rounding of the predictions
to a multiple of 8 as the original, facebookresearch/XLM `xlm/trainer.py: mask_out`, drops ~3.5 of them: 18% fewer
training targets than fp32), and validation on all 40 training sentences (seen in training, so the perplexity
falls within 200 updates). Measured on the CPU, seeds 1-3: best valid mlm_ppl in fp16 within 1.00-1.05x of fp32,
and 0.57-0.69x of its first validation; a run that skipped updates (overflow) or lost precision in a layer would
miss both bounds."""

import math

from .helpers_cli import cli, lm_train_args, load_model_state, valid_metrics
from .helpers_data import make_data_bin

UPDATES = 200
RECIPE = ["--optimizer", "xlm_adam", "--word-pred", 0.4, "--best-checkpoint-metric", "mlm_ppl"]


def train(data, save, *flags, gpu: bool = False):
    args = lm_train_args(data, save, *RECIPE, *flags, max_update=UPDATES, epoch_size=80)
    proc = cli("fairseq-train", *[a for a in args if not (gpu and a == "--cpu")], timeout=900)
    return proc.stdout + proc.stderr


def check_half_learns_as_fp32(fp32_log: str, half_log: str, half_ckpt) -> None:
    ref, half = valid_metrics(fp32_log), valid_metrics(half_log)
    assert len(half) >= 9 and "loss_scale" in half_log, half_log[-3000:]  # fairseq's scaled optimizer ran
    assert "overflow" not in half_log, "a gradient overflowed at loss scale 128: an fp16 path lost its range"
    for r in half:
        assert math.isfinite(r["mlm_ppl"]) and math.isfinite(r["en_fr_mlm_ppl"]), r
    best_ref, best_half = min(r["mlm_ppl"] for r in ref), min(r["mlm_ppl"] for r in half)
    assert best_half <= 1.12 * best_ref, (best_half, best_ref)
    assert best_half <= 0.75 * half[0]["mlm_ppl"], (best_half, half[0]["mlm_ppl"])
    state = load_model_state(half_ckpt)
    assert all(v.float().isfinite().all() for v in state.values())


def half_precision_data(tmp_path_factory):
    return make_data_bin(
        str(tmp_path_factory.mktemp("half")),
        langs=("en", "fr"),
        pairs=(("en", "fr"),),
        valid_seen_in_train=True,
        n_valid=40,
    )


def test_fp16_pretraining_learns_as_fp32(tmp_path_factory, tmp_path):
    data = half_precision_data(tmp_path_factory)
    fp32 = train(data, tmp_path / "fp32")
    half = train(data, tmp_path / "fp16", "--fp16", "--fp16-init-scale", 128, "--fp16-no-flatten-grads")
    check_half_learns_as_fp32(fp32, half, tmp_path / "fp16" / "checkpoint_best.pt")
