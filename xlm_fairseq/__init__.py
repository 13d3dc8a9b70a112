"""xlm_fairseq: XLM (Lample & Conneau, 2019) as a fairseq plugin (`--user-dir xlm_fairseq`)."""

__version__ = "0.1.0"

from . import cli_hooks, safe_loading

safe_loading.register()
cli_hooks.install()

from . import criterions, encoders, models, optim, tasks  # noqa: E402,F401  (registers the components)
from .registry_check import check_registries  # noqa: E402

check_registries()
