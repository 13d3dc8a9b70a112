"""`xlm-preprocess apply-bpe`: split tokenised text into the shared BPE units.

Both outputs are undone by fairseq's own post-processing: subword-nmt marks word-internal ends with `@@ `
(`fairseq-generate --post-process subword_nmt`, or `--remove-bpe`, i.e. `@@ `), sentencepiece writes pieces with
`▁` at word starts (`--post-process sentencepiece`). The codes file is checked against the backend first, so
a sentencepiece model given to subword-nmt (or the other way round) fails with a message saying which
backend it belongs to."""

import os

from .common import (
    STDIO,
    PreprocessError,
    check_input_file,
    check_positive,
    describe_skipped,
    display_name,
    log,
    same_file,
    transform_file,
)
from .learn_bpe import BACKENDS

# what fairseq's --post-process needs to remove each backend's markers
POST_PROCESS = {"subword-nmt": "subword_nmt", "sentencepiece": "sentencepiece"}


def _subword_nmt_problem(path: str):
    """None if `path` reads as a subword-nmt codes file, else what is wrong with it."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    lines = text.rstrip("\n").split("\n")
    if lines and lines[0].startswith("#version:"):
        lines = lines[1:]
    if not lines or lines == [""]:
        return "it holds no merge operations"
    for i, line in enumerate(lines):
        if len(line.strip("\r ").split(" ")) != 2:
            return f"line {i + 1} is not two symbols separated by a space"
    return None


def _sentencepiece_problem(path: str):
    import sentencepiece as spm

    try:
        spm.SentencePieceProcessor(model_file=path)
    except (RuntimeError, OSError) as e:
        return str(e).strip().splitlines()[-1] if str(e).strip() else "it does not load"
    return None


def check_codes(path: str, backend: str, flag: str = "--codes-file") -> None:
    """Raise PreprocessError unless `path` is a codes file of `backend`."""
    if backend not in BACKENDS:
        raise PreprocessError(f"--backend: unknown BPE backend '{backend}' (choose from {', '.join(BACKENDS)})")
    check_input_file(path, flag)
    if backend == "subword-nmt":
        problem = _subword_nmt_problem(path)
        if problem is None:
            return
        if _sentencepiece_problem(path) is None:
            raise PreprocessError(
                f"{flag} {path} is a sentencepiece model, not subword-nmt codes: use --backend sentencepiece"
            )
        raise PreprocessError(f"{flag} {path} is not a subword-nmt codes file ({problem})")
    problem = _sentencepiece_problem(path)
    if problem is None:
        return
    if _subword_nmt_problem(path) is None:
        raise PreprocessError(
            f"{flag} {path} is a subword-nmt codes file, not a sentencepiece model: use --backend subword-nmt"
        )
    raise PreprocessError(f"{flag} {path} is not a sentencepiece model ({problem})")


class BPEApplier:
    """One tokenised line in, one line of BPE units out. Built once per worker process."""

    def __init__(self, backend: str, codes_path: str):
        self.backend = backend
        if backend == "subword-nmt":
            from subword_nmt.apply_bpe import BPE

            with open(codes_path, encoding="utf-8") as f:
                bpe = BPE(f, separator="@@")
            self._segment = lambda line: " ".join(bpe.segment_tokens(line.split()))
        else:
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=codes_path)
            self._segment = lambda line: " ".join(sp.encode(line, out_type=str))

    def __call__(self, line: str) -> str:
        return self._segment(line)


def remove_bpe(line: str, backend: str) -> str:
    """What fairseq's post-processing gives back (used by tests and the round-trip check)."""
    from fairseq.data.data_utils import post_process

    return post_process(line, POST_PROCESS[backend])


def apply_file(
    src: str,
    dst: str,
    codes_path: str,
    backend: str,
    workers: int = 1,
    skip_bad_lines: bool = False,
    chunk_lines: int = 2000,
):
    check_codes(codes_path, backend)
    return transform_file(
        BPEApplier,
        (backend, codes_path),
        src,
        dst,
        workers=workers,
        skip_bad_lines=skip_bad_lines,
        chunk_lines=chunk_lines,
        what=f"apply-bpe {os.path.basename(display_name(src))}",
    )


def add_arguments(parser):
    parser.add_argument("--codes-file", required=True, help="codes written by learn-bpe (sentencepiece: .model)")
    parser.add_argument("--backend", default="subword-nmt", choices=BACKENDS)
    parser.add_argument("-i", "--input", default=STDIO, help="tokenised text (default: stdin)")
    parser.add_argument("-o", "--output", default=STDIO, help="file to write (default: stdout)")
    parser.add_argument("--workers", type=int, default=1, help="processes (line chunks, order kept)")
    parser.add_argument("--skip-bad-lines", action="store_true", help="drop non-UTF-8 lines instead of failing")
    parser.add_argument("--chunk-lines", type=int, default=2000, help="lines per chunk sent to a worker")


def main(args) -> None:
    check_positive(args.workers, "--workers")
    check_positive(args.chunk_lines, "--chunk-lines")
    check_input_file(args.input, "--input")
    if same_file(args.input, args.output):
        raise PreprocessError(f"--output {args.output} is the input file; write to another file")
    stats = apply_file(
        args.input, args.output, args.codes_file, args.backend, args.workers, args.skip_bad_lines, args.chunk_lines
    )
    if stats.skipped:
        log(describe_skipped(args.input, stats.skipped))
    if args.output != STDIO:
        log(f"apply-bpe [{args.backend}]: {stats.lines} lines {display_name(args.input)} -> {args.output}")
