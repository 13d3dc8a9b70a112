"""Progress of the long preprocessing steps: plain periodic lines when stderr is not a terminal (none for a step
shorter than the interval, no bar characters), a tqdm bar with lines/s on a terminal, the fraction from the
bytes read (or, for fairseq-preprocess, written), and the clock read once per batch of lines, not per line."""

import io
import os
import re
import sys
import time

import pytest

from xlm_preprocess import binarize, progress
from xlm_preprocess.apply_bpe import apply_file
from xlm_preprocess.build_dict import build_dictionary
from xlm_preprocess.common import PreprocessError
from xlm_preprocess.learn_bpe import learn
from xlm_preprocess.tokenizer import tokenize_file

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "text")
LINE = re.compile(r"^(?P<what>[^:]+): (?P<n>[\d,]+) (?P<unit>\w+), [\d,]+ (?P=unit)/s(?:, (?P<pct>\d+)% done)?")


def english(tmp_path, copies=10):
    """The fixture's 40 English lines, `copies` times."""
    with open(os.path.join(FIXTURES, "train.en"), encoding="utf-8") as f:
        text = f.read()
    path = tmp_path / "train.en"
    path.write_text(text * copies, encoding="utf-8")
    return path


def reports(err, what):
    """(lines, percent) of every progress line of `what` in a captured stderr."""
    found = []
    for line in err.splitlines():
        m = LINE.match(line)
        if m and m.group("what") == what:
            found.append((int(m.group("n").replace(",", "")), m.group("pct") and int(m.group("pct"))))
    return found


def test_log_lines_of_each_step(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)  # every batch reported
    monkeypatch.setattr(progress, "EVERY", 64)
    monkeypatch.setattr("xlm_preprocess.learn_bpe.EVERY", 64)
    monkeypatch.setattr("xlm_preprocess.build_dict.EVERY", 64)
    raw = english(tmp_path)  # 400 lines
    tok, codes, bpe = str(tmp_path / "tok.en"), str(tmp_path / "codes"), str(tmp_path / "bpe.en")
    tokenize_file(str(raw), tok, "en", chunk_lines=100)
    learn({"en": [tok]}, codes, 40, out=io.StringIO())
    apply_file(tok, bpe, codes, "subword-nmt", chunk_lines=100)
    build_dictionary([bpe], str(tmp_path / "dict.txt"))
    err = capsys.readouterr().err
    assert "\r" not in err and "█" not in err  # no bar in a log
    assert reports(err, "tokenize train.en") == [(100, 25), (200, 50), (300, 75), (400, 100)]
    assert reports(err, "apply-bpe tok.en") == [(100, 25), (200, 50), (300, 75), (400, 100)]
    sampling = reports(err, "learn-bpe sampling")
    assert [n for n, _ in sampling] == [64, 128, 192, 256, 320, 384, 400] and sampling[-1][1] == 100
    merges = reports(err, "learn-bpe merges")
    assert merges and merges[0][0] == 10 and all(b[0] - a[0] == 10 for a, b in zip(merges, merges[1:]))
    counting = reports(err, "build-dict counting")
    assert [n for n, _ in counting] == [64, 128, 192, 256, 320, 384]
    assert all(0 < p <= 100 for _, p in counting)


def test_a_short_step_prints_nothing_in_a_log(tmp_path, capsys):
    raw = english(tmp_path, copies=1)
    tokenize_file(str(raw), str(tmp_path / "tok.en"), "en")
    assert capsys.readouterr().err == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_bar_shows_lines_per_second_and_is_erased(monkeypatch):
    monkeypatch.setattr(progress, "BAR_SECONDS", 0.0)
    monkeypatch.setattr(progress, "BAR_DELAY", 0.0)
    monkeypatch.setenv("COLUMNS", "100")
    screen = Terminal()
    with progress.Progress("tokenize train.en", total=1000, stream=screen) as p:
        for i in range(1, 5):
            p.update(2000, done=250 * i)
    frames = screen.getvalue().split("\r")
    shown = [f for f in frames if "lines/s" in f]
    assert len(shown) == 4 and "tokenize train.en:  50%|" in shown[1] and "4,000 lines" in shown[1]
    assert frames[-1].strip() == ""  # erased: the step's own summary line comes next


def test_the_clock_is_read_once_per_batch_not_per_line(tmp_path, monkeypatch):
    calls = []
    real = time.monotonic

    def counted():
        calls.append(1)
        return real()

    monkeypatch.setattr(progress.time, "monotonic", counted)
    raw = english(tmp_path, copies=25)  # 1000 lines
    tokenize_file(str(raw), str(tmp_path / "tok.en"), "en", chunk_lines=250)
    assert len(calls) <= 4 + 1  # one per chunk, one at the start
    calls.clear()
    learn({"en": [str(tmp_path / "tok.en")]}, str(tmp_path / "codes"), 10, out=io.StringIO())
    assert len(calls) <= 2 + (10 // 10 + 1)  # sampling: start + end of the language; merges: every 10


def test_binarize_progress_is_the_output_written_against_what_the_input_gives(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)
    monkeypatch.setattr(binarize, "POLL_SECONDS", 0.02)
    text = tmp_path / "train.en"
    text.write_text("a b c\n" * 300 + "d e\n" * 100)  # 1200 + 200 units, 400 lines -> 2200 uint16 ids
    out = tmp_path / "out"
    out.mkdir()
    with binarize.OutputWatch("binarize en", [str(text)], str(out), vocab_size=100) as watch:
        assert watch.itemsize == 2
        (out / "train.en-None.en.bin").write_bytes(b"\0" * 2200)  # half of 4400 bytes
        deadline = time.time() + 10
        while not reports(capsys.readouterr().err, "binarize en") and time.time() < deadline:
            time.sleep(0.05)
        (out / "train.en-None.en.pt1.bin").write_bytes(b"\0" * 2200)  # a worker's part
        time.sleep(0.2)
    err = capsys.readouterr().err
    assert (400, 100) in reports(err, "binarize en")
    with binarize.OutputWatch("binarize en", [str(text)], str(out), vocab_size=70000) as watch:
        assert watch.itemsize == 4


def test_the_command_writes_into_the_log_and_its_last_line_is_the_error(tmp_path):
    """fairseq-preprocess writes into DESTDIR/preprocess.log directly (no pipe to fill while its output is
    watched); a failure names the unit and the last line it wrote, from this run's part of the log."""
    log = tmp_path / "preprocess.log"
    log.write_text("an earlier run's last line\n")
    ok = [sys.executable, "-c", "print('Wrote preprocessed data')"]
    binarize._run_fairseq(ok, "'en'", str(log), binarize.OutputWatch("binarize en", [], str(tmp_path), 100))
    fail = [sys.executable, "-c", "import sys; print('reading'); sys.exit('ValueError: bad dictionary')"]
    with pytest.raises(PreprocessError) as e:
        binarize._run_fairseq(fail, "'fr'", str(log))
    assert "on 'fr' (exit 1): ValueError: bad dictionary" in str(e.value) and str(log) in str(e.value)
    text = log.read_text()
    assert text.count("$ ") == 2 and "Wrote preprocessed data" in text and "reading" in text
