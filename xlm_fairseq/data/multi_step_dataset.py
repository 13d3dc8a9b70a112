"""All the steps of a task (one dataset per objective and language or pair) behind one index space, and the
batches each step reads (facebookresearch/XLM `xlm/data/dataset.py`, `xlm/data/loader.py`).

Every batch holds one step's data (one objective, one language or pair: paper §3.5), and one batch is one
fairseq `train_step`, i.e. one optimizer update with --update-freq 1, as in the original where every step
updates. Which step runs when is training_schedule.py's; here each step reads its own endless sequence of
batches: pass p over its data in an order drawn from (seed, step, p), continued across epochs, so no batch
repeats before a whole pass (the original keeps one iterator per step for the whole run).

Batch budgets, as the original: stream steps (CLM/MLM) take `--batch-size` streams (fixed when the stream
dataset is built); sentence steps (TLM, AE, BT, MT) are cut by `--max-tokens` alone (or into batches of
`--batch-size` sentences without it), and `--max-pair-sentences N` keeps a random N of a larger batch (XLM's
`--max_batch_size`).

Training batches are lists of (iteration, index) pairs: the collated sample carries its iteration, which the
λ schedules read."""

import itertools
import math
from typing import Dict, List, Optional, Tuple

import numpy as np
from fairseq.data import FairseqDataset

from .lm_objective_dataset import batch_rng
from .training_schedule import TrainingSchedule


def sentence_batches(
    sizes, indices, rng, shuffle, max_tokens=None, batch_size=None, max_batch_size=0
) -> List[np.ndarray]:
    """XLM's sentence batching (`xlm/data/dataset.py: get_iterator`): shuffle, stable sort by length, cut where
    cumsum(len) // max_tokens changes (and, unlike the original, cut further a batch that would pad beyond
    PADDED_LIMIT x max_tokens: split_padded; without max_tokens: ceil(N / batch_size) even chunks), keep a random
    max_batch_size of a larger batch, shuffle the batches."""
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return []
    if shuffle:
        indices = indices[rng.permutation(len(indices))]
    indices = indices[np.argsort(sizes[indices], kind="mergesort")]
    if max_tokens:
        cum = np.cumsum(sizes[indices]) // max_tokens
        batches = np.split(indices, np.nonzero(np.diff(cum))[0] + 1)
        batches = [piece for b in batches for piece in split_padded(b, sizes, max_tokens)]
    else:
        batches = np.array_split(indices, math.ceil(len(indices) / max(1, batch_size or 1)))
    if max_batch_size:
        batches = [b if len(b) <= max_batch_size else b[rng.permutation(len(b))[:max_batch_size]] for b in batches]
    batches = [b for b in batches if len(b)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


# A batch cut by the sum of its lengths is padded to its longest sentence. Sorted real text pads by little
# (DDTP corpora at --max-tokens 300..4000: at most 1.38 x max_tokens), but a batch that straddles a jump in length
# (one-token sentences, then one of --max-len L) pads to about max_tokens * (L + 2) / 3 (33x at L = 100), and
# back-translation generates int(1.3 * L + 5) tokens for each of its rows: benchmarks/README.md, "Memory".
PADDED_LIMIT = 2


def split_padded(batch: np.ndarray, sizes, max_tokens: int) -> List[np.ndarray]:
    """`batch` (sorted by length) as it is, unless rows x longest exceeds PADDED_LIMIT x max_tokens: then in
    consecutive pieces of at most max_tokens padded tokens (a sentence longer than that alone)."""
    lengths = sizes[batch]
    if len(batch) * int(lengths[-1]) <= PADDED_LIMIT * max_tokens:
        return [batch]
    pieces, start = [], 0
    for i in range(1, len(batch)):
        if (i + 1 - start) * int(lengths[i]) > max_tokens:
            pieces.append(batch[start:i])
            start = i
    pieces.append(batch[start:])
    return pieces


class MultiStepDataset(FairseqDataset):
    """`schedule`: the training schedule (None for validation); its steps are listed in the order of `datasets`."""

    def __init__(self, datasets: Dict[str, FairseqDataset], schedule: Optional[TrainingSchedule] = None):
        self.datasets = datasets
        self.names = list(datasets.keys())
        self.schedule = schedule
        if schedule is not None and [s.name for s in schedule.steps] != self.names:
            raise ValueError("the schedule's steps and the datasets differ")
        self.offsets = np.cumsum([0] + [len(d) for d in datasets.values()])
        self.sizes = (
            np.concatenate([np.asarray(d.sizes) for d in datasets.values()])
            if datasets
            else np.zeros(0, dtype=np.int64)
        )
        self._passes: Dict[Tuple, List[np.ndarray]] = {}  # (step, pass, budget) -> its batches, the latest only

    @property
    def is_train(self) -> bool:
        return self.schedule is not None

    def __len__(self):
        return int(self.offsets[-1])

    def _locate(self, index):
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return k, index - int(self.offsets[k])

    def __getitem__(self, index):
        """index: a global index (validation) or an (iteration, global index) pair (training)."""
        iteration, index = index if isinstance(index, tuple) else (None, index)
        k, local = self._locate(index)
        return k, iteration, self.datasets[self.names[k]][local]

    def collater(self, samples):
        if len(samples) == 0:
            return {}
        k, iteration = samples[0][0], samples[0][1]
        if any(s[0] != k for s in samples):
            raise RuntimeError("a batch mixes several steps; batches must come from the schedule")
        sample = self.datasets[self.names[k]].collater([s[2] for s in samples])
        if iteration is not None:
            sample["iteration"] = iteration
        return sample

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
    def _step_batches(self, k, rng, shuffle, max_tokens=None, batch_size=None, max_batch_size=0):
        d = self.datasets[self.names[k]]
        if hasattr(d, "epoch_batches"):  # streams: a fixed number of windows per batch
            batches = d.epoch_batches(rng, max_tokens, batch_size, shuffle)
            if batches is not None:
                return batches
        return sentence_batches(
            np.asarray(d.sizes), d.ordered_indices(), rng, shuffle, max_tokens, batch_size, max_batch_size
        )

    def eval_batches(self, max_tokens, max_sentences) -> List[List[int]]:
        """Every step's data once, in order, the steps interleaved round-robin (so that --max-valid-steps
        still evaluates every language)."""
        per_step = []
        for k in range(len(self.names)):
            off = int(self.offsets[k])
            batches = self._step_batches(k, np.random.RandomState(0), False, max_tokens, max_sentences)
            if max_tokens and max_sentences:  # both budgets: chunk, never drop (every sentence is evaluated)
                batches = [piece for b in batches for piece in np.array_split(b, math.ceil(len(b) / max_sentences))]
            per_step.append([(off + np.asarray(b)).tolist() for b in batches])
        out = []
        for i in range(max((len(b) for b in per_step), default=0)):
            out.extend(b[i] for b in per_step if i < len(b))
        return out

    def train_batches(self, epoch, max_tokens=None, batch_size=None, max_batch_size=0) -> List[List[tuple]]:
        """Epoch `epoch` of the schedule: each planned step takes the next batch of its own sequence."""
        plan, taken = self.schedule.epoch(epoch)
        position = taken.copy()
        budget = (max_tokens, batch_size, max_batch_size)
        out = []
        for iteration, k in plan:
            batch = self._nth_batch(k, int(position[k]), budget)
            position[k] += 1
            out.append(list(zip(itertools.repeat(iteration), (int(self.offsets[k]) + batch).tolist())))
        return out

    def _nth_batch(self, k: int, n: int, budget) -> np.ndarray:
        """Batch n of step k's endless sequence: pass n // len(pass), drawn from (seed, step, pass)."""
        first = self._pass(k, 0, budget)
        p, i = divmod(n, len(first))
        return self._pass(k, p, budget)[i]

    def _pass(self, k: int, p: int, budget) -> List[np.ndarray]:
        key = (k, p, budget)
        if key not in self._passes:
            rng = batch_rng(self.schedule.seed, self.names[k], p)
            batches = [np.asarray(b, dtype=np.int64) for b in self._step_batches(k, rng, True, *budget)]
            if not batches:
                raise ValueError(f"step {self.names[k]} has no training batch")
            for old in [key2 for key2 in self._passes if key2[0] == k and key2[1] not in (0, p)]:
                del self._passes[old]  # keep pass 0 (its length) and the pass being read
            self._passes[key] = batches
        return self._passes[key]
