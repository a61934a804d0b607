"""The "contextual" lists, the course's week-6 seminar (2025, `Week6Seminar.ipynb`): what
followed a track in the logs, as item-keyed lists for the `contextual` recommender.

As the notebook does it:
1. pairs (the session's first track, a later track of the session, the time it was heard), for
   every later play of every session (the `last` play included);
2. a random 80 / 10 / 10 split of the pairs into train, validation and test;
3. a model `time ~ context[first] . track[later]` (two 100-d embedding tables, normal(0, 1)
   initialised as `nn.Embedding`), mean squared error, Adam (lr 0.01, weight decay 1e-5),
   batches of 4,096, the learning rate divided by 10 after 3 epochs without a better validation
   loss, at most 50 epochs, stopped after 5 without one; the best epoch's weights are kept;
4. each track's list: the 50 tracks whose `track` vector has the largest inner product with its
   `context` vector.

Where ours differs: ids are compacted to the tracks in the pairs (the notebook sizes both tables
to the whole catalog); lists are written for the tracks seen as a session's first track only, and
name only tracks seen later in a session (the notebook writes one for every catalog track, from
context vectors that never saw data: random lists); the recommender answers a track without a
list with its fallback (Random), which is what those random lists amounted to. The test split's
loss is reported beside the mean-time and random baselines, as in the notebook.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from trainer.zoo.events import read_events, session_starts

log = logging.getLogger("trainer")

SETTINGS = {
    "dim": 100,
    "lr": 1e-2,
    "weight_decay": 1e-5,
    "batch_size": 4096,
    "epochs": 50,
    "patience": 5,  # early stopping on the validation loss
    "plateau_patience": 3,  # ReduceLROnPlateau
    "k": 50,
    "seed": 31337,  # the notebook's np.random.seed
}


def pairs(events: pd.DataFrame) -> pd.DataFrame:
    """(start, track, time) for every play after the first of its session."""
    starts = session_starts(events)
    session = np.cumsum(starts) - 1
    first = events["track"].to_numpy()[starts][session]
    later = ~starts
    return pd.DataFrame({"start": first[later], "track": events["track"].to_numpy()[later],
                         "time": events["time"].to_numpy()[later]})  # fmt: skip


class ContextualRanker(nn.Module):
    def __init__(self, n_contexts: int, n_tracks: int, dim: int):
        super().__init__()
        self.context = nn.Embedding(n_contexts, dim)
        self.track = nn.Embedding(n_tracks, dim)

    def forward(self, context: torch.Tensor, track: torch.Tensor) -> torch.Tensor:
        return (self.context(context) * self.track(track)).sum(dim=1)


def fit(data, settings: dict | None = None, progress=None) -> tuple[dict, dict]:
    """Train on the logs; returns (lists {start track: [tracks]}, metrics)."""
    s = {**SETTINGS, **(settings or {})}
    table = pairs(read_events(data))
    if len(table) < 10:
        raise ValueError(f"contextual: {len(table)} pairs; collect more logs")
    rng = np.random.default_rng(s["seed"])
    draw = rng.random(len(table))
    contexts, context_ix = np.unique(table["start"].to_numpy(), return_inverse=True)
    tracks, track_ix = np.unique(table["track"].to_numpy(), return_inverse=True)
    x = torch.from_numpy(np.stack([context_ix, track_ix], axis=1).astype(np.int64))
    y = torch.from_numpy(table["time"].to_numpy(np.float32))
    train, valid, test = draw < 0.8, (draw >= 0.8) & (draw < 0.9), draw >= 0.9
    parts = {name: (x[torch.from_numpy(m)], y[torch.from_numpy(m)])
             for name, m in (("train", train), ("valid", valid), ("test", test))}  # fmt: skip
    torch.manual_seed(s["seed"])
    model = ContextualRanker(len(contexts), len(tracks), s["dim"])
    # the notebook's dense Adam: every row moves at each step. torch's fused kernel makes the same
    # update about 4x cheaper on the catalog-sized tables, but costs tens of ms a step on tiny ones
    big = sum(p.numel() for p in model.parameters()) > 1_000_000
    optimizer = torch.optim.Adam(
        model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"], fused=big
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, patience=s["plateau_patience"]
    )
    shuffle = torch.Generator().manual_seed(s["seed"])
    best, best_loss, waited, epochs = None, float("inf"), 0, 0
    for epoch in range(s["epochs"]):
        model.train()
        px, py = parts["train"]
        for batch in torch.randperm(len(py), generator=shuffle).split(s["batch_size"]):
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(model(px[batch, 0], px[batch, 1]), py[batch])
            loss.backward()
            optimizer.step()
        valid_loss = _mse(model, *parts["valid"])
        scheduler.step(valid_loss)
        epochs = epoch + 1
        log.info("contextual epoch %d: valid mse %.4f", epoch, valid_loss)
        if progress is not None:
            progress(1)
        if valid_loss < best_loss:
            best, best_loss, waited = copy.deepcopy(model.state_dict()), valid_loss, 0
        else:
            waited += 1
            if waited >= s["patience"]:
                break
    assert best is not None
    model.load_state_dict(best)
    tx, ty = parts["test"]
    metrics = {
        "pairs": len(table),
        "contexts": len(contexts),
        "tracks": len(tracks),
        "epochs_run": epochs,
        "valid_mse": round(best_loss, 5),
        "test_mse": round(_mse(model, tx, ty), 5),
        "test_mse_of_the_mean": round(float(((ty - parts["train"][1].mean()) ** 2).mean()), 5),
        "test_mse_of_random": round(
            float(((ty - torch.rand(len(ty), generator=shuffle)) ** 2).mean()), 5
        ),
    }
    lists = dict(top_lists(model, contexts, tracks, s["k"]))
    return lists, metrics


@torch.no_grad()
def _mse(model: ContextualRanker, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    if not len(y):
        return float("nan")
    return float(nn.functional.mse_loss(model(x[:, 0], x[:, 1]), y))


@torch.no_grad()
def top_lists(
    model, contexts, tracks, k: int, chunk: int = 2048
) -> Iterator[tuple[int, list[int]]]:
    k = min(k, len(tracks))
    candidates = model.track.weight
    for lo in range(0, len(contexts), chunk):
        scores = model.context.weight[lo : lo + chunk] @ candidates.T
        top = torch.topk(scores, k, dim=1).indices.numpy()
        for row, context in enumerate(contexts[lo : lo + chunk].tolist()):
            yield int(context), tracks[top[row]].tolist()
