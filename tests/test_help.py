"""Every script and command answers --help with its usage and exit status 0, and runs nothing: the examples' run.py
and study.py, examples/recipes.py, the benchmarks, the examples' run.sh, and every console script of setup.cfg with
each of its subcommands. "Runs nothing": it creates no file or folder (each runs in an empty folder, with the
examples' output folders pointed into it, and the repository's default output folders must not appear), it calls
no fairseq-*/xlm-*/apt-get/wget (recorders first on PATH) and, for the console scripts (called in one process per
tool), starts no process once its module is imported. The scripts run in parallel: most of them start in well
under a second."""

import configparser
import glob
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON_SCRIPTS = [
    "examples/demo/run.py",
    "examples/paper-mini/run.py",
    "examples/paper-mini/study.py",
    "examples/paper-mini/freedict.py",
    "examples/paper-mini/table2_gpu.py",
    "examples/recipes.py",
    *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "benchmarks", "*.py"))),
]
SHELL_SCRIPTS = sorted(
    os.path.relpath(p, ROOT)
    for p in glob.glob(os.path.join(ROOT, "examples", "*", "run.sh"))
    + glob.glob(os.path.join(ROOT, "examples", "*", "*.sbatch"))
    + glob.glob(os.path.join(ROOT, "benchmarks", "*.sh"))
)
# the folders the scripts write by default, at the repository's root: a --help must not create them
DEFAULT_OUTPUTS = ["demo-out", "paper-mini-out", "benchmarks-out", "lowres-lm-out", "gpu-suite-out", "wheelhouse"]
RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$HELP_RECORD"
"""
RECORDED = ["fairseq-train", "fairseq-generate", "fairseq-validate", "fairseq-preprocess", "apt-get", "wget", "srun"]


def console_scripts() -> dict:
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


# In one process per console script: its --help, then each subcommand's (the subcommands are the names its parser
# registers), with stdout captured, the folder left as it was, and starting any process an error.
TOOL_HELP = r"""
import argparse, contextlib, importlib, io, json, os, subprocess, sys

name, entry = sys.argv[1], sys.argv[2]
subcommands = []
_add_parser = argparse._SubParsersAction.add_parser


def add_parser(self, sub, *a, **k):
    if sub not in subcommands:
        subcommands.append(sub)
    return _add_parser(self, sub, *a, **k)


def no_process(*a, **k):
    raise RuntimeError(f"--help started a process: {a[:1]}")


argparse._SubParsersAction.add_parser = add_parser
module, function = entry.split(":")
main = getattr(importlib.import_module(module), function)
subprocess.Popen = no_process  # after the import: a CUDA build of torch runs ldconfig when it is imported


def answer(args):
    sys.argv = [name, *args]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main()
    except SystemExit as e:
        status = e.code
    except Exception as e:
        status = f"{type(e).__name__}: {e}"
    return {"args": args, "status": status or 0, "output": out.getvalue()}


results = [answer(["--help"])]
results += [answer([sub, "--help"]) for sub in list(subcommands)]
print(json.dumps(results))
"""


def run(cmd, tmp, timeout=120):
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONWARNINGS="ignore",
        PATH=f"{tmp / 'bin'}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        HELP_RECORD=str(tmp / "record"),
        DEMO_OUT=str(tmp / "work" / "demo-out"),
        OUT=str(tmp / "work" / "out"),
        WORK=str(tmp / "work" / "work"),
        PYTHON=sys.executable,
    )
    cwd = tmp / "work"
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, f"timeout after {timeout} s", e.stdout or "", e.stderr or "")


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    """{what: CompletedProcess} of every --help, run in parallel; and what they left behind."""
    tmp = tmp_path_factory.mktemp("help")
    (tmp / "work").mkdir()
    (tmp / "bin").mkdir()
    for name in RECORDED + list(console_scripts()):
        path = tmp / "bin" / name
        path.write_text(RECORDER)
        path.chmod(0o755)
    (tmp / "record").write_text("")
    existed = {d: os.path.exists(os.path.join(ROOT, d)) for d in DEFAULT_OUTPUTS}
    jobs = {s: [sys.executable, os.path.join(ROOT, s), "--help"] for s in PYTHON_SCRIPTS}
    jobs.update({s: ["bash", os.path.join(ROOT, s), "--help"] for s in SHELL_SCRIPTS})
    jobs.update({tool: [sys.executable, "-c", TOOL_HELP, tool, entry] for tool, entry in console_scripts().items()})
    with ThreadPoolExecutor(4) as pool:
        done = dict(zip(jobs, pool.map(lambda cmd: run(cmd, tmp), jobs.values())))
    work = str(tmp / "work")
    left = {
        "files": sorted(os.path.relpath(os.path.join(d, n), work) for d, ds, fs in os.walk(work) for n in ds + fs),
        "ran": (tmp / "record").read_text().splitlines(),
        "created at the root": [d for d in DEFAULT_OUTPUTS if os.path.exists(os.path.join(ROOT, d)) and not existed[d]],
    }
    return done, left


def check_usage(what, proc):
    assert proc.returncode == 0, (
        f"`{what} --help` exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    )
    name = os.path.basename(what)
    assert name in proc.stdout and proc.stdout.count("\n") >= 2, f"`{what} --help` printed no usage:\n{proc.stdout}"


@pytest.mark.parametrize("script", PYTHON_SCRIPTS + SHELL_SCRIPTS)
def test_scripts_answer_help(answers, script):
    check_usage(script, answers[0][script])


@pytest.mark.parametrize("tool", sorted(console_scripts()))
def test_console_scripts_and_subcommands_answer_help(answers, tool):
    proc = answers[0][tool]
    assert proc.returncode == 0 and proc.stdout.strip(), f"{tool}: {proc.returncode}\n{proc.stderr[-3000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for r in results:
        shown = " ".join([tool, *r["args"]])
        assert r["status"] == 0, f"`{shown}` exited {r['status']}:\n{r['output'][-2000:]}"
        assert "usage:" in r["output"] and tool in r["output"], f"`{shown}` printed no usage:\n{r['output'][-2000:]}"


def test_help_runs_nothing(answers):
    left = answers[1]
    assert left == {"files": [], "ran": [], "created at the root": []}, left
