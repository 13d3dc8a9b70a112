"""Exact semantics of the translation pieces: DAE noise (facebookresearch/XLM `xlm/trainer.py: add_noise`),
incremental decoding, greedy
generation (`TransformerModel.generate`), initialisation from a pretrained LM (`xlm/model/__init__.py: build_model`)."""

import numpy as np
import pytest
import torch

from xlm_fairseq.data.noise import NoiseConfig, add_noise, word_blank, word_dropout, word_shuffle
from xlm_fairseq.errors import ConfigError
from xlm_fairseq.generation import greedy_generate, greedy_generate_without_cache
from xlm_fairseq.modules.encoder_decoder import XLMDecoder, XLMEncoder
from xlm_fairseq.pretrained import load_side, side_state

from .helpers_model import toy_dictionary

EOS, PAD, MASK = 2, 1, 5


def batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.full((len(lengths), max(lengths)), PAD)
    for i, l in enumerate(lengths):
        x[i, :l] = torch.randint(100, 1000, (l,), generator=g)
        x[i, 0] = x[i, l - 1] = EOS
    return x, torch.tensor(lengths)


def test_word_shuffle_moves_tokens_less_than_k_and_keeps_delimiters():
    rng = np.random.RandomState(0)
    for _ in range(50):
        x, lengths = batch([12, 7, 3, 20])
        y, l2 = word_shuffle(x, lengths, 3, rng)
        assert torch.equal(l2, lengths)
        for i, l in enumerate(lengths.tolist()):
            assert y[i, 0] == EOS and y[i, l - 1] == EOS
            assert sorted(y[i, :l].tolist()) == sorted(x[i, :l].tolist())
            src = x[i, :l].tolist()
            for new_pos, tok in enumerate(y[i, 1 : l - 1].tolist(), start=1):
                assert abs(src.index(tok) - new_pos) < 3


def test_word_dropout_rate_and_never_empty():
    rng = np.random.RandomState(1)
    kept = total = 0
    for _ in range(200):
        x, lengths = batch([22, 15, 9, 3])
        y, l2 = word_dropout(x, lengths, 0.1, rng, EOS, PAD)
        for i in range(4):
            row = y[i, : l2[i]].tolist()
            assert row[0] == EOS and row[-1] == EOS and len(row) >= 3
            assert set(row[1:-1]) <= set(x[i, 1 : lengths[i] - 1].tolist())
        kept += int((l2 - 2).sum())
        total += int((lengths - 2).sum())
        assert (y[torch.arange(y.size(1))[None] >= l2[:, None]] == PAD).all()
    assert abs(kept / total - 0.9) < 0.02


def test_word_dropout_keeps_one_word_when_all_would_drop():
    x, lengths = batch([6])
    y, l2 = word_dropout(x, lengths, 0.999999, np.random.RandomState(0), EOS, PAD)
    assert l2.tolist() == [3] and y[0, 1].item() in x[0, 1:5].tolist()


def test_word_blank_replaces_words_with_mask_only():
    rng = np.random.RandomState(2)
    blanked = total = 0
    for _ in range(200):
        x, lengths = batch([22, 15, 9])
        y, l2 = word_blank(x, lengths, 0.1, rng, MASK)
        assert torch.equal(l2, lengths)
        changed = y != x
        assert (y[changed] == MASK).all()
        assert not changed[:, 0].any()
        for i, l in enumerate(lengths.tolist()):
            assert not changed[i, l - 1 :].any()
        blanked += int(changed.sum())
        total += int((lengths - 2).sum())
    assert abs(blanked / total - 0.1) < 0.02


def test_noise_is_deterministic_for_a_seed():
    x, lengths = batch([12, 7, 9])
    cfg = NoiseConfig(3, 0.1, 0.1)
    a = add_noise(x, lengths, cfg, np.random.RandomState(5), EOS, PAD, MASK)
    b = add_noise(x, lengths, cfg, np.random.RandomState(5), EOS, PAD, MASK)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def tiny_encdec(n_words=60, seed=0):
    torch.manual_seed(seed)
    d = toy_dictionary(n_words)
    args = dict(emb_dim=32, n_layers=2, n_heads=4, n_langs=2)
    return XLMEncoder(d, **args).eval(), XLMDecoder(d, **args).eval()


class _Model(torch.nn.Module):
    def __init__(self, enc, dec):
        super().__init__()
        self.encoder, self.decoder = enc, dec


def test_incremental_decoding_equals_full_decoding():
    enc, dec = tiny_encdec()
    src, src_len = batch([9, 6], seed=3)
    src = src.clamp(max=59)
    enc_out = enc(src, src_len, src_langs=torch.tensor([0, 0]), tgt_langs=torch.tensor([1, 1]))
    prev = torch.randint(14, 60, (2, 7))
    prev[:, 0] = EOS
    with torch.no_grad():
        full, _ = dec(prev, encoder_out=enc_out)
        state = {}
        steps = [dec(prev[:, : t + 1], encoder_out=enc_out, incremental_state=state)[0][:, -1] for t in range(7)]
    torch.testing.assert_close(torch.stack(steps, dim=1), full, atol=1e-5, rtol=0)


def test_cached_greedy_equals_naive_greedy():
    enc, dec = tiny_encdec(seed=4)
    model = _Model(enc, dec)
    src, src_len = batch([11, 5, 8, 3], seed=6)
    src = src.clamp(max=59)
    langs = torch.zeros(4, dtype=torch.long)
    a, la = greedy_generate(model, src, src_len, langs, langs + 1, 14)
    b, lb = greedy_generate_without_cache(model, src, src_len, langs, langs + 1, 14)
    assert torch.equal(la, lb) and torch.equal(a, b)
    assert (a[:, 0] == EOS).all()
    for i, l in enumerate(la.tolist()):
        assert a[i, l - 1] == EOS and l <= 14


def test_decoder_from_lm_fills_only_cross_attention():
    lm_enc, _ = tiny_encdec(seed=7)
    lm_state = {f"encoder.{k}": v for k, v in lm_enc.state_dict().items()}
    _, dec = tiny_encdec(seed=8)
    fresh_cross = {k: v.clone() for k, v in dec.state_dict().items() if k.startswith(("encoder_attn", "layer_norm15"))}
    load_side(
        dec,
        side_state({"model": lm_state}, "decoder", "--reload-decoder", "lm.pt"),
        "decoder",
        "--reload-decoder",
        "lm.pt",
        60,
    )
    for k, v in dec.state_dict().items():
        if k in fresh_cross:
            assert torch.equal(v, fresh_cross[k])
        else:
            assert torch.equal(v, lm_enc.state_dict()[k]), k


def test_reload_errors_name_the_mismatch():
    lm_enc, _ = tiny_encdec(n_words=70, seed=1)
    state = {"model": {f"encoder.{k}": v for k, v in lm_enc.state_dict().items()}}
    enc, _ = tiny_encdec(n_words=60)
    with pytest.raises(ConfigError, match="vocabulary has 70 entries, dict.txt has 60"):
        load_side(
            enc, side_state(state, "encoder", "--reload-encoder", "x.pt"), "encoder", "--reload-encoder", "x.pt", 60
        )
    torch.manual_seed(0)
    three_langs = XLMEncoder(toy_dictionary(60), emb_dim=32, n_layers=2, n_heads=4, n_langs=3)
    state = {"model": {f"encoder.{k}": v for k, v in three_langs.state_dict().items()}}
    with pytest.raises(ConfigError, match="3 language embeddings, this model 2"):
        load_side(
            enc, side_state(state, "encoder", "--reload-encoder", "x.pt"), "encoder", "--reload-encoder", "x.pt", 60
        )
    with pytest.raises(ConfigError, match="no XLM encoder"):
        side_state({"model": {"foo.bar": torch.zeros(1)}}, "encoder", "--reload-encoder", "x.pt")
