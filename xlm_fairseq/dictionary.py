"""The shared vocabulary convention (xlm_preprocess/vocabulary.py, which the preprocessing uses without torch)
as fairseq's plain Dictionary."""

import os

from fairseq.data import Dictionary

from xlm_preprocess.vocabulary import (  # noqa: F401  (re-exported)
    FIRST_WORD_ID,
    MASK_WORD,
    N_SPECIALS,
    SPECIALS,
    check_symbols,
    write_dictionary,
)
from xlm_preprocess.vocabulary import DictionaryError as _ConventionError

from .errors import XLMUserError


class DictionaryError(XLMUserError):
    pass


def load_dictionary(path: str) -> Dictionary:
    """Load dict.txt and check that it follows the convention (specials at ids 4..13)."""
    if not os.path.isfile(path):
        raise DictionaryError(f"dictionary {path} not found: build it with `xlm-preprocess build-dict`")
    d = Dictionary.load(path)
    check_dictionary(d, path)
    return d


def check_dictionary(d: Dictionary, path: str = "dict.txt") -> None:
    try:
        check_symbols(list(d.symbols), path)
    except _ConventionError as e:
        raise DictionaryError(str(e)) from None


def mask_index(d: Dictionary) -> int:
    return d.index(MASK_WORD)
