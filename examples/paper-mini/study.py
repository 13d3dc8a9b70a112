"""The study behind Table 2's recipe: which regime makes unsupervised en<->fr on DDTP learn to translate fastest on
2 CPU cores. Every configuration tried is here, each a `fairseq-train` command (run once and stamped, like the
tables), with its curves read back from the logs.

    python examples/paper-mini/study.py mlm [NAME ...]     # MLM pretraining variants (all, or these)
    python examples/paper-mini/study.py unmt [NAME ...]    # UNMT variants from a chosen pretraining
    python examples/paper-mini/study.py report              # results/study.md, study_mlm.png, study_unmt.png

Each MLM variant trains for a fixed wall-clock budget (fairseq's --stop-time-hours, training time only) on the en
and fr monolingual DDTP text of Table 2 and validates every VALID_EVERY updates; the report gives its valid MLM
perplexity against minutes beside the unigram perplexity of the same text (a model that knows only token
frequencies). Each UNMT variant starts from one pretraining (or from scratch) and validates BLEU every epoch on
the valid pairs (which choose) and on the test pairs (which are reported, never used to choose), detokenised
sacreBLEU and tokenised BLEU, against minutes of training."""

import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import Ctx, data_enfrde, fairseq_common, fmt, md_table  # noqa: E402
from pipeline import plot_panels, valid_rows  # noqa: E402

LANGS = "de,en,fr"  # the data-bin's languages (de is not used)
OPTIM = ["--optimizer", "xlm_adam", "--adam-betas", "(0.9,0.98)", "--clip-norm", 5]

# MLM pretraining: the baseline is paper-mini's pretraining before this study (3 x 256, 16 streams of 128 tokens,
# lr 5e-4 with 300 warm-up updates); each variant changes the flags it lists.
MLM_BASE = {
    "--arch": "xlm_small",
    "--n-layers": 3,
    "--dropout": 0.1,
    "--attention-dropout": 0.1,
    "--tokens-per-sample": 128,
    "--batch-size": 16,
    "--lr": "5e-4",
    "--warmup-updates": 300,
    "--word-pred": 0.15,
    "--lg-sampling-factor": 0.7,
}
MLM_VARIANTS = {
    "base": {},
    "lr1e-3": {"--lr": "1e-3", "--warmup-updates": 1000},
    "lr2e-4": {"--lr": "2e-4"},
    "no-dropout": {"--dropout": 0.0, "--attention-dropout": 0.0},
    "bs64": {"--batch-size": 64},
    "bs8": {"--batch-size": 8},
    "tps64": {"--tokens-per-sample": 64, "--batch-size": 32},
    "layers2": {"--n-layers": 2},
    "layers4": {"--n-layers": 4},
    "sinusoidal": {"--sinusoidal-embeddings": None},
    "pred40": {"--word-pred": 0.4},
}
MLM_MINUTES = 12
VALID_EVERY = 200  # updates


def flags(base: dict, variant: dict) -> list:
    merged = dict(base, **variant)
    out = []
    for k, v in merged.items():
        if v is False:
            continue
        out += [k] if v is None else [k, v]
    return out


def mlm_step(name: str) -> str:
    return f"study-mlm-{name}"


def run_mlm(ctx: Ctx, d: dict, name: str) -> None:
    variant = MLM_VARIANTS[name]
    bs = int(dict(MLM_BASE, **variant)["--batch-size"])
    step = mlm_step(name)
    ctx.R.run(
        step,
        [
            "fairseq-train",
            d["bin"],
            "--task",
            "xlm_cross_lingual_lm",
            "--langs",
            LANGS,
            "--mlm-steps",
            "en,fr",
            *flags(MLM_BASE, variant),
            "--criterion",
            "xlm_lm_loss",
            *OPTIM,
            "--lr-scheduler",
            "inverse_sqrt",
            "--warmup-init-lr",
            "1e-7",
            "--epoch-size",
            VALID_EVERY * bs,
            "--stop-time-hours",
            MLM_MINUTES / 60,
            "--best-checkpoint-metric",
            "mlm_ppl",
            *fairseq_common(ctx.R.path(step)),
        ],
    )


def unigram_ppl(data_bin: str, lang: str) -> float:
    """Perplexity of the valid text under the unigram distribution of the training text (add-one smoothed):
    what an MLM that knows only token frequencies scores."""
    from fairseq.data import data_utils

    from xlm_fairseq.dictionary import load_dictionary

    d = load_dictionary(os.path.join(data_bin, "dict.txt"))
    train = data_utils.load_indexed_dataset(os.path.join(data_bin, f"train.{lang}"), d, "mmap")
    valid = data_utils.load_indexed_dataset(os.path.join(data_bin, f"valid.{lang}"), d, "mmap")
    counts = np.bincount(np.concatenate([train[i].numpy() for i in range(len(train))]), minlength=len(d)) + 1
    logp = np.log(counts / counts.sum())
    tokens = np.concatenate([valid[i].numpy() for i in range(len(valid))])
    return float(math.exp(-logp[tokens].mean()))


def training_curve(log: str, key: str, subset: str = "valid") -> list:
    """[(minutes of training, value)] of `key` at every validation: the training time (fairseq's train_wall,
    validation excluded) is that of the epoch summary logged after each validation."""
    points, wall = [], None
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    rows = valid_rows(log, subset)
    walls = []
    for line in lines:
        if "| train | epoch" in line and "train_wall" in line:
            wall = float(line.split("train_wall ")[1].split()[0])
            walls.append(wall)
    for row, w in zip(rows, walls):
        if key in row and math.isfinite(row[key]):
            points.append((w / 60, row[key]))
    return points


def report(ctx: Ctx, d: dict) -> None:
    uni = {lang: unigram_ppl(d["bin"], lang) for lang in ("en", "fr")}
    rows, series = [], {}
    for name in MLM_VARIANTS:
        log = ctx.R.path("logs", f"{mlm_step(name)}.log")
        if not os.path.exists(log):
            continue
        c = {k: training_curve(log, f"{k}_ppl") for k in ("en_mlm", "fr_mlm", "mlm")}
        series[name] = c["mlm"]
        last = {k: v[-1][1] if v else float("nan") for k, v in c.items()}
        best = min((p for _, p in c["mlm"]), default=float("nan"))
        reach = next((m for m, p in c["mlm"] if p <= 200), None)
        rows.append(
            [
                name,
                " ".join(f"{k} {v}" for k, v in MLM_VARIANTS[name].items()) or "(baseline)",
                fmt(last["en_mlm"]),
                fmt(last["fr_mlm"]),
                fmt(best),
                fmt(reach),
            ]
        )
    text = f"""# Study: MLM pretraining on DDTP en+fr that leaves the unigram plateau

Unigram perplexity of the valid text (train frequencies, add-one): en {uni["en"]:.1f}, fr {uni["fr"]:.1f}.
Each variant: {MLM_MINUTES} minutes of training on 2 cores, validation every {VALID_EVERY} updates.

{md_table(["variant", "flags", "en ppl (last)", "fr ppl (last)", "mean ppl (best)", "minutes to ppl 200"], rows)}
"""
    os.makedirs(ctx.results, exist_ok=True)
    with open(os.path.join(ctx.results, "study.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(ctx.results, "study.json"), "w", encoding="utf-8") as f:
        json.dump({"unigram_ppl": uni, "mlm": series}, f, indent=1)
    plot_panels(
        [
            dict(
                series=series,
                ylabel="valid MLM ppl (mean en, fr)",
                xlabel="minutes of training",
                title="MLM variants",
                log_y=True,
            )
        ],
        os.path.join(ctx.results, "study_mlm.png"),
    )
    print(text)


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["mlm", "unmt", "report"])
    p.add_argument("names", nargs="*")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "paper-mini-out"))
    args = p.parse_args(argv)
    ctx = Ctx(1.0, args.out)
    d = data_enfrde(ctx)
    if args.what == "mlm":
        for name in args.names or list(MLM_VARIANTS):
            run_mlm(ctx, d, name)
    elif args.what == "report":
        report(ctx, d)


if __name__ == "__main__":
    main()
