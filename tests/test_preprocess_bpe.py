"""learn-bpe / apply-bpe: alpha sampling against the formula, determinism, round trips through fairseq's
post-processing for both backends, codes/backend mismatches."""

import json
import os

import pytest
from fairseq.data.data_utils import post_process

from xlm_preprocess import cli
from xlm_preprocess.learn_bpe import alpha_probabilities, sample_counts
from xlm_preprocess.tokenizer import Tokenizer

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "text")


def test_alpha_probabilities_match_the_formula():
    n = {"en": 900, "fr": 100}
    q = alpha_probabilities(n, 0.5)
    # p = (0.9, 0.1); sqrt -> (0.9487, 0.3162); normalised -> (0.75, 0.25)
    assert q["en"] == pytest.approx(0.75) and q["fr"] == pytest.approx(0.25)
    assert sample_counts(n, 0.5, 1000) == {"en": 750, "fr": 250}
    assert sample_counts(n, 1.0, 1000) == {"en": 900, "fr": 100}  # alpha = 1: proportional


def test_sample_counts_sum_and_round_to_formula():
    n = {"en": 10_000, "fr": 1_500, "ne": 40, "de": 3_333}
    for alpha in (0.3, 0.5, 0.7):
        counts = sample_counts(n, alpha, 2_001)
        assert sum(counts.values()) == 2_001
        total = sum(n.values())
        weights = {k: (v / total) ** alpha for k, v in n.items()}
        for lang in n:
            exact = weights[lang] / sum(weights.values()) * 2_001
            assert abs(counts[lang] - exact) < 1
        assert counts["ne"] > 2_001 * n["ne"] / total  # the low-resource language is up-sampled


def _write_lang_file(path, tag, n):
    path.write_text("".join(f"{tag}{i} word{i % 7} common\n" for i in range(n)), encoding="utf-8")


def test_learn_bpe_sample_follows_counts_and_is_deterministic(tmp_path, capsys):
    _write_lang_file(tmp_path / "train.en", "en", 90)
    _write_lang_file(tmp_path / "train.fr", "fr", 10)
    runs = []
    for seed, name in ((1, "a"), (1, "b"), (2, "c")):
        sample = tmp_path / f"sample.{name}"
        args = [
            "learn-bpe",
            "--langs",
            "fr,en",
            "--input-dir",
            str(tmp_path),
            "-o",
            str(tmp_path / f"codes.{name}"),
            "--codes",
            "50",
            "--alpha",
            "0.5",
            "--sample-size",
            "100",
            "--seed",
            str(seed),
            "--sample-output",
            str(sample),
        ]
        assert cli.main(args) == 0
        runs.append((sample.read_text(encoding="utf-8").splitlines(), (tmp_path / f"codes.{name}").read_bytes()))
    out = capsys.readouterr().out
    # the printed table: lines, p, q, sampled for each language
    assert "en                90   0.9000   0.7500          75" in out
    assert "fr                10   0.1000   0.2500          25" in out
    lines = runs[0][0]
    assert sum(line.startswith("en") for line in lines) == 75
    fr = [line for line in lines if line.startswith("fr")]
    assert len(fr) == 25 and len(set(fr)) == 10  # 25 draws out of 10 lines: each line 2 or 3 times
    assert all(fr.count(x) in (2, 3) for x in set(fr))
    assert runs[0] == runs[1]  # same seed, same sample and codes
    assert runs[0][0] != runs[2][0]  # another seed draws other English lines
    meta = json.loads((tmp_path / "codes.a.meta.json").read_text())
    assert meta["backend"] == "subword-nmt" and meta["alpha"] == 0.5 and meta["codes"] == 50
    assert meta["languages"]["fr"]["sampled"] == 25


@pytest.fixture(scope="module")
def tokenised(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    for lang in ("en", "fr", "de"):
        tokenizer = Tokenizer(lang)
        with open(os.path.join(FIXTURES, f"train.{lang}"), encoding="utf-8") as f:
            (folder / f"train.{lang}").write_text("".join(tokenizer(line) + "\n" for line in f), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "backend,codes,symbol",
    [("subword-nmt", 150, "subword_nmt"), ("subword-nmt", 150, "@@ "), ("sentencepiece", 250, "sentencepiece")],
)
def test_round_trip_through_fairseq_post_process(tokenised, tmp_path, capsys, backend, codes, symbol):
    codes_file = tmp_path / "codes"
    assert (
        cli.main(
            [
                "learn-bpe",
                "--langs",
                "en,fr,de",
                "--input-dir",
                str(tokenised),
                "-o",
                str(codes_file),
                "--codes",
                str(codes),
                "--backend",
                backend,
            ]
        )
        == 0
    )
    for lang in ("en", "fr", "de"):
        out = tmp_path / f"bpe.{lang}"
        assert (
            cli.main(
                [
                    "apply-bpe",
                    "--codes-file",
                    str(codes_file),
                    "--backend",
                    backend,
                    "-i",
                    str(tokenised / f"train.{lang}"),
                    "-o",
                    str(out),
                ]
            )
            == 0
        )
        original = (tokenised / f"train.{lang}").read_text(encoding="utf-8").splitlines()
        pieces = out.read_text(encoding="utf-8").splitlines()
        assert len(pieces) == len(original) == 40
        assert sum(len(p.split()) for p in pieces) > sum(len(o.split()) for o in original)  # words were split
        marker = "@@" if backend == "subword-nmt" else "\u2581"
        assert any(marker in p for p in pieces)
        assert [post_process(p, symbol) for p in pieces] == original


def test_apply_bpe_workers_same_output(tokenised, tmp_path, capsys):
    codes_file = tmp_path / "codes"
    assert (
        cli.main(["learn-bpe", "--langs", "en", "--input-dir", str(tokenised), "-o", str(codes_file), "--codes", "100"])
        == 0
    )
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        assert (
            cli.main(
                [
                    "apply-bpe",
                    "--codes-file",
                    str(codes_file),
                    "-i",
                    str(tokenised / "train.en"),
                    "-o",
                    str(out),
                    "--workers",
                    workers,
                    "--chunk-lines",
                    "7",
                ]
            )
            == 0
        )
        outs.append(out.read_text(encoding="utf-8"))
    assert outs[0] == outs[1] and outs[0].count("\n") == 40


@pytest.fixture(scope="module")
def both_codes(tokenised, tmp_path_factory):
    folder = tmp_path_factory.mktemp("codes")
    for backend, n in (("subword-nmt", 80), ("sentencepiece", 200)):
        assert (
            cli.main(
                [
                    "learn-bpe",
                    "--langs",
                    "en",
                    "--input-dir",
                    str(tokenised),
                    "-o",
                    str(folder / backend),
                    "--codes",
                    str(n),
                    "--backend",
                    backend,
                ]
            )
            == 0
        )
    return folder


@pytest.mark.parametrize(
    "codes,backend,message",
    [
        (
            "sentencepiece",
            "subword-nmt",
            "is a sentencepiece model, not subword-nmt codes: use --backend sentencepiece",
        ),
        (
            "subword-nmt",
            "sentencepiece",
            "is a subword-nmt codes file, not a sentencepiece model: use --backend subword-nmt",
        ),
        ("text", "subword-nmt", "is not a subword-nmt codes file (line 1 is not two symbols separated by a space)"),
        ("text", "sentencepiece", "is not a sentencepiece model"),
        ("missing", "subword-nmt", "no such file"),
    ],
)
def test_codes_not_matching_backend(tokenised, both_codes, tmp_path, capsys, codes, backend, message):
    paths = {"text": str(tokenised / "train.en"), "missing": str(tmp_path / "nope")}
    codes_path = paths.get(codes, str(both_codes / codes))
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "apply-bpe",
                "--codes-file",
                codes_path,
                "--backend",
                backend,
                "-i",
                str(tokenised / "train.en"),
                "-o",
                str(out),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert message in err and err.strip().count("\n") == 0
    assert not out.exists()


def test_learn_bpe_errors(tmp_path, capsys):
    (tmp_path / "train.en").write_text("a b c\n", encoding="utf-8")
    base = ["learn-bpe", "--input-dir", str(tmp_path), "-o", str(tmp_path / "codes")]
    assert cli.main(base + ["--langs", "en,fr"]) == 1
    assert "no train text for 'fr'" in capsys.readouterr().err
    assert cli.main(base + ["--langs", "en", "--alpha", "0"]) == 1
    assert "--alpha must be in (0, 1]" in capsys.readouterr().err
    assert cli.main(base + ["--langs", "en,en"]) == 1
    assert "listed twice" in capsys.readouterr().err
    assert not (tmp_path / "codes").exists()


@pytest.mark.parametrize("backend", ["subword-nmt", "sentencepiece"])
def test_learn_bpe_invalid_utf8(tmp_path, capsys, backend):
    (tmp_path / "train.en").write_bytes(b"hello world\nbad \xff line\nmore words here\n")
    args = [
        "learn-bpe",
        "--langs",
        "en",
        "--input-dir",
        str(tmp_path),
        "-o",
        str(tmp_path / "codes"),
        "--codes",
        "30",
        "--backend",
        backend,
    ]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "train.en:2: not valid UTF-8" in err and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["train.en"]
    assert cli.main(args + ["--skip-bad-lines"]) == 0
    assert "skipped 1 line(s) with invalid UTF-8 (line 2)" in capsys.readouterr().err
