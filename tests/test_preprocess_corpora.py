"""Corpus getters on local files: a tiny Wikipedia dump (.xml.bz2), OPUS Moses zips/files, WMT sgm sets."""

import bz2
import os
import shutil
import zipfile

from xlm_preprocess import cli
from xlm_preprocess.corpora.wikipedia import clean_wikitext

from .helpers_cli import python_module

# as in real dumps, the wiki source inside <text> is XML-escaped (&lt;ref&gt;, &amp;amp;)
DUMP = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">
  <siteinfo><sitename>Wikipedia</sitename></siteinfo>
  <page><title>Paris</title><ns>0</ns><id>1</id><revision><id>11</id><text xml:space="preserve">{{Infobox settlement
| name = Paris | population = {{formatnum:2102650}}
}}
'''Paris''' is the [[capital city|capital]] and largest city of [[France]].&lt;ref name="a"&gt;Source.&lt;/ref&gt;
It lies on the [[Seine]] river.&lt;!-- hidden comment --&gt;

== History ==
The city was founded in the 3rd century BC.{{cn}}
[[File:Paris skyline.jpg|thumb|The [[Eiffel Tower]] at night]]
{| class="wikitable"
| cell || cell
|}
* Museums include the [[Louvre]].
See [https://example.org the official site] &amp;amp; more.
[[Category:Capitals in Europe]]
[[fr:Paris]]</text></revision></page>
  <page><title>Paname</title><ns>0</ns><id>2</id><redirect title="Paris" />
    <revision><id>12</id><text>#REDIRECT [[Paris]]</text></revision></page>
  <page><title>Category:Cities</title><ns>14</ns><id>3</id><revision><id>13</id>
    <text>Cities of the world.</text></revision></page>
  <page><title>Lyon</title><ns>0</ns><id>4</id><revision><id>14</id><text xml:space="preserve">'''Lyon''' is a city in [[France]].
It is known for its ''cuisine''.

Lyon has two rivers, the [[Rhône]] and the [[Saône]].</text></revision></page>
</mediawiki>
"""

EXPECTED = [
    "Paris",
    "Paris is the capital and largest city of France.",
    "It lies on the Seine river.",
    "The city was founded in the 3rd century BC.",
    "Museums include the Louvre.",
    "See the official site & more.",
    "Lyon",
    "Lyon is a city in France.",
    "It is known for its cuisine.",
    "Lyon has two rivers, the Rhône and the Saône.",
]


def test_clean_wikitext():
    text = "'''Bold''' [[a|b]] [[c]] {{t|{{u}}}} <ref>r</ref>x\n== H ==\n* [[File:f.png|thumb|cap [[d]]]] item"
    assert list(clean_wikitext(text)) == ["Bold b c x", "item"]


def test_wikipedia_dump_to_raw_dir(tmp_path, capsys):
    dump = tmp_path / "enwiki-latest-pages-articles.xml.bz2"
    dump.write_bytes(bz2.compress(DUMP.encode("utf-8")))
    raw = tmp_path / "raw"
    extracted = tmp_path / "extracted.txt"
    assert (
        cli.main(
            [
                "wikipedia",
                "--lang",
                "en",
                "--dump",
                str(dump),
                "--output",
                str(raw),
                "--valid-size",
                "2",
                "--test-size",
                "1",
                "--seed",
                "3",
                "--extracted-output",
                str(extracted),
            ]
        )
        == 0
    )
    parts = {s: (raw / f"{s}.en").read_text(encoding="utf-8").splitlines() for s in ("train", "valid", "test")}
    assert (len(parts["train"]), len(parts["valid"]), len(parts["test"])) == (7, 2, 1)
    assert sorted(parts["train"] + parts["valid"] + parts["test"]) == sorted(EXPECTED)
    assert sorted(os.listdir(raw)) == ["test.en", "train.en", "valid.en"]  # no temporary files left
    doc = extracted.read_text(encoding="utf-8").splitlines()
    assert doc[0] == '<doc id="1" url="https://en.wikipedia.org/wiki?curid=1" title="Paris">'
    assert doc.count("</doc>") == 2 and "Category:Cities" not in extracted.read_text(encoding="utf-8")
    # the extracted file reads back as WikiExtractor output and gives the same split
    raw2 = tmp_path / "raw2"
    assert (
        cli.main(
            [
                "wikipedia",
                "--lang",
                "en",
                "--extracted",
                str(extracted),
                "--output",
                str(raw2),
                "--valid-size",
                "2",
                "--test-size",
                "1",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    for split in ("train", "valid", "test"):
        assert (raw2 / f"{split}.en").read_bytes() == (raw / f"{split}.en").read_bytes()


def test_wikipedia_errors(tmp_path, capsys):
    bad = tmp_path / "bad.xml"
    bad.write_text("<mediawiki><page><title>x</title>", encoding="utf-8")
    assert cli.main(["wikipedia", "--lang", "en", "--dump", str(bad), "--output", str(tmp_path / "raw")]) == 1
    assert "cannot read the dump" in capsys.readouterr().err
    small = tmp_path / "small.xml"
    small.write_text(DUMP, encoding="utf-8")
    assert cli.main(["wikipedia", "--lang", "en", "--dump", str(small), "--output", str(tmp_path / "raw")]) == 1
    assert "the corpus has 10 lines: not enough for --valid-size 5000" in capsys.readouterr().err
    assert os.listdir(tmp_path / "raw") == []


def test_wikipedia_download_command(tmp_path, capsys):
    code = cli.main(
        [
            "wikipedia",
            "--lang",
            "fr",
            "--download",
            "--dry-run",
            "--dump-dir",
            str(tmp_path),
            "--output",
            str(tmp_path / "raw"),
        ]
    )
    captured = capsys.readouterr()
    if shutil.which("wget") or shutil.which("curl"):
        assert code == 0
        assert "https://dumps.wikimedia.org/frwiki/latest/frwiki-latest-pages-articles.xml.bz2" in captured.out
    else:
        assert code == 1 and "downloading needs wget or curl" in captured.err


def _pairs(n, offset=0):
    en = [f"This is English sentence number {i + offset}." for i in range(n)]
    fr = [f"Voici la phrase française numéro {i + offset}." for i in range(n)]
    return en, fr


def test_opus_zip_and_moses_files(tmp_path, capsys):
    en, fr = _pairs(12)
    zpath = tmp_path / "Tatoeba.en-fr.txt.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("Tatoeba.en-fr.en", "\n".join(en + [""]) + "\n")  # one pair with a blank side
        zf.writestr("Tatoeba.en-fr.fr", "\n".join(fr + ["orpheline"]) + "\n")
        zf.writestr("README", "OPUS")
    en2, fr2 = _pairs(6, offset=100)
    (tmp_path / "Euro.en-fr.en").write_text("\n".join(en2) + "\n", encoding="utf-8")
    (tmp_path / "Euro.en-fr.fr").write_text("\n".join(fr2) + "\n", encoding="utf-8")
    raw = tmp_path / "raw"
    assert (
        cli.main(
            [
                "opus",
                "--pair",
                "fr-en",
                "--zip",
                str(zpath),
                "--moses",
                str(tmp_path / "Euro.en-fr"),
                "--output",
                str(raw),
                "--valid-size",
                "3",
                "--test-size",
                "2",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "12 pairs, 1 with a blank side dropped" in err
    total = 0
    for split, n in (("train", 13), ("valid", 3), ("test", 2)):
        a = (raw / f"{split}.en-fr.en").read_text(encoding="utf-8").splitlines()
        b = (raw / f"{split}.en-fr.fr").read_text(encoding="utf-8").splitlines()
        assert len(a) == len(b) == n
        assert [x.split()[-1] for x in a] == [y.split()[-1] for y in b]  # still aligned
        total += n
    assert total == 18 and sorted(os.listdir(raw)) == sorted(
        f"{s}.en-fr.{lang}" for s in ("train", "valid", "test") for lang in ("en", "fr")
    )


def test_opus_length_mismatch(tmp_path, capsys):
    (tmp_path / "C.en-fr.en").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "C.en-fr.fr").write_text("x\ny\n", encoding="utf-8")
    assert (
        cli.main(["opus", "--pair", "en-fr", "--moses", str(tmp_path / "C.en-fr"), "--output", str(tmp_path / "raw")])
        == 1
    )
    err = capsys.readouterr().err
    assert "C.en-fr.en has 3 lines" in err and "C.en-fr.fr has 2" in err
    assert os.listdir(tmp_path / "raw") == []


SGM_SRC = """<srcset setid="newstest2014" srclang="any">
<doc sysid="ref" docid="1" genre="news" origlang="fr">
<seg id="1">Le  chat dort.</seg>
<seg id="2">Il pleut &amp; il vente.</seg>
</doc>
</srcset>
"""
SGM_REF = """<refset setid="newstest2014" srclang="any" trglang="en">
<doc sysid="ref" docid="1" genre="news" origlang="fr">
<seg id="1">The cat sleeps.</seg>
<seg id="2"> It rains &amp; it blows. </seg>
</doc>
</refset>
"""


def test_wmt_sgm(tmp_path, capsys):
    (tmp_path / "src.fr.sgm").write_text(SGM_SRC, encoding="utf-8")
    (tmp_path / "ref.en.sgm").write_text(SGM_REF, encoding="utf-8")
    raw = tmp_path / "raw"
    assert (
        cli.main(
            [
                "wmt",
                "--direction",
                "fr-en",
                "--src",
                str(tmp_path / "src.fr.sgm"),
                "--ref",
                str(tmp_path / "ref.en.sgm"),
                "--split",
                "valid",
                "--output",
                str(raw),
                "--also-mono",
            ]
        )
        == 0
    )
    assert (raw / "valid.en-fr.fr").read_text(encoding="utf-8") == "Le chat dort.\nIl pleut &amp; il vente.\n"
    assert (raw / "valid.en-fr.en").read_text(encoding="utf-8") == "The cat sleeps.\nIt rains &amp; it blows.\n"
    assert (raw / "valid.en").read_bytes() == (raw / "valid.en-fr.en").read_bytes()
    assert (raw / "valid.fr").read_bytes() == (raw / "valid.en-fr.fr").read_bytes()


def test_wmt_plain_mismatch_and_sacrebleu_command(tmp_path, capsys):
    (tmp_path / "a.en").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "b.fr").write_text("un\n", encoding="utf-8")
    assert (
        cli.main(
            [
                "wmt",
                "--direction",
                "en-fr",
                "--src",
                str(tmp_path / "a.en"),
                "--ref",
                str(tmp_path / "b.fr"),
                "--output",
                str(tmp_path / "raw"),
            ]
        )
        == 1
    )
    assert "a.en has 2 sentences, " in capsys.readouterr().err
    assert (
        cli.main(["wmt", "--direction", "en-fr", "--testset", "wmt14", "--dry-run", "--output", str(tmp_path / "raw")])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out == ["sacrebleu -t wmt14 -l en-fr --echo src", "sacrebleu -t wmt14 -l en-fr --echo ref"]


def test_module_entry_point(tmp_path):
    (tmp_path / "s.en").write_text("Hello.\n", encoding="utf-8")
    (tmp_path / "r.de").write_text("Hallo.\n", encoding="utf-8")
    python_module(
        "xlm_preprocess.corpora.wmt",
        "--direction",
        "en-de",
        "--src",
        tmp_path / "s.en",
        "--ref",
        tmp_path / "r.de",
        "--output",
        tmp_path / "raw",
    )
    assert (tmp_path / "raw" / "test.de-en.de").read_text() == "Hallo.\n"
