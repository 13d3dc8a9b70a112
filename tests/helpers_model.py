"""Shared builders for model tests: random original-layout XLM models (via transformers, which implements
the original architecture with the original parameter names) and our stack with the same weights."""

import torch
from fairseq.data import Dictionary


def toy_dictionary(n_words: int) -> Dictionary:
    d = Dictionary()
    for i in range(10):
        d.add_symbol(f"<special{i}>")
    while len(d) < n_words:
        d.add_symbol(f"w{len(d)}")
    return d


def hf_xlm(
    n_words=50, dim=32, n_layers=2, n_heads=4, n_langs=2, use_lang_emb=True, causal=False, seed=0, is_encoder=True
):
    from transformers import XLMConfig, XLMWithLMHeadModel

    torch.manual_seed(seed)
    config = XLMConfig(
        vocab_size=n_words,
        emb_dim=dim,
        n_layers=n_layers,
        n_heads=n_heads,
        n_langs=n_langs,
        use_lang_emb=use_lang_emb,
        gelu_activation=True,
        sinusoidal_embeddings=False,
        causal=causal,
        dropout=0.0,
        attention_dropout=0.0,
        max_position_embeddings=512,
        asm=False,
        is_encoder=is_encoder,
        pad_index=2,
        eos_index=1,
        bos_index=0,
        unk_index=3,
        mask_index=5,
        layer_norm_eps=1e-12,
    )
    model = XLMWithLMHeadModel(config).eval()
    # transformers initialises LayerNorms to (1, 0) and biases to 0: randomise them so parity means something
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model


def original_state_dict(hf_model) -> dict:
    """transformers' XLM state dict minus the `transformer.` prefix is the original key layout."""
    sd = {}
    for key, value in hf_model.state_dict().items():
        sd[key[len("transformer.") :] if key.startswith("transformer.") else key] = value
    return sd
