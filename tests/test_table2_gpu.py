"""Table 2 at GPU scale (examples/paper-mini/table2_gpu.py), its whole pipeline run on the CPU with --tiny: MLM
pretraining, UNMT from the MLM and from random at the same time for the same updates, greedy translation of the
test pairs both ways, and one results folder whose json, md and png hold what the GPU run reports (sacreBLEU,
tokenised BLEU, the copied-source floor, the paired bootstrap, BLEU against minutes, the first sentences side by
side). Its GPU commands are parsed with the other examples' in tests/test_recipe_commands.py."""

import json
import os
import sys

from .helpers_cli import run
from .helpers_data import make_data_bin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_table2_gpu_pipeline_runs_on_the_cpu_at_tiny_scale(tmp_path):
    data = make_data_bin(str(tmp_path), langs=("en", "fr"), pairs=(("en", "fr"),), valid_seen_in_train=True)
    out = tmp_path / "t2"
    script = os.path.join(ROOT, "examples", "paper-mini", "table2_gpu.py")
    args = ["--data-bin", data, "--tiny", "--device", "cpu", "--test-subset", "valid", "--out", out]
    run([sys.executable, script, *args], timeout=600)
    results = out / "results"
    numbers = json.loads((results / "table2_gpu.json").read_text())
    assert set(numbers["directions"]) == {"en-fr", "fr-en"}
    for d in numbers["directions"].values():
        assert set(d["sacrebleu"]) == set(d["tokenised_bleu"]) == {"mlm", "random", "copy"}
        assert all(0 <= v <= 100 for v in [*d["sacrebleu"].values(), *d["tokenised_bleu"].values()])
        assert d["tokenised_bleu"]["copy"] > 0  # the sources share words with the references: a real floor
        assert 0 < d["paired_bootstrap_p"] <= 1
    assert numbers["unmt_updates"] == {"mlm": 10, "random": 10} and numbers["pretrain_updates"] == 20
    curves = numbers["curves"]
    assert curves["pretrain"]["mlm_ppl"] and all(curves[r]["en-fr_mt_sacrebleu"] for r in ("unmt-mlm", "unmt-random"))
    assert all(len(numbers["examples"][d]) == 5 for d in ("en-fr", "fr-en"))
    first = numbers["examples"]["fr-en"][0]
    assert first["source"] == "la bibliothèque lit les fichiers audio ." and first["reference"].startswith(
        "the library"
    )
    text = (results / "table2_gpu.md").read_text()
    assert "| en-fr |" in text and "| fr-en |" in text and first["source"] in text
    assert (results / "table2_gpu.png").stat().st_size > 10000
