"""The study behind Table 2's recipe: which regime makes unsupervised en<->fr on DDTP learn to translate fastest on
2 CPU cores. Every configuration is here, each a `fairseq-train` command (run once and stamped, like the tables),
with its curves read back from the logs; the report shows those that ran.

    python examples/paper-mini/study.py mlm [NAME ...] [--threads 1] [--minutes M]   # LM pretraining variants
    python examples/paper-mini/study.py unmt [NAME ...] --init VARIANT|random          # UNMT from a pretraining
    python examples/paper-mini/study.py report        # results/study.md, study.json, study_mlm.png, study_unmt.png

--device cuda trains on a GPU (mixed precision; --threads sets CPU threads and does nothing there); --dry-run prints
every command and runs nothing.

Each run stops after a wall-clock budget (fairseq's --stop-time-hours: time since the run started, validation
included, plus the training time of a checkpoint it was restored from); curves are plotted against minutes of
training, validation excluded. An LM variant trains on the en and fr monolingual DDTP text of Table 2 and
validates every VALID_EVERY updates; the report gives its valid perplexity beside the unigram perplexity of the
same text (a model that knows only token frequencies). A UNMT run starts from one pretraining (or from scratch)
and validates BLEU every epoch on the valid pairs (which choose) and on the test pairs (which are reported, never
used to choose), detokenised sacreBLEU and tokenised BLEU."""

import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import (  # noqa: E402
    MODEL,
    MT_BATCHES,
    OPTIM,
    Ctx,
    copied_source_sacrebleu,
    data_enfrde,
    fmt,
    lm_valid,
    lm_valid_ppl,
    md_table,
    recipes,
)
from pipeline import plot_panels, train_rows, unigram_ppl, valid_rows  # noqa: E402

LANGS = "de,en,fr"  # the data-bin's languages (de is not used)
TABLE_MODEL = dict(zip(MODEL[::2], MODEL[1::2]))  # the model of every table, as flags a variant can override

# MLM pretraining: the baseline is paper-mini's pretraining before this study (3 x 256, 16 streams of 128 tokens,
# lr 5e-4 with 300 warm-up updates); each variant changes the flags it lists.
MLM_BASE = {
    **TABLE_MODEL,
    "--tokens-per-sample": 128,
    "--batch-size": 16,
    "--lr": "5e-4",
    "--warmup-updates": 300,
    "--word-pred": 0.15,
    "--lg-sampling-factor": 0.7,
}
FAST_LEARNED_POS = {
    "--lr": "1e-3",
    "--word-pred": 0.4,
    "--dropout": 0.0,
    "--attention-dropout": 0.0,
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
    "lr2e-3": {"--lr": "2e-3", "--warmup-updates": 1000},
    # the knobs expected to shorten the plateau, together (measured: no faster than the baseline at 12 minutes)
    "fast": {
        "--lr": "1e-3",
        "--sinusoidal-embeddings": None,
        "--word-pred": 0.4,
        "--dropout": 0.0,
        "--attention-dropout": 0.0,
    },
    # a CLM leaves the unigram plateau within minutes (the state at a position holds the previous word: a bigram
    # model needs no attention); an MLM started from it inherits attention that already reads the neighbours
    "clm": {"objective": "clm"},
    # (its --stop-time-hours budget counts the CLM's training time too: fairseq restores it with the checkpoint)
    "mlm-from-clm": {"init": "clm"},
    # the same with learned positions (sinusoidal ones were slower alone)
    "fast-learned-pos": FAST_LEARNED_POS,
    # fast-learned-pos on streams of 32 tokens (64 per update, the same tokens): uniform attention over 32 tokens
    # already carries the neighbours' topic, where over 128 it is diluted across several sentences
    "fast-tps32": {
        **FAST_LEARNED_POS,
        "--tokens-per-sample": 32,
        "--batch-size": 64,
    },
    # the same on streams of 64 tokens
    "fast-tps64": {
        **FAST_LEARNED_POS,
        "--tokens-per-sample": 64,
        "--batch-size": 32,
    },
    # fast-learned-pos with 4x the tokens per update: fewer, less noisy updates
    "fast-bs64": {
        **FAST_LEARNED_POS,
        "--batch-size": 64,
    },
}
MLM_MINUTES = 12
VALID_EVERY = 200  # updates


# UNMT: Table 2's recipe (denoising + online back-translation, xlm_small 3 layers, lr 3e-4); `--init` picks the
# pretraining (an MLM variant's best checkpoint for encoder and decoder) or random initialisation.
UNMT_BASE = {
    **TABLE_MODEL,
    "--word-shuffle": 3,
    "--word-dropout": 0.1,
    "--word-blank": 0.1,
    "--lr": "3e-4",
}
UNMT_VARIANTS = {
    "base": {},
    "lr1e-4": {"--lr": "1e-4"},
    "ae-decay": {"--lambda-ae": "0:1,1000:0.1,3000:0"},
}
UNMT_VALID_EVERY = 300  # updates, about 4 minutes on one core
UNMT_MINUTES = 25


def flags(base: dict, variant: dict) -> list:
    merged = dict(base, **variant)
    out = []
    for k, v in merged.items():
        if v is False or not k.startswith("--"):
            continue
        out += [k] if v is None else [k, v]
    return out


def mlm_step(name: str, threads: int) -> str:
    return f"study-mlm-{name}" + ("" if threads == 2 else f"-{threads}thread")


def run_mlm(ctx: Ctx, d: dict, name: str, threads: int, minutes: float) -> None:
    variant = MLM_VARIANTS[name]
    bs = int(dict(MLM_BASE, **variant)["--batch-size"])
    step = mlm_step(name, threads)
    objective = variant.get("objective", "mlm")
    init = []
    if "init" in variant:
        start = ctx.R.path(mlm_step(variant["init"], threads), "checkpoint_best.pt")
        if not os.path.exists(start) and not ctx.dry_run:
            raise SystemExit(f"{name} starts from {variant['init']}: run `study.py mlm {variant['init']}` first")
        reset = ["--reset-optimizer", "--reset-dataloader", "--reset-lr-scheduler", "--reset-meters"]
        init = ["--restore-file", start, *reset]
    ctx.R.run(
        step,
        recipes.lm_pretrain(
            d["bin"],
            LANGS,
            "en,fr",
            objective=objective,
            flags=flags(MLM_BASE, variant),
            start=init,
            optimizer=OPTIM,
            epoch_size=VALID_EVERY * bs,
            stop_hours=minutes / 60,
            run=ctx.train_run(ctx.R.path(step)),
        ),
        env=threads_env(ctx, threads),
    )


def threads_env(ctx: Ctx, threads: int) -> dict:
    """The compute threads of a run on a CPU (--threads); nothing on a GPU."""
    return {"OMP_NUM_THREADS": threads} if ctx.device == "cpu" else {}


def unmt_step(name: str, init: str, threads: int) -> str:
    return f"study-unmt-{name}-from-{init}" + ("" if threads == 2 else f"-{threads}thread")


def run_unmt(ctx: Ctx, d: dict, name: str, init: str, threads: int, minutes: float) -> None:
    """UNMT for `minutes` of training from the best checkpoint of the MLM variant `init` (its 2-core run if there
    is one) or from random weights (`init` = random); valid and test BLEU (greedy) at every validation."""
    reload = None
    if init != "random":
        found = [ctx.R.path(mlm_step(init, t), "checkpoint_best.pt") for t in (2, 1) if ctx.R.done(mlm_step(init, t))]
        if not found and not ctx.dry_run:
            raise SystemExit(f"--init {init}: that MLM variant has not run; run `study.py mlm {init}` first")
        ckpt = found[0] if found else ctx.R.path(mlm_step(init, threads), "checkpoint_best.pt")
        reload = f"{ckpt},{ckpt}"
    step = unmt_step(name, init, threads)
    ctx.R.run(
        step,
        recipes.mt_train(
            d["bin"],
            LANGS,
            ae="en,fr",
            bt="en-fr-en,fr-en-fr",
            noise=(),  # in the flags, which the variants change
            flags=flags(UNMT_BASE, UNMT_VARIANTS[name]),
            **MT_BATCHES,
            optimizer=OPTIM,
            scheduler="fixed",
            warmup=100,
            epoch_size=64 * UNMT_VALID_EVERY,
            stop_hours=minutes / 60,
            valid_subset="valid,test",
            eval_bleu=True,
            eval_bleu_bpe="subword_nmt",
            reload_model=reload,
            run=ctx.train_run(ctx.R.path(step)),
        ),
        env=threads_env(ctx, threads),
    )


def training_curve(log: str, key: str, subset: str = "valid") -> list:
    """[(minutes of training, value)] of `key` at every validation of `subset`. Minutes of training are the sum of
    fairseq's per-epoch train_wall up to that validation (validation time excluded)."""
    walls, total = [], 0.0
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "| train | epoch" in line and "train_wall" in line:
                total += float(line.split("train_wall ")[1].split()[0])
                walls.append(total)
    return [
        (w / 60, row[key]) for row, w in zip(valid_rows(log, subset), walls) if math.isfinite(row.get(key, math.nan))
    ]


def validate_mlm(ctx: Ctx, d: dict, step: str, tokens_per_sample: int) -> str:
    """Valid MLM perplexity of the best checkpoint of `step` at 15% predicted words (common.lm_valid): its log."""
    checkpoint = ctx.R.path(step, "checkpoint_best.pt")
    return lm_valid(ctx, f"{step}-valid15", d["bin"], LANGS, "mlm", "en,fr", checkpoint, tokens_per_sample)


def mlm_runs(ctx: Ctx) -> list:
    """(variant, threads, step) of every MLM variant that ran."""
    return [(name, t, mlm_step(name, t)) for name in MLM_VARIANTS for t in (2, 1) if ctx.R.done(mlm_step(name, t))]


def unmt_runs(ctx: Ctx) -> list:
    """(variant, init, threads, step) of every UNMT run that finished."""
    inits = ["random"] + list(MLM_VARIANTS)
    return [
        (name, init, t, unmt_step(name, init, t))
        for name in UNMT_VARIANTS
        for init in inits
        for t in (2, 1)
        if ctx.R.done(unmt_step(name, init, t))
    ]


def earlier_report(results: str) -> dict:
    """The rows and curves of the report already in `results` ({"mlm"|"unmt": {"rows": {label: cells}, "series":
    {name: curve}}}): a run that ran on an earlier machine, whose log is not here, stays in the new report."""
    out = {part: {"rows": {}, "series": {}} for part in ("mlm", "unmt")}
    path = os.path.join(results, "study.json")
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    for part in out:
        out[part]["series"] = saved.get(part, {})
        out[part]["rows"] = saved.get("rows", {}).get(part) or markdown_rows(os.path.join(results, "study.md"), part)
    return out


def markdown_rows(path: str, part: str) -> dict:
    """{label: cells} of the table of section `part` (mlm: the first, unmt: the second) of a study.md (reports
    written before study.json kept its rows)."""
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        sections = f.read().split("\n## ")[1:]
    section = sections[0 if part == "mlm" else 1] if len(sections) == 2 else ""
    rows = [line.strip().strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows[1:]}


def carry_over(rows: list, series: dict, earlier: dict, curves_of) -> str:
    """Append the earlier report's rows (marked *) and curves of runs that are not here; returns the footnote."""
    here = {cells[0] for cells in rows}
    kept = [label for label in earlier["rows"] if label.rstrip(" *") not in here]
    for label in kept:
        rows.append([label.rstrip(" *") + " *"] + earlier["rows"][label][1:])
        for name in curves_of(label.rstrip(" *")):
            if name in earlier["series"]:
                series[name] = earlier["series"][name]
    if not kept:
        return ""
    return "\n* ran on an earlier machine: its log is not here; row and curve are carried over from its report.\n"


def describe(variant: dict) -> str:
    words = ["CLM (`--clm-steps`)"] if variant.get("objective") == "clm" else []
    words += [f"starts from {variant['init']}'s best checkpoint"] if "init" in variant else []
    return " ".join(words + [str(f) for f in flags({}, variant)]) or "(baseline)"


def mlm_validations(ctx: Ctx, d: dict) -> dict:
    """{step: log} of the 15% valid perplexity of every MLM run that ran (validate_mlm)."""
    logs = {}
    for name, _, step in mlm_runs(ctx):
        variant = dict(MLM_BASE, **MLM_VARIANTS[name])
        if MLM_VARIANTS[name].get("objective", "mlm") == "mlm":
            logs[step] = validate_mlm(ctx, d, step, int(variant["--tokens-per-sample"]))
    return logs


def mlm_report(ctx: Ctx, d: dict, uni: dict, earlier: dict, validated: dict) -> tuple:
    rows, series = [], {}
    for name, threads, step in mlm_runs(ctx):
        log = ctx.R.path("logs", f"{step}.log")
        objective = MLM_VARIANTS[name].get("objective", "mlm")
        curve = training_curve(log, f"{objective}_ppl")
        label = f"{name} ({threads} core{'s' if threads > 1 else ''})"
        series[label] = curve
        final = lm_valid_ppl(validated[step]) if objective == "mlm" else valid_rows(log)[-1]
        reach = next((m for m, p in curve if p <= 200), None)
        ups = [r["ups"] for r in train_rows(log) if "ups" in r]
        rows.append(
            [
                label,
                describe(MLM_VARIANTS[name]),
                fmt(curve[-1][0] if curve else None),
                fmt(float(np.median(ups)) if ups else None, 2),
                fmt(final.get(f"en_{objective}_ppl")),
                fmt(final.get(f"fr_{objective}_ppl")),
                fmt(reach),
            ]
        )
    header = ["run", "flags (vs baseline)", "minutes", "updates/s", "en ppl", "fr ppl", "minutes to ppl 200"]
    note = carry_over(rows, series, earlier, lambda label: [label])
    text = f"""## MLM pretraining: leaving the unigram plateau

Unigram perplexity of the valid text (training-text frequencies, add-one): en {uni["en"]:.1f}, fr {uni["fr"]:.1f}.
Baseline: {" ".join(f"{k} {v}" for k, v in MLM_BASE.items())}. Each run trains for a fixed time
(`--stop-time-hours`: {MLM_MINUTES} minutes unless the row says more), validating every {VALID_EVERY} updates;
"1 core" runs ran two at a time, one thread each.
en/fr ppl: the best checkpoint at 15% predicted words, every one replaced by `<mask>` (the original's
evaluation masking), whatever `--word-pred` the run trained with, on streams of the run's own
`--tokens-per-sample` (CLM rows: the CLM's own valid ppl); the curve is the mean valid ppl at the run's own
`--word-pred` and `--tokens-per-sample`.

{md_table(header, rows)}
{note}"""
    return text, series, rows


def unmt_report(ctx: Ctx, d: dict, earlier: dict) -> tuple:
    rows, series = [], {}
    copied = copied_source_sacrebleu(d["raw"])
    for name, init, threads, step in unmt_runs(ctx):
        log = ctx.R.path("logs", f"{step}.log")
        label = f"{name} from {init} ({threads} core{'s' if threads > 1 else ''})"
        cells = [label]
        for s, t in (("en", "fr"), ("fr", "en")):
            test = training_curve(log, f"{s}-{t}_mt_sacrebleu", "test")
            valid = training_curve(log, f"{s}-{t}_mt_sacrebleu", "valid")
            series[f"{label} {s}-{t}"] = test
            best = max(range(len(valid)), key=lambda i: valid[i][1], default=None)
            cells += [fmt(test[-1][1] if test else None, 2), fmt(test[best][1] if best is not None else None, 2)]
        cells.append(fmt(test[-1][0] if test else None))
        rows.append(cells)
    note = carry_over(rows, series, earlier, lambda label: [f"{label} en-fr", f"{label} fr-en"])
    longest = max((points[-1][0] for points in series.values() if points), default=1.0)
    for direction, score in copied.items():
        series[f"source copied {direction}"] = [(0.0, score), (longest, score)]
    header = ["run", "en-fr test (last)", "en-fr test (best valid)", "fr-en test (last)", "fr-en test (best valid)"]
    text = f"""## Unsupervised MT: detokenised sacreBLEU on the DDTP test pairs against minutes of training

Greedy decoding of the valid pairs (which choose) and the test pairs (reported, never used to choose) at every
validation (every {UNMT_VALID_EVERY} updates); minutes exclude validation. The test sources copied unchanged
score en-fr {copied["en-fr"]:.2f}, fr-en {copied["fr-en"]:.2f} (same metric): a model below that has not yet
learned to translate.

{md_table(header + ["minutes"], rows)}
{note}"""
    return text, series, rows


def report(ctx: Ctx, d: dict) -> None:
    validated = mlm_validations(ctx, d)
    if ctx.dry_run:
        return
    uni = {lang: unigram_ppl(d["bin"], lang) for lang in ("en", "fr")}
    earlier = earlier_report(ctx.results)
    mlm_text, mlm_series, mlm_rows = mlm_report(ctx, d, uni, earlier["mlm"], validated)
    unmt_text, unmt_series, unmt_rows = unmt_report(ctx, d, earlier["unmt"])
    text = "# Study: the regime in which unsupervised en<->fr on DDTP learns fastest on 2 CPU cores\n\n"
    text += mlm_text + "\n" + unmt_text
    with open(os.path.join(ctx.results, "study.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(ctx.results, "study.json"), "w", encoding="utf-8") as f:
        rows = {part: {c[0].rstrip(" *"): c for c in r} for part, r in (("mlm", mlm_rows), ("unmt", unmt_rows))}
        json.dump({"unigram_ppl": uni, "mlm": mlm_series, "unmt": unmt_series, "rows": rows}, f, indent=1)
    for panel, path in (
        (dict(series=mlm_series, ylabel="valid MLM ppl (mean en, fr)", log_y=True), "study_mlm.png"),
        (dict(series=unmt_series, ylabel="test sacreBLEU"), "study_unmt.png"),
    ):
        plot_panels([dict(panel, xlabel="minutes of training")], os.path.join(ctx.results, path))
    print(text)


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("what", choices=["mlm", "unmt", "report"])
    p.add_argument("--init", default="random", help="unmt: the MLM variant to start from, or random")
    p.add_argument(
        "--minutes", type=float, help=f"minutes of training (default: mlm {MLM_MINUTES}, unmt {UNMT_MINUTES})"
    )
    p.add_argument("names", nargs="*")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="compute threads per run (1: two variants can run side by side on 2 cores, each on its own)",
    )
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "paper-mini-out"))
    p.add_argument("--device", default="cpu", choices=recipes.DEVICES, help="where to train (default cpu)")
    p.add_argument("--dry-run", action="store_true", help="print every command it would run; run and write nothing")
    args = p.parse_args(argv)
    known = {"mlm": MLM_VARIANTS, "unmt": UNMT_VARIANTS, "report": {}}[args.what]
    unknown = [n for n in args.names if n not in known]
    if unknown:
        p.error(f"{args.what}: unknown variant {', '.join(unknown)} (choose from {', '.join(known) or 'none'})")
    if args.device == "cuda" and not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA GPU here (use --device cpu)")
    ctx = Ctx(1.0, args.out, args.device, args.dry_run)
    d = data_enfrde(ctx)
    if args.what == "mlm":
        for name in args.names or list(MLM_VARIANTS):
            run_mlm(ctx, d, name, args.threads, args.minutes or MLM_MINUTES)
    elif args.what == "unmt":
        for name in args.names or ["base"]:
            run_unmt(ctx, d, name, args.init, args.threads, args.minutes or UNMT_MINUTES)
    elif args.what == "report":
        report(ctx, d)
    return ctx


if __name__ == "__main__":
    main()
