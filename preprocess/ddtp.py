"""``xlm-preprocess ddtp``: a real multilingual corpus from the Debian Description Translation Project.

Debian's archive is reachable where no corpus site is.  ``apt-get update`` into a private folder fetches the
package descriptions in English (``Translation-en``) and their translations (``Translation-fr`` …); the field
``Description-md5`` ties each translation to its English original, and the ``Section:`` of the package (from
the ``Packages`` index fetched by the same call) labels each description for cross-lingual classification.

What it writes into ``--out`` (the raw layout ``xlm-preprocess prepare`` reads; one sentence per line):

* ``{split}.{a}-{b}.{a}`` / ``{split}.{a}-{b}.{b}`` (a < b): aligned sentence pairs.  A description pair gives
  its titles as one pair; its long descriptions give pairs only when both have the same number of paragraphs,
  and a paragraph gives pairs only when both sides have the same number of sentences (rules: ddtp_text.py).
  Pairs are unique; pairs whose two sides are identical (untranslated text) are dropped.  Pairs are ``en-xx``;
  ``--all-pairs`` adds ``xx-yy`` pairs of translations of the same English description.
* ``{split}.{lang}``: unique monolingual sentences (titles and long-description sentences) of every language.
  A language's descriptions are those of its Translation file; English's are the English originals of the
  descriptions translated into at least one requested language (all of Translation-en when only ``en`` is
  asked for).  ``--disjoint-mono`` (for unsupervised MT) takes English monolingual text only from the
  descriptions whose md5 hashes into one half and every other language's from the other half.
* ``{split}.cls.{lang}`` + ``{split}.cls.{lang}.label``: one line per description (unique texts): its title
  (``--cls-text title``, the default: short lines for small models) or its title and first paragraph
  (``--cls-text title+para``); the label is the package's Section with any ``contrib/``-style prefix removed.
* ``ddtp_manifest.json``: counts per language, pair, split and label, the options and the source files.

Splits: a description goes to valid / test / train by a hash of its Description-md5, so the same description
is in the same split for every language.  A sentence (or pair, or classification text) that occurs in several
descriptions takes the first of train, valid, test among them, and a valid/test pair is dropped when one of its
sides occurs in an earlier split: no valid or test sentence appears in a train file of its language.
Everything is written under temporary names and renamed at the end.

Fetching: ``--lists DIR`` runs ``apt-get update`` with a private sources.list (``deb MIRROR SUITE main``,
targets Packages and Translations only), ``Dir::State::Lists=DIR/SUITE/lists``, no lock, no dpkg status and
no list clean-up (languages fetched by earlier runs stay), so it needs neither root nor the system's lists;
about 20 MB and a few seconds for en,fr,de.  ``--from-lists DIR`` reads such a folder (or any folder of
``Translation-xx`` / ``Packages`` files) without network.  Language codes are written in lower case in file
names (``pt_BR`` -> ``train.en-pt_br.pt_br``).
"""

import argparse
import bz2
import collections
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

from .common import PreprocessError
from .ddtp_text import clean, split_long_description

SPLITS = ("train", "valid", "test")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
MANIFEST = "ddtp_manifest.json"
_STANZA_SEP = re.compile(r"\n[ \t]*\n")


class DdtpError(PreprocessError):
    """A mistake the user can fix; the ``xlm-preprocess`` CLI prints it as one line and exits with status 1."""


# ----------------------------------------------------------------------------------------------- reading


def read_index(path):
    """The text of an apt index file, compressed with lz4, gzip, xz or bzip2 (told by its magic bytes) or not."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        if data[:4] == b"\x04\x22\x4d\x18":
            try:
                import lz4.frame
            except ImportError:
                raise DdtpError(f"{path} is lz4-compressed: pip install lz4 (or decompress it with lz4 -d)") from None
            data = lz4.frame.decompress(data)
        elif data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        elif data[:6] == b"\xfd7zXZ\x00":
            data = lzma.decompress(data)
        elif data[:3] == b"BZh":
            data = bz2.decompress(data)
    except (OSError, EOFError, RuntimeError, lzma.LZMAError, ValueError) as e:
        raise DdtpError(f"cannot decompress {path}: {e}") from None
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def iter_stanzas(text):
    """deb822 paragraphs as dicts: field -> list of lines (the first line's value, then continuation lines
    without their one leading space)."""
    for block in _STANZA_SEP.split(text):
        fields, name = {}, None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                if name is not None:
                    fields[name].append(line[1:])
            elif ":" in line:
                name, _, value = line.partition(":")
                fields[name] = [value.strip()]
        if fields:
            yield fields


class Description:
    """One package description in one language; the long description is split lazily."""

    __slots__ = ("package", "md5", "title", "lines", "_paragraphs")

    def __init__(self, package, md5, title, lines):
        self.package, self.md5, self.title, self.lines = package, md5, clean(title), lines
        self._paragraphs = None

    @property
    def paragraphs(self):
        """The long description: a list of paragraphs, each a list of sentences."""
        if self._paragraphs is None:
            self._paragraphs = split_long_description(self.lines)
        return self._paragraphs


def parse_translation(text, lang):
    """``md5 -> Description`` (in file order; the first stanza of a repeated md5 wins) of a Translation file."""
    field = "Description-" + lang
    out = {}
    for st in iter_stanzas(text):
        md5 = (st.get("Description-md5") or [""])[0]
        desc = st.get(field)
        if desc is None:  # tolerate a differently spelt language tag (pt_BR vs pt-BR)
            desc = next((v for k, v in st.items() if k.startswith("Description-") and k != "Description-md5"), None)
        if not md5 or desc is None or md5 in out:
            continue
        out[md5] = Description((st.get("Package") or [""])[0], md5, desc[0], desc[1:])
    return out


def section_label(section):
    """``non-free/libs`` -> ``libs``: the Section without its archive-area prefix."""
    return section.strip().rsplit("/", 1)[-1]


def parse_packages(text, by_md5=None, by_package=None):
    """Section of every description (md5 -> Counter of sections) and of every package name."""
    by_md5 = collections.defaultdict(collections.Counter) if by_md5 is None else by_md5
    by_package = {} if by_package is None else by_package
    for st in iter_stanzas(text):
        section = (st.get("Section") or [""])[0]
        if not section:
            continue
        label = section_label(section)
        md5 = (st.get("Description-md5") or [""])[0]
        if md5:
            by_md5[md5][label] += 1
        by_package.setdefault((st.get("Package") or [""])[0], label)
    return by_md5, by_package


def description_labels(by_md5, by_package, descriptions):
    """md5 -> label: the most common Section among the packages with that description (ties: alphabetical),
    else the Section of the package the English description was listed under."""
    labels = {}
    for md5, desc in descriptions.items():
        counts = by_md5.get(md5)
        if counts:
            labels[md5] = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        elif desc.package in by_package:
            labels[md5] = by_package[desc.package]
    return labels


# ------------------------------------------------------------------------------------------ finding lists


def _index_regex(kind):
    ext = r"(?:\.lz4|\.gz|\.xz|\.bz2)?"
    if kind == "Packages":
        return re.compile(r"(?:^|_)Packages" + ext + r"$")
    code = re.escape(debian_code(kind))
    return re.compile(r"(?:_i18n_|^)Translation-" + code + ext + r"$", re.IGNORECASE)


def find_index_files(root, langs, suite, components):
    """``{lang: [paths]}`` and ``[Packages paths]`` under ``root`` (searched recursively).  apt-named files
    (``…_dists_SUITE_COMPONENT_…``) are kept for ``suite`` and ``components``; plain names are always kept."""
    if not os.path.isdir(root):
        raise DdtpError(f"--from-lists {root}: no such directory")
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "partial")
        names.extend(os.path.join(dirpath, n) for n in sorted(filenames))
    suites_seen = set()

    def select(regex):
        chosen = {}
        for path in names:
            base = urllib.parse.unquote(os.path.basename(path))  # apt writes pt_BR as pt%5fBR
            if not regex.search(base):
                continue
            m = re.search(r"_dists_(.+?)_([^_]+)_(?:i18n|binary-[^_]+)_", base)
            if m:
                suites_seen.add(m.group(1))
                if m.group(1) != suite or m.group(2) not in components:
                    continue
            stem = re.sub(r"\.(lz4|gz|xz|bz2)$", "", path)
            chosen.setdefault(stem, path)  # one file per index, whatever its compression
        return sorted(chosen.values())

    translations = {lang: select(_index_regex(lang)) for lang in sorted(set(langs) | {"en"})}
    packages = select(_index_regex("Packages"))
    where = f"{root} (suite {suite}, components {','.join(components)})"
    for lang, paths in translations.items():
        if not paths:
            other = f"; it has lists for suite(s) {', '.join(sorted(suites_seen))}" if suites_seen - {suite} else ""
            raise DdtpError(f"no Translation-{debian_code(lang)} file in {where}{other}")
    if not packages:
        raise DdtpError(f"no Packages index in {where}: it gives the Section labels")
    return translations, packages


def available_languages(lists_dir, suite, components):
    """The DDTP languages the suite's (In)Release file lists, or None when it cannot be read."""
    found = set()
    for name in os.listdir(lists_dir):
        if name.endswith(f"_dists_{suite}_InRelease") or name.endswith(f"_dists_{suite}_Release"):
            text = read_index(os.path.join(lists_dir, name))
            for comp, lang in re.findall(r"\s(\S+?)/i18n/Translation-([A-Za-z_]+)", text):
                if comp in components:
                    found.add(lang)
    return sorted(found) or None


def fetch_lists(lists_root, langs, suite, components, mirror, quiet=False):
    """Run ``apt-get update`` into ``lists_root/SUITE`` (a private apt state: no root, no lock, no system lists)
    and return the folder holding the fetched lists."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise DdtpError(
            "apt-get not found: fetch Translation-xx and Packages files on a Debian machine and "
            "pass their folder with --from-lists DIR"
        )
    base = os.path.abspath(os.path.join(lists_root, suite))
    lists_dir, apt_dir = os.path.join(base, "lists"), os.path.join(base, "apt")
    for d in (
        os.path.join(lists_dir, "partial"),
        os.path.join(apt_dir, "sources.list.d"),
        os.path.join(apt_dir, "cache", "archives", "partial"),
    ):
        os.makedirs(d, exist_ok=True)
    options = ["target=Packages,Translations"]
    if os.path.exists(DEBIAN_KEYRING):
        options.append("signed-by=" + DEBIAN_KEYRING)
    sources = os.path.join(apt_dir, "sources.list")
    with open(sources, "w") as f:
        f.write(f"deb [{' '.join(options)}] {mirror} {suite} {' '.join(components)}\n")
    codes = sorted({debian_code(l) for l in langs} | {"en"})
    cmd = [
        apt_get,
        "update",
        "-q",
        "-o",
        "Acquire::Languages=" + ",".join(codes),
        "-o",
        "Dir::State::Lists=" + lists_dir,
        "-o",
        "Dir::Cache=" + os.path.join(apt_dir, "cache"),
        "-o",
        "Dir::Cache::pkgcache=",
        "-o",
        "Dir::Cache::srcpkgcache=",
        "-o",
        "Dir::State::Status=/dev/null",
        "-o",
        "Dir::Etc::SourceList=" + sources,
        "-o",
        "Dir::Etc::SourceParts=" + os.path.join(apt_dir, "sources.list.d"),
        "-o",
        "Debug::NoLocking=1",
        "-o",
        "APT::Get::List-Cleanup=false",  # keep the languages fetched by earlier runs
        "-o",
        "Acquire::GzipIndexes=true",
    ]
    if os.geteuid() == 0:  # root would hand downloads to the _apt user, who may not reach the private folder
        cmd += ["-o", "APT::Sandbox::User=root"]
    if not quiet:
        print(
            f"ddtp: apt-get update ({suite}, {','.join(components)}, languages {','.join(codes)}) into {lists_dir}",
            file=sys.stderr,
        )
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DdtpError(f"apt-get update failed ({e}); fetch the files elsewhere and use --from-lists DIR") from None
    errors = [ln for ln in (proc.stderr or "").splitlines() if ln.startswith(("E:", "W:", "Err:"))]
    if proc.returncode != 0:
        why = errors[0] if errors else (proc.stderr or proc.stdout or "").strip().splitlines()[-1:]
        raise DdtpError(
            f"apt-get update failed (exit {proc.returncode}: {why}); fetch the files elsewhere and use --from-lists DIR"
        )
    for lang in sorted(set(langs) | {"en"}):
        pattern = _index_regex(lang)
        names = [urllib.parse.unquote(n) for n in os.listdir(lists_dir)]
        if not any(pattern.search(n) and f"_dists_{suite}_" in n for n in names):
            have = available_languages(lists_dir, suite, components)
            extra = f" (it has: {' '.join(have)})" if have else ""
            detail = f"; apt said: {errors[0]}" if errors else ""
            where = f"Debian {suite}/{','.join(components)}"
            raise DdtpError(f"{where} has no Translation-{debian_code(lang)}{extra}{detail}")
    return lists_dir


# ------------------------------------------------------------------------------------------------ building


def _hash01(key, salt):
    """A number in [0, 1) fixed by ``key`` (the same on every machine and Python)."""
    return int.from_bytes(hashlib.sha1(f"{salt}:{key}".encode()).digest()[:8], "big") / 2.0**64


def split_of(md5, valid_frac, test_frac):
    """0 (train), 1 (valid) or 2 (test) for a description, by a hash of its md5."""
    u = _hash01(md5, "split")
    return 1 if u < valid_frac else 2 if u < valid_frac + test_frac else 0


def mono_half(md5):
    """0 or 1: the half of the descriptions a description belongs to for --disjoint-mono (English uses 0)."""
    return int(_hash01(md5, "mono") >= 0.5)


def _has_letter(s):
    return any(c.isalpha() for c in s)


def description_sentences(desc):
    return [s for s in [desc.title] + [s for p in desc.paragraphs for s in p] if _has_letter(s)]


def align_description(desc_a, desc_b, stats):
    """Sentence pairs of two versions of one description: the titles, then the sentences of every paragraph
    with the same sentence count on both sides, when both have the same number of paragraphs."""
    pairs = [(desc_a.title, desc_b.title)]
    pa, pb = desc_a.paragraphs, desc_b.paragraphs
    if len(pa) != len(pb):
        stats["paragraph_count_mismatch"] += 1
        return pairs
    for sa, sb in zip(pa, pb):
        if len(sa) == len(sb):
            pairs.extend(zip(sa, sb))
        else:
            stats["sentence_count_mismatch"] += 1
    return pairs


def _cap(items, limit, key):
    """At most ``limit`` items, chosen by a hash of ``key(item)`` (deterministic), in their original order."""
    if limit is None or len(items) <= limit:
        return items
    keep = set(sorted(range(len(items)), key=lambda i: _hash01(key(items[i]), "cap"))[:limit])
    return [it for i, it in enumerate(items) if i in keep]


def build_corpus(
    descs,
    labels,
    langs,
    valid_frac=0.02,
    test_frac=0.02,
    disjoint_mono=False,
    all_pairs=False,
    max_sentences=None,
    cls_text="title",
):
    """Build every output in memory.

    ``descs``: ``{lang: {md5: Description}}`` (English included); ``labels``: ``{md5: section}``.
    Returns a dict with ``mono`` ``{lang: {split: [line]}}``, ``parallel`` ``{(a, b): {split: [(sa, sb)]}}``,
    ``cls`` ``{lang: {split: [(text, label)]}}``, ``mono_md5s`` ``{lang: set}`` (descriptions allowed to
    give monolingual text) and ``stats``.  Raises DdtpError when a pair gets no aligned sentence.
    """
    others = [l for l in langs if l != "en"]
    if others:
        scope_en = {m for l in others for m in descs[l] if m in descs["en"]}
        english = {m: d for m, d in descs["en"].items() if m in scope_en}
    else:
        english = descs["en"]
    scope = {l: (english if l == "en" else descs[l]) for l in langs}
    split = {}
    for l in langs:
        for m in scope[l]:
            if m not in split:
                split[m] = split_of(m, valid_frac, test_frac)
    rank, mono, mono_md5s = monolingual_text(scope, split, langs, disjoint_mono)
    pair_names = [tuple(sorted(("en", l))) for l in others]
    if all_pairs:
        pair_names += [tuple(sorted(p)) for i, a in enumerate(others) for p in [(a, b) for b in others[i + 1 :]]]
    parallel, stats = {}, {"pairs": {}}
    for a, b in pair_names:
        parallel[(a, b)], stats["pairs"][f"{a}-{b}"] = parallel_text(scope, split, rank, a, b, max_sentences)
    cls, unlabelled = {}, {}
    for l in langs:
        cls[l], unlabelled[l] = labelled_text(scope[l], split, labels, cls_text)
    for l in langs:
        mono[l]["train"] = _cap(mono[l]["train"], max_sentences, key=lambda s: s)
    stats["descriptions"] = {l: len(scope[l]) for l in langs}
    stats["mono_descriptions"] = {l: len(mono_md5s[l]) for l in langs}
    stats["unlabelled_descriptions"] = unlabelled
    return {"mono": mono, "parallel": parallel, "cls": cls, "mono_md5s": mono_md5s, "stats": stats}


def monolingual_text(scope, split, langs, disjoint_mono):
    """Each language's sentences by split, and the natural rank of every sentence: the first split among the
    descriptions it occurs in (so a sentence seen in a held-out description never trains)."""
    rank, mono, mono_md5s = {}, {}, {}
    for l in langs:
        r, first_seen, allowed_md5s = {}, {}, set()
        for m, d in scope[l].items():
            allowed = not disjoint_mono or mono_half(m) == (0 if l == "en" else 1)
            if allowed:
                allowed_md5s.add(m)
            for s in description_sentences(d):
                r[s] = min(r.get(s, 3), split[m])
                if allowed:
                    first_seen.setdefault(s, None)
        rank[l], mono_md5s[l] = r, allowed_md5s
        mono[l] = {name: [] for name in SPLITS}
        for s in first_seen:
            mono[l][SPLITS[r[s]]].append(s)
    return rank, mono, mono_md5s


def parallel_text(scope, split, rank, a, b, max_sentences):
    """The aligned sentence pairs of a-b by split (a pair whose sides rank in another split is dropped), and
    the alignment statistics."""
    st = collections.Counter()
    pair_rank = {}
    for m, da in scope[a].items():
        db = scope[b].get(m)
        if db is None:
            continue
        st["descriptions"] += 1
        for sa, sb in align_description(da, db, st):
            st["aligned"] += 1
            if not (_has_letter(sa) and _has_letter(sb)):
                st["no_letters"] += 1
            elif sa == sb:
                st["identical_dropped"] += 1
            else:
                pair_rank[(sa, sb)] = min(pair_rank.get((sa, sb), 3), split[m])
    out = {name: [] for name in SPLITS}
    for (sa, sb), k in pair_rank.items():
        if rank[a][sa] == k and rank[b][sb] == k:
            out[SPLITS[k]].append((sa, sb))
        else:
            st["held_out_overlap_dropped"] += 1
    st["unique"] = len(pair_rank)
    if not sum(len(v) for v in out.values()):
        raise DdtpError(
            f"pair {a}-{b}: no aligned sentence pair ({len(scope[a])} {a} and {len(scope[b])} {b} "
            f"descriptions, {st['descriptions']} with the same md5, {st['paragraph_count_mismatch']} "
            f"with different paragraph counts)"
        )
    out["train"] = _cap(out["train"], max_sentences, key=lambda p: p[0] + "\t" + p[1])
    return out, dict(st)


def labelled_text(descriptions, split, labels, cls_text):
    """({split: [(text, Section)]}, number of descriptions without a Section) of one language."""
    seen, n_unlabelled = {}, 0
    for m, d in descriptions.items():
        label = labels.get(m)
        if label is None:
            n_unlabelled += 1
            continue
        text = d.title
        if cls_text == "title+para" and d.paragraphs:
            text = clean(text + " " + " ".join(d.paragraphs[0]))
        if not _has_letter(text):
            continue
        if text not in seen or split[m] < seen[text][0]:
            seen[text] = (split[m], label)
    out = {name: [] for name in SPLITS}
    for text, (k, label) in seen.items():
        out[SPLITS[k]].append((text, label))
    return out, n_unlabelled


# ------------------------------------------------------------------------------------------------- writing


def _previous_files(out_dir):
    """The files an earlier run listed in its manifest (so that a run with fewer languages removes the rest)."""
    try:
        with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as f:
            old = json.load(f).get("files", {})
    except (OSError, ValueError, AttributeError):
        return []
    return [n for n in old if isinstance(n, str) and os.path.basename(n) == n and not n.startswith(".")]


def write_outputs(corpus, out_dir, manifest_extra):
    """Write every file under a temporary folder inside ``out_dir``, then rename them into place (and remove
    the files of an earlier run that this one does not write)."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".ddtp-tmp-", dir=out_dir)
    files = {}

    def put(name, lines):
        with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
        files[name] = len(lines)

    try:
        for (a, b), by_split in corpus["parallel"].items():
            for name, pairs in by_split.items():
                put(f"{name}.{a}-{b}.{a}", [p[0] for p in pairs])
                put(f"{name}.{a}-{b}.{b}", [p[1] for p in pairs])
        for lang, by_split in corpus["mono"].items():
            for name, lines in by_split.items():
                put(f"{name}.{lang}", lines)
        label_counts = {}
        for lang, by_split in corpus["cls"].items():
            label_counts[lang] = {}
            for name, items in by_split.items():
                put(f"{name}.cls.{lang}", [t for t, _ in items])
                put(f"{name}.cls.{lang}.label", [lab for _, lab in items])
                label_counts[lang][name] = dict(sorted(collections.Counter(lab for _, lab in items).items()))
        manifest = dict(manifest_extra)
        manifest.update(
            {
                "mono": {l: {s: len(v) for s, v in d.items()} for l, d in corpus["mono"].items()},
                "parallel": {f"{a}-{b}": {s: len(v) for s, v in d.items()} for (a, b), d in corpus["parallel"].items()},
                "cls": {l: {s: len(v) for s, v in d.items()} for l, d in corpus["cls"].items()},
                "labels": label_counts,
                "stats": corpus["stats"],
                "files": files,
            }
        )
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False, sort_keys=True)
            f.write("\n")
        stale = [n for n in _previous_files(out_dir) if n not in files]
        for name in list(files) + [MANIFEST]:  # the manifest last: its presence marks a complete run
            os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
        for name in stale:
            if os.path.isfile(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


# ---------------------------------------------------------------------------------------------------- CLI


def _default_lists():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "xlm_fairseq", "ddtp")


def add_arguments(parser: argparse.ArgumentParser):
    """The options of ``xlm-preprocess ddtp``."""
    parser.add_argument("--langs", required=True, help="comma-separated languages, English included: en,fr,de")
    parser.add_argument("--out", required=True, metavar="RAW_DIR", help="folder for the raw text files")
    parser.add_argument(
        "--lists",
        metavar="DIR",
        default=None,
        help=f"private apt folder to fetch the lists into (default {_default_lists()})",
    )
    parser.add_argument(
        "--from-lists",
        metavar="DIR",
        default=None,
        help="read Translation-xx and Packages files already fetched (lz4, gz, xz, bz2 or plain; "
        "searched recursively, e.g. a --lists folder); no apt, no network",
    )
    parser.add_argument("--suite", default="bookworm", help="Debian suite (default bookworm)")
    parser.add_argument("--components", default="main", help="archive areas, comma-separated (default main)")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR, help=f"Debian mirror (default {DEFAULT_MIRROR})")
    parser.add_argument(
        "--disjoint-mono",
        action="store_true",
        help="English monolingual text and the other languages' from disjoint halves of the "
        "descriptions (unsupervised MT)",
    )
    parser.add_argument(
        "--all-pairs", action="store_true", help="also write xx-yy pairs (translations of the same English description)"
    )
    parser.add_argument(
        "--no-train-pairs",
        action="store_true",
        help="write the pairs of valid and test only (unsupervised MT never trains on pairs: nothing to prepare)",
    )
    parser.add_argument("--valid-frac", type=float, default=0.02, help="fraction of descriptions for valid")
    parser.add_argument("--test-frac", type=float, default=0.02, help="fraction of descriptions for test")
    parser.add_argument(
        "--max-sentences-per-lang",
        type=int,
        default=None,
        metavar="N",
        help="at most N train sentences per monolingual language and N train pairs per pair "
        "(chosen by a hash, deterministic)",
    )
    parser.add_argument(
        "--cls-text",
        choices=("title", "title+para"),
        default="title",
        help="classification text: the description's title (default) or title + first paragraph",
    )
    return parser


def debian_code(lang):
    """The DDTP spelling of a language code: ``pt_br`` -> ``pt_BR`` (file names here are lower case)."""
    base, _, region = lang.partition("_")
    return base + "_" + region.upper() if region else base


def _parse_langs(value):
    """``en,fr,pt_BR`` -> ``['en', 'fr', 'pt_br']``: sorted lower-case codes (they become file names)."""
    langs = [l.strip().lower() for l in value.split(",") if l.strip()]
    bad = [l for l in langs if not re.fullmatch(r"[a-z]{2,3}(?:_[a-z]{2})?", l)]
    if bad or not langs:
        raise DdtpError(f"--langs: {(bad or [value])[0]!r} is not a DDTP language code like en, fr, pt_BR")
    if "en" not in langs:
        raise DdtpError("--langs must include en: translations are aligned through their English originals")
    if len(set(langs)) != len(langs):
        raise DdtpError(f"--langs: a language is repeated in {value!r}")
    return sorted(langs)


def run(args):
    """The work of ``main``; raises DdtpError."""
    t0 = time.time()
    langs = _parse_langs(args.langs)
    components = [c.strip() for c in args.components.split(",") if c.strip()]
    if not (0 <= args.valid_frac < 1 and 0 <= args.test_frac < 1 and args.valid_frac + args.test_frac < 1):
        raise DdtpError("--valid-frac and --test-frac must be in [0, 1) and sum to less than 1")
    if args.max_sentences_per_lang is not None and args.max_sentences_per_lang < 1:
        raise DdtpError("--max-sentences-per-lang must be at least 1")
    if args.from_lists:
        root = args.from_lists
    else:
        root = fetch_lists(args.lists or _default_lists(), langs, args.suite, components, args.mirror)
    translations, packages = find_index_files(root, langs, args.suite, components)
    t_fetch = time.time()

    descs = {}
    for lang in langs:
        descs[lang] = {}
        for path in translations[lang]:
            for m, d in parse_translation(read_index(path), debian_code(lang)).items():
                descs[lang].setdefault(m, d)
        if not descs[lang]:
            raise DdtpError(f"{', '.join(translations[lang])}: no description in this Translation file")
    by_md5, by_package = collections.defaultdict(collections.Counter), {}
    for path in packages:
        parse_packages(read_index(path), by_md5, by_package)
    labels = description_labels(by_md5, by_package, descs["en"])
    corpus = build_corpus(
        descs,
        labels,
        langs,
        args.valid_frac,
        args.test_frac,
        args.disjoint_mono,
        args.all_pairs,
        args.max_sentences_per_lang,
        args.cls_text,
    )
    if args.no_train_pairs:
        for by_split in corpus["parallel"].values():
            by_split.pop("train", None)
    manifest = write_outputs(
        corpus,
        args.out,
        {
            "format": "xlm_fairseq-ddtp-1",
            "suite": args.suite,
            "components": components,
            "langs": langs,
            "options": {
                "disjoint_mono": args.disjoint_mono,
                "all_pairs": args.all_pairs,
                "no_train_pairs": args.no_train_pairs,
                "valid_frac": args.valid_frac,
                "test_frac": args.test_frac,
                "max_sentences_per_lang": args.max_sentences_per_lang,
                "cls_text": args.cls_text,
            },
            "sources": {
                "translations": {l: [os.path.abspath(p) for p in ps] for l, ps in translations.items()},
                "packages": [os.path.abspath(p) for p in packages],
            },
        },
    )
    pairs = ", ".join(f"{p} {sum(v.values())}" for p, v in manifest["parallel"].items())
    mono = ", ".join(f"{l} {sum(v.values())}" for l, v in manifest["mono"].items())
    print(
        f"ddtp: wrote {args.out}: pairs {pairs}; monolingual {mono}; "
        f"fetch {t_fetch - t0:.1f}s, build {time.time() - t_fetch:.1f}s",
        file=sys.stderr,
    )
    return manifest


def main(args) -> int:
    """Entry point of ``xlm-preprocess ddtp``: returns 0.  A user mistake raises DdtpError (a PreprocessError,
    which the CLI prints as one line ``xlm-preprocess ddtp: error: ...`` before exiting with status 1)."""
    run(args)
    return 0


if __name__ == "__main__":
    from .cli import main as cli_main

    sys.exit(cli_main(["ddtp"] + sys.argv[1:]))
