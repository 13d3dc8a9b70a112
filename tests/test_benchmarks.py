"""The GPU suite's CPU dry run, the way an offline GPU node runs it: this project's wheel built without the index
(benchmarks/wheelhouse.py --project-only) beside pip's wheel (which `make wheelhouse` adds), then
benchmarks/gpu_suite.sh --wheels: a new virtualenv that must see the running interpreter's torch although that
interpreter is itself a virtualenv (the .pth file the suite writes; with --system-site-packages alone it sees the base
interpreter, which has no torch here), made without ensurepip (the node's python planted to fail as Debian's python3
does without python3-venv), the wheels installed with --no-index by pip run from its wheel, the requirements
checked, the torch.compile smoke test, and every stage (the model-step benchmark, the real fairseq-train runs of ours
and the peers, the GPU tests, which skip) at tiny shapes, with its status in the summary. fairseq is the node's here
(this virtualenv's), outside the suite's virtualenv: the tests' helpers still find fairseq-train."""

import ensurepip
import glob
import os
import sys

import pytest

from .helpers_cli import ENV, run
from .helpers_data import make_data_bin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE = os.path.join(ROOT, "benchmarks", "gpu_suite.sh")


def pip_wheel():
    """The pip wheel this interpreter bundles for ensurepip: `make wheelhouse` puts one like it in the wheelhouse."""
    wheels = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
    assert wheels, "this interpreter bundles no pip wheel"
    return wheels[0]


NO_ENSUREPIP = "The virtual environment was not created successfully because ensurepip is not available."


def python_without_ensurepip(folder):
    """This python, but for making a virtualenv with pip: it fails as Debian's python3 without python3-venv does (its
    venv module checks for ensurepip; venv runs ensurepip without PYTHONPATH, so the module cannot be hidden)."""
    folder.mkdir()
    shim = folder / "python3"
    shim.write_text(
        f"""#!/bin/sh
case " $* " in
  *" -m venv "*"--without-pip"*) ;;
  *" -m venv "*) echo "{NO_ENSUREPIP}" >&2; exit 1 ;;
esac
exec {sys.executable} "$@"
"""
    )
    shim.chmod(0o755)
    return str(shim)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suite")
    data = make_data_bin(str(tmp), langs=("en", "fr"), pairs=(("en", "fr"),), train_copies=4)
    wheels, out = tmp / "wheels", tmp / "suite"
    run([sys.executable, os.path.join(ROOT, "benchmarks", "wheelhouse.py"), wheels, "--project-only"])
    assert [n for n in os.listdir(wheels) if n.endswith(".whl")] == ["xlm_fairseq-0.1.0-py3-none-any.whl"]
    run(["cp", pip_wheel(), wheels])
    python = python_without_ensurepip(tmp / "node")
    assert NO_ENSUREPIP in run([python, "-m", "venv", tmp / "v"], check=False).stderr  # the plant works
    env = dict(os.environ, PYTHON=python)
    # the default limits are the GPU's (test_gpu_suite_paths.py checks them); these 2 cores are often shared
    limits = "install=120,compile=120,step=300,e2e=420,tests=120"
    suite = ["bash", SUITE, "--dry-run", "--wheels", wheels, "--out", out, "--limits", limits, data]
    proc = run(suite, env=env, timeout=1200)
    return proc, out, (out / "summary.md").read_text()


def test_gpu_suite_dry_run_from_a_wheelhouse(dry_run):
    proc, out, summary = dry_run
    assert proc.stdout.endswith(summary), "the summary is printed last"
    for stage in ("install", "compile", "step", "e2e", "tests"):
        assert f"| {stage} | ok |" in summary, summary
    installed = (out / "install.log").read_text()
    assert f"torch {__import__('torch').__version__}" in installed and "from " + sys.prefix in installed, installed
    assert "speedup_vs_best_peer" in summary and "e2e_speedup_vs_fairseq" in summary
    for name in ("ours_mlm", "fairseq_masked_lm", "ours_mlm_tlm", "ours_unmt", "fairseq_online_bt"):
        assert f"\n{name} " in summary, summary[-2000:]
    assert "skipped" in summary  # tests/test_gpu.py ran, and skipped without a GPU
    assert "\ntorch.compile works on cpu\n" in summary, summary


def test_the_virtualenv_is_made_without_ensurepip_and_pip_runs_from_its_wheel(dry_run):
    _, out, _ = dry_run
    installed = (out / "install.log").read_text()
    assert f"pip: {out}/venv/bin/python {out.parent}/wheels/{os.path.basename(pip_wheel())}/pip" in installed
    version = os.path.basename(pip_wheel()).split("-")[1]
    assert glob.glob(str(out / "venv" / "lib" / "python*" / "site-packages" / f"pip-{version}.dist-info"))


def test_the_requirements_are_checked_after_the_install(dry_run):
    _, _, summary = dry_run
    line = [x for x in summary.splitlines() if x.startswith("requirements: ")]
    assert line and line[0].startswith("requirements: ok ("), summary


def test_the_tests_find_fairseq_train_where_fairseq_is_the_nodes(dry_run):
    """fairseq is installed outside the suite's virtualenv (this one's, seen through the .pth): its bin has no
    fairseq-train, and tests/helpers_cli.py's cli() runs `python -m fairseq_cli.train` there."""
    _, out, _ = dry_run
    venv_python = out / "venv" / "bin" / "python"
    assert not (out / "venv" / "bin" / "fairseq-train").exists()
    probe = "from tests.helpers_cli import cli; print(cli('fairseq-train', '--help').stdout)"
    proc = run([venv_python, "-c", probe], cwd=ROOT, env=ENV)
    assert proc.stdout.startswith("usage: ") and "--task TASK" in proc.stdout, proc.stdout[:2000]


def test_gpu_suite_reports_failed_stages_and_goes_on(tmp_path):
    """A stage that times out (step=1) or fails (e2e: a data-bin without en) is reported and the next runs; a node
    without a working C++ compiler (planted: CXX names none, as a GPU node without one for Triton's launcher) fails
    the compile smoke test, whose first error line is in the summary and is the reason given to the benchmarks for
    leaving the compiled rows out."""
    data = make_data_bin(str(tmp_path), langs=("de",), pairs=(), train_copies=1)  # no en: the e2e runs fail
    env = dict(os.environ, PYTHON=sys.executable, CXX="/nonexistent/g++", CC="/nonexistent/gcc")
    suite = [SUITE, "--dry-run", "--out", tmp_path / "s", data]
    proc = run(["bash", *suite, "--limits", "step=1"], env=env, check=False, timeout=900)
    summary = (tmp_path / "s" / "summary.md").read_text()
    assert proc.returncode == 1
    assert "| step | timed out | " in summary and "| e2e | failed (1) |" in summary, summary
    assert "| tests | ok |" in summary, summary
    assert "| compile | failed (1) |" in summary, summary
    note = [line for line in summary.splitlines() if line.startswith("torch.compile unusable on this node: ")]
    assert len(note) == 1 and "C++ compiler" in note[0] and "/nonexistent/g++" in note[0], summary
    for script in ("pretrain_throughput.py", "train_e2e.py"):
        command = [line for line in proc.stdout.splitlines() if f"benchmarks/{script}" in line]
        assert len(command) == 1 and command[0].endswith(f"--skip-compiled {note[0]}"), proc.stdout
