"""What the paper-mini tables share: the scale and the folders, the DDTP data-bins, the model, the LM
pretraining runs (each computed once, whichever table needs it first), and the results writer.

Every step is a command a user could type (examples/recipes.py builds it; examples/pipeline.py's Runner runs it once
and stamps it with its wall time); data steps live in OUT (shared by every scale), training steps in OUT (scale 1)
or OUT/scale-S (any other --scale)."""

import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import recipes  # noqa: E402
from pipeline import (  # noqa: E402,F401
    ROOT,
    Runner,
    covered_minutes,
    plot_panels,
    valid_rows,
)

DEFAULT_OUT = os.path.join(ROOT, "paper-mini-out")
# every language any table uses: one `apt-get update` fetches all their DDTP files
FETCH_LANGS = "cs,de,en,fr,sk"
# the model of every table: xlm_small is 4 x 256 with 4 heads; 3 layers as examples/lowres-lm
ARCH = recipes.SMALL_ARCH
MODEL = recipes.SMALL_MODEL
MODEL_TEXT = "`xlm_small --n-layers 3` (3 layers, 256 dims, 4 heads, GELU, dropout 0.1)"
# LM pretraining (Tables 1, 2, 3, 5), the recipe of the learning study (study.py: fast-tps32, the one that left
# the unigram plateau on 2 cores; recipes.CPU_PRETRAIN): streams of 32 tokens, 64 per update, 40% of the words
# predicted (MLM), no dropout, lr 1e-3; validation every 250 updates
PRETRAIN_UPDATES = 3000
PRETRAIN_VALID_EVERY = 250
PRETRAIN_TOKENS_PER_SAMPLE = recipes.CPU_PRETRAIN["tokens_per_sample"]
PRETRAIN_TEXT = (
    "streams of 32 tokens x 64, 40% of the words predicted (MLM), no dropout, Adam lr 1e-3 inverse-sqrt after 300 "
    "warm-up updates"
)
OPTIM = recipes.XLM_ADAM_CLIP
T3_PAIRS = 5000  # Table 3: training pairs of the low-resource en-sk setting


class Ctx:
    """The scale, the device, the runners and the folders of one invocation (`dry_run`: the runners print the
    commands instead of running them)."""

    def __init__(self, scale: float, out: str = DEFAULT_OUT, device: str = "cpu", dry_run: bool = False):
        if not scale > 0:
            raise SystemExit(f"--scale {scale}: must be positive")
        self.scale = scale
        self.device = device
        self.dry_run = dry_run
        base = os.path.abspath(out)
        self.data = Runner(base, "paper-mini data", device, dry_run)
        run_dir = base if scale == 1 else os.path.join(base, f"scale-{scale:g}")
        self.R = Runner(run_dir, "paper-mini", device, dry_run)
        self.results = os.path.join(HERE, "results") if scale == 1 else os.path.join(run_dir, "results")
        if not dry_run:
            os.makedirs(self.results, exist_ok=True)

    def train_run(self, save_dir: str) -> list:
        """Where a training step writes and on which device (recipes.train_run)."""
        return recipes.train_run(save_dir, self.device)

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
    ctx.data.run("fetch", recipes.ddtp(FETCH_LANGS, ctx.data.path("raw-all"), lists=lists))
    return lists


def data_enfrde(ctx: Ctx) -> dict:
    """Tables 1, 2, 5: en/fr/de with the monolingual sides from disjoint halves of the descriptions
    (unsupervised MT), held-out parallel valid/test, shared BPE (8000 merges); Section-labelled titles."""
    lists, D = fetch(ctx), ctx.data
    raw, data, cls = D.path("raw-enfrde"), D.path("bin-enfrde"), D.path("cls-enfrde")
    D.run("data-enfrde-ddtp", recipes.ddtp("en,fr,de", raw, from_lists=lists, disjoint_mono=True))
    D.run("data-enfrde-prepare", recipes.prepare(raw, data, "de,en,fr", codes=8000))
    D.run("data-enfrde-cls", recipes.classification_data(raw, cls, data, "de,en,fr"))
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


def _link_ensk(full: str, few: str, raw: str) -> None:
    os.makedirs(raw, exist_ok=True)
    for split in ("train", "valid", "test"):
        for lang in ("en", "sk"):
            _link(os.path.join(full, f"{split}.{lang}"), os.path.join(raw, f"{split}.{lang}"))
            _link(
                os.path.join(few if split == "train" else full, f"{split}.en-sk.{lang}"),
                os.path.join(raw, f"{split}.en-sk.{lang}"),
            )


def _link_mono(src: str, raw: str, langs) -> None:
    os.makedirs(raw, exist_ok=True)
    for split in ("train", "valid", "test"):
        for lang in langs:
            _link(os.path.join(src, f"{split}.{lang}"), os.path.join(raw, f"{split}.{lang}"))


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
    D.run("data-ensk-ddtp", recipes.ddtp("en,sk", full, from_lists=lists))
    D.run(f"data-ensk-ddtp-{T3_PAIRS}", recipes.ddtp("en,sk", few, from_lists=lists, max_sentences=T3_PAIRS))
    D.do(f"{raw}: links to {full}, the train pairs to {few}", _link_ensk, full, few, raw)
    D.run("data-ensk-prepare", recipes.prepare(raw, data, "en,sk", codes=8000))
    return {"bin": data, "steps": ["fetch", "data-ensk-ddtp", f"data-ensk-ddtp-{T3_PAIRS}", "data-ensk-prepare"]}


def data_csensk(ctx: Ctx) -> dict:
    """Table 4: the monolingual cs, en, sk text, one BPE of 10000 merges: exactly what examples/lowres-lm/run.sh
    builds itself (built here once so that every --scale shares it)."""
    lists, D = fetch(ctx), ctx.data
    ddtp, raw, data = D.path("raw-csensk-ddtp"), D.path("raw-csensk"), D.path("bin-csensk")
    D.run("data-csensk-ddtp", recipes.ddtp("cs,en,sk", ddtp, from_lists=lists))
    D.do(f"{raw}: links to the monolingual files of {ddtp}", _link_mono, ddtp, raw, ("cs", "en", "sk"))
    D.run("data-csensk-prepare", recipes.prepare(raw, data, "cs,en,sk", codes=10000))
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
        recipes.lm_pretrain(
            data,
            langs,
            steps,
            objective=objective,
            task=task,
            flags=[*ARCH, *recipes.NO_DROPOUT],
            optimizer=OPTIM,
            **dict(recipes.CPU_PRETRAIN, warmup=min(300, n)),
            epoch_size=every * 64,
            max_update=n,
            run=ctx.train_run(ctx.R.path(step)),
            extra=extra,
        ),
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


def lm_valid(
    ctx: Ctx,
    step: str,
    data: str,
    langs: str,
    objective: str,
    steps: str,
    checkpoint: str,
    tokens_per_sample: int = PRETRAIN_TOKENS_PER_SAMPLE,
) -> str:
    """The valid perplexities of an LM checkpoint (fairseq-validate; `objective`: mlm or clm on `steps`); returns
    the log (lm_valid_ppl reads it). MLM at 15% predicted words, every one replaced by <mask> (the original's
    evaluation masking), whatever --word-pred it trained with; on streams of the length it trained on (its
    position embeddings beyond that are untrained, shorter streams give less context)."""
    return ctx.R.run(
        step,
        recipes.lm_validate(
            data,
            langs,
            steps,
            checkpoint,
            objective=objective,
            tokens_per_sample=tokens_per_sample,
            flags=["--word-pred", 0.15],
            batch_size=16,
            device=ctx.device,
        ),
    )


def lm_valid_ppl(log: str) -> dict:
    """The valid metrics of lm_valid's log."""
    return valid_rows(log, "valid")[-1]


# the translation runs' batches (Tables 2 and 3, the study's UNMT)
MT_BATCHES = dict(max_tokens=1500, batch_size=64, max_len=40)
# Tables 2 and 3's translation training (recipes.mt_train): the model, those batches, Adam lr 3e-4, fixed after
# the warm-up
MT_TRAINING = dict(flags=MODEL, **MT_BATCHES, optimizer=OPTIM, lr="3e-4", scheduler="fixed")


def generate_bleu(
    ctx: Ctx, step: str, data: str, langs: str, src: str, tgt: str, checkpoint: str, beside: bool = False
) -> None:
    """Test BLEU of one direction: fairseq-generate, greedy, tokenised BLEU with the BPE removed (`beside`: on
    one core, another step running at the same time)."""
    ctx.R.run(
        step,
        recipes.generate(data, langs, src, tgt, checkpoint, batch_size=64, device=ctx.device),
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
