from . import xlm_moses  # noqa: F401  (registers the tokenizer)
