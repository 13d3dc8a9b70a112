"""Progress of the long preprocessing steps (tokenize, learn-bpe's sampling and merges, apply-bpe, build-dict,
binarize) on stderr, cheap enough to leave on:

- on a terminal, a tqdm bar that is erased when the step ends (the step's own summary line follows):
      tokenize train.en:  45%|████▌     | 1,234,000 lines, 20,400 lines/s [01:00<01:13]
- otherwise (a log file, CI), a plain line every LOG_SECONDS, none for a step that ends sooner:
      tokenize train.en: 1,234,000 lines, 20,400 lines/s, 45% done, about 1m13s left

Callers report lines in batches (a chunk of a file, every 4096 lines of a loop), never one by one, and the
clock is read once per report; the bar is redrawn at most every BAR_SECONDS. `done`/`total` may count
something other than lines (the bytes of the input read so far, of the output written), which gives the
fraction and the time left while the counter shows lines."""

import os
import sys
import time
from typing import Iterable, Optional

LOG_SECONDS = 30.0
BAR_SECONDS = 0.5
BAR_DELAY = 1.0
EVERY = 4096  # lines between two reports of a loop that reads line by line


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _bar(total, what: str, stream):
    """A tqdm bar whose position is `done` of `total` and whose text shows our line counter."""
    from tqdm import tqdm

    class Bar(tqdm):
        counter = ""

        @property
        def format_dict(self):
            return dict(super().format_dict, counter=self.counter)

    return Bar(
        total=total,
        desc=what,
        file=stream,
        leave=False,
        dynamic_ncols=True,
        mininterval=0,
        delay=BAR_DELAY,  # none for a step that ends within a second
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {counter} [{elapsed}<{remaining}]"
        if total
        else "{desc}: {counter} [{elapsed}]",
    )


class Progress:
    """`with Progress("tokenize train.en", total=size) as p: ... p.update(len(chunk), done=bytes_read)`."""

    def __init__(self, what: str, total: Optional[float] = None, unit: str = "lines", stream=None, show=True):
        self.what, self.total, self.unit = what, total, unit
        self.stream = stream or sys.stderr
        self.lines = 0
        self.done = 0.0
        self.shown = (0, 0.0)
        self.start = time.monotonic()
        self.bar = None
        if not show:  # e.g. the step's output goes to the same terminal
            self.interval = float("inf")
        elif _is_terminal(self.stream):
            self.interval = BAR_SECONDS
            self.bar = _bar(total, what, self.stream)
        else:
            self.interval = LOG_SECONDS
        self.next_report = self.start + self.interval

    def update(self, lines: int, done: Optional[float] = None) -> None:
        """`lines` more lines processed; `done`: how far along `total` the step now is (default: the lines)."""
        self.lines += lines
        self.done = self.lines if done is None else done
        now = time.monotonic()
        if now >= self.next_report:
            self.next_report = now + self.interval
            self._show(now)

    def update_to(self, lines: int, done: Optional[float] = None) -> None:
        self.update(lines - self.lines, done)

    def _show(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        counter = f"{self.lines:,} {self.unit}, {self.lines / elapsed:,.0f} {self.unit}/s"
        if self.bar is not None:
            self.bar.counter = counter
            self.bar.update(min(self.done, self.total or self.done) - self.bar.n)
            return
        if (self.lines, self.done) == self.shown:  # nothing new (a step finishing its files): stay quiet
            return
        self.shown = (self.lines, self.done)
        line = f"{self.what}: {counter}"
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            line += f", {fraction:.0%} done"
            if 0 < fraction < 1:
                line += f", about {_duration(elapsed * (1 - fraction) / fraction)} left"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def iterate(items: Iterable, what: str, total: Optional[int] = None, unit: str = "lines", every: int = EVERY):
    """Yield the items, reporting every `every` of them."""
    with Progress(what, total, unit) as progress:
        n = 0
        for item in items:
            yield item
            n += 1
            if not n % every:
                progress.update_to(n)


def file_size(path: str) -> Optional[int]:
    """The size of a regular file, None for stdin or a pipe (no fraction to show)."""
    try:
        return os.path.getsize(path) if path != "-" and os.path.isfile(path) else None
    except OSError:
        return None
