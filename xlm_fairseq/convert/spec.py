"""What a converter needs to know about one XLM model, and the one weight transformation it applies.

Our parameter names are the original's (modules/transformer.py), so a state dict changes only in the rows
of the vocabulary-sized tensors (embeddings.weight, pred_layer.proj.weight/bias), whose pad and eos rows
swap (vocab.vocab_permutation), and, when the original's language ids are not in sorted order, in the rows
of lang_embeddings.weight (our language id is the index in the sorted --langs).
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from ..modules.transformer import N_MAX_POSITIONS
from . import ConvertError
from .vocab import vocab_permutation


@dataclass
class ModelSpec:
    emb_dim: int
    n_layers: int
    n_heads: int
    n_words: int
    langs: List[str]  # in our (sorted) id order
    has_lang_emb: bool
    gelu: bool = True
    sinusoidal: bool = False
    max_positions: int = N_MAX_POSITIONS
    dropout: float = 0.1
    attention_dropout: float = 0.1
    encoder_only: bool = True
    notes: List[str] = field(default_factory=list)

    @property
    def n_langs(self) -> int:
        return len(self.langs)

    @property
    def no_lang_emb(self) -> bool:
        """Our --no-lang-emb: only meaningful (and only set) with more than one language."""
        return self.n_langs > 1 and not self.has_lang_emb

    def describe(self) -> str:
        kind = "encoder-only (LM)" if self.encoder_only else "encoder-decoder (MT)"
        return (
            f"{kind}: emb_dim {self.emb_dim}, {self.n_layers} layers, {self.n_heads} heads, FFN "
            f"{4 * self.emb_dim}, {'gelu' if self.gelu else 'relu'}, "
            f"{'sinusoidal' if self.sinusoidal else 'learned'} positions ({self.max_positions})"
        )


def expected_keys(n_layers: int, has_lang_emb: bool, is_decoder: bool) -> List[str]:
    """The original key set of one TransformerModel (of facebookresearch/XLM `xlm/model/transformer.py:
    TransformerModel`), without a `module.` prefix."""
    keys = ["position_embeddings.weight"] + (["lang_embeddings.weight"] if has_lang_emb else [])
    keys += ["embeddings.weight", "layer_norm_emb.weight", "layer_norm_emb.bias"]
    for i in range(n_layers):
        for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
            keys += [f"attentions.{i}.{lin}.weight", f"attentions.{i}.{lin}.bias"]
        keys += [f"layer_norm1.{i}.weight", f"layer_norm1.{i}.bias"]
        keys += [f"ffns.{i}.lin1.weight", f"ffns.{i}.lin1.bias", f"ffns.{i}.lin2.weight", f"ffns.{i}.lin2.bias"]
        keys += [f"layer_norm2.{i}.weight", f"layer_norm2.{i}.bias"]
        if is_decoder:
            keys += [f"layer_norm15.{i}.weight", f"layer_norm15.{i}.bias"]
            for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
                keys += [f"encoder_attn.{i}.{lin}.weight", f"encoder_attn.{i}.{lin}.bias"]
    keys += ["pred_layer.proj.weight", "pred_layer.proj.bias"]
    return keys


def check_keys(sd: Dict[str, torch.Tensor], spec: ModelSpec, is_decoder: bool, where: str) -> None:
    expected = expected_keys(spec.n_layers, spec.has_lang_emb, is_decoder)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in set(expected)]
    if missing or unexpected:
        detail = []
        if missing:
            detail.append(f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:3]}{' ...' if len(unexpected) > 3 else ''}")
        raise ConvertError(f"{where}: not the XLM transformer layout ({'; '.join(detail)})")
    d, v = spec.emb_dim, spec.n_words
    shapes = {
        "embeddings.weight": (v, d),
        "pred_layer.proj.weight": (v, d),
        "pred_layer.proj.bias": (v,),
        "position_embeddings.weight": (spec.max_positions, d),
    }
    for i in range(spec.n_layers):
        shapes[f"ffns.{i}.lin1.weight"] = (4 * d, d)
        shapes[f"attentions.{i}.q_lin.weight"] = (d, d)
    for key, shape in shapes.items():
        if tuple(sd[key].shape) != shape:
            raise ConvertError(
                f"{where}: {key} has shape {tuple(sd[key].shape)}, expected {shape}"
                + (" (the FFN must be 4 x emb_dim, as in the original)" if "ffns" in key else "")
            )
    if not torch.equal(sd["pred_layer.proj.weight"], sd["embeddings.weight"]):
        raise ConvertError(
            f"{where}: the output projection is not tied to the token embeddings "
            "(share_inout_emb false), which this port does not support"
        )


def permute_rows(sd: Dict[str, torch.Tensor], lang_order: Optional[List[int]] = None) -> Dict[str, torch.Tensor]:
    """Swap the pad/eos rows (XLM <-> ours; its own inverse) and reorder language rows by lang_order
    (new row i = old row lang_order[i]). The output weight stays the same tensor as the embeddings."""
    out = dict(sd)
    perm = vocab_permutation(sd["embeddings.weight"].shape[0])
    emb = sd["embeddings.weight"].index_select(0, perm)
    out["embeddings.weight"] = emb
    out["pred_layer.proj.weight"] = emb
    out["pred_layer.proj.bias"] = sd["pred_layer.proj.bias"].index_select(0, perm)
    if lang_order is not None and "lang_embeddings.weight" in sd:
        out["lang_embeddings.weight"] = sd["lang_embeddings.weight"].index_select(0, torch.tensor(lang_order))
    return {k: v.contiguous() for k, v in out.items()}


def retie(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Make the two names of the tied weight one tensor again (saved once, like nn.Module.state_dict)."""
    if "embeddings.weight" in sd:
        sd["pred_layer.proj.weight"] = sd["embeddings.weight"]
    return sd
