"""Task `xlm_tlm`: MLM + TLM (paper §3.3): xlm_cross_lingual_lm plus parallel steps.

    --mlm-steps en,fr,en-fr   # MLM on en and fr streams, TLM on en-fr pairs (English first)

A TLM batch concatenates each pair as `</s> en </s> </s> fr </s>`, positions restarting at 0 for the second
sentence and language ids switching with it, masked as MLM; batches are token budgets (--max-tokens) of
similar-length pairs. Each iteration runs up to 5 MLM steps then up to 5 TLM steps, drawn by the language
sampling distribution (facebookresearch/XLM `xlm/trainer.py: shuf_order`)."""

from dataclasses import dataclass

from fairseq.tasks import register_task

from .xlm_cross_lingual_lm import CrossLingualLMConfig, XLMCrossLingualLMTask


@dataclass
class TLMConfig(CrossLingualLMConfig):
    pass


@register_task("xlm_tlm", dataclass=TLMConfig)
class XLMTLMTask(XLMCrossLingualLMTask):
    allow_pairs = True
