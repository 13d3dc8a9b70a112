"""`xlm-preprocess prepare RAW_DIR DATA_BIN --langs en,fr`: the whole pipeline in one command.

RAW_DIR holds raw text, `{split}.{lang}` (monolingual) and `{split}.{a}-{b}.{lang}` (parallel; the pairs are
found from the file names). The steps, with their files in a work folder (DATA_BIN/work unless --work-dir):

    1 tokenize     every file                   -> work/tok/<same name>
    2 learn-bpe    α-sample of the train split  -> work/codes (+ codes.meta.json)
    3 apply-bpe    every tokenised file         -> work/bpe/<same name>
    4 build-dict   the BPE'd train split        -> work/dict.txt
    5 binarize     fairseq-preprocess           -> DATA_BIN/{dict.txt, manifest.json, *.bin, *.idx}

With --shards N (N > 1), step 5 writes N data-bins DATA_BIN/shard0 .. shard{N-1} instead, each train file cut
into N contiguous parts and valid/test in shard0 (shards.py); the BPE codes and dict.txt are learned once on the
whole corpus, so every shard has the same dict.txt. The last line printed is the DATA argument of fairseq-train,
`DATA_BIN/shard0:DATA_BIN/shard1:...` (epoch e trains on shard (e-1) % N).

Every output is written under a temporary name and renamed when complete. A stamp (work/stamps/*.json) records
the settings, the inputs' sizes and modification times and the outputs' sizes and modification times; a rerun
reuses an output only when its stamp matches all of them, so an interrupted run resumes where it stopped and a
changed input or setting redoes what depends on it (`--force` redoes everything)."""

import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Dict, List

from .apply_bpe import apply_file, check_codes
from .binarize import binarize_corpus, manifest_path, output_files
from .build_dict import build_dictionary
from .common import (
    PreprocessError,
    check_positive,
    describe_skipped,
    find_bad_lines,
    parse_langs,
    read_json,
    remove_stale_temps,
    write_json,
)
from .layout import check_not_empty, check_pair_lengths, discover
from .learn_bpe import BACKENDS, learn, meta_path
from .shards import ShardText, check_enough_lines, check_shard_count, data_argument, shard_dirs, stale_shards
from .tokenizer import TOKENIZER_CHOICES, moses_has_rules, require_tokenizer, resolve_tokenizer, tokenize_file


class Stamps:
    """Which outputs are complete and up to date (see the module docstring). Files inside the work folder are
    named relative to it, so a work folder moved or copied whole stays valid."""

    def __init__(self, folder: str, root: str, force: bool = False):
        self.folder = folder
        self.root = os.path.abspath(root)
        self.force = force

    def _fingerprint(self, paths: List[str]) -> Dict[str, list]:
        prints = {}
        for path in paths:
            key = os.path.relpath(os.path.abspath(path), self.root)
            if key.startswith(".."):
                key = os.path.abspath(path)
            try:
                st = os.stat(path)
                prints[key] = [st.st_size, st.st_mtime_ns]
            except OSError:
                prints[key] = None
        return prints

    def _path(self, key: str) -> str:
        return os.path.join(self.folder, key + ".json")

    def fresh(self, key: str, params: dict, inputs: List[str], outputs: List[str]) -> bool:
        if self.force:
            return False
        stamp = read_json(self._path(key))
        if not stamp or stamp.get("params") != params or stamp.get("inputs") != self._fingerprint(inputs):
            return False
        now = self._fingerprint(outputs)
        return None not in now.values() and stamp.get("outputs") == now

    def record(self, key: str, params: dict, inputs: List[str], outputs: List[str]) -> None:
        os.makedirs(self.folder, exist_ok=True)
        write_json(
            self._path(key),
            {"params": params, "inputs": self._fingerprint(inputs), "outputs": self._fingerprint(outputs)},
        )


def _say(msg: str) -> None:
    print(msg, flush=True)


@dataclass
class Workspace:
    """The folders and files of one `prepare` run, and the stamps that say which are up to date."""

    work: str
    data_bin: str
    stamps: Stamps
    tok_dir: str
    bpe_dir: str
    codes: str
    dictionary: str

    @classmethod
    def create(cls, work: str, data_bin: str, force: bool) -> "Workspace":
        tok_dir, bpe_dir = os.path.join(work, "tok"), os.path.join(work, "bpe")
        for folder in (work, tok_dir, bpe_dir, os.path.join(work, "stamps"), data_bin):
            os.makedirs(folder, exist_ok=True)
            remove_stale_temps(folder)
        return cls(
            work,
            data_bin,
            Stamps(os.path.join(work, "stamps"), work, force),
            tok_dir,
            bpe_dir,
            os.path.join(work, "codes"),
            os.path.join(work, "dict.txt"),
        )


def prepare(
    raw_dir: str,
    data_bin: str,
    langs: List[str],
    codes: int = 30000,
    backend: str = "subword-nmt",
    alpha: float = 0.5,
    sample_size: int = None,
    seed: int = 0,
    max_vocab: int = None,
    min_count: int = 1,
    lowercase: bool = False,
    tokenizer: str = "auto",
    workers: int = 1,
    work_dir: str = None,
    skip_bad_lines: bool = False,
    force: bool = False,
    shards: int = 1,
) -> dict:
    check_positive(workers, "--workers")
    check_positive(codes, "--codes")
    check_shard_count(shards, data_bin)
    if backend not in BACKENDS:
        raise PreprocessError(f"--backend: unknown BPE backend '{backend}' (choose from {', '.join(BACKENDS)})")
    raw, kinds = check_raw_corpus(raw_dir, langs, tokenizer)
    if shards > 1:
        check_enough_lines(raw.all_train_files(), shards)
    ws = Workspace.create(work_dir or os.path.join(data_bin, "work"), data_bin, force)
    tok, bpe = raw.relocated(ws.tok_dir), raw.relocated(ws.bpe_dir)
    tokenized = tokenize_stage(ws, raw, tok, kinds, lowercase, workers, skip_bad_lines)
    learn_bpe_stage(
        ws, {lang: tok.train_files(lang) for lang in langs}, backend, codes, alpha, sample_size, seed, workers
    )
    apply_bpe_stage(ws, tokenized, backend, workers)
    build_dict_stage(ws, bpe.all_train_files(), max_vocab, min_count)
    for folder in stale_shards(data_bin, shards if shards > 1 else 0):
        _say(f"note: {folder} is from an earlier run with more shards and is not one of these; remove it")
    if shards > 1:
        return binarize_shards_stage(ws, bpe, raw_dir, langs, kinds, lowercase, workers, shards)
    return binarize_stage(ws, bpe, raw_dir, langs, kinds, lowercase, workers)


def check_raw_corpus(raw_dir: str, langs: List[str], tokenizer: str):
    """The corpus of RAW_DIR and each language's tokeniser, or a PreprocessError before any work is done."""
    kinds = {lang: resolve_tokenizer(lang, tokenizer) for lang in langs}
    for lang, kind in kinds.items():
        require_tokenizer(lang, kind)
    raw = discover(raw_dir, langs, "RAW_DIR")
    if raw.ignored:
        _say(
            f"ignoring {len(raw.ignored)} file(s) in {raw_dir}: {', '.join(raw.ignored[:6])}"
            f"{' ...' if len(raw.ignored) > 6 else ''}"
        )
    check_not_empty(raw)
    check_pair_lengths(raw)
    for lang in langs:
        if not raw.train_files(lang):
            raise PreprocessError(
                f"no training text for '{lang}' in {raw_dir} "
                f"(expected train.{lang} or train.{lang}-xx.{lang}): BPE and dictionary need it"
            )
    for lang, kind in kinds.items():
        if kind == "moses" and not moses_has_rules(lang):
            _say(f"note: Moses has no rules for '{lang}'; using its generic (English) non-breaking prefixes")
    return raw, kinds


def tokenize_stage(
    ws: Workspace, raw, tok, kinds: Dict[str, str], lowercase: bool, workers: int, skip_bad_lines: bool
) -> List[str]:
    """1. Every raw file -> work/tok; returns the tokenised files."""
    jobs = []  # (raw path, tok path, lang, paths whose bad lines are dropped together)
    for lang, splits in sorted(raw.mono.items()):
        for split, path in sorted(splits.items()):
            jobs.append((path, tok.mono[lang][split], lang, [path]))
    for pair, splits in sorted(raw.pairs.items()):
        for split, sides in sorted(splits.items()):
            for lang in pair:
                jobs.append((sides[lang], tok.pairs[pair][split][lang], lang, [sides[a] for a in pair]))
    _say(f"[1/5] tokenize: {len(jobs)} file(s)" + (" (lowercase, accents removed)" if lowercase else ""))
    for src, dst, lang, group in jobs:
        params = {
            "lang": lang,
            "tokenizer": kinds[lang],
            "lowercase_strip_accents": lowercase,
            "skip_bad_lines": skip_bad_lines,
        }
        name = os.path.basename(dst)
        inputs = group if skip_bad_lines else [src]
        if ws.stamps.fresh(f"tok.{name}", params, inputs, [dst]):
            _say(f"  {name}: reused")
            continue
        start = time.time()
        drop = None
        if skip_bad_lines and len(group) > 1:  # drop a bad line from both sides, keeping the pair aligned
            drop = set().union(*(find_bad_lines(p) for p in group))
        stats = tokenize_file(src, dst, lang, lowercase, kinds[lang], workers, skip_bad_lines, drop_lines=drop)
        note = ""
        if stats.skipped:
            note = "; " + describe_skipped(src, stats.skipped)
        elif stats.dropped:
            note = f"; dropped {stats.dropped} line(s) that are not valid UTF-8 on one side of the pair"
        _say(f"  {name}: {stats.lines} lines ({time.time() - start:.1f} s){note}")
        ws.stamps.record(f"tok.{name}", params, inputs, [dst])
    return [dst for _, dst, _, _ in jobs]


def learn_bpe_stage(
    ws: Workspace,
    files: Dict[str, List[str]],
    backend: str,
    codes: int,
    alpha: float,
    sample_size,
    seed: int,
    workers: int,
) -> None:
    """2. One BPE learned on an alpha-sample of every language's tokenised train split -> work/codes."""
    params = {
        "backend": backend,
        "codes": codes,
        "alpha": alpha,
        "sample_size": sample_size,
        "seed": seed,
        "files": {lang: [os.path.basename(p) for p in paths] for lang, paths in files.items()},
    }
    inputs = [p for paths in files.values() for p in paths]
    outputs = [ws.codes, meta_path(ws.codes)]
    _say(f"[2/5] learn-bpe: {backend}, {codes} codes, alpha {alpha}, on train")
    if ws.stamps.fresh("learn-bpe", params, inputs, outputs):
        _say(f"  reused {ws.codes}")
    else:
        start = time.time()
        learn(files, ws.codes, codes, alpha, backend, sample_size, seed, workers, out=_Indented(sys.stdout))
        _say(f"  ({time.time() - start:.1f} s)")
        ws.stamps.record("learn-bpe", params, inputs, outputs)
    check_codes(ws.codes, backend)


def apply_bpe_stage(ws: Workspace, tokenized: List[str], backend: str, workers: int) -> None:
    """3. Every tokenised file -> work/bpe."""
    _say(f"[3/5] apply-bpe: {len(tokenized)} file(s)")
    for src in tokenized:
        dst = os.path.join(ws.bpe_dir, os.path.basename(src))
        name = os.path.basename(dst)
        if ws.stamps.fresh(f"bpe.{name}", {"backend": backend}, [src, ws.codes], [dst]):
            _say(f"  {name}: reused")
            continue
        start = time.time()
        stats = apply_file(src, dst, ws.codes, backend, workers)
        _say(f"  {name}: {stats.lines} lines ({time.time() - start:.1f} s)")
        ws.stamps.record(f"bpe.{name}", {"backend": backend}, [src, ws.codes], [dst])


def build_dict_stage(ws: Workspace, train: List[str], max_vocab, min_count: int) -> None:
    """4. The shared dictionary of the BPE'd train split -> work/dict.txt."""
    params = {"max_vocab": max_vocab, "min_count": min_count}
    _say(f"[4/5] build-dict: from {len(train)} train file(s)")
    if ws.stamps.fresh("build-dict", params, train, [ws.dictionary]):
        _say(f"  reused {ws.dictionary}")
        return
    summary = build_dictionary(train, ws.dictionary, max_vocab, min_count)
    _say(
        f"  {ws.dictionary}: {summary['size']} entries (14 fixed + {summary['words']} words, "
        f"{summary['types']} types seen)"
    )
    ws.stamps.record("build-dict", params, train, [ws.dictionary])


def binarize_stage(
    ws: Workspace, bpe, raw_dir: str, langs: List[str], kinds: Dict[str, str], lowercase: bool, workers: int
) -> dict:
    """5. fairseq-preprocess of every BPE'd file -> DATA_BIN, with dict.txt and manifest.json."""
    _say(f"[5/5] binarize: fairseq-preprocess -> {ws.data_bin}")
    extra = _manifest_extra(raw_dir, kinds, lowercase)
    manifest = _binarize(ws, bpe, ws.data_bin, "binarize", {"langs": langs, "extra": extra}, extra, workers)
    _say(f"done: {ws.data_bin} ({_describe(manifest)})")
    return manifest


def binarize_shards_stage(
    ws: Workspace,
    bpe,
    raw_dir: str,
    langs: List[str],
    kinds: Dict[str, str],
    lowercase: bool,
    workers: int,
    shards: int,
) -> dict:
    """5. Each train file cut into `shards` parts, each part binarised with the shared dict.txt ->
    DATA_BIN/shard{k}; valid and test in shard0 (shards.py). Returns shard0's manifest."""
    dirs = shard_dirs(ws.data_bin, shards)
    _say(f"[5/5] binarize: {shards} shards, fairseq-preprocess -> {dirs[0]} .. {dirs[-1]}")
    text = ShardText(bpe, shards)
    manifests = []
    for k, destdir in enumerate(dirs):
        _say(f"  shard {k}: {destdir}" + (" (with valid, test)" if k == 0 else ""))
        extra = dict(_manifest_extra(raw_dir, kinds, lowercase), shard={"index": k, "shards": shards})
        parts = os.path.join(ws.work, f".shard-text.tmp-{os.getpid()}")
        params = {"langs": langs, "extra": extra}
        try:
            manifests.append(
                _binarize(ws, text.corpus(k, parts), destdir, f"binarize.shard{k}", params, extra, workers, text, k)
            )
        finally:
            shutil.rmtree(parts, ignore_errors=True)
    _say(f"done: {shards} shards ({_describe(manifests[0])}); fairseq-train reads them as {data_argument(dirs)}")
    return manifests[0]


def _binarize(ws: Workspace, corpus, destdir: str, key: str, params: dict, extra: dict, workers, text=None, k=0):
    """fairseq-preprocess of `corpus` into `destdir` unless its stamp says it is done; its manifest. A shard's
    train text (`text`) is written only when the shard is redone, and its stamp follows the uncut files."""
    outputs = output_files(corpus, destdir)
    sources = text.corpus(k, text.bpe.folder) if text else corpus
    inputs = sources.files() + [ws.dictionary, meta_path(ws.codes)]
    if ws.stamps.fresh(key, params, inputs, outputs):
        _say("  reused")
        return read_json(os.path.join(destdir, "manifest.json"))
    if text:
        text.write(k, corpus.folder)
    meta = read_json(meta_path(ws.codes)) or {}
    bpe_meta = {name: meta.get(name) for name in ("backend", "codes", "learned", "alpha", "sample_size", "seed")}
    bpe_meta["codes_file"] = _codes_file(ws.codes, ws.data_bin, destdir)
    manifest = binarize_corpus(corpus, ws.dictionary, destdir, workers, bpe_meta, extra, out=sys.stdout)
    ws.stamps.record(key, params, inputs, outputs)
    return manifest


def _codes_file(codes: str, data_bin: str, destdir: str) -> str:
    """The codes as a manifest in `destdir` records them: relative when inside DATA_BIN (a shard's manifest
    says ../work/codes), so the whole folder can move; else absolute."""
    path = manifest_path(codes, data_bin)
    return os.path.relpath(os.path.join(data_bin, path), destdir) if not os.path.isabs(path) else path


def _manifest_extra(raw_dir: str, kinds: Dict[str, str], lowercase: bool) -> dict:
    return {
        "tokenize": {"lowercase_strip_accents": lowercase, "tokenizers": kinds},
        "raw_dir": os.path.abspath(raw_dir),
    }


def _describe(manifest: dict) -> str:
    return f"languages {','.join(manifest['languages'])}" + (
        f"; pairs {','.join(manifest['pairs'])}" if manifest["pairs"] else ""
    )


class _Indented:
    """A stdout wrapper that indents learn-bpe's table under the step heading."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        self.stream.write("".join(("  " + line if line.strip() else line) for line in text.splitlines(True)))

    def flush(self) -> None:
        self.stream.flush()


def add_arguments(parser):
    parser.add_argument("raw_dir", metavar="RAW_DIR", help="raw text: {split}.{lang} and {split}.{a}-{b}.{lang}")
    parser.add_argument("data_bin", metavar="DATA_BIN", help="data-bin folder to write")
    parser.add_argument("--langs", required=True, help="comma-separated languages, e.g. en,fr")
    parser.add_argument(
        "--codes",
        type=int,
        default=30000,
        help="subword-nmt: merge operations; sentencepiece: vocabulary size (default 30000)",
    )
    parser.add_argument("--backend", default="subword-nmt", choices=BACKENDS)
    parser.add_argument("--alpha", type=float, default=0.5, help="BPE sampling exponent (paper: 0.5)")
    parser.add_argument("--sample-size", type=int, default=None, help="sentences sampled for BPE learning")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-vocab", type=int, default=None, help="dictionary size including the 14 fixed symbols")
    parser.add_argument("--min-count", type=int, default=1)
    parser.add_argument("--lowercase-strip-accents", action="store_true")
    parser.add_argument("--tokenizer", default="auto", choices=TOKENIZER_CHOICES)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work-dir", help="folder for intermediate files (default: DATA_BIN/work)")
    parser.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="drop lines that are not valid UTF-8 (from both sides of a pair) instead of failing",
    )
    parser.add_argument("--force", action="store_true", help="redo every step")
    parser.add_argument(
        "--shards",
        type=int,
        default=1,
        metavar="N",
        help="write N data-bins DATA_BIN/shard0..shard{N-1} (each train file cut into N parts; one dict.txt, "
        "valid/test in shard0) that fairseq-train reads one per epoch as DATA_BIN/shard0:DATA_BIN/shard1:...",
    )


def main(args) -> None:
    langs = parse_langs(args.langs)
    prepare(
        args.raw_dir,
        args.data_bin,
        langs,
        args.codes,
        args.backend,
        args.alpha,
        args.sample_size,
        args.seed,
        args.max_vocab,
        args.min_count,
        args.lowercase_strip_accents,
        args.tokenizer,
        args.workers,
        args.work_dir,
        args.skip_bad_lines,
        args.force,
        args.shards,
    )
