"""Reading `.pth` files without running arbitrary pickled code.

Original XLM checkpoints pickle, besides tensors and plain containers, a numpy array (`params.mask_scores`)
and a FloatTensor (`params.pred_probs`). torch's weights-only unpickler loads them once exactly the numpy
types that rebuild an array are allowed — for this call only (a context manager, never the global list).
numpy 1.x pickles (the released 2019 files) name the module `numpy.core.multiarray`, numpy 2 names it
`numpy._core.multiarray`: both spellings are allowed. Anything else is refused with one line that names
the type and offers --trust-checkpoint (full unpickling, for a file the user trusts). The file is opened by
the plugin's one loader (checkpoints.py), so its errors read as every other checkpoint's.
"""

from typing import Any, List

import numpy as np

from ..checkpoints import read_torch_file

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


TRUST_HINT = "if you trust where this file comes from, pass --trust-checkpoint"


def load_pth(path: str, trust: bool = False) -> Any:
    """An original XLM `.pth` (or transformers' pytorch_model.bin) onto the CPU, through the plugin's one
    loader (checkpoints.read_torch_file): a missing, refused, truncated or corrupt file is a CheckpointError
    (one line naming the file)."""
    return read_torch_file(path, "", numpy_safe_globals(), trust, TRUST_HINT)
