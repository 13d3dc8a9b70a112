"""benchmarks/gpu_suite.sh on nodes unlike the machine that made the wheelhouse, and the GPU benchmarks' rows measured
each on its own (tests/test_benchmarks.py runs the suite's whole dry run):
- the default stage limits: 540 s in all, as the script's --help says;
- a node Python other than the one the wheelhouse's compiled wheels are for (a fake python3 that answers 3.12, a
  wheelhouse with a cp311 wheel): one line naming both and the make command, exit status 2, before any stage;
- a node without fairseq and a wheelhouse without ve-fairseq (as one made with a node list that names fairseq; the
  node: a virtualenv whose site-packages are this one's but fairseq): the requirements check names what is missing
  in summary.md, and no stage runs; a node's package in a version outside a required range is named;
- pretrain_throughput.py and train_e2e.py with a row that raises (a stub in place of its measurement, here in the
  test's process): that row is reported failed with its error line and left out of later repetitions, every other
  row is measured, and the speed-ups are printed from them; with --skip-compiled the compiled rows are never
  measured and the reason is printed."""

import importlib
import os
import re
import sys
import sysconfig

import pytest
import torch

from .helpers_cli import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
SUITE = os.path.join(BENCH, "gpu_suite.sh")


def suite(*args, python):
    return run(["bash", SUITE, "--dry-run", *args], env=dict(os.environ, PYTHON=str(python)), check=False, timeout=300)


def dict_only_data_bin(folder):
    """Enough of a data-bin for the suite's own checks (it stops before any stage reads more)."""
    folder.mkdir()
    (folder / "dict.txt").write_text("w1 1\nw2 1\n")
    return folder


def test_a_node_python_other_than_the_wheelhouses_stops_before_any_stage(tmp_path):
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 3.12\n")  # whatever it is asked: the answer of a Python 3.12 to the version
    fake.chmod(0o755)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    compiled = "lz4-4.3.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    for name in (compiled, "xlm_fairseq-0.1.0-py3-none-any.whl"):
        (wheels / name).write_bytes(b"")  # the check reads the names
    out = tmp_path / "out"
    proc = suite("--wheels", wheels, "--out", out, dict_only_data_bin(tmp_path / "data"), python=fake)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line, line
    assert f"wheels for Python 3.11 (e.g. {compiled})" in line and f"node's {fake} is Python 3.12" in line, line
    assert "make wheelhouse NODE_PYTHON=3.12" in line, line
    assert (out / "summary.md").read_text().strip() == line
    assert os.listdir(out) == ["summary.md"]  # no stage ran, no virtualenv was made


def test_the_default_stage_limits_fit_nine_minutes():
    """The defaults, as the script declares them and as its --help gives them: 540 s in all, a compile stage."""
    script = open(SUITE, encoding="utf-8").read()
    declared = dict(re.findall(r"\[(\w+)\]=(\d+)", re.search(r"declare -A LIMIT=\((.*)\)", script).group(1)))
    usage = run(["bash", SUITE, "--help"]).stdout
    told = dict(re.findall(r"(\w+)=(\d+)", re.search(r"defaults ([\w=,]+)", usage).group(1)))
    assert declared == told and list(declared) == ["install", "compile", "step", "e2e", "tests"], (declared, told)
    assert sum(map(int, declared.values())) <= 540, declared


def node_without_fairseq(folder):
    """A node's python: a virtualenv whose site-packages hold this one's packages (symlinks) except fairseq."""
    run([sys.executable, "-m", "venv", "--without-pip", folder])
    python = os.path.join(folder, "bin", "python")
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    for name in os.listdir(here):
        if not name.startswith(("fairseq", "ve_fairseq")):
            os.symlink(os.path.join(here, name), os.path.join(site, name))
    return python


def test_a_wheelhouse_without_fairseq_on_a_node_without_it_is_named_in_the_summary(tmp_path):
    node = node_without_fairseq(tmp_path / "node")
    assert "No module named 'fairseq'" in run([node, "-c", "import fairseq"], check=False).stderr  # the premise
    wheels, out = tmp_path / "wheels", tmp_path / "out"
    run([sys.executable, os.path.join(BENCH, "wheelhouse.py"), wheels, "--project-only"])
    proc = suite("--wheels", wheels, "--out", out, dict_only_data_bin(tmp_path / "data"), python=node)
    summary = (out / "summary.md").read_text()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "| install | failed (1) |" in summary and "| step |" not in summary, summary
    missing = r"^requirements: failed: ve-fairseq missing \(xlm-fairseq [\d.]+ requires ve-fairseq==[\d.]+\)"
    assert re.search(missing, summary, re.M), summary
    # no pip wheel in a --project-only wheelhouse: the node's pip, seen from the new virtualenv, installed it
    assert f"pip: {out}/venv/bin/python -m pip" in (out / "install.log").read_text()


def test_a_node_package_outside_a_required_range_is_reported(monkeypatch, capsys):
    """A node list gives names only: a node's sacrebleu 1.5 where the project requires >=2.0 is named, and, being
    installed, does not stop the suite."""
    monkeypatch.syspath_prepend(BENCH)
    wheelhouse = importlib.import_module("wheelhouse")
    version = wheelhouse.md.version
    monkeypatch.setattr(wheelhouse.md, "version", lambda name: "1.5.0" if name == "sacrebleu" else version(name))
    assert wheelhouse.check_installed() == 0
    line = capsys.readouterr().out
    assert line.startswith("requirements: failed: sacrebleu 1.5.0 (xlm-fairseq 0.1.0 requires sacrebleu>=2.0)"), line
    assert line.count("\n") == 1 and "the stages run" in line, line


@pytest.fixture
def benchmarks(monkeypatch):
    threads = torch.get_num_threads()  # the benchmarks set theirs in this process
    monkeypatch.syspath_prepend(BENCH)
    yield importlib.import_module("pretrain_throughput"), importlib.import_module("train_e2e")
    torch.set_num_threads(threads)


STEP_TOK_S = {"ours": 300.0, "fairseq_masked_lm": 200.0, "transformers_xlm": 100.0}


def stub_measure(calls):
    def measure(name, a, shape, env):
        calls.append(name)
        if name == "ours_compiled":
            raise RuntimeError("planted: no working C compiler")
        return {"name": name, "tok_s": STEP_TOK_S[name], "n_pred": 1, "gflops": 1.0, "peak_rss_mb": 1.0}

    return measure


def test_a_failing_model_step_row_leaves_the_others_measured(benchmarks, monkeypatch, capsys):
    pretrain, _ = benchmarks
    calls = []
    monkeypatch.setattr(pretrain, "measure", stub_measure(calls))
    monkeypatch.setattr(pretrain, "matmul_gflops", lambda torch, dev: 10.0)
    impls = "ours,ours_compiled,fairseq_masked_lm,transformers_xlm"
    status = pretrain.main(["--impls", impls, "--reps", "2", "--threads", "1"])
    out = capsys.readouterr().out
    assert status == 1
    assert calls == impls.split(",") + ["ours", "fairseq_masked_lm", "transformers_xlm"]  # not tried again
    assert "\nours_compiled failed: RuntimeError: planted: no working C compiler\n" in out, out
    for name, tok_s in STEP_TOK_S.items():
        assert re.search(rf"^{name} +{tok_s:.0f} ", out, re.M), out
    assert "speedup_vs_best_peer 1.50" in out, out  # ours 300 over fairseq's 200


def test_the_model_step_skips_the_compiled_row_with_the_reason_given(benchmarks, monkeypatch, capsys):
    pretrain, _ = benchmarks
    calls = []
    monkeypatch.setattr(pretrain, "measure", stub_measure(calls))
    monkeypatch.setattr(pretrain, "matmul_gflops", lambda torch, dev: 10.0)
    reason = "torch.compile unusable on this node: InductorError: planted"
    status = pretrain.main(["--impls", "ours,ours_compiled,fairseq_masked_lm", "--reps", "1", "--threads", "1"] + [
        "--skip-compiled", reason
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0 and calls == ["ours", "fairseq_masked_lm"]
    assert f"ours_compiled skipped: {reason}\n" in out and "speedup_vs_best_peer 1.50" in out, out


def fake_data_bin(folder):
    """The files train_e2e.py checks for before its first run (the runs are stubs here)."""
    dict_only_data_bin(folder)
    for split in ("train", "valid"):
        for prefix in ("en", "fr", "en-fr.en", "en-fr.fr"):
            for ext in ("bin", "idx"):
                (folder / f"{split}.{prefix}.{ext}").write_bytes(b"")
    return str(folder)


# the GPU groups of train_e2e.py, the one with a compiled run; nothing reaches CUDA: the runs are stubs
E2E_RUNS = ["ours_mlm", "ours_mlm_compiled", "ours_mlm_amp", "fairseq_masked_lm", "ours_mlm_tlm", "ours_unmt"]
E2E_RUNS += ["fairseq_online_bt"]


def stub_e2e(e2e, monkeypatch):
    runs, alone = [], []

    def run(name, args, extra, threads):
        runs.append(name)
        if "--compile-layers" in extra:
            raise RuntimeError("planted: no working C compiler")
        return [(2000.0 if name.startswith("ours") else 1000.0, 2.0)]

    def step_alone(impl, shape, vocab, threads, device):
        alone.append(impl)
        if impl == "ours_compiled":
            raise RuntimeError("planted: no working C compiler")
        return 4.0

    monkeypatch.setattr(e2e, "run", run)
    monkeypatch.setattr(e2e, "step_alone", step_alone)
    monkeypatch.setattr(e2e, "gpu_name", lambda: "a stub GPU")
    return runs, alone


def test_a_failing_fairseq_train_run_leaves_the_others_measured(benchmarks, monkeypatch, capsys, tmp_path):
    _, e2e = benchmarks
    runs, alone = stub_e2e(e2e, monkeypatch)
    data = fake_data_bin(tmp_path / "data")
    status = e2e.main(["--data-bin", data, "--device", "cuda", "--reps", "2", "--threads", "1"])
    out = capsys.readouterr().out
    assert status == 1
    assert runs == E2E_RUNS + [n for n in E2E_RUNS if n != "ours_mlm_compiled"]  # the failed one is not tried again
    assert alone == ["ours", "ours_compiled", "fairseq_masked_lm", "ours", "fairseq_masked_lm"]
    assert "\nours_mlm_compiled failed: RuntimeError: planted: no working C compiler\n" in out, out
    assert "\nours_mlm_compiled (step alone) failed: RuntimeError: planted: no working C compiler\n" in out, out
    for name in E2E_RUNS:
        assert bool(re.search(rf"^{name} +\d+ ", out, re.M)) == (name != "ours_mlm_compiled"), (name, out)
    assert "e2e_speedup_vs_fairseq 2.00" in out, out


def test_the_end_to_end_runs_skip_the_compiled_one_with_the_reason_given(benchmarks, monkeypatch, capsys, tmp_path):
    _, e2e = benchmarks
    runs, alone = stub_e2e(e2e, monkeypatch)
    reason = "torch.compile unusable on this node: InductorError: planted"
    data = fake_data_bin(tmp_path / "data")
    status = e2e.main(["--data-bin", data, "--device", "cuda", "--reps", "1", "--skip-compiled", reason])
    out = capsys.readouterr().out
    assert status == 0 and runs == [n for n in E2E_RUNS if n != "ours_mlm_compiled"]
    assert alone == ["ours", "fairseq_masked_lm"]
    assert f"ours_mlm_compiled skipped: {reason}\n" in out and "e2e_speedup_vs_fairseq 2.00" in out, out
