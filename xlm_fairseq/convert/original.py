"""Reading an original XLM checkpoint (facebookresearch/XLM `xlm/trainer.py: save_checkpoint`): `model`
(encoder-only runs) or `encoder` + `decoder`
state dicts, a full or reduced `params` dict, and usually `dico_id2word` / `dico_word2id` / `dico_counts`.

Dimensions come from the weights (layers from the key names, emb_dim from embeddings.weight, languages
from lang_embeddings.weight, absent meaning none), n_heads from params (shapes cannot tell it), the
activation and positions from params, and the language order from id2lang / lang2id.
"""

import re
from collections.abc import Mapping
from typing import Dict, List, Optional

import torch

from ..modules.transformer import N_MAX_POSITIONS
from . import ConvertError
from .spec import ModelSpec, check_keys, permute_rows

MODULE_PREFIX = "module."


def strip_module_prefix(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """XLM saves the DDP-wrapped module's keys; strip `module.` when every key has it (as reload_model)."""
    if sd and all(k.startswith(MODULE_PREFIX) for k in sd):
        return {k[len(MODULE_PREFIX) :]: v for k, v in sd.items()}
    return dict(sd)


def _state_dict(value, name: str, path: str) -> Dict[str, torch.Tensor]:
    if (
        not isinstance(value, Mapping)
        or not value
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    ):
        raise ConvertError(f"{path}: '{name}' is not a state dict of tensors; not an XLM checkpoint")
    sd = strip_module_prefix(value)
    if "embeddings.weight" not in sd:
        raise ConvertError(
            f"{path}: '{name}' has no embeddings.weight (keys: {list(sd)[:3]}...); not an XLM transformer"
        )
    return sd


def side_state_dicts(ckpt, path: str) -> Dict[str, Dict[str, torch.Tensor]]:
    """{'encoder': sd} for encoder-only checkpoints, {'encoder': sd, 'decoder': sd} for MT ones."""
    if not isinstance(ckpt, Mapping):
        raise ConvertError(
            f"{path}: holds a {type(ckpt).__name__}, not an XLM checkpoint (a dict with "
            "'model', or 'encoder' and 'decoder')"
        )
    if "cfg" in ckpt and "model" in ckpt and "params" not in ckpt:
        raise ConvertError(
            f"{path}: this is a fairseq checkpoint, not an original XLM one; it needs no "
            "conversion (use to-transformers to export it)"
        )
    if "sentences" in ckpt and "positions" in ckpt:
        raise ConvertError(f"{path}: XLM binarised data (preprocess.py output), not a model checkpoint")
    if "model" in ckpt:
        return {"encoder": _state_dict(ckpt["model"], "model", path)}
    if "encoder" in ckpt and "decoder" in ckpt:
        return {side: _state_dict(ckpt[side], side, path) for side in ("encoder", "decoder")}
    if "encoder" in ckpt:
        return {"encoder": _state_dict(ckpt["encoder"], "encoder", path)}
    keys = sorted(str(k) for k in ckpt)[:6]
    raise ConvertError(
        f"{path}: not an XLM checkpoint: no 'model' or 'encoder'/'decoder' state dict (top-level keys: {keys})"
    )


def _n_layers(sd: Dict[str, torch.Tensor], where: str) -> int:
    layers = {int(m.group(1)) for k in sd for m in [re.match(r"attentions\.(\d+)\.", k)] if m}
    if not layers:
        raise ConvertError(f"{where}: no attentions.<i>.* weights; not an XLM transformer")
    n = max(layers) + 1
    if layers != set(range(n)):
        raise ConvertError(f"{where}: layers {sorted(set(range(n)) - layers)} are missing")
    return n


def _languages(params: Mapping, langs_override: Optional[List[str]], path: str) -> List[str]:
    """The languages in the original's id order."""
    if langs_override:
        return list(langs_override)
    id2lang = params.get("id2lang")
    if isinstance(id2lang, Mapping) and id2lang:
        try:
            return [str(id2lang[i]) for i in sorted(id2lang, key=int)]
        except (TypeError, ValueError):
            pass
    lang2id = params.get("lang2id")
    if isinstance(lang2id, Mapping) and lang2id:
        return [str(l) for l, _ in sorted(lang2id.items(), key=lambda kv: int(kv[1]))]
    raise ConvertError(
        f"{path}: params has no id2lang/lang2id; give the languages in the original's "
        "id order with --langs (e.g. --langs en,fr)"
    )


def read_spec(
    sides: Dict[str, Dict[str, torch.Tensor]],
    params: Mapping,
    path: str,
    n_heads: Optional[int] = None,
    langs: Optional[List[str]] = None,
):
    """(ModelSpec, lang_order): lang_order[i] is the original row of our i-th (sorted) language."""
    enc = sides["encoder"]
    emb = enc["embeddings.weight"]
    if emb.dim() != 2:
        raise ConvertError(f"{path}: embeddings.weight has shape {tuple(emb.shape)}; not an XLM transformer")
    n_words, dim = emb.shape
    if params.get("asm"):
        raise ConvertError(f"{path}: the model uses an adaptive softmax (asm true), which this port does not support")
    if params.get("use_memory") or any(k.startswith("memories.") for sd in sides.values() for k in sd):
        raise ConvertError(f"{path}: the model has product-key memory layers, which this port does not support")
    heads_param = params.get("n_heads")
    if n_heads is None:
        if heads_param is None:
            raise ConvertError(
                f"{path}: params has no n_heads and the weights cannot tell it; pass --n-heads "
                "(8 for the released 1024-dim models, 16 for the 1280- and 2048-dim ones)"
            )
        n_heads = int(heads_param)
    if n_heads <= 0 or dim % n_heads:
        raise ConvertError(f"{path}: emb_dim {dim} is not divisible by n_heads {n_heads}")
    lang_rows = enc["lang_embeddings.weight"].shape[0] if "lang_embeddings.weight" in enc else None
    names = _languages(params, langs, path)
    if len(set(names)) != len(names):
        raise ConvertError(f"{path}: language list {names} repeats a language")
    if lang_rows is not None and lang_rows != len(names):
        raise ConvertError(
            f"{path}: lang_embeddings.weight has {lang_rows} rows but {len(names)} languages "
            f"are named ({','.join(names)}); fix --langs"
        )
    order = sorted(range(len(names)), key=lambda i: names[i])
    spec = ModelSpec(
        emb_dim=int(dim),
        n_layers=_n_layers(enc, f"{path} (encoder)"),
        n_heads=n_heads,
        n_words=int(n_words),
        langs=[names[i] for i in order],
        has_lang_emb=lang_rows is not None,
        gelu=bool(params.get("gelu_activation", True)),
        sinusoidal=bool(params.get("sinusoidal_embeddings", False)),
        max_positions=int(enc["position_embeddings.weight"].shape[0])
        if "position_embeddings.weight" in enc
        else N_MAX_POSITIONS,
        dropout=float(params.get("dropout", 0.1)),
        attention_dropout=float(params.get("attention_dropout", 0.1)),
        encoder_only="decoder" not in sides,
    )
    if heads_param is not None and int(heads_param) != n_heads:
        spec.notes.append(f"--n-heads {n_heads} overrides params n_heads {heads_param}")
    if "gelu_activation" not in params:
        spec.notes.append("params has no gelu_activation: assumed true (as all released models)")
    for side, sd in sides.items():
        where = f"{path} ({side})"
        if side == "decoder" and _n_layers(sd, where) != spec.n_layers:
            raise ConvertError(f"{where}: {_n_layers(sd, where)} layers, the encoder has {spec.n_layers}")
        check_keys(sd, spec, is_decoder=side == "decoder", where=where)
    return spec, order


def to_ours(sides: Dict[str, Dict[str, torch.Tensor]], lang_order: List[int]) -> Dict[str, torch.Tensor]:
    """Our model.pt state dict: `encoder.<name>` (and `decoder.<name>`) with rows permuted."""
    out = {}
    for side, sd in sides.items():
        for key, value in permute_rows(sd, lang_order).items():
            out[f"{side}.{key}"] = value
    return out
