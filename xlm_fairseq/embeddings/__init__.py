"""`xlm-embeddings`: cross-lingual word embeddings from an XLM lookup table (paper §4.5, Table 5).

    xlm-embeddings export CHECKPOINT --dict dict.txt --out all.vec
    xlm-embeddings export CHECKPOINT --dict dict.txt --out en.vec --lang en --max-words 200000
    xlm-embeddings eval --src en.vec --tgt fr.vec --dictionary en-fr.5000-6500.txt --similarity en-fr.txt
    xlm-embeddings sentences MODEL_DIR --lang en --input sentences.txt --out en.npy

`export` writes the vectors of the whole-word tokens in fastText .vec format (export.py); `eval` computes
the cosine similarity and L2 distance of translation pairs, word translation precision@1/@5 (nearest
neighbour and CSLS) and cross-lingual word similarity (Pearson, Spearman) (evaluate.py, metrics.py);
`sentences` writes one vector per line of raw text (the encoder's first hidden state, or the mean), through
the model's hub interface (hub_interface.py), as a float32 .npy array."""

import argparse
import json
import logging
import os
import sys

from ..errors import XLMUserError
from .export import BPE_CHOICES, export
from .metrics import pair_cosine_l2, pearson, rankdata, spearman, translation_precision  # noqa: F401
from .vectors import Vectors, read_vec, write_vec  # noqa: F401


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xlm-embeddings", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    e = sub.add_parser(
        "export",
        help="write the lookup-table vectors of whole words as a .vec file",
        description="Write the lookup-table vectors of whole-word tokens (no BPE continuation, "
        "no specials) in fastText .vec format.",
    )
    e.add_argument("checkpoint", metavar="CHECKPOINT")
    e.add_argument(
        "--dict",
        dest="dict_path",
        metavar="DICT",
        help="the model's dict.txt (default: dict.txt of the data folder saved in the checkpoint)",
    )
    e.add_argument("--out", required=True, help="the .vec file to write")
    e.add_argument(
        "--lang", help="keep only words that occur (as whole words) in this language's data, most frequent first"
    )
    e.add_argument(
        "--lang-data",
        metavar="PREFIX",
        help="binarised data of --lang (default: DATA_BIN/train.LANG beside the dictionary)",
    )
    e.add_argument("--max-words", type=int, help="keep the N first words (most frequent)")
    e.add_argument(
        "--bpe",
        choices=BPE_CHOICES,
        default="auto",
        help="how whole words are told from subwords (auto: the data-bin's manifest.json, else the "
        "more frequent marker)",
    )
    e.add_argument("--digits", type=int, default=6, help="significant digits written (default 6)")

    t = sub.add_parser(
        "sentences",
        help="sentence embeddings of raw text, one row per line, as .npy",
        description="Encode every line of raw text as the model's training data was preprocessed "
        "and write its first hidden state (or the mean) as one row of a float32 .npy.",
    )
    t.add_argument(
        "model_dir", metavar="MODEL_DIR", help="a folder written by fairseq-train with this plugin or by xlm-convert"
    )
    t.add_argument(
        "--checkpoint-file",
        default="checkpoint_best.pt",
        help="default checkpoint_best.pt (model.pt for converted models)",
    )
    t.add_argument("--lang", required=True, help="the language of the text (one of the model's)")
    t.add_argument("-i", "--input", default="-", help="raw text, one sentence per line (default: stdin)")
    t.add_argument("--out", required=True, help="the .npy file to write")
    t.add_argument(
        "--pool",
        choices=("first", "mean"),
        default="first",
        help="first: the `</s>` state XLM's classifier reads (default); mean: over the sentence's tokens",
    )
    t.add_argument("--max-tokens", type=int, default=4000, help="tokens per batch (default 4000)")
    t.add_argument("--bpe-codes", help="BPE codes, for a folder that does not record them")
    t.add_argument("--cpu", action="store_true", help="do not use a GPU even if there is one")

    v = sub.add_parser(
        "eval",
        help="translation-pair, word-translation and word-similarity metrics",
        description="Evaluate source/target .vec files (they may be the same file) against a "
        "bilingual dictionary and/or a cross-lingual word-similarity set.",
    )
    v.add_argument("--src", required=True, help="source-language .vec")
    v.add_argument("--tgt", required=True, help="target-language .vec (may be the same file as --src)")
    v.add_argument("--dictionary", metavar="PAIRS", help="MUSE bilingual dictionary: `src tgt` per line")
    v.add_argument("--similarity", metavar="FILE", help="SemEval'17 cross-lingual similarity: `w1 w2 score` per line")
    v.add_argument(
        "--similarity-gold",
        metavar="FILE",
        help="scores in a file of their own (SemEval'17 *.gold.txt); --similarity then holds `w1 w2`",
    )
    v.add_argument(
        "--baseline",
        nargs=2,
        metavar=("SRC_BASE.vec", "TGT_BASE.vec"),
        help="the same metrics for another pair of .vec files, on the pairs both cover",
    )
    v.add_argument(
        "--max-vocab",
        type=int,
        default=200000,
        help="read at most this many words of each .vec (default 200000, as MUSE)",
    )
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
    for s, t in spaces.values():
        if s.dim != t.dim:
            raise XLMUserError(
                f"{s.path} has {s.dim} dimensions but {t.path} has {t.dim}: source and target "
                "vectors must live in one space"
            )
    report = evaluate(spaces, args.dictionary, args.similarity, args.similarity_gold, args.csls_k)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def run_export(args) -> int:
    summary = export(
        args.checkpoint, args.out, args.dict_path, args.lang, args.lang_data, args.max_words, args.bpe, args.digits
    )
    print(
        f"wrote {summary['out']}: {summary['words']} words x {summary['dim']} dims "
        f"(bpe {summary['bpe']}, words from {summary['source']})"
    )
    return 0


def run_sentences(args) -> int:
    import numpy as np
    import torch

    from ..hub_interface import from_pretrained

    if args.max_tokens < 1:
        raise XLMUserError(f"--max-tokens {args.max_tokens}: must be at least 1")
    checkpoint = os.path.join(args.model_dir, args.checkpoint_file)
    if os.path.isdir(args.model_dir) and not os.path.isfile(checkpoint):
        found = sorted(f for f in os.listdir(args.model_dir) if f.endswith(".pt"))
        raise XLMUserError(
            f"{checkpoint}: no such file ({args.model_dir} holds {', '.join(found) or 'no .pt file'}); "
            "give --checkpoint-file"
        )
    if args.input != "-" and not os.path.isfile(args.input):
        raise XLMUserError(f"--input {args.input}: no such file")
    with open(args.input, encoding="utf-8") if args.input != "-" else sys.stdin as f:
        lines = [line.rstrip("\n") for line in f]
    for n, line in enumerate(lines, 1):
        if not line.strip():
            raise XLMUserError(
                f"{'stdin' if args.input == '-' else args.input}:{n}: empty line; every line gets "
                "one row of the output, remove it"
            )
    hub = from_pretrained(
        args.model_dir, args.checkpoint_file, **({"bpe_codes": args.bpe_codes} if args.bpe_codes else {})
    )
    if args.lang not in hub.langs:
        raise XLMUserError(
            f"--lang {args.lang}: {args.model_dir} was trained with {','.join(hub.langs)}; choose one of them"
        )
    if torch.cuda.is_available() and not args.cpu:
        hub.cuda()
    vectors = hub.sentence_embeddings(lines, args.lang, pool=args.pool, max_tokens=args.max_tokens)
    np.save(args.out, vectors.numpy().astype(np.float32))
    print(
        f"wrote {args.out}: {len(lines)} sentences x {vectors.shape[1]} dims ({args.pool} hidden state, "
        f"lang {args.lang})"
    )
    return 0


COMMANDS = {"export": run_export, "eval": run_eval, "sentences": run_sentences}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("fairseq", "xlm_fairseq"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args)
    except XLMUserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
