"""Data-bin shards (docs/data.md "Shards"): the real `xlm-preprocess prepare --shards 2` on tiny en-fr text whose
two halves differ in sentence length (one sentence per line, then four), then the real `fairseq-train bin0:bin1`:
one dictionary and the valid set in shard0, the lines cut in order with both sides of the pair aligned; each
epoch's batches come from shard (epoch-1) % 2, a run resumed in the middle of epoch 2 goes on with shard 1's
batches exactly as the run that was not stopped; every task that reads training text loads the epoch's shard
(classification refuses shards); a missing or incomplete shard is refused at task setup."""

import os
import re
import shutil

import pytest
from fairseq import options, tasks
from fairseq.data import data_utils
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from xlm_fairseq.dictionary import load_dictionary
from xlm_fairseq.errors import ConfigError, DataError
from xlm_fairseq.inference_assets import from_manifest
from xlm_preprocess import cli as preprocess_cli
from xlm_preprocess.layout import discover
from xlm_preprocess.shards import ShardText, byte_ranges, copy_range

from .helpers_cli import USER_DIR, cli, lm_train_args, train_losses
from .helpers_data import read_fixture

SHORT, LONG = 24, 24  # train lines of one sentence (shard0), then of four sentences (shard1)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    raw = root / "raw"
    raw.mkdir()
    for lang in ("en", "fr"):
        sents = read_fixture(lang)
        train = sents[:SHORT] + [" ".join(sents[(i + j) % 32] for j in range(4)) for i in range(LONG)]
        (raw / f"train.en-fr.{lang}").write_text("\n".join(train) + "\n", encoding="utf-8")
        (raw / f"valid.en-fr.{lang}").write_text("\n".join(sents[32:]) + "\n", encoding="utf-8")
    out = root / "bin"
    proc = cli("xlm-preprocess", "prepare", raw, out, "--langs", "en,fr", "--codes", 200, "--shards", 2)
    last = proc.stdout.strip().splitlines()[-1]
    return out, last.rsplit(" ", 1)[1], last


@pytest.mark.parametrize("lines,n,end", [(10, 3, "\n"), (10, 3, ""), (7, 7, "\n"), (200_000, 3, "\n")])
def test_a_file_is_cut_into_contiguous_parts_at_line_starts(tmp_path, lines, n, end):
    """Parts of ⌊L/N⌋ or ⌈L/N⌉ lines whose concatenation is the file, also across prepare's 1 MiB read blocks
    (200,000 lines: 2.3 MiB) and for a last line without '\\n'."""
    text = "\n".join(f"line {i}" for i in range(lines)) + end
    (tmp_path / "train.en").write_text(text, encoding="utf-8")
    parts = []
    for k, (start, stop) in enumerate(byte_ranges(str(tmp_path / "train.en"), n)):
        copy_range(str(tmp_path / "train.en"), str(tmp_path / f"part{k}"), start, stop)
        parts.append((tmp_path / f"part{k}").read_text(encoding="utf-8"))
    assert "".join(parts) == text
    assert [len(p.splitlines()) for p in parts] == [(k + 1) * lines // n - k * lines // n for k in range(n)]
    assert all(p.startswith("line ") for p in parts)


def test_every_train_file_is_cut_and_valid_goes_to_shard0(tmp_path):
    """Monolingual and parallel train files alike (the end-to-end corpus above is parallel only)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train.en", "train.en-fr.en", "train.en-fr.fr", "valid.en", "valid.en-fr.en", "valid.en-fr.fr"):
        (raw / name).write_text("".join(f"{name} {i}\n" for i in range(5)), encoding="utf-8")
    text = ShardText(discover(str(raw)), 2)
    parts = tmp_path / "parts"
    first, second = text.corpus(0, str(parts)), text.corpus(1, str(parts))
    assert first.mono == {"en": {"train": str(parts / "train.en"), "valid": str(raw / "valid.en")}}
    assert second.mono == {"en": {"train": str(parts / "train.en")}}
    assert first.pairs[("en", "fr")]["valid"] == {x: str(raw / f"valid.en-fr.{x}") for x in ("en", "fr")}
    assert second.pairs == {("en", "fr"): {"train": {x: str(parts / f"train.en-fr.{x}") for x in ("en", "fr")}}}
    text.write(1, str(parts))
    for name in ("train.en", "train.en-fr.en", "train.en-fr.fr"):
        assert (parts / name).read_text(encoding="utf-8") == f"{name} 2\n{name} 3\n{name} 4\n"


@pytest.mark.parametrize(
    "shards,bin_name,message",
    [
        (49, "bin", "--shards 49: RAW/train.en-fr.en has only 48 line(s), so a shard would have no training text"),
        (0, "bin", "--shards must be at least 1 (got 0)"),
        (2, "a:b", "DATA_BIN OUT contains ':', which fairseq-train reads as a separator between shards"),
    ],
)
def test_prepare_refuses_impossible_shards_before_any_work(prepared, tmp_path, capsys, shards, bin_name, message):
    raw, out = prepared[0].parent / "raw", tmp_path / bin_name
    assert preprocess_cli.main(["prepare", str(raw), str(out), "--langs", "en,fr", "--shards", str(shards)]) == 1
    err = capsys.readouterr().err.strip()
    assert message.replace("RAW", str(raw)).replace("OUT", str(out)) in err and "\n" not in err
    assert not out.exists()


def pair_sizes(folder):
    """Tokens of each training pair as TLM lays it out, `</s> a </s> </s> b </s>`: the binarised sides (each
    with its `</s>`) + 2."""
    d = load_dictionary(str(folder / "dict.txt"))
    en, fr = (data_utils.load_indexed_dataset(str(folder / f"train.en-fr.{x}"), d, "mmap") for x in ("en", "fr"))
    return en.sizes + fr.sizes + 2


def test_prepare_writes_shards_that_share_one_dictionary(prepared):
    out, data, last = prepared
    shard0, shard1 = out / "shard0", out / "shard1"
    assert data == f"{shard0}:{shard1}", last  # the last line printed is fairseq-train's DATA
    dict_bytes = (out / "work" / "dict.txt").read_bytes()
    assert (shard0 / "dict.txt").read_bytes() == dict_bytes == (shard1 / "dict.txt").read_bytes()
    assert {f for f in os.listdir(shard0) if f.startswith("valid.")} == {
        f"valid.en-fr.{x}.{e}" for x in ("en", "fr") for e in ("bin", "idx")
    }
    assert not any(f.startswith(("valid.", "test.")) for f in os.listdir(shard1))
    # contiguous halves, in order, the same lines on both sides of the pair
    d = load_dictionary(str(shard0 / "dict.txt"))
    for lang in ("en", "fr"):
        bpe = (out / "work" / "bpe" / f"train.en-fr.{lang}").read_text(encoding="utf-8").splitlines()
        parts = [data_utils.load_indexed_dataset(str(s / f"train.en-fr.{lang}"), d, "mmap") for s in (shard0, shard1)]
        assert [len(p) for p in parts] == [SHORT, LONG]
        assert [d.string(p[i]) for p in parts for i in range(len(p))] == bpe
    # inference reads the first shard's manifest: its codes (../work/codes) resolve
    assert from_manifest(str(shard0)).bpe_codes and os.path.samefile(
        from_manifest(str(shard0)).bpe_codes, out / "work" / "codes"
    )


def epoch_batches(log):
    """{num_updates: (epoch, tokens per pair of the batch)} from train_inner lines (log interval 1)."""
    rows = {}
    for line in log.splitlines():
        m = re.search(r"train_inner \| epoch (\d+):.* wpb=([\d.]+), bsz=([\d.]+), num_updates=(\d+)", line)
        if m:
            rows[int(m.group(4))] = (int(m.group(1)), float(m.group(2)) / float(m.group(3)))
    return rows


def assert_batches_from_shards(rows, sizes):
    """Every batch's mean pair length lies in the range of its epoch's shard (the ranges do not overlap)."""
    for update, (epoch, mean) in rows.items():
        shard = sizes[(epoch - 1) % 2]
        assert shard.min() <= mean <= shard.max(), (update, epoch, mean, [(s.min(), s.max()) for s in sizes])


def test_each_epoch_trains_on_its_shard_and_a_resume_stays_on_it(prepared, tmp_path):
    out, data, _ = prepared
    sizes = [pair_sizes(out / "shard0"), pair_sizes(out / "shard1")]
    assert sizes[0].max() < sizes[1].min()  # premise: a batch's mean pair length tells its shard
    args = ["--max-epoch", 3, "--disable-validation", "--no-epoch-checkpoints", "--dropout", "0.1"]
    # 10 batches an epoch (--epoch-size 40 / 4); the checkpoint of update 13 is 3 batches into epoch 2
    straight = cli(
        "fairseq-train",
        *lm_train_args(
            data, tmp_path / "a", *args, "--save-interval-updates", 13, steps="en-fr", max_update=0, epoch_size=40
        ),
    )
    rows = epoch_batches(straight.stdout + straight.stderr)
    assert sorted(rows) == list(range(1, 31)) and [rows[u][0] for u in (10, 11, 20, 21, 30)] == [1, 2, 2, 3, 3]
    assert_batches_from_shards(rows, sizes)
    # inference assets beside the checkpoints, from shard0's manifest (its codes: ../work/codes)
    assert (tmp_path / "a" / "bpecodes").read_bytes() == (out / "work" / "codes").read_bytes()
    # a run killed after update 13 leaves this checkpoint as its checkpoint_last.pt
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "checkpoint_2_13.pt", tmp_path / "b" / "checkpoint_last.pt")
    resumed = cli(
        "fairseq-train", *lm_train_args(data, tmp_path / "b", *args, steps="en-fr", max_update=0, epoch_size=40)
    )
    log = resumed.stdout + resumed.stderr
    after = epoch_batches(log)
    assert sorted(after) == list(range(14, 31)) and after[14][0] == 2
    assert_batches_from_shards(after, sizes)
    assert "loading train data for epoch 2" in log and f"epoch 2 trains on {out / 'shard1'}" in log
    la, lb = train_losses(straight.stdout + straight.stderr), train_losses(log)
    assert all(lb[u] == la[u] for u in range(14, 31)), (la, lb)


def setup_task(data, *args):
    parser = options.get_training_parser()
    argv = [str(data), "--user-dir", USER_DIR, "--langs", "en,fr", "--arch", "xlm_tiny", "--cpu", *map(str, args)]
    return tasks.setup_task(convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, argv)).task)


def test_the_translation_task_loads_the_epochs_shard(prepared):
    """xlm_unsupervised_mt's steps read the epoch's shard as the LM tasks' do (the fairseq-train run above:
    xlm_tlm, whose load_dataset is xlm_cross_lingual_lm's)."""
    out, data, _ = prepared
    task_args = ("--task", "xlm_unsupervised_mt", "--mt-steps", "en-fr", "--criterion", "xlm_mt_loss")

    def train_sizes(task, epoch):
        task.load_dataset("train", epoch=epoch)  # as fairseq-train does at each epoch
        return sorted(task.dataset("train").sizes.tolist())

    alone = [train_sizes(setup_task(out / f"shard{k}", "--max-tokens", 400, *task_args), 1) for k in (0, 1)]
    assert alone[0] != alone[1]
    sharded = setup_task(data, "--max-tokens", 400, *task_args)
    assert [train_sizes(sharded, epoch) for epoch in (1, 2, 3)] == [alone[0], alone[1], alone[0]]


def test_classification_refuses_shards(prepared):
    out, data, _ = prepared
    with pytest.raises(ConfigError, match="--task xlm_classification reads one data-bin folder, not shards"):
        setup_task(
            data, "--task", "xlm_classification", "--train-langs", "en", "--criterion", "xlm_classification_loss"
        )


def test_a_missing_or_incomplete_shard_is_refused_at_setup(prepared, tmp_path):
    """At task setup, which fairseq-train runs before it lists every DATA folder (fairseq/data/data_utils.py:
    raise_if_valid_subsets_unintentionally_ignored, an os.listdir traceback for a mistyped shard) and before any
    update; fairseq-train prints a task's DataError as one line (cli_hooks.py; test_pretrain_cli.py shows it)."""
    out, data, _ = prepared
    tlm = ("--task", "xlm_tlm", "--mlm-steps", "en-fr", "--criterion", "xlm_lm_loss")
    typo = f"{out / 'shard0'}:{out / 'shard_1'}"
    with pytest.raises(DataError) as e:
        setup_task(typo, *tlm)
    assert str(e.value) == f"{out / 'shard_1'}: no such folder (data shard 1 of {typo}); check the path"
    incomplete = tmp_path / "incomplete"
    shutil.copytree(out / "shard1", incomplete)
    os.remove(incomplete / "train.en-fr.fr.idx")
    with pytest.raises(DataError) as e:
        setup_task(f"{out / 'shard0'}:{incomplete}", *tlm)
    assert str(e.value).startswith(f"{incomplete}: no {incomplete}/train.en-fr.fr.bin/.idx (train parallel data")
    other = tmp_path / "other"
    shutil.copytree(out / "shard1", other)
    lines = (other / "dict.txt").read_text(encoding="utf-8").splitlines()
    lines[-1], lines[-2] = lines[-2], lines[-1]  # two word ids swapped: the shard's ids name other words
    (other / "dict.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"^{other}/dict.txt differs from {out}/shard0/dict.txt"):
        setup_task(f"{out / 'shard0'}:{other}", *tlm)
    setup_task(data, *tlm)  # the shards prepare wrote pass
