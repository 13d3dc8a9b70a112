"""Table 2 in miniature: unsupervised MT en-fr with different encoder/decoder initialisations.

Monolingual en and fr text from disjoint halves of the DDTP descriptions (`xlm-preprocess ddtp --disjoint-mono`),
so no English sentence has its French translation in the training data; held-out parallel valid/test pairs.
Pretraining: a CLM and an MLM on en+fr (same model, same updates). UNMT (denoising auto-encoding + online
back-translation) from each initialisation for the same number of updates; then MT perplexity of the last
checkpoint on valid and test (fairseq-validate) and test BLEU (fairseq-generate, greedy, tokenised BLEU on
the Moses-tokenised text with BPE removed)."""

from common import (
    MODEL,
    MODEL_TEXT,
    MT_BATCHES,
    OPTIM,
    budget_lines,
    curve,
    data_enfrde,
    fmt,
    generate_bleu,
    md_table,
    pretrain,
    write_result,
)
from pipeline import USER_DIR, bleu_of, fairseq_common, valid_rows

UNMT_UPDATES = 1000
UNMT_VALID_EVERY = 100
LANGS = "de,en,fr"  # the data-bin's languages (de is unused here)
TASK = ["--task", "xlm_unsupervised_mt", "--langs", LANGS, "--ae-steps", "en,fr", "--bt-steps", "en-fr-en,fr-en-fr"]
# (encoder, decoder); "-" = random initialisation
CELLS = [("-", "-"), ("CLM", "CLM"), ("MLM", "MLM"), ("MLM", "-")]
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


def mlm_enfr(ctx, d):
    """The en+fr MLM: Table 2's MLM initialisation and Table 5's XLM embeddings (computed once)."""
    return pretrain(ctx, "mlm-enfr", d["bin"], LANGS, "mlm", "en,fr")


def pretrainings(ctx, d):
    return {"MLM": mlm_enfr(ctx, d), "CLM": pretrain(ctx, "clm-enfr", d["bin"], LANGS, "clm", "en,fr")}


def cell_name(enc, dec):
    return f"{enc.replace('-', 'rand').lower()}-{dec.replace('-', 'rand').lower()}"


def unmt(ctx, d, pre, enc, dec):
    name = cell_name(enc, dec)
    step = f"t2-unmt-{name}"
    n = ctx.n(UNMT_UPDATES)
    every = min(n, ctx.n(UNMT_VALID_EVERY, 5))
    reload = []
    if enc != "-":
        reload += ["--reload-encoder", pre[enc]["ckpt"]]
    if dec != "-":
        reload += ["--reload-decoder", pre[dec]["ckpt"]]
    ctx.R.run(
        step,
        [
            "fairseq-train",
            d["bin"],
            *TASK,
            "--word-shuffle",
            3,
            "--word-dropout",
            0.1,
            "--word-blank",
            0.1,
            *MODEL,
            *MT_BATCHES,
            *OPTIM,
            "--lr",
            "3e-4",
            "--lr-scheduler",
            "fixed",
            "--warmup-updates",
            min(n, ctx.n(100, 2)),
            "--epoch-size",
            64 * every,
            "--max-update",
            n,
            *reload,
            *fairseq_common(ctx.R.path(step)),
        ],
    )
    checkpoint = ctx.R.path(step, "checkpoint_last.pt")
    steps = [step, f"t2-mt-ppl-{name}"]
    ctx.R.run(
        f"t2-mt-ppl-{name}",
        [
            "fairseq-validate",
            d["bin"],
            "--user-dir",
            USER_DIR,
            *TASK,
            "--criterion",
            "xlm_mt_loss",
            "--path",
            checkpoint,
            "--valid-subset",
            "valid,test",
            "--batch-size",
            64,
            "--cpu",
        ],
    )
    for src, tgt in DIRECTIONS:
        steps.append(f"t2-bleu-{name}-{src}-{tgt}")
        generate_bleu(ctx, steps[-1], d["bin"], LANGS, src, tgt, checkpoint)
    return name, steps


def results(ctx, name):
    log = ctx.R.path("logs", f"t2-mt-ppl-{name}.log")
    v, t = (valid_rows(log, s) for s in ("valid", "test"))
    out = {"valid": v[-1] if v else {}, "test": t[-1] if t else {}}
    out["bleu"] = {f"{s}-{t}": bleu_of(ctx.R.path("logs", f"t2-bleu-{name}-{s}-{t}.log")) for s, t in DIRECTIONS}
    return out


def run(ctx):
    d = data_enfrde(ctx)
    pre = pretrainings(ctx, d)
    all_steps = d["steps"][:3] + [p["step"] for p in pre.values()]
    res = {}
    for enc, dec in CELLS:
        name, steps = unmt(ctx, d, pre, enc, dec)
        all_steps += steps
        res[(enc, dec)] = results(ctx, name)

    nan = float("nan")
    rows = []
    for cell in CELLS:
        r = res[cell]
        ppl = [fmt(r[s].get(f"{a}-{b}_mt_ppl", nan)) for a, b in DIRECTIONS for s in ("valid", "test")]
        bleu = [fmt(r["bleu"][f"{a}-{b}"], 2) for a, b in DIRECTIONS]
        paper = PAPER.get(cell)
        rows.append([cell[0], cell[1], *ppl, *bleu, f"{paper[1]} / {paper[0]}" if paper else "—"])
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
            "paper fr→en / en→fr BLEU",
        ],
        rows,
    )
    n = ctx.n(UNMT_UPDATES)
    mlm, rnd = res[("MLM", "MLM")], res[("-", "-")]
    v_mlm, v_rnd = mlm["valid"].get("fr-en_mt_ppl", nan), rnd["valid"].get("fr-en_mt_ppl", nan)
    verdict = "lower" if v_mlm < v_rnd else "not lower"
    text = f"""# Table 2 (miniature): unsupervised MT en-fr, by encoder/decoder initialisation

"-" = random initialisation; CLM / MLM = the en+fr language model pretrained with that objective. Every cell
trains {n} UNMT updates (denoising auto-encoding en, fr + online back-translation en-fr-en, fr-en-fr; each
update is one of these four steps) and is evaluated at its last update. MT perplexity: `fairseq-validate` on the
held-out parallel valid and test pairs; BLEU: `fairseq-generate` on test, greedy, `--max-len-a 1.5
--max-len-b 10`, tokenised BLEU on the Moses-tokenised text with BPE removed (`--post-process subword_nmt`).

{table}

**MLM init vs random init after the same {n} UNMT updates: valid fr→en MT perplexity {fmt(v_mlm)} (MLM/MLM) vs
{fmt(v_rnd)} (random/random), i.e. {verdict} from the MLM checkpoint; test BLEU fr→en
{fmt(mlm["bleu"]["fr-en"], 2)} vs {fmt(rnd["bleu"]["fr-en"], 2)}, en→fr {fmt(mlm["bleu"]["en-fr"], 2)} vs
{fmt(rnd["bleu"]["en-fr"], 2)}.**

The paper's column is WMT'14 en-fr BLEU after full UNMT training of 1024-dim models (its "-/-" is 13.0 en→fr,
15.8 fr→en; MLM/MLM 33.4 / 33.3); it shows the direction (pretrained > random, MLM > CLM, the encoder matters
most), not comparable values.

## Budget

- model: {MODEL_TEXT}, encoder and decoder each such a stack (the decoder with cross-attention, which starts
  fresh); one shared BPE (8000 merges)
- pretraining: {pre["MLM"]["updates"]} updates each for the CLM (`--clm-steps en,fr`) and the MLM
  (`--mlm-steps en,fr`), streams of 128 tokens x 16, Adam lr 5e-4 inverse-sqrt; the MLM is also Table 5's
- UNMT: {n} updates per cell, batches of at most 1500 tokens / 64 sentences of at most 40 BPE tokens,
  word shuffle 3, dropout 0.1, blank 0.1, Adam lr 3e-4 (fixed after {min(n, ctx.n(100, 2))} warm-up updates),
  back-translation greedy with the live model
- scale {ctx.scale:g}; wall time {ctx.minutes(all_steps):.1f} min in all (2 CPU cores), per step:

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
