"""Translation through the real command lines: UNMT (denoising + online BT) initialised from an MLM,
supervised MT + BT, fairseq-generate / fairseq-interactive, 2 processes with resume, and user errors."""

import os
import re
import shutil

import pytest

from .helpers_cli import (
    USER_DIR,
    cli,
    lm_train_args,
    load_model_state,
    max_param_diff,
    train_losses,
    train_two_ranks,
    user_error,
    valid_metrics,
)
from .helpers_data import make_data_bin


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("mt")
    data = make_data_bin(str(root), langs=("en", "fr"), pairs=(("en", "fr"),), valid_seen_in_train=True)
    cli("fairseq-train", *lm_train_args(data, root / "mlm", "--disable-validation", max_update=30))
    return data, str(root / "mlm" / "checkpoint_last.pt")


def mt_args(data, save, *extra, max_update=16):
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
        max_update,
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
        "--cpu",
        *extra,
    ]


UNMT = [
    "--ae-steps",
    "en,fr",
    "--bt-steps",
    "en-fr-en,fr-en-fr",
    "--word-shuffle",
    3,
    "--word-dropout",
    0.1,
    "--word-blank",
    0.1,
    "--lambda-ae",
    "0:1,10:0.1",
]


def assert_learns(log, bt_steps):
    """The run trains: over its 16 updates (2 epochs) the mean training loss of the second half is at least 5%
    below the first half's, every validated direction's perplexity falls by at least 5% from the first to the
    last epoch, and so does the perplexity of each back-translation step (measured: -18 and -10% for the
    losses, -14 to -24% for the perplexities, -31 to -50% for BT). Translation steps whose gradient never reaches
    the parameters fail it (their loss still drifts down by ~2% from batch to batch). It cannot see a step that
    learns something else (BT targets paired with the wrong sentences still fall, by learning the language):
    those semantics are pinned in test_mt_units.py."""
    losses = [loss for _, loss in sorted(train_losses(log).items())]
    assert len(losses) == 16, log[-3000:]
    first, second = losses[:8], losses[8:]
    assert sum(second) < 0.95 * sum(first), losses
    rows = valid_metrics(log)
    assert len(rows) == 2
    directions = [k for k in rows[0] if k.endswith("_mt_ppl")]
    assert len(directions) == 2
    for key in directions:
        assert rows[-1][key] < 0.95 * rows[0][key], (key, rows)
    for step in bt_steps:
        ppl = [float(v) for v in re.findall(rf"\| train_inner \|.* {step}_bt_ppl=([\d.]+)", log)]
        assert len(ppl) >= 4, step
        half = len(ppl) // 2
        assert sum(ppl[-half:]) < 0.95 * sum(ppl[:half]), (step, ppl)


def test_unmt_from_mlm_then_generate_and_interactive(setup, tmp_path):
    data, mlm = setup
    proc = cli(
        "fairseq-train",
        *mt_args(
            data,
            tmp_path / "u",
            *UNMT,
            "--reload-model",
            f"{mlm},{mlm}",
            "--eval-bleu",
            "--best-checkpoint-metric",
            "fr-en_mt_bleu",
            "--maximize-best-checkpoint-metric",
        ),
    )
    log = proc.stdout + proc.stderr
    assert "cross-attention parameters initialised fresh" in log
    row = valid_metrics(log)[-1]
    for key in ("fr-en_mt_ppl", "fr-en_mt_acc", "fr-en_mt_bleu", "fr-en_mt_sacrebleu", "en-fr_mt_ppl"):
        assert key in row
    for key in ("en_ae_ppl", "en-fr-en_bt_ppl", "fr-en-fr_bt_ppl"):
        assert key in log
    assert_learns(log, ("en-fr-en", "fr-en-fr"))
    ckpt = tmp_path / "u" / "checkpoint_best.pt"
    assert ckpt.exists()
    # the MLM file is gone by generation time: generate must not re-read it (from_checkpoint), although the
    # checkpoint's config still names it in --reload-model
    moved = tmp_path / "gone.pt"
    os.replace(mlm, moved)
    try:
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
            2,
            "--max-len-a",
            1.5,
            "--max-len-b",
            10,
            "--batch-size",
            4,
            "--cpu",
        )
        inter = cli(
            "fairseq-interactive",
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
            "--beam",
            1,
            "--cpu",
            input="le chat dort sur le lit .\n",
        )
    finally:
        os.replace(moved, mlm)
    out = gen.stdout + gen.stderr
    assert "BLEU" in out and out.count("\nH-") == 8
    assert any(line.startswith("H-0\t") for line in inter.stdout.splitlines())


def test_supervised_mt_with_back_translation(setup, tmp_path):
    data, mlm = setup
    proc = cli(
        "fairseq-train",
        *mt_args(
            data,
            tmp_path / "s",
            "--mt-steps",
            "en-fr,fr-en",
            "--bt-steps",
            "en-fr-en",
            "--reload-encoder",
            mlm,
            "--reload-decoder",
            mlm,
        ),
    )
    log = proc.stdout + proc.stderr
    assert "en-fr_mt_ppl" in log and "en-fr-en_bt_ppl" in log
    row = valid_metrics(log)[-1]
    assert {"en-fr_mt_ppl", "fr-en_mt_ppl"} <= row.keys()
    assert_learns(log, ("en-fr-en",))


def test_unmt_with_two_processes_resumes_exactly(setup, tmp_path):
    data, mlm = setup
    extra = [*UNMT, "--reload-model", f"{mlm},{mlm}", "--disable-validation", "--no-epoch-checkpoints"]
    train_two_ranks(mt_args(data, tmp_path / "a", *extra, max_update=6))
    train_two_ranks(mt_args(data, tmp_path / "b", *extra, max_update=3))
    log = train_two_ranks(mt_args(data, tmp_path / "b", *extra, max_update=6))
    assert "Loaded checkpoint" in log
    diff = max_param_diff(
        load_model_state(tmp_path / "a" / "checkpoint_last.pt"), load_model_state(tmp_path / "b" / "checkpoint_last.pt")
    )
    assert diff < 1e-6


def _error(args):
    return user_error(cli("fairseq-train", *args, check=False))


def test_translation_bad_input(setup, tmp_path):
    data, mlm = setup
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    for f in os.listdir(broken):
        if f.startswith("train.fr."):
            os.remove(broken / f)
    msg = _error(mt_args(str(broken), tmp_path / "e", "--bt-steps", "fr-en-fr"))
    assert "train.fr.bin" in msg and "'fr'" in msg
    for f in os.listdir(broken):
        if f.startswith("train.en-fr"):
            os.remove(broken / f)
    assert "train.en-fr.en.bin" in _error(mt_args(str(broken), tmp_path / "e", "--mt-steps", "en-fr"))
    assert "not in --langs" in _error(mt_args(data, tmp_path / "e", "--ae-steps", "en,de"))
    assert "en-fr-en" in _error(mt_args(data, tmp_path / "e", "--bt-steps", "en-fr-fr"))
    assert "xlm_mt_loss" in _error(mt_args(data, tmp_path / "e", "--ae-steps", "en") + ["--criterion", "cross_entropy"])
    # a pretrained model whose dictionary differs from this data-bin's
    other = make_data_bin(str(tmp_path / "other"), langs=("en", "de"), pairs=())
    cli(
        "fairseq-train",
        *lm_train_args(
            other,
            tmp_path / "other_lm",
            "--disable-validation",
            steps="en",
            task="xlm_cross_lingual_lm",
            max_update=1,
            langs="de,en",
        ),
    )
    msg = _error(
        mt_args(
            data, tmp_path / "e", "--ae-steps", "en", "--reload-encoder", tmp_path / "other_lm" / "checkpoint_last.pt"
        )
    )
    assert "--reload-encoder" in msg and "dict" in msg
    # a truncated model given to fairseq-generate
    cut = tmp_path / "cut.pt"
    cut.write_bytes(open(mlm, "rb").read()[:5000])
    msg = user_error(
        cli(
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
            cut,
            "--cpu",
            check=False,
        )
    )
    assert str(cut) in msg and "not a readable checkpoint" in msg
    # fairseq-validate without --task (fairseq's own parser would raise KeyError: None)
    msg = user_error(cli("fairseq-validate", data, "--user-dir", USER_DIR, "--path", mlm, "--cpu", check=False))
    assert "no --task given" in msg and "--task xlm_" in msg and "--langs en,fr" in msg


def test_zero_lambda_auto_encoding_is_never_run(setup, tmp_path):
    """--lambda-ae 0: the AE steps neither update nor advance the LR schedule nor count toward the epoch:
    bit-identical to the same run without AE steps."""
    from .test_pretrain_cli import assert_same_training

    data, mlm = setup
    common = [
        "--bt-steps",
        "en-fr-en",
        "--reload-model",
        f"{mlm},{mlm}",
        "--disable-validation",
        "--lr-scheduler",
        "inverse_sqrt",
        "--warmup-updates",
        10,
        "--dropout",
        0.1,
    ]
    cli("fairseq-train", *mt_args(data, tmp_path / "bt", *common, max_update=6))
    cli(
        "fairseq-train",
        *mt_args(data, tmp_path / "zero", *common, "--ae-steps", "en,fr", "--lambda-ae", "0", max_update=6),
    )
    assert_same_training(tmp_path / "bt" / "checkpoint_last.pt", tmp_path / "zero" / "checkpoint_last.pt")
