"""Task `xlm_classification`: fine-tune a pretrained XLM on sentence (pair) classification in some languages and
evaluate it on every language (paper §4.1, XNLI zero-shot; facebookresearch/XLM `xlm/evaluation/xnli.py`).

    fairseq-train DATA --user-dir xlm_fairseq --task xlm_classification --langs de,en,fr --train-langs en \
        --arch xlm_small --criterion xlm_classification_loss --finetune-from-model LM/checkpoint_best.pt \
        --batch-size 8 --optimizer adam --lr 5e-6 --valid-subset valid,test \
        --best-checkpoint-metric acc --maximize-best-checkpoint-metric

DATA (docs/classification.md): dict.txt (the pretraining dictionary), label_dict.txt (`label id` lines),
binarised {split}.s1.{lang} (and {split}.s2.{lang} for pairs), labels {split}.label.{lang} (one per line).
Input `</s> a </s> [b </s>]`, positions running on, the example's language id on every token; the first hidden
state goes through dropout (--pooler-dropout) and a linear layer. Validation logs `{lang}_acc` for every
evaluated language and their mean `acc`."""

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from fairseq.logging import metrics
from fairseq.tasks import register_task
from omegaconf import II

from ..checkpoints import config_value, data_dir, file_fairseq_will_load, peek_checkpoint
from ..data.classification_dataset import ClassificationDataset, ClassificationPart
from ..data.data_files import check_corpus_ids, dataset_exists, load_indexed
from ..dictionary import load_dictionary
from ..errors import ConfigError, DataError
from ..step_metrics import acc, drop_empty_metrics, empty_counters, log_counters, mean_of
from .xlm_task import XLMTask, XLMTaskConfig

logger = logging.getLogger(__name__)

LABEL_DICT = "label_dict.txt"
EMBEDDING_PARTS = ("position_embeddings", "lang_embeddings", "embeddings", "layer_norm_emb")
LAYER_PARTS = ("attentions", "layer_norm1", "ffns", "layer_norm2")
NEVER_TRAINED = ("encoder.pred_layer.proj.bias",)


@dataclass
class XLMClassificationConfig(XLMTaskConfig):
    data: str = field(
        default="",
        metadata={"help": "data-bin: dict.txt, label_dict.txt, {split}.s1.{lang}[.s2], {split}.label.{lang}"},
    )
    langs: str = field(
        default="",
        metadata={
            "help": "the languages trained on and evaluated, e.g. de,en,fr "
            "(language-embedding rows of the pretrained model are taken "
            "by name)"
        },
    )
    train_langs: str = field(
        default="en",
        metadata={
            "help": "languages trained on: one = zero-shot transfer, several = translate-train (concatenated, shuffled)"
        },
    )
    eval_langs: str = field(
        default="", metadata={"help": "languages validated/tested every epoch (default: all of --langs)"}
    )
    max_len: int = field(
        default=256,
        metadata={"help": "training sentences are cut to this many tokens, delimiters included (XLM --max_len)"},
    )
    epoch_size: int = field(
        default=-1, metadata={"help": "training examples per epoch (XLM: 20000); -1 = one pass over the training data"}
    )
    finetune_layers: str = field(
        default="0:_1",
        metadata={
            "help": "'i:j' fine-tuned part of the encoder: 0 = embeddings, k = layer k (1-based), _k = k-th from "
            "the end (_1 = last); the rest is frozen"
        },
    )
    head_lr_multiplier: float = field(
        default=1.0, metadata={"help": "the head's lr is the (scheduled) encoder lr times this"}
    )
    head_lr: Optional[float] = field(
        default=None, metadata={"help": "the head's peak lr (sets --head-lr-multiplier to head-lr / lr)"}
    )
    classification_head_name: str = field(
        default="sentence_classification_head", metadata={"help": "name of the head in the model"}
    )
    train_subset: str = II("dataset.train_subset")
    lr: Any = II("optimization.lr")
    fp16: bool = II("common.fp16")
    bf16: bool = II("common.bf16")
    memory_efficient_fp16: bool = II("common.memory_efficient_fp16")
    memory_efficient_bf16: bool = II("common.memory_efficient_bf16")
    fp16_no_flatten_grads: bool = II("common.fp16_no_flatten_grads")


# ------------------------------------------------------------------------------------------------ labels
def load_label_dict(path: str) -> List[str]:
    """label_dict.txt: `label id` per line, ids 0..K-1 each once. Returns the labels in id order."""
    if not os.path.isfile(path):
        raise DataError(
            f"{path} not found: write it with `xlm-preprocess classification` (one `label id` line "
            "per class, e.g. 'contradiction 0')"
        )
    by_id: Dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or not parts[1].isdigit():
                raise DataError(f"{path}:{lineno}: expected 'label id', found '{line}'")
            label, i = parts[0], int(parts[1])
            if i in by_id or label in by_id.values():
                raise DataError(f"{path}:{lineno}: label '{label}' or id {i} is listed twice")
            by_id[i] = label
    if len(by_id) < 2 or sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{path}: needs at least 2 labels with ids 0..K-1, found ids {sorted(by_id)}")
    return [by_id[i] for i in range(len(by_id))]


def read_labels(path: str, label2id: Dict[str, int], split: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise DataError(f"labels {path} not found (one label per line, aligned with the sentences)")
    ids = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            label = line.strip()
            if label not in label2id:
                raise DataError(
                    f"{path}:{lineno}: label '{label}' never occurs in training ({LABEL_DICT} has "
                    f"{', '.join(label2id)}); fix the {split} labels or rebuild the data with it"
                )
            ids.append(label2id[label])
    return np.asarray(ids, dtype=np.int64)


# ------------------------------------------------------------------------------------- fine-tuned layers
def parse_finetune_layers(spec: str, n_layers: int) -> List[int]:
    """'i:j' -> [i..j] with 0 = embeddings, k = layer k, `_k` = n_layers + 1 - k (XLM's --finetune_layers)."""

    def one(text: str) -> int:
        text = text.strip()
        neg = text[:1] in ("_", "-")
        if not text[1 if neg else 0 :].isdigit():
            raise ValueError(text)
        value = int(text[1:] if neg else text)
        return n_layers + 1 - value if neg else value

    try:
        i, j = (one(x) for x in spec.split(":")) if spec.count(":") == 1 else (None, None)
    except ValueError:
        i = j = None
    if i is None or not 0 <= i <= j <= n_layers:
        raise ConfigError(
            f"--finetune-layers {spec}: expected 'i:j' with 0 <= i <= j <= {n_layers} (0 = embeddings, "
            f"k = layer k, _1 = last layer), e.g. 0:_1 for everything"
        )
    return list(range(i, j + 1))


def layer_of(name: str):
    """'head', the layer index (0 = embeddings) of an encoder parameter, or None (never trained)."""
    if name.startswith("classification_heads."):
        return "head"
    if name in NEVER_TRAINED:
        return None
    parts = name.split(".")
    if parts[0] == "encoder" and parts[1] in EMBEDDING_PARTS:
        return 0
    if parts[0] == "encoder" and parts[1] in LAYER_PARTS:
        return int(parts[2]) + 1
    if parts[0] == "encoder" and parts[1] == "pred_layer":  # tied to the embeddings
        return 0
    raise ValueError(f"parameter {name} belongs to no fine-tunable part")


def freeze(model, layers: List[int]) -> Dict[str, int]:
    """Turn off requires_grad outside `layers` and the head; returns counts of trained/frozen parameters."""
    counts = {"trained": 0, "frozen": 0}
    for name, p in model.named_parameters():
        part = layer_of(name)
        if part == "head" or part in layers:
            counts["trained" if p.requires_grad else "frozen"] += p.numel()
        else:
            p.requires_grad_(False)
            counts["frozen"] += p.numel()
    return counts


# ------------------------------------------------------------------------------------------ head lr
def _unwrap(model):
    while hasattr(model, "module"):
        model = model.module
    return model


def head_parameters_in_optimizer(optimizer, head_params) -> set:
    """ids of the optimizer's tensors that update the head: the parameters themselves, or their fp32 copies
    (fp16 without flattening). Flattened fp16 parameters cannot be split."""
    ids = {id(p) for p in head_params}
    fp32 = getattr(optimizer, "fp32_params", None)
    if fp32 is None:
        return ids
    if torch.is_tensor(fp32) or isinstance(fp32, dict):
        raise ConfigError(
            "--head-lr/--head-lr-multiplier: with --fp16/--bf16 the optimizer holds one flattened "
            "copy of all parameters, so the head cannot have its own lr; add "
            "--fp16-no-flatten-grads, or use --memory-efficient-fp16 or --amp"
        )
    return {id(p32) for p16, p32 in zip(optimizer.fp16_params, fp32) if id(p16) in ids}


@contextmanager
def head_lr_groups(param_groups: list, head_ids: set, multiplier: float):
    """Move the head's parameters into groups of their own with lr x multiplier for one step, then put them
    back: the saved optimizer state keeps fairseq's single group (resume and --reset-* work unchanged)."""
    restore, n_added = [], 0
    for group in list(param_groups):
        head = [p for p in group["params"] if id(p) in head_ids]
        if not head:
            continue
        rest = [p for p in group["params"] if id(p) not in head_ids]
        restore.append((group, group["params"], group["lr"]))
        if not rest:
            group["lr"] = group["lr"] * multiplier
            continue
        group["params"] = rest
        head_group = {k: v for k, v in group.items() if k != "params"}
        head_group.update(params=head, lr=group["lr"] * multiplier)
        param_groups.append(head_group)
        n_added += 1
    try:
        yield
    finally:
        if n_added:
            del param_groups[-n_added:]
        for group, params, lr in restore:
            group["params"], group["lr"] = params, lr


# -------------------------------------------------------------------------------------------- task
@register_task("xlm_classification", dataclass=XLMClassificationConfig)
class XLMClassificationTask(XLMTask):
    criterion_names = ("xlm_classification_loss",)

    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        if len(self.data_dirs) > 1:  # fine-tuning sets fit one folder; shards are for pretraining corpora
            raise ConfigError(
                f"DATA {cfg.data}: --task xlm_classification reads one data-bin folder, not shards; give one"
            )
        self.labels = load_label_dict(os.path.join(self.data_dir, LABEL_DICT))
        logger.info("labels: " + ", ".join(f"{l}={i}" for i, l in enumerate(self.labels)))
        self.label2id = {l: i for i, l in enumerate(self.labels)}
        self.train_langs = self._subset("train-langs", cfg.train_langs, required=True)
        self.eval_langs = self._subset("eval-langs", cfg.eval_langs) or list(self.langs)
        self.head_name = cfg.classification_head_name
        self.is_pair = None
        if cfg.max_len < 3:
            raise ConfigError(f"--max-len {cfg.max_len}: must be at least 3 (`</s> word </s>`)")
        self.head_lr_multiplier = self._head_lr_multiplier()

    def _subset(self, flag: str, value: str, required: bool = False) -> List[str]:
        items = [x.strip() for x in (value or "").split(",") if x.strip()]
        if required and not items:
            raise ConfigError(f"--{flag} is empty: give at least one language of --langs, e.g. --{flag} en")
        for lang in items:
            if lang not in self.lang2id:
                raise ConfigError(f"--{flag}: language '{lang}' is not in --langs {','.join(self.langs)}")
        if len(set(items)) != len(items):
            raise ConfigError(f"--{flag} {value}: a language is listed twice")
        return sorted(items)

    def _head_lr_multiplier(self) -> float:
        cfg = self.cfg
        mult = float(cfg.head_lr_multiplier)
        if cfg.head_lr is not None:
            if mult != 1.0:
                raise ConfigError("give --head-lr or --head-lr-multiplier, not both")
            lr = cfg.lr[0] if hasattr(cfg.lr, "__getitem__") else cfg.lr
            if not lr:
                raise ConfigError(
                    "--head-lr needs a non-zero --lr (the head follows the lr schedule scaled by head-lr / lr)"
                )
            mult = float(cfg.head_lr) / float(lr)
        if mult < 0:
            raise ConfigError(f"--head-lr-multiplier {mult}: must be >= 0")
        flat_fp16 = (cfg.fp16 or cfg.bf16) and not (
            cfg.memory_efficient_fp16 or cfg.memory_efficient_bf16 or cfg.fp16_no_flatten_grads
        )
        if mult != 1.0 and flat_fp16:
            raise ConfigError(
                "--head-lr/--head-lr-multiplier: with --fp16/--bf16 the optimizer holds one "
                "flattened copy of all parameters, so the head cannot have its own lr; add "
                "--fp16-no-flatten-grads, or use --memory-efficient-fp16 or --amp"
            )
        return mult

    # -------------------------------------------------------------------------------------- data
    def _part(self, split: str, lang: str, train: bool) -> ClassificationPart:
        prefix = os.path.join(self.data_dir, f"{split}.s1.{lang}")
        if not dataset_exists(prefix):
            if train:
                raise DataError(f"no training data for --train-langs language '{lang}': {prefix}.bin/.idx not found")
            others = [l for l in self.eval_langs if l != lang]
            hint = f"leave it out with --eval-langs {','.join(others)}" if others else "give --eval-langs"
            raise DataError(f"no {split} data for language '{lang}': {prefix}.bin/.idx not found; add it or {hint}")
        first = load_indexed(prefix, self.dictionary, f"{split} sentences of '{lang}'")
        check_corpus_ids(first, self.dictionary, prefix)
        prefix2 = os.path.join(self.data_dir, f"{split}.s2.{lang}")
        second = None
        if dataset_exists(prefix2):
            second = load_indexed(prefix2, self.dictionary, f"{split} second sentences of '{lang}'")
            check_corpus_ids(second, self.dictionary, prefix2)
            if len(second) != len(first):
                raise DataError(f"{prefix2}.bin has {len(second)} sentences but {prefix}.bin has {len(first)}")
        pair = second is not None
        if self.is_pair is None:
            self.is_pair = pair
        elif self.is_pair != pair:
            kind = "sentence pairs" if self.is_pair else "single sentences"
            raise DataError(
                f"{split} data of '{lang}' {'has' if pair else 'lacks'} {prefix2}.bin but the data "
                f"loaded before are {kind}: every split and language must be the same kind"
            )
        label_path = os.path.join(self.data_dir, f"{split}.label.{lang}")
        labels = read_labels(label_path, self.label2id, split)
        if len(labels) != len(first):
            raise DataError(f"{label_path} has {len(labels)} labels but {prefix}.bin has {len(first)} sentences")
        return ClassificationPart(self.lang2id[lang], first, second, labels)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        train = split == self.cfg.train_subset
        langs = self.train_langs if train else self.eval_langs
        parts = [self._part(split, lang, train) for lang in langs]
        ds = ClassificationDataset(
            parts,
            self.dictionary.eos(),
            self.dictionary.pad(),
            max_len=self.cfg.max_len if train else None,
            max_positions=self.max_model_positions,
            train=train,
            seed=self.cfg.seed,
            epoch_size=self.cfg.epoch_size,
        )
        counts = ", ".join(f"{l} {len(p.labels)}" for l, p in zip(langs, parts))
        logger.info(
            f"{split}: {counts} {'sentence pairs' if ds.is_pair else 'sentences'}"
            + (f"; {len(ds.keep)} kept (empty sentences dropped)" if train and len(ds.keep) < len(ds) else "")
        )
        if train and len(ds.keep) == 0:
            raise DataError(f"{split}: every training example has an empty sentence")
        self.datasets[split] = ds

    # ------------------------------------------------------------------------------------- model
    def build_model(self, cfg, from_checkpoint=False):
        from ..models.xlm_transformer import XLMTransformerModel

        model = super().build_model(cfg, from_checkpoint)
        if not isinstance(model, XLMTransformerModel):
            raise ConfigError(
                "--arch must be an xlm_transformer architecture (xlm_tiny, xlm_small, xlm_mlm_xnli15_1024, ...)"
            )
        model.register_classification_head(self.head_name, num_classes=len(self.labels))
        for ds in self.datasets.values():
            ds.set_max_positions(self.max_model_positions)
        if from_checkpoint:
            return model
        self.check_pretrained(model)
        layers = parse_finetune_layers(self.cfg.finetune_layers, model.encoder.n_layers)
        counts = freeze(model, layers)
        names = ["embeddings" if i == 0 else f"layer {i}" for i in layers]
        logger.info(
            f"fine-tuning {', '.join(names)} and the head ({counts['trained']} parameters; "
            f"{counts['frozen']} frozen); head lr = {self.head_lr_multiplier:g} x lr"
        )
        return model

    def check_pretrained(self, model) -> None:
        """Check the checkpoint fairseq is about to load into the classifier (read lazily), with one-line
        errors: an XLM encoder of this architecture and dictionary, the languages of --langs among its own."""
        path, flag = file_fairseq_will_load(self.cfg)
        if path is None:
            logger.warning("no --finetune-from-model: the encoder starts from random weights")
            return
        if path == os.path.join(self.cfg.save_dir, "checkpoint_last.pt"):
            return  # resuming this run
        state = peek_checkpoint(path, flag)
        weights = dict(state.get("model") or {})
        if "encoder.embeddings.weight" not in weights:
            raise ConfigError(
                f"{flag} {path}: no XLM encoder (encoder.embeddings.weight) in this checkpoint: it "
                "is not an xlm_transformer model"
            )
        if any(k.startswith("decoder.") for k in weights):
            raise ConfigError(
                f"{flag} {path}: a translation model (encoder and decoder); fine-tune from the "
                "pretrained LM checkpoint (xlm_cross_lingual_lm / xlm_tlm)"
            )
        if model.checkpoint_langs is not None:  # the rows fairseq's load will see, mapped by language name
            model.encoder.adopt_language_rows(
                weights, "encoder.", model.checkpoint_langs, model.langs, model.cfg.init_new_langs, f"{flag} {path}"
            )
        expected = model.state_dict()
        arch = config_value(state.get("cfg"), "model")
        arch = arch if hasattr(arch, "get") and hasattr(arch, "__contains__") else {}
        theirs = ", ".join(f"{k} {arch[k]}" for k in ("emb_dim", "n_layers", "n_heads") if k in arch)
        hint = (
            f"it was trained with --arch {arch.get('_name')} ({theirs})"
            if theirs
            else "use the pretraining --arch and its options"
        )
        for key, value in weights.items():
            if key not in expected:
                if key.startswith("classification_heads."):
                    continue  # another head: dropped by the model's upgrade_state_dict_named
                if key == "encoder.lang_embeddings.weight":
                    raise ConfigError(
                        f"{flag} {path}: it has language embeddings and this model has none; drop --no-lang-emb"
                    )
                raise ConfigError(f"{flag} {path}: unexpected parameter {key}: the architecture differs; {hint}")
            if tuple(value.shape) != tuple(expected[key].shape):
                if key in ("encoder.embeddings.weight", "encoder.pred_layer.proj.bias"):
                    raise ConfigError(
                        f"{flag} {path}: its vocabulary has {value.shape[0]} entries, dict.txt has "
                        f"{len(self.dictionary)}: binarise with the pretraining dictionary"
                    )
                if key.startswith("classification_heads."):
                    raise ConfigError(
                        f"{flag} {path}: its head '{self.head_name}' has {value.shape[0]} classes, "
                        f"{LABEL_DICT} has {len(self.labels)}; use another "
                        "--classification-head-name"
                    )
                if key == "encoder.lang_embeddings.weight":
                    raise ConfigError(
                        f"{flag} {path}: it has {value.shape[0]} language embeddings, --langs gives "
                        f"{len(self.langs)} languages, and its config does not name its languages: "
                        "give the pretraining --langs"
                    )
                raise ConfigError(
                    f"{flag} {path}: {key} has shape {tuple(value.shape)}, this model "
                    f"{tuple(expected[key].shape)}: {hint}"
                )
        missing = [k for k in expected if k not in weights and not k.startswith("classification_heads.")]
        if missing:
            hint = "it has no language embeddings: add --no-lang-emb" if "lang_embeddings" in missing[0] else hint
            raise ConfigError(f"{flag} {path}: parameter {missing[0]} is missing: the architecture differs; {hint}")
        self._check_dictionary(state.get("cfg"), flag, path)
        logger.info(f"{flag} {path}: XLM encoder, {len(self.dictionary)} types")

    def _check_dictionary(self, ckpt_cfg, flag, path) -> None:
        folder = data_dir(ckpt_cfg)
        if not folder or not os.path.isabs(folder):  # a relative path means nothing from here
            return
        dict_path = os.path.join(folder, "dict.txt")
        if not os.path.isfile(dict_path):
            return
        try:
            theirs = load_dictionary(dict_path)
        except Exception:
            return
        if theirs.symbols != self.dictionary.symbols:
            raise ConfigError(
                f"{flag} {path}: it was pretrained with {dict_path}, which differs from "
                f"{os.path.join(self.data_dir, 'dict.txt')}: binarise with the pretraining dictionary"
            )

    # ------------------------------------------------------------------------------- optimisation
    def optimizer_step(self, optimizer, model, update_num):
        if self.head_lr_multiplier == 1.0:
            return optimizer.step()
        head = _unwrap(model).classification_heads[self.head_name].parameters()
        ids = head_parameters_in_optimizer(optimizer, [p for p in head if p.requires_grad])
        with head_lr_groups(optimizer.param_groups, ids, self.head_lr_multiplier):
            optimizer.step()

    # ------------------------------------------------------------------------------------ metrics
    def empty_logging_output(self) -> Dict[str, float]:
        return empty_counters(self.langs)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if log_counters(logging_outputs, self.langs, with_ppl=False):
            metrics.log_derived("acc", lambda m: round(mean_of(m, self.langs, acc), 2))
        drop_empty_metrics({**{f"{lang}_acc": [lang] for lang in self.langs}, "acc": self.langs})
