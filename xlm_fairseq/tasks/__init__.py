from . import xlm_cross_lingual_lm, xlm_tlm  # noqa: F401
from . import xlm_unsupervised_mt  # noqa: F401
from . import xlm_classification  # noqa: F401
