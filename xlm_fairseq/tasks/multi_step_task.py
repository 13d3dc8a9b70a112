"""What every XLM task shares: languages and their ids, the step datasets behind one MultiStepDataset,
XLM's schedule as the epoch's batch list, lambda schedules counted in XLM iterations, and per-step metrics
with XLM's names (`en_mlm_ppl`, `en_fr_mlm_ppl`, `fr-en_mt_bleu`, averages `mlm_ppl`/`clm_ppl`).

Not a registered task itself; xlm_cross_lingual_lm, xlm_tlm and xlm_unsupervised_mt build on it."""
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import II

from fairseq.data import iterators
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics
from fairseq.tasks import FairseqTask

from ..data.multi_step_dataset import GROUP_ORDER, SAMPLED_GROUPS, MultiStepDataset, Step
from ..dictionary import load_dictionary
from ..errors import ConfigError
from ..inference_assets import InferenceAssetsMixin
from ..step_metrics import acc, empty_counters, log_counters, mean_of, ppl
from ..steps import LambdaSchedule, parse_langs, sampling_probs

logger = logging.getLogger(__name__)


@dataclass
class MultiStepConfig(FairseqDataclass):
    data: str = field(default="", metadata={"help": "data-bin folder (dict.txt, {split}.{lang}, {split}.{a}-{b}.{x})"})
    langs: str = field(default="", metadata={"help": "languages, e.g. en,fr (ids = index in the sorted list)"})
    lg_sampling_factor: float = field(
        default=-1.0, metadata={"help": "language sampling q_i ∝ p_i^a (paper: 0.7); -1 = uniform"}
    )
    epoch_size: int = field(
        default=100000,
        metadata={"help": "sentences per epoch, counted as batch-size per step like the original (validation "
                          "and checkpoints happen each epoch)"},
    )
    max_len: int = field(default=100, metadata={"help": "training sentences (each pair side) longer than this "
                                                        "many BPE tokens are dropped"})
    seed: int = II("common.seed")
    batch_size: Optional[int] = II("dataset.batch_size")
    max_tokens: Optional[int] = II("dataset.max_tokens")
    update_freq: Any = II("optimization.update_freq")
    distributed_world_size: int = II("distributed_training.distributed_world_size")
    fp16: bool = II("common.fp16")


class MultiStepTask(InferenceAssetsMixin, FairseqTask):
    needs_decoder = False

    def __init__(self, cfg, dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary
        self.langs: List[str] = parse_langs(cfg.langs)
        self.lang2id = {l: i for i, l in enumerate(self.langs)}
        self.data_dirs = [p for p in str(cfg.data).split(os.pathsep) if p]
        self.train_steps: "OrderedDict[str, Step]" = OrderedDict()
        self.eval_steps: List[str] = []
        self.averages: Dict[str, List[str]] = {}  # "mlm" -> mono MLM step names
        self.lambdas: Dict[str, LambdaSchedule] = {}
        self._update_num = 0

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        paths = [p for p in str(cfg.data).split(os.pathsep) if p]
        if not paths:
            raise ConfigError("the data-bin folder (first positional argument) is missing")
        dictionary = load_dictionary(os.path.join(paths[0], "dict.txt"))
        logger.info(f"dictionary: {len(dictionary)} types")
        return cls(cfg, dictionary)

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary

    @property
    def data_dir(self) -> str:
        return self.data_dirs[0]

    def train_data_dir(self, epoch: int) -> str:
        return self.data_dirs[(epoch - 1) % len(self.data_dirs)]

    # --------------------------------------------------------------- schedule
    def add_train_step(self, name: str, group: str, parallel: bool, weight: float) -> None:
        self.train_steps[name] = Step(name, group, parallel, weight)

    def language_weights(self, counts: Dict[Any, int]) -> Dict[Any, float]:
        return sampling_probs(counts, self.cfg.lg_sampling_factor)

    @property
    def steps_per_iteration(self) -> int:
        n = 0
        for group in GROUP_ORDER:
            steps = [s for s in self.train_steps.values() if s.group == group]
            if group in SAMPLED_GROUPS:
                n += min(5, sum(not s.parallel for s in steps)) + min(5, sum(s.parallel for s in steps))
            else:
                n += len(steps)
        return max(1, n)

    @property
    def iteration(self) -> int:
        """XLM's n_total_iter: lambda schedules count iterations, not optimizer updates."""
        uf = self.cfg.update_freq
        uf = uf[0] if isinstance(uf, (list, tuple)) or hasattr(uf, "__getitem__") else uf
        batches = self._update_num * int(uf or 1) * max(1, int(self.cfg.distributed_world_size or 1))
        return batches // self.steps_per_iteration

    def lambda_value(self, group: str) -> float:
        schedule = self.lambdas.get(group)
        return 1.0 if schedule is None else schedule(self.iteration)

    def stream_batch_size(self, tokens_per_sample: int) -> int:
        if self.cfg.batch_size:
            return int(self.cfg.batch_size)
        if self.cfg.max_tokens:
            return max(1, int(self.cfg.max_tokens) // tokens_per_sample)
        raise ConfigError("set --batch-size (streams per batch, paper: 32-64) or --max-tokens")

    def nominal_batch_size(self) -> int:
        return int(self.cfg.batch_size or 32)

    def make_multi_step_dataset(self, datasets, train: bool) -> MultiStepDataset:
        ds = MultiStepDataset(datasets, self.train_steps if train else None)
        ds.is_train = train
        return ds

    def get_batch_iterator(self, dataset, max_tokens=None, max_sentences=None, max_positions=None,
                           ignore_invalid_inputs=False, required_batch_size_multiple=1, seed=1, num_shards=1,
                           shard_id=0, num_workers=0, epoch=1, data_buffer_size=0, disable_iterator_cache=False,
                           skip_remainder_batch=False, grouped_shuffling=False, update_epoch_batch_itr=False):
        if not isinstance(dataset, MultiStepDataset):
            return super().get_batch_iterator(
                dataset, max_tokens, max_sentences, max_positions, ignore_invalid_inputs,
                required_batch_size_multiple, seed, num_shards, shard_id, num_workers, epoch, data_buffer_size,
                disable_iterator_cache, skip_remainder_batch, grouped_shuffling, update_epoch_batch_itr)
        dataset.set_epoch(epoch)
        base_seed = self.cfg.seed
        if dataset.is_train:
            epoch_size, nominal = self.cfg.epoch_size, self.nominal_batch_size()

            def batch_sampler(ds, ep):
                return ds.train_batches(ep, base_seed, epoch_size, nominal, max_tokens, max_sentences)
        else:
            batch_sampler = dataset.eval_batches(max_tokens, max_sentences or 1)
        return iterators.EpochBatchIterator(
            dataset=dataset, collate_fn=dataset.collater, batch_sampler=batch_sampler, seed=seed,
            num_shards=num_shards, shard_id=shard_id, num_workers=num_workers, epoch=epoch,
            buffer_size=data_buffer_size, disable_shuffling=True, reuse_dataloader=False,
            persistent_workers=False,
        )

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        self._update_num = update_num
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

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
