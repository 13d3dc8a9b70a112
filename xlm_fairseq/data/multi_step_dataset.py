"""All the training steps of a task (one dataset per objective and language or pair) behind one index
space, and XLM's iteration schedule over them (spec §1.1, §1.3).

Every batch holds one step's data (one objective, one language or pair: paper §3.5), and one batch is one
fairseq `train_step`, i.e. one optimizer update with --update-freq 1, as in the original where every step
updates. An iteration runs the groups in XLM's order (CLM, MLM/TLM, AE, MT, BT); inside CLM/MLM/MT it draws
min(5, n) monolingual steps and then min(5, n) parallel steps with replacement, from the language
distribution q_i ∝ p_i^α; AE and BT run every step once in a random order. An epoch is as many whole
iterations as it takes to reach `epoch_size` nominal sentences (batch_size per step, as the original counts).
"""
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from fairseq.data import FairseqDataset

from .lm_objective_dataset import batch_rng

GROUP_ORDER = ["clm", "mlm", "ae", "mt", "bt"]
SAMPLED_GROUPS = {"clm", "mlm", "mt"}


@dataclass
class Step:
    name: str  # metric prefix, e.g. "en_mlm", "en_fr_mlm", "en_clm", "fr-en_mt"
    group: str  # one of GROUP_ORDER
    parallel: bool
    weight: float  # sampling probability within its group and kind (mono/para)


def token_budget_batches(sizes, indices, max_tokens, max_sentences, rng, shuffle) -> List[List[int]]:
    """XLM's sentence batching: shuffle, stable sort by length, cut where cumsum(len) // max_tokens changes
    (or into ceil(N / max_sentences) even chunks), optionally cap sentences, shuffle the batches."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return []
    if shuffle:
        indices = indices[rng.permutation(len(indices))]
    indices = indices[np.argsort(sizes[indices], kind="mergesort")]
    if max_tokens:
        cum = np.cumsum(sizes[indices]) // max_tokens
        cuts = np.nonzero(np.diff(cum))[0] + 1
        batches = np.split(indices, cuts)
    else:
        batches = np.array_split(indices, math.ceil(len(indices) / max_sentences))
    if max_tokens and max_sentences:
        batches = [piece for b in batches for piece in np.array_split(b, math.ceil(len(b) / max_sentences))]
    batches = [b.tolist() for b in batches if len(b)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class MultiStepDataset(FairseqDataset):
    def __init__(self, datasets: "OrderedDict[str, FairseqDataset]", steps: Optional[Dict[str, Step]] = None):
        self.datasets = datasets
        self.names = list(datasets.keys())
        self.steps = steps or {}
        self.offsets = np.cumsum([0] + [len(d) for d in datasets.values()])
        self.sizes = np.concatenate([np.asarray(d.sizes) for d in datasets.values()]) \
            if datasets else np.zeros(0, dtype=np.int64)

    def __len__(self):
        return int(self.offsets[-1])

    def _locate(self, index):
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return k, index - int(self.offsets[k])

    def __getitem__(self, index):
        k, local = self._locate(index)
        return k, self.datasets[self.names[k]][local]

    def collater(self, samples):
        if len(samples) == 0:
            return {}
        k = samples[0][0]
        if any(s[0] != k for s in samples):
            raise RuntimeError("a batch mixes several steps; batches must come from the schedule")
        return self.datasets[self.names[k]].collater([s[1] for s in samples])

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        return int(self.sizes[index])

    def ordered_indices(self):
        return np.arange(len(self))

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        for d in self.datasets.values():
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)

    @property
    def supports_prefetch(self):
        return False

    def can_reuse_epoch_itr_across_epochs(self):
        return False

    # ----------------------------------------------------------------- batches
    def _local_batches(self, k, rng, max_tokens, max_sentences, shuffle):
        d = self.datasets[self.names[k]]
        batches = d.epoch_batches(rng, max_tokens, max_sentences, shuffle) if hasattr(d, "epoch_batches") else None
        if batches is None:
            batches = token_budget_batches(np.asarray(d.sizes), d.ordered_indices(), max_tokens, max_sentences,
                                           rng, shuffle)
        return batches

    def _globalise(self, k, batch):
        off = int(self.offsets[k])
        return [off + i for i in batch]

    def eval_batches(self, max_tokens, max_sentences) -> List[List[int]]:
        """Every step's data once, in order, the steps interleaved round-robin (so that --max-valid-steps
        still evaluates every language)."""
        per_step = [[self._globalise(k, b) for b in
                     self._local_batches(k, np.random.RandomState(0), max_tokens, max_sentences, shuffle=False)]
                    for k in range(len(self.names))]
        out = []
        for i in range(max((len(b) for b in per_step), default=0)):
            out.extend(b[i] for b in per_step if i < len(b))
        return out

    def train_batches(self, epoch, seed, epoch_size, batch_size, max_tokens, max_sentences) -> List[List[int]]:
        """One epoch of XLM's schedule: whole iterations until epoch_size nominal sentences are reached."""
        rng = batch_rng(seed, epoch, 0xC0FFEE)
        pools: Dict[int, List[List[int]]] = {}
        n_drawn = {k: 0 for k in range(len(self.names))}

        def next_batch(k):
            if not pools.get(k):
                local_rng = batch_rng(seed, epoch, k, n_drawn[k])
                pools[k] = self._local_batches(k, local_rng, max_tokens, max_sentences, shuffle=True)[::-1]
                if not pools[k]:
                    raise ValueError(f"step {self.names[k]} has no training batch")
            n_drawn[k] += 1
            return self._globalise(k, pools[k].pop())

        by_group = {g: [k for k, n in enumerate(self.names) if self.steps[n].group == g] for g in GROUP_ORDER}
        steps_per_epoch = max(1, math.ceil(epoch_size / max(1, batch_size)))
        out: List[List[int]] = []
        while len(out) < steps_per_epoch:
            for group in GROUP_ORDER:
                ks = by_group[group]
                if not ks:
                    continue
                if group in SAMPLED_GROUPS:
                    order = []
                    for parallel in (False, True):
                        sub = [k for k in ks if self.steps[self.names[k]].parallel == parallel]
                        if not sub:
                            continue
                        w = np.array([self.steps[self.names[k]].weight for k in sub], dtype=np.float64)
                        picks = rng.choice(len(sub), size=min(5, len(sub)), replace=True, p=w / w.sum())
                        order.extend(sub[i] for i in picks)
                else:
                    order = [ks[i] for i in rng.permutation(len(ks))]
                out.extend(next_batch(k) for k in order)
        return out
