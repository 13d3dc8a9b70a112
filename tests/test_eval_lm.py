"""`xlm-eval-lm` (paper Table 4, facebookresearch/XLM `evaluate_clm`): CLM perplexity of one language, equal to
fairseq-train's
valid log and to fairseq-validate for the same checkpoint, and to a direct computation from the binarised
stream; a language trained alone and with a second language; one-line errors."""

import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from xlm_fairseq.eval_lm import CLMEvaluator, main

from .helpers_cli import USER_DIR, cli, run_together, valid_metrics
from .helpers_data import make_data_bin

BPTT = 24


def eval_lm(*args, check=True):
    return cli("xlm-eval-lm", *args, check=check)


def train_args(data, save_dir, steps, max_update=12):
    return [
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_cross_lingual_lm",
        "--langs",
        "en,fr",
        "--clm-steps",
        steps,
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_lm_loss",
        "--tokens-per-sample",
        BPTT,
        "--batch-size",
        4,
        "--optimizer",
        "adam",
        "--lr",
        "2e-3",
        "--max-update",
        max_update,
        "--epoch-size",
        24,
        "--save-dir",
        save_dir,
        "--best-checkpoint-metric",
        "en_clm_ppl",
        "--no-epoch-checkpoints",
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
    ]


def train_in_parallel(runs):
    """fairseq-train for each {name: args} at once (2 cores); {name: [valid rows]}."""
    logs = run_together({name: ["fairseq-train", *args] for name, args in runs.items()})
    return {name: valid_metrics(log) for name, log in logs.items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("evallm")
    data = make_data_bin(str(root), langs=("en", "fr"), pairs=())
    for ext in ("bin", "idx"):  # a test split: fr's valid sentences serve as en's test set
        shutil.copy(os.path.join(data, f"valid.fr.{ext}"), os.path.join(data, f"test.en.{ext}"))
    variants = {"en": "en", "en_fr": "en,fr"}
    rows = train_in_parallel({name: train_args(data, root / name, steps) for name, steps in variants.items()})
    runs = {name: {"ckpt": str(root / name / "checkpoint_last.pt"), "valid": rows[name]} for name in variants}
    return data, runs


def test_eval_lm_equals_the_training_log_with_and_without_a_second_language(trained):
    data, runs = trained
    ppl = {}
    for name, run in runs.items():
        if name == "en":  # the command line
            out = json.loads(eval_lm(run["ckpt"], data, "--lang", "en", "--split", "valid", "--json").stdout)
        else:  # the Python API
            ev = CLMEvaluator(run["ckpt"], data, "en", cpu=True)
            out = {
                "splits": {"valid": ev.evaluate("valid")},
                "num_updates": ev.num_updates,
                "tokens_per_sample": ev.tokens_per_sample,
            }
        r = out["splits"]["valid"]
        logged = run["valid"][-1]  # checkpoint_last.pt holds the model of the last validation
        assert len(run["valid"]) == 2  # validated after epochs 1 and 2
        assert math.isfinite(r["ppl"]) and r["ppl"] > 1
        assert r["ppl"] == pytest.approx(logged["en_clm_ppl"], rel=1e-5)
        assert r["acc"] == pytest.approx(logged["en_clm_acc"], rel=1e-4)
        assert out["num_updates"] == 12 and out["tokens_per_sample"] == BPTT
        assert r["predicted"] == r["windows"] * (BPTT - 1)
        ppl[name] = r["ppl"]
    # the two runs saw different data, so the models (and their perplexities) differ
    assert ppl["en"] != pytest.approx(ppl["en_fr"], rel=1e-3)
    # the second language's step is logged only by the model trained on it
    assert "fr_clm_ppl" in runs["en_fr"]["valid"][-1] and "fr_clm_ppl" not in runs["en"]["valid"][-1]


def _reference_clm_ppl(model, tokens, bptt, lang_id, eos):
    """The original's evaluate_clm streams from scratch: the flat corpus right-aligned in n_windows*bptt tokens of
    </s>, one more </s>
    in front, windows of bptt; each window predicts its tokens 1..bptt-1 from its own prefix."""
    n_windows = math.ceil(len(tokens) / bptt)
    data = np.full(n_windows * bptt + 1, eos, dtype=np.int64)
    data[len(data) - len(tokens) :] = tokens
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(n_windows):
            x = torch.from_numpy(data[i * bptt : (i + 1) * bptt])[None]
            mask = torch.zeros_like(x, dtype=torch.bool)
            mask[0, :-1] = True
            logits = model(
                src_tokens=x,
                src_lengths=torch.tensor([bptt]),
                langs=torch.tensor([lang_id]),
                causal=True,
                pred_mask=mask,
            )
            total += torch.nn.functional.cross_entropy(logits.float(), x[0, 1:], reduction="sum").item()
            count += bptt - 1
    return math.exp(total / count), n_windows


def test_eval_lm_follows_the_spec_stream_layout(trained):
    from fairseq.data import data_utils

    data, runs = trained
    ev = CLMEvaluator(runs["en_fr"]["ckpt"], data, "en", cpu=True)
    ds = data_utils.load_indexed_dataset(os.path.join(data, "test.en"), ev.task.dictionary, dataset_impl="mmap")
    tokens = np.concatenate([ds[i].numpy() for i in range(len(ds))])
    for bptt in (BPTT, 7):
        ev = CLMEvaluator(runs["en_fr"]["ckpt"], data, "en", tokens_per_sample=bptt, cpu=True)
        got = ev.evaluate("test")
        want, n_windows = _reference_clm_ppl(ev.model, tokens, bptt, ev.task.lang2id["en"], ev.task.dictionary.eos())
        assert got["windows"] == n_windows and got["predicted"] == n_windows * (bptt - 1)
        assert got["ppl"] == pytest.approx(want, rel=1e-5)


def test_fairseq_validate_gives_the_same_test_perplexity(trained):
    data, runs = trained
    ckpt = runs["en"]["ckpt"]
    table = eval_lm(ckpt, data, "--lang", "en").stdout  # the default: valid and test
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert set(rows) == {"valid", "test"}
    proc = cli(
        "fairseq-validate",
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_cross_lingual_lm",
        "--langs",
        "en,fr",
        "--clm-steps",
        "en",
        "--path",
        ckpt,
        "--valid-subset",
        "test",
        "--batch-size",
        1,
        "--cpu",
        "--num-workers",
        0,
    )
    logged = valid_metrics(proc.stdout + proc.stderr)[-1]
    assert float(rows["test"][1]) == pytest.approx(logged["en_clm_ppl"], rel=1e-5)
    assert float(rows["valid"][1]) == pytest.approx(runs["en"]["valid"][-1]["en_clm_ppl"], rel=1e-5)


def test_bad_input_gives_one_line_errors(trained, tmp_path, capsys):
    data, runs = trained
    ckpt = runs["en"]["ckpt"]
    proc = eval_lm(ckpt, data, "--lang", "de", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1 and "--lang de" in lines[0] and "en,fr" in lines[0]

    def error(*argv):
        capsys.readouterr()
        assert main([str(a) for a in argv]) == 2
        err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error: ")]
        assert len(err) == 1, err
        return err[0]

    assert "test.fr.bin" in error(ckpt, data, "--lang", "fr", "--split", "test")
    assert "no such file" in error(tmp_path / "missing.pt", data, "--lang", "en")
    assert "not a readable checkpoint" in error(os.path.join(data, "dict.txt"), data, "--lang", "en")
    assert "600" in error(ckpt, data, "--lang", "en", "--tokens-per-sample", 600)
    assert "data-bin folder" in error(ckpt, tmp_path / "nowhere", "--lang", "en")
