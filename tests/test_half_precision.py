"""fp16/bf16 code paths on CPU, for correctness only (fairseq's --fp16/--bf16 need a GPU in this build):
the model's forward/backward in half precision tracks fp32, and XLM's fp16 rounding of the number of
predictions to a multiple of 8 holds over many batches."""

import numpy as np
import pytest
import torch

from xlm_fairseq.data.lm_objectives import MaskingConfig, mlm_train_mask
from xlm_fairseq.modules.encoder_decoder import XLMDecoder, XLMEncoder

from .helpers_model import toy_dictionary


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_mlm_step_tracks_fp32(dtype):
    torch.manual_seed(0)
    d = toy_dictionary(100)
    enc = XLMEncoder(d, emb_dim=32, n_layers=2, n_heads=4, n_langs=2).train()
    x = torch.randint(14, 100, (4, 24))
    x, pred_mask, target = mlm_train_mask(
        x, torch.full((4,), 24), MaskingConfig(n_words=100, round_to_8=True), np.random.RandomState(0)
    )
    langs = torch.tensor([0, 1, 0, 1])

    def loss_and_grads(model):
        model.zero_grad()
        logits = model.predict(model.fwd(x, langs=langs), pred_mask)
        loss = torch.nn.functional.cross_entropy(logits.float(), target)
        loss.backward()
        return loss.item(), model.embeddings.weight.grad.float().clone()

    half = XLMEncoder(d, emb_dim=32, n_layers=2, n_heads=4, n_langs=2).train()
    half.load_state_dict(enc.state_dict())
    half.to(dtype)
    half.dropout = 0.0  # identical randomness is impossible across dtypes; compare without dropout
    enc.dropout = 0.0
    for m in (half, enc):
        for a in m.attentions:
            a.dropout = 0.0
        for f in m.ffns:
            f.dropout = 0.0
    ref_loss, ref_grad = loss_and_grads(enc)
    h_loss, h_grad = loss_and_grads(half)
    assert abs(h_loss - ref_loss) < 0.05 * abs(ref_loss)
    cos = torch.nn.functional.cosine_similarity(h_grad.flatten(), ref_grad.flatten(), dim=0)
    assert cos > 0.98


def test_half_precision_decoder_runs_incrementally():
    torch.manual_seed(1)
    d = toy_dictionary(60)
    enc = XLMEncoder(d, emb_dim=32, n_layers=2, n_heads=4, n_langs=2).eval().to(torch.bfloat16)
    dec = XLMDecoder(d, emb_dim=32, n_layers=2, n_heads=4, n_langs=2).eval().to(torch.bfloat16)
    src = torch.randint(14, 60, (2, 7))
    out = enc(
        src, torch.tensor([7, 7]), src_langs=torch.zeros(2, dtype=torch.long), tgt_langs=torch.ones(2, dtype=torch.long)
    )
    state = {}
    prev = torch.full((2, 1), 2)
    logits, _ = dec(prev, encoder_out=out, incremental_state=state)
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


def test_fp16_rounding_keeps_predictions_a_multiple_of_8():
    rng = np.random.RandomState(4)
    for _ in range(100):
        x = torch.randint(14, 1000, (8, 64))
        _, pred_mask, _ = mlm_train_mask(x, torch.full((8,), 64), MaskingConfig(n_words=1000, round_to_8=True), rng)
        n = int(pred_mask.sum())
        assert n % 8 == 0 or n < 8
