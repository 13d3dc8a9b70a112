"""Data-bin shards (`xlm-preprocess prepare --shards N`, docs/data.md "Shards"): N data-bins DATA_BIN/shard0 ..
DATA_BIN/shard{N-1} that fairseq-train reads as `DATA_BIN/shard0:DATA_BIN/shard1:...`, one per epoch.

Every train file (each language's monolingual text, both sides of each pair) is cut into N contiguous parts of
⌊L/N⌋ or ⌈L/N⌉ of its L lines, part k going to shard k, so that every shard holds every language in the
corpus's proportions (the language sampling of each epoch sees the same mix) and both sides of a pair, cut at
the same line numbers, stay aligned. Contiguous parts keep neighbouring sentences together, which an MLM stream
runs across; the original splits its training stream between processes the same way (facebookresearch/XLM
`xlm/data/loader.py: load_mono_data`, --split_data). Valid and test go to shard 0 only, the folder fairseq-train
reads them (and dict.txt) from.

A part is copied by byte range: one pass finds the line starts of the cuts, then each shard seeks to its range,
so a shard's text costs one read of its own part and its temporary copy lasts while it is binarised."""

import os
import shutil
from typing import Dict, List, Tuple

from .common import PreprocessError, check_positive, count_lines
from .layout import Corpus

SHARD = "shard"  # DATA_BIN/shard0, DATA_BIN/shard1, ...


def shard_dirs(data_bin: str, n: int) -> List[str]:
    return [os.path.join(data_bin, f"{SHARD}{k}") for k in range(n)]


def data_argument(dirs: List[str]) -> str:
    """What fairseq-train takes as DATA: the shard folders joined by ':' (fairseq's utils.split_paths)."""
    return os.pathsep.join(dirs)


def check_shard_count(n: int, data_bin: str) -> None:
    check_positive(n, "--shards")
    if n > 1 and os.pathsep in data_bin:
        raise PreprocessError(
            f"DATA_BIN {data_bin} contains '{os.pathsep}', which fairseq-train reads as a separator between "
            "shards: choose a folder name without it"
        )


def check_enough_lines(paths: List[str], n: int) -> None:
    """Every train file must give each of the n shards at least one line (read only until n lines are seen)."""
    for path in paths:
        lines = 0
        with open(path, "rb") as f:
            for _ in f:
                lines += 1
                if lines >= n:
                    break
        if lines < n:
            raise PreprocessError(
                f"--shards {n}: {path} has only {lines} line(s), so a shard would have no training text for it; "
                f"give --shards {max(lines, 1)} or fewer"
            )


def stale_shards(data_bin: str, n: int) -> List[str]:
    """DATA_BIN/shard{j} folders with j >= n (from an earlier run with more shards)."""
    if not os.path.isdir(data_bin):
        return []
    found = []
    for name in os.listdir(data_bin):
        index = name[len(SHARD) :]
        if (
            name.startswith(SHARD)
            and index.isdigit()
            and int(index) >= n
            and os.path.isdir(os.path.join(data_bin, name))
        ):
            found.append(os.path.join(data_bin, name))
    return sorted(found)


def cut_lines(lines: int, n: int) -> List[int]:
    """The first line of each of the n parts, and `lines` at the end: part k is lines [cuts[k], cuts[k+1])."""
    return [k * lines // n for k in range(n + 1)]


def line_starts(path: str, numbers: List[int]) -> List[int]:
    """The byte offset at which each of the (ascending, 0-based) line numbers starts."""
    offsets = {0: 0}
    pending = sorted(n for n in set(numbers) if n > 0)
    seen = base = i = 0  # newlines before `base`, bytes read
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            if i < len(pending) and seen + block.count(b"\n") >= pending[i]:
                pos = -1
                while i < len(pending):
                    pos = block.find(b"\n", pos + 1)
                    if pos < 0:
                        break
                    seen += 1
                    if seen == pending[i]:
                        offsets[pending[i]] = base + pos + 1
                        i += 1
                seen += block.count(b"\n", pos + 1) if pos >= 0 else 0
            else:
                seen += block.count(b"\n")
            base += len(block)
    return [offsets[n] for n in numbers]


def byte_ranges(path: str, n: int) -> List[Tuple[int, int]]:
    """(start, end) byte offsets of the n parts of a file."""
    lines = count_lines(path)
    if lines < n:
        raise PreprocessError(f"--shards {n}: {path} has only {lines} line(s); give --shards {max(lines, 1)} or fewer")
    starts = line_starts(path, cut_lines(lines, n)[:-1])
    return list(zip(starts, starts[1:] + [os.path.getsize(path)]))


def copy_range(src: str, dst: str, start: int, end: int) -> None:
    with open(src, "rb") as f, open(dst, "wb") as out:
        f.seek(start)
        left = end - start
        while left > 0:
            block = f.read(min(left, 1 << 20))
            if not block:
                break
            out.write(block)
            left -= len(block)


class ShardText:
    """The BPE'd corpus cut into shards: `corpus(k, folder)` is shard k's Corpus with its train parts in
    `folder` (shard 0 also has valid and test, where they are), `write(k, folder)` copies those parts there."""

    def __init__(self, bpe: Corpus, n: int):
        self.bpe, self.n = bpe, n
        self._ranges: Dict[str, List[Tuple[int, int]]] = {}

    def corpus(self, k: int, folder: str) -> Corpus:
        part = Corpus(folder)

        def place(split: str, path: str) -> str:
            return os.path.join(folder, os.path.basename(path)) if split == "train" else path

        for lang, splits in self.bpe.mono.items():
            kept = {s: place(s, p) for s, p in splits.items() if s == "train" or k == 0}
            if kept:
                part.mono[lang] = kept
        for pair, splits in self.bpe.pairs.items():
            kept = {
                s: {lang: place(s, p) for lang, p in sides.items()}
                for s, sides in splits.items()
                if s == "train" or k == 0
            }
            if kept:
                part.pairs[pair] = kept
        return part

    def train_files(self) -> List[str]:
        return self.bpe.all_train_files()

    def write(self, k: int, folder: str) -> None:
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        for path in self.train_files():
            if path not in self._ranges:
                self._ranges[path] = byte_ranges(path, self.n)
            start, end = self._ranges[path][k]
            copy_range(path, os.path.join(folder, os.path.basename(path)), start, end)
