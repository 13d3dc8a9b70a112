"""What the tasks of several training steps share (the LM tasks and the translation task): the step
datasets behind one MultiStepDataset, XLM's schedule as the epoch's batch list (training_schedule.py), λ
schedules counted in XLM iterations, and per-step metrics with XLM's names (`en_mlm_ppl`, `en_fr_mlm_ppl`,
`fr-en_mt_bleu`, averages `mlm_ppl`/`clm_ppl`).

Not a registered task itself; xlm_cross_lingual_lm, xlm_tlm and xlm_unsupervised_mt build on it."""

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from fairseq.logging import metrics
from omegaconf import II

from ..data.data_files import check_shards
from ..data.multi_step_dataset import MultiStepDataset
from ..data.training_schedule import Step, TrainingSchedule
from ..errors import ConfigError
from ..step_metrics import acc, drop_empty_metrics, empty_counters, log_counters, mean_of, ppl
from ..steps import LambdaSchedule, sampling_probs
from .xlm_task import XLMTask, XLMTaskConfig

logger = logging.getLogger(__name__)


@dataclass
class MultiStepConfig(XLMTaskConfig):
    lg_sampling_factor: float = field(
        default=-1.0, metadata={"help": "language sampling q_i ∝ p_i^a (paper: 0.7); -1 = uniform"}
    )
    epoch_size: int = field(
        default=100000,
        metadata={
            "help": "sentences per epoch, counted as batch-size per step like the original (validation "
            "and checkpoints happen each epoch)"
        },
    )
    max_len: int = field(
        default=100,
        metadata={"help": "training sentences (each pair side) longer than this many BPE tokens are dropped"},
    )
    max_pair_sentences: int = field(
        default=0,
        metadata={
            "help": "sentence steps (TLM, AE, BT, MT): keep a random N of the sentences of a larger "
            "--max-tokens batch (XLM's --max_batch_size); 0 = no cap"
        },
    )
    batch_size: Optional[int] = II("dataset.batch_size")
    max_tokens: Optional[int] = II("dataset.max_tokens")
    fp16: bool = II("common.fp16")


class MultiStepTask(XLMTask):
    needs_decoder = False

    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        self.train_steps: OrderedDict[str, Step] = OrderedDict()
        self.eval_steps: List[str] = []
        self.averages: Dict[str, List[str]] = {}  # "mlm" -> mono MLM step names
        self.lambdas: Dict[str, LambdaSchedule] = {}
        if len(self.data_dirs) > 1:  # at setup: fairseq-train lists every DATA folder before loading any data
            check_shards(self.data_dirs, getattr(cfg, "train_subset", "train"), self.langs)

    def train_data_dir(self, epoch: int) -> str:
        """The folder epoch `epoch` trains on: DATA `bin0:bin1:...` gives shard (epoch-1) % N, fairseq reloading
        the training set every epoch when DATA has several paths (fairseq/tasks/fairseq_task.py:
        has_sharded_data). The shards were checked at setup (data_files.py: check_shards)."""
        n = len(self.data_dirs)
        shard = (epoch - 1) % n
        if n > 1:
            logger.info(f"epoch {epoch} trains on {self.data_dirs[shard]} (data shard {shard} of 0..{n - 1})")
        return self.data_dirs[shard]

    # --------------------------------------------------------------- schedule
    def add_train_step(self, name: str, group: str, parallel: bool, weight: float) -> None:
        self.train_steps[name] = Step(name, group, parallel, weight)

    def language_weights(self, counts: Dict[Any, int]) -> Dict[Any, float]:
        return sampling_probs(counts, self.cfg.lg_sampling_factor)

    def lambda_value(self, group: str, iteration: int) -> float:
        """λ of a step group at an XLM iteration (n_total_iter: lambda schedules count iterations, not updates)."""
        schedule = self.lambdas.get(group)
        return 1.0 if schedule is None else schedule(iteration)

    def stream_batch_size(self, tokens_per_sample: int) -> int:
        if self.cfg.batch_size:
            return int(self.cfg.batch_size)
        if self.cfg.max_tokens:
            return max(1, int(self.cfg.max_tokens) // tokens_per_sample)
        raise ConfigError("set --batch-size (streams per batch, paper: 32-64) or --max-tokens")

    def nominal_batch_size(self) -> int:
        return int(self.cfg.batch_size or 32)

    def make_multi_step_dataset(self, datasets, train: bool) -> MultiStepDataset:
        if not train:
            return MultiStepDataset(datasets)
        last_change = max((s.points[-1][0] for s in self.lambdas.values()), default=0)
        schedule = TrainingSchedule(
            [self.train_steps[name] for name in datasets],
            self.lambda_value,
            last_change,
            self.cfg.seed,
            self.cfg.epoch_size,
            self.nominal_batch_size(),
        )
        return MultiStepDataset(datasets, schedule)

    def batch_sampler(self, dataset, max_tokens, max_sentences, epoch):
        if not isinstance(dataset, MultiStepDataset):
            return None
        dataset.set_epoch(epoch)
        if not dataset.is_train:
            return dataset.eval_batches(max_tokens, max_sentences or 1)
        cap = int(self.cfg.max_pair_sentences or 0)
        if cap < 0:
            raise ConfigError(f"--max-pair-sentences {cap}: must be >= 0 (0 = no cap)")
        return lambda ds, ep: ds.train_batches(ep, max_tokens, max_sentences, cap)

    # ---------------------------------------------------------------- metrics
    @property
    def metric_names(self) -> List[str]:
        names = list(self.train_steps.keys())
        names += [n for n in self.eval_steps if n not in self.train_steps]
        return names

    def empty_logging_output(self) -> Dict[str, float]:
        return empty_counters(self.metric_names)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        logged = log_counters(logging_outputs, self.metric_names)
        for avg, names in self.averages.items():
            if any(n in logged for n in names):
                metrics.log_derived(f"{avg}_ppl", lambda m, names=names: mean_of(m, names, ppl))
                metrics.log_derived(f"{avg}_acc", lambda m, names=names: mean_of(m, names, acc))
        derived = {f"{n}_{kind}": [n] for n in self.metric_names for kind in ("ppl", "acc")}
        derived.update({f"{avg}_{kind}": names for avg, names in self.averages.items() for kind in ("ppl", "acc")})
        drop_empty_metrics(derived)
