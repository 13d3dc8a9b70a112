from . import xlm_lm_loss  # noqa: F401
from . import xlm_mt_loss  # noqa: F401
from . import xlm_classification_loss  # noqa: F401
