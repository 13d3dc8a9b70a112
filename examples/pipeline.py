"""Building blocks of the runnable recipes (examples/demo, examples/paper-mini): run real command lines
once each (a stamp per finished step, so reruns reuse them), stream fairseq's progress bars, read metrics
back from the logs. Every command is the one a user would type (examples/recipes.py builds them).

On a CPU, steps that do not depend on each other run side by side, one core each (side_by_side, and
Runner.run(beside=True) gives the step one compute thread); on a GPU they run one after the other (the scheduling
is the Runner's, by its device). A dry run prints every command and runs nothing, writes nothing."""

import hashlib
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recipes import ROOT, USER_DIR, check_device, shell  # noqa: E402,F401

BIN = os.path.dirname(sys.executable)
METRIC = re.compile(r"\| (\S+) (-?[\d.]+|nan|inf)(?= \|| *$)")


def covered_minutes(stamps) -> float:
    """Minutes during which at least one of the steps of these stamps (Runner.stamp) was running: steps that ran
    side by side count once; a stamp without start and end (older ones) adds its seconds."""
    spans, alone = [], 0.0
    for stamp in stamps:
        if len(stamp) >= 3:
            spans.append((stamp[1], stamp[2]))
        elif stamp and stamp[0] == stamp[0]:
            alone += stamp[0]
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        covered += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return (covered + alone) / 60


class Runner:
    def __init__(self, out: str, name: str, device: str = "cpu", dry_run: bool = False):
        """`device`: cpu or cuda, where the steps compute (it decides their scheduling: side by side on one core
        each on a CPU, one after the other on a GPU); `dry_run`: print each step's command instead of running it
        (`planned` keeps them), create nothing."""
        self.out = os.path.abspath(out)
        self.name = name
        self.device = check_device(device)
        self.dry_run = dry_run
        self.planned = []  # (step, argv, env) of every step a dry run met
        self.t0 = time.time()
        if not dry_run:
            os.makedirs(self.path("logs"), exist_ok=True)
            os.makedirs(self.path("stamps"), exist_ok=True)

    def path(self, *parts) -> str:
        return os.path.join(self.out, *parts)

    def say(self, msg: str) -> None:
        print(f"[{self.name} {time.time() - self.t0:6.0f}s] {msg}", flush=True)

    def done(self, step: str) -> bool:
        return os.path.exists(self.path("stamps", step))

    def stamp(self, step: str) -> list:
        """The numbers of a step's stamp: [seconds, start, end] (start and end: epoch seconds; older stamps
        hold the seconds alone); [] if unreadable."""
        try:
            with open(self.path("stamps", step)) as f:
                return [float(x) for x in f.readline().split()]
        except (OSError, ValueError):
            return []

    def stamped_command(self, step: str):
        """The digest of the command a finished step ran (its stamp's second line), or None (older stamps)."""
        try:
            with open(self.path("stamps", step)) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        return lines[1].split()[-1] if len(lines) > 1 and lines[1].startswith("command ") else None

    def reusable(self, step: str, digest: str) -> bool:
        """Whether the step finished before with this command; one line and exit if it finished with another
        (another --scale, --device or recipe: a table of steps run with different settings would mix them)."""
        if not self.done(step):
            return False
        if self.stamped_command(step) not in (None, digest):
            raise SystemExit(
                f"{self.name}: {self.out} holds step {step} run with other settings (another --scale, --device or "
                f"version of the recipe); give another --out, or delete {self.path('stamps')} to run every step again"
            )
        return True

    def seconds(self, step: str) -> float:
        """Wall-clock seconds the step took when it ran (written into its stamp); nan if unknown."""
        stamp = self.stamp(step)
        return stamp[0] if stamp else float("nan")

    def total_minutes(self) -> float:
        """Wall-clock minutes during which a step that finished was running, whichever invocation ran it (a
        resumed run counts the steps of the earlier invocations too; steps that ran side by side count once)."""
        return covered_minutes(map(self.stamp, os.listdir(self.path("stamps"))))

    def run(self, step: str, cmd, env: dict = None, beside: bool = False) -> str:
        """Run cmd (a console script of this environment, or an absolute path, and its arguments) unless step
        finished before; returns the step's log file. `env`: extra environment variables; `beside`: another
        step runs at the same time on a CPU, so this one computes on one core (OMP_NUM_THREADS=1: two
        single-thread runs keep both cores busy without competing for them) and its screen lines are labelled,
        without progress bars (on a GPU steps run one after the other: `beside` does nothing). The stamp holds
        the step's wall-clock seconds, its start and its end."""
        log = self.path("logs", f"{step}.log")
        digest = hashlib.sha1(shell(cmd, env).encode()).hexdigest()
        if self.dry_run:
            self.planned.append((step, [str(c) for c in cmd], {k: str(v) for k, v in (env or {}).items()}))
            reused = ""
            if self.done(step):
                same = self.stamped_command(step) in (None, digest)
                reused = "  (done earlier: would be reused)" if same else "  (done earlier with other settings)"
            print(f"# {self.name}: {step}{reused}\n{shell(cmd, env)}\n", flush=True)
            return log
        beside = beside and self.device == "cpu"
        if self.reusable(step, digest):
            self.say(f"{step}: done earlier, reused")
            return log
        shown = " ".join(str(c) for c in cmd[:4])
        self.say(f"{step}: {shown} ...")
        exe = cmd[0] if os.path.isabs(cmd[0]) else os.path.join(BIN, cmd[0])
        # unbuffered: fairseq logs to stdout, which a pipe would hold back for minutes
        env = dict(
            os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1", **{k: str(v) for k, v in (env or {}).items()}
        )
        if beside:
            env["OMP_NUM_THREADS"] = "1"
        start = time.time()
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                [exe] + [str(c) for c in cmd[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
            )
            stream_progress(proc.stdout, f, step if beside else None)
            if proc.wait() != 0:
                raise SystemExit(f"{self.name} step {step} failed; see {log}")
        end = time.time()
        with open(self.path("stamps", step), "w") as f:
            f.write(f"{end - start:.1f} {start:.1f} {end:.1f}\ncommand {digest}\n")
        return log

    def side_by_side(self, *jobs) -> list:
        """The jobs' results in order: side_by_side on a CPU, one after the other on a GPU or in a dry run."""
        return side_by_side(*jobs, at_once=self.device == "cpu" and not self.dry_run)

    def do(self, what: str, fn, *args, **kwargs):
        """fn(*args, **kwargs), a step done in Python (a file written, a checkpoint initialised); a dry run says
        `what` instead and returns None."""
        if self.dry_run:
            print(f"# {self.name}: {what} (in Python)\n", flush=True)
            return None
        return fn(*args, **kwargs)


def side_by_side(*jobs, at_once: bool = True) -> list:
    """Run the jobs (functions of no argument, whose steps run with `beside=True`) at the same time, one per
    core; their results in order (a job's failure is raised once every job has ended). `at_once` False: one
    after the other."""
    from concurrent.futures import ThreadPoolExecutor

    if not at_once:
        return [job() for job in jobs]

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(job) for job in jobs]
    return [f.result() for f in futures]


def stream_progress(pipe, log, label: str = None) -> None:
    """All output to the log; to the screen the progress bars (tqdm redraws with \\r) and the epoch
    summaries, without fairseq's INFO chatter and model printout. With a `label` (a step running beside
    another), only the epoch summaries and BLEU lines, each starting with [label]."""
    pending = b""
    while True:
        chunk = pipe.read1(4096)
        if not chunk:
            break
        log.write(chunk)
        pending += chunk
        parts = re.split(rb"(\r|\n)", pending)
        pending = parts.pop()
        for text, sep in zip(parts[0::2], parts[1::2]):
            line = text.decode("utf-8", "replace")
            noise = "| INFO |" in line or "INFO:" in line or "DEBUG" in line or line.startswith(" ") or line == ")"
            if label is not None:
                if sep == b"\n" and (re.search(r"\| (valid|train) \|", line) or "BLEU" in line):
                    sys.stdout.write(f"[{label}] {line}\n")
            elif not noise or re.search(r"\| (valid|train) \|", line) or "BLEU" in line:
                sys.stdout.write(line + sep.decode())
        sys.stdout.flush()
    if pending:
        sys.stdout.write(pending.decode("utf-8", "replace") + "\n")


# ------------------------------------------------------------------ reading logs
def metrics_of(line: str) -> dict:
    return {m.group(1): float(m.group(2)) for m in METRIC.finditer(line)}


def valid_rows(log: str, subset: str = "valid") -> list:
    """[metrics] of every validation of `subset` in a fairseq-train / fairseq-validate log."""
    with open(log, encoding="utf-8", errors="replace") as f:
        return [metrics_of(l) for l in f if f"valid on '{subset}' subset" in l]


def train_rows(log: str) -> list:
    with open(log, encoding="utf-8", errors="replace") as f:
        return [metrics_of(l) for l in f if "| train |" in l or "| train_inner |" in l]


def bleu_of(log: str) -> float:
    with open(log, encoding="utf-8", errors="replace") as f:
        m = re.search(r"BLEU4? = ([\d.]+)", f.read())
    return float(m.group(1)) if m else float("nan")


def generated(log: str) -> dict:
    """{sentence id: {"S": source, "T": reference, "D": hypothesis}} of a fairseq-generate log (BPE removed by
    its --post-process)."""
    out = {}
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"([STD])-(\d+)\t(?:-?[\d.]+\t)?(.*)$", line.rstrip("\n"))
            if m:
                out.setdefault(int(m.group(2)), {})[m.group(1)] = m.group(3)
    return out


def detok_sacrebleu(log: str, lang: str) -> float:
    """Detokenised sacreBLEU (13a) of a fairseq-generate log whose text is Moses-tokenised with the BPE removed:
    hypotheses and references detokenised per `lang` (the target language), as --eval-bleu scores them."""
    from xlm_fairseq.bleu import Detokenizer, bleu_from_stats, bleu_stats

    out, detok = generated(log), Detokenizer()
    ids = sorted(i for i in out if "T" in out[i])
    hyps = [detok(out[i].get("D", ""), lang) for i in ids]
    refs = [detok(out[i]["T"], lang) for i in ids]
    return bleu_from_stats(bleu_stats(hyps, refs, "sacre")) if ids else float("nan")


def paired_bleu(baseline_log: str, system_log: str, samples: int = 1000) -> dict:
    """Corpus BLEU of two fairseq-generate logs of the same test set and of the source copied unchanged, on their
    text as written (sacreBLEU, tokenize none: fairseq-generate's BLEU), with sacreBLEU's paired bootstrap of the
    system against the baseline: {"baseline", "system", "copy", "p_value" (system vs baseline), "ci" (system's
    95% half-width)}."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    base, system = generated(baseline_log), generated(system_log)
    ids = sorted(base)
    if sorted(system) != ids:
        raise SystemExit(f"{system_log} and {baseline_log} translate different sentences: regenerate both")
    refs = [base[i]["T"] for i in ids]
    named = [
        ("baseline", [base[i]["D"] for i in ids]),
        ("system", [system[i]["D"] for i in ids]),
        ("copy", [base[i]["S"] for i in ids]),
    ]
    bleu = BLEU(tokenize="none", force=True)
    _, scores = PairedTest(named, {"BLEU": bleu}, [refs], test_type="bs", n_samples=samples)()
    base_r, sys_r, copy_r = scores["BLEU"]
    return {
        "baseline": base_r.score,
        "system": sys_r.score,
        "copy": copy_r.score,
        # sacreBLEU's bootstrap gives p = 1/(samples+1) to a system whose score equals the baseline's (zero
        # difference in every sample: the same outputs, or both at BLEU 0)
        "p_value": 1.0 if sys_r.score == base_r.score else sys_r.p_value,
        "ci": sys_r.ci,
    }


def unigram_ppl(data_bin: str, lang: str, split: str = "valid") -> float:
    """Perplexity of the `split` text of `lang` under the unigram distribution of its training text (add-one
    smoothed): what a masked LM that knows only token frequencies scores."""
    import numpy as np
    from fairseq.data import data_utils

    from xlm_fairseq.dictionary import load_dictionary

    d = load_dictionary(os.path.join(data_bin, "dict.txt"))

    def tokens(name):
        data = data_utils.load_indexed_dataset(os.path.join(data_bin, name), d, "mmap")
        return np.concatenate([data[i].numpy() for i in range(len(data))])

    counts = np.bincount(tokens(f"train.{lang}"), minlength=len(d)) + 1
    logp = np.log(counts / counts.sum())
    return float(np.exp(-logp[tokens(f"{split}.{lang}")].mean()))


def best_by(rows_valid: list, rows_test: list, key: str, maximize: bool = True) -> dict:
    """The test row of the epoch whose valid `key` is best (model selection on valid)."""
    best, out = None, {}
    for v, t in zip(rows_valid, rows_test):
        if key in v and (best is None or (v[key] > best if maximize else v[key] < best)):
            best, out = v[key], t
    return out


# ------------------------------------------------------------------ steps in Python
def random_init_checkpoint(reference: str, target: str, seed: int = 1) -> str:
    """`reference` with the weights of a freshly initialised model of the same configuration (built by
    fairseq from the checkpoint's own config): the 'no pretraining' baseline of a perplexity."""
    if os.path.exists(target):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    code = (
        "import torch\n"
        "from fairseq import tasks\n"
        "from xlm_fairseq.checkpoints import read_checkpoint\n"
        f"state = read_checkpoint({reference!r})\n"
        f"torch.manual_seed({seed})\n"
        "task = tasks.setup_task(state['cfg'].task)\n"
        "state['model'] = task.build_model(state['cfg'].model).state_dict()\n"
        f"torch.save(state, {target + '.tmp'!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    os.replace(target + ".tmp", target)
    return target


def plot_curves(series: dict, ylabel: str, path: str, title: str, log_y: bool = False) -> None:
    """series: {label: [(x, y), ...]} -> a PNG (matplotlib, headless)."""
    plot_panels([dict(series=series, ylabel=ylabel, title=title, log_y=log_y)], path)


def plot_panels(panels: list, path: str, title: str = None) -> None:
    """Several plot_curves side by side in one PNG. Each panel: a dict with `series` ({label: [(x, y)]}),
    `ylabel`, and optionally `title`, `xlabel` (default "updates") and `log_y`."""
    import logging

    import matplotlib

    # importing fairseq (log readers that detokenise do) sets the root logger to DEBUG
    # (fairseq/models/wav2vec/wav2vec2_classification.py): matplotlib would print every font it considers
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if len(panels) == 4 else min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for label, points in panel["series"].items():
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o", markersize=3, label=label)
        ax.set_xlabel(panel.get("xlabel", "updates"))
        ax.set_ylabel(panel["ylabel"])
        if panel.get("log_y"):
            ax.set_yscale("log")
        if panel.get("title"):
            ax.set_title(panel["title"])
        if any(panel["series"].values()):
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
