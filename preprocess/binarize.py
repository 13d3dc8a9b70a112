"""`xlm-preprocess binarize`: BPE'd text -> fairseq data-bin, by running the real `fairseq-preprocess`.

One call per monolingual language (`--only-source`) and one per pair, all with `--srcdict` = the shared
dict.txt and `--dataset-impl mmap`. Each call writes into a private temporary folder; its files are then renamed
into the data-bin layout (docs/data.md):

    fairseq-preprocess writes           data-bin name
    train.en-None.en.bin/.idx     ->    train.en.bin/.idx
    train.en-fr.en.bin/.idx       ->    train.en-fr.en.bin/.idx   (pairs always a < b)

plus `dict.txt` and `manifest.json`: languages, pairs, per split the sentences and tokens (BPE units, without
the `</s>` fairseq appends) of each language and pair, and the BPE settings (backend, codes, alpha, and
`codes_file`: where the codes are, relative to the data-bin when inside it). The fairseq-preprocess output goes
to `preprocess.log` in the data-bin. What inference needs (codes, tokenisation) is copied from the manifest
beside every checkpoint trained on the data-bin (xlm_fairseq/inference_assets.py)."""

import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

from .common import (
    READ_BLOCK,
    PreprocessError,
    atomic_output,
    check_positive,
    count_lines,
    log,
    parse_langs,
    read_json,
    remove_stale_temps,
    write_json,
)
from .layout import SPLITS, Corpus, check_not_empty, check_pair_lengths, discover, mono_name, pair_file_name
from .progress import BAR_SECONDS, Progress
from .vocabulary import DictionaryError, read_symbols

MANIFEST = "manifest.json"
POLL_SECONDS = 1.0  # how often the size of fairseq-preprocess's output is looked at (no terminal)


def fairseq_preprocess_command() -> List[str]:
    """The `fairseq-preprocess` of this Python environment (its bin folder need not be on PATH)."""
    exe = os.path.join(os.path.dirname(sys.executable), "fairseq-preprocess")
    if os.path.isfile(exe) and os.access(exe, os.X_OK):
        return [exe]
    found = shutil.which("fairseq-preprocess")
    if found:
        return [found]
    return [sys.executable, "-m", "fairseq_cli.preprocess"]


def load_shared_dictionary(path: str) -> List[str]:
    """The symbols of dict.txt in id order, checked against the project's convention."""
    try:
        return read_symbols(path)
    except DictionaryError as e:
        raise PreprocessError(f"--dict: {e}") from None


def _run_fairseq(cmd: List[str], unit: str, log_path: str, watch: Optional["OutputWatch"] = None) -> None:
    with open(log_path, "a", encoding="utf-8") as logf:
        logf.write(f"$ {' '.join(cmd)}\n")
        logf.flush()
        start = logf.tell()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        try:
            if watch is None:
                proc.wait()
            else:
                with watch:
                    proc.wait()
        except BaseException:  # Ctrl-C: fairseq-preprocess got it too; do not leave it behind
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            f.seek(start)
            text = f.read()
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "no output")
        raise PreprocessError(
            f"fairseq-preprocess failed on {unit} (exit {proc.returncode}): {last.strip()} (full output in {log_path})"
        )


class OutputWatch:
    """Progress of a fairseq-preprocess run, seen from outside (fairseq itself is not changed): the bytes of the
    .bin files it is writing (workers' parts included) against what its inputs will give, one token id of
    `itemsize` bytes per BPE unit and one per line (the `</s>` it appends), units counted as spaces (BPE'd text
    is single-spaced). A thread polls the output folder while the caller waits for the process; counting the
    inputs happens in that thread too, while fairseq starts."""

    def __init__(self, what: str, inputs: List[str], folder: str, vocab_size: int):
        self.what, self.inputs, self.folder = what, inputs, folder
        # fairseq/data/indexed_dataset.py: best_fitting_int_dtype (uint16 below 65500 symbols, else int32)
        self.itemsize = 2 if vocab_size < 65500 else 4
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _count(self):
        """(lines, bytes fairseq will write), or None when the run ended first."""
        lines = units = 0
        for path in self.inputs:
            with open(path, "rb") as f:
                last = b"\n"
                for block in iter(lambda: f.read(READ_BLOCK), b""):
                    if self.stop.is_set():
                        return None
                    lines += block.count(b"\n")
                    units += block.count(b" ")
                    last = block[-1:]
                lines += last != b"\n"
        return lines, (units + 2 * lines) * self.itemsize

    def _written(self) -> int:
        try:
            return sum(e.stat().st_size for e in os.scandir(self.folder) if e.name.endswith(".bin"))
        except OSError:  # the folder does not exist yet
            return 0

    def _watch(self):
        counted = self._count()
        if counted is None:
            return
        lines, expected = counted
        interval = BAR_SECONDS if sys.stderr.isatty() else POLL_SECONDS
        with Progress(self.what, total=expected) as progress:
            while not self.stop.wait(interval):
                done = min(self._written(), expected)
                progress.update_to(int(lines * done / expected) if expected else 0, done)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def _move(src: str, dst: str) -> None:
    if not os.path.isfile(src):
        raise PreprocessError(f"fairseq-preprocess did not write {os.path.basename(src)}")
    os.replace(src, dst)


INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_HEADER = len(INDEX_MAGIC) + 8 + 1 + 8  # magic, version, dtype code, sentence count
INDEX_CHUNK = 1 << 20  # sentences read at a time
PART_LINES = 1_000_000  # fairseq-preprocess runs on at most this many lines (FairseqPreprocess)


def _stats(prefix: str) -> Dict[str, int]:
    """Sentences and tokens of a binarised file, from its index (fairseq/data/indexed_dataset.py:
    MMapIndexedDataset.Index: magic, version, dtype code, count, then the int32 sizes), read in chunks without
    importing fairseq, whose import alone holds ~300 MB beside the fairseq-preprocess processes."""
    import numpy as np

    _, count = _index_header(prefix + ".idx")
    with open(prefix + ".idx", "rb") as f:
        f.seek(INDEX_HEADER)
        tokens, left = 0, count
        while left:
            sizes = np.fromfile(f, dtype="<i4", count=min(left, INDEX_CHUNK))
            if not len(sizes):
                raise PreprocessError(f"{prefix}.idx is truncated: {left} of its {count} sentence sizes are missing")
            tokens += int(sizes.sum(dtype=np.int64))
            left -= len(sizes)
    return {"sentences": count, "tokens": tokens - count}


def binarize_corpus(
    corpus: Corpus,
    dict_path: str,
    destdir: str,
    workers: int = 1,
    bpe: Optional[dict] = None,
    extra: Optional[dict] = None,
    out=None,
    part_lines: int = PART_LINES,
) -> dict:
    """Binarize every language and pair of `corpus` into `destdir`; write dict.txt and manifest.json there.
    fairseq-preprocess runs on at most `part_lines` lines at a time (FairseqPreprocess)."""
    out = out or sys.stdout
    check_positive(workers, "--workers")
    check_not_empty(corpus)
    check_pair_lengths(corpus)
    dictionary = load_shared_dictionary(dict_path)
    os.makedirs(destdir, exist_ok=True)
    remove_stale_temps(destdir)
    if os.path.exists(os.path.join(destdir, MANIFEST)):  # it would describe files this run is replacing
        os.remove(os.path.join(destdir, MANIFEST))
    manifest = {
        "format": "xlm_fairseq data-bin",
        "version": 1,
        "languages": corpus.languages,
        "pairs": [f"{a}-{b}" for a, b in sorted(corpus.pairs)],
        "splits": sorted({s for d in corpus.mono.values() for s in d} | {s for d in corpus.pairs.values() for s in d}),
        "dataset_impl": "mmap",
        "dictionary": {"file": "dict.txt", "size": len(dictionary)},
        "bpe": bpe,
        "mono": {},
        "para": {},
        **(extra or {}),
    }
    run = FairseqPreprocess(dict_path, destdir, workers, len(dictionary), part_lines)
    try:
        for lang, splits in sorted(corpus.mono.items()):
            start = time.time()
            manifest["mono"][lang] = run.mono(lang, splits)
            desc = ", ".join(f"{s} {manifest['mono'][lang][s]['sentences']}" for s in sorted(splits))
            print(f"  {lang}: {desc} sentences ({time.time() - start:.1f} s)", file=out, flush=True)
        for (a, b), splits in sorted(corpus.pairs.items()):
            start = time.time()
            pair = f"{a}-{b}"
            manifest["para"][pair] = run.pair(a, b, splits)
            desc = ", ".join(f"{s} {manifest['para'][pair][s]['sentences']}" for s in sorted(splits))
            print(f"  {pair}: {desc} sentence pairs ({time.time() - start:.1f} s)", file=out, flush=True)
    finally:
        shutil.rmtree(run.tmp_root, ignore_errors=True)
    copy_dictionary(dict_path, destdir)
    write_json(os.path.join(destdir, MANIFEST), manifest)
    return manifest


class FairseqPreprocess:
    """fairseq-preprocess runs into a private temporary folder, their files renamed into the data-bin layout;
    each returns the manifest entries of what it wrote. Their output goes to DESTDIR/preprocess.log.

    fairseq-preprocess keeps about 60 bytes per line until it writes the index (fairseq/data/indexed_dataset.py:
    MMapIndexedDatasetBuilder keeps every sentence's size, Index.writer every pointer, as Python lists): 6 GB for
    100M lines. A split of more than `part_lines` lines is therefore binarised in parts of that many lines, one
    run each, joined into the file one run would have written (join_indexes)."""

    def __init__(self, dict_path: str, destdir: str, workers: int, vocab_size: int = 0, part_lines: int = PART_LINES):
        self.destdir = destdir
        self.vocab_size = vocab_size
        self.part_lines = check_positive(part_lines, "--part-lines")
        self.log_path = os.path.join(destdir, "preprocess.log")
        self.tmp_root = os.path.join(destdir, f".binarize.tmp-{os.getpid()}")
        self.base = fairseq_preprocess_command() + [
            "--srcdict",
            dict_path,
            "--dataset-impl",
            "mmap",
            "--workers",
            str(workers),
        ]

    def mono(self, lang: str, splits: Dict[str, str]) -> dict:
        tmp = os.path.join(self.tmp_root, lang)
        self._binarize(
            ["--only-source", "--source-lang", lang],
            {split: {lang: path} for split, path in splits.items()},
            lambda split: [f"{split}.{lang}-None.{lang}"],
            tmp,
            lang,
        )
        entries = {}
        for split in sorted(splits):
            for ext in ("bin", "idx"):
                _move(
                    os.path.join(tmp, f"{split}.{lang}-None.{lang}.{ext}"),
                    os.path.join(self.destdir, f"{mono_name(split, lang)}.{ext}"),
                )
            entries[split] = _stats(os.path.join(self.destdir, mono_name(split, lang)))
        shutil.rmtree(tmp, ignore_errors=True)
        return entries

    def pair(self, a: str, b: str, splits) -> dict:
        tmp = os.path.join(self.tmp_root, f"{a}-{b}")
        # the prefix keeps the files' orientation (e.g. train.fr-en); --source-lang a makes the output a-b
        self._binarize(
            ["--joined-dictionary", "--source-lang", a, "--target-lang", b],
            {split: {x: sides[x] for x in (a, b)} for split, sides in splits.items()},
            lambda split: [pair_file_name(split, a, b, x) for x in (a, b)],
            tmp,
            f"{a}-{b}",
        )
        entries = {}
        for split in sorted(splits):
            entry = {"sentences": None, "tokens": {}}
            for lang in (a, b):
                name = pair_file_name(split, a, b, lang)
                for ext in ("bin", "idx"):
                    _move(os.path.join(tmp, f"{name}.{ext}"), os.path.join(self.destdir, f"{name}.{ext}"))
                st = _stats(os.path.join(self.destdir, name))
                entry["sentences"] = st["sentences"]
                entry["tokens"][lang] = st["tokens"]
            entries[split] = entry
        shutil.rmtree(tmp, ignore_errors=True)
        return entries

    def _binarize(self, flags: List[str], inputs: Dict[str, Dict[str, str]], outputs, tmp: str, label: str) -> None:
        """fairseq-preprocess with `flags` on {split: {side: path `PREFIX.side`}} into `tmp`, where it writes the
        files outputs(split) names: the splits of at most part_lines lines in one run, each longer one in parts.
        `label`: the language or pair, for messages."""
        lines = {split: count_lines(next(iter(files.values()))) for split, files in inputs.items()}
        whole = {split: files for split, files in inputs.items() if lines[split] <= self.part_lines}
        if whole:
            self._run(flags, whole, tmp, f"'{label}'", f"binarize {label}")
        for split in sorted(set(inputs) - set(whole)):
            self._binarize_in_parts(flags, split, inputs[split], lines[split], outputs(split), tmp, label)

    def _run(self, flags: List[str], inputs: Dict[str, Dict[str, str]], destdir: str, unit: str, what: str) -> None:
        prefixes = []
        for split in SPLITS:
            if split in inputs:
                side, path = next(iter(inputs[split].items()))
                prefixes += [f"--{split}pref", path[: -(len(side) + 1)]]
        paths = [p for split in sorted(inputs) for p in inputs[split].values()]
        watch = OutputWatch(what, paths, destdir, self.vocab_size)
        _run_fairseq(self.base + flags + ["--destdir", destdir] + prefixes, unit, self.log_path, watch)

    def _binarize_in_parts(self, flags, split: str, files: Dict[str, str], lines: int, names, tmp: str, label: str):
        """`split` part by part: part k's lines into tmp/part/, binarised into tmp/part-out/, its .bin appended to
        tmp/NAME.bin at once (the text and .bin of one part on disk at a time), the indexes joined at the end."""
        parts = -(-lines // self.part_lines)
        part_dir, part_out = os.path.join(tmp, "part"), os.path.join(tmp, "part-out")
        indexes: Dict[str, List[Tuple[str, int]]] = {name: [] for name in names}
        readers = {side: open(path, "rb") for side, path in files.items()}
        try:
            for k in range(parts):
                prefix = os.path.join(part_dir, f"{split}{k}")
                if not _copy_lines(readers, prefix, self.part_lines):
                    break
                shutil.rmtree(part_out, ignore_errors=True)
                self._run(
                    flags,
                    {split: {side: f"{prefix}.{side}" for side in files}},
                    part_out,
                    f"'{label}' ({split}, part {k + 1} of {parts})",
                    f"binarize {label} {split} {k + 1}/{parts}",
                )
                for name in names:
                    part_bin = os.path.join(part_out, f"{name}.bin")
                    with open(part_bin, "rb") as src, open(os.path.join(tmp, f"{name}.bin"), "ab") as dst:
                        shutil.copyfileobj(src, dst)
                    index = os.path.join(tmp, f"{name}.idx.{k}")
                    os.replace(os.path.join(part_out, f"{name}.idx"), index)
                    indexes[name].append((index, os.path.getsize(part_bin)))
                for side in files:
                    os.remove(f"{prefix}.{side}")
        finally:
            for f in readers.values():
                f.close()
        for name in names:
            join_indexes(indexes[name], os.path.join(tmp, f"{name}.idx"))
            for path, _ in indexes[name]:
                os.remove(path)


def _copy_lines(readers: Dict[str, object], prefix: str, n: int) -> int:
    """The next n lines of every side's open file into PREFIX.side; how many lines were copied."""
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    copied = 0
    for side, reader in readers.items():
        copied = 0
        with open(f"{prefix}.{side}", "wb") as out:
            for line in reader:
                out.write(line)
                copied += 1
                if copied == n:
                    break
    return copied


def _index_header(path: str):
    """(header bytes without the count, sentence count) of a fairseq mmap index."""
    with open(path, "rb") as f:
        header = f.read(INDEX_HEADER)
    if len(header) < INDEX_HEADER or not header.startswith(INDEX_MAGIC):
        raise PreprocessError(f"{path} is not an mmap index (fairseq-preprocess --dataset-impl mmap)")
    return header[:-8], struct.unpack("<Q", header[-8:])[0]


def join_indexes(parts: List[Tuple[str, int]], out_path: str) -> None:
    """The index of the .bin files of `parts` ((index path, bytes of its .bin)) written one after the other:
    byte for byte the one fairseq writes for the whole (fairseq/data/indexed_dataset.py:
    MMapIndexedDataset.Index.writer: the header, the count, the int32 sizes, then the int64 byte offsets of the
    sentences), read and written in chunks of INDEX_CHUNK sentences."""
    import numpy as np

    headers = [_index_header(path) for path, _ in parts]
    if len({h for h, _ in headers}) != 1:
        raise PreprocessError(f"{parts[0][0]}...: the parts were binarised with different token types")

    def chunks(path: str, n: int, dtype, skip: int):
        with open(path, "rb") as f:
            f.seek(INDEX_HEADER + skip)
            for start in range(0, n, INDEX_CHUNK):
                yield np.fromfile(f, dtype=dtype, count=min(INDEX_CHUNK, n - start))

    with atomic_output(out_path, binary=True) as out:
        out.write(headers[0][0] + struct.pack("<Q", sum(n for _, n in headers)))
        for (path, _), (_, n) in zip(parts, headers):
            for sizes in chunks(path, n, np.int32, 0):
                out.write(sizes.tobytes())
        offset = 0
        for (path, bin_bytes), (_, n) in zip(parts, headers):
            for pointers in chunks(path, n, np.int64, 4 * n):
                out.write((pointers + offset).tobytes())
            offset += bin_bytes


def copy_dictionary(dict_path: str, destdir: str) -> None:
    """DESTDIR/dict.txt: a copy of dict_path (unless it is that file)."""
    dict_dst = os.path.join(destdir, "dict.txt")
    if not (os.path.exists(dict_dst) and os.path.samefile(dict_path, dict_dst)):
        with open(dict_path, "rb") as src, atomic_output(dict_dst, binary=True) as dst:
            shutil.copyfileobj(src, dst)


def output_files(corpus: Corpus, destdir: str) -> List[str]:
    """Every file `binarize_corpus` writes for `corpus`."""
    paths = [os.path.join(destdir, "dict.txt"), os.path.join(destdir, MANIFEST)]
    for lang, splits in sorted(corpus.mono.items()):
        paths += [
            os.path.join(destdir, f"{mono_name(s, lang)}.{ext}") for s in sorted(splits) for ext in ("bin", "idx")
        ]
    for (a, b), splits in sorted(corpus.pairs.items()):
        paths += [
            os.path.join(destdir, f"{pair_file_name(s, a, b, lang)}.{ext}")
            for s in sorted(splits)
            for lang in (a, b)
            for ext in ("bin", "idx")
        ]
    return paths


def manifest_path(path: str, data_bin: str) -> str:
    """A file recorded in a manifest: relative to the data-bin when inside it (so the folder can move), else
    absolute."""
    path, data_bin = os.path.abspath(path), os.path.abspath(data_bin)
    inside = os.path.commonpath([path, data_bin]) == data_bin
    return os.path.relpath(path, data_bin) if inside else path


def bpe_settings(
    codes_file: Optional[str], backend: Optional[str], codes: Optional[int], alpha: Optional[float], data_bin: str = "."
) -> Optional[dict]:
    """BPE settings for the manifest: from learn-bpe's CODES.meta.json, overridden by explicit flags."""
    settings = {}
    if codes_file:
        meta = read_json(codes_file + ".meta.json")
        if meta is None:
            raise PreprocessError(
                f"--codes-file: {codes_file}.meta.json (written by learn-bpe) is missing or "
                f"unreadable; give --bpe-backend/--bpe-codes/--bpe-alpha instead"
            )
        settings = {k: meta.get(k) for k in ("backend", "codes", "learned", "alpha", "sample_size", "seed")}
        settings["codes_file"] = manifest_path(codes_file, data_bin)
    for key, value in (("backend", backend), ("codes", codes), ("alpha", alpha)):
        if value is not None:
            settings[key] = value
    return settings or None


def add_arguments(parser):
    parser.add_argument("--input-dir", required=True, help="BPE'd text: {split}.{lang} and {split}.{a}-{b}.{lang}")
    parser.add_argument("--dict", required=True, help="the shared dict.txt (from build-dict)")
    parser.add_argument("--destdir", required=True, help="data-bin folder to write")
    parser.add_argument("--langs", help="only these languages (default: all found)")
    parser.add_argument("--workers", type=int, default=1, help="fairseq-preprocess --workers")
    parser.add_argument(
        "--part-lines",
        type=int,
        default=PART_LINES,
        help=f"binarise longer files in parts of this many lines, one fairseq-preprocess run each, joined into the "
        f"same files (its memory grows by ~60 bytes per line of a run; default {PART_LINES})",
    )
    parser.add_argument("--codes-file", help="codes from learn-bpe: its .meta.json goes into manifest.json")
    parser.add_argument("--bpe-backend", help="BPE backend recorded in manifest.json")
    parser.add_argument("--bpe-codes", type=int, help="number of codes recorded in manifest.json")
    parser.add_argument("--bpe-alpha", type=float, help="sampling alpha recorded in manifest.json")


def main(args) -> None:
    check_positive(args.part_lines, "--part-lines")
    langs = parse_langs(args.langs) if args.langs else None
    corpus = discover(args.input_dir, langs, "--input-dir")
    if corpus.ignored:
        log(
            f"binarize: ignoring {len(corpus.ignored)} file(s) in {args.input_dir}: "
            f"{', '.join(corpus.ignored[:5])}{' ...' if len(corpus.ignored) > 5 else ''}"
        )
    bpe = bpe_settings(args.codes_file, args.bpe_backend, args.bpe_codes, args.bpe_alpha, args.destdir)
    print(f"binarize: {args.input_dir} -> {args.destdir}")
    manifest = binarize_corpus(corpus, args.dict, args.destdir, args.workers, bpe, part_lines=args.part_lines)
    print(
        f"wrote {os.path.join(args.destdir, MANIFEST)}: languages {','.join(manifest['languages'])}"
        + (f", pairs {','.join(manifest['pairs'])}" if manifest["pairs"] else "")
    )
