"""Exchange with transformers' XLM (`XLMWithLMHeadModel`, model_type "xlm"), in transformers' (= the
original XLM's) token numbering.

Written by to-transformers, through transformers' own save_pretrained:
  config.json + model.safetensors   the encoder (transformers has no XLM decoder) and its tied LM head;
                                    dims, activation, languages (id2lang/lang2id), use_lang_emb, pad 2 / eos 1
  vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json
                                    XLMTokenizer files, when BPE codes in fastBPE / subword-nmt form are
                                    available (`</w>` word ends; merges = the codes without counts);
                                    do_lowercase_and_remove_accent as given (--lowercase-and-remove-accent)
  dict.txt, codes                   our dictionary (with counts) and the codes, for the way back
Not carried: dropout is carried but nothing of training (optimizer, schedule, task flags); a decoder.

from-transformers reads config.json, model.safetensors (or sharded, or pytorch_model.bin) and dict.txt,
or rebuilds dict.txt from vocab.json (counts unknown: written as 1).
"""

import json
import os
import shutil
from typing import Dict, List, Optional, Tuple

import torch
from fairseq.data import Dictionary

from ..modules.transformer import N_MAX_POSITIONS
from . import ConvertError
from .spec import ModelSpec, check_keys, permute_rows, retie
from .vocab import XLMVocab, from_hf_token, to_hf_token

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConvertError("this command needs transformers: pip install transformers") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


# ------------------------------------------------------------------------------------------------ export
def hf_config(spec: ModelSpec):
    tf = _transformers()
    config = tf.XLMConfig(
        vocab_size=spec.n_words,
        emb_dim=spec.emb_dim,
        n_layers=spec.n_layers,
        n_heads=spec.n_heads,
        dropout=spec.dropout,
        attention_dropout=spec.attention_dropout,
        gelu_activation=spec.gelu,
        sinusoidal_embeddings=spec.sinusoidal,
        causal=False,
        asm=False,
        n_langs=spec.n_langs,
        use_lang_emb=spec.has_lang_emb or spec.n_langs == 1,
        max_position_embeddings=spec.max_positions,
        layer_norm_eps=1e-12,
        is_encoder=True,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        unk_index=3,
        mask_index=5,
        tie_word_embeddings=True,
    )
    config.id2lang = {i: l for i, l in enumerate(spec.langs)}
    config.lang2id = {l: i for i, l in enumerate(spec.langs)}
    config.architectures = ["XLMWithLMHeadModel"]
    return config


def read_codes(path: str) -> Optional[List[str]]:
    """BPE merges `a b` from fastBPE (`a b count`) or subword-nmt codes, or None when the file is not in
    that form (e.g. a sentencepiece model)."""
    merges = []
    try:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                fields = line.split()
                if i == 0 and line.startswith("#version"):
                    continue
                if not fields:
                    continue
                if len(fields) not in (2, 3) or (len(fields) == 3 and not fields[2].isdigit()):
                    return None
                merges.append(f"{fields[0]} {fields[1]}")
    except (UnicodeDecodeError, OSError):
        return None
    return merges


def write_tokenizer(folder: str, vocab: XLMVocab, codes: str, spec: ModelSpec, lowercase: bool) -> List[str]:
    """XLMTokenizer files, saved by XLMTokenizer itself. Returns notes for the summary."""
    tf = _transformers()
    merges = read_codes(codes)
    if merges is None:
        return [f"{codes} is not fastBPE/subword-nmt BPE codes: no XLMTokenizer files written"]
    scratch = os.path.join(folder, ".tokenizer-src")
    os.makedirs(scratch)
    try:
        tokens = {}
        for i, word in enumerate(vocab.id2word()):
            tokens.setdefault(to_hf_token(word, i), i)
        with open(os.path.join(scratch, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(tokens, f, ensure_ascii=False)
        with open(os.path.join(scratch, "merges.txt"), "w", encoding="utf-8") as f:
            f.writelines(m + "\n" for m in merges)
        tok = tf.XLMTokenizer(
            os.path.join(scratch, "vocab.json"),
            os.path.join(scratch, "merges.txt"),
            lang2id={l: i for i, l in enumerate(spec.langs)},
            id2lang={i: l for i, l in enumerate(spec.langs)},
            do_lowercase_and_remove_accent=lowercase,
            model_max_length=spec.max_positions,
        )
        tok.save_pretrained(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    notes = []
    if len(tokens) != vocab.__len__():
        notes.append(f"{len(vocab) - len(tokens)} words share a spelling in XLMTokenizer's vocabulary")
    return notes


def export(
    folder: str,
    spec: ModelSpec,
    encoder: Dict[str, torch.Tensor],
    dictionary: Dictionary,
    dict_path: str,
    codes: Optional[str],
    lowercase: bool,
) -> List[str]:
    """Write a transformers XLM folder from our encoder weights (our numbering). Returns notes."""
    tf = _transformers()
    sd = permute_rows(encoder)  # back to XLM's numbering (the permutation is its own inverse)
    hf_sd = {(k if k.startswith("pred_layer.") else "transformer." + k): v for k, v in sd.items()}
    config = hf_config(spec)
    with torch.device("meta"):
        model = tf.XLMWithLMHeadModel(config)
    model.load_state_dict(hf_sd, strict=True, assign=True)
    model.tie_weights()
    model.save_pretrained(folder)
    notes = []
    shutil.copyfile(dict_path, os.path.join(folder, "dict.txt"))
    if codes:
        shutil.copyfile(codes, os.path.join(folder, "codes"))
        notes += write_tokenizer(folder, XLMVocab.from_dictionary(dictionary, dict_path), codes, spec, lowercase)
    else:
        notes.append("no BPE codes (--codes, or `codes` beside the checkpoint): no XLMTokenizer files written")
    return notes


# ------------------------------------------------------------------------------------------------ import
def _load_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot be read as JSON ({e})") from None


def read_weights(folder: str) -> Dict[str, torch.Tensor]:
    from ..checkpoints import read_safetensors
    from .loading import load_pth

    def one(path):
        return read_safetensors(path) if path.endswith(".safetensors") else load_pth(path)

    for name in WEIGHT_FILES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if name.endswith(".index.json"):
            shards = sorted(set(_load_json(path).get("weight_map", {}).values()))
            sd = {}
            for shard in shards:
                sd.update(one(os.path.join(folder, shard)))
            return sd
        return one(path)
    raise ConvertError(f"{folder}: no weights ({', '.join(WEIGHT_FILES)})")


def read_dictionary(folder: str) -> Tuple[XLMVocab, List[str]]:
    """Our dict.txt if the folder has one (written by to-transformers), else vocab.json."""
    path = os.path.join(folder, "dict.txt")
    if os.path.isfile(path):
        return XLMVocab.from_dictionary(Dictionary.load(path), path), []
    path = os.path.join(folder, "vocab.json")
    if not os.path.isfile(path):
        raise ConvertError(f"{folder}: neither dict.txt nor vocab.json; the vocabulary is needed")
    table = _load_json(path)
    by_id = {}
    for token, i in table.items():
        by_id.setdefault(int(i), token)
    if sorted(by_id) != list(range(len(by_id))):
        raise ConvertError(f"{path}: ids are not 0..{len(by_id) - 1}")
    id2word = {i: from_hf_token(t, i) for i, t in by_id.items()}
    vocab = XLMVocab.from_checkpoint(id2word, {w: 1 for w in id2word.values()}, path)
    return vocab, ["dict.txt rebuilt from vocab.json: word counts are unknown (written as 1)"]


def import_folder(folder: str, langs_override: Optional[List[str]] = None):
    """(spec, encoder state dict in OUR numbering, vocab, notes) of a transformers XLM folder."""
    if not os.path.isdir(folder):
        raise ConvertError(f"{folder}: no such folder")
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise ConvertError(f"{folder}: no config.json; not a transformers model folder")
    config = _load_json(config_path)
    model_type = config.get("model_type")
    if model_type != "xlm":
        raise ConvertError(f"{folder}: a transformers '{model_type}' model, not XLM (model_type 'xlm')")
    if config.get("asm"):
        raise ConvertError(f"{folder}: adaptive softmax (asm) is not supported")
    if config.get("is_encoder") is False:
        raise ConvertError(f"{folder}: is_encoder false; only XLM encoders can be converted")
    raw = read_weights(folder)
    sd, notes = {}, []
    for key, value in raw.items():
        if key.startswith("transformer."):
            sd[key[len("transformer.") :]] = value
        elif (
            key.startswith("pred_layer.")
            or "." in key
            and key.split(".")[0]
            in (
                "position_embeddings",
                "lang_embeddings",
                "embeddings",
                "layer_norm_emb",
                "attentions",
                "layer_norm1",
                "ffns",
                "layer_norm2",
            )
        ):
            sd[key] = value
    if "embeddings.weight" not in sd:
        raise ConvertError(f"{folder}: no transformer.embeddings.weight in its weights")
    sd.setdefault("pred_layer.proj.weight", sd["embeddings.weight"])  # tied: saved once
    if "pred_layer.proj.bias" not in sd:
        sd["pred_layer.proj.bias"] = torch.zeros(sd["embeddings.weight"].shape[0])
        notes.append("no LM head in the folder (not XLMWithLMHeadModel): output bias set to 0")
    n_langs = int(config.get("n_langs", 1))
    langs = langs_override
    if not langs:
        id2lang = config.get("id2lang") or {}
        langs = [str(id2lang[k]) for k in sorted(id2lang, key=int)] if id2lang else None
    if not langs:
        raise ConvertError(f"{folder}: config.json has no id2lang; give the languages in id order with --langs")
    if len(langs) != n_langs:
        raise ConvertError(f"{folder}: n_langs {n_langs} but {len(langs)} languages ({','.join(langs)})")
    order = sorted(range(n_langs), key=lambda i: langs[i])
    emb = sd["embeddings.weight"]
    spec = ModelSpec(
        emb_dim=int(emb.shape[1]),
        n_layers=int(config.get("n_layers", 0)),
        n_heads=int(config.get("n_heads", 0)),
        n_words=int(emb.shape[0]),
        langs=[langs[i] for i in order],
        has_lang_emb="lang_embeddings.weight" in sd,
        gelu=bool(config.get("gelu_activation", True)),
        sinusoidal=bool(config.get("sinusoidal_embeddings", False)),
        max_positions=int(config.get("max_position_embeddings", N_MAX_POSITIONS)),
        dropout=float(config.get("dropout", 0.1)),
        attention_dropout=float(config.get("attention_dropout", 0.1)),
    )
    if int(config.get("vocab_size", spec.n_words)) != spec.n_words:
        raise ConvertError(
            f"{folder}: config vocab_size {config.get('vocab_size')} but the embeddings have {spec.n_words} rows"
        )
    if spec.n_heads <= 0 or spec.emb_dim % spec.n_heads:
        raise ConvertError(f"{folder}: n_heads {spec.n_heads} does not divide emb_dim {spec.emb_dim}")
    check_keys(sd, spec, is_decoder=False, where=folder)
    vocab, vocab_notes = read_dictionary(folder)
    if len(vocab) != spec.n_words:
        raise ConvertError(f"{folder}: the vocabulary has {len(vocab)} entries, the model {spec.n_words}")
    return spec, retie(permute_rows(sd, order)), vocab, notes + vocab_notes
