"""Reading checkpoints, in one place: every file a command or the hub interface loads is opened by `_open`
below, whatever its kind (fairseq checkpoints whole or memory-mapped, original XLM `.pth` files, transformers'
weights), so a missing, empty, truncated or foreign file always gives the one-line CheckpointError composed in
errors.py. Besides: a checkpoint's config alone (without reading the weights), the data-bin and the languages
it was trained with, the file fairseq-train is about to load, and the language-embedding rows of a checkpoint
mapped onto another language list by name.

Language ids index the language embedding (the sorted --langs, as the original), so a model trained with
`--langs de,en` loaded into one with `--langs en,fr` would give English the German row if rows were copied by
position. Every loading path maps rows by language name instead: --reload-encoder/--reload-decoder,
--finetune-from-model, --restore-file, fairseq-generate/-validate/-interactive and the hub interface.

fairseq's own command lines read --restore-file, --finetune-from-model and --path with fairseq's loader; the
tasks read the same file's config here first (file_fairseq_will_load), and what fairseq-generate/-validate
read alone reaches the same message through the excepthook (cli_hooks.py)."""

import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from fairseq import utils

from .errors import NOT_OURS, CheckpointError, unreadable_checkpoint, where

logger = logging.getLogger(__name__)

LANG_EMBEDDING = "lang_embeddings.weight"


def _open(path: str, flag: str, load: Callable[[str], Any], refused_hint: str = NOT_OURS, torch_file=True) -> Any:
    """`load(path)`, with the one set of errors for a file that is missing, a folder, empty or unreadable."""
    path = str(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{where(flag, path)}: no such file")
    if os.path.isdir(path):
        raise CheckpointError(f"{where(flag, path)}: a folder, not a checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(
            f"{where(flag, path)}: not a readable checkpoint (an empty file: an interrupted save, copy or "
            "download?); pass another file"
        )
    try:
        return load(path)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, KeyError, struct.error...
        raise unreadable_checkpoint(path, flag, e, refused_hint, torch_file) from None


def _is_zip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _require_model(state, path: str, flag: str) -> dict:
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{where(flag, path)}: no model weights in this file: {NOT_OURS}")
    return state


def read_checkpoint(path: str, flag: str = "checkpoint", arg_overrides: Optional[Dict[str, Any]] = None) -> dict:
    """The whole fairseq checkpoint as fairseq reads it (checkpoint_utils.load_checkpoint_to_cpu: upgraded, its
    cfg an OmegaConf config with `arg_overrides` applied), or a CheckpointError naming `flag` and the file."""
    from fairseq import checkpoint_utils

    def load(p):
        try:
            return checkpoint_utils.load_checkpoint_to_cpu(p, arg_overrides)
        except Exception:
            state = torch.load(p, map_location="cpu", mmap=_is_zip(p))  # unreadable: torch says why
            if isinstance(state, dict) and "model" in state:
                raise  # fairseq's upgrade failed on a file with weights: report fairseq's error
            return state  # readable, but not a fairseq checkpoint (no weights): said below

    return _require_model(_open(path, flag, load), path, flag)


def peek_checkpoint(path: str, flag: str = "checkpoint") -> dict:
    """The checkpoint with its tensors memory-mapped, not read (torch.load with mmap, which needs torch's zip
    format; an older file is read whole): its config, key names and shapes cost no time even for a large
    file. The config is left as saved (a dict), not upgraded."""
    if os.path.isfile(path) and os.path.getsize(path) > 0 and not _is_zip(path):
        return read_checkpoint(path, flag)
    state = _open(path, flag, lambda p: torch.load(p, map_location="cpu", mmap=True))
    return _require_model(state, path, flag)


def read_torch_file(
    path: str, flag: str = "", safe_globals: Sequence[Any] = (), trust: bool = False, refused_hint: str = NOT_OURS
) -> Any:
    """A file torch.save wrote that is not a fairseq checkpoint (an original XLM `.pth`, transformers'
    pytorch_model.bin): weights-only loading with `safe_globals` allowed for this call only, or, with `trust`,
    full unpickling of a file the user trusts."""

    def load(p):
        if trust:
            return torch.load(p, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(p, map_location="cpu", weights_only=True)

    return _open(path, flag, load, refused_hint)


def read_safetensors(path: str, flag: str = "") -> Dict[str, torch.Tensor]:
    """A safetensors weights file (transformers' model.safetensors)."""
    from safetensors.torch import load_file

    return _open(path, flag, load_file, torch_file=False)


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
    --restore-file given by the user, also one that does not exist (fairseq would start from scratch without a
    word; reading it here stops the run with `--restore-file PATH: no such file`)."""
    restore = checkpoint_cfg.restore_file
    own_last = os.path.join(checkpoint_cfg.save_dir, "checkpoint_last.pt")
    if restore == "checkpoint_last.pt":
        if os.path.exists(own_last):
            return own_last, "--restore-file"
        if checkpoint_cfg.finetune_from_model:
            return checkpoint_cfg.finetune_from_model, "--finetune-from-model"
        return None, ""
    return restore, "--restore-file"


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
