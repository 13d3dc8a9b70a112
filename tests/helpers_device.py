"""Seeing on a CPU what a GPU would do: the host reading values back from the device, and tensors created on a
default device instead of the model's.

- ReadBacks records every operation that makes the host wait for the device, with the line of this project (or of
  fairseq) that asked for it: a tensor turned into Python values (`.tolist()`, `.item()`, `int()`, `float()`,
  `bool()`, `.numpy()`, `.cpu()`, `.to("cpu")`) and the operators whose result size depends on values (`nonzero`,
  `masked_select`, indexing with a boolean mask). Inside a training or validation step every tensor is on the model's
  device on a GPU (fairseq moves the whole batch there), so each of these is a wait; host-side values are Python
  numbers, made by the collaters before the step. Code that holds host tensors too (the hub's methods: the ids of
  encode(), the collated batch before it moves) is recorded with ReadBacks(model): then only tensors computed from
  the model's parameters count, as on a GPU only those would be there.
- on_meta_default_device runs code with torch's default device set to `meta` while the model and the batches are
  real CPU tensors: a factory without a device (`torch.arange(n)`, `torch.tensor(...)`, however it is spelled or
  imported) makes a meta tensor, which fails where it meets a real one or, in indexing, gives values that differ
  from the run without it, so tests run the step both ways and compare."""

import os
import traceback
import weakref
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
aten = torch.ops.aten

TO_HOST = {
    torch.Tensor.tolist,
    torch.Tensor.item,
    torch.Tensor.numpy,
    torch.Tensor.cpu,
    torch.Tensor.__int__,
    torch.Tensor.__float__,
    torch.Tensor.__bool__,
    torch.Tensor.__index__,
}
VALUE_SIZED = {aten.nonzero.default, aten.masked_select.default, aten.is_nonzero.default}
BOOLEAN_INDEX = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default}


def caller() -> str:
    """`file:line function` of the innermost frame in this project's package or in fairseq."""
    for frame in reversed(traceback.extract_stack()):
        path = frame.filename
        for package in ("xlm_fairseq", "fairseq"):
            marker = os.sep + package + os.sep
            if marker in path:
                return f"{package}/{path.split(marker, 1)[1]}:{frame.lineno} {frame.name}"
    return "?"


class _ToHost(TorchFunctionMode):
    def __init__(self, recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        to_cpu = func is torch.Tensor.to and any(
            a == "cpu" or (isinstance(a, torch.device) and a.type == "cpu") for a in (*args[1:], kwargs.get("device"))
        )
        if (func in TO_HOST or to_cpu) and self.recorder.on_device(args[0]):
            self.recorder.found.append((func.__name__, caller()))
        return func(*args, **kwargs)


class _ValueSized(TorchDispatchMode):
    def __init__(self, recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        recorder = self.recorder
        inputs = [t for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        from_device = any(recorder.on_device(t) for t in inputs)
        boolean_index = func in BOOLEAN_INDEX and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or [])
        )
        if (func in VALUE_SIZED or boolean_index) and from_device:
            recorder.found.append((str(func), caller()))
        out = func(*args, **kwargs)
        if recorder.tainted is not None and from_device:
            for t in torch.utils._pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    recorder.taint(t)
        return out


class ReadBacks:
    """`with ReadBacks() as r: ...` (every tensor counts as on the device) or `with ReadBacks(model) as r: ...` (only
    tensors computed from the model's parameters and buffers); r.found: [(operation, where)], r.where(): {where:
    count}."""

    def __init__(self, model=None):
        self.found = []
        self.tainted = None
        if model is not None:
            self.tainted = {}
            for t in (*model.parameters(), *model.buffers()):
                self.taint(t)

    def taint(self, t):
        self.tainted[id(t)] = weakref.ref(t)

    def on_device(self, t) -> bool:
        if self.tainted is None:
            return True
        ref = self.tainted.get(id(t))
        return ref is not None and ref() is t

    def __enter__(self):
        self._modes = [_ToHost(self), _ValueSized(self)]
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self._modes):
            mode.__exit__(*exc)

    def where(self):
        counts = {}
        for _, where in self.found:
            counts[where] = counts.get(where, 0) + 1
        return counts

    def ours(self):
        """The read-backs asked for by this project's code (not by fairseq's)."""
        return [f for f in self.found if f[1].startswith("xlm_fairseq/")]


@contextmanager
def on_meta_default_device():
    previous = torch.get_default_device()
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(previous)


class Backward:
    """What FairseqTask.train_step needs of fairseq's optimizer wrapper."""

    @staticmethod
    def backward(loss):
        loss.backward()


def train_step(task, model, criterion, sample):
    model.zero_grad()
    loss, _, log = task.train_step(sample, model, criterion, Backward(), update_num=0)
    return loss, log


def valid_step(task, model, criterion, sample):
    return task.valid_step(sample, model, criterion)


def assert_same_step(run, *args):
    """The step with torch's default device on `meta` equals the step without: same loss, logging output and
    gradients (a factory without a device either fails at its line or, in indexing, changes the values)."""
    model = args[1]
    torch.manual_seed(7)
    expected = run(*args)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    torch.manual_seed(7)
    with on_meta_default_device():
        got = run(*args)
    assert torch.get_default_device().type == "cpu"
    for a, b in zip(expected, got):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key
        else:
            assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    for name, p in model.named_parameters():
        if name in grads:
            assert torch.equal(p.grad, grads[name]), name
