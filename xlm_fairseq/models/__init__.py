from . import xlm_transformer  # noqa: F401
