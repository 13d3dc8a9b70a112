"""The GPU suite's CPU dry run, the way an offline GPU node runs it: this project's wheel built without the index
(benchmarks/wheelhouse.py --project-only), then benchmarks/gpu_suite.sh --wheels: a new virtualenv that must see the
running interpreter's torch although that interpreter is itself a virtualenv (the .pth file the suite writes; with
--system-site-packages alone it sees the base interpreter, which has no torch here), the wheel installed with
--no-index, and every stage (the model-step benchmark, the real fairseq-train runs of ours and the peers, the GPU
tests, which skip) at tiny shapes, with its status in the summary."""

import os
import sys

from .helpers_cli import run
from .helpers_data import make_data_bin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_suite_dry_run_from_a_wheelhouse(tmp_path):
    data = make_data_bin(str(tmp_path), langs=("en", "fr"), pairs=(("en", "fr"),), train_copies=4)
    wheels, out = tmp_path / "wheels", tmp_path / "suite"
    run([sys.executable, os.path.join(ROOT, "benchmarks", "wheelhouse.py"), wheels, "--project-only"])
    assert [n for n in os.listdir(wheels) if n.endswith(".whl")] == ["xlm_fairseq-0.1.0-py3-none-any.whl"]
    env = dict(os.environ, PYTHON=sys.executable)
    suite = [os.path.join(ROOT, "benchmarks", "gpu_suite.sh"), "--dry-run", "--wheels", wheels, "--out", out, data]
    proc = run(["bash", *suite], env=env, timeout=900)
    summary = (out / "summary.md").read_text()
    assert proc.stdout.endswith(summary), "the summary is printed last"
    for stage in ("install", "step", "e2e", "tests"):
        assert f"| {stage} | ok |" in summary, summary
    installed = (out / "install.log").read_text()
    assert f"torch {__import__('torch').__version__}" in installed and "from " + sys.prefix in installed, installed
    assert "speedup_vs_best_peer" in summary and "e2e_speedup_vs_fairseq" in summary
    for name in ("ours_mlm", "fairseq_masked_lm", "ours_mlm_tlm", "ours_unmt", "fairseq_online_bt"):
        assert f"\n{name} " in summary, summary[-2000:]
    assert "skipped" in summary  # tests/test_gpu.py ran, and skipped without a GPU


def test_gpu_suite_reports_a_failed_stage_and_goes_on(tmp_path):
    data = make_data_bin(str(tmp_path), langs=("de",), pairs=(), train_copies=1)  # no en: the e2e runs fail
    env = dict(os.environ, PYTHON=sys.executable)
    suite = [os.path.join(ROOT, "benchmarks", "gpu_suite.sh"), "--dry-run", "--out", tmp_path / "s", data]
    proc = run(["bash", *suite, "--limits", "step=1"], env=env, check=False, timeout=900)
    summary = (tmp_path / "s" / "summary.md").read_text()
    assert proc.returncode == 1
    assert "| step | timed out | " in summary and "| e2e | failed (1) |" in summary, summary
    assert "| tests | ok |" in summary, summary
