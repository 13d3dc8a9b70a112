from . import xlm_adam  # noqa: F401
