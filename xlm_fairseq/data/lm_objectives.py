"""The LM objectives on a padded batch (bs, slen): XLM's training masking (facebookresearch/XLM `xlm/trainer.py:
mask_out`), its deterministic
evaluation masking (`xlm/evaluation/evaluator.py: evaluate_mlm`) and the CLM prediction mask (`xlm/trainer.py:
clm_step`). Vectorised numpy/torch, no loop per token.

All functions take and return batch-first tensors; "row-major time-major" orders of the original are
reproduced where they matter (fp16 rounding)."""

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor


@dataclass
class MaskingConfig:
    word_pred: float = 0.15
    pred_probs: Tuple[float, float, float] = (0.8, 0.1, 0.1)  # mask, keep, random
    sample_alpha: float = 0.0
    mask_index: int = 5
    pad_index: int = 1
    n_words: int = 0
    round_to_8: bool = False  # XLM does this under fp16


def mask_scores(counts, pad_index: int, n_special: int, sample_alpha: float) -> np.ndarray:
    """score(w) = max(count(w), 1) ** -alpha; 0 for pad, for the specials and for zero-count words
    (XLM's read_vocab gives every special count 0, so `</s>` and `<unk>` are never chosen)."""
    counts = np.asarray(counts, dtype=np.float64)
    scores = np.maximum(counts, 1) ** -sample_alpha
    scores[counts == 0] = 0
    scores[:n_special] = 0
    scores[pad_index] = 0
    return scores


def padding_mask(lengths: Tensor, slen: int) -> Tensor:
    return torch.arange(slen)[None, :] >= lengths[:, None]


def mlm_train_mask(
    x: Tensor,
    lengths: Tensor,
    cfg: MaskingConfig,
    rng: np.random.RandomState,
    scores: Optional[np.ndarray] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Returns (corrupted x, pred_mask, targets). pred_mask is (bs, slen) bool; targets are the original ids
    at pred_mask positions in batch-first row-major order (the order the model gathers them in)."""
    bs, slen = x.shape
    pad = padding_mask(lengths, slen)
    if cfg.sample_alpha == 0:
        # the original draws rand(slen, bs); drawing it time-major keeps the same stream of numbers
        pred_mask = torch.from_numpy(rng.rand(slen, bs) <= cfg.word_pred).t().contiguous()
    else:
        # XLM draws over x.flatten() of the time-major tensor: keep that order for the positions
        x_tm = x.t().reshape(-1).numpy()
        p = scores[x_tm]
        n_tgt = math.ceil(cfg.word_pred * slen * bs)
        n_candidates = int((p > 0).sum())
        chosen = (
            rng.choice(len(p), min(n_tgt, n_candidates), replace=False, p=p / p.sum())
            if n_candidates > 0
            else np.zeros(0, dtype=np.int64)
        )
        flat = np.zeros(slen * bs, dtype=bool)
        flat[chosen] = True
        pred_mask = torch.from_numpy(flat.reshape(slen, bs)).t().contiguous()
    pred_mask[pad] = False
    pred_mask[:, 0] = False
    if cfg.round_to_8:
        pred_mask = _round_predictions_to_8(pred_mask)

    targets = x[pred_mask]
    n = targets.numel()
    kind = torch.from_numpy(rng.choice(3, size=n, p=np.asarray(cfg.pred_probs) / sum(cfg.pred_probs)))
    random_ids = torch.from_numpy(rng.randint(0, cfg.n_words, size=n))
    corrupted = torch.where(
        kind == 0,
        torch.full_like(targets, cfg.mask_index),
        torch.where(kind == 1, targets, random_ids.to(targets.dtype)),
    )
    x = x.clone()
    x[pred_mask] = corrupted
    return x, pred_mask, targets


def _round_predictions_to_8(pred_mask: Tensor) -> Tensor:
    """n2 = max(n1 % 8, 8 * (n1 // 8)); unmask the first n1 - n2 predicted positions in time-major order."""
    n1 = int(pred_mask.sum())
    n2 = max(n1 % 8, 8 * (n1 // 8))
    if n2 != n1:
        tm = pred_mask.t().contiguous()
        flat = tm.view(-1)
        first = flat.nonzero().squeeze(1)[: n1 - n2]
        flat[first] = False
        pred_mask = tm.t().contiguous()
    return pred_mask


def mlm_eval_mask(
    x: Tensor, lengths: Tensor, word_pred: float, mask_index: int, rng: np.random.RandomState
) -> Tuple[Tensor, Tensor, Tensor]:
    """Evaluation masking: rand <= word_pred, never position 0 nor positions >= length-1 (so the last
    token of a stream window and padding are excluded), at least one prediction per row, every predicted
    token replaced by the mask."""
    bs, slen = x.shape
    pred_mask = torch.from_numpy(rng.rand(slen, bs) <= word_pred).t().contiguous()
    pred_mask[:, 0] = False
    pred_mask &= torch.arange(slen)[None, :] < (lengths[:, None] - 1)
    empty = (~pred_mask.any(dim=1)).nonzero().squeeze(1).tolist()
    for row in empty:  # one draw per row without a prediction (rare), as the original
        length = int(lengths[row])
        if length > 2:
            pred_mask[row, rng.randint(1, length - 1)] = True
    targets = x[pred_mask]
    x = x.masked_fill(pred_mask, mask_index)
    return x, pred_mask, targets


def clm_mask(x: Tensor, lengths: Tensor, context_size: int = 0) -> Tuple[Tensor, Tensor]:
    """Hidden state t predicts token t+1 for t < length-1; the first context_size positions predict nothing.
    Returns (pred_mask over inputs, targets)."""
    bs, slen = x.shape
    pred_mask = torch.arange(slen)[None, :] < (lengths[:, None] - 1)
    if context_size > 0:
        pred_mask[:, :context_size] = False
    shifted = torch.zeros_like(x)
    shifted[:, :-1] = x[:, 1:]
    return pred_mask, shifted[pred_mask]
