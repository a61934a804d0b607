"""A 1-epoch CORE run on a tiny dataset, its lists, and the scorer's agreement with RecBole."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from click.testing import CliRunner

from tests.trainer.conftest import TINY
from trainer.cli import cli
from trainer.model import load_model, top_k
from trainer.train import read_chains, train


def test_metrics_compare_core_with_pop_on_the_same_split(tiny_model):
    model_dir, metrics = tiny_model
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert saved == metrics
    # K=100 is clamped to the catalogue's 20 tracks (RecBole would crash)
    keys = {f"{m}@{k}" for m in ("recall", "ndcg", "mrr") for k in (10, 20)}
    assert set(metrics["test"]["CORE"]) == keys == set(metrics["test"]["Pop"])
    assert metrics["model"] == "CORE-trm" and metrics["epochs_run"] == 1
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
    assert [r["user"] for r in rows] == chains["users"].tolist()
    known = set(chains["tracks"].tolist())
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


def test_scorer_reproduces_recboles_held_out_ranking(tiny_model):
    """Our own sequences + full_sort scoring, minus each user's last track, hit exactly as often
    as RecBole's evaluation of the same model on the test split."""
    model_dir, metrics = tiny_model
    model = load_model(model_dir)
    last = model.chain_tracks[model.offsets[1:] - 1].copy()
    keep = np.ones(len(model.chain_tracks), bool)
    keep[model.offsets[1:] - 1] = False
    model.chain_tracks = model.chain_tracks[keep]
    model.offsets = model.offsets - np.arange(len(model.offsets))
    hits = [t in tracks for (_, tracks), t in zip(top_k(model, k=10), last, strict=True)]
    assert np.mean(hits) == metrics["test"]["CORE"]["recall@10"]


def test_ave_variant_ignores_cli_flags_in_argv_and_leaves_no_stray_files(
    tiny_dataset, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["prog", "--epochs=9", "--dnn_type=trm"])  # RecBole reads argv
    metrics = train(
        tiny_dataset[0],
        tmp_path / "m",
        variant="ave",
        epochs=1,
        overrides=TINY,
        show_progress=False,
    )
    assert metrics["model"] == "CORE-ave" and metrics["epochs_run"] == 1
    assert json.loads((tmp_path / "m" / "model.json").read_text())["arch"]["dnn_type"] == "ave"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no log/, saved/, log_tensorboard/
    assert not torch.is_anomaly_enabled()  # RecBole's sine.py turns it on at import
