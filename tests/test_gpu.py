"""On a CUDA GPU: the real command lines with the recipes' optimizer (`xlm_adam`) under fairseq's --fp16 (its
flattened fp32 copy is CUDA-only) and --amp (autocast + grad scaler; this fairseq's --bf16 means a TPU), half-precision
decoding against fp32 decoding, a pretraining step that never waits for the GPU, the compiled layers, and the
model's GPU paths (fused SDPA with dropout, half precision) against its CPU fp32 logits. Skipped, and reported as
skipped, where torch sees no GPU."""

import contextlib
import math
import re

import pytest
import torch

from .helpers_cli import USER_DIR, cli, lm_train_args, valid_metrics
from .helpers_data import make_data_bin
from .helpers_model import toy_dictionary
from .test_half_precision_training import check_half_learns_as_fp32, half_precision_data, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

HALF = {"fp16": ["--fp16", "--fp16-init-scale", 128], "amp": ["--amp"]}


def on_gpu(args):
    return [a for a in args if a != "--cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data_bin(
        str(tmp_path_factory.mktemp("gpu")), langs=("en", "fr"), pairs=(("en", "fr"),), valid_seen_in_train=True
    )


@pytest.fixture(scope="module")
def fp32_pretraining(tmp_path_factory):
    data = half_precision_data(tmp_path_factory)
    return data, train(data, tmp_path_factory.mktemp("fp32"), gpu=True)


@pytest.mark.parametrize("precision", ["fp16", "amp"])
def test_mlm_tlm_pretraining_in_half_precision_learns_as_fp32(fp32_pretraining, tmp_path, precision):
    """tests/test_half_precision_training.py's check with fairseq's CUDA paths: the flattened fp32 copy (--fp16)
    and autocast (--amp), against an fp32 run on the same GPU."""
    data, fp32_log = fp32_pretraining
    half_log = train(data, tmp_path / precision, *HALF[precision], gpu=True)
    check_half_learns_as_fp32(fp32_log, half_log, tmp_path / precision / "checkpoint_best.pt")


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
        "xlm_adam",
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


def generate(data, ckpt, *extra):
    """{sentence id: (score, hypothesis)} of fairseq-generate fr->en, greedy, on the valid pairs."""
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
        ckpt,
        "--gen-subset",
        "valid",
        "--beam",
        1,
        "--max-len-a",
        1.5,
        "--max-len-b",
        10,
        "--batch-size",
        4,
        *extra,
    )
    out = gen.stdout + gen.stderr
    assert "BLEU" in out, out[-2000:]
    return {int(i): (float(s), h) for i, s, h in re.findall(r"\nH-(\d+)\t(\S+)\t([^\n]*)", out)}


@pytest.mark.parametrize("precision", ["fp16", "amp"])
def test_unmt_with_back_translation_in_half_precision_then_generate_in_fp16(data, tmp_path, precision):
    mlm = tmp_path / "mlm"
    lm_args = lm_train_args(
        data, mlm, *HALF[precision], "--optimizer", "xlm_adam", "--disable-validation", max_update=30
    )
    cli("fairseq-train", *on_gpu(lm_args))
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
    assert math.isfinite(row["fr-en_mt_ppl"]) and math.isfinite(row["en-fr_mt_ppl"]), row
    assert "en-fr-en_bt_ppl" in log and "en_ae_ppl" in log
    # decoding in fp16 follows fp32 decoding: the same greedy choices but for near ties, the same scores to fp16
    # rounding where the choices agree
    full = generate(data, tmp_path / "u" / "checkpoint_last.pt")
    half = generate(data, tmp_path / "u" / "checkpoint_last.pt", "--fp16")
    assert sorted(half) == sorted(full) == list(range(8))
    same = [i for i in full if full[i][1] == half[i][1]]
    assert len(same) >= 6, (full, half)
    assert all(abs(full[i][0] - half[i][0]) <= 0.02 * max(1.0, abs(full[i][0])) for i in same), (full, half)


@contextlib.contextmanager
def sync_is_an_error():
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_a_pretraining_step_on_the_gpu_never_waits_for_it(tmp_path):
    """tests/test_host_sync.py's check on the real device: the forward and loss, and the xlm_adam update, of an MLM
    and a padded TLM batch under torch.cuda.set_sync_debug_mode("error"), which raises at any host sync. The
    backward runs outside it: torch's own embedding backward may synchronise on some releases (the CPU test checks
    the operators our code adds to the backward)."""
    from fairseq import options, tasks, utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from xlm_fairseq.optim.xlm_adam import XLMAdam

    data = make_data_bin(str(tmp_path), langs=("en", "fr"), pairs=(("en", "fr"),))
    args = [str(a) for a in on_gpu(lm_train_args(data, tmp_path / "ckpt", "--dropout", "0.1"))]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train", epoch=1)
    model = task.build_model(cfg.model).cuda().train()
    criterion = task.build_criterion(cfg.criterion)
    optimizer = XLMAdam(model.parameters(), lr=1e-4, weight_decay=0.01)
    itr = task.get_batch_iterator(task.dataset("train"), max_tokens=400, max_sentences=4, epoch=1)
    samples = {}
    for sample in itr.next_epoch_itr(shuffle=False):
        if sample["step"] not in samples or sample["net_input"]["padding_mask"] is not None:
            samples[sample["step"]] = sample
    assert samples["en_fr_mlm"]["net_input"]["padding_mask"] is not None
    for step in ("en_mlm", "en_fr_mlm", "en_mlm"):  # the second en_mlm: xlm_adam's state exists by then
        sample = utils.move_to_cuda(samples[step])
        torch.cuda.synchronize()
        with sync_is_an_error():
            loss, _, _ = criterion(model, sample)
        loss.backward()
        with sync_is_an_error():
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    assert all(p.isfinite().all() for p in model.parameters())


def test_compiled_layers_on_the_gpu_equal_eager_layers_in_fp16(tmp_path):
    """--compile-layers on CUDA (flash attention, inductor's GPU kernels) under fp16 autocast, in evaluation (no
    dropout draws): the logits of the compiled and the eager model agree to fp16 rounding."""
    enc = _encoder().cuda()
    x = torch.randint(14, 60, (4, 16), device="cuda")
    langs = torch.zeros(4, dtype=torch.long, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        eager = enc.predict(enc.fwd(x, langs=langs)).float()
        enc.compile_layers()
        compiled = enc.predict(enc.fwd(x, langs=langs)).float()
    assert (compiled - eager).abs().max() <= 2e-2 * eager.abs().max(), (compiled - eager).abs().max()


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
