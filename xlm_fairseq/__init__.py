"""xlm_fairseq: XLM (Lample & Conneau, 2019) as a fairseq plugin (`--user-dir xlm_fairseq`)."""

__version__ = "0.1.0"

from . import cli_hooks, launch, safe_loading

safe_loading.register()
cli_hooks.install()
launch.refuse_fairseq_train_under_launcher()  # before fairseq's launch code divides by the GPU count

from . import criterions, encoders, models, optim, tasks  # noqa: E402,F401  (registers the components)
from .registry_check import check_registries  # noqa: E402

check_registries()
