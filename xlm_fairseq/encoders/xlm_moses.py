"""Tokenizer `xlm_moses`: XLM's text preprocessing as a fairseq tokenizer.

encode() is `xlm_preprocess.tokenizer.Tokenizer`, the one `xlm-preprocess tokenize/prepare` runs (Moses
punctuation normalisation and tokenisation as XLM's tools/tokenize.sh, optional lowercasing and accent
stripping, jieba / fugashi / PyThaiNLP for zh / ja / th); decode() is Moses detokenisation in the target
language (text of zh / ja / th is joined without spaces). So `fairseq-interactive --tokenizer xlm_moses
--bpe subword_nmt --bpe-codes CODES` and the hub interface preprocess raw text exactly as the training data
was. --source-lang/--target-lang are the translation task's own flags."""

from dataclasses import dataclass, field
from typing import Optional

from fairseq.data.encoders import register_tokenizer
from fairseq.dataclass import FairseqDataclass

from xlm_preprocess.common import PreprocessError
from xlm_preprocess.tokenizer import TOKENIZER_CHOICES, Tokenizer, require_tokenizer, resolve_tokenizer

from ..bleu import Detokenizer
from ..errors import ConfigError

SEGMENTERS = ("jieba", "fugashi", "pythainlp")  # scripts written without spaces between words


@dataclass
class XLMMosesConfig(FairseqDataclass):
    source_lang: Optional[str] = field(default=None, metadata={"help": "language of the text to tokenise"})
    target_lang: Optional[str] = field(default=None, metadata={"help": "language of the text to detokenise"})
    lowercase_strip_accents: bool = field(
        default=False,
        metadata={
            "help": "lowercase and remove accents, as `xlm-preprocess prepare "
            "--lowercase-strip-accents` did for the training data"
        },
    )
    xlm_segmenter: str = field(
        default="auto",
        metadata={
            "help": "auto (jieba for zh, fugashi for ja, pythainlp for th, Moses for the "
            f"rest) or one of {', '.join(TOKENIZER_CHOICES[1:])}"
        },
    )


def build_tokenizer(lang: str, lowercase: bool, segmenter: str = "auto") -> Tokenizer:
    """The preprocessing's tokenizer for `lang`, with its errors as this package's user errors."""
    try:
        kind = resolve_tokenizer(lang, segmenter)
        require_tokenizer(lang, kind)
        return Tokenizer(lang, lowercase, kind)
    except PreprocessError as e:
        raise ConfigError(str(e)) from None


@register_tokenizer("xlm_moses", dataclass=XLMMosesConfig)
class XLMMosesTokenizer:
    def __init__(self, cfg: XLMMosesConfig):
        self.cfg = cfg
        self.tokenizer = None
        if cfg.source_lang:
            self.tokenizer = build_tokenizer(cfg.source_lang, cfg.lowercase_strip_accents, cfg.xlm_segmenter)
        self.detokenizer = Detokenizer()
        self.joined = False
        if cfg.target_lang:
            try:
                self.joined = resolve_tokenizer(cfg.target_lang, cfg.xlm_segmenter) in SEGMENTERS
            except PreprocessError as e:
                raise ConfigError(str(e)) from None

    def encode(self, x: str) -> str:
        if self.tokenizer is None:
            raise ConfigError("--tokenizer xlm_moses: give --source-lang, the language of the text to tokenise")
        return self.tokenizer(x)

    def decode(self, x: str) -> str:
        if not self.cfg.target_lang:
            raise ConfigError("--tokenizer xlm_moses: give --target-lang, the language of the text to detokenise")
        if self.joined:
            return "".join(x.split())
        return self.detokenizer(x, self.cfg.target_lang)
