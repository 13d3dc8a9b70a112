"""Finding and opening binarised files in a data-bin folder (docs/data.md).

Monolingual: `{split}.{lang}` (our layout) or `{split}.{lang}-None.{lang}` (what a plain
`fairseq-preprocess --only-source` writes). Parallel: `{split}.{a}-{b}.{a|b}` with a < b.

Shards (docs/data.md): DATA = `bin0:bin1:...` is checked whole when the task is set up (check_shards), so that
a mistyped or incomplete shard stops the run with one line, not with fairseq's FileNotFoundError (fairseq-train
lists every DATA folder before loading data) or at the epoch that reads it."""

import os
from typing import Dict, List, Sequence

import numpy as np
from fairseq.data import data_utils, indexed_dataset

from ..dictionary import load_dictionary
from ..errors import DataError
from .stream_dataset import flat_tokens


def dataset_exists(prefix: str) -> bool:
    return (
        indexed_dataset.dataset_exists(prefix, impl="mmap")
        or os.path.exists(prefix + ".bin")
        and os.path.exists(prefix + ".idx")
    )


def mono_prefix_candidates(data_dir: str, split: str, lang: str) -> List[str]:
    return [os.path.join(data_dir, f"{split}.{lang}"), os.path.join(data_dir, f"{split}.{lang}-None.{lang}")]


def pair_prefix_candidates(data_dir: str, split: str, a: str, b: str, side: str) -> List[str]:
    lo, hi = sorted((a, b))
    return [os.path.join(data_dir, f"{split}.{lo}-{hi}.{side}")]


def find_prefix(candidates: List[str], what: str) -> str:
    for prefix in candidates:
        if dataset_exists(prefix):
            return prefix
    looked = ", ".join(p + ".bin/.idx" for p in candidates)
    raise DataError(f"no {what}: looked for {looked}")


def load_indexed(prefix: str, dictionary, what: str):
    ds = data_utils.load_indexed_dataset(prefix, dictionary, dataset_impl="mmap")
    if ds is None:
        raise DataError(f"cannot read {what} at {prefix}.bin/.idx")
    if len(ds) == 0:
        raise DataError(f"{what} at {prefix}.bin is empty")
    return ds


def check_ids(tokens: np.ndarray, dictionary, prefix: str) -> None:
    """Binarised with another dictionary: ids beyond ours, or not a single `</s>`-terminated sentence."""
    check_id_range(
        int(tokens.max()) if len(tokens) else 0, int(tokens[-1]) if len(tokens) else None, dictionary, prefix
    )


def check_id_range(top: int, last, dictionary, prefix: str) -> None:
    """check_ids from the largest id of the file and its last token (None: an empty file)."""
    if top >= len(dictionary):
        raise DataError(
            f"{prefix}.bin holds token id {top} but dict.txt has {len(dictionary)} entries: the data was "
            "binarised with another dictionary; rebinarise with this dict.txt (xlm-preprocess binarize)"
        )
    if last is not None and last != dictionary.eos():
        raise DataError(
            f"{prefix}.bin does not end with </s> (id {dictionary.eos()}): it was not written by "
            "fairseq-preprocess with this dict.txt"
        )


CHECK_CHUNK_TOKENS = 1 << 22


def check_corpus_ids(ds, dictionary, prefix: str) -> None:
    """check_ids on a whole binarised corpus, read from its .bin file in chunks of CHECK_CHUNK_TOKENS tokens.
    Not through the dataset's memory map: every page read through a map counts in the process's resident memory
    while it is mapped, so checking there added the .bin's size for each step that loads it (+14 MB per load of
    a 12.8 MB .bin, measured at the start of fairseq-train; design.md §11: memory follows the batch)."""
    index = getattr(ds, "_index", None)
    path = prefix + ".bin"
    if index is None or not os.path.isfile(path):  # not an mmap dataset: its tokens are in memory anyway
        check_ids(flat_tokens(ds), dictionary, prefix)
        return
    top, last = 0, None
    with open(path, "rb") as f:
        while True:
            chunk = np.fromfile(f, dtype=index.dtype, count=CHECK_CHUNK_TOKENS)
            if not len(chunk):
                break
            top, last = max(top, int(chunk.max())), int(chunk[-1])
    check_id_range(top, last, dictionary, prefix)


def load_mono(data_dir, split, lang, dictionary):
    prefix = find_prefix(mono_prefix_candidates(data_dir, split, lang), f"{split} data for language '{lang}'")
    ds = load_indexed(prefix, dictionary, f"{split} data for language '{lang}'")
    check_corpus_ids(ds, dictionary, prefix)
    return ds


def load_pair(data_dir, split, a, b, dictionary):
    """The two sides (in the requested order a, b) of the parallel split."""
    sides = []
    for lang in (a, b):
        prefix = find_prefix(
            pair_prefix_candidates(data_dir, split, a, b, lang), f"{split} parallel data for {a}-{b} (side {lang})"
        )
        ds = load_indexed(prefix, dictionary, f"{split} parallel data {a}-{b}")
        check_corpus_ids(ds, dictionary, prefix)
        sides.append((prefix, ds))
    (pa, da), (pb, db) = sides
    if len(da) != len(db):
        raise DataError(
            f"{pa}.bin has {len(da)} sentences but {pb}.bin has {len(db)}: the sides of a pair must align line by line"
        )
    return da, db


def split_candidates(data_dir: str, split: str, langs: Sequence[str]) -> Dict[str, List[str]]:
    """{what: prefix candidates in `data_dir`} of every monolingual and parallel dataset of `split` among `langs`."""
    found = {f"{split} data of '{lang}'": mono_prefix_candidates(data_dir, split, lang) for lang in langs}
    for i, a in enumerate(sorted(langs)):
        for b in sorted(langs)[i + 1 :]:
            for side in (a, b):
                found[f"{split} parallel data {a}-{b} (side {side})"] = pair_prefix_candidates(
                    data_dir, split, a, b, side
                )
    return found


def check_shards(data_dirs: Sequence[str], split: str, langs: Sequence[str]) -> None:
    """Every shard of DATA is a folder holding the `split` datasets of `langs` that the first holds, and any
    dict.txt it has is the first one's: a DataError naming the shard and the missing file otherwise."""
    first = data_dirs[0]
    needed = [what for what, c in split_candidates(first, split, langs).items() if any(map(dataset_exists, c))]
    symbols = None
    for k, folder in enumerate(data_dirs[1:], 1):
        shard = f"data shard {k} of {os.pathsep.join(data_dirs)}"
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: no such folder ({shard}); check the path")
        candidates = split_candidates(folder, split, langs)
        for what in needed:
            if not any(map(dataset_exists, candidates[what])):
                raise DataError(
                    f"{folder}: no {candidates[what][0]}.bin/.idx ({what}, which the first shard {first} has; "
                    f"{shard}): every shard must hold the same training files (xlm-preprocess prepare --shards N "
                    "writes them so)"
                )
        dict_path = os.path.join(folder, "dict.txt")
        if os.path.exists(dict_path):
            symbols = symbols or load_dictionary(os.path.join(first, "dict.txt")).symbols
            if load_dictionary(dict_path).symbols != symbols:
                raise DataError(
                    f"{dict_path} differs from {os.path.join(first, 'dict.txt')} ({shard}): the shards must be "
                    "binarised with one dict.txt (xlm-preprocess prepare --shards N does)"
                )
