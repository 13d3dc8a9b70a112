"""XLM vocabularies (facebookresearch/XLM `xlm/data/dictionary.py`) and the id mapping between XLM's numbering and ours.

XLM: `<s>`=0 `</s>`=1 `<pad>`=2 `<unk>`=3 `<special0..9>`=4..13, words from 14 in vocab-file order.
Ours (fairseq's Dictionary, xlm_fairseq/dictionary.py): the same with pad and eos swapped (`<pad>`=1,
`</s>`=2). The mapping is its own inverse, so one permutation serves both directions.
"""

import os
from typing import Dict, List, Optional, Tuple

import torch
from fairseq.data import Dictionary

from ..dictionary import FIRST_WORD_ID, SPECIALS, check_dictionary, write_dictionary
from . import ConvertError

XLM_HEAD = ["<s>", "</s>", "<pad>", "<unk>"] + SPECIALS


def vocab_permutation(n_words: int) -> torch.Tensor:
    """Row index such that `ours = xlm[perm]` (and `xlm = ours[perm]`): ids 1 and 2 swapped."""
    perm = torch.arange(n_words)
    perm[1], perm[2] = 2, 1
    return perm


class XLMVocab:
    """Words in XLM's id order (ids >= 14; the 14 specials are implicit) with their counts."""

    def __init__(self, words: List[Tuple[str, int]], source: str, skipped: int = 0):
        self.words = words
        self.source = source
        self.skipped = skipped

    def __len__(self) -> int:
        return FIRST_WORD_ID + len(self.words)

    def id2word(self) -> List[str]:
        return XLM_HEAD + [w for w, _ in self.words]

    @classmethod
    def read(cls, path: str) -> "XLMVocab":
        """fastBPE `getvocab` output, read as XLM's Dictionary.read_vocab: a line is skipped if it contains
        U+2028, does not split into exactly 2 fields, or repeats a token (the specials included)."""
        if not os.path.isfile(path):
            raise ConvertError(f"--vocab {path}: no such file")
        seen = set(XLM_HEAD)
        words, skipped = [], 0
        try:
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if "\u2028" in line:
                        skipped += 1
                        continue
                    fields = line.rstrip().split()
                    if len(fields) != 2 or fields[0] in seen:
                        skipped += 1
                        continue
                    if not fields[1].isdigit():
                        raise ConvertError(
                            f"--vocab {path}, line {lineno}: count '{fields[1]}' is not a "
                            "number; expected `token count` lines (fastBPE getvocab output)"
                        )
                    seen.add(fields[0])
                    words.append((fields[0], int(fields[1])))
        except UnicodeDecodeError as e:
            raise ConvertError(
                f"--vocab {path}: not UTF-8 text ({e.reason} at byte {e.start}); give the "
                "vocabulary file (`token count` lines)"
            ) from None
        if not words:
            raise ConvertError(f"--vocab {path}: no `token count` line in it")
        return cls(words, path, skipped)

    @classmethod
    def from_checkpoint(cls, id2word: Dict, counts: Optional[Dict], source: str) -> "XLMVocab":
        """From an original checkpoint's dico_id2word / dico_counts."""
        try:
            ids = sorted(int(i) for i in id2word)
        except (TypeError, ValueError):
            raise ConvertError(f"{source}: dico_id2word has non-integer ids") from None
        if ids != list(range(len(ids))):
            raise ConvertError(f"{source}: dico_id2word ids are not 0..{len(ids) - 1}")
        table = {int(i): str(w) for i, w in id2word.items()}
        head = [table.get(i) for i in range(min(len(ids), FIRST_WORD_ID))]
        if head != XLM_HEAD:
            raise ConvertError(
                f"{source}: dico_id2word does not start with XLM's specials ({XLM_HEAD[:4]}...), found {head[:4]}..."
            )
        counts = counts or {}
        words = [(table[i], int(counts.get(table[i], 0))) for i in range(FIRST_WORD_ID, len(ids))]
        return cls(words, f"{source} (dico_id2word)")

    @classmethod
    def from_dictionary(cls, d: Dictionary, source: str) -> "XLMVocab":
        """From our dict.txt (ids >= 14 are the same words in the same order)."""
        check_dictionary(d, source)
        return cls([(d[i], int(d.count[i])) for i in range(FIRST_WORD_ID, len(d))], source)

    def max_vocab(self, n: int) -> None:
        """XLM's --max_vocab: keep ids < n (so exactly n words when the file has enough)."""
        if n < FIRST_WORD_ID:
            raise ConvertError(f"--max-vocab {n}: must be at least {FIRST_WORD_ID} (the specials)")
        del self.words[n - FIRST_WORD_ID :]

    def min_count(self, c: int) -> None:
        """XLM's --min_count: drop words seen fewer than c times (ids are compacted)."""
        self.words = [(w, n) for w, n in self.words if n >= c]

    def write_dict_txt(self, path: str) -> None:
        n = write_dictionary(self.words, path)
        d = Dictionary.load(path)
        if n != len(self) or len(d) != len(self):
            raise ConvertError(
                f"{self.source}: {len(self)} words but the written dict.txt has {len(d)}; "
                "a token collides with a fairseq symbol"
            )

    def check_against(self, other: "XLMVocab") -> None:
        """Same words at the same ids (the vocab file against the checkpoint's own dictionary)."""
        mine, theirs = self.id2word(), other.id2word()
        for i, (a, b) in enumerate(zip(mine, theirs)):
            if a != b:
                raise ConvertError(
                    f"{self.source}: id {i} is '{a}' but the checkpoint's dictionary has '{b}'; "
                    "this is not the vocabulary the model was trained with"
                )


def to_hf_token(word: str, xlm_id: int) -> str:
    """transformers' XLMTokenizer vocabulary spelling: BPE pieces carry `</w>` at word ends instead of
    `@@` on continued pieces; the specials are unchanged."""
    if xlm_id < FIRST_WORD_ID:
        return word
    return word[:-2] if word.endswith("@@") else word + "</w>"


def from_hf_token(token: str, xlm_id: int) -> str:
    if xlm_id < FIRST_WORD_ID:
        return token
    return token[:-4] if token.endswith("</w>") else token + "@@"
