"""`xlm-embeddings` (paper Table 5, §4.5): metrics on hand-made vectors with known answers, the .vec
format, whole-word export (subword-nmt and sentencepiece, per-language frequencies), export -> eval on a
trained tiny model, one-line errors."""

import json
import math
import os

import numpy as np
import pytest
import torch

from xlm_fairseq.dictionary import write_dictionary
from xlm_fairseq.embeddings import main, read_vec, write_vec
from xlm_fairseq.embeddings.metrics import pair_cosine_l2, pearson, rankdata, spearman, translation_precision

from .helpers_cli import USER_DIR, cli
from .helpers_data import make_data_bin

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "emb")
C20, C25, C45 = (math.cos(math.radians(a)) for a in (20, 25, 45))


def polar(deg, norm=1.0):
    return [norm * math.cos(math.radians(deg)), norm * math.sin(math.radians(deg))]


# sources at 0°, 20°, 40° (norms 1, 2, 0.5); targets: a hub at 20° (nearest neighbour of every source),
# un at -25° and trois at 65°. With CSLS k=1: r_T = (cos20, 1, cos20) for the sources and r_S = (1, cos25,
# cos25) for hub, un, trois, so CSLS(one, un) = cos25 - cos20 > CSLS(one, hub) = cos20 - 1, and likewise
# for three -> trois, while two -> hub keeps 0 > its alternatives.
SRC = {"one": polar(0), "two": polar(20, 2.0), "three": polar(40, 0.5)}
TGT = {"hub": polar(20), "un": polar(-25), "trois": polar(65)}


def matrix(d):
    return np.array(list(d.values()), dtype=np.float64)


def test_pair_cosine_and_l2_of_known_vectors():
    cos, l2 = pair_cosine_l2(
        np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 0.0]]), np.array([[1.0, 0.0], [3.0, 3.0], [-1.0, 0.0]])
    )
    assert cos.tolist() == pytest.approx([1.0, 1 / math.sqrt(2), -1.0])
    assert l2.tolist() == pytest.approx([0.0, 3.0, 3.0])


def test_nearest_neighbour_falls_for_the_hub_and_csls_does_not():
    src, tgt = matrix(SRC), matrix(TGT)
    gold = [(0, 1), (1, 0), (2, 2)]  # one-un, two-hub, three-trois
    assert translation_precision(src, tgt, gold, (1, 2), "nn") == pytest.approx({1: 100 / 3, 2: 100.0})
    assert translation_precision(src, tgt, gold, (1, 2), "csls", csls_k=1) == pytest.approx({1: 100.0, 2: 100.0})
    # a source word counts once, and is right if any of its translations is retrieved
    gold_multi = gold + [(2, 0)]  # three: trois or hub
    assert translation_precision(src, tgt, gold_multi, (1,), "nn") == pytest.approx({1: 200 / 3})
    # retrieval uses directions only
    assert translation_precision(src * 7.0, tgt, gold, (1,), "nn") == pytest.approx({1: 100 / 3})
    # csls_k larger than the vocabulary averages over all of it: r_S(hub) is then the highest of the three
    # targets, r_T is the same for every candidate of a query, so only 2cos - r_S decides
    r_s = {t: np.mean([np.dot(v, s) / np.linalg.norm(s) for s in src]) for t, v in TGT.items()}
    want_one = max(TGT, key=lambda t: 2 * np.dot(TGT[t], SRC["one"]) - r_s[t])
    got = translation_precision(src, tgt, [(0, list(TGT).index(want_one))], (1,), "csls", csls_k=10)
    assert got == {1: 100.0}


def test_rank_correlations_with_ties_against_hand_computed_values():
    assert rankdata([10, 20, 20, 20, 5]).tolist() == [2, 4, 4, 4, 1]
    x, y = [1, 2, 2, 3, 5], [2, 1, 4, 3, 6]
    # ranks x = 1, 2.5, 2.5, 4, 5; ranks y = 2, 1, 4, 3, 5
    assert spearman(x, y) == pytest.approx(6.5 / math.sqrt(9.5 * 10))
    assert pearson(x, y) == pytest.approx(9.4 / math.sqrt(9.2 * 14.8))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3])) and math.isnan(pearson([1], [2]))


def write_plain_vec(path, vectors, header=True):
    with open(path, "w", encoding="utf-8") as f:
        if header:
            f.write(f"{len(vectors)} 2\n")
        for w, v in vectors.items():
            f.write(w + " " + " ".join(repr(float(x)) for x in v) + "\n")


def run_main(capsys, *argv):
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_command_on_hand_made_vectors(tmp_path, capsys):
    write_plain_vec(tmp_path / "src.vec", SRC)
    write_plain_vec(tmp_path / "tgt.vec", TGT, header=False)
    (tmp_path / "dict.txt").write_text("one un\ntwo hub\nthree trois\nfour quatre\n", encoding="utf-8")
    (tmp_path / "sim.txt").write_text("one\tun\t3\ntwo\thub\t4\none\thub\t1\ntwo\tun\t2\nx\ty\t5\n", encoding="utf-8")
    code, out, _ = run_main(
        capsys,
        "eval",
        "--src",
        tmp_path / "src.vec",
        "--tgt",
        tmp_path / "tgt.vec",
        "--dictionary",
        tmp_path / "dict.txt",
        "--similarity",
        tmp_path / "sim.txt",
        "--csls-k",
        1,
        "--json",
    )
    assert code == 0
    r = json.loads(out)
    d = r["dictionary"]
    assert (d["pairs"], d["in_vocabulary"]["model"], d["evaluated_pairs"], d["source_words"]) == (4, 3, 3, 3)
    m = d["metrics"]["model"]
    assert m["cosine"] == pytest.approx((2 * C25 + 1) / 3, rel=1e-6)
    l2 = [2 * math.sin(math.radians(12.5)), 1.0, math.sqrt(1.25 - C25)]
    assert m["l2"] == pytest.approx(sum(l2) / 3, rel=1e-6)
    assert (m["p@1_nn"], m["p@5_nn"], m["p@1_csls"], m["p@5_csls"]) == pytest.approx((100 / 3, 100, 100, 100))
    s = r["similarity"]
    assert (s["pairs"], s["evaluated_pairs"]) == (5, 4)
    cos, gold = [C25, 1.0, C20, C45], [3, 4, 1, 2]
    assert s["metrics"]["model"]["pearson"] == pytest.approx(np.corrcoef(cos, gold)[0, 1], rel=1e-6)
    assert s["metrics"]["model"]["spearman"] == pytest.approx(0.4)  # ranks 2 4 3 1 vs 3 4 1 2
    # SemEval'17 layout: word pairs in one file, scores in another
    (tmp_path / "pairs.txt").write_text("one\tun\ntwo\thub\none\thub\ntwo\tun\n", encoding="utf-8")
    (tmp_path / "gold.txt").write_text("3\n4\n1\n2\n", encoding="utf-8")
    code, out, _ = run_main(
        capsys,
        "eval",
        "--src",
        tmp_path / "src.vec",
        "--tgt",
        tmp_path / "tgt.vec",
        "--json",
        "--similarity",
        tmp_path / "pairs.txt",
        "--similarity-gold",
        tmp_path / "gold.txt",
    )
    assert code == 0 and json.loads(out)["similarity"]["metrics"]["model"]["spearman"] == pytest.approx(0.4)
    (tmp_path / "gold.txt").write_text("3\n4\nhigh\n2\n", encoding="utf-8")
    code, _, err = run_main(
        capsys,
        "eval",
        "--src",
        tmp_path / "src.vec",
        "--tgt",
        tmp_path / "tgt.vec",
        "--similarity",
        tmp_path / "pairs.txt",
        "--similarity-gold",
        tmp_path / "gold.txt",
    )
    assert code == 2 and "gold.txt:3: score 'high' is not a number" in err


def test_baseline_is_evaluated_on_the_common_pairs(tmp_path, capsys):
    write_plain_vec(tmp_path / "src.vec", SRC)
    write_plain_vec(tmp_path / "tgt.vec", TGT)
    base_src = dict(SRC)
    del base_src["three"]
    write_plain_vec(tmp_path / "bsrc.vec", base_src)
    (tmp_path / "dict.txt").write_text("one un\ntwo hub\nthree trois\n", encoding="utf-8")
    code, out, _ = run_main(
        capsys,
        "eval",
        "--src",
        tmp_path / "src.vec",
        "--tgt",
        tmp_path / "tgt.vec",
        "--dictionary",
        tmp_path / "dict.txt",
        "--baseline",
        tmp_path / "bsrc.vec",
        tmp_path / "tgt.vec",
    )
    assert code == 0
    assert "in the vocabulary: model 3, baseline 2 (all spaces: 2)" in out
    row = next(l for l in out.splitlines() if l.startswith("cosine similarity"))
    assert row.split()[-2:] == [f"{(C25 + 1) / 2:.4f}"] * 2


def test_vec_files_round_trip_and_bad_files_give_errors(tmp_path, capsys):
    words = ["a", "b", "éa"]
    m = np.arange(9, dtype=np.float32).reshape(3, 3) / 7
    write_vec(str(tmp_path / "x.vec"), words, m)
    v = read_vec(str(tmp_path / "x.vec"))
    assert v.words == words and np.allclose(v.matrix, m, rtol=1e-5)
    assert open(tmp_path / "x.vec", encoding="utf-8").readline() == "3 3\n"
    assert read_vec(str(tmp_path / "x.vec"), max_words=2).words == ["a", "b"]
    (tmp_path / "bad.vec").write_text("2 3\na 1 2 3\nb 1 2\n", encoding="utf-8")
    (tmp_path / "d.txt").write_text("a b\n", encoding="utf-8")
    code, _, err = run_main(
        capsys, "eval", "--src", tmp_path / "bad.vec", "--tgt", tmp_path / "x.vec", "--dictionary", tmp_path / "d.txt"
    )
    assert code == 2 and err.startswith("error: ") and "bad.vec:3" in err and len(err.splitlines()) == 1


def build_mmap(prefix, sentences, dictionary):
    from fairseq.data import indexed_dataset

    builder = indexed_dataset.make_builder(prefix + ".bin", impl="mmap", vocab_size=len(dictionary))
    for sent in sentences:
        ids = [dictionary.index(t) for t in sent.split()] + [dictionary.eos()]
        builder.add_item(torch.IntTensor(ids))
    builder.finalize(prefix + ".idx")


def fake_model(folder, tokens, key="encoder.embeddings.weight"):
    """dict.txt with these tokens and a checkpoint holding only a lookup table (row i = [i, -i, 0.5])."""
    from xlm_fairseq.dictionary import load_dictionary

    os.makedirs(folder, exist_ok=True)
    write_dictionary([(t, 100 - i) for i, t in enumerate(tokens)], os.path.join(folder, "dict.txt"))
    d = load_dictionary(os.path.join(folder, "dict.txt"))
    table = torch.tensor([[float(i), -float(i), 0.5] for i in range(len(d))])
    torch.save({"model": {key: table}}, os.path.join(folder, "model.pt"))
    return d


def read_words(path):
    return [l.split(" ")[0] for l in open(path, encoding="utf-8").read().splitlines()[1:]]


def test_export_keeps_whole_words_subword_nmt(tmp_path, capsys):
    d = fake_model(str(tmp_path), ["the", "ca@@", "t", "dog", "ho@@", "use"])
    out = tmp_path / "all.vec"
    code, msg, _ = run_main(capsys, "export", tmp_path / "model.pt", "--dict", tmp_path / "dict.txt", "--out", out)
    assert code == 0 and "4 words x 3 dims" in msg and "subword-nmt" in msg
    assert read_words(out) == ["the", "t", "dog", "use"]
    v = read_vec(str(out))
    assert v.matrix[2].tolist() == pytest.approx([d.index("dog"), -d.index("dog"), 0.5])
    # per language: whole-word occurrences only ("t" after "ca@@" is part of "cat", "use" after "ho@@" too)
    build_mmap(str(tmp_path / "train.xx"), ["the ca@@ t dog", "t dog the", "ho@@ use dog"], d)
    code, msg, _ = run_main(
        capsys,
        "export",
        tmp_path / "model.pt",
        "--dict",
        tmp_path / "dict.txt",
        "--out",
        tmp_path / "xx.vec",
        "--lang",
        "xx",
    )  # default: train.xx beside dict.txt
    assert code == 0 and read_words(tmp_path / "xx.vec") == ["dog", "the", "t"]
    code, _, _ = run_main(
        capsys,
        "export",
        tmp_path / "model.pt",
        "--dict",
        tmp_path / "dict.txt",
        "--out",
        tmp_path / "xx2.vec",
        "--lang",
        "xx",
        "--lang-data",
        tmp_path / "train.xx.bin",
        "--max-words",
        2,
    )
    assert code == 0 and read_words(tmp_path / "xx2.vec") == ["dog", "the"]


def test_export_keeps_whole_words_sentencepiece(tmp_path, capsys):
    d = fake_model(str(tmp_path), ["\u2581the", "s", "\u2581cat", "\u2581", "\u2581dog", "\u2581ho", "use"])
    code, _, _ = run_main(
        capsys, "export", tmp_path / "model.pt", "--dict", tmp_path / "dict.txt", "--out", tmp_path / "all.vec"
    )
    assert code == 0 and read_words(tmp_path / "all.vec") == ["the", "cat", "dog", "ho"]
    sp = "\u2581"
    build_mmap(str(tmp_path / "train.xx"), [f"{sp}the {sp}cat s", f"{sp}dog {sp}the", f"{sp}ho use {sp}cat"], d)
    code, _, _ = run_main(
        capsys,
        "export",
        tmp_path / "model.pt",
        "--dict",
        tmp_path / "dict.txt",
        "--out",
        tmp_path / "xx.vec",
        "--lang",
        "xx",
    )
    assert code == 0 and read_words(tmp_path / "xx.vec") == ["the", "cat", "dog"]


def test_export_errors(tmp_path, capsys):
    fake_model(str(tmp_path / "dec"), ["a", "b"], key="decoder.embed_tokens.weight")
    code, _, err = run_main(
        capsys,
        "export",
        tmp_path / "dec" / "model.pt",
        "--dict",
        tmp_path / "dec" / "dict.txt",
        "--out",
        tmp_path / "x.vec",
    )
    assert code == 2 and "no encoder lookup table" in err and len(err.splitlines()) == 1
    fake_model(str(tmp_path / "m"), ["a", "b"])
    fake_model(str(tmp_path / "other"), ["a", "b", "c"])
    code, _, err = run_main(
        capsys,
        "export",
        tmp_path / "m" / "model.pt",
        "--dict",
        tmp_path / "other" / "dict.txt",
        "--out",
        tmp_path / "x.vec",
    )
    assert code == 2 and "17 entries" in err and "16 rows" in err
    code, _, err = run_main(capsys, "export", tmp_path / "m" / "model.pt", "--out", tmp_path / "x.vec")
    assert code == 2 and "give --dict" in err
    code, _, err = run_main(
        capsys,
        "export",
        tmp_path / "m" / "model.pt",
        "--dict",
        tmp_path / "m" / "dict.txt",
        "--out",
        tmp_path / "x.vec",
        "--lang",
        "zz",
    )
    assert code == 2 and "train.zz" in err and "--lang-data" in err
    code, _, err = run_main(capsys, "export", tmp_path / "none.pt", "--out", tmp_path / "x.vec")
    assert code == 2 and "no such file" in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("emb")
    data = make_data_bin(str(root), langs=("en", "fr"), pairs=())
    cli(
        "fairseq-train",
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_cross_lingual_lm",
        "--langs",
        "en,fr",
        "--clm-steps",
        "en,fr",
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
        6,
        "--epoch-size",
        24,
        "--save-dir",
        root / "ckpt",
        "--disable-validation",
        "--no-epoch-checkpoints",
        "--num-workers",
        0,
        "--seed",
        1,
        "--no-progress-bar",
        "--cpu",
    )
    return data, str(root / "ckpt" / "checkpoint_last.pt"), str(root)


def embeddings_cli(*args, check=True):
    return cli("xlm-embeddings", *args, check=check)


def test_export_then_eval_on_a_trained_model(trained, tmp_path, capsys):
    data, ckpt, root = trained
    # the dictionary defaults to the data folder saved in the checkpoint; once through `python -m`
    embeddings_cli("export", ckpt, "--out", tmp_path / "en.vec", "--lang", "en")
    assert run_main(capsys, "export", ckpt, "--out", tmp_path / "fr.vec", "--lang", "fr")[0] == 0
    en, fr = read_vec(str(tmp_path / "en.vec")), read_vec(str(tmp_path / "fr.vec"))
    train_words = {
        l: set(open(os.path.join(root, "raw", f"train.{l}"), encoding="utf-8").read().split()) for l in ("en", "fr")
    }
    assert set(en.words) == train_words["en"] and set(fr.words) == train_words["fr"]
    state = torch.load(ckpt)["model"]["encoder.embeddings.weight"].numpy()
    from xlm_fairseq.dictionary import load_dictionary

    d = load_dictionary(os.path.join(data, "dict.txt"))
    assert np.allclose(fr.matrix[fr.index["chat"]], state[d.index("chat")], rtol=1e-5, atol=1e-6)

    code, out, _ = run_main(
        capsys,
        "eval",
        "--src",
        tmp_path / "en.vec",
        "--tgt",
        tmp_path / "fr.vec",
        "--json",
        "--dictionary",
        os.path.join(FIXTURES, "en-fr.txt"),
        "--similarity",
        os.path.join(FIXTURES, "en-fr.sim.txt"),
    )
    assert code == 0
    r = json.loads(out)
    # every pair but zebra-zèbre is in the training text; 11 English words
    dic = r["dictionary"]
    assert (dic["pairs"], dic["evaluated_pairs"], dic["source_words"]) == (14, 13, 11)
    assert (r["similarity"]["pairs"], r["similarity"]["evaluated_pairs"]) == (8, 7)
    pairs = [l.split() for l in open(os.path.join(FIXTURES, "en-fr.txt"), encoding="utf-8") if "zebra" not in l]
    a = np.array([state[d.index(s)] for s, _ in pairs])
    b = np.array([state[d.index(t)] for _, t in pairs])
    cos = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    m = r["dictionary"]["metrics"]["model"]
    assert m["cosine"] == pytest.approx(cos.mean(), rel=1e-4)
    assert m["l2"] == pytest.approx(np.linalg.norm(a - b, axis=1).mean(), rel=1e-4)
    # word translation recomputed by brute force (MUSE's protocol): each of the 11 source words ranks the whole
    # French vocabulary by cosine (NN) or by CSLS = 2 cos - r_T(x) - r_S(y), r = mean cosine of the 10 nearest
    # words of the other language; a hit when one of its gold translations is among the first k
    unit = lambda v: v.matrix.astype(np.float64) / np.linalg.norm(v.matrix, axis=1, keepdims=True)  # noqa: E731
    sims = unit(en) @ unit(fr).T
    r_src, r_tgt = np.sort(sims, axis=1)[:, -10:].mean(1), np.sort(sims.T, axis=1)[:, -10:].mean(1)
    gold = {}
    for s, t in pairs:
        gold.setdefault(en.index[s], set()).add(fr.index[t])
    assert len(gold) == 11
    hits = {}
    for method, scores in (("nn", sims), ("csls", 2 * sims - r_src[:, None] - r_tgt[None, :])):
        for k in (1, 5):
            hits[k, method] = sum(bool(gold[i] & set(np.argsort(-scores[i], kind="stable")[:k])) for i in gold)
            assert m[f"p@{k}_{method}"] == pytest.approx(100 * hits[k, method] / 11)
    # "images" (one shared row, in both files) finds itself; this barely trained model finds nothing else, so
    # the ranks past the first are checked on hand-made vectors (test_eval_command_on_hand_made_vectors)
    assert hits[1, "nn"] >= 1
    # word similarity: Pearson between the raw vectors' cosine and the gold scores of the 7 pairs in vocabulary
    rows = [l.split("\t") for l in open(os.path.join(FIXTURES, "en-fr.sim.txt"), encoding="utf-8") if "zebra" not in l]
    vecs = [(en.matrix[en.index[w1]].astype(np.float64), fr.matrix[fr.index[w2]]) for w1, w2, _ in rows]
    cos_sim = [np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b) for a, b in vecs]
    expected = np.corrcoef(cos_sim, [float(g) for _, _, g in rows])[0, 1]
    assert r["similarity"]["metrics"]["model"]["pearson"] == pytest.approx(expected, rel=1e-5)

    # one file for both sides (the shared vocabulary): "images" (the same token in both languages) is its
    # own nearest neighbour, so at least 1 of the 11 source words is right
    assert run_main(capsys, "export", ckpt, "--out", tmp_path / "all.vec")[0] == 0
    code, out, _ = run_main(
        capsys,
        "eval",
        "--src",
        tmp_path / "all.vec",
        "--tgt",
        tmp_path / "all.vec",
        "--dictionary",
        os.path.join(FIXTURES, "en-fr.txt"),
    )
    assert code == 0 and "target the same file" in out
    row = next(l for l in out.splitlines() if l.startswith("word translation P@1, NN"))
    assert float(row.split()[-1]) >= 100 / 11 - 0.01

    # no pair in the vocabulary: one line with the counts, no traceback
    (tmp_path / "de.txt").write_text("hund chien\nkatze chat\n", encoding="utf-8")
    proc = embeddings_cli(
        "eval",
        "--src",
        tmp_path / "en.vec",
        "--tgt",
        tmp_path / "fr.vec",
        "--dictionary",
        tmp_path / "de.txt",
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "none of its 2 pairs" in proc.stderr and f"{len(en)} source and {len(fr)} target words" in proc.stderr
    (tmp_path / "sim.txt").write_text("hund\tchien\t3\n", encoding="utf-8")
    code, _, err = run_main(
        capsys, "eval", "--src", tmp_path / "en.vec", "--tgt", tmp_path / "fr.vec", "--similarity", tmp_path / "sim.txt"
    )
    assert code == 2 and "none of its 1 word pairs" in err and "model: 0 pairs" in err
