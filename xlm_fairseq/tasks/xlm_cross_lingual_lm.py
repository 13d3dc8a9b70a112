"""Task `xlm_cross_lingual_lm`: CLM and MLM over monolingual streams of several languages (paper §3.2-3.3).

    fairseq-train DATA --user-dir xlm_fairseq --task xlm_cross_lingual_lm --langs en,fr \
        --mlm-steps en,fr --arch xlm_small --criterion xlm_lm_loss --batch-size 32 ...

Each step is one language and one objective; batches are XLM streams of --tokens-per-sample tokens."""

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from fairseq.tasks import register_task
from omegaconf import II

from ..data.data_files import load_mono, load_pair
from ..data.lm_objective_dataset import LMObjectiveDataset
from ..data.lm_objectives import MaskingConfig, mask_scores
from ..data.pair_concat_dataset import PairConcatDataset
from ..data.stream_dataset import StreamDataset
from ..dictionary import FIRST_WORD_ID, mask_index
from ..errors import ConfigError
from ..steps import LambdaSchedule, pair_key, parse_float_triple, parse_steps
from .multi_step_task import MultiStepConfig, MultiStepTask

logger = logging.getLogger(__name__)


@dataclass
class CrossLingualLMConfig(MultiStepConfig):
    clm_steps: str = field(default="", metadata={"help": "causal LM steps, e.g. 'en,fr' (xlm_tlm: also 'en-fr')"})
    mlm_steps: str = field(default="", metadata={"help": "masked LM steps, e.g. 'en,fr' (xlm_tlm: 'en,fr,en-fr')"})
    tokens_per_sample: int = field(default=256, metadata={"help": "stream length (XLM's --bptt)"})
    word_pred: float = field(default=0.15, metadata={"help": "fraction of tokens to predict"})
    word_mask_keep_rand: str = field(default="0.8,0.1,0.1", metadata={"help": "mask/keep/random split"})
    sample_alpha: float = field(
        default=0.0, metadata={"help": "choose predicted tokens with weight count^-alpha (paper: 0.5); 0 = uniform"}
    )
    context_size: int = field(default=0, metadata={"help": "CLM: no prediction for the first k tokens"})
    lambda_clm: str = field(default="1", metadata={"help": "CLM loss weight or schedule '0:1,1000:0.1'"})
    lambda_mlm: str = field(default="1", metadata={"help": "MLM/TLM loss weight or schedule"})
    train_subset: str = II("dataset.train_subset")


def step_name(objective: str, parts) -> str:
    if len(parts) == 1:
        return f"{parts[0]}_{objective}"
    return f"{parts[0]}_{parts[1]}_mlm" if objective == "mlm" else f"{parts[0]}-{parts[1]}_clm"


@register_task("xlm_cross_lingual_lm", dataclass=CrossLingualLMConfig)
class XLMCrossLingualLMTask(MultiStepTask):
    allow_pairs = False
    criterion_names = ("xlm_lm_loss",)

    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        sizes = (1, 2) if self.allow_pairs else (1,)
        self.lm_steps = []  # (objective, parts)
        for objective, flag, value in (("clm", "clm-steps", cfg.clm_steps), ("mlm", "mlm-steps", cfg.mlm_steps)):
            for parts in self._parse(flag, value, sizes):
                self.lm_steps.append((objective, parts))
        if not self.lm_steps:
            raise ConfigError("nothing to train: give --mlm-steps and/or --clm-steps (e.g. --mlm-steps en,fr)")
        self.eval_steps = [step_name(o, p) for o, p in self.lm_steps]
        self.averages = {
            o: [step_name(o, p) for oo, p in self.lm_steps if oo == o and len(p) == 1] for o in ("mlm", "clm")
        }
        self.lambdas = {
            "clm": LambdaSchedule("lambda-clm", cfg.lambda_clm),
            "mlm": LambdaSchedule("lambda-mlm", cfg.lambda_mlm),
        }
        if not 0 < cfg.word_pred < 1:
            raise ConfigError(f"--word-pred {cfg.word_pred}: must be in (0, 1)")
        if cfg.tokens_per_sample < 2:
            raise ConfigError(f"--tokens-per-sample {cfg.tokens_per_sample}: must be at least 2")
        self.masking = MaskingConfig(
            word_pred=cfg.word_pred,
            pred_probs=parse_float_triple("word-mask-keep-rand", cfg.word_mask_keep_rand),
            sample_alpha=cfg.sample_alpha,
            mask_index=mask_index(dictionary),
            pad_index=dictionary.pad(),
            n_words=len(dictionary),
            round_to_8=bool(cfg.fp16),
        )
        self.scores = None
        if cfg.sample_alpha > 0:
            self.scores = mask_scores(dictionary.count, dictionary.pad(), FIRST_WORD_ID, cfg.sample_alpha)

    def _parse(self, flag, value, sizes):
        steps = parse_steps(flag, value, self.langs, (1, 2))
        for parts in steps:
            if len(parts) == 2 and 2 not in sizes:
                raise ConfigError(f"--{flag}: '{'-'.join(parts)}' is a parallel (TLM) step; use --task xlm_tlm")
            if len(parts) == 2 and parts[0] == parts[1]:
                raise ConfigError(f"--{flag}: '{'-'.join(parts)}' pairs a language with itself")
        return steps

    # ------------------------------------------------------------------ data
    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        train = split == self.cfg.train_subset
        data_dir = self.train_data_dir(epoch) if train else self.data_dir
        bptt = self.cfg.tokens_per_sample
        datasets = OrderedDict()
        mono_counts, pair_counts = {}, {}
        for objective, parts in self.lm_steps:
            name = step_name(objective, parts)
            if len(parts) == 1:
                corpus = load_mono(data_dir, split, parts[0], self.dictionary)
                mono_counts[parts[0]] = len(corpus)
                bs = self.stream_batch_size(bptt) if train else 1
                seq = StreamDataset(corpus, bptt, bs, self.dictionary.eos())
                lang_id = self.lang2id[parts[0]]
            else:
                first, second = load_pair(data_dir, split, parts[0], parts[1], self.dictionary)
                seq = PairConcatDataset(
                    first,
                    second,
                    self.lang2id[parts[0]],
                    self.lang2id[parts[1]],
                    self.dictionary.eos(),
                    reset_positions=True,
                )
                seq = self.filter_pairs(seq, train, f"{split} {parts[0]}-{parts[1]}")
                pair_counts[pair_key(*parts)] = len(seq.keep)
                lang_id = None
            datasets[name] = LMObjectiveDataset(
                seq,
                objective,
                lang_id,
                self.dictionary.pad(),
                masking=self.masking,
                scores=self.scores,
                context_size=self.cfg.context_size,
                train=train,
                seed=self.cfg.seed,
                step=name,
            )
            logger.info(f"{split} {name}: {len(seq)} {'streams' if len(parts) == 1 else 'pairs'}")
        if train:
            self.train_steps.clear()
            mono_q = self.language_weights(mono_counts) if mono_counts else {}
            pair_q = self.language_weights(pair_counts) if pair_counts else {}
            for objective, parts in self.lm_steps:
                weight = mono_q[parts[0]] if len(parts) == 1 else pair_q[pair_key(*parts)]
                self.add_train_step(step_name(objective, parts), objective, len(parts) == 2, weight)
            logger.info("language sampling: " + ", ".join(f"{n}={s.weight:.3f}" for n, s in self.train_steps.items()))
        self.datasets[split] = self.make_multi_step_dataset(datasets, train)

    def filter_pairs(self, seq: PairConcatDataset, train: bool, what: str) -> PairConcatDataset:
        """Training keeps pairs whose sides both have 1..max_len tokens; every split drops pairs that would
        not fit the position table."""
        n1, n2 = seq.first_sizes - 1, seq.second_sizes - 1
        keep = (n1 > 0) & (n2 > 0) & (n1 + 2 <= self.max_model_positions) & (n2 + 2 <= self.max_model_positions)
        if train:
            keep &= (n1 <= self.cfg.max_len) & (n2 <= self.cfg.max_len)
        seq.keep = np.nonzero(keep)[0]
        if len(seq.keep) < len(seq):
            logger.info(f"{what}: kept {len(seq.keep)} of {len(seq)} pairs (empty or too long)")
        if len(seq.keep) == 0:
            raise ConfigError(f"{what}: no pair left after filtering to 1..--max-len {self.cfg.max_len} tokens")
        return seq

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        if self.cfg.tokens_per_sample > self.max_model_positions:
            raise ConfigError(
                f"--tokens-per-sample {self.cfg.tokens_per_sample} exceeds the model's "
                f"{self.max_model_positions} positions (--max-positions)"
            )
        return model
