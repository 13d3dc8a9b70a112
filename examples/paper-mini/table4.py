"""Table 4 in miniature: low-resource language modelling, Czech (small, ~9k sentences) alone, + English
(distant), + Slovak (related), + both. The recipe is examples/lowres-lm/run.sh, run as it is with its
environment variables: each variant trains a CLM with early stopping on the Czech valid perplexity and its
best checkpoint is scored with xlm-eval-lm on the Czech valid and test streams."""

import json
import os
import shutil
import sys
from functools import partial

from common import MODEL_TEXT, ROOT, budget_lines, curve, data_csensk, fmt, md_table, write_result
from pipeline import BIN

MAX_UPDATE = 5000  # a cap per variant (the recipe's default is 20000) that early stopping should end before
VALID_EVERY = 100  # the recipe's default
PATIENCE = 3  # the recipe's default is 5
LR = 1e-3  # the recipe's default is 5e-4: twice as fast to the minimum (the learning study's MLM finding)
WARMUP = 200
# (label, run.sh's name of the variant, the file name of its results)
VARIANTS = [
    ("cs", "target", "cs"),
    ("cs + en", "distant", "cs_en"),
    ("cs + sk", "related", "cs_sk"),
    ("cs + en + sk", "both", "cs_en_sk"),
]
# two lanes side by side, one core each, of about equal length: Czech alone stops first and the 3-language
# variant last (a third of its updates are on Czech)
LANES = [("target", "both"), ("distant", "related")]
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
        "LR": LR,
        "WARMUP": ctx.n(WARMUP, 5),
    }


def lane_step(lane) -> str:
    return "t4-lowres-" + "-".join(lane)


def run_lane(ctx, data_bin: str, lane) -> None:
    """examples/lowres-lm/run.sh as it is, for the variants of one lane (on a CPU on one core, beside the other
    lane)."""
    env = dict(
        settings(ctx),
        VARIANTS=" ".join(lane),
        DATA_BIN=data_bin,
        OUT=ctx.R.path(lane_step(lane)),
        PYTHON=sys.executable,
        PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
        DEVICE=ctx.device,
    )
    ctx.R.run(
        lane_step(lane),
        [shutil.which("bash") or "/bin/bash", os.path.join(ROOT, "examples", "lowres-lm", "run.sh")],
        env=env,
        beside=True,
    )


def run(ctx):
    d = data_csensk(ctx)
    ctx.R.side_by_side(*(partial(run_lane, ctx, d["bin"], lane) for lane in LANES))
    if ctx.dry_run:
        return {"steps": []}
    lane_of = {variant: lane for lane in LANES for variant in lane}
    all_steps = d["steps"] + [lane_step(lane) for lane in LANES]
    s = settings(ctx)
    rows, series = [], {}
    for label, variant, name in VARIANTS:
        out = ctx.R.path(lane_step(lane_of[variant]))
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
- training: streams of 128 tokens x 16 per update, Adam lr {s["LR"]:g} inverse-sqrt ({s["WARMUP"]} warm-up updates),
  validation every {s["VALID_EVERY"]} updates, patience {PATIENCE}, at most {s["MAX_UPDATE"]} updates
  (`MAX_UPDATE={s["MAX_UPDATE"]} VALID_EVERY={s["VALID_EVERY"]} PATIENCE={PATIENCE} LR={s["LR"]:g} WARMUP={s["WARMUP"]}
  DATA_BIN=… bash examples/lowres-lm/run.sh`; every other setting is the recipe's default)
- two lanes side by side, one core each (`VARIANTS="{" ".join(LANES[0])}"` and `VARIANTS="{" ".join(LANES[1])}"`)
- scale {ctx.scale:g}; wall time {ctx.wall_minutes(all_steps):.1f} min in all (2 CPU cores; the lanes' steps below
  ran at the same time), per step:

{budget_lines(ctx, all_steps)}
"""
    panels = [dict(series=series, ylabel="valid cs CLM ppl", title="Czech valid perplexity", log_y=True)]
    write_result(ctx, 4, text, panels, "Table 4 (miniature): low-resource LM, Czech, DDTP")
    return {"steps": all_steps}
