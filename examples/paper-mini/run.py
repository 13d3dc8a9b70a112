"""The paper's five tables in miniature, on real text that these machines can fetch (Debian's translated
package descriptions, DDTP), one command per table:

    python examples/paper-mini/run.py table1     # zero-shot classification: none / MLM / MLM+TLM
    python examples/paper-mini/run.py table2     # unsupervised MT en-fr: -/-, CLM/CLM, MLM/MLM, MLM/-
    python examples/paper-mini/run.py table3     # supervised MT sk→en, 5k pairs: random / MLM x 3 configurations
    python examples/paper-mini/run.py table4     # low-resource LM: cs, + en, + sk, + both (examples/lowres-lm)
    python examples/paper-mini/run.py table5     # word embeddings: XLM vs per-language MLMs (FreeDict en-fr)
    python examples/paper-mini/run.py all        # the five, one after the other (about 4 hours on 2 cores)

Options: --scale S multiplies every update count (0.02 = a smoke test of a few minutes; its artefacts go to
OUT/scale-S and its tables to OUT/scale-S/results), --out DIR (default paper-mini-out/ at the repo root),
--dictionary FILE (Table 5: a MUSE-format `src tgt` en-fr dictionary instead of FreeDict's), --device cuda (train
on a GPU in mixed precision, the steps one after the other), --dry-run (print every command, run nothing).
Reruns reuse every finished step (a stamp per step in OUT/stamps; delete one to redo it); on a CPU the steps that
do not depend on each other run two at a time, one core each. Results at scale 1:
examples/paper-mini/results/tableN.md and tableN.png."""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import table1  # noqa: E402
import table2  # noqa: E402
import table3  # noqa: E402
import table4  # noqa: E402
import table5  # noqa: E402
from common import DEFAULT_OUT, Ctx, recipes  # noqa: E402

TABLES = {"table1": table1, "table2": table2, "table3": table3, "table4": table4, "table5": table5}


def main(argv=None):
    p = argparse.ArgumentParser(
        description="The XLM paper's tables in miniature on DDTP (CPU scale).",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("table", choices=list(TABLES) + ["all"])
    p.add_argument("--scale", type=float, default=1.0, help="multiply every update count (default 1)")
    p.add_argument("--out", default=DEFAULT_OUT, help="work folder (default paper-mini-out/)")
    p.add_argument("--dictionary", help="Table 5: en-fr dictionary in MUSE format (default: FreeDict eng-fra)")
    p.add_argument("--device", default="cpu", choices=recipes.DEVICES, help="where to train and evaluate (default cpu)")
    p.add_argument("--dry-run", action="store_true", help="print every command the tables run; run and write nothing")
    args = p.parse_args(argv)
    if not args.dry_run:
        if shutil.which("apt-get") is None and not os.path.exists(os.path.join(args.out, "stamps", "fetch")):
            raise SystemExit("paper-mini fetches Debian's translation files with apt-get, which is not installed here")
        if args.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise SystemExit("--device cuda: torch sees no CUDA GPU here (use --device cpu)")
    ctx = Ctx(args.scale, args.out, args.device, args.dry_run)
    ctx.dictionary = args.dictionary
    names = list(TABLES) if args.table == "all" else [args.table]
    for name in names:
        t0 = time.time()
        TABLES[name].run(ctx)
        if not args.dry_run:
            ctx.R.say(f"{name} finished in {(time.time() - t0) / 60:.1f} min (this invocation)")
    return ctx


if __name__ == "__main__":
    main()
