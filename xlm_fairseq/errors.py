"""User-facing errors: one line naming the flag, file or language at fault and what to do.

fairseq's command lines let exceptions reach the top level; for our own user errors the plugin's excepthook
prints `error: <message>` instead of a traceback and exits with status 2. It does the same for a checkpoint
that fairseq itself cannot read (a truncated or corrupt --restore-file, checkpoint_last.pt or --path): torch's
own message would end with advice to unpickle the file without weights-only checks, wrong for a broken file."""

import re
import sys


class XLMUserError(ValueError):
    """A mistake a user can make (bad flag, missing file, mismatched data)."""


class ConfigError(XLMUserError):
    pass


class DataError(XLMUserError):
    pass


class InputError(XLMUserError):
    """A bad argument of a Python entry point (the hub interface) or a bad input line."""


def _find_user_error(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, XLMUserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _unreadable_checkpoint(exc):
    """(path, why) when exc (or an exception it chains) was raised while fairseq's checkpoint_utils read a
    checkpoint file, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if (
                frame.f_code.co_name == "load_checkpoint_to_cpu"
                and frame.f_globals.get("__name__") == "fairseq.checkpoint_utils"
            ):
                text = str(exc)
                refused = re.search(r"GLOBAL (\S+) was not an allowed global", text)
                why = (
                    f"it pickles {refused.group(1)}, which weights-only loading refuses"
                    if refused
                    else f"{type(exc).__name__}: {(text.strip().splitlines() or [''])[0][:160]}"
                )
                return frame.f_locals.get("path"), why
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
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
    hint = "--task xlm_unsupervised_mt --langs en,fr"
    if "--path" in argv[:-1]:
        try:
            from .checkpoints import config_value, read_config

            cfg = read_config(argv[argv.index("--path") + 1].split(":")[0], "--path")
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
        user_error = _find_user_error(exc)
        unreadable = None if user_error is not None else _unreadable_checkpoint(exc)
        if unreadable is not None:
            path, why = unreadable
            user_error = (
                f"{path}: not a readable checkpoint ({why}); it is truncated, corrupt or not a fairseq "
                "checkpoint: pass another file (--restore-file, --finetune-from-model, --path), or delete "
                "it to start afresh. Nothing was written"
            )
        if user_error is None and unreadable is None and _missing_task(exc):
            user_error = _missing_task_message(sys.argv)
        if user_error is not None:
            sys.stderr.write(f"error: {user_error}\n")
            sys.stderr.flush()
            sys.exit(2)
        previous(exc_type, exc, tb)

    hook._xlm_fairseq = True
    sys.excepthook = hook
