"""Language-embedding rows are matched by language name on every path that loads weights: --reload-encoder /
--reload-decoder, --restore-file, fairseq-generate with another --langs, a one-language model from a
multilingual one; a language the checkpoint lacks is an error unless --init-new-langs."""

import pytest
import torch

from .helpers_cli import USER_DIR, cli, lm_train_args, load_model_state
from .helpers_data import make_data_bin


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("langs")
    data = make_data_bin(str(root), langs=("de", "en", "fr"), pairs=(("en", "fr"),), valid_seen_in_train=True)
    cli(
        "fairseq-train",
        *lm_train_args(
            data,
            root / "mlm",
            "--disable-validation",
            task="xlm_cross_lingual_lm",
            steps="de,en,fr",
            langs="de,en,fr",
            max_update=10,
        ),
    )
    return data, root / "mlm" / "checkpoint_last.pt"


def rows(path, side="encoder"):
    return load_model_state(path)[f"{side}.lang_embeddings.weight"]


def mt_args(data, save, *extra):
    return [
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_unsupervised_mt",
        "--langs",
        "en,fr",
        "--ae-steps",
        "en,fr",
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_mt_loss",
        "--max-tokens",
        300,
        "--batch-size",
        8,
        "--optimizer",
        "adam",
        "--lr",
        0,
        "--max-update",
        1,
        "--epoch-size",
        8,
        "--save-dir",
        save,
        "--num-workers",
        0,
        "--seed",
        1,
        "--no-progress-bar",
        "--cpu",
        "--disable-validation",
        *extra,
    ]


def test_reload_encoder_and_decoder_map_rows_by_name(setup, tmp_path):
    data, mlm = setup
    cli("fairseq-train", *mt_args(data, tmp_path / "mt", "--reload-model", f"{mlm},{mlm}"))
    pretrained = rows(mlm)  # de=0, en=1, fr=2
    for side in ("encoder", "decoder"):
        assert torch.equal(rows(tmp_path / "mt" / "checkpoint_last.pt", side), pretrained[1:3])


def test_missing_language_is_an_error_unless_init_new_langs(setup, tmp_path):
    data, mlm = setup
    args = lm_train_args(
        data,
        tmp_path / "it",
        "--disable-validation",
        "--restore-file",
        mlm,
        "--reset-optimizer",
        "--reset-dataloader",
        "--reset-lr-scheduler",
        "--lr",
        0,
        task="xlm_cross_lingual_lm",
        steps="en",
        langs="en,it",
        max_update=1,
    )
    proc = cli("fairseq-train", *args, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr[-2000:]
    assert "--restore-file" in errors[0] and "lack it" in errors[0] and "--init-new-langs" in errors[0]
    cli("fairseq-train", *args, "--init-new-langs")
    got, pretrained = rows(tmp_path / "it" / "checkpoint_last.pt"), rows(mlm)
    assert torch.equal(got[0], pretrained[1]) and not any(torch.equal(got[1], r) for r in pretrained)


def test_restore_file_with_other_languages(setup, tmp_path):
    data, mlm = setup
    cli(
        "fairseq-train",
        *lm_train_args(
            data,
            tmp_path / "enfr",
            "--disable-validation",
            "--restore-file",
            mlm,
            "--reset-optimizer",
            "--reset-dataloader",
            "--reset-lr-scheduler",
            "--lr",
            0,
            task="xlm_cross_lingual_lm",
            steps="fr,en",
            langs="fr,en",
            max_update=1,
        ),
    )
    assert torch.equal(rows(tmp_path / "enfr" / "checkpoint_last.pt"), rows(mlm)[1:3])


def test_one_language_model_folds_its_row_into_the_positions(setup, tmp_path):
    """A one-language model has no language embedding (as the original); from a multilingual checkpoint its
    language's row moves into the position table, so the hidden states stay the pretrained model's."""
    data, mlm = setup
    cli(
        "fairseq-train",
        *lm_train_args(
            data,
            tmp_path / "en",
            "--disable-validation",
            "--restore-file",
            mlm,
            "--reset-optimizer",
            "--reset-dataloader",
            "--reset-lr-scheduler",
            "--lr",
            0,
            task="xlm_cross_lingual_lm",
            steps="en",
            langs="en",
            max_update=1,
        ),
    )
    multi, single = load_model_state(mlm), load_model_state(tmp_path / "en" / "checkpoint_last.pt")
    assert "encoder.lang_embeddings.weight" not in single
    expected = multi["encoder.position_embeddings.weight"] + multi["encoder.lang_embeddings.weight"][1]
    assert torch.allclose(single["encoder.position_embeddings.weight"], expected)


def test_generate_with_another_langs_list_translates_the_same(setup, tmp_path):
    """A model trained with --langs de,en,fr scored with --langs en,fr: the same translations."""
    data, mlm = setup
    cli(
        "fairseq-train",
        data,
        "--user-dir",
        USER_DIR,
        "--task",
        "xlm_unsupervised_mt",
        "--langs",
        "de,en,fr",
        "--ae-steps",
        "en,fr",
        "--bt-steps",
        "en-fr-en,fr-en-fr",
        "--reload-model",
        f"{mlm},{mlm}",
        "--arch",
        "xlm_tiny",
        "--criterion",
        "xlm_mt_loss",
        "--max-tokens",
        300,
        "--batch-size",
        8,
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--max-update",
        8,
        "--epoch-size",
        64,
        "--save-dir",
        tmp_path / "u",
        "--num-workers",
        0,
        "--seed",
        1,
        "--no-progress-bar",
        "--cpu",
        "--disable-validation",
    )
    outputs = []
    for langs in ("de,en,fr", "en,fr"):
        proc = cli(
            "fairseq-generate",
            data,
            "--user-dir",
            USER_DIR,
            "--task",
            "xlm_unsupervised_mt",
            "--langs",
            langs,
            "--source-lang",
            "fr",
            "--target-lang",
            "en",
            "--path",
            tmp_path / "u" / "checkpoint_last.pt",
            "--gen-subset",
            "valid",
            "--beam",
            1,
            "--batch-size",
            4,
            "--cpu",
        )
        outputs.append(sorted(line for line in proc.stdout.splitlines() if line.startswith("H-")))
    assert len(outputs[0]) == 8 and outputs[0] == outputs[1]
