"""Criterion `xlm_mt_loss`: the translation tasks' name for xlm_lm_loss (mean cross-entropy of the target
tokens of one AE, MT or BT step times its lambda; no label smoothing, as the original)."""

from dataclasses import dataclass

from fairseq.criterions import register_criterion
from fairseq.dataclass import FairseqDataclass

from .xlm_lm_loss import XLMLMLoss


@dataclass
class XLMMTLossConfig(FairseqDataclass):
    pass


@register_criterion("xlm_mt_loss", dataclass=XLMMTLossConfig)
class XLMMTLoss(XLMLMLoss):
    pass
