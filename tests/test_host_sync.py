"""A pretraining step (MLM, TLM, CLM) reads nothing back from the model's device: its forward, loss, logging
output and backward contain no operator that makes the host wait for a GPU (a scalar read such as `.item()` /
`int()` / `bool()`, `nonzero`, boolean-mask indexing). On a GPU each of those stalls the CPU until the queued
kernels have run, so the next kernels start late. The LM batches carry the padding mask and the predicted
positions computed on the CPU instead; fairseq's meters read the logged tensors back once per logged line.

Checked on the CPU by recording the operators the step dispatches (the same operators run on CUDA); on a GPU
tests/test_gpu.py checks a real step with torch.cuda.set_sync_debug_mode("error")."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .helpers_cli import lm_train_args
from .helpers_data import make_data_bin

aten = torch.ops.aten
READ_BACK = {
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten.is_nonzero.default,
}


class ReadBacks(TorchDispatchMode):
    """Records every dispatched operator whose result the host needs before it can go on."""

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        boolean_index = func in (aten.index.Tensor, aten.index_put_.default, aten.index_put.default) and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or [])
        )
        if func in READ_BACK or boolean_index:
            self.found.append(str(func))
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def lm_setup(tmp_path_factory):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    root = tmp_path_factory.mktemp("sync")
    data = make_data_bin(str(root), langs=("en", "fr"), pairs=(("en", "fr"),))
    args = [str(a) for a in lm_train_args(data, root / "ckpt", "--clm-steps", "fr", "--dropout", "0.1")]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train", epoch=1)
    model = task.build_model(cfg.model).train()
    criterion = task.build_criterion(cfg.criterion)
    itr = task.get_batch_iterator(task.dataset("train"), max_tokens=400, max_sentences=4, epoch=1)
    samples = {}
    for sample in itr.next_epoch_itr(shuffle=False):  # a padded batch of each step where there is one
        if sample["step"] not in samples or sample["net_input"]["padding_mask"] is not None:
            samples[sample["step"]] = sample
    return model, criterion, samples


@pytest.mark.parametrize("step", ["en_mlm", "en_fr_mlm", "fr_clm"])
def test_a_pretraining_step_reads_nothing_back_from_the_device(lm_setup, step):
    model, criterion, samples = lm_setup
    sample = samples[step]
    if step == "en_fr_mlm":
        assert sample["net_input"]["padding_mask"] is not None, "a TLM batch of pairs of different lengths pads"
    with ReadBacks() as mode:
        loss, _, log = criterion(model, sample)
        loss.backward()
    assert mode.found == [], f"{step}: the host waits for the device on {mode.found}"
    assert torch.is_tensor(log[f"_{step}_loss"]) and log[f"_{step}_n"] == len(sample["target"])


def test_the_recorder_sees_the_read_backs_it_forbids():
    x = torch.randn(4, 3)
    mask = x[:, 0] > 0
    with ReadBacks() as mode:
        x[mask]  # noqa: B018
        int(mask.sum())
        bool(mask.any())
    assert len(mode.found) == 3, mode.found
