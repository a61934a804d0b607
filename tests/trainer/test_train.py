"""A 1-epoch CORE run on a tiny dataset, its lists, and the model directory without RecBole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.trainer.conftest import TINY
from trainer.cli import cli
from trainer.data import read_chains
from trainer.model import load_model, top_k


def test_metrics_compare_core_with_pop_on_the_same_split(tiny_model):
    model_dir, metrics = tiny_model
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert saved == metrics
    # K=100 is clamped to the catalogue's 20 tracks (RecBole would crash)
    keys = {f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in (10, 20)}
    assert set(metrics["test"]["CORE"]) == keys == set(metrics["test"]["Pop"])
    assert metrics["model"] == "CORE-ave" and metrics["epochs_run"] == 1
    assert len(metrics["seconds"]["train"]) == len(metrics["seconds"]["valid"]) == 1
    # recall@20 covers every track of this tiny catalogue: both models must hit every time
    assert metrics["test"]["CORE"]["recall@20"] == metrics["test"]["Pop"]["recall@20"] == 1.0


def test_recommend_gives_a_full_list_to_every_user(tiny_dataset, tiny_model, tmp_path):
    dataset, summary = tiny_dataset
    model_dir, _ = tiny_model
    out = tmp_path / "recs.jsonl"
    result = CliRunner().invoke(
        cli, ["recommend", "--model", str(model_dir), "--out", str(out), "--k", "10"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    chains = read_chains(dataset)
    assert [r["user"] for r in rows] == chains.users.tolist()
    known = set(chains.tracks.tolist())
    for row in rows:
        assert len(row["tracks"]) == len(set(row["tracks"])) == 10
        assert set(row["tracks"]) <= known
    with np.load(model_dir / "item_embeddings.npz", allow_pickle=False) as npz:
        assert sorted(npz["tracks"].tolist()) == sorted(known)
        assert npz["embeddings"].shape == (summary.tracks, TINY["embedding_size"])


def test_exclude_seen_leaves_out_liked_tracks(tiny_model):
    model = load_model(tiny_model[0])
    catalogue = set(model.tracks.tolist())
    for j, (user, tracks) in enumerate(top_k(model, k=len(catalogue), exclude_seen=True)):
        seen = set(model.chain_tracks[model.offsets[j] : model.offsets[j + 1]].tolist())
        assert user == model.users[j]
        assert set(tracks) == catalogue - seen and len(tracks) == len(catalogue - seen)


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_trm_model"])
def test_lists_reproduce_the_held_out_evaluation(fixture, request):
    """The lists' code path (full chains, top_k), minus each user's last track, hits exactly as
    often as the evaluation of the same model on the test split."""
    model_dir, metrics = request.getfixturevalue(fixture)
    model = load_model(model_dir)
    last = model.chain_tracks[model.offsets[1:] - 1].copy()
    keep = np.ones(len(model.chain_tracks), bool)
    keep[model.offsets[1:] - 1] = False
    model.chain_tracks = model.chain_tracks[keep]
    model.offsets = model.offsets - np.arange(len(model.offsets))
    hits = [t in tracks for (_, tracks), t in zip(top_k(model, k=10), last, strict=True)]
    assert round(float(np.mean(hits)), 4) == metrics["test"]["CORE"]["recall@10"]


def test_cli_trains_trm_and_leaves_no_stray_files(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--dataset", str(tiny_dataset[0]), "--out", "m", "--variant", "trm",
            "--epochs", "1", "--max-len", "5", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["model"] == "CORE-trm" and metrics["epochs_run"] == 1
    assert json.loads((tmp_path / "m" / "model.json").read_text())["arch"]["dnn_type"] == "trm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_model_directory_loads_and_scores_without_recbole(tiny_trm_model):
    """Serving needs torch and this repository only: RecBole is made unimportable."""
    code = (
        "import sys; sys.modules['recbole'] = None\n"
        "from trainer.model import load_model, top_k\n"
        f"model = load_model({str(tiny_trm_model[0])!r})\n"
        "print(sum(1 for _ in top_k(model, k=5)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "30"
