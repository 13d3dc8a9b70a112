"""The word vectors of an XLM model: rows of its lookup table (`encoder.embeddings.weight`, tied with the
output layer) for the tokens that are whole words (paper §4.5).

Whole words: not the 14 specials (nor fairseq's `madeupword` fillers); with subword-nmt BPE, tokens that do
not end with `@@`; with sentencepiece, pieces that start with `▁` (the marker is removed). With a language's
binarised data, only the words that occur in it as whole words are kept (a subword-nmt token `t` after
`ca@@` is the end of `cat`, not the word `t`), ordered by how often they do; otherwise all whole-word tokens
in dict.txt order (decreasing corpus count)."""

import json
import os
import re
from typing import List, Optional, Tuple

import numpy as np

from ..checkpoints import data_dir, peek_checkpoint
from ..dictionary import FIRST_WORD_ID, load_dictionary
from ..errors import XLMUserError

TABLE_KEY = "encoder.embeddings.weight"
SPM_MARK = "\u2581"
_FILLER = re.compile(r"^madeupword\d{4}$")
BPE_CHOICES = ("auto", "subword-nmt", "sentencepiece")


def lookup_table(state: dict, path: str) -> np.ndarray:
    model = state.get("model", state)
    table = model.get(TABLE_KEY) if isinstance(model, dict) else None
    if table is None:
        keys = [k for k in model if k.endswith("embeddings.weight")] if isinstance(model, dict) else []
        raise XLMUserError(
            f"{path} has no encoder lookup table ({TABLE_KEY}; found "
            f"{', '.join(keys[:3]) or 'no embedding weights'}): export needs an xlm_fairseq "
            "model with an encoder"
        )
    return table.float().numpy()


def detect_bpe(symbols: List[str], dict_path: str) -> str:
    """The manifest of the data-bin (xlm-preprocess) says which BPE; otherwise the more frequent marker."""
    manifest = os.path.join(os.path.dirname(os.path.abspath(dict_path)), "manifest.json")
    if os.path.isfile(manifest):
        try:
            with open(manifest, encoding="utf-8") as f:
                backend = (json.load(f).get("bpe") or {}).get("backend")
            if backend in ("subword-nmt", "sentencepiece"):
                return backend
        except (OSError, ValueError):
            pass
    n_spm = sum(s.startswith(SPM_MARK) for s in symbols)
    n_snmt = sum(s.endswith("@@") for s in symbols)
    return "sentencepiece" if n_spm > n_snmt else "subword-nmt"


def whole_word_ids(symbols: List[str], bpe: str) -> List[Tuple[int, str]]:
    """(id, word) of the dictionary entries that are whole words."""
    out = []
    for i in range(FIRST_WORD_ID, len(symbols)):
        s = symbols[i]
        if _FILLER.match(s):
            continue
        if bpe == "sentencepiece":
            if s.startswith(SPM_MARK) and len(s) > 1:
                out.append((i, s[1:]))
        elif not s.endswith("@@"):
            out.append((i, s))
    return out


def continuation_flags(symbols: List[str], bpe: str) -> Tuple[np.ndarray, np.ndarray]:
    """joins_next[id]: the token is glued to the next one; starts_word[id]: it can begin a word."""
    n = len(symbols)
    joins_next = np.zeros(n, dtype=bool)
    starts_word = np.ones(n, dtype=bool)
    for i in range(FIRST_WORD_ID, n):
        s = symbols[i]
        if bpe == "sentencepiece":
            starts_word[i] = s.startswith(SPM_MARK)
        else:
            joins_next[i] = s.endswith("@@")
    return joins_next, starts_word


def resolve_lang_data(lang: str, lang_data: Optional[str], dict_path: str) -> str:
    """The prefix of the binarised file to count words in (DATA_BIN/train.xx by default)."""
    from ..data.data_files import dataset_exists

    prefix = lang_data or os.path.join(os.path.dirname(os.path.abspath(dict_path)), f"train.{lang}")
    for ext in (".bin", ".idx"):
        if prefix.endswith(ext):
            prefix = prefix[: -len(ext)]
    candidates = [prefix]
    base = os.path.basename(prefix)
    if re.match(r"^[^.]+\.[^.]+$", base):
        split, code = base.split(".")
        candidates.append(os.path.join(os.path.dirname(prefix), f"{split}.{code}-None.{code}"))
    for p in candidates:
        if dataset_exists(p):
            return p
    hint = "" if lang_data else f" (the default for --lang {lang}; give --lang-data DATA_BIN/train.{lang})"
    raise XLMUserError(f"--lang-data: no binarised data at {' or '.join(c + '.bin/.idx' for c in candidates)}{hint}")


def whole_word_counts(prefix: str, dictionary, bpe: str) -> np.ndarray:
    """How often each id occurs as a whole word in the binarised file at `prefix`."""
    from fairseq.data import data_utils

    from ..data.stream_dataset import flat_tokens

    ds = data_utils.load_indexed_dataset(prefix, dictionary, dataset_impl="mmap")
    if ds is None or len(ds) == 0:
        raise XLMUserError(f"{prefix}.bin is empty or unreadable")
    tokens = np.asarray(flat_tokens(ds), dtype=np.int64)
    n = len(dictionary)
    if len(tokens) and int(tokens.max()) >= n:
        raise XLMUserError(
            f"{prefix}.bin holds token id {int(tokens.max())} but the dictionary has {n} entries: "
            "it was binarised with another dict.txt"
        )
    joins_next, starts_word = continuation_flags(dictionary.symbols, bpe)
    prev_joins = np.concatenate([[False], joins_next[tokens[:-1]]])
    next_starts = np.concatenate([starts_word[tokens[1:]], [True]])
    whole = ~joins_next[tokens] & ~prev_joins & starts_word[tokens] & next_starts
    return np.bincount(tokens[whole], minlength=n)


def export(
    checkpoint: str,
    out: str,
    dict_path: Optional[str] = None,
    lang: Optional[str] = None,
    lang_data: Optional[str] = None,
    max_words: Optional[int] = None,
    bpe: str = "auto",
    digits: int = 6,
) -> dict:
    """Write the whole-word vectors of CHECKPOINT to OUT (.vec); returns a summary."""
    from .vectors import write_vec

    if max_words is not None and max_words < 1:
        raise XLMUserError(f"--max-words {max_words}: must be at least 1")
    if lang_data and not lang:
        raise XLMUserError("--lang-data needs --lang (the language whose words are kept)")
    state = peek_checkpoint(checkpoint)
    table = lookup_table(state, checkpoint)
    if dict_path is None:
        data = data_dir(state.get("cfg"))
        dict_path = os.path.join(data, "dict.txt") if data else None
        if dict_path is None or not os.path.isfile(dict_path):
            raise XLMUserError(
                f"give --dict: the dict.txt the model was trained with "
                f"({'not found at ' + dict_path if dict_path else 'not named in the checkpoint'})"
            )
    dictionary = load_dictionary(dict_path)
    if len(dictionary) != table.shape[0]:
        raise XLMUserError(
            f"{dict_path} has {len(dictionary)} entries but the lookup table of {checkpoint} has "
            f"{table.shape[0]} rows: use the dict.txt the model was trained with"
        )
    if bpe == "auto":
        bpe = detect_bpe(dictionary.symbols, dict_path)
    entries = whole_word_ids(dictionary.symbols, bpe)
    source = dict_path
    if lang:
        prefix = resolve_lang_data(lang, lang_data, dict_path)
        counts = whole_word_counts(prefix, dictionary, bpe)
        entries = [(i, w) for i, w in entries if counts[i] > 0]
        entries.sort(key=lambda e: (-int(counts[e[0]]), e[0]))
        source = prefix + ".bin"
    if max_words is not None:
        entries = entries[:max_words]
    if not entries:
        raise XLMUserError(f"no whole-word token to export (bpe {bpe}, words from {source})")
    ids = np.array([i for i, _ in entries], dtype=np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_vec(out, [w for _, w in entries], table[ids], digits)
    return {
        "out": out,
        "words": len(entries),
        "dim": int(table.shape[1]),
        "bpe": bpe,
        "source": source,
        "dictionary": dict_path,
    }
