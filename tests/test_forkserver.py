"""The tests' fork server (forkserver.py) runs a console script as its own process would: the same exit code, the
same standard output and error (the log lines in the same streams, the plugin's one-line errors, fairseq's own
tracebacks), the same training."""

import os
import re

from .helpers_cli import BIN, ENV, FORK_SERVER, cli, lm_train_args, run, train_losses
from .helpers_data import make_data_bin

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| ")  # fairseq's log time stamps
TIMINGS = re.compile(r"(wps|ups|wall|train_wall|gb_free)[ =][\d.]+|done training in [\d.]+ seconds|\d+\.\d+s")


def comparable(text):
    return [TIMINGS.sub("", STAMP.sub("", line)) for line in text.splitlines() if "/tmp" not in line]


def both_ways(cmd, **kw):
    """(forked, a process of its own: an env given to run() bypasses the server)."""
    return FORK_SERVER.run(cmd, **kw), run(cmd, env=dict(ENV), check=False, **kw)


def test_a_forked_command_is_the_command(tmp_path):
    data = make_data_bin(str(tmp_path), langs=("en", "fr"), pairs=(("en", "fr"),))
    train = os.path.join(BIN, "fairseq-train")
    args = [str(a) for a in lm_train_args(data, tmp_path / "ckpt", "--no-save", max_update=3)]
    forked, alone = both_ways([train, *args])
    assert forked.returncode == alone.returncode == 0
    assert train_losses(forked.stdout) == train_losses(alone.stdout) and len(train_losses(alone.stdout)) == 3
    assert comparable(forked.stdout) == comparable(alone.stdout)
    assert comparable(forked.stderr) == comparable(alone.stderr)
    forked, alone = both_ways([train, *args, "--criterion", "masked_lm"])
    assert forked.returncode == alone.returncode == 2
    assert forked.stderr == alone.stderr and forked.stderr.count("\n") == 1 and "Traceback" not in forked.stderr
    crash = [train, "--bogus"]  # fairseq's own RuntimeError without --task: a traceback and 1 both ways
    forked, alone = cli("fairseq-train", "--bogus", check=False), run(crash, env=dict(ENV), check=False)
    assert forked.returncode == alone.returncode == 1
