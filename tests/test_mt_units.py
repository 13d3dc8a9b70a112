"""Exact semantics of the translation pieces: DAE noise (facebookresearch/XLM `xlm/trainer.py: add_noise`),
incremental decoding, greedy generation (`TransformerModel.generate`), initialisation from a pretrained LM
(`xlm/model/__init__.py: build_model`), the MT/AE batches (`xlm/trainer.py: mt_step`), online back-translation
(`xlm/trainer.py: bt_step`) and validation BLEU (`xlm/evaluation/evaluator.py: evaluate_mt`, against sacreBLEU)."""

import numpy as np
import pytest
import torch
from fairseq.data import ListDataset

from xlm_fairseq.data.lm_objective_dataset import batch_rng
from xlm_fairseq.data.noise import NoiseConfig, add_noise, word_blank, word_dropout, word_shuffle
from xlm_fairseq.data.translation_step_dataset import TranslationStepDataset
from xlm_fairseq.dictionary import write_dictionary
from xlm_fairseq.errors import ConfigError
from xlm_fairseq.generation import greedy_generate, greedy_generate_without_cache
from xlm_fairseq.modules.encoder_decoder import XLMDecoder, XLMEncoder
from xlm_fairseq.pretrained import load_side, side_state

from .helpers_cli import USER_DIR
from .helpers_model import toy_dictionary

EOS, PAD, MASK = 2, 1, 5


def batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.full((len(lengths), max(lengths)), PAD)
    for i, l in enumerate(lengths):
        x[i, :l] = torch.randint(100, 1000, (l,), generator=g)
        x[i, 0] = x[i, l - 1] = EOS
    return x, torch.tensor(lengths)


def test_word_shuffle_moves_tokens_less_than_k_and_keeps_delimiters():
    rng = np.random.RandomState(0)
    for _ in range(50):
        x, lengths = batch([12, 7, 3, 20])
        y, l2 = word_shuffle(x, lengths, 3, rng)
        assert torch.equal(l2, lengths)
        for i, l in enumerate(lengths.tolist()):
            assert y[i, 0] == EOS and y[i, l - 1] == EOS
            assert sorted(y[i, :l].tolist()) == sorted(x[i, :l].tolist())
            src = x[i, :l].tolist()
            for new_pos, tok in enumerate(y[i, 1 : l - 1].tolist(), start=1):
                assert abs(src.index(tok) - new_pos) < 3


def test_word_dropout_rate_and_never_empty():
    rng = np.random.RandomState(1)
    kept = total = 0
    for _ in range(200):
        x, lengths = batch([22, 15, 9, 3])
        y, l2 = word_dropout(x, lengths, 0.1, rng, EOS, PAD)
        for i in range(4):
            row = y[i, : l2[i]].tolist()
            assert row[0] == EOS and row[-1] == EOS and len(row) >= 3
            assert set(row[1:-1]) <= set(x[i, 1 : lengths[i] - 1].tolist())
        kept += int((l2 - 2).sum())
        total += int((lengths - 2).sum())
        assert (y[torch.arange(y.size(1))[None] >= l2[:, None]] == PAD).all()
    assert abs(kept / total - 0.9) < 0.02


def test_word_dropout_keeps_one_word_when_all_would_drop():
    x, lengths = batch([6])
    y, l2 = word_dropout(x, lengths, 0.999999, np.random.RandomState(0), EOS, PAD)
    assert l2.tolist() == [3] and y[0, 1].item() in x[0, 1:5].tolist()


def test_word_blank_replaces_words_with_mask_only():
    rng = np.random.RandomState(2)
    blanked = total = 0
    for _ in range(200):
        x, lengths = batch([22, 15, 9])
        y, l2 = word_blank(x, lengths, 0.1, rng, MASK)
        assert torch.equal(l2, lengths)
        changed = y != x
        assert (y[changed] == MASK).all()
        assert not changed[:, 0].any()
        for i, l in enumerate(lengths.tolist()):
            assert not changed[i, l - 1 :].any()
        blanked += int(changed.sum())
        total += int((lengths - 2).sum())
    assert abs(blanked / total - 0.1) < 0.02


def test_noise_is_deterministic_for_a_seed():
    x, lengths = batch([12, 7, 9])
    cfg = NoiseConfig(3, 0.1, 0.1)
    a = add_noise(x, lengths, cfg, np.random.RandomState(5), EOS, PAD, MASK)
    b = add_noise(x, lengths, cfg, np.random.RandomState(5), EOS, PAD, MASK)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def tiny_encdec(n_words=60, seed=0):
    torch.manual_seed(seed)
    d = toy_dictionary(n_words)
    args = dict(emb_dim=32, n_layers=2, n_heads=4, n_langs=2)
    return XLMEncoder(d, **args).eval(), XLMDecoder(d, **args).eval()


class _Model(torch.nn.Module):
    def __init__(self, enc, dec):
        super().__init__()
        self.encoder, self.decoder = enc, dec


def test_incremental_decoding_equals_full_decoding():
    enc, dec = tiny_encdec()
    src, src_len = batch([9, 6], seed=3)
    src = src.clamp(max=59)
    enc_out = enc(src, src_len, src_langs=torch.tensor([0, 0]), tgt_langs=torch.tensor([1, 1]))
    prev = torch.randint(14, 60, (2, 7))
    prev[:, 0] = EOS
    with torch.no_grad():
        full, _ = dec(prev, encoder_out=enc_out)
        state = {}
        steps = [dec(prev[:, : t + 1], encoder_out=enc_out, incremental_state=state)[0][:, -1] for t in range(7)]
    torch.testing.assert_close(torch.stack(steps, dim=1), full, atol=1e-5, rtol=0)


def test_cached_greedy_equals_naive_greedy_when_rows_stop_at_different_steps():
    """Rows that emit `</s>` leave the cached batch (their cache rows dropped, generation.py); the naive loop
    keeps every row. Decoder positions pushed towards `</s>` (more with each step) make rows stop at different
    steps, so the dropping branch runs with caches of several steps and one row still reaches max_len."""
    enc, dec = tiny_encdec(seed=6)
    with torch.no_grad():
        dec.position_embeddings.weight[:20] += 0.22 * torch.arange(20.0)[:, None] * dec.embeddings.weight[EOS]
    model = _Model(enc, dec)
    src, src_len = batch([11, 5, 8, 3, 9, 6], seed=6)
    src = src.clamp(max=59)
    langs = torch.zeros(6, dtype=torch.long)
    a, la = greedy_generate(model, src, src_len, langs, langs + 1, 14)
    b, lb = greedy_generate_without_cache(model, src, src_len, langs, langs + 1, 14)
    # the premise (here [14, 13, 14, 2, 14, 14]): rows stop at two different steps, others run to max_len
    assert len(set(la.tolist())) >= 3 and int(la.max()) == 14
    assert torch.equal(la, lb) and torch.equal(a, b)
    assert (a[:, 0] == EOS).all()
    for i, l in enumerate(la.tolist()):
        assert a[i, l - 1] == EOS and (a[i, 1 : l - 1] != EOS).all() and (a[i, l:] == PAD).all()


def test_decoder_from_lm_fills_only_cross_attention():
    lm_enc, _ = tiny_encdec(seed=7)
    lm_state = {f"encoder.{k}": v for k, v in lm_enc.state_dict().items()}
    _, dec = tiny_encdec(seed=8)
    fresh_cross = {k: v.clone() for k, v in dec.state_dict().items() if k.startswith(("encoder_attn", "layer_norm15"))}
    load_side(
        dec,
        side_state({"model": lm_state}, "decoder", "--reload-decoder", "lm.pt"),
        "decoder",
        "--reload-decoder",
        "lm.pt",
        60,
    )
    for k, v in dec.state_dict().items():
        if k in fresh_cross:
            assert torch.equal(v, fresh_cross[k])
        else:
            assert torch.equal(v, lm_enc.state_dict()[k]), k


def test_reload_errors_name_the_mismatch():
    lm_enc, _ = tiny_encdec(n_words=70, seed=1)
    state = {"model": {f"encoder.{k}": v for k, v in lm_enc.state_dict().items()}}
    enc, _ = tiny_encdec(n_words=60)
    with pytest.raises(ConfigError, match="vocabulary has 70 entries, dict.txt has 60"):
        load_side(
            enc, side_state(state, "encoder", "--reload-encoder", "x.pt"), "encoder", "--reload-encoder", "x.pt", 60
        )
    torch.manual_seed(0)
    three_langs = XLMEncoder(toy_dictionary(60), emb_dim=32, n_layers=2, n_heads=4, n_langs=3)
    state = {"model": {f"encoder.{k}": v for k, v in three_langs.state_dict().items()}}
    with pytest.raises(ConfigError, match="3 language embeddings, this model 2"):
        load_side(
            enc, side_state(state, "encoder", "--reload-encoder", "x.pt"), "encoder", "--reload-encoder", "x.pt", 60
        )
    with pytest.raises(ConfigError, match="no XLM encoder"):
        side_state({"model": {"foo.bar": torch.zeros(1)}}, "encoder", "--reload-encoder", "x.pt")


# ------------------------------------------------------------------- translation batches (TranslationStepDataset)
def _sentences(rows):
    """Binarised sentences as fairseq stores them: `w1 .. wn </s>`."""
    return ListDataset([torch.tensor(r + [EOS]) for r in rows], np.array([len(r) + 1 for r in rows]))


def test_mt_collater_teacher_forcing_on_explicit_tokens():
    """`xlm/trainer.py: mt_step`: the encoder reads `</s> x </s>` in the source language; the decoder reads
    `</s> y1..ym` in the target language and predicts `y1..ym </s>`."""
    src, tgt = _sentences([[10, 11, 12], [13]]), _sentences([[20, 21], [22, 23, 24, 25]])
    ds = TranslationStepDataset(src, tgt, src_lang=1, tgt_lang=0, eos=EOS, pad=PAD, kind="mt", step="fr-en_mt")
    batch = ds.collater([ds[0], ds[1]])
    net = batch["net_input"]
    assert net["src_tokens"].tolist() == [[EOS, 10, 11, 12, EOS], [EOS, 13, EOS, PAD, PAD]]
    assert net["src_lengths"].tolist() == [5, 3]
    assert net["src_langs"].tolist() == [1, 1] and net["tgt_langs"].tolist() == [0, 0]
    assert net["prev_output_tokens"].tolist() == [[EOS, 20, 21, PAD, PAD], [EOS, 22, 23, 24, 25]]
    assert batch["target"].tolist() == [[20, 21, EOS, PAD, PAD], [22, 23, 24, 25, EOS]]
    assert batch["ntokens"] == 8 and batch["nsentences"] == 2 and batch["step"] == "fr-en_mt"


def test_ae_collater_pairs_the_noisy_source_with_the_clean_target():
    """`xlm/trainer.py: mt_step(lang, lang)` for AE: x1 = add_noise(x), x2 = x, both in the same language.
    The noise is the one add_noise draws from the batch's RandomState (the same for every worker)."""
    rows = [[10, 11, 12, 13, 14, 15, 16], [20, 21, 22, 23, 24], [30, 31, 32, 33, 34, 35]]
    noise = NoiseConfig(3, 0.3, 0.3)
    ds = TranslationStepDataset(
        _sentences(rows), None, 1, 1, eos=EOS, pad=PAD, kind="ae", step="fr_ae", noise=noise, mask_index=MASK, seed=7
    )
    ds.set_epoch(2)
    batch = ds.collater([ds[i] for i in range(3)])
    net = batch["net_input"]
    clean = torch.tensor([[EOS, *r, EOS] + [PAD] * (7 - len(r)) for r in rows])
    lengths = torch.tensor([len(r) + 2 for r in rows])
    noisy, noisy_lengths = add_noise(clean, lengths, noise, batch_rng(7, 2, "fr_ae", 0, 3), EOS, PAD, MASK)
    assert torch.equal(net["src_tokens"], noisy) and torch.equal(net["src_lengths"], noisy_lengths)
    assert not torch.equal(noisy[:, : clean.size(1)], clean)  # the premise: the noise changed the source
    assert batch["target"].tolist() == [r + [EOS] + [PAD] * (7 - len(r)) for r in rows]
    assert net["prev_output_tokens"].tolist() == [[EOS, *r] + [PAD] * (7 - len(r)) for r in rows]
    assert net["src_langs"].tolist() == net["tgt_langs"].tolist() == [1, 1, 1]


# ---------------------------------------------------------------------------------- the task, built by fairseq
BLEU_WORDS = (
    "le un ch@@ at dort sur lit . l' homme a dit : c' est ça ! mange une grosse pomme il fait beau aujourd' hui , "
    "non ? the cat sleeps on bed man said it is"
).split()


@pytest.fixture(scope="module")
def mt_task(tmp_path_factory):
    """xlm_unsupervised_mt as fairseq-train builds it (fairseq's parser and config), over a dict.txt of
    BLEU_WORDS (enough to decode by hand), with dropout so that eval mode matters."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    data = tmp_path_factory.mktemp("mt-task")
    write_dictionary([(w, 1) for w in BLEU_WORDS], str(data / "dict.txt"))
    args = [
        str(data),
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_unsupervised_mt",
        "--langs",
        "en,fr",
        "--mt-steps",
        "en-fr",
        "--bt-steps",
        "fr-en-fr",
        "--eval-bleu",
        "--arch",
        "xlm_tiny",
        "--dropout",
        "0.3",
        "--attention-dropout",
        "0.3",
        "--criterion",
        "xlm_mt_loss",
        "--cpu",
    ]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
    task = tasks.setup_task(cfg.task)
    return task, cfg


def test_back_translation_swaps_source_target_and_languages(mt_task):
    """`xlm/trainer.py: bt_step(fr, en, fr)`: the current model, in eval mode and without gradient, translates
    the fr batch greedily into en with max_len = int(1.3 * max(len1) + 5); the generated en sentence becomes the
    source (language ids en) and the original fr sentence the target (language ids fr); the model is back in
    train mode afterwards."""
    task, cfg = mt_task
    fr, en = task.lang2id["fr"], task.lang2id["en"]
    torch.manual_seed(4)
    model = task.build_model(cfg.model)
    with torch.no_grad():  # a decoder that never says `</s>`: every row runs to the length limit
        model.decoder.pred_layer.proj.bias[EOS] = -1e4
    mono = TranslationStepDataset(
        _sentences([[20, 21, 22], [30]]), None, fr, en, eos=EOS, pad=PAD, kind="bt", step="fr-en-fr_bt"
    )
    sample = dict(mono.collater([mono[0], mono[1]]), iteration=0)
    x1 = [[EOS, 20, 21, 22, EOS], [EOS, 30, EOS, PAD, PAD]]
    assert sample["net_input"]["src_tokens"].tolist() == x1 and sample["bt_langs"] == (fr, en)

    class DDP(torch.nn.Module):  # back_translate unwraps .module as with fairseq's distributed wrappers
        def __init__(self, module):
            super().__init__()
            self.module = module

    wrapped = DDP(model).train()
    out = task.back_translate(sample, wrapped)
    assert model.training and wrapped.training

    max_len = int(1.3 * 5 + 5)  # 11
    model.eval()
    args = (torch.tensor(x1), torch.tensor([5, 3]), torch.full((2,), fr))
    x2, len2 = greedy_generate(model, *args, torch.full((2,), en), max_len)
    assert x2.shape == (2, 11) and len2.tolist() == [11, 11] and (x2[:, -1] == EOS).all()
    # the premise: train mode (dropout) and the wrong target language would each give another translation
    model.train()
    assert not torch.equal(greedy_generate(model, *args, torch.full((2,), en), max_len)[0], x2)
    model.eval()
    assert not torch.equal(greedy_generate(model, *args, torch.full((2,), fr), max_len)[0], x2)

    net = out["net_input"]
    assert torch.equal(net["src_tokens"], x2) and net["src_lengths"].tolist() == [11, 11]
    assert net["src_langs"].tolist() == [en, en] and net["tgt_langs"].tolist() == [fr, fr]
    assert net["prev_output_tokens"].tolist() == [[EOS, 20, 21, 22], [EOS, 30, PAD, PAD]]
    assert out["target"].tolist() == [[20, 21, 22, EOS], [30, EOS, PAD, PAD]]
    assert out["ntokens"] == 6 and out["nsentences"] == 2 and out["step"] == "fr-en-fr_bt"
    assert "bt" not in out and out["iteration"] == 0


def _sacrebleu_expected():
    """The references and hypotheses of test_validation_bleu as text: BPE removed by hand, the reference's
    out-of-vocabulary word as `<<unk>>` (XLM's references), the hypothesis's as `<unk>` (never a match)."""
    refs = [
        "le chat dort sur le lit .",
        "l' homme a dit : c' est ça !",
        "le <<unk>> mange une grosse pomme .",
        "il fait beau aujourd' hui , non ?",
    ]
    hyps = [
        "le chat dort sur le lit .",
        "l' homme dit : c' est ça !",
        "le <unk> mange une grosse pomme .",
        "il fait beau ?",
    ]
    return hyps, refs


def test_validation_bleu_equals_sacrebleu_on_the_same_hypotheses(mt_task, monkeypatch):
    """valid_step -> decode_batch -> summed n-gram statistics -> reduce_metrics: `en-fr_mt_bleu` is sacreBLEU
    with tokenize='none' on the tokenised, BPE-removed text (multi-bleu.perl's number, as the paper), and
    `en-fr_mt_sacrebleu` is sacreBLEU (13a) on the text detokenised by Moses for the target language; both
    over the whole valid set (two batches here), not a mean of per-batch scores."""
    import sacrebleu
    from fairseq.logging import metrics
    from sacremoses import MosesDetokenizer

    import xlm_fairseq.tasks.xlm_unsupervised_mt as unmt

    task, cfg = mt_task
    d = task.dictionary
    refs_bpe = [
        "le ch@@ at dort sur le lit .",
        "l' homme a dit : c' est ça !",
        "le chien mange une grosse pomme .",  # chien is not in dict.txt
        "il fait beau aujourd' hui , non ?",
    ]
    hyps_bpe = [refs_bpe[0], "l' homme dit : c' est ça !", refs_bpe[2], "il fait beau ?"]
    encode = lambda s: d.encode_line(s, add_if_not_exist=False, append_eos=False).long().tolist()  # noqa: E731
    assert d.unk() in encode(refs_bpe[2])
    src = _sentences([encode("the cat sleeps on bed .")] * 4)
    ds = TranslationStepDataset(src, _sentences([encode(r) for r in refs_bpe]), 0, 1, EOS, PAD, "eval", "en-fr_mt")

    generated = []

    def fake_generate(model, src_tokens, src_lengths, src_langs, tgt_langs, max_len):
        assert max_len == int(1.5 * int(src_lengths.max()) + 10)
        assert (src_langs == 0).all() and (tgt_langs == 1).all()
        rows = [[EOS, *encode(h), EOS] for h in generated.pop(0)]
        out = torch.full((len(rows), max(map(len, rows)) + 2), PAD)  # padding past the end of the longest row
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out, torch.tensor([len(r) for r in rows])

    monkeypatch.setattr(unmt, "greedy_generate", fake_generate)
    torch.manual_seed(0)
    model = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)
    with metrics.aggregate(new_root=True) as agg:  # fairseq's validate(): one reduction per valid batch
        for rows in ([0, 1], [2, 3]):
            generated.append([hyps_bpe[i] for i in rows])
            log = task.valid_step(ds.collater([ds[i] for i in rows]), model, criterion)[2]
            task.reduce_metrics([log], criterion)
        values = agg.get_smoothed_values()

    hyps, refs = _sacrebleu_expected()
    tok = sacrebleu.corpus_bleu(hyps, [refs], tokenize="none", smooth_method="none").score
    detok = MosesDetokenizer(lang="fr").detokenize
    sacre = sacrebleu.corpus_bleu([detok(h.split()) for h in hyps], [[detok(r.split()) for r in refs]]).score
    assert values["en-fr_mt_bleu"] == round(tok, 2)
    assert values["en-fr_mt_sacrebleu"] == round(sacre, 2)
    # the premises: the two kinds differ, and a mean of the two batches' scores would differ from the corpus's
    assert abs(tok - sacre) > 1
    per_batch = [sacrebleu.corpus_bleu(hyps[i : i + 2], [refs[i : i + 2]], tokenize="none").score for i in (0, 2)]
    assert abs(sum(per_batch) / 2 - tok) > 1
    # an `<unk>` in the hypothesis never matches the reference's OOV word
    assert tok < sacrebleu.corpus_bleu(hyps, [[r.replace("<<unk>>", "<unk>") for r in refs]], tokenize="none").score
