"""Criterion `xlm_classification_loss`: cross-entropy of the classification head (facebookresearch/XLM
`xlm/evaluation/xnli.py`), summed over the
batch with sample_size = sentences, so an update averages over every sentence of every rank and micro-batch.

Every logging output carries the loss, count and correct predictions of every language of --langs (zeros for
the languages absent from the batch), so all ranks sum the same keys in the same order; the task turns them
into `{lang}_acc` and their mean `acc`."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from fairseq import utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..step_metrics import counters, log_mean_loss


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
        n_langs = len(self.task.langs)
        lang = sample["lang"].to(logits.device)
        correct = (logits.argmax(dim=-1) == target).long()
        per_n = torch.bincount(lang, minlength=n_langs).tolist()
        per_correct = torch.bincount(lang, weights=correct.double(), minlength=n_langs).tolist()
        per_loss = torch.bincount(lang, weights=losses.detach().double(), minlength=n_langs).tolist()
        logging_output = self.task.empty_logging_output()
        for i, name in enumerate(self.task.langs):
            logging_output.update(counters(name, per_loss[i], int(per_n[i]), int(per_correct[i])))
        nsentences = int(target.numel())
        logging_output.update(
            {
                "loss": utils.item(loss.detach()),
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
