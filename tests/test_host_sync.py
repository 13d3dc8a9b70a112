"""Every step reads back from the model's device only where it must, and creates no tensor on a default device.

Read-backs (helpers_device.ReadBacks): on a GPU each one stalls the CPU until the queued kernels have run, so the
next kernels start late. Pretraining (MLM, TLM, CLM), denoising (AE) and supervised MT steps read nothing: the
collaters make the padding masks, the predicted positions (pred_index) and the token counts on the CPU, and the
criterion logs its sums as device tensors that fairseq's meters read once per logged line. What stays, each pinned
with its reason:
- greedy decoding (back-translation, BLEU validation): one number per decoding step, how many rows have just
  finished (generation.py decides from it to shrink the batch or stop);
- BLEU validation: one copy of the batch's hypotheses, lengths and references to the CPU, to make the strings.
The counts are of operations recorded on the CPU (the same operations run on CUDA); on a GPU tests/test_gpu.py runs a
pretraining step under torch.cuda.set_sync_debug_mode("error"). Classification and the hub's methods are checked
in test_classification.py and test_hub.py with the models those files train.

Default device (helpers_device.on_meta_default_device): every step also runs with torch's default device set to
`meta` and must give the same loss, logging output and gradients as without it."""

import copy

import pytest
import torch

from xlm_fairseq.generation import bt_max_len, eval_max_len, greedy_generate

from .helpers_cli import lm_train_args
from .helpers_data import make_data_bin
from .helpers_device import ReadBacks, assert_same_step, on_meta_default_device, train_step, valid_step
from .test_mt_cli import mt_args


def setup_task(args):
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), args))
    task = tasks.setup_task(cfg.task)
    return task, cfg


def first_batches(task, split, **kw):
    """{step: a batch of it}, a padded one where there is one."""
    task.load_dataset(split, epoch=1)
    itr = task.get_batch_iterator(task.dataset(split), epoch=1, **kw)
    samples = {}
    for sample in itr.next_epoch_itr(shuffle=False):
        if sample["step"] not in samples or sample["net_input"]["src_tokens"].eq(task.dictionary.pad()).any():
            samples[sample["step"]] = sample
    return samples


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data_bin(str(tmp_path_factory.mktemp("sync")), langs=("en", "fr"), pairs=(("en", "fr"),))


@pytest.fixture(scope="module")
def lm_setup(data, tmp_path_factory):
    args = lm_train_args(data, tmp_path_factory.mktemp("ckpt"), "--clm-steps", "fr", "--dropout", "0.1")
    task, cfg = setup_task([str(a) for a in args])
    model = task.build_model(cfg.model).train()
    return (
        task,
        model,
        task.build_criterion(cfg.criterion),
        first_batches(task, "train", max_tokens=400, max_sentences=4),
    )


@pytest.fixture(scope="module")
def mt_setup(data, tmp_path_factory):
    steps = ["--ae-steps", "en", "--mt-steps", "en-fr", "--bt-steps", "fr-en-fr", "--word-shuffle", 3]
    extra = [*steps, "--word-dropout", 0.1, "--eval-bleu", "--epoch-size", 256, "--dropout", 0.1]
    args = mt_args(data, tmp_path_factory.mktemp("mt-ckpt"), *extra)
    task, cfg = setup_task([str(a) for a in args])
    torch.manual_seed(0)
    model = task.build_model(cfg.model).train()
    criterion = task.build_criterion(cfg.criterion)
    train = first_batches(task, "train", max_tokens=300, max_sentences=8)
    valid = first_batches(task, "valid", max_tokens=300, max_sentences=8)
    return task, model, criterion, train, valid


@pytest.mark.parametrize("step", ["en_mlm", "en_fr_mlm", "fr_clm"])
def test_a_pretraining_step_reads_nothing_back_from_the_device(lm_setup, step):
    task, model, criterion, samples = lm_setup
    sample = samples[step]
    if step == "en_fr_mlm":
        assert sample["net_input"]["padding_mask"] is not None, "a TLM batch of pairs of different lengths pads"
    with ReadBacks() as r:
        loss, log = train_step(task, model, criterion, sample)
    assert r.found == [], f"{step}: the host waits for the device at {r.where()}"
    assert torch.is_tensor(log[f"_{step}_loss"]) and log[f"_{step}_n"] == len(sample["target"])
    assert_same_step(train_step, task, model, criterion, sample)


@pytest.mark.parametrize("step", ["en_ae", "en-fr_mt"])
def test_denoising_and_supervised_steps_read_nothing_back(mt_setup, step):
    task, model, criterion, train, _ = mt_setup
    sample = train[step]
    assert sample["net_input"]["src_tokens"].eq(task.dictionary.pad()).any(), "a padded batch"
    with ReadBacks() as r:
        loss, log = train_step(task, model, criterion, sample)
    assert r.found == [], f"{step}: the host waits for the device at {r.where()}"
    assert log[f"_{step}_n"] == sample["ntokens"] == int(sample["target"].ne(task.dictionary.pad()).sum())
    assert_same_step(train_step, task, model, criterion, sample)


def greedy_read_back(found):
    """The one read-back greedy decoding makes per step."""
    return [(op, where) for op, where in found if where.endswith(" greedy_generate")]


def stopping_at_different_steps(model, eos):
    """A copy of the model whose decoder says `</s>` a little less at first and more at each later position, so that
    the rows of a batch finish at different steps (the batch shrinks) instead of all at the first (a fresh model)."""
    model = copy.deepcopy(model)
    dec = model.decoder
    with torch.no_grad():
        dec.pred_layer.proj.bias[eos] -= 0.5
        dec.position_embeddings.weight[:40] += 0.5 * torch.arange(40.0)[:, None] * dec.embeddings.weight[eos]
    return model


def test_back_translation_reads_one_number_per_decoding_step(mt_setup):
    task, model, criterion, train, _ = mt_setup
    model = stopping_at_different_steps(model, task.dictionary.eos())
    sample = train["fr-en-fr_bt"]
    translated = []
    task_back_translate = task.back_translate

    def keep(sample, model):
        translated.append(task_back_translate(sample, model))
        return translated[-1]

    task.back_translate = keep
    try:
        with ReadBacks() as r:
            train_step(task, model, criterion, sample)
        lengths = translated[0]["net_input"]["src_lengths"]
        decoding_steps = translated[0]["net_input"]["src_tokens"].size(1) - 1
        # the premise (here 2 and 8 within a limit of 16): rows finish at different steps, before the limit
        assert len(set(lengths.tolist())) >= 2 and decoding_steps + 1 < bt_max_len(sample["net_input"]["src_tokens"])
        assert r.found == greedy_read_back(r.found), f"read-backs outside greedy decoding: {r.where()}"
        assert len(r.found) == decoding_steps and {op for op, _ in r.found} == {"__int__"}, r.where()
        assert_same_step(train_step, task, model, criterion, sample)
    finally:
        del task.back_translate


def test_bleu_validation_copies_each_batch_to_the_cpu_once(mt_setup):
    task, model, criterion, _, valid = mt_setup
    model = stopping_at_different_steps(model, task.dictionary.eos()).eval()
    sample = valid["en-fr_mt"]
    net = sample["net_input"]
    args = (net["src_tokens"], net["src_lengths"], net["src_langs"], net["tgt_langs"])
    hypotheses, lengths = greedy_generate(model, *args, eval_max_len(net["src_tokens"]))
    assert len(set(lengths.tolist())) >= 2, "the premise: rows finish at different steps"
    with ReadBacks() as r:
        _, _, log = valid_step(task, model, criterion, sample)
    decoding = greedy_read_back(r.found)
    assert len(decoding) == hypotheses.size(1) - 1 and {op for op, _ in decoding} == {"__int__"}, r.where()
    rest = [f for f in r.found if f not in decoding]
    assert [op for op, _ in rest] == ["tolist"] and rest[0][1].endswith(" decode_batch"), r.where()
    assert log["_en-fr_mt_tok_ref_len"] > 0
    assert_same_step(valid_step, task, model, criterion, sample)


def test_the_recorder_sees_the_read_backs_it_forbids():
    x = torch.randn(4, 3)
    mask = x[:, 0] > 0
    with ReadBacks() as r:
        x[mask]  # noqa: B018
        int(mask.sum())
        bool(mask.any())
        mask.nonzero()
        x.tolist()
        x.cpu()
        x.to("cpu")
        x[0, 0].item()
    assert [op for op, _ in r.found] == [
        "aten.index.Tensor",
        "__int__",
        "__bool__",
        "aten.nonzero.default",
        "tolist",
        "cpu",
        "to",
        "item",
    ]


def test_the_meta_default_device_catches_a_factory_without_a_device():
    x = torch.randn(5)
    with on_meta_default_device(), pytest.raises(RuntimeError, match="meta"):
        x + torch.arange(5)  # noqa: B018
    with on_meta_default_device():
        picked = x.index_select(0, torch.tensor([0, 1]))  # no error: the values are what differs
    assert not torch.equal(picked, x[:2]) or picked.device.type == "meta"
