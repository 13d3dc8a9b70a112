"""Initialising a translation model's encoder and decoder from pretrained LMs (facebookresearch/XLM
`xlm/model/__init__.py: build_model`, paper Table 2):
--reload-encoder / --reload-decoder take checkpoints of the pretraining tasks (or converted original XLM
models, or translation checkpoints). Every key must match, except the decoder's cross-attention and its
LayerNorm (absent from an LM), which keep their fresh initialisation and are listed in the log."""

import logging
import os
from typing import Dict

import torch
from fairseq.data import Dictionary

from .checkpoints import data_dir, languages, read_checkpoint
from .errors import ConfigError

logger = logging.getLogger(__name__)

CROSS_ATTENTION_PREFIXES = ("layer_norm15.", "encoder_attn.")


def _checkpoint_dictionary(state):
    folder = data_dir(state.get("cfg"))
    if not folder:
        return None, None
    path = os.path.join(folder, "dict.txt")
    return (Dictionary.load(path), path) if os.path.isfile(path) else (None, path)


def side_state(state, side: str, flag: str, path: str) -> Dict[str, torch.Tensor]:
    """The weights for our `side` ('encoder' or 'decoder'): an LM checkpoint has only `encoder.*`; a
    translation checkpoint has both."""
    keys = state["model"].keys()
    prefix = "decoder." if side == "decoder" and any(k.startswith("decoder.") for k in keys) else "encoder."
    sub = {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    if not sub:
        raise ConfigError(f"{flag} {path}: no XLM encoder weights (keys '{prefix}*') in this checkpoint")
    return sub


def load_side(module, sub: Dict[str, torch.Tensor], side: str, flag: str, path: str, n_words: int) -> None:
    expected = module.state_dict()
    fresh = []
    for key in expected:
        if key not in sub:
            if side == "decoder" and key.startswith(CROSS_ATTENTION_PREFIXES):
                sub[key] = expected[key]
                fresh.append(key)
            else:
                raise ConfigError(
                    f"{flag} {path}: parameter {key} is missing; the checkpoint's architecture "
                    "differs (layers, language embeddings: --no-lang-emb)"
                )
    unexpected = [k for k in sub if k not in expected]
    if unexpected:
        raise ConfigError(
            f"{flag} {path}: unexpected parameters {unexpected[:3]}: the architecture differs "
            "(number of layers, --no-lang-emb, or a decoder loaded as an encoder)"
        )
    for key, value in sub.items():
        if value.shape != expected[key].shape:
            if key == "embeddings.weight" or key.startswith("pred_layer."):
                raise ConfigError(
                    f"{flag} {path}: its vocabulary has {value.shape[0]} entries, dict.txt has "
                    f"{n_words}: use the dictionary the model was pretrained with"
                )
            if key == "lang_embeddings.weight":
                raise ConfigError(
                    f"{flag} {path}: it has {value.shape[0]} language embeddings, this model "
                    f"{expected[key].shape[0]}, and its config does not name its languages: "
                    "give the pretraining --langs"
                )
            raise ConfigError(
                f"{flag} {path}: {key} has shape {tuple(value.shape)}, this model "
                f"{tuple(expected[key].shape)}: use the pretraining --arch / --emb-dim / --n-layers"
            )
    module.load_state_dict(sub, strict=True)
    if fresh:
        logger.info(
            f"{side} from {path}: {len(fresh)} cross-attention parameters initialised fresh: "
            + ", ".join(sorted({k.split(".")[0] + ".*" for k in fresh}))
        )
    logger.info(f"{side} initialised from {path}")


def reload_encoder_decoder(model, encoder_path: str, decoder_path: str, dictionary: Dictionary) -> None:
    """Each side is checked against this data-bin's dict.txt (when the checkpoint records its data-bin),
    so an encoder and a decoder trained with different dictionaries cannot be combined; language-embedding
    rows are mapped by language name (an LM pretrained on de,en,fr initialises an en-fr model)."""
    for side, path, flag in (
        ("encoder", encoder_path, "--reload-encoder"),
        ("decoder", decoder_path, "--reload-decoder"),
    ):
        if not path:
            continue
        state = read_checkpoint(path, flag)
        ckpt_dict, dict_path = _checkpoint_dictionary(state)
        if ckpt_dict is not None and ckpt_dict != dictionary:
            raise ConfigError(
                f"{flag} {path}: it was trained with {dict_path}, which differs from this "
                "data-bin's dict.txt; binarise with the pretraining dictionary"
            )
        module, sub = getattr(model, side), side_state(state, side, flag, path)
        source = languages(state.get("cfg"))
        if source:
            module.adopt_language_rows(sub, "", source, model.langs, model.cfg.init_new_langs, f"{flag} {path}")
        load_side(module, sub, side, flag, path, len(dictionary))
