"""Our XLM stack gives transformers' XLMWithLMHeadModel logits with the same weights (fp32, atol 1e-5),
on plain inputs, padded inputs and TLM-layout inputs (position reset, language switch)."""

import pytest
import torch

from xlm_fairseq.modules.encoder_decoder import XLMEncoder, padding_mask_from_lengths

from .helpers_model import hf_xlm, original_state_dict, toy_dictionary


def our_encoder(hf_model, n_langs, use_lang_emb):
    cfg = hf_model.config
    enc = XLMEncoder(
        toy_dictionary(cfg.vocab_size),
        emb_dim=cfg.emb_dim,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        dropout=0.0,
        attention_dropout=0.0,
        gelu_activation=True,
        n_langs=n_langs,
        use_lang_emb=use_lang_emb,
    ).eval()
    missing, unexpected = enc.load_state_dict(original_state_dict(hf_model), strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return enc


def tlm_batch(bs=3, len1=(5, 7, 4), len2=(6, 3, 8), n_words=50, seed=1):
    g = torch.Generator().manual_seed(seed)
    slen = max(a + b for a, b in zip(len1, len2))
    tokens = torch.full((bs, slen), 2, dtype=torch.long)  # original pad id
    positions = torch.zeros(bs, slen, dtype=torch.long)
    langs = torch.ones(bs, slen, dtype=torch.long)
    lengths = torch.tensor([a + b for a, b in zip(len1, len2)])
    for i, (a, b) in enumerate(zip(len1, len2)):
        tokens[i, : a + b] = torch.randint(14, n_words, (a + b,), generator=g)
        tokens[i, [0, a - 1, a, a + b - 1]] = 1  # </s> s1 </s> </s> s2 </s>
        positions[i, :a] = torch.arange(a)
        positions[i, a:] = torch.arange(slen - a)
        langs[i, :a] = 0
    return tokens, lengths, positions, langs


@pytest.mark.parametrize("use_lang_emb", [True, False])
def test_logits_match_transformers_on_tlm_layout(use_lang_emb):
    hf = hf_xlm(use_lang_emb=use_lang_emb)
    ours = our_encoder(hf, n_langs=2, use_lang_emb=use_lang_emb)
    tokens, lengths, positions, langs = tlm_batch()
    with torch.no_grad():
        ref = hf(input_ids=tokens, lengths=lengths, position_ids=positions, langs=langs).logits
        h = ours.fwd(
            tokens, padding_mask=padding_mask_from_lengths(tokens, lengths, 2), positions=positions, langs=langs
        )
        out = ours.predict(h)
    valid = torch.arange(tokens.size(1))[None] < lengths[:, None]
    torch.testing.assert_close(out[valid], ref[valid], atol=1e-5, rtol=0)
    # padding rows of the hidden states are zeroed as in the original
    assert h[~valid].abs().max() == 0


def test_causal_logits_match_transformers():
    hf = hf_xlm(causal=True, seed=3)
    ours = our_encoder(hf, n_langs=2, use_lang_emb=True)
    tokens = torch.randint(14, 50, (2, 9))
    langs = torch.tensor([[0] * 9, [1] * 9])
    with torch.no_grad():
        ref = hf(input_ids=tokens, langs=langs).logits
        out = ours.predict(ours.fwd(tokens, langs=langs, causal=True))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_prediction_only_at_masked_positions_equals_full_projection():
    hf = hf_xlm(seed=5)
    ours = our_encoder(hf, n_langs=2, use_lang_emb=True)
    tokens = torch.randint(14, 50, (2, 9))
    pred_mask = torch.rand(2, 9) < 0.3
    pred_mask[0, 1] = True
    with torch.no_grad():
        h = ours.fwd(tokens, langs=torch.tensor([0, 1]))
        torch.testing.assert_close(ours.predict(h, pred_mask), ours.predict(h)[pred_mask])


def test_a_model_with_language_embeddings_refuses_to_run_without_language_ids():
    """The original skipped the language embedding when langs was None; a caller that lost the ids (as
    fairseq-interactive's rebuilt samples did) must get an error, not different output."""
    from xlm_fairseq.errors import InputError

    ours = our_encoder(hf_xlm(seed=6), n_langs=2, use_lang_emb=True)
    with pytest.raises(InputError, match="language embeddings for 2 languages"):
        ours.fwd(torch.randint(14, 50, (2, 9)))
    without = our_encoder(hf_xlm(seed=6, use_lang_emb=False), n_langs=2, use_lang_emb=False)
    assert without.fwd(torch.randint(14, 50, (2, 9))).shape == (2, 9, 32)
