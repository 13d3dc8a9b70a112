"""Model options of the original `TransformerModel`: sinusoidal positions, ReLU, no language embeddings, the
released models'
architectures, and the original's parameter count."""

import argparse
import math

import torch
from fairseq.models import ARCH_CONFIG_REGISTRY

from xlm_fairseq.modules.encoder_decoder import XLMEncoder
from xlm_fairseq.modules.transformer import num_parameters

from .helpers_model import toy_dictionary


def test_sinusoidal_positions_are_the_standard_frozen_table():
    enc = XLMEncoder(toy_dictionary(40), emb_dim=16, n_layers=1, n_heads=2, sinusoidal_embeddings=True)
    w = enc.position_embeddings.weight
    assert not w.requires_grad
    pos, j = 7, 5  # odd dimension: cos
    assert math.isclose(w[pos, j].item(), math.cos(pos / 10000 ** (2 * (j // 2) / 16)), abs_tol=1e-6)
    assert math.isclose(w[pos, 4].item(), math.sin(pos / 10000 ** (4 / 16)), abs_tol=1e-6)


def test_no_language_embeddings_and_relu():
    enc = XLMEncoder(
        toy_dictionary(40), emb_dim=16, n_layers=1, n_heads=2, n_langs=3, use_lang_emb=False, gelu_activation=False
    )
    assert "lang_embeddings.weight" not in enc.state_dict()
    x = torch.randn(5, 16)
    ffn = enc.ffns[0].eval()
    assert torch.allclose(ffn(x), ffn.lin2(torch.relu(ffn.lin1(x))))
    # one language: no language embedding either (the original adds it only when n_langs > 1)
    assert (
        "lang_embeddings.weight"
        not in XLMEncoder(toy_dictionary(40), emb_dim=16, n_layers=1, n_heads=2, n_langs=1).state_dict()
    )


def test_released_architectures():
    expected = {
        "xlm_mlm_enfr_1024": (1024, 6, 8, False),
        "xlm_mlm_xnli15_1024": (1024, 12, 8, False),
        "xlm_mlm_en_2048": (2048, 12, 16, False),
        "xlm_mlm_17_1280": (1280, 16, 16, True),
        "xlm_mlm_100_1280": (1280, 16, 16, True),
        "xlm_tiny": (64, 2, 4, False),
    }
    for arch, (dim, layers, heads, no_lang) in expected.items():
        args = argparse.Namespace()
        ARCH_CONFIG_REGISTRY[arch](args)
        assert (args.emb_dim, args.n_layers, args.n_heads, args.no_lang_emb) == (dim, layers, heads, no_lang), arch


def test_parameter_count_formula_matches_the_model():
    enc = XLMEncoder(toy_dictionary(50), emb_dim=32, n_layers=3, n_heads=4, n_langs=2)
    n = sum(p.numel() for p in enc.parameters())  # the tied output weight is one Parameter
    assert n == num_parameters(3, 32, 50, 2)
    # mlm_enfr_1024 has about 141.8M parameters (the original README: 142M)
    assert abs(num_parameters(6, 1024, 64139, 2) / 1e6 - 141.8) < 0.1
