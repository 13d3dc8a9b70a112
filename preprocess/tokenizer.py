"""`xlm-preprocess tokenize`: XLM's tools/tokenize.sh in Python (facebookresearch/XLM `tools/tokenize.sh`).

Every language: Moses replace-unicode-punctuation | normalize-punctuation -l LANG | remove-non-printing-char,
then Moses `tokenizer.perl -no-escape -l LANG` (sacremoses, escape=False, no aggressive hyphen splitting).
Chinese is segmented with jieba before the normalisation chain (XLM: Stanford segmenter), Thai with PyThaiNLP
and Japanese with fugashi/UniDic (XLM: KyTea) after it; these are optional extras. `--lowercase-strip-accents`
is XLM's lowercase_and_remove_accent.py. Output lines hold tokens separated by single spaces."""

import importlib
import os
import sys
import unicodedata

from .common import (
    STDIO,
    PreprocessError,
    check_input_file,
    check_lang,
    check_positive,
    describe_skipped,
    display_name,
    log,
    same_file,
    transform_file,
)

# language -> (tokeniser name, module to import, extra that installs it)
SPECIAL_TOKENIZERS = {
    "zh": ("jieba", "jieba", "zh"),
    "ja": ("fugashi", "fugashi", "ja"),
    "th": ("pythainlp", "pythainlp", "th"),
}
TOKENIZER_CHOICES = ("auto", "moses", "jieba", "fugashi", "pythainlp")


def lowercase_strip_accents(text: str) -> str:
    """XLM's tools/lowercase_and_remove_accent.py: lowercase, NFD, drop combining marks (Mn), lowercase again."""
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if unicodedata.category(c) != "Mn").lower()


def resolve_tokenizer(lang: str, name: str = "auto") -> str:
    """The tokeniser to use for `lang`: 'moses' or one of the language-specific ones."""
    check_lang(lang)
    if name not in TOKENIZER_CHOICES:
        raise PreprocessError(f"--tokenizer: unknown tokeniser '{name}' (choose from {', '.join(TOKENIZER_CHOICES)})")
    if name == "auto":
        return SPECIAL_TOKENIZERS[lang][0] if lang in SPECIAL_TOKENIZERS else "moses"
    if name == "moses":
        return name
    for code, (tok, _, _) in SPECIAL_TOKENIZERS.items():
        if tok == name and code != lang:
            raise PreprocessError(
                f"--tokenizer {name} tokenises '{code}' only, not '{lang}'; "
                f"use --tokenizer moses (or auto) for '{lang}'"
            )
    return name


def require_tokenizer(lang: str, name: str) -> None:
    """Fail with a one-line message naming the extra to install when a language-specific tokeniser is missing."""
    if name == "moses":
        return
    code, module, extra = next((c, m, e) for c, (t, m, e) in SPECIAL_TOKENIZERS.items() if t == name)
    try:
        importlib.import_module(module)
    except ImportError:
        raise PreprocessError(
            f"tokenising '{lang}' needs {module}, which is not installed: pip install 'xlm_fairseq[{extra}]'"
        ) from None


def moses_has_rules(lang: str) -> bool:
    """Whether sacremoses has a non-breaking-prefix list for `lang` (otherwise it uses the generic English one)."""
    from sacremoses.corpus import NonbreakingPrefixes

    return lang in set(NonbreakingPrefixes().available_langs.values())


class Tokenizer:
    """One line in, one tokenised line out. Built once per worker process."""

    def __init__(self, lang: str, lowercase: bool = False, tokenizer: str = "auto"):
        import regex
        from sacremoses import MosesPunctNormalizer, MosesTokenizer

        self.lang = lang
        self.kind = resolve_tokenizer(lang, tokenizer)
        self.lowercase = lowercase
        # replace-unicode-punctuation.perl, then normalize-punctuation.perl -l LANG. remove-non-printing-char.perl
        # replaces \p{C} by a space (sacremoses' own option deletes it, which glues words around a tab).
        self.normalizer = MosesPunctNormalizer(lang=lang, pre_replace_unicode_punct=True)
        self.non_printing = regex.compile(r"\p{C}")
        self.segment = None
        if self.kind == "moses":
            moses = MosesTokenizer(lang=lang)
            self.segment = lambda text: moses.tokenize(text, escape=False, return_str=True)
        elif self.kind == "jieba":
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
            self.pre_segment = lambda text: " ".join(jieba.cut(text))
        elif self.kind == "pythainlp":
            from pythainlp.tokenize import word_tokenize

            self.segment = lambda text: " ".join(word_tokenize(text, keep_whitespace=False))
        elif self.kind == "fugashi":
            import fugashi

            try:
                tagger = fugashi.Tagger()
            except RuntimeError as e:
                raise PreprocessError(
                    f"fugashi has no dictionary ({str(e).splitlines()[0]}): pip install 'xlm_fairseq[ja]'"
                ) from None
            self.segment = lambda text: " ".join(word.surface for word in tagger(text))

    def __call__(self, line: str) -> str:
        if self.kind == "jieba":
            line = self.pre_segment(line)
        text = self.normalizer.normalize(line)
        text = self.non_printing.sub(" ", text)
        if self.segment is not None:
            text = self.segment(text)
        if self.lowercase:
            text = lowercase_strip_accents(text)
        # every kind of whitespace (tab, U+2028, NBSP...) becomes one space: nothing a reader could take for a
        # line break survives, so line counts stay those of the input.
        return " ".join(text.split())


def tokenize_file(
    src: str,
    dst: str,
    lang: str,
    lowercase: bool = False,
    tokenizer: str = "auto",
    workers: int = 1,
    skip_bad_lines: bool = False,
    drop_lines=None,
    chunk_lines: int = 2000,
):
    """Tokenise `src` into `dst` ('-' = stdin/stdout). Returns common.TransformStats."""
    kind = resolve_tokenizer(lang, tokenizer)
    require_tokenizer(lang, kind)
    Tokenizer(lang, lowercase, kind)  # fail here, not in a worker's initializer (which a Pool would restart forever)
    return transform_file(
        Tokenizer,
        (lang, lowercase, kind),
        src,
        dst,
        workers=workers,
        skip_bad_lines=skip_bad_lines,
        drop_lines=drop_lines,
        chunk_lines=chunk_lines,
        what=f"tokenize {os.path.basename(display_name(src))}",
    )


def add_arguments(parser):
    parser.add_argument("--lang", required=True, help="language code (Moses rules, or zh/ja/th segmenters)")
    parser.add_argument("-i", "--input", default=STDIO, help="text file to read (default: stdin)")
    parser.add_argument("-o", "--output", default=STDIO, help="file to write (default: stdout)")
    parser.add_argument(
        "--lowercase-strip-accents",
        action="store_true",
        help="lowercase and remove accents (XLM_en, XNLI-15 models; not the MT models)",
    )
    parser.add_argument(
        "--tokenizer",
        default="auto",
        choices=TOKENIZER_CHOICES,
        help="auto: jieba for zh, fugashi for ja, pythainlp for th, Moses for the rest",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes (line chunks, order kept)")
    parser.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="drop lines that are not valid UTF-8 (and report how many) instead of failing",
    )
    parser.add_argument("--chunk-lines", type=int, default=2000, help="lines per chunk sent to a worker")


def main(args) -> None:
    lang = check_lang(args.lang)
    check_positive(args.workers, "--workers")
    check_positive(args.chunk_lines, "--chunk-lines")
    check_input_file(args.input, "--input")
    if same_file(args.input, args.output):
        raise PreprocessError(f"--output {args.output} is the input file; write to another file")
    kind = resolve_tokenizer(lang, args.tokenizer)
    if kind == "moses" and not moses_has_rules(lang):
        log(f"note: Moses has no rules for '{lang}'; using its generic (English) non-breaking prefixes")
    stats = tokenize_file(
        args.input,
        args.output,
        lang,
        args.lowercase_strip_accents,
        kind,
        args.workers,
        args.skip_bad_lines,
        chunk_lines=args.chunk_lines,
    )
    if stats.skipped:
        log(describe_skipped(args.input, stats.skipped))
    if args.output != STDIO:
        log(f"tokenize [{lang}, {kind}]: {stats.lines} lines {display_name(args.input)} -> {args.output}")
    sys.stderr.flush()
