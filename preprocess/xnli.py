"""`xlm-preprocess xnli`: the XNLI benchmark as raw labelled text for `xlm-preprocess classification`
(XLM's get-data-xnli.sh / prepare-xnli.sh).

Reads the files as distributed (no download here):
  XNLI-1.0/xnli.dev.tsv, xnli.test.tsv   columns found by header name: language, gold_label, sentence1, sentence2
                                          (valid = dev, test = test, one file per split for all 15 languages)
  XNLI-MT-1.0/multinli/multinli.train.{lang}.tsv   premise, hypo, label (`contradictory` -> `contradiction`);
                                          English is the MultiNLI train set, the others its machine translations
                                          (translate-train)
and writes into --out:
  {split}.s1.{lang}  {split}.s2.{lang}  {split}.label.{lang}  and label_dict.txt (contradiction 0, neutral 1,
  entailment 2, the original's ids).
The text is left raw: `classification` tokenises it (XLM tokenises dev/test with Moses and only lowercases the
already tokenised train file: `--no-tokenize train --lowercase-strip-accents` for the XLM-15 models)."""

import os
import sys
from typing import Dict, List, Tuple

from .common import LineReader, PreprocessError, atomic_output, check_lang, parse_langs

XNLI_LANGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
LABELS = ("contradiction", "neutral", "entailment")
RENAME = {"contradictory": "contradiction"}
SPLIT_FILES = {"valid": "xnli.dev.tsv", "test": "xnli.test.tsv"}
Example = Tuple[str, str, str]


def _columns(path: str, header: str, wanted: Tuple[str, ...]) -> Dict[str, int]:
    names = [h.strip() for h in header.split("\t")]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise PreprocessError(
            f"{path}: the header has no column {', '.join(missing)} (found: "
            f"{', '.join(names[:12])}); is it an XNLI / XNLI-MT file?"
        )
    return {w: names.index(w) for w in wanted}


def _label(path: str, lineno: int, value: str) -> str:
    label = RENAME.get(value.strip(), value.strip())
    if label not in LABELS:
        raise PreprocessError(f"{path}:{lineno}: unknown label '{value.strip()}' (expected {', '.join(LABELS)})")
    return label


def read_xnli(path: str, langs: List[str], skip_bad_lines: bool = False) -> Tuple[Dict[str, List[Example]], int]:
    """{lang: [(sentence1, sentence2, label)]} of an XNLI-1.0 dev/test file, for `langs`; and the bad lines."""
    out = {lang: [] for lang in langs}
    bad = 0
    cols = None
    for lineno, line in enumerate(LineReader(path), 1):
        if cols is None:
            cols = _columns(path, line, ("language", "gold_label", "sentence1", "sentence2"))
            width = max(cols.values()) + 1
            continue
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < width:
            if skip_bad_lines:
                bad += 1
                continue
            raise PreprocessError(
                f"{path}:{lineno}: {len(fields)} tab-separated fields, the header needs "
                f"{width} (pass --skip-bad-lines to leave such lines out)"
            )
        lang = fields[cols["language"]].strip()
        if lang in out:
            out[lang].append(
                (
                    fields[cols["sentence1"]].strip(),
                    fields[cols["sentence2"]].strip(),
                    _label(path, lineno, fields[cols["gold_label"]]),
                )
            )
    if cols is None:
        raise PreprocessError(f"{path} is empty")
    return out, bad


def read_mnli_train(path: str, skip_bad_lines: bool = False) -> Tuple[List[Example], int]:
    """(premise, hypothesis, label) of an XNLI-MT-1.0 multinli.train.{lang}.tsv file; and the bad lines."""
    out, bad, cols = [], 0, None
    for lineno, line in enumerate(LineReader(path), 1):
        if cols is None:
            cols = _columns(path, line, ("premise", "hypo", "label"))
            width = len(line.split("\t"))
            continue
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != width:
            if skip_bad_lines:
                bad += 1
                continue
            raise PreprocessError(
                f"{path}:{lineno}: {len(fields)} tab-separated field(s), the header has {width} "
                "(pass --skip-bad-lines to leave such lines out)"
            )
        out.append(
            (fields[cols["premise"]].strip(), fields[cols["hypo"]].strip(), _label(path, lineno, fields[cols["label"]]))
        )
    if cols is None:
        raise PreprocessError(f"{path} is empty")
    return out, bad


def _train_file(mt_dir: str, lang: str) -> str:
    for folder in (os.path.join(mt_dir, "multinli"), mt_dir):
        path = os.path.join(folder, f"multinli.train.{lang}.tsv")
        if os.path.isfile(path):
            return path
    raise PreprocessError(
        f"no training file for '{lang}': {os.path.join(mt_dir, 'multinli', f'multinli.train.{lang}.tsv')}"
        " not found (XNLI-MT-1.0)"
    )


def write_examples(out_dir: str, split: str, lang: str, examples: List[Example]) -> None:
    for i, suffix in enumerate(("s1", "s2", "label")):
        with atomic_output(os.path.join(out_dir, f"{split}.{suffix}.{lang}")) as f:
            f.writelines(" ".join(ex[i].split()) + "\n" for ex in examples)


def prepare_xnli(args) -> Dict[str, Dict[str, int]]:
    langs = parse_langs(args.langs) if args.langs else list(XNLI_LANGS)
    train_langs = parse_langs(args.train_langs, "--train-langs") if args.train_langs else []
    for lang in langs + train_langs:
        check_lang(lang, "--langs")
    if not os.path.isdir(args.xnli_dir):
        raise PreprocessError(f"--xnli-dir {args.xnli_dir} is not a folder (unzip XNLI-1.0.zip)")
    counts: Dict[str, Dict[str, int]] = {}
    os.makedirs(args.out, exist_ok=True)
    for split, name in SPLIT_FILES.items():
        path = os.path.join(args.xnli_dir, name)
        if not os.path.isfile(path):
            raise PreprocessError(f"{path} not found (XNLI-1.0 has xnli.dev.tsv and xnli.test.tsv)")
        by_lang, bad = read_xnli(path, langs, args.skip_bad_lines)
        empty = [l for l, ex in by_lang.items() if not ex]
        if empty:
            raise PreprocessError(
                f"{path} has no examples for language(s) {', '.join(empty)} (XNLI's languages: {', '.join(XNLI_LANGS)})"
            )
        for lang, examples in by_lang.items():
            write_examples(args.out, split, lang, examples)
            counts.setdefault(split, {})[lang] = len(examples)
        if bad:
            print(f"{path}: left out {bad} malformed line(s)", file=sys.stderr)
    if train_langs and not args.mt_dir:
        raise PreprocessError("--train-langs needs --mt-dir (the XNLI-MT-1.0 folder)")
    for lang in train_langs:
        path = _train_file(args.mt_dir, lang)
        examples, bad = read_mnli_train(path, args.skip_bad_lines)
        write_examples(args.out, "train", lang, examples)
        counts.setdefault("train", {})[lang] = len(examples)
        if bad:
            print(f"{path}: left out {bad} malformed line(s)", file=sys.stderr)
    with atomic_output(os.path.join(args.out, "label_dict.txt")) as f:
        f.writelines(f"{label} {i}\n" for i, label in enumerate(LABELS))
    for split, by_lang in counts.items():
        print(f"{split}: " + ", ".join(f"{l} {n}" for l, n in sorted(by_lang.items())))
    print(
        f"wrote {args.out}: {{split}}.s1/.s2/.label.{{lang}} and label_dict.txt; next: xlm-preprocess "
        "classification --input-dir ... --codes-file CODES --dict dict.txt"
    )
    return counts


def add_arguments(parser):
    parser.add_argument("--xnli-dir", required=True, help="XNLI-1.0 folder (xnli.dev.tsv, xnli.test.tsv)")
    parser.add_argument("--mt-dir", help="XNLI-MT-1.0 folder (multinli/multinli.train.{lang}.tsv)")
    parser.add_argument("--out", required=True, help="folder for the raw {split}.s1/.s2/.label.{lang} files")
    parser.add_argument("--langs", help=f"valid/test languages (default: all 15: {','.join(XNLI_LANGS)})")
    parser.add_argument(
        "--train-langs",
        default="en",
        help="training sets to write: en = MultiNLI (zero-shot), more = translate-train; '' = none",
    )
    parser.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="leave out lines with too few fields (and report how many) instead of failing",
    )


def main(args) -> int:
    prepare_xnli(args)
    return 0


if __name__ == "__main__":
    from .cli import main as cli_main

    sys.exit(cli_main(["xnli"] + sys.argv[1:]))
