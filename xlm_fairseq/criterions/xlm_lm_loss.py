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

from ..step_metrics import counters, log_mean_loss, sums_on_device


def mean_cross_entropy(logits, target):
    """(mean loss tensor, summed loss, n, correct) over the rows of logits. The summed loss and the count of correct
    predictions stay tensors on the model's device: fairseq's meters add them up and read them back only when a
    line is logged, so a training step on a GPU waits for nothing."""
    n = target.numel()
    if n == 0:  # nothing predicted in this batch (possible with tiny batches); keep the graph alive
        zero = logits.sum() * 0.0
        return zero, zero.detach(), 0, zero.detach()
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
        logits = model(**sample["net_input"])  # at the batch's pred_index positions, made by the collater
        if target.dim() == 2:  # translation: the target's tokens at those positions (LM batches carry them alone)
            target = target.reshape(-1).index_select(0, sample["net_input"]["pred_index"])
        mean, loss_sum, n, correct = mean_cross_entropy(logits, target)
        weight = 1.0
        # λ of this step's group at the iteration the schedule drew it for; a rank without a batch left in the epoch
        # trains on fairseq's dummy batch (its loss multiplied by 0), which may be a validation batch without one
        if model.training and "iteration" in sample:
            weight = self.task.lambda_value(self.task.train_steps[name].group, sample["iteration"])
        loss = mean * weight
        logging_output = sums_on_device(self.task.empty_logging_output(), loss.new_zeros(()).detach())
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
