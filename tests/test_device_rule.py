"""The device rule (design: every tensor that meets model tensors is created with their device), checked where CPU
runs cannot check it. A tensor made by a torch factory without `device=` lands on the default device: on a CPU
machine that is where the model is, so every CPU test passes; on a GPU it crashes or copies silently (every
shipped recipe died at its first CUDA update on `torch.tensor(float(t))` in the optimizer). So in the training and
inference code every factory call names its device; `device="cpu"` where a CPU tensor is meant.

Left out: xlm_fairseq/data/ (datasets and collaters build batches on the CPU by design; fairseq's trainer moves
each whole batch to the model's device) and xlm_fairseq/convert/ (checkpoint files converted on the CPU)."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "xlm_fairseq")
CPU_BY_DESIGN = ("data", "convert")
FACTORIES = {
    "tensor",
    "as_tensor",
    "zeros",
    "ones",
    "empty",
    "full",
    "arange",
    "range",
    "linspace",
    "logspace",
    "eye",
    "rand",
    "randn",
    "randint",
    "randperm",
    "scalar_tensor",
}
# always on the CPU, with no device argument at all
CPU_ONLY = {"from_numpy", "Tensor", "LongTensor", "FloatTensor", "BoolTensor", "HalfTensor", "ByteTensor"}


def factory_calls_without_device(source: str):
    """(line, 'torch.name(...)') of each torch tensor factory called without a device."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner, name = node.func.value, node.func.attr
        if not (isinstance(owner, ast.Name) and owner.id == "torch"):
            continue
        if name in CPU_ONLY or (name in FACTORIES and not any(k.arg == "device" for k in node.keywords)):
            found.append((node.lineno, f"torch.{name}(...)"))
    return found


def checked_files():
    for folder, _, files in os.walk(PACKAGE):
        rel = os.path.relpath(folder, PACKAGE)
        if rel.split(os.sep)[0] in CPU_BY_DESIGN:
            continue
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def test_every_tensor_factory_names_its_device():
    offences = []
    for path in checked_files():
        with open(path, encoding="utf-8") as f:
            for line, call in factory_calls_without_device(f.read()):
                offences.append(f"{os.path.relpath(path, ROOT)}:{line}: {call} without device=")
    assert not offences, "tensors created on the default device:\n" + "\n".join(offences)


def test_the_rule_flags_the_line_that_crashed_on_cuda():
    """The optimizer line every recipe died on, and the forms that pass."""
    crashed = "steps = [torch.tensor(float(t))] * len(params)\n"
    assert factory_calls_without_device(crashed) == [(1, "torch.tensor(...)")]
    assert factory_calls_without_device("x = torch.zeros(\n    3,\n    dtype=torch.long,\n)\n") == [
        (1, "torch.zeros(...)")
    ]
    assert factory_calls_without_device("m = torch.from_numpy(a)\n") == [(1, "torch.from_numpy(...)")]
    fine = [
        "a = torch.tensor(1.0, device=p.device)",
        "b = p.new_zeros(3)",
        "c = torch.zeros_like(p)",
        "d = torch.full((2,), 0, device='cpu')",
    ]
    assert factory_calls_without_device("\n".join(fine)) == []
