"""Corpus getters that write a RAW_DIR for `xlm-preprocess prepare` (facebookresearch/XLM `get-data-*.sh`):

    python -m xlm_preprocess.corpora.wikipedia   Wikipedia dump -> train/valid/test.{lang}      (get-data-wiki.sh)
    python -m xlm_preprocess.corpora.opus        OPUS Moses pairs -> train/valid/test.{a}-{b}.*   (get-data-para.sh)
    python -m xlm_preprocess.corpora.wmt         WMT news test sets -> {split}.{a}-{b}.*          (get-data-nmt.sh)

(also `xlm-preprocess wikipedia|opus|wmt`). With internet they download with wget or curl (`--download`;
`--dry-run` prints the commands); every one of them also runs on local files, which is what the tests do.
This module holds what they share: downloading, and the seeded train/valid/test split."""

import os
import random
import shutil
import subprocess
from contextlib import ExitStack
from typing import Dict, List, Optional

from ..common import LineReader, PreprocessError, atomic_output, log


def download_command(url: str, dest: str) -> List[str]:
    """wget (resumable) if installed, else curl; the file is written to DEST.part and renamed when complete."""
    part = dest + ".part"
    if shutil.which("wget"):
        return ["wget", "-c", "-O", part, url]
    if shutil.which("curl"):
        return ["curl", "-L", "-f", "-C", "-", "-o", part, url]
    raise PreprocessError("downloading needs wget or curl; install one, or download the file yourself and pass it")


def download(url: str, dest: str, dry_run: bool = False) -> str:
    if os.path.isfile(dest):
        log(f"using {dest} (already downloaded)")
        return dest
    cmd = download_command(url, dest)
    if dry_run:
        print(" ".join(cmd) + f" && mv {dest}.part {dest}")
        return dest
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    log(f"downloading {url}")
    if subprocess.run(cmd).returncode != 0:
        raise PreprocessError(f"download of {url} failed (partial file kept as {dest}.part; rerun to resume)")
    os.replace(dest + ".part", dest)
    return dest


def choose_heldout(n_lines: int, valid_size: int, test_size: int, seed: int) -> Dict[int, str]:
    """Line index -> 'valid' or 'test' for `valid_size + test_size` lines drawn at random (seeded); every other
    line goes to train. XLM shuffles everything with `shuf` and takes the last lines; this keeps train in
    corpus order and never holds the corpus in memory."""
    if valid_size < 0 or test_size < 0:
        raise PreprocessError("--valid-size and --test-size must be 0 or more")
    if valid_size + test_size >= n_lines:
        raise PreprocessError(
            f"the corpus has {n_lines} lines: not enough for --valid-size {valid_size} and "
            f"--test-size {test_size} plus training lines; lower them"
        )
    picks = random.Random(seed).sample(range(n_lines), valid_size + test_size)
    heldout = {i: "valid" for i in picks[:valid_size]}
    heldout.update({i: "test" for i in picks[valid_size:]})
    return heldout


def split_aligned(
    sources: Dict[str, str], outputs: Dict[str, Dict[str, str]], valid_size: int, test_size: int, seed: int
) -> Dict[str, int]:
    """Split line-aligned files `sources` ({key: path}, all the same length) into `outputs`
    ({split: {key: path}}) with `choose_heldout`. Returns the line count of each split."""
    keys = sorted(sources)
    readers = [iter(LineReader(sources[k])) for k in keys]
    n_lines = sum(1 for _ in LineReader(sources[keys[0]]))
    heldout = choose_heldout(n_lines, valid_size, test_size, seed)
    counts = {"train": 0, "valid": 0, "test": 0}
    with ExitStack() as stack:
        files = {split: {k: stack.enter_context(atomic_output(outputs[split][k])) for k in keys} for split in outputs}
        for i, lines in enumerate(zip(*readers)):
            split = heldout.get(i, "train")
            counts[split] += 1
            if split in files:
                for k, line in zip(keys, lines):
                    files[split][k].write(line + "\n")
    return counts


def add_split_arguments(parser, valid: int = 5000, test: int = 5000, seed: int = 42) -> None:
    parser.add_argument("--valid-size", type=int, default=valid, help=f"lines held out for valid (default {valid})")
    parser.add_argument("--test-size", type=int, default=test, help=f"lines held out for test (default {test})")
    parser.add_argument("--seed", type=int, default=seed, help="seed of the held-out draw")


def clean_line(text: str) -> str:
    return " ".join(text.split())


def remove_quietly(path: Optional[str]) -> None:
    if path and os.path.exists(path):
        os.remove(path)
