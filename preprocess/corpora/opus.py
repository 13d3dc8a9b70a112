"""OPUS parallel corpora -> RAW_DIR/{train,valid,test}.{a}-{b}.{a|b}, as XLM's get-data-para.sh (the corpora
of a pair concatenated, 5000 + 5000 pairs held out for valid and test).

    # with internet: OPUS's Moses-format zips, https://object.pouta.csc.fi/OPUS-{NAME}/{VERSION}/moses/{a}-{b}.txt.zip
    python -m xlm_preprocess.corpora.opus --pair en-fr --corpus Europarl/v8 --corpus MultiUN/v1 \\
        --download --download-dir opus --output raw
    # zips you have, or unzipped Moses files (PREFIX.en + PREFIX.fr, e.g. Europarl.en-fr.en / .fr)
    python -m xlm_preprocess.corpora.opus --pair en-fr --zip en-fr.txt.zip --moses data/Europarl.en-fr --output raw

Pairs with a blank side are dropped (counted); both files of a source must have the same number of lines."""

import os
import sys
import zipfile

from ..common import (
    LineReader,
    PreprocessError,
    atomic_output,
    check_lang,
    count_lines,
    find_bad_lines,
    log,
    temp_name,
)
from . import add_split_arguments, download, remove_quietly, split_aligned

URL = "https://object.pouta.csc.fi/OPUS-{name}/{version}/moses/{a}-{b}.txt.zip"


def parse_pair(text: str):
    a, sep, b = (text or "").partition("-")
    if not sep:
        raise PreprocessError(f"--pair: expected two languages like en-fr, got '{text}'")
    check_lang(a, "--pair")
    check_lang(b, "--pair")
    if a == b:
        raise PreprocessError(f"--pair {text}: the two languages must differ")
    return tuple(sorted((a, b)))


def corpus_url(spec: str, a: str, b: str) -> str:
    name, sep, version = spec.partition("/")
    if not sep or not name or not version:
        raise PreprocessError(f"--corpus: expected NAME/VERSION like Europarl/v8, got '{spec}'")
    return URL.format(name=name, version=version, a=a, b=b)


def unzip_pair(path: str, a: str, b: str, folder: str):
    """Extract the `*.{a}-{b}.{a}` and `*.{a}-{b}.{b}` members of an OPUS Moses zip; return their paths."""
    try:
        with zipfile.ZipFile(path) as zf:
            sides = {}
            for lang in (a, b):
                members = [m for m in zf.namelist() if m.endswith(f".{a}-{b}.{lang}")]
                if len(members) != 1:
                    raise PreprocessError(
                        f"--zip {path}: expected one file ending in .{a}-{b}.{lang}, found {len(members)}"
                    )
                dest = temp_name(os.path.join(folder, f"opus.{os.path.basename(members[0])}"))
                with zf.open(members[0]) as src, atomic_output(dest, binary=True) as out:
                    while True:
                        block = src.read(1 << 20)
                        if not block:
                            break
                        out.write(block)
                sides[lang] = dest
            return sides
    except (zipfile.BadZipFile, OSError) as e:
        raise PreprocessError(f"--zip {path}: not a readable zip file ({e})") from None


def append_pairs(sides, a: str, b: str, outs, skip_bad_lines: bool, what: str):
    """Append the aligned lines of sides[a]/sides[b] to outs[a]/outs[b]; return (kept, blank, bad)."""
    na, nb = count_lines(sides[a]), count_lines(sides[b])
    if na != nb:
        raise PreprocessError(f"{what}: the two sides differ in length: {sides[a]} has {na} lines, {sides[b]} has {nb}")
    bad = set()
    if skip_bad_lines:
        bad = find_bad_lines(sides[a]) | find_bad_lines(sides[b])
    kept = blank = 0
    for line_a, line_b in zip(LineReader(sides[a], drop_lines=bad), LineReader(sides[b], drop_lines=bad)):
        line_a, line_b = " ".join(line_a.split()), " ".join(line_b.split())
        if not line_a or not line_b:
            blank += 1
            continue
        outs[a].write(line_a + "\n")
        outs[b].write(line_b + "\n")
        kept += 1
    return kept, blank, len(bad)


def add_arguments(parser):
    parser.add_argument("--pair", required=True, help="two languages, e.g. en-fr")
    parser.add_argument("--output", required=True, help="RAW_DIR to write {split}.{a}-{b}.{a|b} into")
    parser.add_argument(
        "--corpus",
        action="append",
        default=[],
        metavar="NAME/VERSION",
        help="OPUS corpus to download with --download (repeatable), e.g. Europarl/v8",
    )
    parser.add_argument("--download", action="store_true", help="download the --corpus zips (wget/curl)")
    parser.add_argument("--download-dir", default=".", help="where --download puts the zips")
    parser.add_argument("--zip", action="append", default=[], help="a local OPUS Moses zip (repeatable)")
    parser.add_argument(
        "--moses",
        action="append",
        default=[],
        metavar="PREFIX",
        help="local Moses files PREFIX.{a} and PREFIX.{b} (repeatable)",
    )
    parser.add_argument("--skip-bad-lines", action="store_true", help="drop pairs with non-UTF-8 lines")
    parser.add_argument("--dry-run", action="store_true", help="print the download commands and stop")
    add_split_arguments(parser)


def main(args) -> None:
    a, b = parse_pair(args.pair)
    zips = list(args.zip)
    if args.corpus and not args.download:
        raise PreprocessError("--corpus needs --download (or pass the zip you have with --zip)")
    for spec in args.corpus:
        url = corpus_url(spec, a, b)
        name = spec.replace("/", "-") + f".{a}-{b}.txt.zip"
        zips.append(download(url, os.path.join(args.download_dir, name), args.dry_run))
    if args.dry_run:
        return
    if not zips and not args.moses:
        raise PreprocessError("no input: give --zip FILE, --moses PREFIX, or --corpus NAME/VERSION --download")
    os.makedirs(args.output, exist_ok=True)
    merged = {lang: temp_name(os.path.join(args.output, f"opus.{a}-{b}.all.{lang}")) for lang in (a, b)}
    extracted = []
    try:
        with atomic_output(merged[a]) as out_a, atomic_output(merged[b]) as out_b:
            outs = {a: out_a, b: out_b}
            sources = []
            for path in zips:
                if not os.path.isfile(path):
                    raise PreprocessError(f"--zip {path}: no such file")
                sides = unzip_pair(path, a, b, args.output)
                extracted += list(sides.values())
                sources.append((sides, f"--zip {path}"))
            for prefix in args.moses:
                sides = {lang: f"{prefix}.{lang}" for lang in (a, b)}
                for path in sides.values():
                    if not os.path.isfile(path):
                        raise PreprocessError(f"--moses {prefix}: {path} is missing")
                sources.append((sides, f"--moses {prefix}"))
            for sides, what in sources:
                kept, blank, bad = append_pairs(sides, a, b, outs, args.skip_bad_lines, what)
                log(
                    f"opus: {what}: {kept} pairs"
                    + (f", {blank} with a blank side dropped" if blank else "")
                    + (f", {bad} with invalid UTF-8 dropped" if bad else "")
                )
        outputs = {
            s: {lang: os.path.join(args.output, f"{s}.{a}-{b}.{lang}") for lang in (a, b)}
            for s in ("train", "valid", "test")
        }
        counts = split_aligned(merged, outputs, args.valid_size, args.test_size, args.seed)
    finally:
        for path in list(merged.values()) + extracted:
            remove_quietly(path)
    print(
        f"opus [{a}-{b}]: train {counts['train']}, valid {counts['valid']}, test {counts['test']} pairs "
        f"in {args.output}"
    )


if __name__ == "__main__":
    from ..cli import main as cli_main

    sys.exit(cli_main(["opus"] + sys.argv[1:]))
