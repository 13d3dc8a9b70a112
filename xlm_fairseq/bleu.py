"""BLEU as the paper reports it and as sacreBLEU does, from summable statistics.

`tok`: case-sensitive BLEU on the Moses-tokenised text with BPE removed (what the original's
multi-bleu.perl computes, and the paper's numbers). `sacre`: sacreBLEU 13a on detokenised text.
Statistics (n-gram matches and totals, lengths) are summed over batches and ranks, and BLEU is computed
once from the sums, as fairseq's translation task does."""

from typing import Dict, List

from fairseq.data import data_utils
from sacrebleu.metrics import BLEU

KINDS = ("tok", "sacre")
STAT_KEYS = [f"counts_{i}" for i in range(4)] + [f"totals_{i}" for i in range(4)] + ["sys_len", "ref_len"]

_scorers = {"tok": BLEU(tokenize="none", smooth_method="none"), "sacre": BLEU(tokenize="13a", smooth_method="none")}


def bleu_stats(hyps: List[str], refs: List[str], kind: str) -> Dict[str, float]:
    score = _scorers[kind].corpus_score(hyps, [refs])
    stats = {f"counts_{i}": score.counts[i] for i in range(4)}
    stats.update({f"totals_{i}": score.totals[i] for i in range(4)})
    stats.update(sys_len=score.sys_len, ref_len=score.ref_len)
    return stats


def bleu_from_stats(stats: Dict[str, float]) -> float:
    if stats["totals_0"] == 0:
        return 0.0
    return BLEU.compute_bleu(
        correct=[int(stats[f"counts_{i}"]) for i in range(4)],
        total=[int(stats[f"totals_{i}"]) for i in range(4)],
        sys_len=int(stats["sys_len"]),
        ref_len=int(stats["ref_len"]),
        smooth_method="none",
    ).score


def remove_bpe(text: str, bpe: str) -> str:
    return data_utils.post_process(text, bpe) if bpe else text


class Detokenizer:
    """Moses detokenisation per language (sacremoses), cached."""

    def __init__(self):
        self._cache = {}

    def __call__(self, text: str, lang: str) -> str:
        if lang not in self._cache:
            from sacremoses import MosesDetokenizer

            self._cache[lang] = MosesDetokenizer(lang=lang.split("_")[0])
        return self._cache[lang].detokenize(text.split())
