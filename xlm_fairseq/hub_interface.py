"""A trained or converted XLM from Python, as fairseq's RoBERTa and translation models are used
(fairseq/models/roberta/hub_interface.py, fairseq/hub_utils.py):

    from xlm_fairseq.models.xlm_transformer import XLMTransformerModel
    xlm = XLMTransformerModel.from_pretrained("demo-out/pretrain")       # checkpoint_best.pt, dict.txt, codes
    tokens = xlm.encode("The cat sleeps.", "en")       # `</s> the cat sle@@ eps . </s>` as ids
    xlm.extract_features(tokens, "en")                  # (1, len, dim)
    xlm.fill_mask("The <mask> sleeps.", "en")           # MLM checkpoints: [(filled sentence, score, word), ...]
    xlm.score("The cat sleeps.", "en")                  # CLM checkpoints: per-token log-probabilities, ppl
    xlm.translate(["The cat sleeps."], "en", "fr")      # encoder-decoder checkpoints
    xlm.predict("The cat sleeps.", "en")                # classification checkpoints: (label, probabilities)

encode() preprocesses raw text as the training data was (`xlm_moses`: Moses normalisation and tokenisation,
lowercasing/accent stripping when the model was trained so, then the BPE codes through fairseq's subword_nmt /
sentencepiece encoders, then the shared dictionary), and every sentence is XLM's `</s> w1 .. wn </s>` with
its language id on every token. The dictionary, codes and settings come from the checkpoint's folder
(inference_assets.py). Mistakes (unknown language, empty text, text longer than the position table, an
operation the checkpoint cannot do) raise InputError with one line naming the argument."""

import itertools
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from fairseq import utils
from fairseq.data import ListDataset, encoders
from fairseq.dataclass.configs import GenerationConfig
from omegaconf import open_dict
from torch import nn

from . import inference_assets
from .checkpoints import read_checkpoint
from .data.translation_step_dataset import TranslationStepDataset
from .dictionary import MASK_WORD
from .encoders.xlm_moses import XLMMosesTokenizer
from .errors import InputError
from .modules.encoder_decoder import padding_mask_from_lengths

MASK = "<mask>"
FAIRSEQ_BPE = {"subword-nmt": ("subword_nmt", "bpe_codes"), "sentencepiece": ("sentencepiece", "sentencepiece_model")}
OWN_KWARGS = ("bpe", "bpe_codes", "lowercase")
# files fairseq.hub_utils.from_pretrained passes on as overrides when it finds them beside the checkpoint
HUB_FILES = {
    "code": "bpe_codes",
    "bpecodes": "bpe_codes",
    "sentencepiece.bpe.model": "sentencepiece_model",
    "merges.txt": "bpe_merges",
    "vocab.json": "bpe_vocab",
}


def from_pretrained(
    model_name_or_path: str, checkpoint_file: str = "checkpoint_best.pt", data_name_or_path: str = ".", **kwargs
) -> "XLMHubInterface":
    """fairseq.hub_utils.from_pretrained (the folder is the data: dict.txt beside the checkpoint) + the
    preprocessing settings beside it. kwargs bpe / bpe_codes / lowercase complete a folder without them; the
    rest are fairseq's argument overrides. Each checkpoint is read by the plugin's one loader
    (checkpoints.read_checkpoint), so a truncated or foreign file raises its one-line CheckpointError."""
    own = {k: kwargs.pop(k) for k in OWN_KWARGS if k in kwargs}
    folder = str(model_name_or_path)
    if not os.path.isdir(folder):
        raise InputError(f"model_name_or_path={folder!r}: no such folder (give the folder that holds the checkpoint)")
    names = utils.split_paths(str(checkpoint_file))
    for name in names:
        if not os.path.isfile(os.path.join(folder, name)):
            found = sorted(f for f in os.listdir(folder) if f.endswith(".pt"))
            raise InputError(
                f"checkpoint_file={name!r}: not in {folder} (it holds {', '.join(found) or 'no .pt file'}); "
                "pass checkpoint_file=..."
            )
    data = os.path.abspath(
        os.path.join(folder, data_name_or_path) if data_name_or_path.startswith(".") else data_name_or_path
    )
    if not os.path.isfile(os.path.join(data, inference_assets.DICT)):
        raise InputError(
            f"{data} has no {inference_assets.DICT} (checkpoints saved before xlm_fairseq wrote it "
            "beside them): pass data_name_or_path=DATA_BIN, the data-bin the model was trained on"
        )
    cfg, task, models = _load_ensemble(folder, names, data, kwargs)
    settings = inference_assets.load(os.path.abspath(folder), data, list(task.langs), **own)
    return XLMHubInterface(cfg, task, models[0], settings)


def _load_ensemble(folder: str, names: List[str], data: str, kwargs: dict):
    """What fairseq.hub_utils.from_pretrained does for a local folder, each file read by read_checkpoint:
    the overrides (the data folder, BPE files found beside the checkpoint, the caller's) applied to the saved
    config, then checkpoint_utils.load_model_ensemble_and_task on the state read."""
    from fairseq import checkpoint_utils

    overrides = dict(kwargs, data=data)
    for file, arg in HUB_FILES.items():
        if os.path.exists(os.path.join(folder, file)):
            overrides.setdefault(arg, os.path.join(folder, file))
    generation = overrides.get("generation_args")
    models, task, cfg = [], None, None
    for name in names:
        path = os.path.join(folder, name)
        state = read_checkpoint(path, "checkpoint_file", arg_overrides=overrides)
        loaded, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [path], arg_overrides=overrides, task=task, state=state
        )
        models += loaded
    for key, value in (generation or {}).items():
        setattr(cfg["generation"], key, value)
    return cfg, task, models


class XLMHubInterface(nn.Module):
    def __init__(self, cfg, task, model, settings: inference_assets.Settings):
        super().__init__()
        self.cfg, self.task, self.model, self.settings = cfg, task, model, settings
        self.model.eval()
        self.dictionary = task.source_dictionary
        self.langs = list(task.langs)
        self.lang2id = {l: i for i, l in enumerate(self.langs)}
        self.bpe = None
        if settings.bpe_backend != "none":
            name, key = FAIRSEQ_BPE[settings.bpe_backend]
            self.bpe = encoders.build_bpe(_config(name, **{key: settings.bpe_codes}))
        self._tokenizers: Dict[str, XLMMosesTokenizer] = {}
        self.register_buffer("_float_tensor", torch.tensor([0], dtype=torch.float, device="cpu"))  # moves with .to()

    @property
    def device(self):
        return self._float_tensor.device

    @property
    def max_positions(self) -> int:
        return self.model.encoder.max_positions()

    # ------------------------------------------------------------------------------------------ text
    def lang_id(self, lang: str, arg: str = "lang") -> int:
        if lang not in self.lang2id:
            raise InputError(
                f"{arg}={lang!r}: this model was trained with the languages {', '.join(self.langs)}; pass one of them"
            )
        return self.lang2id[lang]

    def tokenizer(self, lang: str) -> XLMMosesTokenizer:
        """The `xlm_moses` tokenizer of `lang` with the model's settings (cached)."""
        if lang not in self._tokenizers:
            self._tokenizers[lang] = XLMMosesTokenizer(
                _config(
                    "xlm_moses",
                    source_lang=lang,
                    target_lang=lang,
                    lowercase_strip_accents=self.settings.lowercase,
                    xlm_segmenter=self.settings.tokenizers.get(lang, "auto"),
                )
            )
        return self._tokenizers[lang]

    def bpe_text(self, sentence: str, lang: str, arg: str = "sentence") -> str:
        """Raw text -> tokenised, BPE-split text (what `xlm-preprocess prepare` writes to work/bpe/)."""
        self.lang_id(lang)
        if not isinstance(sentence, str):
            raise InputError(f"{arg}: expected a string, got {type(sentence).__name__}")
        if not sentence.strip():
            raise InputError(f"{arg} is empty: give at least one word")
        text = self.tokenizer(lang).encode(sentence)
        return self.bpe.encode(text) if self.bpe is not None else text

    def encode(self, sentence: str, lang: str, arg: str = "sentence") -> torch.LongTensor:
        """Raw text -> `</s> w1 .. wn </s>` ids (the ids `xlm-preprocess prepare` + fairseq-preprocess give, with
        XLM's leading `</s>`)."""
        ids = self.dictionary.encode_line(self.bpe_text(sentence, lang, arg), add_if_not_exist=False)
        tokens = torch.cat([ids.new_tensor([self.dictionary.eos()]), ids]).long()
        self._check_length(len(tokens), arg)
        return tokens

    def decode(self, tokens: torch.LongTensor, lang: Optional[str] = None) -> str:
        """Ids -> detokenised text (BPE removed; Moses detokenisation in `lang`, English rules by default)."""
        tokens = torch.as_tensor(tokens, device="cpu").view(-1)
        tokens = tokens[tokens.ne(self.dictionary.pad())]
        text = self.dictionary.string(tokens)
        if self.bpe is not None:
            text = self.bpe.decode(text)
        if lang is None and len(self.langs) > 1:
            return XLMMosesTokenizer(_config("xlm_moses", target_lang="en")).decode(text)
        return self.tokenizer(self.langs[0] if lang is None else self.langs[self.lang_id(lang)]).decode(text)

    def _check_length(self, n: int, arg: str) -> None:
        if n > self.max_positions:
            raise InputError(
                f"{arg}: {n} tokens with its delimiters, more than the model's {self.max_positions} "
                "positions; shorten or split it (nothing was truncated)"
            )

    def _batch(self, tokens, arg: str = "tokens") -> torch.LongTensor:
        tokens = torch.as_tensor(tokens, device=self.device)
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.dim() != 2 or tokens.size(0) != 1:
            raise InputError(
                f"{arg}: expected the ids of one sentence (encode()'s output), got shape {tuple(tokens.shape)}"
            )
        if tokens.numel() == 0 or int(tokens.min()) < 0 or int(tokens.max()) >= len(self.dictionary):
            raise InputError(f"{arg}: ids must lie in 0..{len(self.dictionary) - 1} (use encode())")
        self._check_length(tokens.size(1), arg)
        return tokens.long()

    # ------------------------------------------------------------------------------------------ kinds
    def _task_value(self, key: str):
        task_cfg = self.cfg.get("task") if hasattr(self.cfg, "get") else getattr(self.cfg, "task", None)
        return (task_cfg.get(key) if task_cfg is not None else None) or ""

    def _require(self, what: str, ok: bool, needs: str) -> None:
        if not ok:
            raise InputError(f"{what}: this checkpoint (task {self._task_value('_name') or '?'}) cannot do it; {needs}")

    @property
    def is_mlm(self) -> bool:
        return bool(self._task_value("mlm_steps"))

    @property
    def is_clm(self) -> bool:
        return bool(self._task_value("clm_steps"))

    @property
    def head_name(self) -> Optional[str]:
        name = self._task_value("classification_head_name")
        return name if name and name in self.model.classification_heads else None

    # -------------------------------------------------------------------------------------- features
    def extract_features(self, tokens: torch.LongTensor, lang: str, return_all_hiddens: bool = False):
        """The encoder's last hidden states (1, len(tokens), dim) for one encoded sentence; with
        return_all_hiddens the embedding output and every layer's output (n_layers + 1 tensors)."""
        tokens = self._batch(tokens)
        langs = torch.full((1,), self.lang_id(lang), dtype=torch.long, device=self.device)
        states: Optional[List[torch.Tensor]] = [] if return_all_hiddens else None
        hidden = self.model.encoder.fwd(tokens, langs=langs, inner_states=states)
        return states if return_all_hiddens else hidden

    @torch.no_grad()
    def sentence_embeddings(
        self, sentences: Sequence[str], lang: str, pool: str = "first", max_tokens: int = 4000
    ) -> torch.Tensor:
        """(len(sentences), dim) float32 on the CPU: the first hidden state (`</s>`, what XLM's classifier reads)
        or the mean over the sentence's tokens, in length-sorted batches of at most max_tokens tokens."""
        if pool not in ("first", "mean"):
            raise InputError(f"pool={pool!r}: choose 'first' or 'mean'")
        lid = self.lang_id(lang)
        encoded = [self.encode(s, lang, f"sentences[{i}]") for i, s in enumerate(sentences)]
        out = torch.empty(len(encoded), self.model.encoder.dim, device="cpu")
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        start = 0
        while start < len(order):
            longest, end = len(encoded[order[start]]), start
            while end < len(order) and len(encoded[order[end]]) * (end - start + 1) <= max(max_tokens, longest):
                end += 1
            idx = order[start:end]
            # built on the CPU row by row, then moved at once
            lengths = torch.tensor([len(encoded[i]) for i in idx], device="cpu")
            batch = torch.full((len(idx), int(lengths.max())), self.dictionary.pad(), dtype=torch.long, device="cpu")
            for row, i in enumerate(idx):
                batch[row, : len(encoded[i])] = encoded[i]
            batch, lengths = batch.to(self.device), lengths.to(self.device)
            mask = padding_mask_from_lengths(batch, lengths, self.dictionary.pad())
            hidden = self.model.encoder.fwd(
                batch, padding_mask=mask, langs=torch.full((len(idx),), lid, device=self.device)
            ).float()
            pooled = hidden[:, 0] if pool == "first" else hidden.sum(1) / lengths[:, None]
            out[idx] = pooled.cpu()
            start = end
        return out

    # ---------------------------------------------------------------------------------- MLM and CLM
    @torch.no_grad()
    def fill_mask(self, masked_sentence: str, lang: str, topk: int = 5) -> List[Tuple[str, float, str]]:
        """The topk words for the one `<mask>` of the text: (filled sentence, probability, predicted word)."""
        self._require(
            "fill_mask",
            self.is_mlm,
            "it needs a masked-LM checkpoint (trained with --mlm-steps, or a converted MLM model)",
        )
        if not isinstance(masked_sentence, str) or MASK not in masked_sentence:
            raise InputError(
                f"masked_sentence has no {MASK}: put {MASK} where the word goes, e.g. 'The {MASK} sleeps on the bed.'"
            )
        if masked_sentence.count(MASK) > 1:
            raise InputError(
                f"masked_sentence has {masked_sentence.count(MASK)} {MASK}s: fill_mask predicts one word; keep one"
            )
        if not isinstance(topk, int) or not 1 <= topk <= len(self.dictionary):
            raise InputError(f"topk={topk!r}: give a whole number from 1 to {len(self.dictionary)}")
        left, right = masked_sentence.split(MASK)
        parts = [self.bpe_text(p, lang, "masked_sentence") if p.strip() else "" for p in (left, right)]
        text = " ".join(p for p in (parts[0], MASK_WORD, parts[1]) if p)
        ids = self.dictionary.encode_line(text, add_if_not_exist=False)
        tokens = torch.cat([ids.new_tensor([self.dictionary.eos()]), ids]).long()
        position = len(self.dictionary.encode_line(parts[0], append_eos=False, add_if_not_exist=False)) + 1
        hidden = self.extract_features(tokens, lang)
        probs = self.model.encoder.predict(hidden[0, position]).float().softmax(dim=-1)
        values, index = probs.topk(topk)
        results = []
        for value, i in zip(values.tolist(), index.tolist()):
            piece = self.dictionary[i]
            word = self.bpe.decode(piece) if self.bpe is not None else piece
            filled = (
                masked_sentence.replace(f" {MASK}", " " + word)
                if f" {MASK}" in masked_sentence
                else masked_sentence.replace(MASK, word)
            )
            results.append((filled, value, word))
        return results

    @torch.no_grad()
    def score(self, sentence: str, lang: str) -> Dict[str, object]:
        """Causal-LM log-probabilities of every token after the leading `</s>` (the words' BPE units and the
        final `</s>`), each from its prefix: {'tokens', 'log_probs' (tensor), 'ppl'}."""
        self._require("score", self.is_clm, "it needs a causal-LM checkpoint (trained with --clm-steps)")
        tokens = self._batch(self.encode(sentence, lang))
        langs = torch.full((1,), self.lang_id(lang), dtype=torch.long, device=self.device)
        hidden = self.model.encoder.fwd(tokens, langs=langs, causal=True)
        lprobs = F.log_softmax(self.model.encoder.predict(hidden[0, :-1]).float(), dim=-1)
        log_probs = lprobs.gather(1, tokens[0, 1:, None]).squeeze(1).cpu()
        return {
            "tokens": [self.dictionary[int(i)] for i in tokens[0, 1:]],
            "log_probs": log_probs,
            "ppl": math.exp(-float(log_probs.mean())),
        }

    # ---------------------------------------------------------------------------------- translation
    def translate(
        self,
        sentences: Union[str, Sequence[str]],
        source_lang: str,
        target_lang: str,
        beam: int = 1,
        max_len_a: float = 1.5,
        max_len_b: int = 10,
        max_tokens: int = 6000,
        **generation,
    ) -> Union[str, List[str]]:
        """Raw text -> detokenised translations, in length-sorted batches of at most max_tokens source tokens.
        Length limit int(max_len_a * source length + max_len_b), XLM's evaluation default; further keyword
        arguments are fairseq's generation options (lenpen, sampling, ...)."""
        if isinstance(sentences, str):
            return self.translate(
                [sentences], source_lang, target_lang, beam, max_len_a, max_len_b, max_tokens, **generation
            )[0]
        self._require(
            "translate",
            self.model.is_encoder_decoder,
            "it is an encoder-only model; translation needs an encoder-decoder checkpoint "
            "(fairseq-train --task xlm_unsupervised_mt, or xlm-convert from-original of an MT model)",
        )
        self.lang_id(source_lang, "source_lang")
        self.lang_id(target_lang, "target_lang")
        tokens = [self.encode(s, source_lang, f"sentences[{i}]") for i, s in enumerate(sentences)]
        hypos = self.generate(
            tokens,
            source_lang,
            target_lang,
            beam=beam,
            max_len_a=max_len_a,
            max_len_b=max_len_b,
            max_tokens=max_tokens,
            **generation,
        )
        best = [h[0]["tokens"] for h in hypos]
        ids = torch.cat(best).tolist()  # every translation reaches the host in one copy
        ends = list(itertools.accumulate(len(t) for t in best))
        return [self.decode(ids[end - len(t) : end], target_lang) for t, end in zip(best, ends)]

    @torch.no_grad()
    def generate(
        self,
        tokens: List[torch.LongTensor],
        source_lang: str,
        target_lang: str,
        beam: int = 1,
        max_tokens: int = 6000,
        **generation,
    ) -> List[List[Dict[str, torch.Tensor]]]:
        """Encoded sentences -> fairseq's hypotheses (SequenceGenerator, as fairseq-generate), input order."""
        src, tgt = self.lang_id(source_lang, "source_lang"), self.lang_id(target_lang, "target_lang")
        gen_cfg = _config("", GenerationConfig())  # fairseq-generate's defaults
        known = set(GenerationConfig.__dataclass_fields__)
        with open_dict(gen_cfg):
            gen_cfg.beam = beam
            for key, value in generation.items():
                if key not in known:
                    raise InputError(
                        f"{key}={value!r}: not a fairseq generation option "
                        "(e.g. lenpen, max_len_a, max_len_b, nbest, sampling)"
                    )
                setattr(gen_cfg, key, value)
        generator = self.task.build_generator([self.model], gen_cfg)
        eos, pad = self.dictionary.eos(), self.dictionary.pad()
        rows = [t[1:] if len(t) and int(t[0]) == eos else t for t in tokens]  # the dataset adds the leading </s>
        dataset = TranslationStepDataset(
            ListDataset(rows, [len(r) for r in rows]),
            None,
            src,
            tgt,
            eos=eos,
            pad=pad,
            kind="infer",
            step=f"{source_lang}-{target_lang}_mt",
        )
        batches = dataset.batch_by_size(dataset.ordered_indices(), max_tokens=max(max_tokens, self.max_positions))
        results = []
        for indices in batches:
            batch = dataset.collater([dataset[i] for i in indices])
            ids = batch["id"].tolist()  # on the host, before the batch moves to the model's device
            batch = utils.apply_to_sample(lambda t: t.to(self.device), batch)
            results += zip(ids, self.task.inference_step(generator, [self.model], batch))
        return [hypos for _, hypos in sorted(results, key=lambda x: x[0])]

    # -------------------------------------------------------------------------------- classification
    @torch.no_grad()
    def predict(self, sentence: str, lang: str, sentence2: Optional[str] = None) -> Tuple[str, Dict[str, float]]:
        """The label of a sentence (or of a pair, `</s> a </s> b </s>`) and every label's probability."""
        head = self.head_name
        self._require(
            "predict",
            head is not None,
            "it needs a classification checkpoint (fairseq-train --task xlm_classification)",
        )
        tokens = self.encode(sentence, lang)
        if sentence2 is not None:
            tokens = torch.cat([tokens, self.encode(sentence2, lang, "sentence2")[1:]])
            self._check_length(len(tokens), "sentence + sentence2")
        tokens = self._batch(tokens)
        langs = torch.full((1,), self.lang_id(lang), dtype=torch.long, device=self.device)
        logits = self.model(tokens, langs=langs, classification_head_name=head)[0].float()
        probs = logits.softmax(dim=-1).tolist()
        labels = self.task.labels
        return labels[max(range(len(probs)), key=probs.__getitem__)], dict(zip(labels, probs))


def _config(name: str, dc=None, **values):
    """An OmegaConf config of a registered fairseq component (`_name` and fields), as fairseq's builders take."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(dc) if dc is not None else OmegaConf.create({})
    with open_dict(cfg):
        if name:
            cfg._name = name
        for key, value in values.items():
            cfg[key] = value
    return cfg
