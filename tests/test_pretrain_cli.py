"""MLM/TLM/CLM pretraining through the real `fairseq-train --user-dir xlm_fairseq` on tiny real text:
training and validation, best checkpoint by mlm_ppl, exact resume, 2-process training and its resume."""
import os

import pytest

from .helpers_cli import (
    cli, free_port, lm_train_args, load_model_state, max_param_diff, train_losses, train_two_ranks,
    valid_metrics,
)
from .helpers_data import prepare_data_bin


@pytest.fixture(scope="module")
def data_bin(tmp_path_factory):
    """Built by the project's pipeline (xlm-preprocess prepare), as a user would."""
    return prepare_data_bin(str(tmp_path_factory.mktemp("lm")), langs=("en", "fr"), pairs=(("en", "fr"),))


def test_tlm_valid_ppl_goes_down_and_best_checkpoint_follows_mlm_ppl(data_bin, tmp_path):
    save = tmp_path / "ckpt"
    proc = cli("fairseq-train", *lm_train_args(data_bin, save, "--best-checkpoint-metric", "mlm_ppl",
                                               "--log-interval", 10, "--tensorboard-logdir", save / "tb",
                                               max_update=120, epoch_size=80))
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
    diff = max_param_diff(load_model_state(tmp_path / "a" / "checkpoint_last.pt"),
                          load_model_state(tmp_path / "b" / "checkpoint_last.pt"))
    assert diff < 1e-6


def test_two_processes_equal_one_process_with_update_freq_2(data_bin, tmp_path):
    extra = ["--disable-validation", "--no-epoch-checkpoints"]
    train_two_ranks(lm_train_args(data_bin, tmp_path / "dist", *extra, max_update=1))
    cli("fairseq-train", *lm_train_args(data_bin, tmp_path / "single", *extra, "--update-freq", 2, max_update=1))
    diff = max_param_diff(load_model_state(tmp_path / "dist" / "checkpoint_last.pt"),
                          load_model_state(tmp_path / "single" / "checkpoint_last.pt"))
    assert diff < 1e-5


def test_two_process_run_stops_and_resumes(data_bin, tmp_path):
    extra = ["--disable-validation", "--no-epoch-checkpoints", "--dropout", "0.1"]
    train_two_ranks(lm_train_args(data_bin, tmp_path / "straight", *extra, max_update=6))
    train_two_ranks(lm_train_args(data_bin, tmp_path / "stopped", *extra, max_update=3))
    log = train_two_ranks(lm_train_args(data_bin, tmp_path / "stopped", *extra, max_update=6))
    assert "Loaded checkpoint" in log
    diff = max_param_diff(load_model_state(tmp_path / "straight" / "checkpoint_last.pt"),
                          load_model_state(tmp_path / "stopped" / "checkpoint_last.pt"))
    assert diff < 1e-6


def _error(data_bin, tmp_path, *extra, steps="en,fr,en-fr", task="xlm_tlm"):
    proc = cli("fairseq-train", *lm_train_args(data_bin, tmp_path / "e", *extra, steps=steps, task=task,
                                               max_update=1), check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def test_bad_input_gives_one_line_errors(data_bin, tmp_path):
    assert "'de'" in _error(data_bin, tmp_path, steps="en,de") and "--langs" in _error(data_bin, tmp_path, steps="en,de")
    assert "xlm_tlm" in _error(data_bin, tmp_path, steps="en,en-fr", task="xlm_cross_lingual_lm")
    msg = _error(data_bin, tmp_path, "--tokens-per-sample", 600)
    assert "--tokens-per-sample 600" in msg and "512" in msg
    assert "--lambda-mlm" in _error(data_bin, tmp_path, "--lambda-mlm", "5:1,3:0")
    assert "--word-mask-keep-rand" in _error(data_bin, tmp_path, "--word-mask-keep-rand", "0.8,0.1")


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
