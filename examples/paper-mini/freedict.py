"""A bilingual dictionary in MUSE format (`src tgt` per line) from a FreeDict dictionary of Debian's archive.

    python examples/paper-mini/freedict.py --apt-dir paper-mini-out/apt-lists/bookworm \
        --package dict-freedict-eng-fra --out en-fr.freedict.txt
    python examples/paper-mini/freedict.py --deb dict-freedict-eng-fra_2022.04.21-1_all.deb --out en-fr.txt

`--apt-dir` is the private apt folder `xlm-preprocess ddtp --lists DIR` wrote (DIR/SUITE, holding `lists/` and
`apt/`): `apt-get download` runs with that state (no root, no lock, no system lists), like preprocess/ddtp.py's
`apt-get update`. The package's `usr/share/dictd/*.index` + `*.dict.dz` (dictd format: the index gives each
headword's base64 offset and length in the gzip-compatible .dict.dz) are read, and every single-word headword
gives one pair per single-word translation (multi-word headwords and translations, and anything with digits or
punctuation other than an inner hyphen or apostrophe, are left out). The pairs come from the dictionary only:
nothing is derived from a model."""

import argparse
import glob
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
WORD = re.compile(r"[^\W\d_]+(?:[-\u2010'\u2019][^\W\d_]+)*")
PRONUNCIATION = re.compile(r"\s*/[^/]*/\s*$")


def dictd_number(text: str) -> int:
    """dictd's base64 numbers (most significant digit first)."""
    n = 0
    for c in text:
        n = n * 64 + B64.index(c)
    return n


def download(apt_dir: str, package: str, dest: str) -> str:
    """apt-get download PACKAGE into dest with the private apt state of `xlm-preprocess ddtp --lists`."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise SystemExit("freedict: apt-get not found: download the .deb elsewhere and pass --deb FILE")
    lists, conf = os.path.join(apt_dir, "lists"), os.path.join(apt_dir, "apt")
    if not os.path.isdir(lists) or not os.path.exists(os.path.join(conf, "sources.list")):
        raise SystemExit(
            f"freedict: --apt-dir {apt_dir}: no lists/ and apt/sources.list here (the SUITE folder "
            "that `xlm-preprocess ddtp --lists DIR` writes, e.g. DIR/bookworm)"
        )
    cmd = [
        apt_get,
        "download",
        "-q",
        "-o",
        "Dir::State::Lists=" + lists,
        "-o",
        "Dir::Cache=" + os.path.join(conf, "cache"),
        "-o",
        "Dir::Cache::pkgcache=",
        "-o",
        "Dir::Cache::srcpkgcache=",
        "-o",
        "Dir::State::Status=/dev/null",
        "-o",
        "Dir::Etc::SourceList=" + os.path.join(conf, "sources.list"),
        "-o",
        "Dir::Etc::SourceParts=" + os.path.join(conf, "sources.list.d"),
        "-o",
        "Debug::NoLocking=1",
    ]
    if os.geteuid() == 0:  # as in preprocess/ddtp.py: root would hand the download to the _apt user
        cmd += ["-o", "APT::Sandbox::User=root"]
    proc = subprocess.run(cmd + [package], cwd=dest, capture_output=True, text=True)
    debs = glob.glob(os.path.join(dest, f"{package}_*.deb"))
    if proc.returncode != 0 or not debs:
        raise SystemExit(f"freedict: apt-get download {package} failed: {(proc.stderr or proc.stdout).strip()}")
    return debs[0]


def extract(deb: str, dest: str):
    """The dictd index and data files of a FreeDict .deb (dpkg-deb -x)."""
    subprocess.run(["dpkg-deb", "-x", deb, dest], check=True)
    index = glob.glob(os.path.join(dest, "usr", "share", "dictd", "*.index"))
    data = glob.glob(os.path.join(dest, "usr", "share", "dictd", "*.dict.dz"))
    if not index or not data:
        raise SystemExit(f"freedict: {deb} has no usr/share/dictd/*.index and *.dict.dz")
    return index[0], data[0]


def pairs_of(index: str, data: str) -> list:
    """[(src, tgt)] single-word pairs, in index order, unique."""
    with gzip.open(data, "rb") as f:
        raw = f.read()
    seen_entries, pairs, seen = set(), [], set()
    with open(index, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3 or fields[0].startswith("00database"):
                continue
            offset, length = dictd_number(fields[1]), dictd_number(fields[2])
            if offset in seen_entries:
                continue
            seen_entries.add(offset)
            lines = [l.strip() for l in raw[offset : offset + length].decode("utf-8").split("\n") if l.strip()]
            if len(lines) < 2:
                continue
            head = PRONUNCIATION.sub("", lines[0]).strip()
            if not WORD.fullmatch(head):
                continue
            for sense in lines[1:]:
                sense = re.sub(r"^\d+\.\s*", "", sense)
                for tgt in (t.strip() for t in sense.split(",")):
                    if WORD.fullmatch(tgt) and (head, tgt) not in seen:
                        seen.add((head, tgt))
                        pairs.append((head, tgt))
    return pairs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--apt-dir", help="private apt folder of `xlm-preprocess ddtp --lists DIR`: DIR/SUITE")
    p.add_argument("--package", default="dict-freedict-eng-fra", help="Debian package (default dict-freedict-eng-fra)")
    p.add_argument("--deb", help="a .deb already downloaded (no apt)")
    p.add_argument("--out", required=True, help="MUSE-format dictionary to write")
    args = p.parse_args(argv)
    if not args.deb and not args.apt_dir:
        p.error("give --apt-dir (download with apt) or --deb FILE")
    with tempfile.TemporaryDirectory() as tmp:
        deb = args.deb or download(args.apt_dir, args.package, tmp)
        index, data = extract(deb, os.path.join(tmp, "x"))
        pairs = pairs_of(index, data)
    if not pairs:
        raise SystemExit(f"freedict: no single-word pair in {deb}")
    with open(args.out + ".tmp", "w", encoding="utf-8") as f:
        for s, t in pairs:
            f.write(f"{s} {t}\n")
    os.replace(args.out + ".tmp", args.out)
    print(
        f"freedict: wrote {args.out}: {len(pairs)} pairs, {len({s for s, _ in pairs})} source words "
        f"(from {os.path.basename(deb)})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
