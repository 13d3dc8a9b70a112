"""`make demo`: the paper in one table, on real en/fr/de text, on a 2-core CPU, in under 20 minutes.

1. fetch Debian's translated package descriptions (DDTP) for en, fr, de   (xlm-preprocess ddtp)
2. shared BPE + dictionary + binarisation                                   (xlm-preprocess prepare)
3. package-Section classification data with the same BPE and dictionary    (xlm-preprocess classification)
4. pretrain an MLM on en, fr, de                                            (fairseq-train --task xlm_tlm)
5. fine-tune Section classification on English, zero-shot fr/de: from the pretrained model and from scratch
6. unsupervised en-fr MT (denoising + online back-translation): from the pretrained model and from scratch
7. one table: per language MLM perplexity and zero-shot accuracy, per direction MT perplexity and BLEU,
   with pretraining and without, BLEU beside copying the source and with a paired bootstrap test.

The pretraining runs on both cores; then two steps at a time, one core each: the MT from the pretrained model
beside the no-pretraining MT, the classifications and the perplexities. Everything goes under demo-out/ (or
DEMO_OUT); a rerun reuses the steps that finished (delete demo-out/stamps/<step> to redo one). DEMO_SCALE=0.25
runs a 4x shorter version.
"""

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pipeline import (  # noqa: E402
    ROOT,
    USER_DIR,
    Runner,
    best_by,
    fairseq_common,
    generated,
    paired_bleu,
    random_init_checkpoint,
    side_by_side,
    unigram_ppl,
    valid_rows,
)

SCALE = float(os.environ.get("DEMO_SCALE", "1"))
LANGS = "de,en,fr"
# updates of each training step at DEMO_SCALE=1, cut so that the whole demo stays under 20 minutes on 2 cores
# (measured 2026-12-02 on a quiet machine: see README)
UPDATES = {"pretrain": 1600, "classify": 500, "unmt": 900}
# xlm_small with 3 layers (as examples/paper-mini): 30% more updates per minute than its 4
MODEL = ["--arch", "xlm_small", "--n-layers", 3, "--dropout", 0.1, "--attention-dropout", 0.1]
# MLM streams of 32 tokens, 64 per update, 40% of the words predicted, no dropout while pretraining: the recipe that
# left the unigram plateau within minutes in paper-mini's study (results/study.md), where streams of 128 did not
STREAM = 32
R = Runner(os.environ.get("DEMO_OUT", os.path.join(ROOT, "demo-out")), "demo")


def updates(name):
    return max(10, int(UPDATES[name] * SCALE))


def prepare_data():
    R.run(
        "fetch",
        [
            "xlm-preprocess",
            "ddtp",
            "--langs",
            "en,fr,de",
            "--out",
            R.path("raw"),
            "--lists",
            R.path("apt-lists"),
            "--disjoint-mono",
        ],
    )
    R.run(
        "prepare",
        [
            "xlm-preprocess",
            "prepare",
            R.path("raw"),
            R.path("data-bin"),
            "--langs",
            LANGS,
            "--codes",
            8000,
            "--workers",
            2,
        ],
    )
    R.run(
        "cls-data",
        [
            "xlm-preprocess",
            "classification",
            "--input-dir",
            R.path("raw"),
            "--input-name",
            "cls",
            "--destdir",
            R.path("cls-bin"),
            "--codes-file",
            R.path("data-bin", "work", "codes"),
            "--dict",
            R.path("data-bin", "dict.txt"),
            "--langs",
            LANGS,
            "--drop-unseen-labels",
            "--workers",
            2,
        ],
    )


def pretrain():
    R.run(
        "pretrain",
        [
            "fairseq-train",
            R.path("data-bin"),
            "--task",
            "xlm_tlm",
            "--langs",
            LANGS,
            # MLM only, as the paper's best UNMT initialisation (Table 2); no TLM: the MT column is unsupervised, so
            # the model it starts from never sees an en-fr pair
            "--mlm-steps",
            "en,fr,de",
            *MODEL,
            "--criterion",
            "xlm_lm_loss",
            "--tokens-per-sample",
            STREAM,
            "--batch-size",
            64,
            "--max-tokens",
            2048,
            "--word-pred",
            0.4,
            "--dropout",
            0.0,
            "--attention-dropout",
            0.0,
            "--lg-sampling-factor",
            0.7,
            "--optimizer",
            "xlm_adam",
            "--adam-betas",
            "(0.9,0.98)",
            "--lr",
            "1e-3",
            "--lr-scheduler",
            "inverse_sqrt",
            "--warmup-updates",
            300,
            "--warmup-init-lr",
            "1e-7",
            "--clip-norm",
            5,
            "--epoch-size",
            64 * 250,  # validation every 250 updates
            "--max-update",
            updates("pretrain"),
            "--max-valid-steps",
            30,
            "--best-checkpoint-metric",
            "mlm_ppl",
            *fairseq_common(R.path("pretrain")),
        ],
    )


def classify(name, init):
    extra = ["--finetune-from-model", init] if init else []
    return R.run(
        f"classify-{name}",
        [
            "fairseq-train",
            R.path("cls-bin"),
            "--task",
            "xlm_classification",
            "--langs",
            LANGS,
            "--train-langs",
            "en",
            *MODEL,
            "--criterion",
            "xlm_classification_loss",
            "--batch-size",
            16,
            "--optimizer",
            "xlm_adam",
            "--lr",
            "1e-4",
            "--pooler-dropout",
            0.1,
            "--epoch-size",
            4000,
            "--valid-subset",
            "valid,test",
            "--max-update",
            updates("classify"),
            "--best-checkpoint-metric",
            "acc",
            "--maximize-best-checkpoint-metric",
            *extra,
            *fairseq_common(R.path(f"classify-{name}")),
        ],
        beside=True,
    )


UNMT_TASK = [
    "--task",
    "xlm_unsupervised_mt",
    "--langs",
    LANGS,
    "--ae-steps",
    "en,fr",
    "--bt-steps",
    "en-fr-en,fr-en-fr",
]


def unmt(name, init):
    reload = ["--reload-model", f"{init},{init}"] if init else []
    R.run(
        f"unmt-{name}",
        [
            "fairseq-train",
            R.path("data-bin"),
            *UNMT_TASK,
            "--word-shuffle",
            3,
            "--word-dropout",
            0.1,
            "--word-blank",
            0.1,
            *MODEL,
            "--criterion",
            "xlm_mt_loss",
            # batches of 750 tokens: 1.8x the updates per minute of 1500 (measured); more, smaller steps
            "--max-tokens",
            750,
            "--batch-size",
            64,
            "--max-len",
            40,
            "--optimizer",
            "xlm_adam",
            "--adam-betas",
            "(0.9,0.98)",
            "--lr",
            "3e-4",
            "--epoch-size",
            64 * 100,  # a summary line every 100 updates
            "--max-update",
            updates("unmt"),
            "--disable-validation",
            *reload,
            *fairseq_common(R.path(f"unmt-{name}")),
        ],
        beside=True,
    )
    checkpoint = R.path(f"unmt-{name}", "checkpoint_last.pt")
    R.run(
        f"mt-ppl-{name}",
        [
            "fairseq-validate",
            R.path("data-bin"),
            "--user-dir",
            USER_DIR,
            *UNMT_TASK,
            "--criterion",
            "xlm_mt_loss",
            "--path",
            checkpoint,
            "--valid-subset",
            "test",
            "--batch-size",
            64,
            "--cpu",
        ],
        beside=True,
    )
    for src, tgt in (("en", "fr"), ("fr", "en")):
        R.run(
            f"bleu-{name}-{src}-{tgt}",
            [
                "fairseq-generate",
                R.path("data-bin"),
                "--user-dir",
                USER_DIR,
                "--task",
                "xlm_unsupervised_mt",
                "--langs",
                LANGS,
                "--source-lang",
                src,
                "--target-lang",
                tgt,
                "--path",
                checkpoint,
                "--gen-subset",
                "test",
                "--beam",
                1,
                "--max-len-a",
                1.5,
                "--max-len-b",
                10,
                "--batch-size",
                64,
                "--post-process",
                "subword_nmt",
                "--cpu",
            ],
            beside=True,
        )


def mlm_ppl(name, checkpoint):
    log = R.run(
        f"mlm-ppl-{name}",
        [
            "fairseq-validate",
            R.path("data-bin"),
            "--user-dir",
            USER_DIR,
            "--task",
            "xlm_tlm",
            "--langs",
            LANGS,
            "--mlm-steps",
            "en,fr,de",
            "--tokens-per-sample",
            STREAM,
            "--path",
            checkpoint,
            "--batch-size",
            64,
            "--valid-subset",
            "test",
            "--cpu",
        ],
        beside=True,
    )
    return valid_rows(log, "test")[-1]


def accuracy(name):
    log = R.path("logs", f"classify-{name}.log")
    return best_by(valid_rows(log, "valid"), valid_rows(log, "test"), "acc")


def examples(n: int = 3) -> str:
    """The first n test sentences of each direction (ids 0..n-1, not chosen), translated by both models."""
    out = []
    for s, t in (("en", "fr"), ("fr", "en")):
        by = {name: generated(R.path("logs", f"bleu-{name}-{s}-{t}.log")) for name in ("pretrained", "random")}
        out.append(f"{s}→{t}, test sentences 0-{n - 1} (BPE removed, Moses-tokenised):")
        for i in range(n):
            ref = by["pretrained"].get(i, {})
            out.append(f"  source:      {ref.get('S', '?')}")
            out.append(f"  reference:   {ref.get('T', '?')}")
            for name in ("pretrained", "random"):
                out.append(f"  {name + ':':<12} {by[name].get(i, {}).get('D', '?')}")
            out.append("")
    return "\n".join(out)


def lm_perplexities(best):
    """Test MLM perplexity of the pretrained model and of a freshly initialised one of the same configuration."""
    return (
        mlm_ppl("pretrained", best),
        mlm_ppl("random", random_init_checkpoint(best, R.path("random-init", "checkpoint.pt"))),
    )


def table():
    pre, rnd = lm_perplexities(R.path("pretrain", "checkpoint_best.pt"))
    acc = {n: accuracy(n) for n in ("pretrained", "random")}
    mt = {n: valid_rows(R.path("logs", f"mt-ppl-{n}.log"), "test")[-1] for n in ("pretrained", "random")}
    bleu = {
        f"{s}-{t}": paired_bleu(*(R.path("logs", f"bleu-{n}-{s}-{t}.log") for n in ("random", "pretrained")))
        for s, t in (("en", "fr"), ("fr", "en"))
    }
    nan = float("nan")
    rows = []
    unigram = {lang: unigram_ppl(R.path("data-bin"), lang, "test") for lang in ("en", "fr", "de")}
    for lang in ("en", "fr", "de"):
        rows.append((f"{lang} MLM perplexity", pre.get(f"{lang}_mlm_ppl", nan), rnd.get(f"{lang}_mlm_ppl", nan), 1))
    unigram_line = "unigram perplexity of the same test text (a model that knows only token frequencies): " + ", ".join(
        f"{lang} {unigram[lang]:.1f}" for lang in unigram
    )
    for lang in ("en", "fr", "de"):
        kind = "fine-tuned on" if lang == "en" else "zero-shot"
        rows.append(
            (
                f"{lang} Section accuracy % ({kind})",
                acc["pretrained"].get(f"{lang}_acc", nan),
                acc["random"].get(f"{lang}_acc", nan),
                1,
            )
        )
    for s, t in (("en", "fr"), ("fr", "en")):
        rows.append(
            (
                f"{s}→{t} unsupervised MT perplexity",
                mt["pretrained"].get(f"{s}-{t}_mt_ppl", nan),
                mt["random"].get(f"{s}-{t}_mt_ppl", nan),
                1,
            )
        )
        b = bleu[f"{s}-{t}"]
        rows.append((f"{s}→{t} unsupervised MT BLEU", b["system"], b["baseline"], 2))
    copied = ", ".join(f"{d} {b['copy']:.2f}" for d, b in bleu.items())
    tested = ", ".join(f"{d} {b['system'] - b['baseline']:+.2f} BLEU, p = {b['p_value']:.3f}" for d, b in bleu.items())
    bleu_line = (
        f"BLEU of the source copied unchanged (Moses-tokenised, as fairseq-generate scores): {copied} (shared tokens: "
        f"package names, versions); pretrained minus random, sacreBLEU's paired bootstrap (1000 resamples, "
        f"two-sided): {tested}"
    )
    lines = ["| test set | XLM pretraining (MLM) | no pretraining |", "|---|---|---|"]
    lines += [f"| {label} | {a:.{d}f} | {b:.{d}f} |" for label, a, b, d in rows]
    budget = (
        f"xlm_small with 3 layers (256 dims); {updates('pretrain')} pretraining updates, "
        f"{updates('classify')} classification and {updates('unmt')} unsupervised-MT updates per column; "
        f"wall time {R.total_minutes():.1f} min (the whole run, across resumes)"
    )
    text = "\n".join(lines) + "\n\n" + unigram_line + "\n\n" + bleu_line + "\n\n" + budget + "\n\n" + examples() + "\n"
    with open(R.path("results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(R.path("results.json"), "w", encoding="utf-8") as f:
        json.dump(
            {
                "mlm_ppl": {"pretrained": pre, "random": rnd},
                "accuracy": acc,
                "mt_ppl": mt,
                "bleu": bleu,
                "unigram_ppl": unigram,
                "updates": {k: updates(k) for k in UPDATES},
                "minutes": R.total_minutes(),
            },
            f,
            indent=1,
        )
    print("\n" + text)
    print(f"(written to {os.path.relpath(R.path('results.md'), ROOT)})")


def main():
    if shutil.which("apt-get") is None and not R.done("fetch"):
        raise SystemExit("the demo fetches Debian's translation files with apt-get, which is not installed here")
    prepare_data()
    best = R.path("pretrain", "checkpoint_best.pt")
    pretrain()  # on both cores: MLM steps run 1.7x faster on two threads than on one beside another run
    # then two at a time, one core each (back-translation's greedy decoding gains little from a second thread): the
    # MT from the pretrained model beside the MT without pretraining (which ends about 30 s sooner), then one
    # classification on each core and the MLM perplexities
    side_by_side(
        lambda: (unmt("pretrained", best), classify("random", None)),
        lambda: (unmt("random", None), classify("pretrained", best), *lm_perplexities(best)),
    )
    table()


if __name__ == "__main__":
    main()
