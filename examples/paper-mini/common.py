"""What the paper-mini tables share: the scale and the folders, the DDTP data-bins, the model, the LM
pretraining runs (each computed once, whichever table needs it first), and the results writer.

Every step is a command a user could type (examples/pipeline.py's Runner runs it once and stamps it with its
wall time); data steps live in OUT (shared by every scale), training steps in OUT (scale 1) or
OUT/scale-S (any other --scale)."""

import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from pipeline import (  # noqa: E402,F401
    ROOT,
    USER_DIR,
    Runner,
    covered_minutes,
    fairseq_common,
    plot_panels,
    side_by_side,
    valid_rows,
)

DEFAULT_OUT = os.path.join(ROOT, "paper-mini-out")
# every language any table uses: one `apt-get update` fetches all their DDTP files
FETCH_LANGS = "cs,de,en,fr,sk"
# the model of every table: xlm_small is 4 x 256 with 4 heads; 3 layers as examples/lowres-lm
ARCH = ["--arch", "xlm_small", "--n-layers", 3]
MODEL = [*ARCH, "--dropout", 0.1, "--attention-dropout", 0.1]
MODEL_TEXT = "`xlm_small --n-layers 3` (3 layers, 256 dims, 4 heads, GELU, dropout 0.1)"
# LM pretraining (Tables 1, 2, 3, 5), the recipe of the learning study (study.py: fast-tps32, the one that left
# the unigram plateau on 2 cores): streams of 32 tokens, 64 per update, 40% of the words predicted (MLM), no
# dropout, lr 1e-3; validation every 250 updates
PRETRAIN_UPDATES = 3000
PRETRAIN_VALID_EVERY = 250
PRETRAIN_TOKENS_PER_SAMPLE = 32
PRETRAIN_TEXT = (
    "streams of 32 tokens x 64, 40% of the words predicted (MLM), no dropout, Adam lr 1e-3 inverse-sqrt after 300 "
    "warm-up updates"
)
OPTIM = ["--optimizer", "xlm_adam", "--adam-betas", "(0.9,0.98)", "--clip-norm", 5]
T3_PAIRS = 5000  # Table 3: training pairs of the low-resource en-sk setting


class Ctx:
    """The scale, the runners and the folders of one invocation."""

    def __init__(self, scale: float, out: str = DEFAULT_OUT):
        if not scale > 0:
            raise SystemExit(f"--scale {scale}: must be positive")
        self.scale = scale
        base = os.path.abspath(out)
        self.data = Runner(base, "paper-mini data")
        run_dir = base if scale == 1 else os.path.join(base, f"scale-{scale:g}")
        self.R = Runner(run_dir, "paper-mini")
        self.results = os.path.join(HERE, "results") if scale == 1 else os.path.join(run_dir, "results")
        os.makedirs(self.results, exist_ok=True)

    def n(self, updates: int, minimum: int = 10) -> int:
        """An update count at this scale."""
        return max(minimum, int(round(updates * self.scale)))

    def minutes(self, steps) -> float:
        """Sum of the wall times of these steps (training runner first, then data runner), in minutes."""
        total = 0.0
        for s in steps:
            sec = self.R.seconds(s) if self.R.done(s) else self.data.seconds(s)
            total += 0.0 if math.isnan(sec) else sec
        return total / 60

    def wall_minutes(self, steps) -> float:
        """Minutes during which at least one of these steps was running (steps side by side count once)."""
        return covered_minutes((self.R if self.R.done(s) else self.data).stamp(s) for s in steps)


# ------------------------------------------------------------------ data
def fetch(ctx: Ctx) -> str:
    """Debian's translation files of every language into a private apt folder (no root); returns it."""
    lists = ctx.data.path("apt-lists")
    ctx.data.run(
        "fetch", ["xlm-preprocess", "ddtp", "--langs", FETCH_LANGS, "--out", ctx.data.path("raw-all"), "--lists", lists]
    )
    return lists


def data_enfrde(ctx: Ctx) -> dict:
    """Tables 1, 2, 5: en/fr/de with the monolingual sides from disjoint halves of the descriptions
    (unsupervised MT), held-out parallel valid/test, shared BPE (8000 merges); Section-labelled titles."""
    lists, D = fetch(ctx), ctx.data
    raw, data, cls = D.path("raw-enfrde"), D.path("bin-enfrde"), D.path("cls-enfrde")
    D.run(
        "data-enfrde-ddtp",
        ["xlm-preprocess", "ddtp", "--langs", "en,fr,de", "--out", raw, "--from-lists", lists, "--disjoint-mono"],
    )
    D.run(
        "data-enfrde-prepare",
        ["xlm-preprocess", "prepare", raw, data, "--langs", "de,en,fr", "--codes", 8000, "--workers", 2],
    )
    D.run(
        "data-enfrde-cls",
        [
            "xlm-preprocess",
            "classification",
            "--input-dir",
            raw,
            "--input-name",
            "cls",
            "--destdir",
            cls,
            "--codes-file",
            os.path.join(data, "work", "codes"),
            "--dict",
            os.path.join(data, "dict.txt"),
            "--langs",
            "de,en,fr",
            "--drop-unseen-labels",
            "--workers",
            2,
        ],
    )
    return {
        "raw": raw,
        "bin": data,
        "cls": cls,
        "steps": ["fetch", "data-enfrde-ddtp", "data-enfrde-prepare", "data-enfrde-cls"],
    }


def _link(src: str, dst: str) -> None:
    if os.path.lexists(dst):
        os.remove(dst)
    os.symlink(os.path.abspath(src), dst)


def data_ensk(ctx: Ctx) -> dict:
    """Table 3: all en and sk monolingual text (for the MLM and back-translation), but only T3_PAIRS of the
    ~33k en-sk training pairs (a second `ddtp --max-sentences-per-lang` run picks them by a hash); valid and
    test pairs are the full held-out sets."""
    lists, D = fetch(ctx), ctx.data
    full, few, raw, data = (
        D.path("raw-ensk-full"),
        D.path(f"raw-ensk-{T3_PAIRS}"),
        D.path("raw-ensk"),
        D.path("bin-ensk"),
    )
    D.run("data-ensk-ddtp", ["xlm-preprocess", "ddtp", "--langs", "en,sk", "--out", full, "--from-lists", lists])
    D.run(
        f"data-ensk-ddtp-{T3_PAIRS}",
        [
            "xlm-preprocess",
            "ddtp",
            "--langs",
            "en,sk",
            "--out",
            few,
            "--from-lists",
            lists,
            "--max-sentences-per-lang",
            T3_PAIRS,
        ],
    )
    os.makedirs(raw, exist_ok=True)
    for split in ("train", "valid", "test"):
        for lang in ("en", "sk"):
            _link(os.path.join(full, f"{split}.{lang}"), os.path.join(raw, f"{split}.{lang}"))
            _link(
                os.path.join(few if split == "train" else full, f"{split}.en-sk.{lang}"),
                os.path.join(raw, f"{split}.en-sk.{lang}"),
            )
    D.run(
        "data-ensk-prepare",
        ["xlm-preprocess", "prepare", raw, data, "--langs", "en,sk", "--codes", 8000, "--workers", 2],
    )
    return {"bin": data, "steps": ["fetch", "data-ensk-ddtp", f"data-ensk-ddtp-{T3_PAIRS}", "data-ensk-prepare"]}


def data_csensk(ctx: Ctx) -> dict:
    """Table 4: the monolingual cs, en, sk text, one BPE of 10000 merges: exactly what examples/lowres-lm/run.sh
    builds itself (built here once so that every --scale shares it)."""
    lists, D = fetch(ctx), ctx.data
    ddtp, raw, data = D.path("raw-csensk-ddtp"), D.path("raw-csensk"), D.path("bin-csensk")
    D.run("data-csensk-ddtp", ["xlm-preprocess", "ddtp", "--langs", "cs,en,sk", "--out", ddtp, "--from-lists", lists])
    os.makedirs(raw, exist_ok=True)
    for split in ("train", "valid", "test"):
        for lang in ("cs", "en", "sk"):
            _link(os.path.join(ddtp, f"{split}.{lang}"), os.path.join(raw, f"{split}.{lang}"))
    D.run(
        "data-csensk-prepare",
        ["xlm-preprocess", "prepare", raw, data, "--langs", "cs,en,sk", "--codes", 10000, "--workers", 2],
    )
    return {"bin": data, "steps": ["fetch", "data-csensk-ddtp", "data-csensk-prepare"]}


# ------------------------------------------------------------------ pretraining
def pretrain(
    ctx: Ctx,
    name: str,
    data: str,
    langs: str,
    objective: str,
    steps: str,
    task="xlm_cross_lingual_lm",
    updates: int = PRETRAIN_UPDATES,
    extra=(),
    beside: bool = False,
) -> dict:
    """One LM pretraining run (`--clm-steps` or `--mlm-steps`), run once and reused by every table that needs
    it (`beside`: on one core, another step running at the same time). Returns the step name, the best
    checkpoint (by the mean valid perplexity) and the update count."""
    step = f"lm-{name}"
    n = ctx.n(updates)
    every = min(n, ctx.n(PRETRAIN_VALID_EVERY, 5))
    ctx.R.run(
        step,
        [
            "fairseq-train",
            data,
            "--task",
            task,
            "--langs",
            langs,
            f"--{objective}-steps",
            steps,
            *ARCH,
            "--dropout",
            0.0,
            "--attention-dropout",
            0.0,
            "--criterion",
            "xlm_lm_loss",
            "--tokens-per-sample",
            PRETRAIN_TOKENS_PER_SAMPLE,
            "--batch-size",
            64,
            "--max-tokens",
            2048,
            "--word-pred",
            0.4,
            "--lg-sampling-factor",
            0.7,
            *OPTIM,
            "--lr",
            "1e-3",
            "--lr-scheduler",
            "inverse_sqrt",
            "--warmup-updates",
            min(300, n),
            "--warmup-init-lr",
            "1e-7",
            "--epoch-size",
            every * 64,
            "--max-update",
            n,
            "--max-valid-steps",
            30,
            "--best-checkpoint-metric",
            f"{objective}_ppl",
            *fairseq_common(ctx.R.path(step)),
            *extra,
        ],
        beside=beside,
    )
    return {
        "step": step,
        "ckpt": ctx.R.path(step, "checkpoint_best.pt"),
        "updates": n,
        "objective": objective,
        "steps": steps,
        "log": ctx.R.path("logs", f"{step}.log"),
        "warmup": min(300, n),
    }


def lm_valid_ppl(
    ctx: Ctx,
    step: str,
    data: str,
    langs: str,
    objective: str,
    steps: str,
    checkpoint: str,
    tokens_per_sample: int = PRETRAIN_TOKENS_PER_SAMPLE,
) -> dict:
    """The valid metrics of an LM checkpoint (fairseq-validate; `objective`: mlm or clm on `steps`). MLM at 15%
    predicted words, every one replaced by <mask> (the original's evaluation masking), whatever --word-pred it
    trained with; on streams of the length it trained on (its position embeddings beyond that are untrained,
    shorter streams give less context)."""
    log = ctx.R.run(
        step,
        [
            "fairseq-validate",
            data,
            "--user-dir",
            USER_DIR,
            "--task",
            "xlm_cross_lingual_lm",
            "--langs",
            langs,
            f"--{objective}-steps",
            steps,
            "--tokens-per-sample",
            tokens_per_sample,
            "--path",
            checkpoint,
            "--word-pred",
            0.15,
            "--valid-subset",
            "valid",
            "--batch-size",
            16,
            "--cpu",
        ],
    )
    return valid_rows(log, "valid")[-1]


# the translation runs of Tables 2 and 3 (after the model, the task flags and the optimiser)
MT_BATCHES = ["--criterion", "xlm_mt_loss", "--max-tokens", 1500, "--batch-size", 64, "--max-len", 40]


def generate_bleu(
    ctx: Ctx, step: str, data: str, langs: str, src: str, tgt: str, checkpoint: str, beside: bool = False
) -> None:
    """Test BLEU of one direction: fairseq-generate, greedy, tokenised BLEU with the BPE removed (`beside`: on
    one core, another step running at the same time)."""
    ctx.R.run(
        step,
        [
            "fairseq-generate",
            data,
            "--user-dir",
            USER_DIR,
            "--task",
            "xlm_unsupervised_mt",
            "--langs",
            langs,
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
        beside=beside,
    )


def copied_source_sacrebleu(raw: str) -> dict:
    """Detokenised sacreBLEU of the test sources copied unchanged, per direction: the floor a translation must beat
    (DDTP titles share package names, versions and technical words across languages)."""
    import sacrebleu

    def lines(lang):
        with open(os.path.join(raw, f"test.en-fr.{lang}"), encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]

    return {f"{s}-{t}": sacrebleu.corpus_bleu(lines(s), [lines(t)]).score for s, t in (("en", "fr"), ("fr", "en"))}


def curve(log: str, key: str, subset: str = "valid", x_div: float = 1.0) -> list:
    """[(updates / x_div, value)] of `key` over the validations of a fairseq-train log."""
    return [
        (r["num_updates"] / x_div, r[key])
        for r in valid_rows(log, subset)
        if key in r and "num_updates" in r and math.isfinite(r[key])
    ]


# ------------------------------------------------------------------ results
def fmt(x, digits=1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def md_table(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def budget_lines(ctx: Ctx, steps: list, shared: dict = None) -> str:
    """A list of the steps with their wall times; `shared`: step -> the table that computes it first."""
    shared = shared or {}
    out = []
    for s in steps:
        runner = ctx.R if ctx.R.done(s) else ctx.data
        sec = runner.seconds(s)
        note = f" (shared with {shared[s]})" if s in shared else ""
        out.append(f"- `{s}`: {fmt(sec / 60)} min{note}")
    return "\n".join(out)


def write_result(ctx: Ctx, number: int, text: str, panels: list, title: str) -> None:
    md = os.path.join(ctx.results, f"table{number}.md")
    png = os.path.join(ctx.results, f"table{number}.png")
    with open(md, "w", encoding="utf-8") as f:
        f.write(text.rstrip() + "\n")
    plot_panels(panels, png, title)
    print("\n" + text)
    print(f"(written to {os.path.relpath(md, ROOT)} and {os.path.relpath(png, ROOT)})")
