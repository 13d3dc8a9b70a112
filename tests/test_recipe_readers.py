"""What examples/demo and examples/paper-mini read back from their runs: the translations of a fairseq-generate log,
the whole run's wall time across resumes, and the unigram perplexity that the demo's table shows beside the MLM's;
and how their Runner schedules steps by device (side by side on one core each on a CPU only)."""

import json
import math
import os
import sys
from functools import partial

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
    ran = first.stamp("a")
    with open(first.path("stamps", "earlier"), "w") as f:  # a step an earlier invocation ran for 90 s
        f.write("90.0\n")
    resumed = pipeline.Runner(str(tmp_path), "t")
    resumed.run("a", [sys.executable, "-c", "pass"])  # done earlier: reused, not rerun
    assert resumed.stamp("a") == ran
    assert resumed.total_minutes() == pytest.approx((90.0 + first.seconds("a")) / 60, abs=0.2 / 60)
    assert 90.0 / 60 <= resumed.total_minutes() < 90.0 / 60 + 1


def test_a_step_done_with_other_settings_stops_the_rerun_in_one_line(tmp_path, capsys):
    """A rerun reuses the steps that finished with the same command; one that finished with another (the demo run
    again with another --scale, say) stops it with one line, instead of a table that mixes both settings. Stamps
    written before commands were recorded are reused as before."""
    first = pipeline.Runner(str(tmp_path), "t")
    first.run("train", [sys.executable, "-c", "pass", "--max-update", "250"])
    dry = pipeline.Runner(str(tmp_path), "t", dry_run=True)
    dry.run("train", [sys.executable, "-c", "pass", "--max-update", "1000"])
    assert "# t: train  (done earlier with other settings)" in capsys.readouterr().out
    rerun = pipeline.Runner(str(tmp_path), "t")
    with pytest.raises(SystemExit, match=rf"t: {tmp_path} holds step train run with other settings .*--scale"):
        rerun.run("train", [sys.executable, "-c", "raise SystemExit(1)", "--max-update", "1000"])
    with open(rerun.path("stamps", "old"), "w") as f:  # an older stamp: no command
        f.write("12.0 1000.0 1012.0\n")
    rerun.run("old", [sys.executable, "-c", "raise SystemExit(1)"])  # reused, not rerun


def test_total_minutes_counts_steps_that_ran_side_by_side_once(tmp_path):
    runner = pipeline.Runner(str(tmp_path), "t")
    sleep = [sys.executable, "-c", "import time; time.sleep(1.5)"]
    pipeline.side_by_side(lambda: runner.run("a", sleep, beside=True), lambda: runner.run("b", sleep, beside=True))
    both = runner.seconds("a") + runner.seconds("b")
    assert runner.total_minutes() * 60 < 0.8 * both  # overlapping, not summed
    assert runner.total_minutes() * 60 >= max(runner.seconds("a"), runner.seconds("b")) - 0.2
    with open(runner.path("stamps", "c"), "w") as f:  # a step stamped later, 60 s after both ended
        end = max(float(open(runner.path("stamps", s)).read().split()[2]) for s in "ab")
        f.write(f"10.0 {end + 60:.1f} {end + 70:.1f}\n")
    assert runner.total_minutes() * 60 == pytest.approx(max(runner.seconds("a"), runner.seconds("b")) + 10, abs=0.3)


def test_covered_minutes_counts_overlaps_once_and_gaps_never():
    stamps = [
        [60.0, 1000.0, 1060.0],  # two steps side by side: 1000-1060 and 1030-1120
        [90.0, 1030.0, 1120.0],
        [30.0, 2000.0, 2030.0],  # a later step, after an idle hour that is not counted
        [45.0],  # an older stamp without start and end: its seconds are added
        [],  # an unreadable stamp
    ]
    assert pipeline.covered_minutes(stamps) == pytest.approx((120 + 30 + 45) / 60)


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


def _generate_log(path, rows):
    path.write_text("".join(f"S-{i}\t{s}\nT-{i}\t{t}\nD-{i}\t-0.1\t{h}\n" for i, (s, t, h) in enumerate(rows)))
    return str(path)


def test_paired_bleu_scores_both_systems_and_the_copied_source_on_the_text_as_written(tmp_path):
    import sacrebleu

    refs = [f"le paquet {w} contient la bibliothèque partagée de {w}" for w in ("zlib", "gtk", "vim", "curl", "qt")]
    srcs = [f"the {w} package contains the shared library of {w}" for w in ("zlib", "gtk", "vim", "curl", "qt")]
    good = [r.replace("partagée ", "") for r in refs]
    bad = ["la la la"] * len(refs)
    base = _generate_log(tmp_path / "base.log", list(zip(srcs, refs, bad)))
    system = _generate_log(tmp_path / "system.log", list(zip(srcs, refs, good)))
    out = pipeline.paired_bleu(base, system, samples=200)

    def corpus(hyps):
        return sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score

    assert out["system"] == pytest.approx(corpus(good))
    assert out["baseline"] == pytest.approx(corpus(bad))
    assert out["copy"] == pytest.approx(corpus(srcs))
    assert out["system"] > 50 > out["copy"] > out["baseline"] and out["p_value"] < 0.05

    same = pipeline.paired_bleu(system, system, samples=200)
    assert same["system"] == same["baseline"] and same["p_value"] == 1.0


def test_paired_bleu_of_two_different_outputs_with_the_same_score_is_no_difference(tmp_path):
    refs = ["le paquet zlib", "la bibliothèque gtk"]
    a = _generate_log(tmp_path / "a.log", [("x", r, "un deux trois") for r in refs])
    b = _generate_log(tmp_path / "b.log", [("x", r, "quatre cinq six") for r in refs])
    out = pipeline.paired_bleu(a, b, samples=200)
    assert out["system"] == out["baseline"] == 0.0 and out["p_value"] == 1.0


def test_detokenised_sacrebleu_of_a_generate_log(tmp_path):
    """Hypotheses and references of a fairseq-generate log (Moses-tokenised, BPE removed) are detokenised with
    sacremoses for the target language, then scored by sacreBLEU 13a: what --eval-bleu logs as *_mt_sacrebleu."""
    import sacrebleu
    from sacremoses import MosesDetokenizer

    rows = [
        (
            "the zlib library",
            "la bibliothèque zlib ( version 1.2 ) , compressée",
            "la bibliothèque zlib ( version 1.2 )",
        ),
        ("the gtk toolkit", "l' outil gtk : interface graphique", "l' outil gtk : graphique"),
    ]
    log = _generate_log(tmp_path / "gen.log", rows)
    md = MosesDetokenizer(lang="fr")
    hyps, refs = ([md.detokenize(r[k].split()) for r in rows] for k in (2, 1))
    assert hyps[1] == "l'outil gtk : graphique"  # the French elision rejoined: detokenised, not the tokens
    expected = sacrebleu.corpus_bleu(hyps, [refs]).score
    assert pipeline.detok_sacrebleu(log, "fr") == pytest.approx(expected)
    assert expected != pytest.approx(sacrebleu.corpus_bleu([r[2] for r in rows], [[r[1] for r in rows]]).score)


def test_paired_bleu_refuses_logs_of_different_sentences(tmp_path):
    a = _generate_log(tmp_path / "a.log", [("x", "y", "y")])
    b = _generate_log(tmp_path / "b.log", [("x", "y", "y"), ("x", "y", "y")])
    with pytest.raises(SystemExit, match="different sentences"):
        pipeline.paired_bleu(a, b)


def test_study_report_keeps_the_runs_of_an_earlier_machine(tmp_path):
    """A report written where some runs' logs are absent keeps their rows (marked *) and curves from the report
    already in results/, also one written before study.json kept its rows (read back from study.md)."""
    sys.path.insert(0, os.path.join(os.path.dirname(pipeline.__file__), "paper-mini"))
    import study

    (tmp_path / "study.md").write_text(
        "# Study\n\n## MLM pretraining\n\n| run | flags | ppl |\n|---|---|---|\n"
        "| base (1 core) | (baseline) | 1053.2 |\n"
        "| clm (1 core) | CLM | 440.6 |\n\n## Unsupervised MT\n\n| run | en-fr |\n|---|---|\n"
        "| base from clm (1 core) | 3.57 |\n",
        encoding="utf-8",
    )
    curves = {"base (1 core)": [[11.6, 956.0]], "clm (1 core)": [[7.8, 380.0]]}
    unmt_curves = {"base from clm (1 core) en-fr": [[17.3, 3.57]], "base from clm (1 core) fr-en": [[17.3, 3.47]]}
    (tmp_path / "study.json").write_text(json.dumps({"mlm": curves, "unmt": unmt_curves}), encoding="utf-8")
    earlier = study.earlier_report(str(tmp_path))

    rows, series = [["base (1 core)", "(baseline)", "990.0"]], {"base (1 core)": [[12.0, 990.0]]}
    note = study.carry_over(rows, series, earlier["mlm"], lambda label: [label])
    assert rows == [["base (1 core)", "(baseline)", "990.0"], ["clm (1 core) *", "CLM", "440.6"]]
    assert series == {"base (1 core)": [[12.0, 990.0]], "clm (1 core)": [[7.8, 380.0]]}
    assert "earlier machine" in note

    rows, series = [], {}
    study.carry_over(rows, series, earlier["unmt"], lambda label: [f"{label} en-fr", f"{label} fr-en"])
    assert rows == [["base from clm (1 core) *", "3.57"]]
    assert series == unmt_curves
    assert study.carry_over([["base (1 core)"]], {}, {"rows": {"base (1 core)": ["base (1 core)"]}}, list) == ""


def test_side_by_side_on_one_core_each_is_the_cpus_schedule(tmp_path):
    """On a CPU two independent steps run at the same time with one compute thread each; a Runner of a GPU runs
    them one after the other and leaves their threads as the caller set them."""
    show = [sys.executable, "-c", "import os, time; time.sleep(0.5); print('threads', os.environ['OMP_NUM_THREADS'])"]
    for device, at_once, threads in (("cpu", True, "1"), ("cuda", False, "3")):
        runner = pipeline.Runner(str(tmp_path / device), "t", device)
        runner.side_by_side(*(partial(runner.run, s, show, env={"OMP_NUM_THREADS": 3}, beside=True) for s in "ab"))
        (_, start_a, end_a), (_, start_b, end_b) = runner.stamp("a"), runner.stamp("b")
        assert (max(start_a, start_b) < min(end_a, end_b)) == at_once, device
        for step in "ab":
            assert f"threads {threads}" in open(runner.path("logs", f"{step}.log")).read(), device
