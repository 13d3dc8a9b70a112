"""The `xlm-convert` command line (also `python -m xlm_fairseq.convert`).

Mistakes a user can make (a wrong vocabulary file, a corrupt download, a file of another kind) end with
one `error: ...` line and exit status 2, and leave --out as it was.
"""

import argparse
import os
import shutil
import sys
from typing import List, Optional

from xlm_preprocess.common import read_json

from ..inference_assets import ASSETS
from ..modules.transformer import N_MAX_POSITIONS
from . import ConvertError

EPILOG = """examples:
  xlm-convert from-original mlm_enfr_1024.pth --vocab vocab_enfr --codes codes_enfr --out enfr
  xlm-convert from-original mlm_xnli15_1024.pth --vocab vocab_xnli_15 --codes codes_xnli_15 \\
      --max-vocab 95000 --out xnli15
  xlm-convert to-transformers enfr/model.pt --out enfr-hf
  xlm-convert from-transformers enfr-hf --out enfr-back
See docs/released_models.md for every released model."""


def _langs(value: Optional[str]) -> Optional[List[str]]:
    if not value:
        return None
    return [l.strip() for l in value.split(",") if l.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xlm-convert",
        description="Convert XLM models: original XLM .pth <-> fairseq (xlm_fairseq) <-> transformers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("from-original", help="original XLM checkpoint (.pth) -> model.pt, dict.txt, codes")
    p.add_argument("model", metavar="MODEL.pth", help="original XLM checkpoint (encoder-only or encoder-decoder)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (model.pt, dict.txt, codes)")
    p.add_argument(
        "--vocab",
        metavar="VOCAB",
        help="XLM vocabulary file (`token count` lines, e.g. vocab_enfr); "
        "default: the dictionary stored in the checkpoint (dico_id2word)",
    )
    p.add_argument("--codes", metavar="CODES", help="BPE codes (e.g. codes_enfr), copied to DIR/codes")
    p.add_argument(
        "--max-vocab",
        type=int,
        metavar="N",
        help="keep the first N words including the 14 "
        "specials, as XLM's --max_vocab (95000 for XNLI-15, 200000 for XLM-17/100); default: the "
        "checkpoint's params.max_vocab",
    )
    p.add_argument(
        "--min-count",
        type=int,
        metavar="C",
        help="drop words seen fewer than C times (XLM's --min_count); default: the checkpoint's params.min_count",
    )
    p.add_argument("--n-heads", type=int, metavar="H", help="attention heads, when params lacks n_heads")
    p.add_argument("--langs", metavar="L1,L2", help="languages in the original's id order, when params lacks id2lang")
    p.add_argument(
        "--lowercase-strip-accents",
        action="store_true",
        help="the model was trained on lowercased "
        "text without accents (the released en and XNLI-15 models): recorded for its hub interface",
    )
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle the file fully (only for a file "
        "you trust); by default only tensors, plain containers and numpy arrays are accepted",
    )
    p.add_argument("--force", action="store_true", help="overwrite files already in DIR")

    p = sub.add_parser("to-transformers", help="our checkpoint -> transformers XLM folder (encoder + LM head)")
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="model.pt from from-original, or a checkpoint of fairseq-train with this plugin",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--dict", metavar="DICT", help="dict.txt (default: beside CHECKPOINT, else the data folder recorded in it)"
    )
    p.add_argument("--codes", metavar="CODES", help="BPE codes for XLMTokenizer (default: `codes` beside CHECKPOINT)")
    p.add_argument(
        "--lowercase-and-remove-accent",
        action="store_true",
        help="XLMTokenizer lowercases and "
        "strips accents (the released en and XNLI-15 models were trained so; default: what "
        "xlm_inference.json beside CHECKPOINT records)",
    )
    p.add_argument("--force", action="store_true")

    p = sub.add_parser("from-transformers", help="transformers XLM folder -> model.pt, dict.txt, codes")
    p.add_argument("folder", metavar="DIR", help="a folder written by save_pretrained (model_type xlm)")
    p.add_argument("--out", required=True, metavar="OUT")
    p.add_argument("--langs", metavar="L1,L2", help="languages in id order, when config.json lacks id2lang")
    p.add_argument("--force", action="store_true")
    return parser


# ------------------------------------------------------------------------------------------------ helpers
def matching_archs(spec) -> List[str]:
    """Registered xlm_transformer architectures whose defaults are this model's dimensions."""
    from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_NAME_REGISTRY

    names = []
    for name, model in ARCH_MODEL_NAME_REGISTRY.items():
        if model != "xlm_transformer" or name == "xlm_transformer":
            continue
        args = argparse.Namespace()
        ARCH_CONFIG_REGISTRY[name](args)
        if (
            (args.emb_dim, args.n_layers, args.n_heads) == (spec.emb_dim, spec.n_layers, spec.n_heads)
            and bool(args.no_lang_emb) == spec.no_lang_emb
            and args.max_positions == spec.max_positions
        ):
            names.append(name)
    return names


def usage_lines(spec, out: str) -> List[str]:
    flags = f"--langs {','.join(spec.langs)}"
    archs = matching_archs(spec)
    if archs:
        arch = f"--arch {archs[0]}"
    else:
        arch = f"--arch xlm_transformer --emb-dim {spec.emb_dim} --n-layers {spec.n_layers} --n-heads {spec.n_heads}"
        if spec.no_lang_emb:
            arch += " --no-lang-emb"
        if spec.max_positions != N_MAX_POSITIONS:
            arch += f" --max-positions {spec.max_positions}"
    if not spec.gelu:
        arch += " --activation-fn relu"
    if spec.sinusoidal:
        arch += " --sinusoidal-embeddings"
    lines = [f"  flags:       {arch} {flags}"]
    model_pt = os.path.join(out, "model.pt")
    if spec.encoder_only:
        lines.append(
            f"  fine-tune:   fairseq-train DATA --user-dir xlm_fairseq --task xlm_tlm ... --finetune-from-model "
            f"{model_pt}"
        )
        lines.append(
            f"  MT init:     fairseq-train DATA --user-dir xlm_fairseq --task xlm_unsupervised_mt ... "
            f"--reload-encoder {model_pt} --reload-decoder {model_pt}"
        )
    else:
        lines.append(
            f"  translate:   fairseq-generate DATA --user-dir xlm_fairseq --task xlm_unsupervised_mt "
            f"{flags} --source-lang {spec.langs[0]} --target-lang {spec.langs[-1]} --path {model_pt}"
        )
    if os.path.isfile(os.path.join(out, SUBWORD_NMT_CODES)):
        lines.append(f"  BPE:         xlm-preprocess apply-bpe --codes-file {os.path.join(out, SUBWORD_NMT_CODES)}")
    lines.append(
        f"  data:        xlm-preprocess binarize --dict {os.path.join(out, 'dict.txt')} ... "
        "(or fairseq-preprocess --srcdict)"
    )
    return lines


def languages_line(spec, original_order: Optional[List[str]] = None) -> str:
    ids = " ".join(f"{l}={i}" for i, l in enumerate(spec.langs))
    emb = (
        "language embeddings"
        if spec.has_lang_emb
        else ("NO language embeddings (--no-lang-emb)" if spec.n_langs > 1 else "one language")
    )
    line = f"  languages:   {ids} ({emb})"
    if original_order and original_order != spec.langs:
        line += f"; original order {','.join(original_order)}, language rows reordered"
    return line


SUBWORD_NMT_CODES = "codes.subword-nmt"


def write_subword_nmt_codes(codes: str, path: str) -> List[str]:
    """The codes as subword-nmt reads them (`#version: 0.2`: `</w>` joined to a word's last symbol, as
    fastBPE), for `xlm-preprocess apply-bpe --codes-file`; fastBPE's counts are dropped."""
    from .transformers_io import read_codes

    merges = read_codes(codes)
    if merges is None:
        return []
    with open(path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(m + "\n" for m in merges)
    return [SUBWORD_NMT_CODES]


def write_inference_assets(folder, spec, lowercase: bool, source: str) -> List[str]:
    """xlm_inference.json beside model.pt (inference_assets.py): the languages, the subword-nmt codes when the
    folder has them, and the tokenisation (XLM's tools/tokenize.sh, lowercased or not), so that
    XLMTransformerModel.from_pretrained(DIR, "model.pt") needs nothing else."""
    from ..inference_assets import Settings, write

    codes = folder.path(SUBWORD_NMT_CODES)
    settings = Settings(
        langs=spec.langs,
        bpe_backend="subword-nmt" if os.path.isfile(codes) else None,
        bpe_codes=codes if os.path.isfile(codes) else None,
        lowercase=lowercase,
        source=source,
    )
    write(folder.tmp, settings, folder.path("dict.txt"), codes_name=SUBWORD_NMT_CODES)
    return [ASSETS]


def _print(lines: List[str]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------------------- commands
def from_original(args) -> None:
    from fairseq.data import Dictionary

    from .fairseq_checkpoint import build_cfg, check_against_model, save_checkpoint
    from .loading import load_pth
    from .original import read_spec, side_state_dicts, to_ours
    from .output import OutputFolder

    if args.codes and not os.path.isfile(args.codes):
        raise ConvertError(f"--codes {args.codes}: no such file")
    out_files = ["model.pt", "dict.txt", ASSETS] + (["codes", SUBWORD_NMT_CODES] if args.codes else [])
    folder = OutputFolder(args.out, out_files, args.force)  # checks --out before the (slow) load
    ckpt = load_pth(args.model, trust=args.trust_checkpoint)
    sides = side_state_dicts(ckpt, args.model)
    params = ckpt.get("params") if isinstance(ckpt.get("params"), dict) else {}
    spec, order = read_spec(sides, params, args.model, n_heads=args.n_heads, langs=_langs(args.langs))
    original_langs = [spec.langs[order.index(i)] for i in range(len(order))]

    vocab = original_vocabulary(ckpt, params, spec, args)
    state = to_ours(sides, order)
    wrote = ["model.pt", "dict.txt"] + (["codes"] if args.codes else [])
    with folder:
        vocab.write_dict_txt(folder.path("dict.txt"))
        dictionary = Dictionary.load(folder.path("dict.txt"))
        check_against_model(spec, state, dictionary)
        cfg = build_cfg(spec, folder.out)
        save_checkpoint(
            folder.path("model.pt"),
            spec,
            state,
            cfg,
            provenance={"from": os.path.abspath(args.model), "langs_original_order": original_langs},
        )
        if args.codes:
            shutil.copyfile(args.codes, folder.path("codes"))
            wrote += write_subword_nmt_codes(args.codes, folder.path(SUBWORD_NMT_CODES))
        wrote += write_inference_assets(folder, spec, args.lowercase_strip_accents, os.path.abspath(args.model))

    lines = [
        f"converted {args.model} -> {folder.out}",
        f"  model:       {spec.describe()}",
        languages_line(spec, original_langs),
        f"  vocabulary:  {spec.n_words} words (14 specials + {len(vocab.words)} from {vocab.source}"
        + (f"; {vocab.skipped} lines skipped" if vocab.skipped else "")
        + ")",
        f"  wrote:       {', '.join(wrote)}" + ("" if args.codes else " (no --codes given)"),
    ]
    lines += [f"  note:        {n}" for n in spec.notes]
    _print(lines + usage_lines(spec, folder.out))


def original_vocabulary(ckpt, params, spec, args):
    """The model's vocabulary: --vocab (checked against the one the checkpoint stores, if any) or the stored one,
    cut by --max-vocab/--min-count (default: the checkpoint's params, as XLM reloads it); it must give exactly the
    checkpoint's embedding rows."""
    from .vocab import XLMVocab

    dico = None
    if isinstance(ckpt.get("dico_id2word"), dict):
        dico = XLMVocab.from_checkpoint(ckpt["dico_id2word"], ckpt.get("dico_counts"), args.model)
    max_vocab = args.max_vocab if args.max_vocab is not None else params.get("max_vocab")
    min_count = args.min_count if args.min_count is not None else params.get("min_count")
    if args.vocab:
        vocab = XLMVocab.read(args.vocab)
    elif dico is not None:
        vocab = dico
    else:
        raise ConvertError(
            f"{args.model}: the checkpoint stores no dictionary (dico_id2word); give the vocabulary file with --vocab"
        )
    lines_kept = len(vocab.words)
    if max_vocab is not None and int(max_vocab) > 0:
        vocab.max_vocab(int(max_vocab))
    if min_count is not None and int(min_count) > 0:
        vocab.min_count(int(min_count))
    if len(vocab) != spec.n_words:
        hint = (
            f"pass --max-vocab {spec.n_words} (XLM's --max_vocab)"
            if len(vocab) > spec.n_words
            else "is this the vocabulary the model was trained with?"
        )
        cut = f", after --max-vocab {max_vocab}" if max_vocab not in (None, -1) else ""
        raise ConvertError(
            f"{vocab.source}: expected {spec.n_words} words (the checkpoint's embeddings.weight "
            f"rows), found {len(vocab)} (14 specials + {len(vocab.words)} of {lines_kept} tokens"
            f"{cut}); {hint}"
        )
    if dico is not None and vocab is not dico:
        vocab.check_against(dico)
    return vocab


def _find_dictionary(args, cfg) -> str:
    if args.dict:
        return args.dict
    beside = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "dict.txt")
    if os.path.isfile(beside):
        return beside
    from ..checkpoints import data_dir

    data = data_dir(cfg) or ""
    if data and os.path.isfile(os.path.join(data, "dict.txt")):
        return os.path.join(data, "dict.txt")
    raise ConvertError(f"{args.checkpoint}: no dict.txt beside it or in its data folder '{data}'; give --dict")


def to_transformers(args) -> None:
    from fairseq.data import Dictionary

    from .fairseq_checkpoint import read_checkpoint
    from .output import OutputFolder
    from .transformers_io import export

    folder = OutputFolder(args.out, ["config.json", "model.safetensors"], args.force)
    spec, sides, cfg = read_checkpoint(args.checkpoint)
    dict_path = _find_dictionary(args, cfg)
    if not os.path.isfile(dict_path):
        raise ConvertError(f"--dict {dict_path}: no such file")
    dictionary = Dictionary.load(dict_path)
    if len(dictionary) != spec.n_words:
        raise ConvertError(
            f"{dict_path}: {len(dictionary)} entries, but the checkpoint's vocabulary has "
            f"{spec.n_words}; give the model's dict.txt with --dict"
        )
    codes = args.codes
    if codes is None and os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "codes")):
        codes = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "codes")
    if codes and not os.path.isfile(codes):
        raise ConvertError(f"--codes {codes}: no such file")
    notes = (
        []
        if spec.encoder_only
        else [
            "encoder-decoder checkpoint: only the encoder (with its LM head) is exported; "
            "transformers has no XLM decoder"
        ]
    )
    from ..inference_assets import read as read_assets

    recorded = read_assets(os.path.dirname(os.path.abspath(args.checkpoint)))
    lowercase = args.lowercase_and_remove_accent or bool(recorded and recorded.lowercase)
    with folder:
        notes += export(folder.tmp, spec, sides["encoder"], dictionary, dict_path, codes, lowercase)
    files = sorted(os.listdir(folder.out))
    lines = [
        f"exported {args.checkpoint} -> {folder.out} (transformers XLMWithLMHeadModel)",
        f"  model:       {spec.describe()}",
        languages_line(spec),
        f"  vocabulary:  {spec.n_words} words, in transformers' numbering (</s>=1, <pad>=2, as the original)",
        f"  wrote:       {', '.join(files)}",
        "  load:        XLMWithLMHeadModel.from_pretrained(DIR)"
        + (", XLMTokenizer.from_pretrained(DIR)" if "vocab.json" in files else ""),
    ]
    _print(lines + [f"  note:        {n}" for n in notes])


def from_transformers(args) -> None:
    from fairseq.data import Dictionary

    from .fairseq_checkpoint import build_cfg, check_against_model, save_checkpoint
    from .output import OutputFolder
    from .transformers_io import import_folder

    codes = os.path.join(args.folder, "codes")
    merges = os.path.join(args.folder, "merges.txt")
    codes = codes if os.path.isfile(codes) else merges if os.path.isfile(merges) else None
    names = ["model.pt", "dict.txt", ASSETS] + (["codes"] if codes and codes.endswith("codes") else [])
    folder = OutputFolder(args.out, names + ([SUBWORD_NMT_CODES] if codes else []), args.force)
    spec, encoder, vocab, notes = import_folder(args.folder, _langs(args.langs))
    state = {f"encoder.{k}": v for k, v in encoder.items()}
    with folder:
        vocab.write_dict_txt(folder.path("dict.txt"))
        dictionary = Dictionary.load(folder.path("dict.txt"))
        check_against_model(spec, state, dictionary)
        cfg = build_cfg(spec, folder.out)
        save_checkpoint(folder.path("model.pt"), spec, state, cfg, provenance={"from": os.path.abspath(args.folder)})
        if codes and codes.endswith("codes"):
            shutil.copyfile(codes, folder.path("codes"))
        if codes and not write_subword_nmt_codes(codes, folder.path(SUBWORD_NMT_CODES)):
            notes.append(f"{codes} is not BPE merges: no {SUBWORD_NMT_CODES} written")
        elif codes and not codes.endswith("codes"):
            notes.append(f"BPE codes rebuilt from merges.txt as {SUBWORD_NMT_CODES} (fastBPE's counts are not in it)")
        tokenizer_config = os.path.join(args.folder, "tokenizer_config.json")
        lowercase = bool((read_json(tokenizer_config) or {}).get("do_lowercase_and_remove_accent", False))
        write_inference_assets(folder, spec, lowercase, os.path.abspath(args.folder))
    lines = [
        f"converted {args.folder} -> {folder.out}",
        f"  model:       {spec.describe()}",
        languages_line(spec),
        f"  vocabulary:  {spec.n_words} words",
        f"  wrote:       {', '.join(sorted(os.listdir(folder.out)))}",
    ]
    _print(lines + [f"  note:        {n}" for n in notes] + usage_lines(spec, folder.out))


COMMANDS = {"from-original": from_original, "to-transformers": to_transformers, "from-transformers": from_transformers}


def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    import xlm_fairseq  # noqa: F401  (registers the model and tasks the saved config names)

    from ..errors import XLMUserError

    try:
        COMMANDS[args.command](args)
    except XLMUserError as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; nothing was written\n")
        sys.exit(130)
