"""Optimizer xlm_adam: fairseq adam's update (the original's Adam) to rounding with torch's fused kernel and with
its foreach kernels, its state layout, and a real fairseq-train run that resumes exactly."""

import math

import pytest
import torch
from fairseq.optim.adam import Adam

from xlm_fairseq.optim.xlm_adam import XLMAdam

from .helpers_cli import cli, lm_train_args, load_model_state, max_param_diff, train_losses, user_error
from .helpers_data import make_data_bin


@pytest.mark.parametrize("fused", [None, False])
def test_same_update_as_fairseq_adam_to_rounding(fused):
    torch.manual_seed(0)
    shapes = [(300,), (20, 30), (7,)]
    for wd, eps in ((0.0, 1e-8), (0.01, 1e-6)):
        start = [torch.randn(s) for s in shapes]
        a = [p.clone().requires_grad_() for p in start]
        b = [p.clone().requires_grad_() for p in start]
        kw = dict(lr=1e-3, betas=(0.9, 0.98), eps=eps, weight_decay=wd)
        fairseq_adam, ours = Adam(a, **kw), XLMAdam(b, **kw, fused=fused)
        for step in range(100):
            for x, y in zip(a, b):
                g = torch.randn_like(x) * 1e-2
                x.grad, y.grad = g.clone(), g.clone()
            if step % 10 == 3:  # a parameter without gradient is not updated and keeps its own step count
                a[2].grad = b[2].grad = None
            fairseq_adam.step()
            ours.step()
        for x, y, p in zip(a, b, start):
            assert (x - p).abs().max() > 1e-2, "the parameters must have moved"
            assert (x - y).abs().max() <= 4 * torch.finfo(torch.float32).eps * max(1.0, p.abs().max().item())
        for x, y in zip(a, b):
            sa, sb = fairseq_adam.state[x], ours.state[y]
            assert sa.keys() == sb.keys() and sa["step"] == sb["step"]
            for key in ("exp_avg", "exp_avg_sq"):  # the fused kernel rounds the moving averages its own way
                assert torch.allclose(sa[key], sb[key], rtol=1e-5, atol=1e-9), key
        assert ours.state[b[2]]["step"] == 90


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_parameters_update_as_fairseq_adam_does(dtype):
    """--memory-efficient-fp16 (and -bf16) hand the optimizer the half-precision parameters themselves, no fp32
    copy: the update is computed in fp32 from fp32 moments and rounded into the parameters, bit for bit what
    fairseq's adam (which fairseq allows there) does."""
    torch.manual_seed(0)
    start = [torch.randn(s).to(dtype) for s in [(300,), (20, 30)]]
    a = [p.clone().requires_grad_() for p in start]
    b = [p.clone().requires_grad_() for p in start]
    kw = dict(lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)
    fairseq_adam, ours = Adam(a, **kw), XLMAdam(b, **kw)
    for _ in range(50):
        for x, y in zip(a, b):
            g = (torch.randn(x.shape) * 1e-2).to(dtype)
            x.grad, y.grad = g.clone(), g.clone()
        fairseq_adam.step()
        ours.step()
    for x, y, p in zip(a, b, start):
        assert (x - p).abs().max() > 1e-2 and x.dtype == y.dtype == dtype
        assert torch.equal(x, y)
        assert ours.state[y]["exp_avg"].dtype == ours.state[y]["exp_avg_sq"].dtype == torch.float32


def test_memory_efficient_fp16_trains_and_bf16_is_one_line(tmp_path):
    """fairseq-train --memory-efficient-fp16 --optimizer xlm_adam trains (on the CPU here, in half precision); --bf16
    in this fairseq turns on --tpu (fairseq/options.py), so without torch_xla it is one line naming what works."""
    data = make_data_bin(str(tmp_path), langs=("en", "fr"), pairs=(("en", "fr"),))
    extra = ["--optimizer", "xlm_adam", "--disable-validation", "--no-save", "--mlm-steps", "en,fr"]
    proc = cli("fairseq-train", *lm_train_args(data, tmp_path / "a", *extra, "--memory-efficient-fp16", max_update=8))
    losses = train_losses(proc.stdout + proc.stderr)
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses.values()), proc.stdout[-2000:]
    assert (
        "loss_scale=" in proc.stdout
    )  # fairseq's fp16 loss scaler at work (before: ValueError: Unsupported optimizer)
    for flag in ("--bf16", "--memory-efficient-bf16"):
        line = user_error(cli("fairseq-train", *lm_train_args(data, tmp_path / "b", *extra, flag), check=False))
        assert "--bf16/--memory-efficient-bf16" in line and "--memory-efficient-fp16" in line, line


def test_training_with_xlm_adam_resumes_exactly(tmp_path):
    data = make_data_bin(str(tmp_path), langs=("en", "fr"), pairs=(("en", "fr"),))
    extra = [
        "--optimizer",
        "xlm_adam",
        "--adam-betas",
        "(0.9,0.98)",
        "--weight-decay",
        "0.01",
        "--clip-norm",
        5,
        "--dropout",
        "0.1",
        "--disable-validation",
    ]
    straight = cli("fairseq-train", *lm_train_args(data, tmp_path / "a", *extra, max_update=12))
    cli("fairseq-train", *lm_train_args(data, tmp_path / "b", *extra, max_update=6))
    resumed = cli("fairseq-train", *lm_train_args(data, tmp_path / "b", *extra, max_update=12))
    la, lb = train_losses(straight.stdout + straight.stderr), train_losses(resumed.stdout + resumed.stderr)
    assert all(la[u] == lb[u] for u in range(7, 13))
    assert (
        max_param_diff(
            load_model_state(tmp_path / "a" / "checkpoint_last.pt"),
            load_model_state(tmp_path / "b" / "checkpoint_last.pt"),
        )
        == 0
    )


def test_loader_processes_are_left_out_when_the_model_fills_the_cpu(tmp_path, monkeypatch):
    """--num-workers loader processes only compete with the model's threads when these fill the CPU cores."""
    import os

    from xlm_fairseq.tasks.xlm_task import XLMTask

    class Cfg:
        cpu = True

    task = XLMTask.__new__(XLMTask)
    task.cfg = Cfg()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert task.loader_workers(1) == 0 and task.loader_workers(0) == 0
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert task.loader_workers(2) == 2 and task.loader_workers(5) == 0
    Cfg.cpu = False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert task.loader_workers(6) == 6
