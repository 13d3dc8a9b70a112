"""Table 5 in miniature: cross-lingual word embeddings from the lookup table.

XLM: the en+fr MLM of Table 2 (one shared BPE vocabulary, one table for both languages). Baseline: two MLMs of
the same architecture, one trained on English only and one on French only, each for half the XLM's updates
(so each language gets as many updates as in the XLM, and both together cost one XLM). Words: the whole-word
BPE tokens of each language's training data (`xlm-embeddings export --lang`). Dictionary: FreeDict
English-French from Debian's archive, converted to MUSE format (freedict.py), or the user's `--dictionary`.
Metrics (`xlm-embeddings eval`): cosine similarity and L2 distance of translation pairs (the paper's Table 5
columns), and P@1 of word translation by nearest neighbour and by CSLS over the whole target vocabulary."""

import json
import os
import sys

from common import (
    HERE,
    MODEL_TEXT,
    PRETRAIN_TEXT,
    PRETRAIN_UPDATES,
    budget_lines,
    curve,
    data_enfrde,
    fetch,
    fmt,
    md_table,
    pretrain,
    write_result,
)
from pipeline import random_init_checkpoint
from table2 import LANGS, mlm_enfr

PAPER = {"XLM": (0.55, 2.64), "MUSE": (0.38, 5.13), "Concat": (0.36, 4.89)}
METRICS = [
    ("cosine", "cosine sim.", 3),
    ("l2", "L2 dist.", 2),
    ("p@1_nn", "P@1 NN %", 1),
    ("p@1_csls", "P@1 CSLS %", 1),
]


def dictionary(ctx):
    """(path, description, steps): the user's --dictionary, else FreeDict eng-fra converted."""
    if getattr(ctx, "dictionary", None):
        return os.path.abspath(ctx.dictionary), f"`{ctx.dictionary}` (given with --dictionary)", []
    lists = fetch(ctx)
    path = ctx.data.path("freedict-en-fr.txt")
    ctx.data.run(
        "freedict-en-fr",
        [
            sys.executable,
            os.path.join(HERE, "freedict.py"),
            "--apt-dir",
            os.path.join(lists, "bookworm"),
            "--package",
            "dict-freedict-eng-fra",
            "--out",
            path,
        ],
    )
    return (
        path,
        (
            "FreeDict English-French (Debian package `dict-freedict-eng-fra`, `apt-get download`), "
            "single-word entries converted to MUSE `src tgt` lines by `freedict.py`"
        ),
        ["freedict-en-fr"],
    )


def without_identical(path, out):
    """The pairs whose two words differ (case-insensitively): in one shared vocabulary a word spelt the same
    in both languages is one token, so its pair is trivially at cosine 1 in any single-table space."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(path, encoding="utf-8") as f, open(out + ".tmp", "w", encoding="utf-8") as g:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].lower() != parts[1].lower():
                g.write(line)
    os.replace(out + ".tmp", out)
    return out


def export(ctx, d, name, ckpt, lang):
    step = f"t5-export-{name}-{lang}"
    out = ctx.R.path("t5-embeddings", f"{name}.{lang}.vec")
    ctx.R.do(f"mkdir -p {os.path.dirname(out)}", os.makedirs, os.path.dirname(out), exist_ok=True)
    ctx.R.run(
        step,
        [
            "xlm-embeddings",
            "export",
            ckpt,
            "--lang",
            lang,
            "--lang-data",
            os.path.join(d["bin"], f"train.{lang}"),
            "--out",
            out,
        ],
    )
    return step, out


def evaluate(ctx, name, vec, base, dict_path):
    """The eval step of the XLM vectors beside a baseline's: its name."""
    step = f"t5-eval-{name}"
    ctx.R.run(
        step,
        [
            "xlm-embeddings",
            "eval",
            "--src",
            vec["en"],
            "--tgt",
            vec["fr"],
            "--dictionary",
            dict_path,
            "--baseline",
            base["en"],
            base["fr"],
            "--json",
        ],
    )
    return step


def evaluation(ctx, step):
    """The dictionary report of an eval step (its --json output)."""
    with open(ctx.R.path("logs", f"{step}.log"), encoding="utf-8") as f:
        text = f.read()
    return json.loads(text[text.index("{") : text.rindex("}") + 1])["dictionary"]


def run(ctx):
    d = data_enfrde(ctx)
    xlm = mlm_enfr(ctx, d)
    half = PRETRAIN_UPDATES // 2
    # different seeds: two independent models (with one seed both tables would start from the same random
    # vectors, which aligns the words spelt alike in en and fr before any training); side by side, one core each

    def mono_mlm(lang, seed):
        extra = ["--seed", seed]
        return lambda: pretrain(
            ctx, f"mlm-{lang}-only", d["bin"], LANGS, "mlm", lang, updates=half, extra=extra, beside=True
        )

    mono = dict(zip(("en", "fr"), ctx.R.side_by_side(mono_mlm("en", 1), mono_mlm("fr", 2))))
    rnd = ctx.R.path("t5-random-init", "checkpoint.pt")
    ctx.R.do(f"{rnd}: {xlm['ckpt']} with freshly initialised weights", random_init_checkpoint, xlm["ckpt"], rnd)
    dict_all, dict_text, dict_steps = dictionary(ctx)
    dict_diff = ctx.R.path("t5-embeddings", "dictionary.different.txt")
    ctx.R.do(f"{dict_diff}: the pairs of {dict_all} whose words differ", without_identical, dict_all, dict_diff)
    steps = d["steps"][:3] + dict_steps + [xlm["step"]] + [m["step"] for m in mono.values()]
    vecs = {"xlm": {}, "mono": {}, "random": {}}
    for lang in ("en", "fr"):
        for name, ckpt in (("xlm", xlm["ckpt"]), ("mono", mono[lang]["ckpt"]), ("random", rnd)):
            s, vecs[name][lang] = export(ctx, d, name, ckpt, lang)
            steps.append(s)
    evaluated = {}
    for dname, dpath in (("different", dict_diff), ("all", dict_all)):
        for base in ("mono", "random"):
            evaluated[(dname, base)] = evaluate(ctx, f"{dname}-vs-{base}", vecs["xlm"], vecs[base], dpath)
            steps.append(evaluated[(dname, base)])
    if ctx.dry_run:
        return {"steps": []}
    reports = {key: evaluation(ctx, step) for key, step in evaluated.items()}

    rows = []
    for dname, label in (("different", "pairs with two different words"), ("all", "all pairs")):
        r_mono, r_rnd = reports[(dname, "mono")], reports[(dname, "random")]
        for space, r, key in (
            ("XLM (en+fr MLM)", r_mono, "model"),
            ("per-language MLMs (en only, fr only)", r_mono, "baseline"),
            ("random initialisation (reference)", r_rnd, "baseline"),
        ):
            m = r["metrics"][key]
            rows.append([label, space] + [fmt(m[k], dg) for k, _, dg in METRICS] + [r["evaluated_pairs"]])
    table = md_table(["dictionary pairs", "embeddings"] + [h for _, h, _ in METRICS] + ["pairs evaluated"], rows)
    paper = md_table(["paper, Table 5", "cosine sim.", "L2 dist."], [[k, v[0], v[1]] for k, v in PAPER.items()])
    found = reports[("all", "mono")]
    text = f"""# Table 5 (miniature): cross-lingual word embeddings (en-fr)

Vectors: the lookup table (`xlm-embeddings export --lang en|fr`: whole-word BPE tokens that occur as whole words
in that language's DDTP training text). Dictionary: {dict_text}: {found["pairs"]} pairs, of which
{found["evaluated_pairs"]} have both words in every space ({found["source_words"]} English words). In one shared
vocabulary a word spelt the same in en and fr (`type`, `image`, `code`) is a single token, so its pair has cosine 1
in the XLM table and in the random table; the first block leaves those pairs out, the second keeps them.
P@1: the gold translation is the nearest French word (cosine, or CSLS with k = 10) among all exported French words.

{table}

The paper's Table 5 (translation pairs of the MUSE dictionaries, the 1024-dim XLM, fastText for MUSE and Concat;
their third column, SemEval'17 word similarity, has no offline data here):

{paper}

The per-language baseline is two separately trained tables: nothing aligns them, so it stands for "no
cross-lingual training" (the paper's MUSE aligns two such spaces with adversarial training and Procrustes,
which is not done here). L2 distances depend on the scale of each table and compare only within a row's space.

## Budget

- model: {MODEL_TEXT}; one shared BPE (8000 merges) for en, fr, de
- XLM: Table 2's en+fr MLM, {xlm["updates"]} updates (`--mlm-steps en,fr`, {PRETRAIN_TEXT}, α = 0.7
  language sampling, so about {xlm["updates"] // 2} updates per language)
- baseline: `--mlm-steps en` (seed 1) and `--mlm-steps fr` (seed 2), {mono["en"]["updates"]} updates each, same
  settings otherwise; the two side by side, one core each
- scale {ctx.scale:g}; the steps' wall times sum to {ctx.minutes(steps):.1f} min (2 CPU cores; the two
  per-language MLMs ran side by side, one core each), per step:

{budget_lines(ctx, steps, {xlm["step"]: "Table 2"})}
"""
    panels = [
        dict(
            series={
                "XLM en+fr: en": curve(xlm["log"], "en_mlm_ppl"),
                "XLM en+fr: fr": curve(xlm["log"], "fr_mlm_ppl"),
                "en only": curve(mono["en"]["log"], "en_mlm_ppl"),
                "fr only": curve(mono["fr"]["log"], "fr_mlm_ppl"),
            },
            ylabel="valid MLM ppl",
            title="pretraining",
            log_y=True,
        )
    ]
    write_result(ctx, 5, text, panels, "Table 5 (miniature): word embeddings en-fr, DDTP")
    return {"steps": steps}
