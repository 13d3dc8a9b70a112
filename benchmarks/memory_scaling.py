"""Peak memory against corpus size and --max-tokens (design.md §11: memory follows the batch, never the corpus).

    python benchmarks/memory_scaling.py [--quick] [--out DIR] [--lines N] [--factor 10]
                                        [--max-tokens 500,1000,2000,4000] [--arch xlm_small] [--updates 12]

1. `xlm-preprocess prepare` (tokenize, learn-bpe, apply-bpe, build-dict, binarize) on a corpus of N lines per
   language (en, fr) and on the same corpus ×F: each stage's peak; then `xlm-preprocess binarize --part-lines`
   on the large corpus's BPE'd text in ten parts (fairseq-preprocess's own memory grows with the lines of a run).
2. `fairseq-train` UNMT (--ae-steps en,fr --bt-steps en-fr-en,fr-en-fr, --max-len 100) at each --max-tokens, on
   the data-bins of both corpora, on the large one's binarised files repeated F times (F² N sentences, no
   preprocessing), and on three data-bins cut from the small one's BPE tokens: every sentence at --max-len (the
   longest a batch can hold), every sentence one token long (back-translation's `int(1.3·L + 5)` is then 3× the
   source), and one-token sentences followed by a --max-len one (a batch cut where the lengths jump).
   Beside each run, the largest batch the back-translation steps can draw (xlm_fairseq/data/multi_step_dataset.py:
   sentence_batches on the data-bin's lengths): its sentences, its tokens (sum and padded) and what generation
   makes of it (rows × `int(1.3·L + 5)`).

The corpus is the DDTP fixture's real Debian descriptions (tests/fixtures/ddtp, or --raw DIR with train.en and
train.fr, e.g. the demo's raw folder), repeated with variation (a word dropped, two neighbours swapped, a word
of another sentence inserted: the same vocabulary, different lines), so the ×F corpus is the small one's lines
followed by (F-1)·N more.

How memory is measured (Linux /proc): every command runs as a child of this process. A thread reads /proc every
10 ms: the peak resident set of each process of the tree (VmHWM, kept by the kernel; prepare's is reset at each
stage heading it prints, through /proc/PID/clear_refs, so each stage has its own), and the sum of the resident
sets of the tree (prepare waits while fairseq-preprocess binarises: both are held at once; a sum is polled, so a
peak shorter than 10 ms can be missed). A single process's peak (fairseq-train) is the kernel's ru_maxrss of the
child (os.wait4). Resident includes the pages of memory-mapped files that were read (the data-bin).

Last lines: the fit peak = a + b·max_tokens per corpus, then each ratio: large corpus over small per stage and per
--max-tokens (with the bytes per added sentence), largest --max-tokens over smallest per corpus. --quick: N = 2,000,
xlm_tiny, 4 updates (a few minutes on 2 cores); the defaults (N = 5,000, xlm_small, 12 updates) take about an hour."""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples"))
import recipes  # noqa: E402  (the command lines of our runs)

BIN = os.path.dirname(sys.executable)
DDTP_FIXTURE = os.path.join(ROOT, "tests", "fixtures", "ddtp")
MB = 2**20
POLL_SECONDS = 0.01
STAGE_RE = re.compile(r"^\[(\d)/5\] ([a-z-]+)")
BT_STEPS = ("en-fr-en", "fr-en-fr")
UNMT_STEPS = dict(ae="en,fr", bt=",".join(BT_STEPS))


# ---------------------------------------------------------------------------------------------- measuring
def _proc_status(pid: int) -> Dict[str, int]:
    """VmRSS and VmHWM of a process in bytes ({} once it has exited)."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return found


def _children(pid: int) -> List[int]:
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return found


def _tree(pid: int) -> List[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def reset_peak(pid: int) -> bool:
    """Reset a process's peak resident set to its current one (Linux ≥ 4.0); False where not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


@dataclass
class Peak:
    """What one command held. `stages`: per stage heading, the main process's peak, the largest peak of its
    children and the largest polled sum of the tree (bytes)."""

    main: int = 0  # the command's own process (prepare; fairseq-train)
    largest: int = 0  # the largest single process of the tree: the kernel's ru_maxrss through wait4
    tree_sum: int = 0  # the largest polled sum over the tree
    seconds: float = 0.0
    stages: Dict[str, Dict[str, int]] = field(default_factory=dict)
    output: str = ""


class Watch:
    """Run `cmd`, poll its process tree, split its peaks by the stage headings it prints (`[k/5] name`)."""

    def __init__(self, cmd: List[str], env: Optional[dict] = None, cwd: Optional[str] = None):
        self.cmd, self.env, self.cwd = [str(c) for c in cmd], env, cwd
        self.stage = "start"
        self.peak = Peak()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.child_hwm: Dict[int, int] = {}
        self.resets = True

    def _stage_entry(self) -> Dict[str, int]:
        return self.peak.stages.setdefault(self.stage, {"main": 0, "children": 0, "sum": 0})

    def _poll(self, pid: int) -> None:
        while not self.done.is_set():
            total = 0
            with self.lock:
                entry = self._stage_entry()
                for p in _tree(pid):
                    st = _proc_status(p)
                    if not st:
                        continue
                    total += st["VmRSS"]
                    if p == pid:
                        entry["main"] = max(entry["main"], st["VmHWM"] if self.resets else st["VmRSS"])
                    else:
                        entry["children"] = max(entry["children"], st["VmHWM"])
                entry["sum"] = max(entry["sum"], total)
                self.peak.tree_sum = max(self.peak.tree_sum, total)
            time.sleep(POLL_SECONDS)

    def _new_stage(self, pid: int, name: str) -> None:
        with self.lock:
            st = _proc_status(pid)
            if st:  # the finished stage's peak, read before the reset
                entry = self._stage_entry()
                entry["main"] = max(entry["main"], st["VmHWM"] if self.resets else 0)
            self.stage = name
            self.resets = self.resets and reset_peak(pid)
            self._stage_entry()

    def run(self, timeout: float = 3600) -> Peak:
        start = time.monotonic()
        proc = subprocess.Popen(
            self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=self.cwd
        )
        poller = threading.Thread(target=self._poll, args=(proc.pid,), daemon=True)
        poller.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        lines = []
        for line in proc.stdout:
            lines.append(line)
            m = STAGE_RE.match(line)
            if m:
                self._new_stage(proc.pid, m.group(2))
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        self.done.set()
        poller.join()
        self.peak.seconds = time.monotonic() - start
        self.peak.output = "".join(lines)
        self.peak.largest = usage.ru_maxrss * 1024
        self.peak.main = max(e["main"] for e in self.peak.stages.values())
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(self.cmd[:3])} ... failed ({proc.returncode}):\n{self.peak.output[-3000:]}")
        return self.peak


def measure(cmd: List[str], **kw) -> Peak:
    return Watch(cmd, **kw).run()


# ---------------------------------------------------------------------------------------------- corpora
def fixture_sentences(work: str) -> Dict[str, List[str]]:
    """The DDTP fixture's English and French sentences (monolingual and both sides of the pairs), through the
    project's own `xlm-preprocess ddtp`."""
    out = os.path.join(work, "ddtp")
    if not os.path.isdir(out):
        run_quiet(
            [
                os.path.join(BIN, "xlm-preprocess"),
                "ddtp",
                "--langs",
                "en,fr",
                "--from-lists",
                DDTP_FIXTURE,
                "--out",
                out,
            ]
        )
    sentences = {}
    for lang in ("en", "fr"):
        seen = []
        for name in (f"train.{lang}", f"train.en-fr.{lang}"):
            with open(os.path.join(out, name), encoding="utf-8") as f:
                seen += [line.strip() for line in f if line.strip()]
        sentences[lang] = list(dict.fromkeys(seen))
    return sentences


def vary(sentence: str, other: str, rng: random.Random) -> str:
    """The sentence with one change: a word dropped, two neighbours swapped or a word of `other` inserted."""
    words = sentence.split()
    pick = rng.randrange(3)
    if pick == 0 and len(words) > 2:
        del words[rng.randrange(len(words))]
    elif pick == 1 and len(words) > 1:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    else:
        words.insert(rng.randrange(len(words) + 1), rng.choice(other.split() or ["."]))
    return " ".join(words)


def corpus_lines(sentences: List[str], n: int, seed: int = 0):
    """n lines: the sentences once as they are, then varied copies (line i's change drawn from (seed, i), so a
    corpus of 10·n lines begins with the corpus of n)."""
    for i in range(n):
        base = sentences[i % len(sentences)]
        if i < len(sentences):
            yield base
            continue
        rng = random.Random(f"{seed}:{i}")
        yield vary(base, sentences[rng.randrange(len(sentences))], rng)


def write_raw(folder: str, sentences: Dict[str, List[str]], n: int) -> str:
    """A raw folder for prepare: train.en and train.fr of n lines each (monolingual, what unsupervised MT
    trains on; the training runs below do not validate)."""
    os.makedirs(folder, exist_ok=True)
    for lang, sents in sentences.items():
        with open(os.path.join(folder, f"train.{lang}"), "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in corpus_lines(sents, n))
    return folder


def run_quiet(cmd, cwd=None):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} ... failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


# ---------------------------------------------------------------------------------------------- preprocessing
PREPARE_STAGES = ("tokenize", "learn-bpe", "apply-bpe", "build-dict", "binarize")


def prepare_command(raw: str, data_bin: str, codes: int, langs: str = "en,fr") -> List[str]:
    return [os.path.join(BIN, "xlm-preprocess"), "prepare", raw, data_bin, "--langs", langs, "--codes", codes]


def measure_prepare(raw: str, data_bin: str, codes: int, langs: str = "en,fr", env=None) -> Peak:
    if os.path.isdir(data_bin):
        shutil.rmtree(data_bin)
    return measure(prepare_command(raw, data_bin, codes, langs), env=env)


def dictionary_size(data_bin: str) -> int:
    with open(os.path.join(data_bin, "dict.txt"), encoding="utf-8") as f:
        return 4 + sum(1 for _ in f)


# ---------------------------------------------------------------------------------------------- training
MAX_LEN = 100  # --max-len (the task's default and the original's): the longest sentence a batch can hold


def unmt_command(
    data_bin: str, save: str, max_tokens: int, arch: str, updates: int, ae=UNMT_STEPS["ae"], bt=UNMT_STEPS["bt"]
) -> List[str]:
    """UNMT with denoising and online back-translation (examples/recipes.py: mt_train), no validation, nothing
    saved, on the CPU in the main process."""
    cmd = recipes.mt_train(
        data_bin,
        "en,fr",
        ae=ae,
        bt=bt,
        flags=["--arch", arch],
        max_tokens=max_tokens,
        max_len=MAX_LEN,
        lr="1e-4",
        max_update=updates,
        validate=False,
        run=["--user-dir", recipes.USER_DIR, "--save-dir", save, "--cpu", "--num-workers", 0, "--seed", 1],
        extra=["--no-save", "--log-format", "simple", "--log-interval", 1],
    )
    return [os.path.join(BIN, cmd[0])] + cmd[1:]


def measure_training(data_bin: str, max_tokens: int, arch: str, updates: int, env=None, **steps) -> Peak:
    with tempfile.TemporaryDirectory() as save:
        return measure(unmt_command(data_bin, save, max_tokens, arch, updates, **steps), env=env)


def replicate_data_bin(src_bin: str, dest_bin: str, times: int, langs=("en", "fr")) -> str:
    """A data-bin whose training files are src_bin's `times` times over (the .bin files one after the other, the
    index written for them: sizes repeated, pointers moved), for corpora too large to preprocess in a test."""
    import struct

    import numpy as np

    os.makedirs(dest_bin, exist_ok=True)
    shutil.copy(os.path.join(src_bin, "dict.txt"), os.path.join(dest_bin, "dict.txt"))
    for lang in langs:
        src, dest = os.path.join(src_bin, f"train.{lang}"), os.path.join(dest_bin, f"train.{lang}")
        with open(src + ".idx", "rb") as f:
            header = f.read(26)  # magic (9), version (8), dtype code (1), count (8)
            (count,) = struct.unpack("<Q", header[-8:])
            sizes = np.fromfile(f, dtype=np.int32, count=count)
            pointers = np.fromfile(f, dtype=np.int64, count=count)
        bin_bytes = os.path.getsize(src + ".bin")
        with open(src + ".bin", "rb") as f:
            data = f.read()
        with open(dest + ".bin", "wb") as f:
            for _ in range(times):
                f.write(data)
        with open(dest + ".idx", "wb") as f:
            f.write(header[:-8] + struct.pack("<Q", count * times))
            f.write(np.tile(sizes, times).tobytes())
            f.write(
                (np.tile(pointers, times) + np.repeat(np.arange(times, dtype=np.int64) * bin_bytes, count)).tobytes()
            )
    return dest_bin


def _train_sizes(data_bin: str, lang: str):
    """The lengths the task batches a back-translation step's sentences by (`</s> w1..wn </s>`) and the
    sentences --max-len keeps (xlm_fairseq/data/translation_step_dataset.py: src_sizes, filter_lengths)."""
    import numpy as np
    from fairseq.data.indexed_dataset import MMapIndexedDataset

    ds = MMapIndexedDataset(os.path.join(data_bin, f"train.{lang}"))
    sizes = np.asarray(ds.sizes, dtype=np.int64) + 1
    keep = np.nonzero((sizes - 2 > 0) & (sizes - 2 <= MAX_LEN))[0]
    return sizes, keep


def largest_bt_batch(data_bin: str, max_tokens: int) -> Dict[str, int]:
    """Over a whole pass of every back-translation step (sentence_batches, as the task cuts them): the batch
    with the most padded source tokens, and the largest back-translated batch (rows × int(1.3·L + 5), L its
    longest source, as xlm_fairseq/generation.py: bt_max_len)."""
    import numpy as np

    from xlm_fairseq.data.multi_step_dataset import sentence_batches

    worst = {"sentences": 0, "tokens": 0, "padded": 0, "generated": 0}
    for step in BT_STEPS:
        sizes, keep = _train_sizes(data_bin, step.split("-")[0])
        for batch in sentence_batches(sizes, keep, np.random.RandomState(0), True, max_tokens):
            longest = int(sizes[batch].max())
            padded = len(batch) * longest
            if padded > worst["padded"]:
                worst.update(sentences=len(batch), tokens=int(sizes[batch].sum()), padded=padded)
            worst["generated"] = max(worst["generated"], len(batch) * int(1.3 * longest + 5))
    return worst


def write_token_corpus(src_bin: str, dest_bin: str, lengths: List[int]) -> str:
    """A data-bin whose en and fr training sentences have the given lengths (BPE tokens, without `</s>`),
    cut from the running text of src_bin's training tokens (repeated as needed); the same dict.txt."""
    import numpy as np
    import torch
    from fairseq.data import indexed_dataset

    from xlm_fairseq.data.stream_dataset import flat_tokens

    os.makedirs(dest_bin, exist_ok=True)
    shutil.copy(os.path.join(src_bin, "dict.txt"), os.path.join(dest_bin, "dict.txt"))
    vocab = dictionary_size(src_bin)
    for lang in ("en", "fr"):
        src = indexed_dataset.MMapIndexedDataset(os.path.join(src_bin, f"train.{lang}"))
        flat = flat_tokens(src)
        text = flat[flat != 2].astype(np.int64)  # the running text without the sentence ends (</s> = 2)
        need = int(sum(lengths))
        text = np.tile(text, need // len(text) + 1)[:need]
        prefix = os.path.join(dest_bin, f"train.{lang}")
        builder = indexed_dataset.make_builder(prefix + ".bin", impl="mmap", vocab_size=vocab)
        start = 0
        for n in lengths:
            builder.add_item(torch.from_numpy(np.append(text[start : start + n], 2)))
            start += n
        builder.finalize(prefix + ".idx")
        del src
    return dest_bin


def gap_lengths(max_tokens: int) -> List[int]:
    """One-token sentences then one --max-len sentence, as many of the short ones as fit with the long one in a
    --max-tokens batch cut by cumulated length: (M - L - 3) // 3 of size 3 (`</s> w </s>`) and one of L + 2, a
    single batch per pass, padded to about M·(L + 2)/3 tokens."""
    return [1] * ((max_tokens - (MAX_LEN + 2) - 1) // 3) + [MAX_LEN]


# ---------------------------------------------------------------------------------------------- the report
def fit_line(xs: List[float], ys: List[float]):
    """Least squares y = a + b·x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def mb(n: float) -> str:
    return f"{n / MB:9.1f}"


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}"


def preprocessing_section(work: str, sentences, sizes: List[int], codes: int) -> Dict[int, dict]:
    print(f"\n# 1. xlm-preprocess prepare --langs en,fr --codes {codes}: peak MB of prepare itself in each stage, of")
    print("#    its largest child (fairseq-preprocess) and of the two together; the dictionary's entries")
    print(f"{'stage':<12}{'lines/lang':>11}{'prepare':>9}{'child':>9}{'sum':>9}{'dict':>7}")
    results = {}
    for n in sizes:
        raw = write_raw(os.path.join(work, f"raw-{n}"), sentences, n)
        data_bin = os.path.join(work, f"bin-{n}")
        peak = measure_prepare(raw, data_bin, codes)
        vocab = dictionary_size(data_bin)
        for stage in PREPARE_STAGES:
            e = peak.stages[stage]
            print(f"{stage:<12}{n:>11}{mb(e['main'])}{mb(e['children'])}{mb(e['sum'])}{vocab:>7}", flush=True)
        results[n] = {"peak": peak, "bin": data_bin}
    large = max(sizes)
    part = max(1, large // 10)
    destdir = os.path.join(work, "bin-parts")
    cmd = [
        os.path.join(BIN, "xlm-preprocess"),
        "binarize",
        "--input-dir",
        os.path.join(results[large]["bin"], "work", "bpe"),
    ]
    peak = measure(
        cmd + ["--dict", os.path.join(results[large]["bin"], "dict.txt"), "--destdir", destdir, "--part-lines", part]
    )
    print(
        f"{'binarize':<12}{large:>11}{mb(peak.main)}{mb(peak.stages['start']['children'])}{mb(peak.tree_sum)}"
        f"{'':>7}  (xlm-preprocess binarize --part-lines {part}: 10 fairseq-preprocess runs)"
    )
    results["parts"] = peak
    return results


def training_section(corpora: Dict[str, str], max_tokens: List[int], arch: str, updates: int) -> Dict[str, dict]:
    print(
        f"\n# 2. fairseq-train UNMT (AE en,fr + BT en-fr-en,fr-en-fr), --arch {arch}, {updates} updates, --max-len "
        f"{MAX_LEN}:"
    )
    print("#    peak MB; the largest back-translation batch of the data-bin at that --max-tokens: its sentences,")
    print("#    tokens (sum of `</s> w.. </s>`), padded (rows × longest), generated (rows × int(1.3·longest + 5))")
    heading = ("corpus", "sentences", "max-tokens", "peak MB", "rows", "tokens", "padded", "gen.")
    print("".join(f"{h:>{w}}" if w > 0 else f"{h:<{-w}}" for h, w in zip(heading, (-16, 10, 11, 9, 7, 8, 8, 8))))
    peaks: Dict[str, Dict[int, int]] = {}
    for name, path_of in corpora.items():
        for m in max_tokens:
            path = path_of(m)
            batch = largest_bt_batch(path, m)
            peak = measure_training(path, m, arch, updates)
            sentences = len(_train_sizes(path, "en")[1])
            peaks.setdefault(name, {})[m] = (peak.largest, sentences)
            print(
                f"{name:<16}{sentences:>10}{m:>11}{mb(peak.largest)}{batch['sentences']:>7}{batch['tokens']:>8}"
                f"{batch['padded']:>8}{batch['generated']:>8}",
                flush=True,
            )
    return peaks


def report_ratios(pre: Dict, sizes: List[int], peaks: Dict[str, dict], max_tokens: List[int], factor: int) -> None:
    print("\n# fits: peak MB = a + b·max_tokens (least squares over the --max-tokens above)")
    for name, by_m in peaks.items():
        a, b = fit_line([float(m) for m in by_m], [v / MB for v, _ in by_m.values()])
        print(f"fit {name:<16} a {a:8.1f} MB   b {b * 1024:7.1f} KB per token of --max-tokens")
    print(
        "# ratios: the larger corpus over the smaller (preprocessing: the same stage; training: the same --max-tokens)"
    )
    small, large = pre[sizes[0]]["peak"], pre[sizes[1]]["peak"]
    for stage in PREPARE_STAGES:
        s, l = small.stages[stage], large.stages[stage]
        child = f"{l['children'] / s['children']:.3f}" if s["children"] else "-"
        print(
            f"ratio prepare {stage:<11} x{factor}/x1: prepare {l['main'] / s['main']:.3f}   child {child}   "
            f"sum {l['sum'] / s['sum']:.3f}"
        )
    names = list(peaks)
    for big, base in ((names[1], names[0]), (names[2], names[1])):
        for m in max_tokens:
            (pb, nb), (pa, na) = peaks[big][m], peaks[base][m]
            print(
                f"ratio train {big} / {base} at --max-tokens {m}: {pb / pa:.3f} "
                f"({(pb - pa) / max(1, nb - na):.0f} bytes per added sentence)"
            )
    for name in names:
        first, last = peaks[name][max_tokens[0]][0], peaks[name][max_tokens[-1]][0]
        print(f"ratio train {name:<16} --max-tokens {max_tokens[-1]} / {max_tokens[0]}: {last / first:.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="2,000 lines, xlm_tiny, 4 updates: a few minutes")
    parser.add_argument("--out", help="work folder, kept (default: a temporary folder, removed at the end)")
    parser.add_argument("--lines", type=int, help="lines per language of the small corpus (default 5000)")
    parser.add_argument("--factor", type=int, default=10, help="the large corpus is the small one × F (default 10)")
    parser.add_argument("--max-tokens", default="500,1000,2000,4000", help="--max-tokens of the training runs")
    parser.add_argument("--arch", help="model of the training runs (default xlm_small)")
    parser.add_argument("--updates", type=int, help="updates per training run (default 12)")
    parser.add_argument("--codes", type=int, default=3000, help="BPE merges of prepare (default 3000)")
    args = parser.parse_args(argv)
    lines = args.lines or (2000 if args.quick else 5000)
    arch = args.arch or ("xlm_tiny" if args.quick else "xlm_small")
    updates = args.updates or (4 if args.quick else 12)
    max_tokens = [int(x) for x in args.max_tokens.split(",")]
    work = args.out or tempfile.mkdtemp(prefix="memory-scaling-")
    os.makedirs(work, exist_ok=True)
    sizes = [lines, lines * args.factor]
    print(f"# memory_scaling.py on {machine()}")
    print(f"# corpora of {sizes[0]} and {sizes[1]} lines per language; --max-tokens {args.max_tokens}; {arch}")
    try:
        sentences = fixture_sentences(work)
        print(f"# text: the DDTP fixture's {len(sentences['en'])} en / {len(sentences['fr'])} fr sentences, varied")
        pre = preprocessing_section(work, sentences, sizes, args.codes)
        small, large = pre[sizes[0]]["bin"], pre[sizes[1]]["bin"]
        copies = replicate_data_bin(large, os.path.join(work, "bin-copies"), args.factor)
        count = max(lines, max(max_tokens))
        max_len = write_token_corpus(small, os.path.join(work, "bin-max-len"), [MAX_LEN] * count)
        one_token = write_token_corpus(small, os.path.join(work, "bin-one-token"), [1] * count)
        gap = {m: write_token_corpus(small, os.path.join(work, f"bin-gap-{m}"), gap_lengths(m)) for m in max_tokens}
        corpora = {
            "ddtp": lambda m: small,
            f"ddtp x{args.factor}": lambda m: large,
            f"ddtp x{args.factor * args.factor} copies": lambda m: copies,
            "max-len": lambda m: max_len,
            "one-token": lambda m: one_token,
            "gap": lambda m: gap[m],
        }
        peaks = training_section(corpora, max_tokens, arch, updates)
        report_ratios(pre, sizes, peaks, max_tokens, args.factor)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
