"""Batched greedy decoding with the incremental key/value cache (facebookresearch/XLM `xlm/model/transformer.py:
TransformerModel.generate`): used by online
back-translation (max_len = int(1.3 * L + 5)) and by BLEU validation (int(1.5 * L + 10)).

Every row starts with `</s>` at position 0 and the target language id on every position; a row stops
after emitting `</s>`; rows still running at max_len get `</s>` forced in the last position. Finished rows
leave the batch (their cache rows are dropped), which the original does not do but which changes nothing
in the output."""

from typing import Tuple

import torch
from torch import Tensor


@torch.no_grad()
def greedy_generate(
    model, src_tokens: Tensor, src_lengths: Tensor, src_langs: Tensor, tgt_langs: Tensor, max_len: int
) -> Tuple[Tensor, Tensor]:
    """Returns (generated `</s> y </s>` right-padded with pad, lengths counting both delimiters), both on the
    model's device.

    The host reads one number from the device per decoding step, how many rows have just finished (it decides
    whether to shrink the batch or stop); the finished rows' lengths and the rows that go on are computed on the
    device from that number, so nothing else waits for the device."""
    encoder, decoder = model.encoder, model.decoder
    eos, pad = decoder.dictionary.eos(), decoder.dictionary.pad()
    max_len = min(max_len, decoder.max_positions())
    bs = src_tokens.size(0)
    encoder_out = encoder(src_tokens, src_lengths, src_langs=src_langs, tgt_langs=tgt_langs)
    out = src_tokens.new_full((bs, max_len), pad)
    out[:, 0] = eos
    lengths = src_tokens.new_full((bs,), max_len)
    alive = torch.arange(bs, device=src_tokens.device)  # rows of `out` still decoding
    n_alive, width = bs, max_len
    incremental_state: dict = {}
    for cur in range(1, max_len):
        logits, _ = decoder(out[alive, :cur], encoder_out=encoder_out, incremental_state=incremental_state)
        next_tokens = logits[:, -1].argmax(dim=-1)
        if cur == max_len - 1:
            next_tokens.fill_(eos)
        out[alive, cur] = next_tokens
        done = next_tokens.eq(eos)
        n_done = int(done.sum())  # the step's one read-back
        if n_done == 0:
            continue
        lengths[alive] = torch.where(done, cur + 1, lengths[alive])
        n_alive -= n_done
        if n_alive == 0:
            width = cur + 1
            break
        keep = torch.argsort(done.to(torch.uint8), stable=True)[:n_alive]  # the unfinished rows, in order
        alive = alive[keep]
        encoder_out = encoder.reorder_encoder_out(encoder_out, keep)
        decoder.reorder_incremental_state_scripting(incremental_state, keep)
    return out[:, :width], lengths


@torch.no_grad()
def greedy_generate_without_cache(model, src_tokens, src_lengths, src_langs, tgt_langs, max_len):
    """The naive loop (full decoder re-run at every step, no cache, whole batch): the benchmark's
    baseline and a check of the cached version."""
    encoder, decoder = model.encoder, model.decoder
    eos, pad = decoder.dictionary.eos(), decoder.dictionary.pad()
    bs = src_tokens.size(0)
    encoder_out = encoder(src_tokens, src_lengths, src_langs=src_langs, tgt_langs=tgt_langs)
    out = src_tokens.new_full((bs, max_len), pad)
    out[:, 0] = eos
    lengths = torch.full((bs,), max_len, dtype=torch.long, device=src_tokens.device)
    unfinished = torch.ones(bs, dtype=torch.bool, device=src_tokens.device)
    for cur in range(1, max_len):
        logits, _ = decoder(out[:, :cur], encoder_out=encoder_out)
        next_tokens = logits[:, -1].argmax(dim=-1)
        if cur == max_len - 1:
            next_tokens.fill_(eos)
        out[:, cur] = torch.where(unfinished, next_tokens, torch.full_like(next_tokens, pad))
        finished_now = unfinished & next_tokens.eq(eos)
        lengths[finished_now] = cur + 1
        unfinished &= ~next_tokens.eq(eos)
        if not unfinished.any():
            break
    return out[:, : int(lengths.max())], lengths


def bt_max_len(src_tokens: Tensor) -> int:
    """int(1.3 * L + 5) for the longest source sentence L: the batch's width, since the collaters pad every row to
    the longest one (read from the shape, not from the lengths on the device)."""
    return int(1.3 * src_tokens.size(1) + 5)


def eval_max_len(src_tokens: Tensor) -> int:
    """int(1.5 * L + 10) for the longest source sentence L (the batch's width, as bt_max_len)."""
    return int(1.5 * src_tokens.size(1) + 10)
