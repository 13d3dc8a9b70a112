"""fastText `.vec` text files (`n dim` header, then `word v1 ... vd` per line) and word lookup in them."""

import os
from typing import List, Optional, Sequence

import numpy as np

from ..errors import XLMUserError


class Vectors:
    """Words and their vectors; `index` maps a word to its first row (later duplicates are ignored, as MUSE)."""

    def __init__(self, words: Sequence[str], matrix: np.ndarray, path: str = "<memory>"):
        self.words = list(words)
        self.matrix = np.asarray(matrix, dtype=np.float32)
        self.path = path
        self.index = {}
        for i, w in enumerate(self.words):
            self.index.setdefault(w, i)

    def __len__(self):
        return len(self.words)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def lookup(self, word: str) -> Optional[int]:
        """Row of `word`: exact spelling first, then lower case, then capitalised (dictionaries and
        similarity sets are lower case; a model trained on cased text has `Paris`, not `paris`)."""
        for form in (word, word.lower(), word.capitalize()):
            i = self.index.get(form)
            if i is not None:
                return i
        return None


def read_vec(path: str, max_words: Optional[int] = None) -> Vectors:
    """Read a .vec file (the header line is optional); `max_words` keeps the first N words."""
    if not os.path.isfile(path):
        raise XLMUserError(f"embedding file {path} not found")
    words: List[str] = []
    rows: List[np.ndarray] = []
    dim = None
    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            for lineno, line in enumerate(f, 1):
                parts = line.rstrip("\n\r").rstrip(" ").split(" ")
                if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    dim = int(parts[1])
                    continue
                if not line.strip():
                    continue
                if dim is None:
                    dim = len(parts) - 1
                if len(parts) != dim + 1 or dim < 1:
                    raise XLMUserError(
                        f"{path}:{lineno}: expected a word and {dim} numbers, found "
                        f"{len(parts)} fields (is it a fastText .vec text file?)"
                    )
                try:
                    rows.append(np.array(parts[1:], dtype=np.float32))
                except ValueError:
                    raise XLMUserError(f"{path}:{lineno}: '{parts[0]}' has a value that is not a number") from None
                words.append(parts[0])
                if max_words is not None and len(words) >= max_words:
                    break
        except UnicodeDecodeError as e:
            raise XLMUserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not words:
        raise XLMUserError(f"{path} holds no word vectors")
    return Vectors(words, np.stack(rows), path)


def write_vec(path: str, words: Sequence[str], matrix: np.ndarray, digits: int = 6) -> None:
    """Write the .vec file under a temporary name and rename it when complete."""
    matrix = np.asarray(matrix, dtype=np.float32)
    tmp = path + ".tmp"
    fmt = f"%.{digits}g"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{len(words)} {matrix.shape[1]}\n")
        for word, row in zip(words, matrix):
            f.write(word + " " + " ".join(fmt % v for v in row.tolist()) + "\n")
    os.replace(tmp, path)
