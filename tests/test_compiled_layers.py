"""`--compile-layers` (torch.compile of the transformer layers, a GPU speed option) computes what the eager layers
compute: the same logits to fp32 rounding, the same loss and the same gradients on a padded TLM batch in training
(dropout 0, so both draw nothing), the same logits and loss on an MLM batch of stream windows in evaluation.
Compiled on the CPU here (inductor's C++ backend; each kind of batch compiles once, tens of seconds on 2 cores, so
two kinds); the GPU suite measures the speed."""

import copy
import re
import sys

import pytest
import torch

from .helpers_cli import lm_train_args, valid_metrics
from .helpers_cli import run as run_
from .helpers_data import make_data_bin
from .test_mt_cli import UNMT, mt_args


@pytest.fixture(scope="module")
def models_and_batches(tmp_path_factory):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    root = tmp_path_factory.mktemp("compile")
    data = make_data_bin(str(root), langs=("en", "fr"), pairs=(("en", "fr"),))
    args = [str(a) for a in lm_train_args(data, root / "ckpt", "--compile-layers")]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train", epoch=1)
    torch.manual_seed(0)
    compiled = task.build_model(cfg.model)
    assert compiled.encoder.compiled_layers is not None, "--compile-layers must reach the model fairseq-train builds"
    eager = copy.deepcopy(compiled)
    eager.encoder.compiled_layers = None
    criterion = task.build_criterion(cfg.criterion)
    itr = task.get_batch_iterator(task.dataset("train"), max_tokens=400, max_sentences=4, epoch=1)
    batches = {}
    for sample in itr.next_epoch_itr(shuffle=False):
        if sample["step"] not in batches or sample["net_input"]["padding_mask"] is not None:
            batches[sample["step"]] = sample
    return eager, compiled, criterion, batches, data


@pytest.mark.parametrize("step, training", [("en_fr_mlm", True), ("en_mlm", False)])
def test_compiled_layers_equal_eager_layers(models_and_batches, step, training):
    eager, compiled, criterion, batches, _ = models_and_batches
    sample = batches[step]
    assert (sample["net_input"]["padding_mask"] is not None) == (step == "en_fr_mlm")
    results = []
    for model in (eager, compiled):
        model.train(training)
        model.zero_grad(set_to_none=True)
        logits = model(**sample["net_input"])
        loss, _, _ = criterion(model, sample)
        if training:
            loss.backward()
        results.append((logits.detach(), float(loss), {n: p.grad for n, p in model.named_parameters()}))
    (ref, ref_loss, ref_grads), (out, out_loss, grads) = results
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5, msg=f"{step}: logits")
    assert abs(out_loss - ref_loss) <= 1e-5 * abs(ref_loss), (step, out_loss, ref_loss)
    if training:
        for name, g in ref_grads.items():
            if g is not None:
                torch.testing.assert_close(grads[name], g, rtol=1e-4, atol=1e-6, msg=f"{step}: grad {name}")


# every torch.compile of the run on a backend that counts its graphs and runs them as traced (no inductor)
COUNTING = """
import sys, torch
graphs = []
def counting(gm, example_inputs):
    graphs.append(gm)
    return gm.forward
compile = torch.compile
torch.compile = lambda fn=None, **kw: compile(fn, **dict(kw, backend=counting))
from fairseq_cli.train import cli_main
sys.argv = ["fairseq-train"] + sys.argv[1:]
try:
    cli_main()
finally:
    print(f"compiled graphs: {len(graphs)}", flush=True)
"""


@pytest.mark.parametrize("run", ["mlm_tlm", "unmt"])
def test_a_whole_run_compiles_a_bounded_number_of_graphs(models_and_batches, tmp_path, run):
    """A real fairseq-train run with --compile-layers over two epochs with validation (MLM+TLM: stream windows and
    padded pairs; UNMT: denoising, back-translation, validation with BLEU) compiles one graph per kind of pass,
    whatever the shapes of the batches: at most 4 for an LM stack, 2 + 2 for an MT encoder and decoder
    (modules/transformer.py: compile_layers), and never falls back to eager layers (torch's recompile limit is 8
    graphs per function). Before: the layers compiled anew for every new shape and both stacks shared the limit,
    which UNMT reached within 12 updates."""
    data = models_and_batches[-1]
    if run == "mlm_tlm":
        args = lm_train_args(data, tmp_path, "--compile-layers", "--no-save", max_update=12, epoch_size=24)
        bound = 4
    else:
        extra = [*UNMT, "--compile-layers", "--eval-bleu", "--no-save", "--epoch-size", 16]
        args = mt_args(data, tmp_path, *extra, max_update=8)
        bound = 4
    proc = run_([sys.executable, "-c", COUNTING, *args])
    log = proc.stdout + proc.stderr
    graphs = int(re.search(r"compiled graphs: (\d+)", log).group(1))
    assert len(valid_metrics(log)) == 2, "the premise: two epochs, each validated"
    fell_back = [l for l in log.splitlines() if "recompile_limit" in l or "--compile-layers: torch.compile runs" in l]
    assert 0 < graphs <= bound and not fell_back, f"{run}: {graphs} graphs (at most {bound}); {fell_back}"
