"""fairseq-train ends cleanly while fairseq's prefetching thread is still collating batches (prefetch_exit.py):
without the exit hook, Python ends that daemon thread inside a torch operation and the process aborts with
"terminate called without an active exception" after a run that finished well."""

import sys

from .helpers_cli import run

# a prefetching thread kept busy in torch: a buffer larger than the batches it makes before the main thread exits
SCRIPT = """
import sys, torch
from fairseq.data.iterators import BufferedIterator

class Batches:
    def __len__(self):
        return 10**6

    def __iter__(self):
        x = torch.randn(256, 256)
        for _ in range(10**6):
            x = x @ x
            x = x / x.norm()
            yield x

if sys.argv[1] == "hook":
    from xlm_fairseq.prefetch_exit import register
    register()
batches = BufferedIterator(10**6, Batches())
next(batches)
"""


def test_exit_while_the_prefetching_thread_computes():
    without = run([sys.executable, "-c", SCRIPT, "none"], check=False)
    assert without.returncode != 0 and "terminate called" in without.stderr  # the failure the hook prevents
    with_hook = run([sys.executable, "-c", SCRIPT, "hook"], check=False)
    assert with_hook.returncode == 0, with_hook.stderr[-2000:]
