from . import xlm_lm_loss  # noqa: F401
