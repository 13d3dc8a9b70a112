"""`xlm-preprocess classification`: labelled text -> a data-bin for `--task xlm_classification`, with the BPE codes
and dict.txt of the pretrained model (docs/classification.md).

Input folder (`--input-name s1`, the default; XNLI as written by `xlm-preprocess xnli`):
    {split}.s1.{lang}      first sentences, one per line (split = train, valid, test)
    {split}.s2.{lang}      second sentences of sentence-pair tasks (optional)
    {split}.label.{lang}   one label per line
    label_dict.txt         optional: the label order (`label id` lines), else --labels, else sorted train labels
`--input-name cls` reads the DDTP builder's naming instead: {split}.cls.{lang} with labels {split}.cls.{lang}.label.

Each text file is tokenised (Moses, as `xlm-preprocess tokenize`; `--no-tokenize SPLITS` only lowercases, e.g. the
pre-tokenised MultiNLI train file), optionally lowercased without accents, split into BPE units with the
existing codes, and binarised by the real `fairseq-preprocess --only-source --srcdict dict.txt`. The data-bin:
    dict.txt  label_dict.txt  {split}.s1.{lang}.bin/.idx  [{split}.s2.{lang}.bin/.idx]  {split}.label.{lang}
    manifest.json  the languages, labels, BPE backend and codes file, and the tokenisation settings (what a
                   fine-tuned model needs to read raw text; copied beside its checkpoints)
label_dict.txt holds the training labels; a valid/test label outside it is an error (or, with
--drop-unseen-labels, the example is left out and counted)."""

import collections
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

from .apply_bpe import BPEApplier, check_codes
from .binarize import MANIFEST, copy_dictionary, fairseq_preprocess_command, load_shared_dictionary, manifest_path
from .common import (
    LineReader,
    PreprocessError,
    atomic_output,
    check_positive,
    count_lines,
    parse_langs,
    read_json,
    transform_file,
    write_json,
)
from .learn_bpe import BACKENDS, meta_path
from .tokenizer import TOKENIZER_CHOICES, Tokenizer, lowercase_strip_accents, require_tokenizer, resolve_tokenizer

SPLITS = ("train", "valid", "test")
LABEL_DICT = "label_dict.txt"
_LANG = r"[a-z][a-z0-9_]*"


class TextPipeline:
    """One raw line -> tokenised (or only lowercased) -> BPE units. Built once per worker process."""

    def __init__(self, lang, lowercase, tokenizer, tokenize, backend, codes):
        self.tokenizer = Tokenizer(lang, lowercase, tokenizer) if tokenize else None
        self.lowercase = lowercase
        self.bpe = BPEApplier(backend, codes)

    def __call__(self, line: str) -> str:
        if self.tokenizer is not None:
            text = self.tokenizer(line)
        else:
            text = " ".join((lowercase_strip_accents(line) if self.lowercase else line).split())
        return self.bpe(text)


def find_inputs(folder: str, name: str, langs: Optional[List[str]]) -> Dict[tuple, dict]:
    """{(split, lang): {"s1": path, "s2": path or None, "label": path}} for the files of `folder`."""
    if not os.path.isdir(folder):
        raise PreprocessError(f"--input-dir {folder} is not a folder")
    pattern = re.compile(rf"^({'|'.join(SPLITS)})\.{re.escape(name)}\.({_LANG})$")
    found = {}
    for entry in sorted(os.listdir(folder)):
        m = pattern.match(entry)
        if not m or (langs is not None and m.group(2) not in langs):
            continue
        split, lang = m.groups()
        second = os.path.join(folder, f"{split}.s2.{lang}") if name == "s1" else None
        candidates = [os.path.join(folder, f"{split}.label.{lang}"), os.path.join(folder, f"{entry}.label")]
        labels = [p for p in candidates if os.path.isfile(p)]
        if not labels:
            raise PreprocessError(
                f"no labels for {os.path.join(folder, entry)}: expected {candidates[0]} or "
                f"{candidates[1]} (one label per line)"
            )
        if len(labels) > 1:
            raise PreprocessError(f"both {labels[0]} and {labels[1]} exist: keep one label file")
        found[(split, lang)] = {
            "s1": os.path.join(folder, entry),
            "s2": second if second and os.path.isfile(second) else None,
            "label": labels[0],
        }
    if not found:
        raise PreprocessError(
            f"no {{split}}.{name}.{{lang}} files in {folder}"
            + (f" for --langs {','.join(langs)}" if langs else "")
            + (" (DDTP's classification files: --input-name cls)" if name != "cls" else "")
        )
    for lang in langs or []:
        if not any(l == lang for _, l in found):
            raise PreprocessError(f"no text for language '{lang}' in {folder} (expected train.{name}.{lang}, ...)")
    pairs = {key: files["s2"] is not None for key, files in found.items()}
    if len(set(pairs.values())) > 1:
        single = next(k for k, v in pairs.items() if not v)
        raise PreprocessError(
            f"{os.path.join(folder, f'{single[0]}.s2.{single[1]}')} is missing while other "
            "splits have second sentences: all must be sentence pairs or none"
        )
    return found


def read_label_file(path: str) -> List[str]:
    labels = []
    for lineno, line in enumerate(LineReader(path), 1):
        label = line.strip()
        if not label:
            raise PreprocessError(f"{path}:{lineno}: empty label")
        labels.append(label)
    return labels


def read_label_dict(path: str) -> List[str]:
    by_id = {}
    for lineno, line in enumerate(LineReader(path), 1):
        parts = line.strip().rsplit(None, 1)
        if not line.strip():
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise PreprocessError(f"{path}:{lineno}: expected 'label id', found '{line.strip()}'")
        by_id[int(parts[1])] = parts[0]
    if sorted(by_id) != list(range(len(by_id))) or len(set(by_id.values())) != len(by_id):
        raise PreprocessError(f"{path}: ids must be 0..K-1 and labels distinct")
    return [by_id[i] for i in range(len(by_id))]


def choose_labels(found, labels_by_key, explicit: Optional[str], folder: str) -> List[str]:
    """The label order: --labels, else the input folder's label_dict.txt, else the sorted training labels."""
    train_labels = sorted({l for (split, _), labs in labels_by_key.items() if split == "train" for l in labs})
    if explicit:
        order = [x.strip() for x in explicit.split(",") if x.strip()]
        source = "--labels"
    elif os.path.isfile(os.path.join(folder, LABEL_DICT)):
        order = read_label_dict(os.path.join(folder, LABEL_DICT))
        source = os.path.join(folder, LABEL_DICT)
    else:
        if not train_labels:
            raise PreprocessError(f"no training split in {folder} to take the labels from: give --labels a,b,c")
        return train_labels
    if len(set(order)) != len(order) or len(order) < 2:
        raise PreprocessError(f"{source}: needs at least two distinct labels, got {','.join(order)}")
    for (split, lang), labs in sorted(labels_by_key.items()):
        if split != "train":
            continue
        extra = sorted(set(labs) - set(order))
        if extra:
            raise PreprocessError(
                f"{found[(split, lang)]['label']}: training label '{extra[0]}' is not in {source} ({','.join(order)})"
            )
    return order


def unseen_labels(path: str, labels: List[str], known: set) -> List[int]:
    """0-based line numbers whose label is not in `known`."""
    return [i for i, l in enumerate(labels) if l not in known]


def binarize_all(files: Dict[tuple, str], dict_path: str, destdir: str, workers: int) -> str:
    """One `fairseq-preprocess --only-source --srcdict` run for every BPE'd file ({(split, field, lang): path}):
    the files go in as a list of --validpref prefixes (written valid, valid1, valid2, ...) under a common
    suffix, and are renamed to {split}.{field}.{lang}.bin/.idx. One run, so fairseq is started once."""
    tmp = os.path.join(destdir, f".binarize-tmp-{os.getpid()}")
    keys = sorted(files)
    try:
        os.makedirs(os.path.join(tmp, "in"))
        for k, key in enumerate(keys):
            os.symlink(os.path.abspath(files[key]), os.path.join(tmp, "in", f"{k}.txt"))
        cmd = fairseq_preprocess_command() + [
            "--only-source",
            "--srcdict",
            dict_path,
            "--source-lang",
            "txt",
            "--destdir",
            os.path.join(tmp, "out"),
            "--dataset-impl",
            "mmap",
            "--workers",
            str(workers),
            "--validpref",
            ",".join(os.path.join(tmp, "in", str(k)) for k in range(len(keys))),
        ]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = proc.stdout.decode("utf-8", errors="replace")
        if proc.returncode != 0:
            last = next((l for l in reversed(text.splitlines()) if l.strip()), "no output")
            raise PreprocessError(f"fairseq-preprocess failed (exit {proc.returncode}): {last.strip()}")
        for k, (split, field, lang) in enumerate(keys):
            for ext in ("bin", "idx"):
                src = os.path.join(tmp, "out", f"valid{k if k else ''}.txt-None.txt.{ext}")
                if not os.path.isfile(src):
                    raise PreprocessError(f"fairseq-preprocess did not write {os.path.basename(src)}")
                os.replace(src, os.path.join(destdir, f"{split}.{field}.{lang}.{ext}"))
        return text
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_classification(args) -> dict:
    langs = parse_langs(args.langs) if args.langs else None
    check_positive(args.workers, "--workers")
    found = find_inputs(args.input_dir, args.input_name, langs)
    no_tok = {s.strip() for s in (args.no_tokenize or "").split(",") if s.strip()}
    if no_tok - set(SPLITS):
        raise PreprocessError(f"--no-tokenize: unknown split(s) {','.join(sorted(no_tok - set(SPLITS)))}")
    labels_by_key, order, drop = check_labels(found, args)
    backend = args.backend or (read_json(meta_path(args.codes_file)) or {}).get("backend") or "subword-nmt"
    check_codes(args.codes_file, backend)
    dictionary = load_shared_dictionary(args.dict)
    kinds = {lang: resolve_tokenizer(lang, args.tokenizer) for _, lang in found}
    for lang, kind in kinds.items():
        require_tokenizer(lang, kind)
    work = os.path.join(args.destdir, "work")
    os.makedirs(work, exist_ok=True)
    bpe_files = tokenize_and_apply_bpe(found, drop, kinds, no_tok, backend, work, args)
    start = time.time()
    text = binarize_all(bpe_files, args.dict, args.destdir, args.workers)
    unk = [float(m.group(1)) for m in re.finditer(r"([\d.]+)% replaced by <unk>", text)]
    print(
        f"binarised with fairseq-preprocess ({time.time() - start:.1f} s)"
        + (f"; at most {max(unk):.1f}% of the tokens unknown to {args.dict}" if unk else ""),
        flush=True,
    )
    summary = write_labels(labels_by_key, order, drop, args.destdir)
    pair = next(iter(found.values()))["s2"] is not None
    write_data_bin_files(args, order, pair, backend, kinds, no_tok)
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.destdir}: {'sentence pairs' if pair else 'single sentences'}, {len(dictionary)} types, "
        f"labels {', '.join(f'{l}={i}' for i, l in enumerate(order))}"
    )
    for (split, lang), (n, n_drop, counts) in sorted(summary.items()):
        note = f" ({n_drop} with an unseen label left out)" if n_drop else ""
        labels = ", ".join(f"{l} {c}" for l, c in sorted(counts.items()))
        print(
            f"  {split}.{lang}: {n} examples{note}"
            + (f"; {labels}" if n else " -- warning: nothing left to train or evaluate on")
        )
    return {"labels": order, "pair": pair, "splits": {f"{s}.{l}": v[0] for (s, l), v in summary.items()}}


def check_labels(found, args):
    """Labels and line counts, before any slow step: ({(split, lang): labels}, the label order, the 0-based lines
    left out with --drop-unseen-labels {(split, lang): set})."""
    labels_by_key = {key: read_label_file(files["label"]) for key, files in found.items()}
    for key, files in sorted(found.items()):
        n = count_lines(files["s1"])
        for kind in ("s2", "label"):
            m = len(labels_by_key[key]) if kind == "label" else (count_lines(files[kind]) if files[kind] else n)
            if m != n:
                raise PreprocessError(f"{files[kind]} has {m} lines but {files['s1']} has {n}: they must align")
    order = choose_labels(found, labels_by_key, args.labels, args.input_dir)
    drop = {}
    for key, labs in sorted(labels_by_key.items()):
        bad = unseen_labels(found[key]["label"], labs, set(order))
        if bad and not args.drop_unseen_labels:
            raise PreprocessError(
                f"{found[key]['label']}:{bad[0] + 1}: label '{labs[bad[0]]}' never occurs in the "
                f"training labels ({','.join(order)}); fix it, give the full list with --labels, "
                "or pass --drop-unseen-labels"
            )
        if bad:
            drop[key] = set(bad)
    return labels_by_key, order, drop


def tokenize_and_apply_bpe(found, drop, kinds, no_tok, backend, work, args) -> Dict[tuple, str]:
    """{(split, field, lang): BPE'd text in `work`}; examples with an unseen label left out."""
    start = time.time()
    bpe_files = {}
    for (split, lang), files in sorted(found.items()):
        for field in ("s1", "s2"):
            if files[field] is None:
                continue
            dst = os.path.join(work, f"{split}.{field}.{lang}")
            dropped = {i + 1 for i in drop.get((split, lang), ())}
            transform_file(
                TextPipeline,
                (lang, args.lowercase_strip_accents, kinds[lang], split not in no_tok, backend, args.codes_file),
                files[field],
                dst,
                workers=args.workers,
                drop_lines=dropped,
            )
            bpe_files[(split, field, lang)] = dst
    print(
        f"tokenised and applied BPE ({backend}) to {len(bpe_files)} file(s) ({time.time() - start:.1f} s)", flush=True
    )
    return bpe_files


def write_labels(labels_by_key, order, drop, destdir) -> dict:
    """{split}.label.{lang} (the kept examples) and label_dict.txt; {(split, lang): (kept, left out, counts)}."""
    summary = {}
    for (split, lang), labs in sorted(labels_by_key.items()):
        kept = [l for i, l in enumerate(labs) if i not in drop.get((split, lang), ())]
        with atomic_output(os.path.join(destdir, f"{split}.label.{lang}")) as f:
            f.writelines(l + "\n" for l in kept)
        summary[(split, lang)] = (len(kept), len(labs) - len(kept), collections.Counter(kept))
    with atomic_output(os.path.join(destdir, LABEL_DICT)) as f:
        f.writelines(f"{label} {i}\n" for i, label in enumerate(order))
    return summary


def write_data_bin_files(args, order, pair, backend, kinds, no_tok) -> None:
    """dict.txt (a copy of the pretraining one) and manifest.json (labels, BPE, tokenisation)."""
    copy_dictionary(args.dict, args.destdir)
    write_json(
        os.path.join(args.destdir, MANIFEST),
        {
            "format": "xlm_fairseq classification data-bin",
            "version": 1,
            "languages": sorted(kinds),
            "labels": order,
            "pair": pair,
            "bpe": {"backend": backend, "codes_file": manifest_path(args.codes_file, args.destdir)},
            "tokenize": {
                "lowercase_strip_accents": bool(args.lowercase_strip_accents),
                "tokenizers": kinds,
                "untokenised_splits": sorted(no_tok),
            },
        },
    )


def add_arguments(parser):
    parser.add_argument("--input-dir", required=True, help="labelled text (see the module help)")
    parser.add_argument("--destdir", required=True, help="data-bin folder to write")
    parser.add_argument("--codes-file", required=True, help="the pretraining BPE codes (sentencepiece: .model)")
    parser.add_argument("--dict", required=True, help="the pretraining dict.txt")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="BPE backend (default: from CODES.meta.json, else subword-nmt)",
    )
    parser.add_argument("--langs", help="only these languages (default: all found)")
    parser.add_argument(
        "--input-name",
        default="s1",
        help="s1: {split}.s1.{lang} [+ .s2.] + {split}.label.{lang}; cls: DDTP's {split}.cls.{lang} "
        "+ {split}.cls.{lang}.label",
    )
    parser.add_argument(
        "--labels",
        help="label order, e.g. contradiction,neutral,entailment (default: the input "
        "folder's label_dict.txt, else the sorted training labels)",
    )
    parser.add_argument(
        "--drop-unseen-labels",
        action="store_true",
        help="leave out valid/test examples whose label never occurs in training (default: error)",
    )
    parser.add_argument(
        "--lowercase-strip-accents",
        action="store_true",
        help="lowercase and remove accents (as the pretraining data of XLM-15 / XLM_en)",
    )
    parser.add_argument(
        "--no-tokenize",
        default="",
        metavar="SPLITS",
        help="splits that are already tokenised (only lowercased), e.g. train for MultiNLI",
    )
    parser.add_argument("--tokenizer", default="auto", choices=TOKENIZER_CHOICES)
    parser.add_argument("--workers", type=int, default=1, help="processes for tokenising/BPE and fairseq-preprocess")
    parser.add_argument("--keep-work", action="store_true", help="keep the BPE'd text in DESTDIR/work")


def main(args) -> int:
    prepare_classification(args)
    return 0


if __name__ == "__main__":
    from .cli import main as cli_main

    sys.exit(cli_main(["classification"] + sys.argv[1:]))
