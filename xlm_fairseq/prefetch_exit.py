"""Stop fairseq's batch-prefetching threads before the interpreter exits.

fairseq-train prepares batches ahead of the model in a daemon thread (fairseq/data/iterators.py:
BackgroundConsumer, --data-buffer-size). When training stops before the epoch ends (--max-update,
--stop-time-hours, --epoch-size beyond what one run trains), that thread is still collating the next batches
while the main thread returns. Python then ends it wherever it stands; if it stands inside a torch operation that
released the GIL, ending it unwinds through C++ frames that may not be unwound and the process aborts with
"terminate called without an active exception" (exit -6) after a run that finished well (pytorch/pytorch#38228).
Ending each such thread at a batch boundary from an atexit hook, which Python runs before it ends daemon
threads, makes the exit clean."""

import atexit
import queue
import threading

_registered = False


def stop_prefetch_threads(timeout: float = 30.0) -> None:
    """Let every live prefetching thread finish the batch in hand, then stop it: it stops after its next put
    (its length limit set to 0) and never blocks on a full queue, which is drained here meanwhile."""
    from fairseq.data.iterators import BackgroundConsumer

    for thread in threading.enumerate():
        if not isinstance(thread, BackgroundConsumer):
            continue
        thread._max_len = 0
        for _ in range(int(timeout / 0.05)):
            if not thread.is_alive():
                break
            try:
                while True:
                    thread._queue.get_nowait()
            except queue.Empty:
                pass
            thread.join(0.05)


def register() -> None:
    """Install the atexit hook once per process."""
    global _registered
    if not _registered:
        atexit.register(stop_prefetch_threads)
        _registered = True
