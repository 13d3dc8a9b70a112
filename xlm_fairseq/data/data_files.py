"""Finding and opening binarised files in a data-bin folder (docs/data.md).

Monolingual: `{split}.{lang}` (our layout) or `{split}.{lang}-None.{lang}` (what a plain
`fairseq-preprocess --only-source` writes). Parallel: `{split}.{a}-{b}.{a|b}` with a < b."""

import os
from typing import List

import numpy as np
from fairseq.data import data_utils, indexed_dataset

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
    top = int(tokens.max()) if len(tokens) else 0
    if top >= len(dictionary):
        raise DataError(
            f"{prefix}.bin holds token id {top} but dict.txt has {len(dictionary)} entries: the data was "
            "binarised with another dictionary; rebinarise with this dict.txt (xlm-preprocess binarize)"
        )
    if len(tokens) and int(tokens[-1]) != dictionary.eos():
        raise DataError(
            f"{prefix}.bin does not end with </s> (id {dictionary.eos()}): it was not written by "
            "fairseq-preprocess with this dict.txt"
        )


def load_mono(data_dir, split, lang, dictionary):
    prefix = find_prefix(mono_prefix_candidates(data_dir, split, lang), f"{split} data for language '{lang}'")
    ds = load_indexed(prefix, dictionary, f"{split} data for language '{lang}'")
    check_ids(flat_tokens(ds), dictionary, prefix)
    return ds


def load_pair(data_dir, split, a, b, dictionary):
    """The two sides (in the requested order a, b) of the parallel split."""
    sides = []
    for lang in (a, b):
        prefix = find_prefix(
            pair_prefix_candidates(data_dir, split, a, b, lang), f"{split} parallel data for {a}-{b} (side {lang})"
        )
        ds = load_indexed(prefix, dictionary, f"{split} parallel data {a}-{b}")
        check_ids(flat_tokens(ds), dictionary, prefix)
        sides.append((prefix, ds))
    (pa, da), (pb, db) = sides
    if len(da) != len(db):
        raise DataError(
            f"{pa}.bin has {len(da)} sentences but {pb}.bin has {len(db)}: the sides of a pair must align line by line"
        )
    return da, db
