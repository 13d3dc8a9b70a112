"""What every task of the plugin shares: the data-bin folder(s) and the shared dict.txt, the languages and
their ids (the index in the sorted --langs, as the original), the criterion each task trains with, the model's
position table, and the pretrained checkpoint fairseq-train is about to load, whose language-embedding rows
the model maps onto --langs by name (checkpoints.py).

Not a registered task itself: xlm_cross_lingual_lm, xlm_tlm, xlm_unsupervised_mt (through multi_step_task.py)
and xlm_classification build on it."""
import logging
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from omegaconf import II

from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask

from ..checkpoints import check_language_coverage, file_fairseq_will_load, languages, read_config, split_data_paths
from ..dictionary import load_dictionary
from ..errors import ConfigError
from ..inference_assets import write_for_task
from ..modules.transformer import N_MAX_POSITIONS
from ..steps import parse_langs

logger = logging.getLogger(__name__)


@dataclass
class XLMTaskConfig(FairseqDataclass):
    data: str = field(default="", metadata={"help": "data-bin folder (dict.txt and the binarised text)"})
    langs: str = field(default="", metadata={"help": "languages, e.g. en,fr (ids = index in the sorted list)"})
    seed: int = II("common.seed")
    restore_file: str = II("checkpoint.restore_file")
    finetune_from_model: Optional[str] = II("checkpoint.finetune_from_model")
    save_dir: str = II("checkpoint.save_dir")


class XLMTask(FairseqTask):
    criterion_names: Tuple[str, ...] = ()  # the criteria this task trains with, the usual one first
    max_model_positions = N_MAX_POSITIONS  # the model's position table, once it is built

    def __init__(self, cfg, dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary
        self.langs: List[str] = parse_langs(cfg.langs)
        self.lang2id = {l: i for i, l in enumerate(self.langs)}
        self.data_dirs = split_data_paths(cfg.data)

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
            raise ConfigError(f"--criterion {name}: --task {self.cfg._name} trains with --criterion "
                              f"{self.criterion_names[0]}; add it to the command line")
        return super().build_criterion(cfg, from_checkpoint)

    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        self.max_model_positions = model.encoder.max_positions()
        if not from_checkpoint:
            self.map_languages_of_loaded_checkpoint(model)
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

    def post_save(self, checkpoint_path: str, num_updates: int) -> None:
        """fairseq-train calls this after writing a checkpoint (on the process that writes it): keep what
        inference needs beside it (inference_assets.py), so the folder is self-sufficient."""
        write_for_task(os.path.dirname(os.path.abspath(checkpoint_path)), self)
