"""`xlm-preprocess build-dict`: one dict.txt for all languages, from BPE'd training text.

The file follows the project's convention (vocabulary.py): `<special0> 0` .. `<special9> 0` first,
so that fairseq's Dictionary gives them ids 4..13 and the first word id 14 (XLM's layout, with pad and eos
swapped), then `word count` lines by decreasing count (ties in code-point order, so the file is the same on
every run). `--max-vocab N` follows XLM's `--max_vocab`: the dictionary has N entries in all (fairseq's 4
symbols and the 10 specials included), so N - 14 words are kept. `--min-count c` drops words seen fewer than c
times."""

from collections import Counter
from typing import Iterable, List, Tuple

from .common import (
    LineReader,
    PreprocessError,
    check_input_file,
    check_positive,
    describe_skipped,
    log,
)
from .progress import EVERY, Progress, file_size
from .vocabulary import FAIRSEQ_SYMBOLS, FIRST_WORD_ID, SPECIALS, write_dictionary

N_FIXED = FIRST_WORD_ID  # <s> <pad> </s> <unk> + <special0..9>


def count_tokens(paths: Iterable[str], skip_bad_lines: bool = False) -> Tuple[Counter, int]:
    paths = list(paths)
    counts = Counter()
    n_lines = 0
    sizes = [file_size(p) for p in paths]
    read = 0  # bytes of the files done
    with Progress("build-dict counting", total=None if None in sizes else sum(sizes)) as progress:
        for path, size in zip(paths, sizes):
            reader = LineReader(path, skip_bad_lines=skip_bad_lines)
            for line in reader:
                counts.update(line.split())
                n_lines += 1
                if not n_lines % EVERY:
                    progress.update_to(n_lines, read + (reader.position() or 0))
            read += size or 0
            if reader.skipped:
                log(describe_skipped(path, reader.skipped))
    return counts, n_lines


def select_words(
    counts: Counter, max_vocab: int = None, min_count: int = 1, reserved: Iterable[str] = ()
) -> List[Tuple[str, int]]:
    """Words by decreasing count (ties by the word), without those under min_count or in `reserved` (symbols
    the dictionary has already), at most max_vocab - 14."""
    reserved = set(reserved)
    words = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    words = [(w, c) for w, c in words if c >= min_count and w not in reserved]
    if max_vocab is not None:
        words = words[: max_vocab - N_FIXED]
    return words


def build_dictionary(
    paths: List[str], out_path: str, max_vocab: int = None, min_count: int = 1, skip_bad_lines: bool = False
) -> dict:
    """Count the tokens of `paths`, write `out_path` with vocabulary.write_dictionary, and return
    a summary {size, words, types, tokens, lines}."""
    if not paths:
        raise PreprocessError("build-dict: give at least one text file (-i)")
    for path in paths:
        check_input_file(path, "--input")
    if max_vocab is not None and max_vocab <= N_FIXED:
        raise PreprocessError(
            f"--max-vocab must be more than {N_FIXED} (4 fairseq symbols + 10 specials); got {max_vocab}"
        )
    check_positive(min_count, "--min-count")
    counts, n_lines = count_tokens(paths, skip_bad_lines)
    if not counts:
        raise PreprocessError(f"no tokens in {', '.join(paths)}: the files are blank")
    words = select_words(counts, max_vocab, min_count, reserved=SPECIALS + FAIRSEQ_SYMBOLS)

    size = write_dictionary(words, out_path)
    return {
        "size": size,
        "words": size - N_FIXED,
        "types": len(counts),
        "tokens": sum(counts.values()),
        "lines": n_lines,
    }


def add_arguments(parser):
    parser.add_argument(
        "-i",
        "--input",
        nargs="+",
        required=True,
        metavar="FILE",
        help="BPE'd training text (all languages: the dictionary is shared)",
    )
    parser.add_argument("-o", "--output", required=True, help="dict.txt to write")
    parser.add_argument(
        "--max-vocab",
        type=int,
        default=None,
        help="total dictionary size including the 14 fixed symbols (XLM's --max_vocab)",
    )
    parser.add_argument("--min-count", type=int, default=1, help="drop words seen fewer times")
    parser.add_argument("--skip-bad-lines", action="store_true", help="drop non-UTF-8 lines instead of failing")


def main(args) -> None:
    summary = build_dictionary(args.input, args.output, args.max_vocab, args.min_count, args.skip_bad_lines)
    dropped = summary["types"] - summary["words"]
    print(
        f"build-dict: {args.output}: {summary['size']} entries (14 fixed + {summary['words']} words) from "
        f"{summary['tokens']} tokens, {summary['types']} types in {len(args.input)} file(s)"
        + (f"; {dropped} types left out by --min-count/--max-vocab" if dropped else "")
    )
