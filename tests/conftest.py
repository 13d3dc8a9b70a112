"""`make test` runs two processes that take whole files (pytest-xdist --dist loadfile) in collection order, so a long
file collected last runs alone at the end while the other process idles. The files below (the longest, measured
with --durations: tens of seconds to minutes each, mostly real fairseq-train runs) are collected first, longest
first; the others keep their alphabetical order after them."""

import os

import pytest

from . import helpers_data

LONGEST_FIRST = [
    "test_benchmarks.py",
    "test_pretrain_cli.py",
    "test_hub.py",
    "test_distributed_launch.py",
    "test_mt_cli.py",
    "test_classification.py",
    "test_compiled_layers.py",
    "test_memory_scaling.py",
    "test_table2_gpu.py",
    "test_recipe_commands.py",
    "test_preprocess_prepare.py",
    "test_convert.py",
    "test_forkserver.py",
    "test_shards.py",
    "test_half_precision_training.py",
    "test_help.py",
    "test_language_mapping.py",
    "test_xlm_adam.py",
]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(rank)))  # stable: the rest in order


@pytest.fixture(scope="session", autouse=True)
def data_bin_cache(tmp_path_factory):
    """helpers_data.make_data_bin's cache, in the session's temporary folder that both test processes share (with
    pytest-xdist each process's own folder is a subfolder of it)."""
    base = tmp_path_factory.getbasetemp()
    helpers_data.CACHE = str((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "data-bin-cache")
    yield
    helpers_data.CACHE = None
