"""A model directory that is corrupt or not this trainer's is refused with a clear message."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from trainer.cli import cli
from trainer.model import CheckpointError, load_model, sha256_of


@pytest.fixture
def model_copy(tiny_model, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model[0], target)
    return target


def rehash(model_dir):
    meta = json.loads((model_dir / "model.json").read_text())
    meta["sha256"] = sha256_of(model_dir / "model.pt")
    (model_dir / "model.json").write_text(json.dumps(meta))


def test_a_flipped_byte_is_refused(model_copy):
    raw = bytearray((model_copy / "model.pt").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (model_copy / "model.pt").write_bytes(bytes(raw))
    with pytest.raises(
        CheckpointError, match="sha256 differs .* corrupt or was not written by this trainer"
    ):
        load_model(model_copy)


def test_a_pickled_object_is_refused_even_with_a_matching_hash(model_copy):
    # what a RecBole checkpoint looks like: weights next to a pickled config object
    torch.save(
        {"config": argparse.Namespace(model="CORE"), "state_dict": {}}, model_copy / "model.pt"
    )
    rehash(model_copy)
    with pytest.raises(CheckpointError, match="refused by the safe loader"):
        load_model(model_copy)


def test_weights_of_another_architecture_are_refused(model_copy):
    torch.save({"item_embedding.weight": torch.zeros(3, 3)}, model_copy / "model.pt")
    rehash(model_copy)
    with pytest.raises(CheckpointError, match="do not match the recorded architecture"):
        load_model(model_copy)


def test_a_foreign_directory_is_refused_by_the_cli(model_copy, tmp_path):
    (model_copy / "model.json").write_text(json.dumps({"format": "something-else"}))
    result = CliRunner().invoke(
        cli, ["recommend", "--model", str(model_copy), "--out", str(tmp_path / "r.jsonl")]
    )
    assert result.exit_code == 1
    assert "not a botify-core/1 model" in result.output
    (model_copy / "model.json").unlink()
    with pytest.raises(CheckpointError, match="python -m trainer train"):
        load_model(model_copy)
