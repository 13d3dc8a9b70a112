"""Throughput of the data pipeline (sentences/s) on English text, with 1 and 2 worker processes:

    tokenize        xlm-preprocess's chain (Moses punctuation normalisation + sacremoses tokenizer)
    apply-bpe       subword-nmt and sentencepiece backends
    binarize        fairseq-preprocess through `binarize`: wall time, and without its start-up (~2-3 s, measured
                    on a 1-line file) once the input is large enough for that difference to be meaningful

and, side by side, the tools it wraps run from their own command lines (`sacremoses normalize tokenize`,
`subword-nmt apply-bpe`) on the same text, as peers.

    python benchmarks/preprocess_throughput.py --input english.txt [--lines 50000] [--workers 1,2]

Without --input the text is English built from the Python documentation that ships with CPython
(pydoc_data.topics), repeated up to --lines; pass real text (e.g. the DDTP English descriptions) for real
numbers. The machine's other processes change these figures: compare columns of one run."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from xlm_preprocess.apply_bpe import apply_file  # noqa: E402
from xlm_preprocess.binarize import binarize_corpus  # noqa: E402
from xlm_preprocess.build_dict import build_dictionary  # noqa: E402
from xlm_preprocess.common import count_lines  # noqa: E402
from xlm_preprocess.layout import discover  # noqa: E402
from xlm_preprocess.learn_bpe import learn  # noqa: E402
from xlm_preprocess.tokenizer import tokenize_file  # noqa: E402


def builtin_english(n_lines: int, path: str) -> str:
    """English sentences from CPython's bundled documentation, repeated to n_lines."""
    from pydoc_data.topics import topics

    sentences = []
    for text in topics.values():
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            for sent in re.split(r"(?<=[.!?])\s+(?=[A-Z])", para):
                words = sent.split()
                if 6 <= len(words) <= 50 and sum(c.isalpha() for c in sent) > 0.6 * len(sent):
                    sentences.append(sent)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n_lines):
            f.write(sentences[i % len(sentences)] + "\n")
    how = f"repeated to {n_lines}" if n_lines > len(sentences) else f"first {n_lines} used"
    return f"pydoc_data.topics ({len(sentences)} distinct sentences, {how})"


def take_lines(src: str, n_lines: int, path: str) -> str:
    with open(src, "rb") as fin, open(path, "wb") as fout:
        for i, line in enumerate(fin):
            if i >= n_lines:
                break
            fout.write(line)
    return src


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_quiet(cmd, stdin_path, stdout_path):
    with open(stdin_path, "rb") as fin, open(stdout_path, "wb") as fout:
        proc = subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode(errors='replace')[-500:]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", help="English text, one sentence per line (default: built-in text)")
    parser.add_argument("--lines", type=int, default=20000, help="sentences to use (default 20000)")
    parser.add_argument("--codes", type=int, default=8000, help="BPE codes / sentencepiece vocabulary size")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--no-peers", action="store_true", help="skip the sacremoses/subword-nmt CLI peers")
    args = parser.parse_args(argv)
    workers = [int(x) for x in args.workers.split(",")]
    bindir = os.path.dirname(sys.executable)

    tmp = tempfile.mkdtemp(prefix="xlm-preprocess-bench-")
    try:
        raw = os.path.join(tmp, "raw.en")
        origin = take_lines(args.input, args.lines, raw) if args.input else builtin_english(args.lines, raw)
        n = count_lines(raw)
        print(f"text: {origin}; {n} sentences, {os.path.getsize(raw) / 1e6:.1f} MB; cpus: {os.cpu_count()}")

        rows = {}  # name -> {workers: sentences/s}
        tok = os.path.join(tmp, "tok.en")
        for w in workers:
            rows.setdefault("tokenize", {})[w] = n / timed(partial(tokenize_file, raw, tok, "en", workers=w))
        codes = {}
        for backend in ("subword-nmt", "sentencepiece"):
            codes[backend] = os.path.join(tmp, f"codes.{backend}")
            sec = timed(
                partial(learn, {"en": [tok]}, codes[backend], args.codes, backend=backend, out=open(os.devnull, "w"))
            )
            print(f"learn-bpe {backend}: {sec:.1f} s for {args.codes} codes (not in the table)")
        for backend in ("subword-nmt", "sentencepiece"):
            for w in workers:
                out = os.path.join(tmp, f"bpe.{backend}")
                rows.setdefault(f"apply-bpe {backend}", {})[w] = n / timed(
                    partial(apply_file, tok, out, codes[backend], backend, workers=w)
                )

        data = os.path.join(tmp, "txt")
        os.makedirs(data)
        shutil.copy(os.path.join(tmp, "bpe.subword-nmt"), os.path.join(data, "train.en"))
        build_dictionary([os.path.join(data, "train.en")], os.path.join(tmp, "dict.txt"))
        one = os.path.join(tmp, "one")
        os.makedirs(one)
        with open(os.path.join(one, "train.en"), "w") as f:
            f.write("a\n")
        startup = min(
            timed(
                lambda: binarize_corpus(
                    discover(one),
                    os.path.join(tmp, "dict.txt"),
                    os.path.join(tmp, "bin-one"),
                    out=open(os.devnull, "w"),
                )
            )
            for _ in range(2)
        )
        for w in workers:
            sec = timed(
                partial(
                    binarize_corpus,
                    discover(data),
                    os.path.join(tmp, "dict.txt"),
                    os.path.join(tmp, f"bin{w}"),
                    workers=w,
                    out=open(os.devnull, "w"),
                )
            )
            rows.setdefault("binarize (fairseq-preprocess, wall)", {})[w] = n / sec
            # without the start-up, when the run is long enough for the difference to mean something
            net = sec - startup
            rows.setdefault("binarize without start-up", {})[w] = n / net if net > 0.5 * sec else None
        print(f"fairseq-preprocess start-up: {startup:.1f} s per call (a 1-line file)")

        if not args.no_peers:
            for w in workers:
                cmd = [os.path.join(bindir, "sacremoses"), "-l", "en", "-j", str(w), "-q", "normalize", "tokenize"]
                sec = timed(partial(run_quiet, cmd, raw, os.path.join(tmp, "peer.tok")))
                rows.setdefault("peer: sacremoses CLI normalize+tokenize", {})[w] = n / sec
                cmd = [
                    os.path.join(bindir, "subword-nmt"),
                    "apply-bpe",
                    "-c",
                    codes["subword-nmt"],
                    "--num-workers",
                    str(w),
                    "--input",
                    tok,
                ]
                sec = timed(partial(run_quiet, cmd, tok, os.path.join(tmp, "peer.bpe")))
                rows.setdefault("peer: subword-nmt apply-bpe CLI", {})[w] = n / sec

        width = max(len(k) for k in rows) + 2
        print()
        print("sentences/s".ljust(width) + "".join(f"{f'workers={w}':>14}" for w in workers))
        for name, values in rows.items():
            print(
                name.ljust(width)
                + "".join(f"{values[w]:>14,.0f}" if values[w] else f"{'(too short)':>14}" for w in workers)
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
