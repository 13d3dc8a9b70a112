"""Reading `.pth` files without running arbitrary pickled code.

Original XLM checkpoints pickle, besides tensors and plain containers, a numpy array (`params.mask_scores`)
and a FloatTensor (`params.pred_probs`). torch's weights-only unpickler loads them once exactly the numpy
types that rebuild an array are allowed — for this call only (a context manager, never the global list).
numpy 1.x pickles (the released 2019 files) name the module `numpy.core.multiarray`, numpy 2 names it
`numpy._core.multiarray`: both spellings are allowed. Anything else is refused with one line that names
the type and offers --trust-checkpoint (full unpickling, for a file the user trusts).
"""

import os
import re
from typing import Any, List

import numpy as np
import torch

from . import ConvertError

_DTYPE_CLASSES = [
    "Float64DType",
    "Float32DType",
    "Float16DType",
    "Int64DType",
    "Int32DType",
    "Int16DType",
    "Int8DType",
    "UInt64DType",
    "UInt32DType",
    "UInt16DType",
    "UInt8DType",
    "BoolDType",
]


def numpy_safe_globals() -> List[Any]:
    """The numpy callables and classes that rebuild arrays and dtypes (and nothing else)."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray

    allowed: List[Any] = [np.ndarray, np.dtype]
    for name in ("_reconstruct", "scalar"):
        fn = getattr(multiarray, name)
        allowed += [fn, (fn, f"numpy._core.multiarray.{name}"), (fn, f"numpy.core.multiarray.{name}")]
    dtypes = getattr(np, "dtypes", None)
    for name in _DTYPE_CLASSES:
        cls = getattr(dtypes, name, None)
        if cls is not None:
            allowed += [cls, (cls, f"numpy.dtypes.{name}")]
    return allowed


_REFUSED = [re.compile(r"GLOBAL (\S+) was not an allowed global"), re.compile(r"but got <class '([^']+)'>")]


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__


def load_pth(path: str, trust: bool = False, what: str = "checkpoint") -> Any:
    """torch.load a file onto the CPU; ConvertError for a missing, refused, truncated or corrupt file."""
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise ConvertError(f"{path}: empty file (an interrupted download?)")
    try:
        if trust:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, KeyError, struct.error...
        if not trust:
            for pattern in _REFUSED:
                m = pattern.search(str(e))
                if m and m.group(1).endswith("data.dictionary.Dictionary"):
                    raise ConvertError(
                        f"{path}: XLM binarised data (it pickles {m.group(1)}), not a model checkpoint"
                    ) from None
                if m:
                    raise ConvertError(
                        f"{path}: the file pickles `{m.group(1)}`, which safe (weights-only) loading refuses; "
                        "if you trust where this file comes from, pass --trust-checkpoint"
                    ) from None
        raise ConvertError(
            f"{path}: cannot be read as a PyTorch {what}; it is truncated or corrupt ({_one_line(e)})"
        ) from None
