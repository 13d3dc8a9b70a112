"""`xlm-flags TASK` (or `python -m xlm_fairseq.flags TASK`): every flag the plugin adds to fairseq's command
lines for one task: the task's own, its criterion's, the `xlm_transformer` model's with the defaults of each
architecture, and the optional `xlm_adam` optimizer and `xlm_moses` tokenizer, with help text and defaults.

fairseq adds these flags only after its first parse of the command line (fairseq/options.py:
parse_args_and_arch), and `--help` is answered at that first parse, so `fairseq-train --task xlm_tlm --help`
alone would list none of them; cli_hooks.py prints this listing after fairseq's help.

The flags are read from the registries fairseq parses them from (each component's dataclass, through
fairseq/dataclass/utils.py: gen_parser_from_dataclass, as its add_args does), so this listing cannot drift
from what the command line accepts. docs/flags.md is `xlm-flags --markdown` (a test fails when it is stale)."""

import argparse
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .errors import XLMUserError

MODEL = "xlm_transformer"
OPTIONAL = (("optimizer", "xlm_adam", "fairseq-train --optimizer xlm_adam"),)
INFERENCE = (("tokenizer", "xlm_moses", "fairseq-interactive / fairseq-generate --tokenizer xlm_moses"),)
DOC_COMMAND = "xlm-flags --markdown > docs/flags.md"
WIDTH = 100
METAVARS = {int: "INT", float: "FLOAT", str: "STR"}


@dataclass
class Flag:
    names: List[str]  # ['--source-lang', '-s'], or ['DATA'] for the positional argument
    metavar: str
    default: object
    help: str
    switch: bool  # store_true / store_false (and the positional argument): no default shown

    @property
    def default_text(self) -> str:
        if self.switch:
            return ""
        if self.default is None or self.default == "":
            return "none"
        return str(self.default)


@dataclass
class Group:
    title: str
    note: str = ""
    flags: List[Flag] = field(default_factory=list)
    table: Optional[Tuple[List[str], List[List[str]]]] = None  # (header, rows)


# ---------------------------------------------------------------------------------------------- registries
def _registries() -> argparse.Namespace:
    from fairseq import models
    from fairseq.registry import REGISTRIES
    from fairseq.tasks import TASK_DATACLASS_REGISTRY, TASK_REGISTRY

    return argparse.Namespace(
        tasks=TASK_REGISTRY,
        task_configs=TASK_DATACLASS_REGISTRY,
        model_configs=models.MODEL_DATACLASS_REGISTRY,
        arch_models=models.ARCH_MODEL_NAME_REGISTRY,
        arch_configs=models.ARCH_CONFIG_REGISTRY,
        components=REGISTRIES,
    )


def tasks() -> Dict[str, type]:
    """Our registered tasks, by name."""
    registry = _registries().tasks
    return {name: cls for name, cls in sorted(registry.items()) if cls.__module__.startswith("xlm_fairseq.")}


def _summary(cls) -> str:
    """The first sentence of the module docstring of a task (`Task xlm_tlm: MLM + TLM (paper §3.3): ...`)."""
    doc = (sys.modules[cls.__module__].__doc__ or "").strip()
    first = " ".join(doc.split("\n\n")[0].split())
    return first.split(": ", 1)[1] if first.startswith("Task `") and ": " in first else first


def _check_task(task: str) -> type:
    known = tasks()
    if task not in known:
        raise XLMUserError(f"TASK {task!r}: not a task of xlm_fairseq; choose one of {', '.join(known)}")
    return known[task]


# ------------------------------------------------------------------------------------------------- flags
def _flags(dataclass_instance) -> Dict[str, Flag]:
    """dest -> Flag, as fairseq's add_args builds them."""
    from fairseq.dataclass.utils import gen_parser_from_dataclass

    parser = argparse.ArgumentParser(add_help=False)
    gen_parser_from_dataclass(parser, dataclass_instance)
    found = {}
    for action in parser._actions:
        switch = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        if action.choices:
            metavar = "{" + ",".join(map(str, action.choices)) + "}"
        else:
            metavar = "" if switch else METAVARS.get(action.type, "VALUE")
        names = list(action.option_strings) or [action.dest.upper()]
        help_text = " ".join((action.help or "").split())
        if not action.option_strings:  # the data folder: no default to show
            metavar, help_text, switch = "", f"positional: {help_text}" if help_text else "positional", True
        found[action.dest] = Flag(names, metavar, action.default, help_text, switch)
    return found


def _owner(config_cls: type, name: str) -> type:
    """The class of config_cls's hierarchy whose own definition of field `name` is in effect."""
    for klass in config_cls.__mro__:
        if name in vars(klass).get("__annotations__", {}):
            return klass
    return config_cls


def task_groups(task: str) -> List[Group]:
    """The task's flags, grouped by the config class that defines them (its own first, then those it shares
    with other tasks), and its criterion."""
    cls = _check_task(task)
    task_dataclasses = _registries().task_configs
    config_cls = task_dataclasses[task]
    flags = _flags(config_cls())
    by_owner: Dict[type, List[Flag]] = {}
    for dest, flag in flags.items():
        by_owner.setdefault(_owner(config_cls, dest), []).append(flag)
    groups = []
    for owner in sorted(by_owner, key=config_cls.__mro__.index):  # the task's own class first
        sharing = [t for t in tasks() if t != task and issubclass(task_dataclasses[t], owner)]
        note = f"shared with {', '.join(sharing)}" if sharing else "this task only"
        groups.append(Group(f"--task {task}", note, by_owner[owner]))
    groups += criterion_groups(cls)
    return groups


def criterion_groups(task_cls: type) -> List[Group]:
    registries = _registries().components
    names = list(getattr(task_cls, "criterion_names", ()) or ())
    groups = []
    for i, name in enumerate(names):
        dataclass_cls = registries["criterion"]["dataclass_registry"].get(name)
        flags = list(_flags(dataclass_cls()).values()) if dataclass_cls else []
        usual = "pass it on the command line" if i == 0 else "also accepted"
        note = f"{usual}; {'no flags of its own' if not flags else ''}".rstrip("; ")
        groups.append(Group(f"--criterion {name}", note, flags))
    return groups


def model_group() -> Group:
    """The model's flags with the dataclass defaults, and a table of what each architecture sets."""
    registries = _registries()
    config = registries.model_configs[MODEL]()
    flags = _flags(config)
    archs = [a for a, m in registries.arch_models.items() if m == MODEL and a != MODEL]
    values = {}
    for arch in archs:
        namespace = argparse.Namespace()
        registries.arch_configs[arch](namespace)
        values[arch] = vars(namespace)
    columns = [d for d in flags if any(values[a].get(d, flags[d].default) != flags[d].default for a in archs)]
    rows = [[a] + [str(values[a].get(d)) for d in columns] for a in archs]
    note = (
        "every task; each architecture in the table below sets those values, a flag on the command line "
        "overrides them; the task fills in the flags marked 'set by the task'"
    )
    return Group(f"--arch ARCH (model {MODEL})", note, list(flags.values()), (["--arch"] + columns, rows))


def component_group(kind: str, name: str, usage: str) -> Group:
    registries = _registries().components
    dataclass_cls = registries[kind]["dataclass_registry"][name]
    return Group(f"--{kind} {name}", f"optional: {usage}", list(_flags(dataclass_cls()).values()))


def shared_groups() -> List[Group]:
    return [model_group()] + [component_group(*c) for c in OPTIONAL + INFERENCE]


# ---------------------------------------------------------------------------------------------- rendering
def _text_group(group: Group) -> str:
    lines = textwrap.wrap(
        group.title + (f" ({group.note})" if group.note else ""), WIDTH, subsequent_indent="  ", break_on_hyphens=False
    )
    indent = 30
    for flag in group.flags:
        head = "  " + ", ".join(flag.names) + (f" {flag.metavar}" if flag.metavar else "")
        default = f" (default: {flag.default_text})" if flag.default_text else ""
        body = textwrap.wrap(flag.help + default, WIDTH - indent, break_on_hyphens=False) or [""]
        if len(head) >= indent - 1:
            lines.append(head)
            lines += [" " * indent + b for b in body]
        else:
            lines.append(head.ljust(indent) + body[0])
            lines += [" " * indent + b for b in body[1:]]
    if group.table:
        header, rows = group.table
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        lines.append("")
        for row in [header] + rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def task_help(task: str) -> str:
    """The plain-text listing `xlm-flags TASK` prints."""
    cls = _check_task(task)
    criterion = (getattr(cls, "criterion_names", ()) or ("CRITERION",))[0]
    head = [
        f"Flags that xlm_fairseq adds for --task {task}: {_summary(cls)}",
        f"  fairseq-train DATA --user-dir xlm_fairseq --task {task} --criterion {criterion} --arch ARCH ...",
        "(fairseq's own flags: fairseq-train --help; all tasks: docs/flags.md)",
    ]
    groups = task_groups(task) + shared_groups()
    return "\n".join(head) + "\n\n" + "\n\n".join(_text_group(g) for g in groups) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else ""


def _markdown_group(group: Group, level: str = "###") -> List[str]:
    lines = [f"{level} `{group.title}`" + (f" ({group.note})" if group.note else ""), ""]
    if group.flags:
        lines += ["| flag | default | help |", "|---|---|---|"]
        for flag in group.flags:
            name = ", ".join(f"`{n}`" for n in flag.names) + (f" `{flag.metavar}`" if flag.metavar else "")
            default = f"`{flag.default_text}`" if flag.default_text else ""
            lines.append(f"| {_cell(name)} | {_cell(default)} | {_cell(flag.help)} |")
        lines.append("")
    if group.table:
        header, rows = group.table
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(f"`{c}`" if i == 0 else c for i, c in enumerate(row)) + " |" for row in rows]
        lines.append("")
    return lines


def markdown() -> str:
    """docs/flags.md."""
    lines = [
        "# Flags of xlm_fairseq's tasks",
        "",
        f"<!-- generated by `{DOC_COMMAND}`; a test fails when this file is out of date -->",
        "",
        "The flags the plugin adds to `fairseq-train`, `fairseq-generate`, `fairseq-validate` and "
        "`fairseq-interactive` (with `--user-dir xlm_fairseq`), besides fairseq's own (`fairseq-train --help`). "
        "`xlm-flags TASK` prints one task's, and so does `fairseq-train --user-dir xlm_fairseq --task TASK --help` "
        "after fairseq's list.",
        "",
    ]
    for task, cls in tasks().items():
        lines.append(f"- [`--task {task}`](#task-{task}): {_summary(cls)}")
    lines += ["- [Model, optimizer and tokenizer](#model-optimizer-and-tokenizer) (every task)", ""]
    for task, cls in tasks().items():
        lines += [f"## Task {task}", "", _summary(cls), ""]
        for group in task_groups(task):
            lines += _markdown_group(group)
    lines += ["## Model, optimizer and tokenizer", ""]
    for group in shared_groups():
        lines += _markdown_group(group)
    return "\n".join(lines).rstrip() + "\n"


def listing() -> str:
    rows = [f"  {task:<24}{_summary(cls)}" for task, cls in tasks().items()]
    return "tasks of xlm_fairseq (xlm-flags TASK lists its flags):\n" + "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------------------------- command
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xlm-flags",
        description="List the flags xlm_fairseq adds to fairseq's command lines for a task (its own, its "
        "criterion's, the model's with each architecture's defaults, the optional optimizer and tokenizer).",
    )
    parser.add_argument("task", nargs="?", metavar="TASK", help="a task, e.g. xlm_tlm (without it: the tasks)")
    parser.add_argument("--markdown", action="store_true", help=f"every task as markdown ({DOC_COMMAND})")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.markdown:
            if args.task:
                raise XLMUserError("--markdown lists every task: leave out TASK")
            sys.stdout.write(markdown())
        elif args.task:
            sys.stdout.write(task_help(args.task))
        else:
            sys.stdout.write(listing())
    except XLMUserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
