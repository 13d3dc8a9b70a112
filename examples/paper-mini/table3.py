"""Table 3 in miniature: supervised MT for a low-resource pair, sk→en, from random or MLM initialisation.

DDTP en-sk: 5000 training pairs (of ~33k), all en and sk monolingual text for the MLM and for back-translation.
Three configurations as the paper's rows: sk→en only (`--mt-steps sk-en`), both directions (`--mt-steps
sk-en,en-sk`), both + back-translation (`--bt-steps en-sk-en,sk-en-sk`). Every run does the same number of XLM
iterations (one batch per step: 1, 2 or 4 updates per iteration), so every run sees the same number of
supervised sk→en batches; evaluated at its last update."""

import json
import os
from functools import partial

from common import (
    MODEL_TEXT,
    MT_TRAINING,
    PRETRAIN_TEXT,
    T3_PAIRS,
    budget_lines,
    curve,
    data_ensk,
    fmt,
    generate_bleu,
    md_table,
    pretrain,
    recipes,
    write_result,
)
from pipeline import bleu_of, valid_rows

ITERATIONS = 350
VALIDATIONS = 7  # per run
LANGS = "en,sk"
CONFIGS = [  # name, the task's steps, updates per iteration
    ("sk→en", dict(mt="sk-en"), 1),
    ("sk↔en", dict(mt="sk-en,en-sk"), 2),
    ("sk↔en + BT", dict(mt="sk-en,en-sk", bt="en-sk-en,sk-en-sk"), 4),
]
# paper Table 3: WMT'16 ro→en BLEU (rows ro→en, ro↔en, ro↔en + BT; columns no pretraining, MLM)
PAPER = {
    ("sk→en", "-"): 28.4,
    ("sk↔en", "-"): 28.5,
    ("sk↔en + BT", "-"): 34.4,
    ("sk→en", "MLM"): 35.3,
    ("sk↔en", "MLM"): 35.6,
    ("sk↔en + BT", "MLM"): 38.5,
}


def slug(config, init):
    return {"sk→en": "sk-en", "sk↔en": "both", "sk↔en + BT": "both-bt"}[config] + ("-mlm" if init != "-" else "-rand")


def train(ctx, d, config, task_steps, k, init, ckpt):
    """One run on one core (another runs beside it): MT, then its sk→en perplexity and test BLEU."""
    name = slug(config, init)
    step = f"t3-mt-{name}"
    iters = ctx.n(ITERATIONS)
    every = max(1, iters // VALIDATIONS) * k  # updates between validations
    ctx.R.run(
        step,
        recipes.mt_train(
            d["bin"],
            LANGS,
            **task_steps,
            **MT_TRAINING,
            warmup=min(iters, ctx.n(50, 2)) * k,
            epoch_size=64 * every,
            max_update=iters * k,
            reload_encoder=ckpt,
            reload_decoder=ckpt,
            run=ctx.train_run(ctx.R.path(step)),
        ),
        beside=True,
    )
    checkpoint = ctx.R.path(step, "checkpoint_last.pt")
    ctx.R.run(
        f"t3-mt-ppl-{name}",
        recipes.mt_validate(d["bin"], LANGS, checkpoint, mt="sk-en", subset="valid,test", device=ctx.device),
        beside=True,
    )
    generate_bleu(ctx, f"t3-bleu-{name}", d["bin"], LANGS, "sk", "en", checkpoint, beside=True)
    return name, [step, f"t3-mt-ppl-{name}", f"t3-bleu-{name}"]


def run(ctx):
    d = data_ensk(ctx)

    # the pretraining on both cores (MLM steps run 1.7x faster on two threads than on one beside another run), then
    # each row's two runs side by side, one core each
    mlm = pretrain(ctx, "mlm-ensk", d["bin"], LANGS, "mlm", "en,sk")
    trained = {}
    for c, f, k in CONFIGS:
        trained[(c, "-")], trained[(c, "MLM")] = ctx.R.side_by_side(
            partial(train, ctx, d, c, f, k, "-", None), partial(train, ctx, d, c, f, k, "MLM", mlm["ckpt"])
        )
    if ctx.dry_run:
        return {"steps": []}
    all_steps = d["steps"] + [mlm["step"]]
    res, logs = {}, {}
    for config, _, k in CONFIGS:
        for init in ("-", "MLM"):
            name, steps = trained[(config, init)]
            all_steps += steps
            log = ctx.R.path("logs", f"t3-mt-ppl-{name}.log")
            v, t = valid_rows(log, "valid"), valid_rows(log, "test")
            res[(config, init)] = {
                "valid": v[-1] if v else {},
                "test": t[-1] if t else {},
                "bleu": bleu_of(ctx.R.path("logs", f"t3-bleu-{name}.log")),
            }
            logs[(config, init, k)] = ctx.R.path("logs", f"{steps[0]}.log")

    nan = float("nan")
    rows = []
    for config, _, _ in CONFIGS:
        row = [config]
        for init in ("-", "MLM"):
            r = res[(config, init)]
            row += [
                fmt(r["bleu"], 2),
                fmt(r["test"].get("sk-en_mt_ppl", nan)),
                fmt(r["valid"].get("sk-en_mt_ppl", nan)),
            ]
        row += [f"{PAPER[(config, '-')]} / {PAPER[(config, 'MLM')]}"]
        rows.append(row)
    table = md_table(
        [
            "training",
            "no pretraining: BLEU test",
            "ppl test",
            "ppl valid",
            "MLM: BLEU test",
            "ppl test",
            "ppl valid",
            "paper ro→en BLEU (- / MLM)",
        ],
        rows,
    )
    iters = ctx.n(ITERATIONS)
    with open(os.path.join(d["bin"], "manifest.json"), encoding="utf-8") as f:
        mono = {l: v["train"]["sentences"] for l, v in json.load(f)["mono"].items()}
    text = f"""# Table 3 (miniature): supervised MT sk→en, low-resource, with and without MLM pretraining

DDTP en-sk with **{T3_PAIRS} training pairs** (of ~33k; chosen by a hash with `xlm-preprocess ddtp
--max-sentences-per-lang {T3_PAIRS}`), while the MLM and back-translation use all {mono["en"]} en and {mono["sk"]} sk
monolingual training sentences. Every run does {iters} XLM iterations, i.e. {iters} supervised sk→en batches (an
iteration is one batch of each step: {iters}, {2 * iters} and {4 * iters} updates for the three rows), and is
evaluated at its last update: sk→en BLEU on test (`fairseq-generate`, greedy, `--max-len-a 1.5 --max-len-b 10`,
tokenised BLEU, BPE removed) and sk→en MT perplexity on test and valid (`fairseq-validate`).

{table}

The paper's column is WMT'16 ro→en BLEU (600k training pairs, 1024-dim models trained to convergence); it shows
the direction (MLM > no pretraining in every row, back-translation helps), not comparable values.

## Budget

- model: {MODEL_TEXT}; encoder and decoder both from the MLM (`--reload-encoder/--reload-decoder`) or random;
  one shared BPE (8000 merges) for en and sk
- MLM pretraining: {mlm["updates"]} updates, `--mlm-steps en,sk`, {PRETRAIN_TEXT}
- MT: {iters} iterations per run, batches of at most 1500 tokens / 64 sentences of at most 40 BPE tokens, Adam
  lr 3e-4 fixed after a warm-up of {min(iters, ctx.n(50, 2))} iterations; back-translation greedy with the live model
- the MLM pretraining on both cores, then each row's two runs side by side, one core each
- scale {ctx.scale:g}; wall time {ctx.wall_minutes(all_steps):.1f} min in all (2 CPU cores; the steps' own times below
  sum to {ctx.minutes(all_steps):.1f}: the runs after the pretraining went two at a time), per step:

{budget_lines(ctx, all_steps)}
"""
    panels = []
    for init, label in (("-", "no pretraining"), ("MLM", "MLM init")):
        panels.append(
            dict(
                series={c: curve(lg, "sk-en_mt_ppl", x_div=k) for (c, i, k), lg in logs.items() if i == init},
                ylabel="valid sk→en MT ppl",
                xlabel="iterations (= sk→en batches)",
                title=label,
                log_y=True,
            )
        )
    panels.append(
        dict(
            series={"MLM en,sk": curve(mlm["log"], "mlm_ppl")},
            ylabel="valid MLM ppl (mean en, sk)",
            title="MLM pretraining",
            log_y=True,
        )
    )
    write_result(ctx, 3, text, panels, "Table 3 (miniature): supervised MT sk→en, 5k pairs, DDTP")
    return {"steps": all_steps}
