"""File names of a corpus folder (raw, tokenised or BPE'd text) and of a data-bin (docs/data.md):

    {split}.{lang}            monolingual text of `lang`
    {split}.{a}-{b}.{lang}    one side of the pair a-b (lang is a or b); data-bin names always have a < b

Splits are train, valid and test. `discover` finds the languages and pairs of a folder and checks that both
sides of every pair are there, with the same number of lines."""

import os
import re
from typing import Dict, List, Optional, Tuple

from .common import PreprocessError, count_lines, has_text

SPLITS = ("train", "valid", "test")
_CODE = r"[a-z][a-z0-9_]*"
_MONO_RE = re.compile(rf"^({'|'.join(SPLITS)})\.({_CODE})$")
_PARA_RE = re.compile(rf"^({'|'.join(SPLITS)})\.({_CODE})-({_CODE})\.({_CODE})$")


def mono_name(split: str, lang: str) -> str:
    return f"{split}.{lang}"


def pair_file_name(split: str, a: str, b: str, lang: str) -> str:
    a, b = sorted((a, b))
    return f"{split}.{a}-{b}.{lang}"


class Corpus:
    """What a folder holds: `mono[lang][split]` = path, `pairs[(a, b)][split]` = {lang: path} with a < b
    (the paths keep the file's own orientation, e.g. train.fr-en.en), `ignored` = other file names."""

    def __init__(self, folder: str):
        self.folder = folder
        self.mono: Dict[str, Dict[str, str]] = {}
        self.pairs: Dict[Tuple[str, str], Dict[str, Dict[str, str]]] = {}
        self.ignored: List[str] = []

    @property
    def languages(self) -> List[str]:
        langs = set(self.mono)
        for a, b in self.pairs:
            langs.update((a, b))
        return sorted(langs)

    def files(self) -> List[str]:
        paths = [p for splits in self.mono.values() for p in splits.values()]
        paths += [p for splits in self.pairs.values() for sides in splits.values() for p in sides.values()]
        return sorted(paths)

    def train_files(self, lang: str) -> List[str]:
        """The training text of `lang` for BPE learning: its monolingual file, else its sides of the pairs."""
        if "train" in self.mono.get(lang, {}):
            return [self.mono[lang]["train"]]
        return [
            sides[lang]
            for (a, b), splits in sorted(self.pairs.items())
            if lang in (a, b)
            for split, sides in splits.items()
            if split == "train"
        ]

    def relocated(self, folder: str) -> "Corpus":
        """The same files under another folder (tokenised or BPE'd copies keep the raw file names)."""
        moved = Corpus(folder)
        moved.mono = {
            lang: {s: os.path.join(folder, os.path.basename(p)) for s, p in splits.items()}
            for lang, splits in self.mono.items()
        }
        moved.pairs = {
            pair: {
                s: {lang: os.path.join(folder, os.path.basename(p)) for lang, p in sides.items()}
                for s, sides in splits.items()
            }
            for pair, splits in self.pairs.items()
        }
        return moved

    def all_train_files(self) -> List[str]:
        paths = [splits["train"] for _, splits in sorted(self.mono.items()) if "train" in splits]
        for _, splits in sorted(self.pairs.items()):
            if "train" in splits:
                paths += [splits["train"][lang] for lang in sorted(splits["train"])]
        return paths


def discover(folder: str, langs: Optional[List[str]] = None, flag: str = "input folder") -> Corpus:
    """Find `{split}.{lang}` and `{split}.{a}-{b}.{lang}` files in `folder` (restricted to `langs` if given)."""
    if not os.path.isdir(folder):
        raise PreprocessError(f"{flag} {folder} is not a folder")
    corpus = Corpus(folder)
    orientation: Dict[Tuple[str, str, str], str] = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        m = _PARA_RE.match(name)
        if m:
            split, x, y, lang = m.groups()
            if lang not in (x, y) or x == y:
                corpus.ignored.append(name)
                continue
            if langs is not None and (x not in langs or y not in langs):
                corpus.ignored.append(name)
                continue
            key = (split, *sorted((x, y)))
            if orientation.setdefault(key, f"{x}-{y}") != f"{x}-{y}":
                raise PreprocessError(
                    f"{folder} holds both {split}.{orientation[key]}.* and {split}.{x}-{y}.*: "
                    f"keep one orientation of each pair"
                )
            corpus.pairs.setdefault(tuple(sorted((x, y))), {}).setdefault(split, {})[lang] = path
            continue
        m = _MONO_RE.match(name)
        if m:
            split, lang = m.groups()
            if langs is not None and lang not in langs:
                corpus.ignored.append(name)
                continue
            corpus.mono.setdefault(lang, {})[split] = path
            continue
        corpus.ignored.append(name)
    for (a, b), splits in sorted(corpus.pairs.items()):
        for split, sides in sorted(splits.items()):
            if len(sides) != 2:
                have = next(iter(sides))
                other = b if have == a else a
                x_y = orientation[(split, a, b)]
                raise PreprocessError(
                    f"{os.path.join(folder, f'{split}.{x_y}.{other}')} is missing "
                    f"(its other side {os.path.basename(sides[have])} is there)"
                )
    if langs is not None:
        for lang in langs:
            if lang not in corpus.languages:
                raise PreprocessError(
                    f"no text for language '{lang}' in {folder} "
                    f"(expected files like train.{lang} or train.{lang}-xx.{lang})"
                )
    if not corpus.mono and not corpus.pairs:
        raise PreprocessError(
            f"{folder} has no {{split}}.{{lang}} or {{split}}.{{a}}-{{b}}.{{lang}} files (split = {', '.join(SPLITS)})"
        )
    return corpus


def check_pair_lengths(corpus: Corpus) -> Dict[Tuple[str, str, str], int]:
    """Raise if the two sides of a pair have different line counts; return {(split, a, b): lines}."""
    lengths = {}
    for (a, b), splits in sorted(corpus.pairs.items()):
        for split, sides in sorted(splits.items()):
            na, nb = count_lines(sides[a]), count_lines(sides[b])
            if na != nb:
                raise PreprocessError(
                    f"the two sides of {split} {a}-{b} differ in length: {sides[a]} has {na} lines, {sides[b]} has {nb}"
                )
            lengths[(split, a, b)] = na
    return lengths


def check_not_empty(corpus: Corpus) -> None:
    """Every file must exist and hold some text; every language must have some lines."""
    for path in corpus.files():
        if os.path.getsize(path) == 0 or not has_text(path):
            raise PreprocessError(f"{path} is empty (no lines with text)")
