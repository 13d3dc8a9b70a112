"""XLM's training schedule: which step runs at which point of training (facebookresearch/XLM `train.py: main`,
`xlm/trainer.py: shuf_order`, `xlm/trainer.py: Trainer.iter`).

- An iteration runs the step groups in the order CLM, MLM/TLM, AE, MT, BT. Inside CLM, MLM and MT it draws
  min(5, n) monolingual steps then min(5, n) parallel steps, with replacement, from the language distribution
  q ∝ p^α (paper §3.1); AE and BT run each of their steps once, in a random order.
- A step whose λ is 0 at its iteration is skipped where the schedule is drawn: it takes no batch, makes no
  update and does not count toward the epoch, as the original's steps return before touching data.
- An epoch is whole iterations until `epoch_size` nominal sentences (batch_size per executed step, as the
  original counts them) are reached. The iteration counter runs on across epochs: λ schedules count it.

Every draw comes from a RandomState seeded by (seed, group, epoch), so a group's draws do not depend on which
other groups exist, and epoch e is reproduced by replaying the draws of epochs 1..e-1 (numbers only, no data):
a run resumed at any epoch sees the same schedule."""

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np

from ..errors import ConfigError
from .lm_objective_dataset import batch_rng

GROUP_ORDER = ["clm", "mlm", "ae", "mt", "bt"]
SAMPLED_GROUPS = {"clm", "mlm", "mt"}
STEPS_DRAWN_PER_KIND = 5


@dataclass
class Step:
    name: str  # metric prefix, e.g. "en_mlm", "en_fr_mlm", "en_clm", "fr-en_mt"
    group: str  # one of GROUP_ORDER
    parallel: bool
    weight: float  # sampling probability within its group and kind (mono/para)


class TrainingSchedule:
    """`lambda_of(group, iteration)` gives each group's λ. `epoch(e)` returns the (iteration, step index) of
    every batch of epoch e in order, and how many batches each step had taken before the epoch began."""

    def __init__(
        self,
        steps: List[Step],
        lambda_of: Callable[[str, int], float],
        last_lambda_change: int,
        seed: int,
        epoch_size: int,
        nominal_batch_size: int,
    ):
        if not steps:
            raise ConfigError("nothing to train: no training step")
        self.steps = steps
        self.lambda_of = lambda_of
        self.last_lambda_change = last_lambda_change
        self.seed = seed
        self.steps_per_epoch = max(1, math.ceil(epoch_size / max(1, nominal_batch_size)))
        self.by_group = {g: [k for k, s in enumerate(steps) if s.group == g] for g in GROUP_ORDER}
        # epoch -> (first iteration, batches each step had taken before it)
        self._epoch_start: Dict[int, Tuple[int, np.ndarray]] = {1: (0, np.zeros(len(steps), dtype=np.int64))}

    def epoch(self, epoch: int) -> Tuple[List[Tuple[int, int]], np.ndarray]:
        start = max(e for e in self._epoch_start if e <= epoch)
        while start < epoch:  # replay the epochs in between (cached for the next call)
            self._plan(start)
            start += 1
        plan = self._plan(epoch)
        return plan, self._epoch_start[epoch][1]

    def _plan(self, epoch: int) -> List[Tuple[int, int]]:
        iteration, taken = self._epoch_start[epoch]
        rngs = {g: batch_rng(self.seed, "schedule", g, epoch) for g in GROUP_ORDER if self.by_group[g]}
        plan: List[Tuple[int, int]] = []
        while len(plan) < self.steps_per_epoch:
            executed = [k for k in self._draw_iteration(rngs) if self.lambda_of(self.steps[k].group, iteration) != 0]
            if not executed and iteration >= self.last_lambda_change:
                raise ConfigError(
                    f"every training step has λ = 0 from iteration {iteration} on (--lambda-*): "
                    "nothing is left to train; keep a λ above 0 or stop earlier with --max-update"
                )
            plan.extend((iteration, k) for k in executed)
            iteration += 1
        counts = np.bincount([k for _, k in plan], minlength=len(self.steps))
        self._epoch_start[epoch + 1] = (iteration, taken + counts)
        return plan

    def _draw_iteration(self, rngs) -> List[int]:
        """The steps of one iteration, in XLM's order, whatever their λ (the draws happen regardless)."""
        order: List[int] = []
        for group in GROUP_ORDER:
            ks = self.by_group[group]
            if not ks:
                continue
            rng = rngs[group]
            if group in SAMPLED_GROUPS:
                for parallel in (False, True):
                    sub = [k for k in ks if self.steps[k].parallel == parallel]
                    if not sub:
                        continue
                    w = np.array([self.steps[k].weight for k in sub], dtype=np.float64)
                    picks = rng.choice(len(sub), size=min(STEPS_DRAWN_PER_KIND, len(sub)), replace=True, p=w / w.sum())
                    order.extend(sub[i] for i in picks)
            else:
                order.extend(ks[i] for i in rng.permutation(len(ks)))
        return order
