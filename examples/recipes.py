"""The command lines of the recipes, built in one place: LM pretraining (MLM, CLM, TLM), translation (unsupervised:
denoising + back-translation; supervised, with or without back-translation), classification fine-tuning, their
evaluation (fairseq-validate, fairseq-generate) and the data steps before them. examples/demo, examples/paper-mini
(its tables and its learning study) and benchmarks/train_e2e.py build every such command here, and the commands
that README.md and docs/ show are compared with DOCUMENTED by tests/test_recipe_commands.py.

Each builder returns an argument list (program first; values as given, the runner str()s them). Its keyword
arguments are fairseq's flags under their own names; a flag whose value is None is not given (fairseq's default
applies). The order of the flags is each builder's, fixed: the published runs (the demo's table,
examples/paper-mini/results/) were measured with exactly these lists. List arguments hold the flags a caller
chooses as a group, in its order: `flags` the model (and what a study varies), `optimizer`, `run` where the run
writes and on which device (train_run), `extra` anything after.

    python examples/recipes.py                  # the names of the documented recipes
    python examples/recipes.py unmt             # one of them as shell text, to paste into a document
    python examples/recipes.py --train-device cuda    # fairseq-train's flags for a device (for shell scripts)
"""

import argparse
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(ROOT, "xlm_fairseq")

# ------------------------------------------------------------------ devices
DEVICES = ("cpu", "cuda")
# fairseq-train's precision on a GPU: the one place to change it for every example and benchmark
CUDA_PRECISION = ("--fp16",)
# loader processes per training run on a GPU: batches are prepared while the GPU computes (on a CPU the tasks keep
# them in the main process: xlm_fairseq/tasks/xlm_task.py, loader_workers)
CUDA_LOADER_WORKERS = 2


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise SystemExit(f"--device {device}: choose one of {', '.join(DEVICES)}")
    return device


def train_device(device: str) -> list:
    """fairseq-train's flags for the device: --cpu, or CUDA_PRECISION."""
    return ["--cpu"] if check_device(device) == "cpu" else list(CUDA_PRECISION)


def eval_device(device) -> list:
    """fairseq-validate's and fairseq-generate's flags for the device: --cpu, or nothing on a GPU (evaluation runs
    in full precision there: its numbers do not depend on the training precision chosen); nothing for None."""
    return [] if device is None or check_device(device) == "cuda" else ["--cpu"]


def loader_workers(device: str) -> int:
    return 0 if check_device(device) == "cpu" else CUDA_LOADER_WORKERS


def train_run(save_dir: str, device: str = "cpu") -> list:
    """Where a training run writes, on which device, with which seed and log: the examples' runs."""
    return [
        "--user-dir",
        USER_DIR,
        "--save-dir",
        save_dir,
        *train_device(device),
        "--num-workers",
        loader_workers(device),
        "--seed",
        1,
        "--log-format",
        "tqdm",
        "--log-interval",
        25,
        "--no-epoch-checkpoints",
    ]


# ------------------------------------------------------------------ shared settings
# XLM's Adam (betas 0.9, 0.98), with the original's gradient clipping (train.py: --clip_grad_norm 5)
XLM_ADAM = ["--optimizer", "xlm_adam", "--adam-betas", "(0.9,0.98)"]
XLM_ADAM_CLIP = [*XLM_ADAM, "--clip-norm", 5]
# the noise of denoising auto-encoding (the paper's, the original's defaults)
NOISE = ["--word-shuffle", 3, "--word-dropout", 0.1, "--word-blank", 0.1]
# the model of the CPU examples (demo, paper-mini): xlm_small (256 dims, 4 heads) with 3 layers
SMALL_ARCH = ["--arch", "xlm_small", "--n-layers", 3]
SMALL_MODEL = [*SMALL_ARCH, "--dropout", 0.1, "--attention-dropout", 0.1]
NO_DROPOUT = ["--dropout", 0.0, "--attention-dropout", 0.0]
# LM pretraining on 2 CPU cores (paper-mini's learning study, results/study.md: fast-tps32, the regime that left the
# unigram plateau): streams of 32 tokens, 64 per update, 40% of the words predicted, α = 0.7 language sampling,
# lr 1e-3 inverse-sqrt after 300 warm-up updates (and no dropout: the callers say it with their model flags)
CPU_PRETRAIN = dict(
    tokens_per_sample=32,
    batch_size=64,
    max_tokens=2048,
    word_pred=0.4,
    lg_sampling=0.7,
    lr="1e-3",
    warmup=300,
    max_valid_steps=30,
)


def _given(flag: str, value) -> list:
    return [] if value is None else [flag, value]


def _switch(flag: str, on: bool) -> list:
    return [flag] if on else []


# ------------------------------------------------------------------ task flags
def lm_task(langs: str, objective: str, steps: str, task: str = "xlm_cross_lingual_lm") -> list:
    """An LM task: `objective` mlm or clm on `steps` (languages, and language pairs for TLM with xlm_tlm)."""
    if objective not in ("mlm", "clm"):
        raise ValueError(f"objective {objective!r}: mlm or clm")
    return ["--task", task, "--langs", langs, f"--{objective}-steps", steps]


def mt_task(langs: str, ae: str = None, mt: str = None, bt: str = None) -> list:
    """The translation task: denoising `ae` (languages), supervised `mt` (directions), back-translation `bt`
    (x-y-x cycles); unsupervised MT is ae + bt, supervised MT is mt (+ bt)."""
    return [
        "--task",
        "xlm_unsupervised_mt",
        "--langs",
        langs,
        *_given("--ae-steps", ae),
        *_given("--mt-steps", mt),
        *_given("--bt-steps", bt),
    ]


# ------------------------------------------------------------------ training
def lm_pretrain(
    data: str,
    langs: str,
    steps: str,
    *,
    objective: str = "mlm",
    task: str = "xlm_cross_lingual_lm",
    flags=(),
    start=(),
    tokens_per_sample=None,
    batch_size=None,
    max_tokens=None,
    word_pred=None,
    sample_alpha=None,
    dropout=None,
    lg_sampling=None,
    optimizer=XLM_ADAM_CLIP,
    lr=None,
    scheduler="inverse_sqrt",
    warmup=None,
    warmup_init_lr="1e-7",
    clip_norm=None,
    epoch_size=None,
    max_update=None,
    stop_hours=None,
    max_valid_steps=None,
    metric="{objective}_ppl",
    patience=None,
    run=(),
    extra=(),
) -> list:
    """fairseq-train of an LM: MLM or CLM streams of `steps`, TLM pairs among them with task xlm_tlm. `start`:
    flags that load weights (--restore-file ...); `dropout` overrides the model's dropout and attention dropout;
    `max_tokens` is the budget of a TLM step (a stream step takes `batch_size` streams); `scheduler` None gives
    fairseq's fixed lr without warm-up; `metric` None chooses no best checkpoint."""
    return [
        "fairseq-train",
        data,
        *lm_task(langs, objective, steps, task),
        *flags,
        "--criterion",
        "xlm_lm_loss",
        *start,
        *_given("--tokens-per-sample", tokens_per_sample),
        *_given("--batch-size", batch_size),
        *_given("--max-tokens", max_tokens),
        *_given("--word-pred", word_pred),
        *_given("--sample-alpha", sample_alpha),
        *_given("--dropout", dropout),
        *_given("--attention-dropout", dropout),
        *_given("--lg-sampling-factor", lg_sampling),
        *optimizer,
        *_given("--lr", lr),
        *_given("--lr-scheduler", scheduler),
        *_given("--warmup-updates", warmup),
        *(_given("--warmup-init-lr", warmup_init_lr) if scheduler == "inverse_sqrt" else []),
        *_given("--clip-norm", clip_norm),
        *_given("--epoch-size", epoch_size),
        *_given("--max-update", max_update),
        *_given("--stop-time-hours", stop_hours),
        *_given("--max-valid-steps", max_valid_steps),
        *_given("--best-checkpoint-metric", None if metric is None else metric.format(objective=objective)),
        *_given("--patience", patience),
        *run,
        *extra,
    ]


def mt_train(
    data: str,
    langs: str,
    *,
    ae: str = None,
    mt: str = None,
    bt: str = None,
    noise=None,
    lambda_ae=None,
    flags=(),
    max_tokens=None,
    batch_size=None,
    max_len=None,
    optimizer=XLM_ADAM_CLIP,
    lr=None,
    scheduler=None,
    warmup=None,
    warmup_init_lr=None,
    clip_norm=None,
    epoch_size=None,
    max_update=None,
    stop_hours=None,
    validate: bool = True,
    valid_subset=None,
    eval_bleu: bool = False,
    eval_bleu_bpe=None,
    metric=None,
    maximize: bool = False,
    patience=None,
    reload_encoder=None,
    reload_decoder=None,
    reload_model=None,
    run=(),
    extra=(),
) -> list:
    """fairseq-train of translation (mt_task: unsupervised with ae + bt, supervised with mt, + bt). `noise`: the
    denoising flags (default NOISE where there are `ae` steps; () when `flags` holds them); `max_tokens` is the
    budget of every step (pairs), `batch_size` caps its sentences; `validate` False disables validation;
    encoder and decoder start from `reload_encoder` / `reload_decoder` (or `reload_model` "ENC,DEC")."""
    if noise is None:
        noise = NOISE if ae else []
    return [
        "fairseq-train",
        data,
        *mt_task(langs, ae, mt, bt),
        *noise,
        *_given("--lambda-ae", lambda_ae),
        *flags,
        "--criterion",
        "xlm_mt_loss",
        *_given("--max-tokens", max_tokens),
        *_given("--batch-size", batch_size),
        *_given("--max-len", max_len),
        *optimizer,
        *_given("--lr", lr),
        *_given("--lr-scheduler", scheduler),
        *_given("--warmup-updates", warmup),
        *_given("--warmup-init-lr", warmup_init_lr),
        *_given("--clip-norm", clip_norm),
        *_given("--epoch-size", epoch_size),
        *_given("--max-update", max_update),
        *_given("--stop-time-hours", stop_hours),
        *_switch("--disable-validation", not validate),
        *_given("--valid-subset", valid_subset),
        *_switch("--eval-bleu", eval_bleu),
        *_given("--eval-bleu-bpe", eval_bleu_bpe),
        *_given("--best-checkpoint-metric", metric),
        *_switch("--maximize-best-checkpoint-metric", maximize),
        *_given("--patience", patience),
        *_given("--reload-encoder", reload_encoder),
        *_given("--reload-decoder", reload_decoder),
        *_given("--reload-model", reload_model),
        *run,
        *extra,
    ]


def classify(
    data: str,
    langs: str,
    *,
    train_langs: str = "en",
    flags=(),
    batch_size=None,
    optimizer=("--optimizer", "xlm_adam"),
    lr=None,
    pooler_dropout=None,
    epoch_size=None,
    valid_subset: str = "valid,test",
    max_update=None,
    finetune_from=None,
    run=(),
    extra=(),
) -> list:
    """fairseq-train of cross-lingual classification: fine-tuned on `train_langs`, every language of `langs`
    validated (and tested, with valid,test) every epoch; the best checkpoint by the mean accuracy."""
    return [
        "fairseq-train",
        data,
        "--task",
        "xlm_classification",
        "--langs",
        langs,
        "--train-langs",
        train_langs,
        *flags,
        "--criterion",
        "xlm_classification_loss",
        *_given("--batch-size", batch_size),
        *optimizer,
        *_given("--lr", lr),
        *_given("--pooler-dropout", pooler_dropout),
        *_given("--epoch-size", epoch_size),
        *_given("--valid-subset", valid_subset),
        *_given("--max-update", max_update),
        "--best-checkpoint-metric",
        "acc",
        "--maximize-best-checkpoint-metric",
        *_given("--finetune-from-model", finetune_from),
        *run,
        *extra,
    ]


# ------------------------------------------------------------------ evaluation
def generate(
    data: str,
    langs: str,
    src: str,
    tgt: str,
    checkpoint: str,
    *,
    subset: str = "test",
    beam=1,
    max_len_a=1.5,
    max_len_b=10,
    batch_size=None,
    post_process="subword_nmt",
    scoring=None,
    user_dir: str = USER_DIR,
    device=None,
) -> list:
    """fairseq-generate of one direction (greedy with beam 1): the hypotheses and BLEU of the BPE-removed text."""
    return [
        "fairseq-generate",
        data,
        "--user-dir",
        user_dir,
        *mt_task(langs),
        "--source-lang",
        src,
        "--target-lang",
        tgt,
        "--path",
        checkpoint,
        "--gen-subset",
        subset,
        "--beam",
        beam,
        "--max-len-a",
        max_len_a,
        "--max-len-b",
        max_len_b,
        *_given("--batch-size", batch_size),
        *_given("--post-process", post_process),
        *_given("--scoring", scoring),
        *eval_device(device),
    ]


def mt_validate(
    data: str,
    langs: str,
    checkpoint: str,
    *,
    ae: str = None,
    mt: str = None,
    bt: str = None,
    subset: str = "valid",
    batch_size=64,
    device=None,
) -> list:
    """fairseq-validate of a translation checkpoint: the MT perplexity of every direction of the task's steps."""
    return [
        "fairseq-validate",
        data,
        "--user-dir",
        USER_DIR,
        *mt_task(langs, ae, mt, bt),
        "--criterion",
        "xlm_mt_loss",
        "--path",
        checkpoint,
        "--valid-subset",
        subset,
        *_given("--batch-size", batch_size),
        *eval_device(device),
    ]


def lm_validate(
    data: str,
    langs: str,
    steps: str,
    checkpoint: str,
    *,
    objective: str = "mlm",
    task: str = "xlm_cross_lingual_lm",
    tokens_per_sample=None,
    flags=(),
    subset: str = "valid",
    batch_size=None,
    user_dir: str = USER_DIR,
    device=None,
) -> list:
    """fairseq-validate of an LM checkpoint: the perplexity of every step of `steps` (MLM at the task's
    --word-pred, 15% unless `flags` say otherwise). `flags`: evaluation flags given before --valid-subset."""
    return [
        "fairseq-validate",
        data,
        "--user-dir",
        user_dir,
        *lm_task(langs, objective, steps, task),
        *_given("--tokens-per-sample", tokens_per_sample),
        "--path",
        checkpoint,
        *flags,
        "--valid-subset",
        subset,
        *_given("--batch-size", batch_size),
        *eval_device(device),
    ]


# ------------------------------------------------------------------ data
def ddtp(
    langs: str, out: str, *, lists=None, from_lists=None, disjoint_mono=False, train_pairs=True, max_sentences=None
) -> list:
    """Debian's translated package descriptions as text: fetched into the private apt folder `lists`, or read from
    one fetched before (`from_lists`); `train_pairs` False writes the parallel pairs of valid and test only."""
    return [
        "xlm-preprocess",
        "ddtp",
        "--langs",
        langs,
        "--out",
        out,
        *_given("--lists", lists),
        *_given("--from-lists", from_lists),
        *_switch("--disjoint-mono", disjoint_mono),
        *_switch("--no-train-pairs", not train_pairs),
        *_given("--max-sentences-per-lang", max_sentences),
    ]


def prepare(raw: str, data_bin: str, langs: str, *, codes, workers=2) -> list:
    """Tokenisation, one shared BPE of `codes` merges, one dictionary, binarisation."""
    return ["xlm-preprocess", "prepare", raw, data_bin, "--langs", langs, "--codes", codes, "--workers", workers]


def classification_data(raw: str, dest: str, data_bin: str, langs: str, *, input_name="cls", workers=2) -> list:
    """Labelled text (DDTP: the package Section of each title) with the BPE and dictionary of `data_bin`."""
    return [
        "xlm-preprocess",
        "classification",
        "--input-dir",
        raw,
        "--input-name",
        input_name,
        "--destdir",
        dest,
        "--codes-file",
        os.path.join(data_bin, "work", "codes"),
        "--dict",
        os.path.join(data_bin, "dict.txt"),
        "--langs",
        langs,
        "--drop-unseen-labels",
        "--workers",
        workers,
    ]


# ------------------------------------------------------------------ the documented full-scale recipes
# The commands README.md and docs/ show, as builder calls; tests/test_recipe_commands.py compares each documented
# command with the one named here (by its flags and values, in any order; paths and run flags excepted).
DOC_RUN = ["--user-dir", "xlm_fairseq"]
# the original's XNLI-15 MLM/TLM command: adam_inverse_sqrt,beta1=0.9,beta2=0.98,lr=0.0001 (its default warmup,
# 4000 updates from 1e-7; the 30000 of its English-only XLM_en command is another model's)
PAPER_MLM = dict(
    tokens_per_sample=256,
    batch_size=32,
    lg_sampling=0.7,
    optimizer=XLM_ADAM,
    lr="1e-4",
    warmup=4000,
    clip_norm=5,
    epoch_size=200000,
    patience=10,
)
PAPER_UNMT = dict(
    ae="en,fr",
    bt="en-fr-en,fr-en-fr",
    lambda_ae="0:1,100000:0.1,300000:0",
    flags=["--arch", "xlm_mlm_enfr_1024"],
    max_tokens=2000,
    optimizer=XLM_ADAM,
    lr="1e-4",
    scheduler="inverse_sqrt",
    warmup=4000,
    warmup_init_lr="1e-7",
    clip_norm=5,
    epoch_size=200000,
    eval_bleu=True,
    metric="en-fr_mt_bleu",
    maximize=True,
    patience=10,
)
XNLI15 = "ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh"
DOCUMENTED = {
    "pretrain-mlm": lm_pretrain(
        "data-bin",
        "de,en,fr",
        "en,fr,de",
        flags=["--arch", "xlm_mlm_enfr_1024"],
        sample_alpha=0.5,
        run=[*DOC_RUN, "--save-dir", "ckpt/mlm"],
        **PAPER_MLM,
    ),
    "unmt": mt_train(
        "data-bin",
        "en,fr",
        reload_encoder="ckpt/mlm/checkpoint_best.pt",
        reload_decoder="ckpt/mlm/checkpoint_best.pt",
        run=[*DOC_RUN, "--save-dir", "ckpt/unmt"],
        **PAPER_UNMT,
    ),
    "generate": generate("data-bin", "en,fr", "fr", "en", "ckpt/unmt/checkpoint_best.pt", user_dir="xlm_fairseq"),
    "generate-sacrebleu": generate(
        "data-bin", "en,fr", "fr", "en", "ckpt/unmt/checkpoint_best.pt", scoring="sacrebleu", user_dir="xlm_fairseq"
    ),
    "classify": classify(
        "cls-bin",
        "de,en,fr",
        flags=["--arch", "xlm_small"],
        batch_size=8,
        lr="5e-6",
        epoch_size=20000,
        finetune_from="ckpt/mlm/checkpoint_best.pt",
        run=DOC_RUN,
    ),
    "classify-xnli15": classify(
        "data-bin/xnli",
        XNLI15,
        flags=["--arch", "xlm_mlm_xnli15_1024", "--dropout", 0.1, "--attention-dropout", 0.1],
        batch_size=8,
        optimizer=["--optimizer", "xlm_adam", "--adam-betas", "(0.9, 0.999)", "--adam-eps", "1e-8"],
        lr="5e-6",
        epoch_size=20000,
        finetune_from="xlm_mlm_xnli15_1024.pt",
        run=DOC_RUN,
        extra=["--lr-scheduler", "fixed", "--max-epoch", 250, "--max-len", 256],
    ),
    "validate-clm": lm_validate(
        "DATA_BIN",
        "cs,en,sk",
        "cs",
        "CHECKPOINT",
        objective="clm",
        subset="valid,test",
        batch_size=1,
        user_dir="xlm_fairseq",
    ),
}


# ------------------------------------------------------------------ shell text
def shell(cmd, env: dict = None, width: int = 110) -> str:
    """The command as a shell line (`K=V` assignments first), wrapped with backslashes before `width`
    characters, a flag kept beside its value."""
    words = [f"{k}={shlex.quote(str(v))}" for k, v in (env or {}).items()] + [shlex.quote(str(c)) for c in cmd]
    groups, i = [], 0
    while i < len(words):  # a flag and its value stay together
        take = 2 if words[i].startswith("-") and i + 1 < len(words) and not words[i + 1].startswith("--") else 1
        groups.append(" ".join(words[i : i + take]))
        i += take
    lines, line = [], ""
    for group in groups:
        if line and len(line) + 1 + len(group) > width - 2:
            lines.append(line)
            line = "    " + group
        else:
            line = f"{line} {group}" if line else group
    return " \\\n".join(lines + [line])


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Print the full-scale recipes that README.md and docs/ show, as shell text.",
        epilog="Names: " + ", ".join(DOCUMENTED),
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="documented recipes to print (default: list the names)")
    p.add_argument("--train-device", choices=DEVICES, help="print fairseq-train's flags for this device instead")
    p.add_argument("--loader-workers", choices=DEVICES, help="print the loader workers for this device instead")
    args = p.parse_args(argv)
    if args.train_device or args.loader_workers:
        print(" ".join(train_device(args.train_device)) if args.train_device else loader_workers(args.loader_workers))
        return
    unknown = [n for n in args.names if n not in DOCUMENTED]
    if unknown:
        p.error(f"unknown recipe {', '.join(unknown)}: choose from {', '.join(DOCUMENTED)}")
    if not args.names:
        print("\n".join(DOCUMENTED))
    for name in args.names:
        print(shell(DOCUMENTED[name]))


if __name__ == "__main__":
    sys.exit(main())
