"""Criterion `xlm_lm_loss`: mean cross-entropy over the predicted positions of one step (CLM, MLM, TLM;
and the translation steps AE, MT, BT through `xlm_mt_loss`), times the step's lambda (facebookresearch/XLM
`xlm/trainer.py: clm_step, mlm_step, mt_step, bt_step`).

sample_size is 1: each step contributes its own mean, as the original (which updates after every step and,
with several GPUs, averages the per-GPU means). Every logging output carries the counters of every step of
the task (zeros for the others), so all ranks sum the same keys in the same order."""

from dataclasses import dataclass

import torch.nn.functional as F
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass

from ..step_metrics import counters, log_mean_loss


def mean_cross_entropy(logits, target):
    """(mean loss tensor, summed loss, n, correct) over the rows of logits. The summed loss and the count of correct
    predictions stay tensors on the model's device: fairseq's meters add them up and read them back only when a
    line is logged, so a training step on a GPU waits for nothing."""
    n = target.numel()
    if n == 0:  # nothing predicted in this batch (possible with tiny batches); keep the graph alive
        zero = logits.sum() * 0.0
        return zero, 0.0, 0, 0
    loss_sum = F.cross_entropy(logits.float(), target, reduction="sum")
    correct = (logits.argmax(dim=-1) == target).sum()
    return loss_sum / n, loss_sum.detach(), n, correct


@dataclass
class XLMLMLossConfig(FairseqDataclass):
    pass


@register_criterion("xlm_lm_loss", dataclass=XLMLMLossConfig)
class XLMLMLoss(FairseqCriterion):
    def __init__(self, cfg, task):
        super().__init__(task)

    def forward(self, model, sample, reduce=True):
        name = sample["step"]
        target = sample["target"]
        if target.dim() == 2:  # translation: every non-padding target token is predicted
            pred_mask = target.ne(self.task.dictionary.pad())
            logits = model(**sample["net_input"], pred_mask=pred_mask)
            target = target[pred_mask]
        else:  # LM objectives carry their own prediction mask
            logits = model(**sample["net_input"])
        mean, loss_sum, n, correct = mean_cross_entropy(logits, target)
        weight = 1.0
        if model.training:  # λ of this step's group at the iteration the schedule drew it for
            weight = self.task.lambda_value(self.task.train_steps[name].group, sample["iteration"])
        loss = mean * weight
        logging_output = self.task.empty_logging_output()
        logging_output.update(counters(name, loss_sum, n, correct))
        logging_output.update(
            {
                "loss": loss.detach(),
                "ntokens": sample["ntokens"],
                "nsentences": sample["nsentences"],
                "sample_size": 1,
            }
        )
        return loss, 1, logging_output

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        log_mean_loss(logging_outputs)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
