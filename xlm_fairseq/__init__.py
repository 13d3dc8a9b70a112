"""xlm_fairseq: XLM (Lample & Conneau, 2019) as a fairseq plugin (`--user-dir xlm_fairseq`)."""

__version__ = "0.1.0"

from . import errors, safe_loading

safe_loading.register()
errors.install_excepthook()

from . import criterions, encoders, models, optim, tasks  # noqa: E402,F401  (registers the components)
from .registry_check import check_registries  # noqa: E402

check_registries()
