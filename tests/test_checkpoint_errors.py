"""Every way of loading a checkpoint goes through the one loader (xlm_fairseq/checkpoints.py) and gives the same
one-line error for a truncated, foreign or missing file, never torch's advice to load it with
weights_only=False: the hub interface, xlm-convert (all three directions), xlm-embeddings export/sentences,
xlm-eval-lm, --reload-encoder, the file fairseq-train is about to load (--restore-file, --finetune-from-model),
and, through the plugin's excepthook, what fairseq's own loader reads (fairseq-generate --path)."""

import os
import subprocess

import pytest
import torch

from xlm_fairseq import cli_hooks
from xlm_fairseq.checkpoints import peek_checkpoint, read_checkpoint, read_config, read_torch_file
from xlm_fairseq.errors import CheckpointError, InputError, XLMUserError
from xlm_fairseq.models.xlm_transformer import XLMTransformerModel

from .helpers_cli import BIN, ENV, USER_DIR, user_error
from .helpers_model import hf_xlm, original_state_dict
from .test_convert import TOY_WORDS, convert, save_original, write_vocab


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A converted model folder (model.pt, dict.txt, codes, xlm_inference.json) and broken files beside it."""
    root = tmp_path_factory.mktemp("ckpt")
    sd = original_state_dict(hf_xlm(n_words=40, dim=16, n_layers=1, n_heads=2, n_langs=2, seed=5))
    save_original(root / "orig.pth", {"encoder": sd}, TOY_WORDS, ["en", "fr"], n_heads=2)
    write_vocab(root / "vocab", TOY_WORDS)
    (root / "codes").write_text("t o 10\nto k</w> 9\n", encoding="utf-8")
    out = root / "model"
    assert (
        convert("from-original", root / "orig.pth", "--vocab", root / "vocab", "--codes", root / "codes", "--out", out)
        == 0
    )
    good = (out / "model.pt").read_bytes()
    (out / "cut.pt").write_bytes(good[: len(good) // 2])  # an interrupted copy
    (out / "foreign.pt").write_bytes((root / "orig.pth").read_bytes())  # an original XLM file, not converted
    (out / "text.pt").write_text("not a checkpoint\n")
    original = (root / "orig.pth").read_bytes()
    (root / "cut.pth").write_bytes(original[: len(original) // 2])
    torch.save({"weights": [torch.zeros(2)]}, out / "weights.pt")  # a torch file of another program
    return out


def one_line(message, path, *also):
    """The project's one-line checkpoint error: names the file, no torch advice, no second line."""
    message = str(message)
    assert str(path) in message and "\n" not in message and "weights_only" not in message, message
    for text in also:
        assert text in message, message
    return message


def test_the_loader_says_what_is_wrong_with_each_kind_of_file(files):
    for read in (read_checkpoint, peek_checkpoint, read_config):
        for name, expected in (
            ("cut.pt", "truncated or corrupt"),
            ("foreign.pt", "numpy"),  # the type weights-only loading refused, and what to do
            ("text.pt", "a text file"),
            ("weights.pt", "no model weights"),
            ("missing.pt", "no such file"),
        ):
            with pytest.raises(CheckpointError) as e:
                read(str(files / name), "--restore-file")
            one_line(e.value, files / name, "--restore-file", expected)
    with pytest.raises(CheckpointError, match="xlm-convert from-original"):
        read_checkpoint(str(files / "foreign.pt"))
    assert read_checkpoint(str(files / "model.pt"))["cfg"]["task"]["langs"] == "en,fr"
    assert read_config(str(files / "model.pt"))["task"]["langs"] == "en,fr"


def test_hub_interface(files):
    for name in ("cut.pt", "foreign.pt", "text.pt"):
        with pytest.raises(CheckpointError) as e:
            XLMTransformerModel.from_pretrained(str(files), name)
        one_line(e.value, files / name, "checkpoint_file", "not a readable checkpoint")
    with pytest.raises(InputError, match="checkpoint_file='missing.pt'"):
        XLMTransformerModel.from_pretrained(str(files), "missing.pt")
    xlm = XLMTransformerModel.from_pretrained(str(files), "model.pt")
    assert xlm.langs == ["en", "fr"]


def _main_error(main, capsys, *argv):
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        status = main([str(a) for a in argv])
        raise SystemExit(status)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_command_lines_of_the_plugin(files, tmp_path, capsys):
    from xlm_fairseq.convert.cli import main as convert_main
    from xlm_fairseq.embeddings import main as embeddings_main
    from xlm_fairseq.eval_lm import main as eval_lm_main

    cut, foreign = files / "cut.pt", files / "foreign.pt"
    one_line(_main_error(convert_main, capsys, "to-transformers", cut, "--out", tmp_path / "hf"), cut, "truncated")
    one_line(_main_error(convert_main, capsys, "to-transformers", foreign, "--out", tmp_path / "hf"), foreign)
    cut_pth = files.parent / "cut.pth"
    one_line(_main_error(convert_main, capsys, "from-original", cut_pth, "--out", tmp_path / "o"), cut_pth, "truncated")
    # a transformers folder whose weights were cut short
    assert convert("to-transformers", files / "model.pt", "--out", tmp_path / "hf") == 0
    weights = tmp_path / "hf" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    msg = _main_error(convert_main, capsys, "from-transformers", tmp_path / "hf", "--out", tmp_path / "back")
    one_line(msg, weights, "not a readable checkpoint")
    one_line(_main_error(embeddings_main, capsys, "export", cut, "--out", tmp_path / "e.vec"), cut, "truncated")
    one_line(
        _main_error(
            embeddings_main,
            capsys,
            "sentences",
            files,
            "--checkpoint-file",
            "cut.pt",
            "--lang",
            "en",
            "--out",
            tmp_path / "s.npy",
            "--input",
            files / "codes",
        ),
        cut,
        "truncated",
    )
    one_line(_main_error(eval_lm_main, capsys, cut, files, "--lang", "en"), cut, "truncated")
    assert not any(p.name in ("o", "back", "e.vec", "s.npy") for p in tmp_path.iterdir())


def test_reload_encoder_and_the_file_fairseq_train_will_load(files, tmp_path):
    from argparse import Namespace

    from xlm_fairseq.checkpoints import file_fairseq_will_load
    from xlm_fairseq.pretrained import reload_encoder_decoder

    with pytest.raises(CheckpointError) as e:
        reload_encoder_decoder(None, str(files / "cut.pt"), "", None)
    one_line(e.value, files / "cut.pt", "--reload-encoder", "truncated")
    for restore, finetune, flag in (
        (str(files / "cut.pt"), None, "--restore-file"),
        ("checkpoint_last.pt", str(files / "foreign.pt"), "--finetune-from-model"),
        (str(tmp_path / "missing.pt"), None, "--restore-file"),  # fairseq would start from scratch silently
    ):
        cfg = Namespace(restore_file=restore, finetune_from_model=finetune, save_dir=str(tmp_path))
        path, named = file_fairseq_will_load(cfg)
        assert named == flag
        with pytest.raises(CheckpointError) as e:
            read_config(path, named)
        one_line(e.value, path, flag)


def test_files_fairseq_reads_itself_give_the_same_line(files):
    """fairseq-generate/-validate --path: fairseq's loader raises torch's error; the excepthook's line is the
    loader's, word for word."""
    from fairseq import checkpoint_utils

    for name in ("cut.pt", "foreign.pt", "text.pt"):
        path = str(files / name)
        with pytest.raises(Exception) as raised:
            checkpoint_utils.load_checkpoint_to_cpu(path)
        assert not isinstance(raised.value, XLMUserError)
        hooked = cli_hooks.checkpoint_error(raised.value, ["fairseq-generate", "--path", path])
        with pytest.raises(CheckpointError) as ours:
            read_checkpoint(path, "--path")
        assert str(hooked) == str(ours.value)
    missing = str(files / "missing.pt")
    with pytest.raises(OSError) as raised:
        checkpoint_utils.load_model_ensemble_and_task([missing])
    assert str(cli_hooks.checkpoint_error(raised.value, ["x", "--path", missing])) == f"--path {missing}: no such file"
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        read_torch_file(str(files / "foreign.pt"), refused_hint="pass --trust-checkpoint")


def test_fairseq_command_lines(files, tmp_path):
    """The real fairseq-train / fairseq-generate (side by side): one `error:` line, exit status 2."""
    common = ["--user-dir", USER_DIR, "--langs", "en,fr", "--cpu"]
    train = [
        files,
        *common,
        "--task",
        "xlm_cross_lingual_lm",
        "--mlm-steps",
        "en",
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_lm_loss",
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--max-update",
        1,
        "--batch-size",
        4,
        "--tokens-per-sample",
        32,
        "--num-workers",
        0,
        "--disable-validation",
        "--save-dir",
    ]
    generate = [files, *common, "--task", "xlm_unsupervised_mt", "--source-lang", "en", "--target-lang", "fr"]
    commands = {
        "finetune foreign": ["fairseq-train", *train, tmp_path / "a", "--finetune-from-model", files / "foreign.pt"],
        "restore missing": ["fairseq-train", *train, tmp_path / "b", "--restore-file", files / "missing.pt"],
        "generate missing": ["fairseq-generate", *generate, "--path", files / "missing.pt"],
    }
    procs = {
        name: subprocess.Popen(
            [os.path.join(BIN, cmd[0])] + [str(a) for a in cmd[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for name, cmd in commands.items()
    }
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        proc.stdout, proc.stderr = stdout, stderr
        assert proc.returncode == 2, (name, stderr[-3000:])
        flag = commands[name][-2]
        one_line(user_error(proc), commands[name][-1], flag)
    assert not os.path.exists(tmp_path / "a" / "checkpoint_last.pt")
    assert not os.path.exists(tmp_path / "b" / "checkpoint_last.pt")
