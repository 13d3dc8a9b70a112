"""The shared vocabulary convention, without torch: fairseq's plain Dictionary whose dict.txt starts with XLM's
ten specials, so ids are `<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3 `<special0..9>`=4..13 and words from 14. That
equals XLM's numbering (facebookresearch/XLM `xlm/data/dictionary.py`) except that pad and eos are swapped
(XLM: `</s>`=1, `<pad>`=2). xlm_fairseq.dictionary loads such a file as a fairseq Dictionary."""

import os
from typing import Iterable, List, Tuple

FAIRSEQ_SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>"]
N_SPECIALS = 10
SPECIALS = [f"<special{i}>" for i in range(N_SPECIALS)]
MASK_WORD = "<special1>"
FIRST_WORD_ID = len(FAIRSEQ_SYMBOLS) + N_SPECIALS


class DictionaryError(ValueError):
    """dict.txt is missing or does not follow the convention."""


def write_dictionary(word_counts: Iterable[Tuple[str, int]], path: str) -> int:
    """Write dict.txt: the specials (count 0) then `word count` lines as given (callers sort them by
    decreasing count). Written to a temporary name and renamed, so a crash never leaves half a file.
    Returns the dictionary size including fairseq's 4 symbols."""
    tmp = path + ".tmp"
    n = len(FAIRSEQ_SYMBOLS)
    with open(tmp, "w", encoding="utf-8") as f:
        for special in SPECIALS:
            f.write(f"{special} 0\n")
            n += 1
        for word, count in word_counts:
            if word in SPECIALS or word in FAIRSEQ_SYMBOLS:
                continue
            f.write(f"{word} {count}\n")
            n += 1
    os.replace(tmp, path)
    return n


def check_symbols(symbols: List[str], path: str = "dict.txt") -> None:
    """`symbols` in id order (fairseq's four first) must have the specials at ids 4..13."""
    found = symbols[len(FAIRSEQ_SYMBOLS) : FIRST_WORD_ID]
    if found != SPECIALS:
        raise DictionaryError(
            f"{path}: ids 4..13 must be {SPECIALS[0]}..{SPECIALS[-1]} (XLM's specials; {MASK_WORD} is the "
            f"mask), found {found[:3]}...; rebuild it with `xlm-preprocess build-dict`"
        )


def read_symbols(path: str) -> List[str]:
    """The symbols of a fairseq dict.txt in id order (fairseq's four first), checked against the convention:
    what the preprocessing needs of a dictionary, without importing fairseq."""
    if not os.path.isfile(path):
        raise DictionaryError(f"dictionary {path} not found: build it with `xlm-preprocess build-dict`")
    symbols = list(FAIRSEQ_SYMBOLS)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\n").rsplit(" ", 2 if line.rstrip().endswith("#fairseq:overwrite") else 1)
            if len(fields) < 2 or not fields[1].lstrip("-").isdigit():
                raise DictionaryError(f"{path}:{lineno}: expected 'word count', found '{line.rstrip()}'")
            symbols.append(fields[0])
    check_symbols(symbols, path)
    return symbols
