"""What inference needs beside a checkpoint, so that `XLMTransformerModel.from_pretrained(DIR)` and
`fairseq-interactive DIR ...` need no other path: fairseq's hub layout (fairseq/hub_utils.py: `data` is the
checkpoint's own folder), with XLM's preprocessing settings in one small JSON file.

    dict.txt                          the shared dictionary (the task's setup_task reads it from `data`)
    bpecodes | sentencepiece.bpe.model    the BPE codes, under fairseq's hub names (a converted model keeps
                                      its codes.subword-nmt)
    label_dict.txt                    classification checkpoints: the label order
    xlm_inference.json                {"langs", "bpe": {"backend", "codes"} or null,
                                       "tokenize": {"lowercase_strip_accents", "tokenizers": {lang: kind}} or null,
                                       "labels" (classification), "from" (where the settings came from)}

Written by fairseq-train (every task calls `write_for_task` from fairseq's `task.post_save` hook, after each
checkpoint it saves) from the data-bin's manifest.json, which `xlm-preprocess prepare` / `binarize` /
`classification` write; and by `xlm-convert from-original` / `from-transformers` beside model.pt. The
languages are also the checkpoint's own `cfg.task.langs`, which wins. `load` reads the files back (or, for a
checkpoint folder without them, the manifest of the data-bin given as data_name_or_path); what is truly
missing is an error naming the argument that supplies it."""

import filecmp
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from xlm_preprocess.binarize import MANIFEST
from xlm_preprocess.common import PreprocessError, read_json, write_json

from .errors import ConfigError, InputError

logger = logging.getLogger(__name__)

ASSETS = "xlm_inference.json"
DICT = "dict.txt"
LABEL_DICT = "label_dict.txt"
CODES_NAMES = {"subword-nmt": "bpecodes", "sentencepiece": "sentencepiece.bpe.model"}
BPE_CHOICES = ("subword-nmt", "sentencepiece", "none")
FORMAT = "xlm_fairseq inference assets"


@dataclass
class Settings:
    """The preprocessing of a model's training data. bpe_backend None = unknown; "none" = no BPE."""

    langs: List[str]
    bpe_backend: Optional[str] = None
    bpe_codes: Optional[str] = None  # absolute path
    lowercase: Optional[bool] = None  # None = unknown
    tokenizers: Dict[str, str] = field(default_factory=dict)
    labels: Optional[str] = None  # absolute path of label_dict.txt
    source: str = ""


# ------------------------------------------------------------------------------------------------ reading
def _resolve(path: Optional[str], folder: str) -> Optional[str]:
    if not path:
        return None
    return path if os.path.isabs(path) else os.path.join(folder, path)


def from_manifest(data_dir: str) -> Optional[Settings]:
    """The settings a data-bin's manifest.json records (None without one). Data-bins written before the
    manifest recorded codes_file keep their codes in work/codes, where `xlm-preprocess prepare` puts them."""
    path = os.path.join(data_dir, MANIFEST)
    manifest = read_json(path)
    if not isinstance(manifest, dict):
        return None
    bpe = manifest.get("bpe") or {}
    codes = _resolve(bpe.get("codes_file"), data_dir)
    if codes is None and bpe.get("backend") and os.path.isfile(os.path.join(data_dir, "work", "codes")):
        codes = os.path.join(data_dir, "work", "codes")
    tokenize = manifest.get("tokenize")
    labels = os.path.join(data_dir, LABEL_DICT)
    return Settings(
        langs=list(manifest.get("languages") or []),
        bpe_backend=bpe.get("backend") if codes else None,
        bpe_codes=codes,
        lowercase=None if tokenize is None else bool(tokenize.get("lowercase_strip_accents")),
        tokenizers=dict((tokenize or {}).get("tokenizers") or {}),
        labels=labels if os.path.isfile(labels) else None,
        source=os.path.abspath(path),
    )


def read(folder: str) -> Optional[Settings]:
    """The settings of xlm_inference.json in `folder` (None without one)."""
    path = os.path.join(folder, ASSETS)
    data = read_json(path)
    if data is None:
        if os.path.exists(path):
            raise InputError(f"{path} is not readable JSON; delete it and pass bpe_codes=... instead")
        return None
    bpe, tokenize = data.get("bpe") or {}, data.get("tokenize")
    return Settings(
        langs=list(data.get("langs") or []),
        bpe_backend=bpe.get("backend"),
        bpe_codes=_resolve(bpe.get("codes"), folder),
        lowercase=None if tokenize is None else bool(tokenize.get("lowercase_strip_accents")),
        tokenizers=dict((tokenize or {}).get("tokenizers") or {}),
        labels=_resolve(data.get("labels"), folder),
        source=os.path.abspath(path),
    )


# ------------------------------------------------------------------------------------------------ writing
def _copy(src: str, dst: str) -> None:
    if os.path.exists(dst) and (os.path.samefile(src, dst) or filecmp.cmp(src, dst, shallow=False)):
        return
    tmp = f"{dst}.tmp-{os.getpid()}"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def write(folder: str, settings: Settings, dict_path: str, codes_name: Optional[str] = None) -> None:
    """Write dict.txt, the codes, label_dict.txt and xlm_inference.json into `folder` (files already there with
    the same content are left alone). codes_name: the codes' file name in `folder` (default: fairseq's hub
    name for the backend)."""
    _copy(dict_path, os.path.join(folder, DICT))
    bpe = None
    if settings.bpe_backend == "none":
        bpe = {"backend": "none"}
    elif settings.bpe_backend and settings.bpe_codes:
        codes_name = codes_name or CODES_NAMES[settings.bpe_backend]
        _copy(settings.bpe_codes, os.path.join(folder, codes_name))
        bpe = {"backend": settings.bpe_backend, "codes": codes_name}
    data = {
        "format": FORMAT,
        "version": 1,
        "langs": list(settings.langs),
        "dictionary": DICT,
        "bpe": bpe,
        "tokenize": None
        if settings.lowercase is None
        else {"lowercase_strip_accents": settings.lowercase, "tokenizers": dict(settings.tokenizers)},
    }
    if settings.labels:
        _copy(settings.labels, os.path.join(folder, LABEL_DICT))
        data["labels"] = LABEL_DICT
    data["from"] = settings.source
    path = os.path.join(folder, ASSETS)
    if read_json(path) != data:
        write_json(path, data)


def write_for_task(folder: str, task) -> None:
    """Beside a checkpoint fairseq-train saved: the task's dictionary, languages and its data-bin's
    preprocessing (manifest.json)."""
    data_dir = task.data_dir
    settings = from_manifest(data_dir) or Settings(langs=[], source=os.path.abspath(data_dir))
    settings.langs = list(task.langs)
    labels = os.path.join(data_dir, LABEL_DICT)
    settings.labels = labels if hasattr(task, "labels") and os.path.isfile(labels) else None
    if settings.bpe_codes and not os.path.isfile(settings.bpe_codes):
        logger.warning(
            f"{settings.source} names BPE codes {settings.bpe_codes}, which do not exist: "
            f"{os.path.join(folder, ASSETS)} records no codes"
        )
        settings.bpe_backend = settings.bpe_codes = None
    try:
        write(folder, settings, os.path.join(data_dir, DICT))
    except OSError as e:  # never fail a training run over these files
        logger.warning(f"could not write the inference files beside the checkpoint in {folder}: {e}")


def check_tokenizer_settings(tokenizer_cfg, data_dir: str) -> None:
    """fairseq-interactive/-generate --tokenizer xlm_moses on DATA: the lowercasing the data was trained with."""
    settings = read(data_dir) or from_manifest(data_dir)
    if settings is None or settings.lowercase is None:
        return
    given = bool(getattr(tokenizer_cfg, "lowercase_strip_accents", False))
    if given != settings.lowercase:
        raise ConfigError(
            f"--tokenizer xlm_moses: {settings.source} records that the training text was "
            + (
                "lowercased without accents: add --lowercase-strip-accents"
                if settings.lowercase
                else "not lowercased: leave out --lowercase-strip-accents"
            )
        )


# ------------------------------------------------------------------------------------------------ loading
def load(
    model_dir: str,
    data_dir: str,
    langs: List[str],
    bpe: Optional[str] = None,
    bpe_codes: Optional[str] = None,
    lowercase: Optional[bool] = None,
) -> Settings:
    """The settings for a model in `model_dir` whose dictionary was read from `data_dir`, completed by the
    from_pretrained arguments bpe / bpe_codes / lowercase. Raises InputError naming the argument to pass."""
    from xlm_preprocess.apply_bpe import check_codes

    settings = read(model_dir) or (from_manifest(data_dir) if data_dir != model_dir else None)
    if settings is None:
        settings = Settings(langs=list(langs), source="")
    if settings.langs and sorted(settings.langs) != sorted(langs):
        logger.warning(
            f"{settings.source} lists languages {','.join(settings.langs)} but the checkpoint was "
            f"trained with {','.join(langs)}: using the checkpoint's"
        )
    settings.langs = list(langs)
    if bpe is not None:
        if bpe not in BPE_CHOICES:
            raise InputError(f"bpe={bpe!r}: choose one of {', '.join(map(repr, BPE_CHOICES))}")
        settings.bpe_backend = bpe
        if bpe == "none":
            settings.bpe_codes = None
    if bpe_codes is not None:
        if not os.path.isfile(bpe_codes):
            raise InputError(f"bpe_codes={bpe_codes!r}: no such file")
        settings.bpe_codes = os.path.abspath(bpe_codes)
        if settings.bpe_backend in (None, "none"):
            settings.bpe_backend = bpe or "subword-nmt"
    if settings.bpe_backend is None or (settings.bpe_backend != "none" and not settings.bpe_codes):
        where = (
            f"{settings.source} records none"
            if settings.source
            else f"{model_dir} has no {ASSETS} and {data_dir} no {MANIFEST}"
        )
        raise InputError(
            f"no BPE codes for this model ({where}): pass bpe_codes=PATH, the codes the training "
            "data was split with (with bpe='sentencepiece' for a sentencepiece model), or bpe='none' "
            "if the vocabulary holds whole words"
        )
    if settings.bpe_backend != "none":
        if not os.path.isfile(settings.bpe_codes):
            raise InputError(
                f"BPE codes {settings.bpe_codes} (named by {settings.source or 'bpe_codes'}) do not "
                "exist: pass bpe_codes=PATH"
            )
        try:
            check_codes(settings.bpe_codes, settings.bpe_backend, "bpe_codes")
        except PreprocessError as e:
            raise InputError(str(e)) from None
    if lowercase is not None:
        settings.lowercase = bool(lowercase)
    elif settings.lowercase is None:
        logger.warning(
            f"the tokenisation of {model_dir}'s training data is not recorded: assuming Moses without "
            "lowercasing (pass lowercase=True for a model trained on lowercased text)"
        )
        settings.lowercase = False
    return settings
