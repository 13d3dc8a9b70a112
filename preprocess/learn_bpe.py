"""`xlm-preprocess learn-bpe`: one BPE shared by all languages, learned on sentences sampled from each language's
training corpus with probability q_i ∝ p_i^α (paper §3.1), where p_i = n_i / Σ_k n_k and n_i is the number of
lines of language i. α < 1 raises the share of low-resource languages (α = 0.5 in the paper); a language whose
share exceeds its corpus has its lines repeated.

Backends: subword-nmt (merge operations; `--codes N` merges, continuation marker `@@ `) and sentencepiece
(BPE model; `--codes N` is the vocabulary size, word starts marked with `▁`). The sample is drawn with numpy's
PCG64 seeded by `--seed` and the language code, so it is the same on every run and does not change for one
language when another is added. A JSON file `CODES.meta.json` records the settings (binarize puts them in
manifest.json)."""

import io
import os
import sys
import zlib
from collections import Counter
from glob import glob
from typing import Dict, Iterator, List

from .common import (
    LineReader,
    PreprocessError,
    atomic_output,
    check_input_file,
    check_lang,
    check_positive,
    count_lines,
    describe_skipped,
    log,
    parse_langs,
    temp_name,
    write_json,
)
from .progress import EVERY, Progress, iterate

BACKENDS = ("subword-nmt", "sentencepiece")
DEFAULT_SAMPLE_CAP = 10_000_000


def meta_path(codes_path: str) -> str:
    return codes_path + ".meta.json"


def alpha_probabilities(line_counts: Dict[str, int], alpha: float) -> Dict[str, float]:
    """q_i = p_i^α / Σ_j p_j^α with p_i = n_i / Σ_k n_k."""
    total = sum(line_counts.values())
    if total <= 0:
        raise PreprocessError("no training lines in any language")
    weights = {lang: (n / total) ** alpha if n > 0 else 0.0 for lang, n in line_counts.items()}
    norm = sum(weights.values())
    return {lang: w / norm for lang, w in weights.items()}


def sample_counts(line_counts: Dict[str, int], alpha: float, sample_size: int) -> Dict[str, int]:
    """Number of sentences to draw from each language: q_i · S rounded by largest remainder, so they add up to
    exactly S (ties go to the alphabetically first language)."""
    q = alpha_probabilities(line_counts, alpha)
    exact = {lang: q[lang] * sample_size for lang in sorted(q)}
    counts = {lang: int(x) for lang, x in exact.items()}
    left = sample_size - sum(counts.values())
    by_remainder = sorted(exact, key=lambda lang: (-(exact[lang] - counts[lang]), lang))
    for lang in by_remainder[:left]:
        counts[lang] += 1
    return counts


def lang_files(input_dir: str, split: str, lang: str) -> List[str]:
    """The corpus of `lang` in `input_dir`: `{split}.{lang}` if present, else the `lang` sides of the pairs
    `{split}.{a}-{b}.{lang}`."""
    mono = os.path.join(input_dir, f"{split}.{lang}")
    if os.path.isfile(mono):
        return [mono]
    found = []
    for path in sorted(glob(os.path.join(input_dir, f"{split}.*-*.{lang}"))):
        pair = os.path.basename(path)[len(split) + 1 : -len(lang) - 1]
        if lang in pair.split("-") and len(pair.split("-")) == 2:
            found.append(path)
    return found


def _line_multiplicity(n: int, k: int, rng):
    """(times every line is taken, sorted indices taken once more) for k draws out of n lines. The indices stay
    a numpy array: 8 bytes a sampled line (a list of Python ints took ~36), at most the sample's size."""
    import numpy as np

    base, extra = divmod(k, n)
    chosen = rng.choice(n, size=extra, replace=False) if extra else np.zeros(0, dtype=np.int64)
    return base, np.sort(chosen)


def iter_sample(
    files: Dict[str, List[str]],
    counts: Dict[str, int],
    line_counts: Dict[str, int],
    seed: int,
    skip_bad_lines: bool = False,
    skipped: Dict[str, List[str]] = None,
) -> Iterator[str]:
    """Yield the sampled lines, language after language (sorted), each in corpus order. Progress: the lines
    read, of all the languages' corpora, reported every EVERY lines."""
    import numpy as np

    to_read = sum(line_counts[lang] for lang in files if counts[lang] and line_counts[lang])
    read = 0
    with Progress("learn-bpe sampling", total=to_read) as progress:
        for lang in sorted(files):
            n, k = line_counts[lang], counts[lang]
            if k == 0 or n == 0:
                continue
            rng = np.random.default_rng([seed, zlib.crc32(lang.encode())])
            base, extra = _line_multiplicity(n, k, rng)
            pos, index = 0, 0
            next_extra = int(extra[0]) if len(extra) else -1
            for path in files[lang]:
                reader = LineReader(path, skip_bad_lines=skip_bad_lines)
                for line in reader:
                    times = base
                    if index == next_extra:
                        times += 1
                        pos += 1
                        next_extra = int(extra[pos]) if pos < len(extra) else -1
                    for _ in range(times):
                        yield line
                    index += 1
                    if not index % EVERY:
                        progress.update_to(read + index)
                if reader.skipped and skipped is not None:
                    skipped.setdefault(lang, []).append(describe_skipped(path, reader.skipped))
            read += index
            progress.update_to(read)


def _learn_subword_nmt(sentences: Iterator[str], out_path: str, n_codes: int, min_frequency: int) -> int:
    from subword_nmt import learn_bpe as snmt

    words = Counter()
    for line in sentences:
        words.update(line.split())
    if not words:
        raise PreprocessError("the BPE sample has no words: the training text is blank")
    vocab = io.StringIO("".join(f"{w} {c}\n" for w, c in words.most_common()))
    # subword-nmt draws its own tqdm bar over the N merges: ours instead, which also writes plain lines to a log
    snmt.tqdm = lambda iterable, *a, **k: iterate(iterable, "learn-bpe merges", len(iterable), "merges", every=10)
    with atomic_output(out_path) as out:
        try:
            snmt.learn_bpe(vocab, out, n_codes, min_frequency=min_frequency, is_dict=True)
        except ValueError as e:  # max() of no pair statistics: every word is a single character
            raise PreprocessError(f"subword-nmt found no pair of symbols to merge ({e})") from None
    with open(out_path, encoding="utf-8") as f:
        return sum(1 for line in f if not line.startswith("#version"))


def _learn_sentencepiece(
    sentences: Iterator[str], out_path: str, n_codes: int, seed: int, workers: int, character_coverage: float
) -> int:
    import sentencepiece as spm

    prefix = temp_name(out_path)
    spm.set_random_generator_seed(seed)
    failure = []

    def guarded():  # sentencepiece turns an exception inside the iterator into a RuntimeError with a traceback
        try:
            yield from sentences
        except PreprocessError as e:
            failure.append(e)
            raise

    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=guarded(),
            model_prefix=prefix,
            vocab_size=n_codes,
            model_type="bpe",
            character_coverage=character_coverage,
            normalization_rule_name="identity",
            input_sentence_size=0,
            shuffle_input_sentence=False,
            max_sentence_length=1 << 16,
            hard_vocab_limit=False,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            unk_id=0,
            num_threads=workers,
            minloglevel=2,
        )
    except (RuntimeError, OSError) as e:
        for ext in (".model", ".vocab"):
            if os.path.exists(prefix + ext):
                os.remove(prefix + ext)
        if failure:
            raise failure[0] from None
        raise PreprocessError(
            f"sentencepiece could not learn --codes {n_codes}: {str(e).strip().splitlines()[-1]}"
        ) from None
    os.replace(prefix + ".vocab", out_path + ".vocab")
    os.replace(prefix + ".model", out_path)
    processor = spm.SentencePieceProcessor(model_file=out_path)
    return processor.get_piece_size()


def learn(
    files: Dict[str, List[str]],
    out_path: str,
    n_codes: int,
    alpha: float = 0.5,
    backend: str = "subword-nmt",
    sample_size: int = None,
    seed: int = 0,
    workers: int = 1,
    min_frequency: int = 2,
    character_coverage: float = 1.0,
    sample_output: str = None,
    skip_bad_lines: bool = False,
    out=None,
) -> dict:
    """Learn the shared BPE on an α-sample of `files` ({lang: [paths]}) and write `out_path` and its meta file.
    Prints the per-language table to `out` (stdout). Returns the meta dict."""
    out = out or sys.stdout
    if backend not in BACKENDS:
        raise PreprocessError(f"--backend: unknown BPE backend '{backend}' (choose from {', '.join(BACKENDS)})")
    check_positive(n_codes, "--codes")
    if not 0 < alpha <= 1:
        raise PreprocessError(f"--alpha must be in (0, 1] (got {alpha}); the paper uses 0.5")
    line_counts = {}
    for lang in sorted(files):
        if not files[lang]:
            raise PreprocessError(f"no training text for language '{lang}'")
        for path in files[lang]:
            check_input_file(path, f"training text of '{lang}'")
        line_counts[lang] = sum(count_lines(p) for p in files[lang])
    if sample_size is None:
        sample_size = min(sum(line_counts.values()), DEFAULT_SAMPLE_CAP)
    check_positive(sample_size, "--sample-size")
    counts = sample_counts(line_counts, alpha, sample_size)
    q = alpha_probabilities(line_counts, alpha)
    total = sum(line_counts.values())

    print(f"learn-bpe: {backend}, {n_codes} codes, alpha={alpha}, sample of {sample_size} sentences", file=out)
    print(f"{'lang':<8}{'lines':>12}{'p':>9}{'q':>9}{'sampled':>12}", file=out)
    for lang in sorted(files):
        print(
            f"{lang:<8}{line_counts[lang]:>12}{line_counts[lang] / total:>9.4f}{q[lang]:>9.4f}{counts[lang]:>12}",
            file=out,
        )
    out.flush()

    skipped: Dict[str, List[str]] = {}
    sentences = iter_sample(files, counts, line_counts, seed, skip_bad_lines, skipped)
    if sample_output:
        with atomic_output(sample_output) as f:
            for line in sentences:
                f.write(line + "\n")
        sentences = iter(LineReader(sample_output))
    if backend == "subword-nmt":
        learned = _learn_subword_nmt(sentences, out_path, n_codes, min_frequency)
    else:
        learned = _learn_sentencepiece(sentences, out_path, n_codes, seed, workers, character_coverage)
    for messages in skipped.values():
        for msg in messages:
            log(msg)
    meta = {
        "backend": backend,
        "codes": n_codes,
        "learned": learned,
        "alpha": alpha,
        "sample_size": sample_size,
        "seed": seed,
        "languages": {
            lang: {"lines": line_counts[lang], "p": line_counts[lang] / total, "q": q[lang], "sampled": counts[lang]}
            for lang in sorted(files)
        },
    }
    write_json(meta_path(out_path), meta)
    what = "merges" if backend == "subword-nmt" else "pieces"
    print(f"wrote {out_path} ({learned} {what})", file=out)
    return meta


def parse_input_overrides(items: List[str]) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for item in items or []:
        lang, sep, path = item.partition("=")
        if not sep or not path:
            raise PreprocessError(f"--input: expected LANG=PATH, got '{item}'")
        found.setdefault(check_lang(lang, "--input"), []).append(path)
    return found


def add_arguments(parser):
    parser.add_argument("--langs", required=True, help="comma-separated languages sharing the BPE, e.g. en,fr")
    parser.add_argument("--input-dir", help="folder of tokenised text: {split}.{lang} or {split}.{a}-{b}.{lang}")
    parser.add_argument("--split", default="train", help="which split to learn on (default: train)")
    parser.add_argument(
        "--input",
        action="append",
        metavar="LANG=PATH",
        help="text of one language (repeatable; overrides --input-dir for that language)",
    )
    parser.add_argument("-o", "--output", required=True, help="codes file to write (sentencepiece: the .model)")
    parser.add_argument(
        "--codes",
        type=int,
        default=30000,
        help="subword-nmt: merge operations; sentencepiece: vocabulary size (default 30000)",
    )
    parser.add_argument("--alpha", type=float, default=0.5, help="sampling exponent, q_i ∝ p_i^alpha (paper: 0.5)")
    parser.add_argument("--backend", default="subword-nmt", choices=BACKENDS)
    parser.add_argument(
        "--sample-size",
        type=int,
        default=None,
        help=f"total sentences sampled (default: all lines, at most {DEFAULT_SAMPLE_CAP})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="sentencepiece training threads")
    parser.add_argument("--min-frequency", type=int, default=2, help="subword-nmt: stop below this pair count")
    parser.add_argument("--character-coverage", type=float, default=1.0, help="sentencepiece character coverage")
    parser.add_argument("--sample-output", help="also write the sampled sentences to this file")
    parser.add_argument("--skip-bad-lines", action="store_true", help="drop non-UTF-8 lines instead of failing")


def main(args) -> None:
    langs = parse_langs(args.langs)
    check_positive(args.workers, "--workers")
    overrides = parse_input_overrides(args.input)
    unknown = sorted(set(overrides) - set(langs))
    if unknown:
        raise PreprocessError(f"--input: language '{unknown[0]}' is not in --langs {args.langs}")
    files = {}
    for lang in langs:
        if lang in overrides:
            files[lang] = overrides[lang]
        elif args.input_dir:
            if not os.path.isdir(args.input_dir):
                raise PreprocessError(f"--input-dir: {args.input_dir} is not a folder")
            files[lang] = lang_files(args.input_dir, args.split, lang)
            if not files[lang]:
                raise PreprocessError(
                    f"no {args.split} text for '{lang}' in {args.input_dir} "
                    f"(expected {args.split}.{lang} or {args.split}.XX-{lang}.{lang})"
                )
        else:
            raise PreprocessError(f"no text for '{lang}': give --input-dir or --input {lang}=PATH")
    learn(
        files,
        args.output,
        args.codes,
        args.alpha,
        args.backend,
        args.sample_size,
        args.seed,
        args.workers,
        args.min_frequency,
        args.character_coverage,
        args.sample_output,
        args.skip_bad_lines,
    )
