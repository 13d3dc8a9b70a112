"""The DDTP corpus builder (preprocess/ddtp.py) on real Debian bookworm snippets (tests/fixtures/ddtp/)."""

import argparse
import collections
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from xlm_preprocess import ddtp
from xlm_preprocess.ddtp_text import clean, paragraph_units, split_long_description, split_sentences

from .helpers_cli import ENV, run

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ddtp")
PREFIX = "deb.debian.org_debian_dists_bookworm_main_"
EN = os.path.join(FIXTURE, PREFIX + "i18n_Translation-en")  # plain
FR = os.path.join(FIXTURE, PREFIX + "i18n_Translation-fr.lz4")  # lz4
DE = os.path.join(FIXTURE, PREFIX + "i18n_Translation-de.gz")  # gzip
PACKAGES = os.path.join(FIXTURE, PREFIX + "binary-amd64_Packages")
MD5_0AD = "d943033bedada21853d2ae54a2578a7b"
MD5_0AD_DATA = "26581e685027d5ae84824362a4ba59ee"
SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def descs():
    return {
        "en": ddtp.parse_translation(ddtp.read_index(EN), "en"),
        "fr": ddtp.parse_translation(ddtp.read_index(FR), "fr"),
        "de": ddtp.parse_translation(ddtp.read_index(DE), "de"),
    }


@pytest.fixture(scope="module")
def labels(descs):
    by_md5, by_package = ddtp.parse_packages(ddtp.read_index(PACKAGES))
    return ddtp.description_labels(by_md5, by_package, descs["en"])


def by_package(table, name):
    return next(d for d in table.values() if d.package == name)


def run_main(tmp_path, *extra, out="raw"):
    parser = ddtp.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        [
            "--langs",
            "en,fr,de",
            "--out",
            str(tmp_path / out),
            "--from-lists",
            FIXTURE,
            "--valid-frac",
            "0.2",
            "--test-frac",
            "0.2",
            *extra,
        ]
    )
    return ddtp.main(args), tmp_path / out


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


# ------------------------------------------------------------------------------------------------ parsing


def test_read_index_every_compression(tmp_path):
    text = ddtp.read_index(EN)
    assert text.startswith("Package: 0ad\nDescription-md5: " + MD5_0AD)
    import bz2
    import lzma

    (tmp_path / "a.xz").write_bytes(lzma.compress(text.encode()))
    (tmp_path / "a.bz2").write_bytes(bz2.compress(text.encode()))
    (tmp_path / "a.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("a.xz", "a.bz2", "a.gz"):
        assert ddtp.read_index(str(tmp_path / name)) == text
    assert "Description-fr:" in ddtp.read_index(FR) and "Description-de:" in ddtp.read_index(DE)


def test_stanzas_continuation_lines_and_paragraph_breaks():
    stanza = next(s for s in ddtp.iter_stanzas(ddtp.read_index(EN)) if s["Package"] == ["0ad-data"])
    desc = stanza["Description-en"]
    assert desc[0] == "Real-time strategy game of ancient warfare (data files)"
    assert desc[1].startswith("0 A.D. (pronounced") and "." in desc  # " ." became "."
    d = ddtp.parse_translation(ddtp.read_index(EN), "en")[MD5_0AD_DATA]
    assert d.package == "0ad-data" and len(d.paragraphs) == 2
    assert d.paragraphs[1] == ["This package contains the main data files required by 0 A.D."]


def test_parse_translation_files(descs):
    assert len(descs["en"]) == 47 and len(descs["fr"]) == 40 and len(descs["de"]) == 39
    fr = descs["fr"][MD5_0AD]
    assert fr.title == "jeu de stratégie en temps réel de guerres anciennes"
    # a translation line break inside a sentence ("d'un jeu\n pseudo-historique") is joined with one space
    assert "il s'agit d'un jeu pseudo-historique de guerre/économie" in fr.paragraphs[0][1]


# -------------------------------------------------------------------------------------------- sentences


def test_sentences_of_real_descriptions(descs):
    en, fr, de = (descs[l][MD5_0AD].paragraphs[0] for l in ("en", "fr", "de"))
    # "500 B.C. and 500 A.D. The project": B.C. + lower case is no boundary, A.D. + capital is one
    assert en[1].endswith("between 500 B.C. and 500 A.D.") and en[2].startswith("The project is highly")
    assert fr[1].endswith("avant J.C. et 500 après J.C.")  # same rule in French
    assert len(en) == len(fr) == len(de) == 3
    dibbler = {l: by_package(descs[l], "dibbler-server").paragraphs[0] for l in ("en", "de")}
    assert dibbler["en"][0].startswith("The Dibbler server supports both stateful (i.e. IPv6 address granting)")
    assert "(z.B. die Vergabe von IPv6-Adressen)" in dibbler["de"][0]
    assert len(dibbler["en"]) == len(dibbler["de"]) == 3
    eyed3 = by_package(descs["en"], "eyed3").paragraphs[0]
    assert "It supports version 1.0,1.1,2.3 and 2.4 of the ID3 standard." in eyed3


def test_sentence_rules():
    assert split_sentences("It supports e.g. PNG. Version 1.2 is out... More soon! Really? Yes.") == [
        "It supports e.g. PNG.",
        "Version 1.2 is out...",
        "More soon!",
        "Really?",
        "Yes.",
    ]
    assert split_sentences("Das ist z. B. gut, d.h. sehr gut. Am 1. Januar kommt es. Ende usw. Neu.") == [
        "Das ist z. B. gut, d.h. sehr gut.",
        "Am 1. Januar kommt es.",
        "Ende usw.",
        "Neu.",
    ]
    assert split_sentences("C’est « génial ». Vraiment ! Oui ? Non… Peut-être.") == [
        "C’est « génial ».",
        "Vraiment !",
        "Oui ?",
        "Non…",
        "Peut-être.",
    ]
    assert split_sentences("Written in C. It is fast (see www.example.org.) Done") == [
        "Written in C.",
        "It is fast (see www.example.org.)",
        "Done",
    ]
    assert split_sentences("这是一个库。它提供了功能。") == ["这是一个库。", "它提供了功能。"]
    assert clean(" a\u00a0 b\u22c5:\t c ") == "a b : c"


def test_list_items_are_units_without_markers(descs):
    en, fr = (by_package(descs[l], "aa3d").paragraphs for l in ("en", "fr"))
    assert en[1] == [
        "Features:",
        "High quality ASCII art stereogram rendering",
        "Highly configurable",
        "User friendly command line interface (including full online help)",
    ]
    assert fr[1][1] == "rendu de haute qualité d'art ASCII de stéréogramme ;"  # "  – " marker dropped
    bib = by_package(descs["en"], "bibtex2html").paragraphs
    assert bib[1] == [
        "aux2bib extracts a BibTeX database consisting of only the entries that are refereed by an aux file."
    ]  # the deeper-indented line continues the item
    assert paragraph_units(["  o first", "  o second", "o is a letter here"]) == [
        "first",
        "second",
        "o is a letter here",
    ]
    assert split_long_description(["One.", ".", "  ", ".", "Two. Three."]) == [["One."], ["Two.", "Three."]]


# ------------------------------------------------------------------------------------------- alignment


def test_alignment_filters_by_paragraph_and_sentence_counts(descs):
    en, fr = descs["en"][MD5_0AD_DATA], descs["fr"][MD5_0AD_DATA]
    stats = collections.Counter()
    pairs = ddtp.align_description(en, fr, stats)
    assert pairs[0] == (en.title, fr.title) and len(pairs) == 1 + 3 + 1
    assert pairs[-1] == (
        "This package contains the main data files required by 0 A.D.",
        "Ce paquet fournit les principaux fichiers de données nécessaires à 0 A.D.",
    )
    fewer = ddtp.Description("x", MD5_0AD_DATA, fr.title, fr.lines[: fr.lines.index(".")])
    assert ddtp.align_description(en, fewer, stats) == [(en.title, fr.title)]
    assert stats["paragraph_count_mismatch"] == 1
    # a paragraph whose sentence counts differ gives nothing; the others still do
    merged = ddtp.Description("x", MD5_0AD_DATA, fr.title, [" ".join(fr.lines[:8]).replace(".", ",")] + fr.lines[8:])
    got = ddtp.align_description(en, merged, stats)
    assert stats["sentence_count_mismatch"] == 1 and len(got) == 2


def test_md5_alignment_and_dedup(descs, labels):
    corpus = ddtp.build_corpus(descs, labels, ["de", "en", "fr"], 0.2, 0.2)
    allpairs = [p for s in SPLITS for p in corpus["parallel"][("en", "fr")][s]]
    assert len(allpairs) == len(set(allpairs))
    # 0ad, 0ad-data and 0ad-data-common share their first paragraph: its pairs appear once
    shared = [p for p in allpairs if p[0].startswith("The project is highly ambitious")]
    assert len(shared) == 1 and shared[0][1].startswith("Le projet est très ambitieux")
    titles = {(descs["en"][m].title, d.title) for m, d in descs["fr"].items() if m in descs["en"]}
    assert titles <= set(allpairs) | {p for p in titles if p[0] == p[1]}
    de_pairs = {p for s in SPLITS for p in corpus["parallel"][("de", "en")][s]}
    assert ("ASCII-Kunst Stereogramm-Generator", "ASCII art stereogram generator") in de_pairs  # (de, en) order
    assert all(a != b for a, b in allpairs)
    assert corpus["stats"]["descriptions"] == {"de": 39, "en": 43, "fr": 40}  # English-only ones left out


# ---------------------------------------------------------------------------------------------- splits


def test_same_description_same_split_in_every_language(descs, labels):
    corpus = ddtp.build_corpus(descs, labels, ["de", "en", "fr"], 0.2, 0.2)
    where = {}
    for (a, b), by_split in corpus["parallel"].items():
        for s, pairs in by_split.items():
            for pa, pb in pairs:
                where.setdefault((a, pa), set()).add(s)
                where.setdefault((b, pb), set()).add(s)
    checked = collections.Counter()
    for m in descs["en"]:
        if m in descs["fr"] and m in descs["de"]:
            expected = SPLITS[ddtp.split_of(m, 0.2, 0.2)]
            for lang in ("en", "fr", "de"):
                got = where.get((lang, descs[lang][m].title))
                if got:
                    assert got == {expected}, (lang, descs[lang][m].package)
                    checked[expected] += 1
    assert set(checked) == set(SPLITS)


# split_of(md5, 0.2, 0.2) of fixture descriptions, two per split. The split is a hash (sha1) of the md5 text
# alone, the same on every machine and Python version; a change here would move descriptions between the
# train/valid/test sets of corpora users have already built.
PINNED_SPLITS = {
    "06fa496658789fbfc6514726e1dffdb5": 0,
    "0ff9bf0c61cc77f908f4504f7162ba44": 0,
    "53498ca1a6859f13dd4042c1f0a68669": 1,
    "618cfc32b0d16e74aea7a47ac42a2ec2": 1,
    "085a469fb5f38916d82842e097c6fda4": 2,
    MD5_0AD: 2,
}


def test_split_is_fixed_by_the_md5_across_processes():
    """The same split in this process, in a fresh interpreter whose str hash is salted differently (so Python's
    hash() would disagree), and as pinned; the fractions move the thresholds, not the hash."""
    assert {m: ddtp.split_of(m, 0.2, 0.2) for m in PINNED_SPLITS} == PINNED_SPLITS
    code = "import sys; from xlm_preprocess import ddtp; print([ddtp.split_of(m, 0.2, 0.2) for m in sys.argv[1:]])"
    for seed in ("1", "2"):
        proc = run([sys.executable, "-c", code, *PINNED_SPLITS], env=dict(ENV, PYTHONHASHSEED=seed))
        assert json.loads(proc.stdout) == list(PINNED_SPLITS.values())
    assert all(ddtp.split_of(m, 0.0, 0.0) == 0 for m in PINNED_SPLITS)  # no valid/test share: all train
    assert all(ddtp.split_of(m, 1.0, 0.0) == 1 for m in PINNED_SPLITS)


def test_no_valid_or_test_sentence_in_train(descs, labels):
    corpus = ddtp.build_corpus(descs, labels, ["de", "en", "fr"], 0.2, 0.2)
    for lang in ("en", "fr", "de"):
        seen = {s: set() for s in SPLITS}
        for s in SPLITS:
            seen[s].update(corpus["mono"][lang][s])
            for (a, b), by_split in corpus["parallel"].items():
                if lang in (a, b):
                    seen[s].update(p[(a, b).index(lang)] for p in by_split[s])
        assert not (seen["train"] & seen["valid"]) and not (seen["train"] & seen["test"])
        assert not (seen["valid"] & seen["test"])


def test_disjoint_mono_uses_disjoint_descriptions(descs, labels):
    corpus = ddtp.build_corpus(descs, labels, ["de", "en", "fr"], 0.2, 0.2, disjoint_mono=True)
    md5s = corpus["mono_md5s"]
    assert md5s["en"] and md5s["fr"] and md5s["de"]
    assert not (md5s["en"] & md5s["fr"]) and not (md5s["en"] & md5s["de"])
    for lang in ("en", "fr"):
        allowed = {s for m in md5s[lang] for s in ddtp.description_sentences(descs[lang][m])}
        mono = [x for s in SPLITS for x in corpus["mono"][lang][s]]
        assert mono and set(mono) <= allowed
    plain = ddtp.build_corpus(descs, labels, ["de", "en", "fr"], 0.2, 0.2)
    assert len(plain["mono"]["en"]["train"]) > len(corpus["mono"]["en"]["train"])
    # parallel valid/test never reach train monolingual text
    held = {p[0] for s in ("valid", "test") for p in corpus["parallel"][("en", "fr")][s]}
    assert held and not held & set(corpus["mono"]["en"]["train"])


def test_cap_is_deterministic(descs, labels):
    a = ddtp.build_corpus(descs, labels, ["en", "fr"], 0.2, 0.2, max_sentences=20)
    b = ddtp.build_corpus(descs, labels, ["en", "fr"], 0.2, 0.2, max_sentences=20)
    assert len(a["mono"]["fr"]["train"]) == 20 and len(a["parallel"][("en", "fr")]["train"]) == 20
    assert a["mono"] == b["mono"] and a["parallel"] == b["parallel"]


# ---------------------------------------------------------------------------------------------- labels


def test_labels_from_section(descs, labels):
    assert ddtp.section_label("non-free/libs") == "libs" and ddtp.section_label("contrib/games") == "games"
    assert ddtp.section_label("python") == "python"
    assert labels[MD5_0AD] == "games"
    assert labels[by_package(descs["en"], "python3-pyinotify").md5] == "python"
    from collections import Counter

    tie = {"m": Counter({"utils": 2, "admin": 2, "net": 1})}
    assert ddtp.description_labels(tie, {}, {"m": descs["en"][MD5_0AD]}) == {"m": "admin"}
    assert ddtp.description_labels({}, {"0ad": "games"}, {"z": descs["en"][MD5_0AD]}) == {"z": "games"}
    corpus = ddtp.build_corpus(descs, labels, ["en", "fr"], 0.2, 0.2, cls_text="title+para")
    items = [it for s in SPLITS for it in corpus["cls"]["fr"][s]]
    assert any(
        t.startswith("jeu de stratégie en temps réel de guerres anciennes 0 A.D (prononcez") and l == "games"
        for t, l in items
    )


# ------------------------------------------------------------------------------------------ end to end


def test_main_from_lists_writes_layout_and_manifest(tmp_path):
    rc, out = run_main(tmp_path)
    assert rc == 0
    expected = {"ddtp_manifest.json"}
    for s in SPLITS:
        expected |= {f"{s}.de-en.de", f"{s}.de-en.en", f"{s}.en-fr.en", f"{s}.en-fr.fr"}
        for lang in ("de", "en", "fr"):
            expected |= {f"{s}.{lang}", f"{s}.cls.{lang}", f"{s}.cls.{lang}.label"}
    assert set(os.listdir(out)) == expected  # no temporary leftovers
    manifest = json.loads((out / "ddtp_manifest.json").read_text())
    for s in SPLITS:
        n_pairs = manifest["parallel"]["en-fr"][s]
        assert len(lines(out / f"{s}.en-fr.en")) == len(lines(out / f"{s}.en-fr.fr")) == n_pairs
        for lang in ("de", "en", "fr"):
            assert len(lines(out / f"{s}.{lang}")) == manifest["mono"][lang][s] > 0
            labs = lines(out / f"{s}.cls.{lang}.label")
            assert len(lines(out / f"{s}.cls.{lang}")) == len(labs) == manifest["cls"][lang][s]
            assert collections.Counter(labs) == manifest["labels"][lang][s]
    assert all(x.strip() == x and x for f in expected - {"ddtp_manifest.json"} for x in lines(out / f))
    assert manifest["langs"] == ["de", "en", "fr"] and manifest["options"]["valid_frac"] == 0.2
    assert manifest["stats"]["pairs"]["en-fr"]["descriptions"] == 40
    assert "games" in manifest["labels"]["en"]["train"] or "games" in manifest["labels"]["en"]["test"]
    # deterministic: a second run writes the same bytes
    rc2, out2 = run_main(tmp_path, out="raw2")
    assert rc2 == 0 and all((out / f).read_bytes() == (out2 / f).read_bytes() for f in expected)


def test_main_disjoint_mono_and_all_pairs(tmp_path):
    rc, out = run_main(tmp_path, "--disjoint-mono", "--all-pairs")
    assert rc == 0
    assert (out / "train.de-fr.de").exists()
    en_mono = {x for s in SPLITS for x in lines(out / f"{s}.en")}
    _, plain = run_main(tmp_path, out="plain")
    assert en_mono < {x for s in SPLITS for x in lines(plain / f"{s}.en")}


def test_no_train_pairs_writes_the_same_text_but_the_training_pairs(tmp_path):
    """Unsupervised MT trains on no pair: --no-train-pairs leaves them out (the demo prepares less), and changes
    nothing else (the valid and test pairs, the monolingual and classification text, byte for byte)."""
    _, out = run_main(tmp_path, "--disjoint-mono", "--no-train-pairs")
    _, full = run_main(tmp_path, "--disjoint-mono", out="full")
    names = set(os.listdir(out))
    assert names == {n for n in os.listdir(full) if not re.match(r"train\.\w+-\w+\.", n)}
    assert "valid.en-fr.fr" in names and "train.en-fr.fr" not in names and "train.en" in names
    assert all((out / n).read_bytes() == (full / n).read_bytes() for n in names - {"ddtp_manifest.json"})
    manifest = json.loads((out / "ddtp_manifest.json").read_text())
    assert "train" not in manifest["parallel"]["en-fr"] and manifest["options"]["no_train_pairs"] is True


def test_a_second_run_replaces_the_first(tmp_path):
    _, out = run_main(tmp_path, "--all-pairs")
    assert (out / "train.de-fr.fr").exists() and (out / "test.cls.de.label").exists()
    (out / "notes.txt").write_text("mine")
    run_main(tmp_path, "--langs", "en,fr")
    names = set(os.listdir(out))
    assert "train.en-fr.fr" in names and "notes.txt" in names
    assert not any(".de" in n or "de-" in n for n in names)


def test_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(ddtp.DdtpError, match="no Translation-it file"):
        run_main(tmp_path, "--langs", "en,it")
    parser = ddtp.add_arguments(argparse.ArgumentParser())

    def main(*argv):
        return ddtp.main(parser.parse_args(["--out", str(tmp_path / "o"), *argv]))

    with pytest.raises(ddtp.DdtpError, match="no such directory"):
        main("--langs", "en,fr", "--from-lists", str(tmp_path / "missing"))
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(EN, partial)
    shutil.copy(FR, partial)
    with pytest.raises(ddtp.DdtpError, match="no Packages index"):
        main("--langs", "en,fr", "--from-lists", str(partial))
    with pytest.raises(ddtp.DdtpError, match="--langs must include en"):
        main("--langs", "fr,de", "--from-lists", FIXTURE)
    with pytest.raises(ddtp.DdtpError, match="'en-gb2' is not a DDTP language code"):
        main("--langs", "en,en-gb2", "--from-lists", FIXTURE)
    # zero aligned pairs: French descriptions whose md5 matches no English one
    shutil.copy(PACKAGES, partial)
    os.remove(partial / os.path.basename(FR))
    fr_text = ddtp.read_index(FR).replace("Description-md5: ", "Description-md5: 0")
    (partial / "Translation-fr").write_text(fr_text)
    with pytest.raises(ddtp.DdtpError, match=r"pair en-fr: no aligned sentence pair .*0 with the same md5"):
        main("--langs", "en,fr", "--from-lists", str(partial))
    assert not (tmp_path / "o").exists()


def test_through_the_xlm_preprocess_cli(tmp_path, capsys):
    from xlm_preprocess import cli

    argv = ["ddtp", "--langs", "en,fr", "--out", str(tmp_path / "raw"), "--from-lists", FIXTURE]
    assert cli.main(argv) == 0 and (tmp_path / "raw" / "train.en-fr.fr").exists()
    capsys.readouterr()
    assert cli.main(argv[:2] + ["en,sk"] + argv[3:]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xlm-preprocess ddtp: error: no Translation-sk file")


def test_language_codes_are_lower_case_file_names(tmp_path):
    lists = tmp_path / "lists"
    shutil.copytree(FIXTURE, lists)
    import lz4.frame

    text = ddtp.read_index(str(lists / os.path.basename(FR)))
    os.remove(lists / os.path.basename(FR))
    with open(lists / (PREFIX + "i18n_Translation-pt%5fBR.lz4"), "wb") as f:  # apt's spelling of pt_BR
        f.write(lz4.frame.compress(text.replace("Description-fr:", "Description-pt_BR:").encode()))
    parser = ddtp.add_arguments(argparse.ArgumentParser())
    ddtp.main(parser.parse_args(["--langs", "en,pt_BR", "--out", str(tmp_path / "o"), "--from-lists", str(lists)]))
    assert (tmp_path / "o" / "train.en-pt_br.pt_br").exists() and (tmp_path / "o" / "train.pt_br").exists()


def test_from_lists_picks_the_suite(tmp_path):
    lists = tmp_path / "lists"
    shutil.copytree(FIXTURE, lists)
    decoy = lists / "deb.debian.org_debian_dists_trixie_main_i18n_Translation-fr"
    decoy.write_text("Package: x\nDescription-md5: " + MD5_0AD + "\nDescription-fr: leurre\n\n")
    translations, packages = ddtp.find_index_files(str(lists), ["en", "fr"], "bookworm", ["main"])
    assert translations["fr"] == [str(lists / os.path.basename(FR))] and len(packages) == 1
    parser = ddtp.add_arguments(argparse.ArgumentParser())
    with pytest.raises(ddtp.DdtpError, match="no Translation-en .*suite trixie.*lists for suite.s. bookworm, trixie"):
        ddtp.main(
            parser.parse_args(
                ["--langs", "en,fr", "--out", str(tmp_path / "o"), "--from-lists", str(lists), "--suite", "trixie"]
            )
        )


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch, descs, labels):
    corpus = ddtp.build_corpus(descs, labels, ["en", "fr"], 0.2, 0.2)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ddtp.json, "dump", boom)
    with pytest.raises(KeyboardInterrupt):
        ddtp.write_outputs(corpus, str(tmp_path / "out"), {})
    assert os.listdir(tmp_path / "out") == []


# ----------------------------------------------------------------------------------------------- apt


def test_fetch_runs_a_private_apt_update(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        opts = dict(c.split("=", 1) for c in cmd if "=" in c and "::" in c)
        lists = opts["Dir::State::Lists"]
        for name in (os.path.basename(EN), os.path.basename(PACKAGES)):
            shutil.copy(os.path.join(FIXTURE, name), lists)
        with open(os.path.join(lists, "deb.debian.org_debian_dists_bookworm_InRelease"), "w") as f:
            f.write(" 0123 456 main/i18n/Translation-en.bz2\n 0123 456 main/i18n/Translation-pt_BR.bz2\n")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(ddtp.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(ddtp.subprocess, "run", fake_run)
    with pytest.raises(ddtp.DdtpError, match=r"no Translation-fr \(it has: en pt_BR\)"):
        ddtp.fetch_lists(str(tmp_path / "cache"), ["en", "fr"], "bookworm", ["main"], ddtp.DEFAULT_MIRROR, quiet=True)
    cmd = calls[0]
    assert cmd[:2] == ["/usr/bin/apt-get", "update"]
    assert "Acquire::Languages=en,fr" in cmd and "Debug::NoLocking=1" in cmd and "Dir::State::Status=/dev/null" in cmd
    sources = next(c.split("=", 1)[1] for c in cmd if c.startswith("Dir::Etc::SourceList="))
    assert open(sources).read().strip().endswith("http://deb.debian.org/debian bookworm main")

    monkeypatch.setattr(
        ddtp.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 100, "", "E: Failed to fetch x\n")
    )
    with pytest.raises(ddtp.DdtpError, match="apt-get update failed .*--from-lists"):
        ddtp.fetch_lists(str(tmp_path / "c2"), ["en"], "bookworm", ["main"], ddtp.DEFAULT_MIRROR, quiet=True)
    monkeypatch.setattr(ddtp.shutil, "which", lambda name: None)
    parser = ddtp.add_arguments(argparse.ArgumentParser())
    with pytest.raises(ddtp.DdtpError, match="apt-get not found.*--from-lists DIR"):
        ddtp.main(parser.parse_args(["--langs", "en,fr", "--out", str(tmp_path / "o"), "--lists", str(tmp_path / "c")]))
