"""`xlm-preprocess`: the data pipeline's command line. Each subcommand lives in a module of its own exposing
`add_arguments(parser)` and `main(args)`; `prepare` chains tokenize -> learn-bpe -> apply-bpe -> build-dict ->
binarize. User mistakes end with one line `xlm-preprocess CMD: error: ...` on stderr and exit status 1."""

import argparse
import importlib
import os
import sys

from .common import PreprocessError

# name -> (module, one-line help)
COMMANDS = {
    "tokenize": (
        "xlm_preprocess.tokenizer",
        "Moses normalisation + tokenisation (jieba/fugashi/pythainlp for zh/ja/th)",
    ),
    "learn-bpe": ("xlm_preprocess.learn_bpe", "learn one shared BPE on an alpha-sample of each language"),
    "apply-bpe": ("xlm_preprocess.apply_bpe", "apply BPE codes (subword-nmt `@@ ` or sentencepiece `▁`)"),
    "build-dict": ("xlm_preprocess.build_dict", "one shared dict.txt (specials at ids 4..13)"),
    "binarize": ("xlm_preprocess.binarize", "fairseq-preprocess into the data-bin layout + manifest.json"),
    "prepare": ("xlm_preprocess.prepare", "raw text folder -> data-bin (or --shards N of them), all steps, resumable"),
    "ddtp": ("xlm_preprocess.ddtp", "Debian package descriptions (DDTP) as a multilingual/parallel corpus"),
    "xnli": ("xlm_preprocess.xnli", "XNLI / MultiNLI tsv files -> sentence-pair classification text"),
    "classification": ("xlm_preprocess.classification_data", "labelled text -> data-bin for --task xlm_classification"),
    "wikipedia": ("xlm_preprocess.corpora.wikipedia", "Wikipedia dump -> plain text train/valid/test"),
    "opus": ("xlm_preprocess.corpora.opus", "OPUS Moses-format pairs -> parallel train/valid/test"),
    "wmt": ("xlm_preprocess.corpora.wmt", "WMT news test sets (sacrebleu or local sgm/plain files)"),
}
LAZY = {"ddtp", "xnli", "classification"}  # imported only when one of them is the command being run


def _requested_command(argv):
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def _import(name: str):
    module = COMMANDS[name][0]
    try:
        return importlib.import_module(module)
    except ImportError as e:  # e.g. an optional dependency of that subcommand
        raise PreprocessError(f"{module} cannot be imported: {e}") from None


def build_parser(argv) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlm-preprocess", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _requested_command(argv)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name in LAZY and name != wanted:
            p.set_defaults(_module=None, _name=name)
            continue
        module = _import(name)
        module.add_arguments(p)
        p.set_defaults(_module=module, _name=name)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
    except PreprocessError as e:  # a lazily imported module failing at import
        print(f"xlm-preprocess: error: {e}", file=sys.stderr)
        return 1
    args, unknown = parser.parse_known_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    name = args._name
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        status = args._module.main(args)
    except PreprocessError as e:
        print(f"xlm-preprocess {name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"xlm-preprocess {name}: interrupted; finished files are kept, temporary ones removed "
            f"(`prepare` resumes where it stopped)",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # e.g. `xlm-preprocess tokenize ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:  # disk full, permission denied, ...
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"xlm-preprocess {name}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:
        # xlm_fairseq's user errors (e.g. a dict.txt that breaks the convention) are one-liners too
        if any(cls.__name__ == "XLMUserError" for cls in type(e).__mro__):
            print(f"xlm-preprocess {name}: error: {e}", file=sys.stderr)
            return 1
        raise
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
