"""Reading checkpoints of this plugin, in one place: the whole checkpoint with one-line errors, its config alone
(without reading the weights), the data-bin and the languages it was trained with, the file fairseq-train is
about to load, and the language-embedding rows of a checkpoint mapped onto another language list by name.

Language ids index the language embedding (the sorted --langs, as the original), so a model trained with
`--langs de,en` loaded into one with `--langs en,fr` would give English the German row if rows were copied by
position. Every loading path maps rows by language name instead: --reload-encoder/--reload-decoder,
--finetune-from-model, --restore-file, fairseq-generate/-validate/-interactive and the hub interface."""

import logging
import os
from typing import List, Optional, Sequence, Tuple

import torch
from fairseq import utils

from .errors import ConfigError

logger = logging.getLogger(__name__)

LANG_EMBEDDING = "lang_embeddings.weight"


class CheckpointError(ConfigError):
    pass


def _describe(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    if "Weights only load failed" in first or not first:
        return type(e).__name__
    return f"{type(e).__name__}: {first[:160]}"


def read_checkpoint(path: str, flag: str = "checkpoint") -> dict:
    """The whole fairseq checkpoint (fairseq's load_checkpoint_to_cpu), or a CheckpointError naming the file."""
    from fairseq import checkpoint_utils

    if not os.path.isfile(path):
        raise CheckpointError(f"{flag} {path}: no such file")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as e:  # a truncated, corrupt or foreign file: say which and why in one line
        raise CheckpointError(
            f"{flag} {path}: not a readable checkpoint ({_describe(e)}): the file is truncated, "
            "corrupt or not a fairseq checkpoint (original XLM .pth files go through `xlm-convert "
            "from-original` first); nothing was written"
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{flag} {path}: no model weights in this file: not a fairseq checkpoint")
    return state


def peek_checkpoint(path: str, flag: str = "checkpoint") -> dict:
    """The checkpoint with its tensors memory-mapped, not read (torch.load with mmap): its config, key names
    and shapes cost no time even for a large file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{flag} {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", mmap=True)
    except Exception:  # not a zip checkpoint (mmap needs one), or unreadable: read it whole (or say why not)
        state = read_checkpoint(path, flag)
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{flag} {path}: no model weights in this file: not a fairseq checkpoint")
    return state


def read_config(path: str, flag: str = "checkpoint"):
    """The saved cfg of a checkpoint (None if it has none), without reading its weights."""
    return peek_checkpoint(path, flag).get("cfg")


def config_value(cfg, *keys):
    """cfg[k1][k2]... of a saved config (DictConfig, dict or None), or None."""
    try:
        for key in keys:
            cfg = cfg[key]
        return cfg
    except (KeyError, TypeError, AttributeError):
        return None


def data_dir(cfg) -> Optional[str]:
    """The first data-bin folder of a saved config."""
    data = config_value(cfg, "task", "data")
    paths = utils.split_paths(str(data)) if data else []
    return paths[0] if paths else None


def split_data_paths(data) -> List[str]:
    return [p for p in utils.split_paths(str(data or "")) if p]


def languages(cfg) -> Optional[List[str]]:
    """The languages of a model's language-embedding rows, in row order: the model's own record (emb_langs), or
    the sorted --langs of the task it was trained with; None when the config says neither."""
    emb_langs = config_value(cfg, "model", "emb_langs")
    if emb_langs:
        return str(emb_langs).split(",")
    langs = config_value(cfg, "task", "langs")
    if langs:
        return sorted(l.strip() for l in str(langs).split(",") if l.strip())
    return None


def file_fairseq_will_load(checkpoint_cfg) -> Tuple[Optional[str], str]:
    """(path, the flag that names it) of the checkpoint fairseq-train's checkpoint_utils.load_checkpoint reads at
    start, or (None, ''): the run's own checkpoint_last.pt when it exists, else --finetune-from-model, else a
    --restore-file given by the user."""
    restore = checkpoint_cfg.restore_file
    own_last = os.path.join(checkpoint_cfg.save_dir, "checkpoint_last.pt")
    if restore == "checkpoint_last.pt":
        if os.path.exists(own_last):
            return own_last, "--restore-file"
        if checkpoint_cfg.finetune_from_model:
            return checkpoint_cfg.finetune_from_model, "--finetune-from-model"
        return None, ""
    return (restore, "--restore-file") if os.path.exists(restore) else (None, "")


def check_language_coverage(source: Sequence[str], target: Sequence[str], allow_new: bool, what: str) -> None:
    """A language of `target` that the checkpoint (`source`) lacks is an error unless `allow_new`."""
    missing = [l for l in target if l not in source]
    if missing and not allow_new:
        raise CheckpointError(
            f"{what}: it was trained with the languages {','.join(source)}, which lack "
            f"{','.join(missing)} of --langs {','.join(target)}; remove them from --langs, or "
            "pass --init-new-langs to give them a fresh language embedding"
        )


def map_language_rows(
    weight: torch.Tensor, source: Sequence[str], target: Sequence[str], allow_new: bool, what: str
) -> torch.Tensor:
    """Rows of `weight` (one per language of `source`) rearranged for the languages of `target`. A target
    language the source lacks is an error unless `allow_new`; its row is then drawn as every embedding is at
    initialisation, N(0, dim^-0.5)."""
    if weight.size(0) != len(source):
        raise CheckpointError(
            f"{what}: its language embedding has {weight.size(0)} rows for the languages {','.join(source)}"
        )
    check_language_coverage(source, target, allow_new, what)
    missing = [l for l in target if l not in source]
    rows = []
    for lang in target:
        if lang in source:
            rows.append(weight[source.index(lang)])
        else:
            rows.append(torch.randn(weight.size(1), dtype=weight.dtype, device=weight.device) * weight.size(1) ** -0.5)
    if list(source) != list(target):
        fresh = f"; fresh rows for {','.join(missing)}" if missing else ""
        logger.info(
            f"{what}: language embedding rows mapped by name from {','.join(source)} to {','.join(target)}{fresh}"
        )
    return torch.stack(rows) if rows else weight[:0]
