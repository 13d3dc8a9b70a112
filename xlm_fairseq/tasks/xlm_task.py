"""What every task of the plugin shares: the data-bin folder(s) and the shared dict.txt, the languages and
their ids (the index in the sorted --langs, as the original), the criterion each task trains with, the model's
position table, and the pretrained checkpoint fairseq-train is about to load, whose language-embedding rows
the model maps onto --langs by name (checkpoints.py).

Not a registered task itself: xlm_cross_lingual_lm, xlm_tlm, xlm_unsupervised_mt (through multi_step_task.py)
and xlm_classification build on it."""

import importlib.util
import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
from fairseq.data import iterators
from fairseq.dataclass import FairseqDataclass
from fairseq.optim.amp_optimizer import AMPOptimizer
from fairseq.tasks import FairseqTask
from omegaconf import II

from ..checkpoints import check_language_coverage, file_fairseq_will_load, languages, read_config, split_data_paths
from ..data.resharding_iterator import ReshardingEpochBatchIterator
from ..dictionary import load_dictionary
from ..errors import ConfigError
from ..inference_assets import write_for_task
from ..modules.transformer import N_MAX_POSITIONS
from ..prefetch_exit import register as stop_prefetch_at_exit
from ..steps import parse_langs

logger = logging.getLogger(__name__)


@dataclass
class XLMTaskConfig(FairseqDataclass):
    data: str = field(default="", metadata={"help": "data-bin folder (dict.txt and the binarised text)"})
    langs: str = field(default="", metadata={"help": "languages, e.g. en,fr (ids = index in the sorted list)"})
    seed: int = II("common.seed")
    cpu: bool = II("common.cpu")
    restore_file: str = II("checkpoint.restore_file")
    finetune_from_model: Optional[str] = II("checkpoint.finetune_from_model")
    save_dir: str = II("checkpoint.save_dir")
    amp: bool = II("common.amp")
    bf16: bool = II("common.bf16")


class XLMTask(FairseqTask):
    criterion_names: Tuple[str, ...] = ()  # the criteria this task trains with, the usual one first
    max_model_positions = N_MAX_POSITIONS  # the model's position table, once it is built

    def __init__(self, cfg, dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary
        self.langs: List[str] = parse_langs(cfg.langs)
        self.lang2id = {l: i for i, l in enumerate(self.langs)}
        self.data_dirs = split_data_paths(cfg.data)
        if cfg.bf16 and importlib.util.find_spec("torch_xla") is None:
            raise ConfigError(
                "--bf16/--memory-efficient-bf16: in this fairseq they run on a TPU (fairseq/options.py turns on "
                "--tpu) and torch_xla is not installed; on GPUs use --fp16, --memory-efficient-fp16 or --amp"
            )

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        paths = split_data_paths(cfg.data)
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

    def build_criterion(self, cfg, from_checkpoint=False):
        name = getattr(cfg, "_name", None)
        if self.criterion_names and name not in self.criterion_names:
            raise ConfigError(
                f"--criterion {name}: --task {self.cfg._name} trains with --criterion "
                f"{self.criterion_names[0]}; add it to the command line"
            )
        return super().build_criterion(cfg, from_checkpoint)

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        self.max_model_positions = model.encoder.max_positions()
        if not from_checkpoint:
            self.map_languages_of_loaded_checkpoint(model)
            if getattr(cfg, "compile_layers", False):
                model.compile_layers()
        return model

    def map_languages_of_loaded_checkpoint(self, model) -> None:
        """fairseq-train loads --finetune-from-model / --restore-file / checkpoint_last.pt into the model after
        building it; tell the model which languages that file's rows are for (read from its config alone)."""
        path, flag = file_fairseq_will_load(self.cfg)
        if path is None or not hasattr(model, "checkpoint_langs"):
            return
        source = languages(read_config(path, flag))
        if source and source != model.langs:
            check_language_coverage(source, model.langs, model.cfg.init_new_langs, f"{flag} {path}")
            model.checkpoint_langs = source

    def max_positions(self):
        return self.max_model_positions

    # ---------------------------------------------------------------------------------------- precision
    def autocast(self, model):
        """Under --amp, the passes the task runs itself (back-translation, validation) in the precision the
        criterion trains in: fairseq's train_step puts autocast around the criterion alone
        (fairseq/tasks/fairseq_task.py: train_step), and under --fp16 the whole model is half anyway."""
        if not self.cfg.amp:
            return nullcontext()
        device = next(model.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.float16)

    def valid_step(self, sample, model, criterion):
        with self.autocast(model):
            return super().valid_step(sample, model, criterion)

    def optimizer_step(self, optimizer, model, update_num):
        """Under --amp, step the torch optimizer through the grad scaler ourselves. fairseq's
        AMPOptimizer.clip_grad_norm unscales the torch optimizer's gradients, then its step() hands the scaler the
        fairseq wrapper, another object, whose gradients the scaler believes still scaled: it divides them by the loss
        scale a second time (fairseq/optim/amp_optimizer.py), so every update would take g / scale² instead of g
        (SGD moved 1/128 of -lr·g at the first update; Adam's eps grows by the scale). The torch optimizer is the
        object the scaler unscaled, and the wrapper's step() only calls its step()."""
        if isinstance(optimizer, AMPOptimizer):
            optimizer.scaler.step(optimizer.optimizer)
            optimizer.scaler.update()
        else:
            super().optimizer_step(optimizer, model, update_num)

    # ------------------------------------------------------------------------------------------ batches
    def get_batch_iterator(
        self,
        dataset,
        max_tokens=None,
        max_sentences=None,
        max_positions=None,
        ignore_invalid_inputs=False,
        required_batch_size_multiple=1,
        seed=1,
        num_shards=1,
        shard_id=0,
        num_workers=0,
        epoch=1,
        data_buffer_size=0,
        disable_iterator_cache=False,
        skip_remainder_batch=False,
        grouped_shuffling=False,
        update_epoch_batch_itr=False,
    ):
        """The task's own batches (batch_sampler), or fairseq's batching by size with batches of exactly
        --batch-size sentences, as XLM (no rounding to --required-batch-size-multiple)."""
        num_workers = self.loader_workers(num_workers)
        stop_prefetch_at_exit()
        sampler = self.batch_sampler(dataset, max_tokens, max_sentences, epoch)
        if sampler is None:
            epoch_iter = super().get_batch_iterator(
                dataset,
                max_tokens,
                max_sentences,
                max_positions,
                ignore_invalid_inputs,
                1,
                seed,
                num_shards,
                shard_id,
                num_workers,
                epoch,
                data_buffer_size,
                disable_iterator_cache,
                skip_remainder_batch,
                grouped_shuffling,
                update_epoch_batch_itr,
            )
            # fairseq builds its iterator itself; the subclass adds no state, only the number of processes its
            # checkpoint records, so fairseq's batches resume mid-epoch on another number of processes too
            if type(epoch_iter) is iterators.EpochBatchIterator:
                epoch_iter.__class__ = ReshardingEpochBatchIterator
            return epoch_iter
        return ReshardingEpochBatchIterator(  # a mid-epoch checkpoint resumes on another number of processes
            dataset=dataset,
            collate_fn=dataset.collater,
            batch_sampler=sampler,
            seed=seed,
            num_shards=num_shards,
            shard_id=shard_id,
            num_workers=num_workers,
            epoch=epoch,
            buffer_size=data_buffer_size,
            disable_shuffling=True,
            reuse_dataloader=False,
            persistent_workers=False,
        )

    def batch_sampler(self, dataset, max_tokens, max_sentences, epoch):
        """The batches of `dataset` (a list, or a function of (dataset, epoch)), or None for fairseq's."""
        return None

    def loader_workers(self, num_workers: int) -> int:
        """--num-workers N loader processes (fairseq's default: 1) overlap batch preparation with a GPU's work.
        Training on a CPU whose cores the model's threads already fill, a loader process only competes with them
        (measured on 2 cores: 21 ms per update of a tiny model with one, 15 ms without), so batches are then
        prepared in the main process, which fairseq's prefetching thread keeps ahead of the model."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        on_cpu = bool(self.cfg.cpu) or not torch.cuda.is_available()
        if num_workers and on_cpu and torch.get_num_threads() + num_workers > cores:
            if not getattr(self, "_said_workers", False):
                logger.info(
                    f"--num-workers {num_workers}: batches are prepared in the main process instead, since "
                    f"{torch.get_num_threads()} compute threads already fill the {cores} CPU cores"
                )
                self._said_workers = True
            return 0
        return num_workers

    def post_save(self, checkpoint_path: str, num_updates: int) -> None:
        """fairseq-train calls this after writing a checkpoint (on the process that writes it): keep what
        inference needs beside it (inference_assets.py), so the folder is self-sufficient."""
        write_for_task(os.path.dirname(os.path.abspath(checkpoint_path)), self)
