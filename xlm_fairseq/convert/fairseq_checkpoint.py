"""Our side: a fairseq checkpoint (model.pt) of the `xlm_transformer` model.

The saved `cfg` is what fairseq itself would save for an equivalent fairseq-train command line, parsed by
fairseq's own parser (options.get_training_parser / parse_args_and_arch / convert_namespace_to_omegaconf),
so fairseq-train --restore-file / --finetune-from-model, the translation task's --reload-encoder /
--reload-decoder and fairseq-generate --path read it like any checkpoint of ours. The task is
xlm_cross_lingual_lm (encoder-only) or xlm_unsupervised_mt (encoder-decoder); cfg.task.data is the output
folder, which holds the dict.txt the model was converted with.
"""

import contextlib
import logging
import os
import warnings
from typing import Dict, List, Optional, Tuple

import torch

from ..modules.transformer import N_MAX_POSITIONS
from . import ConvertError
from .spec import ModelSpec

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def _quiet():
    """fairseq's parser goes through hydra, which warns about deprecated usage on every call."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def train_command(spec: ModelSpec, data_dir: str) -> List[str]:
    """The fairseq-train arguments (after the program name) of a model like this one."""
    langs = ",".join(spec.langs)
    args = [
        data_dir,
        "--user-dir",
        PACKAGE_DIR,
        "--langs",
        langs,
        "--arch",
        "xlm_transformer",
        "--emb-dim",
        str(spec.emb_dim),
        "--n-layers",
        str(spec.n_layers),
        "--n-heads",
        str(spec.n_heads),
        "--activation-fn",
        "gelu" if spec.gelu else "relu",
        "--dropout",
        str(spec.dropout),
        "--attention-dropout",
        str(spec.attention_dropout),
        "--max-positions",
        str(spec.max_positions),
    ]
    if spec.no_lang_emb:
        args.append("--no-lang-emb")
    if spec.sinusoidal:
        args.append("--sinusoidal-embeddings")
    if spec.encoder_only:
        args += ["--task", "xlm_cross_lingual_lm", "--mlm-steps", langs, "--criterion", "xlm_lm_loss"]
    else:
        args += ["--task", "xlm_unsupervised_mt", "--criterion", "xlm_mt_loss"]
    return args


def build_cfg(spec: ModelSpec, data_dir: str) -> dict:
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.tasks import TASK_REGISTRY
    from omegaconf import OmegaConf, open_dict

    if not spec.encoder_only and "xlm_unsupervised_mt" not in TASK_REGISTRY:
        raise ConvertError(
            "encoder-decoder checkpoints need the xlm_unsupervised_mt task, which this "
            "installation of xlm_fairseq does not register"
        )
    with _quiet():
        parser = options.get_training_parser()
        args = options.parse_args_and_arch(parser, input_args=train_command(spec, data_dir))
        cfg = convert_namespace_to_omegaconf(args)
    with open_dict(cfg):
        cfg.model.n_langs = spec.n_langs
        cfg.model.emb_langs = ",".join(spec.langs)
        cfg.model.encoder_only = spec.encoder_only
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def check_against_model(spec: ModelSpec, state: Dict[str, torch.Tensor], dictionary) -> None:
    """Build our model with these dimensions (on the meta device: no memory) and compare names and shapes,
    so a model.pt that fairseq would refuse is never written."""
    from ..models.xlm_transformer import XLMTransformerConfig, XLMTransformerModel

    cfg = XLMTransformerConfig(
        emb_dim=spec.emb_dim,
        n_layers=spec.n_layers,
        n_heads=spec.n_heads,
        dropout=spec.dropout,
        attention_dropout=spec.attention_dropout,
        activation_fn="gelu" if spec.gelu else "relu",
        no_lang_emb=spec.no_lang_emb,
        sinusoidal_embeddings=False,
        max_positions=spec.max_positions,
        n_langs=spec.n_langs,
        encoder_only=spec.encoder_only,
    )
    with torch.device("meta"):
        expected = XLMTransformerModel.from_config(cfg, dictionary).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ConvertError(
            f"internal: converted weights do not fit xlm_transformer (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    for key, value in expected.items():
        if tuple(value.shape) != tuple(state[key].shape):
            raise ConvertError(
                f"{key}: {tuple(state[key].shape)} does not fit xlm_transformer's "
                f"{tuple(value.shape)} (dict.txt has {len(dictionary)} entries)"
            )


def save_checkpoint(
    path: str, spec: ModelSpec, state: Dict[str, torch.Tensor], cfg: dict, provenance: Optional[dict] = None
) -> None:
    """fairseq's checkpoint layout (trainer.state_dict), fresh optimizer/iterator state, fp32 weights."""
    from fairseq.checkpoint_utils import torch_persistent_save

    criterion = "XLMLMLoss" if spec.encoder_only else "XLMMTLoss"
    checkpoint = {
        "args": None,
        "cfg": cfg,
        "model": state,
        "criterion": None,
        "optimizer_history": [
            {
                "criterion_name": criterion,
                "optimizer_name": "none",
                "lr_scheduler_state": {"best": None},
                "num_updates": 0,
            }
        ],
        "task_state": {},
        "extra_state": {
            "train_iterator": {"version": 2, "epoch": 1, "iterations_in_epoch": 0, "shuffle": True},
            "val_loss": None,
            "previous_training_time": 0.0,
            "xlm_convert": provenance or {},
        },
    }
    torch_persistent_save(checkpoint, path)


def read_checkpoint(path: str) -> Tuple[ModelSpec, Dict[str, Dict[str, torch.Tensor]], dict]:
    """(spec, {'encoder': sd, ['decoder': sd]} with original names and OUR numbering, cfg) of a fairseq
    checkpoint of xlm_transformer: a converted model.pt or any training checkpoint of this plugin."""
    from omegaconf import OmegaConf

    from ..checkpoints import read_checkpoint as read_fairseq_checkpoint

    with _quiet():
        state = read_fairseq_checkpoint(path, "checkpoint")
    cfg = state.get("cfg")
    if cfg is None or "model" not in state:
        raise ConvertError(
            f"{path}: not a fairseq checkpoint with a config; original XLM .pth files go "
            "through `xlm-convert from-original` first"
        )
    cfg = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    model_cfg, task_cfg = cfg.get("model") or {}, cfg.get("task") or {}
    name = model_cfg.get("_name") if isinstance(model_cfg, dict) else None
    if name != "xlm_transformer":
        raise ConvertError(f"{path}: a checkpoint of model '{name}', not xlm_transformer")
    sides = {}
    for side in ("encoder", "decoder"):
        sub = {k[len(side) + 1 :]: v for k, v in state["model"].items() if k.startswith(side + ".")}
        if sub:
            sides[side] = sub
    if "encoder" not in sides:
        raise ConvertError(f"{path}: no encoder.* weights")
    from ..steps import parse_langs

    langs = parse_langs(task_cfg.get("langs", "")) if task_cfg.get("langs") else []
    n_langs = int(model_cfg.get("n_langs") or len(langs))
    if len(langs) != n_langs:
        langs = langs if langs and len(langs) == n_langs else [f"lang{i}" for i in range(n_langs)]
    enc = sides["encoder"]
    spec = ModelSpec(
        emb_dim=int(model_cfg["emb_dim"]),
        n_layers=int(model_cfg["n_layers"]),
        n_heads=int(model_cfg["n_heads"]),
        n_words=int(enc["embeddings.weight"].shape[0]),
        langs=langs,
        has_lang_emb="lang_embeddings.weight" in enc,
        gelu=model_cfg.get("activation_fn", "gelu") == "gelu",
        sinusoidal=bool(model_cfg.get("sinusoidal_embeddings", False)),
        max_positions=int(model_cfg.get("max_positions", N_MAX_POSITIONS)),
        dropout=float(model_cfg.get("dropout", 0.1)),
        attention_dropout=float(model_cfg.get("attention_dropout", 0.1)),
        encoder_only="decoder" not in sides,
    )
    return spec, sides, cfg
