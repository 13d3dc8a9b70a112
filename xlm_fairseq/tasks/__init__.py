from . import xlm_cross_lingual_lm, xlm_tlm  # noqa: F401
