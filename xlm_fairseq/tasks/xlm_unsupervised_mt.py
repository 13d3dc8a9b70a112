"""Task `xlm_unsupervised_mt`: machine translation from a pretrained XLM (paper §4.2-4.3).

    --ae-steps en,fr             denoising auto-encoding (--word-shuffle 3 --word-dropout 0.1 --word-blank 0.1)
    --bt-steps en-fr-en,fr-en-fr online back-translation with the live model (greedy, eval mode, no gradient)
    --mt-steps en-fr,fr-en       supervised steps on parallel data (with --bt-steps: supervised + BT)
    --reload-encoder/--reload-decoder PATH   (or --reload-model ENC,DEC) initialise from pretrained LMs

Validation per direction (mt_steps and the (l2, l3) of every BT step): `fr-en_mt_ppl`, `fr-en_mt_acc`
and, with --eval-bleu, `fr-en_mt_bleu` (tokenised, as the paper) and `fr-en_mt_sacrebleu` (detokenised).
fairseq-generate / fairseq-interactive translate with --source-lang/--target-lang."""

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import torch
from fairseq.data import ListDataset
from fairseq.logging import metrics
from fairseq.tasks import register_task
from omegaconf import II

from ..bleu import KINDS, STAT_KEYS, Detokenizer, bleu_from_stats, bleu_stats, remove_bpe
from ..data.data_files import load_mono, load_pair
from ..data.noise import NoiseConfig
from ..data.translation_step_dataset import TranslationStepDataset
from ..dictionary import mask_index
from ..errors import ConfigError
from ..generation import bt_max_len, eval_max_len, greedy_generate
from ..inference_assets import check_tokenizer_settings
from ..pretrained import reload_encoder_decoder
from ..steps import LambdaSchedule, pair_key, parse_steps
from .multi_step_task import MultiStepConfig, MultiStepTask

logger = logging.getLogger(__name__)


@dataclass
class UnsupervisedMTConfig(MultiStepConfig):
    ae_steps: str = field(default="", metadata={"help": "denoising auto-encoder steps, e.g. 'en,fr'"})
    bt_steps: str = field(default="", metadata={"help": "back-translation steps, e.g. 'en-fr-en,fr-en-fr'"})
    mt_steps: str = field(default="", metadata={"help": "supervised steps on parallel data, e.g. 'en-fr,fr-en'"})
    word_shuffle: float = field(default=0.0, metadata={"help": "AE noise: max shuffle distance (0, or > 1)"})
    word_dropout: float = field(default=0.0, metadata={"help": "AE noise: word drop probability"})
    word_blank: float = field(default=0.0, metadata={"help": "AE noise: word blanking probability"})
    lambda_ae: str = field(default="1", metadata={"help": "AE loss weight or schedule '0:1,100000:0.1,300000:0'"})
    lambda_bt: str = field(default="1", metadata={"help": "BT loss weight or schedule"})
    lambda_mt: str = field(default="1", metadata={"help": "MT loss weight or schedule"})
    reload_encoder: str = field(default="", metadata={"help": "initialise the encoder from this checkpoint"})
    reload_decoder: str = field(default="", metadata={"help": "initialise the decoder from this checkpoint"})
    reload_model: str = field(default="", metadata={"help": "XLM's form: 'ENC.pt,DEC.pt' (either may be empty)"})
    source_lang: Optional[str] = field(default=None, metadata={"help": "generation source", "argparse_alias": "-s"})
    target_lang: Optional[str] = field(default=None, metadata={"help": "generation target", "argparse_alias": "-t"})
    eval_bleu: bool = field(default=False, metadata={"help": "greedy-decode the valid sets and log BLEU"})
    eval_bleu_bpe: str = field(
        default="subword_nmt", metadata={"help": "BPE to remove before BLEU: subword_nmt, sentencepiece or none"}
    )
    eval_bleu_print_samples: bool = field(default=False, metadata={"help": "log a hypothesis per batch"})
    train_subset: str = II("dataset.train_subset")


@register_task("xlm_unsupervised_mt", dataclass=UnsupervisedMTConfig)
class XLMUnsupervisedMTTask(MultiStepTask):
    needs_decoder = True
    criterion_names = ("xlm_mt_loss", "xlm_lm_loss")

    def __init__(self, cfg, dictionary):
        super().__init__(cfg, dictionary)
        self.ae_steps = [p[0] for p in parse_steps("ae-steps", cfg.ae_steps, self.langs, (1,))]
        self.mt_steps = parse_steps("mt-steps", cfg.mt_steps, self.langs, (2,))
        self.bt_steps = parse_steps("bt-steps", cfg.bt_steps, self.langs, (3,))
        for a, b in self.mt_steps:
            if a == b:
                raise ConfigError(f"--mt-steps: '{a}-{b}' translates a language into itself (use --ae-steps)")
        for l1, l2, l3 in self.bt_steps:
            if not (l1 == l3 != l2):
                raise ConfigError(f"--bt-steps: '{l1}-{l2}-{l3}' must go there and back, e.g. en-fr-en")
        self.noise = NoiseConfig(cfg.word_shuffle, cfg.word_dropout, cfg.word_blank)
        if cfg.word_shuffle != 0 and cfg.word_shuffle <= 1:
            raise ConfigError(f"--word-shuffle {cfg.word_shuffle}: must be 0 or greater than 1")
        for flag, p in (("word-dropout", cfg.word_dropout), ("word-blank", cfg.word_blank)):
            if not 0 <= p < 1:
                raise ConfigError(f"--{flag} {p}: must be in [0, 1)")
        if self.noise.active and not self.ae_steps:
            raise ConfigError("--word-shuffle/--word-dropout/--word-blank only apply to --ae-steps, which is empty")
        directions = [tuple(s) for s in self.mt_steps] + [(l2, l3) for _, l2, l3 in self.bt_steps]
        self.directions = list(OrderedDict.fromkeys(directions))
        if cfg.source_lang or cfg.target_lang:
            self.directions = [self._generation_direction()]
        self.eval_steps = [f"{s}-{t}_mt" for s, t in self.directions]
        self.lambdas = {g: LambdaSchedule(f"lambda-{g}", getattr(cfg, f"lambda_{g}")) for g in ("ae", "bt", "mt")}
        self.reload_paths = self._reload_paths()
        self.detokenize = Detokenizer()

    def _generation_direction(self):
        s, t = self.cfg.source_lang, self.cfg.target_lang
        if not s or not t:
            raise ConfigError("give both --source-lang and --target-lang to translate")
        for flag, l in (("--source-lang", s), ("--target-lang", t)):
            if l not in self.langs:
                raise ConfigError(f"{flag} {l}: not in --langs {','.join(self.langs)}")
        return (s, t)

    def _reload_paths(self):
        enc, dec = self.cfg.reload_encoder, self.cfg.reload_decoder
        if self.cfg.reload_model:
            if enc or dec:
                raise ConfigError("give either --reload-model ENC,DEC or --reload-encoder/--reload-decoder")
            parts = self.cfg.reload_model.split(",")
            if len(parts) != 2:
                raise ConfigError(f"--reload-model {self.cfg.reload_model}: expected 'ENC.pt,DEC.pt'")
            enc, dec = parts
        return enc.strip(), dec.strip()

    def train_steps_needed(self):
        if not (self.ae_steps or self.mt_steps or self.bt_steps):
            raise ConfigError("nothing to train: give --ae-steps, --bt-steps and/or --mt-steps")

    # ------------------------------------------------------------------ data
    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        train = split == self.cfg.train_subset
        data_dir = self.train_data_dir(epoch) if train else self.data_dir
        d, eos, pad = self.dictionary, self.dictionary.eos(), self.dictionary.pad()
        common = dict(eos=eos, pad=pad, mask_index=mask_index(d), seed=self.cfg.seed)
        datasets = OrderedDict()
        if train:
            self.train_steps_needed()
            self.train_steps.clear()
            for lang in self.ae_steps:
                mono = load_mono(data_dir, split, lang, d)
                datasets[f"{lang}_ae"] = TranslationStepDataset(
                    mono,
                    None,
                    self.lang2id[lang],
                    self.lang2id[lang],
                    kind="ae",
                    step=f"{lang}_ae",
                    noise=self.noise,
                    **common,
                )
            for a, b in self.mt_steps:
                src, tgt = load_pair(data_dir, split, a, b, d)
                datasets[f"{a}-{b}_mt"] = TranslationStepDataset(
                    src, tgt, self.lang2id[a], self.lang2id[b], kind="mt", step=f"{a}-{b}_mt", **common
                )
            for l1, l2, l3 in self.bt_steps:
                name = f"{l1}-{l2}-{l3}_bt"
                mono = load_mono(data_dir, split, l1, d)
                datasets[name] = TranslationStepDataset(
                    mono, None, self.lang2id[l1], self.lang2id[l2], kind="bt", step=name, **common
                )
        else:
            for s, t in self.directions:
                src, tgt = load_pair(data_dir, split, s, t, d)
                datasets[f"{s}-{t}_mt"] = TranslationStepDataset(
                    src, tgt, self.lang2id[s], self.lang2id[t], kind="eval", step=f"{s}-{t}_mt", **common
                )
        for name, ds in datasets.items():
            dropped = ds.filter_lengths(self.cfg.max_len if train else None, self.max_model_positions)
            if len(ds.keep) == 0:
                raise ConfigError(f"{split} {name}: no sentence left with 1..--max-len {self.cfg.max_len} tokens")
            logger.info(f"{split} {name}: {len(ds.keep)} sentences" + (f" ({dropped} dropped)" if dropped else ""))
        if train:
            self.add_translation_steps(datasets)
        self.datasets[split] = self.make_multi_step_dataset(datasets, train)

    def add_translation_steps(self, datasets) -> None:
        """AE and BT steps run once per iteration; MT steps are drawn by the language distribution over the
        pairs kept by the length filter (as the original counts its filtered parallel data)."""
        pair_counts = {}
        for a, b in self.mt_steps:
            pair_counts[pair_key(a, b)] = len(datasets[f"{a}-{b}_mt"].keep)
        q = self.language_weights(pair_counts) if pair_counts else {}
        for name in datasets:
            group = name.rsplit("_", 1)[1]
            if group == "mt":
                a, b = name[: -len("_mt")].split("-")
                self.add_train_step(name, "mt", True, q[pair_key(a, b)])
            else:
                self.add_train_step(name, group, False, 1.0)

    def build_dataset_for_inference(self, src_tokens, src_lengths, constraints=None):
        s, t = self._generation_direction()
        ds = TranslationStepDataset(
            ListDataset(src_tokens, src_lengths),
            None,
            self.lang2id[s],
            self.lang2id[t],
            kind="infer",
            step=f"{s}-{t}_mt",
            eos=self.dictionary.eos(),
            pad=self.dictionary.pad(),
        )
        return ds

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        """fairseq-interactive rebuilds every sample as {src_tokens, src_lengths} and drops the language ids
        that build_dataset_for_inference gives: put --source-lang/--target-lang back."""
        net = sample["net_input"]
        if net.get("src_langs") is None or net.get("tgt_langs") is None:
            s, t = self._generation_direction()
            like = net["src_tokens"].new_zeros(net["src_tokens"].size(0))
            net = dict(net, src_langs=like + self.lang2id[s], tgt_langs=like + self.lang2id[t])
            sample = dict(sample, net_input=net)
        return super().inference_step(generator, models, sample, prefix_tokens=prefix_tokens, constraints=constraints)

    def build_tokenizer(self, args):
        """--tokenizer xlm_moses must lowercase exactly when the training data was (xlm_inference.json beside
        the checkpoint, or the data-bin's manifest.json, records it)."""
        tokenizer = super().build_tokenizer(args)
        if getattr(args, "_name", None) == "xlm_moses":
            check_tokenizer_settings(args, self.data_dir)
        return tokenizer

    # ----------------------------------------------------------------- model
    def build_model(self, cfg, from_checkpoint=False):
        model = super().build_model(cfg, from_checkpoint)
        enc, dec = self.reload_paths
        if not from_checkpoint and (enc or dec):
            reload_encoder_decoder(model, enc, dec, self.dictionary)
        return model

    # ------------------------------------------------------------- training
    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        if sample.get("bt"):
            sample = self.back_translate(sample, model)
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def back_translate(self, sample, model):
        """l1 sentences -> greedy l2 translations by the current model (eval mode, no gradient) -> an MT
        sample l2 -> l1 whose target is the original (facebookresearch/XLM `xlm/trainer.py: bt_step`). The
        collater made the target side (prev_output_tokens, target, pred_index) on the CPU; the generated
        sentences take the source's place."""
        inner = model
        while hasattr(inner, "module"):
            inner = inner.module
        net = sample["net_input"]
        x1, len1, langs1 = net["src_tokens"], net["src_lengths"], net["src_langs"]
        langs2 = torch.full_like(langs1, sample["bt_langs"][1])
        was_training = inner.training
        inner.eval()
        with self.autocast(inner):
            x2, len2 = greedy_generate(inner, x1, len1, langs1, langs2, bt_max_len(x1))
        inner.train(was_training)
        translated = {k: v for k, v in sample.items() if k not in ("bt", "bt_langs")}
        translated["net_input"] = dict(net, src_tokens=x2, src_lengths=len2, src_langs=langs2, tgt_langs=langs1)
        return translated

    # ----------------------------------------------------------- validation
    def empty_logging_output(self):
        out = super().empty_logging_output()
        if self.cfg.eval_bleu:
            for name in self.eval_steps:
                for kind in KINDS:
                    for stat in STAT_KEYS:
                        out[f"_{name}_{kind}_{stat}"] = 0
        return out

    def valid_step(self, sample, model, criterion):
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        if self.cfg.eval_bleu and sample.get("target") is not None:
            name = sample["step"]
            tgt_lang = name[: -len("_mt")].split("-")[1]
            with self.autocast(model):
                hyps, refs = self.decode_batch(model, sample)
            logging_output.update({f"_{name}_tok_{k}": v for k, v in bleu_stats(hyps, refs, "tok").items()})
            detok_h = [self.detokenize(h, tgt_lang) for h in hyps]
            detok_r = [self.detokenize(r, tgt_lang) for r in refs]
            logging_output.update({f"_{name}_sacre_{k}": v for k, v in bleu_stats(detok_h, detok_r, "sacre").items()})
            if self.cfg.eval_bleu_print_samples:
                logger.info(f"{name} hypothesis: {hyps[0]}")
                logger.info(f"{name} reference:  {refs[0]}")
        return loss, sample_size, logging_output

    def decode_batch(self, model, sample):
        """Greedy hypotheses and references of a validation batch as text. The hypotheses, their lengths and the
        references reach the CPU together, in one copy per batch (row: hypothesis, length, reference)."""
        net = sample["net_input"]
        src = net["src_tokens"]
        with torch.no_grad():
            out, lengths = greedy_generate(
                model, src, net["src_lengths"], net["src_langs"], net["tgt_langs"], eval_max_len(src)
            )
        width = out.size(1)
        rows = torch.cat([out, lengths[:, None], sample["target"]], dim=1).tolist()  # the batch's one copy
        bpe = None if self.cfg.eval_bleu_bpe == "none" else self.cfg.eval_bleu_bpe
        pad = self.dictionary.pad()
        hyps, refs = [], []
        for row in rows:
            hyps.append(remove_bpe(self.dictionary.string(row[1 : row[width] - 1]), bpe))
            ref = [t for t in row[width + 1 :] if t != pad]
            refs.append(remove_bpe(self.dictionary.string(ref, escape_unk=True), bpe))
        return hyps, refs

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if not self.cfg.eval_bleu:
            return
        for name in self.eval_steps:
            for kind, metric in (("tok", "bleu"), ("sacre", "sacrebleu")):
                keys = [f"_{name}_{kind}_{stat}" for stat in STAT_KEYS]
                sums = [sum(log.get(k, 0) for log in logging_outputs) for k in keys]
                if sums[STAT_KEYS.index("ref_len")] == 0:  # no reference seen: this direction was not evaluated
                    continue
                for k, v in zip(keys, sums):
                    metrics.log_scalar_sum(k, v)
                metrics.log_derived(
                    f"{name}_{metric}",
                    lambda m, keys=keys: round(
                        bleu_from_stats({stat: m[k].sum for stat, k in zip(STAT_KEYS, keys)}), 2
                    ),
                )
