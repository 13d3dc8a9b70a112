"""The training schedule and the batches each step reads, against the original's rules (facebookresearch/XLM
`train.py: main`, `xlm/trainer.py: shuf_order`, `xlm/data/dataset.py: get_iterator`): language sampling,
mono-then-para order, λ = 0 steps skipped where the schedule is drawn, epochs of nominal sentences, one
batch order per step living across epochs, and the batch budget of each step kind."""

import math
from collections import OrderedDict

import numpy as np
import pytest

from xlm_fairseq.data.multi_step_dataset import MultiStepDataset, sentence_batches
from xlm_fairseq.data.stream_dataset import StreamDataset
from xlm_fairseq.data.training_schedule import Step, TrainingSchedule
from xlm_fairseq.errors import ConfigError
from xlm_fairseq.steps import LambdaSchedule, sampling_probs

EOS = 2


def schedule(steps, lambdas=None, epoch_size=60, batch_size=2, seed=0):
    lambdas = {g: LambdaSchedule(f"lambda-{g}", v) for g, v in (lambdas or {}).items()}
    last = max((s.points[-1][0] for s in lambdas.values()), default=0)
    return TrainingSchedule(
        steps, lambda g, it: lambdas[g](it) if g in lambdas else 1.0, last, seed, epoch_size, batch_size
    )


class PairLike:
    """Stands for a sentence dataset (TLM/AE/BT/MT): sizes and the kept indices."""

    def __init__(self, sizes):
        self.sizes = np.asarray(sizes)

    def __len__(self):
        return len(self.sizes)

    def ordered_indices(self):
        return np.argsort(self.sizes, kind="mergesort")


def test_language_sampling_frequencies_match_power_law():
    counts = {"en": 100000, "fr": 10000, "sw": 1000}
    q = sampling_probs(counts, 0.7)
    p = np.array([100000, 10000, 1000]) / 111000
    expected = p**0.7 / (p**0.7).sum()
    assert np.allclose([q["en"], q["fr"], q["sw"]], expected)
    assert sampling_probs(counts, -1) == {k: 1 / 3 for k in counts}
    steps = [Step(f"{lang}_mlm", "mlm", False, q[lang]) for lang in counts]
    plan, _ = schedule(steps, epoch_size=2 * 30000).epoch(1)
    n = len(plan)
    for k, lang in enumerate(counts):
        share = sum(1 for _, j in plan if j == k) / n
        assert abs(share - q[lang]) < 4 * math.sqrt(q[lang] * (1 - q[lang]) / n)


def test_iterations_run_mono_then_para_groups_in_order_and_count_nominal_sentences():
    steps = [
        Step("en_clm", "clm", False, 1.0),
        Step("en_mlm", "mlm", False, 0.5),
        Step("fr_mlm", "mlm", False, 0.5),
        Step("en_fr_mlm", "mlm", True, 1.0),
        Step("en_ae", "ae", False, 1.0),
        Step("fr_ae", "ae", False, 1.0),
        Step("en-fr-en_bt", "bt", False, 1.0),
    ]
    plan, taken = schedule(steps, epoch_size=61, batch_size=2).epoch(1)
    # ceil(61 / 2) = 31 nominal steps, reached at the end of a whole iteration of 7 steps
    assert len(plan) == 35 and not taken.any()
    for i in range(0, len(plan), 7):
        its, ks = zip(*plan[i : i + 7])
        assert set(its) == {i // 7}
        names = [steps[k].name for k in ks]
        assert names[0] == "en_clm" and set(names[1:3]) <= {"en_mlm", "fr_mlm"} and names[3] == "en_fr_mlm"
        assert sorted(names[4:6]) == ["en_ae", "fr_ae"] and names[6] == "en-fr-en_bt"


def test_a_zero_lambda_skips_the_step_where_the_schedule_is_drawn():
    steps = [Step("en_clm", "clm", False, 1.0), Step("en_mlm", "mlm", False, 1.0)]
    plan, _ = schedule(steps, {"clm": "0:1,3:0"}, epoch_size=20, batch_size=2).epoch(1)
    clm = [it for it, k in plan if k == 0]
    assert clm == [0, 1, 2], "λ_clm is 0 from iteration 3: no CLM batch after it"
    # skipped steps do not count toward the epoch: 10 executed steps, the iterations run on to reach them
    assert len(plan) == 10 and plan[-1][0] == 6
    # the other group's draws, iterations and epoch end are those of a run without the skipped group
    alone, _ = schedule(steps[1:], epoch_size=20, batch_size=2).epoch(1)
    with_zero, _ = schedule(steps, {"clm": "0"}, epoch_size=20, batch_size=2).epoch(1)
    assert [(it, 0) for it, _ in alone] == [(it, k - 1) for it, k in with_zero]


def test_all_steps_at_zero_is_a_user_error():
    steps = [Step("en_ae", "ae", False, 1.0)]
    with pytest.raises(ConfigError, match="λ = 0 from iteration 5"):
        schedule(steps, {"ae": "0:1,5:0"}, epoch_size=100, batch_size=2).epoch(1)


def test_epochs_continue_the_iteration_count_and_replay_the_same_schedule():
    steps = [Step("en_mlm", "mlm", False, 0.3), Step("fr_mlm", "mlm", False, 0.7), Step("en_ae", "ae", False, 1.0)]
    s = schedule(steps, {"ae": "0:1,7:0.5"}, epoch_size=21, batch_size=3)
    epochs = [s.epoch(e) for e in (1, 2, 3)]
    assert epochs[1][0][0][0] == epochs[0][0][-1][0] + 1
    assert list(epochs[2][1]) == [sum(1 for _, k in epochs[0][0] + epochs[1][0] if k == j) for j in range(3)]
    fresh = schedule(steps, {"ae": "0:1,7:0.5"}, epoch_size=21, batch_size=3)  # a resumed run
    plan3, taken3 = fresh.epoch(3)
    assert plan3 == epochs[2][0] and list(taken3) == list(epochs[2][1])


def multi_step(n_sentences=40, n_stream_tokens=400, epoch_size=200, seed=3):
    rng = np.random.RandomState(0)
    datasets = OrderedDict(
        [
            ("en_mlm", StreamDataset(np.arange(14, 14 + n_stream_tokens), bptt=8, bs=4, eos=EOS)),
            ("en_ae", PairLike(rng.randint(3, 30, size=n_sentences))),
        ]
    )
    steps = [Step("en_mlm", "mlm", False, 1.0), Step("en_ae", "ae", False, 1.0)]
    return MultiStepDataset(datasets, schedule(steps, epoch_size=epoch_size, batch_size=4, seed=seed))


def local_batches(ms, batches, name):
    k = ms.names.index(name)
    off = int(ms.offsets[k])
    return [tuple(i - off for _, i in b) for b in batches if ms._locate(b[0][1])[0] == k]


def test_each_step_reads_one_batch_order_across_epochs_without_repeats():
    ms = multi_step()
    seen = {"en_mlm": [], "en_ae": []}
    for epoch in range(1, 8):
        batches = ms.train_batches(epoch, max_tokens=60)
        for name in seen:
            seen[name] += local_batches(ms, batches, name)
    for name, got in seen.items():
        per_pass = len(ms._pass(ms.names.index(name), 0, (60, None, 0)))
        assert len(got) > 2 * per_pass, "the test must cover several passes"
        for start in range(0, len(got) - per_pass + 1, per_pass):
            one_pass = got[start : start + per_pass]
            covered = sorted(i for b in one_pass for i in b)
            assert covered == sorted(set(covered)), f"{name}: a batch repeats within a pass"
            assert len(covered) == len(ms.datasets[name]), f"{name}: a pass must cover all its data"
    # a resumed run (fresh objects) computes the same batches for any epoch
    again = multi_step()
    assert again.train_batches(6, max_tokens=60) == ms.train_batches(6, max_tokens=60)


def test_batch_budget_of_each_step_kind():
    """Streams: --batch-size streams; sentence steps: --max-tokens alone (the original's tokens_per_batch), even
    when --batch-size is given; --max-pair-sentences keeps a random subset; no --max-tokens: batch-size chunks."""
    rng = np.random.RandomState(1)
    sizes = rng.randint(44, 83, size=2000)
    pairs = PairLike(sizes)
    b = sentence_batches(sizes, pairs.ordered_indices(), rng, True, max_tokens=4000, batch_size=32)
    tokens = [int(sizes[x].sum()) for x in b]
    assert np.median(tokens) > 3900 and max(tokens) < 4000 + 83
    assert np.median([len(x) for x in b]) > 55, "batch-size must not cut token-budget batches"
    assert sorted(np.concatenate(b).tolist()) == list(range(2000))
    capped = sentence_batches(sizes, pairs.ordered_indices(), np.random.RandomState(2), True, 4000, 32, 20)
    assert max(len(x) for x in capped) == 20 and len(capped) == len(b)
    flat = np.concatenate(capped)
    assert len(set(flat.tolist())) == len(flat)
    chunks = sentence_batches(sizes, pairs.ordered_indices(), rng, True, max_tokens=None, batch_size=32)
    assert {len(x) for x in chunks} <= {31, 32} and len(chunks) == math.ceil(2000 / 32)
    ms = multi_step()
    batches = ms.train_batches(1, max_tokens=60, batch_size=4)
    assert {len(x) for x in local_batches(ms, batches, "en_mlm")} == {4}
    assert all(sum(ms.datasets["en_ae"].sizes[list(x)]) < 60 + 30 for x in local_batches(ms, batches, "en_ae"))
    assert all(isinstance(it, int) for b in batches for it, _ in b)


def test_eval_batches_cover_every_step_once_interleaved():
    datasets = OrderedDict(
        (n, StreamDataset(np.arange(14, 14 + 40 * k), bptt=4, bs=1, eos=EOS)) for k, n in ((1, "en_mlm"), (2, "fr_mlm"))
    )
    ms = MultiStepDataset(datasets)
    batches = ms.eval_batches(max_tokens=None, max_sentences=5)
    assert sorted(i for b in batches for i in b) == list(range(len(ms)))
    owners = [ms.names[ms._locate(b[0])[0]] for b in batches]
    assert owners[:4] == ["en_mlm", "fr_mlm", "en_mlm", "fr_mlm"]
    assert all(len({ms._locate(i)[0] for i in b}) == 1 for b in batches)
