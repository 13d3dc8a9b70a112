"""`xlm-convert`: exchange XLM weights between the original XLM code, this plugin and transformers.

    xlm-convert from-original mlm_enfr_1024.pth --vocab vocab_enfr --codes codes_enfr --out enfr/
    xlm-convert to-transformers enfr/model.pt --out enfr-hf/
    xlm-convert from-transformers enfr-hf/ --out enfr-again/

Modules: loading (safe unpickling of .pth files), vocab (XLM vocabularies and the pad/eos permutation),
original (reading original checkpoints), fairseq_checkpoint (our model.pt), transformers_io (transformers'
XLM folders), output (all-or-nothing output folders), cli (the command line).
"""

from ..errors import XLMUserError


class ConvertError(XLMUserError):
    """A bad input file or flag: printed as one `error:` line, exit status 2."""
