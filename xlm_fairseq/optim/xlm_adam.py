"""Optimizer `xlm_adam`: the original's Adam (facebookresearch/XLM `xlm/optim.py: Adam`), whose update fairseq's
`adam` computes too: decoupled weight decay, eps added to sqrt(v) without bias correction, the step size
lr * sqrt(1 - β2^t) / (1 - β1^t). The state of each parameter is fairseq adam's ({step, exp_avg, exp_avg_sq}),
so checkpoints move between the two optimizers.

The update is torch's public functional Adam (`torch.optim.adam.adam`): the fused kernel (one pass over each
tensor) on CPU and CUDA, torch's foreach kernels elsewhere, instead of fairseq's Python loop over parameters. It
is the same update to rounding (fp32, relative 1e-6) and takes 2-4x less time per step on a CPU. The weight decay
is not torch's AdamW: that multiplies by 1 - lr * wd rounded to fp32, which at lr * wd = 1e-5 decays 0.13% more
than the original's p -= lr * wd * p, and up to 6% at the XNLI recipe's 5e-7."""

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, List, Optional

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.optim import FairseqOptimizer, register_optimizer
from omegaconf import II
from torch.optim.adam import adam

from ..errors import ConfigError

# devices with torch's fused Adam kernel (CPU from torch 2.4); others take the foreach kernels
FUSED_DEVICES = ("cpu", "cuda")
HALF_CHUNK = 1 << 24  # elements of half-precision parameters updated per fp32 working copy (64 MiB)


class XLMAdam(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused: Optional[bool] = None):
        """fused: None = the fused kernel where the parameters' device has one; False = torch's foreach kernels."""
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.fused = fused

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("xlm_adam does not support sparse gradients")
            by_step = {}  # parameters that missed updates (no gradient) have their own step count
            for p in params:
                state = self.state[p]
                if not state:  # the moments in fp32 whatever the parameters' dtype
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
                elif state["exp_avg"].dtype != torch.float32:  # torch's load_state_dict casts them to p's dtype
                    state["exp_avg"], state["exp_avg_sq"] = state["exp_avg"].float(), state["exp_avg_sq"].float()
                state["step"] += 1
                by_step.setdefault((state["step"], p.device, p.dtype), []).append(p)
            for (t, device, dtype), ps in by_step.items():
                if dtype == torch.float32:
                    self._update(ps, [p.grad for p in ps], [self.state[p] for p in ps], t, device, group)
                else:
                    self._update_half(ps, t, device, group)
        return loss

    def _update_half(self, params, t: int, device: torch.device, group) -> None:
        """Half-precision parameters without fp32 copies (--memory-efficient-fp16/-bf16): each chunk of them is
        updated in fp32, from fp32 moments, then rounded back into the parameters, as fairseq's adam does one
        parameter at a time; chunks of HALF_CHUNK elements bound the fp32 working copy."""
        chunk, size = [], 0
        for i, p in enumerate(params):
            chunk.append(p)
            size += p.numel()
            if size >= HALF_CHUNK or i == len(params) - 1:
                p32 = [q.float() for q in chunk]
                self._update(p32, [q.grad.float() for q in chunk], [self.state[q] for q in chunk], t, device, group)
                for q, q32 in zip(chunk, p32):
                    q.copy_(q32)
                chunk, size = [], 0

    def _update(self, params, grads, states, t: int, device: torch.device, group) -> None:
        """The decoupled decay p -= lr * wd * p first, as the original and fairseq's adam (the moments do not depend
        on p, so the order is theirs); then torch's Adam, which computes p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) +
        eps') with bc1 = 1 - β1^t, bc2 = 1 - β2^t: with eps' = eps / sqrt(bc2) that is the original's
        p -= lr * sqrt(bc2) / bc1 * m / (sqrt(v) + eps)."""
        beta1, beta2 = group["betas"]
        if group["weight_decay"] != 0:
            for p in params:  # one tensor when fairseq flattens the fp32 copy (--fp16)
                p.add_(p, alpha=-group["weight_decay"] * group["lr"])
        fused = device.type in FUSED_DEVICES if self.fused is None else self.fused
        # torch's kernels read the step count from tensors (on the parameters' device for the fused kernel, on the
        # CPU for foreach) and add 1 to them before the update: one tensor per parameter, each at t - 1
        step_device = device if fused else torch.device("cpu")
        steps = torch.full((len(params),), float(t - 1), dtype=torch.float32, device=step_device).unbind(0)
        adam(
            params,
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            list(steps),
            foreach=not fused,
            fused=fused,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=0.0,
            eps=group["eps"] / math.sqrt(1 - beta2**t),
            maximize=False,
        )


@dataclass
class XLMAdamConfig(FairseqDataclass):
    adam_betas: Any = field(default=(0.9, 0.999), metadata={"help": "betas, e.g. '(0.9, 0.98)'"})
    adam_eps: float = field(default=1e-8, metadata={"help": "epsilon added to sqrt(v)"})
    weight_decay: float = field(default=0.0, metadata={"help": "decoupled weight decay"})
    lr: List[float] = II("optimization.lr")


@register_optimizer("xlm_adam", dataclass=XLMAdamConfig)
class XLMAdamOptimizer(FairseqOptimizer):
    def __init__(self, cfg, params):
        super().__init__(cfg)
        self._optimizer = XLMAdam(params, **self.optimizer_config)

    @property
    def optimizer_config(self):
        betas = self.cfg.adam_betas
        if isinstance(betas, str):
            try:
                betas = tuple(float(b) for b in betas.strip("()[] ").split(","))
            except ValueError:
                betas = ()
        if len(betas) != 2:
            raise ConfigError(f"--adam-betas {self.cfg.adam_betas}: expected two numbers, e.g. '(0.9,0.98)'")
        lr = self.cfg.lr[0] if isinstance(self.cfg.lr, Collection) else self.cfg.lr
        return {"lr": lr, "betas": tuple(betas), "eps": self.cfg.adam_eps, "weight_decay": self.cfg.weight_decay}

    @property
    def supports_flat_params(self):
        return True

    @property
    def supports_memory_efficient_fp16(self):
        return True
