"""Dropout whose mask costs a quarter of a random number per element on CPU.

torch's CPU dropout draws one Bernoulli sample per element, which on 2 cores took a third of an MLM step
of the benchmark shape (attention-probability dropout alone is batch x heads x len^2 elements per layer).
Here one 64-bit random integer gives four 16-bit lanes, each compared with round(p * 2^16): the drop
probability is p to within 2^-17, and the survivors are scaled by 1 / (1 - p_actual) so the expectation is
exact. The mask is kept as floats (0 or the scale), so forward and backward are one multiplication each.
It draws from torch's default generator, so fairseq's per-update seeding keeps runs reproducible.
On GPUs torch's fused dropout is used instead."""

import torch
import torch.nn.functional as F
from torch import Tensor


def scaled_keep_mask(shape, p: float, device, dtype) -> Tensor:
    """A tensor of 0 (dropped) and 1 / (1 - p_actual) (kept)."""
    n = 1
    for s in shape:
        n *= s
    threshold = round(p * 65536)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    mask = torch.empty(shape, dtype=dtype, device=device)
    torch.ge(bits.view(torch.int16)[:n].view(shape), threshold - 32768, out=mask)  # 0/1 straight into floats
    return mask.mul_(1.0 / (1.0 - threshold / 65536))


class _FastDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float):
        mask = scaled_keep_mask(x.shape, p, x.device, x.dtype)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    if not training or p == 0:
        return x
    if x.is_cuda or not torch.is_grad_enabled():
        return F.dropout(x, p=p, training=True)
    return _FastDropout.apply(x, p)
