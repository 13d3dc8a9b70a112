"""Model `xlm_transformer`: the XLM encoder (LM) and, for translation tasks, an XLM decoder beside it.

One model class for every task, so the same `--arch` (named after the released model it can hold) is used
for pretraining, translation and classification: the task decides whether a decoder is built
(`encoder_only`) and how many language embeddings there are (`n_langs`, from `--langs`).
"""

import logging
from dataclasses import dataclass, field
from typing import List, Optional

import torch.nn as nn
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model, register_model_architecture
from fairseq.utils import safe_getattr
from omegaconf import open_dict
from torch import Tensor

from ..modules.encoder_decoder import XLMDecoder, XLMEncoder, padding_mask_from_lengths
from ..modules.transformer import N_MAX_POSITIONS

logger = logging.getLogger(__name__)


@dataclass
class XLMTransformerConfig(FairseqDataclass):
    emb_dim: int = field(default=512, metadata={"help": "embedding and hidden size (FFN is 4x)"})
    n_layers: int = field(default=4, metadata={"help": "number of transformer layers"})
    n_heads: int = field(default=8, metadata={"help": "number of attention heads"})
    dropout: float = field(default=0.1, metadata={"help": "dropout"})
    attention_dropout: float = field(default=0.1, metadata={"help": "dropout on attention weights"})
    activation_fn: ChoiceEnum(["gelu", "relu"]) = field(
        default="gelu", metadata={"help": "FFN activation: exact (erf) GELU as the paper, or ReLU"}
    )
    no_lang_emb: bool = field(
        default=False,
        metadata={"help": "no language embeddings (the released XLM-17/100 models have none)"},
    )
    sinusoidal_embeddings: bool = field(default=False, metadata={"help": "frozen sinusoidal positions"})
    max_positions: int = field(default=N_MAX_POSITIONS, metadata={"help": "size of the position table"})
    n_langs: int = field(default=0, metadata={"help": "set by the task from --langs"})
    emb_langs: str = field(
        default="",
        metadata={
            "help": "set by the task: the languages of the language-embedding rows, in row order (the sorted --langs)"
        },
    )
    init_new_langs: bool = field(
        default=False,
        metadata={
            "help": "loading a pretrained checkpoint: languages of --langs that it lacks get a "
            "fresh language-embedding row, N(0, emb_dim^-0.5) as at initialisation, "
            "instead of an error (rows of the others are mapped by language name)"
        },
    )
    encoder_only: bool = field(default=True, metadata={"help": "set by the task: False builds a decoder"})
    pooler_dropout: float = field(default=0.0, metadata={"help": "dropout before a classification head"})
    compile_layers: bool = field(
        default=False,
        metadata={
            "help": "fairseq-train: run the transformer layers through torch.compile (fused element-wise kernels; "
            "pays on GPUs, see benchmarks/; the first batches of each kind take seconds to compile)"
        },
    )


def _stack_args(cfg) -> dict:
    return dict(
        emb_dim=cfg.emb_dim,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout,
        gelu_activation=cfg.activation_fn == "gelu",
        n_langs=cfg.n_langs,
        use_lang_emb=not cfg.no_lang_emb,
        sinusoidal_embeddings=cfg.sinusoidal_embeddings,
        max_positions=cfg.max_positions,
    )


class ClassificationHead(nn.Module):
    """First-token state -> dropout -> linear (`xlm/evaluation/xnli.py`; no pooler)."""

    def __init__(self, dim: int, n_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, n_classes)

    def forward(self, first_hidden: Tensor) -> Tensor:
        return self.proj(self.dropout(first_hidden))


@register_model("xlm_transformer", dataclass=XLMTransformerConfig)
class XLMTransformerModel(BaseFairseqModel):
    def __init__(self, cfg, encoder: XLMEncoder, decoder: Optional[XLMDecoder] = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        if decoder is not None:
            self.decoder = decoder
        self.classification_heads = nn.ModuleDict()
        # the languages of the rows of the next state dict to load, when they differ from ours (set by
        # build_model from a checkpoint's config, or by the task for the file fairseq-train will load)
        self.checkpoint_langs: Optional[List[str]] = None

    @classmethod
    def build_model(cls, cfg, task):
        langs = list(getattr(task, "langs", None) or [])
        with open_dict(cfg):
            saved = cfg.emb_langs.split(",") if cfg.emb_langs else None  # building from a checkpoint's config
            if langs and (saved or not cfg.n_langs):
                cfg.emb_langs, cfg.n_langs = ",".join(langs), len(langs)
            elif not cfg.n_langs:
                cfg.n_langs = len(langs)
            if getattr(task, "needs_decoder", False):
                cfg.encoder_only = False
        model = cls.from_config(cfg, task.source_dictionary)
        if saved and saved != langs:
            model.checkpoint_langs = saved
        return model

    @classmethod
    def from_config(cls, cfg, dictionary) -> "XLMTransformerModel":
        """The model a config describes (n_langs and encoder_only set), without a task."""
        encoder = XLMEncoder(dictionary, **_stack_args(cfg))
        decoder = None if cfg.encoder_only else XLMDecoder(dictionary, **_stack_args(cfg))
        return cls(cfg, encoder, decoder)

    def compile_layers(self) -> None:
        for stack in (self.encoder, getattr(self, "decoder", None)):
            if stack is not None:
                stack.compile_layers()

    @property
    def langs(self) -> List[str]:
        return self.cfg.emb_langs.split(",") if self.cfg.emb_langs else []

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        """fairseq's loading (upgrade, prune, strict load), after mapping the language-embedding rows of a
        checkpoint trained with other languages onto ours by name."""
        if self.checkpoint_langs is not None:
            for prefix, stack in (("encoder.", self.encoder), ("decoder.", getattr(self, "decoder", None))):
                if stack is not None:
                    stack.adopt_language_rows(
                        state_dict, prefix, self.checkpoint_langs, self.langs, self.cfg.init_new_langs, "the checkpoint"
                    )
            self.checkpoint_langs = None
        return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)

    @classmethod
    def from_pretrained(cls, model_name_or_path, checkpoint_file="checkpoint_best.pt", data_name_or_path=".", **kwargs):
        """A folder written by fairseq-train with this plugin or by xlm-convert -> XLMHubInterface
        (xlm_fairseq/hub_interface.py): encode/decode raw text as the training data was, extract_features,
        fill_mask, score, translate, predict. fairseq's signature (fairseq/hub_utils.py)."""
        from ..hub_interface import from_pretrained

        return from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path, **kwargs)

    @property
    def is_encoder_decoder(self) -> bool:
        return hasattr(self, "decoder")

    def forward(
        self,
        src_tokens: Tensor,
        src_lengths: Optional[Tensor] = None,
        langs: Optional[Tensor] = None,
        positions: Optional[Tensor] = None,
        causal: bool = False,
        pred_mask: Optional[Tensor] = None,
        pred_index: Optional[Tensor] = None,
        padding_mask: Optional[Tensor] = None,
        prev_output_tokens: Optional[Tensor] = None,
        src_langs: Optional[Tensor] = None,
        tgt_langs: Optional[Tensor] = None,
        classification_head_name: Optional[str] = None,
        features_only: bool = False,
    ):
        """Every objective goes through here (so DistributedDataParallel sees each forward):
        - LM (CLM/MLM/TLM): logits at the pred_mask / pred_index positions of the encoder (or hidden states if
          features_only); the padding from padding_mask when given (the LM batches give it, None when no row is
          padded), else from src_lengths;
        - translation (prev_output_tokens given): encoder on src, decoder logits at the pred_index positions (the
          collater's flat indices of the target's tokens);
        - classification (classification_head_name): logits of the head on the first hidden state."""
        if prev_output_tokens is not None:
            encoder_out = self.encoder(src_tokens, src_lengths, src_langs=src_langs, tgt_langs=tgt_langs)
            return self.decoder(
                prev_output_tokens, encoder_out=encoder_out, pred_index=pred_index, features_only=features_only
            )[0]
        if padding_mask is None and src_lengths is not None:
            padding_mask = padding_mask_from_lengths(src_tokens, src_lengths, self.encoder.pad_index)
        hidden = self.encoder.fwd(
            src_tokens, padding_mask=padding_mask, positions=positions, langs=langs, causal=causal
        )
        if classification_head_name is not None:
            return self.classification_heads[classification_head_name](hidden[:, 0])
        if features_only:
            return hidden
        return self.encoder.predict(hidden, pred_mask, pred_index)

    def register_classification_head(self, name: str, num_classes: int, dropout: Optional[float] = None):
        if name in self.classification_heads:
            prev = self.classification_heads[name].proj.out_features
            if prev != num_classes:
                raise ValueError(f"classification head '{name}' exists with {prev} classes, asked for {num_classes}")
            return
        p = self.cfg.pooler_dropout if dropout is None else dropout
        self.classification_heads[name] = ClassificationHead(self.encoder.dim, num_classes, p)

    def upgrade_state_dict_named(self, state_dict, name):
        """Keep the heads this model has (from the task) and fill missing ones from the fresh model, so a
        pretrained LM checkpoint loads into a classifier."""
        prefix = name + "." if name else ""
        super().upgrade_state_dict_named(state_dict, name)
        current = self.state_dict()
        for key in list(state_dict.keys()):
            if key.startswith(prefix + "classification_heads.") and key[len(prefix) :] not in current:
                logger.warning(f"dropping classification head weight {key} (not in this model)")
                del state_dict[key]
        for key, value in current.items():
            if key.startswith("classification_heads.") and prefix + key not in state_dict:
                logger.info(f"initialising {prefix + key} fresh")
                state_dict[prefix + key] = value

    def max_positions(self):
        if self.is_encoder_decoder:
            return (self.encoder.max_positions(), self.decoder.max_positions())
        return self.encoder.max_positions()

    def max_decoder_positions(self):
        return self.decoder.max_positions()

    def get_normalized_probs(self, net_output, log_probs, sample=None):
        return self.decoder.get_normalized_probs(net_output, log_probs, sample)


def _arch(name, **defaults):
    @register_model_architecture("xlm_transformer", name)
    def arch(args):
        for key, value in defaults.items():
            setattr(args, key, safe_getattr(args, key, value))
        for key, value in XLMTransformerConfig().__dict__.items():
            if not key.startswith("_"):
                setattr(args, key, safe_getattr(args, key, value))

    arch.__name__ = name
    return arch


# Small models for tests and 2-core CPU runs.
_arch("xlm_tiny", emb_dim=64, n_layers=2, n_heads=4, dropout=0.0, attention_dropout=0.0)
_arch("xlm_small", emb_dim=256, n_layers=4, n_heads=4)
_arch("xlm_medium", emb_dim=512, n_layers=6, n_heads=8)
# The released models (the original README's table): the architecture each checkpoint needs.
for _name in ("xlm_mlm_enfr_1024", "xlm_mlm_ende_1024", "xlm_mlm_enro_1024"):
    _arch(_name, emb_dim=1024, n_layers=6, n_heads=8)
for _name in ("xlm_mlm_xnli15_1024", "xlm_mlm_tlm_xnli15_1024"):
    _arch(_name, emb_dim=1024, n_layers=12, n_heads=8)
_arch("xlm_mlm_en_2048", emb_dim=2048, n_layers=12, n_heads=16)
for _name in ("xlm_mlm_17_1280", "xlm_mlm_100_1280"):
    _arch(_name, emb_dim=1280, n_layers=16, n_heads=16, no_lang_emb=True)
