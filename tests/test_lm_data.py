"""Exact semantics of the LM data path (facebookresearch/XLM `xlm/data/dataset.py`,
`xlm/trainer.py: mask_out`, `xlm/utils.py: concat_batches`, `xlm/evaluation/evaluator.py`): stream layout,
TLM/classification layouts,
masking statistics, evaluation masking, CLM targets, language sampling (the schedule: test_training_schedule.py)."""

import math

import numpy as np
import pytest
import torch

from xlm_fairseq.data.lm_objectives import (
    MaskingConfig,
    clm_mask,
    mask_scores,
    mlm_eval_mask,
    mlm_train_mask,
)
from xlm_fairseq.data.pair_concat_dataset import PairConcatDataset
from xlm_fairseq.data.stream_dataset import StreamDataset
from xlm_fairseq.errors import ConfigError
from xlm_fairseq.steps import LambdaSchedule, parse_langs, parse_steps, sampling_probs

EOS, PAD, MASK = 2, 1, 5


def test_stream_layout_equals_spec_toy_example():
    # corpus `20 21 </s> 22 23 24 </s> 25 </s> 26 27 28 29 </s>`, bptt 4, bs 2
    e = EOS
    corpus = np.array([20, 21, e, 22, 23, 24, e, 25, e, 26, 27, 28, 29, e])
    ds = StreamDataset(corpus, bptt=4, bs=2, eos=e)
    assert len(ds) == 4
    # batch i = items {2i, 2i+1}: column 0 then column 1
    assert ds[0].tolist() == [e, e, e, 20]
    assert ds[2].tolist() == [21, e, 22, 23]
    assert ds[1].tolist() == [e, e, 25, e]
    assert ds[3].tolist() == [26, 27, 28, 29]
    assert sorted(ds.epoch_batches(np.random.RandomState(0), shuffle=True)) == [[0, 1], [2, 3]]
    # evaluation: windows in order, max_sentences at a time
    assert ds.epoch_batches(None, max_sentences=3, shuffle=False) == [[0, 1, 2], [3]]


def test_stream_covers_corpus_in_order_with_bs1():
    corpus = np.arange(20, 20 + 37)
    ds = StreamDataset(corpus, bptt=8, bs=1, eos=EOS)
    flat = torch.cat([ds[i] for i in range(len(ds))]).tolist()
    # one leading </s>, the front padding, then the corpus minus its last token
    pad = ds.pad_front
    assert flat[: 1 + pad] == [EOS] * (1 + pad)
    assert flat[1 + pad :] == corpus[:-1].tolist()


class _Sents:
    def __init__(self, sents):
        self.sents = [torch.tensor(s) for s in sents]
        self.sizes = np.array([len(s) for s in sents])

    def __len__(self):
        return len(self.sents)

    def __getitem__(self, i):
        return self.sents[i]


def test_tlm_layout_resets_positions_and_switches_languages():
    a = _Sents([[10, 11, 12, EOS]])  # s1 = 10 11 12
    b = _Sents([[20, 21, EOS]])
    item = PairConcatDataset(a, b, first_lang=0, second_lang=1, eos=EOS, reset_positions=True)[0]
    assert item["tokens"].tolist() == [EOS, 10, 11, 12, EOS, EOS, 20, 21, EOS]
    assert item["positions"].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert item["langs"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_classification_pair_layout_shares_middle_eos_with_second_language():
    a = _Sents([[10, 11, 12, EOS]])
    b = _Sents([[20, 21, EOS]])
    item = PairConcatDataset(a, b, first_lang=0, second_lang=1, eos=EOS, reset_positions=False)[0]
    assert item["tokens"].tolist() == [EOS, 10, 11, 12, EOS, 20, 21, EOS]
    assert item["positions"].tolist() == list(range(8))
    assert item["langs"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def _masking(**kw):
    return MaskingConfig(**{"mask_index": MASK, "pad_index": PAD, "n_words": 1000, **kw})


def test_mlm_masking_statistics():
    rng = np.random.RandomState(0)
    total = predicted = 0
    kinds = np.zeros(3)
    for _ in range(200):
        x = torch.randint(14, 1000, (8, 64))
        lengths = torch.randint(40, 65, (8,))
        for i, l in enumerate(lengths):
            x[i, l:] = PAD
        x[:, 0] = EOS
        out, pred, target = mlm_train_mask(x, lengths, _masking(), rng)
        assert not pred[:, 0].any(), "the first position is never predicted"
        assert not (pred & (torch.arange(64)[None] >= lengths[:, None])).any(), "padding is never predicted"
        assert torch.equal(target, x[pred])
        total += int(lengths.sum()) - 8
        predicted += int(pred.sum())
        kinds[0] += int((out[pred] == MASK).sum())
        kinds[1] += int((out[pred] == target).sum())
        kinds[2] += int(((out[pred] != MASK) & (out[pred] != target)).sum())
    assert abs(predicted / total - 0.15) < 0.01
    frac = kinds / kinds.sum()
    # random ids can equal the target (1/1000) or the mask id: negligible at this size
    assert abs(frac[0] - 0.8) < 0.01 and abs(frac[1] - 0.1) < 0.01 and abs(frac[2] - 0.1) < 0.01


def test_sample_alpha_predicts_rare_tokens_in_the_right_ratio():
    # token 20 occurs 100x more often than token 21 in the vocabulary counts
    counts = np.zeros(30)
    counts[20], counts[21] = 10000, 100
    scores = mask_scores(counts, PAD, n_special=14, sample_alpha=0.5)
    assert scores[:14].sum() == 0 and scores[22:].sum() == 0
    rng = np.random.RandomState(1)
    n_freq_pred = n_rare_pred = n_freq = n_rare = 0
    for _ in range(300):
        x = torch.where(torch.rand(4, 50) < 0.5, 20, 21)
        x[:, 0] = EOS
        lengths = torch.full((4,), 50)
        _, pred, target = mlm_train_mask(x, lengths, _masking(sample_alpha=0.5, n_words=30), rng, scores)
        n_freq += int((x == 20).sum())
        n_rare += int((x == 21).sum())
        n_freq_pred += int((target == 20).sum())
        n_rare_pred += int((target == 21).sum())
        assert pred.sum() <= math.ceil(0.15 * 200)
    rate_freq, rate_rare = n_freq_pred / n_freq, n_rare_pred / n_rare
    # weights count^-0.5: a rare token is sqrt(100) = 10x more likely to be chosen than a frequent one
    # (sampling without replacement flattens the ratio a little at this density)
    assert 7 < rate_rare / rate_freq < 11


def _time_major_positions(pred):
    """(row, column) of the predicted positions of a batch-first mask, in the original's (slen, bs) order."""
    return [(b, t) for t in range(pred.size(1)) for b in range(pred.size(0)) if pred[b, t]]


def test_fp16_rounding_unmasks_the_first_time_major_positions_on_explicit_batches():
    """`xlm/trainer.py: mask_out` under --fp16: n1 predictions become n2 = max(n1 % 8, 8 * (n1 // 8)) by
    unmasking the first n1 - n2 predicted positions of the time-major (slen, bs) flattening. With word_pred 1
    every position but the first of a row and the padding is predicted, so the batch is explicit."""
    x = torch.arange(100, 118).view(3, 6)
    lengths = torch.tensor([6, 5, 4])  # predicted before rounding: t = 1..5, 1..4, 1..3 = 12 positions
    x[1, 5:] = x[2, 4:] = PAD
    cfg = _masking(word_pred=1.0, round_to_8=True)
    _, plain, _ = mlm_train_mask(x, lengths, _masking(word_pred=1.0), np.random.RandomState(0))
    assert int(plain.sum()) == 12
    out, pred, target = mlm_train_mask(x, lengths, cfg, np.random.RandomState(0))
    # 4 unmasked, time-major: column 1 of rows 0, 1, 2, then column 2 of row 0 (batch-first order would
    # have taken row 0's columns 1-4)
    assert pred.int().tolist() == [[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 0, 0]]
    assert torch.equal(target, x[pred]) and torch.equal(out[~pred], x[~pred])
    # 15 -> 8: the first 7 go; 16 stays; fewer than 8 stay as they are (where the original's assert fails)
    for lens, kept in (([6, 6, 6, 1], 8), ([6, 6, 6, 2], 16), ([3, 4, 2, 2], 7)):
        xs = torch.randint(14, 1000, (4, 6))
        _, before, _ = mlm_train_mask(xs, torch.tensor(lens), _masking(word_pred=1.0), np.random.RandomState(0))
        _, after, _ = mlm_train_mask(xs, torch.tensor(lens), cfg, np.random.RandomState(0))
        order = _time_major_positions(before)
        assert _time_major_positions(after) == order[len(order) - kept :]


def test_fp16_rounding_of_random_masks_drops_exactly_the_first_positions():
    """The same RandomState draws the same positions with and without rounding (the choice comes before the
    rounding); rounding removes the first n1 % 8 of them in time-major order."""
    rounded_some = 0
    for seed in range(20):
        x = torch.randint(14, 1000, (5, 37))
        lengths = torch.tensor([37, 30, 25, 12, 37])
        _, before, _ = mlm_train_mask(x, lengths, _masking(), np.random.RandomState(seed))
        _, after, target = mlm_train_mask(x, lengths, _masking(round_to_8=True), np.random.RandomState(seed))
        order, n1 = _time_major_positions(before), int(before.sum())
        n2 = max(n1 % 8, 8 * (n1 // 8))
        assert _time_major_positions(after) == order[n1 - n2 :] and torch.equal(target, x[after])
        rounded_some += n1 != n2
    assert rounded_some > 10


def test_eval_masking_is_deterministic_and_follows_spec():
    x = torch.randint(14, 1000, (6, 20))
    lengths = torch.tensor([20, 20, 5, 3, 20, 12])
    a = mlm_eval_mask(x, lengths, 0.15, MASK, np.random.RandomState(7))
    b = mlm_eval_mask(x, lengths, 0.15, MASK, np.random.RandomState(7))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    out, pred, target = a
    assert not pred[:, 0].any()
    assert not (pred & (torch.arange(20)[None] >= (lengths[:, None] - 1))).any(), "last token never predicted"
    assert pred.any(dim=1).all(), "at least one prediction per row"
    assert (out[pred] == MASK).all(), "every predicted token is masked"


def test_clm_targets_are_next_tokens_with_context_size():
    x = torch.tensor([[2, 30, 31, 32, 2], [2, 40, 41, 1, 1]])
    lengths = torch.tensor([5, 3])
    pred, target = clm_mask(x, lengths)
    assert pred.tolist() == [[True] * 4 + [False], [True, True, False, False, False]]
    assert target.tolist() == [30, 31, 32, 2, 40, 41]
    pred, target = clm_mask(x, lengths, context_size=2)
    assert target.tolist() == [32, 2]


def test_language_sampling_frequencies_match_power_law():
    counts = {"en": 100000, "fr": 10000, "sw": 1000}
    q = sampling_probs(counts, 0.7)
    p = np.array([100000, 10000, 1000]) / 111000
    expected = p**0.7 / (p**0.7).sum()
    assert np.allclose([q["en"], q["fr"], q["sw"]], expected)
    assert sampling_probs(counts, -1) == {k: 1 / 3 for k in counts}


def test_lambda_schedules():
    s = LambdaSchedule("lambda-ae", "0:1,100:0.1,300:0")
    assert s(0) == 1 and abs(s(50) - 0.55) < 1e-9 and abs(s(200) - 0.05) < 1e-9 and s(300) == 0 and s(10**6) == 0
    assert LambdaSchedule("lambda-mlm", "0.5")(123) == 0.5
    for bad in ("1:1,5:0", "0:1,0:2", "0:a", "x"):
        with pytest.raises(ConfigError, match="--lambda-ae"):
            LambdaSchedule("lambda-ae", bad)


def test_step_strings():
    langs = parse_langs("fr,en")
    assert langs == ["en", "fr"], "language ids follow the sorted order"
    assert parse_steps("mlm-steps", "en,fr,en-fr", langs, (1, 2)) == [("en",), ("fr",), ("en", "fr")]
    with pytest.raises(ConfigError, match="'de'.*not in --langs"):
        parse_steps("mlm-steps", "en,de", langs, (1, 2))
    with pytest.raises(ConfigError, match="malformed"):
        parse_steps("bt-steps", "en-fr", langs, (3,))
    with pytest.raises(ConfigError, match="twice"):
        parse_steps("mlm-steps", "en,en", langs, (1,))
