"""`xlm-embeddings`: cross-lingual word embeddings from an XLM lookup table (paper §4.5, Table 5).

    xlm-embeddings export CHECKPOINT --dict dict.txt --out all.vec
    xlm-embeddings export CHECKPOINT --dict dict.txt --out en.vec --lang en --max-words 200000
    xlm-embeddings eval --src en.vec --tgt fr.vec --dictionary en-fr.5000-6500.txt --similarity en-fr.txt

`export` writes the vectors of the whole-word tokens in fastText .vec format (export.py); `eval` computes
the cosine similarity and L2 distance of translation pairs, word translation precision@1/@5 (nearest
neighbour and CSLS) and cross-lingual word similarity (Pearson, Spearman) (evaluate.py, metrics.py)."""
import argparse
import json
import logging
import sys

from ..errors import XLMUserError
from .export import BPE_CHOICES, export
from .metrics import pair_cosine_l2, pearson, rankdata, spearman, translation_precision  # noqa: F401
from .vectors import Vectors, read_vec, write_vec  # noqa: F401


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xlm-embeddings", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    e = sub.add_parser("export", help="write the lookup-table vectors of whole words as a .vec file",
                       description="Write the lookup-table vectors of whole-word tokens (no BPE continuation, "
                                   "no specials) in fastText .vec format.")
    e.add_argument("checkpoint", metavar="CHECKPOINT")
    e.add_argument("--dict", dest="dict_path", metavar="DICT",
                   help="the model's dict.txt (default: dict.txt of the data folder saved in the checkpoint)")
    e.add_argument("--out", required=True, help="the .vec file to write")
    e.add_argument("--lang", help="keep only words that occur (as whole words) in this language's data, most "
                                  "frequent first")
    e.add_argument("--lang-data", metavar="PREFIX",
                   help="binarised data of --lang (default: DATA_BIN/train.LANG beside the dictionary)")
    e.add_argument("--max-words", type=int, help="keep the N first words (most frequent)")
    e.add_argument("--bpe", choices=BPE_CHOICES, default="auto",
                   help="how whole words are told from subwords (auto: the data-bin's manifest.json, else the "
                        "more frequent marker)")
    e.add_argument("--digits", type=int, default=6, help="significant digits written (default 6)")

    v = sub.add_parser("eval", help="translation-pair, word-translation and word-similarity metrics",
                       description="Evaluate source/target .vec files (they may be the same file) against a "
                                   "bilingual dictionary and/or a cross-lingual word-similarity set.")
    v.add_argument("--src", required=True, help="source-language .vec")
    v.add_argument("--tgt", required=True, help="target-language .vec (may be the same file as --src)")
    v.add_argument("--dictionary", metavar="PAIRS", help="MUSE bilingual dictionary: `src tgt` per line")
    v.add_argument("--similarity", metavar="FILE", help="SemEval'17 cross-lingual similarity: `w1 w2 score` per line")
    v.add_argument("--similarity-gold", metavar="FILE",
                   help="scores in a file of their own (SemEval'17 *.gold.txt); --similarity then holds `w1 w2`")
    v.add_argument("--baseline", nargs=2, metavar=("SRC_BASE.vec", "TGT_BASE.vec"),
                   help="the same metrics for another pair of .vec files, on the pairs both cover")
    v.add_argument("--max-vocab", type=int, default=200000,
                   help="read at most this many words of each .vec (default 200000, as MUSE)")
    v.add_argument("--csls-k", type=int, default=10, help="neighbours for CSLS (default 10)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _load(path, cache, max_vocab):
    if path not in cache:
        cache[path] = read_vec(path, max_vocab)
    return cache[path]


def run_eval(args) -> int:
    from .evaluate import evaluate, format_report

    if args.max_vocab < 1 or args.csls_k < 1:
        raise XLMUserError("--max-vocab and --csls-k must be at least 1")
    if args.similarity_gold and not args.similarity:
        raise XLMUserError("--similarity-gold needs --similarity (the word pairs)")
    if not args.dictionary and not args.similarity:
        raise XLMUserError("nothing to evaluate: give --dictionary PAIRS and/or --similarity FILE")
    cache = {}
    spaces = {"model": (_load(args.src, cache, args.max_vocab), _load(args.tgt, cache, args.max_vocab))}
    if args.baseline:
        spaces["baseline"] = tuple(_load(p, cache, args.max_vocab) for p in args.baseline)
    for name, (s, t) in spaces.items():
        if s.dim != t.dim:
            raise XLMUserError(f"{s.path} has {s.dim} dimensions but {t.path} has {t.dim}: source and target "
                               "vectors must live in one space")
    report = evaluate(spaces, args.dictionary, args.similarity, args.similarity_gold, args.csls_k)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def run_export(args) -> int:
    summary = export(args.checkpoint, args.out, args.dict_path, args.lang, args.lang_data, args.max_words,
                     args.bpe, args.digits)
    print(f"wrote {summary['out']}: {summary['words']} words x {summary['dim']} dims "
          f"(bpe {summary['bpe']}, words from {summary['source']})")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.getLogger("fairseq").setLevel(logging.WARNING)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        return run_export(args) if args.command == "export" else run_eval(args)
    except XLMUserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
