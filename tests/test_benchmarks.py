"""The GPU suite's CPU dry run: every step of benchmarks/gpu_suite.sh (the model-step benchmark and the real
fairseq-train runs of ours and the peers) at tiny shapes, so the script that runs when a GPU is lent works."""

import os
import sys

from .helpers_cli import run
from .helpers_data import make_data_bin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_suite_dry_run(tmp_path):
    data = make_data_bin(str(tmp_path), langs=("en", "fr"), pairs=(("en", "fr"),), train_copies=4)
    env = dict(os.environ, PYTHON=sys.executable)
    out = run(["bash", os.path.join(ROOT, "benchmarks", "gpu_suite.sh"), "--dry-run", data], env=env, timeout=900)
    text = out.stdout
    assert "speedup_vs_best_peer" in text and "e2e_speedup_vs_fairseq" in text
    for name in ("ours_mlm", "fairseq_masked_lm", "ours_mlm_tlm", "ours_unmt", "fairseq_online_bt"):
        assert f"\n{name} " in text, text[-2000:]
