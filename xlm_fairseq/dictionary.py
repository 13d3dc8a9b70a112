"""The shared vocabulary convention (design.md §4): fairseq's plain Dictionary whose dict.txt starts with
XLM's ten specials, so ids are `<s>`=0 `<pad>`=1 `</s>`=2 `<unk>`=3 `<special0..9>`=4..13 and words from 14.
That equals XLM's numbering except that pad and eos are swapped (XLM: `</s>`=1, `<pad>`=2)."""
import os
from typing import Iterable, Tuple

from fairseq.data import Dictionary

from .errors import XLMUserError

N_SPECIALS = 10
SPECIALS = [f"<special{i}>" for i in range(N_SPECIALS)]
MASK_WORD = "<special1>"
FIRST_WORD_ID = 4 + N_SPECIALS


class DictionaryError(XLMUserError):
    pass


def write_dictionary(word_counts: Iterable[Tuple[str, int]], path: str) -> int:
    """Write dict.txt: the specials (count 0) then `word count` lines as given (callers sort them by
    decreasing count). Written to a temporary name and renamed, so a crash never leaves half a file.
    Returns the dictionary size including fairseq's 4 symbols."""
    tmp = path + ".tmp"
    n = 4
    with open(tmp, "w", encoding="utf-8") as f:
        for special in SPECIALS:
            f.write(f"{special} 0\n")
            n += 1
        for word, count in word_counts:
            if word in SPECIALS or word in ("<s>", "<pad>", "</s>", "<unk>"):
                continue
            f.write(f"{word} {count}\n")
            n += 1
    os.replace(tmp, path)
    return n


def load_dictionary(path: str) -> Dictionary:
    """Load dict.txt and check that it follows the convention (specials at ids 4..13)."""
    if not os.path.isfile(path):
        raise DictionaryError(f"dictionary {path} not found: build it with `xlm-preprocess build-dict`")
    d = Dictionary.load(path)
    check_dictionary(d, path)
    return d


def check_dictionary(d: Dictionary, path: str = "dict.txt") -> None:
    found = [d[i] for i in range(4, min(len(d), FIRST_WORD_ID))]
    if found != SPECIALS:
        raise DictionaryError(
            f"{path}: ids 4..13 must be {SPECIALS[0]}..{SPECIALS[-1]} (XLM's specials; {MASK_WORD} is the "
            f"mask), found {found[:3]}...; rebuild it with `xlm-preprocess build-dict`"
        )


def mask_index(d: Dictionary) -> int:
    return d.index(MASK_WORD)
