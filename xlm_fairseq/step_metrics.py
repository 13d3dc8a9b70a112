"""Per-step (or per-language) counters in logging outputs, and the metrics derived from them.

Every logging output carries `_{name}_loss`, `_{name}_n` and `_{name}_correct` for every name the task can
log (zeros for the others), so all ranks sum the same keys in the same order (fairseq's fast stat sync);
reduce_metrics turns the sums into `{name}_ppl` and `{name}_acc` and means over groups of names."""

import math
from typing import Callable, Dict, Iterable, List, Set

import numpy as np
import torch
from fairseq.logging import metrics

PARTS = ("loss", "n", "correct")


def empty_counters(names: Iterable[str]) -> Dict[str, float]:
    return {f"_{name}_{part}": 0.0 if part == "loss" else 0 for name in names for part in PARTS}


def counters(name: str, loss_sum: float, n: int, correct: int) -> Dict[str, float]:
    return {f"_{name}_loss": loss_sum, f"_{name}_n": n, f"_{name}_correct": correct}


def sums_on_device(logging_output: Dict[str, float], zero: torch.Tensor) -> Dict[str, float]:
    """Every `_{name}_loss` and `_{name}_correct` of the logging output as a tensor like `zero` (on the model's
    device), whichever steps ran on this rank; the counts `_{name}_n` stay Python numbers everywhere (the collaters
    know them). fairseq's all_reduce_dict (fairseq/distributed/utils.py) sums the tensors and the numbers of the ranks
    in two buffers, key after key: a key that is a tensor on one rank and a number on another would be added to another
    key's value (an accuracy of 118% with two processes)."""
    for key, value in logging_output.items():
        if key.startswith("_") and key.endswith(("_loss", "_correct")) and not torch.is_tensor(value):
            logging_output[key] = zero if value == 0 else zero + value
    return logging_output


def ppl(meters, name: str) -> float:
    n = float(meters[f"_{name}_n"].sum)  # summed across ranks it may be a tensor
    if n == 0:
        return float("nan")
    loss = float(meters[f"_{name}_loss"].sum) / n
    return math.exp(loss) if loss < 700 else float("inf")


def acc(meters, name: str) -> float:
    n = float(meters[f"_{name}_n"].sum)
    return round(100.0 * float(meters[f"_{name}_correct"].sum) / float(n), 2) if n else float("nan")


def has_data(meters, name: str) -> bool:
    return f"_{name}_n" in meters and float(meters[f"_{name}_n"].sum) > 0


def mean_of(meters, names: List[str], fn: Callable) -> float:
    values = [fn(meters, n) for n in names if has_data(meters, n)]
    return float(np.mean(values)) if values else float("nan")


def log_counters(logging_outputs, names: Iterable[str], with_ppl: bool = True) -> Set[str]:
    """Sum the counters of these names, log `{name}_acc` (and `{name}_ppl`); returns the names with data."""
    logged = set()
    for name in names:
        n = sum(log.get(f"_{name}_n", 0) for log in logging_outputs)
        if n == 0:
            continue
        logged.add(name)
        for part in PARTS:
            metrics.log_scalar_sum(f"_{name}_{part}", sum(log.get(f"_{name}_{part}", 0) for log in logging_outputs))
        if with_ppl:
            metrics.log_derived(f"{name}_ppl", lambda m, name=name: ppl(m, name))
        metrics.log_derived(f"{name}_acc", lambda m, name=name: acc(m, name))
    return logged


def drop_empty_metrics(derived: Dict[str, List[str]]) -> None:
    """Remove derived metrics (name -> the counter names they read) whose counters hold nothing in an active
    aggregator, e.g. `fr_mlm_ppl` in a log interval without an fr step: without this every `train_inner` line
    would print `nan` for every step that did not run in it."""
    for agg in metrics.get_active_aggregators():
        for key, names in derived.items():
            if key in agg and not any(f"_{n}_n" in agg and float(agg[f"_{n}_n"].sum) > 0 for n in names):
                del agg[key]
                agg.priorities = [p for p in agg.priorities if p[2] != key]  # MetersDict keeps its order there


def log_mean_loss(logging_outputs) -> None:
    """`loss` = the summed loss over the summed sample size (the criteria's common reduction)."""
    loss = sum(log.get("loss", 0) for log in logging_outputs)
    sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
    metrics.log_scalar("loss", loss / max(sample_size, 1), sample_size, round=4)
