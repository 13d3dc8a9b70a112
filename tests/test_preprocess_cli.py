"""The xlm-preprocess command line: subcommands listed, `ddtp` imported lazily, errors as one line with a
non-zero exit status, no torch for the preprocessing."""

import os
import sys
import types

from xlm_preprocess import cli

from . import helpers_cli


def test_help_lists_every_subcommand():
    proc = helpers_cli.cli("xlm-preprocess", "--help", check=False)
    assert proc.returncode == 0, proc.stderr
    for name in (
        "tokenize",
        "learn-bpe",
        "apply-bpe",
        "build-dict",
        "binarize",
        "prepare",
        "ddtp",
        "wikipedia",
        "opus",
        "wmt",
    ):
        assert name in proc.stdout


def test_ddtp_is_delegated(monkeypatch, capsys):
    seen = {}
    fake = types.ModuleType("xlm_preprocess.ddtp")
    fake.add_arguments = lambda parser: parser.add_argument("--langs")
    fake.main = lambda args: seen.setdefault("langs", args.langs) and 0
    monkeypatch.setitem(sys.modules, "xlm_preprocess.ddtp", fake)
    assert cli.main(["ddtp", "--langs", "en,cs"]) == 0
    assert seen == {"langs": "en,cs"}
    fake.main = lambda args: 3  # its exit status is passed on
    assert cli.main(["ddtp", "--langs", "en"]) == 3


def test_ddtp_is_not_imported_for_other_commands(monkeypatch, tmp_path, capsys):
    broken = types.ModuleType("xlm_preprocess.ddtp")

    def explode(parser):
        raise AssertionError("xlm_preprocess.ddtp was imported for another subcommand")

    broken.add_arguments = explode
    monkeypatch.setitem(sys.modules, "xlm_preprocess.ddtp", broken)
    (tmp_path / "in").write_text("Hi!\n", encoding="utf-8")
    assert cli.main(["tokenize", "--lang", "en", "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").read_text() == "Hi !\n"


def test_usage_error_and_user_error_exit_codes(tmp_path):
    proc = helpers_cli.cli("xlm-preprocess", "tokenize", check=False)
    assert proc.returncode == 2 and "--lang" in proc.stderr  # argparse usage error
    proc = helpers_cli.cli(
        "xlm-preprocess",
        "binarize",
        "--input-dir",
        tmp_path,
        "--dict",
        tmp_path / "dict.txt",
        "--destdir",
        tmp_path / "bin",
        check=False,
    )
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert "has no {split}.{lang}" in helpers_cli.user_error(proc)


def test_binarize_rejects_a_dictionary_without_the_specials(tmp_path, capsys):
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "train.en").write_text("a b\n", encoding="utf-8")
    (tmp_path / "dict.txt").write_text("a 1\nb 1\n", encoding="utf-8")
    assert (
        cli.main(
            [
                "binarize",
                "--input-dir",
                str(tmp_path / "txt"),
                "--dict",
                str(tmp_path / "dict.txt"),
                "--destdir",
                str(tmp_path / "bin"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "ids 4..13 must be <special0>..<special9>" in err and err.count("\n") == 1


def test_binarize_standalone_orients_pairs_and_records_bpe(tmp_path, capsys):
    import json

    from fairseq.data import data_utils

    from xlm_fairseq.dictionary import load_dictionary

    txt = tmp_path / "txt"
    txt.mkdir()
    # a pair named fr-en on disk must come out as en-fr (a < b)
    (txt / "train.fr-en.fr").write_text("le chat\nun chien noir\n", encoding="utf-8")
    (txt / "train.fr-en.en").write_text("the cat\na black dog\n", encoding="utf-8")
    (txt / "codes").write_text("#version: 0.2\nt h\n", encoding="utf-8")
    (txt / "codes.meta.json").write_text(json.dumps({"backend": "subword-nmt", "codes": 1, "alpha": 0.5}))
    assert (
        cli.main(
            [
                "build-dict",
                "-i",
                str(txt / "train.fr-en.fr"),
                str(txt / "train.fr-en.en"),
                "-o",
                str(tmp_path / "dict.txt"),
            ]
        )
        == 0
    )
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / ".binarize.tmp-999999999").mkdir()  # left by a killed run
    assert (
        cli.main(
            [
                "binarize",
                "--input-dir",
                str(txt),
                "--dict",
                str(tmp_path / "dict.txt"),
                "--destdir",
                str(tmp_path / "bin"),
                "--codes-file",
                str(txt / "codes"),
            ]
        )
        == 0
    )
    files = sorted(os.listdir(tmp_path / "bin"))
    assert files == [
        "dict.txt",
        "manifest.json",
        "preprocess.log",
        "train.en-fr.en.bin",
        "train.en-fr.en.idx",
        "train.en-fr.fr.bin",
        "train.en-fr.fr.idx",
    ]
    d = load_dictionary(str(tmp_path / "bin" / "dict.txt"))
    en = data_utils.load_indexed_dataset(str(tmp_path / "bin" / "train.en-fr.en"), d, dataset_impl="mmap")
    assert [d.string(en[i]) for i in range(len(en))] == ["the cat", "a black dog"]
    m = json.loads((tmp_path / "bin" / "manifest.json").read_text())
    assert m["pairs"] == ["en-fr"] and m["mono"] == {} and m["bpe"]["codes"] == 1 and m["bpe"]["alpha"] == 0.5
    assert m["para"]["en-fr"]["train"] == {"sentences": 2, "tokens": {"en": 5, "fr": 5}}


def test_preprocessing_runs_without_torch(tmp_path):
    """Every subcommand but the binarisation (which is fairseq-preprocess, a separate process) imports neither
    torch nor fairseq: tokenize -> learn-bpe -> apply-bpe -> build-dict in one interpreter."""
    (tmp_path / "train.en").write_text("The cat sat on the mat.\nA dog ran, fast!\n" * 20, encoding="utf-8")
    code = f"""
import os, sys
from xlm_preprocess import cli
d = {str(tmp_path)!r}
j = lambda name: os.path.join(d, name)
assert cli.main(["tokenize", "--lang", "en", "-i", j("train.en"), "-o", j("tok.en")]) == 0
assert cli.main(["learn-bpe", "--langs", "en", "--input", "en=" + j("tok.en"), "--codes", "20", "-o", j("codes")]) == 0
assert cli.main(["apply-bpe", "--codes-file", j("codes"), "-i", j("tok.en"), "-o", j("bpe.en")]) == 0
assert cli.main(["build-dict", "-i", j("bpe.en"), "-o", j("dict.txt")]) == 0
loaded = sorted(m for m in ("torch", "fairseq", "xlm_fairseq") if m in sys.modules)
print("loaded:", loaded)
"""
    assert "loaded: []" in helpers_cli.run([sys.executable, "-c", code]).stdout
    assert (tmp_path / "dict.txt").read_text(encoding="utf-8").startswith("<special0> 0\n")
