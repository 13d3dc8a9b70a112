"""WMT news test sets -> RAW_DIR/{split}.{a}-{b}.{a|b}, as XLM's get-data-nmt.sh (en-fr: newstest2013 valid,
newstest2014 test; de-en: newstest2013 / newstest2016; en-ro: newsdev2016 / newstest2016).

    # with internet, through sacrebleu (it downloads and caches the sets):
    #   sacrebleu -t wmt14 -l en-fr --echo src   and   sacrebleu -t wmt14 -l en-fr --echo ref
    python -m xlm_preprocess.corpora.wmt --testset wmt14 --direction en-fr --split test --output raw
    python -m xlm_preprocess.corpora.wmt --testset wmt13 --direction en-fr --split valid --output raw
    # files you have: WMT's sgm (<seg id=..>...</seg>, as input-from-sgm.perl reads it) or plain text
    python -m xlm_preprocess.corpora.wmt --direction en-fr --src newstest2014-fren-src.en.sgm \\
        --ref newstest2014-fren-ref.fr.sgm --split test --output raw

`--also-mono` writes {split}.{a} and {split}.{b} too (XLM links its monolingual valid/test files to the
parallel ones, for the MLM/CLM validation perplexities)."""

import os
import re
import shutil
import subprocess
import sys

from ..common import LineReader, PreprocessError, atomic_output, check_input_file, log
from . import clean_line
from .opus import parse_pair

_SEG = re.compile(r"<seg[^>]*>(.*)</seg>")


def read_segments(path: str):
    """The sentences of a WMT sgm file (lines starting with `<seg `, tags removed, spaces collapsed, as
    sacrebleu and input-from-sgm.perl read them) or of a plain text file (one per line)."""
    check_input_file(path, "--src/--ref")
    lines = list(LineReader(path))
    if any(line.lstrip().startswith("<seg") for line in lines):
        segments = []
        for line in lines:
            if line.lstrip().startswith("<seg"):
                m = _SEG.search(line)
                segments.append(clean_line(m.group(1) if m else re.sub(r"<[^>]*>", "", line)))
        return segments
    return [clean_line(line) for line in lines]


def sacrebleu_command(testset: str, direction: str, side: str):
    exe = os.path.join(os.path.dirname(sys.executable), "sacrebleu")
    exe = exe if os.path.isfile(exe) else (shutil.which("sacrebleu") or "sacrebleu")
    return [exe, "-t", testset, "-l", direction, "--echo", side]


def fetch_with_sacrebleu(testset: str, direction: str, side: str):
    cmd = sacrebleu_command(testset, direction, side)
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        last = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise PreprocessError(
            f"`{' '.join(cmd[1:])}` failed: {last} (it needs internet, or the set in sacrebleu's cache ~/.sacrebleu)"
        )
    return [clean_line(x) for x in proc.stdout.decode("utf-8").split("\n")[:-1]]


def add_arguments(parser):
    parser.add_argument("--direction", required=True, help="source-target, e.g. en-fr (src = en, ref = fr)")
    parser.add_argument("--output", required=True, help="RAW_DIR to write {split}.{a}-{b}.{a|b} into")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--testset", help="sacrebleu test set name (wmt13, wmt14, wmt16, ...): downloads")
    parser.add_argument("--src", help="local source file (.sgm or plain text)")
    parser.add_argument("--ref", help="local reference file (.sgm or plain text)")
    parser.add_argument("--also-mono", action="store_true", help="also write {split}.{a} and {split}.{b}")
    parser.add_argument("--dry-run", action="store_true", help="print the sacrebleu commands and stop")


def main(args) -> None:
    src_lang, _, tgt_lang = args.direction.partition("-")
    a, b = parse_pair(args.direction)
    if args.testset:
        if args.src or args.ref:
            raise PreprocessError("give either --testset (sacrebleu) or --src/--ref (local files), not both")
        if args.dry_run:
            for side in ("src", "ref"):
                print(" ".join(["sacrebleu"] + sacrebleu_command(args.testset, args.direction, side)[1:]))
            return
        texts = {
            src_lang: fetch_with_sacrebleu(args.testset, args.direction, "src"),
            tgt_lang: fetch_with_sacrebleu(args.testset, args.direction, "ref"),
        }
        origin = f"sacrebleu {args.testset}"
    else:
        if not (args.src and args.ref):
            raise PreprocessError("give --testset NAME, or both --src FILE and --ref FILE")
        texts = {src_lang: read_segments(args.src), tgt_lang: read_segments(args.ref)}
        origin = f"{args.src} + {args.ref}"
    if len(texts[a]) != len(texts[b]):
        names = {src_lang: args.src or "src", tgt_lang: args.ref or "ref"}
        raise PreprocessError(
            f"the two sides differ in length: {names[a]} has {len(texts[a])} sentences, {names[b]} has {len(texts[b])}"
        )
    if not texts[a]:
        raise PreprocessError(f"no sentences in {origin}")
    os.makedirs(args.output, exist_ok=True)
    targets = {lang: [os.path.join(args.output, f"{args.split}.{a}-{b}.{lang}")] for lang in (a, b)}
    if args.also_mono:
        for lang in (a, b):
            targets[lang].append(os.path.join(args.output, f"{args.split}.{lang}"))
    for lang in (a, b):
        for path in targets[lang]:
            with atomic_output(path) as out:
                out.write("".join(line + "\n" for line in texts[lang]))
    log(f"wmt: {origin}")
    print(f"wmt [{a}-{b}]: {args.split} {len(texts[a])} pairs in {args.output}")


if __name__ == "__main__":
    from ..cli import main as cli_main

    sys.exit(cli_main(["wmt"] + sys.argv[1:]))
