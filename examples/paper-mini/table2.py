"""Table 2 in miniature: unsupervised MT en-fr with different encoder/decoder initialisations.

Monolingual en and fr text from disjoint halves of the DDTP descriptions (`xlm-preprocess ddtp --disjoint-mono`),
so no English sentence has its French translation in the training data; held-out parallel valid/test pairs.
Pretraining: a CLM and an MLM on en+fr (same model, same updates, the learning study's recipe). UNMT (denoising
auto-encoding + online back-translation) from each initialisation for the same number of updates; then MT
perplexity of the last checkpoint on valid and test (fairseq-validate) and test BLEU (fairseq-generate, greedy:
detokenised sacreBLEU, and tokenised BLEU on the Moses-tokenised text with BPE removed). Runs go two at a time, one
core each (the two pretrainings, then the cells in PAIRS). Results: results/table2.md, table2.png and table2.json
(every number of the table, the pretraining perplexities beside the unigram ones, example translations)."""

import json
import os

from common import (
    MODEL_TEXT,
    MT_TRAINING,
    PRETRAIN_TEXT,
    budget_lines,
    copied_source_sacrebleu,
    curve,
    data_enfrde,
    fmt,
    generate_bleu,
    lm_valid,
    lm_valid_ppl,
    md_table,
    pretrain,
    recipes,
    write_result,
)
from pipeline import bleu_of, detok_sacrebleu, generated, paired_bleu, unigram_ppl, valid_rows

UNMT_UPDATES = 1500
UNMT_VALID_EVERY = 100
LANGS = "de,en,fr"  # the data-bin's languages (de is unused here)
STEPS = dict(ae="en,fr", bt="en-fr-en,fr-en-fr")  # UNMT: denoising and back-translation in both directions
# (encoder, decoder); "-" = random initialisation. The cells run two at a time, one core each, in these pairs.
PAIRS = [(("MLM", "MLM"), ("-", "-")), (("CLM", "CLM"), ("MLM", "-"))]
CELLS = [("-", "-"), ("CLM", "CLM"), ("MLM", "MLM"), ("MLM", "-")]
CELLS_SHOWN = (("MLM", "MLM"), ("-", "-"))  # the example translations: pretrained beside random
# paper Table 2, WMT'14 en-fr and fr-en BLEU of the same cells
PAPER = {
    ("-", "-"): (13.0, 15.8),
    ("CLM", "CLM"): (30.4, 30.0),
    ("MLM", "MLM"): (33.4, 33.3),
    ("MLM", "-"): (31.6, 32.1),
    ("CLM", "-"): (28.7, 28.2),
    ("-", "MLM"): (29.2, 29.1),
}
DIRECTIONS = (("fr", "en"), ("en", "fr"))


def mlm_enfr(ctx, d, beside=False):
    """The en+fr MLM: Table 2's MLM initialisation and Table 5's XLM embeddings (computed once)."""
    return pretrain(ctx, "mlm-enfr", d["bin"], LANGS, "mlm", "en,fr", beside=beside)


def pretrainings(ctx, d):
    """The MLM and the CLM, side by side (one core each)."""
    mlm, clm = ctx.R.side_by_side(
        lambda: mlm_enfr(ctx, d, beside=True),
        lambda: pretrain(ctx, "clm-enfr", d["bin"], LANGS, "clm", "en,fr", beside=True),
    )
    return {"MLM": mlm, "CLM": clm}


def pretraining_valid(ctx, d, pre, objective):
    """Valid perplexities of a pretraining's best checkpoint (MLM at 15% predicted words): the step's name."""
    step = f"t2-{objective.lower()}-valid"
    lm_valid(ctx, step, d["bin"], LANGS, objective.lower(), "en,fr", pre["ckpt"])
    return step


def pretraining_ppl(ctx, step, objective):
    """{lang: valid perplexity} of pretraining_valid's step."""
    row = lm_valid_ppl(ctx.R.path("logs", f"{step}.log"))
    return {lang: row.get(f"{lang}_{objective.lower()}_ppl", float("nan")) for lang in ("en", "fr")}


def cell_name(enc, dec):
    return f"{enc.replace('-', 'rand').lower()}-{dec.replace('-', 'rand').lower()}"


def unmt(ctx, d, pre, enc, dec):
    """One cell on one core: UNMT from its initialisation, then the MT perplexity of its last checkpoint on the
    valid and test pairs and greedy test translations in both directions."""
    name = cell_name(enc, dec)
    step = f"t2-unmt-{name}"
    n = ctx.n(UNMT_UPDATES)
    every = min(n, ctx.n(UNMT_VALID_EVERY, 5))
    ctx.R.run(
        step,
        recipes.mt_train(
            d["bin"],
            LANGS,
            **STEPS,
            **MT_TRAINING,
            warmup=min(n, ctx.n(100, 2)),
            epoch_size=64 * every,
            max_update=n,
            reload_encoder=pre[enc]["ckpt"] if enc != "-" else None,
            reload_decoder=pre[dec]["ckpt"] if dec != "-" else None,
            run=ctx.train_run(ctx.R.path(step)),
        ),
        beside=True,
    )
    checkpoint = ctx.R.path(step, "checkpoint_last.pt")
    steps = [step, f"t2-mt-ppl-{name}"]
    ctx.R.run(
        f"t2-mt-ppl-{name}",
        recipes.mt_validate(d["bin"], LANGS, checkpoint, **STEPS, subset="valid,test", device=ctx.device),
        beside=True,
    )
    for src, tgt in DIRECTIONS:
        steps.append(f"t2-bleu-{name}-{src}-{tgt}")
        generate_bleu(ctx, steps[-1], d["bin"], LANGS, src, tgt, checkpoint, beside=True)
    return name, steps


def results(ctx, name, steps, pre_minutes):
    """A cell's numbers in table2.json's form (test perplexity, tokenised BLEU, detokenised sacreBLEU) and its
    valid perplexities; `pre_minutes`: the wall time of the pretraining(s) it starts from."""
    log = ctx.R.path("logs", f"t2-mt-ppl-{name}.log")
    v, t = (valid_rows(log, s) for s in ("valid", "test"))
    valid, test = (v[-1] if v else {}), (t[-1] if t else {})
    nan = float("nan")
    out = {}
    for s, tg in DIRECTIONS:
        generate_log = ctx.R.path("logs", f"t2-bleu-{name}-{s}-{tg}.log")
        out[f"{s}-{tg}_sacrebleu"] = round(detok_sacrebleu(generate_log, tg), 2)
        out[f"{s}-{tg}_bleu"] = bleu_of(generate_log)
        out[f"{s}-{tg}_ppl"] = test.get(f"{s}-{tg}_mt_ppl", nan)
        out[f"{s}-{tg}_valid_ppl"] = valid.get(f"{s}-{tg}_mt_ppl", nan)
    out["updates"] = ctx.n(UNMT_UPDATES)
    out["total_minutes"] = round(pre_minutes + ctx.minutes(steps), 1)
    return out


def examples(ctx, n=3):
    """n test translations per direction: the first test pairs of at least 4 words that MLM/MLM and random/random
    translate differently (source, reference, both hypotheses)."""
    out = {}
    for s, tg in DIRECTIONS:
        mlm, rnd = (generated(ctx.R.path("logs", f"t2-bleu-{cell_name(*c)}-{s}-{tg}.log")) for c in CELLS_SHOWN)
        ids = [i for i in sorted(mlm) if len(mlm[i]["S"].split()) >= 4 and mlm[i].get("D") != rnd[i].get("D")]
        out[f"{s}-{tg}"] = [
            {
                "source": mlm[i]["S"],
                "reference": mlm[i]["T"],
                "MLM/MLM": mlm[i].get("D", ""),
                "-/-": rnd[i].get("D", ""),
            }
            for i in ids[:n]
        ]
    return out


def run(ctx):
    d = data_enfrde(ctx)
    pre = pretrainings(ctx, d)
    valid_steps = {key: pretraining_valid(ctx, d, p, key) for key, p in pre.items()}
    cell_steps = {}

    def cell_job(cell):
        return lambda: unmt(ctx, d, pre, *cell)

    for pair in PAIRS:
        for cell, name_steps in zip(pair, ctx.R.side_by_side(*(cell_job(c) for c in pair))):
            cell_steps[cell] = name_steps
    if ctx.dry_run:
        return {"steps": []}

    all_steps = d["steps"][:3] + [p["step"] for p in pre.values()]
    pre_json, pre_rows = {}, []
    unigram = {lang: round(unigram_ppl(d["bin"], lang), 1) for lang in ("en", "fr")}
    for key, p in pre.items():
        step = valid_steps[key]
        ppl = pretraining_ppl(ctx, step, key)
        all_steps.append(step)
        minutes = ctx.minutes([p["step"], step])
        pre_json[key.lower()] = {
            "en_ppl": ppl["en"],
            "fr_ppl": ppl["fr"],
            "unigram_en_ppl": unigram["en"],
            "unigram_fr_ppl": unigram["fr"],
            "updates": p["updates"],
            "minutes": round(minutes, 1),
        }
        pre_rows.append([key, p["updates"], fmt(ppl["en"]), fmt(ppl["fr"]), fmt(minutes)])
    for pair in PAIRS:
        for cell in pair:
            all_steps += cell_steps[cell][1]
    res = {}
    for cell in CELLS:
        name, steps = cell_steps[cell]
        inits = {k for k in cell if k != "-"}
        res[cell] = results(ctx, name, steps, sum(pre_json[k.lower()]["minutes"] for k in inits))

    rand_mlm = {
        f"{s}-{tg}": paired_bleu(
            ctx.R.path("logs", f"t2-bleu-{cell_name('-', '-')}-{s}-{tg}.log"),
            ctx.R.path("logs", f"t2-bleu-{cell_name('MLM', 'MLM')}-{s}-{tg}.log"),
        )
        for s, tg in DIRECTIONS
    }
    copied = copied_source_sacrebleu(d["raw"])
    shown = examples(ctx)
    n_test = len(generated(ctx.R.path("logs", f"t2-bleu-{cell_name('-', '-')}-en-fr.log")))
    summary = {
        "cells": {f"{e}/{dd}": res[(e, dd)] for e, dd in CELLS},
        "pretraining": pre_json,
        "copied_source_sacrebleu": {k: round(v, 2) for k, v in copied.items()},
        "mlm_vs_random_bootstrap_p": {k: v["p_value"] for k, v in rand_mlm.items()},
        "test_pairs": n_test,
        "examples": shown,
    }
    with open(os.path.join(ctx.results, "table2.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)

    rows = []
    for cell in CELLS:
        r = res[cell]
        ppl = [fmt(r[f"{a}-{b}_{k}"]) for a, b in DIRECTIONS for k in ("valid_ppl", "ppl")]
        bleu = [f"{fmt(r[f'{a}-{b}_sacrebleu'], 2)} ({fmt(r[f'{a}-{b}_bleu'], 2)})" for a, b in DIRECTIONS]
        paper = PAPER.get(cell)
        rows.append([cell[0], cell[1], *ppl, *bleu, fmt(r["total_minutes"]), f"{paper[1]} / {paper[0]}"])
    table = md_table(
        [
            "encoder",
            "decoder",
            "fr→en ppl valid",
            "fr→en ppl test",
            "en→fr ppl valid",
            "en→fr ppl test",
            "fr→en BLEU test",
            "en→fr BLEU test",
            "minutes",
            "paper fr→en / en→fr BLEU",
        ],
        rows,
    )
    n = ctx.n(UNMT_UPDATES)
    mlm, rnd = res[("MLM", "MLM")], res[("-", "-")]
    lines = [
        f"{s}→{tg} {fmt(mlm[f'{s}-{tg}_sacrebleu'], 2)} vs {fmt(rnd[f'{s}-{tg}_sacrebleu'], 2)} "
        f"(paired bootstrap of the tokenised BLEU: p = {rand_mlm[f'{s}-{tg}']['p_value']:.3f})"
        for s, tg in DIRECTIONS
    ]
    example_text = "\n".join(
        f"- {k.replace('-', '→')}: `{e['source']}`\n  - reference: `{e['reference']}`\n  - MLM/MLM: `{e['MLM/MLM']}`"
        f"\n  - -/-: `{e['-/-']}`"
        for k, items in shown.items()
        for e in items
    )
    text = f"""# Table 2 (miniature): unsupervised MT en-fr, by encoder/decoder initialisation

"-" = random initialisation; CLM / MLM = the en+fr language model pretrained with that objective. Every cell
trains {n} UNMT updates (denoising auto-encoding en, fr + online back-translation en-fr-en, fr-en-fr; each
update is one of these four steps) and is evaluated at its last update. MT perplexity: `fairseq-validate` on the
held-out parallel valid and test pairs; BLEU: `fairseq-generate` on the {n_test} test pairs, greedy, `--max-len-a
1.5 --max-len-b 10`: detokenised sacreBLEU (13a, hypotheses and references detokenised with sacremoses), in
brackets tokenised BLEU on the Moses-tokenised text with BPE removed (`--post-process subword_nmt`, the paper's
metric). The test sources copied unchanged score sacreBLEU en→fr {copied["en-fr"]:.2f}, fr→en
{copied["fr-en"]:.2f} (DDTP shares package names and technical words across languages): below that a cell has
not learned to translate. Minutes: the cell's wall time, its pretraining(s) included, each run on one core while
another ran on the other.

{table}

**MLM/MLM vs random/random after the same {n} UNMT updates, test sacreBLEU: {"; ".join(lines)}.**

Pretraining (valid perplexity of the best checkpoint; MLM at 15% predicted words; the unigram perplexity of the
same text, a model that knows only token frequencies: en {unigram["en"]}, fr {unigram["fr"]}):

{md_table(["objective", "updates", "en ppl", "fr ppl", "minutes"], pre_rows)}

Test translations (the first test pairs of at least 4 words on which MLM/MLM and random/random differ):

{example_text}

The paper's column is WMT'14 en-fr BLEU after full UNMT training of 1024-dim models (its "-/-" is 13.0 en→fr,
15.8 fr→en; MLM/MLM 33.4 / 33.3); it shows the direction (pretrained > random, MLM > CLM, the encoder matters
most), not comparable values.

## Budget

- model: {MODEL_TEXT}, encoder and decoder each such a stack (the decoder with cross-attention, which starts
  fresh); one shared BPE (8000 merges)
- pretraining: {pre["MLM"]["updates"]} updates each for the CLM (`--clm-steps en,fr`) and the MLM
  (`--mlm-steps en,fr`), {PRETRAIN_TEXT}; the two side by side, one core each; the MLM is also Table 5's
- UNMT: {n} updates per cell, batches of at most 1500 tokens / 64 sentences of at most 40 BPE tokens,
  word shuffle 3, dropout 0.1, blank 0.1, Adam lr 3e-4 (fixed after {min(n, ctx.n(100, 2))} warm-up updates),
  back-translation greedy with the live model; cells two at a time ({
        " and ".join(" beside ".join(f"{e}/{dd}" for e, dd in pair) for pair in PAIRS)
    }), one core each
- scale {ctx.scale:g}; the steps' wall times sum to {ctx.minutes(all_steps):.1f} min (2 CPU cores; two steps ran at
  a time, one core each, so the table takes about half of that), per step:

{budget_lines(ctx, all_steps, {pre["MLM"]["step"]: "Table 5"})}
"""
    logs = {f"{e}/{dd}": ctx.R.path("logs", f"t2-unmt-{cell_name(e, dd)}.log") for e, dd in CELLS}
    panels = [
        dict(
            series={k: curve(p["log"], f"{k.lower()}_ppl") for k, p in pre.items()},
            ylabel="valid LM ppl (mean en, fr)",
            title="pretraining (CLM vs MLM ppl: different tasks)",
            log_y=True,
        ),
        dict(
            series={k: curve(lg, "fr-en_mt_ppl") for k, lg in logs.items()},
            ylabel="valid fr→en MT ppl",
            title="UNMT, fr→en",
            log_y=True,
        ),
        dict(
            series={k: curve(lg, "en-fr_mt_ppl") for k, lg in logs.items()},
            ylabel="valid en→fr MT ppl",
            title="UNMT, en→fr",
            log_y=True,
        ),
    ]
    write_result(ctx, 2, text, panels, "Table 2 (miniature): unsupervised MT en-fr, DDTP")
    return {"steps": all_steps}
