"""Sentence and sentence-pair classification examples of one or several languages (facebookresearch/XLM
`xlm/evaluation/xnli.py`, `xlm/utils.py: concat_batches`).

An example is `</s> a </s>` or `</s> a </s> b </s>` (the middle `</s>` shared, positions 0..L-1 running on)
with the example's language id on every token, whatever language each sentence is in.

Length rules (as `xlm/evaluation/xnli.py`):
- training (`max_len` given): each sentence is cut to `max_len` tokens, delimiters included, so it keeps at
  most `max_len - 2` words and still ends with `</s>`;
- every split: the whole sequence is capped at the model's position table (`max_positions`), cutting the
  longer sentence of a pair first; evaluation is otherwise not truncated.
Training drops examples with an empty sentence (as XLM drops empty training sentences).

Order: training indices are a fresh permutation every epoch; with `epoch_size` > 0 an epoch is the next
`epoch_size` examples of an endless stream of permutations (XLM's --epoch_size), so a run resumed at an epoch
sees the same examples. Evaluation is sorted by length (less padding)."""

from collections import Counter
from typing import List, NamedTuple, Optional

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils

from ..modules.transformer import N_MAX_POSITIONS


class ClassificationPart(NamedTuple):
    """The examples of one language: binarised first (and optional second) sentences and label ids."""

    lang_id: int
    first: object
    second: Optional[object]
    labels: np.ndarray


def kept_words(n1: np.ndarray, n2: Optional[np.ndarray], max_len: Optional[int], max_positions: int):
    """Words kept of each sentence (arrays). `n1`/`n2` count words without delimiters."""
    k1 = np.asarray(n1, dtype=np.int64).copy()
    k2 = None if n2 is None else np.asarray(n2, dtype=np.int64).copy()
    if max_len is not None:  # a sentence `</s> w.. </s>` keeps max_len tokens
        np.minimum(k1, max_len - 2, out=k1)
        if k2 is not None:
            np.minimum(k2, max_len - 2, out=k2)
    if k2 is None:
        np.minimum(k1, max_positions - 2, out=k1)
        return k1, None
    room = max_positions - 3  # words that fit beside the three delimiters
    over = k1 + k2 > room
    if over.any():  # the longer side loses a word until they fit (ties: the first), in closed form
        half = room // 2
        new1 = np.where(k2 <= room - half, room - k2, np.where(k1 <= half, k1, half))
        k1, k2 = np.where(over, new1, k1), np.where(over, room - new1, k2)
    return k1, k2


class ClassificationDataset(FairseqDataset):
    def __init__(
        self,
        parts: List[ClassificationPart],
        eos: int,
        pad: int,
        max_len: Optional[int] = None,
        max_positions: int = N_MAX_POSITIONS,
        train: bool = False,
        seed: int = 1,
        epoch_size: int = -1,
    ):
        if not parts:
            raise ValueError("no examples")
        pairs = {p.second is not None for p in parts}
        if len(pairs) != 1:
            raise ValueError("sentence and sentence-pair examples cannot be mixed")
        self.parts = parts
        self.is_pair = pairs.pop()
        self.eos, self.pad = eos, pad
        self.max_len = max_len
        self.train, self.seed, self.epoch_size = train, seed, epoch_size
        self.epoch = 1
        self.part_of = np.concatenate([np.full(len(p.labels), i, dtype=np.int64) for i, p in enumerate(parts)])
        self.local = np.concatenate([np.arange(len(p.labels), dtype=np.int64) for p in parts])
        self.labels = np.concatenate([np.asarray(p.labels, dtype=np.int64) for p in parts])
        self.lang_ids = np.concatenate([np.full(len(p.labels), p.lang_id, dtype=np.int64) for p in parts])
        self.n1 = np.concatenate([np.asarray(p.first.sizes, dtype=np.int64) - 1 for p in parts])
        self.n2 = (
            np.concatenate([np.asarray(p.second.sizes, dtype=np.int64) - 1 for p in parts]) if self.is_pair else None
        )
        keep = self.n1 > 0
        if self.is_pair:
            keep &= self.n2 > 0
        self.keep = np.nonzero(keep)[0] if train else np.arange(len(self.labels))
        self.set_max_positions(max_positions)

    def set_max_positions(self, max_positions: int) -> None:
        self.max_positions = max_positions
        self.k1, self.k2 = kept_words(self.n1, self.n2, self.max_len, max_positions)
        self.sizes = self.k1 + (self.k2 + 3 if self.is_pair else 2)

    @property
    def n_truncated(self) -> int:
        cut = self.k1 < self.n1
        if self.is_pair:
            cut |= self.k2 < self.n2
        return int(cut[self.keep].sum())

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        part = self.parts[self.part_of[index]]
        j = int(self.local[index])
        eos = torch.tensor([self.eos])
        pieces = [eos, part.first[j][: int(self.k1[index])].long(), eos]
        if self.is_pair:
            pieces += [part.second[j][: int(self.k2[index])].long(), eos]
        tokens = torch.cat(pieces)
        lang = int(self.lang_ids[index])
        return {
            "id": index,
            "tokens": tokens,
            "positions": torch.arange(len(tokens)),
            "langs": torch.full((len(tokens),), lang, dtype=torch.long),
            "lang": lang,
            "label": int(self.labels[index]),
        }

    def collater(self, samples):
        if not samples:
            return {}
        lengths = torch.tensor([len(s["tokens"]) for s in samples])
        tokens = data_utils.collate_tokens([s["tokens"] for s in samples], self.pad)
        positions = data_utils.collate_tokens([s["positions"] for s in samples], 0)
        lang = torch.tensor([s["lang"] for s in samples])
        langs = lang[:, None].expand(-1, tokens.size(1)).contiguous()  # padding carries the row's language
        return {
            "id": torch.tensor([s["id"] for s in samples]),
            "nsentences": len(samples),
            "ntokens": int(lengths.sum()),
            "net_input": {"src_tokens": tokens, "src_lengths": lengths, "langs": langs, "positions": positions},
            "target": torch.tensor([s["label"] for s in samples]),
            "lang": lang,
            "lang_counts": dict(Counter(s["lang"] for s in samples)),  # examples per language id, on the host
        }

    def num_tokens(self, index):
        return int(self.sizes[index])

    def num_tokens_vec(self, indices):
        return self.sizes[indices]

    def size(self, index):
        return int(self.sizes[index])

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        return not self.train  # training draws new examples and batches every epoch

    def set_epoch(self, epoch):
        self.epoch = epoch

    def ordered_indices(self):
        if not self.train:
            return self.keep[np.argsort(self.sizes[self.keep], kind="mergesort")]
        n = len(self.keep)
        if self.epoch_size is None or self.epoch_size <= 0:
            return self.keep[np.random.RandomState((self.seed, self.epoch)).permutation(n)]
        start = (self.epoch - 1) * self.epoch_size
        out, pos = [], start
        while pos < start + self.epoch_size:  # position `pos` of the stream is in pass pos // n
            p, offset = divmod(pos, n)
            perm = np.random.RandomState((self.seed, 0, p)).permutation(n)
            take = min(n - offset, start + self.epoch_size - pos)
            out.append(perm[offset : offset + take])
            pos += take
        return self.keep[np.concatenate(out)]

    @property
    def supports_prefetch(self):
        return False
