"""MLM/TLM/CLM pretraining through the real `fairseq-train --user-dir xlm_fairseq` on tiny real text:
training and validation, best checkpoint by mlm_ppl, exact resume, 2-process training and its resume."""

import os

import pytest

from .helpers_cli import (
    assert_same_gradients,
    cli,
    lm_train_args,
    load_model_state,
    max_param_diff,
    train_losses,
    train_two_ranks,
    user_error,
    valid_metrics,
)
from .helpers_data import prepare_data_bin


@pytest.fixture(scope="module")
def data_bin(tmp_path_factory):
    """Built by the project's pipeline (xlm-preprocess prepare), as a user would."""
    return prepare_data_bin(str(tmp_path_factory.mktemp("lm")), langs=("en", "fr"), pairs=(("en", "fr"),))


def test_tlm_valid_ppl_goes_down_and_best_checkpoint_follows_mlm_ppl(data_bin, tmp_path):
    save = tmp_path / "ckpt"
    proc = cli(
        "fairseq-train",
        *lm_train_args(
            data_bin,
            save,
            "--best-checkpoint-metric",
            "mlm_ppl",
            "--log-interval",
            10,
            "--tensorboard-logdir",
            save / "tb",
            max_update=120,
            epoch_size=80,
        ),
    )
    rows = valid_metrics(proc.stdout + proc.stderr)
    assert len(rows) >= 4
    for key in ("en_mlm_ppl", "fr_mlm_ppl", "en_fr_mlm_ppl", "mlm_ppl", "mlm_acc", "en_mlm_acc"):
        assert key in rows[0], f"{key} missing from the validation log"
    # mlm_ppl is the mean of the monolingual perplexities (TLM excluded)
    assert rows[-1]["mlm_ppl"] == pytest.approx((rows[-1]["en_mlm_ppl"] + rows[-1]["fr_mlm_ppl"]) / 2, rel=1e-3)
    assert rows[-1]["mlm_ppl"] < 0.7 * rows[0]["mlm_ppl"]
    assert rows[-1]["best_mlm_ppl"] == pytest.approx(min(r["mlm_ppl"] for r in rows), rel=1e-4)
    for subset in ("train", "valid"):
        assert any(f.startswith("events.out.tfevents") for f in os.listdir(save / "tb" / subset))
    best = load_model_state(save / "checkpoint_best.pt")
    assert "encoder.lang_embeddings.weight" in best and "encoder.pred_layer.proj.bias" in best


def test_clm_task_logs_clm_perplexity(data_bin, tmp_path):
    args = lm_train_args(data_bin, tmp_path / "c", task="xlm_cross_lingual_lm", steps="", max_update=8)
    args += ["--clm-steps", "en,fr"]
    proc = cli("fairseq-train", *args)
    row = valid_metrics(proc.stdout + proc.stderr)[-1]
    assert {"en_clm_ppl", "fr_clm_ppl", "clm_ppl", "en_clm_acc"} <= row.keys()


def test_resume_from_checkpoint_last_gives_the_same_run(data_bin, tmp_path):
    extra = ["--dropout", "0.1", "--attention-dropout", "0.1", "--disable-validation"]
    straight = cli("fairseq-train", *lm_train_args(data_bin, tmp_path / "a", *extra, max_update=20))
    cli("fairseq-train", *lm_train_args(data_bin, tmp_path / "b", *extra, max_update=10))
    resumed = cli("fairseq-train", *lm_train_args(data_bin, tmp_path / "b", *extra, max_update=20))
    assert "Loaded checkpoint" in resumed.stdout + resumed.stderr
    la, lb = train_losses(straight.stdout + straight.stderr), train_losses(resumed.stdout + resumed.stderr)
    assert la[20] == lb[20] and all(la[u] == lb[u] for u in range(11, 21))
    diff = max_param_diff(
        load_model_state(tmp_path / "a" / "checkpoint_last.pt"), load_model_state(tmp_path / "b" / "checkpoint_last.pt")
    )
    assert diff < 1e-6


def test_two_processes_equal_one_process_with_update_freq_2(data_bin, tmp_path):
    """Two ranks' batches summed by all-reduce give the gradient of one process accumulating the same batches
    (--update-freq 2), at its scale: compared through SGD, whose update is -lr * gradient (assert_same_gradients)."""
    lr = 0.5
    extra = ["--disable-validation", "--no-epoch-checkpoints", "--optimizer", "sgd", "--lr", lr]
    dist = train_two_ranks(lm_train_args(data_bin, tmp_path / "dist", *extra, max_update=2))
    single = cli(
        "fairseq-train", *lm_train_args(data_bin, tmp_path / "single", *extra, "--update-freq", 2, max_update=2)
    )
    assert_same_gradients(
        dist,
        single.stdout + single.stderr,
        load_model_state(tmp_path / "dist" / "checkpoint_last.pt"),
        load_model_state(tmp_path / "single" / "checkpoint_last.pt"),
        lr,
    )


def test_two_process_run_stops_and_resumes(data_bin, tmp_path):
    extra = ["--disable-validation", "--no-epoch-checkpoints", "--dropout", "0.1"]
    train_two_ranks(lm_train_args(data_bin, tmp_path / "straight", *extra, max_update=6))
    train_two_ranks(lm_train_args(data_bin, tmp_path / "stopped", *extra, max_update=3))
    log = train_two_ranks(lm_train_args(data_bin, tmp_path / "stopped", *extra, max_update=6))
    assert "Loaded checkpoint" in log
    diff = max_param_diff(
        load_model_state(tmp_path / "straight" / "checkpoint_last.pt"),
        load_model_state(tmp_path / "stopped" / "checkpoint_last.pt"),
    )
    assert diff < 1e-6


def _error(data_bin, tmp_path, *extra, steps="en,fr,en-fr", task="xlm_tlm"):
    return user_error(
        cli(
            "fairseq-train",
            *lm_train_args(data_bin, tmp_path / "e", *extra, steps=steps, task=task, max_update=1),
            check=False,
        )
    )


def test_bad_input_gives_one_line_errors(data_bin, tmp_path):
    msg = _error(data_bin, tmp_path, steps="en,de")
    assert "'de'" in msg and "--langs" in msg
    assert "xlm_tlm" in _error(data_bin, tmp_path, steps="en,en-fr", task="xlm_cross_lingual_lm")
    msg = _error(data_bin, tmp_path, "--tokens-per-sample", 600)
    assert "--tokens-per-sample 600" in msg and "512" in msg
    assert "--lambda-mlm" in _error(data_bin, tmp_path, "--lambda-mlm", "5:1,3:0")
    assert "--word-mask-keep-rand" in _error(data_bin, tmp_path, "--word-mask-keep-rand", "0.8,0.1")
    assert "--max-pair-sentences -1" in _error(data_bin, tmp_path, "--max-pair-sentences", -1)


def test_forgotten_criterion_and_unreadable_checkpoints_give_one_line(data_bin, tmp_path):
    args = lm_train_args(data_bin, tmp_path / "c", max_update=1)
    i = args.index("--criterion")
    msg = user_error(cli("fairseq-train", *(args[:i] + args[i + 2 :]), check=False))  # fairseq's default
    assert "--criterion cross_entropy" in msg and "--criterion xlm_lm_loss" in msg
    cli("fairseq-train", *lm_train_args(data_bin, tmp_path / "ok", "--disable-validation", max_update=2))
    good = (tmp_path / "ok" / "checkpoint_last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    for save, extra in ((tmp_path / "r", ["--restore-file", tmp_path / "cut.pt"]), (tmp_path / "resume", [])):
        if not extra:  # a truncated checkpoint_last.pt of the run being resumed
            save.mkdir()
            (save / "checkpoint_last.pt").write_bytes(good[: len(good) // 2])
        msg = user_error(
            cli(
                "fairseq-train",
                *lm_train_args(data_bin, save, "--disable-validation", *extra, max_update=3),
                check=False,
            )
        )
        assert "not a readable checkpoint" in msg and "weights_only" not in msg
        assert sorted(os.listdir(save)) == ([] if extra else ["checkpoint_last.pt"])


def test_missing_files_and_foreign_dictionary(data_bin, tmp_path):
    # a TLM step whose parallel data does not exist: the message lists the paths looked for
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(data_bin, broken)
    for f in os.listdir(broken):
        if f.startswith("train.en-fr"):
            os.remove(broken / f)
    msg = _error(str(broken), tmp_path)
    assert "train.en-fr.en.bin" in msg and "parallel" in msg
    # data binarised with a bigger dictionary than the dict.txt beside it
    lines = open(os.path.join(data_bin, "dict.txt"), encoding="utf-8").read().splitlines()
    open(broken / "dict.txt", "w", encoding="utf-8").write("\n".join(lines[:40]) + "\n")
    msg = _error(str(broken), tmp_path, steps="en,fr")
    assert "dict.txt" in msg and "rebinarise" in msg


def checkpoint_state(path):
    import torch

    import xlm_fairseq  # noqa: F401  (allow-lists what fairseq checkpoints pickle)

    state = torch.load(path)
    history = state["optimizer_history"][-1]
    return (
        state["model"],
        state["last_optimizer_state"]["state"],
        history["num_updates"],
        history["lr_scheduler_state"],
        state["extra_state"]["train_iterator"],
    )


def assert_same_training(a, b):
    """Parameters, Adam moments, update count, LR schedule and data position bit-identical."""
    (ma, oa, na, la, ia), (mb, ob, nb, lb, ib) = checkpoint_state(a), checkpoint_state(b)
    assert na == nb and la == lb and ia == ib
    assert ma.keys() == mb.keys() and all(torch_equal(ma[k], mb[k]) for k in ma)
    assert oa.keys() == ob.keys()
    for k in oa:
        assert all(torch_equal(oa[k][m], ob[k][m]) for m in oa[k] if hasattr(oa[k][m], "shape")), k


def torch_equal(x, y):
    import torch

    return torch.equal(x, y)


def test_a_zero_lambda_step_is_never_run(data_bin, tmp_path):
    """--lambda-clm 0 with CLM steps: no forward, no update, no LR step, no batch consumed: the run is
    bit-identical to one without the CLM steps (the original returns from a step whose λ is 0)."""
    extra = ["--disable-validation", "--dropout", "0.1", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", 10]
    cli(
        "fairseq-train",
        *lm_train_args(data_bin, tmp_path / "mlm", *extra, task="xlm_cross_lingual_lm", steps="en,fr", max_update=12),
    )
    cli(
        "fairseq-train",
        *lm_train_args(
            data_bin,
            tmp_path / "zero",
            *extra,
            "--clm-steps",
            "en,fr",
            "--lambda-clm",
            "0",
            task="xlm_cross_lingual_lm",
            steps="en,fr",
            max_update=12,
        ),
    )
    assert_same_training(tmp_path / "mlm" / "checkpoint_last.pt", tmp_path / "zero" / "checkpoint_last.pt")


def test_tlm_batches_are_cut_by_max_tokens_not_batch_size(data_bin, tmp_path):
    """--batch-size 4 is the number of streams of an MLM step; a TLM step takes --max-tokens 400 of pairs."""
    proc = cli("fairseq-train", *lm_train_args(data_bin, tmp_path / "t", "--disable-validation", max_update=30))
    rows = [line for line in (proc.stdout + proc.stderr).splitlines() if "| train_inner |" in line]
    is_tlm = lambda r: "en_fr_mlm_ppl=" in r and "en_fr_mlm_ppl=nan" not in r  # noqa: E731
    tlm = [r for r in rows if is_tlm(r)]
    mono = [r for r in rows if not is_tlm(r)]
    bsz = lambda r: float(r.split("bsz=")[1].split(",")[0].split()[0])  # noqa: E731
    wpb = lambda r: float(r.split("wpb=")[1].split(",")[0].split()[0])  # noqa: E731
    assert tlm and mono
    assert {bsz(r) for r in mono} == {4.0} and all(wpb(r) == 4 * 32 for r in mono)
    assert max(bsz(r) for r in tlm) > 4 and all(wpb(r) <= 400 + 100 for r in tlm)
    assert sorted(wpb(r) for r in tlm)[len(tlm) // 2] > 250
