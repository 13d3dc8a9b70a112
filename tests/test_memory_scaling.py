"""Memory follows the batch, not the corpus (design.md §11; issue: nothing measured memory against corpus size or
--max-tokens). Peaks are resident memory measured from /proc by benchmarks/memory_scaling.py (the benchmark prints
the full curves; benchmarks/README.md, "Memory"):

- `xlm-preprocess prepare` on 2,000 and 20,000 lines of English (the DDTP fixture's sentences, varied): each
  stage's peak in the prepare process (reset at each stage heading), and fairseq-preprocess's. 2,000 lines because
  tokenize and apply-bpe work in chunks of 2,000 lines (the chunk is the constant; a smaller corpus would be
  measured below it), and English alone since one language shows what a stage holds per line.
- `fairseq-train` UNMT (xlm_tiny, 2 updates: one denoising en, one back-translation en-fr-en) on the 20,000-line
  data-bin at --max-tokens 500 and 4000, and on the same ×10 (its binarised files repeated: 200,000 sentences) at
  500.

Margins, measured three to five times on the 2-core AMD EPYC (repeated runs differ by ≤ 0.7 MB a stage in
preprocessing, ≤ 4 MB in training):
- preprocessing: each stage of prepare grows by ≤ 1 MB from 2,000 to 20,000 lines (measured -0.36 to +0.54 MB); a
  stage holding its lines in a list grew by 1.85 MB. fairseq-preprocess may add 60 bytes a line (its per-line index
  lists: measured 59 on 100k-1M lines, 0.73-1.14 MB here; binarize.py runs it on parts of at most 1M lines).
- training, corpus: ≤ 260 bytes per added sentence (measured 198-210: the index arrays of the two steps over
  English, each step's sizes, kept sentences and pass of batches; the tokens stay in the data-bin's memory map,
  read where a batch is). A dataset holding its sentences as tensors: 2,317 bytes a sentence.
- training, batch: --max-tokens 4000 holds ≥ 40 MB more than 500 (measured 154-177 MB); batches that ignore
  --max-tokens: 0.2 MB.
"""

import os
import sys

import numpy as np
import pytest

from .helpers_cli import ENV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import memory_scaling as ms  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peaks are read from Linux /proc")

LINES = 2000
FACTOR = 10
MB = 2**20
STAGE_GROWTH_MB = 1.0
FAIRSEQ_BYTES_PER_LINE = 60
TRAIN_BYTES_PER_SENTENCE = 260
BATCH_GROWTH_MB = 40
SMALL_BATCH, LARGE_BATCH = 500, 4000
UNMT_EN = dict(ae="en", bt="en-fr-en")
UPDATES = 2  # XLM's order: the denoising step, then the back-translation step


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """{lines: (Peak of prepare, data-bin)} for the two corpora."""
    root = str(tmp_path_factory.mktemp("memory"))
    english = {"en": ms.fixture_sentences(root)["en"]}
    found = {}
    for n in (LINES, LINES * FACTOR):
        raw = ms.write_raw(os.path.join(root, f"raw-{n}"), english, n)
        data_bin = os.path.join(root, f"bin-{n}")
        found[n] = (ms.measure_prepare(raw, data_bin, codes=500, langs="en", env=ENV), data_bin)
    return found


def test_preprocessing_memory_does_not_grow_with_lines(prepared):
    (small, _), (large, _) = prepared[LINES], prepared[LINES * FACTOR]
    added = LINES * (FACTOR - 1)
    assert set(ms.PREPARE_STAGES) <= set(small.stages), small.output[-2000:]  # every stage measured
    for stage in ms.PREPARE_STAGES:
        growth = (large.stages[stage]["main"] - small.stages[stage]["main"]) / MB
        assert growth <= STAGE_GROWTH_MB, (
            f"prepare's {stage} held {growth:.2f} MB more for {LINES * FACTOR} lines than for {LINES} "
            f"({small.stages[stage]['main'] / MB:.1f} -> {large.stages[stage]['main'] / MB:.1f} MB)"
        )
    child = large.stages["binarize"]["children"] - small.stages["binarize"]["children"]
    allowed = STAGE_GROWTH_MB * MB + FAIRSEQ_BYTES_PER_LINE * added
    assert small.stages["binarize"]["children"] > 0, "fairseq-preprocess was not seen"
    assert child <= allowed, f"fairseq-preprocess held {child / MB:.2f} MB more (allowed {allowed / MB:.2f})"


@pytest.fixture(scope="module")
def trained(prepared):
    """{(corpus, max_tokens): peak bytes} of UNMT training on the large corpus's data-bin and on it ×10."""
    _, data_bin = prepared[LINES * FACTOR]
    replicated = ms.replicate_data_bin(data_bin, data_bin + "-x10", FACTOR, langs=("en",))
    runs = {("x1", SMALL_BATCH): data_bin, ("x10", SMALL_BATCH): replicated, ("x1", LARGE_BATCH): data_bin}
    return {
        key: ms.measure_training(path, key[1], "xlm_tiny", UPDATES, env=ENV, **UNMT_EN).largest
        for key, path in runs.items()
    }


def test_training_memory_does_not_grow_with_sentences(trained):
    added = LINES * FACTOR * (FACTOR - 1)
    per_sentence = (trained["x10", SMALL_BATCH] - trained["x1", SMALL_BATCH]) / added
    assert per_sentence <= TRAIN_BYTES_PER_SENTENCE, (
        f"fairseq-train held {per_sentence:.0f} bytes more per added sentence at --max-tokens {SMALL_BATCH} "
        f"({trained['x1', SMALL_BATCH] / MB:.1f} MB for {LINES * FACTOR} sentences, "
        f"{trained['x10', SMALL_BATCH] / MB:.1f} MB for {LINES * FACTOR * FACTOR})"
    )


def test_training_memory_follows_max_tokens(trained):
    growth = (trained["x1", LARGE_BATCH] - trained["x1", SMALL_BATCH]) / MB
    assert growth >= BATCH_GROWTH_MB, (
        f"--max-tokens {LARGE_BATCH} held only {growth:.1f} MB more than {SMALL_BATCH}: the batches do not follow "
        "--max-tokens"
    )


@pytest.mark.parametrize("max_tokens", [500, 1000, 2000, 4000])
def test_a_batch_pads_to_at_most_twice_max_tokens(max_tokens):
    """The corpora that pad most (xlm_fairseq/data/multi_step_dataset.py: split_padded): one-token sentences then
    --max-len ones (cut by summed length alone, as the original, one batch holds (M - 103) // 3 short ones and a
    long one: padded to ~M·102/3), and every sentence at --max-len."""
    from xlm_fairseq.data.multi_step_dataset import sentence_batches

    gap = np.array([3] * ((max_tokens - 103) // 3) + [102] * 3)
    cut_by_sum = np.split(np.arange(len(gap)), np.nonzero(np.diff(np.cumsum(gap) // max_tokens))[0] + 1)
    assert max(len(b) * gap[b].max() for b in cut_by_sum) > 20 * max_tokens  # the premise: such a batch exists
    for sizes in (gap, np.full(max_tokens, 102)):
        batches = sentence_batches(sizes, np.arange(len(sizes)), np.random.RandomState(0), True, max_tokens)
        assert sorted(np.concatenate(batches)) == list(range(len(sizes)))  # every sentence, once
        padded = max(len(b) * int(sizes[b].max()) for b in batches)
        assert padded <= 2 * max_tokens, f"a batch of {padded} padded tokens at --max-tokens {max_tokens}"


def test_binarising_in_parts_writes_what_one_run_writes(tmp_path):
    """preprocess/binarize.py runs fairseq-preprocess on parts of --part-lines lines (its memory grows ~60 bytes a
    line of a run) and joins them: the joined index is fairseq's own for the whole, byte for byte (the .bin files
    are the parts' one after the other), and the parts are the file's lines, the last without its newline kept."""
    import torch
    from fairseq.data import indexed_dataset

    from xlm_preprocess.binarize import _copy_lines, join_indexes

    text = tmp_path / "train.en"
    text.write_bytes(b"".join(f"{' '.join(['w'] * (i % 5))}\n".encode() for i in range(7))[:-1])
    with open(text, "rb") as reader:
        counts = [_copy_lines({"en": reader}, str(tmp_path / f"part{k}"), 3) for k in range(4)]
    assert counts == [3, 3, 1, 0]
    assert b"".join((tmp_path / f"part{k}.en").read_bytes() for k in range(3)) == text.read_bytes()

    rng = np.random.RandomState(0)
    sentences = [rng.randint(4, 70000, size=rng.randint(1, 9)) for _ in range(11)]  # int32 tokens (> 65500)

    def write(prefix, rows):
        builder = indexed_dataset.make_builder(f"{prefix}.bin", impl="mmap", vocab_size=70000)
        for row in rows:
            builder.add_item(torch.from_numpy(row))
        builder.finalize(f"{prefix}.idx")
        return f"{prefix}.idx", os.path.getsize(f"{prefix}.bin")

    write(tmp_path / "whole", sentences)
    parts = [write(tmp_path / f"p{k}", sentences[k * 4 : k * 4 + 4]) for k in range(3)]
    join_indexes(parts, str(tmp_path / "joined.idx"))
    assert (tmp_path / "joined.idx").read_bytes() == (tmp_path / "whole.idx").read_bytes()
    joined = b"".join((tmp_path / f"p{k}.bin").read_bytes() for k in range(3))
    assert joined == (tmp_path / "whole.bin").read_bytes()
