"""Inference on raw text, sentences/s, ours beside fairseq-interactive with the same model in the same run:

    translate    a fresh process running XLMTransformerModel.from_pretrained(MT).translate(lines)
                 vs  fairseq-interactive MT --tokenizer xlm_moses --bpe ... on the same lines
                 (both: start-up, model loading, Moses + BPE, length-sorted batches of --max-tokens source
                 tokens, greedy or beam search with the length limit 1.5 L + 10, detokenisation); the
                 translations are checked to be identical
    embeddings   `xlm-embeddings sentences LM` in a fresh process, and in this process sentence_embeddings()
                 beside a loop of extract_features() over single sentences

Runs are interleaved and repeated (--repeats), medians; every child gets --threads threads.

    python benchmarks/inference_throughput.py --mt-model demo-out/unmt-pretrained --lm-model demo-out/pretrain \\
        --ddtp-dir benchmarks-out/ddtp --sentences 1000 --repeats 3

The sentences are the first --sentences lines of DDTP's English test split (`xlm-preprocess ddtp --langs en,fr
--out DDTP_DIR` is run when DDTP_DIR has no test.en). Other processes on the machine change these figures:
compare the columns of one run."""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
USER_DIR = os.path.join(ROOT, "xlm_fairseq")
BIN = os.path.dirname(sys.executable)

TRANSLATE = """
import json, sys, time
t0 = time.perf_counter()
from xlm_fairseq.models.xlm_transformer import XLMTransformerModel
model, checkpoint, src_file, src, tgt, beam, max_tokens, out_file = sys.argv[1:]
hub = XLMTransformerModel.from_pretrained(model, checkpoint)
lines = [line.rstrip("\\n") for line in open(src_file, encoding="utf-8")]
hub.encode(lines[0], src), hub.tokenizer(tgt)  # build the Moses tokenizers (fairseq-interactive does at start-up)
t1 = time.perf_counter()
out = hub.translate(lines, src, tgt, beam=int(beam), max_tokens=int(max_tokens))
t2 = time.perf_counter()
open(out_file, "w", encoding="utf-8").writelines(o + "\\n" for o in out)
print(json.dumps({"load": t1 - t0, "work": t2 - t1}))
"""


def sentences_file(ddtp_dir: str, n: int, path: str) -> str:
    test = os.path.join(ddtp_dir, "test.en")
    if not os.path.isfile(test):
        subprocess.run([os.path.join(BIN, "xlm-preprocess"), "ddtp", "--langs", "en,fr", "--out", ddtp_dir], check=True)
    lines = [line for line in open(test, encoding="utf-8") if line.strip()][:n]
    if len(lines) < n:
        raise SystemExit(f"{test} has only {len(lines)} sentences, fewer than --sentences {n}")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    words = sum(len(line.split()) for line in lines) / len(lines)
    return f"{n} DDTP English sentences ({words:.1f} words on average)"


def timed(cmd, env, **kwargs):
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kwargs)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd[:3]))} ... failed:\n{proc.stderr[-3000:]}")
    return wall, proc


def interactive_command(mt_dir, checkpoint, hub, src, tgt, beam, max_tokens, n, input_file, cpu):
    settings = hub.settings
    bpe = (
        ["--bpe", "subword_nmt", "--bpe-codes", settings.bpe_codes]
        if settings.bpe_backend == "subword-nmt"
        else ["--bpe", "sentencepiece", "--sentencepiece-model", settings.bpe_codes]
    )
    return (
        [
            os.path.join(BIN, "fairseq-interactive"),
            mt_dir,
            "--user-dir",
            USER_DIR,
            "--task",
            "xlm_unsupervised_mt",
            "--langs",
            ",".join(hub.langs),
            "--source-lang",
            src,
            "--target-lang",
            tgt,
            "--path",
            os.path.join(mt_dir, checkpoint),
            "--tokenizer",
            "xlm_moses",
        ]
        + (["--lowercase-strip-accents"] if settings.lowercase else [])
        + bpe
        + [
            "--beam",
            beam,
            "--max-len-a",
            1.5,
            "--max-len-b",
            10,
            "--buffer-size",
            n,
            "--max-tokens",
            max_tokens,
            "--input",
            input_file,
        ]
        + (["--cpu"] if cpu else [])
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mt-model", default=os.path.join(ROOT, "demo-out", "unmt-pretrained"))
    p.add_argument("--mt-checkpoint", default="checkpoint_last.pt")
    p.add_argument("--lm-model", default=os.path.join(ROOT, "demo-out", "pretrain"))
    p.add_argument("--lm-checkpoint", default="checkpoint_best.pt")
    p.add_argument("--ddtp-dir", default=os.path.join(ROOT, "benchmarks-out", "ddtp"))
    p.add_argument("--sentences", type=int, default=1000)
    p.add_argument("--source-lang", default="en")
    p.add_argument("--target-lang", default="fr")
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--max-tokens", type=int, default=6000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpu", action="store_true", help="on a GPU machine, run on the CPU")
    a = p.parse_args()

    import torch

    from xlm_fairseq.models.xlm_transformer import XLMTransformerModel

    torch.set_num_threads(a.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads), PYTHONWARNINGS="ignore")
    cpu = a.cpu or not torch.cuda.is_available()
    work = tempfile.mkdtemp(prefix="inference-bench-")
    src_file = os.path.join(work, "input.en")
    what = sentences_file(a.ddtp_dir, a.sentences, src_file)
    lines = [line.rstrip("\n") for line in open(src_file, encoding="utf-8")]
    mt = XLMTransformerModel.from_pretrained(a.mt_model, a.mt_checkpoint)
    lm = XLMTransformerModel.from_pretrained(a.lm_model, a.lm_checkpoint)
    if not cpu:
        lm.cuda()
    ours_cmd = [
        sys.executable,
        "-c",
        TRANSLATE,
        a.mt_model,
        a.mt_checkpoint,
        src_file,
        a.source_lang,
        a.target_lang,
        a.beam,
        a.max_tokens,
        os.path.join(work, "ours.fr"),
    ]
    theirs_cmd = interactive_command(
        a.mt_model, a.mt_checkpoint, mt, a.source_lang, a.target_lang, a.beam, a.max_tokens, len(lines), src_file, cpu
    )
    emb_cmd = [
        os.path.join(BIN, "xlm-embeddings"),
        "sentences",
        a.lm_model,
        "--checkpoint-file",
        a.lm_checkpoint,
        "--lang",
        a.source_lang,
        "--input",
        src_file,
        "--out",
        os.path.join(work, "emb.npy"),
        "--max-tokens",
        a.max_tokens,
    ] + (["--cpu"] if cpu else [])
    if not cpu:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""

    lm.encode(lines[0], a.source_lang)  # build the Moses tokenizer before timing
    runs = {k: [] for k in ("ours", "ours_load", "ours_work", "theirs", "theirs_work", "emb_cli", "emb", "loop")}
    same = True
    for _ in range(a.repeats):
        wall, proc = timed(ours_cmd, env)
        inner = json.loads(proc.stdout.strip().splitlines()[-1])
        runs["ours"].append(wall)
        runs["ours_load"].append(inner["load"])
        runs["ours_work"].append(inner["work"])
        wall, proc = timed(theirs_cmd, env)
        runs["theirs"].append(wall)
        found = re.search(r"translation time: ([\d.]+)", proc.stdout + proc.stderr)
        runs["theirs_work"].append(float(found.group(1)) if found else float("nan"))
        hyps = {int(m.group(1)): m.group(2) for m in re.finditer(r"^D-(\d+)\t[^\t]*\t(.*)$", proc.stdout, re.M)}
        ours = [line.rstrip("\n") for line in open(os.path.join(work, "ours.fr"), encoding="utf-8")]
        same &= [hyps.get(i) for i in range(len(lines))] == ours
        wall, _ = timed(emb_cmd, env)
        runs["emb_cli"].append(wall)
        with torch.no_grad():
            start = time.perf_counter()
            lm.sentence_embeddings(lines, a.source_lang, max_tokens=a.max_tokens)
            runs["emb"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for line in lines:
                lm.extract_features(lm.encode(line, a.source_lang), a.source_lang)
            runs["loop"].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in runs.items()}
    n = len(lines)
    device = "cpu" if cpu else torch.cuda.get_device_name()
    print(
        f"{what}; {a.source_lang}->{a.target_lang} model {a.mt_model} ({mt.model.encoder.n_layers} x "
        f"{mt.model.encoder.dim}, {len(mt.dictionary)} words), beam {a.beam}, --max-tokens {a.max_tokens}, "
        f"{device}, {a.threads} threads; medians of {a.repeats}"
    )
    print(f"{'translate':<44}{'sentences/s':>12}{'start-up s':>14}{'after start-up sent/s':>22}")
    print(
        f"{'ours: from_pretrained().translate()':<44}{n / med['ours']:>12.1f}{med['ours_load']:>14.2f}"
        f"{n / med['ours_work']:>22.1f}"
    )
    print(
        f"{'fairseq-interactive, same model and flags':<44}{n / med['theirs']:>12.1f}{'':>14}"
        f"{n / med['theirs_work']:>22.1f}  (its 'translation time': model calls only, no Moses/BPE)"
    )
    print(f"identical translations: {'yes' if same else 'NO'}")
    print(f"{'embeddings of ' + a.lm_model:<44}{'sentences/s':>12}")
    print(f"{'ours: xlm-embeddings sentences (process)':<44}{n / med['emb_cli']:>12.1f}")
    print(f"{'ours: sentence_embeddings() in process':<44}{n / med['emb']:>12.1f}")
    print(f"{'extract_features() one sentence at a time':<44}{n / med['loop']:>12.1f}")
    print(f"ratio_translate_vs_fairseq_interactive {med['theirs'] / med['ours']:.2f}")


if __name__ == "__main__":
    main()
