"""User-facing errors: one line naming the flag, file or language at fault and what to do.

The bottom layer of the package: it imports nothing from xlm_fairseq, and any module may import it. Our own
command lines catch XLMUserError and print `error: <message>`; under fairseq's command lines the plugin's
excepthook (cli_hooks.py) does the same, without a traceback.

The message for a checkpoint file that cannot be read is composed here, once, for the loader of checkpoints.py
and for the excepthook (which sees the files fairseq's own loader reads): whatever the entry point, a missing,
truncated or foreign file gives the same line, and never torch's advice to load it with weights_only=False
(which would run any code the file pickles)."""

import codecs
import os
import re


class XLMUserError(ValueError):
    """A mistake a user can make (bad flag, missing file, mismatched data)."""


class ConfigError(XLMUserError):
    pass


class DataError(XLMUserError):
    pass


class InputError(XLMUserError):
    """A bad argument of a Python entry point (the hub interface) or a bad input line."""


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used: missing, empty, unreadable (truncated, corrupt, another kind of file),
    or of another model or languages."""


def where(flag: str, path) -> str:
    """How a message names a file: `--restore-file PATH`, `checkpoint_file PATH`, or PATH alone."""
    return f"{flag} {path}" if flag else str(path)


_REFUSED = (re.compile(r"GLOBAL (\S+) was not an allowed global"), re.compile(r"but got <class '([^']+)'>"))
NOT_OURS = (
    "it is not a checkpoint of fairseq or xlm_fairseq (original XLM .pth files go through "
    "`xlm-convert from-original` first)"
)


def _head(path: str, n: int = 64) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words: torch's first sentence, never its weights-only advice."""
    text = str(exc)
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", text, re.S)
    if "Weights only load failed" in text:
        text = detail.group(1) if detail else ""
    first = (text.strip().splitlines() or [""])[0].split(". ")[0].strip().rstrip(".")
    if not first or "weights_only" in first:
        return type(exc).__name__
    return f"{type(exc).__name__}: {first[:160]}"


def unreadable_checkpoint(path: str, flag: str, exc: BaseException, refused_hint: str = NOT_OURS, torch_file=True):
    """The CheckpointError for a file whose loading raised `exc`. `refused_hint` says what to do with a file
    that pickles a type weights-only loading refuses; `torch_file`: the file should be one torch.save wrote (its
    first bytes tell a text file or another format from a truncated checkpoint)."""
    label = where(flag, path)
    text = str(exc)
    for pattern in _REFUSED:
        refused = pattern.search(text)
        if refused:
            name = refused.group(1)
            if name.endswith("data.dictionary.Dictionary"):
                return CheckpointError(f"{label}: XLM binarised data (it pickles {name}), not a model checkpoint")
            return CheckpointError(
                f"{label}: not a readable checkpoint (it pickles `{name}`, which safe, weights-only, loading "
                f"refuses): {refused_hint}"
            )
    head = _head(path)
    if torch_file and head and not head.startswith((b"PK\x03\x04", b"\x80")):  # neither zip nor legacy pickle
        try:
            text_file = "\x00" not in codecs.getincrementaldecoder("utf-8")().decode(head)
        except UnicodeDecodeError:
            text_file = False
        kind = "it is a text file" if text_file else f"not a file written by torch.save: it starts with {head[:8]!r}"
        return CheckpointError(f"{label}: not a readable checkpoint ({kind}): pass the checkpoint file (.pt)")
    afresh = " (or delete it to start this run afresh)" if os.path.basename(str(path)) == "checkpoint_last.pt" else ""
    return CheckpointError(
        f"{label}: not a readable checkpoint ({_reason(exc)}): the file is truncated or corrupt (an interrupted "
        f"save, copy or download?); pass another file{afresh}"
    )
