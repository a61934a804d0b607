"""A tiny dataset and one 1-epoch CORE model shared by the trainer tests (a few seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainer.prepare import prepare
from trainer.train import train

# small enough for seconds on a shared 2-core machine
TINY = {
    "embedding_size": 8,
    "inner_size": 16,
    "MAX_ITEM_LIST_LENGTH": 5,
    "train_batch_size": 128,
    "eval_batch_size": 512,
}


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """(message, timestamp, user, track, time) tuples -> the exporter's column layout."""
    frame = pd.DataFrame(rows, columns=["message", "timestamp", "user", "track", "time"])
    frame["latency"] = 0.001
    frame["recommendation"] = pd.array([None] * len(frame), dtype="Int64")
    frame["replica"] = "test"
    return frame.astype({"timestamp": "int64", "user": "int64", "track": "int64"})


def tiny_events(
    users: int = 30, tracks: int = 20, per_user: int = 14, seed: int = 1
) -> pd.DataFrame:
    """Users walk up a ring of tracks from their own start: the next track is predictable."""
    rng = np.random.default_rng(seed)
    rows, clock = [], 1_700_000_000_000
    for user in range(users):
        start = int(rng.integers(tracks))
        for step in range(per_user):
            message = "last" if step == per_user - 1 else "next"
            time = 0.9 if step % 4 else 0.3  # every 4th play is not liked
            rows.append((message, clock, user, (start + step) % tracks, time))
            clock += 1000
    return events_frame(rows)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    tiny_events().to_parquet(root / "events.parquet")
    summary = prepare(root / "events.parquet", root / "dataset")
    return root / "dataset", summary


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset, tmp_path_factory):
    """The default recipe (CORE-ave), one epoch."""
    dataset, _ = tiny_dataset
    out = tmp_path_factory.mktemp("model") / "model"
    metrics = train(dataset, out, epochs=1, seed=7, overrides=TINY, show_progress=False)
    return out, metrics


@pytest.fixture(scope="session")
def tiny_trm_model(tiny_dataset, tmp_path_factory):
    """CORE-trm (the recipe before), one epoch."""
    dataset, _ = tiny_dataset
    out = tmp_path_factory.mktemp("model") / "trm"
    metrics = train(dataset, out, "trm", epochs=1, seed=7, overrides=TINY, show_progress=False)
    return out, metrics
