"""End-to-end training speed: the real `fairseq-train` command lines of this plugin beside the nearest peer in
fairseq, on the same data and model shape, interleaved, medians of the logged rates.

    python benchmarks/train_e2e.py --data-bin DATA_BIN [--reps 3] [--shape small] [--threads 2]
    python benchmarks/train_e2e.py --data-bin DATA_BIN --device cuda --shape base   # on a GPU

DATA_BIN is a data-bin of `xlm-preprocess prepare` with en and fr monolingual text and en-fr pairs (the demo's
demo-out/data-bin, or `xlm-preprocess ddtp --langs en,fr --out raw --disjoint-mono` then prepare). Runs:
- MLM on en streams: ours (`--task xlm_cross_lingual_lm`) and fairseq's `masked_lm` (RoBERTa of the same
  shape, `--sample-break-mode none`: 8 windows of the same length), the peer with fairseq's default loader
  (--num-workers 1) and with --num-workers 0 (its faster setting on a CPU); the speed-up is against the faster;
- MLM+TLM (ours, `--task xlm_tlm`: en, fr streams and en-fr pairs of --max-tokens 2000);
- UNMT with AE + BT (ours, `--task xlm_unsupervised_mt`) and fairseq's `online_backtranslation` (a fairseq
  `transformer` of the same shape, DAE + BT of each language in every update, greedy BT).
Ours train with `--optimizer xlm_adam` (the original's Adam, fused), the peers with fairseq's `adam` (the same
update, a Python loop over parameters). Rates are fairseq's own logged `wps` (tokens/s) and `ups` (updates/s) of
every log interval after the first
(start-up and warm-up excluded); medians over intervals and repetitions. Beside them, the model step alone
(forward, backward, Adam on one batch, benchmarks/pretrain_throughput.py at this shape and vocabulary) for
ours and fairseq's RoBERTa, so the cost outside the model step shows: overhead per update = 1/ups - 1/steps.
On a GPU every run trains in examples/recipes.py's CUDA_PRECISION (--fp16) with its CUDA_LOADER_WORKERS loader
processes (ours and the peers alike), and the MLM group adds ours with --compile-layers (its compilation falls in the
first log interval, left out) and ours with --amp instead of --fp16.
Last line: `e2e_speedup_vs_fairseq X` (our faster MLM configuration's tokens/s over the faster masked_lm one).
A run (or a step alone) that fails prints `NAME failed: <its error line>`, is left out of later repetitions, and the
other runs are still measured (the exit status is then 1); `--skip-compiled REASON` leaves the --compile-layers runs
out and says why.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, HERE)
import recipes  # noqa: E402  (the command lines of our runs)
from pretrain_throughput import RowFailed, attempt, error_line  # noqa: E402

USER_DIR = os.path.join(ROOT, "xlm_fairseq")
SHAPES = {  # dim, layers, heads, streams per MLM batch, tokens per stream, updates per run (UNMT: unmt_updates)
    "small": dict(dim=256, layers=4, heads=4, bs=8, slen=256, updates=150, unmt_updates=60),
    "tiny": dict(dim=64, layers=2, heads=4, bs=8, slen=64, updates=1200, unmt_updates=240),
    # on a GPU: the released xlm_mlm_enfr_1024 (6 x 1024, 8 heads), 32 streams of 256 tokens, --fp16
    "base": dict(dim=1024, layers=6, heads=8, bs=32, slen=256, updates=240, unmt_updates=30),
}
# the runs of each group: (name, command of commands(), extra flags); on a GPU the MLM group differs
GROUPS = {
    "cpu": {
        "mlm": [("ours_mlm", "ours_mlm", []), ("fairseq_masked_lm", "fairseq_masked_lm", [])]
        + [("fairseq_masked_lm_nw0", "fairseq_masked_lm", ["--num-workers", 0])],
        "tlm": [("ours_mlm_tlm", "ours_mlm_tlm", [])],
        "unmt": [("ours_unmt", "ours_unmt", []), ("fairseq_online_bt", "fairseq_online_bt", [])],
    },
    "cuda": {
        "mlm": [("ours_mlm", "ours_mlm", []), ("ours_mlm_compiled", "ours_mlm", ["--compile-layers"])]
        + [("ours_mlm_amp", "ours_mlm", ["--amp"]), ("fairseq_masked_lm", "fairseq_masked_lm", [])],
        "tlm": [("ours_mlm_tlm", "ours_mlm_tlm", [])],
        "unmt": [("ours_unmt", "ours_unmt", []), ("fairseq_online_bt", "fairseq_online_bt", [])],
    },
}
STEP_ALONE = {"ours_mlm": "ours", "ours_mlm_compiled": "ours_compiled", "fairseq_masked_lm": "fairseq_masked_lm"}
INTERVALS = 6  # log intervals per run; the first is left out (start-up, warm-up)
RATE = re.compile(r"\| train_inner \|.* wps=([\d.]+), ups=([\d.]+)")


def common(updates, save, device, amp=False):
    on_device = ["--amp"] if amp else recipes.train_device(device)
    if device == "cuda":
        on_device += ["--num-workers", recipes.loader_workers(device)]
    return on_device + [
        "--adam-betas",
        "(0.9,0.98)",
        "--lr",
        "1e-4",
        "--clip-norm",
        "5",
        "--max-update",
        updates,
        "--log-interval",
        max(1, updates // INTERVALS),
        "--log-format",
        "simple",
        "--disable-validation",
        "--no-save",
        "--save-dir",
        save,
        "--seed",
        1,
    ]


def xlm_model(shape, optimizer):
    return [
        "--user-dir",
        USER_DIR,
        "--optimizer",
        optimizer,
        "--arch",
        "xlm_transformer",
        "--emb-dim",
        shape["dim"],
        "--n-layers",
        shape["layers"],
        "--n-heads",
        shape["heads"],
        "--dropout",
        0.1,
        "--attention-dropout",
        0.1,
    ]


def commands(shape, data, peers, optimizer):
    """The runs' flags after `fairseq-train` (common() adds the updates, the log and the device)."""
    s = shape
    # our LM runs: the recipe's task and batches with this model, no lr schedule, no best checkpoint
    ours = dict(flags=xlm_model(s, optimizer), optimizer=(), scheduler=None, metric=None)
    mlm = recipes.lm_pretrain(data, "en,fr", "en", tokens_per_sample=s["slen"], batch_size=s["bs"], **ours)
    return {
        "ours_mlm": mlm[1:],
        "fairseq_masked_lm": [
            peers["masked_lm"],
            "--optimizer",
            "adam",
            "--task",
            "masked_lm",
            "--criterion",
            "masked_lm",
            "--arch",
            "roberta_base",
            "--encoder-layers",
            s["layers"],
            "--encoder-embed-dim",
            s["dim"],
            "--encoder-ffn-embed-dim",
            4 * s["dim"],
            "--encoder-attention-heads",
            s["heads"],
            "--max-positions",
            512,
            "--dropout",
            0.1,
            "--attention-dropout",
            0.1,
            "--tokens-per-sample",
            s["slen"],
            "--sample-break-mode",
            "none",
            "--batch-size",
            s["bs"],
        ],
        "ours_mlm_tlm": recipes.lm_pretrain(
            data,
            "en,fr",
            "en,fr,en-fr",
            task="xlm_tlm",
            tokens_per_sample=s["slen"],
            batch_size=s["bs"],
            max_tokens=s["bs"] * s["slen"],
            **ours,
        )[1:],
        "ours_unmt": recipes.mt_train(
            data,
            "en,fr",
            ae="en,fr",
            bt="en-fr-en,fr-en-fr",
            flags=xlm_model(s, optimizer),
            max_tokens=1000,
            max_len=40,
            optimizer=(),
        )[1:],
        "fairseq_online_bt": [
            peers["online_bt"],
            "--optimizer",
            "adam",
            "--task",
            "online_backtranslation",
            "--mono-langs",
            "en,fr",
            "--valid-lang-pairs",
            "en-fr",
            "--arch",
            "transformer",
            "--share-all-embeddings",
            "--encoder-layers",
            s["layers"],
            "--decoder-layers",
            s["layers"],
            "--encoder-embed-dim",
            s["dim"],
            "--decoder-embed-dim",
            s["dim"],
            "--encoder-ffn-embed-dim",
            4 * s["dim"],
            "--decoder-ffn-embed-dim",
            4 * s["dim"],
            "--encoder-attention-heads",
            s["heads"],
            "--decoder-attention-heads",
            s["heads"],
            "--dropout",
            0.1,
            "--attention-dropout",
            0.1,
            "--criterion",
            "cross_entropy",
            "--max-tokens",
            1000,
            "--max-source-positions",
            42,
            "--max-target-positions",
            42,
            "--skip-invalid-size-inputs-valid-test",
        ],
    }


def peer_data(data: str, root: str) -> dict:
    """Folders laid out as the peers read them, of symlinks to the same binarised files."""
    mlm, obt = os.path.join(root, "masked_lm"), os.path.join(root, "online_bt")
    links = {os.path.join(mlm, "dict.txt"): "dict.txt", os.path.join(obt, "dict.txt"): "dict.txt"}
    for split in ("train", "valid"):
        for ext in ("bin", "idx"):
            links[os.path.join(mlm, f"{split}.{ext}")] = f"{split}.en.{ext}"
            for lang in ("en", "fr"):
                links[os.path.join(obt, lang, f"{split}.{ext}")] = f"{split}.{lang}.{ext}"
                links[os.path.join(obt, f"{split}.en-fr.{lang}.{ext}")] = f"{split}.en-fr.{lang}.{ext}"
    for link, name in links.items():
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink(os.path.join(os.path.abspath(data), name), link)
    return {"masked_lm": mlm, "online_bt": obt}


def run(name, args, extra, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    # fairseq-train's module, with this interpreter: the console script may live in another environment's bin
    cmd = [sys.executable, "-m", "fairseq_cli.train"] + [str(a) for a in args + extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    output = proc.stdout + proc.stderr
    rates = [(float(w), float(u)) for w, u in RATE.findall(output)]
    if proc.returncode != 0 or len(rates) < 2:
        print(f"{name}: {' '.join(cmd)}\n{output[-3000:]}", file=sys.stderr, flush=True)
        if proc.returncode != 0:
            raise RowFailed(f"{error_line(output)} (exit status {proc.returncode})")
        raise RowFailed(f"logged {len(rates)} rates, 2 or more wanted (raise --updates)")
    return rates[1:]  # the first interval holds the warm-up


def step_alone(impl: str, shape: dict, vocab: int, threads: int, device: str) -> float:
    """Steps/s of the model step alone (pretrain_throughput.py's child) at this shape and vocabulary."""
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "pretrain_throughput.py"),
            "--child",
            impl,
            "--steps",
            # about 3000 sequences of 64 tokens, and no more steps than the run it is compared with makes updates
            str(max(10, min(3000 // (shape["bs"] * shape["slen"] // 64), shape["updates"]))),
            "--warmup",
            "3",
            "--threads",
            str(threads),
            "--dim",
            str(shape["dim"]),
            "--layers",
            str(shape["layers"]),
            "--heads",
            str(shape["heads"]),
            "--bs",
            str(shape["bs"]),
            "--slen",
            str(shape["slen"]),
            "--vocab",
            str(vocab),
            "--device",
            device,
            "--dtype",
            "fp32" if device == "cpu" else "fp16",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore"),
    )
    if out.returncode != 0:
        print(f"step alone ({impl}):\n{out.stderr[-3000:]}", file=sys.stderr, flush=True)
        raise RowFailed(f"{error_line(out.stderr)} (exit status {out.returncode})")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    return row["tok_s"] / (shape["bs"] * shape["slen"])


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name()


def check_data_bin(data_bin, pairs):
    """Stop before the first run (each starts fairseq-train: seconds) when the data-bin lacks what the runs read."""
    from xlm_fairseq.data.data_files import dataset_exists, mono_prefix_candidates, pair_prefix_candidates

    wanted = [mono_prefix_candidates(data_bin, s, lang) for s in ("train", "valid") for lang in ("en", "fr")]
    if pairs:
        wanted += [
            pair_prefix_candidates(data_bin, s, "en", "fr", lang) for s in ("train", "valid") for lang in ("en", "fr")
        ]
    missing = [os.path.basename(c[0]) + ".bin" for c in wanted if not any(dataset_exists(p) for p in c)]
    if not os.path.exists(os.path.join(data_bin, "dict.txt")):
        missing.insert(0, "dict.txt")
    if missing:
        raise SystemExit(
            f"error: --data-bin {data_bin} lacks {', '.join(missing)}: give an xlm-preprocess data-bin with en, fr and "
            "en-fr (docs/gpu.md shows how to make one)"
        )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-bin", required=True, help="xlm-preprocess data-bin with en, fr and en-fr")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--shape", default="small", choices=list(SHAPES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda: --fp16 runs on one GPU")
    p.add_argument("--runs", default="mlm,tlm,unmt", help="which of mlm,tlm,unmt to run")
    p.add_argument("--updates", type=int, default=None, help="updates per run (default: per shape)")
    p.add_argument("--ours-optimizer", default="xlm_adam", help="our runs' --optimizer (adam: fairseq's, as the peers)")
    p.add_argument(
        "--skip-compiled",
        default=None,
        metavar="REASON",
        help="leave the --compile-layers runs out, printing REASON (gpu_suite.sh: when its torch.compile smoke test "
        "failed)",
    )
    a = p.parse_args(argv)
    shape = dict(SHAPES[a.shape])
    if a.updates:
        shape["updates"] = shape["unmt_updates"] = a.updates
    wanted = set(a.runs.split(","))
    check_data_bin(a.data_bin, pairs="tlm" in wanted or "unmt" in wanted)
    with open(os.path.join(a.data_bin, "dict.txt"), encoding="utf-8") as f:
        vocab = 4 + sum(1 for _ in f)
    runs = [r for g in ("mlm", "tlm", "unmt") if g in wanted for r in GROUPS[a.device][g]]
    for name, _, flags in runs:
        if a.skip_compiled and "--compile-layers" in flags:
            print(f"{name} skipped: {a.skip_compiled}", flush=True)
    runs = [r for r in runs if not (a.skip_compiled and "--compile-layers" in r[2])]
    names = [name for name, _, _ in runs]
    rates = {n: [] for n in names}
    alone = {n: [] for n in names if n in STEP_ALONE}
    failed = {}  # {"name" or "name (step alone)": its error line}
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(shape, a.data_bin, peer_data(a.data_bin, tmp), a.ours_optimizer)
        for rep in range(a.reps):
            for name, impls in alone.items():
                steps = attempt(
                    failed, f"{name} (step alone)", rep, step_alone, STEP_ALONE[name], shape, vocab, a.threads, a.device
                )
                impls += [steps] if steps is not None else []
            for name, base, flags in runs:  # interleaved: every configuration once per repetition
                updates = shape["unmt_updates"] if "unmt" in name or "online_bt" in name else shape["updates"]
                amp = "--amp" in flags
                extra = common(updates, os.path.join(tmp, name), a.device, amp) + [f for f in flags if f != "--amp"]
                got = attempt(failed, name, rep, run, name, cmds[base], extra, a.threads)
                if got is None:
                    continue
                rates[name] += got
                wps, ups = statistics.median(w for w, _ in rates[name]), statistics.median(u for _, u in rates[name])
                print(f"rep {rep + 1}: {name} {wps:.0f} tokens/s, {ups:.2f} updates/s", file=sys.stderr, flush=True)

    where = f"fp32, {a.threads} threads" if a.device == "cpu" else f"{' '.join(recipes.CUDA_PRECISION)} on {gpu_name()}"
    print(
        f"fairseq-train end to end, shape {a.shape}: d={shape['dim']} L={shape['layers']} H={shape['heads']} "
        f"V={vocab}, {shape['bs']} x {shape['slen']} tokens per MLM update, "
        f"{where}, "
        f"{a.reps} reps x {shape['updates']} updates (UNMT {shape['unmt_updates']}; medians of log intervals "
        "after the first)"
    )
    print(f"{'run':<24}{'tokens/s':>10}{'updates/s':>11}{'step alone/s':>14}{'e2e/step':>10}{'ms/update outside':>19}")
    med = {}
    for name in (n for n in names if rates[n]):
        wps = statistics.median(w for w, _ in rates[name])
        ups = statistics.median(u for _, u in rates[name])
        med[name] = (wps, ups)
        step_of = name if name in alone else "fairseq_masked_lm" if name.startswith("fairseq_masked_lm") else None
        if alone.get(step_of):
            steps = statistics.median(alone[step_of])
            extra = f"{steps:>14.2f}{ups / steps:>9.0%}{1000 * (1 / ups - 1 / steps):>19.1f}"
        else:
            extra = f"{'':>14}{'':>10}{'':>19}"
        print(f"{name:<24}{wps:>10.0f}{ups:>11.2f}{extra}")
    for key, error in failed.items():
        print(f"{key} failed: {error}")
    if "mlm" in wanted:
        ours = [wps for name, (wps, _) in med.items() if name.startswith("ours_mlm") and name != "ours_mlm_tlm"]
        peer = [wps for name, (wps, _) in med.items() if name.startswith("fairseq_masked_lm")]
        if ours and peer:
            print(f"e2e_speedup_vs_fairseq {max(ours) / max(peer):.2f}")
        else:
            print(f"e2e_speedup_vs_fairseq nan (no {'masked_lm' if ours else 'MLM run of ours'} ran)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
