"""What the plugin adds to fairseq's own command lines (fairseq-train, -generate, -validate, -interactive) when
they import it as --user-dir, without changing fairseq:

- an excepthook: an XLMUserError raised anywhere, a checkpoint fairseq's loader cannot read (--restore-file,
  --finetune-from-model, --path, the run's own checkpoint_last.pt) and a missing --task end with one line
  `error: ...` and exit status 2 instead of a traceback. The checkpoint message is the one checkpoints.py
  gives (errors.unreadable_checkpoint), so torch's advice to load the file with weights_only=False never
  reaches the user.
- `--help`: fairseq prints its help at its first parse, before the task, model and criterion add their flags
  (fairseq/options.py: parse_args_and_arch), and the plugin has no hook between that parse and the help. When
  `--task` names one of our tasks, the flags it adds are printed after fairseq's help, as `xlm-flags TASK`
  prints them (flags.py).

Both are installed by the package's __init__; this module sits above errors.py and checkpoints.py."""

import atexit
import os
import sys

from .errors import CheckpointError, XLMUserError, unreadable_checkpoint, where

FAIRSEQ_COMMANDS = ("train", "generate", "validate", "interactive", "eval_lm")
FILE_FLAGS = ("--path", "--restore-file", "--finetune-from-model", "--continue-once")


# ------------------------------------------------------------------------------------------------ errors
def _find_user_error(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, XLMUserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _raised_in(exc, function: str):
    """The frame locals of `function` of fairseq.checkpoint_utils when exc (or an exception it chains) passed
    through it, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if frame.f_code.co_name == function and frame.f_globals.get("__name__") == "fairseq.checkpoint_utils":
                return exc, frame.f_locals
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return None


def _flag_of(path: str, argv) -> str:
    """The command-line flag that named `path` (fairseq's loader does not say)."""
    target = os.path.abspath(str(path))
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag not in FILE_FLAGS:
            continue
        value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        if any(os.path.abspath(v) == target for v in value.split(os.pathsep) if v):
            return flag
    return "--restore-file" if os.path.basename(target).startswith("checkpoint_last") else "checkpoint"


def checkpoint_error(exc, argv):
    """The CheckpointError for a file fairseq's own loader could not read or find, else None."""
    found = _raised_in(exc, "load_checkpoint_to_cpu")
    if found is not None:
        cause, local = found
        path = local.get("path")
        return unreadable_checkpoint(path, _flag_of(path, argv), cause)
    found = _raised_in(exc, "load_model_ensemble_and_task")
    if found is not None and isinstance(found[0], OSError) and str(found[0]).startswith("Model file not found"):
        path = found[1].get("filename")
        return CheckpointError(f"{where(_flag_of(path, argv), path)}: no such file")
    return None


def _missing_task(exc) -> bool:
    """fairseq-validate / fairseq-generate / fairseq-interactive without --task: fairseq's parser looks up the
    task None (fairseq/options.py: parse_args_and_arch) and raises KeyError(None)."""
    if not (isinstance(exc, KeyError) and exc.args == (None,)):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "parse_args_and_arch":
            return True
        tb = tb.tb_next
    return False


def _missing_task_message(argv) -> str:
    """The line for a command without --task, naming the task and languages of its --path checkpoint if readable."""
    from .checkpoints import config_value, read_config

    hint = "--task xlm_unsupervised_mt --langs en,fr"
    if "--path" in argv[:-1]:
        try:
            cfg = read_config(argv[argv.index("--path") + 1].split(os.pathsep)[0], "--path")
            task, langs = config_value(cfg, "task", "_name"), config_value(cfg, "task", "langs")
            if task:
                hint = f"--task {task}" + (f" --langs {langs}" if langs else "")
        except Exception:  # the checkpoint's own problem is reported once --task is given
            pass
    return f"no --task given: pass the task the model was trained with, e.g. {hint}"


def install_excepthook() -> None:
    previous = sys.excepthook
    if getattr(previous, "_xlm_fairseq", False):
        return

    def hook(exc_type, exc, tb):
        user_error = _find_user_error(exc) or checkpoint_error(exc, sys.argv)
        if user_error is None and _missing_task(exc):
            user_error = _missing_task_message(sys.argv)
        if user_error is not None:
            sys.stderr.write(f"error: {user_error}\n")
            sys.stderr.flush()
            sys.exit(2)
        previous(exc_type, exc, tb)

    hook._xlm_fairseq = True
    sys.excepthook = hook


# ------------------------------------------------------------------------------------------------ --help
def fairseq_command(argv) -> bool:
    """Whether this process is one of fairseq's command lines that parse task flags (console script or
    `python -m fairseq_cli.X`)."""
    name = os.path.basename(argv[0]) if argv else ""
    if name.startswith("fairseq-"):
        return name[len("fairseq-") :].replace("-", "_") in FAIRSEQ_COMMANDS
    return os.path.basename(os.path.dirname(argv[0])) == "fairseq_cli" and name[:-3] in FAIRSEQ_COMMANDS


def requested_task(argv):
    for i, arg in enumerate(argv):
        if arg == "--task" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--task="):
            return arg[len("--task=") :]
    return None


def install_help_epilogue(argv=None) -> bool:
    """Under `fairseq-X --user-dir xlm_fairseq --task xlm_... --help`, print the task's flags when fairseq has
    printed its help and exits. Returns whether it was installed."""
    argv = sys.argv if argv is None else argv
    if not fairseq_command(argv) or not any(a in ("-h", "--help") for a in argv[1:]):
        return False
    task = requested_task(argv)
    if not task or not task.startswith("xlm_"):
        return False

    def epilogue():
        from . import flags

        try:
            text = flags.task_help(task)
        except XLMUserError:  # not one of our tasks: fairseq has said so
            return
        sys.stdout.write(f"\n{text}")
        sys.stdout.flush()

    atexit.register(epilogue)
    return True


def install() -> None:
    install_excepthook()
    install_help_epilogue()
