"""On a CUDA GPU: the real command lines with fairseq's --fp16 and --amp (they assert CUDA, so the CPU-only
tests cannot reach them; this fairseq's --bf16 means a TPU), and the model's GPU paths (fused SDPA with dropout,
half precision) against its CPU
fp32 logits. Skipped, and reported as skipped, where torch sees no GPU."""

import math

import pytest
import torch

from .helpers_cli import USER_DIR, cli, lm_train_args, load_model_state, valid_metrics
from .helpers_data import make_data_bin
from .helpers_model import toy_dictionary

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

HALF = {"fp16": ["--fp16", "--fp16-init-scale", 128], "amp": ["--amp"]}


def on_gpu(args):
    return [a for a in args if a != "--cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data_bin(
        str(tmp_path_factory.mktemp("gpu")), langs=("en", "fr"), pairs=(("en", "fr"),), valid_seen_in_train=True
    )


@pytest.mark.parametrize("precision", ["fp16", "amp"])
def test_mlm_tlm_pretraining_in_half_precision(data, tmp_path, precision):
    save = tmp_path / "ckpt"
    proc = cli(
        "fairseq-train",
        *on_gpu(
            lm_train_args(
                data, save, *HALF[precision], "--best-checkpoint-metric", "mlm_ppl", max_update=120, epoch_size=80
            )
        ),
    )
    log = proc.stdout + proc.stderr
    rows = valid_metrics(log)
    assert len(rows) >= 4 and "loss_scale" in log  # fairseq's fp16 optimizer / AMP grad scaler ran
    assert all(math.isfinite(r["mlm_ppl"]) and math.isfinite(r["en_fr_mlm_ppl"]) for r in rows)
    assert rows[-1]["mlm_ppl"] < 0.7 * rows[0]["mlm_ppl"]
    state = load_model_state(save / "checkpoint_best.pt")
    assert all(torch.isfinite(v.float()).all() for v in state.values())


def mt_args(data, save, *extra):
    return [
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_unsupervised_mt",
        "--langs",
        "en,fr",
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_mt_loss",
        "--max-tokens",
        300,
        "--batch-size",
        8,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--max-update",
        40,
        "--epoch-size",
        64,
        "--save-dir",
        save,
        "--log-format",
        "simple",
        "--log-interval",
        1,
        "--num-workers",
        0,
        "--seed",
        1,
        "--no-progress-bar",
        *extra,
    ]


@pytest.mark.parametrize("precision", ["fp16", "amp"])
def test_unmt_with_back_translation_in_half_precision_then_generate_in_fp16(data, tmp_path, precision):
    mlm = tmp_path / "mlm"
    cli("fairseq-train", *on_gpu(lm_train_args(data, mlm, *HALF[precision], "--disable-validation", max_update=30)))
    ckpt = mlm / "checkpoint_last.pt"
    proc = cli(
        "fairseq-train",
        *mt_args(
            data,
            tmp_path / "u",
            *HALF[precision],
            "--ae-steps",
            "en,fr",
            "--bt-steps",
            "en-fr-en,fr-en-fr",
            "--mt-steps",
            "en-fr",
            "--word-shuffle",
            3,
            "--word-dropout",
            0.1,
            "--word-blank",
            0.1,
            "--reload-model",
            f"{ckpt},{ckpt}",
            "--eval-bleu",
        ),
    )
    log = proc.stdout + proc.stderr
    row = valid_metrics(log)[-1]
    assert {"fr-en_mt_ppl", "fr-en_mt_bleu", "en-fr_mt_ppl"} <= row.keys()
    assert row["fr-en_mt_ppl"] == row["fr-en_mt_ppl"]
    assert "en-fr-en_bt_ppl" in log and "en_ae_ppl" in log
    gen = cli(
        "fairseq-generate",
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_unsupervised_mt",
        "--langs",
        "en,fr",
        "--source-lang",
        "fr",
        "--target-lang",
        "en",
        "--path",
        tmp_path / "u" / "checkpoint_last.pt",
        "--gen-subset",
        "valid",
        "--beam",
        2,
        "--max-len-a",
        1.5,
        "--max-len-b",
        10,
        "--batch-size",
        4,
        "--fp16",
    )
    out = gen.stdout + gen.stderr
    assert "BLEU" in out and out.count("\nH-") == 8


def _encoder():
    from xlm_fairseq.modules.encoder_decoder import XLMEncoder

    torch.manual_seed(0)
    enc = XLMEncoder(
        toy_dictionary(60), emb_dim=64, n_layers=2, n_heads=4, dropout=0.1, attention_dropout=0.1, n_langs=2
    ).eval()
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return enc


@pytest.mark.parametrize("causal", [False, True])
def test_gpu_logits_equal_cpu_logits(causal):
    enc = _encoder()
    torch.manual_seed(1)
    x = torch.randint(14, 60, (3, 12))
    padding = torch.zeros(3, 12, dtype=torch.bool)
    padding[2, 8:] = True
    x[padding] = 1
    langs = torch.tensor([[0] * 6 + [1] * 6] * 3)
    positions = torch.tensor([list(range(6)) * 2] * 3)  # TLM layout: positions restart at the second sentence
    with torch.no_grad():
        ref = enc.predict(enc.fwd(x, padding_mask=padding, langs=langs, positions=positions, causal=causal))
    gpu = enc.cuda()
    args = dict(padding_mask=padding.cuda(), langs=langs.cuda(), positions=positions.cuda(), causal=causal)
    with torch.no_grad():
        out = gpu.predict(gpu.fwd(x.cuda(), **args)).cpu()
        assert torch.allclose(out, ref, atol=1e-4), (out - ref).abs().max()
        for dtype, tol in ((torch.float16, 2e-2), (torch.bfloat16, 1e-1)):
            with torch.autocast("cuda", dtype=dtype):
                half = gpu.predict(gpu.fwd(x.cuda(), **args)).float().cpu()
            assert (half - ref).abs().max() < tol * ref.abs().max(), (dtype, (half - ref).abs().max())


def test_gpu_training_dropout_rate_and_determinism():
    enc = _encoder().cuda().train()
    x = torch.randint(14, 60, (64, 32)).cuda()
    langs = torch.zeros(64, dtype=torch.long, device="cuda")
    torch.manual_seed(3)
    a = enc.fwd(x, langs=langs)
    torch.manual_seed(3)
    b = enc.fwd(x, langs=langs)
    c = enc.fwd(x, langs=langs)
    assert torch.equal(a, b) and not torch.equal(a, c)
    from xlm_fairseq.modules.fast_dropout import dropout

    kept = (dropout(torch.ones(1000, 1000, device="cuda"), 0.1, True) != 0).float().mean().item()
    assert abs(kept - 0.9) < 0.005
