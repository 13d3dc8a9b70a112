"""xlm-convert: original XLM checkpoints -> our fairseq checkpoints <-> transformers, checked against an
independent re-implementation of the original model (tests/reference_xlm.py) on the same words:
encoder logits on a TLM-layout batch, decoder logits with teacher forcing, greedy translations of
fairseq-generate; bit-exact round trips; the converted files in real fairseq-train / fairseq-generate
runs; one-line errors that leave --out untouched."""

import datetime
import os

import numpy as np
import pytest
import torch
from fairseq.data import Dictionary

from xlm_fairseq.convert.cli import main as convert_main
from xlm_fairseq.convert.vocab import XLM_HEAD, XLMVocab

from . import reference_xlm as ref
from .helpers_cli import USER_DIR, cli, lm_train_args, load_model_state, python_module
from .helpers_data import make_data_bin
from .helpers_model import hf_xlm, original_state_dict

TOY_WORDS = [f"tok{i}" for i in range(26)]  # + 14 specials = 40 words


# ------------------------------------------------------------------------------------------------ builders
def randomise_(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "layer_norm" in name or name.endswith(".bias"):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return module


def reference_decoder(n_words, dim, n_layers, n_heads, n_langs, use_lang_emb=True, seed=7):
    """A random original decoder whose cross-attention and FFN weights are scaled up, so that its greedy
    output depends on the source and the prefix (at init scale, tied embeddings make it repeat a token)."""
    torch.manual_seed(seed)
    params = ref.make_params(n_words, dim, n_layers, n_heads, n_langs, use_lang_emb)
    model = randomise_(ref.TransformerModel(params, is_encoder=False), seed).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("encoder_attn.", "ffns.")) and name.endswith(".weight"):
                p.mul_(3.0)
    return model


def reference_from(sd, n_layers, n_heads, n_langs, use_lang_emb, is_encoder):
    n_words, dim = sd["embeddings.weight"].shape
    params = ref.make_params(n_words, dim, n_layers, n_heads, n_langs, use_lang_emb)
    model = ref.TransformerModel(params, is_encoder=is_encoder)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def save_original(
    path,
    sides,
    words,
    langs,
    n_heads,
    use_lang_emb=True,
    counts=None,
    module_prefix=False,
    params_extra=None,
    legacy=False,
):
    """An original-layout .pth: state dict(s), a params dict with a numpy array and a FloatTensor (as the
    real files), and the dico_* dictionaries."""
    id2word = dict(enumerate(XLM_HEAD + list(words)))
    counts = counts or {w: 1000 - i for i, w in enumerate(words)}
    n_words = len(id2word)
    params = {
        "emb_dim": sides["encoder"]["embeddings.weight"].shape[1],
        "n_heads": n_heads,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "gelu_activation": True,
        "share_inout_emb": True,
        "sinusoidal_embeddings": False,
        "use_lang_emb": use_lang_emb,
        "asm": False,
        "n_langs": len(langs),
        "id2lang": dict(enumerate(langs)),
        "lang2id": {l: i for i, l in enumerate(langs)},
        "n_words": n_words,
        "max_vocab": -1,
        "min_count": 0,
        "encoder_only": "decoder" not in sides,
        "mask_scores": np.maximum(np.arange(n_words), 1.0) ** -0.5,
        "pred_probs": torch.FloatTensor([0.8, 0.1, 0.1]),
        "lgs": "-".join(langs),
    }
    params.update(params_extra or {})
    prefix = "module." if module_prefix else ""
    ckpt = {
        "epoch": 3,
        "n_total_iter": 1000,
        "best_metrics": {"valid_mlm_ppl": 12.5},
        "params": params,
        "dico_id2word": id2word,
        "dico_word2id": {w: i for i, w in id2word.items()},
        "dico_counts": {w: (0 if i < 14 else counts[w]) for i, w in id2word.items()},
    }
    if "decoder" in sides:
        ckpt["encoder"] = {prefix + k: v for k, v in sides["encoder"].items()}
        ckpt["decoder"] = {prefix + k: v for k, v in sides["decoder"].items()}
    else:
        ckpt["model"] = {prefix + k: v for k, v in sides["encoder"].items()}
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    return ckpt


def write_vocab(path, words, counts=None, extra_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for i, w in enumerate(words):
            f.write(f"{w} {counts[w] if counts else 1000 - i}\n")
        f.writelines(extra_lines)


def convert(*args):
    """The xlm-convert entry point in this process; returns its exit status."""
    try:
        convert_main([str(a) for a in args])
    except SystemExit as e:
        return e.code
    return 0


def load_converted(path):
    from fairseq import checkpoint_utils

    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(path)])
    return models[0].eval(), task


def xlm_to_ours(dictionary, words=TOY_WORDS):
    """Index: our id of each XLM id, through the words (the specials have the same spelling)."""
    ids = torch.tensor([dictionary.index(w) for w in XLM_HEAD + list(words)])
    assert len(set(ids.tolist())) == len(ids) and dictionary.unk() not in ids[4:].tolist()
    return ids


def tlm_batch(n_words, len1=(5, 7, 4), len2=(6, 3, 8), seed=1):
    """XLM ids, batch-first: `</s> a </s></s> b </s>` with positions restarting at b and langs 0 -> 1."""
    g = torch.Generator().manual_seed(seed)
    bs, slen = len(len1), max(a + b for a, b in zip(len1, len2))
    tokens = torch.full((bs, slen), 2, dtype=torch.long)
    positions = torch.zeros(bs, slen, dtype=torch.long)
    langs = torch.ones(bs, slen, dtype=torch.long)
    for i, (a, b) in enumerate(zip(len1, len2)):
        tokens[i, : a + b] = torch.randint(14, n_words, (a + b,), generator=g)
        tokens[i, [0, a - 1, a, a + b - 1]] = 1
        positions[i, :a] = torch.arange(a)
        positions[i, a:] = torch.arange(slen - a)
        langs[i, :a] = 0
    return tokens, torch.tensor([a + b for a, b in zip(len1, len2)]), positions, langs


def reference_mlm_scores(model, tokens, lengths, positions, langs):
    """The original's fwd + predict at every real position (time-major order)."""
    with torch.no_grad():
        h = model.fwd(x=tokens.t(), lengths=lengths, causal=False, positions=positions.t(), langs=langs.t())
        pred_mask = torch.arange(tokens.size(1))[:, None] < lengths[None, :]
        scores, _ = model.predict(h, pred_mask, torch.zeros(int(pred_mask.sum()), dtype=torch.long), True)
    return scores, pred_mask


def our_mlm_scores(model, dictionary, tokens, lengths, positions, langs):
    m = xlm_to_ours(dictionary)
    with torch.no_grad():
        logits = model(src_tokens=m[tokens], src_lengths=lengths, langs=langs, positions=positions)
    pred_mask = torch.arange(tokens.size(1))[:, None] < lengths[None, :]
    return logits.transpose(0, 1)[pred_mask][:, m]  # time-major order, columns in XLM's numbering


# -------------------------------------------------------------------------------------- original -> ours
@pytest.fixture(scope="module")
def two_lang(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_lang")
    hf = hf_xlm(n_words=40, dim=32, n_layers=2, n_heads=4, n_langs=2, seed=11)
    sd = original_state_dict(hf)
    save_original(root / "mlm_enfr.pth", {"encoder": sd}, TOY_WORDS, ["en", "fr"], n_heads=4, module_prefix=True)
    write_vocab(root / "vocab_enfr", TOY_WORDS, extra_lines=["bad\u2028line 5\n", "three fields 4\n", "tok3 3\n"])
    (root / "codes_enfr").write_text("t o 10\nto k</w> 9\n", encoding="utf-8")
    assert (
        convert(
            "from-original",
            root / "mlm_enfr.pth",
            "--vocab",
            root / "vocab_enfr",
            "--codes",
            root / "codes_enfr",
            "--out",
            root / "out",
        )
        == 0
    )
    return root, hf, sd


def test_reference_reimplementation_agrees_with_transformers(two_lang):
    _, hf, sd = two_lang
    model = reference_from(sd, 2, 4, 2, True, is_encoder=True)
    tokens, lengths, positions, langs = tlm_batch(40)
    scores, pred_mask = reference_mlm_scores(model, tokens, lengths, positions, langs)
    with torch.no_grad():
        hf_logits = hf(input_ids=tokens, lengths=lengths, position_ids=positions, langs=langs).logits
    torch.testing.assert_close(scores, hf_logits.transpose(0, 1)[pred_mask], atol=1e-5, rtol=0)


def test_two_language_model_gives_the_original_logits_on_a_tlm_batch(two_lang):
    root, _, sd = two_lang
    model, task = load_converted(root / "out" / "model.pt")
    d = task.source_dictionary
    assert [d[i] for i in range(14, len(d))] == TOY_WORDS and len(d) == 40  # skipped: U+2028, 3 fields, repeat
    assert (root / "out" / "codes").read_text() == (root / "codes_enfr").read_text()
    assert model.cfg.n_langs == 2 and not model.cfg.no_lang_emb and not hasattr(model, "decoder")
    tokens, lengths, positions, langs = tlm_batch(40)
    expected, _ = reference_mlm_scores(reference_from(sd, 2, 4, 2, True, True), tokens, lengths, positions, langs)
    got = our_mlm_scores(model, d, tokens, lengths, positions, langs)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # the rows really moved: our pad row is XLM's pad row
    ours = load_model_state(root / "out" / "model.pt")
    assert torch.equal(ours["encoder.embeddings.weight"][1], sd["embeddings.weight"][2])
    assert torch.equal(ours["encoder.pred_layer.proj.bias"][2], sd["pred_layer.proj.bias"][1])


def test_language_rows_follow_the_original_language_order(two_lang, tmp_path):
    """--langs names the original's ids (here row 0 = fr); our ids are the sorted order (en = 0)."""
    root, _, sd = two_lang
    assert (
        convert(
            "from-original",
            root / "mlm_enfr.pth",
            "--vocab",
            root / "vocab_enfr",
            "--langs",
            "fr,en",
            "--out",
            tmp_path / "swapped",
        )
        == 0
    )
    model, task = load_converted(tmp_path / "swapped" / "model.pt")
    tokens, lengths, positions, langs = tlm_batch(40, seed=4)
    expected, _ = reference_mlm_scores(reference_from(sd, 2, 4, 2, True, True), tokens, lengths, positions, langs)
    got = our_mlm_scores(model, task.source_dictionary, tokens, lengths, positions, 1 - langs)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_model_without_language_embeddings(tmp_path, capsys):
    """XLM-17/100 style: no lang_embeddings -> our --no-lang-emb; --max-vocab cuts the file as XLM does."""
    hf = hf_xlm(n_words=40, dim=32, n_layers=2, n_heads=4, n_langs=3, use_lang_emb=False, seed=12)
    sd = original_state_dict(hf)
    assert "lang_embeddings.weight" not in sd
    save_original(
        tmp_path / "mlm_17.pth", {"encoder": sd}, TOY_WORDS, ["en", "fr", "de"], n_heads=4, use_lang_emb=False
    )
    write_vocab(tmp_path / "vocab_17", TOY_WORDS + [f"rare{i}" for i in range(30)])
    assert (
        convert(
            "from-original",
            tmp_path / "mlm_17.pth",
            "--vocab",
            tmp_path / "vocab_17",
            "--max-vocab",
            40,
            "--out",
            tmp_path / "out",
        )
        == 0
    )
    summary = capsys.readouterr().out
    assert "--no-lang-emb" in summary and "--langs de,en,fr" in summary and "original order en,fr,de" in summary
    model, task = load_converted(tmp_path / "out" / "model.pt")
    assert model.cfg.no_lang_emb and model.cfg.n_langs == 3 and len(task.source_dictionary) == 40
    tokens, lengths, positions, langs = tlm_batch(40, seed=2)
    expected, _ = reference_mlm_scores(reference_from(sd, 2, 4, 3, False, True), tokens, lengths, positions, langs)
    got = our_mlm_scores(model, task.source_dictionary, tokens, lengths, positions, langs)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_monolingual_model(tmp_path, capsys):
    """XLM_en style: one language, so no language embeddings and no --no-lang-emb either."""
    from transformers import XLMWithLMHeadModel

    hf = hf_xlm(n_words=40, dim=32, n_layers=1, n_heads=2, n_langs=1, seed=13)
    sd = original_state_dict(hf)
    save_original(tmp_path / "mlm_en.pth", {"encoder": sd}, TOY_WORDS, ["en"], n_heads=2)
    assert convert("from-original", tmp_path / "mlm_en.pth", "--out", tmp_path / "out") == 0
    assert "one language" in capsys.readouterr().out
    model, task = load_converted(tmp_path / "out" / "model.pt")
    assert model.cfg.n_langs == 1 and not model.cfg.no_lang_emb and task.langs == ["en"]
    tokens, lengths, positions, _ = tlm_batch(40, seed=8)
    langs = torch.zeros_like(tokens)
    expected, _ = reference_mlm_scores(reference_from(sd, 1, 2, 1, True, True), tokens, lengths, positions, langs)
    torch.testing.assert_close(
        our_mlm_scores(model, task.source_dictionary, tokens, lengths, positions, langs), expected, atol=1e-5, rtol=0
    )
    assert convert("to-transformers", tmp_path / "out" / "model.pt", "--out", tmp_path / "hf") == 0
    with torch.no_grad():
        kw = dict(input_ids=tokens, lengths=lengths, position_ids=positions)
        assert torch.equal(
            XLMWithLMHeadModel.from_pretrained(str(tmp_path / "hf")).eval()(**kw).logits, hf(**kw).logits
        )


@pytest.fixture(scope="module")
def enc_dec(tmp_path_factory):
    root = tmp_path_factory.mktemp("enc_dec")
    enc = original_state_dict(hf_xlm(n_words=40, dim=32, n_layers=2, n_heads=4, n_langs=2, seed=21))
    dec = reference_decoder(40, 32, 2, 4, 2, seed=22).state_dict()
    save_original(root / "mt_enfr.pth", {"encoder": enc, "decoder": dec}, TOY_WORDS, ["en", "fr"], n_heads=4)
    # no --vocab: dict.txt comes from the checkpoint's dico_id2word / dico_counts
    assert convert("from-original", root / "mt_enfr.pth", "--out", root / "out") == 0
    return root, enc, dec


def test_encoder_decoder_logits_match_the_original_with_teacher_forcing(enc_dec):
    root, enc_sd, dec_sd = enc_dec
    model, task = load_converted(root / "out" / "model.pt")
    d = task.source_dictionary
    assert model.is_encoder_decoder and [d[i] for i in range(14, len(d))] == TOY_WORDS
    assert d.count[14] == 1000  # counts from dico_counts
    r_enc = reference_from(enc_sd, 2, 4, 2, True, is_encoder=True)
    r_dec = reference_from(dec_sd, 2, 4, 2, True, is_encoder=False)
    g = torch.Generator().manual_seed(3)
    len1, len2 = torch.tensor([7, 4, 6]), torch.tensor([5, 8, 3])
    x1 = torch.full((3, 7), 2, dtype=torch.long)
    x2 = torch.full((3, 8), 2, dtype=torch.long)
    for i in range(3):
        x1[i, : len1[i]] = torch.randint(14, 40, (int(len1[i]),), generator=g)
        x2[i, : len2[i]] = torch.randint(14, 40, (int(len2[i]),), generator=g)
        x1[i, [0, len1[i] - 1]] = 1
        x2[i, [0, len2[i] - 1]] = 1
    src_lang, tgt_lang = 0, 1
    with torch.no_grad():
        enc = r_enc.fwd(x=x1.t(), lengths=len1, causal=False, langs=torch.full_like(x1.t(), src_lang))
        dec = r_dec.fwd(
            x=x2.t(),
            lengths=len2,
            causal=True,
            src_enc=enc.transpose(0, 1),
            src_len=len1,
            langs=torch.full_like(x2.t(), tgt_lang),
        )
        pred_mask = torch.arange(8)[:, None] < len2[None, :]
        expected, _ = r_dec.predict(dec, pred_mask, torch.zeros(int(pred_mask.sum()), dtype=torch.long), True)
        m = xlm_to_ours(d)
        logits = model(
            src_tokens=m[x1],
            src_lengths=len1,
            src_langs=torch.full((3,), src_lang),
            tgt_langs=torch.full((3,), tgt_lang),
            prev_output_tokens=m[x2],
        )
    torch.testing.assert_close(logits.transpose(0, 1)[pred_mask][:, m], expected, atol=1e-5, rtol=0)
    # the encoder side (with its own LM head) too
    tokens, lengths, positions, langs = tlm_batch(40, seed=5)
    expected, _ = reference_mlm_scores(r_enc, tokens, lengths, positions, langs)
    m = xlm_to_ours(d)
    with torch.no_grad():
        h = model.encoder.fwd(
            m[tokens],
            padding_mask=torch.arange(tokens.size(1))[None] >= lengths[:, None],
            positions=positions,
            langs=langs,
        )
        got = model.encoder.predict(h).transpose(0, 1)[torch.arange(tokens.size(1))[:, None] < lengths[None]][:, m]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------------- transformers
def test_transformers_round_trip_is_bit_exact_and_gives_the_original_logits(two_lang, tmp_path, capsys):
    from transformers import XLMTokenizer, XLMWithLMHeadModel

    root, hf, _ = two_lang
    assert convert("to-transformers", root / "out" / "model.pt", "--out", tmp_path / "hf") == 0
    assert "XLMWithLMHeadModel" in capsys.readouterr().out
    exported = XLMWithLMHeadModel.from_pretrained(str(tmp_path / "hf")).eval()
    tokens, lengths, positions, langs = tlm_batch(40, seed=9)
    with torch.no_grad():
        kw = dict(input_ids=tokens, lengths=lengths, position_ids=positions, langs=langs)
        assert torch.equal(exported(**kw).logits, hf(**kw).logits)  # XLM numbering, same weights
    assert exported.config.id2lang == {0: "en", 1: "fr"} or exported.config.id2lang == {"0": "en", "1": "fr"}
    tok = XLMTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert tok.convert_tokens_to_ids(["tok3</w>", "</s>", "<pad>", "<special1>"]) == [17, 1, 2, 5]
    assert tok.bpe_ranks[("t", "o")] == 0 and not tok.do_lowercase_and_remove_accent

    assert convert("from-transformers", tmp_path / "hf", "--out", tmp_path / "back") == 0
    a = load_model_state(root / "out" / "model.pt")
    b = load_model_state(tmp_path / "back" / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "back" / "dict.txt").read_text() == (root / "out" / "dict.txt").read_text()
    assert (tmp_path / "back" / "codes").read_text() == (root / "codes_enfr").read_text()
    ca, cb = torch.load(root / "out" / "model.pt")["cfg"], torch.load(tmp_path / "back" / "model.pt")["cfg"]
    assert ca["model"] == cb["model"]


def test_from_transformers_rebuilds_the_dictionary_from_vocab_json(two_lang, tmp_path):
    root, _, _ = two_lang
    assert convert("to-transformers", root / "out" / "model.pt", "--out", tmp_path / "hf") == 0
    os.remove(tmp_path / "hf" / "dict.txt")
    os.remove(tmp_path / "hf" / "codes")
    assert convert("from-transformers", tmp_path / "hf", "--out", tmp_path / "back") == 0
    d = Dictionary.load(str(tmp_path / "back" / "dict.txt"))
    assert [d[i] for i in range(len(d))] == [Dictionary.load(str(root / "out" / "dict.txt"))[i] for i in range(len(d))]
    assert not (tmp_path / "back" / "codes").exists()  # from merges.txt: fastBPE's counts are gone
    assert (tmp_path / "back" / "codes.subword-nmt").read_text() == "#version: 0.2\nt o\nto k</w>\n"
    a, b = load_model_state(root / "out" / "model.pt"), load_model_state(tmp_path / "back" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fastbpe_codes_segment_alike_in_subword_nmt_and_xlmtokenizer(two_lang, tmp_path):
    """fastBPE codes (`a b count`) -> DIR/codes.subword-nmt for xlm-preprocess apply-bpe, and merges.txt for
    XLMTokenizer: both segment every word of real text the same way."""
    import io

    from subword_nmt.apply_bpe import BPE
    from subword_nmt.learn_bpe import learn_bpe
    from transformers import XLMTokenizer

    from .helpers_data import read_fixture

    root, _, _ = two_lang
    text = read_fixture("en") + read_fixture("fr")
    learned = io.StringIO()
    learn_bpe(io.StringIO("\n".join(text) + "\n"), learned, 120)
    merges = [l for l in learned.getvalue().splitlines() if l and not l.startswith("#")]
    assert any(m.endswith("</w>") for m in merges)
    (tmp_path / "codes_fast").write_text("".join(f"{m} {500 - i}\n" for i, m in enumerate(merges)), encoding="utf-8")
    assert (
        convert(
            "from-original",
            root / "mlm_enfr.pth",
            "--vocab",
            root / "vocab_enfr",
            "--codes",
            tmp_path / "codes_fast",
            "--out",
            tmp_path / "out",
        )
        == 0
    )
    assert convert("to-transformers", tmp_path / "out" / "model.pt", "--out", tmp_path / "hf") == 0
    with open(tmp_path / "out" / "codes.subword-nmt", encoding="utf-8") as f:
        bpe = BPE(f, separator="@@")
    tok = XLMTokenizer.from_pretrained(str(tmp_path / "hf"))
    for line in text:
        ours = bpe.segment_tokens(line.split())
        theirs = [piece for word in line.split() for piece in tok.bpe(word).split(" ")]  # its BPE step
        assert " ".join(ours) == " ".join(t[:-4] if t.endswith("</w>") else t + "@@" for t in theirs), line
    assert sum("@@" in w for w in bpe.segment_tokens(" ".join(text).split())) > 20  # words really get split


def test_encoder_decoder_exports_its_encoder_to_transformers(enc_dec, tmp_path, capsys):
    from transformers import XLMWithLMHeadModel

    root, enc_sd, _ = enc_dec
    assert convert("to-transformers", root / "out" / "model.pt", "--out", tmp_path / "hf") == 0
    assert "only the encoder" in capsys.readouterr().out
    exported = XLMWithLMHeadModel.from_pretrained(str(tmp_path / "hf")).eval()
    tokens, lengths, positions, langs = tlm_batch(40, seed=6)
    expected, pred_mask = reference_mlm_scores(
        reference_from(enc_sd, 2, 4, 2, True, True), tokens, lengths, positions, langs
    )
    with torch.no_grad():
        logits = exported(input_ids=tokens, lengths=lengths, position_ids=positions, langs=langs).logits
    torch.testing.assert_close(logits.transpose(0, 1)[pred_mask], expected, atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------ loading, vocab
def test_legacy_numpy1_pickle_loads_weights_only_and_foreign_objects_are_refused(tmp_path, capsys):
    """The released files are torch<1.6 (non-zip) pickles written by numpy 1.x (`numpy.core.multiarray`)."""
    sd = original_state_dict(hf_xlm(n_words=40, dim=16, n_layers=1, n_heads=2, seed=3))
    save_original(tmp_path / "legacy.pth", {"encoder": sd}, TOY_WORDS, ["en", "fr"], n_heads=2, legacy=True)
    data = (tmp_path / "legacy.pth").read_bytes()
    assert b"numpy._core.multiarray\n" in data
    (tmp_path / "legacy.pth").write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert convert("from-original", tmp_path / "legacy.pth", "--out", tmp_path / "ok") == 0
    a = load_model_state(tmp_path / "ok" / "model.pt")
    assert torch.equal(a["encoder.attentions.0.q_lin.weight"], sd["attentions.0.q_lin.weight"])

    save_original(
        tmp_path / "foreign.pth",
        {"encoder": sd},
        TOY_WORDS,
        ["en", "fr"],
        n_heads=2,
        params_extra={"started": datetime.date(2019, 1, 22)},
    )
    capsys.readouterr()
    assert convert("from-original", tmp_path / "foreign.pth", "--out", tmp_path / "no") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "datetime.date" in err[0] and "--trust-checkpoint" in err[0]
    assert not (tmp_path / "no").exists()
    assert convert("from-original", tmp_path / "foreign.pth", "--trust-checkpoint", "--out", tmp_path / "no") == 0


def test_vocab_file_is_read_as_xlm_reads_it(tmp_path):
    lines = ["a 9\n", "b\u2028c 8\n", "d 7 extra\n", "<unk> 6\n", "a 5\n", "e 4\n", "\n", "f 3\n", "g 2\n"]
    (tmp_path / "v").write_text("".join(lines), encoding="utf-8")
    v = XLMVocab.read(str(tmp_path / "v"))
    assert v.words == [("a", 9), ("e", 4), ("f", 3), ("g", 2)] and v.skipped == 5 and len(v) == 18
    v.max_vocab(16)
    assert [w for w, _ in v.words] == ["a", "e"] and len(v) == 16
    v.write_dict_txt(str(tmp_path / "dict.txt"))
    d = Dictionary.load(str(tmp_path / "dict.txt"))
    assert [d[i] for i in range(len(d))] == ["<s>", "<pad>", "</s>", "<unk>"] + XLM_HEAD[4:] + ["a", "e"]
    (tmp_path / "w").write_text("a 9\nb x\n", encoding="utf-8")
    with pytest.raises(Exception, match="line 2: count 'x'"):
        XLMVocab.read(str(tmp_path / "w"))


def test_missing_n_heads_needs_the_flag(tmp_path, capsys):
    sd = original_state_dict(hf_xlm(n_words=40, dim=16, n_layers=1, n_heads=2, seed=4))
    ckpt = save_original(tmp_path / "m.pth", {"encoder": sd}, TOY_WORDS, ["en", "fr"], n_heads=2)
    del ckpt["params"]["n_heads"], ckpt["params"]["gelu_activation"]
    torch.save(ckpt, tmp_path / "m.pth")
    assert convert("from-original", tmp_path / "m.pth", "--out", tmp_path / "o") == 2
    assert "--n-heads" in capsys.readouterr().err
    assert convert("from-original", tmp_path / "m.pth", "--n-heads", 2, "--out", tmp_path / "o") == 0
    assert "assumed true" in capsys.readouterr().out
    assert torch.load(tmp_path / "o" / "model.pt")["cfg"]["model"]["n_heads"] == 2


# ------------------------------------------------------------------------------------------------ bad input
def _one_error(capsys, *args):
    capsys.readouterr()
    assert convert(*args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_bad_inputs_give_one_line_errors_and_write_nothing(two_lang, tmp_path, capsys):
    root, _, _ = two_lang
    out = tmp_path / "out"
    write_vocab(tmp_path / "vocab_big", TOY_WORDS + ["more1", "more2", "more3"])
    msg = _one_error(capsys, "from-original", root / "mlm_enfr.pth", "--vocab", tmp_path / "vocab_big", "--out", out)
    assert "expected 40" in msg and "found 43" in msg and "--max-vocab 40" in msg
    write_vocab(tmp_path / "vocab_other", [w + "x" for w in TOY_WORDS])
    msg = _one_error(capsys, "from-original", root / "mlm_enfr.pth", "--vocab", tmp_path / "vocab_other", "--out", out)
    assert "id 14" in msg and "tok0x" in msg
    data = (root / "mlm_enfr.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _one_error(capsys, "from-original", tmp_path / "cut.pth", "--out", out)
    torch.save({"weights": [torch.zeros(2)], "epoch": 1}, tmp_path / "other.pth")
    assert "not an XLM checkpoint" in _one_error(capsys, "from-original", tmp_path / "other.pth", "--out", out)
    torch.save(
        {"dico": {}, "positions": np.zeros((2, 2), dtype=np.int64), "sentences": np.ones(4, dtype=np.uint16)},
        tmp_path / "train.en.pth",
    )
    assert "binarised data" in _one_error(capsys, "from-original", tmp_path / "train.en.pth", "--out", out)
    assert "fairseq checkpoint" in _one_error(capsys, "from-original", root / "out" / "model.pt", "--out", out)
    assert "original XLM" in _one_error(capsys, "to-transformers", root / "mlm_enfr.pth", "--out", out)
    from safetensors.torch import save_file
    from transformers import BertConfig

    BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2).save_pretrained(
        str(tmp_path / "bert")
    )
    save_file(
        {"bert.embeddings.word_embeddings.weight": torch.zeros(20, 8)}, str(tmp_path / "bert" / "model.safetensors")
    )
    msg = _one_error(capsys, "from-transformers", tmp_path / "bert", "--out", out)
    assert "'bert'" in msg and "not XLM" in msg
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".out")]


def test_a_failure_while_writing_leaves_the_output_folder_as_it_was(two_lang, tmp_path, capsys, monkeypatch):
    import xlm_fairseq.convert.fairseq_checkpoint as fc

    root, _, _ = two_lang

    def disk_full(*args, **kwargs):
        raise fc.ConvertError("disk full")

    monkeypatch.setattr(fc, "save_checkpoint", disk_full)
    out = tmp_path / "out"
    assert "disk full" in _one_error(
        capsys, "from-original", root / "mlm_enfr.pth", "--vocab", root / "vocab_enfr", "--out", out
    )
    assert not out.exists()
    out.mkdir()
    (out / "dict.txt").write_text("old\n")
    assert "--force" in _one_error(
        capsys, "from-original", root / "mlm_enfr.pth", "--vocab", root / "vocab_enfr", "--out", out
    )
    _one_error(capsys, "from-original", root / "mlm_enfr.pth", "--vocab", root / "vocab_enfr", "--out", out, "--force")
    assert os.listdir(out) == ["dict.txt"] and (out / "dict.txt").read_text() == "old\n"
    assert not [p for p in os.listdir(tmp_path) if p != "out"]


# ----------------------------------------------------------------------------------- real command lines
def test_command_line_module_and_console_script(two_lang, tmp_path):
    root, _, _ = two_lang
    args = [
        "from-original",
        root / "mlm_enfr.pth",
        "--vocab",
        root / "vocab_enfr",
        "--codes",
        root / "codes_enfr",
        "--out",
        tmp_path / "cli",
    ]
    proc = python_module("xlm_fairseq.convert", *args)
    assert "emb_dim 32, 2 layers, 4 heads" in proc.stdout and "--langs en,fr" in proc.stdout
    assert sorted(os.listdir(tmp_path / "cli")) == [
        "codes",
        "codes.subword-nmt",
        "dict.txt",
        "model.pt",
        "xlm_inference.json",
    ]
    a, b = load_model_state(root / "out" / "model.pt"), load_model_state(tmp_path / "cli" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    proc = cli("xlm-convert", *args, check=False)  # --out now holds files
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "from-original" in cli("xlm-convert", "--help").stdout


# ------------------------------------------------------------------------- converted models in fairseq
@pytest.fixture(scope="module")
def data_bin(tmp_path_factory):
    """A tiny en/fr data-bin and, in its vocabulary (so the converted dict.txt equals the data-bin's), an
    original encoder-only model of xlm_tiny's shape and an original encoder-decoder model."""
    root = tmp_path_factory.mktemp("fairseq_runs")
    data = make_data_bin(str(root), langs=("en", "fr"), pairs=(("en", "fr"),))
    d = Dictionary.load(os.path.join(data, "dict.txt"))
    words = [d[i] for i in range(14, len(d))]
    counts = {w: int(d.count[i]) for i, w in zip(range(14, len(d)), words)}
    write_vocab(root / "vocab", words, counts)
    lm = original_state_dict(hf_xlm(n_words=len(d), dim=64, n_layers=2, n_heads=4, n_langs=2, seed=31))
    save_original(root / "lm.pth", {"encoder": lm}, words, ["en", "fr"], n_heads=4, counts=counts)
    enc = original_state_dict(hf_xlm(n_words=len(d), dim=32, n_layers=2, n_heads=4, n_langs=2, seed=32))
    dec = reference_decoder(len(d), 32, 2, 4, 2, seed=33).state_dict()
    save_original(root / "mt.pth", {"encoder": enc, "decoder": dec}, words, ["en", "fr"], n_heads=4, counts=counts)
    for name in ("lm", "mt"):
        assert convert("from-original", root / f"{name}.pth", "--vocab", root / "vocab", "--out", root / name) == 0
        assert (root / name / "dict.txt").read_text() == open(os.path.join(data, "dict.txt")).read()
    return root, data, words, {"lm": lm, "enc": enc, "dec": dec}


def test_converted_lm_loads_in_fairseq_train_restore_and_mt_reload(data_bin, tmp_path):
    root, data, _, _ = data_bin
    converted = load_model_state(root / "lm" / "model.pt")
    resets = ["--reset-optimizer", "--reset-dataloader", "--reset-meters", "--reset-lr-scheduler"]
    proc = cli(
        "fairseq-train",
        *lm_train_args(
            data,
            tmp_path / "restore",
            "--restore-file",
            root / "lm" / "model.pt",
            *resets,
            "--lr",
            "1e-9",
            "--disable-validation",
            task="xlm_tlm",
            max_update=1,
        ),
    )
    assert "Loaded checkpoint" in proc.stdout + proc.stderr
    trained = load_model_state(tmp_path / "restore" / "checkpoint_last.pt")
    assert max((trained[k] - converted[k]).abs().max().item() for k in converted) < 1e-6

    proc = cli(
        "fairseq-train",
        *lm_train_args(
            data,
            tmp_path / "finetune",
            "--finetune-from-model",
            root / "lm" / "model.pt",
            "--lr",
            "1e-9",
            "--disable-validation",
            task="xlm_tlm",
            max_update=1,
        ),
    )
    assert "Loaded checkpoint" in proc.stdout + proc.stderr
    trained = load_model_state(tmp_path / "finetune" / "checkpoint_last.pt")
    assert max((trained[k] - converted[k]).abs().max().item() for k in converted) < 1e-6

    # unsupervised MT initialised from it on both sides (the README recipe)
    args = [
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_unsupervised_mt",
        "--langs",
        "en,fr",
        "--ae-steps",
        "en,fr",
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_mt_loss",
        "--reload-encoder",
        root / "lm" / "model.pt",
        "--reload-decoder",
        root / "lm" / "model.pt",
        "--batch-size",
        4,
        "--max-tokens",
        400,
        "--optimizer",
        "adam",
        "--lr",
        "1e-9",
        "--max-update",
        1,
        "--epoch-size",
        8,
        "--save-dir",
        tmp_path / "mt",
        "--disable-validation",
        "--num-workers",
        0,
        "--no-progress-bar",
        "--cpu",
    ]
    cli("fairseq-train", *args)
    mt = load_model_state(tmp_path / "mt" / "checkpoint_last.pt")
    for key, value in converted.items():
        for side in ("encoder.", "decoder."):
            assert (mt[side + key[len("encoder.") :]] - value).abs().max().item() < 1e-6
    assert "decoder.encoder_attn.0.q_lin.weight" in mt


def reference_greedy(r_enc, r_dec, src, src_lang, tgt_lang, max_len):
    """Greedy decoding with the original model as fairseq's beam-1 search constrains it: start from </s>,
    never <pad>, no </s> as first token, </s> forced after max_len tokens. XLM ids in and out."""
    with torch.no_grad():
        x1 = torch.tensor(src)[:, None]
        len1 = torch.tensor([len(src)])
        enc = r_enc.fwd(x=x1, lengths=len1, causal=False, langs=torch.full_like(x1, src_lang)).transpose(0, 1)
        out = [1]
        for step in range(max_len + 1):
            x2 = torch.tensor(out)[:, None]
            h = r_dec.fwd(
                x=x2,
                lengths=torch.tensor([len(out)]),
                causal=True,
                src_enc=enc,
                src_len=len1,
                langs=torch.full_like(x2, tgt_lang),
            )
            lprobs = torch.log_softmax(r_dec.pred_layer.proj(h[-1, 0]), dim=-1)
            lprobs[2] = -float("inf")
            if step == 0:
                lprobs[1] = -float("inf")
            token = 1 if step == max_len else int(lprobs.argmax())
            if token == 1:
                break
            out.append(token)
    return out[1:]


def test_converted_encoder_decoder_translates_like_the_original_in_fairseq_generate(data_bin):
    root, data, words, sds = data_bin
    proc = cli(
        "fairseq-generate",
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_unsupervised_mt",
        "--langs",
        "en,fr",
        "--source-lang",
        "en",
        "--target-lang",
        "fr",
        "--path",
        root / "mt" / "model.pt",
        "--gen-subset",
        "valid",
        "--beam",
        1,
        "--max-len-a",
        0,
        "--max-len-b",
        6,
        "--batch-size",
        4,
        "--cpu",
        "--num-workers",
        0,
    )
    src = {l.split("\t")[0][2:]: l.split("\t")[1] for l in proc.stdout.splitlines() if l.startswith("S-")}
    hyp = {l.split("\t")[0][2:]: l.split("\t")[2] for l in proc.stdout.splitlines() if l.startswith("H-")}
    assert len(src) == len(hyp) == 8, proc.stdout[-2000:]
    xlm_id = {w: i for i, w in enumerate(XLM_HEAD + words)}
    r_enc = reference_from(sds["enc"], 2, 4, 2, True, is_encoder=True)
    r_dec = reference_from(sds["dec"], 2, 4, 2, True, is_encoder=False)
    id2word = XLM_HEAD + words
    for i, sentence in src.items():
        x = [1] + [xlm_id.get(w, 3) for w in sentence.split()] + [1]
        expected = reference_greedy(r_enc, r_dec, x, src_lang=0, tgt_lang=1, max_len=6)
        # fairseq's Dictionary.string drops <s> from the printed hypothesis
        assert hyp[i].split() == [id2word[t] for t in expected if t != 0], (i, sentence)
    assert len(set(hyp.values())) >= 4  # the translations depend on the source
