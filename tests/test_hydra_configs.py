"""The recipes as fairseq-hydra-train configs (examples/*/config/*.yaml): each composes with fairseq's own config
machinery into our task, model, criterion and optimizer with the paper's settings, and the MLM and UNMT ones train
for real through `fairseq-hydra-train` on tiny data (shrunk by command-line overrides)."""

import glob
import os

import pytest
from fairseq.dataclass.initialize import add_defaults, hydra_init
from fairseq.models import ARCH_MODEL_NAME_REGISTRY
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from .helpers_cli import USER_DIR, cli, load_model_state
from .helpers_data import make_data_bin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "examples", "*", "config", "*.yaml")))
TINY = [
    "model._name=xlm_tiny",
    "common.fp16=false",
    "common.cpu=true",
    "dataset.num_workers=0",
    "dataset.disable_validation=true",
    "optimization.max_update=3",
    "common.log_interval=1",
    "task.epoch_size=32",
    "common.seed=1",
]


def composed(path, *overrides):
    import xlm_fairseq  # noqa: F401  (our dataclasses in the registries, as --user-dir does)

    hydra_init(os.path.splitext(os.path.basename(path))[0])
    with initialize_config_dir(config_dir=os.path.dirname(path), version_base="1.1"):  # what fairseq assumes
        cfg = compose(
            config_name=os.path.splitext(os.path.basename(path))[0],
            overrides=[f"common.user_dir={USER_DIR}", "task.data=DATA", *overrides],
        )
    add_defaults(cfg)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def test_there_are_configs_for_mlm_tlm_and_unmt():
    names = {os.path.relpath(p, ROOT) for p in CONFIGS}
    assert {
        "examples/unmt/config/mlm.yaml",
        "examples/unmt/config/unmt.yaml",
        "examples/xnli15/config/mlm_tlm.yaml",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_composes_into_our_components(path):
    extra = ["task.reload_encoder=M", "task.reload_decoder=M"] if "unmt.yaml" in path else []
    cfg = composed(path, *extra)
    assert cfg.task._name.startswith("xlm_") and cfg.criterion._name.startswith("xlm_")
    assert cfg.optimizer._name == "xlm_adam" and cfg.optimization.clip_norm == 5
    assert "max_len" in cfg.task and "max_pair_sentences" in cfg.task  # our task dataclass merged
    assert ARCH_MODEL_NAME_REGISTRY[cfg.model._name] == "xlm_transformer" and "1024" in cfg.model._name
    assert cfg.model.dropout == 0.1 and "emb_langs" in cfg.model  # our model dataclass merged
    assert cfg.lr_scheduler.warmup_init_lr == 1e-7


def test_mlm_then_unmt_train_with_fairseq_hydra_train(tmp_path):
    data = make_data_bin(str(tmp_path), langs=("en", "fr"), pairs=(("en", "fr"),))
    config_dir = os.path.join(ROOT, "examples", "unmt", "config")
    common = [
        "--config-dir",
        config_dir,
        f"common.user_dir={USER_DIR}",
        f"task.data={data}",
        *TINY,
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    cli(
        "fairseq-hydra-train",
        "--config-name",
        "mlm",
        *common,
        f"checkpoint.save_dir={tmp_path / 'mlm'}",
        "task.tokens_per_sample=32",
        "dataset.batch_size=4",
    )
    mlm = tmp_path / "mlm" / "checkpoint_last.pt"
    cli(
        "fairseq-hydra-train",
        "--config-name",
        "unmt",
        *common,
        f"checkpoint.save_dir={tmp_path / 'unmt'}",
        f"task.reload_encoder={mlm}",
        f"task.reload_decoder={mlm}",
        "dataset.max_tokens=300",
        "task.eval_bleu=false",
    )
    state = load_model_state(tmp_path / "unmt" / "checkpoint_last.pt")
    assert any(k.startswith("decoder.encoder_attn") for k in state)
