"""Table 1 in miniature: zero-shot cross-lingual classification.

The paper fine-tunes a pretrained XLM on English NLI (MultiNLI) and tests it on the 15 XNLI languages. Here the
task is the Debian package Section of a description's title (DDTP, ~20 labels): fine-tuned on English titles,
tested on English, French and German titles (zero-shot for fr and de). Three encoders with the same
architecture: no pretraining, MLM (monolingual en/fr/de text) and MLM+TLM (the same plus en-fr and de-en
sentence pairs), both pretrained for the same number of updates. Model selection on the mean valid accuracy
(en, fr, de); the table gives the test accuracies of that epoch."""

from common import (
    MODEL,
    MODEL_TEXT,
    OPTIM,
    PRETRAIN_TEXT,
    budget_lines,
    curve,
    data_enfrde,
    fmt,
    md_table,
    pretrain,
    recipes,
    write_result,
)
from pipeline import best_by, valid_rows

FINETUNE_UPDATES = 2000
FINETUNE_VALID_EVERY = 250
LANGS = ("en", "fr", "de")
# paper Table 1, zero-shot rows (XNLI test accuracy; "mean" is the paper's average over its 15 languages)
PAPER = {
    "MLM": {"en": 83.2, "fr": 76.5, "de": 74.2, "mean": 71.5},
    "MLM+TLM": {"en": 85.0, "fr": 78.7, "de": 77.8, "mean": 75.1},
}


def pretrainings(ctx, d):
    """The MLM and the MLM+TLM, side by side (one core each)."""
    mlm, tlm = ctx.R.side_by_side(
        lambda: pretrain(ctx, "mlm-enfrde", d["bin"], "de,en,fr", "mlm", "en,fr,de", beside=True),
        lambda: pretrain(
            ctx, "mlm-tlm-enfrde", d["bin"], "de,en,fr", "mlm", "en,fr,de,en-fr,de-en", task="xlm_tlm", beside=True
        ),
    )
    return {"MLM": mlm, "MLM+TLM": tlm}


def finetune(ctx, d, name, init):
    step = f"t1-classify-{name}"
    n = ctx.n(FINETUNE_UPDATES)
    every = min(n, ctx.n(FINETUNE_VALID_EVERY, 5))
    ctx.R.run(
        step,
        recipes.classify(
            d["cls"],
            "de,en,fr",
            flags=MODEL,
            batch_size=16,
            optimizer=OPTIM,
            lr="1e-4",
            pooler_dropout=0.1,
            epoch_size=every * 16,
            max_update=n,
            finetune_from=init,
            run=ctx.train_run(ctx.R.path(step)),
        ),
    )
    return step


def run(ctx):
    d = data_enfrde(ctx)
    pre = pretrainings(ctx, d)
    variants = {"no pretraining": None, "MLM": pre["MLM"]["ckpt"], "MLM+TLM": pre["MLM+TLM"]["ckpt"]}
    steps = {name: finetune(ctx, d, name.replace(" ", "-").replace("+", "-"), init) for name, init in variants.items()}
    if ctx.dry_run:
        return {"steps": []}

    rows, nan = [], float("nan")
    for name, step in steps.items():
        log = ctx.R.path("logs", f"{step}.log")
        valid, test = valid_rows(log, "valid"), valid_rows(log, "test")
        best = best_by(valid, test, "acc")
        at = best.get("num_updates")
        accs = [best.get(f"{l}_acc", nan) for l in LANGS]
        paper = PAPER.get(name)
        theirs = " / ".join(fmt(paper[k]) for k in ("en", "fr", "de", "mean")) if paper else "—"
        rows.append(
            [name] + [fmt(a) for a in accs] + [f"**{fmt(best.get('acc', nan))}**", int(at) if at else "n/a", theirs]
        )
    table = md_table(
        [
            "pretraining",
            "en (fine-tuned on)",
            "fr (zero-shot)",
            "de (zero-shot)",
            "mean",
            "selected at update",
            "paper XNLI en / fr / de / mean of 15",
        ],
        rows,
    )

    ppl = {}
    for name, p in pre.items():
        last = valid_rows(p["log"], "valid")
        ppl[name] = last[-1] if last else {}
    ppl_rows = [
        [name]
        + [fmt(ppl[name].get(f"{l}_mlm_ppl", nan)) for l in LANGS]
        + [fmt(ppl[name].get("en_fr_mlm_ppl", nan)) if name == "MLM+TLM" else "—"]
        for name in pre
    ]

    all_steps = d["steps"] + [p["step"] for p in pre.values()] + list(steps.values())
    n_pre = pre["MLM"]["updates"]
    text = f"""# Table 1 (miniature): zero-shot cross-lingual classification

Test accuracy (%) of the Debian package **Section** of a description's title (DDTP bookworm; the labels of the
English training set), fine-tuned on **English** titles only and tested on English, French and German titles.
Model selection: the validation (every {min(ctx.n(FINETUNE_VALID_EVERY, 5), ctx.n(FINETUNE_UPDATES))} updates)
with the best mean valid accuracy over en, fr, de.

{table}

The paper's numbers are XNLI (3-way NLI, 15 languages, a 12-layer 1024-dim model on Wikipedia); they are
there for the direction of the effect (MLM+TLM > MLM), not to be compared in value.

Valid MLM perplexity of the pretrained encoders at the end of pretraining (last validation, at the 40% predicted
words they trained with; at 15% predicted, as Table 2 reports its MLM, perplexities are lower):

{md_table(["pretraining", "en MLM ppl", "fr MLM ppl", "de MLM ppl", "en-fr TLM ppl"], ppl_rows)}

## Budget

- model: {MODEL_TEXT}, one shared BPE (8000 merges) for en, fr, de
- pretraining: {n_pre} updates each (MLM: `--mlm-steps en,fr,de`; MLM+TLM: `--task xlm_tlm --mlm-steps
  en,fr,de,en-fr,de-en`, so about half of its updates are TLM), {PRETRAIN_TEXT}, α = 0.7 language sampling;
  the two side by side, one core each
- fine-tuning: {ctx.n(FINETUNE_UPDATES)} updates of 16 English titles for every variant, Adam lr 1e-4 (fixed),
  pooler dropout 0.1, all parameters trained
- scale {ctx.scale:g}; the steps' wall times sum to {ctx.minutes(all_steps):.1f} min (2 CPU cores; the two
  pretrainings ran side by side, one core each), per step:

{budget_lines(ctx, all_steps)}
"""
    panels = [
        dict(
            series={n: curve(p["log"], "mlm_ppl") for n, p in pre.items()},
            ylabel="valid MLM ppl (mean en,fr,de)",
            title="pretraining",
            log_y=True,
        ),
        dict(
            series={n: curve(ctx.R.path("logs", f"{s}.log"), "acc") for n, s in steps.items()},
            ylabel="valid accuracy % (mean en,fr,de)",
            title="fine-tuning on en",
        ),
        dict(
            series={n: curve(ctx.R.path("logs", f"{s}.log"), "fr_acc") for n, s in steps.items()},
            ylabel="valid fr accuracy % (zero-shot)",
            title="fr, zero-shot",
        ),
        dict(
            series={n: curve(ctx.R.path("logs", f"{s}.log"), "de_acc") for n, s in steps.items()},
            ylabel="valid de accuracy % (zero-shot)",
            title="de, zero-shot",
        ),
    ]
    write_result(ctx, 1, text, panels, "Table 1 (miniature): zero-shot Section classification, DDTP")
    return {"steps": all_steps}
