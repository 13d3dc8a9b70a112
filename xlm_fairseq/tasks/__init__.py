from . import (  # noqa: F401
    xlm_classification,  # noqa: F401
    xlm_cross_lingual_lm,
    xlm_tlm,
    xlm_unsupervised_mt,  # noqa: F401
)
