"""`make test` runs two processes that take whole files (pytest-xdist --dist loadfile) in collection order, so a long
file collected last runs alone at the end while the other process idles. The files below (the longest, measured
with --durations: tens of seconds to minutes each, mostly real fairseq-train runs) are collected first, longest
first; the others keep their alphabetical order after them."""

import os

LONGEST_FIRST = [
    "test_pretrain_cli.py",
    "test_mt_cli.py",
    "test_benchmarks.py",
    "test_hub.py",
    "test_classification.py",
    "test_language_mapping.py",
    "test_convert.py",
    "test_table2_gpu.py",
    "test_xlm_adam.py",
    "test_half_precision_training.py",
    "test_hydra_configs.py",
]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(rank)))  # stable: the rest in order
