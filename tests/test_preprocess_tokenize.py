"""xlm-preprocess tokenize: Moses normalisation + tokenisation on real sentences, lowercase/accent removal,
parallel workers, zh/ja/th extras, bad input."""

import os
import sys

import pytest

from xlm_preprocess import cli
from xlm_preprocess.tokenizer import Tokenizer, lowercase_strip_accents

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "text")


def tok(lang, text, **kw):
    return Tokenizer(lang, **kw)(text)


@pytest.mark.parametrize(
    "lang,text,expected",
    [
        ("en", "Hello, world!", "Hello , world !"),
        ("en", "We didn't expect the museum to be closed.", "We didn 't expect the museum to be closed ."),
        ("en", "Dr. Smith recommended two weeks of rest.", "Dr. Smith recommended two weeks of rest ."),
        # replace-unicode-punctuation + normalize-punctuation: curly quotes, em dash, ellipsis
        ("en", "He said \u201cyes\u201d \u2014 then left\u2026", 'He said " yes " - then left ...'),
        (
            "en",
            "The ticket costs 15 euros (students pay half price).",
            "The ticket costs 15 euros ( students pay half price ) .",
        ),
        # French elisions keep the apostrophe on the left part; guillemets become plain quotes
        ("fr", "L'homme qu'on voit est là, n'est-ce pas ?", "L' homme qu' on voit est là , n' est-ce pas ?"),
        ("fr", "\u00ab Oui \u00bb, dit-elle.", '" Oui " , dit-elle .'),
        (
            "de",
            "\u201eGut\u201c, sagte er. Die Straße ist 5,5 km lang, z.B. in München.",
            '" Gut " , sagte er . Die Straße ist 5,5 km lang , z.B. in München .',
        ),
        ("de", "Könnten Sie bitte etwas langsamer sprechen?", "Könnten Sie bitte etwas langsamer sprechen ?"),
    ],
)
def test_moses_tokenisation(lang, text, expected):
    assert tok(lang, text) == expected


def test_unknown_language_falls_back_to_generic_rules():
    # no English apostrophe rule for an unknown code: Moses' generic split
    assert tok("xx", "Mr. Smith isn't here.") == "Mr. Smith isn ' t here ."


def test_non_printing_characters_and_line_separators_become_spaces():
    # remove-non-printing-char.perl replaces \p{C} by a space; U+2028 must not survive as a line break
    assert tok("en", "one\ttwo\u200bthree\u2028four\x85five") == "one two three four five"


def test_escape_is_off():
    assert tok("en", 'Tom & Jerry <3 "quotes"') == 'Tom & Jerry < 3 " quotes "'


def test_lowercase_strip_accents():
    assert lowercase_strip_accents("Élève à l'École, ÜBER Ça") == "eleve a l'ecole, uber ca"
    assert lowercase_strip_accents("Straße ĄĘ Ἀθῆναι") == "straße ae αθηναι"
    assert tok("fr", "L'Élève est là.", lowercase=True) == "l' eleve est la ."


def test_workers_keep_order(tmp_path, capsys):
    src = tmp_path / "in.en"
    lines = open(os.path.join(FIXTURES, "train.en"), encoding="utf-8").read().splitlines()
    src.write_text("\n".join(lines * 2) + "\n", encoding="utf-8")
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli.main(["tokenize", "--lang", "en", "-i", str(src), "-o", str(one)]) == 0
    assert (
        cli.main(["tokenize", "--lang", "en", "-i", str(src), "-o", str(two), "--workers", "2", "--chunk-lines", "3"])
        == 0
    )
    out_one = one.read_text(encoding="utf-8").splitlines()
    assert out_one == two.read_text(encoding="utf-8").splitlines()
    assert len(out_one) == 80
    assert out_one[2] == '" Where did you put the keys ? " she asked , looking under the table .'


def test_stdin_to_stdout(monkeypatch, capsysbinary):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("Hello, world!\nÇa va?\n".encode())))
    assert cli.main(["tokenize", "--lang", "fr"]) == 0
    assert capsysbinary.readouterr().out.decode() == "Hello , world !\nÇa va ?\n"


@pytest.mark.parametrize(
    "lang,module,extra", [("zh", "jieba", "zh"), ("ja", "fugashi", "ja"), ("th", "pythainlp", "th")]
)
def test_missing_extra_names_it(tmp_path, monkeypatch, capsys, lang, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # behaves as not installed
    src = tmp_path / f"in.{lang}"
    src.write_text("text\n", encoding="utf-8")
    assert cli.main(["tokenize", "--lang", lang, "-i", str(src), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"pip install 'xlm_fairseq[{extra}]'" in err and module in err
    assert not (tmp_path / "out").exists()


def test_language_specific_tokenizer_for_other_language_errors(tmp_path, capsys):
    src = tmp_path / "in.fr"
    src.write_text("Bonjour.\n", encoding="utf-8")
    assert cli.main(["tokenize", "--lang", "fr", "--tokenizer", "pythainlp", "-i", str(src)]) == 1
    assert "--tokenizer pythainlp tokenises 'th' only, not 'fr'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--lang", "EN"], "'EN' is not a language code"),
        (["--lang", "en", "-i", "MISSING"], "MISSING: no such file"),
        (["--lang", "en", "-i", "EMPTY"], "EMPTY is empty"),
        (["--lang", "en", "-i", "BAD"], "BAD:3: not valid UTF-8 (byte 0xe9 at column 4)"),
        (["--lang", "en", "-i", "GOOD", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_bad_input(tmp_path, capsys, args, message):
    (tmp_path / "EMPTY").write_bytes(b"")
    (tmp_path / "BAD").write_bytes(b"fine\nalso fine\ncaf\xe9 latin-1\nlast\n")
    (tmp_path / "GOOD").write_bytes(b"fine\n")
    names = {"MISSING", "EMPTY", "BAD", "GOOD"}
    args = [str(tmp_path / a) if a in names else a for a in args]
    out = tmp_path / "out.txt"
    assert cli.main(["tokenize"] + args + ["-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert message.replace("MISSING", "").replace("EMPTY", "").replace("BAD", "") in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_skip_bad_lines_counts_them(tmp_path, capsys):
    (tmp_path / "bad").write_bytes(b"one.\n\xff\xfe two\nthree.\nfour \xc3\n")
    out = tmp_path / "out"
    assert cli.main(["tokenize", "--lang", "en", "-i", str(tmp_path / "bad"), "-o", str(out), "--skip-bad-lines"]) == 0
    assert out.read_text(encoding="utf-8") == "one .\nthree .\n"
    assert "skipped 2 line(s) with invalid UTF-8 (line 2, 4)" in capsys.readouterr().err
