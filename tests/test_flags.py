"""`xlm-flags TASK` lists every flag fairseq's own parser adds for the task, its criterion, the model and
xlm_adam, with help and defaults; docs/flags.md is its output; `fairseq-train --task xlm_... --help` ends with
the same listing."""

import argparse
import os
import re
import subprocess

import pytest

from xlm_fairseq import cli_hooks, flags

from .helpers_cli import BIN, ENV, USER_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "flags.md")


def fairseq_adds(task: str) -> set:
    """The flags fairseq-train's own parser adds once it knows --task/--arch/--criterion/--optimizer
    (fairseq/options.py: parse_args_and_arch), less those of fairseq's components (scoring, lr scheduler)."""
    from fairseq import options
    from fairseq.dataclass.utils import gen_parser_from_dataclass
    from fairseq.registry import REGISTRIES

    criterion = flags.tasks()[task].criterion_names[0]
    argv = ["DATA", "--task", task, "--arch", "xlm_tiny", "--criterion", criterion, "--optimizer", "xlm_adam"]
    parser = options.get_training_parser()
    before = {o for a in parser._actions for o in a.option_strings}
    args = options.parse_args_and_arch(parser, argv)
    added = {o for a in parser._actions for o in a.option_strings} - before
    for kind, registry in REGISTRIES.items():
        choice = getattr(args, kind, None)
        cls = registry["registry"].get(choice) if choice else None
        if cls is not None and not cls.__module__.startswith("xlm_fairseq."):
            theirs = argparse.ArgumentParser(add_help=False)
            gen_parser_from_dataclass(theirs, registry["dataclass_registry"][choice]())
            added -= {o for a in theirs._actions for o in a.option_strings}
    return added


def entry(text: str, flag: str) -> str:
    """The listing of one flag (its wrapped lines joined)."""
    blocks = re.split(r"\n(?=  -|\S)", text)
    block = next(b for b in blocks if b.startswith(f"  {flag} ") or b.startswith(f"  {flag},"))
    return " ".join(block.split())


@pytest.mark.parametrize("task", ["xlm_cross_lingual_lm", "xlm_tlm", "xlm_unsupervised_mt", "xlm_classification"])
def test_every_flag_fairseq_adds_is_listed_with_its_help_and_default(task, capsys):
    assert flags.main([task]) == 0
    text = capsys.readouterr().out
    listed = set(re.findall(r"(?m)^  (-[-\w]+(?:, -[-\w]+)*)", text))
    listed = {name for names in listed for name in names.split(", ")}
    missing = fairseq_adds(task) - listed
    assert not missing, f"xlm-flags {task} does not list {sorted(missing)}"
    assert f"--criterion {flags.tasks()[task].criterion_names[0]}" in text
    langs = entry(text, "--langs")
    assert langs.startswith("--langs STR ") and "languages" in langs and langs.endswith("(default: none)")
    assert re.search(r"(?m)^  xlm_mlm_17_1280 +1280 +16 +16 .*True$", text)  # the architecture table


def test_task_flags_with_defaults(capsys):
    assert flags.main(["xlm_tlm"]) == 0
    text = capsys.readouterr().out
    assert entry(text, "--mlm-steps").startswith("--mlm-steps STR masked LM steps")
    assert entry(text, "--lambda-mlm") == "--lambda-mlm STR MLM/TLM loss weight or schedule (default: 1)"
    assert entry(text, "--word-pred") == "--word-pred FLOAT fraction of tokens to predict (default: 0.15)"
    assert entry(text, "--tokens-per-sample").endswith("(default: 256)")
    assert entry(text, "--adam-betas").endswith("(default: (0.9, 0.999))")
    assert entry(text, "--no-lang-emb").startswith("--no-lang-emb no language embeddings")


def test_docs_flags_md_is_up_to_date():
    with open(DOC, encoding="utf-8") as f:
        written = f.read()
    assert written == flags.markdown(), f"docs/flags.md is out of date: run `{flags.DOC_COMMAND}`"


def test_unknown_task_and_help(capsys):
    assert flags.main(["translation"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TASK 'translation'" in err[0] and "xlm_tlm" in err[0]
    with pytest.raises(SystemExit) as e:
        flags.main(["--help"])
    assert e.value.code == 0 and "xlm-flags" in capsys.readouterr().out
    assert flags.main([]) == 0 and "xlm_unsupervised_mt" in capsys.readouterr().out


def test_which_command_lines_get_the_listing_after_fairseq_help():
    assert cli_hooks.fairseq_command(["/venv/bin/fairseq-train"])
    assert cli_hooks.fairseq_command(["/venv/lib/site-packages/fairseq_cli/generate.py"])
    assert not cli_hooks.fairseq_command(["/venv/bin/fairseq-preprocess"])
    assert not cli_hooks.fairseq_command(["/usr/bin/pytest"])
    assert cli_hooks.requested_task(["x", "--task=xlm_tlm"]) == "xlm_tlm"
    assert cli_hooks.requested_task(["x", "--task", "xlm_tlm", "-h"]) == "xlm_tlm"
    assert not cli_hooks.install_help_epilogue(["fairseq-train", "--task", "translation", "--help"])
    assert not cli_hooks.install_help_epilogue(["fairseq-train", "--task", "xlm_tlm", "DATA"])


def test_fairseq_train_help_and_the_console_script():
    """The real commands, side by side."""
    commands = {
        "train": ["fairseq-train", "--user-dir", USER_DIR, "--task", "xlm_tlm", "--help"],
        "translation": ["fairseq-train", "--user-dir", USER_DIR, "--task", "translation", "--help"],
        "script": ["xlm-flags", "xlm_unsupervised_mt"],
    }
    procs = {
        name: subprocess.Popen(
            [os.path.join(BIN, cmd[0])] + cmd[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
        )
        for name, cmd in commands.items()
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, (name, stderr[-3000:])
        out[name] = stdout
    fairseq_help, ours = out["train"].split("Flags that xlm_fairseq adds for --task xlm_tlm", 1)
    assert fairseq_help.startswith("usage: fairseq-train") and "--mlm-steps" not in fairseq_help
    assert "--mlm-steps STR" in ours and "--lambda-mlm STR" in ours and "--arch ARCH" in ours
    assert "xlm_fairseq" not in out["translation"] and "--mlm-steps" not in out["translation"]
    assert out["script"] == flags.task_help("xlm_unsupervised_mt")
