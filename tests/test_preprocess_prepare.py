"""`xlm-preprocess prepare` end to end: the real console script on tiny en/fr/de text with an en-fr pair gives a
data-bin fairseq loads; reruns reuse finished steps only; interrupted runs resume; bad input fails early."""

import json
import os
import shutil

import pytest
from fairseq.data import data_utils

from xlm_fairseq.dictionary import load_dictionary
from xlm_preprocess import cli
from xlm_preprocess import prepare as prepare_module
from xlm_preprocess.tokenizer import Tokenizer

from . import helpers_cli

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "text")


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def run_script(*args):
    return helpers_cli.cli("xlm-preprocess", *args, check=False)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare")
    raw = root / "raw"
    shutil.copytree(FIXTURES, raw)
    (raw / "README").write_text("not a corpus file\n")
    data_bin = root / "data-bin"
    proc = run_script("prepare", str(raw), str(data_bin), "--langs", "en,fr,de", "--codes", "300")
    assert proc.returncode == 0, proc.stderr
    return raw, data_bin, proc.stdout


def test_data_bin_loads_in_fairseq(prepared):
    raw, data_bin, out = prepared
    for step in ("[1/5] tokenize", "[2/5] learn-bpe", "[3/5] apply-bpe", "[4/5] build-dict", "[5/5] binarize"):
        assert step in out
    assert "ignoring 1 file(s)" in out and "README" in out
    d = load_dictionary(str(data_bin / "dict.txt"))
    expected = {
        "train.en": "train.en",
        "valid.de": "valid.de",
        "train.fr": "train.fr",
        "train.de": "train.de",
        "valid.en": "valid.en",
        "valid.fr": "valid.fr",
    }
    for split in ("train", "valid", "test"):
        for lang in ("en", "fr"):
            expected[f"{split}.en-fr.{lang}"] = f"{split}.en-fr.{lang}"
    for prefix, raw_name in expected.items():
        ds = data_utils.load_indexed_dataset(str(data_bin / prefix), d, dataset_impl="mmap")
        assert ds is not None, prefix
        raw_lines = lines_of(raw / raw_name)
        assert len(ds) == len(raw_lines), prefix
        assert all(int(ds[i][-1]) == d.eos() for i in range(len(ds)))
        if prefix.startswith("train."):  # the dictionary comes from train: no <unk>, exact round trip
            lang = prefix.rsplit(".", 1)[1]
            tokenizer = Tokenizer(lang)
            for i in (0, len(ds) - 1):
                assert d.string(ds[i], bpe_symbol="subword_nmt") == tokenizer(raw_lines[i])
    assert not any(name.endswith("-None.en.bin") for name in os.listdir(data_bin))
    assert not any(name.startswith(".") for name in os.listdir(data_bin))


def test_manifest(prepared):
    raw, data_bin, _ = prepared
    m = json.loads((data_bin / "manifest.json").read_text())
    assert m["languages"] == ["de", "en", "fr"] and m["pairs"] == ["en-fr"]
    assert m["splits"] == ["test", "train", "valid"] and m["dataset_impl"] == "mmap"
    assert m["bpe"]["backend"] == "subword-nmt" and m["bpe"]["codes"] == 300 and m["bpe"]["alpha"] == 0.5
    assert m["dictionary"]["size"] == len(load_dictionary(str(data_bin / "dict.txt")))
    assert m["mono"]["de"].keys() == {"train", "valid"}
    assert m["mono"]["en"]["train"]["sentences"] == 40 and m["mono"]["fr"]["valid"]["sentences"] == 5
    assert m["para"]["en-fr"]["train"]["sentences"] == 24 and m["para"]["en-fr"]["test"]["sentences"] == 4
    bpe_en = lines_of(data_bin / "work" / "bpe" / "train.en")
    assert m["mono"]["en"]["train"]["tokens"] == sum(len(x.split()) for x in bpe_en)
    bpe_fr = lines_of(data_bin / "work" / "bpe" / "train.en-fr.fr")
    assert m["para"]["en-fr"]["train"]["tokens"]["fr"] == sum(len(x.split()) for x in bpe_fr)
    assert m["tokenize"]["tokenizers"] == {"de": "moses", "en": "moses", "fr": "moses"}
    assert m["tokenize"]["lowercase_strip_accents"] is False
    assert m["bpe"]["codes_file"] == os.path.join("work", "codes")  # relative: the data-bin can move


def test_rerun_reuses_everything(prepared):
    raw, data_bin, _ = prepared
    before = {name: os.stat(data_bin / name).st_mtime_ns for name in os.listdir(data_bin) if name != "work"}
    proc = run_script("prepare", str(raw), str(data_bin), "--langs", "en,fr,de", "--codes", "300")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("reused") == 12 + 1 + 12 + 1 + 1
    after = {name: os.stat(data_bin / name).st_mtime_ns for name in os.listdir(data_bin) if name != "work"}
    assert before == after


def test_changed_setting_redoes_dependent_steps(prepared, tmp_path, capsys):
    raw, data_bin, _ = prepared
    work = tmp_path / "work"
    shutil.copytree(data_bin / "work", work)
    # --codes changes learn-bpe and everything after it; tokenisation is reused. Stop before binarize.
    original = prepare_module.binarize_corpus
    prepare_module.binarize_corpus = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    try:
        code = cli.main(
            [
                "prepare",
                str(raw),
                str(tmp_path / "bin"),
                "--langs",
                "en,fr,de",
                "--codes",
                "120",
                "--work-dir",
                str(work),
            ]
        )
    finally:
        prepare_module.binarize_corpus = original
    assert code == 130
    out = capsys.readouterr().out
    tokenize, rest = out.split("[2/5]")
    assert tokenize.count("reused") == 12 and "reused" not in rest
    assert json.loads((work / "codes.meta.json").read_text())["codes"] == 120
    assert json.loads((work / "stamps" / "tok.train.en.json").read_text())["params"]["lang"] == "en"
    assert not (tmp_path / "bin" / "manifest.json").exists()


def test_interrupted_run_resumes(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train.en", "valid.en"):
        shutil.copy(os.path.join(FIXTURES, name), raw / name)
    data_bin = tmp_path / "bin"
    calls = []
    original = prepare_module.apply_file

    def failing_apply(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == 2:  # Ctrl-C while the second file is half written
            with open(
                prepare_module.os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.tmp-999999999"), "w"
            ) as f:
                f.write("half")
            raise KeyboardInterrupt
        return original(src, dst, *args, **kwargs)

    prepare_module.apply_file = failing_apply
    try:
        assert cli.main(["prepare", str(raw), str(data_bin), "--langs", "en", "--codes", "100"]) == 130
    finally:
        prepare_module.apply_file = original
    bpe = data_bin / "work" / "bpe"
    assert sorted(os.listdir(bpe)) == [".valid.en.tmp-999999999", "train.en"]  # no half file under a final name
    assert not (data_bin / "manifest.json").exists()
    # a tokenised file truncated behind prepare's back is redone, not reused
    tok_valid = data_bin / "work" / "tok" / "valid.en"
    tok_valid.write_text("truncated\n")
    capsys.readouterr()
    assert cli.main(["prepare", str(raw), str(data_bin), "--langs", "en", "--codes", "100"]) == 0
    out = capsys.readouterr().out
    assert "train.en: reused" in out  # tokenised and BPE'd train.en
    assert "valid.en: 5 lines" in out  # redone
    assert sorted(os.listdir(bpe)) == ["train.en", "valid.en"]  # the stale temp file was removed
    assert len(lines_of(tok_valid)) == 5
    m = json.loads((data_bin / "manifest.json").read_text())
    assert m["mono"]["en"]["valid"]["sentences"] == 5 and m["pairs"] == []


def test_sentencepiece_backend(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train.en", "train.de"):
        shutil.copy(os.path.join(FIXTURES, name), raw / name)
    data_bin = tmp_path / "bin"
    assert (
        cli.main(
            [
                "prepare",
                str(raw),
                str(data_bin),
                "--langs",
                "de,en",
                "--codes",
                "400",
                "--backend",
                "sentencepiece",
                "--alpha",
                "0.7",
                "--workers",
                "2",
            ]
        )
        == 0
    )
    m = json.loads((data_bin / "manifest.json").read_text())
    assert m["bpe"]["backend"] == "sentencepiece" and m["bpe"]["alpha"] == 0.7 and m["bpe"]["codes"] == 400
    d = load_dictionary(str(data_bin / "dict.txt"))
    ds = data_utils.load_indexed_dataset(str(data_bin / "train.de"), d, dataset_impl="mmap")
    assert len(ds) == 40
    first = lines_of(raw / "train.de")[0]
    assert d.string(ds[0], bpe_symbol="sentencepiece") == Tokenizer("de")(first)


def test_pair_bad_line_is_dropped_from_both_sides(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    en = lines_of(os.path.join(FIXTURES, "train.en-fr.en"))
    fr = lines_of(os.path.join(FIXTURES, "train.en-fr.fr"))
    (raw / "train.en-fr.en").write_bytes("\n".join(en).encode() + b"\n")
    fr_bytes = [x.encode() for x in fr]
    fr_bytes[3] = "La réunion".encode("latin-1")  # one non-UTF-8 line on the French side
    (raw / "train.en-fr.fr").write_bytes(b"\n".join(fr_bytes) + b"\n")
    data_bin = tmp_path / "bin"
    args = ["prepare", str(raw), str(data_bin), "--langs", "en,fr", "--codes", "100"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "train.en-fr.fr:4: not valid UTF-8" in err and "--skip-bad-lines" in err
    assert cli.main(args + ["--skip-bad-lines"]) == 0
    out = capsys.readouterr().out
    assert "train.en-fr.fr: 23 lines" in out and "train.en-fr.en: 23 lines" in out
    m = json.loads((data_bin / "manifest.json").read_text())
    assert m["para"]["en-fr"]["train"]["sentences"] == 23 and m["languages"] == ["en", "fr"]
    tok_en = lines_of(data_bin / "work" / "tok" / "train.en-fr.en")
    assert tok_en[3] == Tokenizer("en")(en[4])  # line 4 dropped on both sides, alignment kept


def _raw_dir(tmp_path, files):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, content in files.items():
        (raw / name).write_bytes(content)
    return raw


@pytest.mark.parametrize(
    "files,langs,message",
    [
        (
            {"train.en-fr.en": b"a\nb\nc\n", "train.en-fr.fr": b"x\ny\n"},
            "en,fr",
            "the two sides of train en-fr differ in length: RAW/train.en-fr.en has 3 lines, RAW/train.en-fr.fr has 2",
        ),
        ({"train.en": b"Hello.\n", "train.de": b""}, "en,de", "RAW/train.de is empty"),
        ({"train.en": b"Hello.\n", "train.de": b"\n  \n"}, "en,de", "RAW/train.de is empty"),
        ({"train.en": b"Hello.\n"}, "en,it", "no text for language 'it' in RAW"),
        ({"train.en": b"Hello.\n", "valid.fr": b"Salut.\n"}, "en,fr", "no training text for 'fr'"),
        ({"train.en-fr.en": b"Hello.\n"}, "en,fr", "RAW/train.en-fr.fr is missing (its other side train.en-fr.en"),
        ({"train.en": b"Hello.\n"}, "en,EN", "--langs: 'EN' is not a language code"),
        ({"train.en": b"ok\n\xc3\x28 bad\n"}, "en", "RAW/train.en:2: not valid UTF-8"),
    ],
)
def test_bad_input_fails_with_one_line(tmp_path, files, langs, message):
    raw = _raw_dir(tmp_path, files)
    data_bin = tmp_path / "bin"
    proc = run_script("prepare", str(raw), str(data_bin), "--langs", langs)
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert message.replace("RAW", str(raw)) in err
    assert "\n" not in err and "Traceback" not in err
    if "UTF-8" not in message:  # checked before anything is written
        assert not data_bin.exists()
    else:
        assert os.listdir(data_bin / "work" / "tok") == []


def test_unknown_language_for_language_specific_tokenizer(tmp_path, capsys):
    raw = _raw_dir(tmp_path, {"train.en": b"Hello.\n"})
    assert cli.main(["prepare", str(raw), str(tmp_path / "bin"), "--langs", "en", "--tokenizer", "jieba"]) == 1
    assert "--tokenizer jieba tokenises 'zh' only, not 'en'" in capsys.readouterr().err
