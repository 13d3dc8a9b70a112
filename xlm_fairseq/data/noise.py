"""The denoising auto-encoder noise of the original (facebookresearch/XLM `xlm/trainer.py:
word_shuffle, word_dropout, word_blank`), on a right-padded batch of
`</s> w1 .. wn </s>` rows (bs, slen) with lengths counting both delimiters. Applied in the order
shuffle -> dropout -> blank, each drawing from the given RandomState in the original's order (one
(slen-1, bs) draw per function). Operates on BPE tokens, as the original."""

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
from torch import Tensor


@dataclass
class NoiseConfig:
    word_shuffle: float = 0.0
    word_dropout: float = 0.0
    word_blank: float = 0.0

    @property
    def active(self) -> bool:
        return self.word_shuffle > 0 or self.word_dropout > 0 or self.word_blank > 0


def word_shuffle(x: Tensor, lengths: Tensor, k: float, rng: np.random.RandomState) -> Tuple[Tensor, Tensor]:
    """Each token moves fewer than k positions: keys j + U(0, k) over BOS + words (BOS key forced to -1),
    tokens re-ordered by the keys; the final `</s>` stays."""
    if k == 0:
        return x, lengths
    bs, slen = x.shape
    noise = rng.uniform(0, k, size=(slen - 1, bs))
    noise[0] = -1
    x2 = x.clone()
    for i in range(bs):
        n = int(lengths[i]) - 1
        scores = np.arange(n) + noise[:n, i]
        perm = torch.from_numpy(scores.argsort(kind="stable"))
        x2[i, :n] = x2[i, :n][perm]
    return x2, lengths


def word_dropout(x: Tensor, lengths: Tensor, p: float, rng: np.random.RandomState, eos: int, pad: int):
    """Drop each word with probability p (BOS kept); if no word survives keep one at random."""
    if p == 0:
        return x, lengths
    bs, slen = x.shape
    keep = rng.rand(slen - 1, bs) >= p
    keep[0] = True
    rows = []
    for i in range(bs):
        n = int(lengths[i]) - 1
        words = x[i, :n]
        kept = words[torch.from_numpy(keep[:n, i])]
        if len(kept) == 1 and n > 1:
            kept = torch.cat([kept, words[rng.randint(1, n)].view(1)])
        rows.append(torch.cat([kept, kept.new_tensor([eos])]))
    new_lengths = torch.tensor([len(r) for r in rows])
    out = x.new_full((bs, int(new_lengths.max())), pad)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, new_lengths


def word_blank(x: Tensor, lengths: Tensor, p: float, rng: np.random.RandomState, mask_index: int):
    """Replace each word with the mask token with probability p (BOS and final `</s>` kept)."""
    if p == 0:
        return x, lengths
    bs, slen = x.shape
    keep = torch.from_numpy(rng.rand(slen - 1, bs) >= p).t()
    keep[:, 0] = True
    positions = torch.arange(slen - 1)[None, :]
    blank = (~keep) & (positions < (lengths[:, None] - 1))
    x2 = x.clone()
    x2[:, : slen - 1][blank] = mask_index
    return x2, lengths


def add_noise(x, lengths, cfg: NoiseConfig, rng, eos: int, pad: int, mask_index: int):
    x, lengths = word_shuffle(x, lengths, cfg.word_shuffle, rng)
    x, lengths = word_dropout(x, lengths, cfg.word_dropout, rng, eos, pad)
    x, lengths = word_blank(x, lengths, cfg.word_blank, rng, mask_index)
    return x, lengths
