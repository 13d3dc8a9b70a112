"""build-dict: the shared dict.txt convention (specials at 4..13, first word 14), counts sorted, --max-vocab
and --min-count, loading with fairseq's Dictionary."""

import pytest
from fairseq.data import Dictionary

from xlm_fairseq.dictionary import FIRST_WORD_ID, SPECIALS, load_dictionary, mask_index
from xlm_preprocess import cli


@pytest.fixture
def texts(tmp_path):
    (tmp_path / "a.en").write_text("the cat sat on the mat .\nthe dog ran .\n", encoding="utf-8")
    (tmp_path / "b.fr").write_text(
        "le chat est sur le tapis .\nle chien court .\n<unk> <special3> x\n", encoding="utf-8"
    )
    return tmp_path


def build(texts, *extra):
    out = texts / "dict.txt"
    assert cli.main(["build-dict", "-i", str(texts / "a.en"), str(texts / "b.fr"), "-o", str(out), *extra]) == 0
    return out


def test_specials_ids_and_order(texts, capsys):
    path = build(texts)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:10] == [f"{s} 0" for s in SPECIALS]
    d = Dictionary.load(str(path))
    assert [d[i] for i in range(4, 14)] == SPECIALS
    assert (d.bos(), d.pad(), d.eos(), d.unk()) == (0, 1, 2, 3)
    assert FIRST_WORD_ID == 14
    # "." 4 times, "the" 3, "le" 3 -> ties in code-point order
    assert [d[i] for i in range(14, 17)] == [".", "le", "the"]
    assert [d.count[i] for i in range(14, 17)] == [4, 3, 3]
    counts = [d.count[i] for i in range(14, len(d))]
    assert counts == sorted(counts, reverse=True)
    # the tokens that are dictionary symbols already are not added again
    assert d.index("<unk>") == 3 and d.index("<special3>") == 7
    assert len(d) == 14 + len(
        {
            "the",
            "cat",
            "sat",
            "on",
            "mat",
            ".",
            "dog",
            "ran",
            "le",
            "chat",
            "est",
            "sur",
            "tapis",
            "chien",
            "court",
            "x",
        }
    )
    loaded = load_dictionary(str(path))
    assert mask_index(loaded) == 5
    assert "build-dict:" in capsys.readouterr().out


def test_max_vocab_and_min_count(texts, capsys):
    d = Dictionary.load(str(build(texts, "--max-vocab", "17")))
    assert len(d) == 17 and [d[i] for i in range(14, 17)] == [".", "le", "the"]
    d = Dictionary.load(str(build(texts, "--min-count", "2")))
    assert [d[i] for i in range(14, len(d))] == [".", "le", "the"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--max-vocab", "14"], "--max-vocab must be more than 14"),
        (["--min-count", "0"], "--min-count must be at least 1"),
    ],
)
def test_bad_flags(texts, capsys, args, message):
    assert cli.main(["build-dict", "-i", str(texts / "a.en"), "-o", str(texts / "d.txt"), *args]) == 1
    assert message in capsys.readouterr().err
    assert not (texts / "d.txt").exists()


def test_blank_or_missing_input(tmp_path, capsys):
    (tmp_path / "blank").write_text("\n \n", encoding="utf-8")
    assert cli.main(["build-dict", "-i", str(tmp_path / "blank"), "-o", str(tmp_path / "d.txt")]) == 1
    assert "the files are blank" in capsys.readouterr().err
    assert cli.main(["build-dict", "-i", str(tmp_path / "none"), "-o", str(tmp_path / "d.txt")]) == 1
    assert "none: no such file" in capsys.readouterr().err
    assert not (tmp_path / "d.txt").exists()
