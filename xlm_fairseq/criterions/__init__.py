from . import (
    xlm_classification_loss,  # noqa: F401
    xlm_lm_loss,  # noqa: F401
    xlm_mt_loss,  # noqa: F401
)
