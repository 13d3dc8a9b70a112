"""`--amp` trains as `--fp16` does.

fairseq's AMP (autocast + torch's GradScaler) is CUDA's: on a CPU its GradScaler turns itself off, so these tests
build fairseq's real Trainer with the scaler on the CPU device (torch.amp.GradScaler("cpu"), what fairseq's
torch.cuda.amp.GradScaler is on a GPU) and check:
- the update: with SGD (no momentum) one AMP update moves the parameters by -lr·g, as fp32 does. fairseq's
  AMPOptimizer unscales the torch optimizer's gradients in clip_grad_norm and then hands the scaler its own wrapper
  in step(), which the scaler divides again: the update was -lr·g/128 at the first step (the initial loss scale),
  and Adam's eps was multiplied by the scale. The tasks step through the scaler themselves (tasks/xlm_task.py:
  optimizer_step);
- the precision of what the task runs itself: fairseq's train_step puts autocast around the criterion only, so
  back-translation's decoding and validation ran in fp32 under --amp (under --fp16 the whole model is half); they
  now run under autocast too."""

from unittest import mock

import pytest
import torch

from .helpers_cli import lm_train_args
from .helpers_data import make_data_bin
from .test_mt_cli import mt_args


def cpu_grad_scaler(**kwargs):
    return torch.amp.GradScaler("cpu", **kwargs)


def build(args):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.trainer import Trainer

    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train", epoch=1)
    torch.manual_seed(1)
    model = task.build_model(cfg.model)
    with mock.patch("torch.cuda.amp.GradScaler", cpu_grad_scaler):
        trainer = Trainer(cfg, task, model, task.build_criterion(cfg.criterion))
        trainer.optimizer  # noqa: B018  (built now, with the scaler on the CPU)
    return task, model, trainer


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data_bin(str(tmp_path_factory.mktemp("amp")), langs=("en", "fr"), pairs=(("en", "fr"),))


def one_sgd_update(data, save_dir, *flags):
    args = [str(a) for a in lm_train_args(data, save_dir, "--mlm-steps", "en", *flags)]
    args[args.index("adam")] = "sgd"
    task, model, trainer = build(args)
    itr = task.get_batch_iterator(task.dataset("train"), max_tokens=400, max_sentences=4, epoch=1)
    sample = next(itr.next_epoch_itr(shuffle=False))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train_step([sample])
    return trainer, {n: before[n] - p.detach() for n, p in model.named_parameters()}


def test_an_amp_update_is_minus_lr_times_the_gradient(data, tmp_path):
    """The same batch, the same start, SGD at lr 1e-3: the AMP update equals the fp32 update (on the CPU the
    criterion runs in fp32 under both: fairseq's autocast is CUDA's), whereas dividing twice by the loss scale made
    it 1/128 of it."""
    from fairseq.optim.amp_optimizer import AMPOptimizer

    _, fp32 = one_sgd_update(data, tmp_path / "fp32")
    trainer, amp = one_sgd_update(data, tmp_path / "amp", "--amp")
    assert isinstance(trainer.optimizer, AMPOptimizer) and trainer.optimizer.scaler.is_enabled()
    assert trainer.optimizer.scaler.get_scale() == 128.0, "the premise: a loss scale that a double division shows"
    a, b = torch.cat([amp[n].view(-1) for n in fp32]), torch.cat([u.view(-1) for u in fp32.values()])
    assert b.norm() > 1e-4, "the premise: the update moves the parameters"
    ratio = float(a.norm() / b.norm())
    assert ratio == pytest.approx(1.0, abs=1e-5), f"the AMP update is {ratio:.7f} of fp32's"
    assert (a - b).abs().max() <= 1e-6 * b.abs().max()


def test_back_translation_and_validation_run_under_autocast_with_amp(data, tmp_path):
    steps = ["--bt-steps", "fr-en-fr", "--mt-steps", "en-fr", "--eval-bleu"]
    args = mt_args(data, tmp_path, *steps, "--optimizer", "sgd", "--max-tokens", 300, "--amp")
    task, model, trainer = build([str(a) for a in args])
    task.load_dataset("valid")
    dtypes = []
    model.decoder.pred_layer.register_forward_hook(lambda m, i, out: dtypes.append((m.training, out.dtype)))
    bt = next(s for s in task.get_batch_iterator(task.dataset("train"), max_tokens=300).next_epoch_itr() if s.get("bt"))
    trainer.train_step([bt])
    decoding = [dtype for training, dtype in dtypes if not training]
    assert decoding and set(decoding) == {torch.float16}, dtypes
    dtypes.clear()
    valid = next(task.get_batch_iterator(task.dataset("valid"), max_tokens=300).next_epoch_itr())
    trainer.valid_step(valid)
    assert dtypes and {dtype for _, dtype in dtypes} == {torch.float16}, dtypes
