"""fairseq's register_task/register_model silently return the *existing* class when a name is taken
(fairseq/tasks/__init__.py: register_task, fairseq/models/__init__.py: register_model), so a clash would run
fairseq's component instead of ours. Check every name we register."""

PACKAGE = __name__.split(".")[0]

TASKS = ["xlm_cross_lingual_lm", "xlm_tlm", "xlm_unsupervised_mt", "xlm_classification"]
MODELS = ["xlm_transformer"]
CRITERIONS = ["xlm_lm_loss", "xlm_mt_loss", "xlm_classification_loss"]
TOKENIZERS = ["xlm_moses"]
OPTIMIZERS = ["xlm_adam"]


def _check(kind: str, registry: dict, names: list) -> None:
    for name in names:
        cls = registry.get(name)
        if cls is None:
            raise ImportError(f"{PACKAGE}: {kind} '{name}' was not registered")
        if not cls.__module__.startswith(PACKAGE + "."):
            raise ImportError(
                f"{PACKAGE}: the {kind} name '{name}' is held by {cls.__module__}.{cls.__name__}, not by this "
                "plugin (fairseq keeps the first registration); rename ours"
            )


def check_registries() -> None:
    from fairseq.criterions import CRITERION_REGISTRY
    from fairseq.data.encoders import TOKENIZER_REGISTRY
    from fairseq.models import MODEL_REGISTRY
    from fairseq.optim import OPTIMIZER_REGISTRY
    from fairseq.tasks import TASK_REGISTRY

    _check("task", TASK_REGISTRY, TASKS)
    _check("model", MODEL_REGISTRY, MODELS)
    _check("criterion", CRITERION_REGISTRY, CRITERIONS)
    _check("tokenizer", TOKENIZER_REGISTRY, TOKENIZERS)
    _check("optimizer", OPTIMIZER_REGISTRY, OPTIMIZERS)
