"""`xlm-eval-lm CHECKPOINT DATA --lang cs [--split valid,test]`: CLM perplexity of one language (paper §4.4,
Table 4; facebookresearch/XLM `xlm/evaluation/evaluator.py: evaluate_clm`).

The number is computed by the training task's own validation path: the checkpoint's config is reloaded with
task `xlm_cross_lingual_lm`, its `--langs` (so language ids are unchanged), `--clm-steps LANG` and the data
folder given here; the split is read as an XLM evaluation stream (batch size 1, contiguous windows of
--tokens-per-sample tokens, each predicting its tokens 1..bptt-1 from the in-window prefix, `</s>` included)
and every window goes through `task.valid_step` and the `xlm_lm_loss` criterion. So the perplexity equals
what `fairseq-train` logs as `valid_{lang}_clm_ppl` for the same checkpoint and data, and what

    fairseq-validate DATA --user-dir xlm_fairseq --task xlm_cross_lingual_lm --langs cs,en,sk \
        --clm-steps cs --path CKPT --valid-subset test --batch-size 1

prints as `cs_clm_ppl`.
"""

import argparse
import json
import logging
import math
import os
import sys
import warnings
from typing import Dict, List, Optional

import torch
from omegaconf import OmegaConf, open_dict

from .checkpoints import read_checkpoint
from .errors import XLMUserError


def _load_state(path: str) -> dict:
    state = read_checkpoint(path, "checkpoint")
    if state.get("cfg") is None:
        raise XLMUserError(
            f"{path} has no saved config (cfg): it was not written by fairseq-train with --user-dir xlm_fairseq"
        )
    return state


def _clm_config(saved_cfg, data: str, lang: str, tokens_per_sample: Optional[int], path: str):
    """The saved config with its task replaced by xlm_cross_lingual_lm --clm-steps LANG on DATA."""
    from .steps import parse_langs
    from .tasks.xlm_cross_lingual_lm import CrossLingualLMConfig

    saved_task = saved_cfg.get("task")
    langs_value = saved_task.get("langs") if saved_task is not None else None
    if not langs_value:
        raise XLMUserError(
            f"{path}: its task ({saved_task.get('_name') if saved_task else None}) has no --langs; "
            "xlm-eval-lm needs a checkpoint trained with an xlm_fairseq task"
        )
    langs = parse_langs(langs_value)
    if lang not in langs:
        raise XLMUserError(f"--lang {lang}: {path} was trained with --langs {','.join(langs)}; choose one of them")
    task_cfg = OmegaConf.structured(CrossLingualLMConfig)
    with open_dict(task_cfg):
        for key in ("lg_sampling_factor", "epoch_size", "max_len", "tokens_per_sample", "context_size"):
            if key in saved_task and saved_task[key] is not None:
                task_cfg[key] = saved_task[key]
        task_cfg._name = "xlm_cross_lingual_lm"
        task_cfg.langs = ",".join(langs)
        task_cfg.data = data
        task_cfg.clm_steps = lang
        task_cfg.mlm_steps = ""
        task_cfg.train_subset = "<none>"  # every split, train included, is read as an evaluation stream
        if tokens_per_sample is not None:
            task_cfg.tokens_per_sample = int(tokens_per_sample)
    cfg = OmegaConf.create(saved_cfg)
    with open_dict(cfg):
        cfg.task = task_cfg  # its ${common.seed}-style fields resolve against the saved config
    return cfg


class CLMEvaluator:
    """The model of CHECKPOINT inside task xlm_cross_lingual_lm --clm-steps LANG, ready to evaluate splits."""

    def __init__(
        self, checkpoint: str, data: str, lang: str, tokens_per_sample: Optional[int] = None, cpu: bool = False
    ):
        from fairseq import tasks

        from .criterions.xlm_lm_loss import XLMLMLoss

        if not os.path.isdir(data):
            raise XLMUserError(f"data-bin folder {data} not found")
        state = _load_state(checkpoint)
        self.cfg = _clm_config(state["cfg"], data, lang, tokens_per_sample, checkpoint)
        self.lang = lang
        self.task = tasks.setup_task(self.cfg.task)
        self.model = self.task.build_model(self.cfg.model, from_checkpoint=True)
        try:
            self.model.load_state_dict(state["model"], strict=True, model_cfg=self.cfg.model)
        except RuntimeError as e:
            raise XLMUserError(
                f"{checkpoint}: its weights do not fit the model of its own config ({str(e).splitlines()[0]})"
            ) from None
        self.model.eval()
        self.use_cuda = torch.cuda.is_available() and not cpu
        if self.use_cuda:
            self.model.cuda()
        self.criterion = XLMLMLoss(None, self.task)
        self.tokens_per_sample = int(self.cfg.task.tokens_per_sample)
        self.step = f"{lang}_clm"
        history = state.get("optimizer_history") or [{}]
        self.num_updates = history[-1].get("num_updates")

    def evaluate(self, split: str) -> Dict[str, float]:
        """{'ppl', 'acc', 'loss' (nats per token), 'predicted' (tokens), 'windows'} of one split."""
        from fairseq import utils
        from fairseq.logging import metrics

        self.task.load_dataset(split, combine=False, epoch=1)
        dataset = self.task.dataset(split)
        itr = self.task.get_batch_iterator(
            dataset=dataset, max_sentences=1, seed=int(self.cfg.common.seed), num_workers=0
        ).next_epoch_itr(shuffle=False)
        logs: List[dict] = []
        with torch.no_grad():
            for sample in itr:
                if self.use_cuda:
                    sample = utils.move_to_cuda(sample)
                _, _, log = self.task.valid_step(sample, self.model, self.criterion)
                logs.append(log)
        with metrics.aggregate(new_root=True) as agg:
            self.task.reduce_metrics(logs, self.criterion)
            values = agg.get_smoothed_values()
        n = int(sum(log.get(f"_{self.step}_n", 0) for log in logs))
        loss = sum(log.get(f"_{self.step}_loss", 0.0) for log in logs)
        return {
            "ppl": float(values.get(f"{self.step}_ppl", float("nan"))),
            "acc": float(values.get(f"{self.step}_acc", float("nan"))),
            "loss": float(loss) / n if n else float("nan"),
            "predicted": n,
            "windows": len(logs),
        }


def evaluate_clm(
    checkpoint: str,
    data: str,
    lang: str,
    splits=("valid", "test"),
    tokens_per_sample: Optional[int] = None,
    cpu: bool = False,
) -> Dict[str, Dict[str, float]]:
    """{split: {'ppl', 'acc', 'loss', 'predicted', 'windows'}}: CLM perplexity of `lang` (as `evaluate_clm`)."""
    return _evaluate(CLMEvaluator(checkpoint, data, lang, tokens_per_sample, cpu), splits)


def _evaluate(evaluator: CLMEvaluator, splits) -> Dict[str, Dict[str, float]]:
    return {split: evaluator.evaluate(split) for split in splits}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xlm-eval-lm",
        description="CLM perplexity of one language on its valid/test streams (paper Table 4), computed as "
        "fairseq-train's valid_{lang}_clm_ppl.",
    )
    p.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a checkpoint of an xlm_fairseq task (e.g. checkpoint_best.pt)"
    )
    p.add_argument("data", metavar="DATA", help="data-bin folder with dict.txt and {split}.{lang}")
    p.add_argument("--lang", required=True, help="language to evaluate (one of the checkpoint's --langs)")
    p.add_argument("--split", default="valid,test", help="comma-separated splits (default valid,test)")
    p.add_argument(
        "--tokens-per-sample", type=int, default=None, help="stream window (XLM's --bptt); default: the checkpoint's"
    )
    p.add_argument("--cpu", action="store_true", help="do not use a GPU even if there is one")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("-v", "--verbose", action="store_true", help="show fairseq's log")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        force=True,
    )
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    splits = [s.strip() for s in args.split.split(",") if s.strip()]
    try:
        if not splits:
            raise XLMUserError("--split: give at least one split, e.g. --split valid,test")
        if args.tokens_per_sample is not None and args.tokens_per_sample < 2:
            raise XLMUserError(f"--tokens-per-sample {args.tokens_per_sample}: must be at least 2")
        import xlm_fairseq  # noqa: F401  (registers the task, model and criterion)

        evaluator = CLMEvaluator(args.checkpoint, args.data, args.lang, args.tokens_per_sample, args.cpu)
        results = _evaluate(evaluator, splits)
    except XLMUserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "checkpoint": args.checkpoint,
                    "lang": args.lang,
                    "num_updates": evaluator.num_updates,
                    "tokens_per_sample": evaluator.tokens_per_sample,
                    "splits": results,
                }
            )
        )
        return 0
    print(
        f"{args.checkpoint} ({evaluator.num_updates} updates): {args.lang} CLM perplexity, windows of "
        f"{evaluator.tokens_per_sample} tokens"
    )
    print("split   ppl         acc     predicted  windows")
    for split, r in results.items():
        ppl = f"{r['ppl']:.4f}" if math.isfinite(r["ppl"]) else str(r["ppl"])
        print(f"{split:<7} {ppl:<11} {r['acc']:<7.2f} {r['predicted']:<10d} {r['windows']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
