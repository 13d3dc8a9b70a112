"""fp16/bf16 code paths on CPU, for correctness only: the model's forward/backward and its cached decoding in
half precision track fp32, XLM's fp16 rounding of the number of predictions to a multiple of 8 holds over many
batches, and fairseq-train's --fp16 turns that rounding on (fairseq's fp16 trainer runs on a CPU with
--fp16-no-flatten-grads: only its flat fp32 copy of the parameters needs CUDA)."""

import os
import sys

import numpy as np
import pytest
import torch

from xlm_fairseq.data.lm_objectives import MaskingConfig, mlm_train_mask
from xlm_fairseq.modules.encoder_decoder import XLMDecoder, XLMEncoder

from .helpers_cli import lm_train_args, run
from .helpers_data import make_data_bin
from .helpers_model import toy_dictionary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_incremental_decoding_tracks_fp32(dtype):
    """Six decoding steps with the key/value cache in half precision give the fp32 model's logits to within
    a few units of the dtype's rounding (measured: 0.025 in bf16, 0.004 in fp16, for logits up to 4.9), and the
    cached steps equal the half model's full (teacher-forced) pass. (No check of the argmax: two logits of a row
    are 0.05 apart here, within bf16's rounding.)"""
    torch.manual_seed(1)
    d = toy_dictionary(60)
    args = dict(emb_dim=32, n_layers=2, n_heads=4, n_langs=2)
    enc, dec = XLMEncoder(d, **args).eval(), XLMDecoder(d, **args).eval()
    src = torch.randint(14, 60, (3, 7))
    src_len = torch.tensor([7, 5, 6])
    src[1, 5:] = src[2, 6:] = 1
    prev = torch.randint(14, 60, (3, 6))
    prev[:, 0] = 2

    @torch.no_grad()
    def logits(enc, dec, incremental):
        out = enc(src, src_len, src_langs=torch.zeros(3, dtype=torch.long), tgt_langs=torch.ones(3, dtype=torch.long))
        if not incremental:
            return dec(prev, encoder_out=out)[0]
        state = {}
        steps = [dec(prev[:, : t + 1], encoder_out=out, incremental_state=state)[0][:, -1] for t in range(6)]
        return torch.stack(steps, 1)

    ref = logits(enc, dec, incremental=False)
    half_enc, half_dec = XLMEncoder(d, **args).eval(), XLMDecoder(d, **args).eval()
    half_enc.load_state_dict(enc.state_dict())
    half_dec.load_state_dict(dec.state_dict())
    half_enc.to(dtype)
    half_dec.to(dtype)
    cached = logits(half_enc, half_dec, incremental=True)
    assert cached.dtype == dtype
    unit = torch.finfo(dtype).eps * float(ref.abs().max())  # the dtype's rounding at the logits' scale
    torch.testing.assert_close(cached.float(), ref, atol=4 * unit, rtol=0)
    full = logits(half_enc, half_dec, incremental=False)
    torch.testing.assert_close(cached.float(), full.float(), atol=unit, rtol=0)


def test_fp16_rounding_keeps_predictions_a_multiple_of_8():
    rng = np.random.RandomState(4)
    for _ in range(100):
        x = torch.randint(14, 1000, (8, 64))
        _, pred_mask, _ = mlm_train_mask(x, torch.full((8,), 64), MaskingConfig(n_words=1000, round_to_8=True), rng)
        n = int(pred_mask.sum())
        assert n % 8 == 0 or n < 8


# fairseq-train itself, with a recorder around the MLM masking: for every training batch, whether rounding was
# on and the number of predictions without and with it (the same RandomState copied, so the same draw)
RECORD_MASKS = """
import copy, dataclasses, sys
sys.path.insert(0, sys.argv.pop(1))
import xlm_fairseq.data.lm_objective_dataset as lm

mask = lm.mlm_train_mask


def recording(x, lengths, cfg, rng, scores=None):
    plain = mask(x, lengths, dataclasses.replace(cfg, round_to_8=False), copy.deepcopy(rng), scores)[1]
    out = mask(x, lengths, cfg, rng, scores)
    print("MLM-BATCH", int(cfg.round_to_8), int(plain.sum()), int(out[1].sum()), flush=True)
    return out


lm.mlm_train_mask = recording
from fairseq_cli.train import cli_main

sys.argv = ["fairseq-train"] + sys.argv[1:]
cli_main()
"""


def test_fairseq_train_fp16_rounds_the_predictions_to_a_multiple_of_8(tmp_path):
    """The wiring: fairseq's --fp16 (common.fp16) reaches the task's masking (xlm_cross_lingual_lm:
    round_to_8=bool(cfg.fp16)), and the real trainer's batches are rounded as `xlm/trainer.py: mask_out` does;
    without --fp16 the task does not round."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    data = make_data_bin(str(tmp_path), langs=("en",), pairs=())
    args = lm_train_args(
        data, tmp_path / "ckpt", "--disable-validation", task="xlm_cross_lingual_lm", steps="en", langs="en"
    )
    args = [str(a) for a in args]
    for flags, expected in (([], False), (["--fp16"], True)):
        parsed = options.parse_args_and_arch(options.get_training_parser(), args + flags)
        assert tasks.setup_task(convert_namespace_to_omegaconf(parsed).task).masking.round_to_8 is expected

    max_update = 6
    args[args.index("--max-update") + 1] = str(max_update)
    proc = run([sys.executable, "-c", RECORD_MASKS, ROOT, *args, "--fp16", "--fp16-no-flatten-grads"])
    assert "loss_scale=" in proc.stdout + proc.stderr  # fairseq's fp16 trainer ran
    batches = [tuple(map(int, line.split()[1:])) for line in proc.stdout.splitlines() if line.startswith("MLM-BATCH")]
    assert len(batches) >= max_update
    for on, before, after in batches:
        assert on == 1 and before >= 8 and after == 8 * (before // 8), batches
    assert any(before % 8 for _, before, _ in batches)  # the premise: some batch needed rounding
