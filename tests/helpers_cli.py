"""Running the real fairseq command lines (this virtualenv's console scripts) in tests."""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import torch

BIN = os.path.dirname(sys.executable)
USER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "xlm_fairseq")
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def run(cmd, check=True, timeout=600, input=None, env=None, cwd=None):
    """The one way tests run a process: its output captured, a timeout, and its output in the failure. This
    virtualenv's console scripts that import torch anyway (FORKED) start from the fork server when env is the tests'
    own (forkserver.py: the same script, without its 5 s of imports)."""
    cmd = [str(c) for c in cmd]
    if env is None and forked(cmd[0]):
        proc = FORK_SERVER.run(cmd, timeout=timeout, input=input, cwd=cwd)
    else:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env or ENV, timeout=timeout, input=input, cwd=cwd
        )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{os.path.basename(cmd[0])} failed ({proc.returncode}): {' '.join(cmd[1:])}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


# console scripts of this virtualenv that import torch and fairseq first thing (not xlm-preprocess, which must not)
FORKED = {"fairseq-train", "fairseq-generate", "fairseq-validate", "fairseq-interactive", "fairseq-preprocess"}
FORKED |= {"fairseq-hydra-train", "fairseq-eval-lm", "xlm-convert", "xlm-eval-lm", "xlm-embeddings", "xlm-train"}
# (each as its own process would be: forkserver.py restores what the server's imports changed that they read)


def forked(path: str) -> bool:
    return (
        os.environ.get("XLM_TESTS_FORK", "1") != "0"
        and os.path.dirname(path) == BIN
        and os.path.basename(path) in FORKED
        and os.path.exists(path)
    )


class ForkServer:
    """The client of tests/forkserver.py, started at the first command (one per test process)."""

    def __init__(self):
        self.proc = None

    def start_server(self):
        server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forkserver.py")
        self.proc = subprocess.Popen(
            [sys.executable, server], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV
        )
        atexit.register(self.proc.stdin.close)  # the server ends with its input

    def start(self, cmd, input=None, cwd=None, merge=False) -> "Forked":
        """merge: stderr into stdout (Popen's stderr=STDOUT)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start_server()
        folder = tempfile.mkdtemp(prefix="xlm-cli-")
        paths = {name: os.path.join(folder, name) for name in ("stdin", "stdout", "stderr", "status")}
        if merge:
            paths["stderr"] = paths["stdout"]
        with open(paths["stdin"], "w", encoding="utf-8") as f:
            f.write(input or "")
        request = dict(paths, script=cmd[0], argv=cmd[1:], env=ENV, cwd=cwd or os.getcwd())
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return Forked(cmd, json.loads(self.proc.stdout.readline())["pid"], folder, paths)

    def run(self, cmd, timeout=600, input=None, cwd=None) -> subprocess.CompletedProcess:
        return self.start(cmd, input, cwd).wait(timeout)


class Forked:
    """A command the fork server started: wait() gives its CompletedProcess (text stdout and stderr)."""

    def __init__(self, cmd, pid, folder, paths):
        self.cmd, self.pid, self.folder, self.paths = cmd, pid, folder, paths

    def wait(self, timeout=600) -> subprocess.CompletedProcess:
        try:
            deadline = time.monotonic() + timeout
            while not os.path.exists(self.paths["status"]):
                if time.monotonic() > deadline:
                    os.killpg(self.pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired(self.cmd, timeout)
                time.sleep(0.02)
            outputs = {"stderr": ""}
            for name in dict.fromkeys(("status", "stdout", "stderr")):
                if name == "stderr" and self.paths[name] == self.paths["stdout"]:
                    continue
                with open(self.paths[name], encoding="utf-8", errors="replace") as f:
                    outputs[name] = f.read()
            return subprocess.CompletedProcess(self.cmd, int(outputs["status"]), outputs["stdout"], outputs["stderr"])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


FORK_SERVER = ForkServer()


# fairseq's console scripts and the modules they run (ve-fairseq's entry points): where fairseq was installed outside
# this virtualenv (a GPU node's own fairseq, seen through benchmarks/gpu_suite.sh's .pth file), its bin has none
FAIRSEQ_SCRIPTS = {
    f"fairseq-{name}": f"fairseq_cli.{name.replace('-', '_')}"
    for name in ("eval-lm", "generate", "hydra-train", "interactive", "preprocess", "score", "train", "validate")
}


def cli(name, *args, **kw):
    """A console script of this virtualenv (fairseq-train, xlm-preprocess, ...); fairseq's, where this virtualenv
    has not got it, as `python -m` of its module."""
    script = os.path.join(BIN, name)
    if name in FAIRSEQ_SCRIPTS and not os.path.exists(script):
        return run([sys.executable, "-m", FAIRSEQ_SCRIPTS[name], *args], **kw)
    return run([script, *args], **kw)


def python_module(module, *args, **kw):
    """`python -m module ...` with this virtualenv's Python."""
    return run([sys.executable, "-m", module, *args], **kw)


def user_error(proc, prefix="error: "):
    """The one line a failed command printed for a user mistake (no traceback)."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if prefix in line]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def lm_train_args(
    data, save_dir, *extra, task="xlm_tlm", steps="en,fr,en-fr", max_update=20, epoch_size=80, langs="en,fr"
):
    return [
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        task,
        "--langs",
        langs,
        "--mlm-steps",
        steps,
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_lm_loss",
        "--tokens-per-sample",
        32,
        "--batch-size",
        4,
        "--max-tokens",
        400,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--max-update",
        max_update,
        "--epoch-size",
        epoch_size,
        "--save-dir",
        save_dir,
        "--log-format",
        "simple",
        "--log-interval",
        1,
        "--num-workers",
        0,
        "--seed",
        1,
        "--no-progress-bar",
        "--cpu",
        *extra,
    ]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_together(commands, timeout=600):
    """{name: [console script, args...]} started at once (their output merged), {name: output}; fails the test
    with a failed command's output."""
    started = {}
    for name, cmd in commands.items():
        cmd = [os.path.join(BIN, cmd[0])] + [str(a) for a in cmd[1:]]
        if forked(cmd[0]):
            started[name] = FORK_SERVER.start(cmd, merge=True)
        else:
            started[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    outs, codes = {}, {}
    for name, p in started.items():
        if isinstance(p, Forked):
            done = p.wait(timeout)
            outs[name], codes[name] = done.stdout, done.returncode
        else:
            outs[name], codes[name] = p.communicate(timeout=timeout)[0], p.returncode
    for name, code in codes.items():
        if code != 0:
            raise AssertionError(f"{commands[name][0]} ({name}) failed:\n{outs[name][-6000:]}")
    return outs


def train_two_ranks(args, timeout=600):
    """fairseq-train with 2 CPU processes (gloo). fairseq only spawns one process per GPU, so on CPU
    each rank is launched explicitly with --distributed-no-spawn. Returns rank 0's log."""
    dist = [
        "--distributed-world-size",
        2,
        "--distributed-backend",
        "gloo",
        "--distributed-init-method",
        f"tcp://127.0.0.1:{free_port()}",
        "--distributed-no-spawn",
        "--ddp-backend",
        "legacy_ddp",
    ]
    outs = run_together({rank: ["fairseq-train", *args, *dist, "--distributed-rank", rank] for rank in (1, 0)}, timeout)
    return outs[0]


def valid_metrics(log: str):
    """[{metric: value}] for every 'valid on' line of a fairseq log."""
    rows = []
    for line in log.splitlines():
        if "| valid on '" in line:
            fields = line.split("|")
            rows.append(
                {
                    m.group(1): float(m.group(2))
                    for f in fields
                    for m in [re.match(r"\s*(\S+) (-?[\d.]+(?:e[-+]?\d+)?|nan|inf)\s*$", f)]
                    if m
                }
            )
    return rows


def train_losses(log: str):
    """{num_updates: loss} from train_inner lines (log interval 1)."""
    return train_values(log, "loss")


def train_values(log: str, key: str):
    """{num_updates: value of `key`} from train_inner lines (log interval 1), e.g. key "gnorm": the norm of the
    gradient the optimizer received (after fairseq's normalisation, before clipping)."""
    out = {}
    for line in log.splitlines():
        if "train_inner" in line:
            value = re.search(rf"[ ,]{re.escape(key)}=([\d.]+(?:e[-+]?\d+)?)", line)
            upd = re.search(r"num_updates=(\d+)", line)
            if value and upd:
                out[int(upd.group(1))] = float(value.group(1))
    return out


def param_distance(a, b):
    """The L2 distance between two state dicts (all their float tensors as one vector)."""
    assert a.keys() == b.keys()
    return sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in a if a[k].is_floating_point()) ** 0.5


def assert_same_gradients(log_a: str, log_b: str, state_a, state_b, lr: float):
    """Two SGD runs (no momentum, no clipping, so update = -lr * gradient) took the same gradients: the
    logged gradient norms agree at every update, and the parameters differ by less than 1e-4 of one update's
    size (lr * gnorm). A gradient scaled by 2 in one run changes its gnorm and leaves a difference as large
    as an update; Adam, whose first updates are about lr in every coordinate whatever the gradient's scale,
    would hide both."""
    ga, gb = train_values(log_a, "gnorm"), train_values(log_b, "gnorm")
    assert ga and ga.keys() == gb.keys(), (ga, gb)
    for u in ga:
        assert ga[u] == pytest.approx(gb[u], rel=2e-3, abs=2e-3), (u, ga, gb)
    assert min(ga.values()) > 0.1  # a gradient large enough for the bound below to mean something
    assert param_distance(state_a, state_b) < 1e-4 * lr * min(ga.values())


def load_model_state(path):
    import xlm_fairseq  # noqa: F401  (allow-lists what fairseq checkpoints pickle)

    return torch.load(path)["model"]


def max_param_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)
