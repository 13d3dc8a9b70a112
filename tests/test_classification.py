"""Cross-lingual classification (paper §4.1, facebookresearch/XLM `xlm/evaluation/xnli.py`): the input layout,
truncation, labels, --finetune-layers
and the head's lr in process; then the real pipeline on tiny real text (tests/fixtures/cls: topic sentences in
en/fr/de labelled food/sport/weather, in the DDTP builder's `{split}.cls.{lang}` naming): xlm-preprocess prepare
-> MLM pretraining -> xlm_preprocess.classification_data -> fine-tuning on English with --finetune-from-model,
validated and tested on de/en/fr every epoch; XNLI's file formats and sentence pairs; one-line errors."""

import argparse
import os
import re
import shutil
import types

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary

from xlm_fairseq.data.classification_dataset import ClassificationDataset, ClassificationPart, kept_words
from xlm_fairseq.errors import ConfigError, DataError
from xlm_fairseq.tasks.xlm_classification import (
    XLMClassificationTask,
    freeze,
    head_lr_groups,
    head_parameters_in_optimizer,
    load_label_dict,
    parse_finetune_layers,
    read_labels,
)

from .helpers_cli import (
    USER_DIR,
    assert_same_gradients,
    cli,
    load_model_state,
    python_module,
    train_two_ranks,
    user_error,
)
from .helpers_device import ReadBacks, assert_same_step, train_step, valid_step

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANGS = ("de", "en", "fr")
SPLITS = {"train": (0, 30), "valid": (30, 36), "test": (36, 42)}
EOS, PAD = 2, 1


class _Sents:
    """Binarised sentences as fairseq gives them: `w1 .. wn </s>`."""

    def __init__(self, sents):
        self.items = [torch.tensor(s + [EOS]) for s in sents]
        self.sizes = np.array([len(s) + 1 for s in sents])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _labels(n):
    return np.arange(n) % 3


# ------------------------------------------------------------------------------------------- layout
def test_pair_layout_positions_run_on_and_every_token_has_the_examples_language():
    first, second = _Sents([[10, 11, 12], [13]]), _Sents([[20, 21], [22, 23, 24]])
    ds = ClassificationDataset([ClassificationPart(2, first, second, np.array([1, 0]))], EOS, PAD)
    item = ds[0]
    assert item["tokens"].tolist() == [EOS, 10, 11, 12, EOS, 20, 21, EOS]  # 3 delimiters, the middle one shared
    assert item["positions"].tolist() == list(range(8))
    assert item["langs"].tolist() == [2] * 8
    batch = ds.collater([ds[0], ds[1]])
    net = batch["net_input"]
    assert net["src_tokens"].tolist() == [[EOS, 10, 11, 12, EOS, 20, 21, EOS], [EOS, 13, EOS, 22, 23, 24, EOS, PAD]]
    assert net["src_lengths"].tolist() == [8, 7] and batch["target"].tolist() == [1, 0]
    assert (net["langs"] == 2).all() and net["positions"][1, :7].tolist() == list(range(7))
    assert ds.sizes.tolist() == [8, 7]


def test_single_sentences_of_several_languages_keep_their_own_language():
    en, fr = _Sents([[10, 11], [12]]), _Sents([[30, 31, 32]])
    ds = ClassificationDataset(
        [ClassificationPart(1, en, None, _labels(2)), ClassificationPart(2, fr, None, np.array([2]))], EOS, PAD
    )
    assert [ds[i]["tokens"].tolist() for i in range(3)] == [[EOS, 10, 11, EOS], [EOS, 12, EOS], [EOS, 30, 31, 32, EOS]]
    assert [set(ds[i]["langs"].tolist()) for i in range(3)] == [{1}, {1}, {2}]
    assert ds.collater([ds[0], ds[2]])["lang"].tolist() == [1, 2]


def test_training_truncation_per_sentence_and_the_position_table_cap():
    long_a, long_b = list(range(100, 110)), list(range(200, 207))  # 10 and 7 words
    part = ClassificationPart(0, _Sents([long_a]), _Sents([long_b]), np.array([0]))
    train = ClassificationDataset([part], EOS, PAD, max_len=5, train=True)
    # each sentence `</s> w.. </s>` keeps 5 tokens, delimiters included: 3 words, the last kept token is </s>
    assert train[0]["tokens"].tolist() == [EOS, 100, 101, 102, EOS, 200, 201, 202, EOS]
    evaluation = ClassificationDataset([part], EOS, PAD)
    assert evaluation[0]["tokens"].tolist() == [EOS] + long_a + [EOS] + long_b + [EOS]  # eval is not truncated
    capped = ClassificationDataset([part], EOS, PAD, max_positions=12)  # 9 words fit: the longer side is cut
    assert capped[0]["tokens"].tolist() == [EOS] + long_a[:4] + [EOS] + long_b[:5] + [EOS]
    capped.set_max_positions(16)
    assert capped[0]["tokens"].tolist() == [EOS] + long_a[:6] + [EOS] + long_b + [EOS]
    assert all(len(ds[0]["tokens"]) == ds.sizes[0] for ds in (train, evaluation, capped))
    for room, n1, n2 in [(r, a, b) for r in range(0, 12) for a in range(14) for b in range(14)]:
        x, y = n1, n2  # reference: drop a word from the longer side (ties: the first) until the pair fits
        while x + y > room:
            x, y = (x - 1, y) if x >= y else (x, y - 1)
        k1, k2 = kept_words(np.array([n1]), np.array([n2]), None, room + 3)
        assert (k1[0], k2[0]) == (x, y)
    single = ClassificationDataset(
        [ClassificationPart(0, _Sents([long_a]), None, np.array([0]))], EOS, PAD, max_len=4, train=True
    )
    assert single[0]["tokens"].tolist() == [EOS, 100, 101, EOS] and single.n_truncated == 1


def test_training_order_drops_empty_examples_and_changes_every_epoch():
    sents = _Sents([[10 + i] if i != 3 else [] for i in range(20)])
    ds = ClassificationDataset([ClassificationPart(0, sents, None, _labels(20))], EOS, PAD, train=True, seed=3)
    orders = []
    for epoch in (1, 2):
        ds.set_epoch(epoch)
        orders.append(ds.ordered_indices().tolist())
    assert sorted(orders[0]) == sorted(orders[1]) == [i for i in range(20) if i != 3]
    assert orders[0] != orders[1] and not ds.can_reuse_epoch_itr_across_epochs
    # --epoch-size: consecutive epochs walk through an endless stream of permutations, each a full pass
    ds.epoch_size = 7
    seen = []
    for epoch in (1, 2, 3, 4, 5, 6):
        ds.set_epoch(epoch)
        seen += ds.ordered_indices().tolist()
    assert len(seen) == 42 and sorted(seen[:19]) == sorted(seen[19:38]) == sorted(orders[0])
    assert seen[:19] != seen[19:38]  # each pass is a new permutation
    evaluation = ClassificationDataset([ClassificationPart(0, sents, None, _labels(20))], EOS, PAD)
    assert len(evaluation.ordered_indices()) == 20  # evaluation keeps every example


# ------------------------------------------------------------------------------------------- labels
def test_label_dictionary_and_unseen_labels(tmp_path):
    (tmp_path / "label_dict.txt").write_text("contradiction 0\nneutral 1\nentailment 2\n")
    labels = load_label_dict(str(tmp_path / "label_dict.txt"))
    assert labels == ["contradiction", "neutral", "entailment"]
    label2id = {l: i for i, l in enumerate(labels)}
    (tmp_path / "valid.label.fr").write_text("neutral\nentailment\ncontradictory\n")
    with pytest.raises(DataError, match=r"valid\.label\.fr:3: label 'contradictory' never occurs in training"):
        read_labels(str(tmp_path / "valid.label.fr"), label2id, "valid")
    (tmp_path / "valid.label.fr").write_text("neutral\nentailment\n")
    assert read_labels(str(tmp_path / "valid.label.fr"), label2id, "valid").tolist() == [1, 2]
    (tmp_path / "bad.txt").write_text("a 0\nb 2\n")
    with pytest.raises(DataError, match="ids 0..K-1"):
        load_label_dict(str(tmp_path / "bad.txt"))
    with pytest.raises(DataError, match="xlm-preprocess classification"):
        load_label_dict(str(tmp_path / "missing.txt"))


# ------------------------------------------------------------------------- fine-tuned layers, head lr
def _tiny_model():
    from xlm_fairseq.models.xlm_transformer import XLMTransformerConfig, XLMTransformerModel
    from xlm_fairseq.modules.encoder_decoder import XLMEncoder

    d = Dictionary()
    for i in range(20):
        d.add_symbol(f"w{i}")
    cfg = XLMTransformerConfig(emb_dim=16, n_layers=2, n_heads=2, n_langs=3)
    model = XLMTransformerModel(cfg, XLMEncoder(d, emb_dim=16, n_layers=2, n_heads=2, n_langs=3))
    model.register_classification_head("head", 3)
    return model


def test_finetune_layers_parsing_and_freezing():
    assert parse_finetune_layers("0:_1", 12) == list(range(13))
    assert parse_finetune_layers("1:1", 2) == [1] and parse_finetune_layers("_1:_1", 2) == [2]
    assert parse_finetune_layers("_2:-1", 6) == [5, 6] and parse_finetune_layers("0:0", 6) == [0]
    for bad in ("2:1", "0:3", "x", "1", "0:_0", "a:b"):
        with pytest.raises(ConfigError, match="--finetune-layers"):
            parse_finetune_layers(bad, 2)
    model = _tiny_model()
    freeze(model, [2])
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {
        n
        for n, _ in model.named_parameters()
        if ".attentions.1." in n
        or ".layer_norm1.1." in n
        or ".ffns.1." in n
        or ".layer_norm2.1." in n
        or n.startswith("classification_heads.")
    }
    model = _tiny_model()
    freeze(model, [0, 1, 2])
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"encoder.pred_layer.proj.bias"}  # never trained, as the original
    assert model.encoder.embeddings.weight.requires_grad and model.encoder.lang_embeddings.weight.requires_grad


def test_head_lr_multiplier_scales_only_the_heads_update_and_keeps_one_param_group():
    from fairseq.optim.sgd import SGD

    model = _tiny_model()
    freeze(model, [2])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = SGD(argparse.Namespace(lr=[0.1], momentum=0.0, weight_decay=0.0), params)
    for p in params:
        p.grad = torch.ones_like(p)
    task = types.SimpleNamespace(head_lr_multiplier=5.0, head_name="head")
    XLMClassificationTask.optimizer_step(task, opt, model, 0)
    for n, p in model.named_parameters():
        delta = p.detach() - before[n]
        expected = -0.5 if n.startswith("classification_heads.") else -0.1 if p.requires_grad else 0.0
        assert torch.allclose(delta, torch.full_like(delta, expected), atol=1e-6), n
    assert (
        len(opt.param_groups) == 1
        and opt.param_groups[0]["lr"] == 0.1
        and len(opt.param_groups[0]["params"]) == len(params)
    )
    # a group holding only head parameters gets the scaled lr for the step only
    groups = [{"params": list(model.classification_heads.parameters()), "lr": 1.0}]
    with head_lr_groups(groups, {id(p) for p in model.classification_heads.parameters()}, 3.0):
        assert [g["lr"] for g in groups] == [3.0]
    assert [g["lr"] for g in groups] == [1.0]
    flat = types.SimpleNamespace(fp32_params=torch.zeros(10), fp16_params=[])
    with pytest.raises(ConfigError, match="fp16-no-flatten-grads"):
        head_parameters_in_optimizer(flat, params)


def test_head_lr_multiplier_with_fp16_copies_of_the_parameters():
    """--fp16 --fp16-no-flatten-grads: the optimizer steps fp32 copies; the head's copies get the scaled lr."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.optim.fp16_optimizer import FP16Optimizer

    args = options.parse_args_and_arch(
        options.get_training_parser(),
        [
            "/nonexistent",
            "--user-dir",
            USER_DIR,
            "--task",
            "xlm_classification",
            "--arch",
            "xlm_tiny",
            "--langs",
            "en,fr",
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--cpu",
            "--fp16",
            "--fp16-no-flatten-grads",
        ],
    )
    model = _tiny_model().half()
    freeze(model, [2])
    before = {n: p.detach().float().clone() for n, p in model.named_parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = FP16Optimizer.build_optimizer(convert_namespace_to_omegaconf(args), params)
    opt.backward(sum(p.float().sum() for p in params))  # every gradient is the same (1 x loss scale)
    XLMClassificationTask.optimizer_step(types.SimpleNamespace(head_lr_multiplier=5.0, head_name="head"), opt, model, 0)
    step = {n: (p.detach().float() - before[n]).mean().item() for n, p in model.named_parameters()}
    encoder = step["encoder.ffns.1.lin1.weight"]
    assert encoder < 0 and step["classification_heads.head.proj.weight"] == pytest.approx(5 * encoder, rel=1e-3)
    assert step["encoder.embeddings.weight"] == 0 and len(opt.param_groups) == 1


# ---------------------------------------------------------------------------------------- pipeline
def _topics(lang):
    with open(os.path.join(FIXTURES, "cls", f"topics.{lang}.tsv"), encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def _write(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """LM data-bin and BPE codes from the en/fr/de text, an MLM pretrained for a few updates, and the labelled
    topic sentences binarised with that dictionary (DDTP naming: --input-name cls)."""
    from xlm_preprocess.prepare import prepare

    root = tmp_path_factory.mktemp("cls")
    raw, labelled = root / "raw", root / "labelled"
    raw.mkdir()
    labelled.mkdir()
    for lang in LANGS:
        rows = _topics(lang)
        with open(os.path.join(FIXTURES, "text", f"train.{lang}"), encoding="utf-8") as f:
            extra = [l.strip() for l in f if l.strip()]
        _write(raw / f"train.{lang}", [s for _, s in rows] + extra)
        shutil.copy(os.path.join(FIXTURES, "text", f"valid.{lang}"), raw / f"valid.{lang}")
        for split, (a, b) in SPLITS.items():
            _write(labelled / f"{split}.cls.{lang}", [s for _, s in rows[a:b]])
            _write(labelled / f"{split}.cls.{lang}.label", [l for l, _ in rows[a:b]])
    lm_bin = root / "lm-bin"
    prepare(str(raw), str(lm_bin), list(LANGS), codes=300)
    cli(
        "fairseq-train",
        lm_bin,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_cross_lingual_lm",
        "--langs",
        "de,en,fr",
        "--mlm-steps",
        "de,en,fr",
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_lm_loss",
        "--tokens-per-sample",
        32,
        "--batch-size",
        4,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--max-update",
        10,
        "--epoch-size",
        200,
        "--save-dir",
        root / "lm",
        "--num-workers",
        0,
        "--seed",
        1,
        "--no-progress-bar",
        "--cpu",
        "--no-epoch-checkpoints",
        "--disable-validation",
    )
    cbin = root / "cls-bin"
    proc = python_module(
        "xlm_preprocess.classification_data",
        "--input-dir",
        labelled,
        "--destdir",
        cbin,
        "--codes-file",
        lm_bin / "work" / "codes",
        "--dict",
        lm_bin / "dict.txt",
        "--input-name",
        "cls",
        cwd=ROOT,
    )
    assert "train.en: 30 examples; food 10, sport 10, weather 10" in proc.stdout
    return types.SimpleNamespace(
        root=root, lm_bin=lm_bin, lm=root / "lm" / "checkpoint_last.pt", cbin=cbin, labelled=labelled
    )


def _ft_args(p, save, *extra, epochs=8, data=None, langs="de,en,fr"):
    return [
        data or p.cbin,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_classification",
        "--langs",
        langs,
        "--train-langs",
        "en",
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_classification_loss",
        "--finetune-from-model",
        p.lm,
        "--batch-size",
        8,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--max-epoch",
        epochs,
        "--valid-subset",
        "valid,test",
        "--best-checkpoint-metric",
        "acc",
        "--maximize-best-checkpoint-metric",
        "--save-dir",
        save,
        "--log-format",
        "simple",
        "--log-interval",
        100,
        "--num-workers",
        0,
        "--seed",
        1,
        "--no-progress-bar",
        "--cpu",
        "--no-epoch-checkpoints",
        *extra,
    ]


def _rows(log, kind):
    """Metrics of every `train` (end of epoch) or `valid on '<subset>'` line."""
    rows = []
    for line in log.splitlines():
        if (kind == "train" and "| train | epoch" in line) or f"valid on '{kind}' subset" in line:
            rows.append(
                {
                    m.group(1): float(m.group(2))
                    for f in line.split("|")
                    for m in [re.match(r"\s*(\S+) (-?[\d.]+|nan)\s*$", f)]
                    if m
                }
            )
    return rows


def test_zero_shot_fine_tuning_logs_every_languages_accuracy(pipeline, tmp_path):
    proc = cli("fairseq-train", *_ft_args(pipeline, tmp_path / "ft", "--head-lr-multiplier", 2))
    log = proc.stdout + proc.stderr
    assert "fine-tuning embeddings, layer 1, layer 2 and the head" in log and "head lr = 2 x lr" in log
    valid, test, train = _rows(log, "valid"), _rows(log, "test"), _rows(log, "train")
    assert len(valid) == len(test) == len(train) == 8  # evaluated every epoch
    for row in valid + test:
        assert {"loss", "de_acc", "en_acc", "fr_acc", "acc"} <= row.keys()
        assert row["acc"] == pytest.approx((row["de_acc"] + row["en_acc"] + row["fr_acc"]) / 3, abs=0.01)
    assert "en_acc" in train[-1] and "fr_acc" not in train[-1]  # trained on English only
    assert train[-1]["en_acc"] >= 80 and train[-1]["loss"] < 0.7 * train[0]["loss"]  # it learns English
    assert valid[-1]["best_acc"] == max(r["acc"] for r in valid)
    best, lm = load_model_state(tmp_path / "ft" / "checkpoint_best.pt"), load_model_state(pipeline.lm)
    assert best["classification_heads.sentence_classification_head.proj.weight"].shape == (3, 64)
    assert not torch.equal(best["encoder.embeddings.weight"], lm["encoder.embeddings.weight"])
    assert torch.equal(best["encoder.pred_layer.proj.bias"], lm["encoder.pred_layer.proj.bias"])


def test_finetune_layers_freeze_the_rest_through_the_cli(pipeline, tmp_path):
    proc = cli(
        "fairseq-train",
        *_ft_args(
            pipeline,
            tmp_path / "ft",
            "--finetune-layers",
            "2:_1",
            "--head-lr",
            "1e-2",
            "--disable-validation",
            epochs=1,
        ),
    )
    log = proc.stdout + proc.stderr
    assert "fine-tuning layer 2 and the head" in log and "head lr = 10 x lr" in log
    last, lm = load_model_state(tmp_path / "ft" / "checkpoint_last.pt"), load_model_state(pipeline.lm)
    for key in lm:
        if key.startswith("encoder.") and ".1." not in key:  # embeddings and layer 1 (index 0)
            assert torch.equal(last[key], lm[key]), key
    assert not torch.equal(last["encoder.ffns.1.lin1.weight"], lm["encoder.ffns.1.lin1.weight"])


def test_two_processes_equal_one_with_update_freq_2_and_log_the_same_keys(pipeline, tmp_path):
    """translate-train on en+fr, the head at 3x the lr; each rank's batches hold different languages. The two
    runs take the same gradients at the same scale, compared through SGD (update = -lr * gradient)."""
    lr = 0.1
    extra = ["--train-langs", "en,fr", "--head-lr-multiplier", 3, "--max-update", 3]
    extra += ["--optimizer", "sgd", "--lr", lr, "--log-interval", 1]
    log = train_two_ranks(_ft_args(pipeline, tmp_path / "dist", *extra, epochs=1))
    for kind in ("valid", "test"):
        assert {"de_acc", "en_acc", "fr_acc", "acc"} <= _rows(log, kind)[-1].keys()
    assert {"en_acc", "fr_acc"} <= _rows(log, "train")[-1].keys()
    single = cli(
        "fairseq-train",
        *_ft_args(pipeline, tmp_path / "single", *extra, "--update-freq", 2, "--disable-validation", epochs=1),
    )
    assert_same_gradients(
        log,
        single.stdout + single.stderr,
        load_model_state(tmp_path / "dist" / "checkpoint_last.pt"),
        load_model_state(tmp_path / "single" / "checkpoint_last.pt"),
        lr,
    )


def test_translate_train_and_eval_langs_in_process(pipeline):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    def task_for(*extra, data=None):
        args = [str(a) for a in _ft_args(pipeline, "/nonexistent", *extra, data=data)]
        return tasks.setup_task(
            convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args)).task
        )

    task = task_for("--train-langs", "de,fr")
    task.load_dataset("train")
    ds = task.datasets["train"]
    assert len(ds) == 60 and sorted(set(ds.lang_ids.tolist())) == [task.lang2id["de"], task.lang2id["fr"]]
    broken = pipeline.root / "no-test-de"
    shutil.copytree(pipeline.cbin, broken)
    for ext in ("bin", "idx"):
        os.remove(broken / f"test.s1.de.{ext}")
    with pytest.raises(DataError, match=r"no test data for language 'de'.*--eval-langs en,fr"):
        task_for(data=broken).load_dataset("test")
    task = task_for("--eval-langs", "en,fr", data=broken)
    task.load_dataset("test")
    assert sorted(set(task.datasets["test"].lang_ids.tolist())) == [task.lang2id["en"], task.lang2id["fr"]]


def _error(args):
    return user_error(cli("fairseq-train", *args, check=False))


def test_bad_inputs_give_one_line_errors(pipeline, tmp_path):
    # a valid label never seen in training
    bad = tmp_path / "bad-label"
    shutil.copytree(pipeline.cbin, bad)
    lines = (bad / "valid.label.fr").read_text().splitlines()
    lines[2] = "music"
    (bad / "valid.label.fr").write_text("\n".join(lines) + "\n")
    msg = _error(_ft_args(pipeline, tmp_path / "a", data=bad, epochs=1))
    assert "valid.label.fr:3" in msg and "'music'" in msg
    # a language of --langs that the pretrained model lacks
    msg = _error(_ft_args(pipeline, tmp_path / "b", "--eval-langs", "en", langs="en,it", epochs=1))
    assert "de,en,fr" in msg and "lack it" in msg and "--init-new-langs" in msg


def test_finetuning_takes_language_rows_by_name(pipeline, tmp_path):
    """--langs en,fr from a de,en,fr MLM: en and fr get the pretrained en and fr rows (not de's and en's), through
    --finetune-from-model; --init-new-langs gives a language the model lacks a fresh row."""
    cli(
        "fairseq-train",
        *_ft_args(pipeline, tmp_path / "a", "--eval-langs", "en,fr", "--lr", 0, langs="en,fr", epochs=1),
    )
    pretrained = load_model_state(pipeline.lm)["encoder.lang_embeddings.weight"]
    tuned = load_model_state(tmp_path / "a" / "checkpoint_last.pt")["encoder.lang_embeddings.weight"]
    assert torch.equal(tuned, pretrained[1:3])  # de=0, en=1, fr=2 in the pretrained model
    cli(
        "fairseq-train",
        *_ft_args(
            pipeline, tmp_path / "b", "--eval-langs", "en", "--lr", 0, "--init-new-langs", langs="en,it", epochs=1
        ),
    )
    tuned = load_model_state(tmp_path / "b" / "checkpoint_last.pt")["encoder.lang_embeddings.weight"]
    assert torch.equal(tuned[0], pretrained[1]) and not any(torch.equal(tuned[1], r) for r in pretrained)


def test_pretrained_checkpoints_are_checked_before_fairseq_loads_them(pipeline, tmp_path):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    def build(checkpoint, *extra):
        args = [str(a) for a in _ft_args(pipeline, tmp_path / "x", *extra)]
        args[args.index("--finetune-from-model") + 1] = str(checkpoint)
        cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
        return tasks.setup_task(cfg.task).build_model(cfg.model)

    with pytest.raises(ConfigError, match=r"it was trained with --arch xlm_tiny \(emb_dim 64, n_layers 2"):
        build(pipeline.lm, "--arch", "xlm_small")
    with pytest.raises(ConfigError, match="--fp16-no-flatten-grads"):
        build(pipeline.lm, "--fp16", "--head-lr-multiplier", 2)

    state = torch.load(pipeline.lm)
    torch.save(
        dict(state, model={k.replace("encoder.", "enc."): v for k, v in state["model"].items()}),
        tmp_path / "no-encoder.pt",
    )
    with pytest.raises(ConfigError, match="no XLM encoder"):
        build(tmp_path / "no-encoder.pt")
    state["cfg"]["task"]["langs"] = None  # a config that does not name the languages: only the rows tell
    state["cfg"]["model"]["emb_langs"] = ""
    state["model"]["encoder.lang_embeddings.weight"] = state["model"]["encoder.lang_embeddings.weight"][:2]
    torch.save(state, tmp_path / "two-langs.pt")
    with pytest.raises(ConfigError, match="has 2 language embeddings, --langs gives 3 languages"):
        build(tmp_path / "two-langs.pt")
    with pytest.raises(ConfigError, match="no such file"):
        build(tmp_path / "missing.pt")
    model = build(pipeline.lm)  # the real one passes; the head is registered, the pred bias frozen
    assert "sentence_classification_head" in model.classification_heads
    assert not model.encoder.pred_layer.proj.bias.requires_grad


# -------------------------------------------------------------------------------- XNLI and pairs
XNLI_HEADER = (
    "language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tpromptID\tpairID\tgenre"
)
NLI = ("contradiction", "neutral", "entailment")


def _xnli_files(folder):
    """XNLI-1.0 dev/test and XNLI-MT-1.0 train files in the real formats, made of topic sentence pairs (the
    second sentence from the same topic: entailment, the next topic: contradiction, two after: neutral)."""
    (folder / "XNLI-1.0").mkdir()
    (folder / "XNLI-MT-1.0" / "multinli").mkdir(parents=True)
    rows = {lang: _topics(lang) for lang in LANGS}
    for name, (a, b) in (("xnli.dev.tsv", (30, 36)), ("xnli.test.tsv", (36, 42))):
        lines = [XNLI_HEADER]
        for lang in LANGS + ("es",):
            src = rows.get(lang, rows["en"])
            for i in range(a, b):
                label = NLI[i % 3]
                lines.append(
                    f"{lang}\t{label}\t( x )\t( y )\t(ROOT x)\t(ROOT y)\t{src[i][1]}\t{src[(i + 3) % 42][1]}"
                    f"\t{i}\t{i}n\tfiction"
                )
        _write(folder / "XNLI-1.0" / name, lines)
    train = ["premise\thypo\tlabel"] + [
        f"{rows['en'][i][1]}\t{rows['en'][(i + 4) % 42][1]}\t{'contradictory' if i % 3 == 0 else NLI[i % 3]}"
        for i in range(30)
    ]
    _write(folder / "XNLI-MT-1.0" / "multinli" / "multinli.train.en.tsv", train)


def test_xnli_formats_to_sentence_pair_classification(pipeline, tmp_path):
    from xlm_preprocess import classification_data
    from xlm_preprocess.common import PreprocessError

    _xnli_files(tmp_path)
    raw = tmp_path / "xnli-raw"
    python_module(
        "xlm_preprocess.xnli",
        "--xnli-dir",
        tmp_path / "XNLI-1.0",
        "--mt-dir",
        tmp_path / "XNLI-MT-1.0",
        "--out",
        raw,
        "--langs",
        "de,en,fr",
        cwd=ROOT,
    )
    assert sorted(os.listdir(raw)) == sorted(
        ["label_dict.txt"]
        + [f"{s}.{k}.{l}" for s in ("valid", "test") for k in ("s1", "s2", "label") for l in LANGS]
        + [f"train.{k}.en" for k in ("s1", "s2", "label")]
    )
    assert (raw / "label_dict.txt").read_text() == "contradiction 0\nneutral 1\nentailment 2\n"
    assert (raw / "train.label.en").read_text().splitlines()[:3] == ["contradiction", "neutral", "entailment"]
    assert (raw / "valid.s1.fr").read_text().splitlines()[0] == _topics("fr")[30][1]
    assert (raw / "valid.s2.de").read_text().splitlines()[0] == _topics("de")[33][1]
    # missing columns: one line naming the file
    (tmp_path / "XNLI-1.0" / "xnli.dev.tsv").write_text("lang\tlabel\n")
    proc = python_module(
        "xlm_preprocess.xnli",
        "--xnli-dir",
        tmp_path / "XNLI-1.0",
        "--out",
        tmp_path / "x",
        "--train-langs",
        "",
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert "xnli.dev.tsv: the header has no column" in user_error(proc, prefix="error: ")

    parser = argparse.ArgumentParser()
    classification_data.add_arguments(parser)
    cbin = tmp_path / "xnli-bin"
    base = [
        "--input-dir",
        str(raw),
        "--destdir",
        str(cbin),
        "--codes-file",
        str(pipeline.lm_bin / "work" / "codes"),
        "--dict",
        str(pipeline.lm_bin / "dict.txt"),
    ]
    bad = raw / "valid.label.de"
    good = bad.read_text()
    bad.write_text(good.replace("neutral", "unsure", 1))
    with pytest.raises(PreprocessError, match=r"valid\.label\.de:\d+: label 'unsure' never occurs in the training"):
        classification_data.main(parser.parse_args(base))
    bad.write_text(good)
    assert (
        classification_data.main(parser.parse_args(base + ["--no-tokenize", "train", "--lowercase-strip-accents"])) == 0
    )
    assert (cbin / "label_dict.txt").read_text() == "contradiction 0\nneutral 1\nentailment 2\n"
    assert all((cbin / f"{s}.s2.{l}.bin").exists() for s in ("valid", "test") for l in LANGS)

    proc = cli("fairseq-train", *_ft_args(pipeline, tmp_path / "ft", "--max-update", 2, data=cbin, epochs=1))
    log = proc.stdout + proc.stderr
    assert "sentence pairs" in log
    for kind in ("valid", "test"):
        assert {"de_acc", "en_acc", "fr_acc", "acc"} <= _rows(log, kind)[-1].keys()


def test_a_fine_tuning_step_reads_nothing_back_and_names_its_devices(pipeline):
    """A training and a validation step of classification: no read-back from the device (the per-language counts
    come from the collater, the sums stay tensors until a line is logged; tests/test_host_sync.py says why), and the
    same loss, logging output and gradients with torch's default device on `meta`."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = [str(a) for a in _ft_args(pipeline, "/nonexistent", "--train-langs", "en,fr", "--dropout", "0.1")]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
    task = tasks.setup_task(cfg.task)
    model, criterion = task.build_model(cfg.model), task.build_criterion(cfg.criterion)
    task.load_dataset("train")
    task.load_dataset("valid")
    batches = {}
    for split in ("train", "valid"):
        itr = task.get_batch_iterator(task.dataset(split), max_sentences=8, epoch=1).next_epoch_itr(shuffle=False)
        batches[split] = next(b for b in itr if len(b["lang_counts"]) > 1 and b["net_input"]["src_tokens"].eq(1).any())
    for split, step in (("train", train_step), ("valid", valid_step)):
        with ReadBacks() as r:
            log = step(task, model, criterion, batches[split])[-1]
        assert r.found == [], f"{split}: the host waits for the device at {r.where()}"
        lang = batches[split]["lang"]
        for name, i in task.lang2id.items():
            assert log[f"_{name}_n"] == int((lang == i).sum())
        assert_same_step(step, task, model, criterion, batches[split])


def test_a_mid_epoch_checkpoint_resumes_at_its_batch_on_another_number_of_processes(pipeline):
    """Classification batches by fairseq's own path: 2 processes that took 2 batches each (batches 0-3 of the
    epoch) go on, on one process, at batch 4, as the pretraining tasks' batches do (test_distributed_launch.py);
    fairseq's plain iterator would read the count as its own and train batches 2-3 twice."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = [str(a) for a in _ft_args(pipeline, "/nonexistent", "--train-langs", "en,fr")]
    task = tasks.setup_task(
        convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args)).task
    )
    task.load_dataset("train")

    def iterator(num_shards, shard_id=0):
        return task.get_batch_iterator(
            task.dataset("train"),
            max_sentences=4,
            num_shards=num_shards,
            shard_id=shard_id,
            seed=2,
            epoch=1,
            disable_iterator_cache=True,
        )

    def ids(batches):
        return [b["id"].tolist() for b in batches]

    whole = ids(iterator(1).next_epoch_itr(shuffle=True))
    two = iterator(2)
    epoch = two.next_epoch_itr(shuffle=True)
    assert ids([next(epoch), next(epoch)]) == [whole[0], whole[2]]
    one = iterator(1)
    one.load_state_dict(two.state_dict())
    assert ids(one.next_epoch_itr(shuffle=True)) == whole[4:]
