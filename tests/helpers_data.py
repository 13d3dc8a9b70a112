"""Tiny real data-bins for integration tests, binarised by the real `fairseq-preprocess`."""

import fcntl
import hashlib
import os
import random
import shutil
import sys
from collections import Counter

from xlm_fairseq.dictionary import write_dictionary

from .helpers_cli import cli

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tiny")
BIN = os.path.dirname(sys.executable)


def read_fixture(lang):
    with open(os.path.join(FIXTURES, f"para.{lang}"), encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip()]


def fairseq_binarize(text_prefix, dest_prefix_dir, dict_path, lang, splits, workers=1):
    """fairseq-preprocess --only-source, then rename train.{lang}-None.{lang} -> train.{lang}."""
    args = [
        "fairseq-preprocess",
        "--only-source",
        "--srcdict",
        dict_path,
        "--destdir",
        dest_prefix_dir,
        "--source-lang",
        lang,
        "--workers",
        workers,
        "--dataset-impl",
        "mmap",
    ]
    for split in splits:
        args += [
            f"--{'trainpref' if split == 'train' else 'validpref' if split == 'valid' else 'testpref'}",
            f"{text_prefix[split]}",
        ]
    cli(*args)


# where make_data_bin keeps each data-bin it built, for the whole test session and both test processes (set by
# conftest.py; None outside pytest)
CACHE = None


def make_data_bin(
    root,
    langs=("en", "fr"),
    pairs=(("en", "fr"),),
    train_copies=8,
    n_valid=8,
    seed=0,
    rename_mono=True,
    valid_seen_in_train=False,
):
    """Raw text -> dict.txt -> data-bin with mono {split}.{lang} and pairs {split}.{a}-{b}.{x}, in root/raw and
    root/data-bin; returns the latter. valid_seen_in_train: the valid sentences are also trained on (40 sentences
    cannot teach a model anything that transfers; tests of the training loop then see valid perplexity fall).

    The files are a function of the arguments (seeded), and each set of arguments takes three to five runs of the real
    fairseq-preprocess: built once per test session (CACHE), then copied into root."""
    args = (tuple(langs), tuple(tuple(p) for p in pairs), train_copies, n_valid, seed, rename_mono, valid_seen_in_train)
    if CACHE is None:
        return build_data_bin(root, *args)
    cached = os.path.join(CACHE, hashlib.sha1(repr(args).encode()).hexdigest()[:16])
    os.makedirs(CACHE, exist_ok=True)
    with open(cached + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other test process may be building the same one
        if not os.path.isdir(cached):
            shutil.rmtree(cached + ".tmp", ignore_errors=True)
            build_data_bin(cached + ".tmp", *args)
            os.rename(cached + ".tmp", cached)
    for name in ("raw", "data-bin"):
        shutil.copytree(os.path.join(cached, name), os.path.join(root, name), symlinks=True, dirs_exist_ok=True)
    return os.path.join(root, "data-bin")


def build_data_bin(root, langs, pairs, train_copies, n_valid, seed, rename_mono, valid_seen_in_train):
    rng = random.Random(seed)
    raw = os.path.join(root, "raw")
    data = os.path.join(root, "data-bin")
    os.makedirs(raw, exist_ok=True)
    os.makedirs(data, exist_ok=True)
    sents = {l: read_fixture(l) for l in set(langs) | {x for p in pairs for x in p}}
    n = len(next(iter(sents.values())))
    order = list(range(n if valid_seen_in_train else n - n_valid))
    splits = {"train": [], "valid": list(range(n - n_valid, n))}
    for _ in range(train_copies):
        rng.shuffle(order)
        splits["train"] += order
    counts = Counter()
    for l, lines in sents.items():
        for split, idx in splits.items():
            with open(os.path.join(raw, f"{split}.{l}"), "w", encoding="utf-8") as f:
                f.writelines(lines[i] + "\n" for i in idx)
        for i in splits["train"]:
            counts.update(lines[i].split())
    dict_path = os.path.join(data, "dict.txt")
    write_dictionary(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), dict_path)
    for l in langs:
        prefixes = {s: os.path.join(raw, f"{s}.{l}") for s in splits}
        # fairseq-preprocess --only-source wants {pref}.{lang}: give it a folder per split
        for s in splits:
            os.makedirs(os.path.join(raw, "mono", s), exist_ok=True)
            target = os.path.join(raw, "mono", s, f"{s}.{l}")
            if not os.path.exists(target):
                os.symlink(os.path.relpath(prefixes[s], os.path.dirname(target)), target)  # valid in a copy
        fairseq_binarize({s: os.path.join(raw, "mono", s, s) for s in splits}, data, dict_path, l, splits)
        if rename_mono:
            for s in splits:
                for ext in ("bin", "idx"):
                    os.replace(os.path.join(data, f"{s}.{l}-None.{l}.{ext}"), os.path.join(data, f"{s}.{l}.{ext}"))
    for a, b in pairs:
        a, b = sorted((a, b))
        args = [
            "fairseq-preprocess",
            "--source-lang",
            a,
            "--target-lang",
            b,
            "--srcdict",
            dict_path,
            "--tgtdict",
            dict_path,
            "--destdir",
            data,
            "--workers",
            1,
            "--dataset-impl",
            "mmap",
            "--trainpref",
            os.path.join(raw, "train"),
            "--validpref",
            os.path.join(raw, "valid"),
        ]
        cli(*args)
    for f in os.listdir(data):
        if f.startswith("dict.") and f != "dict.txt":
            os.remove(os.path.join(data, f))
    return data


def prepare_data_bin(root, langs=("en", "fr"), pairs=(("en", "fr"),), train_copies=8, codes=300, seed=0):
    """The same tiny corpus through the project's own pipeline: `xlm-preprocess prepare` (Moses tokenisation,
    alpha-sampled BPE, shared dict, fairseq-preprocess). Valid sentences are also trained on, as in
    make_data_bin(valid_seen_in_train=True)."""
    rng = random.Random(seed)
    raw = os.path.join(root, "raw-text")
    os.makedirs(raw, exist_ok=True)
    sents = {l: read_fixture(l) for l in set(langs) | {x for p in pairs for x in p}}
    n = len(next(iter(sents.values())))
    order = []
    for _ in range(train_copies):
        idx = list(range(n))
        rng.shuffle(idx)
        order += idx
    splits = {"train": order, "valid": list(range(n - 8, n))}
    for split, idx in splits.items():
        for l in langs:
            with open(os.path.join(raw, f"{split}.{l}"), "w", encoding="utf-8") as f:
                f.writelines(sents[l][i] + "\n" for i in idx)
        for a, b in pairs:
            a, b = sorted((a, b))
            for l in (a, b):
                with open(os.path.join(raw, f"{split}.{a}-{b}.{l}"), "w", encoding="utf-8") as f:
                    f.writelines(sents[l][i] + "\n" for i in idx)
    data = os.path.join(root, "data-bin")
    cli(*["xlm-preprocess", "prepare", raw, data, "--langs", ",".join(sorted(langs)), "--codes", codes])
    return data
