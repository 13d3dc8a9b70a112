"""User-facing errors: one line naming the flag, file or language at fault and what to do.

fairseq's command lines let exceptions reach the top level; for our own user errors (and only those) the
plugin's excepthook prints `error: <message>` instead of a traceback and exits with status 2."""
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


def install_excepthook() -> None:
    previous = sys.excepthook
    if getattr(previous, "_xlm_fairseq", False):
        return

    def hook(exc_type, exc, tb):
        user_error = _find_user_error(exc)
        if user_error is not None:
            sys.stderr.write(f"error: {user_error}\n")
            sys.stderr.flush()
            sys.exit(2)
        previous(exc_type, exc, tb)

    hook._xlm_fairseq = True
    sys.excepthook = hook
