"""MLM training throughput: this project vs fairseq's masked_lm (RoBERTa encoder + MaskedLmLoss) vs
transformers' XLMWithLMHeadModel, on the same shape, measured in one run.

Each measurement is a fresh subprocess (so peak RSS is per implementation) running warm-up steps then
timed steps of forward + backward + Adam; implementations are interleaved and repeated, medians reported.
Model FLOPs utilisation uses 6·N·T (N = transformer-layer parameters) + attention (12·L·T·S·d) + the output
layer at predicted positions (6·d·V per prediction), against an fp32 matmul timed in the same run.

    python benchmarks/pretrain_throughput.py [--reps 3] [--steps 10] [--threads 2]
    python benchmarks/pretrain_throughput.py --device cuda --dtype fp16 --shape base   # on a GPU
On a GPU every implementation runs under torch.autocast in --dtype, memory is the peak of allocated CUDA
memory, and MFU is against a matmul of 8192³ in that dtype timed in the same run; `ours_compiled` is ours with
--compile-layers (torch.compile of the layers; its compilation happens in the warm-up steps). No step reads anything
back from the GPU (the predicted positions are counted on the CPU), so the host queues step after step as in
fairseq-train. Last line: `speedup_vs_best_peer X.XX` (ours, or ours_compiled where it ran and is faster).
A row that fails prints `NAME failed: <its error line>`, is left out of later repetitions, and the others are still
measured (the exit status is then 1); `--skip-compiled REASON` leaves ours_compiled out and says why.
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

SHAPES = {
    "small": dict(dim=256, layers=4, heads=4, vocab=16000, bs=8, slen=256, word_pred=0.15),
    # the released xlm_mlm_enfr_1024 (6 x 1024, 8 heads, 64k words) on 32 streams of 256 tokens
    "base": dict(dim=1024, layers=6, heads=8, vocab=64000, bs=32, slen=256, word_pred=0.15),
}
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def masked_batch(torch, shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(14, shape["vocab"], (shape["bs"], shape["slen"]), generator=g)
    mask = torch.rand(shape["bs"], shape["slen"], generator=g) < shape["word_pred"]
    mask[:, 0] = False
    return x, mask


def run_ours(torch, shape, steps, warmup, dev, compiled=False):
    import numpy as np
    from fairseq.data import Dictionary

    import xlm_fairseq  # noqa: F401
    from xlm_fairseq.data.lm_objectives import MaskingConfig, mlm_train_mask
    from xlm_fairseq.modules.encoder_decoder import XLMEncoder

    d = Dictionary()
    for i in range(shape["vocab"] - 4):
        d.add_symbol(f"w{i}")
    enc = (
        XLMEncoder(
            d,
            emb_dim=shape["dim"],
            n_layers=shape["layers"],
            n_heads=shape["heads"],
            dropout=0.1,
            attention_dropout=0.1,
            n_langs=2,
        )
        .to(dev.device)
        .train()
    )
    if compiled:
        enc.compile_layers()
    opt = torch.optim.Adam(enc.parameters(), lr=1e-4)
    cfg = MaskingConfig(mask_index=5, pad_index=1, n_words=len(d))
    rng = np.random.RandomState(0)
    raw = torch.randint(14, shape["vocab"], (shape["bs"], shape["slen"]))
    lengths = torch.full((shape["bs"],), shape["slen"])
    langs = torch.zeros(shape["bs"], dtype=torch.long, device=dev.device)

    def step():
        x, pred_mask, target = mlm_train_mask(raw, lengths, cfg, rng)  # in the step, as the collater's work
        pred_index = pred_mask.view(-1).nonzero().squeeze(1)  # on the CPU, as the LM batches carry it
        x, pred_index, target = (t.to(dev.device, non_blocking=True) for t in (x, pred_index, target))
        with dev.autocast():
            logits = enc.predict(enc.fwd(x, langs=langs), pred_index=pred_index)
            loss = torch.nn.functional.cross_entropy(logits.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return len(target)

    return timed(step, steps, warmup, dev)


def run_fairseq(torch, shape, steps, warmup, dev):
    import argparse as ap

    from fairseq.data import Dictionary
    from fairseq.models.roberta import RobertaEncoder, RobertaModel
    from fairseq.models.roberta.model import base_architecture

    d = Dictionary()
    for i in range(shape["vocab"] - 5):
        d.add_symbol(f"w{i}")
    d.add_symbol("<mask>")
    args = ap.Namespace(
        encoder_layers=shape["layers"],
        encoder_embed_dim=shape["dim"],
        encoder_ffn_embed_dim=4 * shape["dim"],
        encoder_attention_heads=shape["heads"],
        max_positions=shape["slen"],
        dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.0,
        activation_fn="gelu",
        untie_weights_roberta=False,
    )
    base_architecture(args)
    model = RobertaModel(args, RobertaEncoder(args, d)).to(dev.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, mask = masked_batch(torch, shape, 0)
    n_pred = int(mask.sum())  # counted on the CPU: the timed steps read nothing back
    x, mask = x.to(dev.device), mask.to(dev.device)

    def step():
        # what fairseq's masked_lm criterion does: logits only at masked positions
        with dev.autocast():
            logits = model(x, masked_tokens=mask)[0]
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)).float(), x[mask], reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return n_pred

    return timed(step, steps, warmup, dev)


def run_transformers(torch, shape, steps, warmup, dev):
    from transformers import XLMConfig, XLMWithLMHeadModel

    cfg = XLMConfig(
        vocab_size=shape["vocab"],
        emb_dim=shape["dim"],
        n_layers=shape["layers"],
        n_heads=shape["heads"],
        dropout=0.1,
        attention_dropout=0.1,
        gelu_activation=True,
        n_langs=2,
        max_position_embeddings=512,
    )
    model = XLMWithLMHeadModel(cfg).to(dev.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, mask = masked_batch(torch, shape, 0)
    n_pred = int(mask.sum())
    x, mask = x.to(dev.device), mask.to(dev.device)
    labels = torch.where(mask, x, torch.full_like(x, -100))

    def step():
        with dev.autocast():
            loss = model(input_ids=x, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return n_pred

    return timed(step, steps, warmup, dev)


class Device:
    """Where and in which precision the implementations run (autocast on a GPU; fp32 on the CPU)."""

    def __init__(self, torch, device: str, dtype: str):
        self.torch, self.device, self.dtype = torch, device, getattr(torch, DTYPES[dtype])

    def autocast(self):
        import contextlib

        if self.dtype == self.torch.float32:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device, dtype=self.dtype)

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def peak_mb(self):
        if self.device == "cuda":
            return self.torch.cuda.max_memory_allocated() / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(step, steps, warmup, dev):
    for _ in range(warmup):
        step()
    dev.sync()
    t0 = time.perf_counter()
    n_pred = 0
    for _ in range(steps):
        n_pred += step()
    dev.sync()
    return time.perf_counter() - t0, n_pred / steps


def matmul_gflops(torch, dev, reps=20):
    n = 8192 if dev.device == "cuda" else 1024
    a, b = (torch.randn(n, n, device=dev.device, dtype=dev.dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    dev.sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    dev.sync()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def model_flops_per_step(shape, n_pred):
    d, L, T, S, V = shape["dim"], shape["layers"], shape["bs"] * shape["slen"], shape["slen"], shape["vocab"]
    n_layer_params = L * (12 * d * d + 13 * d)
    return 6 * n_layer_params * T + 12 * L * T * S * d + 6 * d * V * n_pred


def run_ours_compiled(torch, shape, steps, warmup, dev):
    return run_ours(torch, shape, steps, warmup, dev, compiled=True)


RUNNERS = {
    "ours": run_ours,
    "ours_compiled": run_ours_compiled,
    "fairseq_masked_lm": run_fairseq,
    "transformers_xlm": run_transformers,
}
PEERS = ("fairseq_masked_lm", "transformers_xlm")
COMPILED = ("ours_compiled",)


class RowFailed(RuntimeError):
    """A row's process failed; the message is its error line."""


def error_line(output: str) -> str:
    """The line that says why a process failed: its last exception line, else its last line."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"[\w.]+(Error|Exception|Interrupt)\b", line)]
    return (errors or lines or ["(no output)"])[-1]


def attempt(failed: dict, key: str, rep: int, function, *args):
    """function(*args), or None where it raises: its error line goes into failed[key], and a key in failed is not
    tried again (a compile error or an out-of-memory repeats: the time goes to the other rows)."""
    if key in failed:
        return None
    try:
        return function(*args)
    except Exception as e:
        failed[key] = str(e) if isinstance(e, RowFailed) else f"{type(e).__name__}: {e}"
        print(f"rep {rep + 1} {key}: {failed[key]} (left out of later repetitions)", file=sys.stderr, flush=True)
        return None


def measure(name, a, shape, env) -> dict:
    """One row, measured in a fresh process (its own peak memory); raises RowFailed with its error line."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", name]
        + [f"--{k}={getattr(a, k)}" for k in ("steps", "warmup", "threads", "device", "dtype", "shape")]
        + [f"--{k}={v}" for k, v in shape.items() if k != "word_pred"],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        print(f"{name}'s output:\n{out.stderr[-1500:]}", file=sys.stderr, flush=True)
        raise RowFailed(error_line(out.stderr) + f" (exit status {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def shape_of(a) -> dict:
    shape = dict(SHAPES[a.shape])
    shape.update(
        {k: getattr(a, k) for k in ("dim", "layers", "heads", "vocab", "bs", "slen") if getattr(a, k, None) is not None}
    )
    return shape


def child(name, a):
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shape, dev = shape_of(a), Device(torch, a.device, a.dtype)
    seconds, n_pred = RUNNERS[name](torch, shape, a.steps, a.warmup, dev)
    tokens = shape["bs"] * shape["slen"] * a.steps
    print(
        json.dumps(
            {
                "name": name,
                "tok_s": tokens / seconds,
                "n_pred": n_pred,
                "gflops": model_flops_per_step(shape, n_pred) * a.steps / seconds / 1e9,
                "peak_rss_mb": dev.peak_mb(),
            }
        )
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="fp32", choices=list(DTYPES), help="autocast dtype on cuda (cpu: fp32)")
    p.add_argument("--shape", default="small", choices=list(SHAPES))
    for dim in ("dim", "layers", "heads", "vocab", "bs", "slen"):
        p.add_argument(f"--{dim}", type=int, default=None, help=f"override the shape's {dim}")
    p.add_argument(
        "--impls",
        default=None,
        help=f"comma-separated, of {', '.join(RUNNERS)} (default: all on cuda; on cpu all but ours_compiled, whose "
        "compilation takes minutes on a CPU)",
    )
    p.add_argument(
        "--skip-compiled",
        default=None,
        metavar="REASON",
        help="leave ours_compiled out, printing REASON (gpu_suite.sh: when its torch.compile smoke test failed)",
    )
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.device == "cpu" and a.dtype != "fp32":
        raise SystemExit("--dtype: half precision is measured on a GPU only (bf16 matmul is very slow on CPUs)")
    if a.child:
        return child(a.child, a)
    import torch

    torch.set_num_threads(a.threads)
    shape, dev = shape_of(a), Device(torch, a.device, a.dtype)
    names = a.impls.split(",") if a.impls else [n for n in RUNNERS if a.device == "cuda" or n != "ours_compiled"]
    unknown = [n for n in names if n not in RUNNERS]
    if unknown or "ours" not in names:
        raise SystemExit(f"--impls {a.impls}: choose among {', '.join(RUNNERS)}, ours included")
    skipped = [n for n in names if a.skip_compiled and n in COMPILED]
    for name in skipped:
        print(f"{name} skipped: {a.skip_compiled}", flush=True)
    names = [n for n in names if n not in skipped]
    results = {n: [] for n in names}
    failed = {}
    peaks = []
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), PYTHONWARNINGS="ignore")
    for rep in range(a.reps):
        peaks.append(matmul_gflops(torch, dev))
        for name in names:  # interleaved: ours, then the peers, every repetition
            row = attempt(failed, name, rep, measure, name, a, shape, env)
            if row is None:
                continue
            results[name].append(row)
            # as it comes, so that a run stopped at a time limit still shows what it measured
            print(f"rep {rep + 1} {name} {results[name][-1]['tok_s']:.0f} tokens/s", file=sys.stderr, flush=True)
    results = {n: rows for n, rows in results.items() if rows}
    peak = statistics.median(peaks)
    where = f"{a.threads} threads" if a.device == "cpu" else torch.cuda.get_device_name()
    print(
        f"shape {a.shape}: d={shape['dim']} L={shape['layers']} H={shape['heads']} V={shape['vocab']} "
        f"{shape['bs']}x{shape['slen']} tokens, MLM 15%, {a.dtype}, {where}, "
        f"{a.reps} reps x {a.steps} steps (medians)"
    )
    print(f"{a.dtype} matmul peak: {peak:.1f} GFLOP/s")
    memory = "peak RSS MB" if a.device == "cpu" else "peak CUDA MB"
    print(f"{'implementation':<22}{'tokens/s':>10}{'MFU':>8}{memory:>13}")
    med = {}
    for name, rows in results.items():
        med[name] = statistics.median(r["tok_s"] for r in rows)
        mfu = statistics.median(r["gflops"] for r in rows) / peak
        rss = statistics.median(r["peak_rss_mb"] for r in rows)
        print(f"{name:<22}{med[name]:>10.0f}{100 * mfu:>7.1f}%{rss:>13.0f}")
    for name, error in failed.items():
        print(f"{name} failed: {error}")
    ours = [v for k, v in med.items() if k.startswith("ours")]
    peers = [v for k, v in med.items() if k in PEERS]
    if ours and "fairseq_masked_lm" in med:
        print(f"speedup_vs_fairseq_masked_lm {max(ours) / med['fairseq_masked_lm']:.2f}")
    if ours and peers:
        print(f"speedup_vs_best_peer {max(ours) / max(peers):.2f}")
    else:
        print(f"speedup_vs_best_peer nan (no {'peer' if ours else 'row of ours'} ran)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
