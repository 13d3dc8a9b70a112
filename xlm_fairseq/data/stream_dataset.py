"""XLM's monolingual streams (facebookresearch/XLM `xlm/data/dataset.py: StreamDataset`): windows of `bptt`
consecutive tokens over the whole corpus.

The flat corpus (every sentence followed by `</s>`) is right-aligned in a buffer of
n_batches * bptt * bs tokens padded with `</s>` at the front, cut into bs contiguous rows, and an extra `</s>`
is put in front of each row. Batch i is window i of every row. Item k of this dataset is window k // bs of
row k % bs, so the batches of XLM are {i*bs .. i*bs + bs - 1}.
"""

import math

import numpy as np
import torch
from fairseq.data import FairseqDataset


def flat_tokens(indexed_dataset) -> np.ndarray:
    """The whole binarised corpus as one array, without copying when it is an mmap dataset."""
    buffer = getattr(indexed_dataset, "_bin_buffer", None)
    index = getattr(indexed_dataset, "_index", None)
    if buffer is not None and index is not None:
        flat = np.frombuffer(buffer, dtype=index.dtype)
        if len(flat) == int(np.sum(indexed_dataset.sizes)):
            return flat
    return np.concatenate([indexed_dataset[i].numpy() for i in range(len(indexed_dataset))])


class StreamDataset(FairseqDataset):
    """`corpus` is a fairseq indexed dataset (or any sequence of sentences, or a flat array). The flat view
    of an mmap corpus is a window onto its file: it is rebuilt in each process (DataLoader workers get the
    dataset pickled without it) and the corpus object is kept alive, since closing it unmaps the view."""

    def __init__(self, corpus, bptt: int, bs: int, eos: int):
        self.corpus = corpus
        self._tokens = corpus if isinstance(corpus, np.ndarray) else None
        n_tokens = len(self.tokens)
        if n_tokens == 0:
            raise ValueError("empty corpus: no tokens to build streams from")
        self.bptt, self.bs, self.eos = bptt, bs, eos
        self.n_sentences = len(corpus) if not isinstance(corpus, np.ndarray) else 0
        self.n_batches = math.ceil(n_tokens / (bs * bptt))
        self.row_len = self.n_batches * bptt
        # offset of the corpus inside the padded buffer
        self.pad_front = self.n_batches * bptt * bs - n_tokens
        self.sizes = np.full(len(self), bptt, dtype=np.int64)

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            self._tokens = flat_tokens(self.corpus)
        return self._tokens

    def __getstate__(self):
        state = dict(self.__dict__)
        if not isinstance(self.corpus, np.ndarray):
            state["_tokens"] = None
        return state

    def __len__(self):
        return self.n_batches * self.bs

    def _buffer_slice(self, start: int, end: int) -> np.ndarray:
        """buffer[start:end], where buffer = [eos]*pad_front + tokens; negative start reads the extra eos row."""
        out = np.full(end - start, self.eos, dtype=np.int64)
        lo = max(start, self.pad_front)
        if end > lo:
            out[lo - start :] = self.tokens[lo - self.pad_front : end - self.pad_front]
        return out

    def __getitem__(self, index: int) -> torch.Tensor:
        i, row = divmod(index, self.bs)
        # column `row` of XLM's data is [eos] + buffer[row*row_len : (row+1)*row_len]
        start = row * self.row_len + i * self.bptt - 1
        if i == 0:
            window = np.concatenate([[self.eos], self._buffer_slice(start + 1, start + self.bptt)])
        else:
            window = self._buffer_slice(start, start + self.bptt)
        return torch.from_numpy(window)

    def num_tokens(self, index):
        return self.bptt

    def size(self, index):
        return self.bptt

    def ordered_indices(self):
        return np.arange(len(self))

    def epoch_batches(self, rng: np.random.RandomState, max_tokens=None, max_sentences=None, shuffle=True):
        """Training: XLM's batches, the bs windows of one time slice, slices in random order.
        Evaluation (shuffle=False): the windows in corpus order, max_sentences (or max_tokens worth) at a time."""
        if shuffle:
            return [list(range(i * self.bs, (i + 1) * self.bs)) for i in rng.permutation(self.n_batches)]
        per_batch = max_sentences or (max(1, max_tokens // self.bptt) if max_tokens else self.bs)
        n = len(self)
        return [list(range(i, min(i + per_batch, n))) for i in range(0, n, per_batch)]

    @property
    def supports_prefetch(self):
        return False
