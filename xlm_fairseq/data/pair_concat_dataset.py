"""A parallel pair as one sequence (facebookresearch/XLM `xlm/utils.py: concat_batches`).

reset_positions=True (TLM): `</s> a </s> </s> b </s>`, positions 0..len1-1 then 0.., language ids switch
    at the second sentence's leading `</s>`.
reset_positions=False (classification pairs): `</s> a </s> b </s>` (one shared middle `</s>`), positions
    run on, and the middle `</s>` already carries the second language.
Items come from fairseq's binarised sentences (`w1..wn </s>`).
"""

import numpy as np
import torch
from fairseq.data import FairseqDataset


class PairConcatDataset(FairseqDataset):
    def __init__(self, first, second, first_lang: int, second_lang: int, eos: int, reset_positions: bool = True):
        if len(first) != len(second):
            raise ValueError(f"pair sides differ in length: {len(first)} vs {len(second)} sentences")
        self.first, self.second = first, second
        self.first_lang, self.second_lang = first_lang, second_lang
        self.eos = eos
        self.reset_positions = reset_positions
        extra = 2 if reset_positions else 1  # the leading </s> of each side (minus the shared one)
        self.sizes = np.asarray(first.sizes) + np.asarray(second.sizes) + extra
        self.first_sizes = np.asarray(first.sizes)
        self.second_sizes = np.asarray(second.sizes)
        self.keep = np.arange(len(first))  # the task narrows this (length filtering)

    def __len__(self):
        return len(self.first)

    def __getitem__(self, index):
        eos = torch.tensor([self.eos])
        a, b = self.first[index].long(), self.second[index].long()
        if self.reset_positions:
            tokens = torch.cat([eos, a, eos, b])
            len1 = len(a) + 1
            positions = torch.cat([torch.arange(len1), torch.arange(len(b) + 1)])
            switch = len1
        else:
            tokens = torch.cat([eos, a, b])
            positions = torch.arange(len(tokens))
            switch = len(a)  # the middle </s> (index len1 - 1 with len1 = len(a) + 1) gets the second language
        langs = torch.full((len(tokens),), self.second_lang, dtype=torch.long)
        langs[:switch] = self.first_lang
        return {"tokens": tokens, "positions": positions, "langs": langs}

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])

    def ordered_indices(self):
        """The kept pairs, shortest first."""
        return self.keep[np.argsort(self.sizes[self.keep], kind="mergesort")]
