"""Collates sequences (stream windows or concatenated pairs) into an LM batch and applies the objective:
MLM/TLM masking (training or deterministic evaluation) or the CLM prediction mask.

The masks are drawn from a RandomState seeded by (seed, epoch, step, batch), so a batch gets the same mask
whichever worker builds it, and a resumed run sees exactly the masks of an uninterrupted one. Evaluation
masks ignore the epoch, so validation perplexities are comparable across epochs (facebookresearch/XLM
`xlm/evaluation/evaluator.py: evaluate_mlm`).

The batch carries what the model would otherwise read back from the GPU: the padding mask (None when no row is
padded, as stream windows) and the predicted positions as flat indices, both computed here on the CPU, so a
training step on a GPU needs no host synchronisation."""

import zlib
from typing import Optional

import numpy as np
import torch
from fairseq.data import FairseqDataset

from .lm_objectives import MaskingConfig, clm_mask, mlm_eval_mask, mlm_train_mask, padding_mask


def batch_rng(*keys) -> np.random.RandomState:
    """A RandomState determined by the keys (ints or strings; strings hashed stably, not by hash())."""
    ints = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) & 0xFFFFFFFF for k in keys]
    return np.random.RandomState(np.random.SeedSequence(ints).generate_state(1)[0])


class LMObjectiveDataset(FairseqDataset):
    def __init__(
        self,
        dataset,
        objective: str,
        lang_id: Optional[int],
        pad_index: int,
        masking: Optional[MaskingConfig] = None,
        scores: Optional[np.ndarray] = None,
        context_size: int = 0,
        train: bool = True,
        seed: int = 1,
        step: int = 0,
    ):
        if objective not in ("mlm", "clm"):
            raise ValueError(f"unknown LM objective {objective}")
        self.dataset = dataset
        self.objective = objective
        self.lang_id = lang_id
        self.pad_index = pad_index
        self.masking = masking
        self.scores = scores
        self.context_size = context_size
        self.train = train
        self.seed = seed
        self.step = step
        self.epoch = 1
        self.sizes = dataset.sizes

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return {"id": index, "item": self.dataset[index]}

    def num_tokens(self, index):
        return self.dataset.num_tokens(index)

    def size(self, index):
        return self.dataset.size(index)

    def ordered_indices(self):
        return self.dataset.ordered_indices()

    def epoch_batches(self, rng, max_tokens=None, max_sentences=None, shuffle=True):
        return (
            self.dataset.epoch_batches(rng, max_tokens, max_sentences, shuffle)
            if hasattr(self.dataset, "epoch_batches")
            else None
        )

    def _pad(self, seqs, fill):
        out = torch.full((len(seqs), max(len(s) for s in seqs)), fill, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = s
        return out

    def collater(self, samples):
        if len(samples) == 0:
            return {}
        ids = [s["id"] for s in samples]
        items = [s["item"] for s in samples]
        if isinstance(items[0], dict):
            tokens = [it["tokens"].long() for it in items]
            positions = self._pad([it["positions"] for it in items], 0)
            langs_list = [it["langs"] for it in items]
            # padding keeps the last language, as the original
            langs = torch.stack([torch.cat([l, l[-1:].expand(positions.size(1) - len(l))]) for l in langs_list])
        else:
            tokens = [it.long() for it in items]
            positions = None
            langs = None if self.lang_id is None else torch.full((len(items),), self.lang_id, dtype=torch.long)
        lengths = torch.tensor([len(t) for t in tokens])
        x = self._pad(tokens, self.pad_index)

        if self.objective == "clm":
            pred_mask, target = clm_mask(x, lengths, self.context_size)
        elif self.train:
            rng = batch_rng(self.seed, self.epoch, self.step, ids[0], len(ids))
            x, pred_mask, target = mlm_train_mask(x, lengths, self.masking, rng, self.scores)
        else:
            rng = batch_rng(self.seed, 0, self.step, ids[0], len(ids))
            x, pred_mask, target = mlm_eval_mask(x, lengths, self.masking.word_pred, self.masking.mask_index, rng)

        padding = padding_mask(lengths, x.size(1))
        net_input = {
            "src_tokens": x,
            "padding_mask": padding if bool(padding.any()) else None,
            "langs": langs,
            "pred_index": pred_mask.view(-1).nonzero().squeeze(1),  # row-major: the order of target
            "causal": self.objective == "clm",
        }
        if positions is not None:
            net_input["positions"] = positions
        return {
            "id": torch.tensor(ids),
            "step": self.step,
            "nsentences": len(ids),
            "ntokens": int(lengths.sum()),
            "net_input": net_input,
            "target": target,
        }
