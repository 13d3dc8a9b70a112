"""Every fairseq command line the project shows a user — in README.md, docs/ and examples/*/README.md, and those
the examples' run.sh scripts build — parses with fairseq's own parser once the plugin is loaded (an unknown or
misspelt flag fails; fairseq's --help never lists task flags, so parse for real), and every training command
of pretraining or translation keeps the original's gradient clipping (facebookresearch/XLM `train.py`:
--clip_grad_norm 5; its XNLI fine-tuning, `xlm/evaluation/xnli.py`, clips nothing)."""

import glob
import json
import os
import re
import shlex
import stat
import sys

import pytest
from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from .helpers_cli import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(ROOT, "xlm_fairseq")
PARSERS = {
    "fairseq-train": options.get_training_parser,
    "fairseq-generate": options.get_generation_parser,
    "fairseq-validate": options.get_validation_parser,
    "fairseq-interactive": options.get_interactive_generation_parser,
}
DOCS = (
    ["README.md"]
    + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    + sorted(glob.glob(os.path.join(ROOT, "examples", "*", "README.md")))
)
SCRIPT_STAGES = {  # script -> the invocations that run fairseq (data stages download corpora: not run here)
    "examples/unmt/run.sh": [(["en", "fr", s], {}) for s in ("mlm", "unmt", "test")],
    "examples/supervised-mt/run.sh": [
        (["mlm"], {}),
        (["mt", "ro-en"], {}),
        (["mt", "ro-en,en-ro"], {"BT": "1"}),
        (["test"], {}),
    ],
    "examples/xnli15/run.sh": [([s], {}) for s in ("mlm", "tlm", "xnli")],
    "examples/lowres-lm/run.sh": [([], {"DATA_BIN": "{fake_bin}"})],
}


def markdown_commands(path):
    """fairseq commands of the fenced code blocks of a markdown file (continuation lines joined); commands
    that elide flags ('...', '…') are shown as sketches and skipped."""
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    found = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip().lstrip("| ").strip()
            words = line.split()
            if not words or words[0] not in PARSERS or "..." in line or "…" in line:
                continue
            line = re.sub(r"\$\{?(\w+)\}?", "X", line).split("|")[0].split(" < ")[0].split(" > ")[0]
            line = re.sub(r"\[[^\]]*\]", "", line)  # [--optional flags] of a usage line
            found.append(shlex.split(line))
    return found


SHIM = """#!{python}
import json, os, sys
with open(os.environ["RECORD"], "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if "--save-dir" in args:
    os.makedirs(args[args.index("--save-dir") + 1], exist_ok=True)
if os.path.basename(sys.argv[0]) == "xlm-eval-lm":
    print(json.dumps({{"splits": {{"valid": {{"ppl": 1.0}}, "test": {{"ppl": 1.0}}}}, "num_updates": 1}}))
"""


def script_commands(tmp_path, script, invocations):
    """Run the script's fairseq stages with fairseq-*/xlm-* replaced by a recorder; return the recorded argv."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name in list(PARSERS) + ["xlm-eval-lm", "xlm-preprocess"]:
        path = bindir / name
        path.write_text(SHIM.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    fake_bin = tmp_path / "data-bin"
    fake_bin.mkdir(exist_ok=True)
    for name in ("train.cs", "valid.cs", "test.cs", "train.en", "valid.en", "train.sk", "valid.sk"):
        (fake_bin / f"{name}.bin").write_bytes(b"")
    record = tmp_path / "record.jsonl"
    record.write_text("")
    for args, env in invocations:
        env = {k: v.format(fake_bin=fake_bin) for k, v in env.items()}
        full_env = dict(
            os.environ,
            PATH=f"{bindir}:{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
            RECORD=str(record),
            WORK=str(tmp_path / "work"),
            OUT=str(tmp_path / "out"),
            **env,
        )
        run(["bash", os.path.join(ROOT, script), *args], env=full_env, cwd=tmp_path)
    return [json.loads(line) for line in record.read_text().splitlines()]


def check_clipping(argv, parsed, where):
    if argv[0] == "fairseq-train" and parsed.task != "xlm_classification":
        assert parsed.clip_norm == 5, f"{where}: `{' '.join(argv[:6])} ...` lacks --clip-norm 5"


def parse(argv, where):
    program, args = argv[0], list(argv[1:])
    if "--user-dir" in args:  # the docs' relative xlm_fairseq, or a script's installed path: this checkout
        args[args.index("--user-dir") + 1] = USER_DIR
    try:
        parsed = options.parse_args_and_arch(PARSERS[program](), args)
        convert_namespace_to_omegaconf(parsed)
    except SystemExit:
        pytest.fail(f"{where}: fairseq's parser rejects `{program} {' '.join(args)}`")
    return parsed


@pytest.mark.parametrize("path", DOCS)
def test_documented_commands_parse(path):
    commands = markdown_commands(path)
    for argv in commands:
        check_clipping(argv, parse(argv, path), path)


def test_readme_shows_commands():
    assert len(markdown_commands("README.md")) >= 4


@pytest.mark.parametrize("script", sorted(SCRIPT_STAGES))
def test_example_scripts_build_commands_that_parse(script, tmp_path):
    recorded = script_commands(tmp_path, script, SCRIPT_STAGES[script])
    fairseq_commands = [argv for argv in recorded if argv[0] in PARSERS]
    assert fairseq_commands, f"{script} ran no fairseq command"
    for argv in fairseq_commands:
        check_clipping(argv, parse(argv, script), script)
