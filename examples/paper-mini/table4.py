"""Table 4 in miniature: low-resource language modelling, Czech (small, ~9k sentences) alone, + English
(distant), + Slovak (related), + both. The recipe is examples/lowres-lm/run.sh, run as it is with its
environment variables: each variant trains a CLM with early stopping on the Czech valid perplexity and its
best checkpoint is scored with xlm-eval-lm on the Czech valid and test streams."""

import json
import os
import shutil
import sys

from common import MODEL_TEXT, ROOT, budget_lines, curve, data_csensk, fmt, md_table, write_result
from pipeline import BIN

MAX_UPDATE = 1500  # a cap per variant (the recipe's default is 20000), to keep the table near half an hour on 2 cores
VALID_EVERY = 100  # the recipe's default
PATIENCE = 3  # the recipe's default is 5
WARMUP = 400
VARIANTS = [("cs", "cs"), ("cs + en", "cs_en"), ("cs + sk", "cs_sk"), ("cs + en + sk", "cs_en_sk")]
PAPER = {
    "cs": ("Nepali", 157.2),
    "cs + en": ("Nepali + English", 140.1),
    "cs + sk": ("Nepali + Hindi", 115.6),
    "cs + en + sk": ("Nepali + English + Hindi", 109.3),
}


def settings(ctx):
    return {
        "MAX_UPDATE": ctx.n(MAX_UPDATE),
        "VALID_EVERY": ctx.n(VALID_EVERY, 5),
        "PATIENCE": PATIENCE,
        "WARMUP": ctx.n(WARMUP, 5),
    }


def run(ctx):
    d = data_csensk(ctx)
    out = ctx.R.path("t4-lowres")
    env = dict(
        settings(ctx),
        DATA_BIN=d["bin"],
        OUT=out,
        PYTHON=sys.executable,
        PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
    )
    ctx.R.run(
        "t4-lowres",
        [shutil.which("bash") or "/bin/bash", os.path.join(ROOT, "examples", "lowres-lm", "run.sh")],
        env=env,
    )
    all_steps = d["steps"] + ["t4-lowres"]
    s = settings(ctx)
    rows, series = [], {}
    for label, name in VARIANTS:
        with open(os.path.join(out, "results", f"{name}.json"), encoding="utf-8") as f:
            r = json.load(f)
        log = os.path.join(out, "logs", f"{name}.log")
        points = curve(log, "cs_clm_ppl")
        series[label] = points
        with open(log, encoding="utf-8", errors="replace") as f:
            early = "early stop" in f.read()
        last = int(points[-1][0]) if points else 0
        stop = "early stopping" if early else (f"cap ({s['MAX_UPDATE']})" if last >= s["MAX_UPDATE"] else "?")
        paper = PAPER[label]
        rows.append(
            [
                label,
                f"**{fmt(r['splits']['valid']['ppl'])}**",
                fmt(r["splits"]["test"]["ppl"]),
                r.get("num_updates", "?"),
                last,
                stop,
                f"{paper[0]}: {paper[1]}",
            ]
        )
    table = md_table(
        [
            "training languages",
            "cs valid ppl",
            "cs test ppl",
            "best at update",
            "last update",
            "stopped by",
            "paper (Nepali ppl)",
        ],
        rows,
    )
    text = f"""# Table 4 (miniature): low-resource language modelling (Czech)

CLM perplexity of **Czech** (per BPE token, `</s>` included; streams of 128 tokens) for a model trained on Czech
alone, with English (distant), with Slovak (related, the paper's Hindi) and with both. Each variant trains until
its Czech valid perplexity has not improved for {PATIENCE} validations (one every {s["VALID_EVERY"]} updates) or
{s["MAX_UPDATE"]} updates, and its best checkpoint is scored with `xlm-eval-lm` (valid and test): the
comparison at convergence, not at equal updates. Recipe: `examples/lowres-lm/run.sh`
(languages are sampled uniformly, so a 3-language variant spends a third of its updates on Czech).

{table}

The paper's column is Nepali Wikipedia perplexity (Nepali alone, + English, + Hindi, + both); it shows the
direction (a related language helps much more than a distant one, both help most), not comparable values.

## Budget

- model: {MODEL_TEXT}, a CLM; one BPE (10000 merges) learned on cs, en, sk
- training: streams of 128 tokens x 16 per update, Adam lr 5e-4 inverse-sqrt ({s["WARMUP"]} warm-up updates),
  validation every {s["VALID_EVERY"]} updates, patience {PATIENCE}, at most {s["MAX_UPDATE"]} updates
  (`MAX_UPDATE={s["MAX_UPDATE"]} VALID_EVERY={s["VALID_EVERY"]} PATIENCE={PATIENCE} WARMUP={s["WARMUP"]}
  DATA_BIN=… bash examples/lowres-lm/run.sh`; every other setting is the recipe's default)
- scale {ctx.scale:g}; wall time {ctx.minutes(all_steps):.1f} min in all (2 CPU cores), per step:

{budget_lines(ctx, all_steps)}
"""
    panels = [dict(series=series, ylabel="valid cs CLM ppl", title="Czech valid perplexity", log_y=True)]
    write_result(ctx, 4, text, panels, "Table 4 (miniature): low-resource LM, Czech, DDTP")
    return {"steps": all_steps}
