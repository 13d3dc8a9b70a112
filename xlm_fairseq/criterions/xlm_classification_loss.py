"""Criterion `xlm_classification_loss`: cross-entropy of the classification head (facebookresearch/XLM
`xlm/evaluation/xnli.py`), summed over the
batch with sample_size = sentences, so an update averages over every sentence of every rank and micro-batch.

Every logging output carries the loss, count and correct predictions of every language of --langs (zeros for
the languages absent from the batch), so all ranks sum the same keys in the same order; the task turns them
into `{lang}_acc` and their mean `acc`."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..step_metrics import counters, log_mean_loss, sums_on_device


@dataclass
class XLMClassificationLossConfig(FairseqDataclass):
    pass


@register_criterion("xlm_classification_loss", dataclass=XLMClassificationLossConfig)
class XLMClassificationLoss(FairseqCriterion):
    def __init__(self, cfg, task):
        super().__init__(task)
        if not hasattr(task, "head_name"):
            from ..errors import ConfigError

            raise ConfigError("--criterion xlm_classification_loss needs --task xlm_classification")

    def forward(self, model, sample, reduce=True):
        logits = model(**sample["net_input"], classification_head_name=self.task.head_name)
        target = sample["target"]
        losses = F.cross_entropy(logits.float(), target, reduction="none")
        loss = losses.sum()
        # per language: the count of examples from the collater (a number on the host), the sums of correct
        # predictions and losses as tensors on the device (index_add_, unlike bincount on a GPU, needs no read-back
        # to size its output); fairseq's meters read those when a line is logged
        lang = sample["lang"]
        per_lang = losses.new_zeros(2, len(self.task.langs))
        per_lang.index_add_(1, lang, torch.stack([(logits.argmax(dim=-1) == target).float(), losses.detach()]))
        logging_output = sums_on_device(self.task.empty_logging_output(), losses.new_zeros(()))
        for i, name in enumerate(self.task.langs):
            logging_output.update(counters(name, per_lang[1, i], sample["lang_counts"].get(i, 0), per_lang[0, i]))
        nsentences = target.numel()
        logging_output.update(
            {
                "loss": loss.detach(),
                "ntokens": sample["ntokens"],
                "nsentences": nsentences,
                "sample_size": nsentences,
            }
        )
        return loss, nsentences, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        log_mean_loss(logging_outputs)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
