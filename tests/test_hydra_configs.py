"""The recipes as fairseq-hydra-train configs (examples/*/config/*.yaml): each composes with fairseq's own config
machinery into our task, model, criterion and optimizer with the paper's settings, and the MLM and UNMT ones train
for real through `fairseq-hydra-train` on tiny data (shrunk by command-line overrides)."""

import glob
import math
import os
import re

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
    if cfg.lr_scheduler._name == "inverse_sqrt":
        assert cfg.lr_scheduler.warmup_init_lr == 1e-7
    else:  # the original's en-fr MLM command: plain Adam at a constant learning rate
        assert cfg.lr_scheduler._name == "fixed" and cfg.lr_scheduler.warmup_updates == 0, path


def test_unmt_configs_are_the_original_commands():
    """examples/unmt: MLM as the original's en-fr MLM command (`adam,lr=0.0001`: betas (0.9, 0.999), constant
    learning rate), UNMT as its UNMT command (`adam_inverse_sqrt,beta1=0.9,beta2=0.98,lr=0.0001`)."""
    config_dir = os.path.join(ROOT, "examples", "unmt", "config")
    mlm = composed(os.path.join(config_dir, "mlm.yaml"))
    unmt = composed(os.path.join(config_dir, "unmt.yaml"), "task.reload_encoder=M", "task.reload_decoder=M")
    assert (mlm.lr_scheduler._name, mlm.optimization.lr[0], str(mlm.optimizer.adam_betas)) == (
        "fixed",
        1e-4,
        "(0.9,0.999)",
    )
    assert (unmt.lr_scheduler._name, unmt.optimization.lr[0], str(unmt.optimizer.adam_betas)) == (
        "inverse_sqrt",
        1e-4,
        "(0.9,0.98)",
    )
    assert (unmt.lr_scheduler.warmup_updates, unmt.lr_scheduler.warmup_init_lr) == (4000, 1e-7)


def _updates(log):
    """{update: (loss, lr, gnorm, clip)} from the train_inner lines (log_interval 1)."""
    out = {}
    for line in log.splitlines():
        m = re.search(r"loss=([\d.]+),.* num_updates=(\d+), lr=([\d.e+-]+), gnorm=([\d.]+), clip=([\d.]+)", line)
        if m and "train_inner" in line:
            out[int(m.group(2))] = tuple(float(m.group(i)) for i in (1, 3, 4, 5))
    return out


def assert_recipe_schedule(log, cfg):
    """The run's learning rate at each update is the composed config's: fairseq's inverse_sqrt warmup from its
    warmup_init_lr to its lr over warmup_updates, or its lr throughout (fixed); and clip_norm (the original's 5)
    clips exactly the updates whose gradient norm exceeds it: a config value lost between the file and the
    trainer changes these."""
    updates = _updates(log)
    assert sorted(updates) == [1, 2, 3], log[-3000:]
    peak = cfg.optimization.lr[0]
    for u, (loss, lr, gnorm, clip) in updates.items():
        if cfg.lr_scheduler._name == "fixed":
            assert lr == pytest.approx(peak, rel=1e-4)
        else:
            init = cfg.lr_scheduler.warmup_init_lr
            assert lr == pytest.approx(init + u * (peak - init) / cfg.lr_scheduler.warmup_updates, rel=1e-4)
        assert clip == (100 if gnorm > cfg.optimization.clip_norm else 0) and math.isfinite(loss)


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
    proc = cli(
        "fairseq-hydra-train",
        "--config-name",
        "mlm",
        *common,
        f"checkpoint.save_dir={tmp_path / 'mlm'}",
        "task.tokens_per_sample=32",
        "dataset.batch_size=4",
    )
    assert_recipe_schedule(proc.stdout + proc.stderr, composed(os.path.join(config_dir, "mlm.yaml")))
    mlm = tmp_path / "mlm" / "checkpoint_last.pt"
    proc = cli(
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
    log = proc.stdout + proc.stderr
    unmt = composed(os.path.join(config_dir, "unmt.yaml"), "task.reload_encoder=M", "task.reload_decoder=M")
    assert_recipe_schedule(log, unmt)
    # the recipe's steps ran: AE in both languages, then a back-translation step
    assert all(re.search(rf"train_inner.* {step}_ppl=", log) for step in ("en_ae", "fr_ae", "fr-en-fr_bt"))
    state = load_model_state(tmp_path / "unmt" / "checkpoint_last.pt")
    assert any(k.startswith("decoder.encoder_attn") for k in state)
    # the noise and the lambda schedule the run trained with are the recipe's
    import torch

    saved = torch.load(tmp_path / "unmt" / "checkpoint_last.pt")["cfg"]
    for key in ("word_shuffle", "word_dropout", "word_blank", "lambda_ae", "bt_steps", "ae_steps"):
        assert saved["task"][key] == unmt.task[key], key
