"""What examples/demo and examples/paper-mini read back from their runs: the translations of a fairseq-generate log,
the whole run's wall time across resumes, and the unigram perplexity that the demo's table shows beside the MLM's."""

import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import pipeline  # noqa: E402


def test_generated_reads_source_reference_and_hypothesis_by_id(tmp_path):
    log = tmp_path / "gen.log"
    log.write_text(
        "2026-12-01 | INFO | fairseq_cli.generate | loading\n"
        "S-1\tthis package contains 2.0 files\n"
        "T-1\tce paquet contient 2.0 fichiers\n"
        "H-1\t-0.52\tce paquet contient fichiers\n"
        "D-1\t-0.52\tce paquet contient fichiers\n"
        "P-1\t-0.1 -0.2 -0.3\n"
        "S-0\t3\n"
        "T-0\t3\n"
        "D-0\t-1.5\t\n"
        "Generate test with beam=1: BLEU4 = 12.34\n",
        encoding="utf-8",
    )
    out = pipeline.generated(str(log))
    assert out[1] == {
        "S": "this package contains 2.0 files",
        "T": "ce paquet contient 2.0 fichiers",
        "D": "ce paquet contient fichiers",
    }
    assert out[0] == {"S": "3", "T": "3", "D": ""}
    assert pipeline.bleu_of(str(log)) == 12.34


def test_total_minutes_counts_the_steps_of_earlier_invocations(tmp_path):
    first = pipeline.Runner(str(tmp_path), "t")
    first.run("a", [sys.executable, "-c", "pass"])
    with open(first.path("stamps", "earlier"), "w") as f:  # a step an earlier invocation ran for 90 s
        f.write("90.0\n")
    resumed = pipeline.Runner(str(tmp_path), "t")
    resumed.run("a", [sys.executable, "-c", "raise SystemExit(1)"])  # done earlier: reused, not rerun
    assert resumed.total_minutes() == pytest.approx((90.0 + first.seconds("a")) / 60)
    assert 90.0 / 60 <= resumed.total_minutes() < 90.0 / 60 + 1


def test_unigram_perplexity_of_the_valid_text_under_training_frequencies(tmp_path):
    import torch
    from fairseq.data import indexed_dataset

    from xlm_fairseq.dictionary import load_dictionary
    from xlm_preprocess.vocabulary import write_dictionary

    write_dictionary([("a", 5), ("b", 3), ("c", 1)], str(tmp_path / "dict.txt"))
    d = load_dictionary(str(tmp_path / "dict.txt"))
    a, b, c = (d.index(w) for w in "abc")
    splits = {"train": [[a, a, a, b, d.eos()], [a, b, d.eos()]], "valid": [[a, c, d.eos()]]}
    for split, sentences in splits.items():
        builder = indexed_dataset.make_builder(str(tmp_path / f"{split}.en.bin"), impl="mmap", vocab_size=len(d))
        for s in sentences:
            builder.add_item(torch.tensor(s, dtype=torch.int32))
        builder.finalize(str(tmp_path / f"{split}.en.idx"))
    counts = np.ones(len(d))
    for s in splits["train"]:
        for t in s:
            counts[t] += 1
    p = counts / counts.sum()
    expected = math.exp(-np.mean([math.log(p[t]) for t in splits["valid"][0]]))
    assert pipeline.unigram_ppl(str(tmp_path), "en") == pytest.approx(expected)
