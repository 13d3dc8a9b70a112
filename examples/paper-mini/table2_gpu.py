"""Table 2 at GPU scale in one command: unsupervised MT en-fr from an MLM against the same UNMT from random
initialisation, on DDTP, sized for 8 minutes on one H100/H200 (data-bin built beforehand and carried).

    python examples/paper-mini/table2_gpu.py --data-bin BIN            # on a GPU (--device cuda, the default)
    python examples/paper-mini/table2_gpu.py --data-bin BIN --tiny --device cpu --test-subset valid   # dry run

BIN: `xlm-preprocess ddtp --langs en,fr --out raw --disjoint-mono` then `xlm-preprocess prepare raw BIN --langs
en,fr --codes 8000` (~14 MB without its work/ folder; no English training sentence has its French translation in
the data); without --data-bin the script builds it (that needs apt-get and Debian's archive).

1. MLM pretraining on en + fr for --pretrain-minutes (the learning study's recipe, examples/paper-mini/results/
   study.md, scaled to a GPU: streams of 64 tokens, 40% of the words predicted, no dropout; 6 x 512 by default);
2. UNMT (denoising + online back-translation) from the MLM (encoder and decoder) and from random initialisation,
   the two at the same time on the one GPU, the same number of updates, for --unmt-minutes each, validating with
   BLEU about every minute;
3. the test pairs (1,204 on DDTP) translated greedily in both directions by each: detokenised sacreBLEU, tokenised
   BLEU, the source copied unchanged (the floor on DDTP, whose titles share package names), a paired bootstrap of
   MLM against random, and the first test sentences side by side.
Results: one folder (default OUT/results; at full scale on a GPU, examples/paper-mini/results/) with table2_gpu.json,
table2_gpu.md and table2_gpu.png (validation BLEU and pretraining perplexity against minutes).

The GPU settings (model shape, batches, learning rates, minutes) are a first choice made without a GPU to measure
them: the next GPU run's curves are what to tune them by. --tiny runs every step on a CPU in about a minute."""

import argparse
import json
import os
import re
import shutil
import sys
import time
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import recipes  # noqa: E402
from pipeline import (  # noqa: E402
    ROOT,
    Runner,
    detok_sacrebleu,
    generated,
    metrics_of,
    paired_bleu,
    plot_panels,
    side_by_side,
    valid_rows,
)

LANGS = "en,fr"
DIRECTIONS = (("en", "fr"), ("fr", "en"))
UNMT_STEPS = dict(ae="en,fr", bt="en-fr-en,fr-en-fr")
EXAMPLES = 5  # test sentences shown side by side
# the GPU setting: a model that a GPU fills at these batches, the study's MLM recipe with larger batches
GPU = dict(
    model=["--arch", "xlm_medium"],  # 6 layers, 512 dims, 8 heads
    pretrain=dict(tokens_per_sample=64, batch_size=128, max_tokens=8192, word_pred=0.4, lr="5e-4", warmup=500),
    pretrain_valid_every=500,
    unmt=dict(
        max_tokens=3000,
        batch_size=64,
        max_len=100,
        lr="2e-4",
        scheduler="inverse_sqrt",
        warmup=500,
        warmup_init_lr="1e-7",
    ),
    unmt_updates=20000,  # a cap: the minutes stop the runs first
    unmt_valid_every=600,
)
TINY = dict(
    model=["--arch", "xlm_tiny"],
    pretrain=dict(tokens_per_sample=32, batch_size=8, max_tokens=400, word_pred=0.4, lr="1e-3", warmup=5),
    pretrain_valid_every=10,
    unmt=dict(max_tokens=300, batch_size=8, max_len=100, lr="1e-3"),
    unmt_updates=10,
    unmt_valid_every=5,
)


def run_dir_flags(R, save: str, device: str) -> list:
    return recipes.train_run(R.path(save), device)


def build_data(R, device: str) -> str:
    raw, data = R.path("raw"), R.path("data-bin")
    R.run("ddtp", recipes.ddtp(LANGS, raw, lists=R.path("apt-lists"), disjoint_mono=True))
    R.run("prepare", recipes.prepare(raw, data, LANGS, codes=8000))
    return data


def pretrain(R, a, s) -> str:
    every = s["pretrain_valid_every"]
    R.run(
        "pretrain",
        recipes.lm_pretrain(
            a.data_bin,
            LANGS,
            LANGS,
            flags=s["model"],
            dropout=0.0,
            lg_sampling=0.7,
            epoch_size=every * s["pretrain"]["batch_size"],
            max_update=a.pretrain_updates,
            stop_hours=a.pretrain_minutes / 60,
            max_valid_steps=30,
            run=run_dir_flags(R, "pretrain", a.device),
            **s["pretrain"],
        ),
    )
    return R.path("pretrain", "checkpoint_last.pt")


def unmt(R, a, s, name: str, init) -> str:
    every = s["unmt_valid_every"]
    R.run(
        f"unmt-{name}",
        recipes.mt_train(
            a.data_bin,
            LANGS,
            **UNMT_STEPS,
            flags=s["model"],
            epoch_size=every * s["unmt"]["batch_size"],
            max_update=a.unmt_updates or s["unmt_updates"],
            stop_hours=a.unmt_minutes / 60,
            eval_bleu=True,
            reload_encoder=init,
            reload_decoder=init,
            run=run_dir_flags(R, f"unmt-{name}", a.device),
            extra=["--max-valid-steps", 10],
            **s["unmt"],
        ),
        beside=True,
    )
    return R.path(f"unmt-{name}", "checkpoint_last.pt")


def translate(R, a, name: str, checkpoint: str) -> dict:
    logs = {}
    for src, tgt in DIRECTIONS:
        step = f"generate-{name}-{src}-{tgt}"
        cmd = recipes.generate(
            a.data_bin, LANGS, src, tgt, checkpoint, subset=a.test_subset, batch_size=128, device=a.device
        )
        logs[f"{src}-{tgt}"] = R.run(step, cmd)
    return logs


# ------------------------------------------------------------------ reading the logs
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def minutes_curve(log: str, keys) -> dict:
    """{key: [(minutes since the log's first line, value)]} over the validations of a fairseq-train log."""
    start, out = None, {k: [] for k in keys}
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for line in lines:
        m = STAMP.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        start = t if start is None else start
        if "valid on 'valid' subset" in line:
            row = metrics_of(line)
            for k in keys:
                if k in row:
                    out[k].append(((t - start) / 60, row[k]))
    return out


def last_updates(log: str) -> float:
    rows = valid_rows(log)
    return rows[-1].get("num_updates", float("nan")) if rows else float("nan")


def copy_floor_sacrebleu(log: str, src: str) -> float:
    """Detokenised sacreBLEU of the sources copied unchanged (the S lines of a fairseq-generate log)."""
    from xlm_fairseq.bleu import Detokenizer, bleu_from_stats, bleu_stats

    out, detok = generated(log), Detokenizer()
    ids = sorted(i for i in out if "T" in out[i])
    tgt_lang = "fr" if src == "en" else "en"
    hyps = [detok(out[i]["S"], src) for i in ids]
    refs = [detok(out[i]["T"], tgt_lang) for i in ids]
    return bleu_from_stats(bleu_stats(hyps, refs, "sacre"))


def report(R, a, s, logs: dict, results: str) -> dict:
    rows, examples, numbers = [], {}, {"directions": {}}
    for src, tgt in DIRECTIONS:
        d = f"{src}-{tgt}"
        mlm, rand = logs["mlm"][d], logs["random"][d]
        paired = paired_bleu(rand, mlm)
        detok = {"mlm": detok_sacrebleu(mlm, tgt), "random": detok_sacrebleu(rand, tgt)}
        copy = copy_floor_sacrebleu(mlm, src)
        numbers["directions"][d] = {
            "sacrebleu": {**detok, "copy": copy},
            "tokenised_bleu": {"mlm": paired["system"], "random": paired["baseline"], "copy": paired["copy"]},
            "paired_bootstrap_p": paired["p_value"],
            "mlm_95ci_halfwidth": paired["ci"],
        }
        rows.append(
            f"| {d} | {detok['mlm']:.2f} | {detok['random']:.2f} | {copy:.2f} | {detok['mlm'] - detok['random']:+.2f} "
            f"| {paired['p_value']:.3f} | {paired['system']:.2f} / {paired['baseline']:.2f} / {paired['copy']:.2f} |"
        )
        out_m, out_r = generated(mlm), generated(rand)
        examples[d] = [
            {"source": out_m[i]["S"], "reference": out_m[i]["T"], "mlm": out_m[i]["D"], "random": out_r[i]["D"]}
            for i in sorted(out_m)[:EXAMPLES]
        ]
    train_logs = {k: R.path("logs", f"{k}.log") for k in ("pretrain", "unmt-mlm", "unmt-random")}
    curves = {
        "pretrain": minutes_curve(train_logs["pretrain"], ["mlm_ppl", "en_mlm_ppl", "fr_mlm_ppl"]),
        "unmt-mlm": minutes_curve(train_logs["unmt-mlm"], ["en-fr_mt_sacrebleu", "fr-en_mt_sacrebleu"]),
        "unmt-random": minutes_curve(train_logs["unmt-random"], ["en-fr_mt_sacrebleu", "fr-en_mt_sacrebleu"]),
    }
    numbers.update(
        device=a.device,
        gpu=gpu_name() if a.device == "cuda" else None,
        date=time.strftime("%Y-%m-%d"),
        model=" ".join(str(x) for x in s["model"]),
        pretrain_minutes=R.seconds("pretrain") / 60,
        pretrain_updates=last_updates(train_logs["pretrain"]),
        unmt_minutes={k: R.seconds(f"unmt-{k}") / 60 for k in ("mlm", "random")},
        unmt_updates={k: last_updates(train_logs[f"unmt-{k}"]) for k in ("mlm", "random")},
        wall_minutes=R.total_minutes(),
        test_subset=a.test_subset,
        curves=curves,
        examples=examples,
    )
    ups = numbers["unmt_updates"]
    md = [
        "# Table 2 at GPU scale: unsupervised MT en-fr, MLM initialisation against random",
        "",
        f"{numbers['gpu'] or 'CPU'}, {numbers['date']}; model {numbers['model']}; MLM pretraining "
        f"{numbers['pretrain_minutes']:.1f} min ({numbers['pretrain_updates']:.0f} updates), then UNMT from the MLM "
        f"and from random at the same time, {ups['mlm']:.0f} / {ups['random']:.0f} updates; "
        f"{numbers['wall_minutes']:.1f} min in all. Test set: `{a.test_subset}`, greedy decoding.",
        "",
        "| direction | sacreBLEU MLM | random | copied source | MLM - random | paired bootstrap p | tokenised BLEU "
        "MLM / random / copy |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    for d, items in examples.items():
        md += [
            f"First test sentences, {d}:",
            "",
            "| source | reference | from the MLM | from random |",
            "|---|---|---|---|",
        ]
        md += [f"| {e['source']} | {e['reference']} | {e['mlm']} | {e['random']} |" for e in items]
        md.append("")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "table2_gpu.json"), "w", encoding="utf-8") as f:
        json.dump(numbers, f, indent=1)
    with open(os.path.join(results, "table2_gpu.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    plot_panels(
        [
            dict(
                series={
                    f"{run} {key.split('_')[0]}": pts
                    for run in ("unmt-mlm", "unmt-random")
                    for key, pts in curves[run].items()
                },
                ylabel="valid sacreBLEU",
                xlabel="minutes of UNMT",
                title="UNMT: from the MLM vs from random",
            ),
            dict(series=curves["pretrain"], ylabel="valid MLM perplexity", xlabel="minutes", title="MLM pretraining"),
        ],
        os.path.join(results, "table2_gpu.png"),
    )
    print("\n".join(md))
    print(f"(written to {os.path.relpath(results, ROOT)}/table2_gpu.{{json,md,png}})")
    return numbers


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name()


def main(argv=None):
    """The results (a dry run: its Runner, whose `planned` holds the commands)."""
    p = argparse.ArgumentParser(
        description="Table 2 at GPU scale: UNMT en-fr from an MLM vs from random, on DDTP, in one command.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-bin", help="an en-fr DDTP data-bin (default: build one under OUT, with apt-get)")
    p.add_argument("--out", default=os.path.join(ROOT, "table2-gpu-out"), help="work folder (default table2-gpu-out/)")
    p.add_argument("--results", help="results folder (default: examples/paper-mini/results on a GPU, else OUT/results)")
    p.add_argument("--device", default="cuda", choices=recipes.DEVICES)
    p.add_argument("--pretrain-minutes", type=float, default=3.0)
    p.add_argument("--pretrain-updates", type=int, default=None, help="cap the pretraining's updates (default none)")
    p.add_argument("--unmt-minutes", type=float, default=3.0, help="each UNMT run (the two run at the same time)")
    p.add_argument("--unmt-updates", type=int, default=None, help="cap both UNMT runs at this many updates")
    p.add_argument("--test-subset", default="test", help="the pairs to translate (default test)")
    p.add_argument("--tiny", action="store_true", help="tiny model and a few updates: the whole pipeline in a minute")
    p.add_argument("--dry-run", action="store_true", help="print every command; run and write nothing")
    a = p.parse_args(argv)
    if a.device == "cuda" and not a.dry_run:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA GPU here (use --device cpu, with --tiny)")
    s = TINY if a.tiny else GPU
    if a.tiny and a.pretrain_updates is None:
        a.pretrain_updates = 20
    R = Runner(a.out, "table2-gpu", a.device, a.dry_run)
    if not a.data_bin:
        if not a.dry_run and shutil.which("apt-get") is None:
            raise SystemExit("--data-bin is missing and apt-get is not here to build one: carry a data-bin")
        a.data_bin = build_data(R, a.device)
    elif not os.path.isfile(os.path.join(a.data_bin, "dict.txt")):
        raise SystemExit(f"--data-bin {a.data_bin}: no dict.txt there (an xlm-preprocess prepare data-bin)")
    mlm = pretrain(R, a, s)
    # both UNMT runs at once: the same minutes of the same GPU for each, so equal updates
    mlm_mt, random_mt = side_by_side(
        lambda: unmt(R, a, s, "mlm", mlm), lambda: unmt(R, a, s, "random", None), at_once=not a.dry_run
    )
    logs = {"mlm": translate(R, a, "mlm", mlm_mt), "random": translate(R, a, "random", random_mt)}
    if a.dry_run:
        return R
    results = a.results or (
        os.path.join(HERE, "results") if a.device == "cuda" and not a.tiny else os.path.join(a.out, "results")
    )
    return report(R, a, s, logs, results)


if __name__ == "__main__":
    main()
