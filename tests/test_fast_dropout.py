"""The CPU dropout used in training (xlm_fairseq/modules/fast_dropout.py) and the attention path with
dropout: same expectation and drop rate as torch's dropout, exact gradients, reproducible from the seed,
and the manual attention equals torch's fused attention when nothing is dropped."""

import torch

from xlm_fairseq.modules.fast_dropout import dropout
from xlm_fairseq.modules.multihead_attention import MultiHeadAttention


def test_drop_rate_scale_and_gradient():
    torch.manual_seed(0)
    x = (torch.rand(64, 128, 128) + 1).requires_grad_()
    y = dropout(x, 0.1, True)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.1) < 0.003
    kept = y != 0
    scale = (y[kept] / x[kept]).detach()
    assert torch.allclose(scale, torch.full_like(scale, 1 / (1 - round(0.1 * 65536) / 65536)))
    assert abs(y.mean().item() / x.mean().item() - 1) < 0.005  # expectation preserved
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y / x).detach())


def test_reproducible_from_the_torch_seed_and_identity_when_off():
    x = torch.randn(1000, requires_grad=True)
    torch.manual_seed(5)
    a = dropout(x, 0.3, True)
    torch.manual_seed(5)
    b = dropout(x, 0.3, True)
    assert torch.equal(a, b)
    assert dropout(x, 0.3, False) is x and dropout(x, 0.0, True) is x


def test_manual_attention_equals_fused_attention_without_drops():
    torch.manual_seed(1)
    att = MultiHeadAttention(4, 32, dropout=1e-9).train()  # rounds to a drop probability of 0
    x = torch.randn(3, 7, 32)
    mask = torch.ones(3, 1, 1, 7, dtype=torch.bool)
    mask[1, ..., 5:] = False
    for attn_mask, causal in ((None, False), (mask, False), (None, True)):
        manual = att(x, attn_mask, is_causal=causal)
        att.dropout = 0.0
        fused = att(x, attn_mask, is_causal=causal)
        att.dropout = 1e-9
        torch.testing.assert_close(manual, fused, atol=1e-6, rtol=0)
