"""Batches of one translation-type step (facebookresearch/XLM
`xlm/trainer.py: mt_step, bt_step`): denoising auto-encoding (source = noised
target), supervised MT (a parallel pair), or the monolingual half of back-translation (source only; the
task generates the other side with the live model).

Sentences are `</s> w1..wn </s>` (XLM's layout; fairseq stores `w1..wn </s>`), right-padded. An MT-type
sample is fairseq's usual one, so SequenceGenerator and fairseq-generate read it directly:
net_input = {src_tokens, src_lengths, src_langs, tgt_langs, prev_output_tokens = `</s> y1..ym`} and
target = `y1..ym </s>` padded."""

from typing import Optional

import numpy as np
import torch
from fairseq.data import FairseqDataset

from .lm_objective_dataset import batch_rng
from .noise import NoiseConfig, add_noise


def pad_rows(rows, pad):
    out = torch.full((len(rows), max(len(r) for r in rows)), pad, dtype=torch.long, device="cpu")
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def with_bos(sentence: torch.Tensor, eos: int) -> torch.Tensor:
    return torch.cat([sentence.new_tensor([eos]), sentence]).long()


class TranslationStepDataset(FairseqDataset):
    """kind: 'ae' (source and target are the same monolingual sentences; noise on the source),
    'mt' (source/target datasets of a pair), 'bt' (source only), 'eval' (a pair, no noise),
    'infer' (source only, for fairseq-interactive)."""

    def __init__(
        self,
        source,
        target,
        src_lang: int,
        tgt_lang: int,
        eos: int,
        pad: int,
        kind: str,
        step: str,
        noise: Optional[NoiseConfig] = None,
        mask_index: int = 5,
        seed: int = 1,
    ):
        if kind not in ("ae", "mt", "bt", "eval", "infer"):
            raise ValueError(kind)
        self.source, self.target = source, target
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.eos, self.pad, self.kind, self.step = eos, pad, kind, step
        self.noise, self.mask_index, self.seed = noise, mask_index, seed
        self.epoch = 1
        src_sizes = np.asarray(source.sizes) + 1
        self.src_sizes = src_sizes
        self.tgt_sizes = np.asarray(target.sizes) + 1 if target is not None and kind in ("mt", "eval") else None
        # batching key: tokens of both sides for pairs, as the original's len1 + len2 + 4
        self.sizes = src_sizes + (self.tgt_sizes if self.tgt_sizes is not None else 0)
        self.keep = np.arange(len(source))

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        item = {"id": index, "source": with_bos(self.source[index], self.eos)}
        if self.kind in ("mt", "eval"):
            item["target"] = with_bos(self.target[index], self.eos)
        return item

    def num_tokens(self, index):
        return int(self.sizes[index])

    def size(self, index):
        if self.tgt_sizes is None:
            return int(self.src_sizes[index])
        return int(self.src_sizes[index]), int(self.tgt_sizes[index])

    def ordered_indices(self):
        return self.keep[np.argsort(self.sizes[self.keep], kind="mergesort")]

    def filter_lengths(self, max_len: Optional[int], max_positions: int) -> int:
        """Keep non-empty sentences of at most max_len BPE tokens (each side), and anything that fits the
        position table. Returns how many were dropped."""
        n_src = self.src_sizes - 2
        keep = (n_src > 0) & (self.src_sizes + 1 <= max_positions)
        if self.tgt_sizes is not None:
            n_tgt = self.tgt_sizes - 2
            keep &= (n_tgt > 0) & (self.tgt_sizes + 1 <= max_positions)
            if max_len:
                keep &= n_tgt <= max_len
        if max_len:
            keep &= n_src <= max_len
        self.keep = np.nonzero(keep)[0]
        return len(self) - len(self.keep)

    def collater(self, samples):
        if len(samples) == 0:
            return {}
        # on the CPU whatever torch's default device (the hub collates while the model waits on its device)
        ids = torch.tensor([s["id"] for s in samples], device="cpu")
        bs = len(samples)
        src = pad_rows([s["source"] for s in samples], self.pad)
        src_lengths = torch.tensor([len(s["source"]) for s in samples], device="cpu")
        src_langs = torch.full((bs,), self.src_lang, dtype=torch.long, device="cpu")
        tgt_langs = torch.full((bs,), self.tgt_lang, dtype=torch.long, device="cpu")
        if self.kind == "infer":
            return {
                "id": ids,
                "nsentences": bs,
                "ntokens": int(src_lengths.sum()),
                "net_input": {
                    "src_tokens": src,
                    "src_lengths": src_lengths,
                    "src_langs": src_langs,
                    "tgt_langs": tgt_langs,
                },
            }
        if self.kind == "bt":
            # the MT sample l2 -> l1 whose target is this sentence, made here on the CPU; the task puts the
            # generated translation in place of the source (xlm_unsupervised_mt.py: back_translate)
            rows = [s["source"] for s in samples]
            sample = mt_sample(ids, self.step, src, src_lengths, src_langs, src_langs.clone(), rows, self.pad)
            return dict(sample, bt=True, bt_langs=(self.src_lang, self.tgt_lang))
        if self.kind == "ae":
            clean = src
            if self.noise is not None and self.noise.active:
                rng = batch_rng(self.seed, self.epoch, self.step, int(ids[0]), bs)
                src, src_lengths = add_noise(src, src_lengths, self.noise, rng, self.eos, self.pad, self.mask_index)
            tgt_rows = [clean[i, : len(samples[i]["source"])] for i in range(bs)]
        else:
            tgt_rows = [s["target"] for s in samples]
        return mt_sample(ids, self.step, src, src_lengths, src_langs, tgt_langs, tgt_rows, self.pad)


def mt_sample(ids, step, src, src_lengths, src_langs, tgt_langs, tgt_rows, pad):
    """Teacher forcing on `</s> y1..ym` predicting `y1..ym </s>` (`xlm/trainer.py: mt_step`). pred_index: the
    target's tokens as flat row-major indices into (bs * tlen), so the step finds them without asking the device."""
    prev = pad_rows([r[:-1] for r in tgt_rows], pad)
    target = pad_rows([r[1:] for r in tgt_rows], pad)
    pred_index = target.view(-1).ne(pad).nonzero().squeeze(1)
    return {
        "id": ids,
        "step": step,
        "nsentences": len(tgt_rows),
        "ntokens": len(pred_index),
        "net_input": {
            "src_tokens": src,
            "src_lengths": src_lengths,
            "src_langs": src_langs,
            "tgt_langs": tgt_langs,
            "prev_output_tokens": prev,
            "pred_index": pred_index,
        },
        "target": target,
    }
