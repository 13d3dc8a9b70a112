"""Helpers shared by the subcommands: the user-error type, line reading with UTF-8 checks, outputs written to a
temporary name and renamed, language codes, and an order-preserving parallel map over chunks of lines.

Lines are split on '\\n' only (never on '\\r', U+2028 or other characters that Python's text mode would treat as
line breaks), so line numbers and line counts agree with `wc -l` and with fairseq's binarizer once the text has
been through `tokenize` (which turns every kind of whitespace into single spaces)."""

import collections
import contextlib
import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import stat
import sys
from typing import Callable, Iterable, Iterator, List, Optional, Sequence

from .progress import Progress, file_size


class PreprocessError(Exception):
    """A mistake a user can make (bad flag, missing file, mismatched data). The CLI prints it as one line,
    without a traceback, and exits with status 1."""


# language codes become parts of file names (`train.en`, `train.en-fr.en`): no '.', '-' or upper case.
_LANG_RE = re.compile(r"^[a-z][a-z0-9_]*$")
STDIO = "-"


def check_lang(lang: str, flag: str = "--lang") -> str:
    if not _LANG_RE.match(lang or ""):
        raise PreprocessError(
            f"{flag}: '{lang}' is not a language code (lower-case letters, digits and '_', e.g. en, fr, zh_classical)"
        )
    return lang


def parse_langs(text: str, flag: str = "--langs") -> List[str]:
    """`en,fr,de` -> ['de', 'en', 'fr'] (sorted: language ids are the index in the sorted list, as in XLM)."""
    langs = [x.strip() for x in (text or "").split(",") if x.strip()]
    if not langs:
        raise PreprocessError(f"{flag}: give at least one language, e.g. {flag} en,fr")
    for lang in langs:
        check_lang(lang, flag)
    dup = sorted({x for x in langs if langs.count(x) > 1})
    if dup:
        raise PreprocessError(f"{flag}: language {dup[0]} is listed twice")
    return sorted(langs)


def check_input_file(path: str, flag: str = "--input", allow_empty: bool = False) -> None:
    if path == STDIO:
        return
    if not os.path.exists(path):
        raise PreprocessError(f"{flag}: {path}: no such file")
    if os.path.isdir(path):
        raise PreprocessError(f"{flag}: {path} is a folder, not a text file")
    st = os.stat(path)
    if not allow_empty and stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise PreprocessError(f"{flag}: {path} is empty")


def check_positive(value: int, flag: str) -> int:
    if value is None or value < 1:
        raise PreprocessError(f"{flag} must be at least 1 (got {value})")
    return value


def _open_binary(path: str):
    if path == STDIO:
        return contextlib.nullcontext(sys.stdin.buffer)
    try:
        return open(path, "rb")
    except OSError as e:
        raise PreprocessError(f"{path}: {e.strerror}") from None


def display_name(path: str) -> str:
    return "<stdin>" if path == STDIO else path


class LineReader:
    """Iterate the lines of a file ('-' = stdin) as str without the line ending.

    Invalid UTF-8 raises PreprocessError naming the file and the line, or, with skip_bad_lines, drops the line
    and records its number in `skipped`. `drop_lines` (1-based numbers) are left out silently: `prepare` uses
    it to drop the same lines from both sides of a pair. A byte-order mark at the start is removed."""

    def __init__(self, path: str, skip_bad_lines: bool = False, drop_lines: Optional[set] = None):
        self.path = path
        self.skip_bad_lines = skip_bad_lines
        self.drop_lines = drop_lines or set()
        self.skipped: List[int] = []
        self.dropped = 0
        self._file = None

    def position(self) -> Optional[int]:
        """Bytes of the file read so far (for progress), None for stdin or when not reading."""
        try:
            return self._file.tell() if self._file is not None else None
        except (OSError, ValueError):
            return None

    def __iter__(self) -> Iterator[str]:
        with _open_binary(self.path) as f:
            self._file = f
            for lineno, raw in enumerate(f, 1):
                if lineno in self.drop_lines:
                    self.dropped += 1
                    continue
                if raw.endswith(b"\n"):
                    raw = raw[:-1]
                    if raw.endswith(b"\r"):
                        raw = raw[:-1]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    if self.skip_bad_lines:
                        self.skipped.append(lineno)
                        continue
                    raise PreprocessError(
                        f"{display_name(self.path)}:{lineno}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                        f"{e.start + 1}); re-encode the file (e.g. iconv -f latin1 -t utf-8) or pass --skip-bad-lines"
                    ) from None
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                yield line


def find_bad_lines(path: str) -> set:
    """Numbers of the lines that are not valid UTF-8."""
    bad = set()
    with _open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.add(lineno)
    return bad


# bytes read at a time where a file is scanned rather than read line by line: small enough that a scan holds
# little (tests/test_memory_scaling.py compares the memory of corpora of 2,000 and 20,000 lines)
READ_BLOCK = 1 << 16


def count_lines(path: str) -> int:
    """Number of lines as `LineReader` sees them: '\\n'-terminated ones plus an unterminated last one."""
    n = 0
    last = b"\n"
    with _open_binary(path) as f:
        while True:
            block = f.read(READ_BLOCK)
            if not block:
                break
            n += block.count(b"\n")
            last = block[-1:]
    return n + (0 if last == b"\n" else 1)


def has_text(path: str) -> bool:
    """True when the file has at least one line with something other than whitespace."""
    with _open_binary(path) as f:
        for raw in f:
            if raw.strip():
                return True
    return False


def temp_name(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.tmp-{os.getpid()}")


_TEMP_RE = re.compile(r"^\..+\.tmp-(\d+)$")


def remove_stale_temps(folder: str) -> int:
    """Remove temporary files and folders (`.NAME.tmp-PID`) left by processes that no longer run (killed runs)."""
    removed = 0
    if not os.path.isdir(folder):
        return 0
    for name in os.listdir(folder):
        m = _TEMP_RE.match(name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # still running: not ours to remove
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
        removed += 1
    return removed


@contextlib.contextmanager
def atomic_output(path: str, binary: bool = False):
    """Open `path` for writing under a temporary name and rename it into place only when the block ends
    without an error, so a crash or Ctrl-C never leaves half a file under the final name. '-' = stdout."""
    if path == STDIO:
        if binary:
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
            return
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            yield out
            out.flush()
        finally:
            out.detach()
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = temp_name(path)
        f = open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8", newline="\n")
    except OSError as e:
        raise PreprocessError(f"cannot write {path}: {e.strerror}") from None
    try:
        with f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str, data) -> None:
    with atomic_output(path) as f:
        json.dump(data, f, indent=2, sort_keys=False, ensure_ascii=False)
        f.write("\n")


def read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def same_file(a: str, b: str) -> bool:
    if STDIO in (a, b):
        return False
    return os.path.abspath(a) == os.path.abspath(b) or (
        os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    )


# ---------------------------------------------------------------------------------------------------------------
# order-preserving parallel map over chunks of lines

_WORKER_FN: Optional[Callable[[str], str]] = None


def _init_worker(factory, args):
    global _WORKER_FN
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent, which stops the pool
    _WORKER_FN = factory(*args)


def _run_chunk(lines: Sequence[str]) -> List[str]:
    fn = _WORKER_FN
    return [fn(line) for line in lines]


def _chunks(lines: Iterable[str], size: int) -> Iterator[List[str]]:
    chunk = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def map_lines(
    factory, factory_args: tuple, lines: Iterable[str], workers: int = 1, chunk_lines: int = 2000
) -> Iterator[List[str]]:
    """Yield `fn(line)` for every line, in input order, one list per chunk, where `fn = factory(*factory_args)` is
    built once per worker process. At most `4 * workers` chunks are in flight, so memory stays bounded on
    files of any size. `factory` must be a module-level class or function (it is sent to the workers)."""
    if workers <= 1:
        fn = factory(*factory_args)
        for chunk in _chunks(lines, chunk_lines):
            yield [fn(line) for line in chunk]
        return
    with multiprocessing.get_context().Pool(
        workers, initializer=_init_worker, initargs=(factory, factory_args)
    ) as pool:
        pending = collections.deque()
        for chunk in _chunks(lines, chunk_lines):
            pending.append(pool.apply_async(_run_chunk, (chunk,)))
            if len(pending) >= 4 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def transform_file(
    factory,
    factory_args: tuple,
    src: str,
    dst: str,
    workers: int = 1,
    skip_bad_lines: bool = False,
    drop_lines: Optional[set] = None,
    chunk_lines: int = 2000,
    what: Optional[str] = None,
) -> "TransformStats":
    """Read `src` line by line, apply the per-line function built by `factory`, write `dst` atomically. Progress
    (`what`, e.g. 'tokenize train.en') is reported per chunk, its fraction from the bytes of `src` read; none
    when the output itself goes to the terminal."""
    reader = LineReader(src, skip_bad_lines=skip_bad_lines, drop_lines=drop_lines)
    n = 0
    show = not (dst == STDIO and sys.stdout.isatty())
    with Progress(what or os.path.basename(display_name(src)), total=file_size(src), show=show) as progress:
        with atomic_output(dst) as out:
            for chunk in map_lines(factory, factory_args, reader, workers=workers, chunk_lines=chunk_lines):
                out.write("\n".join(chunk))
                out.write("\n")
                n += len(chunk)
                progress.update(len(chunk), reader.position())
    return TransformStats(n, reader.skipped, reader.dropped)


TransformStats = collections.namedtuple("TransformStats", "lines skipped dropped")


def log(msg: str = "", file=None) -> None:
    print(msg, file=file or sys.stderr, flush=True)


def describe_skipped(path: str, skipped: List[int]) -> str:
    head = ", ".join(str(x) for x in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
    return f"{display_name(path)}: skipped {len(skipped)} line(s) with invalid UTF-8 (line {head})"
